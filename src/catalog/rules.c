/* SPDX-License-Identifier: MIT */
/*
 * Parameter kinds of a Megatron GPT: how each tensor is split over tensor-
 * parallel ranks, decided by its name, never guessed from shapes.
 * Spec sharding-hf-trtllm.md A.1 (parameter table), A.2 (rules), A.4 (QKV:
 * whole groups, so a plain dim-0 concatenation), A.5 (gated fc1 as
 * [gate_r; up_r] per rank). Names: MCore (decoder.layers.i.*) and legacy
 * NeMo (language_model.encoder.layers.i.*).
 *
 * Thread-safety: pure functions over constant tables.
 */
#include "catalog/catalog_int.h"

#include <string.h>

/* Name suffixes and their kinds; the first match wins. */
static const struct param_rule {
	const char *suffix;
	nck_param_kind kind;
} param_rules[] = {
	{ "._extra_state", NCK_PARAM_NON_WEIGHT },
	{ "self_attention.linear_qkv.weight", NCK_PARAM_COLUMN },
	{ "self_attention.linear_qkv.bias", NCK_PARAM_COLUMN },
	{ "self_attention.query_key_value.weight", NCK_PARAM_COLUMN },
	{ "self_attention.query_key_value.bias", NCK_PARAM_COLUMN },
	{ "mlp.linear_fc1.weight", NCK_PARAM_COLUMN_GATED },
	{ "mlp.linear_fc1.bias", NCK_PARAM_COLUMN_GATED },
	{ "mlp.dense_h_to_4h.weight", NCK_PARAM_COLUMN_GATED },
	{ "mlp.dense_h_to_4h.bias", NCK_PARAM_COLUMN_GATED },
	{ "mlp.dense_h_to_4h_2.weight", NCK_PARAM_COLUMN },
	{ "mlp.dense_h_to_4h_2.bias", NCK_PARAM_COLUMN },
	{ "self_attention.linear_proj.weight", NCK_PARAM_ROW },
	{ "self_attention.dense.weight", NCK_PARAM_ROW },
	{ "mlp.linear_fc2.weight", NCK_PARAM_ROW },
	{ "mlp.dense_4h_to_h.weight", NCK_PARAM_ROW },
	{ "embedding.word_embeddings.weight", NCK_PARAM_VOCAB },
	{ "output_layer.weight", NCK_PARAM_VOCAB },
	{ "word_embeddings.weight", NCK_PARAM_VOCAB },
};

/* True if `s` ends with `suffix` at a name-component boundary. */
static bool rules_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	if (m > n || strcmp(s + n - m, suffix) != 0)
		return false;
	return m == n || suffix[0] == '.' || s[n - m - 1] == '.';
}

nck_param_kind nck_param_kind_of(const char *key, const nck_model_cfg *cfg)
{
	for (size_t i = 0; i < sizeof(param_rules) / sizeof(param_rules[0]); i++) {
		if (!rules_ends_with(key, param_rules[i].suffix))
			continue;
		if (param_rules[i].kind == NCK_PARAM_COLUMN_GATED && !cfg->gated)
			return NCK_PARAM_COLUMN;
		return param_rules[i].kind;
	}
	return NCK_PARAM_REPLICATED;
}

bool nck_param_is_gpt_key(const char *key)
{
	return strstr(key, "decoder.layers.") || strstr(key, "language_model.") ||
	       strstr(key, "embedding.word_embeddings.") || strstr(key, "decoder.final_layernorm.");
}

bool nck_param_layer(const char *key, size_t *start, size_t *len, uint64_t *layer)
{
	/* Candidates: "layers." at the start, then every ".layers.". */
	for (const char *p = key; p; p = strstr(p + 1, ".layers.")) {
		const char *d;
		size_t n = 0;
		uint64_t v = 0;

		if (p == key && strncmp(key, "layers.", 7) != 0)
			continue;
		d = p == key ? key + 7 : p + 8;
		while (d[n] >= '0' && d[n] <= '9' && n < 9)
			v = v * 10 + (uint64_t)(d[n++] - '0');
		if (n > 0 && (d[n] == '.' || d[n] == '\0')) {
			*start = (size_t)(d - key);
			*len = n;
			*layer = v;
			return true;
		}
	}
	return false;
}
