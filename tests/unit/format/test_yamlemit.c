/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the parallel-size rewriter (nck_yaml_set_parallel): NeMo 1
 * model_config.yaml excerpts as OmegaConf saves them, flow style, anchors
 * and aliases (also as and inside replaced values), block scalars, tags,
 * absent keys, keys under `model:`, and errors with their byte offsets.
 *
 * Oracle: Debian's /usr/bin/python3 with PyYAML loads the input and the
 * output (SafeLoader, unknown tags kept as (tag, value) tuples); the output
 * must equal the input with the keys changed in Python, top-level key order
 * included. Tests that need it exit 77 when PyYAML is missing. Every
 * rewrite is also run a second time on its own output, which must not
 * change it.
 */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format/yamlemit.h"
#include "nck_test.h"

/* A NeMo 1 model_config.yaml excerpt (keys of NeMo's megatron_gpt_config.yaml)
 * laid out as OmegaConf.save writes it, so a rewrite changes only two lines. */
static const char nemo1_config[] =
    "mcore_gpt: true\n"
    "micro_batch_size: 4\n"
    "global_batch_size: 8\n"
    "tensor_model_parallel_size: 2\n"
    "pipeline_model_parallel_size: 1\n"
    "virtual_pipeline_model_parallel_size: null\n"
    "encoder_seq_length: 4096\n"
    "max_position_embeddings: ${.encoder_seq_length}\n"
    "num_layers: 32\n"
    "hidden_size: 4096\n"
    "init_method_std: 0.02\n"
    "layernorm_epsilon: 1.0e-05\n"
    "precision: bf16-mixed\n"
    "megatron_amp_O2: True\n"
    "activations_checkpoint_granularity: null\n"
    "tokenizer:\n"
    "  library: sentencepiece\n"
    "  type: null\n"
    "  model: nemo:abc_tokenizer.model\n"
    "  vocab_file: null\n"
    "  merge_file: ~\n"
    "  delimiter:\n"
    "  sentencepiece_legacy: false\n"
    "optim:\n"
    "  name: distributed_fused_adam\n"
    "  lr: 0.0003\n"
    "  betas:\n"
    "  - 0.9\n"
    "  - 0.95\n"
    "  sched:\n"
    "    name: CosineAnnealing\n"
    "    warmup_steps: 500\n"
    "    min_lr: 3.0e-05\n"
    "data:\n"
    "  data_prefix:\n"
    "  - 0.5\n"
    "  - /data/a_text_document\n"
    "  - 0.5\n"
    "  - /data/b_text_document\n"
    "  splits_string: '99990,8,2'\n"
    "  index_mapping_dir: \"/tmp/index maps\"\n"
    "  seq_length: ${model.encoder_seq_length}\n"
    "nsys_profile:\n"
    "  ranks:\n"
    "  - 0\n"
    "  enabled: false\n"
    "target: nemo.collections.nlp.models.language_modeling.megatron_gpt_model.MegatronGPTModel\n"
    "nemo_version: 1.23.0\n";

/* Loads two YAML files with PyYAML and compares them, the keys changed. */
static const char oracle_py[] =
    "import sys, yaml\n"
    "class L(yaml.SafeLoader):\n"
    "    pass\n"
    "def other(loader, suffix, node):\n"
    "    if isinstance(node, yaml.ScalarNode):\n"
    "        v = loader.construct_scalar(node)\n"
    "    elif isinstance(node, yaml.SequenceNode):\n"
    "        v = loader.construct_sequence(node, deep=True)\n"
    "    else:\n"
    "        v = loader.construct_mapping(node, deep=True)\n"
    "    return ('tag', node.tag, v)\n"
    "L.add_multi_constructor('', other)\n"
    "src, dst, tp, pp, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), "
    "sys.argv[5] == '1'\n"
    "with open(src, 'rb') as f:\n"
    "    exp = yaml.load(f, L)\n"
    "with open(dst, 'rb') as f:\n"
    "    got = yaml.load(f, L)\n"
    "keys = {'tensor_model_parallel_size': tp, 'pipeline_model_parallel_size': pp}\n"
    "m = exp.get('model')\n"
    "if model and isinstance(m, dict):\n"
    "    for k, v in keys.items():\n"
    "        if k in m:\n"
    "            m[k] = v\n"
    "exp.update(keys)\n"
    "if got != exp or list(got) != list(exp):\n"
    "    print('expected:', exp, file=sys.stderr)\n"
    "    print('got:     ', got, file=sys.stderr)\n"
    "    sys.exit(1)\n";

/* ---- helpers -------------------------------------------------------------- */

/* Writes `len` bytes to `path`; aborts on failure (test code). */
static void ye_write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
}

/* Runs the rewrite and expects success, a NUL-terminated result of the
 * stated length, and a second pass that changes nothing. Caller frees. */
static char *ye_rewrite_n(const char *in, size_t len, int64_t tp, int64_t pp)
{
	char *out = NULL, *again = NULL;
	size_t out_len = 0, again_len = 0;
	nck_diag d;
	int rc;

	nck_diag_init(&d);
	rc = nck_yaml_set_parallel("model_config.yaml", in, len, tp, pp, &out, &out_len, &d);
	if (rc != 0)
		nck_test_fail(__FILE__, __LINE__, "rc %d: %s (offset %lld)", rc, d.msg,
			      (long long)d.offset);
	ASSERT_TRUE(out != NULL);
	ASSERT_EQ_INT(strlen(out), out_len);
	rc = nck_yaml_set_parallel("out.yaml", out, out_len, tp, pp, &again, &again_len, &d);
	if (rc != 0)
		nck_test_fail(__FILE__, __LINE__, "second pass: rc %d: %s\n%s", rc, d.msg, out);
	ASSERT_EQ_STR(again, out);
	free(again);
	return out;
}

static char *ye_rewrite(const char *in, int64_t tp, int64_t pp)
{
	return ye_rewrite_n(in, strlen(in), tp, pp);
}

/* Exits 77 (skip) unless /usr/bin/python3 can import yaml. */
static void ye_need_pyyaml(void)
{
	char cwd[4096];

	if (system("/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1") == 0)
		return;
	fprintf(stderr, "SKIP: /usr/bin/python3 with PyYAML is not available\n");
	if (getcwd(cwd, sizeof(cwd)) && chdir("/") == 0)
		rmdir(cwd);
	exit(77);
}

/* Checks `out` against PyYAML's reading of `in` with the keys changed; with
 * `model`, also those the `model` mapping holds. */
static void ye_oracle_n(const char *in, size_t in_len, const char *out, int64_t tp, int64_t pp,
			int model)
{
	char cmd[256];
	int st;

	ye_need_pyyaml();
	ye_write_file("in.yaml", in, in_len);
	ye_write_file("out.yaml", out, strlen(out));
	ye_write_file("oracle.py", oracle_py, strlen(oracle_py));
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 oracle.py in.yaml out.yaml %lld %lld %d",
		 (long long)tp, (long long)pp, model);
	st = system(cmd);
	if (st != 0)
		nck_test_fail(__FILE__, __LINE__, "oracle failed (%d) on output:\n%s", st, out);
}

static void ye_oracle(const char *in, const char *out, int64_t tp, int64_t pp, int model)
{
	ye_oracle_n(in, strlen(in), out, tp, pp, model);
}

/* Rewrites and checks with the oracle; returns the output (caller frees). */
static char *ye_check(const char *in, int64_t tp, int64_t pp, int model)
{
	char *out = ye_rewrite(in, tp, pp);

	ye_oracle(in, out, tp, pp, model);
	return out;
}

/* A copy of `s` with the first `from` replaced by `to` (which must occur). */
static char *ye_subst(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
	char *r = malloc(n);

	if (!at || !r)
		abort();
	snprintf(r, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
	return r;
}

/* Expects the rewrite of `in` to fail with `code` at `offset` (unless -1),
 * with `needle` in the message. */
static void ye_expect_n(const char *in, size_t len, int code, int64_t offset, const char *needle)
{
	char *out = (char *)1;
	size_t out_len = 9;
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_yaml_set_parallel("model_config.yaml", in, len, 2, 2, &out, &out_len, &d),
		      code);
	ASSERT_TRUE(out == NULL);
	ASSERT_EQ_INT(out_len, 0);
	ASSERT_EQ_INT(d.code, code);
	if (offset >= 0)
		ASSERT_EQ_INT(d.offset, offset);
	ASSERT_CONTAINS(d.msg, needle);
	ASSERT_EQ_STR(d.path, "model_config.yaml");
}

static void ye_expect(const char *in, int code, int64_t offset, const char *needle)
{
	ye_expect_n(in, strlen(in), code, offset, needle);
}

/* ---- faithful round trips ------------------------------------------------- */

NCK_TEST(yamlemit_nemo1_changes_only_the_two_values)
{
	char *tmp = ye_subst(nemo1_config, "tensor_model_parallel_size: 2\n",
			     "tensor_model_parallel_size: 1\n");
	char *expect =
	    ye_subst(tmp, "pipeline_model_parallel_size: 1\n", "pipeline_model_parallel_size: 4\n");
	char *out = ye_rewrite(nemo1_config, 1, 4);

	/* Byte for byte: long lines unfolded, quotes, nulls, floats kept. */
	ASSERT_EQ_STR(out, expect);
	free(out);
	/* Same values: the text is the input itself. */
	out = ye_rewrite(nemo1_config, 2, 1);
	ASSERT_EQ_STR(out, nemo1_config);
	free(out);
	free(expect);
	free(tmp);
}

NCK_TEST(yamlemit_nemo1_oracle)
{
	free(ye_check(nemo1_config, 8, 2, 1));
}

NCK_TEST(yamlemit_flow_style_is_kept)
{
	static const char flow_top[] =
	    "{tensor_model_parallel_size: 2, list: [1, 2.5, {a: b, c: [x, y]}],\n"
	    " 'quoted key': \"v\", empty: {}, none: null, tok: {model: nemo:abc.model}}\n";
	static const char flow_values[] = "data: {prefix: [0.5, /a, 0.5, /b], n: 3}\n"
					  "tensor_model_parallel_size: [1, 2]\n"
					  "pipeline_model_parallel_size: {a: 1, b: [2]}\n"
					  "after: [{}, []]\n";
	char *out = ye_check(flow_top, 4, 3, 1);

	/* pipeline_model_parallel_size was absent: appended inside the flow map. */
	ASSERT_EQ_INT(out[0], '{');
	ASSERT_CONTAINS(out, "tensor_model_parallel_size: 4,");
	ASSERT_CONTAINS(out, "pipeline_model_parallel_size: 3}");
	ASSERT_CONTAINS(out, "list: [1, 2.5, {a: b, c: [x, y]}]");
	ASSERT_CONTAINS(out, "'quoted key': \"v\"");
	free(out);
	/* Collections replaced by scalars, the rest untouched. */
	out = ye_check(flow_values, 4, 3, 1);
	ASSERT_EQ_STR(out, "data: {prefix: [0.5, /a, 0.5, /b], n: 3}\n"
			   "tensor_model_parallel_size: 4\n"
			   "pipeline_model_parallel_size: 3\n"
			   "after: [{}, []]\n");
	free(out);
}

NCK_TEST(yamlemit_anchors_and_aliases)
{
	static const char in[] = "defaults: &defaults\n"
				 "  tensor_model_parallel_size: 4\n"
				 "  lr: 0.1\n"
				 "two: &two 2\n"
				 "tensor_model_parallel_size: *two\n"
				 "pipeline_model_parallel_size: &pp 1\n"
				 "copy_of_pp: *pp\n"
				 "again: *pp\n"
				 "peft:\n"
				 "  <<: *defaults\n"
				 "  lr: 0.2\n"
				 "sched: *defaults\n"
				 "still_two: *two\n";
	char *out = ye_check(in, 8, 3, 1);

	/* The alias value is dropped; the anchor it used stays. */
	ASSERT_CONTAINS(out, "two: &two 2\ntensor_model_parallel_size: 8\n");
	/* The dropped anchored value comes back at its first alias. */
	ASSERT_CONTAINS(out, "pipeline_model_parallel_size: 3\ncopy_of_pp: &pp 1\nagain: *pp\n");
	/* Anchors in other mappings are not rewritten. */
	ASSERT_CONTAINS(out, "defaults: &defaults\n  tensor_model_parallel_size: 4\n");
	ASSERT_CONTAINS(out, "  <<: *defaults\n");
	ASSERT_CONTAINS(out, "still_two: *two\n");
	free(out);
}

NCK_TEST(yamlemit_replaced_values_with_anchors_inside)
{
	static const char in[] = "tensor_model_parallel_size: &t {a: &inner [1, 2], b: *inner}\n"
				 "pipeline_model_parallel_size: [&q 3, *q]\n"
				 "x: *inner\n"
				 "y: *t\n"
				 "z: *q\n"
				 "w: *t\n";
	char *out = ye_check(in, 2, 2, 1);

	ASSERT_EQ_STR(out, "tensor_model_parallel_size: 2\n"
			   "pipeline_model_parallel_size: 2\n"
			   "x: &inner [1, 2]\n"
			   "y: &t {a: *inner, b: *inner}\n"
			   "z: &q 3\n"
			   "w: *t\n");
	free(out);
}

NCK_TEST(yamlemit_replaced_value_written_in_parts)
{
	static const char in[] = "tensor_model_parallel_size: &x [&y 1, 2]\n"
				 "first: *y\n"
				 "then: *x\n"
				 "last: *y\n";
	char *out = ye_check(in, 2, 2, 1);

	/* y is written first, so x refers to it. */
	ASSERT_EQ_STR(out, "tensor_model_parallel_size: 2\n"
			   "first: &y 1\n"
			   "then: &x [*y, 2]\n"
			   "last: *y\n"
			   "pipeline_model_parallel_size: 2\n");
	free(out);
}

NCK_TEST(yamlemit_alias_chains_through_replaced_values)
{
	char in[4096], *p = in, *out;
	int n;

	/* a_i = [a_{i-1}]: writing a_10 writes the whole chain. */
	p += sprintf(p, "tensor_model_parallel_size: [&a0 0");
	for (n = 1; n <= 10; n++)
		p += sprintf(p, ", &a%d [*a%d]", n, n - 1);
	sprintf(p, "]\npipeline_model_parallel_size: [*a3]\nx: *a10\ny: *a3\n");
	out = ye_check(in, 2, 2, 1);
	ASSERT_CONTAINS(out,
			"x: &a10 [&a9 [&a8 [&a7 [&a6 [&a5 [&a4 [&a3 [&a2 [&a1 [&a0 0]]]]]]]]]]\n");
	ASSERT_CONTAINS(out, "y: *a3\n");
	free(out);
	/* Past 64 nested replays: refused, not a deep recursion. */
	p = in;
	p += sprintf(p, "tensor_model_parallel_size: [&a0 0");
	for (n = 1; n <= 70; n++)
		p += sprintf(p, ", &a%d [*a%d]", n, n - 1);
	sprintf(p, "]\nx: *a70\n");
	ye_expect(in, -ENOTSUP, -1, "nest too deeply");
}

NCK_TEST(yamlemit_block_scalars)
{
	static const char in[] = "description: |\n"
				 "  line one\n"
				 "    indented\n"
				 "  line three\n"
				 "folded: >\n"
				 "  a folded\n"
				 "  paragraph\n"
				 "\n"
				 "  second\n"
				 "strip: >-\n"
				 "  stripped\n"
				 "tensor_model_parallel_size: 2\n"
				 "pipeline_model_parallel_size: |\n"
				 "  1\n"
				 "keep: |+\n"
				 "  kept\n"
				 "\n";
	char *out = ye_check(in, 1, 2, 1);

	ASSERT_CONTAINS(out, "description: |\n  line one\n    indented\n  line three\n");
	ASSERT_CONTAINS(out, "folded: >\n  a folded");
	ASSERT_CONTAINS(out, "strip: >-\n  stripped\n");
	ASSERT_CONTAINS(out, "pipeline_model_parallel_size: 2\nkeep: |+\n  kept\n");
	free(out);
}

NCK_TEST(yamlemit_absent_keys_are_appended)
{
	char *out = ye_check("a: 1\nb:\n  c: 2\n", 8, 2, 1);

	ASSERT_EQ_STR(out, "a: 1\nb:\n  c: 2\n"
			   "tensor_model_parallel_size: 8\npipeline_model_parallel_size: 2\n");
	free(out);
	out = ye_check("pipeline_model_parallel_size: 1\na: x\n", 8, 2, 1);
	ASSERT_EQ_STR(out,
		      "pipeline_model_parallel_size: 2\na: x\ntensor_model_parallel_size: 8\n");
	free(out);
	/* An empty top-level mapping, and explicit document markers. */
	out = ye_check("--- {}\n...\n", 3, 5, 1);
	ASSERT_CONTAINS(out, "tensor_model_parallel_size: 3, pipeline_model_parallel_size: 5}");
	free(out);
}

NCK_TEST(yamlemit_keys_under_model)
{
	static const char in[] = "trainer:\n"
				 "  devices: 8\n"
				 "  tensor_model_parallel_size: 5\n"
				 "model:\n"
				 "  tensor_model_parallel_size: 2\n"
				 "  nested:\n"
				 "    pipeline_model_parallel_size: 7\n"
				 "  micro_batch_size: 1\n"
				 "  tokenizer:\n"
				 "    model: nemo:abc_tokenizer.model\n"
				 "exp_manager: {pipeline_model_parallel_size: 9}\n";
	static const char flow_model[] = "model: {'tensor_model_parallel_size': 2, "
					 "\"pipeline_model_parallel_size\": 2, x: 1}\n"
					 "tensor_model_parallel_size: 2\n";
	char *out = ye_check(in, 4, 6, 1);

	ASSERT_EQ_STR(out, "trainer:\n"
			   "  devices: 8\n"
			   "  tensor_model_parallel_size: 5\n"
			   "model:\n"
			   "  tensor_model_parallel_size: 4\n"
			   "  nested:\n"
			   "    pipeline_model_parallel_size: 7\n"
			   "  micro_batch_size: 1\n"
			   "  tokenizer:\n"
			   "    model: nemo:abc_tokenizer.model\n"
			   "exp_manager: {pipeline_model_parallel_size: 9}\n"
			   "tensor_model_parallel_size: 4\n"
			   "pipeline_model_parallel_size: 6\n");
	free(out);
	out = ye_check(flow_model, 4, 6, 1);
	ASSERT_CONTAINS(out, "model: {'tensor_model_parallel_size': 4, "
			     "\"pipeline_model_parallel_size\": 6, x: 1}\n");
	free(out);
}

NCK_TEST(yamlemit_model_given_as_alias_is_left_alone)
{
	static const char in[] = "base: &m\n"
				 "  tensor_model_parallel_size: 2\n"
				 "model: *m\n";
	char *out = ye_check(in, 4, 6, 0);

	ASSERT_EQ_STR(out, "base: &m\n"
			   "  tensor_model_parallel_size: 2\n"
			   "model: *m\n"
			   "tensor_model_parallel_size: 4\n"
			   "pipeline_model_parallel_size: 6\n");
	free(out);
}

NCK_TEST(yamlemit_tags_and_quoted_keys)
{
	static const char in[] = "_target_: nemo.collections.llm.gpt.model.llama.LlamaModel\n"
				 "config:\n"
				 "  pipeline_dtype: !!python/name:torch.bfloat16 ''\n"
				 "  custom: !foo {a: 1}\n"
				 "  s: !!str 123\n"
				 "  i: !!int \"7\"\n"
				 "\"tensor_model_parallel_size\": !!str 3\n"
				 "!!str pipeline_model_parallel_size: !!int 4\n"
				 "!custom tensor_model_parallel_size: 9\n";
	char *out = ye_rewrite(in, 2, 2);

	ASSERT_CONTAINS(out, "pipeline_dtype: !!python/name:torch.bfloat16 ''\n");
	ASSERT_CONTAINS(out, "custom: !foo {a: 1}\n");
	ASSERT_CONTAINS(out, "s: !!str 123\n");
	ASSERT_CONTAINS(out, "\"tensor_model_parallel_size\": 2\n");
	ASSERT_CONTAINS(out, "!!str pipeline_model_parallel_size: 2\n");
	/* A key with another tag is another key: kept as it was. */
	ASSERT_CONTAINS(out, "!custom tensor_model_parallel_size: 9\n");
	free(out);
	/* The oracle, without the key PyYAML would build a tuple of. */
	out = ye_check(
	    "config:\n  pipeline_dtype: !!python/name:torch.bfloat16 ''\n  c: !foo {a: 1}\n"
	    "\"tensor_model_parallel_size\": !!str 3\n",
	    2, 2, 1);
	free(out);
}

NCK_TEST(yamlemit_unicode_bom_and_crlf)
{
	static const char in[] = "\xEF\xBB\xBFname: \"caf\xC3\xA9\"\r\n"
				 "emoji: \xF0\x9F\x98\x80\r\n"
				 "escaped: \"\\u00e9\"\r\n"
				 "tensor_model_parallel_size: 1\r\n";
	char *out = ye_check(in, 2, 1, 1);

	/* UTF-8 out, unescaped, "\n" line breaks, no BOM. libyaml 0.2.5 writes
	 * characters outside the BMP only as escapes, hence quotes and the
	 * non-specific tag `!` (same value for PyYAML). */
	ASSERT_EQ_STR(out, "name: \"caf\xC3\xA9\"\n"
			   "emoji: ! \"\\U0001F600\"\n"
			   "escaped: \"\xC3\xA9\"\n"
			   "tensor_model_parallel_size: 2\n"
			   "pipeline_model_parallel_size: 1\n");
	free(out);
}

NCK_TEST(yamlemit_long_lines_are_not_folded)
{
	char in[4096], *out;

	memset(in, 0, sizeof(in));
	strcpy(in, "long: ");
	memset(in + 6, 'x', 300);
	strcat(in, " y z\nquoted: \"");
	memset(in + strlen(in), 'q', 300);
	strcat(in, " r\"\n");
	out = ye_check(in, 2, 1, 1);
	ASSERT_TRUE(strncmp(out, in, strlen(in)) == 0);
	free(out);
}

/* ---- errors --------------------------------------------------------------- */

NCK_TEST(yamlemit_malformed_yaml_names_the_offset)
{
	/* libyaml reports the problem at "c:" (line 3 column 2). */
	ye_expect("a: 1\nb: [1, 2\nc: 3\n", -EBADMSG, 15, "did not find expected ',' or ']'");
	ye_expect("a: 1\nb: [1, 2\nc: 3\n", -EBADMSG, 15, "line 3 column 2");
	/* Offsets are bytes: two 2-byte characters before the end. */
	ye_expect("\xC3\xA9\xC3\xA9: [1\n", -EBADMSG, 9, "did not find expected");
	/* A tab where indentation is expected. */
	ye_expect("a:\n\tb: 1\n", -EBADMSG, 3, "cannot start any token");
	/* Reader errors carry libyaml's byte offset. */
	ye_expect("a: \xFF\n", -EBADMSG, 3, "invalid");
	ye_expect("a: b: c\n", -EBADMSG, 4, "mapping values are not allowed");
}

NCK_TEST(yamlemit_top_level_must_be_a_mapping)
{
	ye_expect("- a\n- b\n", -EBADMSG, 0, "top level is not a mapping");
	ye_expect("# comment\n[tensor_model_parallel_size]\n", -EBADMSG, 10,
		  "top level is not a mapping");
	ye_expect("just text\n", -EBADMSG, 0, "top level is not a mapping");
	ye_expect("--- !!map\n", -EBADMSG, -1, "top level is not a mapping");
	ye_expect("", -EBADMSG, 0, "no document");
	ye_expect("# only a comment\n", -EBADMSG, -1, "no document");
}

NCK_TEST(yamlemit_one_document_only)
{
	ye_expect("a: 1\n---\nb: 2\n", -EBADMSG, 5, "more than one document");
	ye_expect("a: 1\n...\n--- {b: 2}\n", -EBADMSG, 9, "more than one document");
}

NCK_TEST(yamlemit_undefined_alias)
{
	ye_expect("a: 1\nb: *nope\n", -EBADMSG, 8, "undefined alias 'nope'");
	ye_expect("tensor_model_parallel_size: [*nope]\n", -EBADMSG, 29, "undefined alias");
	ye_expect("tensor_model_parallel_size: *nope\n", -EBADMSG, 28, "undefined alias");
}

NCK_TEST(yamlemit_redefined_anchor_conflict)
{
	/* `y` means another node by the time `x` must be written. */
	ye_expect("tensor_model_parallel_size: &x [&y 1]\nb: &y 2\nc: *x\n", -ENOTSUP, -1,
		  "anchor redefined");
	ye_expect("tensor_model_parallel_size: &x [*y]\n", -EBADMSG, -1, "undefined alias");
}

NCK_TEST(yamlemit_limits_and_arguments)
{
	char *big = calloc(1, (size_t)NCK_YAMLEMIT_MAX_BYTES + 1), *out = NULL;
	size_t out_len = 0;
	nck_diag d;

	ASSERT_TRUE(big != NULL);
	ye_expect_n(big, (size_t)NCK_YAMLEMIT_MAX_BYTES + 1, -E2BIG, -1, "larger than");
	free(big);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_yaml_set_parallel("c.yaml", "a: 1\n", 5, 0, 1, &out, &out_len, &d),
		      -EINVAL);
	ASSERT_EQ_INT(nck_yaml_set_parallel("c.yaml", "a: 1\n", 5, 1, -3, &out, &out_len, NULL),
		      -EINVAL);
	ASSERT_TRUE(out == NULL);
	/* Large values are written in full. */
	out = ye_rewrite("a: 1\n", INT64_MAX, 1);
	ASSERT_CONTAINS(out, "tensor_model_parallel_size: 9223372036854775807\n");
	free(out);
}

NCK_TEST(yamlemit_kept_events_limit)
{
	size_t n = NCK_YAMLEMIT_MAX_KEPT + 10, cap = 64 + 3 * n;
	char *in = malloc(cap), *p = in, *out;

	/* Without an anchor nothing of the dropped value is kept: any size. */
	ASSERT_TRUE(in != NULL);
	p += sprintf(p, "tensor_model_parallel_size: [0");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, ",0");
	sprintf(p, "]\n");
	out = ye_rewrite(in, 2, 2);
	ASSERT_EQ_STR(out, "tensor_model_parallel_size: 2\npipeline_model_parallel_size: 2\n");
	free(out);
	/* With one, the rest of it is kept, up to the limit. */
	p = in + strlen("tensor_model_parallel_size: [");
	memmove(p + 3, p, strlen(p) + 1);
	memcpy(p, "&a ", 3);
	ye_expect(in, -E2BIG, -1, "too large");
	free(in);
}

NCK_TEST(yamlemit_output_limit)
{
	size_t len = NCK_YAMLEMIT_MAX_BYTES - 16;
	char *in = malloc(len);

	/* The input fits; with the appended keys the output does not. */
	ASSERT_TRUE(in != NULL);
	memcpy(in, "a: ", 3);
	memset(in + 3, 'x', len - 4);
	in[len - 1] = '\n';
	ye_expect_n(in, len, -E2BIG, -1, "output larger than");
	free(in);
}
