/* SPDX-License-Identifier: MIT */
/*
 * Compressed tarballs: recognized by their magic numbers and refused with a
 * clear message. gzip-compressed .nemo files (NeMo <= 1.6) get random access
 * through a seek index in a later change (TODO(#6)); bzip2, xz and zstd are
 * not produced by any NeMo version.
 *
 * Thread-safety: pure functions.
 */
#include "container/container.h"

#include <errno.h>
#include <string.h>

static const struct compressed_magic {
	const char *name;
	unsigned char magic[6];
	size_t len;
} compressed_magics[] = {
	{ "gzip", { 0x1f, 0x8b }, 2 },
	{ "bzip2", { 'B', 'Z', 'h' }, 3 },
	{ "xz", { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6 },
	{ "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4 },
};

/* Returns the compression whose magic starts `head`, or NULL. */
static const struct compressed_magic *compressed_find(const unsigned char *head, size_t len)
{
	for (size_t i = 0; i < sizeof(compressed_magics) / sizeof(compressed_magics[0]); i++) {
		const struct compressed_magic *m = &compressed_magics[i];

		if (len >= m->len && memcmp(head, m->magic, m->len) == 0)
			return m;
	}
	return NULL;
}

/* 40: a known compression magic (outbids tar, whose headers cannot start so). */
static int compressed_bid(const unsigned char *head, size_t len, bool is_dir)
{
	return !is_dir && compressed_find(head, len) ? 40 : 0;
}

static int compressed_open(nck_container *c, nck_diag *diag)
{
	unsigned char head[8];
	int64_t n = nck_src_pread(c->src, head, sizeof(head), 0);
	const struct compressed_magic *m = n > 0 ? compressed_find(head, (size_t)n) : NULL;

	return nck_diag_set(diag, -ENOTSUP, c->path, 0,
			    "%s-compressed archive: not supported yet; decompress it first "
			    "(for example with '%s -dc')",
			    m ? m->name : "unknown", m ? m->name : "gzip");
}

const nck_container_ops nck_container_compressed_ops = {
	.version = NCK_CONTAINER_OPS_VERSION,
	.name = "compressed",
	.bid = compressed_bid,
	.open = compressed_open,
};
