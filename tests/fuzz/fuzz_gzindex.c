/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the gzip seek index (io/gzindex.h). The first byte
 * picks what the rest is:
 *   even: a gzip file: build its index (64 KiB spacing), then read a few
 *         ranges through the cached gz source and check their lengths;
 *   odd:  a persisted index file: load it, taking the archive size and
 *         fingerprint it claims, and read through it when the input is long
 *         enough to stand in for that archive.
 * Every failure must be a clean error code: no crash, leak or overflow.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "io/gzindex.h"
#include "nemockpt/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a few ranges of `src` and checks the lengths it reports. */
static void fuzz_reads(const nck_src *src, const uint8_t *data, size_t size)
{
	static unsigned char buf[1 << 17];
	uint64_t total = nck_src_size(src);

	for (size_t i = 0; i < 4 && total > 0; i++) {
		uint64_t off = (i < size ? data[i] : i) * (total / 256 + 1) % total;
		size_t len = (size_t)(i * 40000 + 1);
		int64_t n = nck_src_pread(src, buf, len, off);

		if (n >= 0 && (uint64_t)n != (len < total - off ? len : total - off))
			__builtin_trap();
	}
}

/* Little-endian u64 at `p`. */
static uint64_t fuzz_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_gz_index *idx = NULL;
	nck_src *file = NULL, *gz = NULL, *ifile = NULL;

	nck_log_init("fuzz_gzindex", NCK_LOG_ERROR);
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		if (nck_src_new_mem(&file, data + 1, size - 1, "fuzz.gz") < 0)
			return 0;
		if (nck_gz_index_build(&idx, file, 65536, NULL) < 0) {
			nck_src_close(file);
			return 0;
		}
	} else {
		uint64_t csize = size >= 41 ? fuzz_u64(data + 1 + 24) : 0;
		uint64_t fp = size >= 41 ? fuzz_u64(data + 1 + 16) : 0;

		if (nck_src_new_mem(&ifile, data + 1, size - 1, "fuzz.gzidx") < 0)
			return 0;
		if (nck_gz_index_load(&idx, ifile, csize, fp, NULL) < 0 || csize > size - 1 ||
		    nck_src_new_mem(&file, data + 1, (size_t)csize, "fuzz.gz") < 0) {
			nck_gz_index_free(idx);
			nck_src_close(ifile);
			return 0;
		}
		nck_src_close(ifile);
	}
	/* A tiny cache, so that eviction and the uncached path run too. */
	if (nck_src_new_gz_take(&gz, file, idx, 1 << 18) == 0) {
		fuzz_reads(gz, data, size);
		nck_src_close(gz);
	}
	return 0;
}
