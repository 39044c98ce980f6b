/* SPDX-License-Identifier: MIT */
/*
 * DCP `.metadata` reader (see dcp.h). Objects arrive as NEWOBJ calls whose
 * BUILD state is a dict of fields (dataclasses) or, for TensorProperties, a
 * tuple (dtype, layout, requires_grad, memory_format, pin_memory) from its
 * __getstate__; torch.Size is a REDUCE of torch.Size over a tuple of ints.
 */
#include "format/dcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format/pickle.h"
#include "util/strmap.h"

/* Cap on keys and chunks, far above any real checkpoint. */
#define DCP_MAX_ITEMS (1u << 24)

typedef struct dcp_ctx {
	nck_dcp *dcp;
	const char *name;
	nck_diag *diag;
	const nck_pv *storage; /* storage_data dict */
	nck_strmap by_fqn;     /* fqn -> 1 + first storage_data pair with it */
	size_t *next;          /* 1 + next pair with the same fqn, 0 at the end */
} dcp_ctx;

/* A field of an object: from its BUILD state dict, or a dict itself. */
static const nck_pv *dcp_field(const nck_pv *obj, const char *field)
{
	if (!obj)
		return NULL;
	if (obj->kind == NCK_PV_CALL) {
		const nck_pv *state = obj->call.state;

		/* (dict, slots) states: dataclasses with __slots__ pickle this way. */
		if (state && state->kind == NCK_PV_TUPLE && state->seq.n == 2) {
			const nck_pv *v = nck_pv_dict_get(state->seq.items[1], field);

			return v ? v : nck_pv_dict_get(state->seq.items[0], field);
		}
		return nck_pv_dict_get(state, field);
	}
	return nck_pv_dict_get(obj, field);
}

/* Reads a torch.Size (or a plain tuple/list) of at most NCK_MAX_DIMS ints. */
static int dcp_size(uint64_t *dims, uint32_t *ndim, const nck_pv *v)
{
	const nck_pv *seq = v;
	int64_t x;

	if (v && v->kind == NCK_PV_CALL && nck_pv_is_global(v->call.callable, "torch", "Size"))
		seq = nck_pv_seq_get(v->call.args, 0);
	if (!seq || (seq->kind != NCK_PV_TUPLE && seq->kind != NCK_PV_LIST) ||
	    seq->seq.n > NCK_MAX_DIMS)
		return -EBADMSG;
	for (size_t i = 0; i < seq->seq.n; i++) {
		if (!nck_pv_get_int(seq->seq.items[i], &x) || x < 0)
			return -EBADMSG;
		dims[i] = (uint64_t)x;
	}
	*ndim = (uint32_t)seq->seq.n;
	return 0;
}

/* The dtype of a TensorProperties object (tuple state or dict state). */
static nck_dtype dcp_dtype(const nck_pv *props)
{
	const nck_pv *d = NULL;

	if (props && props->kind == NCK_PV_CALL && props->call.state &&
	    props->call.state->kind == NCK_PV_TUPLE)
		d = nck_pv_seq_get(props->call.state, 0);
	if (!d)
		d = dcp_field(props, "dtype");
	if (!d || d->kind != NCK_PV_GLOBAL || strcmp(d->global.module, "torch") != 0)
		return NCK_DTYPE_UNKNOWN;
	return nck_dtype_from_torch_dtype(d->global.name);
}

/* Finds the storage entry of (fqn, offsets): MetadataIndex keys of storage_data. */
static int dcp_locate(nck_dcp_item *item, const dcp_ctx *ctx, const char *fqn,
		      const uint64_t *offsets, uint32_t ndim, bool tensor)
{
	const nck_pv *sd = ctx->storage;
	size_t first = 0;

	nck_strmap_find(&ctx->by_fqn, fqn, &first);
	for (size_t i = first; i > 0; i = ctx->next[i - 1]) {
		const nck_pv *key = sd->seq.items[2 * (i - 1)], *info = sd->seq.items[2 * (i - 1) + 1];
		const nck_pv *kf = dcp_field(key, "fqn"), *ko = dcp_field(key, "offset");
		uint64_t off[NCK_MAX_DIMS];
		uint32_t n = 0;
		int64_t o, l;
		const nck_pv *path, *td;

		if (!kf || kf->kind != NCK_PV_STR || strcmp(kf->str.s, fqn) != 0)
			continue;
		if (tensor && (dcp_size(off, &n, ko) < 0 || n != ndim ||
			       memcmp(off, offsets, ndim * sizeof(off[0])) != 0))
			continue;
		/* torch >= 2.6 may record storage transforms (compression...):
		 * the stored bytes are then not a plain torch.save blob. */
		td = dcp_field(info, "transform_descriptors");
		if (td && (td->kind == NCK_PV_LIST || td->kind == NCK_PV_TUPLE) && td->seq.n > 0) {
			const nck_pv *t0 = td->seq.items[0];

			return nck_diag_set(ctx->diag, -ENOTSUP, ctx->name, -1,
					    "'%s': storage transform '%s' is not supported", fqn,
					    t0 && t0->kind == NCK_PV_STR ? t0->str.s : "?");
		}
		path = dcp_field(info, "relative_path");
		if (!path || path->kind != NCK_PV_STR || !nck_pv_get_int(dcp_field(info, "offset"), &o) ||
		    !nck_pv_get_int(dcp_field(info, "length"), &l) || o < 0 || l < 0 ||
		    strchr(path->str.s, '/') || strcmp(path->str.s, "..") == 0)
			return nck_diag_set(ctx->diag, -EBADMSG, ctx->name, -1,
					    "bad storage entry for '%s'", fqn);
		item->file = path->str.s;
		item->offset = (uint64_t)o;
		item->length = (uint64_t)l;
		return 0;
	}
	return nck_diag_set(ctx->diag, -ENOTSUP, ctx->name, -1,
			    "no storage entry for a chunk of '%s'", fqn);
}

/* Indexes storage_data by fqn, keeping the pickle's order per fqn. */
static int dcp_index(dcp_ctx *ctx)
{
	const nck_pv *sd = ctx->storage;
	size_t *last;

	if (sd->seq.n > DCP_MAX_ITEMS)
		return -EBADMSG;
	ctx->next = calloc(sd->seq.n + 1, sizeof(*ctx->next));
	last = calloc(sd->seq.n + 1, sizeof(*last));
	if (!ctx->next || !last) {
		free(last);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sd->seq.n; i++) {
		const nck_pv *kf = dcp_field(sd->seq.items[2 * i], "fqn");
		size_t head;

		if (!kf || kf->kind != NCK_PV_STR)
			continue;
		if (!nck_strmap_find(&ctx->by_fqn, kf->str.s, &head)) {
			if (nck_strmap_put(&ctx->by_fqn, kf->str.s, i + 1) < 0) {
				free(last);
				return -ENOMEM;
			}
			head = i + 1;
		} else {
			ctx->next[last[head - 1] - 1] = i + 1;
		}
		last[head - 1] = i + 1;
	}
	free(last);
	return 0;
}

/* Reads one TensorStorageMetadata into t. */
static int dcp_tensor(nck_dcp_tensor *t, const dcp_ctx *ctx, const char *fqn, const nck_pv *md)
{
	const nck_pv *chunks = dcp_field(md, "chunks");
	uint64_t box;
	int rc;

	t->fqn = fqn;
	t->dtype = dcp_dtype(dcp_field(md, "properties"));
	if (t->dtype == NCK_DTYPE_UNKNOWN)
		return nck_diag_set(ctx->diag, -ENOTSUP, ctx->name, -1, "'%s': unknown dtype", fqn);
	if (dcp_size(t->size, &t->ndim, dcp_field(md, "size")) < 0 || !chunks ||
	    (chunks->kind != NCK_PV_LIST && chunks->kind != NCK_PV_TUPLE) ||
	    chunks->seq.n > DCP_MAX_ITEMS)
		return nck_diag_set(ctx->diag, -EBADMSG, ctx->name, -1, "'%s': bad size or chunks", fqn);
	t->n_chunks = chunks->seq.n;
	t->chunks = nck_arena_alloc(&ctx->dcp->arena, (t->n_chunks + 1) * sizeof(*t->chunks));
	if (!t->chunks)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_chunks; i++) {
		nck_dcp_chunk *c = &t->chunks[i];
		const nck_pv *cm = chunks->seq.items[i];
		uint32_t n1 = 0, n2 = 0;

		if (dcp_size(c->offsets, &n1, dcp_field(cm, "offsets")) < 0 ||
		    dcp_size(c->sizes, &n2, dcp_field(cm, "sizes")) < 0 || n1 != t->ndim ||
		    n2 != t->ndim)
			return nck_diag_set(ctx->diag, -EBADMSG, ctx->name, -1, "'%s': bad chunk %zu",
					    fqn, i);
		for (uint32_t d = 0; d < t->ndim; d++)
			if (__builtin_add_overflow(c->offsets[d], c->sizes[d], &box) || box > t->size[d])
				return nck_diag_set(ctx->diag, -EBADMSG, ctx->name, -1,
						    "'%s': chunk %zu lies outside the tensor", fqn, i);
		if ((rc = dcp_locate(&c->item, ctx, fqn, c->offsets, t->ndim, true)) < 0)
			return rc;
	}
	return 0;
}

/* Walks state_dict_metadata. */
static int dcp_walk(dcp_ctx *ctx, const nck_pv *sdm)
{
	nck_dcp *dcp = ctx->dcp;
	int rc;

	if (!sdm || sdm->kind != NCK_PV_DICT || sdm->seq.n > DCP_MAX_ITEMS)
		return nck_diag_set(ctx->diag, -EBADMSG, ctx->name, -1, "no state_dict_metadata");
	dcp->tensors = nck_arena_alloc(&dcp->arena, (sdm->seq.n + 1) * sizeof(*dcp->tensors));
	dcp->bytes = nck_arena_alloc(&dcp->arena, (sdm->seq.n + 1) * sizeof(*dcp->bytes));
	if (!dcp->tensors || !dcp->bytes)
		return -ENOMEM;
	for (size_t i = 0; i < sdm->seq.n; i++) {
		const nck_pv *k = sdm->seq.items[2 * i], *md = sdm->seq.items[2 * i + 1];
		const nck_pv *cls = md && md->kind == NCK_PV_CALL ? md->call.callable : NULL;

		if (!k || k->kind != NCK_PV_STR || !cls || cls->kind != NCK_PV_GLOBAL)
			return nck_diag_set(ctx->diag, -EBADMSG, ctx->name, -1,
					    "entry %zu of state_dict_metadata is not a key and an object", i);
		if (strcmp(cls->global.name, "TensorStorageMetadata") == 0) {
			if ((rc = dcp_tensor(&dcp->tensors[dcp->n_tensors], ctx, k->str.s, md)) < 0)
				return rc;
			dcp->n_tensors++;
		} else if (strcmp(cls->global.name, "BytesStorageMetadata") == 0) {
			nck_dcp_bytes *b = &dcp->bytes[dcp->n_bytes];

			b->fqn = k->str.s;
			if ((rc = dcp_locate(&b->item, ctx, k->str.s, NULL, 0, false)) < 0)
				return rc;
			dcp->n_bytes++;
		} else {
			return nck_diag_set(ctx->diag, -ENOTSUP, ctx->name, -1,
					    "'%s': unsupported storage metadata %s.%s", k->str.s,
					    cls->global.module, cls->global.name);
		}
	}
	return 0;
}

int nck_dcp_parse(nck_dcp **out, const void *data, size_t len, const char *name, nck_diag *diag)
{
	nck_dcp *dcp = calloc(1, sizeof(*dcp));
	dcp_ctx ctx = { .dcp = dcp, .name = name, .diag = diag };
	nck_pv *root = NULL;
	int rc;

	*out = NULL;
	if (!dcp)
		return nck_diag_set(diag, -ENOMEM, name, -1, "out of memory");
	nck_arena_init(&dcp->arena);
	if ((rc = nck_pkl_parse(&root, &dcp->arena, data, len, name, NULL, diag)) < 0)
		goto out;
	ctx.storage = dcp_field(root, "storage_data");
	if (!ctx.storage || ctx.storage->kind != NCK_PV_DICT) {
		rc = nck_diag_set(diag, -EBADMSG, name, -1, "not DCP metadata: no storage_data");
		goto out;
	}
	if ((rc = dcp_index(&ctx)) < 0) {
		nck_diag_set(diag, rc, name, -1, "bad storage_data");
		goto out;
	}
	rc = dcp_walk(&ctx, dcp_field(root, "state_dict_metadata"));
out:
	nck_strmap_dispose(&ctx.by_fqn);
	free(ctx.next);
	if (rc == -ENOMEM)
		nck_diag_set(diag, rc, name, -1, "out of memory");
	if (rc < 0) {
		nck_dcp_free(dcp);
		return rc;
	}
	*out = dcp;
	return 0;
}

void nck_dcp_free(nck_dcp *dcp)
{
	if (!dcp)
		return;
	nck_arena_dispose(&dcp->arena);
	free(dcp);
}
