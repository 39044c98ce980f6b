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

/* The operation table; the session's userdata must be the nck_vfs. */
extern const struct fuse_lowlevel_ops nck_fuse_ops;

#endif
