/* SPDX-License-Identifier: MIT */
/*
 * nck_zarr: the `.zarray` metadata of a zarr v2 array, as Megatron-Core's
 * deprecated zarr backend writes one per sharded tensor
 * (`megatron/core/dist_checkpointing/strategies/zarr.py`, zarr-python 2
 * `json_dumps`; shared/spec/tensor-formats.md §4), and the names of its
 * chunk files. Spec: zarr v2 storage specification (`docs/v2/v2.0.rst`).
 *
 * Supported: zarr_format 2, uncompressed (compressor null), no filters,
 * C order, little-endian numpy dtypes and the literal "bfloat16" that
 * Megatron/tensorstore write. Chunk files then hold the raw C-order bytes of
 * full chunks. Everything else is -ENOTSUP with a message naming the array.
 * Required keys as zarr-python reads them: zarr_format, shape, chunks, dtype,
 * compressor, order; fill_value, filters and dimension_separator are
 * optional. Unknown keys are ignored.
 *
 * Thread-safety: pure functions; the struct is plain data.
 */
#ifndef NCK_FORMAT_ZARR_H
#define NCK_FORMAT_ZARR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"
#include "nemockpt/dtype.h"

typedef struct nck_zarr_array {
	nck_dtype dtype;
	uint32_t ndim;                 /* 0 for a 0-d array */
	uint64_t shape[NCK_MAX_DIMS];  /* first ndim entries used */
	uint64_t chunks[NCK_MAX_DIMS]; /* chunk shape, each >= 1 */
	uint64_t grid[NCK_MAX_DIMS];   /* chunks per dimension: ceil(shape / chunks) */
	uint64_t chunk_bytes;          /* prod(chunks) * element size: one chunk file */
	char order;                    /* 'C' (only C is supported) */
	char dim_sep;                  /* '.' (default) or '/' */
	bool has_fill;                 /* false when fill_value is null or absent */
	double fill_value;             /* NaN/Infinity spelled as zarr strings are decoded */
} nck_zarr_array;

/*
 * Parses `len` bytes of `.zarray` JSON into *out. `name` names the array in
 * messages (e.g. its directory). Nothing is kept from the input.
 * Errors: -EBADMSG malformed (not JSON, missing or mistyped key, chunks of 0,
 * rank mismatch; diag has the offset of a JSON syntax error, else -1);
 * -ENOTSUP valid but unsupported (zarr_format other than 2, compressor,
 * filters, order "F", dtype, more than NCK_MAX_DIMS dimensions);
 * -EOVERFLOW the chunk size overflows; -ENOMEM.
 */
int nck_zarr_parse(nck_zarr_array *out, const void *json, size_t len, const char *name,
		   nck_diag *diag);

/*
 * Writes the chunk key of chunk index idx[0..ndim) ("0.1.0", or "0/1/0"; "0"
 * for a 0-d array) into buf, NUL-terminated. Returns 0, -ENAMETOOLONG if
 * it does not fit in `size` bytes, or -EINVAL if an index lies outside the
 * chunk grid (a caller bug).
 */
int nck_zarr_chunk_key(char *buf, size_t size, const nck_zarr_array *a, const uint64_t *idx);

#endif
