/* SPDX-License-Identifier: MIT */
/*
 * The FUSE low-level operations of nemockptfs: thin handlers that decode the
 * request, call nck_vfs, and reply exactly once (libfuse passthrough_ll).
 *
 * Thread-safety: every handler may run on any worker thread at once; they
 * share only the immutable vfs.
 */
#ifndef NCK_FUSE_OPS_H
#define NCK_FUSE_OPS_H

#include <fuse_lowlevel.h>

#include <stdatomic.h>

#include "nemockpt/vfs.h"

/* The session's userdata. */
typedef struct nck_fuse_ctx {
	nck_vfs *vfs;           /* borrowed; immutable but for its open-handle list */
	char *mountpoint;       /* absolute, owned by the session; NULL if unknown */
	unsigned read_ahead_kb; /* applied once INIT is done; 0: leave the kernel's */
	atomic_flag tuned;      /* set by the first request after INIT */
} nck_fuse_ctx;

/* The operation table; the session's userdata must be an nck_fuse_ctx. */
extern const struct fuse_lowlevel_ops nck_fuse_ops;

/*
 * Sets /sys/class/bdi/<dev>/read_ahead_kb of the nemockpt mount at `dir` (an
 * absolute path), so that sequential reads arrive in larger requests (spec
 * fuse-techniques.md §7.4). Only root may; otherwise the kernel's default
 * stays (logged at debug level). Must run after the kernel processed the
 * INIT reply, which clamps the readahead to what it offered. Never fails.
 */
void nck_fuse_tune_read_ahead(const char *dir, unsigned kb);

#endif
