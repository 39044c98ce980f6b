/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the torch.save planner. Planned files are materialised with
 * a deterministic pattern (byte k of tensor i is (131 k + 17 i + 7) mod 256,
 * masked to 0/1 for bool) and checked by independent oracles: the installed
 * torch 1.13 under /usr/bin/python3 (torch.load, also weights_only, must
 * give every tensor's dtype, shape and bytes; data.pkl must unpickle to the
 * same object graph as torch.save's own pickle of the loaded dict; zipfile
 * must find every CRC right and every record's data 64-byte aligned), and
 * the project's zip and torch readers. ZIP64 files are checked as sparse
 * files (MEM pieces only) through zipfile's central-directory parse. A
 * missing torch fails the tests: they exist to compare against it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fmtbuild.h"
#include "format/torch.h"
#include "format/torchsave.h"
#include "format/torchzip.h"
#include "nck_test.h"

#define PY "/usr/bin/python3"

/* ---- helpers ----------------------------------------------------------------------- */

/* Byte k of tensor i's data. */
static unsigned char pattern(size_t i, uint64_t k, nck_dtype dtype)
{
	unsigned char v = (unsigned char)(k * 131 + i * 17 + 7);

	return dtype == NCK_DTYPE_BOOL ? v & 1 : v;
}

static nck_ts_tensor tensor(const char *name, nck_dtype dtype, uint32_t ndim, uint64_t d0,
			    uint64_t d1, uint64_t d2)
{
	nck_ts_tensor t = { .name = name, .dtype = dtype, .ndim = ndim };

	t.shape[0] = d0;
	t.shape[1] = d1;
	t.shape[2] = d2;
	return t;
}

/* Checks that the pieces tile [0, size) and agree with the entries. */
static void check_pieces(const nck_ts_plan *p)
{
	uint64_t at = 0;
	size_t data = 0;

	for (size_t i = 0; i < p->n_pieces; i++) {
		const nck_ts_piece *pc = &p->pieces[i];

		ASSERT_EQ_INT(pc->off, at);
		ASSERT_TRUE(pc->len > 0);
		ASSERT_EQ_INT(nck_ts_piece_at(p, pc->off), i);
		ASSERT_EQ_INT(nck_ts_piece_at(p, pc->off + pc->len - 1), i);
		if (pc->kind == NCK_TS_DATA) {
			ASSERT_TRUE(pc->tensor < p->n_entries);
			ASSERT_EQ_INT(p->entries[pc->tensor].data, pc->off);
			ASSERT_EQ_INT(p->entries[pc->tensor].nbytes, pc->len);
			ASSERT_EQ_INT(pc->off % 64, 0);
			data++;
		} else {
			ASSERT_TRUE(pc->mem >= p->mem && pc->mem + pc->len <= p->mem + p->mem_len);
		}
		at += pc->len;
	}
	ASSERT_EQ_INT(at, p->size);
	ASSERT_EQ_INT(nck_ts_piece_at(p, p->size), p->n_pieces);
	for (size_t i = 0; i < p->n_entries; i++)
		data -= p->entries[i].nbytes != 0;
	ASSERT_EQ_INT(data, 0);
}

/* Fills every tensor with the pattern, sets the CRCs and returns the whole file. */
static unsigned char *materialize(nck_ts_plan *p, const nck_ts_tensor *t)
{
	unsigned char *file = malloc(p->size), **data = calloc(p->n_entries + 1, sizeof(*data));

	ASSERT_TRUE(file && data);
	for (size_t i = 0; i < p->n_entries; i++) {
		uint64_t n = p->entries[i].nbytes;

		ASSERT_TRUE((data[i] = malloc(n ? n : 1)) != NULL);
		for (uint64_t k = 0; k < n; k++)
			data[i][k] = pattern(i, k, t[i].dtype);
		nck_ts_set_crc(p, i, (uint32_t)crc32_z(0, data[i], n));
	}
	for (size_t i = 0; i < p->n_pieces; i++) {
		const nck_ts_piece *pc = &p->pieces[i];
		const void *src = pc->kind == NCK_TS_MEM ? pc->mem : data[pc->tensor];

		memcpy(file + pc->off, src, pc->len);
	}
	for (size_t i = 0; i < p->n_entries; i++)
		free(data[i]);
	free(data);
	return file;
}

static void write_file(const char *path, const void *buf, size_t n)
{
	FILE *f = fopen(path, "wb");

	ASSERT_TRUE(f != NULL);
	ASSERT_EQ_INT(fwrite(buf, 1, n, f), n);
	ASSERT_EQ_INT(fclose(f), 0);
}

/* torch's name of a dtype, for the oracle. */
static const char *torch_dtype(nck_dtype d)
{
	static const char *const names[NCK_DTYPE_COUNT] = {
		[NCK_DTYPE_BOOL] = "bool",	 [NCK_DTYPE_U8] = "uint8",
		[NCK_DTYPE_I8] = "int8",	 [NCK_DTYPE_I16] = "int16",
		[NCK_DTYPE_I32] = "int32",	 [NCK_DTYPE_I64] = "int64",
		[NCK_DTYPE_F16] = "float16",	 [NCK_DTYPE_BF16] = "bfloat16",
		[NCK_DTYPE_F32] = "float32",	 [NCK_DTYPE_F64] = "float64",
		[NCK_DTYPE_U16] = "uint16",	 [NCK_DTYPE_F8_E4M3] = "float8_e4m3fn",
		[NCK_DTYPE_F8_E5M2] = "float8_e5m2",
	};

	return names[d];
}

/* spec.txt: one line per tensor, "<hex name> <dtype> <d0,d1,...>" (also "" dims). */
static void write_spec(const nck_ts_tensor *t, size_t n)
{
	FILE *f = fopen("spec.txt", "w");

	ASSERT_TRUE(f != NULL);
	for (size_t i = 0; i < n; i++) {
		for (const char *c = t[i].name; *c; c++)
			fprintf(f, "%02x", (unsigned char)*c);
		fprintf(f, " %s ", torch_dtype(t[i].dtype));
		for (uint32_t d = 0; d < t[i].ndim; d++)
			fprintf(f, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
		fputc('\n', f);
	}
	ASSERT_EQ_INT(fclose(f), 0);
}

/* The torch oracle: argv[1] the file, argv[2] the record prefix, spec.txt the tensors. */
static const char torch_check_py[] =
	"import collections, io, pickle, struct, sys, zipfile\n"
	"import numpy as np, torch\n"
	"path, arch = sys.argv[1], sys.argv[2]\n"
	"rows = [l.split(' ') for l in open('spec.txt', encoding='ascii').read().splitlines()]\n"
	"names = [bytes.fromhex(r[0]).decode('utf-8') for r in rows]\n"
	"shapes = [tuple(int(x) for x in r[2].split(',') if x) for r in rows]\n"
	"def pattern(i, n, is_bool):\n"
	"    v = ((np.arange(n, dtype=np.uint64) * 131 + i * 17 + 7) & 0xff).astype(np.uint8)\n"
	"    return (v & 1 if is_bool else v).tobytes()\n"
	"for wo in (False, True):\n"
	"    sd = torch.load(path, weights_only=wo)\n"
	"    assert type(sd) is collections.OrderedDict, type(sd)\n"
	"    assert list(sd) == names, (list(sd), names)\n"
	"    for i, (name, row, shape) in enumerate(zip(names, rows, shapes)):\n"
	"        t = sd[name]\n"
	"        assert str(t.dtype) == 'torch.' + row[1], (name, t.dtype)\n"
	"        assert tuple(t.shape) == shape and t.is_contiguous(), (name, t.shape)\n"
	"        assert not t.requires_grad and t.storage_offset() == 0\n"
	"        b = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()\n"
	"        n = t.numel() * t.element_size()\n"
	"        assert b == pattern(i, n, t.dtype == torch.bool), name\n"
	"z = zipfile.ZipFile(path)\n"
	"assert z.testzip() is None\n"
	"want = [arch + '/data.pkl', arch + '/byteorder']\n"
	"want += [arch + '/data/%d' % i for i in range(len(names))] + [arch + '/version']\n"
	"assert z.namelist() == want, z.namelist()\n"
	"assert z.read(arch + '/byteorder') == b'little' and z.read(arch + '/version') == b'3\\n'\n"
	"raw = open(path, 'rb').read()\n"
	"for zi in z.infolist():\n"
	"    o = zi.header_offset\n"
	"    nl, el = struct.unpack('<HH', raw[o + 26:o + 30])\n"
	"    assert (o + 30 + nl + el) % 64 == 0, zi.filename\n"
	"    assert raw[o + 30 + nl:o + 32 + nl] == b'FB', zi.filename\n"
	"# The same attributes and trailer as a file torch.save writes.\n"
	"buf = io.BytesIO()\n"
	"torch.save(collections.OrderedDict((n, sd[n]) for n in names), buf)\n"
	"ref = zipfile.ZipFile(io.BytesIO(buf.getvalue()))\n"
	"attrs = lambda zi: (zi.flag_bits, zi.compress_type, zi.create_version,\n"
	"    zi.extract_version, zi.create_system, zi.external_attr, zi.internal_attr,\n"
	"    zi.date_time, zi.extra)\n"
	"ours = {zi.file_size > 0: attrs(zi) for zi in z.infolist()}\n"
	"theirs = {zi.file_size > 0: attrs(zi) for zi in ref.infolist()}\n"
	"assert all(ours[k] == theirs[k] for k in ours if k in theirs), (ours, theirs)\n"
	"assert raw[-98:-94] == buf.getvalue()[-98:-94] == b'PK\\x06\\x06'\n"
	"# data.pkl decodes to the same object graph as torch.save's.\n"
	"class G:\n"
	"    def __init__(s, k): s.k = k\n"
	"    def __eq__(s, o): return isinstance(o, G) and s.k == o.k\n"
	"    def __call__(s, *a): return ('call', s.k, a)\n"
	"    def __repr__(s): return 'G%r' % (s.k,)\n"
	"class Sym(pickle.Unpickler):\n"
	"    def find_class(s, m, n):\n"
	"        if (m, n) == ('collections', 'OrderedDict'): return collections.OrderedDict\n"
	"        return G((m, n))\n"
	"    def persistent_load(s, pid): return ('pid', pid)\n"
	"sym = lambda b: Sym(io.BytesIO(b)).load()\n"
	"a, b = sym(z.read(arch + '/data.pkl')), sym(ref.read('archive/data.pkl'))\n"
	"assert a == b, (a, b)\n"
	"print('torch oracle: ok,', len(names), 'tensors')\n";

/* Writes a Python script to `name` in the test directory and runs it; returns its status. */
static int run_py(const char *name, const char *script, const char *args)
{
	char cmd[1024];
	int st;

	write_file(name, script, strlen(script));
	snprintf(cmd, sizeof(cmd), PY " %s %s", name, args);
	fflush(stdout);
	st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* The project's readers: every tensor where the plan put it, with the CRCs set. */
static void check_own_readers(const unsigned char *file, const nck_ts_plan *p,
			      const nck_ts_tensor *t, const char *archive)
{
	nck_torch_file *tf = NULL;
	nck_src *src = NULL;
	nck_diag d;
	char name[256];

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, file, p->size, "ts.ckpt"), 0);
	ASSERT_EQ_INT(nck_torch_open(&tf, src, 0, p->size, &d), 0);
	ASSERT_EQ_STR(tf->zip->prefix, archive);
	ASSERT_EQ_INT(tf->n_tensors, p->n_entries);
	for (size_t i = 0; i < p->n_entries; i++) {
		const nck_torch_tensor *x = &tf->tensors[i];
		const nck_zip_entry *e;
		uint64_t s = 1;

		ASSERT_EQ_STR(x->key, t[i].name);
		ASSERT_EQ_INT(x->dtype, t[i].dtype);
		ASSERT_EQ_INT(x->ndim, t[i].ndim);
		for (uint32_t k = t[i].ndim; k-- > 0;) {
			ASSERT_EQ_INT(x->shape[k], t[i].shape[k]);
			ASSERT_EQ_INT(x->stride[k], s);
			s *= t[i].shape[k] ? t[i].shape[k] : 1;
		}
		ASSERT_EQ_INT(x->storage_offset, 0);
		ASSERT_EQ_INT(x->storage_bytes, p->entries[i].nbytes);
		if (p->entries[i].nbytes)
			ASSERT_EQ_INT(x->storage_data, p->entries[i].data);
		snprintf(name, sizeof(name), "%s/data/%zu", archive, i);
		ASSERT_TRUE((e = nck_zip_find(tf->zip, name)) != NULL);
		ASSERT_EQ_INT(e->header_offset, p->entries[i].header);
		ASSERT_EQ_INT(e->crc32, crc32_z(0, file + e->data_offset, e->size));
	}
	nck_torch_file_free(tf);
	nck_src_close(src);
}

/* Plans, materialises, and checks with torch and the project's readers. */
static void plan_and_check(const char *archive, const nck_ts_tensor *t, size_t n)
{
	nck_ts_plan *p = NULL;
	unsigned char *file;
	char args[300];
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_ts_plan_build(&p, archive, t, n, &d), 0);
	check_pieces(p);
	file = materialize(p, t);
	write_file("ts.ckpt", file, p->size);
	check_own_readers(file, p, t, archive);
	write_spec(t, n);
	snprintf(args, sizeof(args), "ts.ckpt %s", archive);
	ASSERT_EQ_INT(run_py("check.py", torch_check_py, args), 0);
	free(file);
	nck_ts_plan_free(p);
}

/* ---- tests ------------------------------------------------------------------------- */

NCK_TEST(torchsave_mixed_dtypes_load_in_torch)
{
	const nck_ts_tensor t[] = {
		tensor("decoder.layers.0.self_attention.linear_qkv.weight", NCK_DTYPE_BF16, 2, 12,
		       8, 0),
		tensor("decoder.final_layernorm.bias", NCK_DTYPE_F32, 1, 7, 0, 0),
		tensor("step", NCK_DTYPE_I64, 0, 0, 0, 0),
		tensor("cube", NCK_DTYPE_U8, 3, 2, 3, 5),
		tensor("mask", NCK_DTYPE_BOOL, 1, 9, 0, 0),
		tensor("empty", NCK_DTYPE_F32, 2, 0, 4, 0),
		tensor("empty.middle", NCK_DTYPE_BF16, 3, 2, 0, 3),
		tensor("h", NCK_DTYPE_F16, 2, 2, 2, 0),
		tensor("i32", NCK_DTYPE_I32, 1, 3, 0, 0),
		tensor("i16", NCK_DTYPE_I16, 1, 5, 0, 0),
		tensor("i8", NCK_DTYPE_I8, 1, 70000, 0, 0), /* numel needs BININT */
		tensor("d", NCK_DTYPE_F64, 2, 300, 1, 0),   /* BININT2 dims */
		tensor("emb.\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80 \"q\"", NCK_DTYPE_BF16, 1, 3, 0,
		       0),
	};

	plan_and_check("model_weights", t, sizeof(t) / sizeof(t[0]));
}

NCK_TEST(torchsave_empty_dict)
{
	plan_and_check("model_weights", NULL, 0);
}

NCK_TEST(torchsave_setitems_batches_and_unicode_archive)
{
	/* 2001 items: two SETITEMS batches of 1000, then one SETITEM (pickle.py). */
	enum { N = 2001 };
	nck_ts_tensor *t = calloc(N, sizeof(*t));
	char (*names)[16] = calloc(N, sizeof(*names));

	ASSERT_TRUE(t && names);
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "w%zu", N - i);
		t[i] = tensor(names[i], i % 2 ? NCK_DTYPE_F32 : NCK_DTYPE_U8, 1, i % 5, 0, 0);
	}
	plan_and_check("gewichte_\xc3\xa4", t, N);
	free(names);
	free(t);
}

NCK_TEST(torchsave_set_crc_patches_two_fields)
{
	const nck_ts_tensor t[] = {
		tensor("a", NCK_DTYPE_F32, 1, 3, 0, 0),
		tensor("z", NCK_DTYPE_F32, 1, 0, 0, 0),
		tensor("b", NCK_DTYPE_BF16, 2, 2, 2, 0),
	};
	nck_ts_plan *p = NULL;
	unsigned char *before;

	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", t, 3, NULL), 0);
	ASSERT_EQ_INT(p->n_entries, 3);
	ASSERT_EQ_INT(p->entries[1].nbytes, 0);
	ASSERT_EQ_INT(p->entries[1].crc_at[0], 0);
	before = malloc(p->mem_len);
	ASSERT_TRUE(before != NULL);
	memcpy(before, p->mem, p->mem_len);
	nck_ts_set_crc(p, 1, 0xdeadbeef); /* empty: nothing to set */
	nck_ts_set_crc(p, 7, 0xdeadbeef); /* out of range */
	ASSERT_TRUE(memcmp(before, p->mem, p->mem_len) == 0);
	nck_ts_set_crc(p, 2, 0x11223344);
	for (int k = 0; k < 2; k++) {
		const nck_ts_piece *pc = &p->pieces[nck_ts_piece_at(p, p->entries[2].crc_at[k])];
		const unsigned char *f = pc->mem + (p->entries[2].crc_at[k] - pc->off);

		ASSERT_EQ_INT(pc->kind, NCK_TS_MEM);
		ASSERT_TRUE(f == p->entries[2].crc_mem[k]);
		ASSERT_TRUE(memcmp(f, "\x44\x33\x22\x11", 4) == 0);
		memcpy(before + (f - p->mem), f, 4);
	}
	/* The descriptor's CRC sits right after the data, after its signature. */
	ASSERT_EQ_INT(p->entries[2].crc_at[0], p->entries[2].data + 8 + 4);
	ASSERT_TRUE(memcmp(before, p->mem, p->mem_len) == 0);
	free(before);
	nck_ts_plan_free(p);
}

NCK_TEST(torchsave_rejects_bad_input)
{
	nck_ts_tensor t = tensor("x", NCK_DTYPE_F32, 1, 4, 0, 0);
	nck_ts_plan *p = NULL;
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "", &t, 1, &d), -EINVAL);
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "a/b", &t, 1, NULL), -EINVAL);
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "a\xff", &t, 1, NULL), -EINVAL);
	t.name = "bad\xc0\xaf"; /* overlong '/' */
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", &t, 1, NULL), -EINVAL);
	t.name = "sur\xed\xa0\x80"; /* a surrogate */
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", &t, 1, NULL), -EINVAL);
	t.name = "x";
	t.ndim = NCK_MAX_DIMS + 1;
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", &t, 1, NULL), -EINVAL);
	t = tensor("x", NCK_DTYPE_UNKNOWN, 1, 4, 0, 0);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", &t, 1, &d), -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "x: dtype");
	t = tensor("huge", NCK_DTYPE_F32, 2, 1ull << 40, 1ull << 30, 0);
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", &t, 1, NULL), -EOVERFLOW);
	/* No elements, but strides past INT64_MAX. */
	t = tensor("flat", NCK_DTYPE_F32, 3, 0, 1ull << 40, 1ull << 30);
	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", &t, 1, NULL), -EOVERFLOW);
	ASSERT_TRUE(p == NULL);
}

NCK_TEST(torchsave_new_dtypes_use_rebuild_tensor_v3)
{
	/* torch pickles dtypes without a storage class through _rebuild_tensor_v3 and an
	 * UntypedStorage counted in bytes; torch 1.13 predates them, so the project's
	 * reader and pickletools are the oracles here. */
	const nck_ts_tensor t[] = {
		tensor("fp8", NCK_DTYPE_F8_E4M3, 2, 3, 4, 0),
		tensor("fp8b", NCK_DTYPE_F8_E5M2, 1, 2, 0, 0),
		tensor("u16", NCK_DTYPE_U16, 1, 5, 0, 0),
		tensor("bf", NCK_DTYPE_BF16, 1, 2, 0, 0),
	};
	static const char py[] =
		"import pickletools, sys, zipfile\n"
		"z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None\n"
		"ops = [(o.name, a) for o, a, _ in pickletools.genops(z.read('m/data.pkl'))]\n"
		"g = [a for n, a in ops if n == 'GLOBAL']\n"
		"assert g.count('torch._utils _rebuild_tensor_v3') == 3, g\n"
		"assert g.count('torch UntypedStorage') == 3, g\n"
		"for d in ('float8_e4m3fn', 'float8_e5m2', 'uint16', 'BFloat16Storage'):\n"
		"    assert 'torch ' + d in g, d\n"
		"assert ('BININT1', 10) in ops and ('BININT1', 12) in ops  # u16 and fp8 bytes\n";
	nck_ts_plan *p = NULL;
	unsigned char *file;

	ASSERT_EQ_INT(nck_ts_plan_build(&p, "m", t, 4, NULL), 0);
	check_pieces(p);
	file = materialize(p, t);
	check_own_readers(file, p, t, "m");
	write_file("ts.ckpt", file, p->size);
	ASSERT_EQ_INT(run_py("v3.py", py, "ts.ckpt"), 0);
	free(file);
	nck_ts_plan_free(p);
}

/* Reads a little-endian field of n bytes from the plan's MEM bytes at file offset off. */
static uint64_t mem_le(const nck_ts_plan *p, uint64_t off, unsigned n)
{
	const nck_ts_piece *pc = &p->pieces[nck_ts_piece_at(p, off)];
	uint64_t v = 0;

	ASSERT_EQ_INT(pc->kind, NCK_TS_MEM);
	ASSERT_TRUE(off + n <= pc->off + pc->len);
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)pc->mem[off - pc->off + i] << (8 * i);
	return v;
}

NCK_TEST(torchsave_zip64_sparse_file)
{
	/* 5 GiB, then exactly 0xFFFFFFFF bytes (miniz switches at >=), then records
	 * whose local headers lie past 4 GiB; no data is ever written. */
	const nck_ts_tensor t[] = {
		tensor("big", NCK_DTYPE_U8, 1, 5ull << 30, 0, 0),
		tensor("edge", NCK_DTYPE_U8, 1, 0xffffffffull, 0, 0),
		tensor("after", NCK_DTYPE_F32, 2, 10, 100, 0),
		tensor("empty", NCK_DTYPE_BF16, 1, 0, 0, 0),
	};
	static const char py[] =
		"import struct, sys, zipfile\n"
		"exp = [l.split() for l in open('expect.txt').read().splitlines()]\n"
		"z = zipfile.ZipFile(sys.argv[1]); f = open(sys.argv[1], 'rb')\n"
		"assert len(z.infolist()) == len(exp) + 3\n"
		"infos = [zi for zi in z.infolist() if '/data/' in zi.filename]\n"
		"for zi, (name, size, lho, crc, data) in zip(infos, exp):\n"
		"    size, lho, crc, data = int(size), int(lho), int(crc), int(data)\n"
		"    got = (zi.filename, zi.file_size, zi.compress_size, zi.header_offset,\n"
		"           zi.CRC)\n"
		"    assert got == (name, size, size, lho, crc), (got, name, size, lho, crc)\n"
		"    f.seek(lho); h = f.read(30)\n"
		"    nl, el = struct.unpack('<HH', h[26:30]); assert lho + 30 + nl + el == data\n"
		"    assert data % 64 == 0 and h[:4] == b'PK\\x03\\x04'\n"
		"    x64 = size >= 0xffffffff or lho >= 0xffffffff\n"
		"    f.seek(lho + 30 + nl); ex = f.read(el)\n"
		"    assert (ex[:2] == b'\\x01\\x00') == x64, name\n"
		"    if size:\n"
		"        f.seek(data + size); dd = f.read(24 if x64 else 16)\n"
		"        fmt = '<IIQQ' if x64 else '<IIII'\n"
		"        want = (0x08074b50, crc, size, size)\n"
		"        assert struct.unpack(fmt, dd) == want, (name, dd)\n"
		"print('zip64 oracle: ok')\n";
	nck_ts_plan *p = NULL;
	nck_torch_file *tf = NULL;
	nck_src *src = NULL;
	nck_diag d;
	FILE *ex;
	uint64_t eocd, z64, cd;
	int fd;

	ASSERT_EQ_INT(nck_ts_plan_build(&p, "model_weights", t, 4, NULL), 0);
	check_pieces(p);
	ASSERT_TRUE(p->size > (9ull << 30));
	for (size_t i = 0; i < 4; i++)
		nck_ts_set_crc(p, i, 0x01020304u * (uint32_t)(i + 1));
	/* The trailer: classic EOCD capped, the ZIP64 record holds the truth. */
	eocd = p->size - 22;
	z64 = p->size - 98;
	ASSERT_EQ_INT(mem_le(p, eocd, 4), 0x06054b50);
	ASSERT_EQ_INT(mem_le(p, eocd + 10, 2), 7);
	ASSERT_EQ_INT(mem_le(p, eocd + 16, 4), 0xffffffffu);
	ASSERT_EQ_INT(mem_le(p, z64, 4), 0x06064b50);
	ASSERT_EQ_INT(mem_le(p, z64 + 32, 8), 7);
	cd = mem_le(p, z64 + 48, 8);
	ASSERT_EQ_INT(cd + mem_le(p, z64 + 40, 8), z64);
	ASSERT_EQ_INT(mem_le(p, p->size - 42 + 8, 8), z64); /* locator */
	ASSERT_EQ_INT(mem_le(p, cd, 4), 0x02014b50);

	/* A sparse file holding only the MEM pieces. */
	fd = open("ts.ckpt", O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ_INT(ftruncate(fd, (off_t)p->size), 0);
	for (size_t i = 0; i < p->n_pieces; i++)
		if (p->pieces[i].kind == NCK_TS_MEM)
			ASSERT_EQ_INT(pwrite(fd, p->pieces[i].mem, p->pieces[i].len,
					     (off_t)p->pieces[i].off),
				      p->pieces[i].len);
	ASSERT_EQ_INT(close(fd), 0);

	ex = fopen("expect.txt", "w");
	ASSERT_TRUE(ex != NULL);
	for (size_t i = 0; i < 4; i++)
		fprintf(ex, "model_weights/data/%zu %llu %llu %u %llu\n", i,
			(unsigned long long)p->entries[i].nbytes,
			(unsigned long long)p->entries[i].header,
			p->entries[i].nbytes ? 0x01020304u * (unsigned)(i + 1) : 0,
			(unsigned long long)p->entries[i].data);
	ASSERT_EQ_INT(fclose(ex), 0);
	ASSERT_EQ_INT(run_py("zip64.py", py, "ts.ckpt"), 0);

	/* The project's readers find the same offsets (they read headers and data.pkl only). */
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_open_file(&src, AT_FDCWD, "ts.ckpt", false, &d), 0);
	ASSERT_EQ_INT(nck_torch_open(&tf, src, 0, p->size, &d), 0);
	ASSERT_EQ_INT(tf->n_tensors, 4);
	for (size_t i = 0; i < 4; i++) {
		ASSERT_EQ_STR(tf->tensors[i].key, t[i].name);
		ASSERT_EQ_INT(tf->tensors[i].storage_bytes, p->entries[i].nbytes);
		if (p->entries[i].nbytes)
			ASSERT_EQ_INT(tf->tensors[i].storage_data, p->entries[i].data);
	}
	ASSERT_EQ_INT(tf->tensors[2].shape[1], 100);
	ASSERT_EQ_INT(nck_zip_find_rel(tf->zip, "data/1")->crc32, 0x01020304u * 2);
	nck_torch_file_free(tf);
	nck_src_close(src);
	nck_ts_plan_free(p);
}
