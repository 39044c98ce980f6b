/* SPDX-License-Identifier: MIT */
/*
 * The few config facts the merge rules need: gated MLP, tied embeddings,
 * layer count, parallel sizes (cross-checked with the listing), the vocab
 * padding divisor, and V from the tokenizer artifact.
 *
 * Keys: NeMo 1 model_config.yaml (activation: fast-swiglu,
 * share_embeddings_and_output_weights, make_vocab_size_divisible_by,
 * tensor_model_parallel_size, tokenizer.model: nemo:<artifact>); NeMo 2
 * context/model.yaml (the same under `config:`, gated_linear_unit); spec
 * nemo-layouts.md §2.2, §1.5, §4.1; sharding-hf-trtllm.md A.3, A.7 step 1.
 *
 * Thread-safety: runs once while a catalog is built.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/vocab.h"
#include "format/yamlcfg.h"

/* Largest config or tokenizer file read (they are KBs to a few MBs). */
#define CFG_MAX_BYTES (64u << 20)

/* Looks a key up at the top level, then under `config.` (NeMo 2). */
static const nck_yaml_node *cfg_get(const nck_yaml_node *root, const char *key)
{
	char path[128];
	const nck_yaml_node *n = nck_yaml_get(root, key);

	if (n)
		return n;
	snprintf(path, sizeof(path), "config.%s", key);
	return nck_yaml_get(root, path);
}

/* An integer at key (top level or config.), or `dflt`. */
static int64_t cfg_int(const nck_yaml_node *root, const char *key, int64_t dflt)
{
	char path[128];
	int64_t v;

	if (nck_yaml_get_int(root, key, &v) == 0)
		return v;
	snprintf(path, sizeof(path), "config.%s", key);
	return nck_yaml_get_int(root, path, &v) == 0 ? v : dflt;
}

/* A boolean at key (top level or config.), or `dflt`. */
static bool cfg_bool(const nck_yaml_node *root, const char *key, bool dflt)
{
	char path[128];
	bool v;

	if (nck_yaml_get_bool(root, key, &v) == 0)
		return v;
	snprintf(path, sizeof(path), "config.%s", key);
	return nck_yaml_get_bool(root, path, &v) == 0 ? v : dflt;
}

/* Finds the member a `nemo:<name>` reference (or a bare basename) names. */
static const nck_entry *cfg_artifact(const nck_container *c, const char *ref)
{
	const char *base;

	if (!ref)
		return NULL;
	if (strncmp(ref, "nemo:", 5) == 0)
		ref += 5;
	base = strrchr(ref, '/') ? strrchr(ref, '/') + 1 : ref;
	for (size_t i = 0; i < c->n_entries; i++) {
		const char *p = c->entries[i].path, *pb = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;

		if (c->entries[i].kind == NCK_ENTRY_FILE && strcmp(pb, base) == 0)
			return &c->entries[i];
	}
	return NULL;
}

/* Reads the YAML config's facts into cfg; returns the tokenizer it names. */
static int cfg_from_yaml(nck_model_cfg *cfg, const nck_entry **tok, const nck_container *c,
			 const nck_entry *e, nck_diag *diag)
{
	const nck_yaml_node *root = NULL, *act;
	void *data = NULL;
	nck_arena arena;
	size_t len;
	int rc;

	nck_arena_init(&arena);
	if ((rc = nck_container_slurp(&data, &len, c, e, CFG_MAX_BYTES, diag)) < 0 ||
	    (rc = nck_yaml_parse((nck_yaml_node **)&root, &arena, data, len, e->path, diag)) < 0)
		goto out;
	cfg->have = true;
	cfg->num_layers = cfg_int(root, "num_layers", 0);
	cfg->heads = cfg_int(root, "num_attention_heads", 0);
	cfg->groups = cfg_int(root, "num_query_groups", 0);
	cfg->ffn = cfg_int(root, "ffn_hidden_size", 0);
	cfg->tp = cfg_int(root, "tensor_model_parallel_size", 0);
	cfg->pp = cfg_int(root, "pipeline_model_parallel_size", 0);
	cfg->divisible_by = cfg_int(root, "make_vocab_size_divisible_by", 128);
	if (cfg->divisible_by < 1 || cfg->divisible_by > NCK_CATALOG_MAX_DIVISIBLE)
		cfg->divisible_by = 128;
	cfg->tied = cfg_bool(root, "share_embeddings_and_output_weights", false);
	act = cfg_get(root, "activation");
	cfg->gated = cfg_bool(root, "gated_linear_unit", false) ||
		     (act && act->kind == NCK_YAML_SCALAR && strstr(act->scalar, "glu"));
	*tok = cfg_artifact(c, nck_yaml_get_str(root, "tokenizer.model"));
	if (!*tok)
		*tok = cfg_artifact(c, nck_yaml_get_str(root, "tokenizer.model_path"));
	if (!*tok)
		*tok = cfg_artifact(c, nck_yaml_get_str(root, "tokenizer.vocab_file"));
out:
	nck_arena_dispose(&arena);
	free(data);
	return rc;
}

int nck_model_cfg_load(nck_model_cfg *out, const nck_container *c, const nck_layout *layout,
		       nck_diag *diag)
{
	const nck_entry *tok = NULL;
	nck_vocab_kind kind;
	void *data = NULL;
	nck_diag tdiag;
	size_t len;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->divisible_by = 128;
	if (layout->kind == NCK_LAYOUT_NONE)
		return 0;
	if (layout->config && layout->kind != NCK_LAYOUT_QNEMO &&
	    (rc = cfg_from_yaml(out, &tok, c, layout->config, diag)) < 0)
		return rc;
	if (!tok)
		tok = layout->tokenizer;
	if (!tok)
		return 0;
	out->tokenizer = tok;
	nck_diag_init(&tdiag);
	if ((rc = nck_container_slurp(&data, &len, c, tok, CFG_MAX_BYTES, &tdiag)) == 0)
		rc = nck_vocab_count(&out->vocab, &kind, data, len, tok->path, &tdiag);
	free(data);
	if (rc == -ENOMEM)
		return nck_diag_set(diag, rc, tok->path, -1, "out of memory");
	if (rc < 0) {
		out->vocab = 0;
		nck_diag_format(&tdiag, out->vocab_error, sizeof(out->vocab_error));
	}
	return 0;
}

const char *nck_artifact_name(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t hex = strspn(base, "0123456789abcdef");

	return hex == 32 && base[32] == '_' && base[33] ? base + 33 : base;
}
