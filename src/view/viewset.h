/* SPDX-License-Identifier: MIT */
/*
 * View sets: the files of one directory of a view, such as ranks/tp2pp1/,
 * nemo/tp4pp1/ or hf/ (metadata only: names, sizes, headers and layouts; no
 * tensor data): built when a tpXppY directory is first looked up, or at
 * mount for a view of one layout (tensors/, merged/, hf/, gguf/).
 *
 * A view kind answers three questions: which (T, P) a directory may name
 * (nck_view_check), which it lists by default (nck_view_listing), and what
 * files one holds (nck_viewset_build).
 *
 * Ownership: a set owns its files, their layouts and the memory they point
 * to (freed by nck_viewset_free); tensors are borrowed from the catalog and
 * container paths from the context. Thread-safety: built by one thread,
 * read-only afterwards.
 */
#ifndef NCK_VIEW_VIEWSET_H
#define NCK_VIEW_VIEWSET_H

#include <stddef.h>
#include <stdint.h>

#include "container/container.h"
#include "nemockpt/catalog.h"
#include "util/arena.h"
#include "view/layout.h"

typedef enum nck_view_kind {
	NCK_VIEW_TENSORS = 0, /* tensors/<name>.npy: each weight as a NumPy file (one layout) */
	NCK_VIEW_MERGED,      /* merged/: weights as safetensors, config, tokenizer (one layout) */
	NCK_VIEW_RANKS,       /* ranks/tpXppY/rank{R}.safetensors */
	NCK_VIEW_NEMO,        /* nemo/tpXppY/: an extracted .nemo at that layout */
	NCK_VIEW_QNEMO_BF16,  /* qnemo/bf16/tpXppY/: a TensorRT-LLM checkpoint, model dtype */
	NCK_VIEW_QNEMO_FP8,   /* qnemo/fp8/tpXppY/: FP8 weights */
	NCK_VIEW_QNEMO_INT4,  /* qnemo/int4_awq/tpXppY/: W4A16 AWQ (round to nearest) */
	NCK_VIEW_QNEMO_NVFP4, /* qnemo/nvfp4/tpXppY/: NVFP4 (FP4 E2M1, E4M3 scales per 16) */
	NCK_VIEW_HF,          /* hf/: a Hugging Face Llama model directory (one layout) */
	NCK_VIEW_GGUF,        /* gguf/: GGUF v3 files for llama.cpp (one layout) */
	NCK_VIEW_COUNT
} nck_view_kind;

struct nck_qcache;
struct nck_gpt_model;
struct nck_yaml_node;
typedef struct nck_viewset nck_viewset;

/* What a view may use besides the catalog. */
typedef struct nck_view_ctx {
	const nck_catalog *cat;
	const nck_container *container; /* its members (hf/ finds tokenizer files beside the artifact) */
	const char *source;       /* the checkpoint's path, for metadata */
	const char *config_path;  /* the config member (model_config.yaml), or NULL */
	const void *config;       /* its bytes */
	size_t config_len;
	const nck_entry *const *artifacts; /* root members nemo/ shows as they are (NULL-terminated) */
	const nck_entry *tokenizer;   /* the tokenizer artifact (qnemo/ shows it as tokenizer.model) */
	const void *tokenizer_data;   /* its bytes (hf/ reads its special tokens), or NULL */
	size_t tokenizer_len;
	const struct nck_yaml_node *cfg; /* the config parsed (nck_view_prepare), or NULL */
	nck_arena cfg_arena;          /* what cfg points into */
	struct nck_qcache *qcache;    /* computes and keeps quantized tensors (qnemo/) */
	uint64_t group_size;          /* INT4 AWQ block size (0: 128) */
	const void *calib;            /* activation amax per module (a jansson object), or NULL */
	const char *calib_name;       /* the file it came from */
	uint64_t shard_size;          /* hf/: safetensors shard size (0: 5 GiB) */
	struct nck_gpt_model *gpt;    /* the GPT's weights by role (nck_view_prepare), or NULL */
	char gpt_why[256];            /* why gpt is NULL */
} nck_view_ctx;

typedef enum nck_vfile_kind {
	NCK_VFILE_LAYOUT = 0, /* bytes from `layout` */
	NCK_VFILE_MEM = 1,    /* `size` bytes at `mem` */
	NCK_VFILE_MEMBER = 2, /* the container member `member`, as it is */
	NCK_VFILE_NPY = 3,    /* the catalog tensor `tensor` as a .npy file (npy.h) */
} nck_vfile_kind;

typedef struct nck_vfile {
	const char *path;     /* inside the set's directory: "rank0.safetensors", "mp_rank_00/..." */
	nck_vfile_kind kind;
	nck_layout layout;
	const void *mem;
	uint64_t size;        /* LAYOUT, MEM and NPY */
	const nck_entry *member;
	bool member_mtime;    /* MEMBER: shown with the member's mtime (merged/), else the view's */
	const nck_tensor *tensor; /* NPY */
} nck_vfile;

struct nck_viewset {
	nck_arena arena;      /* names and small buffers */
	nck_vfile *files;
	size_t n_files, cap_files;
	void **owned;         /* malloc'ed buffers freed with the set */
	size_t n_owned, cap_owned;
	void *priv;           /* a view's own state */
	void (*free_priv)(void *priv);
};

/*
 * A view kind (libarchive's registration pattern: one table in viewset.c,
 * which the vfs walks: sets.c adds every kind's directory, info.c the entry
 * of every view of one layout; neither names a kind).
 * `check` answers whether the view applies (T = P = 0) and whether (T, P)
 * is valid: 0, or -EINVAL with the reason in why. `build` adds the files of
 * (T, P) to the set: 0, -ENOENT, -ENOMEM, -E2BIG.
 */
typedef struct nck_view_ops {
	uint32_t abi;         /* NCK_VIEW_OPS_ABI */
	const char *name;     /* directory under the mount root */
	bool layouts;         /* tpXppY subdirectories; else the directory is the one set (T = P = 1) */
	bool gpt_only;        /* applies to a Megatron GPT with weights only (before `check`) */
	bool info_entry;      /* a view of one layout with its own info.json entry */
	const char *architecture; /* with info_entry: the entry's "architecture", or NULL */
	int (*check)(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P, char *why,
		     size_t why_len);
	int (*build)(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		     uint32_t P);
} nck_view_ops;

#define NCK_VIEW_OPS_ABI 2

/* The ops of a kind. */
const nck_view_ops *nck_view_get_ops(nck_view_kind kind);

/* The view's directory under the mount root: "ranks", "nemo", "qnemo/fp8", ... */
const char *nck_view_name(nck_view_kind kind);

/* Finds what the views need of the model once (ctx->gpt, or the reason it
 * is NULL in ctx->gpt_why); release frees it. 0 or -ENOMEM. */
int nck_view_prepare(nck_view_ctx *ctx);
void nck_view_release(nck_view_ctx *ctx);

/* Whether the view applies, with the reason when it does not. */
bool nck_view_applies_why(const nck_view_ctx *ctx, nck_view_kind kind, char *why, size_t why_len);

/* Whether the view applies to this checkpoint at all. */
bool nck_view_applies(const nck_view_ctx *ctx, nck_view_kind kind);

/* True if e is a regular file in the directory of the tokenizer artifact
 * (ctx->tokenizer, which must be set) and not the artifact itself: where
 * hf/ and gguf/ look for the Hugging Face tokenizer files saved with it. */
bool nck_view_beside_tokenizer(const nck_view_ctx *ctx, const nck_entry *e);

/* 0 when the view can show (T, P); else -ENOENT with the reason in why. */
int nck_view_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		   char *why, size_t why_len);

/* The layouts listed by default: the source's own, then T in {1, 2, 4, 8}
 * with P in {1, source P}, where valid. Returns how many went to out. */
size_t nck_view_listing(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t (*out)[2],
			size_t max);

/* Builds the files of (T, P). -ENOENT (invalid), -ENOMEM, -E2BIG. */
int nck_viewset_build(nck_viewset **out, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		      uint32_t P);

void nck_viewset_free(nck_viewset *vs);

/* ---- for the views' builders ------------------------------------------------ */

/* Appends a file (path copied); returns it zeroed but for path and kind, or NULL. */
nck_vfile *nck_viewset_add(nck_viewset *vs, const char *path, nck_vfile_kind kind);

/* Makes `p` (malloc'ed) freed with the set; frees it and returns -ENOMEM on failure. */
int nck_viewset_own(nck_viewset *vs, void *p);

/* The builders of each view kind (their nck_view_ops members). */
int nck_tensors_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		      uint32_t P);
int nck_merged_view_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind,
			  uint32_t T, uint32_t P);
int nck_ranks_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		    uint32_t P);
int nck_nemo_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		   uint32_t P);
int nck_trtllm_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		     uint32_t P);
int nck_hf_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		 uint32_t P);
int nck_gguf_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		   uint32_t P);

/* The checks of each view kind. */
int nck_tensors_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		      char *why, size_t why_len);
int nck_merged_view_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
			  char *why, size_t why_len);
int nck_trtllm_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		     char *why, size_t why_len);
int nck_hf_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P, char *why,
		 size_t why_len);
int nck_gguf_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		   char *why, size_t why_len);

#endif
