/* SPDX-License-Identifier: MIT */
/*
 * What differs between the libfuse versions nemockptfs builds against:
 * Debian 12's 3.14 (32-bit conn->want, no passthrough, no shared mmap on
 * direct_io files) and 3.17 (the bundled build: 64-bit want_ext behind
 * fuse_set_feature_flag(), FUSE_CAP_PASSTHROUGH, FUSE_CAP_DIRECT_IO_ALLOW_MMAP).
 * Everything version-specific in src/fuse goes through this header, so both
 * code paths stay compiled in CI.
 */
#ifndef NCK_FUSE_COMPAT_H
#define NCK_FUSE_COMPAT_H

#include <fuse_lowlevel.h>

#include <stdbool.h>
#include <stdint.h>

#define NCK_FUSE_VER (FUSE_MAJOR_VERSION * 100 + FUSE_MINOR_VERSION)

/* Kernel passthrough (Linux 6.9+, libfuse 3.16+ API). */
#if defined(FUSE_CAP_PASSTHROUGH)
#define NCK_HAVE_PASSTHROUGH 1
#else
#define NCK_HAVE_PASSTHROUGH 0
#endif

/* Shared mmap of direct_io files (Linux 6.6+, libfuse 3.17). */
#if defined(FUSE_CAP_DIRECT_IO_ALLOW_MMAP)
#define NCK_HAVE_DIO_MMAP 1
#else
#define NCK_HAVE_DIO_MMAP 0
#endif

/* Asks for `flag` if the kernel offers it; true if it is now wanted. */
static inline bool nck_conn_want(struct fuse_conn_info *conn, uint64_t flag)
{
#if NCK_FUSE_VER >= 317
	return fuse_set_feature_flag(conn, flag);
#else
	if (!(conn->capable & (unsigned)flag))
		return false;
	conn->want |= (unsigned)flag;
	return true;
#endif
}

/* Stops asking for `flag`. */
static inline void nck_conn_unwant(struct fuse_conn_info *conn, uint64_t flag)
{
#if NCK_FUSE_VER >= 317
	fuse_unset_feature_flag(conn, flag);
#else
	conn->want &= ~(unsigned)flag;
#endif
}

#endif
