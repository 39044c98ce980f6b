/* SPDX-License-Identifier: MIT */
/*
 * nck_gz_index: a zran-style seek index over a gzip file, and an nck_src that
 * reads the decompressed stream at any offset through it.
 *
 * The index is built with zlib in one streaming pass. It holds checkpoints:
 * a compressed position (byte + 0..7 bits), the uncompressed offset there,
 * and the 32 KiB of output before it (the deflate dictionary). Checkpoints
 * sit at deflate block boundaries about every `spacing` bytes of output, and
 * at the start of every gzip member (those need no window: a member starts
 * with an empty dictionary). Concatenated (multi-member) gzip is one stream.
 * Technique: zlib's examples/zran.c (Mark Adler); format: RFC 1951 (deflate),
 * RFC 1952 (gzip members, CRC-32 and ISIZE trailer).
 *
 * Indexes persist in a cache directory, one file per archive, named by a
 * content fingerprint (never by path), written atomically and verified on
 * load (magic, version, header and payload CRC-32, structural checks); a
 * stale or damaged file is rebuilt with a warning. On-disk layout: gzindex.c.
 *
 * The gz source (nck_src_new_gz_take) decompresses whole chunks (checkpoint
 * to next checkpoint) into a bounded LRU cache; concurrent readers of one
 * chunk wait for a single decompression (per-chunk state, mutex + condvar).
 *
 * Ownership: an index owns its points and windows; the gz source owns the
 * index, the file source and the cache.
 * Thread-safety: building, loading and saving run on one thread; an index is
 * immutable afterwards. The gz source may be read from any thread.
 */
#ifndef NCK_IO_GZINDEX_H
#define NCK_IO_GZINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/src.h"
#include "nemockpt/diag.h"

/* Deflate's largest back-reference distance (RFC 1951 §3.2.5). */
#define NCK_GZ_WINDOW 32768u
/* Default uncompressed distance between checkpoints. */
#define NCK_GZ_SPACING_DEFAULT (8ull << 20)
/* Default bound of the decompressed-chunk cache of one gz source. */
#define NCK_GZ_CACHE_DEFAULT (256ull << 20)

typedef struct nck_gz_index nck_gz_index;

/* Options of nck_gz_index_open(); zero fields take the defaults. */
typedef struct nck_gz_opts {
	const char *cache_dir; /* where indexes persist; NULL: XDG/HOME/var default */
	uint64_t spacing;      /* bytes of output between checkpoints (>= 64 KiB) */
	bool no_persist;       /* keep the index in memory only */
} nck_gz_opts;

/* What nck_gz_index_open() did, for info.json. */
typedef struct nck_gz_report {
	bool active;	 /* the container is gzip-compressed */
	bool loaded;	 /* the index came from the cache */
	bool saved;	 /* a built index was written to the cache */
	unsigned builds; /* full decompression passes made (0 or 1) */
	size_t checkpoints;
	uint64_t compressed_bytes;
	uint64_t fingerprint;
	char index_path[1024]; /* "" when not persisted */
} nck_gz_report;

/*
 * Builds the index of the gzip file `file` in one pass. `spacing` 0 means
 * NCK_GZ_SPACING_DEFAULT. Shows progress for files of 64 MiB and more
 * (a redrawn line on a terminal, else an INFO line every 5 s).
 * Errors: -EBADMSG (not gzip, corrupt or truncated data; diag has the
 * compressed offset), -EIO, -ENOMEM, -EOVERFLOW.
 */
int nck_gz_index_build(nck_gz_index **out, const nck_src *file, uint64_t spacing, nck_diag *diag);

/*
 * Loads an index written by nck_gz_index_save() from `ifile` and checks it
 * belongs to an archive of `csize` bytes with `fingerprint`. Never trusts
 * the file: -EBADMSG for anything malformed, stale or damaged (diag says
 * what), -ENOMEM, -EOVERFLOW.
 */
int nck_gz_index_load(nck_gz_index **out, const nck_src *ifile, uint64_t csize,
		      uint64_t fingerprint, nck_diag *diag);

/*
 * Writes the index to `path` atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. The directory is
 * created (mode 0700) if missing. Errors: negative errno of the failing call.
 */
int nck_gz_index_save(const nck_gz_index *idx, const char *path, nck_diag *diag);

/*
 * The content fingerprint of a gzip file: FNV-1a 64 over its size, its
 * first and last MiB and the first 4 KiB of its decompressed stream.
 * Errors: -EIO.
 */
int nck_gz_fingerprint(uint64_t *out, const nck_src *file);

/*
 * The cache directory: `dir` if given, else $XDG_CACHE_HOME/nemockpt, else
 * $HOME/.cache/nemockpt (non-root), else /var/cache/nemockpt.
 * -ENAMETOOLONG when it does not fit in `size`.
 */
int nck_gz_cache_dir(char *buf, size_t size, const char *dir);

/*
 * Finds (loads) or builds the index of `file`, persisting a built one
 * unless opts->no_persist; fills *report. A damaged cached index is rebuilt
 * with a warning; an unwritable cache is a warning. Errors: those of
 * nck_gz_index_build().
 */
int nck_gz_index_open(nck_gz_index **out, nck_gz_report *report, const nck_src *file,
		      const nck_gz_opts *opts, nck_diag *diag);

/* Releases an index. NULL-safe. */
void nck_gz_index_free(nck_gz_index *idx);

/* How many chunk decompressions this process has started (for info.json:
 * a mount that loads its index and member table starts none). Thread-safe. */
unsigned long nck_gz_extract_count(void);

/* Number of checkpoints. */
size_t nck_gz_index_points(const nck_gz_index *idx);

/* Size of the decompressed stream. */
uint64_t nck_gz_index_usize(const nck_gz_index *idx);

/*
 * A source of the decompressed stream of `file` through `idx` (takes
 * ownership of both, also on failure). `cache_size` bounds the chunk cache
 * (0: NCK_GZ_CACHE_DEFAULT). pread of damaged data gives -EIO for that
 * range only; nck_src_check() checks the gzip file's identity; nck_src_fd()
 * is -1 (no zero-copy). -ENOMEM.
 */
int nck_src_new_gz_take(nck_src **out, nck_src *file, nck_gz_index *idx, uint64_t cache_size);

/* ---- for the gz source (gzsrc.c) ------------------------------------------ */

/*
 * Inflates from checkpoint `point`: discards `skip` output bytes, then
 * writes `len` bytes to `buf`. Returns 0, or -EIO on damaged or missing
 * data, -ENOMEM. Thread-safe (no shared state).
 */
int nck_gz_index_extract(const nck_gz_index *idx, const nck_src *file, size_t point, uint64_t skip,
			 void *buf, size_t len);

/* The checkpoint at or before uncompressed offset `off` (off < usize). */
size_t nck_gz_index_find(const nck_gz_index *idx, uint64_t off);

/* Uncompressed offset of checkpoint `i`; usize for i == n_points. */
uint64_t nck_gz_index_point_out(const nck_gz_index *idx, size_t i);

#endif
