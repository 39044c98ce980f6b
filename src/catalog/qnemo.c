/* SPDX-License-Identifier: MIT */
/*
 * .qnemo (TensorRT-LLM checkpoint: config.json + rank{R}.safetensors,
 * R = pp * tp_size + tp) merged back to TP=1, PP=1, in TensorRT-LLM names
 * with global layer numbers.
 *
 * Rules (spec sharding-hf-trtllm.md C.3): attention.qkv holds [Q_r; K_r;
 * V_r] per rank, merged to [Q; K; V] (when G < T the KV heads were
 * duplicated: rank r holds head r / (T/G), taken once); mlp.fc, mlp.gate,
 * lm_head and a parallel vocab_embedding are concatenated on dim 0;
 * attention.dense and mlp.proj on dim 1; everything else is replicated.
 * lm_head and vocab_embedding are cut to config.json's vocab_size. Stage-
 * local layer numbers are renumbered as for NeMo rank files.
 *
 * Plain safetensors files (a Hugging Face directory, one file or
 * model-0000i-of-0000n shards) are read here too, tensor by tensor.
 *
 * Thread-safety: runs once while a catalog is built.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"
#include "util/strmap.h"

/* Largest config.json read. */
#define QN_MAX_CONFIG (16u << 20)

typedef struct qn_cfg {
	uint64_t layers, heads, kv_heads, head_size, hidden, vocab;
	uint32_t tp, pp;
	bool parallel_embedding;
	const char *quant_algo; /* NULL: not quantized */
} qn_cfg;

typedef enum qn_kind { QN_REPL, QN_COL, QN_ROW, QN_QKV, QN_VOCAB } qn_kind;

/* The kind of a TRT-LLM tensor name. */
static qn_kind qn_kind_of(const char *name, const qn_cfg *cfg)
{
	static const struct {
		const char *suffix;
		qn_kind kind;
	} rules[] = {
		{ "attention.qkv.weight", QN_QKV }, { "attention.qkv.bias", QN_QKV },
		{ "mlp.fc.weight", QN_COL },        { "mlp.fc.bias", QN_COL },
		{ "mlp.gate.weight", QN_COL },      { "mlp.gate.bias", QN_COL },
		{ "attention.dense.weight", QN_ROW }, { "mlp.proj.weight", QN_ROW },
		{ "lm_head.weight", QN_VOCAB },
	};
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		size_t m = strlen(rules[i].suffix);

		if (n >= m && strcmp(name + n - m, rules[i].suffix) == 0)
			return rules[i].kind;
	}
	if (strcmp(name, "transformer.vocab_embedding.weight") == 0 && cfg->parallel_embedding)
		return QN_VOCAB;
	return QN_REPL;
}

/* A non-negative integer field, or `dflt`. */
static uint64_t qn_int(json_t *o, const char *key, uint64_t dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v)
								 : dflt;
}

/* Reads config.json. */
static int qn_config(qn_cfg *cfg, nck_catalog *cat, nck_diag *diag)
{
	const nck_entry *e = cat->layout.config;
	json_t *root = NULL, *mapping, *quant;
	json_error_t jerr;
	void *buf = NULL;
	size_t len;
	int rc;

	if ((rc = nck_container_slurp(&buf, &len, cat->container, e, QN_MAX_CONFIG, diag)) < 0)
		return rc;
	root = json_loadb(buf, len, 0, &jerr);
	if (!json_is_object(root)) {
		rc = nck_diag_set(diag, -EBADMSG, e->path, root ? -1 : jerr.position, "%s",
				  root ? "not a JSON object" : jerr.text);
		goto out;
	}
	mapping = json_object_get(root, "mapping");
	quant = json_object_get(root, "quantization");
	cfg->hidden = qn_int(root, "hidden_size", 0);
	cfg->heads = qn_int(root, "num_attention_heads", 0);
	cfg->kv_heads = qn_int(root, "num_key_value_heads", cfg->heads);
	cfg->head_size = qn_int(root, "head_size", cfg->heads ? cfg->hidden / cfg->heads : 0);
	cfg->layers = qn_int(root, "num_hidden_layers", 0);
	cfg->vocab = qn_int(root, "vocab_size", 0);
	cfg->tp = (uint32_t)qn_int(mapping, "tp_size", 1);
	cfg->pp = (uint32_t)qn_int(mapping, "pp_size", 1);
	cfg->parallel_embedding = json_is_true(json_object_get(root, "use_parallel_embedding"));
	if (json_is_string(json_object_get(quant, "quant_algo")))
		cfg->quant_algo = "quantized";
	if (!cfg->heads || !cfg->head_size || !cfg->kv_heads || cfg->tp == 0 || cfg->pp == 0 ||
	    cfg->heads % cfg->tp || (cfg->kv_heads >= cfg->tp ? cfg->kv_heads % cfg->tp
							      : cfg->tp % cfg->kv_heads))
		rc = nck_diag_set(diag, -EBADMSG, e->path, -1,
				  "inconsistent heads, KV heads and tp_size");
out:
	json_decref(root);
	free(buf);
	return rc;
}

/* A chunk of rows [from, from+rows) of rank tensor t (columns [c0, c0+cols)). */
static void qn_chunk(nck_chunk *ch, uint32_t file, const nck_st_tensor *t, uint64_t from,
		     uint64_t rows, uint64_t to_row, uint64_t to_col)
{
	size_t esz = nck_dtype_size(t->dtype);
	int64_t stride = 1;

	memset(ch, 0, sizeof(*ch));
	ch->file = file;
	for (uint32_t d = t->ndim; d-- > 0;) {
		ch->shape[d] = t->shape[d];
		ch->stride[d] = stride;
		stride *= (int64_t)t->shape[d];
	}
	if (t->ndim) {
		ch->shape[0] = rows;
		ch->offset[0] = to_row;
		if (t->ndim > 1)
			ch->offset[1] = to_col;
	}
	ch->base = t->data_offset + from * (uint64_t)ch->stride[0] * esz;
}

typedef struct qn_state {
	nck_catalog *cat;
	qn_cfg cfg;
	nck_st_file **files; /* per rank */
	uint32_t *file_idx;  /* catalog file of each rank */
	uint64_t *layer_offset;
} qn_state;

/* Builds the logical tensor `name` (stage p's local name `local`). */
static int qn_build(qn_state *st, const char *name, const char *local, uint32_t p, nck_diag *diag)
{
	const uint32_t T = st->cfg.tp;
	const nck_st_tensor *r0 = nck_st_find(st->files[(size_t)p * T], local);
	qn_kind kind = qn_kind_of(name, &st->cfg);
	uint64_t d = st->cfg.head_size, q = st->cfg.heads / T * d, G = st->cfg.kv_heads;
	uint64_t kv = (G >= T ? G / T : 1) * d, rows = r0->ndim ? r0->shape[0] : 0;
	size_t n = kind == QN_REPL || T == 1 ? 1 : kind == QN_QKV ? 3 * (size_t)T : T;
	nck_tensor *t = nck_catalog_add(st->cat, name, n);

	if (!t)
		return -ENOMEM;
	t->dtype = r0->dtype;
	t->ndim = r0->ndim;
	memcpy(t->shape, r0->shape, sizeof(t->shape));
	t->n_chunks = 0;
	if (kind == QN_REPL || T == 1) {
		qn_chunk((nck_chunk *)&t->chunks[t->n_chunks++], st->file_idx[(size_t)p * T], r0, 0, rows,
			 0, 0);
		if (kind == QN_QKV || kind == QN_COL || kind == QN_ROW)
			return 0;
	}
	for (uint32_t r = 0; r < T && !(kind == QN_REPL || T == 1); r++) {
		const nck_st_tensor *rt = nck_st_find(st->files[(size_t)p * T + r], local);
		uint32_t f = st->file_idx[(size_t)p * T + r];
		nck_chunk *c = (nck_chunk *)t->chunks;

		if (!rt || rt->dtype != r0->dtype || rt->ndim != r0->ndim ||
		    memcmp(rt->shape, r0->shape, r0->ndim * sizeof(r0->shape[0])) != 0 ||
		    (kind == QN_ROW && r0->ndim != 2) || (kind == QN_QKV && rows != q + 2 * kv))
			return nck_diag_set(diag, -EBADMSG, st->cat->container->path, -1,
					    "'%s' is missing or differs on tp rank %u", name, r);
		switch (kind) {
		case QN_COL:
		case QN_VOCAB:
			qn_chunk(&c[t->n_chunks++], f, rt, 0, rows, rows * r, 0);
			t->shape[0] = rows * T;
			break;
		case QN_ROW:
			qn_chunk(&c[t->n_chunks++], f, rt, 0, rows, 0, r0->shape[1] * r);
			t->shape[1] = r0->shape[1] * T;
			break;
		case QN_QKV:
			t->shape[0] = q * T + 2 * G * d;
			qn_chunk(&c[t->n_chunks++], f, rt, 0, q, q * r, 0);
			/* KV heads: each rank's own, or one copy of a duplicated head. */
			if (G >= T || r % (T / G) == 0) {
				uint64_t head = G >= T ? (uint64_t)r * (G / T) : r / (T / G);

				qn_chunk(&c[t->n_chunks++], f, rt, q, kv, q * T + head * d, 0);
				qn_chunk(&c[t->n_chunks++], f, rt, q + kv, kv, q * T + G * d + head * d, 0);
			}
			break;
		case QN_REPL:
			break;
		}
	}
	if (kind == QN_VOCAB && st->cfg.vocab && st->cfg.vocab < t->shape[0])
		nck_tensor_cut_rows(t, st->cfg.vocab);
	return 0;
}

/* Opens rank files (checking the grid against config.json) and numbers layers. */
static int qn_open_ranks(qn_state *st, nck_diag *diag)
{
	nck_catalog *cat = st->cat;
	size_t n = (size_t)st->cfg.tp * st->cfg.pp;
	uint64_t total = 0;
	int rc;

	if (n > NCK_CATALOG_MAX_RANKS)
		return nck_diag_set(diag, -EBADMSG, cat->container->path, -1, "too many ranks");
	st->files = calloc(n, sizeof(*st->files));
	st->file_idx = calloc(n, sizeof(*st->file_idx));
	st->layer_offset = calloc(st->cfg.pp, sizeof(*st->layer_offset));
	if (!st->files || !st->file_idx || !st->layer_offset)
		return -ENOMEM;
	for (size_t r = 0; r < n; r++) {
		char path[32];
		const nck_entry *e = NULL;

		snprintf(path, sizeof(path), "rank%zu.safetensors", r);
		for (size_t i = 0; i < cat->container->n_entries && !e; i++)
			if (strcmp(cat->container->entries[i].path, path) == 0)
				e = &cat->container->entries[i];
		if (!e)
			return nck_diag_set(diag, -EBADMSG, cat->container->path, -1,
					    "%s is missing (config.json: tp_size %u, pp_size %u)", path,
					    st->cfg.tp, st->cfg.pp);
		if ((rc = nck_catalog_add_file(cat, e, &st->file_idx[r], diag)) < 0 ||
		    (rc = nck_st_open(&st->files[r], cat->files[st->file_idx[r]].src, 0, e->size, diag)) < 0)
			return rc;
	}
	for (uint32_t p = 0; p < st->cfg.pp; p++) {
		const nck_st_file *f = st->files[(size_t)p * st->cfg.tp];
		uint64_t layers = 0, layer;
		size_t s, len;

		st->layer_offset[p] = total;
		for (size_t i = 0; i < f->n_tensors; i++)
			if (nck_param_layer(f->tensors[i].name, &s, &len, &layer) && layer + 1 > layers)
				layers = layer + 1;
		total += layers;
	}
	return 0;
}

static int nck_catalog_read_qnemo(nck_catalog *cat, nck_diag *diag)
{
	qn_state st = { .cat = cat };
	nck_strmap seen = { 0 };
	nck_arena names;
	int rc;

	nck_arena_init(&names);
	cat->info.model = "gpt";
	if ((rc = qn_config(&st.cfg, cat, diag)) < 0)
		goto out;
	if (st.cfg.quant_algo) {
		rc = nck_diag_set(diag, -ENOTSUP, cat->layout.config->path, -1,
				  "quantized .qnemo checkpoints are not cataloged yet");
		goto out;
	}
	cat->layout.tp = st.cfg.tp;
	cat->layout.pp = st.cfg.pp;
	if ((rc = qn_open_ranks(&st, diag)) < 0)
		goto out;
	for (uint32_t p = 0; p < st.cfg.pp && rc == 0; p++) {
		const nck_st_file *f = st.files[(size_t)p * st.cfg.tp];

		for (size_t i = 0; i < f->n_tensors && rc == 0; i++) {
			const char *local = f->tensors[i].name, *name = local;
			size_t s, len;
			uint64_t layer;
			char buf[1024];

			if (nck_param_layer(local, &s, &len, &layer)) {
				snprintf(buf, sizeof(buf), "%.*s%llu%s", (int)s, local,
					 (unsigned long long)(layer + st.layer_offset[p]), local + s + len);
				name = nck_arena_strndup(&names, buf, strlen(buf));
			}
			if (!name) {
				rc = -ENOMEM;
				break;
			}
			if (nck_strmap_find(&seen, name, NULL))
				continue; /* a later stage's copy (tied embeddings) */
			if ((rc = nck_strmap_put(&seen, name, 0)) < 0)
				break;
			rc = qn_build(&st, name, local, p, diag);
		}
	}
out:
	if (rc == -ENOMEM)
		nck_diag_set(diag, rc, cat->container->path, -1, "out of memory");
	for (size_t r = 0; st.files && r < (size_t)st.cfg.tp * st.cfg.pp; r++)
		nck_st_file_free(st.files[r]);
	free(st.files);
	free(st.file_idx);
	free(st.layer_offset);
	nck_strmap_dispose(&seen);
	nck_arena_dispose(&names);
	return rc;
}

/* ---- plain safetensors ---------------------------------------------------- */

/* True for a *.safetensors file at the root: what the layout is detected by,
 * and what is read. */
static bool st_at_root(const nck_entry *e)
{
	size_t n = strlen(e->path);

	return e->kind == NCK_ENTRY_FILE && !strchr(e->path, '/') && n > 12 &&
	       strcmp(e->path + n - 12, ".safetensors") == 0;
}

static int nck_catalog_read_safetensors(nck_catalog *cat, nck_diag *diag)
{
	const nck_container *c = cat->container;
	int rc = 0;

	for (size_t i = 0; i < c->n_entries && rc == 0; i++) {
		const nck_entry *e = &c->entries[i];
		nck_st_file *f = NULL;
		uint32_t fi;

		if (!st_at_root(e))
			continue;
		if ((rc = nck_catalog_add_file(cat, e, &fi, diag)) < 0 ||
		    (rc = nck_st_open(&f, cat->files[fi].src, 0, e->size, diag)) < 0)
			break;
		for (size_t k = 0; k < f->n_tensors && rc == 0; k++) {
			const nck_st_tensor *st = &f->tensors[k];
			nck_tensor *t = nck_catalog_add(cat, st->name, 1);

			if (!t) {
				rc = nck_diag_set(diag, -ENOMEM, e->path, -1, "out of memory");
				break;
			}
			t->dtype = st->dtype;
			t->ndim = st->ndim;
			memcpy(t->shape, st->shape, sizeof(t->shape));
			qn_chunk((nck_chunk *)t->chunks, fi, st, 0, st->ndim ? st->shape[0] : 1, 0, 0);
		}
		nck_st_file_free(f);
	}
	bool gpt = false;
	for (size_t i = 0; i < cat->n_tensors && !gpt; i++)
		gpt = strstr(cat->tensors[i].name, "layers.") != NULL;
	cat->info.model = gpt ? "gpt" : "other";
	return rc;
}

/* ---- detection and registration ---------------------------------------------- */

/* .qnemo: TensorRT-LLM's config.json and the first rank's weights. */
static int qnemo_detect(nck_layout *out, const nck_container *c, nck_arena *arena, nck_diag *diag)
{
	(void)arena;
	(void)diag;
	if (!nck_detect_find(c, "config.json") || !nck_detect_find(c, "rank0.safetensors"))
		return 0;
	out->kind = NCK_LAYOUT_QNEMO;
	out->format = "qnemo";
	out->name = "trtllm";
	out->config = nck_detect_find(c, "config.json");
	return 1;
}

/* A Hugging Face directory: some *.safetensors file at the root. */
static int safetensors_detect(nck_layout *out, const nck_container *c, nck_arena *arena,
			      nck_diag *diag)
{
	(void)arena;
	(void)diag;
	for (size_t i = 0; i < c->n_entries; i++) {
		if (st_at_root(&c->entries[i])) {
			out->kind = NCK_LAYOUT_SAFETENSORS;
			out->format = "safetensors";
			out->name = "files";
			return 1;
		}
	}
	return 0;
}

const nck_catalog_reader nck_catalog_qnemo_reader = {
	.name = "qnemo",
	.detect = qnemo_detect,
	.read = nck_catalog_read_qnemo,
};

const nck_catalog_reader nck_catalog_safetensors_reader = {
	.name = "safetensors",
	.detect = safetensors_detect,
	.read = nck_catalog_read_safetensors,
};
