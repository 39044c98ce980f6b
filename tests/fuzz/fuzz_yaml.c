/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the YAML config reader. An accepted tree is walked
 * in full, aliases expanded, and must stay within NCK_YAML_MAX_NODES nodes
 * and NCK_YAML_MAX_DEPTH levels; the typed getters run on a few paths
 * that NeMo configs use.
 */
#include <stddef.h>
#include <stdint.h>

#include "format/yamlcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Counts the nodes of the expanded tree (keys included); traps past the limits. */
static uint64_t fuzz_yaml_walk(const nck_yaml_node *n, unsigned depth)
{
	uint64_t count = 1;

	if (depth > NCK_YAML_MAX_DEPTH + 1)
		__builtin_trap();
	if ((n->kind == NCK_YAML_SCALAR || n->kind == NCK_YAML_NULL) && !n->scalar)
		__builtin_trap();
	if (n->kind != NCK_YAML_MAP && n->kind != NCK_YAML_SEQ)
		return 1;
	for (size_t i = 0; i < n->n; i++) {
		if (n->kind == NCK_YAML_MAP && !n->keys[i])
			__builtin_trap();
		count += (n->kind == NCK_YAML_MAP) + fuzz_yaml_walk(n->values[i], depth + 1);
		if (count > 2ull * NCK_YAML_MAX_NODES)
			__builtin_trap();
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "tensor_model_parallel_size", "tokenizer.model",
					     "config.num_layers", "a.0.b", "0", "" };
	nck_yaml_node *root = NULL;
	nck_arena arena;
	nck_diag diag;
	int64_t v;
	bool b;

	nck_arena_init(&arena);
	nck_diag_init(&diag);
	if (nck_yaml_parse(&root, &arena, data, size, "fuzz.yaml", &diag) == 0) {
		if (!root)
			__builtin_trap();
		fuzz_yaml_walk(root, 0);
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			(void)nck_yaml_get_int(root, paths[i], &v);
			(void)nck_yaml_get_bool(root, paths[i], &b);
			(void)nck_yaml_get_str(root, paths[i]);
		}
	} else if (diag.code == 0 || root != NULL) {
		__builtin_trap();
	}
	nck_arena_dispose(&arena);
	return 0;
}
