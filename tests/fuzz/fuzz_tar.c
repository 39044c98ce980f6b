/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the container layer: detection by bidding and the tar
 * indexer (libarchive header walk, name normalization, bounds checks) over
 * arbitrary bytes in memory.
 */
#include <stddef.h>
#include <stdint.h>

#include "container/container.h"
#include "nemockpt/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_container *c = NULL;
	nck_src *src = NULL;
	nck_diag diag;

	nck_log_init("fuzz_tar", NCK_LOG_ERROR); /* warnings about members are noise here */
	nck_diag_init(&diag);
	if (nck_src_new_mem(&src, data, size, "fuzz.tar") < 0)
		return 0;
	if (nck_container_open_src_take(&c, src, &diag) == 0) {
		/* Every accepted member must lie inside the input. */
		for (size_t i = 0; i < c->n_entries; i++)
			if (c->entries[i].kind == NCK_ENTRY_FILE &&
			    (c->entries[i].offset > size || c->entries[i].size > size - c->entries[i].offset))
				__builtin_trap();
		nck_container_close(c);
	}
	return 0;
}
