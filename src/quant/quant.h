/* SPDX-License-Identifier: MIT */
/*
 * nck_quant: the weight quantization of TensorRT-LLM checkpoints, as
 * ModelOpt exports them (spec: /work/shared/spec/sharding-hf-trtllm.md C.4
 * and C.5), over host buffers of bf16, f16 or f32 elements:
 *
 *  - FP8 (quant_algo "FP8"): one float32 scale per tensor,
 *    s = amax / 448 with amax = max |float32(w)|; each code is
 *    E4M3FN(round_to_nearest_even(float32(w) / s)), saturated to +-448;
 *  - INT4 AWQ (quant_algo "W4A16_AWQ"): weight [out, in], one float32 scale
 *    per row and block of `group` input columns, s = block amax / 7;
 *    q = clamp(round_half_even(float32(w) / s), -8, 7), packed two output
 *    rows per byte: byte (i, j) holds row 2i's q in the low nibble and row
 *    2i+1's in the high one (two's complement), giving I8 [out/2, in].
 *
 *  - NVFP4 (quant_algo "NVFP4", ModelOpt nvfp4_tensor.py; spec
 *    gguf-nvfp4.md 2.3): a float32 global scale g = amax / 2688 (6 * 448)
 *    of the merged tensor; per block of 16 consecutive elements an E4M3
 *    scale s = E4M3(max(t == 0 ? 1 : t, 2^-9)) with t = block amax /
 *    float32(6 * g); each element's E2M1 code of float32(w) / float32(s * g)
 *    (round to nearest, ties to the even code; sign = (y < 0)), two codes
 *    per byte, the even element in the low nibble.
 *
 * Every division is one IEEE float32 division (no reciprocal, no fused
 * multiply-add), so results are bit-exact and equal on every backend.
 * Special values: NaN elements are ignored by amax; a scale is 1.0 when
 * amax / maxbound is not a positive finite float32 (amax 0: an all-zero
 * tensor or block; amax +inf; a float32 quotient that underflows); fp8
 * codes NaN as 0x7F (with the element's sign bit), saturates +-inf to
 * +-448 and keeps the sign of zero; int4 quantizes NaN to 0 and clamps
 * +-inf. Unquantized weights never hold these; the rules only make every
 * input's output defined and identical across backends.
 *
 * Two layers:
 *  - nck_quant_cpu_*: the portable CPU code, vectorizable loops, split over
 *    `threads` POSIX threads for large inputs (by rows, or by ranges of
 *    elements); amax is combined with max, so every thread count gives the
 *    same bits;
 *  - a backend (nck_quant_backend, a table of the same operations over host
 *    buffers): the CPU one, or the CUDA one (libnemockpt_cuda.so, loaded
 *    with dlopen by nck_quant_backend_get()). The nck_quant_* dispatchers
 *    check arguments once, call a backend, and redo on the CPU whatever a
 *    device backend could not finish.
 *
 * Ownership: buffers are the caller's; nothing is allocated across calls
 * except the backends, which live until the process exits.
 * Thread-safety: every function may be called from any thread at the same
 * time; backends are shared, immutable tables (the CUDA one runs up to 4
 * calls on the device at once and queues the rest internally).
 */
#ifndef NCK_QUANT_QUANT_H
#define NCK_QUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"
#include "nemockpt/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

/* INT4 AWQ block size along the input axis unless the config says otherwise. */
#define NCK_QUANT_GROUP_DEFAULT 128

/* The most threads one CPU call uses. */
#define NCK_QUANT_MAX_THREADS 64

/* ---- element conversions and scales ----------------------------------------- */

/* bf16 / IEEE half bits -> float32 (exact). */
float nck_quant_bf16_to_f32(uint16_t bits);
float nck_quant_f16_to_f32(uint16_t bits);

/*
 * Widens n elements of `src` (BF16, F16 or F32, any alignment) to float32
 * in `dst` (exact). -ENOTSUP for other dtypes.
 */
int nck_quant_to_f32(float *dst, const void *src, nck_dtype dtype, size_t n);

/* The FP8 per-tensor scale of an amax: amax / 448.0f, or 1.0 (see above). */
float nck_quant_fp8_scale(float amax);

/* The INT4 block scale of a block amax: amax / 7.0f, or 1.0 (see above). */
float nck_quant_int4_scale(float amax);

/* The E4M3FN code of float32 x (round to nearest even, saturating). */
uint8_t nck_quant_fp8_encode(float x);

/* NVFP4: elements per block scale (TensorRT-LLM's FP4 GEMMs take only 16). */
#define NCK_QUANT_NVFP4_BLOCK 16

/* The NVFP4 global scale of an amax: amax / 2688.0f, or 1.0 (the rule above). */
float nck_quant_nvfp4_global(float amax);

/* The E2M1 code (0..15) of float32 y, as described above. */
uint8_t nck_quant_e2m1_encode(float y);

/* ---- CPU backend ------------------------------------------------------------------- */

/*
 * Common to the functions below: `src` holds elements of `dtype` (BF16, F16
 * or F32; -ENOTSUP otherwise), read with any alignment; `threads` is the most
 * threads to use (0: nck_quant_cpu_threads(), 1: the calling thread only);
 * small inputs always run in the calling thread. Errors: -EINVAL (a shape
 * rule broken, NULL buffers), -ENOTSUP, -EOVERFLOW (a size overflows);
 * they are found before anything is written, and nothing fails after.
 */

/* *amax = max |float32(src[i])| over n elements, NaN ignored (0 when n = 0). */
int nck_quant_cpu_amax(float *amax, const void *src, nck_dtype dtype, size_t n, int threads);

/* dst[i] = E4M3FN(float32(src[i]) / scale) for n elements. */
int nck_quant_cpu_fp8(uint8_t *dst, const void *src, nck_dtype dtype, size_t n, float scale,
		      int threads);

/*
 * INT4 block scales of a [rows, cols] row-major region: scales[r * (cols /
 * group) + b] = nck_quant_int4_scale(amax of row r, columns b*group ...
 * (b+1)*group - 1). cols must be a multiple of group (group > 0). A caller
 * that needs rows r0..r1-1 of a tensor passes a pointer to row r0.
 */
int nck_quant_cpu_int4_scales(float *scales, const void *src, nck_dtype dtype, size_t rows,
			      size_t cols, size_t group, int threads);

/*
 * Quantizes and packs `rows` rows (an even number; the first is an even row
 * of the tensor) of `cols` columns: dst gets rows/2 packed rows of cols
 * bytes, dst[i * cols + j] = (q(2i, j) & 15) | (q(2i+1, j) & 15) << 4 with
 * q(r, j) = clamp(rne(float32(src[r, j]) / scales[r * (cols/group) + j /
 * group]), -8, 7). `scales` covers the same rows (usually from
 * nck_quant_cpu_int4_scales(), but any values are accepted). A packed
 * tensor may be produced piecewise: rows [r0, r1) with r0, r1 even land at
 * packed rows [r0/2, r1/2).
 */
int nck_quant_cpu_int4_pack(uint8_t *dst, const void *src, nck_dtype dtype, size_t rows,
			    size_t cols, size_t group, const float *scales, int threads);

/*
 * NVFP4 of n elements (a multiple of NCK_QUANT_NVFP4_BLOCK) with global
 * scale `global`: scales[b] = the E4M3 scale of elements 16b .. 16b+15 (n/16
 * bytes) and codes[i] = the E2M1 codes of elements 2i (low nibble) and 2i+1
 * (n/2 bytes). A [rows, cols] weight with cols % 16 == 0 gives the
 * row-major [rows, cols/16] scales and [rows, cols/2] packed weight of a
 * TensorRT-LLM checkpoint; blocks are independent, so any run of whole
 * blocks may be computed separately.
 */
int nck_quant_cpu_nvfp4(uint8_t *codes, uint8_t *scales, const void *src, nck_dtype dtype,
			size_t n, float global, int threads);

/* The default thread count of CPU calls: set, or the online CPUs (capped). */
int nck_quant_cpu_threads(void);

/* Sets the default thread count (0: the online CPUs again). Any thread, any time. */
void nck_quant_cpu_set_threads(int threads);

/*
 * The instruction set the CPU loops use: "base" (SSE2 on x86-64, or plain C
 * elsewhere), "avx2" or "avx512" (x86-64; the best the CPU has is chosen at
 * first use). Every one gives the same bits.
 */
const char *nck_quant_cpu_isa(void);

/*
 * Forces the loops of one instruction set by name (tests, benchmarks), or
 * "auto" (or NULL) for the best again: 0, or -ENOTSUP when it was not built
 * or the CPU lacks it. Takes effect for calls that start afterwards.
 */
int nck_quant_cpu_set_isa(const char *name);

/* ---- backends ------------------------------------------------------------------------ */

/* Version of the table below; a backend built for another one is refused. */
#define NCK_QUANT_BACKEND_ABI 2u

/*
 * A backend: the operations above over host buffers. The dispatchers below
 * check every argument before calling an operation, so an operation sees
 * valid shapes, a supported dtype and sizes whose products fit in size_t.
 * An operation returns 0, -ENOTSUP when it cannot take this input (a row
 * pair larger than the device's chunks), or another negative errno (-EIO:
 * the device failed; -ENOMEM); it may have written part of its outputs.
 * Operations may be called from many threads at once.
 */
typedef struct nck_quant_backend nck_quant_backend;
struct nck_quant_backend {
	unsigned abi;     /* NCK_QUANT_BACKEND_ABI */
	const char *name; /* "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)" */
	int (*amax)(const nck_quant_backend *be, float *amax, const void *src, nck_dtype dtype,
		    size_t n);
	int (*fp8)(const nck_quant_backend *be, uint8_t *dst, const void *src, nck_dtype dtype,
		   size_t n, float scale);
	int (*int4_scales)(const nck_quant_backend *be, float *scales, const void *src,
			   nck_dtype dtype, size_t rows, size_t cols, size_t group);
	int (*int4_pack)(const nck_quant_backend *be, uint8_t *dst, const void *src,
			 nck_dtype dtype, size_t rows, size_t cols, size_t group,
			 const float *scales);
	int (*nvfp4)(const nck_quant_backend *be, uint8_t *codes, uint8_t *scales,
		     const void *src, nck_dtype dtype, size_t n, float global);
};

/* The CUDA backend's shared object and its one exported C symbol. */
#define NCK_QUANT_CUDA_LIBRARY "libnemockpt_cuda.so"
#define NCK_QUANT_CUDA_SYMBOL "nck_quant_cuda_backend"

/*
 * The type of NCK_QUANT_CUDA_SYMBOL: the backend of CUDA device `device`
 * (static, lives until exit), or NULL with a one-line reason in err (no
 * driver, no such device, another ABI).
 */
typedef const nck_quant_backend *(*nck_quant_cuda_entry)(unsigned abi, int device, char *err,
							size_t errlen);

/* The CPU backend (static; its operations use nck_quant_cpu_threads()). */
const nck_quant_backend *nck_quant_backend_cpu(void);

/*
 * Picks a backend by `spec`:
 *  - "off" (or "cpu"): the CPU backend;
 *  - "auto" (or NULL): CUDA device 0 if libnemockpt_cuda.so loads and finds
 *    a device, else the CPU backend after one INFO log line saying why;
 *  - "N" (a device number): that device, or NULL with -ENODEV in diag.
 * The library is looked up at <dir of the executable>/<relative path of the
 * install's libdir>/nemockpt/ (e.g. /usr/bin/../lib/nemockpt/), then at its
 * place in the build tree when this build made one. An unknown spec:
 * NULL, -EINVAL. The result is static (never freed).
 */
const nck_quant_backend *nck_quant_backend_get(const char *spec, nck_diag *diag);

/*
 * The backend of `device` from the CUDA backend library at `path` (what
 * nck_quant_backend_get() does for each place it looks; tests load a mock
 * library with it): dlopen, the entry symbol, its ABI. NULL with a one-line
 * reason in err. A library that gave a backend stays loaded until exit.
 */
const nck_quant_backend *nck_quant_backend_open(const char *path, int device, char *err,
						size_t errlen);

/* ---- dispatchers ---------------------------------------------------------------------- */

/*
 * The nck_quant_cpu_* operations on backend `be` (NULL: the CPU backend),
 * with the same argument rules and errors. When a device backend fails, the
 * call is redone on the CPU, which gives the same bytes (the first failure
 * other than -ENOTSUP is logged as a warning): only argument errors remain.
 */
int nck_quant_amax(const nck_quant_backend *be, float *amax, const void *src, nck_dtype dtype,
		   size_t n);
int nck_quant_fp8(const nck_quant_backend *be, uint8_t *dst, const void *src, nck_dtype dtype,
		  size_t n, float scale);
int nck_quant_int4_scales(const nck_quant_backend *be, float *scales, const void *src,
			  nck_dtype dtype, size_t rows, size_t cols, size_t group);
int nck_quant_int4_pack(const nck_quant_backend *be, uint8_t *dst, const void *src,
			nck_dtype dtype, size_t rows, size_t cols, size_t group,
			const float *scales);
int nck_quant_nvfp4(const nck_quant_backend *be, uint8_t *codes, uint8_t *scales,
		    const void *src, nck_dtype dtype, size_t n, float global);

#ifdef __cplusplus
}
#endif

#endif
