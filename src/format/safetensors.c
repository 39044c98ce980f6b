/* SPDX-License-Identifier: MIT */
/*
 * safetensors header reader (see safetensors.h).
 *
 * The JSON header is parsed with jansson and copied at once into the file's
 * arena; no json_t outlives nck_st_open(). Checks, in the reference's order
 * (huggingface/safetensors `safetensors/src/tensor.rs`, read_metadata and
 * Metadata::validate; shared/spec/tensor-formats.md §5): size field, header
 * bound, JSON object, per-tensor fields, then the layout sorted by
 * data_offsets. Every number from the file goes through checked arithmetic.
 * A dtype the reference knows but nck_dtype lacks is reported as -ENOTSUP
 * only once the whole header has been found valid, so a malformed file is
 * always -EBADMSG.
 *
 * Thread-safety: no shared state.
 */
#include "format/safetensors.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/ckd.h"

/* The header-size field: u64, little-endian, at the start of the file. */
#define ST_SIZE_FIELD 8u

#define ST_STR_(x) #x
#define ST_STR(x) ST_STR_(x)

/* ---- dtypes --------------------------------------------------------------- */

/* Every dtype of safetensors `enum Dtype` with its size in bits
 * (tensor-formats.md §5 table); nck_dtype_from_name() says which we serve. */
static const struct st_dtype {
	const char *name;
	unsigned bits;
} st_dtypes[] = {
	{ "BOOL", 8 }, { "F4", 4 }, { "F6_E2M3", 6 }, { "F6_E3M2", 6 },
	{ "U8", 8 }, { "I8", 8 }, { "F8_E5M2", 8 }, { "F8_E4M3", 8 },
	{ "F8_E8M0", 8 }, { "F8_E4M3FNUZ", 8 }, { "F8_E5M2FNUZ", 8 },
	{ "I16", 16 }, { "U16", 16 }, { "F16", 16 }, { "BF16", 16 },
	{ "I32", 32 }, { "U32", 32 }, { "F32", 32 },
	{ "C64", 64 }, { "F64", 64 }, { "I64", 64 }, { "U64", 64 },
};

/* Bits per element of a safetensors dtype name; 0 if the format has no such dtype. */
static unsigned st_dtype_bits(const char *name)
{
	for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
		if (strcmp(st_dtypes[i].name, name) == 0)
			return st_dtypes[i].bits;
	return 0;
}

/* ---- parse state ---------------------------------------------------------- */

/* A tensor's data range, relative to the data section, for the layout check. */
typedef struct st_span {
	uint64_t begin, end; /* data_offsets, end exclusive */
	uint64_t size;	     /* bytes the shape and dtype need */
	size_t idx;	     /* index into f->tensors */
} st_span;

typedef struct st_parse {
	const char *path;	 /* source name, for messages */
	const char *hdr;	 /* the JSON bytes (not NUL-terminated) */
	uint64_t hdr_len;	 /* N */
	uint64_t hdr_off;	 /* absolute offset of hdr[0] */
	uint64_t data_start;	 /* absolute offset of the data section */
	uint64_t data_len;	 /* bytes from data_start to the end of the range */
	nck_st_file *f;		 /* the record being filled */
	st_span *spans;		 /* one per tensor, malloc'd */
	const char *unsupported; /* first tensor we cannot serve, or NULL */
	const char *why;	 /* and why */
	nck_diag *diag;
} st_parse;

/*
 * Absolute offset of `"key"` in the header: the first occurrence, a best
 * effort for messages (jansson reports no positions for valid values).
 * Falls back to the start of the header.
 */
static int64_t st_key_offset(const st_parse *p, const char *key)
{
	size_t klen = strlen(key);
	const char *h = p->hdr, *end = p->hdr + p->hdr_len, *m;

	while (h < end && (m = memmem(h, (size_t)(end - h), key, klen)) != NULL) {
		if (m > p->hdr && m[-1] == '"' && (size_t)(end - m) > klen && m[klen] == '"')
			return (int64_t)(p->hdr_off + (uint64_t)(m - 1 - p->hdr));
		h = m + 1;
	}
	return (int64_t)p->hdr_off;
}

/* Reads a JSON integer that must be >= 0; false otherwise. */
static bool st_json_u64(const json_t *v, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return false;
	i = json_integer_value(v);
	if (i < 0)
		return false;
	*out = (uint64_t)i;
	return true;
}

/* ---- header entries ------------------------------------------------------- */

/* Copies "__metadata__" (null, or an object of strings) as compact JSON. */
static int st_parse_metadata(st_parse *p, json_t *v)
{
	const char *key;
	json_t *val;
	char *s;

	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, "__metadata__"),
				    "__metadata__ is not an object");
	json_object_foreach(v, key, val) {
		if (!json_is_string(val))
			return nck_diag_set(p->diag, -EBADMSG, p->path,
					    st_key_offset(p, "__metadata__"),
					    "__metadata__ value of '%s' is not a string", key);
	}
	s = json_dumps(v, JSON_COMPACT);
	if (!s)
		return nck_diag_set(p->diag, -ENOMEM, p->path, -1, "out of memory");
	p->f->metadata_json = nck_arena_strndup(&p->f->arena, s, strlen(s));
	free(s);
	if (!p->f->metadata_json)
		return nck_diag_set(p->diag, -ENOMEM, p->path, -1, "out of memory");
	return 0;
}

/* Reads "shape" into t and the element count into *nelem (checked). */
static int st_parse_shape(st_parse *p, const char *name, json_t *shape, nck_st_tensor *t,
			  uint64_t *nelem)
{
	uint64_t n = 1, d;
	size_t i;

	if (!json_is_array(shape))
		return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, name),
				    "tensor '%s': shape is not an array", name);
	for (i = 0; i < json_array_size(shape); i++) {
		if (!st_json_u64(json_array_get(shape, i), &d))
			return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, name),
					    "tensor '%s': shape[%zu] is not a non-negative integer",
					    name, i);
		/* Like the reference's try_fold(checked_mul): overflow is an error
		 * even when a later dimension is 0. */
		if (__builtin_mul_overflow(n, d, &n))
			return nck_diag_set(p->diag, -EOVERFLOW, p->path, st_key_offset(p, name),
					    "tensor '%s': shape product overflows", name);
		if (i < NCK_MAX_DIMS)
			t->shape[i] = d;
	}
	if (i > NCK_MAX_DIMS && !p->unsupported) {
		p->unsupported = t->name;
		p->why = "more than " ST_STR(NCK_MAX_DIMS) " dimensions";
	}
	t->ndim = i > NCK_MAX_DIMS ? NCK_MAX_DIMS : (uint32_t)i;
	*nelem = n;
	return 0;
}

/* Parses one tensor entry {dtype, shape, data_offsets} into t and its span. */
static int st_parse_tensor(st_parse *p, const char *name, json_t *v, nck_st_tensor *t,
			   st_span *span)
{
	json_t *dtype, *offs;
	uint64_t nelem = 0, nbits = 0;
	unsigned bits;
	int rc;

	if (!json_is_object(v))
		return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, name),
				    "tensor '%s': entry is not an object", name);
	dtype = json_object_get(v, "dtype");
	offs = json_object_get(v, "data_offsets");
	t->name = nck_arena_strndup(&p->f->arena, name, strlen(name));
	if (!t->name)
		return nck_diag_set(p->diag, -ENOMEM, p->path, -1, "out of memory");
	if (!json_is_string(dtype))
		return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, name),
				    "tensor '%s': dtype missing or not a string", name);
	bits = st_dtype_bits(json_string_value(dtype));
	if (!bits)
		return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, name),
				    "tensor '%s': unknown dtype '%s'", name,
				    json_string_value(dtype));
	t->dtype = nck_dtype_from_name(json_string_value(dtype));
	if (t->dtype == NCK_DTYPE_UNKNOWN && !p->unsupported) {
		p->unsupported = t->name;
		p->why = "dtype is not supported";
	}
	if ((rc = st_parse_shape(p, name, json_object_get(v, "shape"), t, &nelem)) < 0)
		return rc;
	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    !st_json_u64(json_array_get(offs, 0), &span->begin) ||
	    !st_json_u64(json_array_get(offs, 1), &span->end))
		return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, name),
				    "tensor '%s': data_offsets is not [begin, end]", name);
	if (__builtin_mul_overflow(nelem, (uint64_t)bits, &nbits))
		return nck_diag_set(p->diag, -EOVERFLOW, p->path, st_key_offset(p, name),
				    "tensor '%s': byte size overflows", name);
	/* Sub-byte dtypes must fill whole bytes (`MisalignedSlice`). */
	if (nbits % 8 != 0)
		return nck_diag_set(p->diag, -EBADMSG, p->path, st_key_offset(p, name),
				    "tensor '%s': %llu bits is not a whole number of bytes", name,
				    (unsigned long long)nbits);
	span->size = nbits / 8;
	t->size = span->size;
	return 0;
}

/* ---- layout --------------------------------------------------------------- */

/* Orders spans by (begin, end), as the reference sorts data_offsets. */
static int st_span_cmp(const void *a, const void *b)
{
	const st_span *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/*
 * Checks that the sorted spans tile the data section exactly: each begins
 * where the previous ended, has the size its shape needs, and the last one
 * ends at the end of the range. Sets each tensor's absolute data offset.
 */
static int st_check_layout(st_parse *p, size_t n)
{
	uint64_t expect = 0;

	qsort(p->spans, n, sizeof(*p->spans), st_span_cmp);
	for (size_t i = 0; i < n; i++) {
		const st_span *s = &p->spans[i];
		nck_st_tensor *t = &p->f->tensors[s->idx];
		/* Offsets are clamped so that the reported position stays in the file. */
		int64_t at = (int64_t)p->data_start +
			     (int64_t)(s->begin < p->data_len ? s->begin : p->data_len);

		if (s->begin != expect)
			return nck_diag_set(p->diag, -EBADMSG, p->path, at,
					    "tensor '%s' starts at data offset %llu, expected %llu (%s)",
					    t->name, (unsigned long long)s->begin,
					    (unsigned long long)expect,
					    s->begin > expect ? "hole" : "overlap");
		if (s->end < s->begin)
			return nck_diag_set(p->diag, -EBADMSG, p->path, at,
					    "tensor '%s': data_offsets end %llu < begin %llu",
					    t->name, (unsigned long long)s->end,
					    (unsigned long long)s->begin);
		if (s->end - s->begin != s->size)
			return nck_diag_set(p->diag, -EBADMSG, p->path, at,
					    "tensor '%s': data_offsets span %llu bytes, shape and dtype need %llu",
					    t->name, (unsigned long long)(s->end - s->begin),
					    (unsigned long long)s->size);
		if (s->end > p->data_len)
			return nck_diag_set(p->diag, -EBADMSG, p->path, at,
					    "tensor '%s' ends at data offset %llu, past the end of the data (%llu bytes)",
					    t->name, (unsigned long long)s->end,
					    (unsigned long long)p->data_len);
		t->data_offset = p->data_start + s->begin;
		expect = s->end;
	}
	/* `MetadataIncompleteBuffer`: trailing bytes are refused (no polyglots). */
	if (expect != p->data_len)
		return nck_diag_set(p->diag, -EBADMSG, p->path, (int64_t)(p->data_start + expect),
				    "%llu trailing bytes after the last tensor",
				    (unsigned long long)(p->data_len - expect));
	return 0;
}

/* Orders tensors by name for nck_st_find(). */
static int st_tensor_cmp(const void *a, const void *b)
{
	return strcmp(((const nck_st_tensor *)a)->name, ((const nck_st_tensor *)b)->name);
}

/* ---- open ----------------------------------------------------------------- */

/*
 * Counts the members of the top-level JSON object without building it:
 * commas at depth 1 outside strings, plus one; *longest_key is the longest
 * string at depth 1 (the keys: tensor names), *deep the bytes of strings
 * deeper (dtypes and __metadata__ text). A DOM of a crafted header
 * (1.5 million empty tensors in 89 MB) would take gigabytes before any
 * count could be checked. Malformed text is left to the parser.
 */
static size_t st_count_members(const char *s, size_t len, size_t *longest_key, size_t *deep)
{
	size_t depth = 0, n = 0, start = 0;
	bool str = false, any = false;

	*longest_key = *deep = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (str) {
			if (c == '\\') {
				i++;
			} else if (c == '"') {
				str = false;
				if (depth == 1 && i - start > *longest_key)
					*longest_key = i - start;
				if (depth > 1)
					*deep += i - start;
			}
			continue;
		}
		if (c == '"') {
			str = true;
			start = i + 1;
			any |= depth == 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		} else if (c == ',' && depth == 1) {
			n++;
		}
	}
	return any ? n + 1 : 0;
}

/* Parses the JSON object and fills p->f; p->hdr holds the header bytes. */
static int st_parse_header(st_parse *p)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	const char *key;
	size_t n = 0, cap, longest = 0, deep = 0;
	int rc = 0;

	/* +1: "__metadata__" is a member too. */
	if ((n = st_count_members(p->hdr, (size_t)p->hdr_len, &longest, &deep)) > NCK_ST_MAX_TENSORS + 1) {
		rc = nck_diag_set(p->diag, -E2BIG, p->path, (int64_t)p->hdr_off,
				  "header lists %zu tensors, more than %u: refused (a limit of this version)",
				  n, NCK_ST_MAX_TENSORS);
		goto out;
	}
	if (longest > NCK_ST_MAX_NAME) {
		rc = nck_diag_set(p->diag, -E2BIG, p->path, (int64_t)p->hdr_off,
				  "header has a tensor name of %zu bytes, more than %u: refused",
				  longest, NCK_ST_MAX_NAME);
		goto out;
	}
	if (deep > NCK_ST_MAX_TEXT) {
		rc = nck_diag_set(p->diag, -E2BIG, p->path, (int64_t)p->hdr_off,
				  "header has %zu bytes of __metadata__ and dtype text, more than %u: refused",
				  deep, NCK_ST_MAX_TEXT);
		goto out;
	}
	n = 0;
	root = json_loadb(p->hdr, (size_t)p->hdr_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = nck_diag_set(p->diag, -EBADMSG, p->path, (int64_t)p->hdr_off + jerr.position,
				  "header is not valid JSON: %s", jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = nck_diag_set(p->diag, -EBADMSG, p->path, (int64_t)p->hdr_off,
				  "header is not a JSON object");
		goto out;
	}
	/* One slot per key (one too many with __metadata__); +1 keeps sizes non-zero. */
	cap = json_object_size(root) + 1;
	if (cap <= SIZE_MAX / sizeof(*p->f->tensors)) {
		p->f->tensors = nck_arena_alloc(&p->f->arena, cap * sizeof(*p->f->tensors));
		p->spans = calloc(cap, sizeof(*p->spans));
	}
	if (!p->f->tensors || !p->spans) {
		rc = nck_diag_set(p->diag, -ENOMEM, p->path, -1, "out of memory");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "__metadata__") == 0) {
			rc = st_parse_metadata(p, v);
		} else {
			p->spans[n].idx = n;
			rc = st_parse_tensor(p, key, v, &p->f->tensors[n], &p->spans[n]);
			n++;
		}
		if (rc < 0)
			goto out;
	}
	p->f->n_tensors = n;
	if ((rc = st_check_layout(p, n)) < 0)
		goto out;
	if (p->unsupported) {
		rc = nck_diag_set(p->diag, -ENOTSUP, p->path, st_key_offset(p, p->unsupported),
				  "tensor '%s': %s", p->unsupported, p->why);
		goto out;
	}
	qsort(p->f->tensors, n, sizeof(*p->f->tensors), st_tensor_cmp);
out:
	json_decref(root);
	return rc;
}

/* Reads the size field and the header bytes; checks them against the range. */
static int st_read_header(st_parse *p, const nck_src *src, uint64_t base, uint64_t len,
			  char **hdr_out)
{
	unsigned char sz[ST_SIZE_FIELD];
	uint64_t n = 0;
	char *hdr;

	if (len < ST_SIZE_FIELD)
		return nck_diag_set(p->diag, -EBADMSG, p->path, (int64_t)base,
				    "%llu bytes is too short for a safetensors file",
				    (unsigned long long)len);
	if (nck_src_pread(src, sz, sizeof(sz), base) != (int64_t)sizeof(sz))
		return nck_diag_set(p->diag, -EIO, p->path, (int64_t)base, "read failed");
	for (int i = ST_SIZE_FIELD - 1; i >= 0; i--)
		n = n << 8 | sz[i];
	if (n > NCK_ST_MAX_HEADER)
		return nck_diag_set(p->diag, -EBADMSG, p->path, (int64_t)base,
				    "header size %llu is over the %u-byte limit",
				    (unsigned long long)n, NCK_ST_MAX_HEADER);
	if (n > len - ST_SIZE_FIELD)
		return nck_diag_set(p->diag, -EBADMSG, p->path, (int64_t)base,
				    "header size %llu runs past the end of the file (%llu bytes)",
				    (unsigned long long)n, (unsigned long long)len);
	hdr = malloc(n ? (size_t)n : 1);
	if (!hdr)
		return nck_diag_set(p->diag, -ENOMEM, p->path, -1, "out of memory");
	if (nck_src_pread(src, hdr, (size_t)n, base + ST_SIZE_FIELD) != (int64_t)n) {
		free(hdr);
		return nck_diag_set(p->diag, -EIO, p->path, (int64_t)(base + ST_SIZE_FIELD),
				    "read failed");
	}
	p->hdr = hdr;
	p->hdr_len = n;
	p->hdr_off = base + ST_SIZE_FIELD;
	p->data_start = p->hdr_off + n;
	p->data_len = len - ST_SIZE_FIELD - n;
	*hdr_out = hdr;
	return 0;
}

int nck_st_open(nck_st_file **out, const nck_src *src, uint64_t base, uint64_t len,
		nck_diag *diag)
{
	st_parse p = { .path = nck_src_name(src), .diag = diag };
	char *hdr = NULL;
	uint64_t end;
	int rc = 0;

	*out = NULL;
	if (!nck_ckd_add64(&end, base, len) || end > nck_src_size(src))
		return nck_diag_set(diag, -EINVAL, p.path, (int64_t)base,
				    "range of %llu bytes lies outside the source",
				    (unsigned long long)len);
	p.f = calloc(1, sizeof(*p.f));
	if (!p.f)
		return nck_diag_set(diag, -ENOMEM, p.path, -1, "out of memory");
	nck_arena_init(&p.f->arena);
	if ((rc = st_read_header(&p, src, base, len, &hdr)) < 0)
		goto out;
	if ((rc = st_parse_header(&p)) < 0)
		goto out;
	p.f->header_len = p.hdr_len;
	p.f->data_start = p.data_start;
	*out = p.f;
	p.f = NULL;
out:
	nck_st_file_free(p.f);
	free(p.spans);
	free(hdr);
	return rc;
}

void nck_st_file_free(nck_st_file *f)
{
	if (!f)
		return;
	nck_arena_dispose(&f->arena);
	free(f);
}

const nck_st_tensor *nck_st_find(const nck_st_file *f, const char *name)
{
	size_t lo = 0, hi = f ? f->n_tensors : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(f->tensors[mid].name, name);

		if (c == 0)
			return &f->tensors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
