/* SPDX-License-Identifier: MIT */
/*
 * Internal to nck_quant: the argument checks shared by the CPU operations
 * (quant.c) and the backend dispatchers (backend.c).
 *
 * Ownership: none. Thread-safety: pure functions.
 */
#ifndef NCK_QUANT_QUANT_INT_H
#define NCK_QUANT_QUANT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "nemockpt/dtype.h"

/* Whether `dtype` is an input the kernels read (BF16, F16, F32). */
bool nck_quant_dtype_ok(nck_dtype dtype);

/*
 * Checks an element-wise call: supported dtype (-ENOTSUP), buffers present
 * when n > 0 (-EINVAL), n * element size fits (-EOVERFLOW).
 */
int nck_quant_check_elems(const void *out, const void *src, nck_dtype dtype, size_t n);

/*
 * Checks an INT4 call over [rows, cols]: group > 0 dividing cols, rows even
 * when `pack` (-EINVAL), supported dtype (-ENOTSUP), buffers present when
 * there is work (-EINVAL; `scales` only when pack), rows * cols * element
 * size fits (-EOVERFLOW).
 */
int nck_quant_check_int4(const void *out, const void *src, nck_dtype dtype, size_t rows,
			 size_t cols, size_t group, const float *scales, bool pack);

/*
 * Checks an NVFP4 call over n elements: n a multiple of the block (-EINVAL),
 * supported dtype (-ENOTSUP), buffers present when n > 0 (-EINVAL),
 * n * element size fits (-EOVERFLOW).
 */
int nck_quant_check_nvfp4(const void *codes, const void *scales, const void *src,
			  nck_dtype dtype, size_t n);

#endif
