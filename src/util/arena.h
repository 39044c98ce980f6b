/* SPDX-License-Identifier: MIT */
/*
 * nck_arena: bump allocator for data that lives as long as a mount (names,
 * entries, nodes, synthesized bytes). Everything is freed at once by
 * nck_arena_dispose(); there are no per-object frees.
 *
 * Thread-safety: an arena is filled by one thread while a mount is built and
 * only read afterwards.
 */
#ifndef NCK_UTIL_ARENA_H
#define NCK_UTIL_ARENA_H

#include <stddef.h>

typedef struct nck_arena_chunk nck_arena_chunk;

typedef struct nck_arena {
	nck_arena_chunk *head; /* newest chunk first */
	size_t used;           /* bytes used in head */
	size_t cap;            /* capacity of head */
} nck_arena;

/* Prepares an embedded arena; a zeroed struct is also a valid empty arena. */
void nck_arena_init(nck_arena *arena);

/* Frees every allocation of the arena. NULL-safe; the arena is empty after. */
void nck_arena_dispose(nck_arena *arena);

/* Returns `size` bytes aligned to 16, zeroed, or NULL when out of memory. */
void *nck_arena_alloc(nck_arena *arena, size_t size);

/* Copies `len` bytes of `s` and a NUL; NULL when out of memory. */
char *nck_arena_strndup(nck_arena *arena, const char *s, size_t len);

#endif
