/* SPDX-License-Identifier: MIT */
/*
 * The CPU backend of nck_quant (see quant.h): plain C11 loops over the
 * element arithmetic of elem.h, written so that gcc vectorizes them (the
 * dtype is a constant in each specialized loop, loads go through memcpy,
 * selects instead of branches, signed 32-bit compares). Built with
 * -ffp-contract=off so that no multiply-add is fused: results are
 * bit-exact. On x86-64 the outer loops (loops.h) are compiled three times,
 * for SSE2, AVX2 and AVX-512 (function target attributes, no intrinsics),
 * and the best one the CPU supports is chosen at first use.
 *
 * Large inputs are split over POSIX threads started per call (the caller
 * runs the first part): element ranges for amax and fp8, rows for INT4
 * scales, row pairs for INT4 packing, blocks of 16 for NVFP4. Each part writes its own outputs;
 * the parts' amax values are combined with max, which does not depend on
 * the split, so every thread count gives the same bits.
 *
 * Ownership: no allocation. Thread-safety: any thread, concurrently; the
 * default thread count is an atomic.
 */
#include "quant/quant.h"

#include <errno.h>
#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "quant/elem.h"
#include "quant/quant_int.h"

#if FLT_EVAL_METHOD != 0
#error "quant.c needs float arithmetic evaluated in float (FLT_EVAL_METHOD 0)"
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* x86-64 builds also carry AVX2 and AVX-512 variants of the loops (gcc/clang). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NCK_QUANT_X86 1
#else
#define NCK_QUANT_X86 0
#endif

/* Elements below which a part is not worth a thread (~0.1 ms of work). */
#define MT_MIN_ELEMS ((size_t)1 << 18)

/* ---- element conversions and scales --------------------------------------------- */

float nck_quant_bf16_to_f32(uint16_t bits)
{
	return nck_qe_bf16(bits);
}

float nck_quant_f16_to_f32(uint16_t bits)
{
	return nck_qe_f16(bits);
}

float nck_quant_fp8_scale(float amax)
{
	return nck_qe_scale(amax, NCK_QE_FP8_MAX);
}

float nck_quant_int4_scale(float amax)
{
	return nck_qe_scale(amax, NCK_QE_INT4_MAX);
}

uint8_t nck_quant_fp8_encode(float x)
{
	return nck_qe_fp8(x);
}

float nck_quant_nvfp4_global(float amax)
{
	return nck_qe_scale(amax, NCK_QE_NVFP4_GLOBAL_DIV);
}

uint8_t nck_quant_e2m1_encode(float y)
{
	return nck_qe_e2m1(y);
}

/* Element i of a buffer of `dt` (a constant after inlining), as float32. */
static ALWAYS_INLINE float load_elem(const unsigned char *p, size_t i, nck_dtype dt)
{
	uint16_t h;
	float f;

	if (dt == NCK_DTYPE_F32) {
		memcpy(&f, p + 4 * i, sizeof(f));
		return f;
	}
	memcpy(&h, p + 2 * i, sizeof(h));
	return dt == NCK_DTYPE_BF16 ? nck_qe_bf16(h) : nck_qe_f16(h);
}

static size_t elem_size(nck_dtype dt)
{
	return dt == NCK_DTYPE_F32 ? 4 : 2;
}

/* ---- argument checks ---------------------------------------------------------------- */

bool nck_quant_dtype_ok(nck_dtype dtype)
{
	return dtype == NCK_DTYPE_BF16 || dtype == NCK_DTYPE_F16 || dtype == NCK_DTYPE_F32;
}

int nck_quant_check_elems(const void *out, const void *src, nck_dtype dtype, size_t n)
{
	size_t bytes;

	if (!nck_quant_dtype_ok(dtype))
		return -ENOTSUP;
	if (n > 0 && (!out || !src))
		return -EINVAL;
	if (__builtin_mul_overflow(n, elem_size(dtype), &bytes))
		return -EOVERFLOW;
	return 0;
}

int nck_quant_check_int4(const void *out, const void *src, nck_dtype dtype, size_t rows,
			 size_t cols, size_t group, const float *scales, bool pack)
{
	size_t n;

	if (group == 0 || cols % group != 0 || (pack && rows % 2 != 0))
		return -EINVAL;
	if (__builtin_mul_overflow(rows, cols, &n))
		return -EOVERFLOW;
	if (n > 0 && pack && !scales)
		return -EINVAL;
	return nck_quant_check_elems(out, src, dtype, n);
}

int nck_quant_check_nvfp4(const void *codes, const void *scales, const void *src,
			  nck_dtype dtype, size_t n)
{
	int rc;

	if (n % NCK_QE_NVFP4_BLOCK != 0)
		return -EINVAL;
	if ((rc = nck_quant_check_elems(codes, src, dtype, n)) < 0)
		return rc;
	return n > 0 && !scales ? -EINVAL : 0;
}

int nck_quant_to_f32(float *dst, const void *src, nck_dtype dtype, size_t n)
{
	const unsigned char *p = src;
	int rc = nck_quant_check_elems(dst, src, dtype, n);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		dst[i] = load_elem(p, i, dtype);
	return 0;
}

/* ---- loops, one specialization per dtype -------------------------------------------- */

static ALWAYS_INLINE int32_t amax_loop(const unsigned char *p, size_t n, nck_dtype dt)
{
	int32_t m = 0;

	for (size_t i = 0; i < n; i++) {
		int32_t a = nck_qe_abs_bits(load_elem(p, i, dt));

		m = a > m ? a : m;
	}
	return m;
}

static ALWAYS_INLINE void fp8_loop(uint8_t *dst, const unsigned char *p, size_t n, float scale,
				   nck_dtype dt)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = nck_qe_fp8(nck_qe_div(load_elem(p, i, dt), scale));
}

static ALWAYS_INLINE void scales_loop(float *scales, const unsigned char *src, size_t rows,
				      size_t cols, size_t group, nck_dtype dt)
{
	size_t esz = elem_size(dt), nb = cols / group;

	for (size_t r = 0; r < rows; r++) {
		for (size_t b = 0; b < nb; b++) {
			int32_t m = amax_loop(src + (r * cols + b * group) * esz, group, dt);

			scales[r * nb + b] = nck_qe_scale(nck_qe_float((uint32_t)m),
							  NCK_QE_INT4_MAX);
		}
	}
}

static ALWAYS_INLINE void pack_loop(uint8_t *dst, const unsigned char *lo,
				    const unsigned char *hi, float s_lo, float s_hi, size_t n,
				    nck_dtype dt)
{
	for (size_t j = 0; j < n; j++)
		dst[j] = nck_qe_pack(nck_qe_int4(load_elem(lo, j, dt), s_lo),
				     nck_qe_int4(load_elem(hi, j, dt), s_hi));
}

static ALWAYS_INLINE void pack_rows_loop(uint8_t *dst, const unsigned char *src,
					 const float *scales, size_t pairs, size_t cols,
					 size_t group, nck_dtype dt)
{
	size_t esz = elem_size(dt), nb = cols / group;

	for (size_t i = 0; i < pairs; i++) {
		const unsigned char *lo = src + 2 * i * cols * esz, *hi = lo + cols * esz;
		const float *s_lo = scales + 2 * i * nb, *s_hi = s_lo + nb;

		for (size_t b = 0; b < nb; b++)
			pack_loop(dst + i * cols + b * group, lo + b * group * esz,
				  hi + b * group * esz, s_lo[b], s_hi[b], group, dt);
	}
}

/* NVFP4 elements per pass of nvfp4_loop (stack arrays of this size). */
#define NVFP4_RUN 1024

/*
 * NVFP4 of `blocks` blocks of 16, in runs of NVFP4_RUN elements so that
 * each step is a plain element-wise loop gcc vectorizes: |x| as bits; per
 * block the amax, its E4M3 scale and the divisor float32(s * g) (spread
 * over the block's elements); the E2M1 codes; the packing by pairs.
 */
static ALWAYS_INLINE void nvfp4_loop(uint8_t *codes, uint8_t *scales, const unsigned char *p,
				     size_t blocks, float global, nck_dtype dt)
{
	const size_t bl = NCK_QE_NVFP4_BLOCK, esz = elem_size(dt);
	float g6 = nck_qe_mul(6.0f, global);
	int32_t a[NVFP4_RUN];
	float d[NVFP4_RUN], dv[NVFP4_RUN / NCK_QE_NVFP4_BLOCK];

	for (size_t b0 = 0; b0 < blocks; b0 += NVFP4_RUN / bl) {
		size_t nb = blocks - b0 < NVFP4_RUN / bl ? blocks - b0 : NVFP4_RUN / bl;
		size_t n = nb * bl;
		const unsigned char *q = p + b0 * bl * esz;

		for (size_t i = 0; i < n; i++)
			a[i] = nck_qe_abs_bits(load_elem(q, i, dt));
		for (size_t b = 0; b < nb; b++) {
			int32_t m = 0;

			for (size_t j = 0; j < bl; j++)
				m = a[b * bl + j] > m ? a[b * bl + j] : m;
			a[b] = m;
		}
		for (size_t b = 0; b < nb; b++) {
			uint8_t sc = nck_qe_nvfp4_scale(nck_qe_float((uint32_t)a[b]), g6);

			scales[b0 + b] = sc;
			dv[b] = nck_qe_mul(nck_qe_e4m3_value(sc), global);
		}
		for (size_t b = 0; b < nb; b++)
			for (size_t j = 0; j < bl; j++)
				d[b * bl + j] = dv[b];
		for (size_t j = 0; j < n / 2; j++)
			codes[b0 * (bl / 2) + j] =
				nck_qe_pack_fp4(nck_qe_e2m1(nck_qe_div(load_elem(q, 2 * j, dt), d[2 * j])),
						nck_qe_e2m1(nck_qe_div(load_elem(q, 2 * j + 1, dt),
								       d[2 * j + 1])));
	}
}

/* ---- one set of loops per instruction set ------------------------------------------- */

struct loops {
	const char *name;
	int32_t (*amax)(const unsigned char *p, size_t n, nck_dtype dt);
	void (*fp8)(uint8_t *dst, const unsigned char *p, size_t n, float scale, nck_dtype dt);
	void (*scales)(float *scales, const unsigned char *src, size_t rows, size_t cols,
		       size_t group, nck_dtype dt);
	void (*pack)(uint8_t *dst, const unsigned char *src, const float *scales, size_t pairs,
		     size_t cols, size_t group, nck_dtype dt);
	void (*nvfp4)(uint8_t *codes, uint8_t *scales, const unsigned char *src, size_t blocks,
		      float global, nck_dtype dt);
	bool (*supported)(void);
};

static bool isa_always(void)
{
	return true;
}

#define LOOPS(name) name##_base
#define LOOPS_TARGET
#include "quant/loops.h"
#undef LOOPS
#undef LOOPS_TARGET

#if NCK_QUANT_X86
#define LOOPS(name) name##_avx2
#define LOOPS_TARGET __attribute__((target("avx2")))
#include "quant/loops.h"
#undef LOOPS
#undef LOOPS_TARGET

#define LOOPS(name) name##_avx512
#define LOOPS_TARGET __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512dq")))
#include "quant/loops.h"
#undef LOOPS
#undef LOOPS_TARGET

static bool isa_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

static bool isa_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512dq");
}
#endif

/* Best last: the default is the last one the CPU supports. */
static const struct loops isa_table[] = {
	{ "base", amax_base, fp8_base, scales_base, pack_base, nvfp4_base, isa_always },
#if NCK_QUANT_X86
	{ "avx2", amax_avx2, fp8_avx2, scales_avx2, pack_avx2, nvfp4_avx2, isa_avx2 },
	{ "avx512", amax_avx512, fp8_avx512, scales_avx512, pack_avx512, nvfp4_avx512,
	  isa_avx512 },
#endif
};

#define ISA_COUNT (sizeof(isa_table) / sizeof(isa_table[0]))

/* Index into isa_table + 1; 0 until chosen. */
static atomic_int isa_chosen;

static const struct loops *loops(void)
{
	int i = atomic_load_explicit(&isa_chosen, memory_order_relaxed);

	if (i == 0) {
		for (i = (int)ISA_COUNT; i > 1 && !isa_table[i - 1].supported(); i--)
			;
		atomic_store_explicit(&isa_chosen, i, memory_order_relaxed);
	}
	return &isa_table[i - 1];
}

const char *nck_quant_cpu_isa(void)
{
	return loops()->name;
}

int nck_quant_cpu_set_isa(const char *name)
{
	if (!name || strcmp(name, "auto") == 0) {
		atomic_store(&isa_chosen, 0);
		return 0;
	}
	for (size_t i = 0; i < ISA_COUNT; i++) {
		if (strcmp(isa_table[i].name, name) != 0)
			continue;
		if (!isa_table[i].supported())
			return -ENOTSUP;
		atomic_store(&isa_chosen, (int)i + 1);
		return 0;
	}
	return -ENOTSUP;
}

/* ---- threads ----------------------------------------------------------------------- */

static atomic_int cpu_threads_set;

int nck_quant_cpu_threads(void)
{
	int n = atomic_load(&cpu_threads_set);
	long online;

	if (n > 0)
		return n;
	online = sysconf(_SC_NPROCESSORS_ONLN);
	if (online < 1)
		return 1;
	return online > NCK_QUANT_MAX_THREADS ? NCK_QUANT_MAX_THREADS : (int)online;
}

void nck_quant_cpu_set_threads(int threads)
{
	if (threads < 0)
		threads = 0;
	if (threads > NCK_QUANT_MAX_THREADS)
		threads = NCK_QUANT_MAX_THREADS;
	atomic_store(&cpu_threads_set, threads);
}

/* One call's work, cut into parts of units (elements, rows or row pairs). */
struct job {
	void (*fn)(struct job *job, size_t begin, size_t end, size_t part);
	const unsigned char *src;
	nck_dtype dtype;
	size_t cols, group;
	float scale;
	const float *scales;
	void *dst;
	uint8_t *dst2;
	int32_t part_max[NCK_QUANT_MAX_THREADS];
};

struct part {
	struct job *job;
	size_t begin, end, index;
	pthread_t tid;
	bool started;
};

static void *part_main(void *arg)
{
	struct part *p = arg;

	p->job->fn(p->job, p->begin, p->end, p->index);
	return NULL;
}

/* How many parts: at most `threads`, each of at least `min_units` units. */
static size_t part_count(size_t units, size_t min_units, int threads)
{
	size_t k = threads > 0 ? (size_t)threads : (size_t)nck_quant_cpu_threads();

	if (k > NCK_QUANT_MAX_THREADS)
		k = NCK_QUANT_MAX_THREADS;
	if (min_units == 0)
		min_units = 1;
	if (units / min_units < k)
		k = units / min_units;
	return k ? k : 1;
}

/*
 * Runs job->fn over [0, units) in parts, the first in the calling thread.
 * A thread that cannot be started runs its part here instead. Returns the
 * number of parts (entries of job->part_max that were written).
 */
static size_t run_parts(struct job *job, size_t units, size_t min_units, int threads)
{
	struct part parts[NCK_QUANT_MAX_THREADS];
	size_t k = part_count(units, min_units, threads);
	size_t base = units / k, extra = units % k, at = 0;

	for (size_t i = 0; i < k; i++) {
		parts[i] = (struct part){ .job = job, .begin = at, .index = i };
		at += base + (i < extra);
		parts[i].end = at;
	}
	for (size_t i = 1; i < k; i++)
		parts[i].started = pthread_create(&parts[i].tid, NULL, part_main, &parts[i]) == 0;
	part_main(&parts[0]);
	for (size_t i = 1; i < k; i++) {
		if (parts[i].started)
			pthread_join(parts[i].tid, NULL);
		else
			part_main(&parts[i]);
	}
	return k;
}

/* ---- CPU operations ------------------------------------------------------------------ */

static void amax_part(struct job *job, size_t begin, size_t end, size_t part)
{
	size_t esz = elem_size(job->dtype);

	job->part_max[part] = loops()->amax(job->src + begin * esz, end - begin, job->dtype);
}

int nck_quant_cpu_amax(float *amax, const void *src, nck_dtype dtype, size_t n, int threads)
{
	struct job job = { .fn = amax_part, .src = src, .dtype = dtype };
	int32_t m = 0;
	size_t k;
	int rc = nck_quant_check_elems(amax, src, dtype, n);

	if (rc < 0 || !amax)
		return rc < 0 ? rc : -EINVAL;
	k = run_parts(&job, n, MT_MIN_ELEMS, threads);
	for (size_t i = 0; i < k; i++)
		m = job.part_max[i] > m ? job.part_max[i] : m;
	*amax = nck_qe_float((uint32_t)m);
	return 0;
}

static void fp8_part(struct job *job, size_t begin, size_t end, size_t part)
{
	size_t esz = elem_size(job->dtype);

	(void)part;
	loops()->fp8((uint8_t *)job->dst + begin, job->src + begin * esz, end - begin, job->scale,
		     job->dtype);
}

int nck_quant_cpu_fp8(uint8_t *dst, const void *src, nck_dtype dtype, size_t n, float scale,
		      int threads)
{
	struct job job = { .fn = fp8_part, .src = src, .dtype = dtype, .scale = scale, .dst = dst };
	int rc = nck_quant_check_elems(dst, src, dtype, n);

	if (rc < 0)
		return rc;
	run_parts(&job, n, MT_MIN_ELEMS, threads);
	return 0;
}

static void scales_part(struct job *job, size_t begin, size_t end, size_t part)
{
	size_t row_bytes = job->cols * elem_size(job->dtype), nb = job->cols / job->group;

	(void)part;
	loops()->scales((float *)job->dst + begin * nb, job->src + begin * row_bytes, end - begin,
			job->cols, job->group, job->dtype);
}

int nck_quant_cpu_int4_scales(float *scales, const void *src, nck_dtype dtype, size_t rows,
			      size_t cols, size_t group, int threads)
{
	struct job job = { .fn = scales_part, .src = src, .dtype = dtype, .cols = cols,
			   .group = group, .dst = scales };
	int rc = nck_quant_check_int4(scales, src, dtype, rows, cols, group, NULL, false);

	if (rc < 0 || cols == 0)
		return rc;
	run_parts(&job, rows, MT_MIN_ELEMS / cols + 1, threads);
	return 0;
}

static void pack_part(struct job *job, size_t begin, size_t end, size_t part)
{
	size_t row_bytes = job->cols * elem_size(job->dtype), nb = job->cols / job->group;

	(void)part;
	loops()->pack((uint8_t *)job->dst + begin * job->cols, job->src + 2 * begin * row_bytes,
		      job->scales + 2 * begin * nb, end - begin, job->cols, job->group, job->dtype);
}

int nck_quant_cpu_int4_pack(uint8_t *dst, const void *src, nck_dtype dtype, size_t rows,
			    size_t cols, size_t group, const float *scales, int threads)
{
	struct job job = { .fn = pack_part, .src = src, .dtype = dtype, .cols = cols,
			   .group = group, .scales = scales, .dst = dst };
	int rc = nck_quant_check_int4(dst, src, dtype, rows, cols, group, scales, true);

	if (rc < 0 || cols == 0)
		return rc;
	run_parts(&job, rows / 2, MT_MIN_ELEMS / (2 * cols) + 1, threads);
	return 0;
}

static void nvfp4_part(struct job *job, size_t begin, size_t end, size_t part)
{
	size_t bytes = NCK_QE_NVFP4_BLOCK * elem_size(job->dtype);

	(void)part;
	loops()->nvfp4((uint8_t *)job->dst + begin * (NCK_QE_NVFP4_BLOCK / 2), job->dst2 + begin,
		       job->src + begin * bytes, end - begin, job->scale, job->dtype);
}

int nck_quant_cpu_nvfp4(uint8_t *codes, uint8_t *scales, const void *src, nck_dtype dtype,
			size_t n, float global, int threads)
{
	struct job job = { .fn = nvfp4_part, .src = src, .dtype = dtype, .scale = global,
			   .dst = codes, .dst2 = scales };
	int rc = nck_quant_check_nvfp4(codes, scales, src, dtype, n);

	if (rc < 0)
		return rc;
	run_parts(&job, n / NCK_QE_NVFP4_BLOCK, MT_MIN_ELEMS / NCK_QE_NVFP4_BLOCK, threads);
	return 0;
}
