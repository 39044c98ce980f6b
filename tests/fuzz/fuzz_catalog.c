/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for a whole checkpoint: the bytes are a tar archive held
 * in memory, indexed by the container layer and cataloged (layout
 * detection, model_config.yaml, tokenizer, torch files, DCP, zarr, .qnemo
 * config.json and safetensors, merge rules), then every tensor is read back
 * through the gather reader. Seeds are small fixture checkpoints.
 */
#include <stdint.h>
#include <stdlib.h>

#include "catalog/build.h"
#include "nemockpt/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_container *c = NULL;
	nck_catalog *cat = NULL;
	nck_src *src = NULL;
	unsigned char *buf;

	nck_log_init("fuzz_catalog", NCK_LOG_ERROR);
	if (nck_src_new_mem(&src, data, size, "fuzz.nemo") < 0 ||
	    nck_container_open_src_take(&c, src, NULL) < 0)
		return 0;
	if (nck_catalog_build(&cat, c, NULL) == 0) {
		buf = malloc(4096);
		for (size_t i = 0; buf && i < nck_catalog_count(cat); i++) {
			const nck_tensor *t = nck_catalog_at(cat, i);
			uint64_t n = nck_tensor_bytes(t);

			/* Every listed tensor can be read: its chunks lie in their files. */
			if (nck_catalog_read(cat, t, 0, buf, n < 4096 ? (size_t)n : 4096) != 0)
				__builtin_trap();
		}
		free(buf);
		nck_catalog_close(cat);
	}
	nck_container_close(c);
	return 0;
}
