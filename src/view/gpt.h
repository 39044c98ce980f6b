/* SPDX-License-Identifier: MIT */
/*
 * nck_gpt_model: a Megatron GPT's weights by role, for the views that
 * rename them (qnemo/ with TensorRT-LLM's names, hf/ with Hugging Face's):
 * the embedding, final norm and output layer, and per global layer its
 * norms, QKV, attention output, fc1 and fc2 (weights and biases), found by
 * name suffix for MCore (local and Transformer Engine specs) and legacy
 * Megatron names alike. One table of suffixes (gpt.c) serves every view.
 *
 * Also the few NeMo config values those views copy into their configs
 * (rope base, norm epsilon, sequence length), looked up at the top level
 * or under `config:` (NeMo 2).
 *
 * Ownership: a model borrows the catalog's tensors; nck_gpt_model_dispose()
 * frees its layer table. Thread-safety: built once; read-only afterwards.
 */
#ifndef NCK_VIEW_GPT_H
#define NCK_VIEW_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "format/yamlcfg.h"
#include "nemockpt/catalog.h"
#include "view/layout.h"

/* Roles of a layer's tensors. */
typedef enum nck_gpt_role {
	NCK_GPT_IN_LN_W,
	NCK_GPT_IN_LN_B,
	NCK_GPT_QKV_W,
	NCK_GPT_QKV_B,
	NCK_GPT_DENSE_W,
	NCK_GPT_DENSE_B,
	NCK_GPT_POST_LN_W,
	NCK_GPT_POST_LN_B,
	NCK_GPT_FC1_W,
	NCK_GPT_FC1_B,
	NCK_GPT_FC2_W,
	NCK_GPT_FC2_B,
	NCK_GPT_ROLES
} nck_gpt_role;

typedef struct nck_gpt_model {
	nck_model_facts m;
	uint64_t h;     /* hidden size */
	uint64_t n, G;  /* query heads, query groups (KV heads) */
	uint64_t d;     /* head dim */
	uint64_t f;     /* ffn size (rows of each fc1 half when gated) */
	uint64_t L;     /* layers */
	nck_dtype dtype; /* of the QKV weights: the model's */
	const nck_tensor *emb, *ln_f_w, *ln_f_b, *lm_head; /* lm_head NULL when tied */
	const nck_tensor *(*layer)[NCK_GPT_ROLES];          /* per global layer */
} nck_gpt_model;

/*
 * Finds every weight's role and the dimensions. 0; -ENOTSUP (with the
 * reason in why, printable ASCII) when the catalog is not a GPT every
 * weight of which has exactly one role, or its shapes do not agree; -ENOMEM.
 */
int nck_gpt_model_load(nck_gpt_model *out, const nck_catalog *cat, char *why, size_t why_len);

/* Frees the layer table. NULL-safe, and safe on a zeroed model. */
void nck_gpt_model_dispose(nck_gpt_model *gm);

/* The first row, in the merged group-interleaved QKV (spec A.4, B.2), of
 * query head i (kind 0), or of KV head g's key (kind 1) or value (kind 2). */
uint64_t nck_gpt_qkv_row(const nck_gpt_model *gm, int kind, uint64_t head);

/*
 * A renamed tensor as rows of a window of one logical tensor: pieces of
 * consecutive source rows (or zero rows), in order. 1-D tensors are cut the
 * same way, one element per row.
 */
typedef struct nck_gpt_cut {
	const nck_tensor *src;
	uint64_t col0, ncols;    /* the window (2-D); every element of a 1-D tensor */
	struct nck_gpt_piece {
		uint64_t row0, rows;
		bool zero;
	} *pieces;               /* malloc'ed */
	size_t n_pieces, cap_pieces;
	uint64_t rows;           /* all pieces */
	bool nomem;              /* a piece could not be added */
} nck_gpt_cut;

/* Starts a cut of src (the whole width). */
void nck_gpt_cut_init(nck_gpt_cut *c, const nck_tensor *src);

/* Appends rows [row0, row0+rows) (or zero rows), merged with the previous
 * piece when they continue it; sets c->nomem when memory runs out. */
void nck_gpt_cut_rows(nck_gpt_cut *c, uint64_t row0, uint64_t rows, bool zero);

/* Frees the pieces. NULL-safe. */
void nck_gpt_cut_dispose(nck_gpt_cut *c);

/* Which rows of its source tensor an exported tensor (hf/, gguf/) holds. */
typedef enum nck_gpt_part {
	NCK_GPT_PART_ALL,  /* every row */
	NCK_GPT_PART_Q,    /* a QKV's query rows, head by head (spec A.4) */
	NCK_GPT_PART_K,    /* its key rows, KV head by KV head */
	NCK_GPT_PART_V,    /* its value rows */
	NCK_GPT_PART_GATE, /* fc1's first f rows (spec A.5) */
	NCK_GPT_PART_UP,   /* fc1's last f rows */
} nck_gpt_part;

/* One tensor of a layer as Hugging Face and llama.cpp name it. */
typedef struct nck_gpt_export {
	nck_gpt_role role;
	nck_gpt_part part;
	const char *hf;   /* after "model.layers.N." */
	const char *gguf; /* after "blk.N." */
} nck_gpt_export;

/* A layer's tensors, in the order both converters write them. */
extern const nck_gpt_export nck_gpt_layer_exports[];
extern const size_t nck_gpt_n_layer_exports;

/* Cuts the rows of `part` of c->src (a started cut). */
void nck_gpt_cut_part(nck_gpt_cut *c, const nck_gpt_model *gm, nck_gpt_part part);

/* Bytes of the cut (rows x window x element size). */
uint64_t nck_gpt_cut_bytes(const nck_gpt_cut *c);

/* Appends the cut's bytes to a layout: windows of its source, zeros. -ENOMEM. */
int nck_gpt_cut_segments(nck_layout *l, const nck_gpt_cut *c);

/* A config value at `key` (top level, else under config.): a number, or
 * dflt when absent or not a number. */
double nck_gpt_cfg_num(const nck_yaml_node *root, const char *key, double dflt);

/* A config number that is finite and within [lo, hi], else dflt (a config
 * is untrusted: strtod gives inf, nan and 1e300 too). */
double nck_gpt_cfg_range(const nck_yaml_node *root, const char *key, double dflt, double lo,
			 double hi);

/* The same for a string (a scalar's text), or NULL. */
const char *nck_gpt_cfg_str(const nck_yaml_node *root, const char *key);

/* Llama 3.1's rope scaling (Hugging Face rope_type "llama3", spec B.4). */
typedef struct nck_gpt_llama3_rope {
	double factor, low_freq_factor, high_freq_factor, old_ctx;
} nck_gpt_llama3_rope;

/*
 * True when the config asks for Llama 3.1 rope scaling (NeMo 1's
 * scale_positional_embedding, NeMo 2's Llama31Config / Llama32Config
 * classes), with its numbers in *out: the config's scale_factor,
 * low_freq_factor, high_freq_factor, old_context_len where finite and in
 * range, else NeMo's Llama31Config defaults (8, 1, 4, 8192). hf/ and gguf/
 * read the same values.
 */
bool nck_gpt_llama3_rope_get(const nck_yaml_node *root, nck_gpt_llama3_rope *out);

#endif
