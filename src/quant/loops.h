/* SPDX-License-Identifier: MIT */
/*
 * The CPU backend's outer loops, as a template: quant.c includes this file
 * once per instruction set it builds for, with
 *   LOOPS(name)   the function's name for this instruction set, and
 *   LOOPS_TARGET  its function attribute (target("avx2"), ... or nothing),
 * so the same C is compiled (and vectorized by gcc) for SSE2, AVX2 and
 * AVX-512, and quant.c picks one at run time. The inner loops are quant.c's
 * always-inline *_loop functions, specialized per dtype here. Instruction
 * sets change speed only: every variant does the same IEEE float32
 * operations (no FMA: -ffp-contract=off), so all give the same bits.
 *
 * No include guard, on purpose. Ownership: none. Thread-safety: pure
 * functions over the caller's buffers.
 */

/* amax of n elements as float32 bits (NaN ignored). */
static LOOPS_TARGET int32_t LOOPS(amax)(const unsigned char *p, size_t n, nck_dtype dt)
{
	switch (dt) {
	case NCK_DTYPE_BF16:
		return amax_loop(p, n, NCK_DTYPE_BF16);
	case NCK_DTYPE_F16:
		return amax_loop(p, n, NCK_DTYPE_F16);
	default:
		return amax_loop(p, n, NCK_DTYPE_F32);
	}
}

/* fp8 codes of n elements. */
static LOOPS_TARGET void LOOPS(fp8)(uint8_t *dst, const unsigned char *p, size_t n, float scale,
				    nck_dtype dt)
{
	switch (dt) {
	case NCK_DTYPE_BF16:
		fp8_loop(dst, p, n, scale, NCK_DTYPE_BF16);
		break;
	case NCK_DTYPE_F16:
		fp8_loop(dst, p, n, scale, NCK_DTYPE_F16);
		break;
	default:
		fp8_loop(dst, p, n, scale, NCK_DTYPE_F32);
		break;
	}
}

/* INT4 block scales of `rows` rows of `cols` elements. */
static LOOPS_TARGET void LOOPS(scales)(float *scales, const unsigned char *src, size_t rows,
				       size_t cols, size_t group, nck_dtype dt)
{
	switch (dt) {
	case NCK_DTYPE_BF16:
		scales_loop(scales, src, rows, cols, group, NCK_DTYPE_BF16);
		break;
	case NCK_DTYPE_F16:
		scales_loop(scales, src, rows, cols, group, NCK_DTYPE_F16);
		break;
	default:
		scales_loop(scales, src, rows, cols, group, NCK_DTYPE_F32);
		break;
	}
}

/* INT4 packing of `pairs` row pairs of `cols` elements with their scales. */
static LOOPS_TARGET void LOOPS(pack)(uint8_t *dst, const unsigned char *src, const float *scales,
				     size_t pairs, size_t cols, size_t group, nck_dtype dt)
{
	switch (dt) {
	case NCK_DTYPE_BF16:
		pack_rows_loop(dst, src, scales, pairs, cols, group, NCK_DTYPE_BF16);
		break;
	case NCK_DTYPE_F16:
		pack_rows_loop(dst, src, scales, pairs, cols, group, NCK_DTYPE_F16);
		break;
	default:
		pack_rows_loop(dst, src, scales, pairs, cols, group, NCK_DTYPE_F32);
		break;
	}
}

/* NVFP4 of `blocks` blocks of 16 elements: codes and E4M3 block scales. */
static LOOPS_TARGET void LOOPS(nvfp4)(uint8_t *codes, uint8_t *scales, const unsigned char *src,
				      size_t blocks, float global, nck_dtype dt)
{
	switch (dt) {
	case NCK_DTYPE_BF16:
		nvfp4_loop(codes, scales, src, blocks, global, NCK_DTYPE_BF16);
		break;
	case NCK_DTYPE_F16:
		nvfp4_loop(codes, scales, src, blocks, global, NCK_DTYPE_F16);
		break;
	default:
		nvfp4_loop(codes, scales, src, blocks, global, NCK_DTYPE_F32);
		break;
	}
}
