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

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "nemockpt/vfs.h"

/* Page-cache policy of files that are not passed through (-o cache=). */
typedef enum nck_fuse_cache {
	NCK_FUSE_CACHE_AUTO = 0, /* per kind of file, as measured (docs/DECISIONS.md) */
	NCK_FUSE_CACHE_KERNEL,   /* FUSE page cache, kept across opens (keep_cache) */
	NCK_FUSE_CACHE_DIRECT,   /* direct_io: every read reaches the daemon; mmap allowed */
} nck_fuse_cache;

typedef struct nck_fuse_backing nck_fuse_backing;

/* The session's userdata. */
typedef struct nck_fuse_ctx {
	nck_vfs *vfs;           /* borrowed; immutable but for its open-handle list */
	char *mountpoint;       /* absolute, owned by the session; NULL if unknown */
	unsigned read_ahead_kb; /* applied once INIT is done; 0: leave the kernel's */
	atomic_flag tuned;      /* set by the first request after INIT */
	nck_fuse_cache cache;   /* -o cache= */
	bool want_passthrough;  /* not -o nopassthrough */
	atomic_bool passthrough; /* negotiated at INIT and no backing open refused yet */
	atomic_bool dio_mmap;   /* FUSE_CAP_DIRECT_IO_ALLOW_MMAP negotiated */
	pthread_mutex_t backing_lock; /* guards `backing` */
	nck_fuse_backing *backing; /* backing ids of passed-through inodes with opens */
	unsigned max_write;     /* the negotiated largest request (logged) */
} nck_fuse_ctx;

/* The line `nemockptfs -V` and the start-up log print about the read paths
 * this build can use. */
const char *nck_fuse_features(void);

/* Frees the records of passed-through inodes whose release never came (the
 * kernel sends none for files still open when the connection ends). Call
 * after the session loop. */
void nck_fuse_backing_free(nck_fuse_ctx *ctx);

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

/* Finds the device ("maj:min") of the newest nemockpt mount at `dir` (an
 * absolute path) in /proc/self/mountinfo, without touching the mount.
 * Returns 0 or -ENOENT. */
int nck_fuse_find_mount(char *dev, size_t size, const char *dir);

#endif
