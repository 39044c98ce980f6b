/* SPDX-License-Identifier: MIT */
/*
 * View sets (see viewset.h): the generic part, and the rules shared by the
 * re-sharding views: which layouts are valid and which are listed.
 */
#include "view/viewset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"
#include "view/shard.h"

const char *nck_view_name(nck_view_kind kind)
{
	static const char *const names[NCK_VIEW_COUNT] = {
		[NCK_VIEW_RANKS] = "ranks",
		[NCK_VIEW_NEMO] = "nemo",
		[NCK_VIEW_QNEMO_BF16] = "qnemo/bf16",
		[NCK_VIEW_QNEMO_FP8] = "qnemo/fp8",
		[NCK_VIEW_QNEMO_INT4] = "qnemo/int4_awq",
		[NCK_VIEW_QNEMO_NVFP4] = "qnemo/nvfp4",
	};

	return (unsigned)kind < NCK_VIEW_COUNT ? names[kind] : "?";
}

static bool viewset_is_trtllm(nck_view_kind kind)
{
	return kind == NCK_VIEW_QNEMO_BF16 || kind == NCK_VIEW_QNEMO_FP8 ||
	       kind == NCK_VIEW_QNEMO_INT4 || kind == NCK_VIEW_QNEMO_NVFP4;
}

/* True if the config is a NeMo 1 model_config.yaml (nemo/ rewrites it). */
static bool viewset_nemo_config(const nck_view_ctx *ctx)
{
	const char *p = ctx->config_path, *base;

	if (!p || !ctx->config)
		return false;
	base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
	return strcmp(base, "model_config.yaml") == 0;
}

bool nck_view_applies(const nck_view_ctx *ctx, nck_view_kind kind)
{
	nck_model_facts m;

	char why[256];

	nck_catalog_model(ctx->cat, &m);
	if (!m.gpt || nck_catalog_get_info(ctx->cat)->n_weights == 0)
		return false;
	if (viewset_is_trtllm(kind))
		return nck_trtllm_check(ctx, kind, 0, 0, why, sizeof(why)) == 0;
	return kind != NCK_VIEW_NEMO || viewset_nemo_config(ctx);
}

int nck_view_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		   char *why, size_t why_len)
{
	nck_model_facts m;

	if (!nck_view_applies(ctx, kind)) {
		strncpy(why, "the view does not apply to this checkpoint", why_len - 1);
		why[why_len - 1] = '\0';
		return -ENOENT;
	}
	if (viewset_is_trtllm(kind))
		return nck_trtllm_check(ctx, kind, T, P, why, why_len) < 0 ? -ENOENT : 0;
	nck_catalog_model(ctx->cat, &m);
	return nck_shard_check(&m, T, P, why, why_len) < 0 ? -ENOENT : 0;
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
	if (kind == NCK_VIEW_RANKS)
		rc = nck_ranks_build(vs, ctx, T, P);
	else if (kind == NCK_VIEW_NEMO)
		rc = nck_nemo_build(vs, ctx, T, P);
	else
		rc = nck_trtllm_build(vs, ctx, kind, T, P);
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
