/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the tokenizer vocabulary counter. Oracles:
 *  - SentencePiece models trained by the real trainer (python3-sentencepiece
 *    0.1.97): two committed to tests/fuzz/corpus/vocab/, their piece counts
 *    taken from SentencePieceProcessor.get_piece_size() when they were made
 *    (recipe below), and one trained at test time when the module is
 *    installed (skipped otherwise);
 *  - protobuf messages encoded by hand here from the wire-format rules;
 *  - tokenizer.json, vocab.txt and vocab.json samples written out in full.
 */
#include <errno.h>
#include <libgen.h>
#include <stdint.h>
#include <unistd.h>

#include "format/vocab.h"
#include "nck_test.h"

/*
 * The committed models were made with:
 *   spm.SentencePieceTrainer.train(input=corpus, model_prefix=..., vocab_size=40,
 *       model_type="unigram", normalization_rule_name="identity",
 *       character_coverage=1.0)                                -> 40 pieces
 *   ... vocab_size=57, model_type="bpe", user_defined_symbols=
 *       ["<extra_id_0>", "<extra_id_1>"]                       -> 57 pieces
 * over 50 lines "the quick brown fox jumps over the lazy dog <i>" and 10
 * lines "nemo checkpoint tokenizer vocabulary size".
 */

/* Reads a whole file into a malloc'd buffer. */
static unsigned char *vocab_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	ASSERT_TRUE(f != NULL);
	ASSERT_TRUE(fseek(f, 0, SEEK_END) == 0);
	ASSERT_TRUE((n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0);
	buf = malloc((size_t)n + 1);
	ASSERT_TRUE(buf != NULL);
	ASSERT_EQ_INT(fread(buf, 1, (size_t)n, f), n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Reads tests/fuzz/corpus/vocab/<name>, located from this source file. */
static unsigned char *vocab_read_corpus(const char *name, size_t *len)
{
	char here[4096], path[4300];

	snprintf(here, sizeof(here), "%s", __FILE__);
	snprintf(path, sizeof(path), "%s/../../fuzz/corpus/vocab/%s", dirname(here), name);
	return vocab_read(path, len);
}

/* Counts a NUL-terminated text artifact; returns the rc. */
static int vocab_str(uint64_t *n, nck_vocab_kind *kind, const char *text, const char *name,
		     nck_diag *d)
{
	nck_diag_init(d);
	*n = 999999;
	return nck_vocab_count(n, kind, text, strlen(text), name, d);
}

/* ---- a hand-written protobuf encoder (wire format rules) ---- */

typedef struct pb {
	unsigned char b[512];
	size_t n;
} pb;

static void pb_varint(pb *p, uint64_t v)
{
	do {
		ASSERT_TRUE(p->n < sizeof(p->b));
		p->b[p->n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void pb_tag(pb *p, uint32_t field, unsigned wire)
{
	pb_varint(p, (uint64_t)field << 3 | wire);
}

static void pb_bytes(pb *p, uint32_t field, const void *data, size_t len)
{
	pb_tag(p, field, 2);
	pb_varint(p, len);
	ASSERT_TRUE(p->n + len <= sizeof(p->b));
	memcpy(p->b + p->n, data, len);
	p->n += len;
}

static void pb_fixed(pb *p, uint32_t field, unsigned wire, size_t width)
{
	pb_tag(p, field, wire);
	for (size_t i = 0; i < width; i++)
		p->b[p->n++] = (unsigned char)(0x11 * (i + 1));
}

/* A SentencePiece message: piece (1, string), score (2, float), type (3, enum). */
static void pb_piece(pb *model, const char *text, int type)
{
	pb piece = { .n = 0 };

	pb_bytes(&piece, 1, text, strlen(text));
	pb_fixed(&piece, 2, 5, 4);
	if (type) {
		pb_tag(&piece, 3, 0);
		pb_varint(&piece, (uint64_t)type);
	}
	pb_bytes(model, 1, piece.b, piece.n);
}

/* A ModelProto with three pieces and the other top-level fields. */
static pb pb_model(void)
{
	pb m = { .n = 0 }, spec = { .n = 0 };

	pb_piece(&m, "<unk>", 2);
	pb_piece(&m, "<s>", 3);
	pb_piece(&m, "\xe2\x96\x81the", 0);
	pb_tag(&spec, 3, 0); /* TrainerSpec.model_type */
	pb_varint(&spec, 1);
	pb_tag(&spec, 4, 0); /* vocab_size, a multi-byte varint */
	pb_varint(&spec, 32000);
	pb_bytes(&m, 2, spec.b, spec.n);       /* trainer_spec */
	pb_bytes(&m, 3, "\x0a\x04nmt_", 6);    /* normalizer_spec */
	pb_fixed(&m, 200, 1, 8);               /* unknown fixed64 field */
	pb_tag(&m, 100000, 0);                 /* unknown varint with a large field number */
	pb_varint(&m, UINT64_MAX);
	return m;
}

NCK_TEST(vocab_sentencepiece_models_from_the_real_trainer)
{
	static const struct {
		const char *file;
		uint64_t pieces;
	} models[] = { { "sp_unigram_40.model", 40 }, { "sp_bpe_57.model", 57 } };
	/* A NeMo >= 1.0 artifact name: <uuid4 hex>_<basename> (nemo-layouts.md §1.6). */
	const char *sp_name = "4978b28103264263a03439aaa6560e5e_tokenizer.model";
	nck_vocab_kind kind;
	unsigned char *buf;
	uint64_t n = 0;
	size_t len;
	nck_diag d;

	for (size_t i = 0; i < 2; i++) {
		buf = vocab_read_corpus(models[i].file, &len);
		nck_diag_init(&d);
		ASSERT_EQ_INT(nck_vocab_count(&n, &kind, buf, len, sp_name, &d), 0);
		ASSERT_EQ_INT(n, models[i].pieces);
		ASSERT_EQ_INT(kind, NCK_VOCAB_SENTENCEPIECE);
		/* .qnemo renames artifacts (tokenizer.vocab_file): found by content. */
		kind = NCK_VOCAB_TXT;
		ASSERT_EQ_INT(nck_vocab_count(&n, &kind, buf, len, "tokenizer.vocab_file", &d), 0);
		ASSERT_EQ_INT(n, models[i].pieces);
		ASSERT_EQ_INT(kind, NCK_VOCAB_SENTENCEPIECE);
		/* Cut short inside the last piece: the walk must notice. */
		ASSERT_EQ_INT(nck_vocab_count(&n, &kind, buf, len - 1, "t.model", &d), -EBADMSG);
		free(buf);
	}
}

NCK_TEST(vocab_sentencepiece_trained_at_test_time)
{
	char cwd[4096], cmd[2048];
	unsigned char *buf;
	nck_vocab_kind kind;
	uint64_t n = 0, expect = 0;
	size_t len;
	nck_diag d;
	FILE *out;

	if (system("/usr/bin/python3 -c 'import sentencepiece' >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP: python3-sentencepiece is not installed\n");
		if (getcwd(cwd, sizeof(cwd)) && chdir("/") == 0)
			rmdir(cwd);
		exit(77);
	}
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c '\n"
		 "import sentencepiece as spm\n"
		 "with open(\"c.txt\", \"w\") as f:\n"
		 "    for i in range(200):\n"
		 "        f.write(\"tensor %%d of layer %%d holds weights for the decoder\\n\" %% (i, i %% 7))\n"
		 "spm.SentencePieceTrainer.train(input=\"c.txt\", model_prefix=\"m\", vocab_size=48,\n"
		 "    model_type=\"unigram\", minloglevel=2, user_defined_symbols=[\"<pad>\"])\n"
		 "print(spm.SentencePieceProcessor(model_file=\"m.model\").get_piece_size())\n"
		 "'");
	out = popen(cmd, "r");
	ASSERT_TRUE(out != NULL);
	ASSERT_EQ_INT(fscanf(out, "%llu", (unsigned long long *)&expect), 1);
	ASSERT_EQ_INT(pclose(out), 0);
	ASSERT_EQ_INT(expect, 48);
	buf = vocab_read("m.model", &len);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vocab_count(&n, &kind, buf, len, "m.model", &d), 0);
	ASSERT_EQ_INT(n, expect);
	free(buf);
}

NCK_TEST(vocab_sentencepiece_hand_encoded_protobuf)
{
	pb m = pb_model();
	nck_vocab_kind kind;
	uint64_t n = 0;
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vocab_count(&n, &kind, m.b, m.n, "tokenizer.model", &d), 0);
	ASSERT_EQ_INT(n, 3);
	ASSERT_EQ_INT(kind, NCK_VOCAB_SENTENCEPIECE);
}

/* Expects a .model protobuf to be refused at `offset` (unless -1). */
static void vocab_expect_bad_pb(const pb *m, int64_t offset, const char *needle)
{
	uint64_t n = 7;
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vocab_count(&n, NULL, m->b, m->n, "bad.model", &d), -EBADMSG);
	ASSERT_EQ_INT(n, 0);
	if (offset >= 0)
		ASSERT_EQ_INT(d.offset, offset);
	ASSERT_CONTAINS(d.msg, needle);
	ASSERT_EQ_STR(d.path, "bad.model");
}

NCK_TEST(vocab_sentencepiece_malformed_protobufs)
{
	pb good = pb_model(), m;
	size_t third;

	/* Length running past the end. */
	m = good;
	m.n = 0;
	pb_piece(&m, "<unk>", 2);
	third = m.n;
	pb_tag(&m, 1, 2);
	pb_varint(&m, 100);
	vocab_expect_bad_pb(&m, (int64_t)third, "bad protobuf field");
	/* A truncated varint. */
	m.n = third;
	m.b[m.n++] = 0x80;
	vocab_expect_bad_pb(&m, (int64_t)third, "bad protobuf field");
	/* An 11-byte varint. */
	m.n = third;
	pb_tag(&m, 5, 0);
	memset(m.b + m.n, 0xff, 10);
	m.n += 10;
	m.b[m.n++] = 0x01;
	vocab_expect_bad_pb(&m, (int64_t)third, "bad protobuf field");
	/* Field number 0, a group, the reserved wire type 7. */
	for (unsigned t = 0; t < 3; t++) {
		m.n = third;
		m.b[m.n++] = t == 0 ? 0x02 : t == 1 ? 0x1b : 0x1f;
		m.b[m.n++] = 0;
		vocab_expect_bad_pb(&m, (int64_t)third, "bad protobuf field");
	}
	/* pieces (field 1) with a varint wire type. */
	m.n = third;
	pb_tag(&m, 1, 0);
	pb_varint(&m, 3);
	vocab_expect_bad_pb(&m, (int64_t)third, "bad protobuf field");
	/* A piece whose own bytes are not a message: offset of the inner fault. */
	m.n = third;
	pb_bytes(&m, 1, "\x0a\x09short", 7);
	vocab_expect_bad_pb(&m, (int64_t)third + 2, "bad protobuf field");
	/* A truncated fixed32 at the end. */
	m.n = third;
	pb_tag(&m, 9, 5);
	m.b[m.n++] = 1;
	vocab_expect_bad_pb(&m, (int64_t)third, "bad protobuf field");
	/* Well-formed, but no pieces. */
	m.n = 0;
	pb_bytes(&m, 2, "\x18\x01", 2);
	vocab_expect_bad_pb(&m, 0, "no pieces");
	m.n = 0;
	vocab_expect_bad_pb(&m, 0, "no pieces");
}

NCK_TEST(vocab_hf_tokenizer_json_bpe)
{
	const char *json = "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
			   "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
			   "{\"id\":5,\"content\":\"<|endoftext|>\",\"special\":true}],"
			   "\"normalizer\":null,\"model\":{\"type\":\"BPE\",\"dropout\":null,"
			   "\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"ab\":3},\"merges\":[\"a b\"]}}";
	nck_vocab_kind kind;
	uint64_t n;
	nck_diag d;

	ASSERT_EQ_INT(vocab_str(&n, &kind, json, "context/nemo_tokenizer/tokenizer.json", &d), 0);
	ASSERT_EQ_INT(n, 6); /* ids 0..3 in the vocab, 5 added: max id + 1 */
	ASSERT_EQ_INT(kind, NCK_VOCAB_HF_JSON);
	/* A .json with a "model" object is a tokenizer.json whatever its name. */
	ASSERT_EQ_INT(vocab_str(&n, &kind, json, "abc_tok.json", &d), 0);
	ASSERT_EQ_INT(kind, NCK_VOCAB_HF_JSON);
	ASSERT_EQ_INT(n, 6);
	ASSERT_EQ_INT(vocab_str(&n, &kind, json, NULL, &d), 0);
	ASSERT_EQ_INT(kind, NCK_VOCAB_HF_JSON);
}

NCK_TEST(vocab_hf_tokenizer_json_unigram_list)
{
	const char *json = "{\"added_tokens\":[{\"id\":4,\"content\":\"<extra>\"}],"
			   "\"model\":{\"type\":\"Unigram\",\"unk_id\":0,"
			   "\"vocab\":[[\"<unk>\",0.0],[\"a\",-1.5],[\"b\",-2.0],[\"c\",-3.1]]}}";
	nck_vocab_kind kind;
	uint64_t n;
	nck_diag d;

	ASSERT_EQ_INT(vocab_str(&n, &kind, json, "tokenizer.json", &d), 0);
	ASSERT_EQ_INT(n, 5);
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"model\":{\"vocab\":[[\"x\",0]]},\"added_tokens\":null}",
			        "tokenizer.json", &d),
		      0);
	ASSERT_EQ_INT(n, 1);
}

NCK_TEST(vocab_hf_tokenizer_json_errors)
{
	nck_vocab_kind kind;
	uint64_t n;
	nck_diag d;

	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"model\":{\"type\":\"BPE\"}}", "tokenizer.json", &d),
		      -EBADMSG);
	ASSERT_CONTAINS(d.msg, "model.vocab is missing");
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"model\":{\"vocab\":{\"a\":-1}}}", "tokenizer.json",
				&d),
		      -EBADMSG);
	ASSERT_CONTAINS(d.msg, "'a'");
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"model\":{\"vocab\":{}},\"added_tokens\":{}}",
				"tokenizer.json", &d),
		      -EBADMSG);
	ASSERT_CONTAINS(d.msg, "added_tokens is not a list");
	ASSERT_EQ_INT(vocab_str(&n, &kind,
				"{\"model\":{\"vocab\":{}},\"added_tokens\":[{\"content\":\"x\"}]}",
				"tokenizer.json", &d),
		      -EBADMSG);
	ASSERT_CONTAINS(d.msg, "added_tokens[0]");
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"model\": [", "tokenizer.json", &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "bad JSON");
	ASSERT_EQ_INT(d.offset, 11);
	ASSERT_EQ_INT(n, 0);
}

NCK_TEST(vocab_txt_line_counting)
{
	static const struct {
		const char *text;
		uint64_t lines;
	} cases[] = {
		{ "[PAD]\n[UNK]\n[CLS]\n", 3 }, /* trailing newline: no extra line */
		{ "[PAD]\n[UNK]\n[CLS]", 3 },	/* last line without a newline counts */
		{ "a\nb\n\n", 3 },		/* an empty line before the end counts */
		{ "", 0 },
		{ "\n", 1 },
		{ "a\r\nb\r\n", 2 },
		{ "##s\n\xe2\x96\x81x\n", 2 },
	};
	nck_vocab_kind kind;
	uint64_t n;
	nck_diag d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_EQ_INT(vocab_str(&n, &kind, cases[i].text, "abc_vocab.txt", &d), 0);
		ASSERT_EQ_INT(n, cases[i].lines);
		ASSERT_EQ_INT(kind, NCK_VOCAB_TXT);
		/* Unknown names find text by content. */
		kind = NCK_VOCAB_JSON;
		ASSERT_EQ_INT(vocab_str(&n, &kind, cases[i].text, "tokenizer.vocab_file", &d), 0);
		ASSERT_EQ_INT(n, cases[i].lines);
		ASSERT_EQ_INT(kind, NCK_VOCAB_TXT);
	}
}

NCK_TEST(vocab_gpt2_vocab_json_is_max_id_plus_one)
{
	nck_vocab_kind kind;
	uint64_t n;
	nck_diag d;

	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"!\": 0, \"\\\"\": 1, \"\\u0120the\": 2}",
				"c3f4_vocab.json", &d),
		      0);
	ASSERT_EQ_INT(n, 3);
	ASSERT_EQ_INT(kind, NCK_VOCAB_JSON);
	/* Ids with a gap: max id + 1, not the number of keys. */
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"a\":0,\"b\":1,\"c\":9}", "vocab.json", &d), 0);
	ASSERT_EQ_INT(n, 10);
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{}", "vocab.json", &d), 0);
	ASSERT_EQ_INT(n, 0);
	ASSERT_EQ_INT(vocab_str(&n, &kind, " {\"a\":0,\"b\":1}", "tokenizer.vocab_file", &d), 0);
	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_INT(kind, NCK_VOCAB_JSON);
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"a\":\"0\"}", "vocab.json", &d), -EBADMSG);
	ASSERT_EQ_INT(vocab_str(&n, &kind, "{\"a\":1.0}", "vocab.json", &d), -EBADMSG);
	ASSERT_EQ_INT(vocab_str(&n, &kind, "[\"a\"]", "vocab.json", &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "not an object");
}

NCK_TEST(vocab_unknown_binary_content_is_refused)
{
	static const unsigned char junk[] = { 0x00, 0x01, 0xff, 0xfe, 0x1b, 0x00 };
	static const unsigned char bad_utf8[] = { 'a', '\n', 0xc0, 0xaf, '\n' };
	uint64_t n;
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vocab_count(&n, NULL, junk, sizeof(junk), "tokenizer.vocab_file", &d),
		      -EBADMSG);
	ASSERT_CONTAINS(d.msg, "not a known tokenizer vocabulary format");
	ASSERT_EQ_INT(nck_vocab_count(&n, NULL, bad_utf8, sizeof(bad_utf8), "x", &d), -EBADMSG);
	/* With a .txt name the lines are counted whatever the bytes. */
	ASSERT_EQ_INT(nck_vocab_count(&n, NULL, bad_utf8, sizeof(bad_utf8), "x.txt", &d), 0);
	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_INT(nck_vocab_count(&n, NULL, NULL, 0, "x.txt", &d), 0);
	ASSERT_EQ_INT(n, 0);
}

/* ---- SentencePiece special tokens ---- */

NCK_TEST(vocab_sp_special_of_real_trainer_models)
{
	/* Oracle: SentencePieceProcessor (python3-sentencepiece 0.1.97) of the
	 * committed models: unk_id 0, bos_id 1, eos_id 2, pad_id -1, pieces
	 * <unk>, <s>, </s> (the trainer's defaults, written into trainer_spec). */
	static const char *const names[] = { "sp_bpe_57.model", "sp_unigram_40.model" };

	for (size_t i = 0; i < 2; i++) {
		nck_sp_special sp;
		nck_diag d;
		size_t len;
		unsigned char *buf = vocab_read_corpus(names[i], &len);

		nck_diag_init(&d);
		ASSERT_EQ_INT(nck_vocab_sp_special(&sp, buf, len, names[i], &d), 0);
		ASSERT_EQ_INT(sp.unk, 0);
		ASSERT_EQ_INT(sp.bos, 1);
		ASSERT_EQ_INT(sp.eos, 2);
		ASSERT_EQ_INT(sp.pad, -1);
		ASSERT_EQ_STR(sp.unk_piece, "<unk>");
		ASSERT_EQ_STR(sp.bos_piece, "<s>");
		ASSERT_EQ_STR(sp.eos_piece, "</s>");
		ASSERT_EQ_STR(sp.pad_piece, "");
		free(buf);
	}
}

NCK_TEST(vocab_sp_special_ids_from_the_trainer_spec)
{
	pb m = { .n = 0 }, spec = { .n = 0 }, norm = { .n = 0 };
	nck_sp_special sp;
	nck_diag d;

	pb_piece(&m, "<unk>", 2);
	pb_piece(&m, "<s>", 3);
	pb_piece(&m, "\xe2\x96\x81the", 0);
	pb_tag(&spec, 40, 0); /* unk_id = 2 */
	pb_varint(&spec, 2);
	pb_tag(&spec, 41, 0); /* bos_id = -1: an int32, so a ten-byte varint */
	pb_varint(&spec, UINT64_MAX);
	pb_tag(&spec, 42, 0); /* eos_id = 0 */
	pb_varint(&spec, 0);
	pb_tag(&spec, 43, 0); /* pad_id = 7: no such piece */
	pb_varint(&spec, 7);
	pb_bytes(&m, 2, spec.b, spec.n);
	pb_tag(&norm, 3, 0); /* NormalizerSpec.add_dummy_prefix = false */
	pb_varint(&norm, 0);
	pb_bytes(&m, 3, norm.b, norm.n);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vocab_sp_special(&sp, m.b, m.n, "x.model", &d), 0);
	ASSERT_EQ_INT(sp.pieces, 3);
	ASSERT_EQ_INT(sp.unk, 2);
	ASSERT_EQ_INT(sp.bos, -1);
	ASSERT_EQ_INT(sp.eos, 0);
	ASSERT_EQ_INT(sp.pad, -1);
	ASSERT_EQ_STR(sp.unk_piece, "\xe2\x96\x81the");
	ASSERT_EQ_STR(sp.bos_piece, "");
	ASSERT_EQ_STR(sp.eos_piece, "<unk>");
	ASSERT_TRUE(!sp.add_dummy_prefix);
	/* Defaults when the model has no trainer spec. */
	m = pb_model();
	ASSERT_EQ_INT(nck_vocab_sp_special(&sp, m.b, m.n, "x.model", &d), 0);
	ASSERT_EQ_INT(sp.unk, 0);
	ASSERT_EQ_INT(sp.bos, 1);
	ASSERT_EQ_INT(sp.eos, 2);
	ASSERT_EQ_STR(sp.eos_piece, "\xe2\x96\x81the");
	ASSERT_EQ_INT(sp.pad, -1);
	ASSERT_TRUE(sp.add_dummy_prefix);
	/* Malformed input is refused as the counter refuses it. */
	ASSERT_EQ_INT(nck_vocab_sp_special(&sp, "\x0a\x05" "ab", 4, "x.model", &d), -EBADMSG);
}

NCK_TEST(vocab_sp_special_pieces_that_are_not_utf8_are_left_empty)
{
	pb m = { .n = 0 };
	nck_sp_special sp;
	nck_diag d;

	pb_piece(&m, "\xff\xfe", 2);                       /* unk: not UTF-8 */
	pb_piece(&m, "<s>", 3);                            /* bos */
	pb_piece(&m, "\xed\xa0\x80", 3);                   /* eos: a UTF-16 surrogate */
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vocab_sp_special(&sp, m.b, m.n, "x.model", &d), 0);
	ASSERT_EQ_INT(sp.unk, 0);
	ASSERT_EQ_STR(sp.unk_piece, "");
	ASSERT_EQ_STR(sp.bos_piece, "<s>");
	ASSERT_EQ_INT(sp.eos, 2);
	ASSERT_EQ_STR(sp.eos_piece, "");
}

NCK_TEST(vocab_sentencepiece_pieces_equal_sentencepiece)
{
	char cwd[4096], cmd[4096], here[4096], line[512];
	unsigned char *buf;
	nck_sp_iter it;
	nck_sp_piece p;
	size_t len, k = 0;
	nck_diag d;
	FILE *out;

	if (system("/usr/bin/python3 -c 'import sentencepiece' >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP: python3-sentencepiece is not installed\n");
		if (getcwd(cwd, sizeof(cwd)) && chdir("/") == 0)
			rmdir(cwd);
		exit(77);
	}
	buf = vocab_read_corpus("sp_bpe_57.model", &len);
	snprintf(here, sizeof(here), "%s", __FILE__);
	/* The oracle: sentencepiece's own view of every id (hex text, score
	 * bits, type from its predicates; 0 = NORMAL or USER_DEFINED). */
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c '\n"
		 "import struct, sentencepiece as spm\n"
		 "sp = spm.SentencePieceProcessor(model_file=\"%s/../../fuzz/corpus/vocab/sp_bpe_57.model\")\n"
		 "for i in range(sp.get_piece_size()):\n"
		 "    t = 2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i) else 6 if sp.is_byte(i) else 0\n"
		 "    print(sp.id_to_piece(i).encode().hex() or \"-\", struct.unpack(\"<I\", struct.pack(\"<f\", sp.get_score(i)))[0], t)\n"
		 "'", dirname(here));
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vocab_sp_iter_init(&it, buf, len, "m.model", &d), 0);
	out = popen(cmd, "r");
	ASSERT_TRUE(out != NULL);
	while (fgets(line, sizeof(line), out)) {
		char hex[256], mine[256] = "-";
		unsigned long long bits;
		uint32_t u;
		int type;

		ASSERT_EQ_INT(sscanf(line, "%255s %llu %d", hex, &bits, &type), 3);
		ASSERT_TRUE(nck_vocab_sp_next(&it, &p));
		for (size_t i = 0; i < p.len && i < 100; i++)
			snprintf(mine + 2 * i, sizeof(mine) - 2 * i, "%02x", (unsigned char)p.text[i]);
		ASSERT_EQ_STR(mine, hex);
		memcpy(&u, &p.score, sizeof(u));
		ASSERT_EQ_INT(u, bits);
		if (type)
			ASSERT_EQ_INT(p.type, type);
		else
			ASSERT_TRUE(p.type == 1 || p.type == 4);
		k++;
	}
	ASSERT_EQ_INT(pclose(out), 0);
	ASSERT_EQ_INT(k, 57);
	ASSERT_TRUE(!nck_vocab_sp_next(&it, &p)); /* no more pieces than sentencepiece has */
	/* A model cut short is refused before any piece is handed out. */
	ASSERT_EQ_INT(nck_vocab_sp_iter_init(&it, buf, len - 1, "m.model", &d), -EBADMSG);
	ASSERT_TRUE(!nck_vocab_sp_next(&it, &p));
	free(buf);
}
