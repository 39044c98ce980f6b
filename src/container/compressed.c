/* SPDX-License-Identifier: MIT */
/*
 * Compressed tarballs. gzip (NeMo <= 1.6 .nemo, CPython tarfile "w:gz";
 * NeMo 2.0-2.1 .qnemo) is read through a seek index: the file becomes a
 * source of its decompressed stream (io/gzindex.h), and the tar reader
 * indexes that stream as it would a plain tar. bzip2, xz and zstd are
 * recognized by their magic numbers and refused with a clear message: no
 * NeMo version writes them.
 *
 * Thread-safety: bids are pure functions; open runs once, on one thread.
 */
#include "container/container.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "nemockpt/log.h"

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

/* ---- refused compressions ------------------------------------------------------ */

/* 40: a known compression magic (outbids tar, whose headers cannot start
 * so), except gzip with deflate, which gztar_bid takes. */
static int compressed_bid(const unsigned char *head, size_t len, bool is_dir)
{
	const struct compressed_magic *m = is_dir ? NULL : compressed_find(head, len);

	if (m && strcmp(m->name, "gzip") == 0 && len >= 3 && head[2] == 8)
		return 0;
	return m ? 40 : 0;
}

static int compressed_open(nck_container *c, nck_diag *diag)
{
	unsigned char head[8];
	int64_t n = nck_src_pread(c->src, head, sizeof(head), 0);
	const struct compressed_magic *m = n > 0 ? compressed_find(head, (size_t)n) : NULL;

	return nck_diag_set(diag, -ENOTSUP, c->path, 0,
			    "%s-compressed archive: not supported yet; decompress it first "
			    "(for example with '%s -dc')",
			    m ? m->name : "unknown", m ? m->name : "xz");
}

const nck_container_ops nck_container_compressed_ops = {
	.version = NCK_CONTAINER_OPS_VERSION,
	.name = "compressed",
	.bid = compressed_bid,
	.open = compressed_open,
};

/* ---- gzip ------------------------------------------------------------------------ */

/* 40: the gzip magic and deflate as the method (RFC 1952 §2.3.1: CM = 8). */
static int gztar_bid(const unsigned char *head, size_t len, bool is_dir)
{
	return !is_dir && len >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8 ? 40 : 0;
}

/* The checkpoint spacing: the option, else $NEMOCKPT_GZ_SPACING (tests use
 * small spacings to get many checkpoints from small files), else default. */
static uint64_t gztar_spacing(const nck_container *c)
{
	const char *env = getenv("NEMOCKPT_GZ_SPACING");
	char *end = NULL;
	unsigned long long v;

	if (c->opts.gz_spacing)
		return c->opts.gz_spacing;
	if (!env || !*env)
		return 0;
	v = strtoull(env, &end, 10);
	return end && *end == '\0' ? (uint64_t)v : 0;
}

/* The member table: from the cache next to a loaded index (no tar walk, so
 * nothing is decompressed), else by walking the tar headers in the
 * decompressed stream, then saved for the next mount. */
static int gztar_members(nck_container *c, nck_diag *diag)
{
	char path[1100];
	int rc;

	if (!c->gz.index_path[0])
		return nck_container_tar_ops.open(c, diag);
	snprintf(path, sizeof(path), "%s.members", c->gz.index_path);
	if (c->gz.loaded) {
		rc = nck_members_load(c, path);
		if (rc == 0) {
			c->members_loaded = true;
			return 0;
		}
		if (rc == -ENOMEM)
			return nck_diag_set(diag, rc, c->path, -1, "out of memory");
		if (rc != -ENOENT)
			nck_log(NCK_LOG_WARN, "%s: member table does not check out: walking the archive",
				path);
	}
	if ((rc = nck_container_tar_ops.open(c, diag)) < 0)
		return rc;
	if ((rc = nck_members_save(c, path)) < 0)
		nck_log(NCK_LOG_WARN, "%s: cannot save the member table: %s", path, strerror(-rc));
	return 0;
}

/* Indexes the gzip file (or loads its index), swaps c->src for the
 * decompressed stream, and gets the member table. */
static int gztar_open(nck_container *c, nck_diag *diag)
{
	nck_gz_opts o = {
		.cache_dir = c->opts.cache_dir,
		.spacing = gztar_spacing(c),
		.no_persist = c->opts.gz_no_persist || nck_src_fd(c->src) < 0,
	};
	nck_gz_index *idx = NULL;
	nck_src *gz = NULL, *file = c->src;
	int rc;

	if ((rc = nck_gz_index_open(&idx, &c->gz, file, &o, diag)) < 0)
		return rc;
	c->src = NULL; /* owned by the gz source now, also on failure */
	if ((rc = nck_src_new_gz_take(&gz, file, idx, c->opts.gz_cache_size)) < 0)
		return nck_diag_set(diag, rc, c->path, -1, "out of memory");
	c->src = gz;
	return gztar_members(c, diag);
}

const nck_container_ops nck_container_gztar_ops = {
	.version = NCK_CONTAINER_OPS_VERSION,
	.name = "tar.gz",
	.bid = gztar_bid,
	.open = gztar_open,
};
