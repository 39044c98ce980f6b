/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the DCP .metadata reader (restricted pickle VM plus
 * the Metadata/TensorStorageMetadata/storage_data walk).
 */
#include <stddef.h>
#include <stdint.h>

#include "format/dcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_dcp *d = NULL;

	if (nck_dcp_parse(&d, data, size, "fuzz.metadata", NULL) == 0) {
		for (size_t i = 0; i < d->n_tensors; i++)
			for (size_t c = 0; c < d->tensors[i].n_chunks; c++)
				for (uint32_t k = 0; k < d->tensors[i].ndim; k++)
					if (d->tensors[i].chunks[c].offsets[k] >= d->tensors[i].size[k] &&
					    d->tensors[i].chunks[c].sizes[k] > 0)
						__builtin_trap();
		nck_dcp_free(d);
	}
	return 0;
}
