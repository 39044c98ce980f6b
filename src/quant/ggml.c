/* SPDX-License-Identifier: MIT */
/*
 * GGUF tensor encodings on the CPU (see ggml.h). Compiled without fused
 * multiply-add (CMake: -ffp-contract=off): Q4_0's x * id + 8.5 must round
 * twice, as numpy computes it. Inputs are widened a run at a time (one
 * dtype switch per run) so the per-element loops stay branch-light.
 */
#include "quant/ggml.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "quant/quant.h"

/* Rows per thread below which a call stays in the calling thread. */
#define GGML_MIN_ELEMS_PER_THREAD (1u << 20)
#define GGML_MAX_THREADS	  16

/* ---- element conversions ------------------------------------------------- */

/* float32 -> IEEE half bits, round to nearest even (numpy's cast). */
static inline uint16_t ggml_f16(float x)
{
	uint32_t u, a, m, e, shift, h, rem, half;
	uint16_t sign;

	memcpy(&u, &x, sizeof(u));
	sign = (uint16_t)((u >> 16) & 0x8000u);
	a = u & 0x7fffffffu;
	if (a > 0x7f800000u) /* NaN: quiet, top payload bits kept */
		return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
	if (a >= 0x477ff000u) /* 65520 and up round to infinity (65504 is odd) */
		return (uint16_t)(sign | 0x7c00u);
	if (a >= 0x38800000u) { /* normal half: rebias the exponent, round to nearest even */
		a -= 112u << 23;
		return (uint16_t)(sign | ((a + 0xfffu + ((a >> 13) & 1u)) >> 13));
	}
	/* subnormal half: the value in units of 2^-24, rounded to nearest even */
	e = a >> 23;
	m = (a & 0x7fffffu) | (e ? 0x800000u : 0);
	shift = 126u - (e ? e : 1u);
	if (shift > 24u)
		return sign;
	h = m >> shift;
	rem = m & ((1u << shift) - 1u);
	half = 1u << (shift - 1u);
	if (rem > half || (rem == half && (h & 1u)))
		h++;
	return (uint16_t)(sign | h);
}

uint16_t nck_ggml_f16(float x)
{
	return ggml_f16(x);
}

uint16_t nck_ggml_bf16(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof(u));
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)(((u & 0xffff0000u) | 0x00400000u) >> 16);
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

uint64_t nck_ggml_bytes(uint32_t type, uint64_t n)
{
	switch (type) {
	case NCK_GGML_F32:
		return n > UINT64_MAX / 4 ? 0 : n * 4;
	case NCK_GGML_F16:
	case NCK_GGML_BF16:
		return n > UINT64_MAX / 2 ? 0 : n * 2;
	case NCK_GGML_Q8_0:
		return n % NCK_GGML_QK ? 0 : n / NCK_GGML_QK * NCK_GGML_Q8_0_BYTES;
	case NCK_GGML_Q4_0:
		return n % NCK_GGML_QK ? 0 : n / NCK_GGML_QK * NCK_GGML_Q4_0_BYTES;
	default:
		return 0;
	}
}

/* Widens n elements of src (BF16, F16 or F32, little-endian) to float32, exactly. */
static void ggml_widen(float *x, const unsigned char *p, nck_dtype dtype, size_t n)
{
	uint32_t u;

	switch (dtype) {
	case NCK_DTYPE_BF16:
		for (size_t i = 0; i < n; i++) {
			u = ((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8) << 16;
			memcpy(&x[i], &u, sizeof(u));
		}
		break;
	case NCK_DTYPE_F16:
		for (size_t i = 0; i < n; i++)
			x[i] = nck_quant_f16_to_f32(
			    (uint16_t)((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8));
		break;
	default:
		for (size_t i = 0; i < n; i++) {
			u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
			    (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
			memcpy(&x[i], &u, sizeof(u));
		}
		break;
	}
}

static void ggml_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static bool ggml_dtype_ok(nck_dtype dtype)
{
	return dtype == NCK_DTYPE_BF16 || dtype == NCK_DTYPE_F16 || dtype == NCK_DTYPE_F32;
}

/* Elements widened at a time by nck_ggml_convert (a stack buffer). */
#define GGML_RUN 256u

int nck_ggml_convert(void *dst, uint32_t type, const void *src, nck_dtype dtype, size_t n)
{
	const unsigned char *in = src;
	unsigned char *o = dst;
	size_t es = nck_dtype_size(dtype);
	float x[GGML_RUN];

	if ((!dst || !src) && n)
		return -EINVAL;
	if (!ggml_dtype_ok(dtype) ||
	    (type != NCK_GGML_F32 && type != NCK_GGML_F16 && type != NCK_GGML_BF16))
		return -ENOTSUP;
	for (size_t at = 0; at < n; at += GGML_RUN) {
		size_t k = n - at < GGML_RUN ? n - at : GGML_RUN;

		ggml_widen(x, in + at * es, dtype, k);
		if (type == NCK_GGML_F32) {
			for (size_t i = 0; i < k; i++) {
				uint32_t u;

				memcpy(&u, &x[i], sizeof(u));
				o[4 * (at + i)] = (unsigned char)u;
				o[4 * (at + i) + 1] = (unsigned char)(u >> 8);
				o[4 * (at + i) + 2] = (unsigned char)(u >> 16);
				o[4 * (at + i) + 3] = (unsigned char)(u >> 24);
			}
		} else if (type == NCK_GGML_F16) {
			for (size_t i = 0; i < k; i++)
				ggml_put16(o + 2 * (at + i), ggml_f16(x[i]));
		} else {
			for (size_t i = 0; i < k; i++)
				ggml_put16(o + 2 * (at + i), nck_ggml_bf16(x[i]));
		}
	}
	return 0;
}

/* ---- blocks ---------------------------------------------------------------- */

/* One Q8_0 block of the 32 floats x. */
static void ggml_q8_0_block(unsigned char out[NCK_GGML_Q8_0_BYTES], const float *x)
{
	float amax = 0.0f, d, id;

	for (unsigned i = 0; i < NCK_GGML_QK; i++)
		if (fabsf(x[i]) > amax)
			amax = fabsf(x[i]);
	d = amax / 127.0f;
	id = d == 0.0f ? 0.0f : 1.0f / d;
	ggml_put16(out, ggml_f16(d));
	for (unsigned i = 0; i < NCK_GGML_QK; i++) {
		/* roundf (half away from zero) on the magnitude, |p| <= 127.5:
		 * truncate, add 1 when the exact remainder is >= 0.5; NaN (an inf
		 * or NaN input) gives 0. Selects, not branches: random data would
		 * mispredict every other element. */
		float p = x[i] * id, a = fabsf(p);
		int t = (int)(a < 128.0f ? a : 0.0f);
		int q;

		t += a - (float)t >= 0.5f;
		q = p < 0.0f ? -t : t;
		out[2 + i] = (unsigned char)(int8_t)q;
	}
}

/* One Q4_0 block of the 32 floats x. */
static void ggml_q4_0_block(unsigned char out[NCK_GGML_Q4_0_BYTES], const float *x)
{
	float amax = 0.0f, m = 0.0f, d, id;
	unsigned char q[NCK_GGML_QK];

	for (unsigned i = 0; i < NCK_GGML_QK; i++) {
		if (fabsf(x[i]) > amax) { /* strictly greater: the first maximum wins */
			amax = fabsf(x[i]);
			m = x[i];
		}
	}
	d = m / -8.0f;
	id = d == 0.0f ? 0.0f : 1.0f / d;
	for (unsigned i = 0; i < NCK_GGML_QK; i++) {
		/* float32 product, then float32 sum, then truncation: gguf-py 0.19.0
		 * (newer trees emulate a fused multiply-add in float64 instead) */
		float v = x[i] * id + 8.5f;

		/* truncation of a positive v is the conversion; NaN gives 0 */
		q[i] = v >= 15.0f ? 15 : v >= 1.0f ? (unsigned char)(int)v : 0;
	}
	ggml_put16(out, ggml_f16(d));
	for (unsigned j = 0; j < NCK_GGML_QK / 2; j++)
		out[2 + j] = (unsigned char)(q[j] | q[j + NCK_GGML_QK / 2] << 4);
}

/* ---- rows, threads ------------------------------------------------------- */

typedef struct ggml_job {
	unsigned char *dst;
	const unsigned char *src;
	nck_dtype dtype;
	uint32_t type;
	size_t row0, rows, cols;
} ggml_job;

static void ggml_rows(const ggml_job *j)
{
	size_t es = nck_dtype_size(j->dtype), bb = nck_ggml_bytes(j->type, NCK_GGML_QK);
	size_t nb = j->cols / NCK_GGML_QK;
	float x[NCK_GGML_QK];

	for (size_t r = j->row0; r < j->row0 + j->rows; r++) {
		for (size_t b = 0; b < nb; b++) {
			const unsigned char *s = j->src + (r * j->cols + b * NCK_GGML_QK) * es;
			unsigned char *o = j->dst + (r * nb + b) * bb;

			ggml_widen(x, s, j->dtype, NCK_GGML_QK);
			if (j->type == NCK_GGML_Q8_0)
				ggml_q8_0_block(o, x);
			else
				ggml_q4_0_block(o, x);
		}
	}
}

static void *ggml_thread(void *arg)
{
	ggml_rows(arg);
	return NULL;
}

int nck_ggml_quantize(void *dst, uint32_t type, const void *src, nck_dtype dtype, size_t rows,
		      size_t cols, int threads)
{
	ggml_job jobs[GGML_MAX_THREADS];
	pthread_t tid[GGML_MAX_THREADS];
	bool started[GGML_MAX_THREADS] = {false};
	size_t n, nt, per;

	if (type != NCK_GGML_Q8_0 && type != NCK_GGML_Q4_0)
		return -ENOTSUP;
	if (!ggml_dtype_ok(dtype))
		return -ENOTSUP;
	if (cols % NCK_GGML_QK || ((!dst || !src) && rows && cols))
		return -EINVAL;
	if (__builtin_mul_overflow(rows, cols, &n) || n > SIZE_MAX / 4)
		return -EOVERFLOW;
	nt = threads > 1 ? (size_t)threads : 1;
	if (nt > GGML_MAX_THREADS)
		nt = GGML_MAX_THREADS;
	if (nt > n / GGML_MIN_ELEMS_PER_THREAD)
		nt = n / GGML_MIN_ELEMS_PER_THREAD ? n / GGML_MIN_ELEMS_PER_THREAD : 1;
	if (nt > rows)
		nt = rows ? rows : 1;
	per = rows / nt;
	for (size_t t = 0; t < nt; t++) {
		jobs[t] = (ggml_job){.dst = dst,
				     .src = src,
				     .dtype = dtype,
				     .type = type,
				     .row0 = t * per,
				     .rows = t + 1 == nt ? rows - t * per : per,
				     .cols = cols};
		/* a thread that cannot start leaves its rows to the calling thread */
		if (t > 0)
			started[t] = pthread_create(&tid[t], NULL, ggml_thread, &jobs[t]) == 0;
	}
	ggml_rows(&jobs[0]);
	for (size_t t = 1; t < nt; t++) {
		if (started[t])
			pthread_join(tid[t], NULL);
		else
			ggml_rows(&jobs[t]);
	}
	return 0;
}
