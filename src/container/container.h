/* SPDX-License-Identifier: MIT */
/*
 * nck_container: the member table of a checkpoint container (a tar archive
 * or a directory), built once by one pass over the container's metadata and
 * immutable afterwards.
 *
 * A gzip-compressed tar is read through a seek index (io/gzindex.h): c->src
 * is then the decompressed stream, entry offsets are offsets in it, and
 * nck_src_fd(c->src) is -1 (member bytes must be copied, not spliced).
 *
 * Each reader is a `struct nck_container_ops` in one registry array
 * (libarchive's pattern): bid() scores the first bytes of a file (or a
 * directory) without other I/O, the highest score wins, and a tie is an error
 * naming both readers. open() fills the entry table.
 *
 * Entries carry normalized relative paths: no leading "./" or "/", no empty,
 * "." or ".." components; the root itself is never an entry. Members whose
 * names are absolute or contain "..", links, device nodes and sparse members
 * are left out with a warning and counted in n_skipped. Of regular files
 * with the same path only the last is kept, as `tar -x` does, with a
 * warning naming it (and counted in n_skipped).
 *
 * Ownership: entries and their paths live in the container's arena and are
 * freed by nck_container_close().
 * Thread-safety: build on one thread; read-only afterwards.
 */
#ifndef NCK_CONTAINER_CONTAINER_H
#define NCK_CONTAINER_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "io/gzindex.h"
#include "io/remote.h"
#include "io/src.h"
#include "nemockpt/diag.h"
#include "util/arena.h"

typedef enum nck_entry_kind {
	NCK_ENTRY_FILE = 0,
	NCK_ENTRY_DIR = 1,
} nck_entry_kind;

typedef struct nck_entry {
	const char *path;   /* normalized relative path, arena-owned */
	nck_entry_kind kind;
	uint32_t mode;      /* permission bits as stored in the source */
	int64_t mtime_sec;  /* modification time */
	uint32_t mtime_nsec;
	uint64_t size;      /* bytes of data (files) */
	uint64_t offset;    /* tar: data offset in the archive file */
	struct stat st;     /* directory sources: identity of the file at scan time */
} nck_entry;

typedef struct nck_container nck_container;

/* Options of nck_container_open_opts(); zero fields take the defaults. */
typedef struct nck_container_opts {
	const char *cache_dir;  /* gzip index cache (borrowed, used during open only) */
	uint64_t gz_spacing;    /* gzip checkpoint spacing; 0: $NEMOCKPT_GZ_SPACING or 8 MiB */
	uint64_t gz_cache_size; /* decompressed-chunk cache of a gzip source; 0: 256 MiB */
	bool gz_no_persist;     /* keep gzip indexes in memory only */
	nck_remote_opts remote; /* http(s) sources (its cache_dir: the one above) */
} nck_container_opts;

typedef struct nck_container_ops {
	int version;       /* NCK_CONTAINER_OPS_VERSION */
	const char *name;  /* "tar", "directory", ... */
	/*
	 * Scores `head` (the first `len` bytes of a file; NULL and 0 for a
	 * directory). 0 means "not mine". Does no I/O.
	 */
	int (*bid)(const unsigned char *head, size_t len, bool is_dir);
	/*
	 * Fills c->entries from c->src (files) or c->dirfd (directories).
	 * Returns 0, -EBADMSG (malformed; diag names file and offset),
	 * -ENOTSUP (recognized but unsupported), -EIO or -ENOMEM.
	 */
	int (*open)(nck_container *c, nck_diag *diag);
} nck_container_ops;

#define NCK_CONTAINER_OPS_VERSION 1

struct nck_container {
	const nck_container_ops *ops;
	char *path;           /* source path as given (absolute after realpath) */
	nck_src *src;         /* archive bytes; NULL for directories */
	int dirfd;            /* directory sources; -1 otherwise */
	struct stat st;       /* stat of the source at open */
	nck_arena arena;      /* entries and paths */
	nck_entry *entries;   /* n_entries entries, in source order */
	size_t n_entries;
	size_t cap_entries;
	size_t n_skipped;     /* members left out with a warning */
	nck_container_opts opts; /* as given to open */
	nck_gz_report gz;     /* gzip sources: how the seek index was obtained */
	bool members_loaded;  /* gzip sources: the member table came from the cache */
	nck_src *remote;      /* http(s) sources: the object (borrowed from src or its gz) */
};

/*
 * Opens the container at `path` (a file, a directory, or an http:// or
 * https:// URL of a tarball, whose c->path is then the redacted URL): detects its kind by
 * bidding and builds its entry table. Errors as for ops->open, plus -ENOENT
 * and other open(2) errors, and -EBADMSG for an unrecognized file.
 */
int nck_container_open(nck_container **out, const char *path, nck_diag *diag);

/* nck_container_open() with options (`opts` may be NULL). */
int nck_container_open_opts(nck_container **out, const char *path, const nck_container_opts *opts,
			    nck_diag *diag);

/*
 * Like nck_container_open, over an existing source (takes ownership of `src`,
 * also on failure). Used by fuzzers and tests on memory sources. A gzip
 * source's index is kept in memory only.
 */
int nck_container_open_src_take(nck_container **out, nck_src *src, nck_diag *diag);

/*
 * Tells the container that the mount is built (the catalog read what it
 * needs): a remote source persists the ranges read so far, so that the next
 * mount of the unchanged object fetches none of them. Others: no-op.
 * Failures are warnings.
 */
void nck_container_seal(nck_container *c);

/* Releases the container, its source and its entries. NULL-safe. */
void nck_container_close(nck_container *c);

/*
 * Opens the backing file of a directory source's file entry beneath the
 * source root, never through a symlink, and checks it is the file that was
 * scanned. Returns an fd (the caller closes it), -EIO if the file changed or
 * cannot be opened, -ENOMEM, or -EINVAL for a tar container.
 */
int nck_container_member_fd(const nck_container *c, const nck_entry *e);

/*
 * A byte source for the data of file entry `e`: a slice of the archive for
 * tar containers, the opened file for directories. The caller closes it
 * before the container. Errors as nck_container_member_fd().
 */
int nck_container_member_src(nck_src **out, const nck_container *c, const nck_entry *e);

/*
 * Reads the whole data of file entry `e` (at most `max` bytes) into a
 * malloc'd, NUL-terminated buffer the caller frees. Errors: -EBADMSG when
 * larger than `max`, those of nck_container_member_src(), -EIO, -ENOMEM;
 * diag names the member.
 */
int nck_container_slurp(void **out, size_t *len_out, const nck_container *c, const nck_entry *e,
			uint64_t max, nck_diag *diag);

/*
 * The member table of a gzip tar, persisted next to its seek index
 * (members.c). save: 0 or a negative errno (the caller warns). load: 0 with
 * c->entries filled, -ENOENT when there is none, -EBADMSG when it does not
 * check out (c->entries left empty: walk the tar instead), -ENOMEM.
 */
int nck_members_save(const nck_container *c, const char *path);
int nck_members_load(nck_container *c, const char *path);

/* ---- helpers for readers ------------------------------------------------ */

/*
 * Normalizes a member name into *out (arena-allocated): strips "./" and
 * empty components. Returns 0, 1 when the name is the root itself (nothing
 * stored), -EPERM for absolute names or ".." components, -ENAMETOOLONG for a
 * component over 255 bytes, -ENOMEM.
 */
int nck_container_path_normalize(const char **out, nck_arena *arena, const char *name);

/* Most members a container may list: memory stays bounded by a listing
 * (a zarr directory of millions of chunk files, a tar of empty members).
 * Real checkpoints list thousands. */
#define NCK_CONTAINER_MAX_ENTRIES (256u << 10)

/* Appends a zeroed entry and returns it, or NULL when out of memory or
 * past NCK_CONTAINER_MAX_ENTRIES (see nck_container_add_error()). */
nck_entry *nck_container_add(nck_container *c);

/* The error of a failed nck_container_add(): -E2BIG with a line naming the
 * limit, or -ENOMEM. */
int nck_container_add_error(const nck_container *c, nck_diag *diag);

/* The registered readers, NULL-terminated (for tests and docs). */
extern const nck_container_ops *const nck_container_readers[];

extern const nck_container_ops nck_container_tar_ops;
extern const nck_container_ops nck_container_dir_ops;
extern const nck_container_ops nck_container_compressed_ops;
extern const nck_container_ops nck_container_gztar_ops;
/* s3://BUCKET/PREFIX/: not in the registry (no bytes to bid on); its
 * entries are objects at offsets of a listing source (io/remote.h). */
extern const nck_container_ops nck_container_s3dir_ops;

#endif
