/* SPDX-License-Identifier: MIT */
/*
 * nck_arena: chunked bump allocator (see arena.h). Chunks grow to 64 KiB and
 * a large request gets a chunk of its own.
 */
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct nck_arena_chunk {
	nck_arena_chunk *next;
	size_t pad; /* keeps data 16-byte aligned */
	unsigned char data[];
};

#define ARENA_CHUNK 65536u

void nck_arena_init(nck_arena *arena)
{
	memset(arena, 0, sizeof(*arena));
}

void nck_arena_dispose(nck_arena *arena)
{
	nck_arena_chunk *c, *next;

	if (!arena)
		return;
	for (c = arena->head; c; c = next) {
		next = c->next;
		free(c);
	}
	nck_arena_init(arena);
}

void *nck_arena_alloc(nck_arena *arena, size_t size)
{
	size_t need = (size + 15u) & ~(size_t)15u;
	nck_arena_chunk *c;
	size_t cap;

	if (need < size)
		return NULL;
	if (!arena->head || arena->cap - arena->used < need) {
		cap = need > ARENA_CHUNK / 2 ? need : ARENA_CHUNK;
		if (cap > SIZE_MAX - sizeof(*c))
			return NULL;
		c = calloc(1, sizeof(*c) + cap);
		if (!c)
			return NULL;
		if (need > ARENA_CHUNK / 2 && arena->head) {
			/* Big block: link it behind the head so the head keeps its space. */
			c->next = arena->head->next;
			arena->head->next = c;
			return c->data;
		}
		c->next = arena->head;
		arena->head = c;
		arena->used = 0;
		arena->cap = cap;
	}
	arena->used += need;
	return arena->head->data + arena->used - need;
}

char *nck_arena_strndup(nck_arena *arena, const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX)
		return NULL;
	p = nck_arena_alloc(arena, len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}
