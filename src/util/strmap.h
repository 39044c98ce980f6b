/* SPDX-License-Identifier: MIT */
/*
 * nck_strmap: open-addressing hash map from NUL-terminated strings to
 * size_t values. Keys are borrowed (they usually live in an arena) and must
 * outlive the map. Used while a tree is built; lookups at run time use the
 * sorted inode table instead.
 *
 * Thread-safety: none; one thread builds and queries a map.
 */
#ifndef NCK_UTIL_STRMAP_H
#define NCK_UTIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct nck_strmap_slot {
	const char *key; /* NULL when empty */
	size_t value;
	size_t hash;
} nck_strmap_slot;

typedef struct nck_strmap {
	nck_strmap_slot *slots;
	size_t cap; /* power of two or 0 */
	size_t len;
} nck_strmap;

/* Frees the slot array; keys are borrowed and left alone. NULL-safe. */
void nck_strmap_dispose(nck_strmap *map);

/* Finds `key`; returns true and sets *value_out when present. */
bool nck_strmap_find(const nck_strmap *map, const char *key, size_t *value_out);

/* Inserts or replaces `key`. Returns 0 or -ENOMEM. */
int nck_strmap_put(nck_strmap *map, const char *key, size_t value);

#endif
