/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the safetensors header reader over a memory nck_src.
 * The input is parsed twice: as a whole file, and as a member at offset 3
 * of a larger source (so absolute offsets are exercised). Every accepted
 * tensor must lie inside the range, be sorted by name and findable, and
 * have size = prod(shape) * element size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Traps unless every tensor of f is consistent and inside [base, base + len). */
static void fuzz_st_check(const nck_st_file *f, uint64_t base, uint64_t len)
{
	uint64_t data_start = base + 8 + f->header_len, end = base + len;

	if (f->data_start != data_start || data_start > end)
		__builtin_trap();
	for (size_t i = 0; i < f->n_tensors; i++) {
		const nck_st_tensor *t = &f->tensors[i];
		uint64_t n = nck_dtype_size(t->dtype);

		for (uint32_t k = 0; k < t->ndim; k++)
			n *= t->shape[k];
		if (t->ndim > NCK_MAX_DIMS || n != t->size || t->data_offset < data_start ||
		    t->data_offset > end || t->size > end - t->data_offset)
			__builtin_trap();
		if (i > 0 && strcmp(f->tensors[i - 1].name, t->name) >= 0)
			__builtin_trap();
		if (nck_st_find(f, t->name) != t)
			__builtin_trap();
	}
}

/* Parses [base, base + len) of src and checks the result. */
static void fuzz_st_one(const nck_src *src, uint64_t base, uint64_t len)
{
	nck_st_file *f = NULL;
	nck_diag diag;

	nck_diag_init(&diag);
	if (nck_st_open(&f, src, base, len, &diag) == 0) {
		fuzz_st_check(f, base, len);
		nck_st_file_free(f);
	} else if (f != NULL || diag.code == 0) {
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_src *src = NULL;
	uint8_t *shifted;

	if (nck_src_new_mem(&src, data, size, "fuzz.safetensors") < 0)
		return 0;
	fuzz_st_one(src, 0, size);
	nck_src_close(src);
	/* The same bytes as a member: 3 bytes of junk before, 5 after. */
	shifted = malloc(size + 8);
	if (!shifted)
		return 0;
	memset(shifted, 0x5a, size + 8);
	if (size)
		memcpy(shifted + 3, data, size);
	if (nck_src_new_mem(&src, shifted, size + 8, "fuzz-member.safetensors") == 0) {
		fuzz_st_one(src, 3, size);
		nck_src_close(src);
	}
	free(shifted);
	return 0;
}
