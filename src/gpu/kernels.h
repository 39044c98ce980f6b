/* SPDX-License-Identifier: MIT */
/*
 * The CUDA kernels of the quantization backend (kernels.cu), as C functions
 * that enqueue one kernel on a stream over device buffers. The element
 * arithmetic is quant/elem.h, the same text the CPU backend compiles, so the
 * results are the CPU's bit for bit.
 *
 * Arguments are trusted (cuda_backend.c checks them); buffers are device
 * memory holding `dtype` (BF16, F16, F32) elements at natural alignment.
 * Each function returns cudaSuccess or the launch error.
 *
 * Ownership: none. Thread-safety: any thread; the caller owns the stream.
 */
#ifndef NCK_GPU_KERNELS_H
#define NCK_GPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "nemockpt/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

/* *d_max = max(*d_max, amax bits of n elements) (an atomic max). */
cudaError_t nck_gpu_amax(unsigned *d_max, const void *d_src, nck_dtype dtype, size_t n,
			 cudaStream_t stream);

/* d_dst[i] = E4M3FN(float32(d_src[i]) / scale). */
cudaError_t nck_gpu_fp8(uint8_t *d_dst, const void *d_src, nck_dtype dtype, size_t n,
			float scale, cudaStream_t stream);

/* The INT4 block scales of rows x cols elements (cols a multiple of group). */
cudaError_t nck_gpu_int4_scales(float *d_scales, const void *d_src, nck_dtype dtype,
				size_t rows, size_t cols, size_t group, cudaStream_t stream);

/* Packs rows (even) x cols elements with their block scales: rows/2 x cols bytes. */
cudaError_t nck_gpu_int4_pack(uint8_t *d_dst, const void *d_src, nck_dtype dtype, size_t rows,
			      size_t cols, size_t group, const float *d_scales,
			      cudaStream_t stream);

/*
 * NVFP4 of n elements (a multiple of 16) with global scale `global`: n/16
 * E4M3 block scales to d_scales and n/2 bytes of packed E2M1 codes to d_codes.
 */
cudaError_t nck_gpu_nvfp4(uint8_t *d_codes, uint8_t *d_scales, const void *d_src, nck_dtype dtype,
			  size_t n, float global, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
