/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the torch.save reader. Oracles: the real torch 2.11 files
 * with their manifest.json (values hard-coded here; element values are
 * (i % 251) - 125 of the flat index, cast to the dtype), a file written at
 * test time by the installed torch 1.13 (gen_torch.py, skipped without
 * torch), and hand-built archives for the rebuild variants and every error.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>

#include "fmtbuild.h"
#include "format/torch.h"
#include "nck_test.h"

/* ---- helpers ----------------------------------------------------------------------- */

/* IEEE half-precision bits of a small integer (|v| < 2048, exact). */
static uint16_t f16_of_int(int v)
{
	unsigned a = (unsigned)(v < 0 ? -v : v), e = 0;

	if (a == 0)
		return 0;
	while (a >> (e + 1))
		e++;
	return (uint16_t)((v < 0 ? 0x8000u : 0) | (e + 15) << 10 | ((a << (10 - e)) & 0x3ffu));
}

/* The little-endian bytes of integer v cast to `dtype`; returns their count. */
static size_t bytes_of(nck_dtype dtype, int v, unsigned char *out)
{
	float f = (float)v;
	uint32_t bits;
	uint16_t h;
	int64_t l = v;

	memcpy(&bits, &f, 4);
	switch (dtype) {
	case NCK_DTYPE_F32:
		memcpy(out, &f, 4);
		return 4;
	case NCK_DTYPE_BF16:
		h = (uint16_t)(bits >> 16);
		memcpy(out, &h, 2);
		return 2;
	case NCK_DTYPE_F16:
		h = f16_of_int(v);
		memcpy(out, &h, 2);
		return 2;
	case NCK_DTYPE_I64:
		memcpy(out, &l, 8);
		return 8;
	case NCK_DTYPE_U8:
		out[0] = (unsigned char)v;
		return 1;
	default:
		nck_test_fail(__FILE__, __LINE__, "no expected bytes for dtype %d", dtype);
	}
}

/* Maps a tensor's row-major flat index to the flat index of the array it was cut from. */
typedef uint64_t (*base_index_fn)(const nck_torch_tensor *t, const uint64_t *idx, uint64_t flat);

static uint64_t same_index(const nck_torch_tensor *t, const uint64_t *idx, uint64_t flat)
{
	(void)t, (void)idx;
	return flat;
}

/* 'transposed' is base.t() of a (6, 8) base: element [i][j] is base[j][i]. */
static uint64_t transposed_index(const nck_torch_tensor *t, const uint64_t *idx, uint64_t flat)
{
	(void)t, (void)flat;
	return idx[1] * 8 + idx[0];
}

/* 'slice' is base[2:5] of a (6, 8) base: rows start at base row 2. */
static uint64_t slice_index(const nck_torch_tensor *t, const uint64_t *idx, uint64_t flat)
{
	(void)t, (void)idx;
	return 2 * 8 + flat;
}

/* Reads every element through the tensor's strides and compares it to the value formula. */
static void check_values(const nck_src *src, const nck_torch_tensor *t, base_index_fn base)
{
	uint64_t idx[NCK_MAX_DIMS] = { 0 }, n = 1;
	size_t es = nck_dtype_size(t->dtype);

	for (uint32_t d = 0; d < t->ndim; d++)
		n *= t->shape[d];
	for (uint64_t flat = 0; flat < n; flat++) {
		unsigned char want[8], got[8];
		uint64_t e = t->storage_offset, b = base(t, idx, flat);

		for (uint32_t d = 0; d < t->ndim; d++)
			e += idx[d] * (uint64_t)t->stride[d];
		bytes_of(t->dtype, (int)(b % 251) - 125, want);
		ASSERT_EQ_INT(nck_src_pread(src, got, es, t->storage_data + e * es), es);
		if (memcmp(want, got, es) != 0)
			nck_test_fail(__FILE__, __LINE__, "%s: element %llu differs", t->key,
				      (unsigned long long)flat);
		for (uint32_t d = t->ndim; d-- > 0;) {
			if (++idx[d] < t->shape[d])
				break;
			idx[d] = 0;
		}
	}
}

/* A tensor by key; a missing one fails the test. */
static const nck_torch_tensor *must_find(const nck_torch_file *f, const char *key)
	__attribute__((returns_nonnull));

static const nck_torch_tensor *must_find(const nck_torch_file *f, const char *key)
{
	const nck_torch_tensor *t = nck_torch_find(f, key);

	if (!t)
		nck_test_fail(__FILE__, __LINE__, "no tensor '%s'", key);
	return t;
}

/* Checks dtype, shape and strides against expected arrays. */
static void check_layout(const nck_torch_tensor *t, nck_dtype dtype, uint32_t ndim,
			 const uint64_t *shape, const int64_t *stride, uint64_t offset)
{
	ASSERT_EQ_INT(t->dtype, dtype);
	ASSERT_EQ_INT(t->ndim, ndim);
	for (uint32_t d = 0; d < ndim; d++) {
		ASSERT_EQ_INT(t->shape[d], shape[d]);
		ASSERT_EQ_INT(t->stride[d], stride[d]);
	}
	ASSERT_EQ_INT(t->storage_offset, offset);
}

/* A hand-built torch.save archive in memory, opened. */
typedef struct built {
	zipbuild z;
	nck_src *src;
	nck_torch_file *f;
	nck_diag d;
} built;

/* Finishes the pickle p (adds STOP), wraps it with storages of the given sizes and opens it. */
static int open_built(built *b, pklbuild *p, const size_t *sizes, int n)
{
	pb_op(p, '.');
	memset(b, 0, sizeof(*b));
	zb_torch(&b->z, "archive", p->buf, p->len, sizes, n);
	nck_diag_init(&b->d);
	ASSERT_EQ_INT(nck_src_new_mem(&b->src, b->z.buf, b->z.len, "built.pt"), 0);
	return nck_torch_open(&b->f, b->src, 0, b->z.len, &b->d);
}

static void close_built(built *b)
{
	nck_torch_file_free(b->f);
	nck_src_close(b->src);
	free(b->z.buf);
}

/* ---- real files ---------------------------------------------------------------------- */

NCK_TEST(torch_real_file_matches_manifest)
{
	/* tests/fixtures/real/torch-2.11/manifest.json, "torch_save.pt", in pickle
	 * order; storage data offsets from Python's zipfile and the local headers. */
	static const struct {
		const char *key;
		nck_dtype dtype;
		uint32_t ndim;
		uint64_t shape[2];
		int64_t stride[2];
		uint64_t offset;
		const char *storage;
		uint64_t data, bytes;
	} want[] = {
		{ "bf16", NCK_DTYPE_BF16, 2, { 4, 8 }, { 8, 1 }, 0, "0", 1472, 64 },
		{ "f16", NCK_DTYPE_F16, 2, { 3, 5 }, { 5, 1 }, 0, "1", 1664, 30 },
		{ "f32", NCK_DTYPE_F32, 1, { 7 }, { 1 }, 0, "2", 1792, 28 },
		{ "i64", NCK_DTYPE_I64, 2, { 2, 3 }, { 3, 1 }, 0, "3", 1920, 48 },
		{ "u8", NCK_DTYPE_U8, 1, { 5 }, { 1 }, 0, "4", 2048, 5 },
		{ "transposed", NCK_DTYPE_F32, 2, { 8, 6 }, { 1, 8 }, 0, "5", 2176, 192 },
		{ "slice", NCK_DTYPE_F32, 2, { 3, 8 }, { 8, 1 }, 16, "5", 2176, 192 },
		{ "param", NCK_DTYPE_F32, 2, { 2, 2 }, { 2, 1 }, 0, "6", 2496, 16 },
		{ "scalar", NCK_DTYPE_F32, 0, { 0 }, { 0 }, 0, "7", 2624, 4 },
	};
	char path[4096];
	nck_torch_file *f;
	nck_src *src;
	nck_diag d;

	fb_repo_path(path, sizeof(path), "tests/fixtures/real/torch-2.11/torch_save.pt");
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_open_file(&src, AT_FDCWD, path, false, &d), 0);
	ASSERT_EQ_INT(nck_torch_open(&f, src, 0, nck_src_size(src), &d), 0);
	ASSERT_EQ_INT(f->n_tensors, 9);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const nck_torch_tensor *t = &f->tensors[i];

		ASSERT_EQ_STR(t->key, want[i].key);
		check_layout(t, want[i].dtype, want[i].ndim, want[i].shape, want[i].stride,
			     want[i].offset);
		ASSERT_EQ_STR(t->storage_key, want[i].storage);
		ASSERT_EQ_INT(t->storage_data, want[i].data);
		ASSERT_EQ_INT(t->storage_bytes, want[i].bytes);
		ASSERT_EQ_INT(t->requires_grad, 0);
		ASSERT_EQ_INT(t->is_parameter, strcmp(t->key, "param") == 0);
		check_values(src, t,
			     strcmp(t->key, "transposed") == 0 ? transposed_index
			     : strcmp(t->key, "slice") == 0    ? slice_index
							       : same_index);
	}
	/* The non-tensor entries stay reachable in the root value. */
	ASSERT_EQ_INT(nck_pv_dict_get(nck_pv_dict_get(f->root, "meta"), "step")->i, 7);
	nck_torch_file_free(f);
	nck_src_close(src);
}

NCK_TEST(torch_real_dcp_blobs)
{
	/* The four torch.save blobs in __0_0.distcp (ranges from Python's zipfile):
	 * extra.step, model.norm.weight, model.embedding.weight, model.layers.weight. */
	static const struct {
		uint64_t base, len;
		nck_dtype dtype;
		uint32_t ndim;
		uint64_t shape[3];
		int64_t stride[3];
		uint64_t data;
	} want[] = {
		{ 0, 1577, NCK_DTYPE_I64, 1, { 1 }, { 1 }, 704 },
		{ 1577, 1577, NCK_DTYPE_F32, 1, { 8 }, { 1 }, 2281 },
		{ 3154, 1833, NCK_DTYPE_BF16, 2, { 16, 8 }, { 8, 1 }, 3858 },
		{ 4987, 1833, NCK_DTYPE_BF16, 3, { 2, 8, 8 }, { 64, 8, 1 }, 5691 },
	};
	char path[4096];
	nck_src *src;
	nck_diag d;

	fb_repo_path(path, sizeof(path), "tests/fixtures/real/torch-2.11/dcp/__0_0.distcp");
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_open_file(&src, AT_FDCWD, path, false, &d), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		nck_torch_file *f;

		ASSERT_EQ_INT(nck_torch_open(&f, src, want[i].base, want[i].len, &d), 0);
		ASSERT_EQ_INT(f->n_tensors, 1);
		ASSERT_EQ_STR(f->tensors[0].key, "");
		check_layout(&f->tensors[0], want[i].dtype, want[i].ndim, want[i].shape,
			     want[i].stride, 0);
		ASSERT_EQ_INT(f->tensors[0].storage_data, want[i].data);
		check_values(src, &f->tensors[0], same_index);
		nck_torch_file_free(f);
	}
	nck_src_close(src);
}

/* Parses a hex string into bytes; returns the count. */
static size_t unhex(const char *s, unsigned char *out, size_t max)
{
	size_t n = 0;

	if (strcmp(s, "-") == 0)
		return 0;
	for (; s[0] && s[1] && n < max; s += 2) {
		unsigned v;

		if (sscanf(s, "%2x", &v) != 1)
			break;
		out[n++] = (unsigned char)v;
	}
	return n;
}

/* Compares one expected.txt line (see gen_torch.py) with the tensor of that key. */
static void check_generated_line(const nck_src *src, const nck_torch_file *f, char *line)
{
	char *tok[64], *save = NULL;
	unsigned char want[4096], got[16];
	const nck_torch_tensor *t;
	uint64_t idx[NCK_MAX_DIMS] = { 0 }, n = 1, off = 0;
	size_t ntok = 0, w, es;
	uint32_t nd;

	for (char *s = strtok_r(line, " \n", &save); s && ntok < 64;
	     s = strtok_r(NULL, " \n", &save))
		tok[ntok++] = s;
	ASSERT_TRUE(ntok >= 6);
	t = must_find(f, tok[0]);
	nd = (uint32_t)atoi(tok[2]);
	ASSERT_EQ_INT(ntok, 3 + 2 * nd + 3);
	ASSERT_EQ_INT(t->dtype, nck_dtype_from_torch_dtype(tok[1]));
	ASSERT_EQ_INT(t->ndim, nd);
	for (uint32_t i = 0; i < nd; i++) {
		ASSERT_EQ_INT(t->shape[i], strtoull(tok[3 + i], NULL, 10));
		ASSERT_EQ_INT(t->stride[i], strtoll(tok[3 + nd + i], NULL, 10));
		n *= t->shape[i];
	}
	ASSERT_EQ_INT(t->storage_offset, strtoull(tok[3 + 2 * nd], NULL, 10));
	ASSERT_EQ_INT(t->requires_grad, atoi(tok[4 + 2 * nd]));
	es = nck_dtype_size(t->dtype);
	w = unhex(tok[5 + 2 * nd], want, sizeof(want));
	ASSERT_EQ_INT(w, n * es);
	for (uint64_t k = 0; k < n; k++, off += es) {
		uint64_t e = t->storage_offset;

		for (uint32_t d = 0; d < nd; d++)
			e += idx[d] * (uint64_t)t->stride[d];
		ASSERT_EQ_INT(nck_src_pread(src, got, es, t->storage_data + e * es), es);
		if (memcmp(got, want + off, es) != 0)
			nck_test_fail(__FILE__, __LINE__, "%s: element %llu differs", t->key,
				      (unsigned long long)k);
		for (uint32_t d = nd; d-- > 0;) {
			if (++idx[d] < t->shape[d])
				break;
			idx[d] = 0;
		}
	}
}

NCK_TEST(torch_file_written_by_installed_torch)
{
	char gen[4096], cmd[4200], *line = NULL;
	size_t cap = 0, lines = 0;
	nck_torch_file *f;
	nck_src *src;
	nck_diag d;
	FILE *exp;
	int st;

	fb_repo_path(gen, sizeof(gen), "tests/unit/format/gen_torch.py");
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s . 2>gen.err", gen);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 77 || WEXITSTATUS(st) == 127) {
		fprintf(stderr, "SKIP: /usr/bin/python3 with torch is not available\n");
		exit(77);
	}
	ASSERT_EQ_INT(WEXITSTATUS(st), 0);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_open_file(&src, AT_FDCWD, "gen.pt", false, &d), 0);
	ASSERT_EQ_INT(nck_torch_open(&f, src, 0, nck_src_size(src), &d), 0);
	exp = fopen("expected.txt", "r");
	ASSERT_TRUE(exp != NULL);
	while (getline(&line, &cap, exp) > 0) {
		check_generated_line(src, f, line);
		lines++;
	}
	ASSERT_EQ_INT(f->n_tensors, lines);
	ASSERT_TRUE(lines >= 20);
	/* Parameters and the plain state dict share storages (one record each). */
	ASSERT_EQ_STR(must_find(f, "params.0.weight")->storage_key,
		      must_find(f, "model.0.weight")->storage_key);
	ASSERT_EQ_INT(must_find(f, "params.0.weight")->is_parameter, 1);
	ASSERT_EQ_INT(must_find(f, "views.t")->storage_data, must_find(f, "tied.1")->storage_data);
	free(line);
	fclose(exp);
	nck_torch_file_free(f);
	nck_src_close(src);
}

/* ---- hand-built rebuild variants ------------------------------------------------------ */

NCK_TEST(torch_v3_untyped_storage_with_dtype)
{
	static const int64_t shape[2] = { 2, 3 }, stride[2] = { 3, 1 };
	static const size_t sizes[2] = { 6, 12 };
	pklbuild p = { 0 };
	built b;

	pb_proto(&p);
	pb_op(&p, '}');
	pb_op(&p, '(');
	pb_str(&p, "f8");
	pb_tensor_v3(&p, "float8_e4m3fn", "0", 6, 0, shape, stride, 2);
	pb_str(&p, "bf");
	pb_tensor_v3(&p, "bfloat16", "1", 12, 0, shape, stride, 2);
	pb_op(&p, 'u');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 2), 0);
	ASSERT_EQ_INT(must_find(b.f, "f8")->dtype, NCK_DTYPE_F8_E4M3);
	ASSERT_EQ_INT(must_find(b.f, "f8")->storage_bytes, 6);
	ASSERT_EQ_INT(must_find(b.f, "bf")->dtype, NCK_DTYPE_BF16);
	ASSERT_EQ_INT(must_find(b.f, "bf")->storage_bytes, 12);
	close_built(&b);
}

NCK_TEST(torch_v3_unknown_dtype)
{
	static const int64_t shape[1] = { 2 }, stride[1] = { 1 };
	static const size_t sizes[1] = { 16 };
	pklbuild p = { 0 };
	built b;

	pb_proto(&p);
	pb_tensor_v3(&p, "complex64", "0", 16, 0, shape, stride, 1);
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 1), -ENOTSUP);
	ASSERT_CONTAINS(b.d.msg, "complex64");
	close_built(&b);
}

NCK_TEST(torch_untyped_storage_in_v2_is_bytes)
{
	static const int64_t shape[1] = { 6 }, stride[1] = { 1 };
	static const size_t sizes[1] = { 6 };
	pklbuild p = { 0 };
	built b;

	pb_proto(&p);
	pb_tensor_v2(&p, "UntypedStorage", "0", 6, 0, shape, stride, 1, 0);
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 1), 0);
	ASSERT_EQ_INT(b.f->tensors[0].dtype, NCK_DTYPE_U8);
	close_built(&b);
}

NCK_TEST(torch_parameter_with_state)
{
	static const int64_t shape[2] = { 2, 2 }, stride[2] = { 2, 1 };
	static const size_t sizes[1] = { 16 };
	pklbuild p = { 0 };
	built b;

	pb_proto(&p);
	pb_op(&p, '}');
	pb_str(&p, "w");
	pb_global(&p, "torch._utils", "_rebuild_parameter_with_state");
	pb_op(&p, '(');
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, shape, stride, 2, 0);
	pb_op(&p, 0x88);
	pb_odict(&p);
	pb_op(&p, '}');
	pb_op(&p, '(');
	pb_str(&p, "tensor_model_parallel");
	pb_op(&p, 0x88);
	pb_str(&p, "partition_dim");
	pb_int(&p, 0);
	pb_op(&p, 'u');
	pb_op(&p, 't');
	pb_op(&p, 'R');
	pb_op(&p, 's');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 1), 0);
	ASSERT_EQ_INT(b.f->n_tensors, 1);
	ASSERT_EQ_STR(b.f->tensors[0].key, "w");
	ASSERT_EQ_INT(b.f->tensors[0].requires_grad, 1);
	ASSERT_EQ_INT(b.f->tensors[0].is_parameter, 1);
	close_built(&b);
}

NCK_TEST(torch_ordereddict_state_dict_with_metadata)
{
	static const int64_t s2[2] = { 3, 2 }, t2[2] = { 2, 1 }, s1[1] = { 3 }, t1[1] = { 1 };
	static const size_t sizes[2] = { 24, 12 };
	pklbuild p = { 0 };
	built b;

	/* nn.Module.state_dict(): OrderedDict items, then BUILD {'_metadata': OrderedDict(...)}. */
	pb_proto(&p);
	pb_odict(&p);
	pb_op(&p, '(');
	pb_str(&p, "layer.weight");
	pb_tensor_v2(&p, "FloatStorage", "0", 6, 0, s2, t2, 2, 0);
	pb_str(&p, "layer.bias");
	pb_tensor_v2(&p, "FloatStorage", "1", 3, 0, s1, t1, 1, 0);
	pb_op(&p, 'u');
	pb_op(&p, '}');
	pb_str(&p, "_metadata");
	pb_odict(&p);
	pb_str(&p, "layer");
	pb_op(&p, '}');
	pb_str(&p, "version");
	pb_int(&p, 1);
	pb_op(&p, 's');
	pb_op(&p, 's');
	pb_op(&p, 's');
	pb_op(&p, 'b');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 2), 0);
	ASSERT_EQ_INT(b.f->n_tensors, 2);
	ASSERT_EQ_STR(b.f->tensors[0].key, "layer.weight");
	ASSERT_EQ_STR(b.f->tensors[1].key, "layer.bias");
	ASSERT_EQ_INT(b.f->tensors[1].shape[0], 3);
	close_built(&b);
}

NCK_TEST(torch_nested_keys_lists_and_int_keys)
{
	static const int64_t s[1] = { 2 }, t[1] = { 1 };
	static const size_t sizes[3] = { 8, 8, 8 };
	pklbuild p = { 0 };
	built b;

	/* {'model': {'layers': [t0, t1]}, 'opt': {'state': {0: {'exp_avg': t2}}}, 'lr': 0.5} */
	pb_proto(&p);
	pb_op(&p, '}');
	pb_op(&p, '(');
	pb_str(&p, "model");
	pb_op(&p, '}');
	pb_str(&p, "layers");
	pb_op(&p, ']');
	pb_op(&p, '(');
	pb_tensor_v2(&p, "FloatStorage", "0", 2, 0, s, t, 1, 0);
	pb_tensor_v2(&p, "FloatStorage", "1", 2, 0, s, t, 1, 0);
	pb_op(&p, 'e');
	pb_op(&p, 's');
	pb_str(&p, "opt");
	pb_op(&p, '}');
	pb_str(&p, "state");
	pb_op(&p, '}');
	pb_int(&p, 0);
	pb_op(&p, '}');
	pb_str(&p, "exp_avg");
	pb_tensor_v2(&p, "FloatStorage", "2", 2, 0, s, t, 1, 0);
	pb_op(&p, 's');
	pb_op(&p, 's');
	pb_op(&p, 's');
	pb_str(&p, "lr");
	pb_bytes(&p, "G\x3f\xe0\x00\x00\x00\x00\x00\x00", 9);
	pb_op(&p, 'u');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 3), 0);
	ASSERT_EQ_INT(b.f->n_tensors, 3);
	ASSERT_EQ_STR(b.f->tensors[0].key, "model.layers.0");
	ASSERT_EQ_STR(b.f->tensors[1].key, "model.layers.1");
	ASSERT_EQ_STR(b.f->tensors[2].key, "opt.state.0.exp_avg");
	ASSERT_EQ_STR(b.f->tensors[2].storage_key, "2");
	close_built(&b);
}

NCK_TEST(torch_tied_weights_and_shared_views)
{
	static const int64_t s[2] = { 2, 2 }, t[2] = { 2, 1 }, tt[2] = { 1, 2 }, vs[1] = { 2 },
			     vt[1] = { 3 };
	static const size_t sizes[1] = { 16 };
	pklbuild p = { 0 };
	built b;

	/* {'a': t (memoized as 0), 'b': BINGET 0, 'c': view of the same storage
	 * transposed, 'd': diagonal (offset 0, stride 3)}. */
	pb_proto(&p);
	pb_op(&p, '}');
	pb_op(&p, '(');
	pb_str(&p, "a");
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, s, t, 2, 0);
	pb_bytes(&p, "q\x00", 2);
	pb_str(&p, "b");
	pb_bytes(&p, "h\x00", 2);
	pb_str(&p, "c");
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, s, tt, 2, 0);
	pb_str(&p, "d");
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, vs, vt, 1, 0);
	pb_op(&p, 'u');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 1), 0);
	ASSERT_EQ_INT(b.f->n_tensors, 4);
	ASSERT_EQ_STR(b.f->tensors[1].key, "b");
	ASSERT_EQ_INT(b.f->tensors[1].storage_data, b.f->tensors[0].storage_data);
	ASSERT_EQ_INT(b.f->tensors[2].stride[0], 1);
	ASSERT_EQ_INT(b.f->tensors[3].stride[0], 3);
	ASSERT_EQ_INT(b.f->tensors[3].storage_data, b.f->tensors[0].storage_data);
	close_built(&b);
}

NCK_TEST(torch_empty_and_scalar_tensors)
{
	static const int64_t s0[1] = { 0 }, t0[1] = { 1 }, s2[2] = { 0, 5 }, t2[2] = { 5, 1 };
	static const size_t sizes[2] = { 0, 8 };
	pklbuild p = { 0 };
	built b;

	pb_proto(&p);
	pb_op(&p, '(');
	pb_tensor_v2(&p, "FloatStorage", "0", 0, 0, s0, t0, 1, 0);
	pb_tensor_v2(&p, "FloatStorage", "0", 0, 0, s2, t2, 2, 0);
	pb_tensor_v2(&p, "LongStorage", "1", 1, 0, NULL, NULL, 0, 0);
	pb_op(&p, 'l');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 2), 0);
	ASSERT_EQ_INT(b.f->n_tensors, 3);
	ASSERT_EQ_STR(b.f->tensors[1].key, "1");
	ASSERT_EQ_INT(b.f->tensors[1].shape[0], 0);
	ASSERT_EQ_INT(b.f->tensors[2].ndim, 0);
	ASSERT_EQ_INT(b.f->tensors[2].storage_bytes, 8);
	close_built(&b);
}

NCK_TEST(torch_rebuild_v1_from_type_and_size_argument)
{
	static const int64_t s[2] = { 2, 2 }, t[2] = { 2, 1 };
	static const size_t sizes[1] = { 8 };
	pklbuild p = { 0 };
	built b;

	pb_proto(&p);
	pb_op(&p, '(');
	/* _rebuild_tensor(storage, 0, torch.Size((2, 2)), (2, 1)) */
	pb_global(&p, "torch._utils", "_rebuild_tensor");
	pb_op(&p, '(');
	pb_storage(&p, "HalfStorage", "0", 4);
	pb_int(&p, 0);
	pb_global(&p, "torch", "Size");
	pb_ints(&p, s, 2);
	pb_op(&p, 0x85);
	pb_op(&p, 'R');
	pb_ints(&p, t, 2);
	pb_op(&p, 't');
	pb_op(&p, 'R');
	/* _rebuild_from_type_v2(_rebuild_tensor_v2, MyTensor, (args...), {}) */
	pb_global(&p, "torch._tensor", "_rebuild_from_type_v2");
	pb_op(&p, '(');
	pb_global(&p, "torch._utils", "_rebuild_tensor_v2");
	pb_global(&p, "transformer_engine.pytorch", "MyTensor");
	pb_op(&p, '(');
	pb_storage(&p, "HalfStorage", "0", 4);
	pb_int(&p, 1);
	pb_ints(&p, &s[0], 1);
	pb_ints(&p, &t[1], 1);
	pb_op(&p, 0x89);
	pb_odict(&p);
	pb_op(&p, 't');
	pb_op(&p, '}');
	pb_op(&p, 't');
	pb_op(&p, 'R');
	pb_op(&p, 'l');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 1), 0);
	ASSERT_EQ_INT(b.f->n_tensors, 2);
	ASSERT_EQ_INT(b.f->tensors[0].dtype, NCK_DTYPE_F16);
	ASSERT_EQ_INT(b.f->tensors[0].shape[1], 2);
	ASSERT_EQ_INT(b.f->tensors[1].storage_offset, 1);
	ASSERT_EQ_INT(b.f->tensors[1].shape[0], 2);
	close_built(&b);
}

NCK_TEST(torch_opaque_objects_never_tensors)
{
	static const size_t sizes[1] = { 0 };
	pklbuild p = { 0 };
	built b;

	/* {'extra': io.BytesIO via NEWOBJ + BUILD, 'args': argparse.Namespace(dtype=bfloat16),
	 *  'cycle': a list containing itself, 'rng': numpy-like REDUCE} */
	pb_proto(&p);
	pb_op(&p, '}');
	pb_op(&p, '(');
	pb_str(&p, "extra");
	pb_global(&p, "_io", "BytesIO");
	pb_op(&p, ')');
	pb_op(&p, 0x81);
	pb_global(&p, "_codecs", "encode");
	pb_str(&p, "abc");
	pb_str(&p, "latin1");
	pb_op(&p, 0x86);
	pb_op(&p, 'R');
	pb_int(&p, 0);
	pb_op(&p, 'N');
	pb_op(&p, 0x87);
	pb_op(&p, 'b');
	pb_str(&p, "args");
	pb_global(&p, "argparse", "Namespace");
	pb_op(&p, ')');
	pb_op(&p, 0x81);
	pb_op(&p, '}');
	pb_str(&p, "dtype");
	pb_global(&p, "torch", "bfloat16");
	pb_op(&p, 's');
	pb_op(&p, 'b');
	pb_str(&p, "cycle");
	pb_op(&p, ']');
	pb_bytes(&p,
		 "q\x00h\x00"
		 "a",
		 5);
	pb_op(&p, 'u');
	ASSERT_EQ_INT(open_built(&b, &p, sizes, 0), 0);
	ASSERT_EQ_INT(b.f->n_tensors, 0);
	ASSERT_TRUE(nck_pv_is_call_of(nck_pv_dict_get(b.f->root, "extra"), "_io", "BytesIO"));
	ASSERT_TRUE(nck_pv_is_global(
		nck_pv_dict_get(nck_pv_dict_get(b.f->root, "args")->call.state, "dtype"), "torch",
		"bfloat16"));
	close_built(&b);
}

/* ---- errors ----------------------------------------------------------------------------- */

/* Builds {'t': one v2 tensor} with the given layout over one storage and opens it. */
static int open_one(built *b, const char *cls, int64_t numel, int64_t offset, const int64_t *shape,
		    const int64_t *stride, int nd, size_t record)
{
	pklbuild p = { 0 };

	pb_proto(&p);
	pb_op(&p, '}');
	pb_str(&p, "t");
	pb_tensor_v2(&p, cls, "0", numel, offset, shape, stride, nd, 0);
	pb_op(&p, 's');
	return open_built(b, &p, &record, 1);
}

NCK_TEST(torch_extent_checked_against_storage)
{
	static const int64_t s[2] = { 3, 3 }, t[2] = { 3, 1 }, tv[2] = { 1, 3 };
	built b;

	/* 9 elements need 36 bytes; the storage has 8 floats. */
	ASSERT_EQ_INT(open_one(&b, "FloatStorage", 8, 0, s, t, 2, 32), -EBADMSG);
	ASSERT_CONTAINS(b.d.msg, "'t'");
	ASSERT_CONTAINS(b.d.msg, "addresses 36 bytes");
	close_built(&b);
	/* Exactly fitting, with an offset: last element 1 + 2*1 + 2*3 = 9 of 10. */
	ASSERT_EQ_INT(open_one(&b, "FloatStorage", 10, 1, s, tv, 2, 40), 0);
	close_built(&b);
	ASSERT_EQ_INT(open_one(&b, "FloatStorage", 10, 2, s, tv, 2, 40), -EBADMSG);
	close_built(&b);
}

NCK_TEST(torch_negative_stride_or_size_rejected)
{
	static const int64_t s[2] = { 2, 2 }, t[2] = { 2, -1 }, sn[1] = { -2 }, tn[1] = { 1 };
	built b;

	ASSERT_EQ_INT(open_one(&b, "FloatStorage", 4, 1, s, t, 2, 16), -EBADMSG);
	ASSERT_CONTAINS(b.d.msg, "negative stride");
	close_built(&b);
	ASSERT_EQ_INT(open_one(&b, "FloatStorage", 4, 0, sn, tn, 1, 16), -EBADMSG);
	ASSERT_CONTAINS(b.d.msg, "negative size");
	close_built(&b);
}

NCK_TEST(torch_storage_record_problems)
{
	static const int64_t s[1] = { 4 }, t[1] = { 1 };
	pklbuild p = { 0 };
	built b;

	/* numel 4 floats = 16 bytes, but the record has 20. */
	ASSERT_EQ_INT(open_one(&b, "FloatStorage", 4, 0, s, t, 1, 20), -EBADMSG);
	ASSERT_CONTAINS(b.d.msg, "has 20 bytes");
	close_built(&b);
	/* Storage key 7 has no record. */
	pb_proto(&p);
	pb_tensor_v2(&p, "FloatStorage", "7", 4, 0, s, t, 1, 0);
	ASSERT_EQ_INT(open_built(&b, &p, (const size_t[]){ 16 }, 1), -EBADMSG);
	ASSERT_CONTAINS(b.d.msg, "data/7 is missing");
	close_built(&b);
	/* Unknown storage classes are refused. */
	ASSERT_EQ_INT(open_one(&b, "ComplexFloatStorage", 2, 0, s, t, 1, 16), -ENOTSUP);
	ASSERT_CONTAINS(b.d.msg, "ComplexFloatStorage");
	close_built(&b);
	ASSERT_EQ_INT(open_one(&b, "QInt8Storage", 4, 0, s, t, 1, 4), -ENOTSUP);
	close_built(&b);
}

NCK_TEST(torch_compressed_storage_not_supported)
{
	static const int64_t s[1] = { 4 }, t[1] = { 1 };
	pklbuild p = { 0 };
	zipbuild z = { 0 };
	nck_torch_file *f;
	nck_src *src;
	nck_diag d;

	pb_proto(&p);
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, s, t, 1, 0);
	pb_op(&p, '.');
	zb_record(&z, "archive/data.pkl", p.buf, p.len, 0);
	zb_record(&z, "archive/data/0", "0123456789abcdef", 16, 8);
	zb_finish(&z, ZB_ZIP64, "", 0);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, z.buf, z.len, "deflated.pt"), 0);
	ASSERT_EQ_INT(nck_torch_open(&f, src, 0, z.len, &d), -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "archive/data/0");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(torch_bad_rebuild_arguments)
{
#define PID                                                                 \
	"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" \
	"0NK\x04tQ"
	static const struct {
		const char *p;
		size_t len;
		const char *why;
	} bad[] = {
#define CASE(lit, why) { lit, sizeof(lit) - 1, why }
		CASE("ctorch._utils\n_rebuild_tensor_v2\n"
		     "((X\x06\x00\x00\x00moduleN)tQK\x00)))\x89}tR",
		     "persistent id"),
		CASE("ctorch._utils\n_rebuild_tensor_v2\n" PID "K\x00(K\x04t(K\x01t\x89tR",
		     "with 5 arguments"),
		CASE("ctorch._utils\n_rebuild_tensor_v2\n" PID "K\x00(K\x04t)\x89}tR",
		     "1 sizes but 0 strides"),
		CASE("ctorch._utils\n_rebuild_tensor_v2\n" PID
		     "K\x00(K\x04t(K\x01tX\x00\x00\x00\x00}tR",
		     "requires_grad"),
		CASE("ctorch._utils\n_rebuild_tensor_v2\n" PID "N(K\x04t(K\x01t\x89}tR",
		     "storage offset"),
		CASE("ctorch._utils\n_rebuild_parameter\n(N\x89}tR", "parameter"),
#undef CASE
	};
#undef PID
	built b;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pklbuild p = { 0 };

		pb_proto(&p);
		pb_bytes(&p, bad[i].p, bad[i].len);
		ASSERT_EQ_INT(open_built(&b, &p, (const size_t[]){ 16 }, 1), -EBADMSG);
		ASSERT_CONTAINS(b.d.msg, bad[i].why);
		close_built(&b);
	}
}

NCK_TEST(torch_unsupported_tensor_kinds)
{
	static const int64_t s[1] = { 4 }, t[1] = { 1 }, s9[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	pklbuild p = { 0 }, q = { 0 };
	built b;

	/* Nine dimensions. */
	ASSERT_EQ_INT(open_one(&b, "FloatStorage", 1, 0, s9, s9, 9, 4), -ENOTSUP);
	ASSERT_CONTAINS(b.d.msg, "9 dimensions");
	close_built(&b);
	/* A sparse tensor rebuild. */
	pb_proto(&p);
	pb_global(&p, "torch._utils", "_rebuild_sparse_tensor");
	pb_op(&p, ')');
	pb_op(&p, 'R');
	ASSERT_EQ_INT(open_built(&b, &p, (const size_t[]){ 16 }, 1), -ENOTSUP);
	ASSERT_CONTAINS(b.d.msg, "_rebuild_sparse_tensor");
	close_built(&b);
	/* A tensor with the conj bit set in its metadata (7th argument). */
	pb_proto(&q);
	pb_global(&q, "torch._utils", "_rebuild_tensor_v2");
	pb_op(&q, '(');
	pb_storage(&q, "FloatStorage", "0", 4);
	pb_int(&q, 0);
	pb_ints(&q, s, 1);
	pb_ints(&q, t, 1);
	pb_op(&q, 0x89);
	pb_odict(&q);
	pb_op(&q, '}');
	pb_str(&q, "conj");
	pb_op(&q, 0x88);
	pb_op(&q, 's');
	pb_op(&q, 't');
	pb_op(&q, 'R');
	ASSERT_EQ_INT(open_built(&b, &q, (const size_t[]){ 16 }, 1), -ENOTSUP);
	ASSERT_CONTAINS(b.d.msg, "conj");
	close_built(&b);
}

NCK_TEST(torch_duplicate_keys)
{
	static const int64_t s[1] = { 4 }, t[1] = { 1 };
	pklbuild p = { 0 };
	built b;

	/* {1: t, '1': t}: two Python keys, one joined key. */
	pb_proto(&p);
	pb_op(&p, '}');
	pb_op(&p, '(');
	pb_int(&p, 1);
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, s, t, 1, 0);
	pb_str(&p, "1");
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, s, t, 1, 0);
	pb_op(&p, 'u');
	ASSERT_EQ_INT(open_built(&b, &p, (const size_t[]){ 16 }, 1), -EBADMSG);
	ASSERT_CONTAINS(b.d.msg, "two tensors with key '1'");
	close_built(&b);
}

NCK_TEST(torch_shared_value_blowup_is_bounded)
{
	pklbuild p = { 0 };
	built b;

	/* x0 = []; x(k+1) = (xk, xk): 2^40 paths to the innermost list. */
	pb_proto(&p);
	pb_op(&p, ']');
	for (int k = 0; k < 40; k++)
		pb_bytes(&p, "q\x00h\x00\x86", 5);
	ASSERT_EQ_INT(open_built(&b, &p, (const size_t[]){ 0 }, 0), -E2BIG);
	ASSERT_CONTAINS(b.d.msg, "values visited");
	close_built(&b);
}

NCK_TEST(torch_archive_problems)
{
	static const int64_t s[1] = { 4 }, t[1] = { 1 };
	pklbuild p = { 0 };
	zipbuild z = { 0 }, y = { 0 }, x = { 0 };
	nck_torch_file *f;
	nck_src *src;
	nck_diag d;

	/* No data.pkl. */
	zb_record(&z, "archive/version", "3\n", 2, 0);
	zb_finish(&z, ZB_ZIP64, "", 0);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, z.buf, z.len, "x.pt"), 0);
	ASSERT_EQ_INT(nck_torch_open(&f, src, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "without data.pkl");
	nck_src_close(src);
	/* A record outside the archive directory. */
	pb_proto(&p);
	pb_tensor_v2(&p, "FloatStorage", "0", 4, 0, s, t, 1, 0);
	pb_op(&p, '.');
	zb_record(&y, "archive/data.pkl", p.buf, p.len, 0);
	zb_record(&y, "other/data/0", "0123456789abcdef", 16, 0);
	zb_finish(&y, ZB_ZIP64, "", 0);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, y.buf, y.len, "y.pt"), 0);
	ASSERT_EQ_INT(nck_torch_open(&f, src, 0, y.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "outside the archive directory");
	nck_src_close(src);
	/* Big-endian data. */
	zb_record(&x, "archive/data.pkl", p.buf, p.len, 0);
	zb_record(&x, "archive/byteorder", "big", 3, 0);
	zb_finish(&x, ZB_ZIP64, "", 0);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, x.buf, x.len, "x.pt"), 0);
	ASSERT_EQ_INT(nck_torch_open(&f, src, 0, x.len, &d), -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "big-endian");
	nck_src_close(src);
	free(z.buf);
	free(y.buf);
	free(x.buf);
}

NCK_TEST(torch_pickle_error_offset_is_absolute)
{
	pklbuild p = { 0 };
	built b;

	/* data.pkl's data starts at 64; the bad opcode is its 3rd byte. */
	pb_proto(&p);
	pb_op(&p, 0xff);
	ASSERT_EQ_INT(open_built(&b, &p, NULL, 0), -EBADMSG);
	ASSERT_EQ_INT(b.d.offset, 64 + 2);
	ASSERT_EQ_STR(b.d.path, "built.pt");
	close_built(&b);
	nck_torch_file_free(NULL);
}
