/* SPDX-License-Identifier: MIT */
/*
 * hf/: the checkpoint as a Hugging Face Llama model directory, the layout
 * `transformers`' LlamaForCausalLM.from_pretrained() and AutoTokenizer
 * load (spec sharding-hf-trtllm.md Part B; NeMo 2's HFLlamaExporter):
 *
 *   config.json, generation_config.json
 *   model.safetensors, or model-0000i-of-0000n.safetensors above the shard
 *     size with model.safetensors.index.json
 *   tokenizer.model + tokenizer_config.json + special_tokens_map.json (a
 *     SentencePiece source), or the source's tokenizer.json as it is
 *
 * Every tensor is a row cut of one logical tensor (gpt.h): q_proj, k_proj
 * and v_proj are the query, key and value heads of the group-interleaved
 * QKV (B.2), gate_proj and up_proj the halves of fc1 (B.3), embed_tokens and
 * lm_head the first V rows (V from the tokenizer; the padding rows are
 * dropped), the rest whole. Contiguous rows stay zero-copy windows.
 *
 * Only Llama-family models get the view: SwiGLU, RMSNorm (no norm
 * biases), rotary embeddings over the whole head, non-interleaved; biases
 * on all linears or none. nck_hf_check says why another model has none.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "format/vocab.h"
#include "util/grow.h"
#include "view/gpt.h"
#include "view/sthdr.h"
#include "view/viewset.h"

/* Hugging Face's save_pretrained shards at 5 GB; merged/ and hf/ at 5 GiB. */
#define HF_SHARD_DEFAULT (5ull << 30)
/* max_position_embeddings when the config has no sequence length. */
#define HF_DEFAULT_MAX_POS 4096

/* One tensor of the view. */
typedef struct hf_tensor {
	char name[96];
	nck_gpt_cut cut;
	uint64_t bytes;
	uint64_t shape[2];
	uint32_t ndim;
	size_t shard;
	uint32_t src_file; /* where its bytes start in the source (for the order) */
	uint64_t src_pos;
} hf_tensor;

typedef struct hf_build {
	nck_viewset *vs;
	const nck_view_ctx *ctx;
	const nck_gpt_model *gm;
	uint64_t vocab;	   /* rows of embed_tokens and lm_head */
	nck_sp_special sp; /* the SentencePiece tokenizer's special tokens */
	bool have_sp;	   /* the tokenizer is a SentencePiece model */
	hf_tensor *t;
	size_t n, cap;
	bool nomem;
} hf_build;

/* ---- which models --------------------------------------------------------- */

/* True when the layers have biases on every linear (false: on none); -1 mixed. */
static int hf_biases(const nck_gpt_model *gm)
{
	int seen = -1;

	for (uint64_t g = 0; g < gm->L; g++) {
		const nck_tensor *const *l = gm->layer[g];
		int all =
		    l[NCK_GPT_QKV_B] && l[NCK_GPT_DENSE_B] && l[NCK_GPT_FC1_B] && l[NCK_GPT_FC2_B];
		int none = !l[NCK_GPT_QKV_B] && !l[NCK_GPT_DENSE_B] && !l[NCK_GPT_FC1_B] &&
			   !l[NCK_GPT_FC2_B];

		if (!all && !none)
			return -1;
		if (seen >= 0 && seen != all)
			return -1;
		seen = all;
	}
	return seen;
}

/* A config string equal to one of the allowed values (case-insensitive), or absent. */
static bool hf_cfg_is(const nck_view_ctx *ctx, const char *key, const char *const *allowed)
{
	const char *v = nck_gpt_cfg_str(ctx->cfg, key);

	if (!v)
		return true;
	for (size_t i = 0; allowed[i]; i++)
		if (strcasecmp(v, allowed[i]) == 0)
			return true;
	return false;
}

/* A boolean at key, top level or under config. (NeMo 2), or false. */
static bool hf_cfg_true(const nck_view_ctx *ctx, const char *key)
{
	char path[128];
	bool v = false;

	if (!ctx->cfg)
		return false;
	if (nck_yaml_get_bool(ctx->cfg, key, &v) == 0)
		return v;
	snprintf(path, sizeof(path), "config.%s", key);
	return nck_yaml_get_bool(ctx->cfg, path, &v) == 0 && v;
}

/* True if t is absent or of a dtype a Hugging Face checkpoint holds. */
static bool hf_dtype_ok(const nck_tensor *t)
{
	return !t || t->dtype == NCK_DTYPE_BF16 || t->dtype == NCK_DTYPE_F16 ||
	       t->dtype == NCK_DTYPE_F32;
}

/* Why the model is not Llama-family, or NULL when it is. */
static const char *hf_not_llama(const nck_view_ctx *ctx, const nck_gpt_model *gm)
{
	static const char *const rms[] = { "rmsnorm", NULL }, *const rope[] = { "rope", NULL },
				 *const swiglu[] = { "swiglu", "fast-swiglu", NULL };

	if (!gm->m.gated || !hf_cfg_is(ctx, "activation", swiglu))
		return "the MLP is not SwiGLU";
	if (gm->ln_f_b || !hf_cfg_is(ctx, "normalization", rms))
		return "the norms are not RMSNorm";
	for (uint64_t g = 0; g < gm->L; g++)
		if (gm->layer[g][NCK_GPT_IN_LN_B] || gm->layer[g][NCK_GPT_POST_LN_B])
			return "the norms are not RMSNorm";
	if (!hf_cfg_is(ctx, "position_embedding_type", rope))
		return "the position embedding is not rotary";
	/* NeMo 1 spells it rotary_percentage, MCore and NeMo 2 rotary_percent */
	if (nck_gpt_cfg_num(ctx->cfg, "rotary_percentage", 1.0) != 1.0 ||
	    nck_gpt_cfg_num(ctx->cfg, "rotary_percent", 1.0) != 1.0)
		return "rotary embeddings cover part of each head";
	if (hf_cfg_true(ctx, "rotary_interleaved"))
		return "rotary embeddings are interleaved";
	if (hf_biases(gm) < 0)
		return "some linears have biases and others not";
	if (!hf_dtype_ok(gm->emb) || !hf_dtype_ok(gm->lm_head) || !hf_dtype_ok(gm->ln_f_w))
		return "the weights are not bf16, fp16 or fp32";
	for (uint64_t g = 0; g < gm->L; g++)
		for (int r = 0; r < NCK_GPT_ROLES; r++)
			if (!hf_dtype_ok(gm->layer[g][r]))
				return "the weights are not bf16, fp16 or fp32";
	return NULL;
}

int nck_hf_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P, char *why,
		 size_t why_len)
{
	const char *no;

	(void)kind;
	if (!ctx->gpt) {
		snprintf(why, why_len, "%s", ctx->gpt_why);
		return -ENOTSUP;
	}
	if ((no = hf_not_llama(ctx, ctx->gpt))) {
		snprintf(why, why_len, "not a Llama-family model: %s", no);
		return -ENOTSUP;
	}
	if ((T || P) && (T != 1 || P != 1)) {
		snprintf(why, why_len, "hf/ has one layout");
		return -ENOENT;
	}
	return 0;
}

/* ---- tensors --------------------------------------------------------------- */

/* Starts a cut of src named `part` (layer < 0) or model.layers.<layer>.<part>. */
static hf_tensor *hf_add(hf_build *b, const nck_tensor *src, int64_t layer, const char *part)
{
	hf_tensor *t;

	if (nck_grow((void **)&b->t, &b->cap, b->n, sizeof(*t), 64) < 0) {
		b->nomem = true;
		return NULL;
	}
	t = &b->t[b->n++];
	memset(t, 0, sizeof(*t));
	if (layer < 0)
		snprintf(t->name, sizeof(t->name), "%s", part);
	else
		snprintf(t->name, sizeof(t->name), "model.layers.%lld.%s", (long long)layer, part);
	nck_gpt_cut_init(&t->cut, src);
	return t;
}

/* A tensor as it is (all rows). */
static void hf_rows(hf_build *b, const nck_tensor *src, int64_t layer, const char *part,
		    uint64_t row0, uint64_t rows)
{
	hf_tensor *t;

	if (src && (t = hf_add(b, src, layer, part)))
		nck_gpt_cut_rows(&t->cut, row0, rows, false);
}

static void hf_part(hf_build *b, const nck_tensor *src, int64_t layer, const char *part,
		    nck_gpt_part which)
{
	hf_tensor *t;

	if (src && (t = hf_add(b, src, layer, part)))
		nck_gpt_cut_part(&t->cut, b->gm, which);
}

/* The tensors of global layer g, in the order transformers names them. */
static void hf_layer(hf_build *b, uint64_t layer)
{
	for (size_t i = 0; i < nck_gpt_n_layer_exports; i++) {
		const nck_gpt_export *x = &nck_gpt_layer_exports[i];

		hf_part(b, b->gm->layer[layer][x->role], (int64_t)layer, x->hf, x->part);
	}
}

/* Where the tensor's bytes start in the source, near enough to order the
 * tensors of a file as the source holds them: the first chunk (lowest file,
 * then offset) of its source tensor, plus the offset of its first row
 * (which puts q_proj, k_proj and v_proj in their QKV's order). */
static void hf_source_pos(hf_tensor *t)
{
	const nck_tensor *src = t->cut.src;
	uint64_t rb = nck_dtype_size(src->dtype) * (src->ndim == 2 ? src->shape[1] : 1);

	t->src_file = UINT32_MAX;
	for (size_t c = 0; c < src->n_chunks; c++) {
		const nck_chunk *k = &src->chunks[c];

		if (k->file < t->src_file || (k->file == t->src_file && k->base < t->src_pos)) {
			t->src_file = k->file;
			t->src_pos = k->base;
		}
	}
	if (t->cut.n_pieces)
		t->src_pos += t->cut.pieces[0].row0 * rb;
}

/* Every tensor, in model order; shapes and sizes. */
static int hf_tensors(hf_build *b)
{
	const nck_gpt_model *gm = b->gm;

	hf_rows(b, gm->emb, -1, "model.embed_tokens.weight", 0, b->vocab);
	for (uint64_t g = 0; g < gm->L; g++)
		hf_layer(b, g);
	hf_part(b, gm->ln_f_w, -1, "model.norm.weight", NCK_GPT_PART_ALL);
	hf_rows(b, gm->lm_head, -1, "lm_head.weight", 0, b->vocab);
	for (size_t i = 0; i < b->n; i++) {
		hf_tensor *t = &b->t[i];

		b->nomem |= t->cut.nomem;
		t->ndim = t->cut.src->ndim == 2 ? 2 : 1;
		t->shape[0] = t->cut.rows;
		t->shape[1] = t->cut.ncols;
		t->bytes = nck_gpt_cut_bytes(&t->cut);
		hf_source_pos(t);
	}
	return b->nomem ? -ENOMEM : 0;
}

/* ---- safetensors files ----------------------------------------------------- */

/* The name of shard s of n. */
static void hf_shard_name(char *out, size_t len, size_t s, size_t n)
{
	if (n == 1)
		snprintf(out, len, "model.safetensors");
	else
		snprintf(out, len, "model-%05zu-of-%05zu.safetensors", s + 1, n);
}

/* The order of a file's tensors: the source's (see hf_source_pos), so a
 * first read of the file walks each source file forward. */
static int hf_tensor_cmp(const void *a, const void *b)
{
	const hf_tensor *x = a, *y = b;

	if (x->src_file != y->src_file)
		return x->src_file < y->src_file ? -1 : 1;
	if (x->src_pos != y->src_pos)
		return x->src_pos < y->src_pos ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* One shard: the header of tensors [i0, i1), then their bytes, both in the
 * source's order (readers find tensors by the header, in any order). */
static int hf_file(hf_build *b, size_t s, size_t n_shards, size_t i0, size_t i1)
{
	const char *meta[] = { "format", "pt", NULL };
	nck_st_entry *e = calloc(i1 > i0 ? i1 - i0 : 1, sizeof(*e));
	char name[64], *hdr = NULL;
	nck_vfile *f;
	size_t hlen;
	int rc = -ENOMEM;

	if (!e)
		return -ENOMEM;
	if (i1 > i0)
		qsort(b->t + i0, i1 - i0, sizeof(*b->t), hf_tensor_cmp);
	for (size_t i = i0; i < i1; i++)
		e[i - i0] = (nck_st_entry){ .name = b->t[i].name, .dtype = b->t[i].cut.src->dtype,
					    .ndim = b->t[i].ndim, .shape = b->t[i].shape,
					    .bytes = b->t[i].bytes };
	if ((rc = nck_st_header(&hdr, &hlen, e, i1 - i0, meta)) < 0 ||
	    (rc = nck_viewset_own(b->vs, hdr)) < 0)
		goto out;
	hf_shard_name(name, sizeof(name), s, n_shards);
	rc = -ENOMEM;
	if (!(f = nck_viewset_add(b->vs, name, NCK_VFILE_LAYOUT)))
		goto out;
	rc = nck_layout_mem(&f->layout, hdr, hlen);
	for (size_t i = i0; i < i1 && rc == 0; i++)
		rc = nck_gpt_cut_segments(&f->layout, &b->t[i].cut);
	f->size = f->layout.size;
out:
	free(e);
	return rc;
}

/* The index of a sharded model. */
static int hf_index(hf_build *b, size_t n_shards)
{
	const char **tensor = calloc(b->n ? b->n : 1, sizeof(*tensor));
	const char **file = calloc(b->n ? b->n : 1, sizeof(*file));
	char(*names)[64] = calloc(n_shards, sizeof(*names));
	uint64_t total = 0;
	nck_vfile *f;
	char *text = NULL;
	size_t len;
	int rc = -ENOMEM;

	if (!tensor || !file || !names)
		goto out;
	for (size_t s = 0; s < n_shards; s++)
		hf_shard_name(names[s], sizeof(names[s]), s, n_shards);
	for (size_t i = 0; i < b->n; i++) {
		tensor[i] = b->t[i].name;
		file[i] = names[b->t[i].shard];
		total += b->t[i].bytes;
	}
	if ((rc = nck_st_index(&text, &len, tensor, file, b->n, total)) < 0 ||
	    (rc = nck_viewset_own(b->vs, text)) < 0)
		goto out;
	rc = -ENOMEM;
	if (!(f = nck_viewset_add(b->vs, "model.safetensors.index.json", NCK_VFILE_MEM)))
		goto out;
	f->mem = text;
	f->size = len;
	rc = 0;
out:
	free(tensor);
	free(file);
	free(names);
	return rc;
}

/* Shards greedily in model order (a new shard when the next tensor would
 * overflow the size), then the files and, with several, the index. */
static int hf_weights(hf_build *b)
{
	uint64_t max = b->ctx->shard_size ? b->ctx->shard_size : HF_SHARD_DEFAULT, used = 0;
	size_t n_shards = 1, i0 = 0;
	int rc = 0;

	for (size_t i = 0; i < b->n; i++) {
		if (used && used + b->t[i].bytes > max) {
			n_shards++;
			used = 0;
		}
		used += b->t[i].bytes;
		b->t[i].shard = n_shards - 1;
	}
	for (size_t s = 0; s < n_shards && rc == 0; s++) {
		size_t i1 = i0;

		while (i1 < b->n && b->t[i1].shard == s)
			i1++;
		rc = hf_file(b, s, n_shards, i0, i1);
		i0 = i1;
	}
	if (rc == 0 && n_shards > 1)
		rc = hf_index(b, n_shards);
	return rc;
}

/* ---- config.json, generation_config.json ------------------------------------ */

/* Adds a JSON file of the set. */
static int hf_json_file(hf_build *b, const char *name, json_t *root)
{
	char *text =
	    root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
		 : NULL;
	nck_vfile *f;

	json_decref(root);
	if (!text || nck_viewset_own(b->vs, text) < 0 ||
	    !(f = nck_viewset_add(b->vs, name, NCK_VFILE_MEM)))
		return -ENOMEM;
	f->mem = text;
	f->size = strlen(text);
	return 0;
}

/* An id, or null when there is none. */
static json_t *hf_id(int64_t id)
{
	return id >= 0 ? json_integer((json_int_t)id) : json_null();
}

/* rope_scaling (spec B.4): linear interpolation, Llama 3.1's, or null. */
static json_t *hf_rope_scaling(const nck_view_ctx *ctx)
{
	double factor = nck_gpt_cfg_range(ctx->cfg, "seq_len_interpolation_factor", 0, 1e-6, 1e6);
	nck_gpt_llama3_rope r;

	if (nck_gpt_llama3_rope_get(ctx->cfg, &r))
		return json_pack("{s:s, s:f, s:f, s:f, s:I}", "rope_type", "llama3", "factor",
				 r.factor, "low_freq_factor", r.low_freq_factor, "high_freq_factor",
				 r.high_freq_factor, "original_max_position_embeddings",
				 (json_int_t)r.old_ctx);
	if (factor > 0)
		return json_pack("{s:s, s:f}", "rope_type", "linear", "factor", factor);
	return json_null();
}

/* The model's sequence length (max_position_embeddings). */
static json_int_t hf_max_pos(const nck_view_ctx *ctx)
{
	double v = nck_gpt_cfg_range(ctx->cfg, "seq_length", HF_DEFAULT_MAX_POS, 1, 1e12);

	v = nck_gpt_cfg_range(ctx->cfg, "encoder_seq_length", v, 1, 1e12);
	return (json_int_t)nck_gpt_cfg_range(ctx->cfg, "max_position_embeddings", v, 1, 1e12);
}

static const char *hf_dtype_name(nck_dtype dt)
{
	return dt == NCK_DTYPE_F16 ? "float16" : dt == NCK_DTYPE_F32 ? "float32" : "bfloat16";
}

/* config.json (spec B.4). */
static int hf_config(hf_build *b)
{
	const nck_gpt_model *gm = b->gm;
	const nck_view_ctx *ctx = b->ctx;
	const nck_catalog_info *in = nck_catalog_get_info(ctx->cat);
	bool bias = hf_biases(gm) == 1;
	json_t *c = json_object(), *own;

	if (!c)
		return -ENOMEM;
	json_object_set_new(c, "architectures", json_pack("[s]", "LlamaForCausalLM"));
	json_object_set_new(c, "model_type", json_string("llama"));
	json_object_set_new(c, "hidden_size", json_integer((json_int_t)gm->h));
	json_object_set_new(c, "intermediate_size", json_integer((json_int_t)gm->f));
	json_object_set_new(c, "num_hidden_layers", json_integer((json_int_t)gm->L));
	json_object_set_new(c, "num_attention_heads", json_integer((json_int_t)gm->n));
	json_object_set_new(c, "num_key_value_heads", json_integer((json_int_t)gm->G));
	json_object_set_new(c, "head_dim", json_integer((json_int_t)gm->d));
	json_object_set_new(c, "hidden_act", json_string("silu"));
	json_object_set_new(c, "max_position_embeddings", json_integer(hf_max_pos(ctx)));
	json_object_set_new(c, "rms_norm_eps",
			    json_real(nck_gpt_cfg_range(ctx->cfg, "layernorm_epsilon", 1e-5, 0, 1)));
	json_object_set_new(c, "rope_theta",
			    json_real(nck_gpt_cfg_range(ctx->cfg, "rotary_base", 10000, 1, 1e12)));
	json_object_set_new(c, "rope_scaling", hf_rope_scaling(ctx));
	json_object_set_new(c, "attention_bias", json_boolean(bias));
	json_object_set_new(c, "attention_dropout", json_real(0.0));
	json_object_set_new(c, "mlp_bias", json_boolean(bias));
	json_object_set_new(c, "initializer_range",
			    json_real(nck_gpt_cfg_range(ctx->cfg, "init_method_std", 0.02, 0, 1)));
	json_object_set_new(c, "pretraining_tp", json_integer(1));
	json_object_set_new(c, "tie_word_embeddings", json_boolean(!gm->lm_head));
	json_object_set_new(c, "dtype", json_string(hf_dtype_name(gm->dtype)));
	json_object_set_new(c, "use_cache", json_true());
	json_object_set_new(c, "vocab_size", json_integer((json_int_t)b->vocab));
	json_object_set_new(c, "bos_token_id", hf_id(b->have_sp ? b->sp.bos : -1));
	json_object_set_new(c, "eos_token_id", hf_id(b->have_sp ? b->sp.eos : -1));
	json_object_set_new(c, "pad_token_id", hf_id(b->have_sp ? b->sp.pad : -1));
	own = json_pack("{s:s, s:s, s:i, s:i}", "source", ctx->source ? ctx->source : "",
			"source_format", in->format, "source_tp", (int)in->tp, "source_pp",
			(int)in->pp);
	json_object_set_new(c, "nemockpt", own);
	return hf_json_file(b, "config.json", c);
}

/* generation_config.json: the special ids, greedy by default as the model's own. */
static int hf_generation_config(hf_build *b)
{
	json_t *g = json_object();

	if (!g)
		return -ENOMEM;
	json_object_set_new(g, "_from_model_config", json_true());
	json_object_set_new(g, "bos_token_id", hf_id(b->have_sp ? b->sp.bos : -1));
	json_object_set_new(g, "eos_token_id", hf_id(b->have_sp ? b->sp.eos : -1));
	if (b->have_sp && b->sp.pad >= 0)
		json_object_set_new(g, "pad_token_id", hf_id(b->sp.pad));
	return hf_json_file(b, "generation_config.json", g);
}

/* ---- tokenizer -------------------------------------------------------------- */

/* A special token's text, or null. Pieces that are not UTF-8 become null. */
static json_t *hf_token(const char *piece)
{
	json_t *s = piece[0] ? json_string(piece) : NULL;

	return s ? s : json_null();
}

/* tokenizer_config.json and special_tokens_map.json of a SentencePiece
 * tokenizer: LlamaTokenizer with the model's bos/eos/unk/pad, BOS added as
 * Llama's tokenizer does, no EOS. */
static int hf_sp_configs(hf_build *b, const nck_sp_special *sp)
{
	json_t *t = json_object(), *m = json_object();
	int rc;

	if (!t || !m) {
		json_decref(t);
		json_decref(m);
		return -ENOMEM;
	}
	json_object_set_new(t, "tokenizer_class", json_string("LlamaTokenizer"));
	json_object_set_new(t, "add_bos_token", json_boolean(sp->bos >= 0 && sp->bos_piece[0]));
	json_object_set_new(t, "add_eos_token", json_false());
	json_object_set_new(t, "bos_token", hf_token(sp->bos_piece));
	json_object_set_new(t, "eos_token", hf_token(sp->eos_piece));
	json_object_set_new(t, "unk_token", hf_token(sp->unk_piece));
	json_object_set_new(t, "pad_token", hf_token(sp->pad_piece));
	json_object_set_new(t, "add_prefix_space", json_boolean(sp->add_dummy_prefix));
	json_object_set_new(t, "legacy", json_true());
	json_object_set_new(t, "clean_up_tokenization_spaces", json_false());
	json_object_set_new(t, "model_max_length", json_integer(hf_max_pos(b->ctx)));
	json_object_set_new(t, "sp_model_kwargs", json_object());
	if (sp->bos_piece[0])
		json_object_set_new(m, "bos_token", json_string(sp->bos_piece));
	if (sp->eos_piece[0])
		json_object_set_new(m, "eos_token", json_string(sp->eos_piece));
	if (sp->unk_piece[0])
		json_object_set_new(m, "unk_token", json_string(sp->unk_piece));
	if (sp->pad_piece[0])
		json_object_set_new(m, "pad_token", json_string(sp->pad_piece));
	if ((rc = hf_json_file(b, "tokenizer_config.json", t)) < 0) {
		json_decref(m);
		return rc;
	}
	return hf_json_file(b, "special_tokens_map.json", m);
}

/* True if base names a Hugging Face tokenizer file passed through as it is. */
static bool hf_tokenizer_file(const char *base)
{
	static const char *const names[] = { "tokenizer.json", "tokenizer_config.json",
					     "special_tokens_map.json", "vocab.json", "merges.txt",
					     "added_tokens.json", NULL };

	for (size_t i = 0; names[i]; i++)
		if (strcmp(base, names[i]) == 0)
			return true;
	return false;
}

/* True if the set has a file at path (the first of two same-named files wins). */
static bool hf_has_file(const nck_viewset *vs, const char *path)
{
	for (size_t i = 0; i < vs->n_files; i++)
		if (strcmp(vs->files[i].path, path) == 0)
			return true;
	return false;
}

/* True if e is a Hugging Face tokenizer file beside the tokenizer artifact. */
static bool hf_sibling(const nck_view_ctx *ctx, const nck_entry *e)
{
	return nck_view_beside_tokenizer(ctx, e) && hf_tokenizer_file(nck_artifact_name(e->path));
}

/* The tokenizer. A SentencePiece model becomes tokenizer.model and, unless
 * the source keeps Hugging Face tokenizer files beside it (a NeMo 2
 * nemo_tokenizer/ saved by a fast tokenizer: its tokenizer.json, chat
 * template and added tokens win), the configs written here. Another
 * artifact is passed through when it is a Hugging Face tokenizer file, with
 * the ones beside it. */
static int hf_tokenizer(hf_build *b)
{
	const nck_view_ctx *ctx = b->ctx;
	const nck_container *c = ctx->container;
	const nck_entry *tok = ctx->tokenizer;
	const char *name;
	bool hf_files = false;
	nck_vfile *f;

	if (!tok)
		return 0;
	for (size_t i = 0; c && i < c->n_entries; i++)
		hf_files |= hf_sibling(ctx, &c->entries[i]);
	name = b->have_sp ? "tokenizer.model" : nck_artifact_name(tok->path);
	if (!b->have_sp && !hf_tokenizer_file(name))
		return 0; /* a vocabulary file transformers has no loader for without its config */
	if (!(f = nck_viewset_add(b->vs, name, NCK_VFILE_MEMBER)))
		return -ENOMEM;
	f->member = tok;
	if (b->have_sp && !hf_files)
		return hf_sp_configs(b, &b->sp);
	for (size_t i = 0; c && i < c->n_entries; i++) {
		const nck_entry *e = &c->entries[i];

		if (!hf_sibling(ctx, e) || hf_has_file(b->vs, nck_artifact_name(e->path)))
			continue;
		if (!(f = nck_viewset_add(b->vs, nck_artifact_name(e->path), NCK_VFILE_MEMBER)))
			return -ENOMEM;
		f->member = e;
	}
	return 0;
}

/* ---- the set ----------------------------------------------------------------- */

int nck_hf_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		 uint32_t P)
{
	hf_build b = { .vs = vs, .ctx = ctx, .gm = ctx->gpt };
	nck_vocab_kind vk;
	uint64_t rows, n;
	int rc;

	(void)kind;
	(void)T;
	(void)P;
	if (!b.gm)
		return -ENOENT;
	rows = b.gm->emb->shape[0];
	/* V rows (the tokenizer's), never more than the embedding has */
	b.vocab = b.gm->m.vocab && b.gm->m.vocab < rows ? b.gm->m.vocab : rows;
	if (b.gm->lm_head && b.gm->lm_head->shape[0] < b.vocab)
		b.vocab = b.gm->lm_head->shape[0];
	/* A tokenizer that is not a SentencePiece model (tokenizer.json) is
	 * passed through; its special ids stay null in config.json. */
	b.have_sp = ctx->tokenizer && ctx->tokenizer_data &&
		    nck_vocab_count(&n, &vk, ctx->tokenizer_data, ctx->tokenizer_len,
				    ctx->tokenizer->path, NULL) == 0 &&
		    vk == NCK_VOCAB_SENTENCEPIECE &&
		    nck_vocab_sp_special(&b.sp, ctx->tokenizer_data, ctx->tokenizer_len,
					 ctx->tokenizer->path, NULL) == 0;
	if ((rc = hf_tensors(&b)) == 0 && (rc = hf_weights(&b)) == 0 && (rc = hf_config(&b)) == 0 &&
	    (rc = hf_generation_config(&b)) == 0)
		rc = hf_tokenizer(&b);
	for (size_t i = 0; i < b.n; i++)
		nck_gpt_cut_dispose(&b.t[i].cut);
	free(b.t);
	return rc;
}
