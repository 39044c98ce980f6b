/* SPDX-License-Identifier: MIT */
/*
 * GGUF tensor encodings on the CPU (see ggml.h). Compiled without fused
 * multiply-add (CMake: -ffp-contract=off): Q4_0's float64 x * id + 8.5 must
 * round twice, as numpy computes it.
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

uint16_t nck_ggml_f16(float x)
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

/* Element i of src as float32 (exact). */
static float ggml_load(const unsigned char *p, size_t i, nck_dtype dtype)
{
	uint32_t u;
	float f;

	if (dtype == NCK_DTYPE_F32) {
		p += 4 * i;
		u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[3] << 24;
		memcpy(&f, &u, sizeof(f));
		return f;
	}
	p += 2 * i;
	u = (uint32_t)p[0] | (uint32_t)p[1] << 8;
	return dtype == NCK_DTYPE_BF16 ? nck_quant_bf16_to_f32((uint16_t)u)
				       : nck_quant_f16_to_f32((uint16_t)u);
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

int nck_ggml_convert(void *dst, uint32_t type, const void *src, nck_dtype dtype, size_t n)
{
	unsigned char *o = dst;

	if ((!dst || !src) && n)
		return -EINVAL;
	if (!ggml_dtype_ok(dtype) ||
	    (type != NCK_GGML_F32 && type != NCK_GGML_F16 && type != NCK_GGML_BF16))
		return -ENOTSUP;
	for (size_t i = 0; i < n; i++) {
		float x = ggml_load(src, i, dtype);
		uint32_t u;

		if (type == NCK_GGML_F32) {
			memcpy(&u, &x, sizeof(u));
			o[4 * i] = (unsigned char)u;
			o[4 * i + 1] = (unsigned char)(u >> 8);
			o[4 * i + 2] = (unsigned char)(u >> 16);
			o[4 * i + 3] = (unsigned char)(u >> 24);
		} else {
			ggml_put16(o + 2 * i,
				   type == NCK_GGML_F16 ? nck_ggml_f16(x) : nck_ggml_bf16(x));
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
	ggml_put16(out, nck_ggml_f16(d));
	for (unsigned i = 0; i < NCK_GGML_QK; i++)
		out[2 + i] = (unsigned char)(int8_t)roundf(x[i] * id);
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
		float p = x[i] * id;
		float t = truncf(p + 8.5f);

		q[i] = t >= 15.0f ? 15 : t > 0.0f ? (unsigned char)t : 0;
	}
	ggml_put16(out, nck_ggml_f16(d));
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

			for (unsigned i = 0; i < NCK_GGML_QK; i++)
				x[i] = ggml_load(s, i, j->dtype);
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
