/* SPDX-License-Identifier: MIT */
/* A byte-level BPE tokenizer.json read as llama.cpp's converter reads it (hftok.h). */
#include "format/hftok.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Llama 3's split regex (tokenizer.json's pre_tokenizer.Split.pattern.Regex),
 * the pre-tokenizer llama.cpp calls "llama-bpe". */
static const char hftok_llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The pre-tokenizers of a node: itself, or a Sequence's list. */
static bool hftok_pre_has(const json_t *pre, const char *type, const char *regex)
{
	const json_t *list = json_object_get(pre, "pretokenizers"), *p;
	size_t i, n = json_is_array(list) ? json_array_size(list) : 0;

	for (i = 0; i <= n; i++) {
		const char *t, *re;

		p = i < n ? json_array_get(list, i) : pre;
		t = json_string_value(json_object_get(p, "type"));
		if (!t || strcmp(t, type) != 0)
			continue;
		if (!regex)
			return true;
		re = json_string_value(json_object_get(json_object_get(p, "pattern"), "Regex"));
		if (re && strcmp(re, regex) == 0)
			return true;
	}
	return false;
}

/* Sets token id to text[0..len) of the given type. */
static int hftok_set(nck_hftok *t, json_int_t id, const char *text, size_t len, uint8_t type,
		     const char *name, nck_diag *diag)
{
	if (id < 0 || (uint64_t)id >= t->n)
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: token id %lld outside the model's %llu",
				    (long long)id, (unsigned long long)t->n);
	if (len > NCK_HFTOK_MAX_TOKEN)
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: token %lld is longer than %u bytes", (long long)id,
				    NCK_HFTOK_MAX_TOKEN);
	t->text[id] = text;
	t->len[id] = len;
	t->type[id] = type;
	return 0;
}

/* model.vocab, then added_tokens[] over it (an added token keeps its type). */
static int hftok_tokens(nck_hftok *t, const json_t *root, const char *name, nck_diag *diag)
{
	json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
	const json_t *added = json_object_get(root, "added_tokens"), *v;
	const char *key;
	size_t i;
	int rc;

	if (!json_is_object(vocab))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: model.vocab is not an object");
	json_object_foreach(vocab, key, v) {
		if (!json_is_integer(v))
			return nck_diag_set(diag, -EBADMSG, name, -1,
					    "tokenizer.json: a model.vocab id is not an integer");
		if ((rc = hftok_set(t, json_integer_value(v), key, strlen(key), NCK_HFTOK_NORMAL,
				    name, diag)) < 0)
			return rc;
	}
	if (added && !json_is_array(added))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: added_tokens is not a list");
	json_array_foreach(added, i, v) {
		const json_t *id = json_object_get(v, "id"), *text = json_object_get(v, "content");
		uint8_t type = json_is_true(json_object_get(v, "special")) ? NCK_HFTOK_CONTROL
									    : NCK_HFTOK_USER;

		if (!json_is_integer(id) || !json_is_string(text))
			return nck_diag_set(diag, -EBADMSG, name, -1,
					    "tokenizer.json: added token %zu lacks an integer id or "
					    "string content",
					    i);
		if ((rc = hftok_set(t, json_integer_value(id), json_string_value(text),
				    json_string_length(text), type, name, diag)) < 0)
			return rc;
	}
	return 0;
}

/* Appends len bytes to the merge buffer (capacity *cap); -ENOMEM. */
static int hftok_put(nck_hftok *t, size_t *used, size_t *cap, const char *s, size_t len)
{
	if (len == 0)
		return 0; /* merge_buf may still be NULL: no arithmetic on it */
	if (*cap - *used < len) {
		size_t c = *cap ? *cap : 4096;
		char *p;

		while (c - *used < len) {
			if (c > SIZE_MAX / 2)
				return -ENOMEM;
			c *= 2;
		}
		if (!(p = realloc(t->merge_buf, c)))
			return -ENOMEM;
		t->merge_buf = p;
		*cap = c;
	}
	memcpy(t->merge_buf + *used, s, len);
	*used += len;
	return 0;
}

/* A part of a pair merge, its spaces written U+0120 as gguf-py does. */
static int hftok_part(nck_hftok *t, size_t *used, size_t *cap, const json_t *part)
{
	const char *s = json_string_value(part);
	size_t len = json_string_length(part);
	int rc = 0;

	for (size_t i = 0; i < len && rc == 0; i++)
		rc = s[i] == ' ' ? hftok_put(t, used, cap, "\xc4\xa0", 2)
				 : hftok_put(t, used, cap, s + i, 1);
	return rc;
}

/* One merge: "a b" as it is, or [a, b] joined by a space. */
static int hftok_merge(nck_hftok *t, size_t *used, size_t *cap, const json_t *m)
{
	int rc;

	if (json_is_string(m))
		return hftok_put(t, used, cap, json_string_value(m), json_string_length(m));
	if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(json_array_get(m, 0)) ||
	    !json_is_string(json_array_get(m, 1)))
		return -EBADMSG;
	if ((rc = hftok_part(t, used, cap, json_array_get(m, 0))) < 0 ||
	    (rc = hftok_put(t, used, cap, " ", 1)) < 0)
		return rc;
	return hftok_part(t, used, cap, json_array_get(m, 1));
}

/* model.merges (absent: none). */
static int hftok_merges(nck_hftok *t, const json_t *root, const char *name, nck_diag *diag)
{
	const json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
	size_t n = json_array_size(merges), used = 0, cap = 0;
	int rc;

	if (merges && !json_is_array(merges))
		return nck_diag_set(diag, -EBADMSG, name, -1, "tokenizer.json: model.merges is not a list");
	if (n > NCK_HFTOK_MAX_MERGES)
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: more than %u merges", NCK_HFTOK_MAX_MERGES);
	if (!(t->merge_off = calloc(n + 1, sizeof(*t->merge_off))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((rc = hftok_merge(t, &used, &cap, json_array_get(merges, i))) == -ENOMEM)
			return rc;
		if (rc < 0)
			return nck_diag_set(diag, rc, name, -1,
					    "tokenizer.json: merge %zu is not a string or a pair of "
					    "strings",
					    i);
		t->merge_off[i + 1] = used;
	}
	t->n_merges = n;
	return 0;
}

/* The id of the added token whose content is tokenizer_config.json's
 * <typ>_token (a string or {"content": ...}), or -1. */
static int64_t hftok_special(const json_t *cfg, const json_t *added, const char *key)
{
	const json_t *e = json_object_get(cfg, key), *v;
	const char *want = json_is_object(e) ? json_string_value(json_object_get(e, "content"))
					     : json_string_value(e);
	size_t i;

	if (!want)
		return -1;
	json_array_foreach(added, i, v) {
		const char *c = json_string_value(json_object_get(v, "content"));
		const json_t *id = json_object_get(v, "id");

		if (c && strcmp(c, want) == 0 && json_is_integer(id))
			return json_integer_value(id);
	}
	return -1;
}

/* An add_<typ>_token boolean, or -1. */
static int hftok_add(const json_t *cfg, const char *key)
{
	const json_t *v = json_object_get(cfg, key);

	return json_is_boolean(v) ? json_is_true(v) : -1;
}

/* The special ids and add_* flags from tokenizer_config.json (not JSON or
 * absent: none). Ids outside the vocabulary are dropped. */
static void hftok_config(nck_hftok *t, const json_t *root, const void *cfg, size_t cfg_len)
{
	const json_t *added = json_object_get(root, "added_tokens");
	json_t *c = cfg ? json_loadb(cfg, cfg_len, 0, NULL) : NULL;
	int64_t *ids[] = {&t->bos, &t->eos, &t->unk, &t->pad};
	static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};

	for (size_t i = 0; i < 4; i++) {
		*ids[i] = json_is_object(c) ? hftok_special(c, added, keys[i]) : -1;
		if (*ids[i] >= 0 && (uint64_t)*ids[i] >= t->n)
			*ids[i] = -1;
	}
	t->add_bos = json_is_object(c) ? hftok_add(c, "add_bos_token") : -1;
	t->add_eos = json_is_object(c) ? hftok_add(c, "add_eos_token") : -1;
	json_decref(c);
}

/* The model must be a byte-level BPE: -ENOTSUP with the reason. */
static int hftok_kind(const json_t *root, const char *name, nck_diag *diag)
{
	const char *type = json_string_value(json_object_get(json_object_get(root, "model"), "type"));
	const json_t *pre = json_object_get(root, "pre_tokenizer");
	const char *dec = json_string_value(json_object_get(json_object_get(root, "decoder"), "type"));

	if (!json_is_object(json_object_get(root, "model")))
		return nck_diag_set(diag, -EBADMSG, name, -1, "tokenizer.json: no model object");
	if (!type || strcmp(type, "BPE") != 0)
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "tokenizer.json: a %.32s model, not BPE (no GGUF vocabulary)",
				    type ? type : "untyped");
	if (!hftok_pre_has(pre, "ByteLevel", NULL) && !(dec && strcmp(dec, "ByteLevel") == 0))
		return nck_diag_set(diag, -ENOTSUP, name, -1,
				    "tokenizer.json: a BPE model that is not byte-level (no GGUF "
				    "\"gpt2\" vocabulary)");
	return 0;
}

int nck_hftok_parse(nck_hftok *out, const void *json, size_t len, const void *cfg,
		    size_t cfg_len, uint64_t V, const char *name, nck_diag *diag)
{
	json_error_t err;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (V == 0 || V > NCK_HFTOK_MAX_VOCAB)
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: a vocabulary of %llu ids (at most %u)",
				    (unsigned long long)V, NCK_HFTOK_MAX_VOCAB);
	/* jansson's text quotes the bytes near the error: never echo a file's content. */
	if (!(root = json_loadb(json, len, 0, &err)))
		return nck_diag_set(diag, -EBADMSG, name, err.position,
				    "tokenizer.json: not valid JSON (line %d, column %d)", err.line,
				    err.column);
	out->root = root;
	if ((rc = hftok_kind(root, name, diag)) < 0)
		goto fail;
	out->n = V;
	rc = -ENOMEM;
	if (!(out->text = calloc(V, sizeof(*out->text))) || !(out->len = calloc(V, sizeof(*out->len))) ||
	    !(out->type = malloc(V)))
		goto fail;
	memset(out->type, NCK_HFTOK_UNUSED, V);
	if ((rc = hftok_tokens(out, root, name, diag)) < 0 || (rc = hftok_merges(out, root, name, diag)) < 0)
		goto fail;
	out->pre = hftok_pre_has(json_object_get(root, "pre_tokenizer"), "Split", hftok_llama3_regex)
			   ? "llama-bpe"
			   : "default";
	hftok_config(out, root, cfg, cfg_len);
	return 0;
fail:
	if (rc == -ENOMEM)
		nck_diag_set(diag, rc, name, -1, "out of memory");
	nck_hftok_free(out);
	return rc;
}

void nck_hftok_free(nck_hftok *t)
{
	if (!t)
		return;
	free(t->text);
	free(t->len);
	free(t->type);
	free(t->merge_buf);
	free(t->merge_off);
	json_decref(t->root);
	memset(t, 0, sizeof(*t));
}
