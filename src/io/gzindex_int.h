/* SPDX-License-Identifier: MIT */
/*
 * The body of nck_gz_index, shared by gzindex.c (build, extract),
 * gzpersist.c (load, save) and gzsrc.c (cached source).
 * Thread-safety: immutable once built or loaded.
 */
#ifndef NCK_IO_GZINDEX_INT_H
#define NCK_IO_GZINDEX_INT_H

#include "io/gzindex.h"

/* Point flag: the start of a gzip member (inflate with gzip framing, no window). */
#define NCK_GZ_PT_MEMBER 1u
/* nck_gz_point.window of a point without a window. */
#define NCK_GZ_NO_WINDOW UINT32_MAX

typedef struct nck_gz_point {
	uint64_t in;	 /* compressed offset of the first byte not yet consumed */
	uint64_t out;	 /* uncompressed offset */
	uint32_t window; /* index into windows, or NCK_GZ_NO_WINDOW */
	uint32_t crc;	 /* CRC-32 of the output from here to the next point */
	uint8_t bits;	 /* unused high bits of byte in-1 that belong to the stream (0..7) */
	uint8_t flags;	 /* NCK_GZ_PT_* */
} nck_gz_point;

struct nck_gz_index {
	uint64_t csize;	      /* size of the gzip file */
	uint64_t usize;	      /* size of the decompressed stream */
	uint64_t spacing;     /* requested output between checkpoints */
	uint64_t fingerprint; /* nck_gz_fingerprint() of the file; 0 if unknown */
	nck_gz_point *points; /* n_points, ascending in and out; points[0] is (0, 0) */
	size_t n_points, cap_points;
	unsigned char *windows; /* n_windows * NCK_GZ_WINDOW bytes, oldest byte first */
	size_t n_windows, cap_windows;
};

/* CRC-32 (zlib) of `len` bytes of any size, continuing from `crc`. */
uint32_t nck_gz_crc(uint32_t crc, const void *buf, size_t len);

#endif
