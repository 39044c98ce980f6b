/* SPDX-License-Identifier: MIT */
/*
 * merged/ safetensors files (see merged.h). Headers are written with
 * jansson (JSON_PRESERVE_ORDER keeps __metadata__ first and tensors sorted)
 * and padded to 8 bytes as the reference implementation does.
 */
#include "view/merged.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Default shard size: Hugging Face's save_pretrained default (5 GB spelled
 * as GiB here, as the issue asks). */
#define MERGED_SHARD_DEFAULT (5ull << 30)
/* safetensors rejects headers over 100 MB. */
#define MERGED_MAX_HEADER 100000000u

/* Builds the header of one shard. */
static int merged_header(nck_merged_shard *s, const char *source, const nck_catalog_info *in)
{
	json_t *root = json_object(), *meta = json_object();
	char tp[16], pp[16];
	char *text = NULL;
	size_t n, pad;
	int rc = -ENOMEM;

	if (!root || !meta)
		goto out;
	snprintf(tp, sizeof(tp), "%u", in->tp);
	snprintf(pp, sizeof(pp), "%u", in->pp);
	json_object_set_new(meta, "format", json_string("pt"));
	json_object_set_new(meta, "source", json_string(source ? source : ""));
	json_object_set_new(meta, "source_format", json_string(in->format));
	json_object_set_new(meta, "source_tp", json_string(tp));
	json_object_set_new(meta, "source_pp", json_string(pp));
	json_object_set_new(root, "__metadata__", meta);
	meta = NULL;
	for (size_t i = 0; i < s->n_tensors; i++) {
		const nck_tensor *t = s->tensors[i];
		json_t *shape = json_array(), *o = json_object();

		for (uint32_t d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
		json_object_set_new(o, "dtype", json_string(nck_dtype_name(t->dtype)));
		json_object_set_new(o, "shape", shape);
		json_object_set_new(o, "data_offsets",
				    json_pack("[I, I]", (json_int_t)s->offsets[i],
					      (json_int_t)s->offsets[i + 1]));
		json_object_set_new(root, t->name, o);
	}
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		goto out;
	n = strlen(text);
	pad = (8 - n % 8) % 8;
	if (n + pad > MERGED_MAX_HEADER) {
		rc = -E2BIG;
		goto out;
	}
	s->header = malloc(8 + n + pad);
	if (!s->header)
		goto out;
	for (int i = 0; i < 8; i++)
		s->header[i] = (char)((uint64_t)(n + pad) >> (8 * i));
	memcpy(s->header + 8, text, n);
	memset(s->header + 8 + n, ' ', pad);
	s->header_len = 8 + n + pad;
	s->size = s->header_len + s->offsets[s->n_tensors];
	rc = 0;
out:
	free(text);
	json_decref(meta);
	json_decref(root);
	return rc;
}

/* The index file: total size and which shard holds each tensor. */
static int merged_index(nck_merged *m)
{
	json_t *root = json_object(), *map = json_object();
	uint64_t total = 0;
	char *text;

	if (!root || !map) {
		json_decref(root);
		json_decref(map);
		return -ENOMEM;
	}
	for (size_t s = 0; s < m->n_shards; s++) {
		total += m->shards[s].offsets[m->shards[s].n_tensors];
		for (size_t i = 0; i < m->shards[s].n_tensors; i++)
			json_object_set_new(map, m->shards[s].tensors[i]->name,
					    json_string(m->shards[s].name));
	}
	json_object_set_new(root, "metadata", json_pack("{s:I}", "total_size", (json_int_t)total));
	json_object_set_new(root, "weight_map", map);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	m->index_len = strlen(text);
	m->index_json = text;
	return 0;
}

int nck_merged_build(nck_merged **out, const nck_catalog *cat, uint64_t shard_size,
		     const char *source)
{
	const nck_catalog_info *in = nck_catalog_get_info(cat);
	size_t n = nck_catalog_count(cat), n_w = 0, cap;
	nck_merged *m = calloc(1, sizeof(*m));
	int rc = -ENOMEM;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	if (!shard_size)
		shard_size = MERGED_SHARD_DEFAULT;
	for (size_t i = 0; i < n; i++)
		n_w += nck_catalog_at(cat, i)->role == NCK_ROLE_WEIGHT;
	cap = n_w ? n_w : 1;
	m->shards = calloc(cap, sizeof(*m->shards));
	if (!m->shards)
		goto out;
	/* Greedy in name order: a new shard when the next tensor would overflow. */
	for (size_t i = 0; i < n; i++) {
		const nck_tensor *t = nck_catalog_at(cat, i);
		uint64_t b = nck_tensor_bytes(t);
		nck_merged_shard *s = m->n_shards ? &m->shards[m->n_shards - 1] : NULL;

		if (t->role != NCK_ROLE_WEIGHT)
			continue;
		if (!s || (s->n_tensors && s->offsets[s->n_tensors] + b > shard_size)) {
			s = &m->shards[m->n_shards++];
			s->tensors = calloc(n_w, sizeof(*s->tensors));
			s->offsets = calloc(n_w + 1, sizeof(*s->offsets));
			if (!s->tensors || !s->offsets)
				goto out;
		}
		s->tensors[s->n_tensors] = t;
		s->offsets[s->n_tensors + 1] = s->offsets[s->n_tensors] + b;
		s->n_tensors++;
	}
	if (m->n_shards == 0)
		m->n_shards = 1; /* an empty model.safetensors: header only */
	for (size_t s = 0; s < m->n_shards; s++) {
		if (!m->shards[s].offsets && !(m->shards[s].offsets = calloc(1, sizeof(uint64_t))))
			goto out;
		if (m->n_shards == 1)
			snprintf(m->shards[s].name, sizeof(m->shards[s].name), "model.safetensors");
		else
			snprintf(m->shards[s].name, sizeof(m->shards[s].name),
				 "model-%05zu-of-%05zu.safetensors", s + 1, m->n_shards);
		if ((rc = merged_header(&m->shards[s], source, in)) < 0)
			goto out;
	}
	if (m->n_shards > 1 && (rc = merged_index(m)) < 0)
		goto out;
	*out = m;
	return 0;
out:
	nck_merged_free(m);
	return rc < 0 ? rc : -ENOMEM;
}

void nck_merged_free(nck_merged *m)
{
	if (!m)
		return;
	for (size_t s = 0; m->shards && s < m->n_shards; s++) {
		free(m->shards[s].header);
		free(m->shards[s].tensors);
		free(m->shards[s].offsets);
	}
	free(m->shards);
	free(m->index_json);
	free(m);
}

int nck_merged_read(const nck_catalog *cat, const nck_merged_shard *s, uint64_t off, void *buf,
		    size_t len)
{
	unsigned char *p = buf;
	size_t lo = 0, hi;
	int rc;

	if (off > s->size || len > s->size - off)
		return -EINVAL;
	if (off < s->header_len) {
		size_t n = s->header_len - off < len ? (size_t)(s->header_len - off) : len;

		memcpy(p, s->header + off, n);
		p += n;
		off += n;
		len -= n;
	}
	off -= s->header_len; /* now a data-section offset */
	/* The first tensor that holds `off`: binary search over the offsets. */
	hi = s->n_tensors;
	while (lo + 1 < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->offsets[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	for (size_t i = lo; len > 0 && i < s->n_tensors; i++) {
		uint64_t in = off - s->offsets[i], left = s->offsets[i + 1] - off;
		size_t n = left < len ? (size_t)left : len;

		if (n && (rc = nck_catalog_read(cat, s->tensors[i], in, p, n)) < 0)
			return rc;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}
