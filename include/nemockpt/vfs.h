/* SPDX-License-Identifier: MIT */
/*
 * nck_vfs: the mounted tree of one checkpoint, independent of FUSE.
 *
 * nck_vfs_open() builds everything before a mount appears: the container's
 * member table, then an immutable inode table in which the children of each
 * directory hold consecutive inode numbers, sorted by name, so a lookup is a
 * binary search and a readdir is an index range. Inode 1 is the mount root:
 *
 *   /info.json   a JSON summary of the checkpoint
 *   /raw/        the container's files exactly (tar members or directory files)
 *   /merged/     the weights as model.safetensors (sharded above shard_size, with
 *                model.safetensors.index.json), the config and the tokenizer
 *   /tensors/    each weight of the catalog as <name>.npy (bf16/fp8 widened to f32)
 *   /ranks/tp<T>pp<P>/rank<R>.safetensors   each rank's tensors at that layout
 *   /nemo/tp<T>pp<P>/   an extracted .nemo at that layout
 *   /qnemo/{bf16,fp8,int4_awq}/tp<T>pp<P>/   TensorRT-LLM checkpoints, quantized when read
 *
 * Reads are answered as extents: byte ranges of a backing fd (to be sent
 * zero-copy), of memory owned by the vfs, or of a byte source that must be
 * copied out with nck_vfs_extent_read() (members of a gzip archive). A
 * backing file that changed since the mount makes reads fail with -EIO.
 *
 * Ownership: all names, nodes and memory extents belong to the vfs and stay
 * valid until nck_vfs_close(). Open file handles belong to the caller.
 * Thread-safety: after nck_vfs_open() returns, every function may be called
 * concurrently from any thread; the tree is never mutated, and the list of
 * open handles has its own lock.
 */
#ifndef NCK_NEMOCKPT_VFS_H
#define NCK_NEMOCKPT_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "nemockpt/catalog.h"
#include "nemockpt/diag.h"
#include "nemockpt/loan.h"

#define NCK_VFS_ROOT_INO 1

typedef struct nck_vfs nck_vfs;
typedef struct nck_vfs_file nck_vfs_file;

/* Presentation options: owner and permission mask of every node; gzip
 * index and cache settings. Zero fields take the defaults. */
typedef struct nck_vfs_opts {
	uid_t uid;
	gid_t gid;
	mode_t umask;         /* with umask_set: removed from 0555 (dirs) and 0444/0555 (files) */
	bool umask_set;       /* else: the source's bits less write bits (views: their sources') */
	bool require_catalog; /* a catalog error fails the open (CLI); else raw/ only */
	uint64_t shard_size;  /* merged/ safetensors shard size; 0: 5 GiB */
	const char *cache_dir; /* gzip index directory; NULL: $XDG_CACHE_HOME/nemockpt,
				* ~/.cache/nemockpt, or /var/cache/nemockpt for root */
	uint64_t cache_size;  /* bytes of decompressed gzip data kept; 0: 256 MiB */
	uint64_t gz_spacing;  /* gzip checkpoint spacing; 0: $NEMOCKPT_GZ_SPACING or 8 MiB */
	uint64_t group_size;  /* qnemo/int4_awq block size; 0: 128 */
	const char *calib;    /* qnemo/fp8 activation calibration (JSON file), or NULL */
	const char *gpu;      /* quantization backend: NULL/"auto", "off", or a device number */
	/* http(s) sources; zero fields take the defaults (see the man page) */
	const char *token_file;     /* bearer token; NULL: $HF_TOKEN for Hugging Face */
	const char *ca_file;        /* CA bundle for https */
	uint64_t remote_cache_size; /* bytes of fetched blocks kept; 0: 256 MiB */
	uint64_t disk_cache_size;   /* remote blocks kept under cache_dir; 0: none */
	unsigned retries;           /* retries of a failed request; 0: 5, UINT_MAX: none */
	unsigned timeout;           /* connect/stall timeout, seconds; 0: 30 */
	const char *endpoint;       /* s3: S3-compatible endpoint URL, or NULL */
	bool path_style;            /* s3: path-style addressing on AWS */
} nck_vfs_opts;

typedef enum nck_extent_kind {
	NCK_EXTENT_FD = 0,  /* `len` bytes of `fd` at `pos` */
	NCK_EXTENT_MEM = 1, /* `len` bytes at `mem` (borrowed from the vfs) */
	NCK_EXTENT_SRC = 2, /* `len` bytes at `pos` of `src`: copy with nck_vfs_extent_read() */
	NCK_EXTENT_GEN = 3, /* `len` bytes at `pos` computed by the vfs (views): the same */
} nck_extent_kind;

typedef struct nck_extent {
	nck_extent_kind kind;
	int fd;
	uint64_t pos;
	const void *mem;
	const void *src;    /* NCK_EXTENT_SRC: an opaque byte source of the vfs */
	size_t len;
} nck_extent;

/*
 * Opens the checkpoint at `source` (a tar file or a directory) and builds
 * the tree. Returns 0 or a negative errno, with the cause (file, offset,
 * message) in diag: -ENOENT, -EBADMSG, -ENOTSUP, -EIO, -ENOMEM, ...
 */
int nck_vfs_open(nck_vfs **out, const char *source, const nck_vfs_opts *opts, nck_diag *diag);

/* Releases the tree, closes handles still open and the source. NULL-safe.
 * No other call may run on the vfs meanwhile. */
void nck_vfs_close(nck_vfs *vfs);

/* Finds `name` in directory `parent`. In ranks/ and nemo/, a valid
 * "tp<T>pp<P>" is built on its first lookup (metadata only). -ENOENT,
 * -ENOTDIR, -ENOMEM. */
int nck_vfs_lookup(nck_vfs *vfs, uint64_t parent, const char *name, uint64_t *ino_out);

/* Fills *st for `ino`. -ENOENT. */
int nck_vfs_getattr(const nck_vfs *vfs, uint64_t ino, struct stat *st);

/*
 * The entry at position `index` of directory `dir`: 0 is ".", 1 is "..",
 * then the children by name. -ENOENT past the end, -ENOTDIR. In ranks/ and
 * nemo/ the listed layouts have no inode until looked up: *ino_out is 0.
 */
int nck_vfs_readdir(const nck_vfs *vfs, uint64_t dir, uint64_t index, const char **name_out,
		    uint64_t *ino_out);

/*
 * Opens `ino` for reading. `flags` are open(2) flags: any write access gives
 * -EROFS; a directory gives -EISDIR; a backing file that changed gives -EIO.
 * The handle is freed by nck_vfs_file_close().
 */
int nck_vfs_file_open(nck_vfs_file **out, nck_vfs *vfs, uint64_t ino, int flags);

/* Closes a handle (also done by nck_vfs_close for the ones left). NULL-safe. */
void nck_vfs_file_close(nck_vfs_file *file);

/*
 * Plans a read of [off, off+len) as at most `max` extents in *ext; *n_out is
 * their count (0 at or past the end of the file). Returns 0, or -EIO when the
 * backing file changed since the mount. No bytes are copied.
 */
int nck_vfs_read(const nck_vfs *vfs, const nck_vfs_file *file, uint64_t off, size_t len,
		 nck_extent *ext, size_t max, size_t *n_out);

/*
 * Copies the bytes of an NCK_EXTENT_SRC extent into `buf` (ext->len bytes;
 * decompressing them if needed). Returns 0, -EIO (damaged or changed
 * source) or -ENOMEM. Thread-safe.
 */
int nck_vfs_extent_read(const nck_extent *ext, void *buf);

/*
 * Lends the bytes of an NCK_EXTENT_SRC extent as the source's own memory
 * (a remote source's cached blocks), so a reply is written from there
 * with no copy. 0 (give it back with nck_vfs_loan_return() once the reply
 * is written), -ENOTSUP when the source cannot (use nck_vfs_extent_read()),
 * -EIO or -ENOMEM. Thread-safe.
 */
int nck_vfs_extent_lend(const nck_extent *ext, nck_loan *loan);

/* Gives back a loan of nck_vfs_extent_lend(). */
void nck_vfs_loan_return(nck_loan *loan);

/* The checkpoint's tensor catalog, or NULL when it could not be built
 * (the reason is in info.json). Borrowed. */
const nck_catalog *nck_vfs_catalog(const nck_vfs *vfs);

/* The info.json document (NUL-terminated, borrowed). */
const char *nck_vfs_info_json(const nck_vfs *vfs);

/* Callback for nck_vfs_foreach_member: path is relative to raw/. */
typedef void (*nck_vfs_member_cb)(const char *path, uint64_t size, uint64_t offset, void *payload);

/* Calls `cb` for every regular file under raw/, in inode (breadth-first, sorted) order. */
void nck_vfs_foreach_member(const nck_vfs *vfs, nck_vfs_member_cb cb, void *payload);

/* Filesystem totals for statfs: number of nodes and bytes of regular files. */
void nck_vfs_totals(const nck_vfs *vfs, uint64_t *nodes_out, uint64_t *bytes_out);

#endif
