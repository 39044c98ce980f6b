/* SPDX-License-Identifier: MIT */
/*
 * bench_quant: throughput of the quantization kernels in GB/s of bf16 input
 * (input bytes / wall time; best of several runs).
 *
 *   bench_quant [--mib N] [--threads N] [--backend SPEC] [--min-seconds S]
 *
 * Prints, for one thread (with each instruction set of the CPU loops this
 * CPU has) and for N threads (default: all online CPUs; the best
 * instruction set) of the CPU backend: amax, fp8 codes, fp8 total (amax + codes), int4 block
 * scales, int4 packing, int4 total (scales + packing), nvfp4 (codes and
 * block scales at a given global scale), nvfp4 total (amax + nvfp4), over a random
 * [rows, 4096] bf16 weight of N MiB (default 256). --backend auto|N also
 * times the same operations through that backend (e.g. the CUDA one, end to
 * end from host memory to host memory).
 *
 * Ownership: one process, buffers freed at exit. Thread-safety: n/a.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nemockpt/log.h"
#include "quant/quant.h"

#define COLS 4096
#define GROUP 128

struct bench {
	uint16_t *w;
	size_t rows, n;
	float *scales;
	uint8_t *fp8, *packed, *nvs; /* nvfp4 reuses `packed` for its codes */
	double min_seconds;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Fills w with bf16 weights (xorshift; about N(0, 0.02) in scale). */
static void fill(uint16_t *w, size_t n)
{
	uint64_t x = 0x243F6A8885A308D3ull;

	for (size_t i = 0; i < n; i++) {
		float f;
		uint32_t u;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		f = ((float)((x * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f - 0.5f) * 0.08f;
		memcpy(&u, &f, sizeof(u));
		w[i] = (uint16_t)(u >> 16);
	}
}

enum op {
	OP_AMAX, OP_FP8, OP_FP8_TOTAL, OP_SCALES, OP_PACK, OP_INT4_TOTAL, OP_NVFP4, OP_NVFP4_TOTAL,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"amax", "fp8 codes", "fp8 total", "int4 scales", "int4 pack", "int4 total", "nvfp4",
	"nvfp4 total",
};

/* Runs one operation once; be NULL: the CPU functions with `threads`. */
static int run_once(struct bench *b, enum op op, const nck_quant_backend *be, int threads)
{
	float amax = 0;
	int rc = 0;

	if (op == OP_AMAX || op == OP_FP8_TOTAL || op == OP_NVFP4_TOTAL)
		rc = be ? nck_quant_amax(be, &amax, b->w, NCK_DTYPE_BF16, b->n)
			: nck_quant_cpu_amax(&amax, b->w, NCK_DTYPE_BF16, b->n, threads);
	if (rc == 0 && (op == OP_FP8 || op == OP_FP8_TOTAL))
		rc = be ? nck_quant_fp8(be, b->fp8, b->w, NCK_DTYPE_BF16, b->n, 0.0001f)
			: nck_quant_cpu_fp8(b->fp8, b->w, NCK_DTYPE_BF16, b->n, 0.0001f, threads);
	if (rc == 0 && (op == OP_SCALES || op == OP_INT4_TOTAL))
		rc = be ? nck_quant_int4_scales(be, b->scales, b->w, NCK_DTYPE_BF16, b->rows, COLS,
						GROUP)
			: nck_quant_cpu_int4_scales(b->scales, b->w, NCK_DTYPE_BF16, b->rows, COLS,
						    GROUP, threads);
	if (rc == 0 && (op == OP_PACK || op == OP_INT4_TOTAL))
		rc = be ? nck_quant_int4_pack(be, b->packed, b->w, NCK_DTYPE_BF16, b->rows, COLS,
					      GROUP, b->scales)
			: nck_quant_cpu_int4_pack(b->packed, b->w, NCK_DTYPE_BF16, b->rows, COLS,
						  GROUP, b->scales, threads);
	if (rc == 0 && (op == OP_NVFP4 || op == OP_NVFP4_TOTAL)) {
		float g = op == OP_NVFP4 ? 0.04f / 2688.0f : nck_quant_nvfp4_global(amax);

		rc = be ? nck_quant_nvfp4(be, b->packed, b->nvs, b->w, NCK_DTYPE_BF16, b->n, g)
			: nck_quant_cpu_nvfp4(b->packed, b->nvs, b->w, NCK_DTYPE_BF16, b->n, g,
					      threads);
	}
	return rc;
}

/* Best GB/s of bf16 input over at least 3 runs and min_seconds; < 0 on error. */
static double measure(struct bench *b, enum op op, const nck_quant_backend *be, int threads)
{
	double best = 0, start = now();

	for (int i = 0; i < 3 || now() - start < b->min_seconds; i++) {
		double t0 = now(), dt;

		if (run_once(b, op, be, threads) != 0)
			return -1;
		dt = now() - t0;
		if (dt > 0 && b->n * 2.0 / dt / 1e9 > best)
			best = b->n * 2.0 / dt / 1e9;
	}
	return best;
}

static void report(struct bench *b, const char *label, const nck_quant_backend *be, int threads)
{
	printf("%-28s", label);
	for (int op = 0; op < OP_COUNT; op++)
		printf(" %11.2f", measure(b, (enum op)op, be, threads));
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const char *const isas[] = { "base", "avx2", "avx512" };
	struct bench b = { .min_seconds = 1.0 };
	size_t mib = 256;
	int threads = nck_quant_cpu_threads();
	const char *spec = NULL;
	char label[64];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--mib") == 0)
			mib = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--backend") == 0)
			spec = argv[i + 1];
		else if (strcmp(argv[i], "--min-seconds") == 0)
			b.min_seconds = atof(argv[i + 1]);
	}
	nck_log_init("bench_quant", NCK_LOG_INFO);
	b.rows = (mib << 20) / 2 / COLS / 2 * 2;
	b.n = b.rows * COLS;
	b.w = malloc(b.n * 2);
	b.fp8 = malloc(b.n);
	b.packed = malloc(b.n / 2);
	b.scales = malloc(b.rows * (COLS / GROUP) * sizeof(float));
	b.nvs = malloc(b.n / 16);
	if (!b.n || !b.w || !b.fp8 || !b.packed || !b.scales || !b.nvs) {
		fprintf(stderr, "bench_quant: out of memory or empty input\n");
		return 1;
	}
	fill(b.w, b.n);
	printf("bf16 [%zu, %d] (%.0f MiB), group %d; GB/s of bf16 input, best of runs\n", b.rows,
	       COLS, b.n * 2.0 / 1048576, GROUP);
	printf("%-28s", "");
	for (int op = 0; op < OP_COUNT; op++)
		printf(" %11s", op_names[op]);
	printf("\n");
	for (size_t k = 0; k < sizeof(isas) / sizeof(isas[0]); k++) {
		if (nck_quant_cpu_set_isa(isas[k]) != 0)
			continue;
		snprintf(label, sizeof(label), "cpu %s, 1 thread", isas[k]);
		report(&b, label, NULL, 1);
	}
	nck_quant_cpu_set_isa("auto");
	snprintf(label, sizeof(label), "cpu %s, %d threads", nck_quant_cpu_isa(), threads);
	if (threads > 1)
		report(&b, label, NULL, threads);
	if (spec) {
		nck_diag diag;
		const nck_quant_backend *be;

		nck_diag_init(&diag);
		be = nck_quant_backend_get(spec, &diag);
		if (!be) {
			fprintf(stderr, "bench_quant: %s\n", diag.msg);
			return 1;
		}
		report(&b, be->name, be, 0);
	}
	free(b.w);
	free(b.fp8);
	free(b.packed);
	free(b.scales);
	free(b.nvs);
	return 0;
}
