/* SPDX-License-Identifier: MIT */
/*
 * nck_layout: a synthesized file as a list of segments that tile it: bytes
 * in memory (headers), zeros (vocabulary padding), a window of a catalog
 * tensor (a rank's rows or columns, or the whole tensor), or bytes a
 * function computes (widened or quantized tensors). Every view file is a
 * layout, so a view only decides which segments a file has; reading,
 * gathering and zero-copy planning live here once.
 *
 * Reads either copy (nck_layout_read) or are planned (nck_layout_plan):
 * runs of a window that lie in a file-backed source come out as (fd, pos)
 * pieces to be spliced, memory segments as pointers, and everything else as
 * "copy" pieces that nck_layout_read fills.
 *
 * Ownership: segments are owned by the layout; the memory, tensors and
 * function arguments they point to are borrowed and must outlive it.
 * Thread-safety: built by one thread; reads are concurrent and lock-free
 * (functions of FN segments must be thread-safe).
 */
#ifndef NCK_VIEW_LAYOUT_H
#define NCK_VIEW_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/gather.h"
#include "nemockpt/catalog.h"

typedef enum nck_seg_kind {
	NCK_SEG_MEM = 0,  /* len bytes at mem */
	NCK_SEG_ZERO = 1, /* len zero bytes */
	NCK_SEG_WIN = 2,  /* bytes [pos, pos+len) of window [col0, col0+ncols) of tensor t */
	NCK_SEG_FN = 3,   /* bytes [pos, pos+len) of what fn(arg) produces */
} nck_seg_kind;

/* Produces bytes [pos, pos+len) of a computed segment. 0, -EIO, -ENOMEM. */
typedef int (*nck_seg_fn)(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			  size_t len);

typedef struct nck_seg {
	uint64_t off, len;   /* where the segment is in the file */
	nck_seg_kind kind;
	const void *mem;     /* MEM */
	const nck_tensor *t; /* WIN */
	uint64_t col0, ncols; /* WIN */
	uint64_t pos;        /* WIN, FN: first byte of the source the segment starts at */
	nck_seg_fn fn;       /* FN */
	const void *arg;     /* FN */
} nck_seg;

typedef struct nck_layout {
	nck_seg *segs;
	size_t n, cap;
	uint64_t size;       /* bytes of the file: the end of the last segment */
} nck_layout;

/* Appending segments (each starts where the file ends so far). 0 or -ENOMEM. */
int nck_layout_mem(nck_layout *l, const void *mem, uint64_t len);
int nck_layout_zero(nck_layout *l, uint64_t len);
/* Bytes [pos, pos+len) of a window of t (see catalog/gather.h). */
int nck_layout_win(nck_layout *l, const nck_tensor *t, uint64_t col0, uint64_t ncols,
		   uint64_t pos, uint64_t len);
/* The whole tensor. */
int nck_layout_tensor(nck_layout *l, const nck_tensor *t);
int nck_layout_fn(nck_layout *l, nck_seg_fn fn, const void *arg, uint64_t pos, uint64_t len);

/* Frees the segment table (not what it points to). NULL-safe. */
void nck_layout_dispose(nck_layout *l);

/* Copies bytes [off, off+len) of the file into buf. 0, -EINVAL past the
 * end, -EIO (a source failed or changed), -ENOMEM. */
int nck_layout_read(const nck_catalog *cat, const nck_layout *l, uint64_t off, void *buf,
		    size_t len);

typedef enum nck_piece_kind {
	NCK_PIECE_FD = 0,   /* len bytes of fd at pos: splice them */
	NCK_PIECE_MEM = 1,  /* len bytes at mem */
	NCK_PIECE_COPY = 2, /* bytes [pos, pos+len) of the file: fill with nck_layout_read */
	NCK_PIECE_SRC = 3,  /* len bytes at pos of the nck_src `mem`, which has no fd (a
			     * remote or gzip source): read it, or borrow its memory */
} nck_piece_kind;

/* Receives the pieces of a planned read, in file order. Returns 0, or a
 * negative errno to stop the planning (which then returns it). */
typedef int (*nck_piece_cb)(void *payload, nck_piece_kind kind, int fd, uint64_t pos,
			    const void *mem, size_t len);

/*
 * Calls `cb` for every source run of bytes [off, off+len) of the file, in
 * file order, the short runs of strided windows too (which
 * nck_layout_plan() copies rather than lists): what a prefetch asks the
 * sources for. Header and computed segments have none. 0, -EINVAL past the
 * end, or the callback's error.
 */
int nck_layout_sources(const nck_catalog *cat, const nck_layout *l, uint64_t off, size_t len,
		       nck_gather_cb cb, void *payload);

/* Plans bytes [off, off+len) as pieces; adjacent copy pieces are merged.
 * -EINVAL past the end, -EIO (a source changed), -ENOMEM, or the callback's error. */
int nck_layout_plan(const nck_catalog *cat, const nck_layout *l, uint64_t off, size_t len,
		    nck_piece_cb cb, void *payload);

#endif
