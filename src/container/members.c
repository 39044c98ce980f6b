/* SPDX-License-Identifier: MIT */
/*
 * The member table of a gzip-compressed tar, persisted next to its seek
 * index (`<index>.members`), so that a later mount of the same archive (same
 * content fingerprint, hence same index path) needs no tar walk and so
 * decompresses nothing at all.
 *
 * Format (little-endian): "NCKMEMB1", u32 version, u32 count, u64 skipped,
 * u64 stream size; then per entry: u8 kind, u32 mode, s64 mtime, u32 nsec,
 * u64 size, u64 offset, u32 path length, path bytes; then a u32 CRC-32 of
 * everything before it. Loading checks the CRC, every bound (offset + size
 * within the decompressed stream), and that each path is already
 * normalized; anything off means "walk the tar again", never a crash.
 *
 * Thread-safety: runs while a container is opened.
 */
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "nemockpt/log.h"

#define MEMB_MAGIC "NCKMEMB1"
#define MEMB_VERSION 1u
#define MEMB_HEAD 32u /* magic 8, version 4, count 4, skipped 8, stream size 8 */
#define MEMB_ENTRY 37u /* fixed part of an entry */
#define MEMB_MAX_BYTES (256u << 20)

/* Appends `n` little-endian bytes of `v`. */
static void memb_put(unsigned char **p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		*(*p)++ = (unsigned char)(v >> (8 * i));
}

/* Reads `n` little-endian bytes. */
static uint64_t memb_get(const unsigned char **p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)(*p)[i] << (8 * i);
	*p += n;
	return v;
}

int nck_members_save(const nck_container *c, const char *path)
{
	size_t len = MEMB_HEAD + 4;
	unsigned char *buf, *p;
	char tmp[1100];
	int fd, rc = 0;

	for (size_t i = 0; i < c->n_entries; i++)
		len += MEMB_ENTRY + strlen(c->entries[i].path);
	if (len > MEMB_MAX_BYTES || c->n_entries > UINT32_MAX)
		return -E2BIG;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	p = buf;
	memcpy(p, MEMB_MAGIC, 8);
	p += 8;
	memb_put(&p, MEMB_VERSION, 4);
	memb_put(&p, c->n_entries, 4);
	memb_put(&p, c->n_skipped, 8);
	memb_put(&p, nck_src_size(c->src), 8);
	for (size_t i = 0; i < c->n_entries; i++) {
		const nck_entry *e = &c->entries[i];
		size_t pl = strlen(e->path);

		memb_put(&p, e->kind, 1);
		memb_put(&p, e->mode, 4);
		memb_put(&p, (uint64_t)e->mtime_sec, 8);
		memb_put(&p, e->mtime_nsec, 4);
		memb_put(&p, e->size, 8);
		memb_put(&p, e->offset, 8);
		memb_put(&p, pl, 4);
		memcpy(p, e->path, pl);
		p += pl;
	}
	memb_put(&p, crc32(0, buf, (uInt)(len - 4)), 4);
	/* Atomic: a temp file in the same directory, then rename. */
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) < 0)
		rc = -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	free(buf);
	return rc;
}

/* Checks and copies one entry; -EBADMSG if anything is off. */
static int memb_entry(nck_container *c, const unsigned char **p, const unsigned char *end,
		      uint64_t stream)
{
	nck_entry *e;
	const char *norm;
	uint64_t size, off, pl, end_off;
	char *path;
	int kind;

	if (end - *p < (ptrdiff_t)MEMB_ENTRY)
		return -EBADMSG;
	kind = (int)memb_get(p, 1);
	e = nck_container_add(c);
	if (!e)
		return -ENOMEM;
	e->kind = kind == NCK_ENTRY_DIR ? NCK_ENTRY_DIR : NCK_ENTRY_FILE;
	e->mode = (uint32_t)memb_get(p, 4) & 07777;
	e->mtime_sec = (int64_t)memb_get(p, 8);
	e->mtime_nsec = (uint32_t)memb_get(p, 4);
	size = memb_get(p, 8);
	off = memb_get(p, 8);
	pl = memb_get(p, 4);
	if ((kind != NCK_ENTRY_DIR && kind != NCK_ENTRY_FILE) || e->mtime_nsec >= 1000000000u ||
	    pl == 0 || pl > 4096 || (uint64_t)(end - *p) < pl ||
	    __builtin_add_overflow(off, size, &end_off) || end_off > stream)
		return -EBADMSG;
	path = nck_arena_strndup(&c->arena, (const char *)*p, (size_t)pl);
	if (!path)
		return -ENOMEM;
	*p += pl;
	/* Only names the tar walk itself would have produced. */
	if (strlen(path) != pl || nck_container_path_normalize(&norm, &c->arena, path) != 0 ||
	    strcmp(norm, path) != 0)
		return -EBADMSG;
	e->path = path;
	e->size = e->kind == NCK_ENTRY_FILE ? size : 0;
	e->offset = off;
	return 0;
}

int nck_members_load(nck_container *c, const char *path)
{
	const unsigned char *p, *end;
	unsigned char *buf = NULL;
	uint64_t count, stream;
	struct stat st;
	int fd, rc = -EBADMSG;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)(MEMB_HEAD + 4) ||
	    st.st_size > (off_t)MEMB_MAX_BYTES)
		goto out;
	buf = malloc((size_t)st.st_size);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
		goto out;
	end = buf + st.st_size - 4;
	p = end;
	if (memcmp(buf, MEMB_MAGIC, 8) != 0 ||
	    memb_get(&p, 4) != crc32(0, buf, (uInt)(st.st_size - 4)))
		goto out;
	p = buf + 8;
	if (memb_get(&p, 4) != MEMB_VERSION)
		goto out;
	count = memb_get(&p, 4);
	c->n_skipped = (size_t)memb_get(&p, 8);
	stream = memb_get(&p, 8);
	if (stream != nck_src_size(c->src))
		goto out;
	for (uint64_t i = 0; i < count; i++)
		if ((rc = memb_entry(c, &p, end, stream)) < 0)
			goto out;
	rc = p == end ? 0 : -EBADMSG;
out:
	if (rc < 0)
		c->n_entries = 0; /* partial tables are never used */
	close(fd);
	free(buf);
	return rc;
}
