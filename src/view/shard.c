/* SPDX-License-Identifier: MIT */
/*
 * Re-sharding rules (see shard.h). Which stage a tensor belongs to follows
 * from its global layer number (even split: L/P layers per stage) or, for
 * the tensors outside the layers, from its name: the final norm and the
 * output layer go to the last stage, everything else to the first.
 */
#include "view/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARD_EMBEDDING "embedding.word_embeddings.weight"

uint64_t nck_shard_vocab(const nck_model_facts *m, uint64_t rows, uint32_t T)
{
	uint64_t v = m->vocab ? m->vocab : rows, unit, up;

	/* divisible_by <= 65536 and T <= 1024 (catalog, shard checks): only a
	 * vocabulary near 2^64 could overflow; it gives 0 (no valid layout). */
	if (__builtin_mul_overflow(m->divisible_by ? m->divisible_by : 1, (uint64_t)T, &unit) ||
	    unit == 0 || __builtin_add_overflow(v, unit - 1, &up))
		return 0;
	return up / unit * unit;
}

/* Bytes of one index of dim 0 (the whole tensor for a scalar). */
static uint64_t shard_row_bytes(const nck_tensor *t)
{
	return t->ndim && t->shape[0] ? nck_tensor_bytes(t) / t->shape[0] : nck_tensor_bytes(t);
}

int nck_shard_check(const nck_model_facts *m, uint32_t T, uint32_t P, char *why, size_t why_len)
{
	if (!m->gpt) {
		snprintf(why, why_len, "not a Megatron GPT checkpoint");
		return -EINVAL;
	}
	if (T < 1 || T > NCK_SHARD_MAX_TP || P < 1 || P > NCK_SHARD_MAX_PP) {
		snprintf(why, why_len, "TP and PP must be in 1..%d", NCK_SHARD_MAX_TP);
		return -EINVAL;
	}
	if (P > 1 && (m->layers == 0 || m->layers % P != 0)) {
		snprintf(why, why_len, "%llu layers do not split into %u stages",
			 (unsigned long long)m->layers, P);
		return -EINVAL;
	}
	if ((m->heads && m->heads % T) || (m->groups && m->groups % T)) {
		snprintf(why, why_len, "%llu heads in %llu query groups do not split %u ways",
			 (unsigned long long)m->heads, (unsigned long long)m->groups, T);
		return -EINVAL;
	}
	if (nck_shard_vocab(m, m->vocab ? m->vocab : 1, T) == 0) {
		snprintf(why, why_len, "the padded vocabulary overflows");
		return -EINVAL;
	}
	if ((m->column_gcd && m->column_gcd % T) || (m->gated_gcd && m->gated_gcd % T) ||
	    (m->row_gcd && m->row_gcd % T) || (m->row_not_2d && T > 1)) {
		snprintf(why, why_len, "a tensor's rows or columns do not split %u ways", T);
		return -EINVAL;
	}
	return 0;
}

/* The stage of tensor `name` and its name there (layer renumbered). */
static char *shard_place(const char *name, const nck_model_facts *m, uint32_t P, uint32_t *stage,
			 nck_arena *arena)
{
	size_t start, len, n = strlen(name);
	uint64_t layer, per = P && m->layers ? m->layers / P : 0;
	char num[24], *out;
	int k;

	if (!nck_name_layer(name, &start, &len, &layer)) {
		*stage = strstr(name, "final_layernorm") || strstr(name, "final_norm") ||
				 strstr(name, "output_layer")
			 ? P - 1
			 : 0;
		return nck_arena_strndup(arena, name, n);
	}
	if (per == 0) /* cannot happen: a layer name makes layers > 0 */
		per = layer + 1;
	*stage = (uint32_t)(layer / per);
	k = snprintf(num, sizeof(num), "%llu", (unsigned long long)(layer % per));
	out = nck_arena_alloc(arena, n - len + (size_t)k + 1);
	if (!out)
		return NULL;
	memcpy(out, name, start);
	memcpy(out + start, num, (size_t)k);
	memcpy(out + start + (size_t)k, name + start + len, n - start - len + 1);
	return out;
}

/* The last stage's name for the tied copy of embedding `name` (spec A.6):
 * output_layer.weight for MCore; for legacy models, beside language_model,
 * word_embeddings.weight (NeMo) or word_embeddings_for_head.weight
 * (Megatron-LM's key for it). */
static char *shard_tied_name(const char *name, bool megatron, nck_arena *arena)
{
	size_t n = strlen(name), e = strlen(SHARD_EMBEDDING);
	const char *lm = strstr(name, "language_model."), *copy;
	char *out;

	if (lm) {
		size_t pre = (size_t)(lm - name);

		copy = megatron ? "word_embeddings_for_head.weight" : "word_embeddings.weight";
		out = nck_arena_alloc(arena, pre + strlen(copy) + 1);
		if (out) {
			memcpy(out, name, pre);
			strcpy(out + pre, copy);
		}
		return out;
	}
	out = nck_arena_alloc(arena, n - e + sizeof("output_layer.weight"));
	if (out) {
		memcpy(out, name, n - e);
		strcpy(out + n - e, "output_layer.weight");
	}
	return out;
}

/* Fills the rank's shape of `st` from its source and split. */
static void shard_shape(nck_shard_tensor *st, const nck_model_facts *m)
{
	const nck_tensor *t = st->src;

	st->dtype = t->dtype;
	st->ndim = t->ndim;
	memcpy(st->shape, t->shape, sizeof(st->shape));
	switch (st->split) {
	case NCK_SPLIT_COLUMN:
	case NCK_SPLIT_GATED:
		st->shape[0] /= st->T;
		break;
	case NCK_SPLIT_ROW:
		st->shape[1] /= st->T;
		break;
	case NCK_SPLIT_VOCAB:
		st->shape[0] = nck_shard_vocab(m, t->shape[0], st->T) / st->T;
		break;
	default:
		break;
	}
}

static int shard_cmp(const void *a, const void *b)
{
	return strcmp(((const nck_shard_tensor *)a)->name, ((const nck_shard_tensor *)b)->name);
}

int nck_shard_rank(const nck_catalog *cat, const nck_model_facts *m, uint32_t T, uint32_t P,
		   uint32_t tp, uint32_t pp, bool extra, nck_arena *arena, nck_shard_tensor **out,
		   size_t *n_out)
{
	size_t n = nck_catalog_count(cat), k = 0;
	nck_shard_tensor *v = calloc(n + 1, sizeof(*v));

	*out = NULL;
	*n_out = 0;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const nck_tensor *t = nck_catalog_at(cat, i);
		size_t len = strlen(t->name);
		bool is_extra = len > 13 && strcmp(t->name + len - 13, "._extra_state") == 0;
		uint32_t stage;
		char *name;

		if (t->role != NCK_ROLE_WEIGHT && !(extra && is_extra && t->n_chunks > 0))
			continue;
		if (!(name = shard_place(t->name, m, P, &stage, arena)))
			goto nomem;
		if (stage != pp)
			continue;
		v[k] = (nck_shard_tensor){ .name = name, .src = t, .tp = tp, .T = T };
		v[k].split = t->role == NCK_ROLE_WEIGHT ? nck_catalog_split(cat, t) : NCK_SPLIT_NONE;
		shard_shape(&v[k++], m);
	}
	/* The tied copy of the embedding on the last stage. */
	if (m->tied && P > 1 && pp == P - 1) {
		for (size_t i = 0; i < n; i++) {
			const nck_tensor *t = nck_catalog_at(cat, i);
			size_t len = strlen(t->name), e = strlen(SHARD_EMBEDDING);

			if (t->role != NCK_ROLE_WEIGHT || len < e ||
			    strcmp(t->name + len - e, SHARD_EMBEDDING) != 0)
				continue;
			v[k] = (nck_shard_tensor){ .src = t, .tp = tp, .T = T, .split = NCK_SPLIT_VOCAB };
			if (!(v[k].name = shard_tied_name(
				      t->name, strcmp(nck_catalog_get_info(cat)->format, "megatron") == 0,
				      arena)))
				goto nomem;
			shard_shape(&v[k++], m);
			break;
		}
	}
	qsort(v, k, sizeof(*v), shard_cmp);
	*out = v;
	*n_out = k;
	return 0;
nomem:
	free(v);
	return -ENOMEM;
}

uint64_t nck_shard_bytes(const nck_shard_tensor *st)
{
	uint64_t b = nck_dtype_size(st->dtype);

	for (uint32_t d = 0; d < st->ndim; d++)
		b *= st->shape[d];
	return b;
}

/* Rows [r0, r0+n) of t: a window of a 1-D tensor, else a run of whole rows. */
static int shard_rows(nck_layout *l, const nck_tensor *t, uint64_t r0, uint64_t n)
{
	uint64_t rb = shard_row_bytes(t);

	if (t->ndim == 1)
		return nck_layout_win(l, t, r0, n, 0, n * rb);
	return nck_layout_win(l, t, 0, nck_tensor_cols(t), r0 * rb, n * rb);
}

int nck_shard_segments(nck_layout *l, const nck_shard_tensor *st)
{
	const nck_tensor *t = st->src;
	uint64_t n = st->ndim ? st->shape[0] : 1, r0 = st->tp * n, have;
	int rc;

	switch (st->split) {
	case NCK_SPLIT_COLUMN:
		return shard_rows(l, t, r0, n);
	case NCK_SPLIT_GATED:
		if (st->T == 1) /* the whole tensor, whatever its row count */
			return nck_layout_tensor(l, t);
		if ((rc = shard_rows(l, t, st->tp * (n / 2), n / 2)) < 0)
			return rc;
		return shard_rows(l, t, t->shape[0] / 2 + st->tp * (n / 2), n / 2);
	case NCK_SPLIT_ROW:
		return nck_layout_win(l, t, st->tp * st->shape[1], st->shape[1], 0, nck_shard_bytes(st));
	case NCK_SPLIT_VOCAB:
		have = t->shape[0] > r0 ? t->shape[0] - r0 : 0;
		if (have > n)
			have = n;
		if (have && (rc = shard_rows(l, t, r0, have)) < 0)
			return rc;
		return nck_layout_zero(l, (n - have) * shard_row_bytes(t));
	default:
		return nck_layout_tensor(l, t);
	}
}
