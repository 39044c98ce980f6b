/* SPDX-License-Identifier: MIT */
/*
 * Files of the cache directory written whole or not at all: the one
 * helper of gzip indexes (gzpersist.c), remote mount-time records and
 * remote data blocks (remote.c, rdisk.c).
 *
 * Thread-safety: reentrant; concurrent writers of one path each rename a
 * temporary file of their own, and the last rename wins.
 */
#ifndef NCK_IO_AFILE_H
#define NCK_IO_AFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One piece of a file's contents. */
typedef struct nck_apart {
	const void *data;
	size_t len;
} nck_apart;

/* Creates `dir` and its missing parents (mode 0700); 0 or -errno. */
int nck_mkdirs(const char *dir);

/*
 * Writes the `n` parts to a temporary file beside `path` (named
 * ".PREFIX.XXXXXX", so that directory scans can tell it apart), sets
 * `mode`, and renames it onto `path`. With `durable`, the file and then
 * the directory are synced. The directory must exist. 0, or -errno (the
 * temporary file is removed; `path` is untouched).
 */
int nck_afile_write(const char *path, const char *prefix, const nck_apart *parts, size_t n,
		    mode_t mode, bool durable);

#endif
