/* SPDX-License-Identifier: MIT */
/*
 * gzip index persistence: fingerprint, cache location, atomic save and
 * verified load (see gzindex.h).
 *
 * File layout (little-endian), version 1:
 *
 *   offset size  field
 *   0      8     magic "NCKGZIX\n"
 *   8      4     version (1)
 *   12     4     header size (80)
 *   16     8     fingerprint of the archive (nck_gz_fingerprint)
 *   24     8     compressed size (bytes of the archive)
 *   32     8     uncompressed size
 *   40     8     spacing the index was built with
 *   48     8     number of points P
 *   56     8     number of windows W
 *   64     4     CRC-32 of the payload
 *   68     8     reserved, zero
 *   76     4     CRC-32 of bytes 0..75
 *   80     32*P  points: in u64, out u64, window u32 (0xffffffff: none),
 *                crc u32 (CRC-32 of the output up to the next point),
 *                bits u8, flags u8, reserved 6 bytes
 *   ...    32768*W windows, oldest byte first
 *
 * The file is named <fingerprint as 16 hex digits>.gzidx, so a moved or
 * copied archive finds its index and a changed one (size, head, tail) does
 * not. Loading checks every field: it never trusts the file.
 * Thread-safety: runs on one thread while a mount is built.
 */
#include "io/gzindex_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/afile.h"
#include "nemockpt/log.h"
#include "util/ckd.h"
#include "util/fnv.h"

#define GZP_MAGIC   "NCKGZIX\n"
#define GZP_VERSION 1u
#define GZP_HEADER  80u
#define GZP_POINT   32u
/* Fingerprint: bytes hashed at each end of the file, and of the output. */
#define GZP_FP_ENDS (1u << 20)
#define GZP_FP_OUT  4096u

/* ---- little-endian fields --------------------------------------------------- */

/* Stores `v` as `n` little-endian bytes. */
static void gzp_put(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Reads `n` little-endian bytes. */
static uint64_t gzp_get(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- fingerprint ---------------------------------------------------------------- */

int nck_gz_fingerprint(uint64_t *out, const nck_src *file)
{
	uint64_t size = nck_src_size(file), h = NCK_FNV1A_INIT;
	size_t n = size < GZP_FP_ENDS ? (size_t)size : GZP_FP_ENDS;
	unsigned char *buf = malloc(GZP_FP_ENDS), dec[GZP_FP_OUT], sz[8];
	z_stream z;
	int rc = -EIO;

	if (!buf)
		return -ENOMEM;
	gzp_put(sz, size, 8);
	h = nck_fnv1a(h, sz, 8);
	if (nck_src_pread(file, buf, n, 0) != (int64_t)n)
		goto out;
	h = nck_fnv1a(h, buf, n);
	/* The first 4 KiB of output (what decompression gives, as far as it goes). */
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) == Z_OK) {
		z.next_in = buf;
		z.avail_in = (uInt)n;
		z.next_out = dec;
		z.avail_out = sizeof(dec);
		(void)inflate(&z, Z_SYNC_FLUSH);
		h = nck_fnv1a(h, dec, sizeof(dec) - z.avail_out);
		inflateEnd(&z);
	}
	if (nck_src_pread(file, buf, n, size - n) != (int64_t)n)
		goto out;
	h = nck_fnv1a(h, buf, n);
	*out = h;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* ---- location ------------------------------------------------------------------- */

int nck_gz_cache_dir(char *buf, size_t size, const char *dir)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (dir && *dir)
		n = snprintf(buf, size, "%s", dir);
	else if (xdg && xdg[0] == '/')
		n = snprintf(buf, size, "%s/nemockpt", xdg);
	else if (geteuid() != 0 && home && home[0] == '/')
		n = snprintf(buf, size, "%s/.cache/nemockpt", home);
	else
		n = snprintf(buf, size, "/var/cache/nemockpt");
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- save ----------------------------------------------------------------------- */

/* Encodes the points; the caller frees the result. */
static unsigned char *gzp_encode_points(const nck_gz_index *idx)
{
	unsigned char *rec = malloc(idx->n_points * GZP_POINT + 1);

	if (!rec)
		return NULL;
	for (size_t i = 0; i < idx->n_points; i++) {
		unsigned char *r = rec + i * GZP_POINT;
		const nck_gz_point *p = &idx->points[i];

		gzp_put(r, p->in, 8);
		gzp_put(r + 8, p->out, 8);
		gzp_put(r + 16, p->window, 4);
		gzp_put(r + 20, p->crc, 4);
		r[24] = p->bits;
		r[25] = p->flags;
		gzp_put(r + 26, 0, 6);
	}
	return rec;
}

/* Fills the header for `idx` with the payload CRC `pcrc`. */
static void gzp_encode_header(unsigned char *h, const nck_gz_index *idx, uint32_t pcrc)
{
	memset(h, 0, GZP_HEADER);
	memcpy(h, GZP_MAGIC, 8);
	gzp_put(h + 8, GZP_VERSION, 4);
	gzp_put(h + 12, GZP_HEADER, 4);
	gzp_put(h + 16, idx->fingerprint, 8);
	gzp_put(h + 24, idx->csize, 8);
	gzp_put(h + 32, idx->usize, 8);
	gzp_put(h + 40, idx->spacing, 8);
	gzp_put(h + 48, idx->n_points, 8);
	gzp_put(h + 56, idx->n_windows, 8);
	gzp_put(h + 64, pcrc, 4);
	gzp_put(h + 76, nck_gz_crc(0, h, 76), 4);
}

int nck_gz_index_save(const nck_gz_index *idx, const char *path, nck_diag *diag)
{
	char dir[1024];
	unsigned char hdr[GZP_HEADER], *rec = NULL;
	const char *slash = strrchr(path, '/');
	size_t wbytes = idx->n_windows * NCK_GZ_WINDOW;
	uint32_t pcrc;
	int rc;

	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return nck_diag_set(diag, -EINVAL, path, -1, "bad index path");
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if ((rc = nck_mkdirs(dir)) < 0)
		return nck_diag_set(diag, rc, dir, -1, "cannot create: %s", strerror(-rc));
	if (!(rec = gzp_encode_points(idx)))
		return nck_diag_set(diag, -ENOMEM, path, -1, "out of memory");
	pcrc = nck_gz_crc(nck_gz_crc(0, rec, idx->n_points * GZP_POINT), idx->windows, wbytes);
	gzp_encode_header(hdr, idx, pcrc);
	{
		nck_apart parts[] = { { hdr, sizeof(hdr) },
				      { rec, idx->n_points * GZP_POINT },
				      { idx->windows, wbytes } };

		rc = nck_afile_write(path, "gzidx", parts, 3, 0644, true);
	}
	free(rec);
	if (rc < 0)
		return nck_diag_set(diag, rc, path, -1, "cannot write: %s", strerror(-rc));
	return 0;
}

/* ---- load ----------------------------------------------------------------------- */

/* Checks the header fields that do not need the payload. */
static int gzp_check_header(const unsigned char *h, const nck_src *f, uint64_t csize,
			    uint64_t fingerprint, nck_diag *diag)
{
	const char *name = nck_src_name(f);
	uint64_t np = gzp_get(h + 48, 8), nw = gzp_get(h + 56, 8), want = 0, part = 0;

	if (memcmp(h, GZP_MAGIC, 8) != 0)
		return nck_diag_set(diag, -EBADMSG, name, 0, "not a nemockpt gzip index");
	if (gzp_get(h + 8, 4) != GZP_VERSION || gzp_get(h + 12, 4) != GZP_HEADER)
		return nck_diag_set(diag, -EBADMSG, name, 8, "index version %u not supported",
				    (unsigned)gzp_get(h + 8, 4));
	if (gzp_get(h + 76, 4) != nck_gz_crc(0, h, 76))
		return nck_diag_set(diag, -EBADMSG, name, 76, "header checksum mismatch");
	if (gzp_get(h + 16, 8) != fingerprint || gzp_get(h + 24, 8) != csize)
		return nck_diag_set(diag, -EBADMSG, name, 16, "index of another archive (stale)");
	if (np == 0 || nw >= NCK_GZ_NO_WINDOW || np > nck_src_size(f) / GZP_POINT ||
	    nw > nck_src_size(f) / NCK_GZ_WINDOW || gzp_get(h + 40, 8) == 0 ||
	    !nck_ckd_add64(&want, GZP_HEADER, np * GZP_POINT) ||
	    !nck_ckd_add64(&part, want, nw * NCK_GZ_WINDOW) || part != nck_src_size(f))
		return nck_diag_set(diag, -EBADMSG, name, 48,
				    "point and window counts do not match the file size");
	return 0;
}

/* Decodes and checks one point against the previous one. */
static int gzp_decode_point(nck_gz_point *p, const unsigned char *r, const nck_gz_point *prev,
			    const nck_gz_index *idx)
{
	p->in = gzp_get(r, 8);
	p->out = gzp_get(r + 8, 8);
	p->window = (uint32_t)gzp_get(r + 16, 4);
	p->crc = (uint32_t)gzp_get(r + 20, 4);
	p->bits = r[24];
	p->flags = r[25];
	if (p->in > idx->csize || p->out > idx->usize || p->bits > 7 ||
	    (p->flags & ~NCK_GZ_PT_MEMBER) || gzp_get(r + 26, 6) != 0)
		return -EBADMSG;
	if (prev && (p->in < prev->in || p->out < prev->out))
		return -EBADMSG;
	if (p->flags & NCK_GZ_PT_MEMBER)
		return p->bits == 0 && p->window == NCK_GZ_NO_WINDOW ? 0 : -EBADMSG;
	if (p->window >= idx->n_windows || (p->bits && p->in == 0))
		return -EBADMSG;
	return 0;
}

int nck_gz_index_load(nck_gz_index **out, const nck_src *ifile, uint64_t csize,
		      uint64_t fingerprint, nck_diag *diag)
{
	const char *name = nck_src_name(ifile);
	unsigned char hdr[GZP_HEADER], *rec = NULL;
	nck_gz_index *idx = NULL;
	size_t rbytes, wbytes;
	int rc;

	*out = NULL;
	if (nck_src_pread(ifile, hdr, sizeof(hdr), 0) != (int64_t)sizeof(hdr))
		return nck_diag_set(diag, -EBADMSG, name, 0, "truncated index header");
	if ((rc = gzp_check_header(hdr, ifile, csize, fingerprint, diag)) < 0)
		return rc;
	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return nck_diag_set(diag, -ENOMEM, name, -1, "out of memory");
	idx->fingerprint = fingerprint;
	idx->csize = csize;
	idx->usize = gzp_get(hdr + 32, 8);
	idx->spacing = gzp_get(hdr + 40, 8);
	idx->n_points = idx->cap_points = (size_t)gzp_get(hdr + 48, 8);
	idx->n_windows = idx->cap_windows = (size_t)gzp_get(hdr + 56, 8);
	rbytes = idx->n_points * GZP_POINT;
	wbytes = idx->n_windows * NCK_GZ_WINDOW;
	rec = malloc(rbytes);
	idx->points = calloc(idx->n_points, sizeof(*idx->points));
	idx->windows = malloc(wbytes + 1);
	if (!rec || !idx->points || !idx->windows) {
		rc = nck_diag_set(diag, -ENOMEM, name, -1, "out of memory");
		goto out;
	}
	if (nck_src_pread(ifile, rec, rbytes, GZP_HEADER) != (int64_t)rbytes ||
	    nck_src_pread(ifile, idx->windows, wbytes, GZP_HEADER + rbytes) != (int64_t)wbytes) {
		rc = nck_diag_set(diag, -EBADMSG, name, -1, "read failed");
		goto out;
	}
	if (nck_gz_crc(nck_gz_crc(0, rec, rbytes), idx->windows, wbytes) != gzp_get(hdr + 64, 4)) {
		rc = nck_diag_set(diag, -EBADMSG, name, GZP_HEADER, "payload checksum mismatch");
		goto out;
	}
	for (size_t i = 0; i < idx->n_points; i++) {
		if (gzp_decode_point(&idx->points[i], rec + i * GZP_POINT,
				     i ? &idx->points[i - 1] : NULL, idx) < 0 ||
		    (i == 0 && (idx->points[0].in != 0 || idx->points[0].out != 0 ||
				!(idx->points[0].flags & NCK_GZ_PT_MEMBER)))) {
			rc = nck_diag_set(diag, -EBADMSG, name,
					  (int64_t)(GZP_HEADER + i * GZP_POINT),
					  "point %zu is inconsistent", i);
			goto out;
		}
	}
	*out = idx;
	idx = NULL;
	rc = 0;
out:
	free(rec);
	nck_gz_index_free(idx);
	return rc;
}

/* ---- find or build ---------------------------------------------------------------- */

/* Tries the cached index at `path`; 0, -ENOENT (none), or another error (warned). */
static int gzp_try_load(nck_gz_index **out, const char *path, const nck_src *file, uint64_t fp)
{
	nck_src *ifile = NULL;
	nck_diag d;
	char line[1600];
	int rc;

	nck_diag_init(&d);
	rc = nck_src_open_file(&ifile, AT_FDCWD, path, true, NULL);
	if (rc == -ENOENT)
		return rc;
	if (rc == 0)
		rc = nck_gz_index_load(out, ifile, nck_src_size(file), fp, &d);
	else
		nck_diag_set(&d, rc, path, -1, "%s", strerror(-rc));
	nck_src_close(ifile);
	if (rc < 0) {
		nck_diag_format(&d, line, sizeof(line));
		nck_log(NCK_LOG_WARN, "gzip index %s; rebuilding it", line);
	}
	return rc;
}

int nck_gz_index_open(nck_gz_index **out, nck_gz_report *report, const nck_src *file,
		      const nck_gz_opts *opts, nck_diag *diag)
{
	bool persist = !opts->no_persist;
	uint64_t fp = 0;
	char dir[1024], line[1600];
	nck_diag sd;
	int rc;

	*out = NULL;
	memset(report, 0, sizeof(*report));
	report->active = true;
	report->compressed_bytes = nck_src_size(file);
	if ((rc = nck_gz_fingerprint(&fp, file)) < 0)
		return nck_diag_set(diag, rc, nck_src_name(file), -1, "read failed");
	report->fingerprint = fp;
	if (persist && nck_gz_cache_dir(dir, sizeof(dir), opts->cache_dir) == 0) {
		int n =
		    snprintf(report->index_path, sizeof(report->index_path), "%.*s/%016llx.gzidx",
			     (int)(sizeof(report->index_path) - 32), dir, (unsigned long long)fp);

		if (n < 0 || (size_t)n >= sizeof(report->index_path) - 1 ||
		    strlen(dir) > sizeof(dir) - 32)
			report->index_path[0] = '\0';
	}
	persist = persist && report->index_path[0];
	if (persist && gzp_try_load(out, report->index_path, file, fp) == 0) {
		report->loaded = true;
		report->checkpoints = (*out)->n_points;
		return 0;
	}
	if ((rc = nck_gz_index_build(out, file, opts->spacing, diag)) < 0)
		return rc;
	report->builds = 1;
	(*out)->fingerprint = fp;
	report->checkpoints = (*out)->n_points;
	if (!persist)
		return 0;
	nck_diag_init(&sd);
	if (nck_gz_index_save(*out, report->index_path, &sd) == 0) {
		report->saved = true;
		return 0;
	}
	nck_diag_format(&sd, line, sizeof(line));
	nck_log(NCK_LOG_WARN, "gzip index not saved (%s); it is kept in memory", line);
	report->index_path[0] = '\0';
	return 0;
}
