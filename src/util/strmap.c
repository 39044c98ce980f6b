/* SPDX-License-Identifier: MIT */
/*
 * nck_strmap: FNV-1a hashed, linearly probed, load factor at most 1/2.
 */
#include "util/strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/fnv.h"

static size_t strmap_hash(const char *s)
{
	return (size_t)nck_fnv1a_str(NCK_FNV1A_INIT, s);
}

void nck_strmap_dispose(nck_strmap *map)
{
	if (!map)
		return;
	free(map->slots);
	memset(map, 0, sizeof(*map));
}

/* Returns the slot holding `key`, or the empty slot where it would go. */
static nck_strmap_slot *strmap_probe(nck_strmap_slot *slots, size_t cap, const char *key, size_t h)
{
	size_t i = h & (cap - 1);

	while (slots[i].key && (slots[i].hash != h || strcmp(slots[i].key, key) != 0))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

bool nck_strmap_find(const nck_strmap *map, const char *key, size_t *value_out)
{
	nck_strmap_slot *s;

	if (!map->cap)
		return false;
	s = strmap_probe(map->slots, map->cap, key, strmap_hash(key));
	if (!s->key)
		return false;
	if (value_out)
		*value_out = s->value;
	return true;
}

/* Doubles the table (or creates it). */
static int strmap_grow(nck_strmap *map)
{
	size_t cap = map->cap ? map->cap * 2 : 64;
	nck_strmap_slot *slots;

	if (cap < map->cap || cap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < map->cap; i++) {
		const nck_strmap_slot *old = &map->slots[i];

		if (old->key)
			*strmap_probe(slots, cap, old->key, old->hash) = *old;
	}
	free(map->slots);
	map->slots = slots;
	map->cap = cap;
	return 0;
}

int nck_strmap_put(nck_strmap *map, const char *key, size_t value)
{
	nck_strmap_slot *s;
	size_t h = strmap_hash(key);
	int rc;

	if ((map->len + 1) * 2 > map->cap && (rc = strmap_grow(map)) < 0)
		return rc;
	s = strmap_probe(map->slots, map->cap, key, h);
	if (!s->key) {
		s->key = key;
		s->hash = h;
		map->len++;
	}
	s->value = value;
	return 0;
}
