/* SPDX-License-Identifier: MIT */
/*
 * Tar reader: indexes a plain (uncompressed) tar archive through libarchive,
 * which already knows POSIX.1-2001 PAX records, GNU long names and base-256
 * sizes, ustar prefix fields and old v7 headers.
 *
 * libarchive reads only the headers: its read callback serves 64 KiB blocks
 * by pread(2) from the nck_src, and its skip callback moves our cursor over
 * member data without reading it, so indexing a 100 GB archive touches only
 * a few bytes per member. After each header the format layer's stream
 * position (archive_filter_bytes(a, 0)) is the member's data offset in the
 * file, which later reads use directly. Over a gzip file the source is the
 * decompressed stream (io/gzindex.h): skips stay logical, since every read
 * is positional, and offsets are offsets in that stream.
 *
 * Spec: POSIX pax/ustar, GNU tar "Basic Tar Format"; CPython tarfile as used
 * by NeMo (../shared/spec/nemo-layouts.md §1.3, §1.4).
 * Thread-safety: runs once, on one thread, while a mount is built.
 */
#include "container/container.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/remote.h"
#include "nemockpt/log.h"
#include "util/ckd.h"

/* Read sizes: right after a skip over member data the next read is one
 * small block (a header, or a PAX record and its header); consecutive reads
 * (runs of small members) double up to TAR_BLOCK. So indexing costs about
 * 4 KiB per large member, whatever its size.
 *
 * Over a remote source every byte is fetched: there the first read after a
 * skip is as long as the shorter of the last two members' headers were (512
 * bytes for a ustar header, 1,536 for a PAX record and its header as
 * CPython's tarfile.add writes them), at least TAR_RECORD and at most
 * TAR_FIRST_BLOCK. An archive of one kind of header costs one request and
 * no spare byte per member; a member with longer headers than predicted
 * costs one more request (the doubling), and one odd member among others
 * does not change the prediction for the next. */
#define TAR_BLOCK 65536u
#define TAR_FIRST_BLOCK 4096u
#define TAR_RECORD 512u

/* ---- bidding ------------------------------------------------------------- */

/* Parses the octal checksum field of a ustar header (offset 148, 8 bytes). */
static long tar_header_checksum(const unsigned char *h)
{
	long v = 0;
	int i = 148;

	while (i < 156 && (h[i] == ' ' || h[i] == '\0'))
		i++;
	for (; i < 156 && h[i] >= '0' && h[i] <= '7'; i++)
		v = v * 8 + (h[i] - '0');
	return v;
}

/* Sum of the header bytes with the checksum field counted as spaces. */
static long tar_header_sum(const unsigned char *h)
{
	long sum = 0;

	for (int i = 0; i < 512; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum;
}

/* 30: checksum and "ustar" magic; 20: checksum only (v7); 10: a zero block
 * (an empty archive, as Python writes it); 0 otherwise. */
static int tar_bid(const unsigned char *head, size_t len, bool is_dir)
{
	size_t i;

	if (is_dir || len < TAR_RECORD)
		return 0;
	for (i = 0; i < TAR_RECORD && head[i] == 0; i++)
		;
	if (i == TAR_RECORD)
		return 10;
	if (tar_header_checksum(head) != tar_header_sum(head))
		return 0;
	return memcmp(head + 257, "ustar", 5) == 0 ? 30 : 20;
}

/* ---- libarchive callbacks ------------------------------------------------- */

typedef struct tar_stream {
	const nck_src *src;
	uint64_t pos;   /* next byte libarchive gets */
	size_t block;   /* size of the next read */
	size_t first;   /* size of the first read after a skip */
	uint64_t last_need; /* the previous member's header bytes (remote) */
	bool remote;    /* fetched over the network: size `first` to the headers */
	unsigned char buf[TAR_BLOCK];
} tar_stream;

/* Serves the next block; 0 at the end of the file, -1 on a read error. */
static la_ssize_t tar_cb_read(struct archive *a, void *payload, const void **buf)
{
	tar_stream *s = payload;
	int64_t n = nck_src_pread(s->src, s->buf, s->block, s->pos);

	if (n < 0) {
		archive_set_error(a, EIO, "read failed");
		return -1;
	}
	s->pos += (uint64_t)n;
	if (s->block < TAR_BLOCK)
		s->block *= 2;
	*buf = s->buf;
	return (la_ssize_t)n;
}

/* Moves over member data without reading it; never past the end of the file,
 * so libarchive itself reports a truncated archive. */
static la_int64_t tar_cb_skip(struct archive *a, void *payload, la_int64_t request)
{
	tar_stream *s = payload;
	uint64_t left = nck_src_size(s->src) - s->pos;
	uint64_t n = request < 0 ? 0 : (uint64_t)request;

	(void)a;
	if (n > left)
		n = left;
	s->pos += n;
	s->block = s->first;
	return (la_int64_t)n;
}

/* Over a remote source: the first read after the next skip is as long as
 * the shorter headers of the member just read (from `hdr_pos` to its data)
 * and of the one before it. */
static void tar_learn_headers(tar_stream *s, uint64_t hdr_pos, int64_t data_off)
{
	uint64_t cur, need;

	if (!s->remote || data_off < 0 || (uint64_t)data_off < hdr_pos)
		return;
	cur = ((uint64_t)data_off - hdr_pos + TAR_RECORD - 1) / TAR_RECORD * TAR_RECORD;
	need = s->last_need && s->last_need < cur ? s->last_need : cur;
	s->last_need = cur;
	s->first = need < TAR_RECORD ? TAR_RECORD : need > TAR_FIRST_BLOCK ? TAR_FIRST_BLOCK : need;
}

/* ---- indexing ------------------------------------------------------------- */

/* Logs why a member is left out and counts it. */
static void tar_skip_member(nck_container *c, uint64_t off, const char *name, const char *why)
{
	nck_log(NCK_LOG_WARN, "%s: offset %llu: member '%s' left out: %s", c->path,
		(unsigned long long)off, name, why);
	c->n_skipped++;
}

/* Records one header's entry, or leaves it out with a warning. */
static int tar_add_entry(nck_container *c, struct archive *a, struct archive_entry *ae,
			 uint64_t hdr_pos, nck_diag *diag)
{
	const char *name = archive_entry_pathname_utf8(ae);
	mode_t type = archive_entry_filetype(ae);
	int64_t data_off = archive_filter_bytes(a, 0);
	int64_t size = archive_entry_size(ae);
	const char *path = NULL;
	uint64_t end = 0;
	nck_entry *e;
	int rc;

	if (!name)
		name = archive_entry_pathname(ae);
	if (!name)
		return tar_skip_member(c, hdr_pos, "?", "name is not readable"), 0;
	if (archive_entry_hardlink(ae))
		return tar_skip_member(c, hdr_pos, name, "hard links are never followed"), 0;
	if (type == AE_IFLNK)
		return tar_skip_member(c, hdr_pos, name, "symbolic links are never followed"), 0;
	if (type != AE_IFREG && type != AE_IFDIR)
		return tar_skip_member(c, hdr_pos, name, "not a regular file or directory"), 0;
	if (type == AE_IFREG && archive_entry_sparse_count(ae) > 0)
		return tar_skip_member(c, hdr_pos, name, "sparse members are not supported"), 0;
	rc = nck_container_path_normalize(&path, &c->arena, name);
	if (rc == -EPERM)
		return tar_skip_member(c, hdr_pos, name, "absolute name or '..' component"), 0;
	if (rc == -ENAMETOOLONG)
		return tar_skip_member(c, hdr_pos, name, "a name component is over 255 bytes"), 0;
	if (rc == -ENOMEM)
		return nck_diag_set(diag, rc, c->path, -1, "out of memory");
	if (rc == 1 && type == AE_IFREG)
		return tar_skip_member(c, hdr_pos, name, "a regular file named like the root"), 0;
	if (rc == 1)
		return 0; /* the "./" root entry */
	if (type == AE_IFREG) {
		if (size < 0 || data_off < 0 || !nck_ckd_add64(&end, (uint64_t)data_off, (uint64_t)size) ||
		    end > nck_src_size(c->src))
			return nck_diag_set(diag, -EBADMSG, c->path, data_off,
					    "member '%s' (%lld bytes) runs past the end of the file",
					    name, (long long)size);
	}
	e = nck_container_add(c);
	if (!e)
		return nck_container_add_error(c, diag);
	e->path = path;
	e->kind = type == AE_IFDIR ? NCK_ENTRY_DIR : NCK_ENTRY_FILE;
	e->mode = (uint32_t)archive_entry_perm(ae);
	e->mtime_sec = archive_entry_mtime_is_set(ae) ? (int64_t)archive_entry_mtime(ae) : 0;
	e->mtime_nsec = archive_entry_mtime_is_set(ae) ? (uint32_t)archive_entry_mtime_nsec(ae) : 0;
	e->size = type == AE_IFREG ? (uint64_t)size : 0;
	e->offset = (uint64_t)data_off;
	return 0;
}

/* Where the header after a member starts: data rounded up to 512 bytes. */
static uint64_t tar_next_header(uint64_t data_off, uint64_t size)
{
	uint64_t end = data_off + size;

	return end + (TAR_RECORD - end % TAR_RECORD) % TAR_RECORD;
}

static int tar_open(nck_container *c, nck_diag *diag)
{
	struct archive *a = NULL;
	struct archive_entry *ae;
	tar_stream *s = NULL;
	uint64_t hdr_pos = 0;
	int rc = 0, r;

	s = calloc(1, sizeof(*s));
	a = archive_read_new();
	if (!s || !a) {
		rc = nck_diag_set(diag, -ENOMEM, c->path, -1, "out of memory");
		goto out;
	}
	s->src = c->src;
	s->remote = nck_src_is_remote(c->src);
	s->first = s->remote ? TAR_RECORD : TAR_FIRST_BLOCK;
	s->block = TAR_FIRST_BLOCK;
	archive_read_support_format_tar(a);
	archive_read_set_read_callback(a, tar_cb_read);
	archive_read_set_skip_callback(a, tar_cb_skip);
	archive_read_set_callback_data(a, s);
	if (archive_read_open1(a) != ARCHIVE_OK) {
		rc = nck_diag_set(diag, -EBADMSG, c->path, 0, "not a tar archive: %s",
				  archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
		if (r == ARCHIVE_FATAL || r == ARCHIVE_RETRY || r == ARCHIVE_FAILED) {
			const char *why = archive_error_string(a);

			rc = nck_diag_set(diag, -EBADMSG, c->path, (int64_t)hdr_pos, "bad tar header: %s",
					  why ? why : "unreadable");
			goto out;
		}
		if (r == ARCHIVE_WARN)
			nck_log(NCK_LOG_WARN, "%s: offset %llu: %s", c->path,
				(unsigned long long)hdr_pos, archive_error_string(a));
		if ((rc = tar_add_entry(c, a, ae, hdr_pos, diag)) < 0)
			goto out;
		tar_learn_headers(s, hdr_pos, archive_filter_bytes(a, 0));
		if (archive_entry_filetype(ae) == AE_IFREG && archive_entry_size(ae) > 0)
			hdr_pos = tar_next_header((uint64_t)archive_filter_bytes(a, 0),
						  (uint64_t)archive_entry_size(ae));
		else
			hdr_pos = (uint64_t)archive_filter_bytes(a, 0);
	}
out:
	if (a)
		archive_read_free(a);
	free(s);
	return rc;
}

const nck_container_ops nck_container_tar_ops = {
	.version = NCK_CONTAINER_OPS_VERSION,
	.name = "tar",
	.bid = tar_bid,
	.open = tar_open,
};
