/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the byte-level BPE tokenizer.json reader. Oracles: small
 * tokenizer.json texts written out in full here, with what llama.cpp's
 * converter (get_vocab_base, gguf-py SpecialVocab) makes of them worked
 * out by hand: ids, types, merges (a pair's spaces as U+0120), special ids.
 */
#include <errno.h>
#include <string.h>

#include "format/hftok.h"
#include "nck_test.h"

#define BYTE_LEVEL "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}"

static int parse(nck_hftok *t, const char *json, const char *cfg, uint64_t V, nck_diag *d)
{
	nck_diag_init(d);
	return nck_hftok_parse(t, json, strlen(json), cfg, cfg ? strlen(cfg) : 0, V,
			       "tokenizer.json", d);
}

static void expect_merge(const nck_hftok *t, size_t i, const char *want)
{
	size_t n = t->merge_off[i + 1] - t->merge_off[i];

	ASSERT_EQ_INT(n, strlen(want));
	ASSERT_TRUE(memcmp(t->merge_buf + t->merge_off[i], want, n) == 0);
}

NCK_TEST(hftok_ids_types_merges_specials)
{
	const char *json =
	    "{\"added_tokens\":[{\"id\":5,\"content\":\"<s>\",\"special\":true},"
	    "{\"id\":6,\"content\":\"<x>\",\"special\":false}]," BYTE_LEVEL ","
	    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"a b\":4},"
	    "\"merges\":[[\"a\",\"b\"],[\"a b\",\"c\"]]}}";
	const char *cfg = "{\"bos_token\":{\"content\":\"<s>\"},\"eos_token\":\"<x>\","
			  "\"unk_token\":\"a\",\"add_bos_token\":true}";
	nck_hftok t;
	nck_diag d;

	ASSERT_EQ_INT(parse(&t, json, cfg, 8, &d), 0);
	ASSERT_EQ_INT(t.n, 8);
	ASSERT_TRUE(t.len[2] == 2 && memcmp(t.text[2], "ab", 2) == 0);
	ASSERT_TRUE(t.text[3] == NULL && t.text[7] == NULL);
	ASSERT_EQ_INT(t.type[0], NCK_HFTOK_NORMAL);
	ASSERT_EQ_INT(t.type[3], NCK_HFTOK_UNUSED);
	ASSERT_EQ_INT(t.type[5], NCK_HFTOK_CONTROL);
	ASSERT_EQ_INT(t.type[6], NCK_HFTOK_USER);
	ASSERT_EQ_INT(t.n_merges, 2);
	expect_merge(&t, 0, "a b");
	expect_merge(&t, 1, "a\xc4\xa0" "b c"); /* U+0120 for the space inside a part */
	ASSERT_EQ_STR(t.pre, "default");
	/* SpecialVocab resolves against added_tokens only: "a" is not one */
	ASSERT_TRUE(t.bos == 5 && t.eos == 6 && t.unk == -1 && t.pad == -1);
	ASSERT_TRUE(t.add_bos == 1 && t.add_eos == -1);
	nck_hftok_free(&t);
	nck_hftok_free(&t);
}

NCK_TEST(hftok_refuses_what_is_not_a_byte_level_bpe)
{
	nck_hftok t;
	nck_diag d;

	ASSERT_EQ_INT(parse(&t, "{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}}}", NULL, 4, &d),
		      -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "WordLevel");
	ASSERT_EQ_INT(parse(&t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{},"
				"\"byte_fallback\":true},\"pre_tokenizer\":{\"type\":\"Metaspace\"}}",
			    NULL, 4, &d),
		      -ENOTSUP);
	ASSERT_TRUE(t.root == NULL && t.text == NULL);
}

NCK_TEST(hftok_bounds_and_damage)
{
	static const char *const bad[] = {
	    "{\"model\":",
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":4}}," BYTE_LEVEL "}",   /* id >= V */
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}," BYTE_LEVEL "}",
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"}}," BYTE_LEVEL "}",
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":[]}," BYTE_LEVEL "}",
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":{}},\"added_tokens\":[{\"id\":99999999999,"
	    "\"content\":\"x\"}]," BYTE_LEVEL "}",
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":{}},\"added_tokens\":[{\"id\":1,"
	    "\"content\":5}]," BYTE_LEVEL "}",
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[[\"a\"]]}," BYTE_LEVEL "}",
	    "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[7]}," BYTE_LEVEL "}",
	    "[]",
	};
	nck_hftok t;
	nck_diag d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ_INT(parse(&t, bad[i], NULL, 4, &d), -EBADMSG);
		ASSERT_TRUE(d.msg[0] != '\0' && strchr(d.msg, '\n') == NULL);
		ASSERT_TRUE(t.root == NULL && t.text == NULL);
	}
	ASSERT_EQ_INT(parse(&t, "{}", NULL, 0, &d), -EBADMSG);
	/* a config that is not JSON, or ids outside V: no special ids */
	ASSERT_EQ_INT(parse(&t, "{\"model\":{\"type\":\"BPE\",\"vocab\":{}}," BYTE_LEVEL "}", "{",
			    4, &d),
		      0);
	ASSERT_TRUE(t.bos == -1 && t.add_bos == -1 && t.n_merges == 0);
	nck_hftok_free(&t);
}
