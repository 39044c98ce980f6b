/* SPDX-License-Identifier: MIT */
/*
 * nck_quant against an independent numpy oracle (quant_oracle.py, run with
 * /usr/bin/python3; a failure to run it fails the test): each test writes
 * its inputs and the CPU backend's outputs to files in its temp directory,
 * lists them in manifest.txt, and the oracle recomputes every result from
 * the definitions (E4M3FN by enumerating the codes; INT4 with numpy's
 * round-half-even) and compares bit for bit.
 *
 * Covered: FP8 over all 65,536 bf16 and f16 inputs at scales where most
 * values saturate, where most results are subnormal, and ordinary ones;
 * f32 rounding at every E4M3 midpoint and its neighbours; amax and the
 * scale rule; INT4 scales, rounding and packing on random and edge inputs
 * (all-zero blocks, ties, negative ties, -8/7 clamping, NaN, inf); packing
 * in row pieces; every thread count giving the same bytes; and backend
 * selection ("auto" must give a working backend on a machine without GPU).
 * NVFP4: all 65,536 bf16 and f16 inputs (as blocks of 16) at global scales
 * that make most blocks saturate, clamp to 2^-9 or stay ordinary; every
 * E4M3 block scale, exactly and at every tie between neighbours; every
 * E2M1 threshold, its ties and its neighbours; random weights; the spec's
 * worked example (scale 0x6E, byte 0xB5: even element in the low nibble).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>

#include "nck_test.h"
#include "quant/quant.h"

#define ORACLE NCK_SOURCE_DIR "/tests/unit/quant/quant_oracle.py"

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static void rng_seed(uint64_t seed)
{
	rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static float scale2(float x, int e);

/* A value like a weight: sign * mantissa * 2^e, e in [-12, 3]. */
static float rnd_weight(void)
{
	uint64_t r = rng();
	float m = (float)(r & 0xFFFFFF) / 16777216.0f;

	return scale2(r >> 63 ? -m : m, (int)((r >> 32) % 16) - 12);
}

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float bitsf(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* x * 2^e for e in [-126, 127] (exact for these tests; no libm). */
static float scale2(float x, int e)
{
	return x * bitsf((uint32_t)(e + 127) << 23);
}

/* The float32 next to positive x, up or down. */
static float next_up(float x)
{
	return bitsf(fbits(x) + 1);
}

static float next_down(float x)
{
	return bitsf(fbits(x) - 1);
}

/* Stores float32 x as `dtype` element i of buf (bf16/f16 by truncation of the bits). */
static void put(void *buf, nck_dtype dtype, size_t i, float x)
{
	uint32_t u = fbits(x);
	uint16_t h;

	if (dtype == NCK_DTYPE_F32) {
		memcpy((char *)buf + 4 * i, &x, 4);
		return;
	}
	if (dtype == NCK_DTYPE_BF16) {
		h = (uint16_t)(u >> 16);
	} else {
		/* f16 for |x| in its normal range, else 0 or +-inf; enough for tests. */
		int e = (int)((u >> 23) & 0xFF) - 127 + 15;
		uint16_t s = (uint16_t)((u >> 16) & 0x8000);

		if (x != x)
			h = 0x7E00;
		else if (e >= 31)
			h = s | 0x7C00;
		else if (e <= 0)
			h = s;
		else
			h = (uint16_t)(s | (e << 10) | ((u >> 13) & 0x3FF));
	}
	memcpy((char *)buf + 2 * i, &h, 2);
}

static size_t esz(nck_dtype dtype)
{
	return dtype == NCK_DTYPE_F32 ? 4 : 2;
}

static const char *dname(nck_dtype dtype)
{
	return nck_dtype_name(dtype);
}

static void write_file(const char *name, const void *buf, size_t len)
{
	FILE *f = fopen(name, "wb");

	ASSERT_TRUE(f != NULL);
	ASSERT_TRUE(len == 0 || fwrite(buf, 1, len, f) == len);
	ASSERT_TRUE(fclose(f) == 0);
}

static FILE *manifest_open(void)
{
	FILE *m = fopen("manifest.txt", "w");

	ASSERT_TRUE(m != NULL);
	return m;
}

/* Runs the oracle over the manifest; any failure (python missing too) fails. */
static void oracle_run(FILE *m)
{
	int st;

	ASSERT_TRUE(fclose(m) == 0);
	st = system("/usr/bin/python3 " ORACLE " manifest.txt");
	ASSERT_EQ_INT(st, 0);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	ASSERT_TRUE(p != NULL);
	return p;
}

/* The CPU loops' instruction sets; the ones this CPU has are all checked. */
static const char *const isas[] = { "base", "avx2", "avx512" };

#define N_ISAS (sizeof(isas) / sizeof(isas[0]))

/* Selects isas[k]; false when not built or not supported here. */
static bool isa_use(size_t k)
{
	return nck_quant_cpu_set_isa(isas[k]) == 0;
}

/* Quantizes n elements to fp8 at `scale` and lists the result. */
static void add_fp8(FILE *m, const char *in, const void *src, nck_dtype dtype, size_t n,
		    float scale)
{
	static int seq;
	uint8_t *out = xmalloc(n), *other = xmalloc(n);
	char name[64];

	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	ASSERT_EQ_INT(nck_quant_cpu_fp8(out, src, dtype, n, scale, 1), 0);
	for (size_t k = 0; k < N_ISAS; k++) {
		if (!isa_use(k))
			continue;
		ASSERT_EQ_INT(nck_quant_cpu_fp8(other, src, dtype, n, scale, 1), 0);
		ASSERT_TRUE(memcmp(out, other, n) == 0);
	}
	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	snprintf(name, sizeof(name), "fp8_%d.bin", seq++);
	write_file(name, out, n);
	fprintf(m, "fp8 %s %zu %08x %s %s\n", dname(dtype), n, fbits(scale), in, name);
	free(out);
	free(other);
}

/* Computes amax and both scales of n elements and lists them. */
static float add_amax(FILE *m, const char *in, const void *src, nck_dtype dtype, size_t n)
{
	float amax = -1, other;

	for (size_t k = 0; k < N_ISAS; k++) {
		if (!isa_use(k))
			continue;
		ASSERT_EQ_INT(nck_quant_cpu_amax(&other, src, dtype, n, 0), 0);
		ASSERT_TRUE(k == 0 || fbits(other) == fbits(amax));
		amax = other;
	}
	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	fprintf(m, "amax %s %zu %s %08x\n", dname(dtype), n, in, fbits(amax));
	fprintf(m, "scale 448 %08x %08x\n", fbits(amax), fbits(nck_quant_fp8_scale(amax)));
	fprintf(m, "scale 7 %08x %08x\n", fbits(amax), fbits(nck_quant_int4_scale(amax)));
	return amax;
}

/* INT4 scales and packing of a [rows, cols] input, both listed. */
static void add_int4(FILE *m, const char *in, const void *src, nck_dtype dtype, size_t rows,
		     size_t cols, size_t group)
{
	static int seq;
	size_t nb = cols / group;
	float *scales = xmalloc(rows * nb * sizeof(float)), *s2 = xmalloc(rows * nb * sizeof(float));
	uint8_t *packed = xmalloc(rows / 2 * cols), *p2 = xmalloc(rows / 2 * cols);
	char sname[64], pname[64];

	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(scales, src, dtype, rows, cols, group, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_pack(packed, src, dtype, rows, cols, group, scales, 1), 0);
	for (size_t k = 0; k < N_ISAS; k++) {
		if (!isa_use(k))
			continue;
		ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s2, src, dtype, rows, cols, group, 1), 0);
		ASSERT_TRUE(memcmp(scales, s2, rows * nb * sizeof(float)) == 0);
		ASSERT_EQ_INT(nck_quant_cpu_int4_pack(p2, src, dtype, rows, cols, group, scales, 1),
			      0);
		ASSERT_TRUE(memcmp(packed, p2, rows / 2 * cols) == 0);
	}
	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	snprintf(sname, sizeof(sname), "scales_%d.bin", seq);
	snprintf(pname, sizeof(pname), "packed_%d.bin", seq++);
	write_file(sname, scales, rows * nb * sizeof(float));
	write_file(pname, packed, rows / 2 * cols);
	fprintf(m, "scales %s %zu %zu %zu %s %s\n", dname(dtype), rows, cols, group, in, sname);
	fprintf(m, "pack %s %zu %zu %zu %s %s %s\n", dname(dtype), rows, cols, group, in, sname,
		pname);
	free(scales);
	free(packed);
	free(s2);
	free(p2);
}

/* All 65,536 16-bit patterns. */
static uint16_t *all_u16(void)
{
	uint16_t *v = xmalloc(65536 * sizeof(uint16_t));

	for (uint32_t i = 0; i < 65536; i++)
		v[i] = (uint16_t)i;
	return v;
}

/* ---- FP8 ------------------------------------------------------------------------------ */

NCK_TEST(quant_fp8_bf16_exhaustive)
{
	/* 1.0: raw values (most saturate or vanish); 2^-20: almost all saturate;
	 * 2^20 and 2^100: most results subnormal or zero; the rest ordinary,
	 * including the scale of the largest finite bf16 and a subnormal one. */
	static const float scales[] = { 1.0f, 0x1p-20f, 0x1p20f, 0x1p100f, 0.3f, 3.7e3f, 1e-30f,
					0x1.fep127f / 448.0f, 7e-45f, 1.17549435e-38f };
	uint16_t *v = all_u16();
	FILE *m = manifest_open();

	write_file("bf16.bin", v, 65536 * 2);
	for (size_t i = 0; i < sizeof(scales) / sizeof(scales[0]); i++)
		add_fp8(m, "bf16.bin", v, NCK_DTYPE_BF16, 65536, scales[i]);
	add_amax(m, "bf16.bin", v, NCK_DTYPE_BF16, 65536);
	oracle_run(m);
	free(v);
}

NCK_TEST(quant_fp8_f16_exhaustive)
{
	static const float scales[] = { 1.0f, 65504.0f / 448.0f, 0x1p-10f, 0x1p10f, 0.1f, 0x1p-30f };
	uint16_t *v = all_u16();
	FILE *m = manifest_open();

	write_file("f16.bin", v, 65536 * 2);
	for (size_t i = 0; i < sizeof(scales) / sizeof(scales[0]); i++)
		add_fp8(m, "f16.bin", v, NCK_DTYPE_F16, 65536, scales[i]);
	add_amax(m, "f16.bin", v, NCK_DTYPE_F16, 65536);
	oracle_run(m);
	free(v);
}

/* The value of a non-negative E4M3 code (0x7F: 464, as if the format went on). */
static float e4m3_value(int code)
{
	int e = code >> 3, mant = code & 7;

	return e ? scale2(1.0f + mant / 8.0f, e - 7) : scale2(mant / 8.0f, -6);
}

/* Every E4M3 value, every midpoint between neighbours, and their float32 neighbours. */
NCK_TEST(quant_fp8_f32_midpoints)
{
	float *x = xmalloc(256 * 8 * sizeof(float));
	size_t n = 0;
	FILE *m = manifest_open();

	for (int code = 0; code < 0x7F; code++) {
		float v = e4m3_value(code), mid = (v + e4m3_value(code + 1)) / 2.0f;
		float pts[] = { v, mid, next_down(mid), next_up(mid) };

		for (size_t k = 0; k < 4; k++) {
			x[n++] = pts[k];
			x[n++] = -pts[k];
		}
	}
	x[n++] = NAN;
	x[n++] = -NAN;
	x[n++] = INFINITY;
	x[n++] = -INFINITY;
	x[n++] = 0x1p-149f;
	x[n++] = -0x1p-149f;
	x[n++] = 0x1p-10f;
	x[n++] = 1e30f;
	write_file("mid.bin", x, n * 4);
	add_fp8(m, "mid.bin", x, NCK_DTYPE_F32, n, 1.0f);
	add_fp8(m, "mid.bin", x, NCK_DTYPE_F32, n, 0.5f);
	add_fp8(m, "mid.bin", x, NCK_DTYPE_F32, n, 3.0f);
	oracle_run(m);
	ASSERT_EQ_INT(nck_quant_fp8_encode(448.0f), 0x7E);
	ASSERT_EQ_INT(nck_quant_fp8_encode(-0.0f), 0x80);
	ASSERT_EQ_INT(nck_quant_fp8_encode(NAN), 0x7F);
	ASSERT_EQ_INT(nck_quant_fp8_encode(0x1p-9f), 0x01);
	free(x);
}

/* Random float32 bit patterns (every exponent, NaNs) and random weights. */
NCK_TEST(quant_fp8_f32_random)
{
	size_t n = 1 << 18;
	float *raw = xmalloc(n * 4), *w = xmalloc(n * 4);
	FILE *m = manifest_open();
	float amax;

	rng_seed(1);
	for (size_t i = 0; i < n; i++) {
		raw[i] = bitsf((uint32_t)rng());
		w[i] = rnd_weight();
	}
	write_file("raw.bin", raw, n * 4);
	write_file("w.bin", w, n * 4);
	add_fp8(m, "raw.bin", raw, NCK_DTYPE_F32, n, 1.0f);
	add_fp8(m, "raw.bin", raw, NCK_DTYPE_F32, n, 0x1p-100f);
	add_fp8(m, "raw.bin", raw, NCK_DTYPE_F32, n, 0x1p100f);
	add_amax(m, "raw.bin", raw, NCK_DTYPE_F32, n);
	amax = add_amax(m, "w.bin", w, NCK_DTYPE_F32, n);
	add_fp8(m, "w.bin", w, NCK_DTYPE_F32, n, nck_quant_fp8_scale(amax));
	add_fp8(m, "w.bin", w, NCK_DTYPE_F32, n, 1.0f / 3.0f);
	oracle_run(m);
	free(raw);
	free(w);
}

/* ---- amax and scales ------------------------------------------------------------------------ */

NCK_TEST(quant_amax_and_scales)
{
	static const nck_dtype dts[] = { NCK_DTYPE_BF16, NCK_DTYPE_F16, NCK_DTYPE_F32 };
	size_t n = 100003;
	FILE *m = manifest_open();

	rng_seed(2);
	for (size_t d = 0; d < 3; d++) {
		char *buf = xmalloc(n * 4);
		char name[32];

		for (size_t i = 0; i < n; i++)
			put(buf, dts[d], i, i % 997 == 5 ? NAN : rnd_weight());
		snprintf(name, sizeof(name), "a%zu.bin", d);
		write_file(name, buf, n * esz(dts[d]));
		add_amax(m, name, buf, dts[d], n);
		add_fp8(m, name, buf, dts[d], n, nck_quant_fp8_scale(add_amax(m, name, buf, dts[d],
									       n)));
		memset(buf, 0, n * 4);
		snprintf(name, sizeof(name), "z%zu.bin", d);
		write_file(name, buf, 1000 * esz(dts[d]));
		ASSERT_TRUE(add_amax(m, name, buf, dts[d], 1000) == 0.0f);
		add_fp8(m, name, buf, dts[d], 1000, nck_quant_fp8_scale(0.0f));
		free(buf);
	}
	write_file("empty.bin", "", 0);
	ASSERT_TRUE(add_amax(m, "empty.bin", "", NCK_DTYPE_BF16, 0) == 0.0f);
	for (int i = 0; i < 1000; i++) {
		float a = bitsf((uint32_t)rng() & 0x7FFFFFFFu);

		fprintf(m, "scale 448 %08x %08x\n", fbits(a), fbits(nck_quant_fp8_scale(a)));
		fprintf(m, "scale 7 %08x %08x\n", fbits(a), fbits(nck_quant_int4_scale(a)));
	}
	oracle_run(m);
	ASSERT_TRUE(nck_quant_fp8_scale(0.0f) == 1.0f);
	ASSERT_TRUE(nck_quant_fp8_scale(INFINITY) == 1.0f);
	ASSERT_TRUE(nck_quant_fp8_scale(0x1p-149f) == 1.0f); /* underflows to 0 */
	ASSERT_TRUE(nck_quant_fp8_scale(448.0f) == 1.0f);
	ASSERT_TRUE(nck_quant_fp8_scale(3.0f) == 3.0f / 448.0f);
	ASSERT_TRUE(nck_quant_int4_scale(0.0f) == 1.0f);
	ASSERT_TRUE(nck_quant_int4_scale(1.0f) == 1.0f / 7.0f);
}

NCK_TEST(quant_f16_bf16_widening)
{
	uint16_t *v = all_u16();
	float *out = xmalloc(65536 * 4);
	FILE *m = manifest_open();

	write_file("u16.bin", v, 65536 * 2);
	ASSERT_EQ_INT(nck_quant_to_f32(out, v, NCK_DTYPE_F16, 65536), 0);
	write_file("f16_f32.bin", out, 65536 * 4);
	fprintf(m, "conv F16 65536 u16.bin f16_f32.bin\n");
	ASSERT_EQ_INT(nck_quant_to_f32(out, v, NCK_DTYPE_BF16, 65536), 0);
	write_file("bf16_f32.bin", out, 65536 * 4);
	fprintf(m, "conv BF16 65536 u16.bin bf16_f32.bin\n");
	oracle_run(m);
	ASSERT_TRUE(nck_quant_f16_to_f32(0x0001) == 0x1p-24f);
	ASSERT_TRUE(nck_quant_f16_to_f32(0x7BFF) == 65504.0f);
	ASSERT_TRUE(nck_quant_bf16_to_f32(0x3F80) == 1.0f);
	free(v);
	free(out);
}

/* ---- INT4 ------------------------------------------------------------------------------- */

NCK_TEST(quant_int4_random)
{
	static const nck_dtype dts[] = { NCK_DTYPE_BF16, NCK_DTYPE_F16, NCK_DTYPE_F32 };
	static const size_t shapes[][3] = { { 64, 512, 128 }, { 6, 96, 32 }, { 2, 128, 128 },
					    { 10, 384, 128 }, { 4, 21, 7 }, { 8, 64, 1 } };
	FILE *m = manifest_open();

	rng_seed(3);
	for (size_t d = 0; d < 3; d++) {
		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
			size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
			char *buf = xmalloc(n * 4);
			char name[32];

			for (size_t i = 0; i < n; i++)
				put(buf, dts[d], i, rnd_weight());
			snprintf(name, sizeof(name), "w%zu_%zu.bin", d, s);
			write_file(name, buf, n * esz(dts[d]));
			add_int4(m, name, buf, dts[d], rows, cols, shapes[s][2]);
			free(buf);
		}
	}
	oracle_run(m);
}

/* Fills row r of a [rows, 32] f32 edge matrix (group 8: four blocks a row). */
static void edge_row(float *row, int r)
{
	static const float ties[8] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, -7.0f };
	static const float hits[8] = { 7.0f, -7.0f, 6.5f, -6.5f, 5.5f, -5.5f, 0.0f, -0.0f };

	for (int j = 0; j < 32; j++) {
		int b = j / 8, k = j % 8;

		switch ((r + b) % 6) {
		case 0: /* all-zero block: scale 1, codes 0 */
			row[j] = k % 2 ? -0.0f : 0.0f;
			break;
		case 1: /* amax 7 -> scale 1: exact ties, negative ties */
			row[j] = ties[k];
			break;
		case 2: /* +-7 and other values landing on the range ends */
			row[j] = hits[k];
			break;
		case 3: /* NaN is ignored by amax and quantizes to 0 */
			row[j] = k == 3 ? NAN : ties[k] * 0.25f;
			break;
		case 4: /* scaled ties: amax 7 * 2^-10 */
			row[j] = scale2(ties[k], -10);
			break;
		default: /* one tiny value in a block */
			row[j] = k == 5 ? -1e-30f : 0.0f;
			break;
		}
	}
}

NCK_TEST(quant_int4_edges)
{
	static const nck_dtype dts[] = { NCK_DTYPE_BF16, NCK_DTYPE_F16, NCK_DTYPE_F32 };
	static const float clampv[16] = { -9.3f, -8.5f, -8.49f, 7.5f, 7.49f, 100.0f, -100.0f, NAN,
					  INFINITY, -INFINITY, -0.0f, -0.5f, -1.5f, -2.5f, 6.5f,
					  -7.5f };
	float x[12 * 32];
	float ones[4 * 2], clamp[4 * 16];
	uint8_t packed[2 * 16];
	FILE *m = manifest_open();

	for (int r = 0; r < 12; r++)
		edge_row(x + r * 32, r);
	for (size_t d = 0; d < 3; d++) {
		char buf[sizeof(x)], name[32];

		for (size_t i = 0; i < 12 * 32; i++)
			put(buf, dts[d], i, x[i]);
		snprintf(name, sizeof(name), "edge%zu.bin", d);
		write_file(name, buf, 12 * 32 * esz(dts[d]));
		add_int4(m, name, buf, dts[d], 12, 32, 8);
	}
	/* Given scales (1.0, 0.5) that push values past -8 and 7. */
	for (int i = 0; i < 4 * 16; i++)
		clamp[i] = clampv[i % 16] * (i / 16 == 3 ? 4.0f : 1.0f);
	for (int i = 0; i < 8; i++)
		ones[i] = i % 2 ? 0.5f : 1.0f;
	write_file("clamp.bin", clamp, sizeof(clamp));
	write_file("ones.bin", ones, sizeof(ones));
	for (size_t k = 0; k < N_ISAS; k++) {
		uint8_t again[sizeof(packed)];

		if (!isa_use(k))
			continue;
		ASSERT_EQ_INT(nck_quant_cpu_int4_pack(again, clamp, NCK_DTYPE_F32, 4, 16, 8, ones, 1),
			      0);
		if (k > 0)
			ASSERT_TRUE(memcmp(again, packed, sizeof(packed)) == 0);
		memcpy(packed, again, sizeof(packed));
	}
	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	write_file("clamp_packed.bin", packed, sizeof(packed));
	fprintf(m, "pack F32 4 16 8 clamp.bin ones.bin clamp_packed.bin\n");
	oracle_run(m);
	/* -8.5 / 1 is a tie between -9 and -8 (clamped -8); 7.5 -> 8 -> 7; NaN -> 0. */
	ASSERT_EQ_INT(packed[1] & 15, 8);
	ASSERT_EQ_INT(packed[3] & 15, 7);
	ASSERT_EQ_INT(packed[7] & 15, 0);
}

/* A packed tensor made of row pieces equals the whole; so do row pieces of scales. */
NCK_TEST(quant_int4_pieces)
{
	size_t rows = 26, cols = 256, g = 128, nb = cols / g;
	float *w = xmalloc(rows * cols * 4), *s = xmalloc(rows * nb * 4), *s2 = xmalloc(rows * nb * 4);
	uint8_t *whole = xmalloc(rows / 2 * cols), *pieces = xmalloc(rows / 2 * cols);
	static const size_t cuts[] = { 0, 4, 10, 12, 26 };

	rng_seed(4);
	for (size_t i = 0; i < rows * cols; i++)
		w[i] = rnd_weight();
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s, w, NCK_DTYPE_F32, rows, cols, g, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_pack(whole, w, NCK_DTYPE_F32, rows, cols, g, s, 1), 0);
	for (size_t k = 0; k + 1 < sizeof(cuts) / sizeof(cuts[0]); k++) {
		size_t r0 = cuts[k], r1 = cuts[k + 1];

		ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s2 + r0 * nb, w + r0 * cols, NCK_DTYPE_F32,
							r1 - r0, cols, g, 1),
			      0);
		ASSERT_EQ_INT(nck_quant_cpu_int4_pack(pieces + r0 / 2 * cols, w + r0 * cols,
						      NCK_DTYPE_F32, r1 - r0, cols, g,
						      s2 + r0 * nb, 1),
			      0);
	}
	ASSERT_TRUE(memcmp(s, s2, rows * nb * 4) == 0);
	ASSERT_TRUE(memcmp(whole, pieces, rows / 2 * cols) == 0);
	free(w);
	free(s);
	free(s2);
	free(whole);
	free(pieces);
}

/* Which instruction sets this run covered (every add_* helper compares them all). */
NCK_TEST(quant_isa_variants)
{
	const char *best = nck_quant_cpu_isa();

	ASSERT_TRUE(isa_use(0));
	for (size_t k = 0; k < N_ISAS; k++)
		fprintf(stderr, "%s: %s\n", isas[k], isa_use(k) ? "checked" : "not on this CPU");
	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	ASSERT_EQ_STR(nck_quant_cpu_isa(), best);
	ASSERT_EQ_INT(nck_quant_cpu_set_isa("sse9"), -ENOTSUP);
}

/* ---- threads, backends, arguments ------------------------------------------------------------ */

/* Every thread count gives the same bytes (inputs misaligned by one byte). */
NCK_TEST(quant_threads_identical)
{
	static const int counts[] = { 2, 3, 8, 0, 64 };
	size_t rows = 1536, cols = 2048, n = rows * cols, nb = cols / 128;
	char *mem = xmalloc(n * 2 + 1), *src = mem + 1;
	float amax1, amaxk, *s1 = xmalloc(rows * nb * 4), *sk = xmalloc(rows * nb * 4);
	uint8_t *f1 = xmalloc(n), *fk = xmalloc(n), *p1 = xmalloc(n / 2), *pk = xmalloc(n / 2);

	rng_seed(5);
	for (size_t i = 0; i < n; i++)
		put(src, NCK_DTYPE_BF16, i, i % 100000 == 7 ? NAN : rnd_weight());
	put(src, NCK_DTYPE_BF16, n - 1, -300.0f); /* the amax, in the last part */
	ASSERT_EQ_INT(nck_quant_cpu_amax(&amax1, src, NCK_DTYPE_BF16, n, 1), 0);
	ASSERT_TRUE(amax1 == 300.0f);
	ASSERT_EQ_INT(nck_quant_cpu_fp8(f1, src, NCK_DTYPE_BF16, n, amax1 / 448.0f, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s1, src, NCK_DTYPE_BF16, rows, cols, 128, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_pack(p1, src, NCK_DTYPE_BF16, rows, cols, 128, s1, 1), 0);
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		int t = counts[k];

		ASSERT_EQ_INT(nck_quant_cpu_amax(&amaxk, src, NCK_DTYPE_BF16, n, t), 0);
		ASSERT_TRUE(fbits(amaxk) == fbits(amax1));
		ASSERT_EQ_INT(nck_quant_cpu_fp8(fk, src, NCK_DTYPE_BF16, n, amax1 / 448.0f, t), 0);
		ASSERT_TRUE(memcmp(f1, fk, n) == 0);
		ASSERT_EQ_INT(nck_quant_cpu_int4_scales(sk, src, NCK_DTYPE_BF16, rows, cols, 128, t),
			      0);
		ASSERT_TRUE(memcmp(s1, sk, rows * nb * 4) == 0);
		ASSERT_EQ_INT(nck_quant_cpu_int4_pack(pk, src, NCK_DTYPE_BF16, rows, cols, 128, s1, t),
			      0);
		ASSERT_TRUE(memcmp(p1, pk, n / 2) == 0);
	}
	free(mem);
	free(s1);
	free(sk);
	free(f1);
	free(fk);
	free(p1);
	free(pk);
}

/* The backend's results through the dispatchers equal the CPU functions'. */
static void check_backend(const nck_quant_backend *be)
{
	size_t rows = 64, cols = 384, n = rows * cols, nb = cols / 128;
	uint16_t *w = xmalloc(n * 2);
	float a1, a2, *s1 = xmalloc(rows * nb * 4), *s2 = xmalloc(rows * nb * 4);
	uint8_t *f1 = xmalloc(n), *f2 = xmalloc(n), *p1 = xmalloc(n / 2), *p2 = xmalloc(n / 2);

	rng_seed(6);
	for (size_t i = 0; i < n; i++)
		put(w, NCK_DTYPE_BF16, i, rnd_weight());
	ASSERT_EQ_INT(nck_quant_cpu_amax(&a1, w, NCK_DTYPE_BF16, n, 1), 0);
	ASSERT_EQ_INT(nck_quant_amax(be, &a2, w, NCK_DTYPE_BF16, n), 0);
	ASSERT_TRUE(fbits(a1) == fbits(a2));
	ASSERT_EQ_INT(nck_quant_cpu_fp8(f1, w, NCK_DTYPE_BF16, n, nck_quant_fp8_scale(a1), 1), 0);
	ASSERT_EQ_INT(nck_quant_fp8(be, f2, w, NCK_DTYPE_BF16, n, nck_quant_fp8_scale(a1)), 0);
	ASSERT_TRUE(memcmp(f1, f2, n) == 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s1, w, NCK_DTYPE_BF16, rows, cols, 128, 1), 0);
	ASSERT_EQ_INT(nck_quant_int4_scales(be, s2, w, NCK_DTYPE_BF16, rows, cols, 128), 0);
	ASSERT_TRUE(memcmp(s1, s2, rows * nb * 4) == 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_pack(p1, w, NCK_DTYPE_BF16, rows, cols, 128, s1, 1), 0);
	ASSERT_EQ_INT(nck_quant_int4_pack(be, p2, w, NCK_DTYPE_BF16, rows, cols, 128, s1), 0);
	ASSERT_TRUE(memcmp(p1, p2, n / 2) == 0);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(p1, f1, w, NCK_DTYPE_BF16, n, 0.001f, 1), 0);
	ASSERT_EQ_INT(nck_quant_nvfp4(be, p2, f2, w, NCK_DTYPE_BF16, n, 0.001f), 0);
	ASSERT_TRUE(memcmp(p1, p2, n / 2) == 0 && memcmp(f1, f2, n / 16) == 0);
	free(w);
	free(s1);
	free(s2);
	free(f1);
	free(f2);
	free(p1);
	free(p2);
}

NCK_TEST(quant_backend_select)
{
	const nck_quant_backend *be = nck_quant_backend_get("auto", NULL);
	nck_diag diag;

	/* Without a GPU (or a built CUDA backend) "auto" must still work. */
	ASSERT_TRUE(be != NULL);
	fprintf(stderr, "auto: %s\n", be->name);
	check_backend(be);
	check_backend(NULL);
	ASSERT_TRUE(nck_quant_backend_get("off", NULL) == nck_quant_backend_cpu());
	ASSERT_TRUE(nck_quant_backend_get("cpu", NULL) == nck_quant_backend_cpu());
	ASSERT_TRUE(nck_quant_backend_get(NULL, NULL) != NULL);
	nck_diag_init(&diag);
	ASSERT_TRUE(nck_quant_backend_get("gpu", &diag) == NULL);
	ASSERT_EQ_INT(diag.code, -EINVAL);
	nck_diag_init(&diag);
	ASSERT_TRUE(nck_quant_backend_get("1023", &diag) == NULL);
	ASSERT_EQ_INT(diag.code, -ENODEV);
	fprintf(stderr, "1023: %s\n", diag.msg);
	nck_diag_init(&diag);
	ASSERT_TRUE(nck_quant_backend_get("-1", &diag) == NULL);
	ASSERT_EQ_INT(diag.code, -EINVAL);
}

NCK_TEST(quant_bad_arguments)
{
	uint16_t w[64] = { 0 };
	float s[64], a;
	uint8_t out[64];

	ASSERT_EQ_INT(nck_quant_cpu_amax(&a, w, NCK_DTYPE_I8, 4, 1), -ENOTSUP);
	ASSERT_EQ_INT(nck_quant_amax(NULL, &a, w, NCK_DTYPE_F8_E4M3, 4), -ENOTSUP);
	ASSERT_EQ_INT(nck_quant_cpu_amax(NULL, w, NCK_DTYPE_BF16, 4, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_fp8(out, NULL, NCK_DTYPE_BF16, 4, 1.0f, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_fp8(out, NULL, NCK_DTYPE_BF16, 0, 1.0f, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_fp8(out, w, NCK_DTYPE_BF16, SIZE_MAX, 1.0f, 1), -EOVERFLOW);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s, w, NCK_DTYPE_BF16, 2, 30, 8, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s, w, NCK_DTYPE_BF16, 2, 32, 0, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_int4_pack(out, w, NCK_DTYPE_BF16, 3, 16, 8, s, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_int4_pack(out, w, NCK_DTYPE_BF16, 2, 16, 8, NULL, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_int4_pack(NULL, out, w, NCK_DTYPE_BF16, 2, 16, 16, NULL), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(s, w, NCK_DTYPE_BF16, SIZE_MAX / 2, 64, 8, 1),
		      -EOVERFLOW);
	ASSERT_EQ_INT(nck_quant_cpu_amax(&a, w, NCK_DTYPE_BF16, 0, 1), 0);
	ASSERT_TRUE(a == 0.0f);
}

/* ---- NVFP4 ------------------------------------------------------------------------------ */

/* NVFP4 of n elements at `global`, the same on every instruction set and thread count; listed. */
static void add_nvfp4(FILE *m, const char *in, const void *src, nck_dtype dtype, size_t n,
		      float global)
{
	static int seq;
	static const int counts[] = { 1, 3, 0 };
	uint8_t *c = xmalloc(n / 2), *sc = xmalloc(n / 16), *c2 = xmalloc(n / 2),
		*s2 = xmalloc(n / 16);
	char cname[64], sname[64];

	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c, sc, src, dtype, n, global, 1), 0);
	for (size_t k = 0; k < N_ISAS; k++) {
		if (!isa_use(k))
			continue;
		for (size_t t = 0; t < sizeof(counts) / sizeof(counts[0]); t++) {
			memset(c2, 0x5A, n / 2);
			ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c2, s2, src, dtype, n, global, counts[t]), 0);
			ASSERT_TRUE(memcmp(c, c2, n / 2) == 0);
			ASSERT_TRUE(memcmp(sc, s2, n / 16) == 0);
		}
	}
	ASSERT_EQ_INT(nck_quant_cpu_set_isa("auto"), 0);
	snprintf(cname, sizeof(cname), "nvfp4_c%d.bin", seq);
	snprintf(sname, sizeof(sname), "nvfp4_s%d.bin", seq++);
	write_file(cname, c, n / 2);
	write_file(sname, sc, n / 16);
	fprintf(m, "nvfp4 %s %zu %08x %s %s %s\n", dname(dtype), n, fbits(global), in, cname, sname);
	free(c);
	free(sc);
	free(c2);
	free(s2);
}

/* Global scales: saturating, clamping, ordinary, subnormal, and those of real amaxes. */
static void nvfp4_exhaustive(nck_dtype dtype, const char *file)
{
	const float globals[] = { 1.0f, 0x1p-20f, 0x1p20f, 0.3f / 2688.0f, 7e-42f, 0x1p-130f,
				  nck_quant_nvfp4_global(0x1.fep127f), nck_quant_nvfp4_global(65504.0f),
				  nck_quant_nvfp4_global(1.0f), nck_quant_nvfp4_global(0.0f) };
	uint16_t *v = all_u16();
	FILE *m = manifest_open();

	write_file(file, v, 65536 * 2);
	for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++)
		add_nvfp4(m, file, v, dtype, 65536, globals[i]);
	/* Also shuffled, so that blocks mix magnitudes (a multiplicative permutation). */
	for (uint32_t i = 0; i < 65536; i++)
		v[i] = (uint16_t)(i * 40503u);
	write_file("shuffled.bin", v, 65536 * 2);
	add_nvfp4(m, "shuffled.bin", v, dtype, 65536, 0x1p-12f);
	add_nvfp4(m, "shuffled.bin", v, dtype, 65536, 0.01f);
	oracle_run(m);
	free(v);
}

NCK_TEST(quant_nvfp4_bf16_exhaustive)
{
	nvfp4_exhaustive(NCK_DTYPE_BF16, "bf16.bin");
}

NCK_TEST(quant_nvfp4_f16_exhaustive)
{
	nvfp4_exhaustive(NCK_DTYPE_F16, "f16.bin");
}

/* The E2M1 thresholds 0.25 ... 5, and the block's amax element (6). */
static const float e2m1_ties[] = { 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f };

/*
 * One f32 block per E4M3 code c (and per tie between c and c+1): with g a
 * power of two, amax = v * 6g gives t = v exactly, and elements k * value(s) * g
 * land exactly on the E2M1 thresholds k (or one ulp off).
 */
NCK_TEST(quant_nvfp4_f32_scales_and_ties)
{
	const float g = 0x1p-12f;
	size_t nb = 0, cap = 4 * 128 + 8;
	float *x = xmalloc(cap * 16 * sizeof(float));
	FILE *m = manifest_open();

	for (int c = 1; c < 0x7E; c++) {
		float v[4] = { e4m3_value(c), (e4m3_value(c) + e4m3_value(c + 1)) / 2.0f, 0, 0 };

		v[2] = next_up(v[1]);
		v[3] = next_down(v[1]);
		for (int k = 0; k < 4; k++, nb++) {
			float *b = x + nb * 16, d = e4m3_value(c) * g;

			b[0] = v[k] * 6.0f * g * (nb % 2 ? -1.0f : 1.0f); /* the amax */
			for (int j = 0; j < 7; j++)
				b[1 + j] = e2m1_ties[j] * d;
			b[8] = next_up(e2m1_ties[nb % 7] * d);
			b[9] = next_down(e2m1_ties[(nb + 3) % 7] * d);
			b[10] = -e2m1_ties[nb % 7] * d;
			b[11] = -0.0f;
			b[12] = -next_down(e2m1_ties[(nb + 5) % 7] * d);
			b[13] = d * 0.1f;
			b[14] = -d * 0.1f;
			b[15] = (float)(nb % 13) * 0.5f * d;
		}
	}
	/* All-zero block (scale 1.0), a tiny one (clamped to 2^-9), a NaN and an inf. */
	memset(x + nb * 16, 0, 16 * sizeof(float));
	nb++;
	memset(x + nb * 16, 0, 16 * sizeof(float));
	x[nb * 16 + 3] = -1e-30f;
	nb++;
	for (int j = 0; j < 16; j++)
		x[nb * 16 + j] = j == 5 ? NAN : (float)j * 0.01f;
	nb++;
	for (int j = 0; j < 16; j++)
		x[nb * 16 + j] = j == 9 ? -INFINITY : (float)j;
	nb++;
	write_file("ties.bin", x, nb * 16 * sizeof(float));
	add_nvfp4(m, "ties.bin", x, NCK_DTYPE_F32, nb * 16, g);
	add_nvfp4(m, "ties.bin", x, NCK_DTYPE_F32, nb * 16, 0x1p-20f);
	oracle_run(m);
	free(x);
}

/* E2M1 codes of every threshold and its neighbours, and of random float32 bits. */
NCK_TEST(quant_e2m1_encode)
{
	size_t n = 1 << 18, k = 0;
	float *y = xmalloc(n * 4);
	uint8_t *c = xmalloc(n);
	FILE *m = manifest_open();

	for (size_t t = 0; t < 7; t++) {
		for (int d = -3; d <= 3; d++) {
			float v = bitsf(fbits(e2m1_ties[t]) + (uint32_t)d);

			y[k++] = v;
			y[k++] = -v;
		}
	}
	y[k++] = 0.0f;
	y[k++] = -0.0f;
	y[k++] = NAN;
	y[k++] = -NAN;
	y[k++] = INFINITY;
	y[k++] = -INFINITY;
	y[k++] = -0x1p-149f;
	rng_seed(7);
	for (; k < n; k++)
		y[k] = (k & 1) ? bitsf((uint32_t)rng()) : scale2(rnd_weight(), 12);
	for (size_t i = 0; i < n; i++)
		c[i] = nck_quant_e2m1_encode(y[i]);
	write_file("y.bin", y, n * 4);
	write_file("codes.bin", c, n);
	fprintf(m, "e2m1 %zu y.bin codes.bin\n", n);
	oracle_run(m);
	ASSERT_EQ_INT(nck_quant_e2m1_encode(2.5f), 4);
	ASSERT_EQ_INT(nck_quant_e2m1_encode(-0.0f), 0);
	ASSERT_EQ_INT(nck_quant_e2m1_encode(-0.1f), 8);
	ASSERT_EQ_INT(nck_quant_e2m1_encode(NAN), 7);
	free(y);
	free(c);
}

NCK_TEST(quant_nvfp4_random)
{
	static const nck_dtype dts[] = { NCK_DTYPE_BF16, NCK_DTYPE_F16, NCK_DTYPE_F32 };
	size_t n = 16 * 40001;
	FILE *m = manifest_open();

	rng_seed(8);
	for (size_t d = 0; d < 3; d++) {
		char *buf = xmalloc(n * 4), name[32];
		float amax;

		for (size_t i = 0; i < n; i++)
			put(buf, dts[d], i, i % 4099 == 11 ? 0.0f : rnd_weight());
		for (size_t i = 16 * 7; i < 16 * 8; i++) /* one all-zero block */
			put(buf, dts[d], i, 0.0f);
		snprintf(name, sizeof(name), "r%zu.bin", d);
		write_file(name, buf, n * esz(dts[d]));
		amax = add_amax(m, name, buf, dts[d], n);
		fprintf(m, "scale 2688 %08x %08x\n", fbits(amax), fbits(nck_quant_nvfp4_global(amax)));
		add_nvfp4(m, name, buf, dts[d], n, nck_quant_nvfp4_global(amax));
		add_nvfp4(m, name, buf, dts[d], n, nck_quant_nvfp4_global(amax / 5.0f));
		free(buf);
	}
	for (int i = 0; i < 1000; i++) {
		float a = bitsf((uint32_t)rng() & 0x7FFFFFFFu);

		fprintf(m, "scale 2688 %08x %08x\n", fbits(a), fbits(nck_quant_nvfp4_global(a)));
	}
	oracle_run(m);
	ASSERT_TRUE(nck_quant_nvfp4_global(0.0f) == 1.0f);
	ASSERT_TRUE(nck_quant_nvfp4_global(2688.0f) == 1.0f);
}

/* Spec gguf-nvfp4.md 2.6, and blocks computed in pieces equal the whole. */
NCK_TEST(quant_nvfp4_example_and_pieces)
{
	float x[16 * 20] = { 1.3f, -0.7f, 3.0f };
	uint8_t c[8 * 20], sc[20], c2[8 * 20], s2[20];
	float g = nck_quant_nvfp4_global(12.0f);

	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c, sc, x, NCK_DTYPE_F32, 16, g, 1), 0);
	ASSERT_EQ_INT(sc[0], 0x6E);
	ASSERT_EQ_INT(c[0], 0xB5);
	ASSERT_EQ_INT(c[1], 0x07); /* 3.0: y = 6, code 7 (low nibble); 0 (high) */
	rng_seed(9);
	for (size_t i = 0; i < 16 * 20; i++)
		x[i] = rnd_weight();
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c, sc, x, NCK_DTYPE_F32, 16 * 20, 0.01f, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c2, s2, x, NCK_DTYPE_F32, 16 * 7, 0.01f, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c2 + 8 * 7, s2 + 7, x + 16 * 7, NCK_DTYPE_F32, 16 * 13,
					  0.01f, 1),
		      0);
	ASSERT_TRUE(memcmp(c, c2, sizeof(c)) == 0 && memcmp(sc, s2, sizeof(sc)) == 0);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c, sc, x, NCK_DTYPE_F32, 15, 0.01f, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c, NULL, x, NCK_DTYPE_F32, 16, 0.01f, 1), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c, sc, x, NCK_DTYPE_I8, 16, 0.01f, 1), -ENOTSUP);
	ASSERT_EQ_INT(nck_quant_nvfp4(NULL, c, sc, x, NCK_DTYPE_F32, 17, 0.01f), -EINVAL);
	ASSERT_EQ_INT(nck_quant_cpu_nvfp4(c, sc, NULL, NCK_DTYPE_F32, 0, 0.01f, 1), 0);
}
