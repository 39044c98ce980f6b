/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the zarr v2 `.zarray` reader and the chunk-key
 * writer. An accepted array must have a consistent grid, and the keys of
 * its first and last chunks must be formatted (or refused as too long for
 * a small buffer) without overrunning.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "format/zarr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t first[NCK_MAX_DIMS] = { 0 }, last[NCK_MAX_DIMS] = { 0 };
	char key[NCK_MAX_DIMS * 21 + 1], small[6];
	nck_zarr_array a;
	nck_diag diag;
	bool empty = false;
	int rc;

	nck_diag_init(&diag);
	if (nck_zarr_parse(&a, data, size, "fuzz/.zarray", &diag) < 0) {
		if (diag.code == 0)
			__builtin_trap();
		return 0;
	}
	if (a.ndim > NCK_MAX_DIMS || a.order != 'C' || (a.dim_sep != '.' && a.dim_sep != '/'))
		__builtin_trap();
	for (uint32_t i = 0; i < a.ndim; i++) {
		if (a.chunks[i] == 0 || a.grid[i] * a.chunks[i] < a.shape[i])
			__builtin_trap();
		empty |= a.grid[i] == 0;
		last[i] = a.grid[i] ? a.grid[i] - 1 : 0;
	}
	rc = nck_zarr_chunk_key(key, sizeof(key), &a, first);
	if (rc != 0 && !(empty && rc == -EINVAL))
		__builtin_trap();
	rc = nck_zarr_chunk_key(key, sizeof(key), &a, last);
	if (rc != 0 && !(empty && rc == -EINVAL))
		__builtin_trap();
	rc = nck_zarr_chunk_key(small, sizeof(small), &a, last);
	if (rc != 0 && rc != -ENAMETOOLONG && rc != -EINVAL)
		__builtin_trap();
	return 0;
}
