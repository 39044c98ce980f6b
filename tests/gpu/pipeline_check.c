/* SPDX-License-Identifier: MIT */
/*
 * The CUDA backend's host code (src/gpu/cuda_backend.c) over the mock
 * runtime of mock_cudart.c, on any machine: results through the backend
 * must equal the CPU backend's for the staged path (pinned staging buffers,
 * two streams), the direct path (page-locked caller buffers), the staged
 * fallback when page-locking is refused, many chunks, odd sizes, misaligned
 * buffers, more concurrent callers than slots, and a row pair too large for
 * a chunk (-ENOTSUP, then the dispatcher's CPU fallback), and a device
 * fault (-EIO, then the same CPU fallback); NVFP4's second output (block
 * scales) on both paths; and the loader: the same code built as a library
 * (nemockpt_cuda_mock), opened with nck_quant_backend_open() like
 * libnemockpt_cuda.so, with its refusals (no file, no entry symbol, no such
 * device). The kernels themselves run only on a GPU (gpu_check.c).
 */
#include <errno.h>
#include <pthread.h>

#include "nck_test.h"
#include "quant/quant.h"

const nck_quant_backend *nck_quant_cuda_backend(unsigned abi, int device, char *err,
						size_t errlen);

extern int mock_register_fail;
extern int mock_register_calls;
extern int mock_sync_fail;

static const nck_quant_backend *backend(void)
{
	char err[256] = "";
	const nck_quant_backend *be = nck_quant_cuda_backend(NCK_QUANT_BACKEND_ABI, 0, err,
							     sizeof(err));

	if (!be)
		fprintf(stderr, "backend: %s\n", err);
	ASSERT_TRUE(be != NULL);
	return be;
}

/* Random bit patterns without the exponent's top bit: finite, varied. */
static void fill(char *p, size_t n, nck_dtype dt, uint64_t seed)
{
	size_t es = dt == NCK_DTYPE_F32 ? 4 : 2;

	for (size_t i = 0; i < n; i++) {
		uint32_t v;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		v = (uint32_t)seed & (es == 4 ? 0xBFFFFFFFu : 0xBFFFu);
		memcpy(p + i * es, &v, es);
	}
}

/* amax, fp8, INT4 scales and packing of [rows, cols] via be == the CPU's. */
static void same_as_cpu(const nck_quant_backend *be, nck_dtype dt, size_t rows, size_t cols,
			size_t group, size_t misalign, uint64_t seed)
{
	size_t n = rows * cols, es = dt == NCK_DTYPE_F32 ? 4 : 2, ns = rows * (cols / group);
	char *mem = malloc(n * es + misalign + 1), *src = mem + misalign;
	uint8_t *c1 = malloc(n + 1), *c2 = malloc(n + 1), *b1 = malloc(n / 16 + 1),
		*b2 = malloc(n / 16 + 1);
	float a1, a2, *s1 = malloc(ns * 4 + 4), *s2 = malloc(ns * 4 + 4);

	ASSERT_TRUE(mem && c1 && c2 && s1 && s2 && b1 && b2);
	fill(src, n, dt, seed);
	ASSERT_EQ_INT(nck_quant_cpu_amax(&a1, src, dt, n, 1), 0);
	ASSERT_EQ_INT(nck_quant_amax(be, &a2, src, dt, n), 0);
	ASSERT_TRUE(memcmp(&a1, &a2, 4) == 0);
	ASSERT_EQ_INT(nck_quant_cpu_fp8(c1, src, dt, n, 0.01f, 1), 0);
	ASSERT_EQ_INT(nck_quant_fp8(be, c2, src, dt, n, 0.01f), 0);
	ASSERT_TRUE(memcmp(c1, c2, n) == 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s1, src, dt, rows, cols, group, 1), 0);
	ASSERT_EQ_INT(nck_quant_int4_scales(be, s2, src, dt, rows, cols, group), 0);
	ASSERT_TRUE(memcmp(s1, s2, ns * 4) == 0);
	if (rows % 2 == 0) {
		ASSERT_EQ_INT(nck_quant_cpu_int4_pack(c1, src, dt, rows, cols, group, s1, 1), 0);
		ASSERT_EQ_INT(nck_quant_int4_pack(be, c2, src, dt, rows, cols, group, s1), 0);
		ASSERT_TRUE(memcmp(c1, c2, n / 2) == 0);
	}
	if (n % 16 == 0) {
		memset(b2, 0xEE, n / 16);
		ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c1, b1, src, dt, n, 0.001f, 1), 0);
		ASSERT_EQ_INT(nck_quant_nvfp4(be, c2, b2, src, dt, n, 0.001f), 0);
		ASSERT_TRUE(memcmp(c1, c2, n / 2) == 0);
		ASSERT_TRUE(memcmp(b1, b2, n / 16) == 0);
	}
	free(b1);
	free(b2);
	free(mem);
	free(c1);
	free(c2);
	free(s1);
	free(s2);
}

NCK_TEST(pipeline_staged)
{
	const nck_quant_backend *be = backend();

	same_as_cpu(be, NCK_DTYPE_BF16, 2, 128, 128, 1, 1);
	same_as_cpu(be, NCK_DTYPE_F32, 1, 7, 7, 3, 2);
	same_as_cpu(be, NCK_DTYPE_F16, 100, 4096, 128, 0, 3);
	/* 16 MiB + a row pair: three chunks of 8 MiB, the last one short. */
	same_as_cpu(be, NCK_DTYPE_BF16, 2050, 4096, 128, 1, 4);
	ASSERT_EQ_INT(mock_register_calls, 0);
}

NCK_TEST(pipeline_direct)
{
	const nck_quant_backend *be;

	setenv("NEMOCKPT_CUDA_REGISTER_MIN", "1048576", 1);
	be = backend();
	/* 16 MiB of f32: three chunks. */
	same_as_cpu(be, NCK_DTYPE_F32, 1026, 4096, 64, 2, 5);
	ASSERT_TRUE(mock_register_calls > 0);
}

NCK_TEST(pipeline_register_refused)
{
	const nck_quant_backend *be;

	setenv("NEMOCKPT_CUDA_REGISTER_MIN", "0", 1);
	mock_register_fail = 1;
	be = backend();
	same_as_cpu(be, NCK_DTYPE_BF16, 2050, 4096, 128, 1, 7);
	same_as_cpu(be, NCK_DTYPE_F16, 4, 96, 32, 1, 8);
	ASSERT_TRUE(mock_register_calls > 0);
}

static void *caller(void *arg)
{
	uint64_t i = (uint64_t)(uintptr_t)arg;

	for (size_t k = 0; k < 4; k++)
		same_as_cpu(backend(), NCK_DTYPE_BF16, 2 * (1 + i * 13 + k * 29), 4096, 128, k & 1,
			    i * 10 + k + 1);
	return NULL;
}

/* Six callers share four slots. */
NCK_TEST(pipeline_concurrent)
{
	pthread_t t[6];

	for (uintptr_t i = 0; i < 6; i++)
		ASSERT_EQ_INT(pthread_create(&t[i], NULL, caller, (void *)i), 0);
	for (int i = 0; i < 6; i++)
		ASSERT_EQ_INT(pthread_join(t[i], NULL), 0);
}

/* A row pair of 2 x 4M bf16 (16 MiB) does not fit an 8 MiB chunk. */
NCK_TEST(pipeline_unit_too_big)
{
	const nck_quant_backend *be = backend();
	size_t cols = (size_t)4 << 20;
	uint16_t *w = calloc(2 * cols, 2);
	float *s = calloc(2 * cols / 128, 4);
	uint8_t *p = malloc(cols);

	ASSERT_TRUE(w && s && p);
	ASSERT_EQ_INT(be->int4_pack(be, p, w, NCK_DTYPE_BF16, 2, cols, 128, s), -ENOTSUP);
	free(w);
	free(s);
	free(p);
	same_as_cpu(be, NCK_DTYPE_BF16, 2, cols, 128, 0, 9);
}

/* A device fault: the operation fails with -EIO, the dispatcher redoes it on the CPU. */
NCK_TEST(pipeline_device_failure)
{
	const nck_quant_backend *be = backend();
	uint16_t w[256] = { 0x3F80 };
	uint8_t out[256];

	mock_sync_fail = 1;
	ASSERT_EQ_INT(be->fp8(be, out, w, NCK_DTYPE_BF16, 256, 1.0f), -EIO);
	same_as_cpu(be, NCK_DTYPE_BF16, 64, 256, 128, 1, 10);
}

/* The mock built as a backend library, through the loader. */
NCK_TEST(pipeline_loader)
{
	char err[512] = "";
	const nck_quant_backend *be;

	be = nck_quant_backend_open(NCK_CUDA_MOCK_LIBRARY, 0, err, sizeof(err));
	if (!be)
		fprintf(stderr, "loader: %s\n", err);
	ASSERT_TRUE(be != NULL);
	ASSERT_EQ_STR(be->name, "cuda:0 (mock device)");
	ASSERT_TRUE(be->abi == NCK_QUANT_BACKEND_ABI);
	same_as_cpu(be, NCK_DTYPE_BF16, 64, 4096, 128, 1, 11);
	/* 16 MiB of bf16 through the library's own staging buffers (three chunks). */
	same_as_cpu(be, NCK_DTYPE_BF16, 2050, 4096, 128, 0, 12);
	ASSERT_TRUE(nck_quant_backend_open(NCK_CUDA_MOCK_LIBRARY, 1, err, sizeof(err)) == NULL);
	fprintf(stderr, "device 1: %s\n", err);
	ASSERT_TRUE(strstr(err, "no CUDA device 1") != NULL);
	ASSERT_TRUE(nck_quant_backend_open("/nonexistent/libnemockpt_cuda.so", 0, err,
					   sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "/nonexistent") != NULL);
	ASSERT_TRUE(nck_quant_backend_open("libm.so.6", 0, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "no symbol " NCK_QUANT_CUDA_SYMBOL) != NULL);
}
