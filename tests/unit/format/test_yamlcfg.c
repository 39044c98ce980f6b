/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the YAML config reader: a NeMo 1 model_config.yaml excerpt
 * (keys from NeMo's megatron_gpt_config.yaml, as OmegaConf saves them), a
 * NeMo 2 context/model.yaml excerpt (`_target_` keys, a python/name tag),
 * anchors, aliases and merge keys, YAML 1.1 scalar resolution, and errors
 * with the byte offsets they must report.
 */
#include <errno.h>

#include "format/yamlcfg.h"
#include "nck_test.h"

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
	"ffn_hidden_size: 11008\n"
	"num_attention_heads: 32\n"
	"num_query_groups: null\n"
	"init_method_std: 0.02\n"
	"layernorm_epsilon: 1.0e-05\n"
	"make_vocab_size_divisible_by: 128\n"
	"precision: bf16\n"
	"megatron_amp_O2: True\n"
	"bias: false\n"
	"tokenizer:\n"
	"  library: sentencepiece\n"
	"  type: null\n"
	"  model: nemo:abc_tokenizer.model\n"
	"  vocab_file: null\n"
	"  merge_file: ~\n"
	"  delimiter:\n"
	"  sentencepiece_legacy: false\n"
	"optim: &optim\n"
	"  name: distributed_fused_adam\n"
	"  lr: 0.0003\n"
	"  sched: &sched\n"
	"    name: CosineAnnealing\n"
	"    warmup_steps: 500\n"
	"peft:\n"
	"  optim:\n"
	"    <<: *optim\n"
	"    lr: 0.0001\n"
	"  sched: *sched\n"
	"data:\n"
	"  data_prefix:\n"
	"  - 0.5\n"
	"  - /data/a_text_document\n"
	"  - 0.5\n"
	"  - /data/b_text_document\n"
	"  splits_string: '99990,8,2'\n"
	"target: nemo.collections.nlp.models.language_modeling.megatron_gpt_model.MegatronGPTModel\n"
	"nemo_version: 1.23.0\n";

static const char nemo2_model[] =
	"_target_: nemo.collections.llm.gpt.model.llama.LlamaModel\n"
	"config:\n"
	"  _cpu_offloading: false\n"
	"  _target_: nemo.collections.llm.gpt.model.llama.Llama31Config8B\n"
	"  activation_func:\n"
	"    _call_: false\n"
	"    _target_: torch.nn.functional.silu\n"
	"  bf16: true\n"
	"  ffn_hidden_size: 14336\n"
	"  hidden_size: 4096\n"
	"  kv_channels: null\n"
	"  num_attention_heads: 32\n"
	"  num_layers: 32\n"
	"  num_query_groups: 8\n"
	"  params_dtype:\n"
	"    _call_: false\n"
	"    _target_: torch.bfloat16\n"
	"  pipeline_dtype: !!python/name:torch.bfloat16 ''\n"
	"  rotary_base: 500000\n"
	"  seq_length: 8192\n"
	"  make_vocab_size_divisible_by: 128\n"
	"  transformer_layer_spec:\n"
	"    _call_: false\n"
	"    _target_: nemo.collections.llm.gpt.model.llama.transformer_layer_spec\n"
	"optim:\n"
	"  _target_: nemo.lightning.pytorch.optim.megatron.MegatronOptimizerModule\n"
	"  config:\n"
	"    _target_: megatron.core.optimizer.optimizer_config.OptimizerConfig\n"
	"    lr: 0.0001\n"
	"tokenizer:\n"
	"  _target_: nemo.collections.common.tokenizers.sentencepiece_tokenizer.SentencePieceTokenizer\n"
	"  legacy: false\n"
	"  model_path: nemo_tokenizer/tokenizer.model\n"
	"  special_tokens: null\n";

/* Parses `text` into a tree in `arena`; returns the rc. */
static int yaml_parse_str(nck_yaml_node **root, nck_arena *arena, const char *text, nck_diag *d)
{
	nck_diag_init(d);
	nck_arena_init(arena);
	return nck_yaml_parse(root, arena, text, strlen(text), "model_config.yaml", d);
}

/* Expects `text` to fail with `code`, at `offset` (unless -1), mentioning `needle`. */
static void yaml_expect(const char *text, int code, int64_t offset, const char *needle)
{
	nck_yaml_node *root = (nck_yaml_node *)1;
	nck_arena arena;
	nck_diag d;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, text, &d), code);
	ASSERT_TRUE(root == NULL);
	ASSERT_EQ_INT(d.code, code);
	if (offset >= 0)
		ASSERT_EQ_INT(d.offset, offset);
	ASSERT_CONTAINS(d.msg, needle);
	ASSERT_EQ_STR(d.path, "model_config.yaml");
	nck_arena_dispose(&arena);
}

/* Reads an int that must be present. */
static int64_t yaml_int(const nck_yaml_node *root, const char *path)
{
	int64_t v = -12345;

	ASSERT_EQ_INT(nck_yaml_get_int(root, path, &v), 0);
	return v;
}

NCK_TEST(yaml_nemo1_model_config)
{
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;
	int64_t v;
	bool b = false;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, nemo1_config, &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_YAML_MAP);
	ASSERT_EQ_INT(yaml_int(root, "tensor_model_parallel_size"), 2);
	ASSERT_EQ_INT(yaml_int(root, "pipeline_model_parallel_size"), 1);
	ASSERT_EQ_INT(yaml_int(root, "num_layers"), 32);
	ASSERT_EQ_INT(yaml_int(root, "hidden_size"), 4096);
	ASSERT_EQ_INT(yaml_int(root, "make_vocab_size_divisible_by"), 128);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "num_query_groups", &v), -ENOENT);
	ASSERT_EQ_INT(nck_yaml_get(root, "num_query_groups")->kind, NCK_YAML_NULL);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "virtual_pipeline_model_parallel_size", &v), -ENOENT);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "expert_model_parallel_size", &v), -ENOENT);
	ASSERT_TRUE(nck_yaml_get(root, "expert_model_parallel_size") == NULL);
	/* Not integers: a float, a string, an interpolation. */
	ASSERT_EQ_INT(nck_yaml_get_int(root, "init_method_std", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "precision", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "max_position_embeddings", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "tokenizer", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "mcore_gpt", &b), 0);
	ASSERT_TRUE(b);
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "megatron_amp_O2", &b), 0);
	ASSERT_TRUE(b);
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "bias", &b), 0);
	ASSERT_TRUE(!b);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "precision"), "bf16");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "tokenizer.library"), "sentencepiece");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "tokenizer.model"), "nemo:abc_tokenizer.model");
	ASSERT_TRUE(nck_yaml_get_str(root, "tokenizer.type") == NULL);
	ASSERT_TRUE(nck_yaml_get_str(root, "tokenizer.merge_file") == NULL);
	ASSERT_TRUE(nck_yaml_get_str(root, "tokenizer.delimiter") == NULL);
	ASSERT_TRUE(nck_yaml_get(root, "tokenizer.delimiter") != NULL);
	ASSERT_TRUE(nck_yaml_get_str(root, "tokenizer") == NULL);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "data.data_prefix.1"), "/data/a_text_document");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "data.data_prefix.3"), "/data/b_text_document");
	ASSERT_TRUE(nck_yaml_get(root, "data.data_prefix.4") == NULL);
	ASSERT_TRUE(nck_yaml_get(root, "data.data_prefix.x") == NULL);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "data.splits_string"), "99990,8,2");
	ASSERT_TRUE(nck_yaml_get(root, "data.splits_string")->quoted);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "nemo_version"), "1.23.0");
	ASSERT_TRUE(nck_yaml_get(root, "") == root);
	ASSERT_TRUE(nck_yaml_get(root, NULL) == root);
	ASSERT_TRUE(nck_yaml_get(root, "tokenizer.model.x") == NULL);
	/* Node offsets point at the value in the input. */
	ASSERT_EQ_INT(nck_yaml_get(root, "micro_batch_size")->offset,
		      strstr(nemo1_config, "micro_batch_size: 4") - nemo1_config + 18);
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_anchors_aliases_and_merge_keys)
{
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, nemo1_config, &d), 0);
	/* An alias is the anchored node itself. */
	ASSERT_TRUE(nck_yaml_get(root, "peft.sched") == nck_yaml_get(root, "optim.sched"));
	ASSERT_EQ_INT(yaml_int(root, "peft.sched.warmup_steps"), 500);
	/* Merge: the explicit key wins, the others come from the anchor. */
	ASSERT_EQ_STR(nck_yaml_get_str(root, "peft.optim.lr"), "0.0001");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "peft.optim.name"), "distributed_fused_adam");
	ASSERT_TRUE(nck_yaml_get(root, "peft.optim.sched") == nck_yaml_get(root, "optim.sched"));
	ASSERT_EQ_INT(nck_yaml_get(root, "peft.optim")->n, 3);
	ASSERT_TRUE(nck_yaml_get(root, "peft.optim.<<") == NULL);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "optim.lr"), "0.0003");
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_merge_list_earlier_maps_win)
{
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena,
				     "base: &base {lr: 0.1, name: adam}\n"
				     "multi:\n"
				     "  <<: [*base, {name: sgd, wd: 0.01}]\n"
				     "  beta: 2\n"
				     "quoted:\n"
				     "  '<<': 1\n",
				     &d),
		      0);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "multi.name"), "adam");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "multi.lr"), "0.1");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "multi.wd"), "0.01");
	ASSERT_EQ_INT(yaml_int(root, "multi.beta"), 2);
	/* Explicit keys come first, then merged ones in order. */
	ASSERT_EQ_STR(nck_yaml_get(root, "multi")->keys[0], "beta");
	ASSERT_EQ_INT(nck_yaml_get(root, "multi")->n, 4);
	/* A quoted '<<' is an ordinary key. */
	ASSERT_EQ_INT(yaml_int(root, "quoted.<<"), 1);
	nck_arena_dispose(&arena);
	yaml_expect("a: 1\nb:\n  <<: 5\n", -EBADMSG, 14, "merge key");
	yaml_expect("a: &x [1]\nb:\n  <<: [*x]\n", -EBADMSG, -1, "merge key");
}

NCK_TEST(yaml_nemo2_context_model)
{
	nck_yaml_node *root = NULL;
	const nck_yaml_node *n;
	nck_arena arena;
	nck_diag d;
	bool b = true;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, nemo2_model, &d), 0);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "_target_"),
		      "nemo.collections.llm.gpt.model.llama.LlamaModel");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "config._target_"),
		      "nemo.collections.llm.gpt.model.llama.Llama31Config8B");
	ASSERT_EQ_INT(yaml_int(root, "config.num_layers"), 32);
	ASSERT_EQ_INT(yaml_int(root, "config.num_query_groups"), 8);
	ASSERT_EQ_INT(yaml_int(root, "config.rotary_base"), 500000);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "config.params_dtype._target_"), "torch.bfloat16");
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "config.params_dtype._call_", &b), 0);
	ASSERT_TRUE(!b);
	n = nck_yaml_get(root, "config.pipeline_dtype");
	ASSERT_EQ_INT(n->kind, NCK_YAML_SCALAR);
	ASSERT_EQ_STR(n->tag, "tag:yaml.org,2002:python/name:torch.bfloat16");
	ASSERT_EQ_STR(n->scalar, "");
	ASSERT_TRUE(n->quoted);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "tokenizer.model_path"),
		      "nemo_tokenizer/tokenizer.model");
	ASSERT_TRUE(nck_yaml_get_str(root, "tokenizer.special_tokens") == NULL);
	ASSERT_EQ_STR(nck_yaml_get(root, "")->keys[0], "_target_");
	ASSERT_EQ_STR(nck_yaml_get(root, "")->keys[3], "tokenizer");
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_int_resolution)
{
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;
	int64_t v = 0;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena,
				     "a: -9223372036854775808\n"
				     "b: 9223372036854775807\n"
				     "c: 9223372036854775808\n"
				     "d: 012\n"
				     "e: 1_000\n"
				     "f: '5'\n"
				     "g: !!int \"7\"\n"
				     "h: +3\n"
				     "i: 0x10\n"
				     "j: -0\n"
				     "k: 1.0\n"
				     "l: !!str 9\n"
				     "m: [1]\n"
				     "n: ''\n",
				     &d),
		      0);
	ASSERT_EQ_INT(yaml_int(root, "a"), INT64_MIN);
	ASSERT_EQ_INT(yaml_int(root, "b"), INT64_MAX);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "c", &v), -EOVERFLOW);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "d", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "e", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "f", &v), -EBADMSG);
	ASSERT_EQ_INT(yaml_int(root, "g"), 7);
	ASSERT_EQ_INT(yaml_int(root, "h"), 3);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "i", &v), -EBADMSG);
	ASSERT_EQ_INT(yaml_int(root, "j"), 0);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "k", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "l", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "m", &v), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_int(root, "m.0", &v), 0);
	ASSERT_EQ_INT(v, 1);
	/* A quoted empty string is a string, not null. */
	ASSERT_EQ_INT(nck_yaml_get(root, "n")->kind, NCK_YAML_SCALAR);
	ASSERT_EQ_STR(nck_yaml_get_str(root, "n"), "");
	ASSERT_EQ_INT(nck_yaml_get_int(root, "n", &v), -EBADMSG);
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_bool_and_null_resolution)
{
	static const char *const trues[] = { "t1", "t2", "t3", "t4", "t5", "t6" };
	static const char *const falses[] = { "f1", "f2", "f3", "f4", "f5", "f6" };
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;
	bool b;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena,
				     "t1: true\nt2: True\nt3: TRUE\nt4: yes\nt5: on\nt6: !!bool Yes\n"
				     "f1: false\nf2: False\nf3: no\nf4: NO\nf5: off\nf6: Off\n"
				     "q: 'true'\nx: 1\nz: tRuE\n"
				     "n1: null\nn2: Null\nn3: NULL\nn4: ~\nn5:\nn6: !!null ''\n"
				     "s1: 'null'\ns2: nul\n",
				     &d),
		      0);
	for (int i = 0; i < 6; i++) {
		b = false;
		ASSERT_EQ_INT(nck_yaml_get_bool(root, trues[i], &b), 0);
		ASSERT_TRUE(b);
		ASSERT_EQ_INT(nck_yaml_get_bool(root, falses[i], &b), 0);
		ASSERT_TRUE(!b);
	}
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "q", &b), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "x", &b), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "z", &b), -EBADMSG);
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "n1", &b), -ENOENT);
	ASSERT_EQ_INT(nck_yaml_get_bool(root, "absent", &b), -ENOENT);
	for (char k[] = "n1"; k[1] <= '6'; k[1]++) {
		ASSERT_EQ_INT(nck_yaml_get(root, k)->kind, NCK_YAML_NULL);
		ASSERT_TRUE(nck_yaml_get_str(root, k) == NULL);
	}
	ASSERT_EQ_STR(nck_yaml_get_str(root, "s1"), "null");
	ASSERT_EQ_STR(nck_yaml_get_str(root, "s2"), "nul");
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_tab_indentation_error_has_byte_offset)
{
	/* libyaml counts characters: 'é' is one character but two bytes, so
	 * the tab at character 5 is at byte 6. */
	yaml_expect("\xc3\xa9: 1\n\tb: 2\n", -EBADMSG, 6, "line 2 column 1: found a tab character");
	yaml_expect("a: 1\n\tb: 2\n", -EBADMSG, 5, "tab");
}

NCK_TEST(yaml_bad_indentation_error_has_line_and_offset)
{
	yaml_expect("tokenizer:\n  library: sentencepiece\n model: x\n", -EBADMSG, 37,
		    "line 3 column 2: did not find expected key");
	yaml_expect("a: [1, 2\nb: 3\n", -EBADMSG, -1, "did not find expected ',' or ']'");
	yaml_expect("a: \"unterminated\n", -EBADMSG, -1, "unexpected end of stream");
}

NCK_TEST(yaml_reader_errors_use_byte_offsets)
{
	yaml_expect("a: b\nc: \xff\n", -EBADMSG, 8, "invalid leading UTF-8 octet");
	yaml_expect("a: \x01\n", -EBADMSG, 3, "control characters");
}

NCK_TEST(yaml_bom_is_not_counted_by_libyaml_but_is_by_us)
{
	yaml_expect("\xef\xbb\xbf" "a: 1\n\tb: 2\n", -EBADMSG, 8, "tab");
}

NCK_TEST(yaml_alias_bomb_is_refused)
{
	/* 10 x 10^6 expanded nodes from 70 lines: "billion laughs". */
	const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
	/* The same shape, four levels: about 11,000 nodes expanded, accepted. */
	const char *small = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;

	yaml_expect(bomb, -EBADMSG, -1, "aliases expand to too many nodes");
	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, small, &d), 0);
	ASSERT_TRUE(nck_yaml_get(root, "d.9.9") == nck_yaml_get(root, "b"));
	ASSERT_EQ_STR(nck_yaml_get_str(root, "d.3.4.5.6"), "x");
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_undefined_and_recursive_aliases)
{
	yaml_expect("a: 1\nb: *nope\n", -EBADMSG, 8, "undefined alias 'nope'");
	yaml_expect("a: &r [1, *r]\n", -EBADMSG, 10, "undefined alias 'r'");
}

NCK_TEST(yaml_anchor_redefinition_uses_the_latest)
{
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, "a: &x 1\nb: *x\nc: &x 2\nd: *x\n", &d), 0);
	ASSERT_EQ_INT(yaml_int(root, "b"), 1);
	ASSERT_EQ_INT(yaml_int(root, "d"), 2);
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_duplicate_keys_are_refused)
{
	yaml_expect("tokenizer:\n  model: a\n  model: b\n", -EBADMSG, 24, "duplicate key 'model'");
}

NCK_TEST(yaml_structure_limits)
{
	char deep[300];
	size_t n = 0;

	/* 65 nested flow sequences: one more than NCK_YAML_MAX_DEPTH. */
	for (int i = 0; i < NCK_YAML_MAX_DEPTH + 1; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	yaml_expect(deep, -EBADMSG, NCK_YAML_MAX_DEPTH, "nesting is too deep");
	yaml_expect("? [a, b]\n: 1\n", -ENOTSUP, -1, "mapping key");
	yaml_expect("--- 1\n--- 2\n", -EBADMSG, 6, "more than one document");
	yaml_expect("a: \"x\\0y\"\n", -ENOTSUP, 3, "NUL");
}

NCK_TEST(yaml_depth_at_the_limit_is_fine)
{
	char deep[300];
	nck_yaml_node *root = NULL;
	const nck_yaml_node *n;
	nck_arena arena;
	nck_diag d;
	size_t len = 0;

	for (int i = 0; i < NCK_YAML_MAX_DEPTH; i++)
		deep[len++] = '[';
	for (int i = 0; i < NCK_YAML_MAX_DEPTH; i++)
		deep[len++] = ']';
	deep[len] = '\0';
	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, deep, &d), 0);
	n = root;
	for (int i = 1; i < NCK_YAML_MAX_DEPTH; i++) {
		ASSERT_EQ_INT(n->kind, NCK_YAML_SEQ);
		ASSERT_EQ_INT(n->n, 1);
		n = n->values[0];
	}
	ASSERT_EQ_INT(n->n, 0);
	nck_arena_dispose(&arena);
}

NCK_TEST(yaml_empty_and_scalar_documents)
{
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag d;

	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, "", &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_YAML_NULL);
	ASSERT_TRUE(nck_yaml_get(root, "a") == NULL);
	nck_arena_dispose(&arena);
	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, "# only a comment\n", &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_YAML_NULL);
	nck_arena_dispose(&arena);
	ASSERT_EQ_INT(yaml_parse_str(&root, &arena, "--- 42\n...\n", &d), 0);
	ASSERT_EQ_INT(yaml_int(root, ""), 42);
	nck_arena_dispose(&arena);
	nck_arena_init(&arena);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_yaml_parse(&root, &arena, NULL, 0, "x.yaml", &d), 0);
	ASSERT_EQ_INT(root->kind, NCK_YAML_NULL);
	nck_arena_dispose(&arena);
}
