/* SPDX-License-Identifier: MIT */
/*
 * Megatron GPT weights by role (see gpt.h). The suffix table covers MCore
 * names of the Transformer Engine spec (norms fused into linear_qkv and
 * linear_fc1 as layer_norm_weight), of the local spec (input_layernorm,
 * pre_mlp_layernorm) and legacy Megatron-LM / NeMo names
 * (query_key_value, dense, dense_h_to_4h, dense_4h_to_h,
 * post_attention_layernorm); spec sharding-hf-trtllm.md A.1, B.1, C.3.
 */
#include "view/gpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

/* More query heads than any model has (the largest have 128): bounds the
 * QKV arithmetic on config values. */
#define NCK_GPT_MAX_HEADS (1u << 20)

/* Name suffixes of each role, MCore (local and TE specs) and legacy. */
static const struct gpt_rule {
	const char *suffix;
	nck_gpt_role role;
} gpt_rules[] = {
	{ "self_attention.linear_qkv.layer_norm_weight", NCK_GPT_IN_LN_W },
	{ "self_attention.linear_qkv.layer_norm_bias", NCK_GPT_IN_LN_B },
	{ "input_layernorm.weight", NCK_GPT_IN_LN_W },
	{ "input_layernorm.bias", NCK_GPT_IN_LN_B },
	{ "input_norm.weight", NCK_GPT_IN_LN_W },
	{ "input_norm.bias", NCK_GPT_IN_LN_B },
	{ "self_attention.linear_qkv.weight", NCK_GPT_QKV_W },
	{ "self_attention.linear_qkv.bias", NCK_GPT_QKV_B },
	{ "self_attention.query_key_value.weight", NCK_GPT_QKV_W },
	{ "self_attention.query_key_value.bias", NCK_GPT_QKV_B },
	{ "self_attention.linear_proj.weight", NCK_GPT_DENSE_W },
	{ "self_attention.linear_proj.bias", NCK_GPT_DENSE_B },
	{ "self_attention.dense.weight", NCK_GPT_DENSE_W },
	{ "self_attention.dense.bias", NCK_GPT_DENSE_B },
	{ "mlp.linear_fc1.layer_norm_weight", NCK_GPT_POST_LN_W },
	{ "mlp.linear_fc1.layer_norm_bias", NCK_GPT_POST_LN_B },
	{ "pre_mlp_layernorm.weight", NCK_GPT_POST_LN_W },
	{ "pre_mlp_layernorm.bias", NCK_GPT_POST_LN_B },
	{ "post_attention_layernorm.weight", NCK_GPT_POST_LN_W },
	{ "post_attention_layernorm.bias", NCK_GPT_POST_LN_B },
	{ "post_attention_norm.weight", NCK_GPT_POST_LN_W },
	{ "post_attention_norm.bias", NCK_GPT_POST_LN_B },
	{ "mlp.linear_fc1.weight", NCK_GPT_FC1_W },
	{ "mlp.linear_fc1.bias", NCK_GPT_FC1_B },
	{ "mlp.dense_h_to_4h.weight", NCK_GPT_FC1_W },
	{ "mlp.dense_h_to_4h.bias", NCK_GPT_FC1_B },
	{ "mlp.linear_fc2.weight", NCK_GPT_FC2_W },
	{ "mlp.linear_fc2.bias", NCK_GPT_FC2_B },
	{ "mlp.dense_4h_to_h.weight", NCK_GPT_FC2_W },
	{ "mlp.dense_4h_to_h.bias", NCK_GPT_FC2_B },
};

/* True if `s` ends with the dotted component(s) `suffix`. */
static bool gpt_ends(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0 && (n == m || s[n - m - 1] == '.');
}

/* Copies a tensor name into a reason: printable ASCII only (a name is
 * untrusted bytes, and reasons go into info.json and log lines), cut at 80. */
static void gpt_name(char *out, size_t len, const char *name)
{
	size_t i = 0, max = len > 84 ? 80 : len - 4; /* room for "..." and the NUL */

	for (; name[i] && i < max; i++)
		out[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	if (name[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

/* Fills a role, once: a second tensor for it (TE and local names of one
 * norm, two embeddings) would leave one out of every view. */
static bool gpt_fill(const nck_tensor **slot, const nck_tensor *t, char *why, size_t why_len)
{
	char name[96];

	if (*slot) {
		gpt_name(name, sizeof(name), t->name);
		snprintf(why, why_len, "two weights for the role of %s", name);
		return false;
	}
	*slot = t;
	return true;
}

/* Puts tensor t in its place; false (with why) for a weight without a role. */
static bool gpt_place(nck_gpt_model *gm, const nck_tensor *t, char *why, size_t why_len)
{
	char name[96];
	size_t start, len;
	uint64_t g;

	if (nck_name_layer(t->name, &start, &len, &g)) {
		for (size_t i = 0; i < sizeof(gpt_rules) / sizeof(gpt_rules[0]); i++)
			if (gpt_ends(t->name, gpt_rules[i].suffix) && g < gm->L)
				return gpt_fill(&gm->layer[g][gpt_rules[i].role], t, why, why_len);
	} else if (gpt_ends(t->name, "embedding.word_embeddings.weight")) {
		return gpt_fill(&gm->emb, t, why, why_len);
	} else if (gpt_ends(t->name, "final_layernorm.weight") || gpt_ends(t->name, "final_norm.weight")) {
		return gpt_fill(&gm->ln_f_w, t, why, why_len);
	} else if (gpt_ends(t->name, "final_layernorm.bias") || gpt_ends(t->name, "final_norm.bias")) {
		return gpt_fill(&gm->ln_f_b, t, why, why_len);
	} else if (gpt_ends(t->name, "output_layer.weight")) {
		return gpt_fill(&gm->lm_head, t, why, why_len);
	}
	gpt_name(name, sizeof(name), t->name);
	snprintf(why, why_len, "%s is not a GPT weight of a known role", name);
	return false;
}

void nck_gpt_model_dispose(nck_gpt_model *gm)
{
	if (!gm)
		return;
	free(gm->layer);
	gm->layer = NULL;
}

/* Checks that every layer has its weights, 2-D where they are matrices. */
static bool gpt_layers_complete(const nck_gpt_model *gm, char *why, size_t why_len)
{
	for (uint64_t g = 0; g < gm->L; g++) {
		const nck_tensor *const *l = gm->layer[g];

		if (!l[NCK_GPT_IN_LN_W] || !l[NCK_GPT_QKV_W] || !l[NCK_GPT_DENSE_W] ||
		    !l[NCK_GPT_POST_LN_W] || !l[NCK_GPT_FC1_W] || !l[NCK_GPT_FC2_W] ||
		    l[NCK_GPT_QKV_W]->ndim != 2 || l[NCK_GPT_DENSE_W]->ndim != 2 ||
		    l[NCK_GPT_FC1_W]->ndim != 2 || l[NCK_GPT_FC2_W]->ndim != 2) {
			snprintf(why, why_len, "layer %llu lacks a weight or one is not 2-D",
				 (unsigned long long)g);
			return false;
		}
	}
	return true;
}

/* True if tensor t (may be NULL) has shape [d0] (d1 == 0) or [d0, d1]. */
static bool gpt_shape(const nck_tensor *t, uint64_t d0, uint64_t d1)
{
	if (!t)
		return true;
	if (d1 == 0)
		return t->ndim == 1 && t->shape[0] == d0;
	return t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1;
}

/* Checks every layer against the dimensions found from layer 0, so that
 * the views' row cuts stay inside every tensor they cut. */
static bool gpt_shapes_agree(const nck_gpt_model *gm, char *why, size_t why_len)
{
	uint64_t qkv = (gm->n + 2 * gm->G) * gm->d, fc1 = gm->layer[0][NCK_GPT_FC1_W]->shape[0];

	if (gm->m.gated && fc1 % 2) {
		snprintf(why, why_len, "a gated fc1 with an odd number of rows");
		return false;
	}
	for (uint64_t g = 0; g < gm->L; g++) {
		const nck_tensor *const *l = gm->layer[g];

		if (!gpt_shape(l[NCK_GPT_QKV_W], qkv, gm->h) || !gpt_shape(l[NCK_GPT_QKV_B], qkv, 0) ||
		    !gpt_shape(l[NCK_GPT_DENSE_W], gm->h, gm->n * gm->d) ||
		    !gpt_shape(l[NCK_GPT_DENSE_B], gm->h, 0) || !gpt_shape(l[NCK_GPT_FC1_W], fc1, gm->h) ||
		    !gpt_shape(l[NCK_GPT_FC1_B], fc1, 0) || !gpt_shape(l[NCK_GPT_FC2_W], gm->h, gm->f) ||
		    !gpt_shape(l[NCK_GPT_FC2_B], gm->h, 0) || !gpt_shape(l[NCK_GPT_IN_LN_W], gm->h, 0) ||
		    !gpt_shape(l[NCK_GPT_IN_LN_B], gm->h, 0) ||
		    !gpt_shape(l[NCK_GPT_POST_LN_W], gm->h, 0) ||
		    !gpt_shape(l[NCK_GPT_POST_LN_B], gm->h, 0)) {
			snprintf(why, why_len, "layer %llu's shapes do not match layer 0's",
				 (unsigned long long)g);
			return false;
		}
	}
	if (!gpt_shape(gm->ln_f_w, gm->h, 0) || !gpt_shape(gm->ln_f_b, gm->h, 0) ||
	    (gm->lm_head && (gm->lm_head->ndim != 2 || gm->lm_head->shape[1] != gm->h))) {
		snprintf(why, why_len, "the final norm or output layer does not match the hidden size");
		return false;
	}
	return true;
}

int nck_gpt_model_load(nck_gpt_model *gm, const nck_catalog *cat, char *why, size_t why_len)
{
	const nck_tensor *qkv;

	memset(gm, 0, sizeof(*gm));
	nck_catalog_model(cat, &gm->m);
	gm->L = gm->m.layers;
	gm->n = gm->m.heads;
	gm->G = gm->m.groups;
	if (!gm->m.gpt || gm->L == 0 || gm->n == 0 || gm->G == 0 || gm->n % gm->G ||
	    gm->n > NCK_GPT_MAX_HEADS || gm->G > gm->n) {
		snprintf(why, why_len, "needs a Megatron GPT with known heads and query groups");
		return -ENOTSUP;
	}
	if (!(gm->layer = calloc(gm->L, sizeof(*gm->layer)))) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < nck_catalog_count(cat); i++) {
		const nck_tensor *t = nck_catalog_at(cat, i);

		if (t->role == NCK_ROLE_WEIGHT && !gpt_place(gm, t, why, why_len))
			goto bad;
	}
	if (!gpt_layers_complete(gm, why, why_len))
		goto bad;
	if (!gm->emb || gm->emb->ndim != 2 || !gm->ln_f_w) {
		snprintf(why, why_len, "no embedding or final norm");
		goto bad;
	}
	qkv = gm->layer[0][NCK_GPT_QKV_W];
	gm->h = gm->emb->shape[1];
	gm->dtype = qkv->dtype;
	gm->d = qkv->shape[0] / (gm->n + 2 * gm->G);
	gm->f = gm->layer[0][NCK_GPT_FC1_W]->shape[0] / (gm->m.gated ? 2 : 1);
	if (gm->d == 0 || gm->d * (gm->n + 2 * gm->G) != qkv->shape[0] || qkv->shape[1] != gm->h) {
		snprintf(why, why_len, "QKV rows do not match %llu heads in %llu groups",
			 (unsigned long long)gm->n, (unsigned long long)gm->G);
		goto bad;
	}
	if (!gpt_shapes_agree(gm, why, why_len))
		goto bad;
	return 0;
bad:
	nck_gpt_model_dispose(gm);
	return -ENOTSUP;
}

uint64_t nck_gpt_qkv_row(const nck_gpt_model *gm, int kind, uint64_t head)
{
	uint64_t Q = gm->n / gm->G;

	/* Group g holds [q_0 .. q_{Q-1} k v], d rows each (spec A.4). */
	if (kind == 0)
		return ((head / Q) * (Q + 2) + head % Q) * gm->d;
	return (head * (Q + 2) + Q + (uint64_t)(kind - 1)) * gm->d;
}

const char *nck_gpt_cfg_str(const nck_yaml_node *root, const char *key)
{
	char path[128];
	const char *s = root ? nck_yaml_get_str(root, key) : NULL;

	if (!s && root) {
		snprintf(path, sizeof(path), "config.%s", key);
		s = nck_yaml_get_str(root, path);
	}
	return s;
}

double nck_gpt_cfg_num(const nck_yaml_node *root, const char *key, double dflt)
{
	const char *s = nck_gpt_cfg_str(root, key);
	char *end;
	double v;

	if (!s)
		return dflt;
	v = strtod(s, &end);
	return end != s && *end == '\0' ? v : dflt;
}

double nck_gpt_cfg_range(const nck_yaml_node *root, const char *key, double dflt, double lo,
			 double hi)
{
	double v = nck_gpt_cfg_num(root, key, dflt);

	return v >= lo && v <= hi ? v : dflt; /* false for NaN */
}

bool nck_gpt_llama3_rope_get(const nck_yaml_node *root, nck_gpt_llama3_rope *out)
{
	const char *target = root ? nck_yaml_get_str(root, "config._target_") : NULL;
	bool on = false;

	if (!root)
		return false;
	if (nck_yaml_get_bool(root, "scale_positional_embedding", &on) < 0 &&
	    nck_yaml_get_bool(root, "config.scale_positional_embedding", &on) < 0)
		on = false;
	on = on || (target && (strstr(target, "Llama31Config") || strstr(target, "Llama32Config")));
	if (!on)
		return false;
	/* NeMo's Llama31Config defaults where the config has no values */
	out->factor = nck_gpt_cfg_range(root, "scale_factor", 8.0, 1e-6, 1e6);
	out->low_freq_factor = nck_gpt_cfg_range(root, "low_freq_factor", 1.0, 1e-6, 1e6);
	out->high_freq_factor = nck_gpt_cfg_range(root, "high_freq_factor", 4.0, 1e-6, 1e6);
	out->old_ctx = nck_gpt_cfg_range(root, "old_context_len", 8192, 1, 1e12);
	return true;
}

/* ---- row cuts ---------------------------------------------------------------- */

void nck_gpt_cut_init(nck_gpt_cut *c, const nck_tensor *src)
{
	memset(c, 0, sizeof(*c));
	c->src = src;
	c->ncols = src->ndim == 2 ? src->shape[1] : 1;
}

const nck_gpt_export nck_gpt_layer_exports[] = {
	{ NCK_GPT_IN_LN_W, NCK_GPT_PART_ALL, "input_layernorm.weight", "attn_norm.weight" },
	{ NCK_GPT_QKV_W, NCK_GPT_PART_Q, "self_attn.q_proj.weight", "attn_q.weight" },
	{ NCK_GPT_QKV_W, NCK_GPT_PART_K, "self_attn.k_proj.weight", "attn_k.weight" },
	{ NCK_GPT_QKV_W, NCK_GPT_PART_V, "self_attn.v_proj.weight", "attn_v.weight" },
	{ NCK_GPT_QKV_B, NCK_GPT_PART_Q, "self_attn.q_proj.bias", "attn_q.bias" },
	{ NCK_GPT_QKV_B, NCK_GPT_PART_K, "self_attn.k_proj.bias", "attn_k.bias" },
	{ NCK_GPT_QKV_B, NCK_GPT_PART_V, "self_attn.v_proj.bias", "attn_v.bias" },
	{ NCK_GPT_DENSE_W, NCK_GPT_PART_ALL, "self_attn.o_proj.weight", "attn_output.weight" },
	{ NCK_GPT_DENSE_B, NCK_GPT_PART_ALL, "self_attn.o_proj.bias", "attn_output.bias" },
	{ NCK_GPT_POST_LN_W, NCK_GPT_PART_ALL, "post_attention_layernorm.weight", "ffn_norm.weight" },
	{ NCK_GPT_FC1_W, NCK_GPT_PART_GATE, "mlp.gate_proj.weight", "ffn_gate.weight" },
	{ NCK_GPT_FC1_B, NCK_GPT_PART_GATE, "mlp.gate_proj.bias", "ffn_gate.bias" },
	{ NCK_GPT_FC1_W, NCK_GPT_PART_UP, "mlp.up_proj.weight", "ffn_up.weight" },
	{ NCK_GPT_FC1_B, NCK_GPT_PART_UP, "mlp.up_proj.bias", "ffn_up.bias" },
	{ NCK_GPT_FC2_W, NCK_GPT_PART_ALL, "mlp.down_proj.weight", "ffn_down.weight" },
	{ NCK_GPT_FC2_B, NCK_GPT_PART_ALL, "mlp.down_proj.bias", "ffn_down.bias" },
};
const size_t nck_gpt_n_layer_exports = sizeof(nck_gpt_layer_exports) / sizeof(nck_gpt_layer_exports[0]);

void nck_gpt_cut_part(nck_gpt_cut *c, const nck_gpt_model *gm, nck_gpt_part part)
{
	const nck_tensor *src = c->src;
	int kind = part == NCK_GPT_PART_Q ? 0 : part == NCK_GPT_PART_K ? 1 : 2;

	switch (part) {
	case NCK_GPT_PART_ALL:
		nck_gpt_cut_rows(c, 0, src->ndim ? src->shape[0] : 1, false);
		break;
	case NCK_GPT_PART_GATE:
		nck_gpt_cut_rows(c, 0, gm->f, false);
		break;
	case NCK_GPT_PART_UP:
		nck_gpt_cut_rows(c, gm->f, gm->f, false);
		break;
	case NCK_GPT_PART_Q:
	case NCK_GPT_PART_K:
	case NCK_GPT_PART_V:
		for (uint64_t h = 0; h < (kind == 0 ? gm->n : gm->G); h++)
			nck_gpt_cut_rows(c, nck_gpt_qkv_row(gm, kind, h), gm->d, false);
		break;
	}
}

void nck_gpt_cut_rows(nck_gpt_cut *c, uint64_t row0, uint64_t rows, bool zero)
{
	struct nck_gpt_piece *p = c->n_pieces ? &c->pieces[c->n_pieces - 1] : NULL;

	if (rows == 0)
		return;
	c->rows += rows;
	if (p && p->zero == zero && (zero || p->row0 + p->rows == row0)) {
		p->rows += rows;
		return;
	}
	if (nck_grow((void **)&c->pieces, &c->cap_pieces, c->n_pieces, sizeof(*p), 4) < 0) {
		c->nomem = true;
		return;
	}
	c->pieces[c->n_pieces++] = (struct nck_gpt_piece){ .row0 = row0, .rows = rows, .zero = zero };
}

void nck_gpt_cut_dispose(nck_gpt_cut *c)
{
	if (!c)
		return;
	free(c->pieces);
	c->pieces = NULL;
	c->n_pieces = c->cap_pieces = 0;
}

uint64_t nck_gpt_cut_bytes(const nck_gpt_cut *c)
{
	return c->rows * (c->src->ndim == 2 ? c->ncols : 1) * nck_dtype_size(c->src->dtype);
}

int nck_gpt_cut_segments(nck_layout *l, const nck_gpt_cut *c)
{
	size_t es = nck_dtype_size(c->src->dtype);
	uint64_t rb = c->src->ndim == 2 ? c->ncols * es : es;
	int rc = 0;

	for (size_t i = 0; i < c->n_pieces && rc == 0; i++) {
		const struct nck_gpt_piece *p = &c->pieces[i];

		if (p->zero)
			rc = nck_layout_zero(l, p->rows * rb);
		else if (c->src->ndim == 2)
			rc = nck_layout_win(l, c->src, c->col0, c->ncols, p->row0 * rb, p->rows * rb);
		else
			rc = nck_layout_win(l, c->src, p->row0, p->rows, 0, p->rows * rb);
	}
	return rc;
}
