/* SPDX-License-Identifier: MIT */
/*
 * nck_dtype: element types of tensors, with the spellings of the formats
 * that name them (safetensors "BF16", torch storage classes
 * "BFloat16Storage", torch dtypes "bfloat16", numpy/zarr "<f2").
 *
 * Thread-safety: pure functions over constant tables.
 */
#ifndef NCK_NEMOCKPT_DTYPE_H
#define NCK_NEMOCKPT_DTYPE_H

#include <stddef.h>

/* Most dimensions a tensor may have (torch allows more; checkpoints never use them). */
#define NCK_MAX_DIMS 8

typedef enum nck_dtype {
	NCK_DTYPE_UNKNOWN = 0,
	NCK_DTYPE_BOOL,
	NCK_DTYPE_U8,
	NCK_DTYPE_I8,
	NCK_DTYPE_U16,
	NCK_DTYPE_I16,
	NCK_DTYPE_U32,
	NCK_DTYPE_I32,
	NCK_DTYPE_U64,
	NCK_DTYPE_I64,
	NCK_DTYPE_F16,
	NCK_DTYPE_BF16,
	NCK_DTYPE_F32,
	NCK_DTYPE_F64,
	NCK_DTYPE_F8_E4M3,
	NCK_DTYPE_F8_E5M2,
	NCK_DTYPE_COUNT
} nck_dtype;

/* Bytes per element; 0 for NCK_DTYPE_UNKNOWN. */
size_t nck_dtype_size(nck_dtype dtype);

/* The safetensors name ("BF16", "F32", "I64", "BOOL", "F8_E4M3", ...). */
const char *nck_dtype_name(nck_dtype dtype);

/* Parses a safetensors name; NCK_DTYPE_UNKNOWN if not one. */
nck_dtype nck_dtype_from_name(const char *name);

/* From a torch storage class name ("BFloat16Storage", "FloatStorage", ...). */
nck_dtype nck_dtype_from_torch_storage(const char *cls);

/* From a torch dtype attribute name ("bfloat16", "float32", "float", "half", ...). */
nck_dtype nck_dtype_from_torch_dtype(const char *name);

/* From a numpy/zarr v2 dtype string ("<f2", "<f4", "|u1", "bfloat16", ...). */
nck_dtype nck_dtype_from_numpy(const char *descr);

#endif
