/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the parallel-size rewriter (format/yamlemit.h).
 * A failure must fill the diag and leave no output. An accepted input must
 * give a NUL-terminated output that a second rewrite leaves byte for byte
 * unchanged (so it is valid YAML with every alias defined), and when the
 * YAML config reader accepts that output, its top-level keys must hold the
 * new sizes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/yamlcfg.h"
#include "format/yamlemit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the output with the config reader; traps on wrong sizes. */
static void fuzz_yamlemit_values(const char *out, size_t len)
{
	nck_yaml_node *root = NULL;
	nck_arena arena;
	int64_t tp = 0, pp = 0;

	nck_arena_init(&arena);
	if (nck_yaml_parse(&root, &arena, out, len, "out.yaml", NULL) == 0 &&
	    (nck_yaml_get_int(root, "tensor_model_parallel_size", &tp) != 0 || tp != 3 ||
	     nck_yaml_get_int(root, "pipeline_model_parallel_size", &pp) != 0 || pp != 5))
		__builtin_trap();
	nck_arena_dispose(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	nck_diag diag;
	int rc;

	nck_diag_init(&diag);
	rc = nck_yaml_set_parallel("fuzz.yaml", (const char *)data, size, 3, 5, &out, &len, &diag);
	if (rc != 0) {
		if (out || len || diag.code != rc)
			__builtin_trap();
		return 0;
	}
	if (!out || out[len] != '\0' || diag.code != 0)
		__builtin_trap();
	rc = nck_yaml_set_parallel("out.yaml", out, len, 3, 5, &again, &len2, &diag);
	if (rc != 0 || len2 != len || memcmp(again, out, len) != 0)
		__builtin_trap();
	fuzz_yamlemit_values(out, len);
	free(again);
	free(out);
	return 0;
}
