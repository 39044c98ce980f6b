/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the CUDA runtime and for kernels.cu, so that the CUDA
 * backend's host code (src/gpu/cuda_backend.c: slots, chunking, staging,
 * page-locked direct copies, amax combination) runs on a machine without a
 * GPU (pipeline_check.c). "Device" memory is host memory; each stream is a
 * queue that runs only at cudaStreamSynchronize, so a host read or reuse of
 * a buffer before the stream that fills or drains it was waited for gives
 * wrong bytes, as it could on a GPU. Kernels run the CPU backend on the
 * chunk. mock_register_fail makes cudaHostRegister refuse (staged path);
 * mock_sync_fail makes every cudaStreamSynchronize report a device fault.
 *
 * Ownership: streams and buffers are malloc'd and freed by the matching
 * destroy/free calls. Thread-safety: a stream is used by one thread at a
 * time (as cuda_backend.c does); counters are atomic.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/kernels.h"
#include "quant/quant.h"

#define QUEUE_MAX 64

int mock_register_fail;
int mock_register_calls;
int mock_sync_fail;

enum mock_kind { M_COPY, M_SET, M_AMAX, M_FP8, M_SCALES, M_PACK, M_NVFP4 };

struct mock_op {
	enum mock_kind kind;
	void *dst, *dst2;
	const void *src;
	size_t n, rows, cols, group;
	int value;
	nck_dtype dtype;
	float scale;
	const float *scales;
};

struct mock_stream {
	struct mock_op ops[QUEUE_MAX];
	int n;
};

static void mock_run(const struct mock_op *o)
{
	float a;
	unsigned u;

	switch (o->kind) {
	case M_COPY:
		memcpy(o->dst, o->src, o->n);
		break;
	case M_SET:
		memset(o->dst, o->value, o->n);
		break;
	case M_AMAX:
		nck_quant_cpu_amax(&a, o->src, o->dtype, o->n, 1);
		memcpy(&u, &a, sizeof(u));
		if (u > *(unsigned *)o->dst)
			*(unsigned *)o->dst = u;
		break;
	case M_FP8:
		nck_quant_cpu_fp8(o->dst, o->src, o->dtype, o->n, o->scale, 1);
		break;
	case M_SCALES:
		nck_quant_cpu_int4_scales(o->dst, o->src, o->dtype, o->rows, o->cols, o->group, 1);
		break;
	case M_PACK:
		nck_quant_cpu_int4_pack(o->dst, o->src, o->dtype, o->rows, o->cols, o->group,
					o->scales, 1);
		break;
	case M_NVFP4:
		nck_quant_cpu_nvfp4(o->dst, o->dst2, o->src, o->dtype, o->n, o->scale, 1);
		break;
	}
}

static cudaError_t mock_push(cudaStream_t stream, struct mock_op op)
{
	struct mock_stream *s = (struct mock_stream *)stream;

	if (!s || s->n == QUEUE_MAX)
		return cudaErrorInvalidValue;
	s->ops[s->n++] = op;
	return cudaSuccess;
}

/* ---- the runtime calls cuda_backend.c makes ---------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
	*count = 1;
	return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
	(void)device;
	memset(prop, 0, sizeof(*prop));
	strcpy(prop->name, "mock device");
	prop->major = 9;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
	return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
	(void)flags;
	*stream = calloc(1, sizeof(struct mock_stream));
	return *stream ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
	free(stream);
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
	struct mock_stream *s = (struct mock_stream *)stream;

	for (int i = 0; i < s->n; i++)
		mock_run(&s->ops[i]);
	s->n = 0;
	return __atomic_load_n(&mock_sync_fail, __ATOMIC_RELAXED) ? cudaErrorLaunchFailure
								  : cudaSuccess;
}

/* Fresh buffers hold garbage, as device and pinned memory may. */
static cudaError_t mock_alloc(void **p, size_t n, int fill)
{
	*p = malloc(n);
	if (!*p)
		return cudaErrorMemoryAllocation;
	memset(*p, fill, n);
	return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t n, unsigned int flags)
{
	(void)flags;
	return mock_alloc(p, n, 0xAB);
}

cudaError_t cudaMalloc(void **p, size_t n)
{
	return mock_alloc(p, n, 0xCD);
}

cudaError_t cudaFreeHost(void *p)
{
	free(p);
	return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
	free(p);
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
			    cudaStream_t stream)
{
	(void)kind;
	return mock_push(stream, (struct mock_op){ .kind = M_COPY, .dst = dst, .src = src, .n = n });
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind)
{
	(void)kind;
	memcpy(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t stream)
{
	return mock_push(stream,
			 (struct mock_op){ .kind = M_SET, .dst = dst, .value = value, .n = n });
}

cudaError_t cudaHostRegister(void *p, size_t n, unsigned int flags)
{
	(void)p;
	(void)n;
	(void)flags;
	__atomic_add_fetch(&mock_register_calls, 1, __ATOMIC_RELAXED);
	return __atomic_load_n(&mock_register_fail, __ATOMIC_RELAXED)
		       ? cudaErrorHostMemoryAlreadyRegistered
		       : cudaSuccess;
}

cudaError_t cudaHostUnregister(void *p)
{
	(void)p;
	return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
	return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t error)
{
	(void)error;
	return "mock error";
}

/* ---- kernels.h -------------------------------------------------------------------------------- */

cudaError_t nck_gpu_amax(unsigned *d_max, const void *d_src, nck_dtype dtype, size_t n,
			 cudaStream_t stream)
{
	return mock_push(stream, (struct mock_op){ .kind = M_AMAX, .dst = d_max, .src = d_src,
						   .dtype = dtype, .n = n });
}

cudaError_t nck_gpu_fp8(uint8_t *d_dst, const void *d_src, nck_dtype dtype, size_t n,
			float scale, cudaStream_t stream)
{
	return mock_push(stream, (struct mock_op){ .kind = M_FP8, .dst = d_dst, .src = d_src,
						   .dtype = dtype, .n = n, .scale = scale });
}

cudaError_t nck_gpu_int4_scales(float *d_scales, const void *d_src, nck_dtype dtype,
				size_t rows, size_t cols, size_t group, cudaStream_t stream)
{
	return mock_push(stream, (struct mock_op){ .kind = M_SCALES, .dst = d_scales,
						   .src = d_src, .dtype = dtype, .rows = rows,
						   .cols = cols, .group = group });
}

cudaError_t nck_gpu_int4_pack(uint8_t *d_dst, const void *d_src, nck_dtype dtype, size_t rows,
			      size_t cols, size_t group, const float *d_scales,
			      cudaStream_t stream)
{
	return mock_push(stream, (struct mock_op){ .kind = M_PACK, .dst = d_dst, .src = d_src,
						   .dtype = dtype, .rows = rows, .cols = cols,
						   .group = group, .scales = d_scales });
}

cudaError_t nck_gpu_nvfp4(uint8_t *d_codes, uint8_t *d_scales, const void *d_src, nck_dtype dtype,
			  size_t n, float global, cudaStream_t stream)
{
	return mock_push(stream, (struct mock_op){ .kind = M_NVFP4, .dst = d_codes,
						   .dst2 = d_scales, .src = d_src, .dtype = dtype,
						   .n = n, .scale = global });
}
