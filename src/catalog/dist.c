/* SPDX-License-Identifier: MIT */
/*
 * Distributed (Megatron-Core dist_checkpointing) checkpoints: the
 * model_weights/ of a NeMo 1 .nemo, the weights/ of a NeMo 2 directory, a
 * Megatron-LM torch_dist iteration directory. Tensors are stored globally
 * (already merged), as torch_dist (.metadata + __R_I.distcp, each chunk a
 * torch.save blob) or zarr (one directory per key, raw chunks).
 *
 * Layers are stacked on a leading axis under keys without a layer number
 * (decoder.layers.self_attention...): they are split here into per-layer
 * tensors decoder.layers.{i}.self_attention..., each chunk of the stack
 * giving one chunk per layer it covers. Embedding and output rows are cut
 * to the TP=1 padded vocabulary as in the legacy layouts.
 *
 * Spec: nemo-layouts.md §3, §4; tensor-formats.md §2-§4;
 * sharding-hf-trtllm.md A.0 (layer-stacked keys), A.7 step 5.
 * Thread-safety: runs once while a catalog is built.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/dcp.h"
#include "format/torch.h"
#include "format/zarr.h"

/* Largest .metadata or .zarray read into memory. */
#define DIST_MAX_META (1u << 30)

/* ---- helpers ---------------------------------------------------------------- */

/* The entry at dist_dir/rel, or NULL. */
static const nck_entry *dist_find(const nck_catalog *cat, const char *rel)
{
	const char *dir = cat->layout.dist_dir;
	size_t dl = strlen(dir);

	for (size_t i = 0; i < cat->container->n_entries; i++) {
		const nck_entry *e = &cat->container->entries[i];

		if (e->kind != NCK_ENTRY_FILE)
			continue;
		if (dl == 0 ? strcmp(e->path, rel) == 0
			    : strncmp(e->path, dir, dl) == 0 && e->path[dl] == '/' &&
				      strcmp(e->path + dl + 1, rel) == 0)
			return e;
	}
	return NULL;
}

/* Reads a whole metadata member (.metadata, .zarray, metadata.json). */
static int dist_slurp(void **out, size_t *len, nck_catalog *cat, const nck_entry *e, nck_diag *diag)
{
	return nck_container_slurp(out, len, cat->container, e, DIST_MAX_META, diag);
}

/* A stacked key: "....layers.<name>" where <name> does not start with a
 * digit. Optimizer state keeps its stored layout (it is not a weight). */
static bool dist_is_stacked(const char *key)
{
	const char *p = strstr(key, "decoder.layers.");

	return p && !(p[15] >= '0' && p[15] <= '9') && strncmp(key, "optimizer.", 10) != 0;
}

/*
 * A ShardedObject "<key>/shard_<o0>[.<o1>...]_<shape>" (Megatron-Core
 * ShardedObject.unique_key; zarr adds ".pt"): the name it is listed under,
 * with the layer number of a stacked key, written into buf. False if `fqn`
 * is not one.
 */
static bool dist_object_name(char *buf, size_t size, const char *fqn)
{
	const char *sh = strstr(fqn, "/shard_"), *at;
	unsigned long layer;

	if (!sh || sscanf(sh + 7, "%lu", &layer) != 1)
		return false;
	if (!dist_is_stacked(fqn) || (at = strstr(fqn, "decoder.layers.") + 15) > sh)
		return (size_t)snprintf(buf, size, "%.*s", (int)(sh - fqn), fqn) < size;
	return (size_t)snprintf(buf, size, "%.*s%lu.%.*s", (int)(at - fqn), fqn, layer,
				(int)(sh - at), at) < size;
}

/* Lists one stored object (bytes of `len` at `base` of `file`) as a non-weight. */
static int dist_add_object(nck_catalog *cat, const char *name, uint32_t file, uint64_t base,
			   uint64_t len)
{
	nck_tensor *t = nck_catalog_add(cat, name, 1);
	nck_chunk *ch;

	if (!t)
		return -ENOMEM;
	t->dtype = NCK_DTYPE_U8;
	t->ndim = 1;
	t->shape[0] = len;
	t->role = NCK_ROLE_NON_WEIGHT;
	ch = (nck_chunk *)t->chunks;
	memset(ch, 0, sizeof(*ch));
	ch->file = file;
	ch->base = base;
	ch->shape[0] = len;
	ch->stride[0] = 1;
	return 0;
}

/* Role of a distributed key. */
static nck_tensor_role dist_role(const char *key)
{
	size_t n = strlen(key);

	if (strncmp(key, "optimizer.", 10) == 0 || strstr(key, "._extra_state") ||
	    (n >= 12 && strcmp(key + n - 12, "_extra_state") == 0))
		return NCK_ROLE_NON_WEIGHT;
	return NCK_ROLE_WEIGHT;
}

/* Rows of an embedding/output tensor after the cut to V_1 (or all). */
static uint64_t dist_vocab_rows(nck_catalog *cat, uint64_t stored)
{
	uint64_t v1 = nck_catalog_padded_vocab(cat);

	return v1 && v1 <= stored ? v1 : stored;
}

/*
 * Adds logical tensors for one stored tensor: itself, or one per layer of a
 * stacked key. `chunks` are boxes of the stored tensor (n of them).
 */
static int dist_add(nck_catalog *cat, const char *key, nck_dtype dtype, uint32_t ndim,
		    const uint64_t *size, const nck_chunk *chunks, size_t n)
{
	size_t esz = nck_dtype_size(dtype);

	if (!dist_is_stacked(key) || ndim < 1) {
		nck_tensor *t = nck_catalog_add(cat, key, n);

		if (!t)
			return -ENOMEM;
		t->dtype = dtype;
		t->ndim = ndim;
		memcpy(t->shape, size, ndim * sizeof(size[0]));
		t->role = dist_role(key);
		memcpy((nck_chunk *)t->chunks, chunks, n * sizeof(*chunks));
		if (ndim >= 1 && nck_param_kind_of(key, &cat->cfg) == NCK_PARAM_VOCAB &&
		    t->role == NCK_ROLE_WEIGHT)
			nck_tensor_cut_rows(t, dist_vocab_rows(cat, size[0]));
		return 0;
	}
	/* Stacked: one tensor per layer i, named with ".layers.<i>.". */
	const char *at = strstr(key, "decoder.layers.") + 15;
	for (uint64_t i = 0; i < size[0]; i++) {
		char name[1024];
		size_t m = 0;
		nck_tensor *t;

		if ((size_t)snprintf(name, sizeof(name), "%.*s%llu.%s", (int)(at - key), key,
				     (unsigned long long)i, at) >= sizeof(name))
			return -ENAMETOOLONG;
		for (size_t c = 0; c < n; c++)
			m += i >= chunks[c].offset[0] && i < chunks[c].offset[0] + chunks[c].shape[0];
		t = nck_catalog_add(cat, name, m);
		if (!t)
			return -ENOMEM;
		t->dtype = dtype;
		t->ndim = ndim - 1;
		memcpy(t->shape, size + 1, (ndim - 1) * sizeof(size[0]));
		t->role = dist_role(key);
		t->n_chunks = 0;
		for (size_t c = 0; c < n; c++) {
			const nck_chunk *s = &chunks[c];
			nck_chunk *d;

			if (i < s->offset[0] || i >= s->offset[0] + s->shape[0])
				continue;
			d = (nck_chunk *)&t->chunks[t->n_chunks++];
			memset(d, 0, sizeof(*d));
			d->file = s->file;
			d->base = s->base + (i - s->offset[0]) * (uint64_t)s->stride[0] * esz;
			memcpy(d->offset, s->offset + 1, (ndim - 1) * sizeof(s->offset[0]));
			memcpy(d->shape, s->shape + 1, (ndim - 1) * sizeof(s->shape[0]));
			memcpy(d->stride, s->stride + 1, (ndim - 1) * sizeof(s->stride[0]));
		}
	}
	return 0;
}

/* ---- torch_dist ------------------------------------------------------------- */

/* Locates one DCP chunk: its blob is a torch.save of exactly the chunk. */
static int dist_dcp_chunk(nck_chunk *out, nck_catalog *cat, const nck_dcp_tensor *t,
			  const nck_dcp_chunk *c, nck_diag *diag)
{
	const nck_entry *e = dist_find(cat, c->item.file);
	nck_torch_file *tf = NULL;
	const nck_torch_tensor *tt;
	uint32_t fi;
	int rc;

	if (!e)
		return nck_diag_set(diag, -EBADMSG, cat->container->path, -1,
				    "'%s': data file %s is missing", t->fqn, c->item.file);
	if ((rc = nck_catalog_add_file(cat, e, &fi, diag)) < 0 ||
	    (rc = nck_torch_open(&tf, cat->files[fi].src, c->item.offset, c->item.length, diag)) < 0)
		return rc;
	tt = tf->n_tensors == 1 ? &tf->tensors[0] : NULL;
	if (!tt || tt->dtype != t->dtype || tt->ndim != t->ndim ||
	    memcmp(tt->shape, c->sizes, t->ndim * sizeof(c->sizes[0])) != 0) {
		rc = nck_diag_set(diag, -EBADMSG, e->path, (int64_t)c->item.offset,
				  "'%s': the stored chunk does not match the metadata", t->fqn);
	} else {
		memset(out, 0, sizeof(*out));
		out->file = fi;
		out->base = tt->storage_data + tt->storage_offset * nck_dtype_size(tt->dtype);
		memcpy(out->offset, c->offsets, t->ndim * sizeof(c->offsets[0]));
		memcpy(out->shape, c->sizes, t->ndim * sizeof(c->sizes[0]));
		memcpy(out->stride, tt->stride, t->ndim * sizeof(tt->stride[0]));
	}
	nck_torch_file_free(tf);
	return rc;
}

static int dist_read_torch(nck_catalog *cat, nck_diag *diag)
{
	const nck_entry *meta = dist_find(cat, ".metadata");
	nck_chunk *chunks = NULL;
	nck_dcp *dcp = NULL;
	void *data = NULL;
	size_t len;
	int rc;

	if (!meta)
		return nck_diag_set(diag, -EBADMSG, cat->container->path, -1,
				    "torch_dist checkpoint without .metadata");
	if ((rc = dist_slurp(&data, &len, cat, meta, diag)) < 0 ||
	    (rc = nck_dcp_parse(&dcp, data, len, meta->path, diag)) < 0)
		goto out;
	for (size_t i = 0; i < dcp->n_tensors && rc == 0; i++) {
		const nck_dcp_tensor *t = &dcp->tensors[i];
		nck_chunk *nc = realloc(chunks, (t->n_chunks + 1) * sizeof(*chunks));

		if (!nc) {
			rc = -ENOMEM;
			break;
		}
		chunks = nc;
		for (size_t c = 0; c < t->n_chunks && rc == 0; c++)
			rc = dist_dcp_chunk(&chunks[c], cat, t, &t->chunks[c], diag);
		if (rc == 0)
			rc = dist_add(cat, t->fqn, t->dtype, t->ndim, t->size, chunks, t->n_chunks);
	}
	for (size_t i = 0; i < dcp->n_bytes && rc == 0; i++) {
		const nck_dcp_bytes *b = &dcp->bytes[i];
		const nck_entry *e = dist_find(cat, b->item.file);
		char name[1024];
		uint32_t fi;

		if (!dist_object_name(name, sizeof(name), b->fqn))
			snprintf(name, sizeof(name), "%s", b->fqn);
		if (!e || b->item.offset > e->size || b->item.length > e->size - b->item.offset) {
			rc = nck_diag_set(diag, -EBADMSG, meta->path, -1, "'%s': item outside %s", b->fqn,
					  b->item.file);
			break;
		}
		if ((rc = nck_catalog_add_file(cat, e, &fi, diag)) == 0)
			rc = dist_add_object(cat, name, fi, b->item.offset, b->item.length);
	}
out:
	if (rc == -ENOMEM || rc == -ENAMETOOLONG)
		nck_diag_set(diag, rc, cat->container->path, -1, "%s", strerror(-rc));
	nck_dcp_free(dcp);
	free(chunks);
	free(data);
	return rc;
}

/* ---- zarr -------------------------------------------------------------------- */

/* One zarr array: <dir>/<key>/.zarray and its chunk files. */
static int dist_zarr_array(nck_catalog *cat, const char *key, const nck_entry *zarray, nck_diag *diag)
{
	uint64_t idx[NCK_MAX_DIMS] = { 0 }, n_chunks = 1;
	nck_chunk *chunks = NULL;
	nck_zarr_array a;
	size_t len, m = 0;
	void *json = NULL;
	int rc;

	if ((rc = dist_slurp(&json, &len, cat, zarray, diag)) < 0 ||
	    (rc = nck_zarr_parse(&a, json, len, zarray->path, diag)) < 0)
		goto out;
	for (uint32_t d = 0; d < a.ndim; d++)
		n_chunks *= a.grid[d];
	chunks = calloc(n_chunks + 1, sizeof(*chunks));
	if (!chunks) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t c = 0; c < n_chunks; c++) {
		char ck[256], rel[1536];
		const nck_entry *e;
		nck_chunk *ch = &chunks[m];
		int64_t stride = 1;

		if ((rc = nck_zarr_chunk_key(ck, sizeof(ck), &a, idx)) < 0)
			goto out;
		snprintf(rel, sizeof(rel), "%s/%s", key, ck);
		e = dist_find(cat, rel);
		if (!e) {
			rc = nck_diag_set(diag, -ENOTSUP, zarray->path, -1,
					  "chunk %s is missing (fill values are not supported)", ck);
			goto out;
		}
		if (e->size != a.chunk_bytes) {
			rc = nck_diag_set(diag, -EBADMSG, e->path, -1, "chunk of %llu bytes, expected %llu",
					  (unsigned long long)e->size, (unsigned long long)a.chunk_bytes);
			goto out;
		}
		if ((rc = nck_catalog_add_file(cat, e, &ch->file, diag)) < 0)
			goto out;
		for (uint32_t d = a.ndim; d-- > 0;) {
			ch->offset[d] = idx[d] * a.chunks[d];
			ch->shape[d] = a.shape[d] - ch->offset[d] < a.chunks[d] ? a.shape[d] - ch->offset[d]
										 : a.chunks[d];
			ch->stride[d] = stride;
			stride *= (int64_t)a.chunks[d];
		}
		m++;
		for (uint32_t d = a.ndim; d-- > 0;) {
			if (++idx[d] < a.grid[d])
				break;
			idx[d] = 0;
		}
	}
	rc = dist_add(cat, key, a.dtype, a.ndim, a.shape, chunks, m);
out:
	free(chunks);
	free(json);
	return rc;
}

static int dist_read_zarr(nck_catalog *cat, nck_diag *diag)
{
	const char *dir = cat->layout.dist_dir;
	size_t dl = strlen(dir);
	int rc = 0;

	for (size_t i = 0; i < cat->container->n_entries && rc == 0; i++) {
		const nck_entry *e = &cat->container->entries[i];
		const char *rel = dl ? e->path + dl + 1 : e->path;
		size_t rl;
		char key[1024];

		if (e->kind != NCK_ENTRY_FILE || (dl && (strncmp(e->path, dir, dl) != 0 || e->path[dl] != '/')))
			continue;
		rl = strlen(rel);
		/* <key>/shard_<offsets>_<shape>.pt: a ShardedObject (common strategy). */
		if (rl > 3 && strcmp(rel + rl - 3, ".pt") == 0 && strstr(rel, "/shard_") &&
		    dist_object_name(key, sizeof(key), rel)) {
			uint32_t fi;

			if ((rc = nck_catalog_add_file(cat, e, &fi, diag)) == 0)
				rc = dist_add_object(cat, key, fi, 0, e->size);
			continue;
		}
		/* <key>/.zarray, with no further '/' in <key>. */
		if (rl < 9 || strcmp(rel + rl - 8, "/.zarray") != 0 || rl - 8 >= sizeof(key))
			continue;
		memcpy(key, rel, rl - 8);
		key[rl - 8] = '\0';
		if (strchr(key, '/'))
			continue;
		rc = dist_zarr_array(cat, key, e, diag);
	}
	return rc;
}

/* ---- entry point ------------------------------------------------------------- */

/* The sharded_backend of metadata.json: "torch_dist" or "zarr". */
static int dist_backend(char *out, size_t size, nck_catalog *cat, nck_diag *diag)
{
	const nck_entry *e = dist_find(cat, "metadata.json");
	json_error_t jerr;
	json_t *root;
	const char *b;
	size_t len;
	void *data;
	int rc;

	if (!e && dist_find(cat, ".metadata")) {
		snprintf(out, size, "torch_dist"); /* plain PyTorch DCP: no metadata.json */
		return 0;
	}
	if (!e)
		return nck_diag_set(diag, -EBADMSG, cat->container->path, -1, "no metadata.json");
	if ((rc = dist_slurp(&data, &len, cat, e, diag)) < 0)
		return rc;
	root = json_loadb(data, len, 0, &jerr);
	free(data);
	b = root ? json_string_value(json_object_get(root, "sharded_backend")) : NULL;
	if (!b) {
		rc = nck_diag_set(diag, -EBADMSG, e->path, root ? -1 : jerr.position,
				  "no sharded_backend%s%s", root ? "" : ": ", root ? "" : jerr.text);
	} else {
		snprintf(out, size, "%s", b);
	}
	json_decref(root);
	return rc;
}

static int nck_catalog_read_dist(nck_catalog *cat, nck_diag *diag)
{
	char backend[32];
	int rc;

	cat->info.model = "gpt";
	if ((rc = dist_backend(backend, sizeof(backend), cat, diag)) < 0)
		return rc;
	if (strcmp(backend, "torch_dist") == 0) {
		cat->layout.name = "torch_dist";
		rc = dist_read_torch(cat, diag);
	} else if (strcmp(backend, "zarr") == 0) {
		cat->layout.name = "zarr";
		rc = dist_read_zarr(cat, diag);
	} else {
		return nck_diag_set(diag, -ENOTSUP, cat->container->path, -1,
				    "sharded_backend '%s' is not supported", backend);
	}
	if (rc == 0) {
		bool gpt = false;

		for (size_t i = 0; i < cat->n_tensors && !gpt; i++)
			gpt = nck_param_is_gpt_key(cat->tensors[i].name);
		cat->info.model = gpt ? "gpt" : "other";
	}
	return rc;
}

/* ---- detection and registration ---------------------------------------------- */

/* NeMo 2: a context/ directory and weights/metadata.json. */
static int dist_detect_nemo2(nck_layout *out, const nck_container *c, nck_arena *arena,
			     nck_diag *diag)
{
	(void)arena;
	(void)diag;
	if (!nck_detect_has_dir(c, "context") || !nck_detect_find(c, "weights/metadata.json"))
		return 0;
	out->kind = NCK_LAYOUT_DIST;
	out->format = "nemo2";
	out->name = "torch_dist";
	out->dist_dir = "weights";
	out->config = nck_detect_find(c, "context/model.yaml");
	return 1;
}

/* NeMo 1 distributed: model_weights/metadata.json. */
static int dist_detect_nemo(nck_layout *out, const nck_container *c, nck_arena *arena,
			    nck_diag *diag)
{
	(void)arena;
	(void)diag;
	if (!nck_detect_find(c, "model_weights/metadata.json"))
		return 0;
	out->kind = NCK_LAYOUT_DIST;
	out->format = "nemo";
	out->name = "distributed";
	out->dist_dir = "model_weights";
	out->config = nck_detect_find(c, "model_config.yaml");
	return 1;
}

/* Megatron-LM torch_dist: metadata.json in the newest iteration directory
 * (or release/). */
static int dist_detect_megatron(nck_layout *out, const nck_container *c, nck_arena *arena,
				nck_diag *diag)
{
	const char *iter = nck_detect_megatron_iter(c, arena);
	char meta[64];

	(void)diag;
	if (!iter)
		return 0;
	snprintf(meta, sizeof(meta), "%smetadata.json", iter);
	if (!nck_detect_find(c, meta))
		return 0;
	out->kind = NCK_LAYOUT_DIST;
	out->format = "megatron";
	out->name = "torch_dist";
	out->dist_dir = nck_arena_strndup(arena, iter, strlen(iter) - 1);
	return out->dist_dir ? 1 : -ENOMEM;
}

/* A torch_dist directory (metadata.json), or a plain PyTorch DCP
 * checkpoint, which has only .metadata and __R_I.distcp files. */
static int dist_detect_root(nck_layout *out, const nck_container *c, nck_arena *arena,
			    nck_diag *diag)
{
	const nck_entry *meta = nck_detect_find(c, "metadata.json");

	(void)arena;
	(void)diag;
	if (!nck_detect_find(c, ".metadata") || (!meta && !nck_detect_find(c, "__0_0.distcp")))
		return 0;
	out->kind = NCK_LAYOUT_DIST;
	out->format = meta ? "megatron" : "dcp";
	out->name = "torch_dist";
	out->dist_dir = "";
	return 1;
}

const nck_catalog_reader nck_catalog_nemo2_dist_reader = {
	.name = "nemo2 dist",
	.detect = dist_detect_nemo2,
	.read = nck_catalog_read_dist,
};

const nck_catalog_reader nck_catalog_nemo_dist_reader = {
	.name = "nemo dist",
	.detect = dist_detect_nemo,
	.read = nck_catalog_read_dist,
};

const nck_catalog_reader nck_catalog_megatron_dist_reader = {
	.name = "megatron dist",
	.detect = dist_detect_megatron,
	.read = nck_catalog_read_dist,
};

const nck_catalog_reader nck_catalog_root_dist_reader = {
	.name = "root dist",
	.detect = dist_detect_root,
	.read = nck_catalog_read_dist,
};
