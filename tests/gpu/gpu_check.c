/* SPDX-License-Identifier: MIT */
/*
 * gpu_check: the CUDA quantization backend against the CPU backend, bit for
 * bit, and throughputs, on a machine with an NVIDIA GPU (tests/gpu/run.sh).
 *
 *   gpu_check [--quick | --skip-varied] [--device N] [--mib M] [--library PATH]
 *
 * --library loads the backend from PATH (nck_quant_backend_open) instead of
 * the installed libnemockpt_cuda.so: tests/gpu/run.sh passes the mock
 * backend (nemockpt_cuda_mock) on machines without a GPU, to prove this
 * program and the script there.
 *
 *  1. Exhaustive and random inputs (bf16, f16, f32; NaN, inf, subnormals;
 *     odd sizes and misaligned buffers; several INT4 shapes and groups):
 *     amax, fp8 codes, INT4 scales and packing, NVFP4 codes and block
 *     scales from the GPU must equal the CPU's; also from 4 threads at once
 *     (the backend's slots).
 *     (--skip-varied leaves this part out.)
 *  2. Unless --quick: a synthetic model-sized bf16 weight, [rows, 32768] of
 *     M MiB (default 2048), quantized both ways (fp8, INT4, NVFP4) and compared;
 *     prints GB/s of bf16 input for the CPU on one core (a 256 MiB slice) and
 *     on all cores, the GPU end to end (host -> device -> host, copies
 *     included), and the raw pinned H2D and D2H copy bandwidth.
 *
 * Exit status: 0 all equal, 1 a mismatch or an error, 77 no usable device.
 * Ownership: one process. Thread-safety: n/a (threads in part 1 share only
 * the backend).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "nemockpt/log.h"
#include "quant/quant.h"

#define BIG_COLS 32768
#define SLICE_MIB 256

static const nck_quant_backend *gpu;
static int failures;
static long comparisons;

/* ---- helpers ---------------------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static float bitsf(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

/* Random weight-like float32 (sign * [0, 1) * 2^e, e in [-14, 1]); 1 in 4096 special. */
static float rnd_value(uint64_t *s)
{
	static const uint32_t special[] = { 0x7FC00000u, 0xFFC00000u, 0x7F800000u, 0xFF800000u,
					    0x80000000u, 0x00000001u, 0x00800000u, 0x7F7FFFFFu };
	uint64_t r = rng_next(s);
	float m;

	if ((r & 0xFFF) == 0)
		return bitsf(special[(r >> 12) % 8]);
	m = (float)((r >> 20) & 0xFFFFFF) / 16777216.0f;
	return (r >> 63 ? -m : m) * bitsf((uint32_t)(127 - 14 + (int)((r >> 48) % 16)) << 23);
}

/* Stores float32 x as element i of dtype dt (bf16 and f16 by truncation). */
static void put(void *buf, nck_dtype dt, size_t i, float x)
{
	uint32_t u = fbits(x);
	uint16_t h;

	if (dt == NCK_DTYPE_F32) {
		memcpy((char *)buf + 4 * i, &x, 4);
		return;
	}
	if (dt == NCK_DTYPE_BF16) {
		h = (uint16_t)(u >> 16);
	} else {
		int e = (int)((u >> 23) & 0xFF) - 127 + 15;
		uint16_t sg = (uint16_t)((u >> 16) & 0x8000);

		if ((u & 0x7FFFFFFF) > 0x7F800000)
			h = 0x7E00;
		else if (e >= 31)
			h = sg | 0x7C00;
		else if (e <= 0)
			h = (uint16_t)(sg | ((u >> 13) & 0x3FF)); /* some subnormal */
		else
			h = (uint16_t)(sg | (e << 10) | ((u >> 13) & 0x3FF));
	}
	memcpy((char *)buf + 2 * i, &h, 2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "gpu_check: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* Records a comparison; prints the first difference. */
static void expect_same(const char *what, const void *cpu, const void *gpu_out, size_t len)
{
	__atomic_add_fetch(&comparisons, 1, __ATOMIC_RELAXED);
	if (memcmp(cpu, gpu_out, len) == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		if (((const uint8_t *)cpu)[i] != ((const uint8_t *)gpu_out)[i]) {
			fprintf(stderr, "MISMATCH %s: byte %zu of %zu: cpu %02x gpu %02x\n", what, i,
				len, ((const uint8_t *)cpu)[i], ((const uint8_t *)gpu_out)[i]);
			break;
		}
	}
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

static void expect_ok(const char *what, int rc)
{
	if (rc == 0)
		return;
	fprintf(stderr, "ERROR %s: %s\n", what, strerror(-rc));
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

/* ---- part 1: equality on varied inputs ------------------------------------------------------ */

/* amax and fp8 codes (at the amax scale and at `extra`) of n elements at src. */
static void check_fp8(const char *tag, const void *src, nck_dtype dt, size_t n, float extra)
{
	uint8_t *c = xmalloc(n), *g = xmalloc(n);
	float ac = -1, ag = -2;
	const float scales[2] = { 0, extra };
	char what[160];

	expect_ok("cpu amax", nck_quant_cpu_amax(&ac, src, dt, n, 0));
	expect_ok("gpu amax", nck_quant_amax(gpu, &ag, src, dt, n));
	snprintf(what, sizeof(what), "%s amax", tag);
	expect_same(what, &ac, &ag, sizeof(ac));
	for (int k = 0; k < 2; k++) {
		float s = k ? scales[k] : nck_quant_fp8_scale(ac);

		expect_ok("cpu fp8", nck_quant_cpu_fp8(c, src, dt, n, s, 0));
		expect_ok("gpu fp8", nck_quant_fp8(gpu, g, src, dt, n, s));
		snprintf(what, sizeof(what), "%s fp8 scale %08x", tag, fbits(s));
		expect_same(what, c, g, n);
	}
	free(c);
	free(g);
}

/* INT4 scales and packing of [rows, cols] at src. */
static void check_int4(const char *tag, const void *src, nck_dtype dt, size_t rows, size_t cols,
		       size_t group)
{
	size_t ns = rows * (cols / group), np = rows / 2 * cols;
	float *sc = xmalloc(ns * 4), *sg = xmalloc(ns * 4);
	uint8_t *pc = xmalloc(np), *pg = xmalloc(np);
	char what[160];

	expect_ok("cpu scales", nck_quant_cpu_int4_scales(sc, src, dt, rows, cols, group, 0));
	expect_ok("gpu scales", nck_quant_int4_scales(gpu, sg, src, dt, rows, cols, group));
	snprintf(what, sizeof(what), "%s int4 scales [%zu, %zu] g%zu", tag, rows, cols, group);
	expect_same(what, sc, sg, ns * 4);
	expect_ok("cpu pack", nck_quant_cpu_int4_pack(pc, src, dt, rows, cols, group, sc, 0));
	expect_ok("gpu pack", nck_quant_int4_pack(gpu, pg, src, dt, rows, cols, group, sc));
	snprintf(what, sizeof(what), "%s int4 pack [%zu, %zu] g%zu", tag, rows, cols, group);
	expect_same(what, pc, pg, np);
	free(sc);
	free(sg);
	free(pc);
	free(pg);
}

/* NVFP4 codes and block scales of n elements (a multiple of 16) at global g. */
static void check_nvfp4(const char *tag, const void *src, nck_dtype dt, size_t n, float g)
{
	uint8_t *cc = xmalloc(n / 2), *cg = xmalloc(n / 2), *sc = xmalloc(n / 16),
		*sg = xmalloc(n / 16);
	char what[160];

	expect_ok("cpu nvfp4", nck_quant_cpu_nvfp4(cc, sc, src, dt, n, g, 0));
	expect_ok("gpu nvfp4", nck_quant_nvfp4(gpu, cg, sg, src, dt, n, g));
	snprintf(what, sizeof(what), "%s nvfp4 scales n %zu global %08x", tag, n, fbits(g));
	expect_same(what, sc, sg, n / 16);
	snprintf(what, sizeof(what), "%s nvfp4 codes n %zu global %08x", tag, n, fbits(g));
	expect_same(what, cc, cg, n / 2);
	free(cc);
	free(cg);
	free(sc);
	free(sg);
}

/* Every 16-bit pattern as bf16 and f16, at scales that saturate or go subnormal. */
static void check_exhaustive(void)
{
	static const float scales[] = { 1.0f, 0x1p-20f, 0x1p20f, 0x1p100f, 0.3f, 7e-45f };
	uint16_t *v = xmalloc(65536 * 2);

	for (uint32_t i = 0; i < 65536; i++)
		v[i] = (uint16_t)i;
	for (size_t k = 0; k < sizeof(scales) / sizeof(scales[0]); k++) {
		check_fp8("exhaustive bf16", v, NCK_DTYPE_BF16, 65536, scales[k]);
		check_fp8("exhaustive f16", v, NCK_DTYPE_F16, 65536, scales[k]);
		check_nvfp4("exhaustive bf16", v, NCK_DTYPE_BF16, 65536, scales[k] / 2688.0f);
		check_nvfp4("exhaustive f16", v, NCK_DTYPE_F16, 65536, scales[k] / 2688.0f);
	}
	check_nvfp4("exhaustive bf16", v, NCK_DTYPE_BF16, 65536, nck_quant_nvfp4_global(0x1.fep127f));
	check_nvfp4("exhaustive f16", v, NCK_DTYPE_F16, 65536, nck_quant_nvfp4_global(65504.0f));
	check_int4("exhaustive bf16", v, NCK_DTYPE_BF16, 2, 32768, 128);
	check_int4("exhaustive f16", v, NCK_DTYPE_F16, 512, 128, 128);
	free(v);
}

/* Random inputs of every dtype, odd sizes, one byte of misalignment. */
static void check_random(uint64_t seed)
{
	static const nck_dtype dts[] = { NCK_DTYPE_BF16, NCK_DTYPE_F16, NCK_DTYPE_F32 };
	static const size_t sizes[] = { 1, 7, 1000, (1 << 20) + 3, 5000011 };
	static const size_t shapes[][3] = { { 2, 128, 128 }, { 64, 4096, 128 }, { 130, 384, 64 },
					    { 2, 24576, 128 }, { 8, 96, 32 }, { 1026, 4096, 128 },
					    { 6, 21, 7 } };
	uint64_t s = seed;
	size_t max = 1026 * 4096 > 5000011 ? 1026 * 4096 : 5000011;
	char *mem = xmalloc(max * 4 + 1), *buf = mem + 1;

	for (size_t d = 0; d < 3; d++) {
		for (size_t i = 0; i < max; i++)
			put(buf, dts[d], i, rnd_value(&s));
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			check_fp8(nck_dtype_name(dts[d]), buf, dts[d], sizes[k], 1.0f / 3.0f);
			check_nvfp4(nck_dtype_name(dts[d]), buf, dts[d], sizes[k] / 16 * 16 + 16,
				    1.0f / 2688.0f);
		}
		for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++)
			check_int4(nck_dtype_name(dts[d]), buf, dts[d], shapes[k][0], shapes[k][1],
				   shapes[k][2]);
	}
	free(mem);
}

static void *random_thread(void *arg)
{
	check_random((uint64_t)(uintptr_t)arg);
	return NULL;
}

/* Four threads at once: calls share the device through the backend's slots. */
static void check_concurrent(void)
{
	pthread_t t[4];

	for (uintptr_t i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, random_thread, (void *)(i + 100)) != 0)
			expect_ok("pthread_create", -EAGAIN);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
}

/* ---- part 2: a model-sized weight ------------------------------------------------------------ */

struct fill_part {
	uint16_t *w;
	size_t begin, end;
};

static void *fill_main(void *arg)
{
	struct fill_part *p = arg;
	uint64_t s = 0x9E3779B97F4A7C15ull ^ (p->begin * 0x632BE59BD9B4E019ull) ^ 1;

	for (size_t i = p->begin; i < p->end; i++) {
		float f = ((float)(rng_next(&s) >> 40) / 16777216.0f - 0.5f) * 0.06f;

		p->w[i] = (uint16_t)(fbits(f) >> 16);
	}
	return NULL;
}

/* Fills n bf16 weights with 16 threads. */
static void fill_big(uint16_t *w, size_t n)
{
	struct fill_part parts[16];
	pthread_t t[16];
	bool started[16];

	for (size_t i = 0; i < 16; i++) {
		parts[i] = (struct fill_part){ w, n * i / 16, n * (i + 1) / 16 };
		started[i] = pthread_create(&t[i], NULL, fill_main, &parts[i]) == 0;
		if (!started[i])
			fill_main(&parts[i]);
	}
	for (size_t i = 0; i < 16; i++)
		if (started[i])
			pthread_join(t[i], NULL);
}

struct big {
	uint16_t *w;
	size_t rows, n;
	float amax, *scales_c, *scales_g;
	uint8_t *fp8_c, *fp8_g, *pack_c, *pack_g;
	uint8_t *nv_c, *nv_g, *nvs_c, *nvs_g; /* NVFP4 codes and block scales */
};

/* GB/s of bf16 input for `elems` elements in `sec` seconds. */
static double gbs(size_t elems, double sec)
{
	return sec > 0 ? elems * 2.0 / sec / 1e9 : 0;
}

/* CPU on one core over a slice, then on all cores over everything (the reference). */
static void big_cpu(struct big *b)
{
	size_t srows = ((size_t)SLICE_MIB << 20) / 2 / BIG_COLS, sn;
	int th = nck_quant_cpu_threads();
	double t0, t1, t2, t3, t4;
	float a;

	srows = srows < b->rows ? srows : b->rows; /* --mib below the slice */
	sn = srows * BIG_COLS;
	t0 = now();
	expect_ok("cpu amax 1", nck_quant_cpu_amax(&a, b->w, NCK_DTYPE_BF16, sn, 1));
	expect_ok("cpu fp8 1", nck_quant_cpu_fp8(b->fp8_c, b->w, NCK_DTYPE_BF16, sn,
						 nck_quant_fp8_scale(a), 1));
	t1 = now();
	expect_ok("cpu scales 1", nck_quant_cpu_int4_scales(b->scales_c, b->w, NCK_DTYPE_BF16, srows,
							    BIG_COLS, 128, 1));
	expect_ok("cpu pack 1", nck_quant_cpu_int4_pack(b->pack_c, b->w, NCK_DTYPE_BF16, srows,
							BIG_COLS, 128, b->scales_c, 1));
	t2 = now();
	expect_ok("cpu nvfp4 1", nck_quant_cpu_nvfp4(b->nv_c, b->nvs_c, b->w, NCK_DTYPE_BF16, sn,
						     nck_quant_nvfp4_global(a), 1));
	t3 = now();
	printf("  cpu, 1 thread (%zu MiB slice):  fp8 %.2f GB/s   int4 %.2f GB/s   nvfp4 %.2f GB/s"
	       " (without its amax)\n",
	       sn * 2 >> 20, gbs(sn, t1 - t0), gbs(sn, t2 - t1), gbs(sn, t3 - t2));
	t0 = now();
	expect_ok("cpu amax", nck_quant_cpu_amax(&b->amax, b->w, NCK_DTYPE_BF16, b->n, th));
	expect_ok("cpu fp8", nck_quant_cpu_fp8(b->fp8_c, b->w, NCK_DTYPE_BF16, b->n,
					       nck_quant_fp8_scale(b->amax), th));
	t1 = now();
	expect_ok("cpu scales", nck_quant_cpu_int4_scales(b->scales_c, b->w, NCK_DTYPE_BF16, b->rows,
							  BIG_COLS, 128, th));
	t2 = now();
	expect_ok("cpu pack", nck_quant_cpu_int4_pack(b->pack_c, b->w, NCK_DTYPE_BF16, b->rows,
						      BIG_COLS, 128, b->scales_c, th));
	t3 = now();
	expect_ok("cpu nvfp4", nck_quant_cpu_nvfp4(b->nv_c, b->nvs_c, b->w, NCK_DTYPE_BF16, b->n,
						   nck_quant_nvfp4_global(b->amax), th));
	t4 = now();
	printf("  cpu, %d threads:               fp8 %.2f GB/s   int4 %.2f GB/s"
	       "   (scales %.2f, pack %.2f)   nvfp4 %.2f GB/s (without its amax)\n",
	       th, gbs(b->n, t1 - t0), gbs(b->n, t3 - t1), gbs(b->n, t2 - t1), gbs(b->n, t3 - t2),
	       gbs(b->n, t4 - t3));
}

/* GPU end to end, twice (the first run includes buffer set-up); compared to the CPU. */
static void big_gpu(struct big *b)
{
	for (int run = 0; run < 2; run++) {
		double t0, t1, t2, t3, t4, t5;
		float a = -1;

		t0 = now();
		expect_ok("gpu amax", nck_quant_amax(gpu, &a, b->w, NCK_DTYPE_BF16, b->n));
		t1 = now();
		expect_ok("gpu fp8", nck_quant_fp8(gpu, b->fp8_g, b->w, NCK_DTYPE_BF16, b->n,
						   nck_quant_fp8_scale(a)));
		t2 = now();
		expect_ok("gpu scales", nck_quant_int4_scales(gpu, b->scales_g, b->w, NCK_DTYPE_BF16,
							      b->rows, BIG_COLS, 128));
		t3 = now();
		expect_ok("gpu pack", nck_quant_int4_pack(gpu, b->pack_g, b->w, NCK_DTYPE_BF16,
							  b->rows, BIG_COLS, 128, b->scales_g));
		t4 = now();
		expect_ok("gpu nvfp4", nck_quant_nvfp4(gpu, b->nv_g, b->nvs_g, b->w, NCK_DTYPE_BF16,
						       b->n, nck_quant_nvfp4_global(a)));
		t5 = now();
		printf("  gpu end to end, run %d:         fp8 %.2f GB/s   int4 %.2f GB/s"
		       "   (amax %.2f, codes %.2f, scales %.2f, pack %.2f)"
		       "   nvfp4 %.2f GB/s (with the amax: %.2f)\n",
		       run + 1, gbs(b->n, t2 - t0), gbs(b->n, t4 - t2), gbs(b->n, t1 - t0),
		       gbs(b->n, t2 - t1), gbs(b->n, t3 - t2), gbs(b->n, t4 - t3), gbs(b->n, t5 - t4),
		       gbs(b->n, t5 - t4 + t1 - t0));
		expect_same("big amax", &b->amax, &a, sizeof(a));
		expect_same("big fp8", b->fp8_c, b->fp8_g, b->n);
		expect_same("big int4 scales", b->scales_c, b->scales_g,
			    b->rows * (BIG_COLS / 128) * sizeof(float));
		expect_same("big int4 pack", b->pack_c, b->pack_g, b->n / 2);
		expect_same("big nvfp4 scales", b->nvs_c, b->nvs_g, b->n / 16);
		expect_same("big nvfp4 codes", b->nv_c, b->nv_g, b->n / 2);
	}
}

/* Raw pinned copy bandwidth (cudaMemcpy, 256 MiB, best of 5), in GB/s. */
static void copy_bandwidth(int device)
{
	size_t len = (size_t)256 << 20;
	void *h = NULL, *d = NULL;
	double best[2] = { 0, 0 };

	if (cudaSetDevice(device) != cudaSuccess || cudaMallocHost(&h, len) != cudaSuccess ||
	    cudaMalloc(&d, len) != cudaSuccess) {
		printf("  copies: could not allocate %zu MiB\n", len >> 20);
		cudaFreeHost(h);
		return;
	}
	memset(h, 1, len);
	for (int i = 0; i < 5; i++) {
		for (int dir = 0; dir < 2; dir++) {
			double t0 = now(), bw;

			if (dir == 0)
				cudaMemcpy(d, h, len, cudaMemcpyHostToDevice);
			else
				cudaMemcpy(h, d, len, cudaMemcpyDeviceToHost);
			bw = len / (now() - t0) / 1e9;
			best[dir] = bw > best[dir] ? bw : best[dir];
		}
	}
	/* Per input byte, fp8 codes move 0.5 B back, NVFP4 0.28125 B (codes and
	 * scales), both directions overlapped: the bound is the slower one. */
	printf("  raw pinned copies:             H2D %.2f GB/s   D2H %.2f GB/s"
	       "   (copy bound of fp8 codes: %.2f GB/s, of nvfp4: %.2f GB/s of input)\n",
	       best[0], best[1], best[0] < 2 * best[1] ? best[0] : 2 * best[1],
	       best[0] < best[1] / 0.28125 ? best[0] : best[1] / 0.28125);
	cudaFree(d);
	cudaFreeHost(h);
}

static void check_big(size_t mib, int device)
{
	struct big b = { 0 };

	b.rows = (mib << 20) / 2 / BIG_COLS / 2 * 2;
	b.n = b.rows * BIG_COLS;
	b.w = xmalloc(b.n * 2);
	b.fp8_c = xmalloc(b.n);
	b.fp8_g = xmalloc(b.n);
	b.pack_c = xmalloc(b.n / 2);
	b.pack_g = xmalloc(b.n / 2);
	b.scales_c = xmalloc(b.rows * (BIG_COLS / 128) * 4);
	b.scales_g = xmalloc(b.rows * (BIG_COLS / 128) * 4);
	b.nv_c = xmalloc(b.n / 2);
	b.nv_g = xmalloc(b.n / 2);
	b.nvs_c = xmalloc(b.n / 16);
	b.nvs_g = xmalloc(b.n / 16);
	fill_big(b.w, b.n);
	printf("model-sized weight: bf16 [%zu, %d], %.2f GiB; GB/s of bf16 input\n", b.rows,
	       BIG_COLS, b.n * 2.0 / (1 << 30));
	fflush(stdout);
	big_cpu(&b);
	fflush(stdout);
	big_gpu(&b);
	copy_bandwidth(device);
	free(b.w);
	free(b.fp8_c);
	free(b.fp8_g);
	free(b.pack_c);
	free(b.pack_g);
	free(b.scales_c);
	free(b.scales_g);
	free(b.nv_c);
	free(b.nv_g);
	free(b.nvs_c);
	free(b.nvs_g);
}

int main(int argc, char **argv)
{
	bool quick = false, varied = true;
	int device = 0;
	size_t mib = 2048;
	const char *library = NULL;
	char spec[16], err[512];
	nck_diag diag;
	double t0 = now();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--skip-varied") == 0)
			varied = false;
		else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
			device = atoi(argv[++i]);
		else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc)
			mib = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--library") == 0 && i + 1 < argc)
			library = argv[++i];
	}
	nck_log_init("gpu_check", NCK_LOG_INFO);
	snprintf(spec, sizeof(spec), "%d", device);
	nck_diag_init(&diag);
	if (library) {
		gpu = nck_quant_backend_open(library, device, err, sizeof(err));
		if (!gpu) {
			printf("gpu_check: %s\n", err);
			return 1;
		}
	} else {
		gpu = nck_quant_backend_get(spec, &diag);
	}
	if (!gpu) {
		printf("gpu_check: skipped: %s\n", diag.msg);
		return 77;
	}
	printf("backend: %s; cpu threads: %d\n", gpu->name, nck_quant_cpu_threads());
	if (varied) {
		check_exhaustive();
		check_random(1);
		check_concurrent();
		printf("varied inputs: %ld comparisons, %d mismatches/errors (%.1f s)\n",
		       comparisons, failures, now() - t0);
		fflush(stdout);
	}
	if (!quick)
		check_big(mib, device);
	printf("gpu_check: %s: %ld comparisons, %d mismatches/errors, %.1f s\n",
	       failures ? "FAILED" : "OK", comparisons, failures, now() - t0);
	return failures ? 1 : 0;
}
