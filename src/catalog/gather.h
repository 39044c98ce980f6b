/* SPDX-License-Identifier: MIT */
/*
 * The gather engine: turns a byte range of a tensor window into runs of
 * source bytes. A window is columns [col0, col0+ncols) of the last
 * dimension, with every index of the other dimensions: the whole tensor
 * (col0 0, ncols the last extent), or the dim-1 slice a row-parallel rank
 * holds. Its bytes are row-major. Each run is a range of one source that is
 * contiguous both there and in the window; runs come in window order and
 * are merged while both stay contiguous, so a rank slice saved at the same
 * TP is one run per request, and views can send runs of a file-backed
 * source zero-copy or pread them into a buffer.
 *
 * Thread-safety: pure over the immutable catalog; callbacks run on the
 * calling thread.
 */
#ifndef NCK_CATALOG_GATHER_H
#define NCK_CATALOG_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "io/src.h"
#include "nemockpt/catalog.h"

/* One run: `len` bytes at `pos` of `src` are bytes [dst, dst+len) of the
 * requested range. Returns 0 to go on, a negative errno to stop. */
typedef int (*nck_gather_cb)(void *payload, const nck_src *src, uint64_t pos, uint64_t dst,
			     size_t len);

/*
 * Calls `cb` for the runs of bytes [off, off+len) of the window [col0,
 * col0+ncols) of `t`, in order. Returns 0; -EINVAL for a range or window
 * outside the tensor; -EIO when the chunks leave part of the range
 * uncovered (a damaged catalog) or a source changed since it was opened;
 * or the callback's error. -ENOMEM.
 */
int nck_catalog_gather(const nck_catalog *cat, const nck_tensor *t, uint64_t col0, uint64_t ncols,
		       uint64_t off, uint64_t len, nck_gather_cb cb, void *payload);

/* Copies bytes [off, off+len) of the window into buf (pread of every run). */
int nck_catalog_read_window(const nck_catalog *cat, const nck_tensor *t, uint64_t col0,
			    uint64_t ncols, uint64_t off, void *buf, size_t len);

#endif
