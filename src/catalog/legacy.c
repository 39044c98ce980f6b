/* SPDX-License-Identifier: MIT */
/*
 * Per-rank torch.save checkpoints merged into logical tensors: NeMo 1
 * model_weights.ckpt (single, mp_rank_TT/, tp_rank_TT_pp_rank_PPP/) and
 * Megatron-LM iter_N/mp_rank_TT[_PPP]/model_optim_rng.pt.
 *
 * Steps (spec sharding-hf-trtllm.md A.7): open every rank's torch file;
 * renumber each stage's local layer indices to global ones (the offset of
 * stage p is the number of layers in stages 0..p-1, counted from the
 * files, so uneven splits work); group tensors by global name, first stage
 * wins (this drops the tied-embedding copy of the last stage); then build
 * each logical tensor's chunks by its parameter kind (rules.c). Nothing is
 * read but the pickles.
 *
 * Thread-safety: runs once while a catalog is built.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/torch.h"
#include "util/strmap.h"

/* One rank's tensor with its global name. */
typedef struct legacy_item {
	const char *key;              /* global name (layers renumbered), arena */
	const nck_torch_tensor *t;
	uint32_t file;                /* catalog file index */
	uint32_t tp, pp;
} legacy_item;

/* All ranks' tensors of one global name, indexed by tp. */
typedef struct legacy_group {
	const char *key;
	uint32_t pp;                  /* the stage it was taken from */
	const legacy_item **by_tp;    /* layout.tp slots */
} legacy_group;

typedef struct legacy_state {
	nck_catalog *cat;
	nck_torch_file **files;       /* one per rank file, index pp*tp + tp */
	uint64_t *layer_offset;       /* per stage */
	legacy_group *groups;
	size_t n_groups, cap_groups;
	nck_strmap index;             /* key -> group */
	bool gpt;
	bool warned_vocab;
} legacy_state;

/* ---- reading the rank files ---------------------------------------------- */

/* The dict a value stands for: a DICT, or the items of a dict subclass CALL. */
static const nck_pv *legacy_dict(const nck_pv *v)
{
	if (v && v->kind == NCK_PV_CALL)
		v = v->call.items;
	return v && v->kind == NCK_PV_DICT ? v : NULL;
}

/* Megatron-LM: the facts of `args` (an argparse.Namespace whose BUILD state
 * holds the command line) that the config gives NeMo checkpoints. */
static void legacy_megatron_args(nck_model_cfg *cfg, const nck_pv *root)
{
	const nck_pv *args = nck_pv_dict_get(legacy_dict(root), "args");
	const nck_pv *st = args && args->kind == NCK_PV_CALL ? args->call.state : NULL;
	const nck_pv *v;
	int64_t x;

	if (!st || st->kind != NCK_PV_DICT)
		return;
	cfg->have = true;
	if (nck_pv_get_int(nck_pv_dict_get(st, "vocab_size"), &x) && x > 0)
		cfg->vocab = (uint64_t)x;
	if (nck_pv_get_int(nck_pv_dict_get(st, "make_vocab_size_divisible_by"), &x) && x > 0 &&
	    x <= NCK_CATALOG_MAX_DIVISIBLE)
		cfg->divisible_by = x;
	if (nck_pv_get_int(nck_pv_dict_get(st, "num_layers"), &x) && x > 0)
		cfg->num_layers = x;
	if (nck_pv_get_int(nck_pv_dict_get(st, "tensor_model_parallel_size"), &x) && x > 0)
		cfg->tp = x;
	if (nck_pv_get_int(nck_pv_dict_get(st, "pipeline_model_parallel_size"), &x) && x > 0)
		cfg->pp = x;
	if (nck_pv_get_int(nck_pv_dict_get(st, "num_attention_heads"), &x) && x > 0)
		cfg->heads = x;
	/* num_query_groups means something only with group_query_attention
	 * (its default is 1). */
	v = nck_pv_dict_get(st, "group_query_attention");
	if (v && v->kind == NCK_PV_BOOL && v->b &&
	    nck_pv_get_int(nck_pv_dict_get(st, "num_query_groups"), &x) && x > 0)
		cfg->groups = x;
	if (nck_pv_get_int(nck_pv_dict_get(st, "ffn_hidden_size"), &x) && x > 0)
		cfg->ffn = x;
	v = nck_pv_dict_get(st, "swiglu");
	cfg->gated = v && v->kind == NCK_PV_BOOL && v->b;
	v = nck_pv_dict_get(st, "untie_embeddings_and_output_weights");
	cfg->tied = !(v && v->kind == NCK_PV_BOOL && v->b);
}

/* Opens every rank's torch file. */
static int legacy_open_files(legacy_state *st, nck_diag *diag)
{
	nck_catalog *cat = st->cat;
	const nck_layout *l = &cat->layout;
	int rc;

	st->files = calloc(l->n_ranks, sizeof(*st->files));
	if (!st->files)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_ranks; i++) {
		uint32_t fi;

		if ((rc = nck_catalog_add_file(cat, l->ranks[i].entry, &fi, diag)) < 0)
			return rc;
		rc = nck_torch_open(&st->files[i], cat->files[fi].src, 0, l->ranks[i].entry->size, diag);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Layer offsets: stage p starts after the layers of stages 0..p-1, counted
 * as (highest local layer index + 1) in each stage's first rank. */
static int legacy_layer_offsets(legacy_state *st)
{
	const nck_layout *l = &st->cat->layout;
	uint64_t total = 0;

	st->layer_offset = calloc(l->pp, sizeof(*st->layer_offset));
	if (!st->layer_offset)
		return -ENOMEM;
	for (uint32_t p = 0; p < l->pp; p++) {
		const nck_torch_file *f = st->files[(size_t)p * l->tp];
		uint64_t n = 0, layer;
		size_t s, len;

		st->layer_offset[p] = total;
		for (size_t i = 0; i < f->n_tensors; i++)
			if (nck_param_layer(f->tensors[i].key, &s, &len, &layer) && layer + 1 > n)
				n = layer + 1;
		total += n;
	}
	if (st->cat->cfg.num_layers > 0 && total > 0 && total != (uint64_t)st->cat->cfg.num_layers)
		nck_catalog_warn(st->cat, "the files hold %llu layers, the config says %lld",
				 (unsigned long long)total, (long long)st->cat->cfg.num_layers);
	return 0;
}

/* The global name of a stage-local key: its layer number plus the stage's offset. */
static const char *legacy_global_key(legacy_state *st, const char *key, uint32_t pp)
{
	size_t start, len, n = strlen(key);
	uint64_t layer;
	char *out;
	int w;

	if (st->cat->layout.pp == 1 || !nck_param_layer(key, &start, &len, &layer))
		return key;
	out = nck_arena_alloc(&st->cat->arena, n + 24);
	if (!out)
		return NULL;
	w = snprintf(out, n + 24, "%.*s%llu%s", (int)start, key,
		     (unsigned long long)(layer + st->layer_offset[pp]), key + start + len);
	return w > 0 ? out : NULL;
}

/*
 * The name a stored key has in the catalog, or NULL to leave it out. NeMo
 * files hold only the state dict. Megatron-LM files hold {model, args,
 * optimizer, rng_state, ...}: the model's keys lose the "model." level;
 * optimizer state stays (as non-weights); the rest (RNG states) is not
 * model data.
 */
static const char *legacy_source_key(const legacy_state *st, const char *key)
{
	if (st->cat->layout.kind != NCK_LAYOUT_MEGATRON)
		return key;
	if (strncmp(key, "model.", 6) == 0)
		return key + 6;
	return strncmp(key, "optimizer.", 10) == 0 ? key : NULL;
}

/* True for the last stage's copy of a tied embedding (spec A.6): an
 * output_layer or a bare word_embeddings on a stage after the first. */
static bool legacy_is_tied_copy(const legacy_state *st, const char *key, uint32_t pp)
{
	size_t n = strlen(key);

	if (pp == 0 || !st->cat->cfg.tied)
		return false;
	if (n >= 19 && strcmp(key + n - 19, "output_layer.weight") == 0)
		return true;
	return n >= 22 && strcmp(key + n - 22, "word_embeddings.weight") == 0 &&
	       !strstr(key, "embedding.word_embeddings");
}

/* Files every tensor of every rank under its global name. */
static int legacy_group_all(legacy_state *st, nck_arena *tmp, nck_diag *diag)
{
	const nck_layout *l = &st->cat->layout;
	int rc;

	for (size_t i = 0; i < l->n_ranks; i++) {
		const nck_torch_file *f = st->files[i];
		uint32_t tp = (uint32_t)(i % l->tp), pp = (uint32_t)(i / l->tp);

		for (size_t k = 0; k < f->n_tensors; k++) {
			const nck_torch_tensor *t = &f->tensors[k];
			const char *key = legacy_source_key(st, t->key);

			if (!key)
				continue;
			key = legacy_global_key(st, key, pp);
			legacy_item *it;
			legacy_group *g;
			size_t gi;

			if (!key)
				return -ENOMEM;
			if (legacy_is_tied_copy(st, key, pp))
				continue;
			if (!nck_strmap_find(&st->index, key, &gi)) {
				if (st->n_groups == st->cap_groups) {
					size_t cap = st->cap_groups ? 2 * st->cap_groups : 256;
					legacy_group *ng = realloc(st->groups, cap * sizeof(*ng));

					if (!ng)
						return -ENOMEM;
					st->groups = ng;
					st->cap_groups = cap;
				}
				gi = st->n_groups++;
				g = &st->groups[gi];
				g->key = key;
				g->pp = pp;
				g->by_tp = nck_arena_alloc(tmp, l->tp * sizeof(*g->by_tp));
				if (!g->by_tp || (rc = nck_strmap_put(&st->index, key, gi)) < 0)
					return -ENOMEM;
			}
			g = &st->groups[gi];
			if (g->pp != pp)
				continue; /* an earlier stage already holds it */
			if (g->by_tp[tp])
				return nck_diag_set(diag, -EBADMSG, l->ranks[i].entry->path, -1,
						    "tensor '%s' appears twice", t->key);
			it = nck_arena_alloc(tmp, sizeof(*it));
			if (!it)
				return -ENOMEM;
			*it = (legacy_item){ .key = key, .t = t, .tp = tp, .pp = pp };
			if ((rc = nck_catalog_add_file(st->cat, l->ranks[i].entry, &it->file, diag)) < 0)
				return rc;
			g->by_tp[tp] = it;
		}
	}
	return 0;
}

/* ---- building logical tensors ----------------------------------------------- */

/* Fills a chunk: the box `shape` starting at index `from` of rank tensor t,
 * placed at `to` in the logical tensor. */
static void legacy_chunk(nck_chunk *ch, const legacy_item *it, const uint64_t *from,
			 const uint64_t *shape, const uint64_t *to)
{
	const nck_torch_tensor *t = it->t;
	uint64_t elem = t->storage_offset;

	memset(ch, 0, sizeof(*ch));
	ch->file = it->file;
	for (uint32_t d = 0; d < t->ndim; d++) {
		elem += from[d] * (uint64_t)t->stride[d];
		ch->offset[d] = to[d];
		ch->shape[d] = shape[d];
		ch->stride[d] = t->stride[d];
	}
	ch->base = t->storage_data + elem * nck_dtype_size(t->dtype);
}

/* Checks that all TP shards of a group exist and agree in dtype and shape. */
static int legacy_check_group(const legacy_state *st, const legacy_group *g, nck_diag *diag)
{
	const nck_layout *l = &st->cat->layout;
	const nck_torch_tensor *t0;

	for (uint32_t r = 0; r < l->tp; r++)
		if (!g->by_tp[r])
			return nck_diag_set(diag, -EBADMSG, st->cat->container->path, -1,
					    "tensor '%s' is missing on tp rank %u of stage %u", g->key,
					    r, g->pp);
	t0 = g->by_tp[0]->t;
	for (uint32_t r = 1; r < l->tp; r++) {
		const nck_torch_tensor *t = g->by_tp[r]->t;

		if (t->dtype != t0->dtype || t->ndim != t0->ndim ||
		    memcmp(t->shape, t0->shape, t0->ndim * sizeof(t0->shape[0])) != 0)
			return nck_diag_set(diag, -EBADMSG, st->cat->container->path, -1,
					    "tensor '%s' differs in dtype or shape between tp ranks",
					    g->key);
	}
	return 0;
}

/* Rows of the logical embedding/output tensor: V_1 when V is known. */
static uint64_t legacy_vocab_rows(legacy_state *st, const char *key, uint64_t stored)
{
	uint64_t v1 = nck_catalog_padded_vocab(st->cat);

	if (v1 == 0) {
		if (!st->warned_vocab)
			nck_catalog_warn(st->cat, "vocabulary size unknown: %s keeps all %llu stored rows",
					 key, (unsigned long long)stored);
		st->warned_vocab = true;
		return stored;
	}
	if (v1 > stored) {
		nck_catalog_warn(st->cat, "%s has %llu rows, fewer than the padded vocabulary %llu",
				 key, (unsigned long long)stored, (unsigned long long)v1);
		return stored;
	}
	return v1;
}

/* Builds one logical tensor from its group. */
static int legacy_build_group(legacy_state *st, const legacy_group *g, nck_diag *diag)
{
	const uint32_t T = st->cat->layout.tp;
	nck_param_kind kind = st->gpt ? nck_param_kind_of(g->key, &st->cat->cfg) : NCK_PARAM_REPLICATED;
	uint64_t from[NCK_MAX_DIMS] = { 0 }, to[NCK_MAX_DIMS] = { 0 }, box[NCK_MAX_DIMS];
	const nck_torch_tensor *t0;
	size_t n_chunks = 0;
	nck_tensor *lt;
	uint64_t rows;
	int rc;

	/* Every rank must hold the tensor before any is looked at. */
	if ((rc = legacy_check_group(st, g, diag)) < 0)
		return rc;
	t0 = g->by_tp[0]->t;
	rows = t0->ndim ? t0->shape[0] : 0;
	if (T == 1 && kind != NCK_PARAM_VOCAB && kind != NCK_PARAM_NON_WEIGHT)
		kind = NCK_PARAM_REPLICATED;
	if ((kind == NCK_PARAM_ROW && t0->ndim != 2) ||
	    ((kind == NCK_PARAM_COLUMN || kind == NCK_PARAM_VOCAB) && t0->ndim < 1) ||
	    (kind == NCK_PARAM_COLUMN_GATED && (t0->ndim < 1 || rows % 2 != 0)))
		return nck_diag_set(diag, -EBADMSG, st->cat->container->path, -1,
				    "tensor '%s' has a shape its kind cannot have", g->key);
	n_chunks = kind == NCK_PARAM_REPLICATED || kind == NCK_PARAM_NON_WEIGHT ? 1
		   : kind == NCK_PARAM_COLUMN_GATED ? 2 * (size_t)T : T;
	lt = nck_catalog_add(st->cat, g->key, n_chunks);
	if (!lt)
		return -ENOMEM;
	lt->dtype = t0->dtype;
	lt->ndim = t0->ndim;
	memcpy(lt->shape, t0->shape, sizeof(lt->shape));
	memcpy(box, t0->shape, sizeof(box));
	lt->role = kind == NCK_PARAM_NON_WEIGHT ? NCK_ROLE_NON_WEIGHT : NCK_ROLE_WEIGHT;
	if (strncmp(g->key, "optimizer", 9) == 0 || strncmp(g->key, "rng_state", 9) == 0)
		lt->role = NCK_ROLE_NON_WEIGHT;
	lt->n_chunks = 0;
	switch (kind) {
	case NCK_PARAM_REPLICATED:
	case NCK_PARAM_NON_WEIGHT:
		legacy_chunk((nck_chunk *)&lt->chunks[lt->n_chunks++], g->by_tp[0], from, box, to);
		break;
	case NCK_PARAM_COLUMN:
	case NCK_PARAM_VOCAB:
		lt->shape[0] = rows * T;
		for (uint32_t r = 0; r < T; r++) {
			to[0] = rows * r;
			legacy_chunk((nck_chunk *)&lt->chunks[lt->n_chunks++], g->by_tp[r], from, box, to);
		}
		break;
	case NCK_PARAM_COLUMN_GATED:
		/* Rank r holds [gate_r; up_r]; merged is [gate_0..gate_T-1; up_0..up_T-1]. */
		lt->shape[0] = rows * T;
		box[0] = rows / 2;
		for (uint32_t r = 0; r < T; r++) {
			from[0] = 0;
			to[0] = box[0] * r;
			legacy_chunk((nck_chunk *)&lt->chunks[lt->n_chunks++], g->by_tp[r], from, box, to);
			from[0] = box[0];
			to[0] = box[0] * (T + r);
			legacy_chunk((nck_chunk *)&lt->chunks[lt->n_chunks++], g->by_tp[r], from, box, to);
		}
		break;
	case NCK_PARAM_ROW:
		lt->shape[1] = t0->shape[1] * T;
		for (uint32_t r = 0; r < T; r++) {
			to[1] = t0->shape[1] * r;
			legacy_chunk((nck_chunk *)&lt->chunks[lt->n_chunks++], g->by_tp[r], from, box, to);
		}
		break;
	}
	if (kind == NCK_PARAM_VOCAB)
		nck_tensor_cut_rows(lt, legacy_vocab_rows(st, g->key, lt->shape[0]));
	return 0;
}

/* Lists the non-tensor values of `_extra_state` keys (Transformer Engine's
 * io.BytesIO, older versions) in a stage's rank-0 file as non-weights
 * without data: listed, never merged. */
static int legacy_walk_extra(legacy_state *st, const nck_torch_file *f, const nck_pv *v,
			     const char *prefix, uint32_t pp, int depth)
{
	const nck_pv *d = legacy_dict(v);
	int rc = 0;

	if (!d || depth > 8)
		return 0;
	for (size_t i = 0; i < d->seq.n && rc == 0; i++) {
		const nck_pv *k = d->seq.items[2 * i], *val = d->seq.items[2 * i + 1];
		char key[1024];
		const char *name, *g;
		size_t n;

		if (!k || k->kind != NCK_PV_STR)
			continue;
		if ((size_t)snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k->str.s) >=
		    sizeof(key))
			continue;
		if (legacy_dict(val)) {
			rc = legacy_walk_extra(st, f, val, key, pp, depth + 1);
			continue;
		}
		n = strlen(key);
		if (n < 12 || strcmp(key + n - 12, "_extra_state") != 0 || nck_torch_find(f, key))
			continue;
		name = legacy_source_key(st, key);
		g = name ? legacy_global_key(st, name, pp) : NULL;
		if (!g || nck_strmap_find(&st->index, g, NULL))
			continue;
		if (!nck_catalog_add(st->cat, g, 0) || nck_strmap_put(&st->index, g, SIZE_MAX) < 0)
			return -ENOMEM;
		st->cat->tensors[st->cat->n_tensors - 1].dtype = NCK_DTYPE_U8;
		st->cat->tensors[st->cat->n_tensors - 1].ndim = 1;
		st->cat->tensors[st->cat->n_tensors - 1].role = NCK_ROLE_NON_WEIGHT;
	}
	return rc;
}

static int nck_catalog_read_legacy(nck_catalog *cat, nck_diag *diag)
{
	legacy_state st = { .cat = cat };
	nck_arena tmp;
	int rc;

	nck_arena_init(&tmp);
	if ((rc = legacy_open_files(&st, diag)) < 0)
		goto out;
	if (cat->layout.kind == NCK_LAYOUT_MEGATRON)
		legacy_megatron_args(&cat->cfg, st.files[0]->root);
	for (size_t i = 0; i < cat->layout.n_ranks && !st.gpt; i++)
		for (size_t k = 0; k < st.files[i]->n_tensors && !st.gpt; k++)
			st.gpt = nck_param_is_gpt_key(st.files[i]->tensors[k].key);
	cat->info.model = st.gpt ? "gpt" : "other";
	if (!st.gpt && cat->layout.n_ranks > 1) {
		rc = nck_diag_set(diag, -ENOTSUP, cat->container->path, -1,
				  "%zu ranks of a model that is not a Megatron GPT: no merge rules",
				  cat->layout.n_ranks);
		goto out;
	}
	if ((rc = legacy_layer_offsets(&st)) < 0 || (rc = legacy_group_all(&st, &tmp, diag)) < 0)
		goto out;
	for (size_t g = 0; g < st.n_groups && rc == 0; g++)
		rc = legacy_build_group(&st, &st.groups[g], diag);
	for (uint32_t p = 0; p < cat->layout.pp && rc == 0; p++) {
		const nck_torch_file *f = st.files[(size_t)p * cat->layout.tp];

		rc = legacy_walk_extra(&st, f, f->root, "", p, 0);
	}
out:
	if (rc == -ENOMEM)
		nck_diag_set(diag, rc, cat->container->path, -1, "out of memory");
	for (size_t i = 0; st.files && i < cat->layout.n_ranks; i++)
		nck_torch_file_free(st.files[i]);
	free(st.files);
	free(st.layer_offset);
	free(st.groups);
	nck_strmap_dispose(&st.index);
	nck_arena_dispose(&tmp);
	return rc;
}

/* ---- detection and registration ---------------------------------------------- */

/* NeMo 1: model_weights.ckpt at the root (single), or one in every rank
 * directory (tp, tp_pp: tp_rank_TT_pp_rank_PPP/ names say tp_pp even at PP = 1). */
static int legacy_detect_nemo(nck_layout *out, const nck_container *c, nck_arena *arena,
			      nck_diag *diag)
{
	const nck_entry *single = nck_detect_find(c, "model_weights.ckpt");
	int rc;

	out->format = "nemo";
	out->config = nck_detect_find(c, "model_config.yaml");
	if (single) {
		out->kind = NCK_LAYOUT_NEMO_SINGLE;
		out->name = "single";
		out->n_ranks = 1;
		out->ranks = nck_arena_alloc(arena, sizeof(*out->ranks));
		if (!out->ranks)
			return -ENOMEM;
		out->ranks[0].entry = single;
		return 1;
	}
	if ((rc = nck_detect_ranks(out, c, arena, "", "model_weights.ckpt", diag)) <= 0)
		return rc;
	out->kind = out->pp > 1 || nck_detect_has_dir(c, "tp_rank_00_pp_rank_000")
			    ? NCK_LAYOUT_NEMO_TP_PP : NCK_LAYOUT_NEMO_TP;
	out->name = out->kind == NCK_LAYOUT_NEMO_TP ? "tp" : "tp_pp";
	return 1;
}

/* Megatron-LM: model_optim_rng.pt in every rank directory of the newest
 * iteration (or of release/, or of the root). */
static int legacy_detect_megatron(nck_layout *out, const nck_container *c, nck_arena *arena,
				  nck_diag *diag)
{
	const char *iter = nck_detect_megatron_iter(c, arena);
	int rc = nck_detect_ranks(out, c, arena, iter ? iter : "", "model_optim_rng.pt", diag);

	if (rc <= 0)
		return rc;
	out->kind = NCK_LAYOUT_MEGATRON;
	out->format = "megatron";
	out->name = out->pp > 1 ? "tp_pp" : "tp";
	return 1;
}

const nck_catalog_reader nck_catalog_nemo_legacy_reader = {
	.name = "nemo legacy",
	.detect = legacy_detect_nemo,
	.read = nck_catalog_read_legacy,
};

const nck_catalog_reader nck_catalog_megatron_legacy_reader = {
	.name = "megatron legacy",
	.detect = legacy_detect_megatron,
	.read = nck_catalog_read_legacy,
};
