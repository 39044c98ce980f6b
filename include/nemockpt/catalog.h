/* SPDX-License-Identifier: MIT */
/*
 * nck_catalog: every supported checkpoint as one list of logical tensors,
 * each the tensor a TP=1, PP=1 model would hold (merged names with global
 * layer numbers, global shapes), whatever TP/PP and format it was saved
 * with. Each tensor is a set of chunks; a chunk maps a box of the logical
 * tensor to strided bytes of one file of the container. Views (merged
 * safetensors, ranks, NeMo at another TP/PP, TensorRT-LLM, quantized) are
 * layouts over these chunks; nothing is copied when the catalog is built.
 *
 * Ownership: tensors, chunks and names belong to the catalog until
 * nck_catalog_close().
 * Thread-safety: immutable after open; reads may run concurrently.
 */
#ifndef NCK_NEMOCKPT_CATALOG_H
#define NCK_NEMOCKPT_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"
#include "nemockpt/dtype.h"

typedef struct nck_catalog nck_catalog;

typedef enum nck_tensor_role {
	NCK_ROLE_WEIGHT = 0,     /* a model weight: part of every weight view */
	NCK_ROLE_NON_WEIGHT = 1, /* Transformer Engine _extra_state, optimizer state, buffers */
} nck_tensor_role;

/* A box of a logical tensor and where its elements are. */
typedef struct nck_chunk {
	uint32_t file;                 /* index into the catalog's files */
	uint64_t base;                 /* byte offset in that file of the box's first element */
	uint64_t offset[NCK_MAX_DIMS]; /* box origin in the logical tensor */
	uint64_t shape[NCK_MAX_DIMS];  /* box extent */
	int64_t stride[NCK_MAX_DIMS];  /* source strides, in elements (never negative) */
} nck_chunk;

typedef struct nck_tensor {
	const char *name;
	nck_dtype dtype;
	uint32_t ndim;
	uint64_t shape[NCK_MAX_DIMS];
	nck_tensor_role role;
	const nck_chunk *chunks; /* disjoint boxes that tile the tensor */
	size_t n_chunks;
} nck_tensor;

/* What the checkpoint is (for `nemockpt info` and info.json). */
typedef struct nck_catalog_info {
	const char *format;      /* "nemo", "nemo2", "qnemo", "megatron", "unknown" */
	const char *layout;      /* "single", "tp", "tp_pp", "torch_dist", "zarr", "trtllm", ... */
	const char *model;       /* "gpt" or "other" (cataloged tensor by tensor) */
	uint32_t tp, pp;         /* as saved (directory listing is the ground truth) */
	nck_dtype dtype;         /* the most common weight dtype */
	uint64_t n_weights;      /* weight tensors */
	uint64_t n_params;       /* elements of weight tensors */
	uint64_t weight_bytes;
	uint64_t vocab_size;     /* V from the tokenizer; 0 when unknown */
	uint64_t padded_vocab;   /* V_1 rows kept for embedding/output; 0 when all rows are kept */
	const char *const *warnings; /* NULL-terminated */
} nck_catalog_info;

/*
 * Opens the checkpoint at `path` (a .nemo/.qnemo tar or a directory) and
 * builds its catalog, reading only metadata. Errors: those of the container
 * layer, -EBADMSG for malformed metadata (diag: file, offset), -ENOTSUP for
 * a layout or encoding this version cannot read, -ENOMEM.
 */
int nck_catalog_open(nck_catalog **out, const char *path, nck_diag *diag);

/* Releases the catalog and its container. NULL-safe. */
void nck_catalog_close(nck_catalog *cat);

/* The summary. Borrowed. */
const nck_catalog_info *nck_catalog_get_info(const nck_catalog *cat);

/* Number of tensors, and tensor i (sorted by name). */
size_t nck_catalog_count(const nck_catalog *cat);
const nck_tensor *nck_catalog_at(const nck_catalog *cat, size_t i);

/* Finds a tensor by name (binary search), or NULL. */
const nck_tensor *nck_catalog_find(const nck_catalog *cat, const char *name);

/* The path (inside the container) of file `file` of a chunk. Borrowed. */
const char *nck_catalog_file_path(const nck_catalog *cat, uint32_t file);

/*
 * Members of the container that go with the weights: the model config
 * (model_config.yaml, context/model.yaml or config.json) and the tokenizer
 * artifact. Each is a path inside the container, or NULL. Borrowed.
 */
void nck_catalog_artifacts(const nck_catalog *cat, const char **config_out,
			   const char **tokenizer_out);

/* The base name of a member's path without NeMo's "<32 hex digits>_"
 * artifact prefix (nemo-layouts.md §1.5): "tokenizer.model" for
 * "a/4978…_tokenizer.model". Points into `path`. */
const char *nck_artifact_name(const char *path);

/*
 * The permission bits (0777 mask) common to every file the catalog reads
 * (weights, config, tokenizer): views computed from them show no wider
 * mode. 0777 when it reads no file.
 */
uint32_t nck_catalog_source_mode(const nck_catalog *cat);

/* How a weight is split over tensor-parallel ranks (spec A.1, A.2). */
typedef enum nck_split {
	NCK_SPLIT_NONE = 0, /* replicated on every rank */
	NCK_SPLIT_COLUMN,   /* dim 0 in T contiguous parts (QKV: whole query groups) */
	NCK_SPLIT_GATED,    /* fc1 [gate; up]: each half in T parts, rank r holds [gate_r; up_r] */
	NCK_SPLIT_ROW,      /* dim 1 in T contiguous parts */
	NCK_SPLIT_VOCAB,    /* dim 0, after zero rows pad it to the TP's padded vocabulary */
} nck_split;

/* What re-sharding views need to know of the model. */
typedef struct nck_model_facts {
	bool gpt;              /* Megatron GPT names: the views that re-shard apply */
	bool tied, gated;
	uint64_t layers;       /* decoder layers (from the names); 0 when none */
	uint64_t heads, groups; /* query heads and query groups; 0 when unknown */
	uint64_t ffn;          /* ffn_hidden_size; 0 when unknown */
	uint64_t vocab;        /* V from the tokenizer; 0 when unknown */
	uint64_t divisible_by; /* make_vocab_size_divisible_by */
	/* Greatest common divisors over the weights of each split rule (0:
	 * none): a TP size T splits every such tensor iff it divides them. */
	uint64_t column_gcd;   /* rows of column tensors */
	uint64_t gated_gcd;    /* rows of each half of gated fc1 tensors */
	uint64_t row_gcd;      /* columns of row-parallel tensors (0 also when one is not 2-D) */
	bool row_not_2d;       /* a row-parallel tensor is not 2-D: it splits for T = 1 only */
} nck_model_facts;

/* The model's facts (computed when the catalog was built). */
void nck_catalog_model(const nck_catalog *cat, nck_model_facts *out);

/* The split rule of tensor `t` of this catalog (by name, decided when the
 * catalog was built; NONE for non-GPT models). O(1). */
nck_split nck_catalog_split(const nck_catalog *cat, const nck_tensor *t);

/* Finds the layer number in ".layers.<n>." of `name`: true, with the
 * digits' position and length and their value. */
bool nck_name_layer(const char *name, size_t *start, size_t *len, uint64_t *layer);

/* The last-dimension extent of `t` (1 for a scalar). */
uint64_t nck_tensor_cols(const nck_tensor *t);

/* Bytes of tensor `t` in row-major order. */
uint64_t nck_tensor_bytes(const nck_tensor *t);

/*
 * Copies bytes [off, off+len) of tensor `t`, row-major, little-endian, into
 * buf. Returns 0, -EINVAL past the end, -EIO when a backing read fails or
 * the source changed.
 */
int nck_catalog_read(const nck_catalog *cat, const nck_tensor *t, uint64_t off, void *buf,
		     size_t len);

#endif
