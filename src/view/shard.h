/* SPDX-License-Identifier: MIT */
/*
 * Re-sharding: the tensors one rank holds at a tensor/pipeline-parallel
 * layout (T, P), as slices of the catalog's logical tensors, exactly as
 * Megatron would hold them (spec A.2-A.8): stage-local layer numbers,
 * embedding on the first stage, final norm and output layer on the last,
 * column tensors in T row blocks (QKV by whole query groups), gated fc1 as
 * [gate_r; up_r], row-parallel tensors in T column blocks, embedding and
 * output padded with zero rows to the TP's padded vocabulary V_T and then
 * split, and with tied embeddings and P > 1 the last stage's copy of the
 * embedding. The ranks/ and nemo/ views are containers around this.
 *
 * Ownership: names live in the caller's arena; tensors are borrowed from
 * the catalog. Thread-safety: pure.
 */
#ifndef NCK_VIEW_SHARD_H
#define NCK_VIEW_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/catalog.h"
#include "util/arena.h"
#include "view/layout.h"

/* Largest T and P a directory name may ask for. */
#define NCK_SHARD_MAX_TP 1024
#define NCK_SHARD_MAX_PP 1024

/* One tensor of one rank. */
typedef struct nck_shard_tensor {
	const char *name;      /* the name the rank holds (stage-local layer number) */
	const nck_tensor *src; /* the logical tensor it is cut from */
	nck_split split;
	nck_dtype dtype;
	uint32_t ndim;
	uint64_t shape[NCK_MAX_DIMS]; /* the rank's shape */
	uint32_t tp, T;        /* which slice */
} nck_shard_tensor;

/* V_T = ceil(V / (D*T)) * D*T; V is the tokenizer's, else the rows kept. */
uint64_t nck_shard_vocab(const nck_model_facts *m, uint64_t rows, uint32_t T);

/* 0 when (T, P) is a layout Megatron can hold this model in; else -EINVAL
 * and the reason in why. */
int nck_shard_check(const nck_model_facts *m, uint32_t T, uint32_t P, char *why, size_t why_len);

/*
 * The tensors of rank (tp, pp) of a valid (T, P), sorted by name. Weights
 * only, plus the `_extra_state` entries that hold data when `extra` is set.
 * *out is malloc'ed; names go to `arena`. -ENOMEM.
 */
int nck_shard_rank(const nck_catalog *cat, const nck_model_facts *m, uint32_t T, uint32_t P,
		   uint32_t tp, uint32_t pp, bool extra, nck_arena *arena, nck_shard_tensor **out,
		   size_t *n_out);

/* Bytes of a shard tensor. */
uint64_t nck_shard_bytes(const nck_shard_tensor *st);

/* Appends a shard tensor's bytes to a layout (windows of the source, zeros). */
int nck_shard_segments(nck_layout *l, const nck_shard_tensor *st);

#endif
