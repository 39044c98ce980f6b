/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the parameter-kind table and the layer-number parser: the
 * TP merge rule of every Megatron GPT parameter comes from its name (spec
 * sharding-hf-trtllm.md A.1), never from its shape.
 */
#include "catalog/catalog_int.h"
#include "nck_test.h"

NCK_TEST(rules_mcore_names)
{
	nck_model_cfg gated = { .gated = true }, plain = { .gated = false };

	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.3.self_attention.linear_qkv.weight", &gated),
		      NCK_PARAM_COLUMN);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.3.self_attention.linear_qkv.layer_norm_weight",
					&gated),
		      NCK_PARAM_REPLICATED);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.0.mlp.linear_fc1.weight", &gated),
		      NCK_PARAM_COLUMN_GATED);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.0.mlp.linear_fc1.weight", &plain),
		      NCK_PARAM_COLUMN);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.0.mlp.linear_fc2.weight", &gated),
		      NCK_PARAM_ROW);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.0.mlp.linear_fc2.bias", &gated),
		      NCK_PARAM_REPLICATED);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.0.self_attention.linear_proj.weight", &gated),
		      NCK_PARAM_ROW);
	ASSERT_EQ_INT(nck_param_kind_of("model.embedding.word_embeddings.weight", &gated), NCK_PARAM_VOCAB);
	ASSERT_EQ_INT(nck_param_kind_of("model.output_layer.weight", &gated), NCK_PARAM_VOCAB);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.final_layernorm.weight", &gated),
		      NCK_PARAM_REPLICATED);
	ASSERT_EQ_INT(nck_param_kind_of("model.decoder.layers.0.self_attention.core_attention._extra_state",
					&gated),
		      NCK_PARAM_NON_WEIGHT);
}

NCK_TEST(rules_legacy_names)
{
	nck_model_cfg gated = { .gated = true };

	ASSERT_EQ_INT(nck_param_kind_of(
			      "model.language_model.encoder.layers.1.self_attention.query_key_value.weight",
			      &gated),
		      NCK_PARAM_COLUMN);
	ASSERT_EQ_INT(nck_param_kind_of("model.language_model.encoder.layers.1.mlp.dense_h_to_4h.weight",
					&gated),
		      NCK_PARAM_COLUMN_GATED);
	ASSERT_EQ_INT(nck_param_kind_of("model.language_model.encoder.layers.1.mlp.dense_4h_to_h.weight",
					&gated),
		      NCK_PARAM_ROW);
	ASSERT_EQ_INT(nck_param_kind_of("model.language_model.encoder.layers.1.self_attention.dense.weight",
					&gated),
		      NCK_PARAM_ROW);
	ASSERT_EQ_INT(nck_param_kind_of("model.language_model.embedding.word_embeddings.weight", &gated),
		      NCK_PARAM_VOCAB);
	/* A name that merely ends like a rule at no component boundary is not one. */
	ASSERT_EQ_INT(nck_param_kind_of("model.xlinear_fc2.weight", &gated), NCK_PARAM_REPLICATED);
}

NCK_TEST(rules_layer_numbers)
{
	size_t start, len;
	uint64_t layer;

	ASSERT_TRUE(nck_param_layer("model.decoder.layers.12.mlp.linear_fc1.weight", &start, &len, &layer));
	ASSERT_EQ_INT(layer, 12);
	ASSERT_EQ_INT(start, 21);
	ASSERT_EQ_INT(len, 2);
	ASSERT_TRUE(nck_param_layer("transformer.layers.0.attention.qkv.weight", &start, &len, &layer));
	ASSERT_EQ_INT(layer, 0);
	ASSERT_TRUE(nck_param_layer("layers.7", &start, &len, &layer));
	ASSERT_EQ_INT(layer, 7);
	ASSERT_TRUE(!nck_param_layer("model.decoder.layers.self_attention.linear_qkv.weight", &start, &len,
				     &layer));
	ASSERT_TRUE(!nck_param_layer("model.decoder.final_layernorm.weight", &start, &len, &layer));
	ASSERT_TRUE(!nck_param_layer("model.decoder.layers.3x.weight", &start, &len, &layer));
}

NCK_TEST(rules_gpt_keys)
{
	ASSERT_TRUE(nck_param_is_gpt_key("model.decoder.layers.0.mlp.linear_fc1.weight"));
	ASSERT_TRUE(nck_param_is_gpt_key("model.language_model.encoder.layers.0.x"));
	ASSERT_TRUE(!nck_param_is_gpt_key("encoder.pre_encode.conv.0.weight"));
}
