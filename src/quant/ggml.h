/* SPDX-License-Identifier: MIT */
/*
 * nck_ggml: the tensor encodings of GGUF files (llama.cpp / ggml) computed
 * on the CPU, bit-exact with gguf-py's reference code (ggml-org/llama.cpp
 * gguf-py/gguf/quants.py; shared/spec/gguf-nvfp4.md 1.4, 1.5):
 *
 *  - F32: a copy (the source widened exactly);
 *  - F16: numpy's astype(float16) of the float32 value (round to nearest
 *    even, overflow to infinity, subnormals kept);
 *  - BF16: the top half of the float32 bits rounded to nearest even, a NaN
 *    made quiet (gguf-py's BF16, ggml_compute_fp32_to_bf16);
 *  - Q8_0: blocks of 32: d = amax / 127, q = roundf(x * (1/d)) (half away
 *    from zero, float32 product, the unrounded d); stored f16(d), 32 int8;
 *  - Q4_0: blocks of 32: m = the element of largest magnitude (the first
 *    on ties) with its sign, d = m / -8, q = min(15, trunc(x * (1/d) + 8.5))
 *    with the product and the sum each rounded to float32 (gguf-py 0.19.0;
 *    the spec's float64 form is a later gguf-py's); stored f16(d), then 16
 *    bytes holding element j in the low nibble and j + 16 in the high one.
 * Inputs are BF16, F16 or F32 elements (any alignment), widened exactly to
 * float32 first, as the converter does. Multi-byte values are little-endian.
 *
 * Ownership: buffers are the caller's. Thread-safety: pure functions; the
 * quantizers split large inputs over up to `threads` POSIX threads by rows
 * (every thread count gives the same bytes).
 */
#ifndef NCK_QUANT_GGML_H
#define NCK_QUANT_GGML_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/dtype.h"

/* ggml type ids (gguf-py constants.py GGMLQuantizationType). */
#define NCK_GGML_F32  0u
#define NCK_GGML_F16  1u
#define NCK_GGML_Q4_0 2u
#define NCK_GGML_Q8_0 8u
#define NCK_GGML_BF16 30u

/* Elements per block of Q4_0 and Q8_0, and their bytes per block. */
#define NCK_GGML_QK	    32u
#define NCK_GGML_Q4_0_BYTES 18u
#define NCK_GGML_Q8_0_BYTES 34u

/* IEEE half bits of x, as numpy's float32 -> float16 cast. */
uint16_t nck_ggml_f16(float x);

/* bfloat16 bits of x, as gguf-py's BF16 quantizer. */
uint16_t nck_ggml_bf16(float x);

/*
 * Bytes of n elements of `type` (n a multiple of the block size for the
 * quantized types): 0 for an unknown type or a partial block.
 */
uint64_t nck_ggml_bytes(uint32_t type, uint64_t n);

/*
 * Converts n elements of `src` (dtype BF16, F16 or F32) to `type` (F32,
 * F16 or BF16) in dst (n elements of that type, little-endian, any
 * alignment). 0, -ENOTSUP (another dtype or type), -EINVAL (NULL buffers).
 */
int nck_ggml_convert(void *dst, uint32_t type, const void *src, nck_dtype dtype, size_t n);

/*
 * Quantizes `rows` rows of `cols` elements (a multiple of 32) to `type`
 * (Q8_0 or Q4_0): dst gets rows * cols / 32 blocks, row after row.
 * `threads`: the most threads to use (0 or 1: the calling thread). 0,
 * -ENOTSUP, -EINVAL (cols not a multiple of 32, NULL buffers), -EOVERFLOW.
 */
int nck_ggml_quantize(void *dst, uint32_t type, const void *src, nck_dtype dtype, size_t rows,
		      size_t cols, int threads);

#endif
