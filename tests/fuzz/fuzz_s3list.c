/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for ListObjectsV2 pages (io/s3list.c): the input is
 * parsed as two pages in a row (split at its middle), as a truncated
 * listing followed by its continuation would be. Every failure must be a
 * clean error code; every object parsed must have a key.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/s3_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_s3_page *p = nck_s3_page_new();

	if (!p)
		return 0;
	if (nck_s3_parse_page(p, (const char *)data, size / 2) == 0)
		(void)nck_s3_parse_page(p, (const char *)data + size / 2, size - size / 2);
	if (nck_s3_page_count(p) > size)
		abort(); /* each object needs bytes of input */
	nck_s3_page_free(p);
	return 0;
}
