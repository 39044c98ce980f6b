/* SPDX-License-Identifier: MIT */
/*
 * The body of struct nck_catalog and the interfaces between the catalog's
 * files: the listing helpers that layout detection shares (detect.c), the
 * model config (config.c), the parameter-kind rules (rules.c), the
 * per-layout readers, each detecting the layouts it reads (legacy.c, dist.c,
 * qnemo.c), and the builder (catalog.c) that owns the reader table and the
 * tensor table.
 *
 * Thread-safety: built by one thread; read-only afterwards.
 */
#ifndef NCK_CATALOG_CATALOG_INT_H
#define NCK_CATALOG_CATALOG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/build.h"
#include "container/container.h"
#include "nemockpt/catalog.h"
#include "util/arena.h"

#define NCK_CATALOG_MAX_WARNINGS 16
/*
 * Bounds on what metadata may make the catalog hold, so that memory stays a
 * small multiple of the metadata read and `nemockpt info` stays under
 * 256 MiB on any input (issue 12; docs/RELIABILITY.md has the figures).
 * Real checkpoints are far below: a 175B GPT has ~1,200 tensors, a NeMo
 * MoE with 64 unstacked experts per layer ~20,000. Beyond a limit the
 * catalog fails with one line naming it (-E2BIG).
 */
#define NCK_CATALOG_MAX_TENSORS 65536u
#define NCK_CATALOG_MAX_CHUNKS (256u << 10)
#define NCK_CATALOG_MAX_NAME_BYTES (8u << 20)
#define NCK_CATALOG_MAX_RANKS 1024
/* make_vocab_size_divisible_by values above this are ignored (the default
 * 128 applies): real ones are small powers of two, and padding arithmetic
 * must not overflow. */
#define NCK_CATALOG_MAX_DIVISIBLE 65536

/* ---- layout ------------------------------------------------------------- */

/*
 * The shape of a layout, for the code besides its reader: config.c (NONE:
 * nothing to load; QNEMO: its config.json is no YAML), catalog.c (DIST: the
 * config's TP/PP are the run's; QNEMO: no Megatron GPT for the views) and
 * legacy.c (MEGATRON: the args in the pickle). A new layout needs a value
 * only when that code must tell it apart.
 */
typedef enum nck_layout_kind {
	NCK_LAYOUT_NONE = 0,     /* no weights recognized: raw/ only */
	NCK_LAYOUT_NEMO_SINGLE,  /* model_weights.ckpt */
	NCK_LAYOUT_NEMO_TP,      /* mp_rank_XX/model_weights.ckpt */
	NCK_LAYOUT_NEMO_TP_PP,   /* tp_rank_XX_pp_rank_YYY/model_weights.ckpt */
	NCK_LAYOUT_DIST,         /* a torch_dist or zarr directory (metadata.json) */
	NCK_LAYOUT_QNEMO,        /* config.json + rank*.safetensors */
	NCK_LAYOUT_MEGATRON,     /* iter_NNNNNNN/mp_rank_XX[_YYY]/model_optim_rng.pt */
	NCK_LAYOUT_SAFETENSORS,  /* *.safetensors at the root (a Hugging Face directory) */
} nck_layout_kind;

/* One per-rank weights file. */
typedef struct nck_rank_file {
	uint32_t tp, pp;
	const nck_entry *entry;
} nck_rank_file;

typedef struct nck_layout {
	nck_layout_kind kind;
	const char *format;          /* "nemo", "nemo2", "qnemo", "megatron" */
	const char *name;            /* "single", "tp", "tp_pp", "torch_dist", "zarr", "trtllm" */
	uint32_t tp, pp;             /* from the listing */
	nck_rank_file *ranks;        /* tp*pp files, index pp*tp + tp (legacy, megatron, qnemo) */
	size_t n_ranks;
	const char *dist_dir;        /* NCK_LAYOUT_DIST: directory of metadata.json ("" = root) */
	const nck_entry *config;     /* model_config.yaml, context/model.yaml or config.json */
	const nck_entry *tokenizer;  /* the tokenizer artifact, if any */
} nck_layout;

/* ---- detection helpers (detect.c) ---------------------------------------- */

/*
 * What the readers' detect callbacks share: they look at the container's
 * listing only (no member is read). Spec nemo-layouts.md §0, §2.1, §5, §7.
 */

/* The file entry at `path`, or NULL. */
const nck_entry *nck_detect_find(const nck_container *c, const char *path);

/* True if some entry lies under directory `dir`. */
bool nck_detect_has_dir(const nck_container *c, const char *dir);

/*
 * Collects the per-rank files named `file` in rank directories under
 * `prefix` (mp_rank_TT[_PPP]/, tp_rank_TT_pp_rank_PPP/) into l->ranks, l->tp,
 * l->pp, l->n_ranks. 1 when there are some and the grid is complete; 0 when
 * there are none (l untouched); -EBADMSG (a rank missing or twice, too many
 * ranks) with the reason in diag; -ENOMEM.
 */
int nck_detect_ranks(nck_layout *l, const nck_container *c, nck_arena *arena, const char *prefix,
		     const char *file, nck_diag *diag);

/* Megatron-LM: the directory of the newest iteration ("iter_NNNNNNN/"), or
 * "release/" when there is none, or NULL (also when out of memory). */
const char *nck_detect_megatron_iter(const nck_container *c, nck_arena *arena);

/* The tokenizer artifact by its name, or NULL. */
const nck_entry *nck_detect_tokenizer(const nck_container *c);

/* ---- model config ------------------------------------------------------- */

typedef struct nck_model_cfg {
	bool have;             /* a config was found and parsed */
	bool gated;            /* fc1 holds [gate; up] (SwiGLU and friends) */
	bool tied;             /* share_embeddings_and_output_weights */
	int64_t num_layers;    /* 0 when unknown */
	int64_t heads, groups; /* num_attention_heads, num_query_groups; 0 when unknown */
	int64_t ffn;           /* ffn_hidden_size; 0 when unknown */
	int64_t tp, pp;        /* as the config says; 0 when absent */
	int64_t divisible_by;  /* make_vocab_size_divisible_by (default 128) */
	uint64_t vocab;        /* V from the tokenizer artifact; 0 when unknown */
	char vocab_error[256]; /* why the tokenizer gave no V (a warning, not an error) */
	const nck_entry *tokenizer; /* the artifact V came from (the config's nemo: reference) */
} nck_model_cfg;

/* Reads the config and the tokenizer named by the layout. Missing pieces
 * leave defaults; a malformed config is an error (-EBADMSG with file,
 * offset); an unreadable tokenizer only leaves V unknown (vocab_error). */
int nck_model_cfg_load(nck_model_cfg *out, const nck_container *c, const nck_layout *layout,
		       nck_diag *diag);

/* ---- parameter kinds ---------------------------------------------------- */

typedef enum nck_param_kind {
	NCK_PARAM_REPLICATED = 0, /* identical on every TP rank: take rank 0 */
	NCK_PARAM_COLUMN,         /* concatenated on dim 0 (QKV by whole groups too) */
	NCK_PARAM_COLUMN_GATED,   /* [gate_r; up_r] per rank: halves concatenated separately */
	NCK_PARAM_ROW,            /* concatenated on dim 1 */
	NCK_PARAM_VOCAB,          /* concatenated on dim 0, then cut to the padded vocabulary */
	NCK_PARAM_NON_WEIGHT,     /* _extra_state and the like: rank 0, listed apart */
} nck_param_kind;

/* Classifies a (layer-renumbered) key of a Megatron GPT. */
nck_param_kind nck_param_kind_of(const char *key, const nck_model_cfg *cfg);

/* True if `key` is one of a Megatron GPT's (decoder/language_model names). */
bool nck_param_is_gpt_key(const char *key);

/*
 * Finds the layer number in ".layers.<n>." of `key`; returns true and sets
 * start and len to the digits' position, *layer to their value.
 */
bool nck_param_layer(const char *key, size_t *start, size_t *len, uint64_t *layer);

/* ---- the catalog ---------------------------------------------------------- */

/* A file chunks point into. */
typedef struct nck_catalog_file {
	const nck_entry *entry;
	nck_src *src; /* member source, owned */
} nck_catalog_file;

struct nck_catalog {
	nck_container *container; /* owned when own_container */
	bool own_container;
	nck_arena arena;          /* tensors' names and chunks, warnings */
	nck_tensor *tensors;      /* sorted by name once built */
	size_t n_tensors, cap_tensors;
	nck_catalog_file *files;
	size_t n_files, cap_files;
	nck_layout layout;
	const struct nck_catalog_reader *reader; /* whose detect matched; NULL: none */
	nck_model_cfg cfg;
	nck_catalog_info info;
	nck_model_facts facts;    /* computed once the tensors are sorted */
	nck_split *splits;        /* per tensor, same order */
	const char *warnings[NCK_CATALOG_MAX_WARNINGS + 1];
	size_t n_warnings;
	size_t n_chunks, name_bytes; /* totals, against the limits */
	const char *over_limit;      /* the limit nck_catalog_add() hit, or NULL */
};

/* Adds a tensor (name copied) with room for n_chunks chunks; NULL on ENOMEM
 * or past a limit (then cat->over_limit says which, and the build fails
 * with -E2BIG whatever error the reader reports). */
nck_tensor *nck_catalog_add(nck_catalog *cat, const char *name, size_t n_chunks);

/* Returns the file index of `e`, opening its source on first use. */
int nck_catalog_add_file(nck_catalog *cat, const nck_entry *e, uint32_t *index_out, nck_diag *diag);

/* Cuts tensor `t` (and its chunks) to its first `keep` rows: the cut of
 * embedding and output tensors to the padded vocabulary. */
void nck_tensor_cut_rows(nck_tensor *t, uint64_t keep);

/* V_1 = ceil(V / D) * D from the config, recorded in the summary; 0 when V
 * is unknown. */
uint64_t nck_catalog_padded_vocab(nck_catalog *cat);

/* Computes cat->facts and the per-tensor splits once the table is sorted. -ENOMEM. */
int nck_catalog_facts_build(nck_catalog *cat);

/* Records a warning (formatted, arena-copied); silently drops past the limit. */
void nck_catalog_warn(nck_catalog *cat, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- per-layout readers --------------------------------------------------- */

/*
 * A checkpoint layout and its reader (libarchive's registration pattern):
 * how the layout is recognized from the listing, and the function that
 * fills the catalog's tensor table for it. catalog.c asks the entries of its
 * table in order; the first whose detect matches decides the layout and
 * reads it. Adding a layout is one entry in its reader's file plus one line
 * in that table (plus an nck_layout_kind when the shared code must tell it
 * apart). Several entries may share one read function (dist.c has four).
 */
typedef struct nck_catalog_reader {
	const char *name;
	/*
	 * Looks at the listing: 1 (this layout: *out filled: kind, format,
	 * name, and what the reader needs), 0 (not this one; *out may have
	 * been written and is discarded), or a negative errno with diag (a
	 * contradictory listing: no later entry is asked). *out arrives
	 * zeroed but for tp = pp = 1 and the tokenizer found by name.
	 */
	int (*detect)(nck_layout *out, const nck_container *c, nck_arena *arena, nck_diag *diag);
	/* Adds the layout's tensors (nck_catalog_add); 0 or a negative errno with diag. */
	int (*read)(nck_catalog *cat, nck_diag *diag);
} nck_catalog_reader;

/* NeMo 2: context/ and weights/metadata.json (dist.c). */
extern const nck_catalog_reader nck_catalog_nemo2_dist_reader;

/* NeMo 1 distributed: model_weights/metadata.json (dist.c). */
extern const nck_catalog_reader nck_catalog_nemo_dist_reader;

/* NeMo 1 per-rank torch files: model_weights.ckpt, mp_rank_TT/, tp_rank_TT_pp_rank_PPP/
 * (legacy.c). */
extern const nck_catalog_reader nck_catalog_nemo_legacy_reader;

/* .qnemo TensorRT-LLM checkpoints merged back to TP=1, PP=1: config.json and
 * rank0.safetensors (qnemo.c). */
extern const nck_catalog_reader nck_catalog_qnemo_reader;

/* Megatron-LM per-rank torch files: [iter_N/ or release/]mp_rank_TT[_PPP]/model_optim_rng.pt
 * (legacy.c). */
extern const nck_catalog_reader nck_catalog_megatron_legacy_reader;

/* Megatron-LM torch_dist: iter_N/metadata.json (dist.c). */
extern const nck_catalog_reader nck_catalog_megatron_dist_reader;

/* A torch_dist directory, or a plain PyTorch DCP checkpoint, at the root:
 * .metadata with metadata.json or __0_0.distcp (dist.c). */
extern const nck_catalog_reader nck_catalog_root_dist_reader;

/* Plain safetensors files (Hugging Face directories): *.safetensors at the root (qnemo.c). */
extern const nck_catalog_reader nck_catalog_safetensors_reader;

/*
 * Detects the layout from the container's listing: asks catalog.c's table
 * in order; *reader_out is the reader whose detect matched, or NULL
 * (NCK_LAYOUT_NONE: no weights recognized, raw/ only). 0; -EBADMSG for a
 * contradictory listing (missing ranks) with the reason in diag; -ENOMEM.
 */
int nck_layout_detect(nck_layout *out, const nck_catalog_reader **reader_out,
		      const nck_container *c, nck_arena *arena, nck_diag *diag);

#endif
