/* SPDX-License-Identifier: MIT */
/*
 * nck_layout (see layout.h): segment table, copying reader, and the read
 * planner that hands file-backed runs out zero-copy.
 */
#include "view/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/gather.h"
#include "util/grow.h"

/* Runs shorter than this are copied: splicing a few bytes costs more than
 * copying them, and keeps the reply's buffer count low. */
#define LAYOUT_MIN_SPLICE 4096

static nck_seg *layout_push(nck_layout *l, nck_seg_kind kind, uint64_t len)
{
	nck_seg *s;

	if (nck_grow((void **)&l->segs, &l->cap, l->n, sizeof(*s), 8) < 0)
		return NULL;
	s = &l->segs[l->n++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->off = l->size;
	s->len = len;
	l->size += len;
	return s;
}

int nck_layout_mem(nck_layout *l, const void *mem, uint64_t len)
{
	nck_seg *s;

	if (len == 0)
		return 0;
	if (!(s = layout_push(l, NCK_SEG_MEM, len)))
		return -ENOMEM;
	s->mem = mem;
	return 0;
}

int nck_layout_zero(nck_layout *l, uint64_t len)
{
	if (len == 0)
		return 0;
	return layout_push(l, NCK_SEG_ZERO, len) ? 0 : -ENOMEM;
}

int nck_layout_win(nck_layout *l, const nck_tensor *t, uint64_t col0, uint64_t ncols,
		   uint64_t pos, uint64_t len)
{
	nck_seg *s;

	if (len == 0)
		return 0;
	if (!(s = layout_push(l, NCK_SEG_WIN, len)))
		return -ENOMEM;
	s->t = t;
	s->col0 = col0;
	s->ncols = ncols;
	s->pos = pos;
	return 0;
}

int nck_layout_tensor(nck_layout *l, const nck_tensor *t)
{
	return nck_layout_win(l, t, 0, nck_tensor_cols(t), 0, nck_tensor_bytes(t));
}

int nck_layout_fn(nck_layout *l, nck_seg_fn fn, const void *arg, uint64_t pos, uint64_t len)
{
	nck_seg *s;

	if (len == 0)
		return 0;
	if (!(s = layout_push(l, NCK_SEG_FN, len)))
		return -ENOMEM;
	s->fn = fn;
	s->arg = arg;
	s->pos = pos;
	return 0;
}

void nck_layout_dispose(nck_layout *l)
{
	if (!l)
		return;
	free(l->segs);
	memset(l, 0, sizeof(*l));
}

/* The index of the segment that holds byte `off` (< size). */
static size_t layout_find(const nck_layout *l, uint64_t off)
{
	size_t lo = 0, hi = l->n;

	while (lo + 1 < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->segs[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Copies bytes [in, in+n) of segment s. */
static int layout_seg_read(const nck_catalog *cat, const nck_seg *s, uint64_t in, void *buf,
			   size_t n)
{
	switch (s->kind) {
	case NCK_SEG_MEM:
		memcpy(buf, (const char *)s->mem + in, n);
		return 0;
	case NCK_SEG_ZERO:
		memset(buf, 0, n);
		return 0;
	case NCK_SEG_WIN:
		return nck_catalog_read_window(cat, s->t, s->col0, s->ncols, s->pos + in, buf, n);
	case NCK_SEG_FN:
		return s->fn(cat, s->arg, s->pos + in, buf, n);
	}
	return -EINVAL;
}

/* What a walk over the segments of a byte range does with each piece:
 * bytes [in, in+n) of segment s, at file offset `off`. */
typedef int (*layout_step_fn)(const nck_seg *s, uint64_t in, size_t n, uint64_t off, void *arg);

/* Walks the segments of file bytes [off, off+len) in order; stops at the
 * first error. -EINVAL past the end. */
static int layout_walk(const nck_layout *l, uint64_t off, size_t len, layout_step_fn step,
		       void *arg)
{
	int rc = 0;

	if (off > l->size || len > l->size - off)
		return -EINVAL;
	for (size_t i = len ? layout_find(l, off) : l->n; len > 0 && i < l->n && rc == 0; i++) {
		const nck_seg *s = &l->segs[i];
		uint64_t in = off - s->off, left = s->len - in;
		size_t n = left < len ? (size_t)left : len;

		rc = step(s, in, n, off, arg);
		off += n;
		len -= n;
	}
	return rc;
}

typedef struct layout_reader {
	const nck_catalog *cat;
	unsigned char *p;
} layout_reader;

static int layout_read_step(const nck_seg *s, uint64_t in, size_t n, uint64_t off, void *arg)
{
	layout_reader *rd = arg;
	int rc = layout_seg_read(rd->cat, s, in, rd->p, n);

	(void)off;
	rd->p += n;
	return rc < 0 ? rc : 0;
}

int nck_layout_read(const nck_catalog *cat, const nck_layout *l, uint64_t off, void *buf,
		    size_t len)
{
	layout_reader rd = { .cat = cat, .p = buf };

	return layout_walk(l, off, len, layout_read_step, &rd);
}

/* The planner's state: a pending copy piece, merged while adjacent. */
typedef struct layout_planner {
	const nck_catalog *cat;
	nck_piece_cb cb;
	void *payload;
	uint64_t copy_pos, copy_len;
	uint64_t file_at; /* file offset of the window run being planned (its dst 0) */
	uint64_t stop_at; /* where a window's planning stopped (its dst) */
} layout_planner;

/* Hands the pending copy piece to the callback. */
static int layout_flush(layout_planner *pl)
{
	int rc = 0;

	if (pl->copy_len)
		rc = pl->cb(pl->payload, NCK_PIECE_COPY, -1, pl->copy_pos, NULL, (size_t)pl->copy_len);
	pl->copy_len = 0;
	return rc;
}

static int layout_put_copy(layout_planner *pl, uint64_t pos, uint64_t len)
{
	int rc;

	if (pl->copy_len && pl->copy_pos + pl->copy_len == pos) {
		pl->copy_len += len;
		return 0;
	}
	if ((rc = layout_flush(pl)) < 0)
		return rc;
	pl->copy_pos = pos;
	pl->copy_len = len;
	return 0;
}

static int layout_put(layout_planner *pl, nck_piece_kind kind, int fd, uint64_t pos,
		      const void *mem, size_t len)
{
	int rc = layout_flush(pl);

	return rc < 0 ? rc : pl->cb(pl->payload, kind, fd, pos, mem, len);
}

/* Stops the planning of a window at its first short run (internal). */
#define LAYOUT_STOP ECANCELED

/* A gather run of a window segment: spliced when file-backed and large,
 * handed on as a source run when large in a source without an fd. A
 * short run means a strided window (row-parallel columns, a transposed
 * chunk) whose runs are all short: the rest of the segment is copied, so
 * it is not walked run by run twice. */
static int layout_run(void *payload, const nck_src *src, uint64_t pos, uint64_t dst, size_t len)
{
	layout_planner *pl = payload;
	int fd = nck_src_fd(src);

	if (len < LAYOUT_MIN_SPLICE) {
		pl->stop_at = dst;
		return -LAYOUT_STOP;
	}
	if (fd < 0)
		return layout_put(pl, NCK_PIECE_SRC, -1, pos, src, len);
	return layout_put(pl, NCK_PIECE_FD, fd, nck_src_base(src) + pos, NULL, len);
}

typedef struct layout_sourcer {
	const nck_catalog *cat;
	nck_gather_cb cb;
	void *payload;
} layout_sourcer;

static int layout_sources_step(const nck_seg *s, uint64_t in, size_t n, uint64_t off, void *arg)
{
	layout_sourcer *so = arg;

	(void)off;
	if (s->kind != NCK_SEG_WIN)
		return 0;
	return nck_catalog_gather(so->cat, s->t, s->col0, s->ncols, s->pos + in, n, so->cb,
				  so->payload);
}

int nck_layout_sources(const nck_catalog *cat, const nck_layout *l, uint64_t off, size_t len,
		       nck_gather_cb cb, void *payload)
{
	layout_sourcer so = { .cat = cat, .cb = cb, .payload = payload };

	return layout_walk(l, off, len, layout_sources_step, &so);
}

static int layout_plan_step(const nck_seg *s, uint64_t in, size_t n, uint64_t off, void *arg)
{
	layout_planner *pl = arg;
	int rc;

	if (s->kind == NCK_SEG_MEM)
		return layout_put(pl, NCK_PIECE_MEM, -1, 0, (const char *)s->mem + in, n);
	if (s->kind != NCK_SEG_WIN)
		return layout_put_copy(pl, off, n);
	pl->file_at = off;
	rc = nck_catalog_gather(pl->cat, s->t, s->col0, s->ncols, s->pos + in, n, layout_run, pl);
	return rc == -LAYOUT_STOP ? layout_put_copy(pl, off + pl->stop_at, n - pl->stop_at) : rc;
}

int nck_layout_plan(const nck_catalog *cat, const nck_layout *l, uint64_t off, size_t len,
		    nck_piece_cb cb, void *payload)
{
	layout_planner pl = { .cat = cat, .cb = cb, .payload = payload };
	int rc = layout_walk(l, off, len, layout_plan_step, &pl);

	return rc < 0 ? rc : layout_flush(&pl);
}
