/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the persisted member table of gzip archives
 * (container/members.c): arbitrary bytes as the cache file, loaded into a
 * container over a 64 KiB stream. Every accepted entry must lie inside it.
 * Inputs of a table's size get the stream size and CRC-32 patched in, so
 * that mutations reach the entry parser instead of stopping at the CRC.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "container/container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char stream[65536]; /* zeros: an empty tar archive */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy = NULL;
	char path[64];
	nck_container *c = NULL;
	nck_src *src = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/fuzz_members.%d", (int)getpid());
	f = fopen(path, "wb");
	if (!f)
		return 0;
	if (size >= 36 && (copy = malloc(size)) != NULL) {
		uint32_t crc;

		memcpy(copy, data, size);
		for (int i = 0; i < 8; i++) /* stream size field: offset 24 */
			copy[24 + i] = (unsigned char)((uint64_t)sizeof(stream) >> (8 * i));
		crc = (uint32_t)crc32(0, copy, (uInt)(size - 4));
		for (int i = 0; i < 4; i++)
			copy[size - 4 + i] = (unsigned char)(crc >> (8 * i));
		data = copy;
	}
	if (size)
		fwrite(data, 1, size, f);
	fclose(f);
	free(copy);
	if (nck_src_new_mem(&src, stream, sizeof(stream), "stream") == 0 &&
	    nck_container_open_src_take(&c, src, NULL) == 0) {
		if (nck_members_load(c, path) == 0)
			for (size_t i = 0; i < c->n_entries; i++)
				if (c->entries[i].offset > sizeof(stream) ||
				    c->entries[i].size > sizeof(stream) - c->entries[i].offset)
					__builtin_trap();
		nck_container_close(c);
	}
	unlink(path);
	return 0;
}
