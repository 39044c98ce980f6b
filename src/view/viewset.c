/* SPDX-License-Identifier: MIT */
/*
 * View sets (see viewset.h): the generic part, and the rules shared by the
 * re-sharding views: which layouts are valid and which are listed.
 */
#include "view/viewset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"
#include "view/gpt.h"
#include "view/shard.h"

/* True if the config is a NeMo 1 model_config.yaml (nemo/ rewrites it). */
static bool viewset_nemo_config(const nck_view_ctx *ctx)
{
	const char *p = ctx->config_path, *base;

	if (!p || !ctx->config)
		return false;
	base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
	return strcmp(base, "model_config.yaml") == 0;
}

/* Whether the re-sharding views (ranks/, nemo/) can show (T, P). */
static int viewset_shard_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
			       uint32_t P, char *why, size_t why_len)
{
	nck_model_facts m;

	(void)kind;
	nck_catalog_model(ctx->cat, &m);
	if (T == 0 && P == 0)
		return 0;
	return nck_shard_check(&m, T, P, why, why_len) < 0 ? -EINVAL : 0;
}

/* nemo/ also needs the config it rewrites. */
static int viewset_nemo_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
			      char *why, size_t why_len)
{
	if (!viewset_nemo_config(ctx)) {
		snprintf(why, why_len, "no NeMo 1 model_config.yaml to rewrite");
		return -EINVAL;
	}
	return viewset_shard_check(ctx, kind, T, P, why, why_len);
}

/* The view kinds, in the order their directories are added (after raw/). */
static const nck_view_ops view_ops[NCK_VIEW_COUNT] = {
	[NCK_VIEW_TENSORS] = { .abi = NCK_VIEW_OPS_ABI, .name = "tensors", .layouts = false,
			       .check = nck_tensors_check, .build = nck_tensors_build },
	[NCK_VIEW_MERGED] = { .abi = NCK_VIEW_OPS_ABI, .name = "merged", .layouts = false,
			      .check = nck_merged_view_check, .build = nck_merged_view_build },
	[NCK_VIEW_RANKS] = { .abi = NCK_VIEW_OPS_ABI, .name = "ranks", .layouts = true,
			     .gpt_only = true, .check = viewset_shard_check,
			     .build = nck_ranks_build },
	[NCK_VIEW_NEMO] = { .abi = NCK_VIEW_OPS_ABI, .name = "nemo", .layouts = true,
			    .gpt_only = true, .check = viewset_nemo_check, .build = nck_nemo_build },
	[NCK_VIEW_QNEMO_BF16] = { .abi = NCK_VIEW_OPS_ABI, .name = "qnemo/bf16", .layouts = true,
				  .gpt_only = true, .check = nck_trtllm_check,
				  .build = nck_trtllm_build },
	[NCK_VIEW_QNEMO_FP8] = { .abi = NCK_VIEW_OPS_ABI, .name = "qnemo/fp8", .layouts = true,
				 .gpt_only = true, .check = nck_trtllm_check,
				 .build = nck_trtllm_build },
	[NCK_VIEW_QNEMO_INT4] = { .abi = NCK_VIEW_OPS_ABI, .name = "qnemo/int4_awq", .layouts = true,
				  .gpt_only = true, .check = nck_trtllm_check,
				  .build = nck_trtllm_build },
	[NCK_VIEW_QNEMO_NVFP4] = { .abi = NCK_VIEW_OPS_ABI, .name = "qnemo/nvfp4", .layouts = true,
				   .gpt_only = true, .check = nck_trtllm_check,
				   .build = nck_trtllm_build },
	[NCK_VIEW_HF] = { .abi = NCK_VIEW_OPS_ABI, .name = "hf", .layouts = false, .gpt_only = true,
			  .info_entry = true, .architecture = "LlamaForCausalLM",
			  .check = nck_hf_check, .build = nck_hf_build },
	[NCK_VIEW_GGUF] = { .abi = NCK_VIEW_OPS_ABI, .name = "gguf", .layouts = false,
			    .gpt_only = true, .info_entry = true, .check = nck_gguf_check,
			    .build = nck_gguf_build },
};

const nck_view_ops *nck_view_get_ops(nck_view_kind kind)
{
	return (unsigned)kind < NCK_VIEW_COUNT ? &view_ops[kind] : NULL;
}

const char *nck_view_name(nck_view_kind kind)
{
	return (unsigned)kind < NCK_VIEW_COUNT ? view_ops[kind].name : "?";
}

int nck_view_prepare(nck_view_ctx *ctx)
{
	nck_gpt_model *gm = calloc(1, sizeof(*gm));
	int rc;

	ctx->gpt = NULL;
	ctx->cfg = NULL;
	nck_arena_init(&ctx->cfg_arena);
	if (ctx->config && nck_yaml_parse((nck_yaml_node **)&ctx->cfg, &ctx->cfg_arena, ctx->config,
					  ctx->config_len, "config", NULL) < 0)
		ctx->cfg = NULL; /* a config that does not parse is no config */
	if (!gm)
		return -ENOMEM;
	rc = nck_gpt_model_load(gm, ctx->cat, ctx->gpt_why, sizeof(ctx->gpt_why));
	if (rc < 0) {
		free(gm);
		return rc == -ENOMEM ? rc : 0;
	}
	ctx->gpt = gm;
	return 0;
}

void nck_view_release(nck_view_ctx *ctx)
{
	nck_gpt_model_dispose(ctx->gpt);
	free(ctx->gpt);
	ctx->gpt = NULL;
	ctx->cfg = NULL;
	nck_arena_dispose(&ctx->cfg_arena);
}

bool nck_view_applies_why(const nck_view_ctx *ctx, nck_view_kind kind, char *why, size_t why_len)
{
	nck_model_facts m;

	nck_catalog_model(ctx->cat, &m);
	if (view_ops[kind].gpt_only && (!m.gpt || nck_catalog_get_info(ctx->cat)->n_weights == 0)) {
		snprintf(why, why_len, "not a Megatron GPT checkpoint");
		return false;
	}
	return view_ops[kind].check(ctx, kind, 0, 0, why, why_len) == 0;
}

bool nck_view_applies(const nck_view_ctx *ctx, nck_view_kind kind)
{
	char why[256];

	return nck_view_applies_why(ctx, kind, why, sizeof(why));
}

bool nck_view_beside_tokenizer(const nck_view_ctx *ctx, const nck_entry *e)
{
	const char *tp = ctx->tokenizer->path, *slash = strrchr(tp, '/');
	size_t dir = slash ? (size_t)(slash - tp) + 1 : 0;

	return e != ctx->tokenizer && e->kind == NCK_ENTRY_FILE && strncmp(e->path, tp, dir) == 0 &&
	       !strchr(e->path + dir, '/');
}

int nck_view_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		   char *why, size_t why_len)
{
	if (!nck_view_applies_why(ctx, kind, why, why_len))
		return -ENOENT;
	return view_ops[kind].check(ctx, kind, T, P, why, why_len) < 0 ? -ENOENT : 0;
}

size_t nck_view_listing(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t (*out)[2],
			size_t max)
{
	const nck_catalog_info *in = nck_catalog_get_info(ctx->cat);
	uint32_t cand[10][2] = { { in->tp, in->pp } }, ps[2] = { 1, in->pp };
	size_t nc = 1, n = 0;
	char why[256];

	for (uint32_t t = 1; t <= 8; t *= 2)
		for (int k = 0; k < (in->pp > 1 ? 2 : 1); k++) {
			cand[nc][0] = t;
			cand[nc++][1] = ps[k];
		}
	for (size_t i = 0; i < nc && n < max; i++) {
		bool dup = false;

		for (size_t j = 0; j < n; j++)
			dup |= out[j][0] == cand[i][0] && out[j][1] == cand[i][1];
		if (!dup && nck_view_check(ctx, kind, cand[i][0], cand[i][1], why, sizeof(why)) == 0) {
			out[n][0] = cand[i][0];
			out[n++][1] = cand[i][1];
		}
	}
	return n;
}

nck_vfile *nck_viewset_add(nck_viewset *vs, const char *path, nck_vfile_kind kind)
{
	nck_vfile *f;

	if (nck_grow((void **)&vs->files, &vs->cap_files, vs->n_files, sizeof(*f), 8) < 0)
		return NULL;
	f = &vs->files[vs->n_files];
	memset(f, 0, sizeof(*f));
	if (!(f->path = nck_arena_strndup(&vs->arena, path, strlen(path))))
		return NULL;
	f->kind = kind;
	vs->n_files++;
	return f;
}

int nck_viewset_own(nck_viewset *vs, void *p)
{
	if (nck_grow((void **)&vs->owned, &vs->cap_owned, vs->n_owned, sizeof(*vs->owned), 8) < 0) {
		free(p);
		return -ENOMEM;
	}
	vs->owned[vs->n_owned++] = p;
	return 0;
}

int nck_viewset_build(nck_viewset **out, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		      uint32_t P)
{
	nck_viewset *vs;
	char why[256];
	int rc;

	*out = NULL;
	if (nck_view_check(ctx, kind, T, P, why, sizeof(why)) < 0)
		return -ENOENT;
	if (!(vs = calloc(1, sizeof(*vs))))
		return -ENOMEM;
	nck_arena_init(&vs->arena);
	rc = view_ops[kind].build(vs, ctx, kind, T, P);
	if (rc < 0) {
		nck_viewset_free(vs);
		return rc;
	}
	*out = vs;
	return 0;
}

void nck_viewset_free(nck_viewset *vs)
{
	if (!vs)
		return;
	for (size_t i = 0; i < vs->n_files; i++)
		nck_layout_dispose(&vs->files[i].layout);
	for (size_t i = 0; i < vs->n_owned; i++)
		free(vs->owned[i]);
	if (vs->free_priv)
		vs->free_priv(vs->priv);
	free(vs->owned);
	free(vs->files);
	nck_arena_dispose(&vs->arena);
	free(vs);
}
