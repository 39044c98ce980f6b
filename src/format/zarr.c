/* SPDX-License-Identifier: MIT */
/*
 * zarr v2 `.zarray` reader and chunk-key writer (see zarr.h).
 *
 * Fields as zarr-python 2 `decode_array_metadata` reads them
 * (`zarr/meta.py`), checked against what Megatron-Core's zarr strategy
 * writes (shared/spec/tensor-formats.md §4): compressor null, filters null,
 * order "C", fill_value null, no dimension_separator (meaning "."). The JSON
 * is parsed with jansson and copied into the caller's struct; no json_t
 * outlives nck_zarr_parse().
 *
 * Thread-safety: no shared state.
 */
#include "format/zarr.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "util/ckd.h"

/* Reads an array of at most NCK_MAX_DIMS integers (>= min) into dims. */
static int zarr_dims(const json_t *arr, const char *key, uint64_t min, uint64_t *dims,
		     uint32_t *ndim, const char *name, nck_diag *diag)
{
	size_t i;

	if (!json_is_array(arr))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "zarr array %s: '%s' missing or not a list", name, key);
	if (json_array_size(arr) > NCK_MAX_DIMS)
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "zarr array %s: %zu dimensions, at most %d are supported", name,
				    json_array_size(arr), NCK_MAX_DIMS);
	for (i = 0; i < json_array_size(arr); i++) {
		const json_t *v = json_array_get(arr, i);

		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    (uint64_t)json_integer_value(v) < min)
			return nck_diag_set(diag, -EBADMSG, name, -1,
					    "zarr array %s: %s[%zu] is not an integer >= %llu", name,
					    key, i, (unsigned long long)min);
		dims[i] = (uint64_t)json_integer_value(v);
	}
	*ndim = (uint32_t)i;
	return 0;
}

/* The "id" of a numcodecs codec config, for messages. */
static const char *zarr_codec_id(const json_t *codec)
{
	const char *id = json_string_value(json_object_get(codec, "id"));

	return id ? id : "?";
}

/* Refuses compressors and filters: chunk files must be raw bytes. */
static int zarr_check_codecs(const json_t *root, const char *name, nck_diag *diag)
{
	const json_t *comp = json_object_get(root, "compressor");
	const json_t *filters = json_object_get(root, "filters");

	if (!comp)
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "zarr array %s: 'compressor' is missing", name);
	if (json_is_object(comp))
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "compressed zarr array %s: compressor '%s' is not supported",
				    name, zarr_codec_id(comp));
	if (!json_is_null(comp))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "zarr array %s: 'compressor' is neither null nor an object", name);
	/* An empty list means no filters just as null does. */
	if (json_is_array(filters) && json_array_size(filters) > 0)
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "zarr array %s: filter '%s' is not supported", name,
				    zarr_codec_id(json_array_get(filters, 0)));
	if (filters && !json_is_null(filters) && !json_is_array(filters))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "zarr array %s: 'filters' is neither null nor a list", name);
	return 0;
}

/* Reads dtype, order and dimension_separator. */
static int zarr_layout(nck_zarr_array *a, const json_t *root, const char *name, nck_diag *diag)
{
	const json_t *dt = json_object_get(root, "dtype"), *ord = json_object_get(root, "order");
	const json_t *sep = json_object_get(root, "dimension_separator");
	const char *s;

	if (json_is_array(dt))
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "zarr array %s: structured dtypes are not supported", name);
	if (!json_is_string(dt))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "zarr array %s: 'dtype' missing or not a string", name);
	/* Includes the literal "bfloat16" that Megatron writes for <V2. */
	a->dtype = nck_dtype_from_numpy(json_string_value(dt));
	if (a->dtype == NCK_DTYPE_UNKNOWN)
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "zarr array %s: dtype '%s' is not supported", name,
				    json_string_value(dt));
	s = json_string_value(ord);
	if (!s || (strcmp(s, "C") != 0 && strcmp(s, "F") != 0))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "zarr array %s: 'order' missing or not \"C\"/\"F\"", name);
	if (s[0] == 'F')
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "zarr array %s: Fortran order is not supported", name);
	a->order = 'C';
	a->dim_sep = '.';
	if (sep && !json_is_null(sep)) {
		s = json_string_value(sep);
		if (!s || (strcmp(s, ".") != 0 && strcmp(s, "/") != 0))
			return nck_diag_set(diag, -EBADMSG, name, -1,
					    "zarr array %s: dimension_separator is not \".\" or \"/\"",
					    name);
		a->dim_sep = s[0];
	}
	return 0;
}

/* Reads fill_value: null, a number, a bool, or "NaN"/"Infinity"/"-Infinity". */
static int zarr_fill(nck_zarr_array *a, const json_t *fv, const char *name, nck_diag *diag)
{
	const char *s = json_string_value(fv);

	a->has_fill = true;
	if (!fv || json_is_null(fv))
		a->has_fill = false;
	else if (json_is_number(fv))
		a->fill_value = json_number_value(fv);
	else if (json_is_boolean(fv))
		a->fill_value = json_is_true(fv) ? 1.0 : 0.0;
	else if (s && strcmp(s, "NaN") == 0)
		a->fill_value = NAN;
	else if (s && strcmp(s, "Infinity") == 0)
		a->fill_value = INFINITY;
	else if (s && strcmp(s, "-Infinity") == 0)
		a->fill_value = -INFINITY;
	else
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "zarr array %s: fill_value is not a number", name);
	return 0;
}

/* Chunk grid and the byte size of one chunk, with checked arithmetic. */
static int zarr_grid(nck_zarr_array *a, const char *name, nck_diag *diag)
{
	uint64_t bytes = nck_dtype_size(a->dtype);
	int rc = 0;

	for (uint32_t i = 0; i < a->ndim; i++) {
		a->grid[i] = a->shape[i] / a->chunks[i] + (a->shape[i] % a->chunks[i] != 0);
		NCK_CKD_MUL(&bytes, bytes, a->chunks[i]);
	}
	a->chunk_bytes = bytes;
out:
	if (rc < 0)
		nck_diag_set(diag, rc, name, -1, "zarr array %s: chunk size overflows", name);
	return rc;
}

int nck_zarr_parse(nck_zarr_array *out, const void *json, size_t len, const char *name,
		   nck_diag *diag)
{
	nck_zarr_array a = { 0 };
	const json_t *fmt;
	json_error_t jerr;
	json_t *root;
	uint32_t nchunks = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	name = name ? name : "?";
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return nck_diag_set(diag, -EBADMSG, name, jerr.position,
				    "zarr array %s: .zarray is not valid JSON: %s", name, jerr.text);
	if (!json_is_object(root)) {
		rc = nck_diag_set(diag, -EBADMSG, name, 0,
				  "zarr array %s: .zarray is not an object", name);
		goto out;
	}
	fmt = json_object_get(root, "zarr_format");
	if (!json_is_integer(fmt)) {
		rc = nck_diag_set(diag, -EBADMSG, name, -1,
				  "zarr array %s: 'zarr_format' missing or not an integer", name);
		goto out;
	}
	if (json_integer_value(fmt) != 2) {
		rc = nck_diag_set(diag, -ENOTSUP, name, -1,
				  "zarr array %s: zarr_format %lld is not supported (only 2)", name,
				  (long long)json_integer_value(fmt));
		goto out;
	}
	if ((rc = zarr_dims(json_object_get(root, "shape"), "shape", 0, a.shape, &a.ndim, name,
			    diag)) < 0 ||
	    (rc = zarr_dims(json_object_get(root, "chunks"), "chunks", 1, a.chunks, &nchunks, name,
			    diag)) < 0)
		goto out;
	if (nchunks != a.ndim) {
		rc = nck_diag_set(diag, -EBADMSG, name, -1,
				  "zarr array %s: chunks has %u dimensions, shape has %u", name,
				  nchunks, a.ndim);
		goto out;
	}
	if ((rc = zarr_check_codecs(root, name, diag)) < 0 ||
	    (rc = zarr_layout(&a, root, name, diag)) < 0 ||
	    (rc = zarr_fill(&a, json_object_get(root, "fill_value"), name, diag)) < 0 ||
	    (rc = zarr_grid(&a, name, diag)) < 0)
		goto out;
	*out = a;
out:
	json_decref(root);
	return rc;
}

int nck_zarr_chunk_key(char *buf, size_t size, const nck_zarr_array *a, const uint64_t *idx)
{
	size_t n = 0;
	int w;

	if (size == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	/* A 0-d array has one chunk, named "0" (zarr v2 spec). */
	if (a->ndim == 0)
		return snprintf(buf, size, "0") < (int)size ? 0 : -ENAMETOOLONG;
	for (uint32_t i = 0; i < a->ndim; i++) {
		if (idx[i] >= a->grid[i])
			return -EINVAL;
		w = snprintf(buf + n, size - n, "%s%llu", i ? (a->dim_sep == '/' ? "/" : ".") : "",
			     (unsigned long long)idx[i]);
		if (w < 0 || (size_t)w >= size - n) {
			buf[0] = '\0';
			return -ENAMETOOLONG;
		}
		n += (size_t)w;
	}
	return 0;
}
