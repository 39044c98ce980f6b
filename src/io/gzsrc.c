/* SPDX-License-Identifier: MIT */
/*
 * The gz source: an nck_src over the decompressed stream of a gzip file,
 * read through its seek index (see gzindex.h).
 *
 * The unit of caching is a chunk: the output between checkpoint i and
 * checkpoint i+1 (about `spacing` bytes). A read finds the chunks it
 * covers, gets each from the cache (decompressing it on a miss) and copies
 * out. Chunks larger than a quarter of the cache (a hostile or odd file
 * whose deflate blocks are huge) are never cached: the read inflates from
 * the checkpoint straight into the caller's buffer.
 *
 * Single flight: each chunk has a state (EMPTY, LOADING, READY). The first
 * reader of an EMPTY chunk marks it LOADING and decompresses it without the
 * lock; others wait on the condition variable until it is READY (or back
 * to EMPTY after a failure, which is not cached: they retry and get -EIO
 * themselves). READY chunks are refcounted while copied out (_get/_put) and
 * kept in an LRU list; unreferenced ones are evicted from its tail while
 * the cache holds more than its budget. A decompressed chunk must match
 * the CRC-32 the index recorded for it, else the read fails with -EIO, so
 * damage inside the archive is never served as data.
 *
 * Thread-safety: any thread; `lock` guards the chunk states, the LRU list
 * and the byte count; decompression runs outside the lock.
 */
#include "io/gzindex_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef enum gz_chunk_state {
	GZ_CHUNK_EMPTY = 0,
	GZ_CHUNK_LOADING = 1,
	GZ_CHUNK_READY = 2,
} gz_chunk_state;

typedef struct gz_chunk {
	gz_chunk_state state;
	uint32_t refs;	     /* readers copying out of data */
	unsigned char *data; /* READY: the chunk's bytes (owned) */
	size_t len;
	struct gz_chunk *prev, *next; /* LRU list of READY chunks, most recent first */
} gz_chunk;

typedef struct gz_src {
	nck_src *file;	    /* the gzip file (owned) */
	nck_gz_index *idx;  /* owned */
	uint64_t budget;    /* bytes of chunks kept */
	uint64_t used;	    /* bytes of READY chunks */
	uint64_t max_chunk; /* larger chunks bypass the cache */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a chunk left LOADING */
	gz_chunk *chunks;    /* one per checkpoint */
	gz_chunk *head, *tail;
} gz_src;

/* ---- LRU ---------------------------------------------------------------------- */

/* Unlinks `c` from the LRU list (lock held). */
static void gz_lru_unlink(gz_src *s, gz_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		s->tail = c->prev;
	c->prev = c->next = NULL;
}

/* Puts `c` at the head of the LRU list (lock held). */
static void gz_lru_push(gz_src *s, gz_chunk *c)
{
	c->prev = NULL;
	c->next = s->head;
	if (s->head)
		s->head->prev = c;
	s->head = c;
	if (!s->tail)
		s->tail = c;
}

/* Frees unreferenced chunks from the cold end while over budget (lock held). */
static void gz_evict(gz_src *s)
{
	gz_chunk *c = s->tail;

	while (c && s->used > s->budget) {
		gz_chunk *prev = c->prev;

		if (c->refs == 0) {
			gz_lru_unlink(s, c);
			s->used -= c->len;
			free(c->data);
			c->data = NULL;
			c->state = GZ_CHUNK_EMPTY;
		}
		c = prev;
	}
}

/* ---- chunks --------------------------------------------------------------------- */

/* Returns chunk `i` READY and referenced, decompressing it once. -EIO, -ENOMEM. */
static int gz_chunk_get(gz_src *s, size_t i, gz_chunk **out)
{
	gz_chunk *c = &s->chunks[i];
	size_t len =
	    (size_t)(nck_gz_index_point_out(s->idx, i + 1) - nck_gz_index_point_out(s->idx, i));
	unsigned char *data;
	int rc;

	pthread_mutex_lock(&s->lock);
	while (c->state == GZ_CHUNK_LOADING)
		pthread_cond_wait(&s->cond, &s->lock);
	if (c->state == GZ_CHUNK_READY) {
		c->refs++;
		gz_lru_unlink(s, c);
		gz_lru_push(s, c);
		pthread_mutex_unlock(&s->lock);
		*out = c;
		return 0;
	}
	c->state = GZ_CHUNK_LOADING;
	pthread_mutex_unlock(&s->lock);

	data = malloc(len ? len : 1);
	rc = data ? nck_gz_index_extract(s->idx, s->file, i, 0, data, len) : -ENOMEM;
	/* Damage that still inflates (a changed literal, a stored block) is
	 * caught by the chunk's CRC-32 recorded at index time. */
	if (rc == 0 && nck_gz_crc(0, data, len) != s->idx->points[i].crc)
		rc = -EIO;

	pthread_mutex_lock(&s->lock);
	if (rc < 0) {
		free(data);
		c->state = GZ_CHUNK_EMPTY;
	} else {
		c->data = data;
		c->len = len;
		c->refs = 1;
		c->state = GZ_CHUNK_READY;
		s->used += len;
		gz_lru_push(s, c);
		gz_evict(s);
		*out = c;
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Drops a reference taken by gz_chunk_get. */
static void gz_chunk_put(gz_src *s, gz_chunk *c)
{
	pthread_mutex_lock(&s->lock);
	c->refs--;
	if (c->refs == 0 && s->used > s->budget)
		gz_evict(s);
	pthread_mutex_unlock(&s->lock);
}

/* ---- nck_src callbacks ------------------------------------------------------------ */

/* Serves [off, off+len) chunk by chunk (len > 0, inside the stream). */
static int64_t gz_pread(void *impl, void *buf, size_t len, uint64_t off)
{
	gz_src *s = impl;
	unsigned char *dst = buf;
	size_t done = 0;
	int rc;

	while (done < len) {
		uint64_t pos = off + done;
		size_t i = nck_gz_index_find(s->idx, pos);
		uint64_t start = nck_gz_index_point_out(s->idx, i);
		uint64_t end = nck_gz_index_point_out(s->idx, i + 1);
		size_t n = end - pos < len - done ? (size_t)(end - pos) : len - done;
		gz_chunk *c;

		if (end <= pos)
			return -EIO; /* an index whose points do not cover the stream */
		if (end - start > s->max_chunk) {
			rc = nck_gz_index_extract(s->idx, s->file, i, pos - start, dst + done, n);
			if (rc < 0)
				return rc;
		} else {
			if ((rc = gz_chunk_get(s, i, &c)) < 0)
				return rc;
			memcpy(dst + done, c->data + (pos - start), n);
			gz_chunk_put(s, c);
		}
		done += n;
	}
	return (int64_t)len;
}

/* The gzip file is unchanged (identity, size, mtime). */
static int gz_check(void *impl)
{
	const gz_src *s = impl;

	return nck_src_check(s->file);
}

/* The gzip file's stat at open. */
static const struct stat *gz_stat(void *impl)
{
	const gz_src *s = impl;

	return nck_src_stat(s->file);
}

/* Releases the cache, the index and the file. */
static void gz_free(void *impl)
{
	gz_src *s = impl;

	if (!s)
		return;
	if (s->chunks) {
		for (size_t i = 0; i < nck_gz_index_points(s->idx); i++)
			free(s->chunks[i].data);
		free(s->chunks);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
	}
	nck_gz_index_free(s->idx);
	nck_src_close(s->file);
	free(s);
}

static const nck_src_vtab gz_vtab = {
    .pread = gz_pread,
    .check = gz_check,
    .stat = gz_stat,
    .free = gz_free,
};

int nck_src_new_gz_take(nck_src **out, nck_src *file, nck_gz_index *idx, uint64_t cache_size)
{
	gz_src *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s) {
		nck_gz_index_free(idx);
		nck_src_close(file);
		return -ENOMEM;
	}
	s->file = file;
	s->idx = idx;
	s->budget = cache_size ? cache_size : NCK_GZ_CACHE_DEFAULT;
	s->max_chunk = s->budget / 4;
	s->chunks = calloc(nck_gz_index_points(idx), sizeof(*s->chunks));
	if (!s->chunks) {
		gz_free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	return nck_src_new_impl_take(out, &gz_vtab, s, nck_gz_index_usize(idx), nck_src_name(file));
}
