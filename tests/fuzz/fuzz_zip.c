/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the zip reader (src/format/zip.c): end-record scan,
 * ZIP64 records and extras, central directory, local headers, over arbitrary
 * bytes in memory. The first byte also picks an inner range, as a DCP blob
 * inside a larger file would be. Checks that every entry lies inside the
 * range, that lookups find what the directory lists, and that a stored read
 * returns the bytes at data_offset.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/torchzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Opens [base, base + len) and checks the invariants of the result. */
static void fuzz_range(const nck_src *src, const uint8_t *data, uint64_t base, uint64_t len)
{
	nck_zip *zip = NULL;
	nck_diag diag;

	nck_diag_init(&diag);
	if (nck_zip_open(&zip, src, base, len, &diag) < 0) {
		if (zip || diag.code == 0)
			__builtin_trap();
		return;
	}
	for (size_t i = 0; i < zip->n_entries; i++) {
		const nck_zip_entry *e = &zip->entries[i];
		const char *slash = strchr(e->name, '/');
		void *buf = NULL;

		if (e->data_offset < base || e->data_offset > base + len ||
		    e->comp_size > base + len - e->data_offset)
			__builtin_trap();
		if (!nck_zip_find(zip, e->name) ||
		    strcmp(nck_zip_find(zip, e->name)->name, e->name))
			__builtin_trap();
		if (slash && *zip->prefix &&
		    strncmp(e->name, zip->prefix, strlen(zip->prefix)) == 0 &&
		    e->name[strlen(zip->prefix)] == '/' &&
		    !nck_zip_find_rel(zip, e->name + strlen(zip->prefix) + 1))
			__builtin_trap();
		if (nck_zip_read(&buf, zip, e, 1 << 20, NULL) == 0) {
			if (memcmp(buf, data + e->data_offset, (size_t)e->size) != 0)
				__builtin_trap();
			free(buf);
		}
	}
	nck_zip_free(zip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_src *src = NULL;

	if (nck_src_new_mem(&src, data, size, "fuzz.zip") < 0)
		return 0;
	fuzz_range(src, data, 0, size);
	if (size > 2) {
		uint64_t skip = data[0] % 8;

		if (skip < size)
			fuzz_range(src, data, skip, size - skip);
	}
	nck_src_close(src);
	return 0;
}
