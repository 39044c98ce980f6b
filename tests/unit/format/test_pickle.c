/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the restricted pickle reader. Oracles: byte strings written
 * by CPython 3.11's pickle module (copied here as literals, with the object
 * that produced them), the data.pkl of the real torch 2.11 file, and
 * hand-built streams for malformed input and limits.
 */
#include <errno.h>
#include <math.h>

#include "fmtbuild.h"
#include "format/pickle.h"
#include "nck_test.h"

/* Parses `len` bytes with the default limits into `arena`. */
static int parse(nck_pv **out, nck_arena *arena, const void *data, size_t len, nck_diag *d)
{
	nck_diag_init(d);
	nck_arena_init(arena);
	return nck_pkl_parse(out, arena, data, len, "test.pkl", NULL, d);
}

/* The same, accepting any global (the machine's tests use made-up classes). */
static int parse_any(nck_pv **out, nck_arena *arena, const void *data, size_t len, nck_diag *d)
{
	static const nck_pkl_limits any = { .any_global = true };

	nck_diag_init(d);
	nck_arena_init(arena);
	return nck_pkl_parse(out, arena, data, len, "test.pkl", &any, d);
}

/* Item i of a TUPLE/LIST; a missing one fails the test. */
static const nck_pv *item(const nck_pv *seq, size_t i) __attribute__((returns_nonnull));

static const nck_pv *item(const nck_pv *seq, size_t i)
{
	const nck_pv *v = nck_pv_seq_get(seq, i);

	if (!v)
		nck_test_fail(__FILE__, __LINE__, "no item %zu", i);
	return v;
}

/* dict[key]; a missing one fails the test. */
static const nck_pv *get(const nck_pv *dict, const char *key) __attribute__((returns_nonnull));

static const nck_pv *get(const nck_pv *dict, const char *key)
{
	const nck_pv *v = nck_pv_dict_get(dict, key);

	if (!v)
		nck_test_fail(__FILE__, __LINE__, "no key %s", key);
	return v;
}

NCK_TEST(pkl_real_torch_state_dict)
{
	char path[4096];
	unsigned char *file;
	const nck_pv *bf16, *f16, *t, *meta, *size;
	size_t flen;
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	/* data.pkl is stored at offset 64, 886 bytes (Python zipfile). */
	fb_repo_path(path, sizeof(path), "tests/fixtures/real/torch-2.11/torch_save.pt");
	file = fb_slurp(path, &flen);
	ASSERT_TRUE(file && flen > 64 + 886);
	ASSERT_EQ_INT(parse(&root, &a, file + 64, 886, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_DICT);
	ASSERT_EQ_INT(root->seq.n, 10);
	ASSERT_TRUE(nck_pv_is_str(root->seq.items[0], "bf16"));
	ASSERT_TRUE(nck_pv_is_str(root->seq.items[18], "meta"));
	bf16 = get(root, "bf16");
	f16 = get(root, "f16");
	ASSERT_TRUE(nck_pv_is_call_of(bf16, "torch._utils", "_rebuild_tensor_v2"));
	/* BINGET 2 reuses the GLOBAL: one node, shared. */
	ASSERT_TRUE(bf16->call.callable == f16->call.callable);
	ASSERT_EQ_INT(item(bf16->call.args, 0)->kind, NCK_PV_PERSID);
	t = item(bf16->call.args, 0)->persid;
	ASSERT_TRUE(nck_pv_is_str(item(t, 0), "storage"));
	ASSERT_TRUE(nck_pv_is_global(item(t, 1), "torch", "BFloat16Storage"));
	ASSERT_TRUE(nck_pv_is_str(item(t, 2), "0"));
	ASSERT_EQ_INT(item(t, 4)->i, 32);
	ASSERT_EQ_INT(item(item(bf16->call.args, 2), 1)->i, 8);
	ASSERT_EQ_INT(item(bf16->call.args, 4)->b, false);
	/* The hooks argument OrderedDict() became an empty DICT. */
	ASSERT_EQ_INT(item(bf16->call.args, 5)->kind, NCK_PV_DICT);
	ASSERT_EQ_INT(item(bf16->call.args, 5)->seq.n, 0);
	/* 'transposed' and 'slice' share storage key '5' through BINGET 51. */
	ASSERT_TRUE(item(item(get(root, "transposed")->call.args, 0)->persid, 2) ==
		    item(item(get(root, "slice")->call.args, 0)->persid, 2));
	ASSERT_TRUE(nck_pv_is_call_of(get(root, "param"), "torch._utils", "_rebuild_parameter"));
	meta = get(root, "meta");
	ASSERT_EQ_INT(get(meta, "step")->i, 7);
	size = get(meta, "size");
	ASSERT_TRUE(nck_pv_is_call_of(size, "torch", "Size"));
	ASSERT_EQ_INT(item(item(size->call.args, 0), 1)->i, 4);
	ASSERT_TRUE(nck_pv_is_global(get(meta, "dtype"), "torch", "bfloat16"));
	nck_arena_dispose(&a);
	free(file);
}

NCK_TEST(pkl_protocol4_frame_memoize_short_strings)
{
	/* pickle.dumps({'a': [1, -2, 3.5, None, True, False], 'b': b'xy',
	 *               'c': ('s', 2**40, -2**63), 'd': 'é'}, 4) */
	static const char p4[] = "\x80\x04\x95\x4e\x00\x00\x00\x00\x00\x00\x00"
				 "\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b"
				 "\x01\x4a\xfe\xff\xff\xff\x47\x40\x0c\x00\x00"
				 "\x00\x00\x00\x00\x4e\x88\x89\x65\x8c\x01\x62"
				 "\x94\x43\x02\x78\x79\x94\x8c\x01\x63\x94\x8c"
				 "\x01\x73\x94\x8a\x06\x00\x00\x00\x00\x00\x01"
				 "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x87"
				 "\x94\x8c\x01\x64\x94\x8c\x02\xc3\xa9\x94\x75"
				 "\x2e";
	const nck_pv *l, *c;
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p4, sizeof(p4) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_DICT);
	ASSERT_EQ_INT(root->seq.n, 4);
	l = get(root, "a");
	ASSERT_EQ_INT(l->kind, NCK_PV_LIST);
	ASSERT_EQ_INT(l->seq.n, 6);
	ASSERT_EQ_INT(item(l, 0)->i, 1);
	ASSERT_EQ_INT(item(l, 1)->i, -2);
	ASSERT_TRUE(item(l, 2)->kind == NCK_PV_FLOAT && item(l, 2)->f == 3.5);
	ASSERT_EQ_INT(item(l, 3)->kind, NCK_PV_NONE);
	ASSERT_TRUE(item(l, 4)->kind == NCK_PV_BOOL && item(l, 4)->b);
	ASSERT_TRUE(item(l, 5)->kind == NCK_PV_BOOL && !item(l, 5)->b);
	ASSERT_EQ_INT(get(root, "b")->kind, NCK_PV_BYTES);
	ASSERT_EQ_INT(get(root, "b")->str.len, 2);
	ASSERT_TRUE(memcmp(get(root, "b")->str.s, "xy", 2) == 0);
	c = get(root, "c");
	ASSERT_EQ_INT(c->kind, NCK_PV_TUPLE);
	ASSERT_TRUE(nck_pv_is_str(item(c, 0), "s"));
	ASSERT_EQ_INT(item(c, 1)->i, 1099511627776LL);
	ASSERT_TRUE(item(c, 2)->i == INT64_MIN);
	ASSERT_TRUE(nck_pv_is_str(get(root, "d"), "\xc3\xa9"));
	ASSERT_EQ_INT(root->depth, 2);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_protocol5_bytearray8)
{
	/* pickle.dumps(bytearray(b'abc'), 5) */
	static const char p5[] = "\x80\x05\x95\x0e\x00\x00\x00\x00\x00\x00\x00\x96\x03\x00\x00\x00"
				 "\x00\x00\x00\x00\x61\x62\x63\x94\x2e";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p5, sizeof(p5) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_BYTES);
	ASSERT_EQ_INT(root->str.len, 3);
	ASSERT_EQ_STR(root->str.s, "abc");
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_protocol0_text_opcodes)
{
	/* pickle.dumps([1, 'a\n\\b', 2.5, {'k': (True, None)}, 'é€', 2**70, -7], 0) */
	static const char p0[] = "\x28\x6c\x70\x30\x0a\x49\x31\x0a\x61\x56\x61"
				 "\x5c\x75\x30\x30\x30\x61\x5c\x75\x30\x30\x35"
				 "\x63\x62\x0a\x70\x31\x0a\x61\x46\x32\x2e\x35"
				 "\x0a\x61\x28\x64\x70\x32\x0a\x56\x6b\x0a\x70"
				 "\x33\x0a\x28\x49\x30\x31\x0a\x4e\x74\x70\x34"
				 "\x0a\x73\x61\x56\xe9\x5c\x75\x32\x30\x61\x63"
				 "\x0a\x70\x35\x0a\x61\x4c\x31\x31\x38\x30\x35"
				 "\x39\x31\x36\x32\x30\x37\x31\x37\x34\x31\x31"
				 "\x33\x30\x33\x34\x32\x34\x4c\x0a\x61\x49\x2d\x37\x0a\x61\x2e";
	const nck_pv *k;
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p0, sizeof(p0) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_LIST);
	ASSERT_EQ_INT(root->seq.n, 7);
	ASSERT_EQ_INT(item(root, 0)->i, 1);
	ASSERT_TRUE(nck_pv_is_str(item(root, 1), "a\n\\b"));
	ASSERT_TRUE(item(root, 2)->f == 2.5);
	k = get(item(root, 3), "k");
	ASSERT_TRUE(item(k, 0)->kind == NCK_PV_BOOL && item(k, 0)->b);
	ASSERT_EQ_INT(item(k, 1)->kind, NCK_PV_NONE);
	ASSERT_TRUE(nck_pv_is_str(item(root, 4), "\xc3\xa9\xe2\x82\xac"));
	/* 2**70 does not fit: kept as its decimal text. */
	ASSERT_EQ_INT(item(root, 5)->kind, NCK_PV_OPAQUE);
	ASSERT_EQ_STR(item(root, 5)->str.s, "1180591620717411303424");
	ASSERT_EQ_INT(item(root, 6)->i, -7);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_protocol0_string_escapes)
{
	/* Python 2 style STRING with escapes, in a tuple with a text FLOAT and GET. */
	static const char p[] = "(S'a\\'b\\n\\x41\\101\\\\'\np0\nF-1.25e2\ng0\nt.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_TUPLE);
	ASSERT_TRUE(nck_pv_is_str(item(root, 0), "a'b\nAA\\"));
	ASSERT_TRUE(item(root, 1)->f == -125.0);
	ASSERT_TRUE(item(root, 2) == item(root, 0));
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_protocol2_bytes_through_codecs)
{
	/* pickle.dumps([b'\x00\xff\x80abc', b''], 2) */
	static const char p[] =
		"\x80\x02\x5d\x71\x00\x28\x63\x5f\x63\x6f\x64"
		"\x65\x63\x73\x0a\x65\x6e\x63\x6f\x64\x65\x0a"
		"\x71\x01\x58\x08\x00\x00\x00\x00\xc3\xbf\xc2"
		"\x80\x61\x62\x63\x71\x02\x58\x06\x00\x00\x00"
		"\x6c\x61\x74\x69\x6e\x31\x71\x03\x86\x71\x04"
		"\x52\x71\x05\x63\x5f\x5f\x62\x75\x69\x6c\x74"
		"\x69\x6e\x5f\x5f\x0a\x62\x79\x74\x65\x73\x0a\x71\x06\x29\x52\x71\x07\x65\x2e";
	/* pickle.dumps(bytearray(b'\x01\xfe'), 2) */
	static const char ba[] = "\x80\x02\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69"
				 "\x6e\x5f\x5f\x0a\x62\x79\x74\x65\x61\x72\x72"
				 "\x61\x79\x0a\x71\x00\x63\x5f\x63\x6f\x64\x65"
				 "\x63\x73\x0a\x65\x6e\x63\x6f\x64\x65\x0a\x71"
				 "\x01\x58\x03\x00\x00\x00\x01\xc3\xbe\x71\x02"
				 "\x58\x06\x00\x00\x00\x6c\x61\x74\x69\x6e\x31"
				 "\x71\x03\x86\x71\x04\x52\x71\x05\x85\x71\x06\x52\x71\x07\x2e";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(item(root, 0)->kind, NCK_PV_BYTES);
	ASSERT_EQ_INT(item(root, 0)->str.len, 6);
	ASSERT_TRUE(memcmp(item(root, 0)->str.s,
			   "\x00\xff\x80"
			   "abc",
			   6) == 0);
	ASSERT_EQ_INT(item(root, 1)->kind, NCK_PV_BYTES);
	ASSERT_EQ_INT(item(root, 1)->str.len, 0);
	nck_arena_dispose(&a);
	ASSERT_EQ_INT(parse(&root, &a, ba, sizeof(ba) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_BYTES);
	ASSERT_EQ_INT(root->str.len, 2);
	ASSERT_TRUE(memcmp(root->str.s, "\x01\xfe", 2) == 0);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_ordereddict_setitem_then_build)
{
	/* od = OrderedDict(a=1); od.meta = {'x': 1}; pickle.dumps(od, 2) */
	static const char p[] = "\x80\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69"
				"\x6f\x6e\x73\x0a\x4f\x72\x64\x65\x72\x65\x64"
				"\x44\x69\x63\x74\x0a\x71\x00\x29\x52\x71\x01"
				"\x58\x01\x00\x00\x00\x61\x71\x02\x4b\x01\x73"
				"\x7d\x71\x03\x58\x04\x00\x00\x00\x6d\x65\x74"
				"\x61\x71\x04\x7d\x71\x05\x58\x01\x00\x00\x00"
				"\x78\x71\x06\x4b\x01\x73\x73\x62\x2e";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_DICT);
	ASSERT_EQ_INT(root->seq.n, 1);
	ASSERT_EQ_INT(get(root, "a")->i, 1);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_sets_and_frozensets)
{
	/* pickle.dumps([{1, 2}, frozenset({3})], 4) */
	static const char p[] = "\x80\x04\x95\x12\x00\x00\x00\x00\x00\x00\x00"
				"\x5d\x94\x28\x8f\x94\x28\x4b\x01\x4b\x02\x90"
				"\x28\x4b\x03\x91\x94\x65\x2e";
	const nck_pv *s, *f;
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	s = item(root, 0);
	f = item(root, 1);
	ASSERT_TRUE(nck_pv_is_call_of(s, "builtins", "set"));
	ASSERT_EQ_INT(s->call.items->seq.n, 2);
	ASSERT_EQ_INT(item(s->call.items, 1)->i, 2);
	ASSERT_TRUE(nck_pv_is_call_of(f, "builtins", "frozenset"));
	ASSERT_EQ_INT(item(f->call.items, 0)->i, 3);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_stack_global_newobj_ex_build)
{
	/* pickle.dumps(mymod.NewEx(5, 'z'), 4), where NewEx.__getnewargs_ex__
	 * returns ((5,), {'k': 'z'}) and the instance dict is {'a': 5, 'k': 'z'}. */
	static const char p[] =
		"\x80\x04\x95\x33\x00\x00\x00\x00\x00\x00\x00"
		"\x8c\x05\x6d\x79\x6d\x6f\x64\x94\x8c\x05\x4e"
		"\x65\x77\x45\x78\x94\x93\x94\x4b\x05\x85\x94"
		"\x7d\x94\x8c\x01\x6b\x94\x8c\x01\x7a\x94\x73"
		"\x92\x94\x7d\x94\x28\x8c\x01\x61\x94\x4b\x05\x68\x05\x68\x06\x75\x62\x2e";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse_any(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_TRUE(nck_pv_is_call_of(root, "mymod", "NewEx"));
	ASSERT_EQ_INT(item(root->call.args, 0)->i, 5);
	ASSERT_TRUE(nck_pv_is_str(get(root->call.kwargs, "k"), "z"));
	ASSERT_EQ_INT(get(root->call.state, "a")->i, 5);
	/* The memoized 'k' and 'z' strings are the same nodes in kwargs and state. */
	ASSERT_TRUE(root->call.state->seq.items[2] == root->call.kwargs->seq.items[0]);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_long_values_and_big_ints)
{
	/* pickle.dumps([2**64-1, 2**63-1, -2**63, -1, 255, 256, 65536, -129], 2) */
	static const char p[] = "\x80\x02\x5d\x71\x00\x28\x8a\x09\xff\xff\xff"
				"\xff\xff\xff\xff\xff\x00\x8a\x08\xff\xff\xff"
				"\xff\xff\xff\xff\x7f\x8a\x08\x00\x00\x00\x00"
				"\x00\x00\x00\x80\x4a\xff\xff\xff\xff\x4b\xff"
				"\x4d\x00\x01\x4a\x00\x00\x01\x00\x4a\x7f\xff\xff\xff\x65\x2e";
	static const char small[] =
		"\x80\x02(\x8a\x01\xff\x8a\x02\x00\x80\x8a\x00\x8a\x09\xfe\xff\xff"
		"\xff\xff\xff\xff\xff\xff\x8b\x01\x00\x00\x00\x05t.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(item(root, 0)->kind, NCK_PV_OPAQUE);
	ASSERT_EQ_INT(item(root, 0)->str.len, 9);
	ASSERT_TRUE(item(root, 1)->i == INT64_MAX);
	ASSERT_TRUE(item(root, 2)->i == INT64_MIN);
	ASSERT_EQ_INT(item(root, 3)->i, -1);
	ASSERT_EQ_INT(item(root, 4)->i, 255);
	ASSERT_EQ_INT(item(root, 5)->i, 256);
	ASSERT_EQ_INT(item(root, 6)->i, 65536);
	ASSERT_EQ_INT(item(root, 7)->i, -129);
	nck_arena_dispose(&a);
	/* LONG1 -1, LONG1 -32768, LONG1 0 (no bytes), LONG1 of 9 bytes = -2, LONG4 5. */
	ASSERT_EQ_INT(parse(&root, &a, small, sizeof(small) - 1, &d), 0);
	ASSERT_EQ_INT(item(root, 0)->i, -1);
	ASSERT_EQ_INT(item(root, 1)->i, -32768);
	ASSERT_EQ_INT(item(root, 2)->i, 0);
	ASSERT_EQ_INT(item(root, 3)->i, -2);
	ASSERT_EQ_INT(item(root, 4)->i, 5);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_self_referencing_list)
{
	/* l = []; l.append(l); pickle.dumps(l, 2) */
	static const char p[] = "\x80\x02\x5d\x71\x00\x68\x00\x61\x2e";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_LIST);
	ASSERT_EQ_INT(root->seq.n, 1);
	ASSERT_TRUE(root->seq.items[0] == root);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_memo_shares_values)
{
	/* ]q\0 h\0 h\0 TUPLE3: three references to one list; then APPEND through one. */
	static const char p[] = "\x80\x02]q\x00h\x00h\x00\x87q\x01h\x00K\x07"
				"a0.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_TUPLE);
	ASSERT_TRUE(item(root, 0) == item(root, 1) && item(root, 1) == item(root, 2));
	ASSERT_EQ_INT(item(item(root, 2), 0)->i, 7);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_memo_errors)
{
	static const char unset[] = "\x80\x02K\x01q\x00h\x01.";
	static const char jump[] = "\x80\x02K\x01r\x00\x00\x00\x10.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, unset, sizeof(unset) - 1, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "memo index 1 not set");
	ASSERT_EQ_INT(d.offset, 6);
	nck_arena_dispose(&a);
	/* LONG_BINPUT 2**28 as the first PUT: refused before any memory is taken for it. */
	ASSERT_EQ_INT(parse(&root, &a, jump, sizeof(jump) - 1, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "out of sequence");
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_persistent_ids)
{
	static const char p[] = "\x80\x02(X\x07\x00\x00\x00storageK\x03tQP7\n\x86.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(item(root, 0)->kind, NCK_PV_PERSID);
	ASSERT_TRUE(nck_pv_is_str(item(item(root, 0)->persid, 0), "storage"));
	ASSERT_EQ_INT(item(root, 1)->kind, NCK_PV_PERSID);
	ASSERT_TRUE(nck_pv_is_str(item(root, 1)->persid, "7"));
	nck_arena_dispose(&a);
}

/* Test callback: replaces every persistent id with INT 42, or fails on "bad". */
static int persid_to_42(nck_pv **out, nck_pv *pid, void *payload)
{
	nck_pv *v;

	if (nck_pv_is_str(pid, "bad"))
		return -ENOTSUP;
	v = nck_arena_alloc(payload, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->kind = NCK_PV_INT;
	v->i = 42;
	*out = v;
	return 0;
}

NCK_TEST(pkl_persistent_id_callback)
{
	static const char ok[] = "\x80\x02X\x01\x00\x00\x00xQ.";
	static const char bad[] = "\x80\x02X\x03\x00\x00\x00"
				  "badQ.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	nck_arena_init(&a);
	nck_diag_init(&d);
	ASSERT_EQ_INT(
		nck_pkl_parse_ex(&root, &a, ok, sizeof(ok) - 1, "cb", NULL, persid_to_42, &a, &d),
		0);
	ASSERT_EQ_INT(root->kind, NCK_PV_INT);
	ASSERT_EQ_INT(root->i, 42);
	ASSERT_EQ_INT(
		nck_pkl_parse_ex(&root, &a, bad, sizeof(bad) - 1, "cb", NULL, persid_to_42, &a, &d),
		-ENOTSUP);
	ASSERT_EQ_INT(d.offset, 10);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_unknown_opcode_reports_offset)
{
	static const char p[] = "\x80\x02K\x01\xff.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), -EBADMSG);
	ASSERT_EQ_INT(d.offset, 4);
	ASSERT_CONTAINS(d.msg, "unknown opcode 0xff");
	ASSERT_EQ_STR(d.path, "test.pkl");
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_truncated_inputs)
{
	static const struct {
		const char *p;
		size_t len;
		const char *why;
	} cases[] = {
		{ "\x80\x02X\x10\x00\x00\x00"
		  "ab",
		  9, "truncated" },
		{ "\x80\x02K\x01", 4, "without STOP" },
		{ "\x80\x02K", 3, "truncated" },
		{ "\x80\x02"
		  "ctorch\nSize",
		  13, "no end of line" },
		{ "\x80\x02\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", 13, "frame" },
		{ "", 0, "without STOP" },
	};
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_EQ_INT(parse(&root, &a, cases[i].p, cases[i].len, &d), -EBADMSG);
		ASSERT_CONTAINS(d.msg, cases[i].why);
		nck_arena_dispose(&a);
	}
}

NCK_TEST(pkl_stack_misuse)
{
	static const struct {
		const char *p;
		const char *why;
	} cases[] = {
		{ "\x80\x02.", "STOP with 0 values" },
		{ "\x80\x02NN.", "STOP with 2 values" },
		{ "\x80\x02(N.", "MARKs" },
		{ "\x80\x02t.", "no MARK" },
		{ "\x80\x02(R.", "underflow" },
		{ "\x80\x02Na.", "underflow" },
		{ "\x80\x02NNa.", "not a list" },
		{ "\x80\x02}Nu.", "no MARK" },
		{ "\x80\x02}(Nu.", "odd number" },
		{ "\x80\x02(NNNd.", "odd number" },
		{ "\x80\x02NN\x93.", "two strings" },
		{ "\x80\x02N(K\x01\x90.", "not a set" },
		{ "\x80\x02(o.", "OBJ without a class" },
		{ "\x80\x02N\x86.", "underflow" },
		{ "\x80\x02\x8c\x02\xc3\x28.", "UTF-8" },
		{ "\x80\x02"
		  "c\xff\nx\n.",
		  "UTF-8" },
	};
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_EQ_INT(parse(&root, &a, cases[i].p, strlen(cases[i].p), &d), -EBADMSG);
		ASSERT_CONTAINS(d.msg, cases[i].why);
		nck_arena_dispose(&a);
	}
}

NCK_TEST(pkl_unsupported_features)
{
	static const char *const cases[] = {
		"\x80\x06N.",	     /* protocol 6 */
		"\x80\x02\x82\x01.", /* EXT1 */
		"\x80\x05\x97.",     /* NEXT_BUFFER */
	};
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_EQ_INT(parse(&root, &a, cases[i], strlen(cases[i]), &d), -ENOTSUP);
		nck_arena_dispose(&a);
	}
}

NCK_TEST(pkl_deep_nesting_is_bounded)
{
	size_t n = 5000, len = 0;
	unsigned char *p = malloc(2 * n + 8);
	nck_pkl_limits lim = { .max_depth = 100 };
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	/* 5000 open MARKs. */
	memset(p, '(', n);
	ASSERT_EQ_INT(parse(&root, &a, p, n, &d), -E2BIG);
	ASSERT_CONTAINS(d.msg, "MARKs");
	nck_arena_dispose(&a);
	/* 5000 lists, each appended into the one below: nesting 5000 deep. */
	p[len++] = 0x80;
	p[len++] = 2;
	for (size_t i = 0; i < n; i++)
		p[len++] = ']';
	for (size_t i = 1; i < n; i++)
		p[len++] = 'a';
	p[len++] = '.';
	ASSERT_EQ_INT(parse(&root, &a, p, len, &d), -E2BIG);
	ASSERT_CONTAINS(d.msg, "nested deeper than 1000");
	nck_arena_dispose(&a);
	/* A custom limit, and a nesting just within it. */
	nck_arena_init(&a);
	ASSERT_EQ_INT(nck_pkl_parse(&root, &a, p, len, "x", &lim, &d), -E2BIG);
	nck_arena_dispose(&a);
	len = 0;
	p[len++] = 0x80;
	p[len++] = 2;
	for (size_t i = 0; i < 100; i++)
		p[len++] = ']';
	for (size_t i = 1; i < 100; i++)
		p[len++] = 'a';
	p[len++] = '.';
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_pkl_parse(&root, &a, p, len, "x", &lim, &d), 0);
	ASSERT_EQ_INT(root->depth, 100);
	nck_arena_dispose(&a);
	free(p);
}

NCK_TEST(pkl_item_and_byte_limits)
{
	static const char p[] = "\x80\x02(K\x01K\x02K\x03K\x04K\x05l.";
	static const char big[] = "\x80\x02X\x00\x01\x00\x00";
	unsigned char *s = malloc(300);
	nck_pkl_limits items = { .max_items = 6 }, bytes = { .max_bytes = 200 };
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	nck_arena_init(&a);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_pkl_parse(&root, &a, p, sizeof(p) - 1, "x", &items, &d), -E2BIG);
	ASSERT_CONTAINS(d.msg, "more than 6 values");
	nck_arena_dispose(&a);
	memcpy(s, big, 7);
	memset(s + 7, 'x', 256);
	s[263] = '.';
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_pkl_parse(&root, &a, s, 264, "x", &bytes, &d), -E2BIG);
	ASSERT_CONTAINS(d.msg, "bytes");
	nck_arena_dispose(&a);
	free(s);
}

NCK_TEST(pkl_stack_ops_and_helpers)
{
	/* MARK N POP_MARK, DUP, POP, a dict with repeated key (last wins), a text INST. */
	static const char p[] = "\x80\x02(N1K\x05"
				"20}(X\x01\x00\x00\x00kK\x01X\x01\x00\x00\x00kK\x02u"
				"(K\x09imod\ncls\n\x87.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;
	int64_t v = 0;

	ASSERT_EQ_INT(parse_any(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_PV_TUPLE);
	ASSERT_EQ_INT(item(root, 0)->i, 5);
	ASSERT_EQ_INT(get(item(root, 1), "k")->i, 2);
	ASSERT_TRUE(nck_pv_dict_get(item(root, 1), "x") == NULL);
	ASSERT_TRUE(nck_pv_is_call_of(item(root, 2), "mod", "cls"));
	ASSERT_EQ_INT(item(item(root, 2)->call.args, 0)->i, 9);
	ASSERT_TRUE(nck_pv_get_int(item(root, 0), &v) && v == 5);
	ASSERT_TRUE(!nck_pv_get_int(item(root, 1), &v));
	ASSERT_TRUE(nck_pv_seq_get(root, 3) == NULL);
	ASSERT_TRUE(nck_pv_dict_get(NULL, "k") == NULL);
	ASSERT_TRUE(!nck_pv_is_global(NULL, "a", "b"));
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_python2_module_names_and_object_items)
{
	/* __builtin__.set REDUCE, copy_reg._reconstructor, and SETITEMS on a defaultdict. */
	static const char p[] = "\x80\x02(c__builtin__\nset\n]K\x01"
				"a\x85R"
				"ccopy_reg\n_reconstructor\n"
				"ccollections\ndefaultdict\nc__builtin__\nint\n\x85R"
				"(X\x01\x00\x00\x00kK\x03ut.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse_any(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_TRUE(nck_pv_is_call_of(item(root, 0), "builtins", "set"));
	ASSERT_TRUE(nck_pv_is_global(item(root, 1), "copyreg", "_reconstructor"));
	ASSERT_TRUE(nck_pv_is_call_of(item(root, 2), "collections", "defaultdict"));
	ASSERT_EQ_INT(get(item(root, 2), "k")->i, 3);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_floats)
{
	static const char p[] =
		"\x80\x02(G\x3f\xf8\x00\x00\x00\x00\x00\x00G\x7f\xf0\x00\x00\x00\x00"
		"\x00\x00"
		"Fnan\nt.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, p, sizeof(p) - 1, &d), 0);
	ASSERT_TRUE(item(root, 0)->f == 1.5);
	ASSERT_TRUE(isinf(item(root, 1)->f));
	ASSERT_TRUE(isnan(item(root, 2)->f));
	nck_arena_dispose(&a);
	ASSERT_EQ_INT(parse(&root, &a, "F1.5x\n.", 7, &d), -EBADMSG);
	nck_arena_dispose(&a);
}

NCK_TEST(pkl_global_outside_weights_only_set_refused)
{
	/* pickle.dumps(os.system, 2) and a REDUCE of builtins.eval('1'):
	 * torch.load(weights_only=True) refuses both. */
	static const char sys_p[] = "\x80\x02" "cposix\nsystem\nq\x00.";
	static const char eval_p[] = "\x80\x02" "c__builtin__\neval\nX\x01\x00\x00\x00"
				     "1\x85R.";
	static const char ok_p[] = "\x80\x02" "ccollections\nOrderedDict\n)R.";
	nck_arena a;
	nck_pv *root;
	nck_diag d;

	ASSERT_EQ_INT(parse(&root, &a, sys_p, sizeof(sys_p) - 1, &d), -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "global posix.system is not allowed");
	ASSERT_EQ_INT((int)d.offset, 2);
	nck_arena_dispose(&a);
	ASSERT_EQ_INT(parse(&root, &a, eval_p, sizeof(eval_p) - 1, &d), -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "builtins.eval");
	nck_arena_dispose(&a);
	ASSERT_EQ_INT(parse(&root, &a, ok_p, sizeof(ok_p) - 1, &d), 0);
	nck_arena_dispose(&a);
	ASSERT_EQ_INT(parse_any(&root, &a, sys_p, sizeof(sys_p) - 1, &d), 0);
	nck_arena_dispose(&a);
}
