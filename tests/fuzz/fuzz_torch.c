/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the torch.save reader (src/format/torch.c) and,
 * through it, the zip and pickle readers. An input that starts like a zip is
 * read as a whole torch.save file; any other input becomes the data.pkl of
 * an archive with four storage records (16, 64, 256 and 1024 bytes), so the
 * fuzzer reaches the tensor walk and its checks quickly. Every accepted
 * tensor is re-checked independently: known dtype, ndim within bounds, and
 * its largest element inside its storage record inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/format/fmtbuild.h"
#include "format/torch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Traps unless tensor t addresses only bytes of its storage record inside [0, total). */
static void fuzz_check_tensor(const nck_torch_tensor *t, uint64_t total)
{
	size_t es = nck_dtype_size(t->dtype);
	unsigned __int128 last = t->storage_offset;
	bool empty = false;

	if (es == 0 || t->ndim > NCK_MAX_DIMS || !t->key || !t->storage_key)
		__builtin_trap();
	if (t->storage_data > total || t->storage_bytes > total - t->storage_data)
		__builtin_trap();
	for (uint32_t d = 0; d < t->ndim; d++) {
		if (t->stride[d] < 0)
			__builtin_trap();
		empty = empty || t->shape[d] == 0;
	}
	for (uint32_t d = 0; d < t->ndim && !empty; d++)
		last += (unsigned __int128)(t->shape[d] - 1) * (uint64_t)t->stride[d];
	if (!empty && (last + 1) * es > t->storage_bytes)
		__builtin_trap();
}

/* Opens `len` bytes at `buf` as a torch.save file and checks its tensors. */
static void fuzz_open(const uint8_t *buf, size_t len)
{
	nck_torch_file *f = NULL;
	nck_src *src = NULL;
	nck_diag diag;

	nck_diag_init(&diag);
	if (nck_src_new_mem(&src, buf, len, "fuzz.pt") < 0)
		return;
	if (nck_torch_open(&f, src, 0, len, &diag) == 0) {
		for (size_t i = 0; i < f->n_tensors; i++)
			fuzz_check_tensor(&f->tensors[i], len);
		nck_torch_file_free(f);
	} else if (f || diag.code == 0) {
		__builtin_trap();
	}
	nck_src_close(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[4] = { 16, 64, 256, 1024 };
	zipbuild z = { 0 };

	if (size >= 4 && memcmp(data, "PK\x03\x04", 4) == 0) {
		fuzz_open(data, size);
		return 0;
	}
	if (size > 16384)
		return 0;
	zb_torch(&z, "archive", data, size, sizes, 4);
	fuzz_open(z.buf, z.len);
	free(z.buf);
	return 0;
}
