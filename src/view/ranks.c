/* SPDX-License-Identifier: MIT */
/*
 * ranks/tp{T}pp{P}/rank{R}.safetensors, R = pp*T + tp: each rank's tensors
 * (shard.c) in a safetensors file, names sorted, __metadata__ naming the
 * source and the layout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "view/shard.h"
#include "view/sthdr.h"
#include "view/viewset.h"

/* Adds rank{R}.safetensors of rank (tp, pp). */
static int ranks_file(nck_viewset *vs, const nck_view_ctx *ctx, const nck_model_facts *m,
		      uint32_t T, uint32_t P, uint32_t tp, uint32_t pp)
{
	char name[64], t_s[16], p_s[16], r_s[16];
	const char *meta[] = { "format", "pt", "source", ctx->source ? ctx->source : "",
			       "tensor_model_parallel_size", t_s, "pipeline_model_parallel_size",
			       p_s, "rank", r_s, NULL };
	nck_shard_tensor *st = NULL;
	nck_st_entry *e = NULL;
	nck_vfile *f;
	char *hdr = NULL;
	size_t n = 0, hlen;
	int rc;

	snprintf(t_s, sizeof(t_s), "%u", T);
	snprintf(p_s, sizeof(p_s), "%u", P);
	snprintf(r_s, sizeof(r_s), "%u", pp * T + tp);
	snprintf(name, sizeof(name), "rank%u.safetensors", pp * T + tp);
	if ((rc = nck_shard_rank(ctx->cat, m, T, P, tp, pp, false, &vs->arena, &st, &n)) < 0)
		return rc;
	rc = -ENOMEM;
	if (!(e = calloc(n ? n : 1, sizeof(*e))))
		goto out;
	for (size_t i = 0; i < n; i++)
		e[i] = (nck_st_entry){ .name = st[i].name, .dtype = st[i].dtype, .ndim = st[i].ndim,
				       .shape = st[i].shape, .bytes = nck_shard_bytes(&st[i]) };
	if ((rc = nck_st_header(&hdr, &hlen, e, n, meta)) < 0 ||
	    (rc = nck_viewset_own(vs, hdr)) < 0)
		goto out;
	rc = -ENOMEM;
	if (!(f = nck_viewset_add(vs, name, NCK_VFILE_LAYOUT)))
		goto out;
	rc = nck_layout_mem(&f->layout, hdr, hlen);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = nck_shard_segments(&f->layout, &st[i]);
	f->size = f->layout.size;
out:
	free(e);
	free(st);
	return rc;
}

int nck_ranks_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		    uint32_t P)
{
	nck_model_facts m;
	int rc = 0;

	(void)kind;
	nck_catalog_model(ctx->cat, &m);
	for (uint32_t pp = 0; pp < P && rc == 0; pp++)
		for (uint32_t tp = 0; tp < T && rc == 0; tp++)
			rc = ranks_file(vs, ctx, &m, T, P, tp, pp);
	return rc;
}
