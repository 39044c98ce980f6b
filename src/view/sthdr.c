/* SPDX-License-Identifier: MIT */
/*
 * Safetensors headers (see sthdr.h), written with jansson;
 * JSON_PRESERVE_ORDER keeps __metadata__ first and the tensors in order.
 */
#include "view/sthdr.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The reference reader rejects headers over 100 MB. */
#define ST_MAX_HEADER 100000000u

int nck_st_header(char **out, size_t *len_out, const nck_st_entry *e, size_t n,
		  const char *const *meta)
{
	json_t *root = json_object(), *md = json_object();
	uint64_t at = 0;
	char *text = NULL, *h;
	size_t len, pad;
	int rc = -ENOMEM;

	*out = NULL;
	if (!root || !md)
		goto out;
	for (size_t i = 0; meta && meta[i] && meta[i + 1]; i += 2)
		json_object_set_new(md, meta[i], json_string(meta[i + 1]));
	json_object_set_new(root, "__metadata__", md);
	md = NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *shape = json_array(), *o = json_object();

		if (!shape || !o) {
			json_decref(shape);
			json_decref(o);
			goto out;
		}
		for (uint32_t d = 0; d < e[i].ndim; d++)
			json_array_append_new(shape, json_integer((json_int_t)e[i].shape[d]));
		json_object_set_new(o, "dtype", json_string(nck_dtype_name(e[i].dtype)));
		json_object_set_new(o, "shape", shape);
		json_object_set_new(o, "data_offsets",
				    json_pack("[I, I]", (json_int_t)at, (json_int_t)(at + e[i].bytes)));
		json_object_set_new(root, e[i].name, o);
		at += e[i].bytes;
	}
	if (!(text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		goto out;
	len = strlen(text);
	pad = (8 - len % 8) % 8;
	rc = -E2BIG;
	if (len + pad > ST_MAX_HEADER)
		goto out;
	rc = -ENOMEM;
	if (!(h = malloc(8 + len + pad)))
		goto out;
	for (int i = 0; i < 8; i++)
		h[i] = (char)((uint64_t)(len + pad) >> (8 * i));
	memcpy(h + 8, text, len);
	memset(h + 8 + len, ' ', pad);
	*out = h;
	*len_out = 8 + len + pad;
	rc = 0;
out:
	free(text);
	json_decref(md);
	json_decref(root);
	return rc;
}

int nck_st_index(char **out, size_t *len_out, const char *const *tensor, const char *const *file,
		 size_t n, uint64_t total)
{
	json_t *root = json_object(), *map = json_object();
	char *text = NULL;

	*out = NULL;
	if (!root || !map)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (json_object_set_new(map, tensor[i], json_string(file[i])) < 0)
			goto out;
	json_object_set_new(root, "metadata", json_pack("{s:I}", "total_size", (json_int_t)total));
	json_object_set_new(root, "weight_map", map);
	map = NULL;
	if (!(text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
		goto out;
	*out = text;
	*len_out = strlen(text);
out:
	json_decref(map);
	json_decref(root);
	return *out ? 0 : -ENOMEM;
}
