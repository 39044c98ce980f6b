/* SPDX-License-Identifier: MIT */
/*
 * torch.save reader (see torch.h): zip index, then data.pkl unpickled into
 * symbolic values, then a walk over them that turns each tensor-rebuild call
 * into an nck_torch_tensor checked against its storage record.
 *
 * The rebuild semantics follow torch/serialization.py `_load`
 * (`persistent_load`: an UntypedStorage is read as uint8, a typed storage
 * class gives its dtype and numel counts its elements) and torch/_utils.py
 * (`_rebuild_tensor_v3` takes the dtype from its argument and ignores the
 * storage's). The walk follows dicts, lists, tuples and the SETITEM items of
 * dict-like objects; it never looks inside other objects' arguments. It
 * skips cycles, and bounds depth and visits (a memoized value can be
 * reached along many paths; each path is a key, as tied weights are).
 *
 * Thread-safety: nck_torch_open runs on one thread; the result is read-only.
 */
#include "format/torch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ckd.h"
#include "util/grow.h"

/* The rebuild functions torch.save writes, by what they mean. */
typedef enum torch_rebuild {
	TORCH_NOT_TENSOR,
	TORCH_V1,	   /* _rebuild_tensor(storage, offset, size, stride) */
	TORCH_V2,	   /* _rebuild_tensor_v2(..., requires_grad, hooks[, metadata]) */
	TORCH_V3,	   /* _rebuild_tensor_v3(..., requires_grad, hooks, dtype[, metadata]) */
	TORCH_PARAM,	   /* _rebuild_parameter(data, requires_grad, hooks) */
	TORCH_PARAM_STATE, /* _rebuild_parameter_with_state(data, requires_grad, hooks, state) */
	TORCH_FROM_TYPE,   /* torch._tensor._rebuild_from_type_v2(func, type, args, state) */
	TORCH_UNSUPPORTED  /* any other torch rebuild function (sparse, quantized, meta, ...) */
} torch_rebuild;

/* Wrappers (parameter, subclass) a tensor may be nested in. */
#define TORCH_MAX_WRAP 4
/* Longest storage key looked up ("data/" + key). */
#define TORCH_MAX_KEY 200

typedef struct torch_walk {
	nck_torch_file *f;
	const nck_src *src;
	nck_diag *diag;
	char *path; /* key of the value being visited */
	size_t path_len, path_cap, n_comps;
	const nck_pv *chain[NCK_TORCH_MAX_DEPTH]; /* containers on the current path */
	size_t depth, visits;
	nck_torch_tensor *vec; /* found so far (malloc'd) */
	size_t n, cap;
} torch_walk;

/* Reports a tensor problem, naming the key being visited. */
__attribute__((format(printf, 3, 4))) static int torch_err(torch_walk *w, int code, const char *fmt,
							   ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nck_diag_set(w->diag, code, nck_src_name(w->src), -1, "torch.save tensor '%s': %s",
		     w->path ? w->path : "", msg);
	return code; /* visibly negative, for callers' flow analysis */
}

/* ---- decoding one tensor ------------------------------------------------------- */

/* Classifies a callable GLOBAL. */
static torch_rebuild torch_rebuild_of(const nck_pv *g)
{
	if (!g || g->kind != NCK_PV_GLOBAL)
		return TORCH_NOT_TENSOR;
	if (strcmp(g->global.module, "torch._utils") == 0) {
		if (strcmp(g->global.name, "_rebuild_tensor") == 0)
			return TORCH_V1;
		if (strcmp(g->global.name, "_rebuild_tensor_v2") == 0)
			return TORCH_V2;
		if (strcmp(g->global.name, "_rebuild_tensor_v3") == 0)
			return TORCH_V3;
		if (strcmp(g->global.name, "_rebuild_parameter") == 0)
			return TORCH_PARAM;
		if (strcmp(g->global.name, "_rebuild_parameter_with_state") == 0)
			return TORCH_PARAM_STATE;
	}
	if (nck_pv_is_global(g, "torch._tensor", "_rebuild_from_type_v2"))
		return TORCH_FROM_TYPE;
	if ((strcmp(g->global.module, "torch._utils") == 0 ||
	     strcmp(g->global.module, "torch._tensor") == 0) &&
	    strncmp(g->global.name, "_rebuild_", 9) == 0)
		return TORCH_UNSUPPORTED;
	return TORCH_NOT_TENSOR;
}

/* Reads a shape or stride: a tuple/list of ints, or torch.Size((ints,)). */
static int torch_dims(torch_walk *w, const nck_pv *v, int64_t *dims, uint32_t *ndim,
		      const char *what)
{
	if (nck_pv_is_call_of(v, "torch", "Size"))
		v = nck_pv_seq_get(v->call.args, 0);
	if (!v || (v->kind != NCK_PV_TUPLE && v->kind != NCK_PV_LIST))
		return torch_err(w, -EBADMSG, "%s is not a tuple of ints", what);
	if (v->seq.n > NCK_MAX_DIMS)
		return torch_err(w, -ENOTSUP, "%zu dimensions (at most %d)", v->seq.n,
				 NCK_MAX_DIMS);
	for (size_t i = 0; i < v->seq.n; i++) {
		if (!nck_pv_get_int(v->seq.items[i], &dims[i]))
			return torch_err(w, -EBADMSG, "%s is not a tuple of ints", what);
		if (dims[i] < 0)
			return torch_err(w, -EBADMSG, "negative %s %lld", what, (long long)dims[i]);
	}
	*ndim = (uint32_t)v->seq.n;
	return 0;
}

/* Whether a metadata dict sets a flag that changes the values (conj, neg bits). */
static bool torch_flag_set(const nck_pv *meta, const char *flag)
{
	int64_t v = 0;

	return nck_pv_get_int(nck_pv_dict_get(meta, flag), &v) && v != 0;
}

/*
 * Decodes the persistent id ('storage', torch.<X>Storage, key, location,
 * numel): the element type (U8 for UntypedStorage, as torch.load reads it),
 * the key and the storage size in bytes.
 */
static int torch_storage(torch_walk *w, const nck_pv *sv, nck_dtype *dtype, const char **key,
			 uint64_t *bytes)
{
	const nck_pv *pid = sv && sv->kind == NCK_PV_PERSID ? sv->persid : NULL;
	const nck_pv *cls = nck_pv_seq_get(pid, 1), *k = nck_pv_seq_get(pid, 2);
	int64_t numel = -1;
	int rc = 0;

	if (!pid || pid->kind != NCK_PV_TUPLE || pid->seq.n != 5 ||
	    !nck_pv_is_str(pid->seq.items[0], "storage") || !cls || cls->kind != NCK_PV_GLOBAL ||
	    !k || k->kind != NCK_PV_STR || !nck_pv_get_int(pid->seq.items[4], &numel) || numel < 0)
		return torch_err(w, -EBADMSG,
				 "storage is not a persistent id "
				 "('storage', class, key, location, numel)");
	if (strcmp(cls->global.module, "torch") != 0 &&
	    strcmp(cls->global.module, "torch.cuda") != 0)
		return torch_err(w, -ENOTSUP, "storage class %s.%s", cls->global.module,
				 cls->global.name);
	*dtype = strcmp(cls->global.name, "UntypedStorage") == 0
			 ? NCK_DTYPE_U8
			 : nck_dtype_from_torch_storage(cls->global.name);
	if (*dtype == NCK_DTYPE_UNKNOWN)
		return torch_err(w, -ENOTSUP, "storage class torch.%s is not supported",
				 cls->global.name);
	if (k->str.len > TORCH_MAX_KEY || memchr(k->str.s, '\0', k->str.len))
		return torch_err(w, -EBADMSG, "bad storage key");
	*key = k->str.s;
	NCK_CKD_MUL(bytes, (uint64_t)numel, (uint64_t)nck_dtype_size(*dtype));
out:
	if (rc == -EOVERFLOW)
		return torch_err(w, rc, "storage size overflows");
	return rc;
}

/* Finds the storage record and checks it against the storage and the tensor's extent. */
static int torch_bind_record(torch_walk *w, nck_torch_tensor *t, const char *key,
			     uint64_t storage_bytes)
{
	char rel[TORCH_MAX_KEY + 8];
	const nck_zip_entry *e;
	uint64_t last = t->storage_offset, step, need;
	size_t esize = nck_dtype_size(t->dtype);
	bool empty = false;
	int rc = 0;

	snprintf(rel, sizeof(rel), "data/%s", key);
	e = nck_zip_find_rel(w->f->zip, rel);
	if (!e)
		return torch_err(w, -EBADMSG, "storage record %s is missing", rel);
	if ((rc = nck_zip_entry_check(w->f->zip, e, w->diag)) < 0)
		return rc;
	if (e->size != storage_bytes)
		return torch_err(w, -EBADMSG, "storage record %s has %llu bytes, the storage %llu",
				 rel, (unsigned long long)e->size,
				 (unsigned long long)storage_bytes);
	for (uint32_t d = 0; d < t->ndim; d++)
		empty = empty || t->shape[d] == 0;
	for (uint32_t d = 0; d < t->ndim && !empty; d++) {
		NCK_CKD_MUL(&step, t->shape[d] - 1, (uint64_t)t->stride[d]);
		NCK_CKD_ADD(&last, last, step);
	}
	/* An empty tensor addresses nothing; otherwise its last element must fit. */
	NCK_CKD_ADD(&need, last, 1);
	NCK_CKD_MUL(&need, need, (uint64_t)esize);
	if (!empty && need > e->size)
		return torch_err(w, -EBADMSG, "addresses %llu bytes of a %llu-byte storage",
				 (unsigned long long)need, (unsigned long long)e->size);
	t->storage_key = nck_arena_strndup(&w->f->arena, key, strlen(key));
	if (!t->storage_key)
		return torch_err(w, -ENOMEM, "out of memory");
	t->storage_data = e->data_offset;
	t->storage_bytes = e->size;
out:
	if (rc == -EOVERFLOW)
		return torch_err(w, rc, "element offsets overflow");
	return rc;
}

/* Decodes the arguments of _rebuild_tensor / _v2 / _v3. */
static int torch_decode_dense(torch_walk *w, torch_rebuild kind, const nck_pv *args,
			      nck_torch_tensor *t)
{
	size_t n = args && args->kind == NCK_PV_TUPLE ? args->seq.n : 0;
	/* Argument counts: v1 4; v2 6 + optional metadata; v3 7 (dtype) + optional metadata. */
	size_t lo = kind == TORCH_V1 ? 4 : kind == TORCH_V2 ? 6 : 7;
	size_t hi = kind == TORCH_V1 ? 4 : lo + 1;
	const nck_pv *meta = n == hi && kind != TORCH_V1 ? args->seq.items[hi - 1] : NULL;
	int64_t shape[NCK_MAX_DIMS], stride[NCK_MAX_DIMS], off = -1, rg = 0;
	const char *key = NULL;
	uint64_t bytes = 0;
	uint32_t nd = 0, ns = 0;
	int rc;

	if (n < lo || n > hi)
		return torch_err(w, -EBADMSG, "rebuild call with %zu arguments", n);
	if ((rc = torch_storage(w, args->seq.items[0], &t->dtype, &key, &bytes)) < 0)
		return rc;
	if (!nck_pv_get_int(args->seq.items[1], &off) || off < 0)
		return torch_err(w, -EBADMSG, "bad storage offset");
	if ((rc = torch_dims(w, args->seq.items[2], shape, &nd, "size")) < 0 ||
	    (rc = torch_dims(w, args->seq.items[3], stride, &ns, "stride")) < 0)
		return rc;
	if (nd != ns)
		return torch_err(w, -EBADMSG, "%u sizes but %u strides", nd, ns);
	if (kind != TORCH_V1 && !nck_pv_get_int(args->seq.items[4], &rg))
		return torch_err(w, -EBADMSG, "requires_grad is not a bool");
	if (kind == TORCH_V3) {
		const nck_pv *d = args->seq.items[6];

		if (!d || d->kind != NCK_PV_GLOBAL || strcmp(d->global.module, "torch") != 0)
			return torch_err(w, -EBADMSG, "dtype argument is not a torch dtype");
		t->dtype = nck_dtype_from_torch_dtype(d->global.name);
		if (t->dtype == NCK_DTYPE_UNKNOWN)
			return torch_err(w, -ENOTSUP, "dtype torch.%s is not supported",
					 d->global.name);
	}
	if (torch_flag_set(meta, "conj") || torch_flag_set(meta, "neg"))
		return torch_err(w, -ENOTSUP, "tensors with a conj or neg bit are not supported");
	t->ndim = nd;
	for (uint32_t i = 0; i < nd; i++) {
		t->shape[i] = (uint64_t)shape[i];
		t->stride[i] = stride[i];
	}
	t->storage_offset = (uint64_t)off;
	t->requires_grad = rg != 0;
	return torch_bind_record(w, t, key, bytes);
}

/* Decodes callable(*args) into `t`, unwrapping parameters and subclasses. */
static int torch_decode(torch_walk *w, const nck_pv *callable, const nck_pv *args,
			nck_torch_tensor *t, int wraps)
{
	torch_rebuild kind = torch_rebuild_of(callable);
	size_t n = args && args->kind == NCK_PV_TUPLE ? args->seq.n : 0;
	const nck_pv *inner = n ? args->seq.items[0] : NULL;
	int64_t rg = 0;
	int rc;

	if (wraps > TORCH_MAX_WRAP)
		return torch_err(w, -EBADMSG, "tensor wrapped too deeply");
	switch (kind) {
	case TORCH_V1:
	case TORCH_V2:
	case TORCH_V3:
		return torch_decode_dense(w, kind, args, t);
	case TORCH_PARAM:
	case TORCH_PARAM_STATE:
		if (n != (kind == TORCH_PARAM ? 3u : 4u) || !inner || inner->kind != NCK_PV_CALL ||
		    !nck_pv_get_int(args->seq.items[1], &rg))
			return torch_err(w, -EBADMSG, "bad parameter rebuild arguments");
		rc = torch_decode(w, inner->call.callable, inner->call.args, t, wraps + 1);
		t->requires_grad = rg != 0;
		t->is_parameter = true;
		return rc;
	case TORCH_FROM_TYPE:
		if (n != 4)
			return torch_err(w, -EBADMSG, "bad _rebuild_from_type_v2 arguments");
		return torch_decode(w, inner, args->seq.items[2], t, wraps + 1);
	case TORCH_UNSUPPORTED:
		return torch_err(w, -ENOTSUP, "%s.%s tensors are not supported",
				 callable->global.module, callable->global.name);
	case TORCH_NOT_TENSOR:
		break;
	}
	return torch_err(w, -EBADMSG, "not a tensor rebuild call");
}

/* Decodes the tensor call `v` at the current key and appends it. */
static int torch_add_tensor(torch_walk *w, const nck_pv *v)
{
	nck_torch_tensor t = { 0 };
	int rc;

	if ((rc = torch_decode(w, v->call.callable, v->call.args, &t, 0)) < 0)
		return rc;
	t.key = nck_arena_strndup(&w->f->arena, w->path ? w->path : "", w->path_len);
	if (!t.key)
		return torch_err(w, -ENOMEM, "out of memory");
	if (nck_grow((void **)&w->vec, &w->cap, w->n, sizeof(*w->vec), 64) < 0)
		return torch_err(w, -ENOMEM, "out of memory");
	w->vec[w->n++] = t;
	return 0;
}

/* ---- the walk ------------------------------------------------------------------- */

/* Appends ".comp" (or "comp" at the top) to the key; *saved restores it. */
static int walk_push_key(torch_walk *w, const char *comp, size_t n, size_t *saved)
{
	size_t need;

	*saved = w->path_len;
	if (__builtin_add_overflow(w->path_len, n + 2, &need))
		return torch_err(w, -EOVERFLOW, "key too long");
	if (need > w->path_cap) {
		size_t cap = need * 2;
		char *p = realloc(w->path, cap);

		if (!p)
			return torch_err(w, -ENOMEM, "out of memory");
		w->path = p;
		w->path_cap = cap;
	}
	if (w->n_comps++)
		w->path[w->path_len++] = '.';
	memcpy(w->path + w->path_len, comp, n);
	w->path_len += n;
	w->path[w->path_len] = '\0';
	return 0;
}

/* Undoes walk_push_key. */
static void walk_pop_key(torch_walk *w, size_t saved)
{
	w->n_comps--;
	w->path_len = saved;
	w->path[saved] = '\0';
}

static int walk_value(torch_walk *w, const nck_pv *v);

/* Walks `v` under the extra key component comp[0..n). */
static int walk_child(torch_walk *w, const char *comp, size_t n, const nck_pv *v)
{
	size_t saved;
	int rc;

	if ((rc = walk_push_key(w, comp, n, &saved)) < 0)
		return rc;
	rc = walk_value(w, v);
	walk_pop_key(w, saved);
	return rc;
}

/* The key text of a dict key: str as is, int in decimal, bool as Python prints
 * it; 1 for keys that cannot name a tensor (the entry is skipped). */
static int walk_key_text(torch_walk *w, const nck_pv *k, char *buf, size_t size, const char **s,
			 size_t *n)
{
	if (k->kind == NCK_PV_STR) {
		if (memchr(k->str.s, '\0', k->str.len))
			return torch_err(w, -EBADMSG, "dict key contains a NUL byte");
		*s = k->str.s;
		*n = k->str.len;
		return 0;
	}
	if (k->kind == NCK_PV_INT)
		*n = (size_t)snprintf(buf, size, "%lld", (long long)k->i);
	else if (k->kind == NCK_PV_BOOL)
		*n = (size_t)snprintf(buf, size, "%s", k->b ? "True" : "False");
	else
		return 1;
	*s = buf;
	return 0;
}

/* Walks a DICT, LIST or TUPLE: cycles are skipped, depth is bounded. */
static int walk_container(torch_walk *w, const nck_pv *v)
{
	char num[32];
	const char *s = NULL;
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < w->depth; i++)
		if (w->chain[i] == v)
			return 0;
	if (w->depth == NCK_TORCH_MAX_DEPTH)
		return torch_err(w, -E2BIG, "containers nested deeper than %d",
				 NCK_TORCH_MAX_DEPTH);
	w->chain[w->depth++] = v;
	for (size_t i = 0; i < v->seq.n && rc >= 0; i++) {
		if (v->kind != NCK_PV_DICT) {
			n = (size_t)snprintf(num, sizeof(num), "%zu", i);
			rc = walk_child(w, num, n, v->seq.items[i]);
			continue;
		}
		rc = walk_key_text(w, v->seq.items[2 * i], num, sizeof(num), &s, &n);
		if (rc == 0)
			rc = walk_child(w, s, n, v->seq.items[2 * i + 1]);
	}
	w->depth--;
	return rc < 0 ? rc : 0;
}

/* Visits one value: containers recurse, tensor calls are collected, the items
 * of dict-like objects (defaultdict, ...) count as their entries. */
static int walk_value(torch_walk *w, const nck_pv *v)
{
	if (++w->visits > NCK_TORCH_MAX_VISITS)
		return torch_err(w, -E2BIG, "more than %zu values visited", NCK_TORCH_MAX_VISITS);
	switch (v->kind) {
	case NCK_PV_DICT:
	case NCK_PV_LIST:
	case NCK_PV_TUPLE:
		return walk_container(w, v);
	case NCK_PV_CALL:
		if (torch_rebuild_of(v->call.callable) != TORCH_NOT_TENSOR)
			return torch_add_tensor(w, v);
		return v->call.items ? walk_container(w, v->call.items) : 0;
	default:
		return 0;
	}
}

/* ---- file-level checks ---------------------------------------------------------- */

/* Every record must sit under the archive prefix (PyTorchStreamReader::init). */
static int torch_check_names(const nck_torch_file *f, const nck_src *src, nck_diag *diag)
{
	size_t plen = strlen(f->zip->prefix);

	for (size_t i = 0; i < f->zip->n_entries; i++) {
		const nck_zip_entry *e = &f->zip->entries[i];

		if (plen == 0 || strncmp(e->name, f->zip->prefix, plen) != 0 ||
		    e->name[plen] != '/')
			return nck_diag_set(
				diag, -EBADMSG, nck_src_name(src), (int64_t)e->header_offset,
				"torch.save record '%s' is outside the archive directory", e->name);
	}
	return 0;
}

/* The optional `byteorder` record: "little" (or absent) is all we serve raw. */
static int torch_check_byteorder(const nck_torch_file *f, const nck_src *src, nck_diag *diag)
{
	const nck_zip_entry *e = nck_zip_find_rel(f->zip, "byteorder");
	char *buf = NULL;
	int rc;

	if (!e)
		return 0;
	if ((rc = nck_zip_read((void **)&buf, f->zip, e, 16, diag)) < 0)
		return rc == -E2BIG ? nck_diag_set(diag, -EBADMSG, nck_src_name(src),
						   (int64_t)e->data_offset, "bad byteorder record")
				    : rc;
	if (e->size == 6 && memcmp(buf, "little", 6) == 0)
		rc = 0;
	else if (e->size == 3 && memcmp(buf, "big", 3) == 0)
		rc = nck_diag_set(diag, -ENOTSUP, nck_src_name(src), (int64_t)e->data_offset,
				  "big-endian torch.save files are not supported");
	else
		rc = nck_diag_set(diag, -EBADMSG, nck_src_name(src), (int64_t)e->data_offset,
				  "bad byteorder record");
	free(buf);
	return rc;
}

/* Reads and unpickles data.pkl into f->root; diag offsets become file offsets. */
static int torch_unpickle(nck_torch_file *f, const nck_src *src, nck_diag *diag)
{
	const nck_zip_entry *e = nck_zip_find_rel(f->zip, "data.pkl");
	bool had_error = diag && diag->code != 0;
	void *buf = NULL;
	int rc;

	if (!e)
		return nck_diag_set(diag, -EBADMSG, nck_src_name(src), (int64_t)f->zip->base,
				    "torch.save archive without data.pkl");
	if ((rc = nck_zip_read(&buf, f->zip, e, NCK_TORCH_MAX_PICKLE, diag)) < 0)
		return rc;
	rc = nck_pkl_parse(&f->root, &f->arena, buf, (size_t)e->size, nck_src_name(src), NULL,
			   diag);
	if (rc < 0 && diag && !had_error && diag->offset >= 0)
		diag->offset += (int64_t)e->data_offset;
	free(buf);
	return rc;
}

/* Orders tensor pointers by key. */
static int torch_cmp_key(const void *a, const void *b)
{
	return strcmp((*(const nck_torch_tensor *const *)a)->key,
		      (*(const nck_torch_tensor *const *)b)->key);
}

/* Two tensors may not share a key (a dict setting a key twice, or {1: .., "1": ..}). */
static int torch_check_unique(const nck_torch_file *f, const nck_src *src, nck_diag *diag)
{
	const nck_torch_tensor **by_key =
		malloc((f->n_tensors ? f->n_tensors : 1) * sizeof(*by_key));
	int rc = 0;

	if (!by_key)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(src), -1, "out of memory");
	for (size_t i = 0; i < f->n_tensors; i++)
		by_key[i] = &f->tensors[i];
	qsort(by_key, f->n_tensors, sizeof(*by_key), torch_cmp_key);
	for (size_t i = 1; i < f->n_tensors && rc == 0; i++)
		if (strcmp(by_key[i - 1]->key, by_key[i]->key) == 0)
			rc = nck_diag_set(diag, -EBADMSG, nck_src_name(src), -1,
					  "torch.save file has two tensors with key '%s'",
					  by_key[i]->key);
	free(by_key);
	return rc;
}

/* Walks f->root and stores the tensors found in the file's arena. */
static int torch_collect(nck_torch_file *f, const nck_src *src, nck_diag *diag)
{
	torch_walk *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(src), -1, "out of memory");
	w->f = f;
	w->src = src;
	w->diag = diag;
	if ((rc = walk_value(w, f->root)) < 0)
		goto out;
	f->tensors = nck_arena_alloc(&f->arena, (w->n ? w->n : 1) * sizeof(*f->tensors));
	if (!f->tensors) {
		rc = nck_diag_set(diag, -ENOMEM, nck_src_name(src), -1, "out of memory");
		goto out;
	}
	if (w->n)
		memcpy(f->tensors, w->vec, w->n * sizeof(*f->tensors));
	f->n_tensors = w->n;
	rc = torch_check_unique(f, src, diag);
out:
	free(w->vec);
	free(w->path);
	free(w);
	return rc;
}

/* ---- public API --------------------------------------------------------------------- */

int nck_torch_open(nck_torch_file **out, const nck_src *src, uint64_t base, uint64_t len,
		   nck_diag *diag)
{
	nck_torch_file *f = calloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	if (!f)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(src), -1, "out of memory");
	nck_arena_init(&f->arena);
	if ((rc = nck_zip_open(&f->zip, src, base, len, diag)) < 0 ||
	    (rc = torch_check_names(f, src, diag)) < 0 ||
	    (rc = torch_check_byteorder(f, src, diag)) < 0 ||
	    (rc = torch_unpickle(f, src, diag)) < 0 || (rc = torch_collect(f, src, diag)) < 0)
		goto out;
	*out = f;
	f = NULL;
out:
	nck_torch_file_free(f);
	return rc;
}

const nck_torch_tensor *nck_torch_find(const nck_torch_file *f, const char *key)
{
	for (size_t i = 0; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].key, key) == 0)
			return &f->tensors[i];
	return NULL;
}

void nck_torch_file_free(nck_torch_file *f)
{
	if (!f)
		return;
	nck_zip_free(f->zip);
	nck_arena_dispose(&f->arena);
	free(f);
}
