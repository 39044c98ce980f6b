/* SPDX-License-Identifier: MIT */
/*
 * nck_st: the header of a safetensors file: `[u64le N][N bytes of JSON][data]`,
 * parsed into a table of tensors with absolute data offsets. No tensor bytes
 * are read; only the 8-byte size and the JSON header are.
 *
 * Validation follows the reference reader, huggingface/safetensors
 * `safetensors/src/tensor.rs` (`SafeTensors::read_metadata`,
 * `Metadata::validate`, safetensors 0.8), as summarised in
 * shared/spec/tensor-formats.md §5: N <= 100,000,000; the header is a JSON
 * object; "__metadata__" maps strings to strings; every tensor has a known
 * dtype, a shape and [begin, end) data offsets whose length is the shape's
 * byte size; sorted by offset, the tensors cover the data section exactly,
 * without holes, overlaps or trailing bytes. Stricter than the reference:
 * duplicate JSON keys are refused (the README disallows them; serde would
 * keep the last).
 *
 * Ownership: an nck_st_file owns everything it points to (one arena).
 * Thread-safety: nck_st_open runs on one thread; an opened file is read-only
 * and may be shared.
 */
#ifndef NCK_FORMAT_SAFETENSORS_H
#define NCK_FORMAT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "io/src.h"
#include "nemockpt/diag.h"
#include "nemockpt/dtype.h"
#include "util/arena.h"

/* Largest header accepted: `MAX_HEADER_SIZE` in safetensors `tensor.rs`. */
#define NCK_ST_MAX_HEADER 100000000u
/* Most tensors one header may list (the catalog's NCK_CATALOG_MAX_TENSORS):
 * counted before the JSON is parsed, so memory stays bounded (issue 12). */
#define NCK_ST_MAX_TENSORS 65536u
/* Longest tensor name (JSON text bytes) a header may hold. */
#define NCK_ST_MAX_NAME 4096u
/* Most bytes of strings inside the entries (dtypes, __metadata__ values). */
#define NCK_ST_MAX_TEXT (16u << 20)

typedef struct nck_st_tensor {
	const char *name;             /* UTF-8 tensor name, arena-owned */
	nck_dtype dtype;
	uint32_t ndim;                /* 0 for a scalar (one element) */
	uint64_t shape[NCK_MAX_DIMS]; /* first ndim entries used */
	uint64_t data_offset;         /* ABSOLUTE offset of the first byte in the nck_src */
	uint64_t size;                /* bytes: prod(shape) * element size */
} nck_st_tensor;

typedef struct nck_st_file {
	nck_st_tensor *tensors;    /* n_tensors entries, sorted by name (strcmp) */
	size_t n_tensors;
	const char *metadata_json; /* "__metadata__" re-serialized (compact), or NULL if absent */
	uint64_t header_len;       /* N: JSON bytes including padding */
	uint64_t data_start;       /* absolute offset of the data section: base + 8 + N */
	nck_arena arena;           /* tensors, names, metadata_json */
} nck_st_file;

/*
 * Parses the safetensors file stored at [base, base + len) of `src` (a whole
 * file, or a member inside a tar). On success *out is a new file record that
 * the caller frees with nck_st_file_free(). `src` is borrowed and only used
 * during the call.
 * Errors: -EBADMSG malformed (too short, header too large or past the end,
 * bad JSON, bad tensor entry, hole, overlap, size mismatch, trailing bytes;
 * diag has the absolute offset of the problem); -E2BIG more than
 * NCK_ST_MAX_TENSORS tensors or a name over NCK_ST_MAX_NAME bytes, more than
 * NCK_ST_MAX_TEXT bytes of other strings (checked
 * before parsing); -ENOTSUP a valid dtype we do
 * not handle (F4, F6_*, F8_E8M0, *FNUZ, C64) or more than NCK_MAX_DIMS
 * dimensions; -EOVERFLOW shape arithmetic overflowed; -EINVAL the range lies
 * outside `src`; -EIO; -ENOMEM.
 */
int nck_st_open(nck_st_file **out, const nck_src *src, uint64_t base, uint64_t len,
		nck_diag *diag);

/* Frees a file record and everything in it. NULL-safe. */
void nck_st_file_free(nck_st_file *f);

/* Finds a tensor by exact name (binary search); borrowed pointer or NULL. */
const nck_st_tensor *nck_st_find(const nck_st_file *f, const char *name);

#endif
