/* SPDX-License-Identifier: MIT */
/*
 * CUDA kernels of the quantization backend (see kernels.h): grid-stride
 * loops over quant/elem.h's element functions, one specialization per input
 * dtype. Divisions are __fdiv_rn and additions __fadd_rn (elem.h), built
 * with -ftz=false -prec-div=true -fmad=false and without fast-math, so every
 * value equals the CPU backend's.
 *
 * amax reductions combine with an integer max of float bits (warp
 * __reduce_max_sync, then atomicMax): order-independent, hence equal to the
 * CPU's whatever the schedule. INT4 block scales use one warp per (row,
 * block); packing uses one thread per output byte; NVFP4 one thread per
 * block of 16 (scale and codes together).
 *
 * Ownership: none. Thread-safety: launches go to the caller's stream.
 */
#include "gpu/kernels.h"

#include "quant/elem.h"

namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 4096;

/* Blocks for `work` items (threads) in a grid-stride loop. */
unsigned blocks_for(size_t work)
{
	size_t b = (work + kThreads - 1) / kThreads;

	return b == 0 ? 1u : b > kMaxBlocks ? kMaxBlocks : (unsigned)b;
}

template <int DT> __device__ __forceinline__ float load(const void *p, size_t i)
{
	if (DT == NCK_DTYPE_F32)
		return static_cast<const float *>(p)[i];
	uint16_t h = static_cast<const uint16_t *>(p)[i];
	return DT == NCK_DTYPE_BF16 ? nck_qe_bf16(h) : nck_qe_f16(h);
}

__device__ __forceinline__ size_t thread_index()
{
	return blockIdx.x * (size_t)blockDim.x + threadIdx.x;
}

__device__ __forceinline__ size_t thread_count()
{
	return gridDim.x * (size_t)blockDim.x;
}

template <int DT> __global__ void amax_kernel(unsigned *out, const void *src, size_t n)
{
	unsigned m = 0;

	for (size_t i = thread_index(); i < n; i += thread_count())
		m = max(m, (unsigned)nck_qe_abs_bits(load<DT>(src, i)));
	m = __reduce_max_sync(0xFFFFFFFFu, m);
	if ((threadIdx.x & 31u) == 0 && m != 0)
		atomicMax(out, m);
}

template <int DT> __global__ void fp8_kernel(uint8_t *dst, const void *src, size_t n, float scale)
{
	for (size_t i = thread_index(); i < n; i += thread_count())
		dst[i] = nck_qe_fp8(nck_qe_div(load<DT>(src, i), scale));
}

/* One warp per (row, block); every lane of a warp runs the same iterations. */
template <int DT>
__global__ void scales_kernel(float *scales, const void *src, size_t rows, size_t cols,
			      size_t group)
{
	size_t nb = cols / group, total = rows * nb;
	unsigned lane = threadIdx.x & 31u;

	for (size_t w = thread_index() / 32; w < total; w += thread_count() / 32) {
		size_t base = (w / nb) * cols + (w % nb) * group;
		unsigned m = 0;

		for (size_t k = lane; k < group; k += 32)
			m = max(m, (unsigned)nck_qe_abs_bits(load<DT>(src, base + k)));
		m = __reduce_max_sync(0xFFFFFFFFu, m);
		if (lane == 0)
			scales[w] = nck_qe_scale(nck_qe_float(m), NCK_QE_INT4_MAX);
	}
}

template <int DT>
__global__ void pack_kernel(uint8_t *dst, const void *src, size_t rows, size_t cols, size_t group,
			    const float *scales)
{
	size_t nb = cols / group, total = rows / 2 * cols;

	for (size_t idx = thread_index(); idx < total; idx += thread_count()) {
		size_t i = idx / cols, j = idx % cols, b = j / group;
		size_t lo = 2 * i * cols + j;
		float s_lo = scales[2 * i * nb + b], s_hi = scales[(2 * i + 1) * nb + b];

		dst[idx] = nck_qe_pack(nck_qe_int4(load<DT>(src, lo), s_lo),
				       nck_qe_int4(load<DT>(src, lo + cols), s_hi));
	}
}

/* One thread per block of 16: its amax, E4M3 scale, divisor and 8 code bytes. */
template <int DT>
__global__ void nvfp4_kernel(uint8_t *codes, uint8_t *scales, const void *src, size_t blocks,
			     float global)
{
	float g6 = nck_qe_mul(6.0f, global);

	for (size_t b = thread_index(); b < blocks; b += thread_count()) {
		size_t base = b * NCK_QE_NVFP4_BLOCK;
		float x[NCK_QE_NVFP4_BLOCK];
		unsigned m = 0;

#pragma unroll
		for (int j = 0; j < NCK_QE_NVFP4_BLOCK; j++) {
			x[j] = load<DT>(src, base + j);
			m = max(m, (unsigned)nck_qe_abs_bits(x[j]));
		}
		uint8_t sc = nck_qe_nvfp4_scale(nck_qe_float(m), g6);
		float d = nck_qe_mul(nck_qe_e4m3_value(sc), global);

		scales[b] = sc;
#pragma unroll
		for (int j = 0; j < NCK_QE_NVFP4_BLOCK / 2; j++)
			codes[b * (NCK_QE_NVFP4_BLOCK / 2) + j] =
				nck_qe_pack_fp4(nck_qe_e2m1(nck_qe_div(x[2 * j], d)),
						nck_qe_e2m1(nck_qe_div(x[2 * j + 1], d)));
	}
}

/* Launches kernel<DT> for the runtime dtype, or returns cudaErrorInvalidValue. */
#define NCK_LAUNCH(dtype, kernel, work, stream, ...)                                        \
	switch (dtype) {                                                                    \
	case NCK_DTYPE_BF16:                                                                \
		kernel<NCK_DTYPE_BF16><<<blocks_for(work), kThreads, 0, stream>>>(__VA_ARGS__); \
		break;                                                                      \
	case NCK_DTYPE_F16:                                                                 \
		kernel<NCK_DTYPE_F16><<<blocks_for(work), kThreads, 0, stream>>>(__VA_ARGS__);  \
		break;                                                                      \
	case NCK_DTYPE_F32:                                                                 \
		kernel<NCK_DTYPE_F32><<<blocks_for(work), kThreads, 0, stream>>>(__VA_ARGS__);  \
		break;                                                                      \
	default:                                                                            \
		return cudaErrorInvalidValue;                                               \
	}

} // namespace

extern "C" cudaError_t nck_gpu_amax(unsigned *d_max, const void *d_src, nck_dtype dtype, size_t n,
				    cudaStream_t stream)
{
	NCK_LAUNCH(dtype, amax_kernel, n, stream, d_max, d_src, n);
	return cudaGetLastError();
}

extern "C" cudaError_t nck_gpu_fp8(uint8_t *d_dst, const void *d_src, nck_dtype dtype, size_t n,
				   float scale, cudaStream_t stream)
{
	NCK_LAUNCH(dtype, fp8_kernel, n, stream, d_dst, d_src, n, scale);
	return cudaGetLastError();
}

extern "C" cudaError_t nck_gpu_int4_scales(float *d_scales, const void *d_src, nck_dtype dtype,
					   size_t rows, size_t cols, size_t group,
					   cudaStream_t stream)
{
	size_t warps = rows * (cols / group);

	NCK_LAUNCH(dtype, scales_kernel, warps * 32, stream, d_scales, d_src, rows, cols, group);
	return cudaGetLastError();
}

extern "C" cudaError_t nck_gpu_int4_pack(uint8_t *d_dst, const void *d_src, nck_dtype dtype,
					 size_t rows, size_t cols, size_t group,
					 const float *d_scales, cudaStream_t stream)
{
	NCK_LAUNCH(dtype, pack_kernel, rows / 2 * cols, stream, d_dst, d_src, rows, cols, group,
		   d_scales);
	return cudaGetLastError();
}

extern "C" cudaError_t nck_gpu_nvfp4(uint8_t *d_codes, uint8_t *d_scales, const void *d_src,
				     nck_dtype dtype, size_t n, float global, cudaStream_t stream)
{
	size_t blocks = n / NCK_QE_NVFP4_BLOCK;

	NCK_LAUNCH(dtype, nvfp4_kernel, blocks, stream, d_codes, d_scales, d_src, blocks, global);
	return cudaGetLastError();
}
