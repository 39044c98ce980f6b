/* SPDX-License-Identifier: MIT */
/*
 * Element-wise quantization arithmetic shared, as the same source text, by
 * the CPU backend (quant.c, C11) and the CUDA kernels (src/gpu/kernels.cu),
 * so that both produce the same bits. Every rounding step is either an IEEE
 * float32 operation (a correctly rounded division, addition or
 * multiplication, each its own rounding: no product is ever added, and
 * contraction is off anyway) or integer arithmetic on the float's bits.
 * Compile with -ffp-contract=off (gcc) and without fast-math (nvcc:
 * -ftz=false -prec-div=true -fmad=false).
 *
 * Formats (docs: /work/shared/spec/sharding-hf-trtllm.md C.4, C.5):
 * - bf16 is the upper half of an IEEE float32; f16 is IEEE binary16. Both
 *   widen to float32 exactly.
 * - F8_E4M3 is OCP E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa
 *   bits, no infinities, 0x7F/0xFF NaN, largest finite 448 (0x7E),
 *   subnormals k * 2^-9 for k = 1..7.
 * - int4 values are two's-complement nibbles in [-8, 7].
 * - NVFP4 (ModelOpt nvfp4_tensor.py, spec gguf-nvfp4.md 2.3): E2M1 codes
 *   (sign, 2 exponent bits, 1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6),
 *   one E4M3 scale per block of 16 elements and a float32 global scale.
 *
 * Special values (the module's documented choice, see quant.h):
 * - amax ignores NaN (counts as 0); an infinity makes amax +inf;
 * - fp8: NaN -> 0x7F with the input's sign bit; +-inf and anything whose
 *   magnitude rounds above 448 saturate to +-448; the sign of zero and of
 *   values that round to zero is kept (0x80 is -0);
 * - int4: NaN -> 0; values beyond the range clamp to -8 / 7.
 * - e2m1: as ModelOpt's searchsorted: NaN -> 7 (+6), +-inf -> +-6, the
 *   sign is (y < 0), so -0.0 gives code 0 and a negative value that rounds
 *   to zero gives 8 (-0).
 *
 * Ownership: none (pure functions). Thread-safety: pure functions.
 */
#ifndef NCK_QUANT_ELEM_H
#define NCK_QUANT_ELEM_H

#include <stdint.h>
#if !defined(__CUDACC__)
#include <string.h>
#endif

#if defined(__CUDACC__)
#define NCK_QE_FN static __host__ __device__ __forceinline__
#else
#define NCK_QE_FN static inline
#endif

/* FP8 E4M3FN: largest finite magnitude and the integer range of int4. */
#define NCK_QE_FP8_MAX 448.0f
#define NCK_QE_INT4_MAX 7.0f
/* NVFP4: block size, largest E2M1 magnitude, and 6 * 448 (the global scale's divisor). */
#define NCK_QE_NVFP4_BLOCK 16
#define NCK_QE_E2M1_MAX 6.0f
#define NCK_QE_NVFP4_GLOBAL_DIV 2688.0f

/* The bits of a float32 and back. */
NCK_QE_FN uint32_t nck_qe_bits(float f)
{
#if defined(__CUDA_ARCH__)
	return __float_as_uint(f);
#else
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
#endif
}

NCK_QE_FN float nck_qe_float(uint32_t u)
{
#if defined(__CUDA_ARCH__)
	return __uint_as_float(u);
#else
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
#endif
}

/* a / b and a + b, correctly rounded to nearest even in float32. */
NCK_QE_FN float nck_qe_div(float a, float b)
{
#if defined(__CUDA_ARCH__)
	return __fdiv_rn(a, b);
#else
	return a / b;
#endif
}

NCK_QE_FN float nck_qe_add(float a, float b)
{
#if defined(__CUDA_ARCH__)
	return __fadd_rn(a, b);
#else
	return a + b;
#endif
}

/* a * b, correctly rounded (never fused with an addition: __fmul_rn, -ffp-contract=off). */
NCK_QE_FN float nck_qe_mul(float a, float b)
{
#if defined(__CUDA_ARCH__)
	return __fmul_rn(a, b);
#else
	return a * b;
#endif
}

/* bf16 bits -> float32 (exact: bf16 is the upper half of a float32). */
NCK_QE_FN float nck_qe_bf16(uint16_t h)
{
	return nck_qe_float((uint32_t)h << 16);
}

/*
 * IEEE half bits -> float32, exactly. Normal numbers and inf/NaN rebias the
 * exponent (15 -> 127) and shift the mantissa; a subnormal m * 2^-24 is
 * 2^-14 * (1 + m/1024) - 2^-14, a subtraction that is exact (Sterbenz).
 * (Selects compare signed 32-bit values: SSE2 has no unsigned compare, and
 * every value here is below 2^31.)
 */
NCK_QE_FN float nck_qe_f16(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	int32_t em = h & 0x7FFF;
	int32_t normal = (em << 13) + ((127 - 15) << 23);
	int32_t special = (em << 13) | 0x7F800000;
	int32_t sub = (int32_t)nck_qe_bits(nck_qe_add(nck_qe_float(0x38800000u + ((uint32_t)em << 13)),
						      -nck_qe_float(0x38800000u)));
	int32_t mag = em < 0x0400 ? sub : normal;

	mag = em >= 0x7C00 ? special : mag;
	return nck_qe_float(sign | (uint32_t)mag);
}

/*
 * |x| as float32 bits, NaN as 0: for non-negative floats the order of the
 * bits (as integers below 2^31) is the numeric order, so an integer max is
 * amax and is independent of the order of evaluation.
 */
NCK_QE_FN int32_t nck_qe_abs_bits(float x)
{
	int32_t a = (int32_t)(nck_qe_bits(x) & 0x7FFFFFFFu);

	return a > 0x7F800000 ? 0 : a;
}

/*
 * The scale of a block: amax / maxbound (a float32 division) when that is a
 * positive finite float32, else 1.0 (amax 0, an infinite amax, or a quotient
 * that underflows to 0 for a float32 amax below 448 * 2^-150).
 */
NCK_QE_FN float nck_qe_scale(float amax, float maxbound)
{
	float s = nck_qe_div(amax, maxbound);
	uint32_t b = nck_qe_bits(s);

	return b - 1u < 0x7F7FFFFFu ? s : 1.0f; /* 0 < s <= FLT_MAX */
}

/*
 * float32 -> E4M3FN code, round to nearest even, saturating at +-448.
 * Below 2^-6 (the smallest normal) adding 2^14 rounds |x| to a multiple of
 * 2^-9 (the float32 ulp at 2^14), which is the subnormal code, 8 at 2^-6.
 * Above, rounding the float32 mantissa to 3 bits (ties to even) and
 * rebiasing the exponent (127 -> 7) gives the code; a carry into the
 * exponent is the next code.
 */
NCK_QE_FN uint8_t nck_qe_fp8(float x)
{
	uint32_t u = nck_qe_bits(x);
	uint32_t sign = (u >> 24) & 0x80u;
	uint32_t ua = u & 0x7FFFFFFFu;
	int32_t a = (int32_t)ua;
	/* |x| + 2^14 >= 2^14: no wrap below 0x46800000 (2^14). */
	int32_t sub = (int32_t)(nck_qe_bits(nck_qe_add(nck_qe_float(ua), 16384.0f)) - 0x46800000u);
	int32_t nrm = (int32_t)((ua + 0x7FFFFu + ((ua >> 20) & 1u)) >> 20) - ((127 - 7) << 3);
	int32_t code = a < 0x3C800000 ? sub : nrm;

	code = code > 0x7E ? 0x7E : code;
	code = a > 0x7F800000 ? 0x7F : code;
	return (uint8_t)((uint32_t)code | sign);
}

/*
 * clamp(round_half_even(w / s), -8, 7), NaN -> 0. Clamping before rounding
 * gives the same result (the bounds are integers); adding 1.5 * 2^23 rounds
 * a value of [-8, 7] to an integer (ulp 1 there), read from the bits.
 */
NCK_QE_FN int32_t nck_qe_int4(float w, float s)
{
	float x = nck_qe_div(w, s);

	x = x == x ? x : 0.0f;
	x = x < -8.0f ? -8.0f : x;
	x = x > 7.0f ? 7.0f : x;
	return (int32_t)nck_qe_bits(nck_qe_add(x, 12582912.0f)) - 0x4B400000;
}

/* Two int4 values in one byte: row 2i in the low nibble, row 2i+1 in the high. */
NCK_QE_FN uint8_t nck_qe_pack(int32_t lo, int32_t hi)
{
	return (uint8_t)(((uint32_t)lo & 0xFu) | (((uint32_t)hi & 0xFu) << 4));
}

/* ---- NVFP4 ------------------------------------------------------------------ */

/* The value of E4M3FN code c (0..0x7E, non-negative): (8 + m) * 2^(e-10), or m * 2^-9. */
NCK_QE_FN float nck_qe_e4m3_value(uint32_t c)
{
	uint32_t e = c >> 3, m = c & 7u;
	float sub = nck_qe_mul((float)(int32_t)m, 0.001953125f); /* 2^-9, exact */
	float nrm = nck_qe_float(((e + 120u) << 23) | (m << 20));

	return e == 0 ? sub : nrm;
}

/*
 * The E4M3 block scale of a block amax: t = amax / g6 (g6 = 6 * global, a
 * float32 product), 1.0 when t is 0 (an all-zero block), at least 2^-9 (the
 * smallest E4M3 subnormal, as ModelOpt clamps), then cast to E4M3 (round
 * to nearest even; saturating at 448 where torch would give NaN above 464).
 */
NCK_QE_FN uint8_t nck_qe_nvfp4_scale(float block_amax, float g6)
{
	float t = nck_qe_div(block_amax, g6);

	t = t == 0.0f ? 1.0f : t;
	t = t < 0.001953125f ? 0.001953125f : t;
	return nck_qe_fp8(t);
}

/*
 * E2M1 code of float32 y, as ModelOpt's _cast_fp4: the magnitude index is
 * the number of bounds 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5 below |y|, plus
 * one when |y| is exactly 0.75, 1.75 or 3.5, i.e. round to nearest with
 * ties to the even code. Compares work on the bits of |y| as signed
 * integers (order-preserving for non-negative floats; NaN is above every
 * bound, hence 7). The sign bit is (y < 0): set for negative numbers
 * (including -inf), clear for -0.0 and NaN.
 */
NCK_QE_FN uint8_t nck_qe_e2m1(float y)
{
	uint32_t u = nck_qe_bits(y);
	int32_t a = (int32_t)(u & 0x7FFFFFFFu);
	int32_t k = (a > 0x3E800000) + (a >= 0x3F400000) + (a > 0x3FA00000) + (a >= 0x3FE00000) +
		    (a > 0x40200000) + (a >= 0x40600000) + (a > 0x40A00000);
	int32_t neg = (int32_t)(u >> 31) & (a != 0) & (a <= 0x7F800000);

	return (uint8_t)(k | (neg << 3));
}

/* Two E2M1 codes in one byte: the even (lower-index) element in the low nibble. */
NCK_QE_FN uint8_t nck_qe_pack_fp4(uint8_t even, uint8_t odd)
{
	return (uint8_t)(even | (odd << 4));
}

#endif
