/* SPDX-License-Identifier: MIT */
/*
 * The quantized views' computation and caches.
 *
 * A quantized rank tensor (nck_qslice) is the unquantized slice a rank holds
 * (a layout of windows and zeros over catalog tensors) plus what it becomes:
 * FP8 codes with the per-tensor scale of its whole merged tensor, or packed
 * INT4 with its block scales. It is computed whole on the first read of any
 * of its bytes (or NVFP4 packed E2M1 codes with E4M3 block scales of 16 and
 * the global scale of its merged tensors), by the quantization backend (CPU or CUDA, bit-identical),
 * and kept in an LRU cache bounded in bytes; concurrent readers of one
 * tensor wait for the one computation, readers of others do not. FP8 scales
 * need the amax of the whole merged tensor, computed once per tensor and
 * kept for the mount (four bytes each).
 *
 * Ownership: the cache owns computed buffers (freed on eviction, or when the
 * last reader lets go); slices belong to their view set, which calls
 * nck_qcache_forget() for each before freeing it (entries are keyed by the
 * slice's address).
 * Thread-safety: every function may be called from any thread.
 */
#ifndef NCK_VIEW_QCACHE_H
#define NCK_VIEW_QCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/catalog.h"
#include "quant/quant.h"
#include "view/layout.h"

typedef enum nck_qalgo {
	NCK_QALGO_FP8 = 0,
	NCK_QALGO_INT4_AWQ = 1,
	NCK_QALGO_NVFP4 = 2,
	NCK_QALGO_GGML_Q8_0 = 3, /* gguf/: ggml blocks (quant/ggml.h), CPU */
	NCK_QALGO_GGML_Q4_0 = 4,
} nck_qalgo;

typedef struct nck_qcache nck_qcache;

/* One quantized rank tensor. */
typedef struct nck_qslice {
	nck_layout src;        /* the unquantized bytes (rows x cols of dtype) */
	nck_dtype dtype;
	uint64_t rows, cols;
	nck_qalgo algo;
	uint64_t group;        /* INT4: block size along the columns */
	const nck_tensor *const *scale_of; /* FP8, NVFP4: the merged tensors whose joint amax sets the (global) scale */
	size_t n_scale_of;
} nck_qslice;

/* Bytes of the computed forms: FP8 codes; INT4 packed weight and scales;
 * NVFP4 packed codes (rows x cols/2) and E4M3 block scales (rows x cols/16). */
uint64_t nck_qslice_fp8_bytes(const nck_qslice *q);
uint64_t nck_qslice_int4_bytes(const nck_qslice *q);
uint64_t nck_qslice_scales_bytes(const nck_qslice *q);
uint64_t nck_qslice_nvfp4_bytes(const nck_qslice *q);
/* Bytes of the ggml blocks of a GGML_* slice (cols a multiple of 32). */
uint64_t nck_qslice_ggml_bytes(const nck_qslice *q);

/* A cache over `cat` computing on `be` (NULL: the "auto" backend, chosen
 * at the first computation), holding at most `budget` bytes of results (0:
 * 256 MiB). NULL on ENOMEM. */
nck_qcache *nck_qcache_new(const nck_catalog *cat, const nck_quant_backend *be, uint64_t budget);
void nck_qcache_free(nck_qcache *qc);

/* The FP8 scale of slice q (amax of its merged tensors / 448). 0, -EIO, -ENOMEM. */
int nck_qcache_fp8_scale(nck_qcache *qc, const nck_qslice *q, float *scale);

/* The NVFP4 global scale of slice q (amax of its merged tensors / 2688). 0, -EIO, -ENOMEM. */
int nck_qcache_nvfp4_global(nck_qcache *qc, const nck_qslice *q, float *global);

/* Part of a computed form. `what` is 0 for the FP8 codes, the packed INT4
 * or NVFP4 weight or the ggml blocks, 1 for the INT4 or NVFP4 block scales.
 * Bytes [pos, pos+len). 0, -EIO, -ENOMEM. */
int nck_qcache_read(nck_qcache *qc, const nck_qslice *q, int what, uint64_t pos, void *buf,
		    size_t len);

/* Drops q's computed form (before q is freed: entries are found by the
 * slice's address). No reader may be using q. */
void nck_qcache_forget(nck_qcache *qc, const nck_qslice *q);

#endif
