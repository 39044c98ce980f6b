/* SPDX-License-Identifier: MIT */
/*
 * gzip seek index: the one-pass builder and the extraction from a
 * checkpoint (see gzindex.h). Persistence is in gzpersist.c, the cached
 * source in gzsrc.c; the index body is shared through gzindex_int.h.
 *
 * Building inflates the whole file with Z_BLOCK, so that inflate() returns
 * at every deflate block boundary; there, once `spacing` bytes of output
 * have passed since the last checkpoint, a checkpoint records the input
 * position and the unused bit count of the last byte (data_type & 7) plus a
 * copy of the 32 KiB of output before it (zlib examples/zran.c). A gzip
 * member boundary gets a windowless checkpoint. gzip framing (headers,
 * CRC-32 + ISIZE trailers) is checked by zlib itself (windowBits 15 + 16).
 *
 * Extraction from a mid-member checkpoint inflates raw deflate: prime the
 * bits, set the window as dictionary. At the end of that member it skips
 * the 8-byte trailer and continues in gzip mode with the next member.
 *
 * Thread-safety: the builder runs on one thread; extraction shares nothing.
 */
#include "io/gzindex_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "nemockpt/log.h"
#include "util/ckd.h"

/* Compressed bytes per pread while building and extracting. */
#define GZ_IN_BUILD   (256u << 10)
#define GZ_IN_EXTRACT (64u << 10)
/* Smallest spacing accepted: below it windows would outweigh the data. */
#define GZ_SPACING_MIN (64u << 10)
/* No progress output below this size, so small mounts stay quiet. */
#define GZ_PROGRESS_MIN (64ull << 20)

/* ---- input ----------------------------------------------------------------- */

/* Compressed input read by pread into a buffer that feeds a z_stream. */
typedef struct gz_in {
	const nck_src *src;
	uint64_t pos; /* file offset of the byte after the buffered ones */
	unsigned char *buf;
	size_t cap;
} gz_in;

/* Offset in the file of the next byte inflate will consume. */
static uint64_t gz_in_offset(const gz_in *in, const z_stream *z)
{
	return in->pos - z->avail_in;
}

/*
 * Makes at least `want` (<= cap) bytes available at z->next_in unless the
 * file ends first. Returns the bytes available, or -EIO.
 */
static int64_t gz_in_ensure(gz_in *in, z_stream *z, size_t want)
{
	while (z->avail_in < want) {
		size_t have = z->avail_in;
		int64_t n;

		if (have && z->next_in != in->buf)
			memmove(in->buf, z->next_in, have);
		n = nck_src_pread(in->src, in->buf + have, in->cap - have, in->pos);
		if (n < 0)
			return -EIO;
		z->next_in = in->buf;
		z->avail_in = (uInt)(have + (size_t)n);
		in->pos += (uint64_t)n;
		if (n == 0)
			break;
	}
	return z->avail_in;
}

/* Consumes `n` bytes of input (n <= avail_in). */
static void gz_in_drop(z_stream *z, size_t n)
{
	z->next_in += n;
	z->avail_in -= (uInt)n;
}

/* True when the next two input bytes are the gzip magic (RFC 1952 §2.3.1). */
static bool gz_in_magic(gz_in *in, z_stream *z)
{
	return gz_in_ensure(in, z, 2) >= 2 && z->next_in[0] == 0x1f && z->next_in[1] == 0x8b;
}

/* ---- index body ------------------------------------------------------------ */

void nck_gz_index_free(nck_gz_index *idx)
{
	if (!idx)
		return;
	free(idx->points);
	free(idx->windows);
	free(idx);
}

size_t nck_gz_index_points(const nck_gz_index *idx)
{
	return idx->n_points;
}

uint64_t nck_gz_index_usize(const nck_gz_index *idx)
{
	return idx->usize;
}

uint64_t nck_gz_index_point_out(const nck_gz_index *idx, size_t i)
{
	return i < idx->n_points ? idx->points[i].out : idx->usize;
}

size_t nck_gz_index_find(const nck_gz_index *idx, uint64_t off)
{
	size_t lo = 0, hi = idx->n_points;

	/* The last point with out <= off; point 0 has out 0. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx->points[mid].out <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Appends a checkpoint; `window` (32 KiB, rotated at `have`) or NULL. */
static int gz_add_point(nck_gz_index *idx, uint64_t in, uint64_t out, int bits,
			const unsigned char *window, size_t have)
{
	nck_gz_point *p;

	/* Points at the same output offset would make an empty chunk: the later
	 * one replaces the earlier (a member start over a block boundary). */
	if (idx->n_points && idx->points[idx->n_points - 1].out == out && out > 0 &&
	    idx->points[idx->n_points - 1].window == NCK_GZ_NO_WINDOW && !window) {
		idx->points[idx->n_points - 1].in = in;
		return 0;
	}

	if (idx->n_points == idx->cap_points) {
		size_t cap = idx->cap_points ? idx->cap_points * 2 : 64;

		if (cap > SIZE_MAX / sizeof(*p))
			return -EOVERFLOW;
		p = realloc(idx->points, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		idx->points = p;
		idx->cap_points = cap;
	}
	p = &idx->points[idx->n_points];
	*p = (nck_gz_point){.in = in,
			    .out = out,
			    .bits = (uint8_t)bits,
			    .window = NCK_GZ_NO_WINDOW,
			    .flags = window ? 0 : NCK_GZ_PT_MEMBER};
	if (window) {
		unsigned char *w;

		if (idx->n_windows == idx->cap_windows) {
			size_t cap = idx->cap_windows ? idx->cap_windows * 2 : 16;

			if (cap >= NCK_GZ_NO_WINDOW || cap > SIZE_MAX / NCK_GZ_WINDOW)
				return -EOVERFLOW;
			w = realloc(idx->windows, cap * NCK_GZ_WINDOW);
			if (!w)
				return -ENOMEM;
			idx->windows = w;
			idx->cap_windows = cap;
		}
		/* Oldest bytes first: [have, 32K) then [0, have). */
		w = idx->windows + idx->n_windows * NCK_GZ_WINDOW;
		memcpy(w, window + have, NCK_GZ_WINDOW - have);
		memcpy(w + NCK_GZ_WINDOW - have, window, have);
		p->window = (uint32_t)idx->n_windows++;
	}
	idx->n_points++;
	return 0;
}

/* ---- progress ---------------------------------------------------------------- */

typedef struct gz_progress {
	bool on;	/* the file is large enough */
	bool tty;	/* redraw one line on stderr; else INFO lines */
	double start;	/* monotonic seconds */
	double last;	/* last output */
	uint64_t total; /* compressed size */
} gz_progress;

/* Monotonic time in seconds. */
static double gz_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Shows how far indexing got: at most 10 redraws a second on a terminal,
 * one log line every 5 s otherwise. `done` when finished. */
static void gz_progress_show(gz_progress *pg, const char *name, uint64_t pos, bool done)
{
	double now, rate, left;

	if (!pg->on)
		return;
	now = gz_now();
	if (!done && now - pg->last < (pg->tty ? 0.1 : 5.0))
		return;
	pg->last = now;
	rate = now > pg->start ? (double)pos / (now - pg->start) : 0;
	left = rate > 0 ? (double)(pg->total - pos) / rate : 0;
	if (pg->tty) {
		fprintf(stderr, "\rindexing %s: %llu / %llu MiB, %.0f MiB/s, %.0f s left%s", name,
			(unsigned long long)(pos >> 20), (unsigned long long)(pg->total >> 20),
			rate / 1048576.0, left, done ? "\n" : "   ");
		fflush(stderr);
	} else {
		nck_log(NCK_LOG_INFO, "indexing %s: %llu of %llu MiB, %.0f MiB/s, %.0f s left",
			name, (unsigned long long)(pos >> 20),
			(unsigned long long)(pg->total >> 20), rate / 1048576.0, left);
	}
	/* For service managers too (sd_notify STATUS= in the daemon). */
	nck_status("Indexing %s: %llu of %llu MiB, %.0f s left", name,
		   (unsigned long long)(pos >> 20), (unsigned long long)(pg->total >> 20), left);
}

/* ---- building ------------------------------------------------------------------ */

typedef struct gz_build {
	nck_gz_index *idx;
	gz_in in;
	z_stream z;
	unsigned char window[NCK_GZ_WINDOW]; /* circular output buffer */
	uint64_t out;			     /* output so far */
	uint64_t last;			     /* output at the last checkpoint */
	uint32_t crc;			     /* CRC-32 of the output since then */
	gz_progress pg;
} gz_build;

/* Stores the CRC-32 of the chunk that ends here in its point, and restarts it. */
static void gz_build_close_chunk(gz_build *b)
{
	b->idx->points[b->idx->n_points - 1].crc = b->crc;
	b->crc = 0;
}

/* After the end of a member: starts the next one (with a checkpoint), or
 * returns 1 at the end of the data. Trailing zeros (tape padding) are
 * ignored; other trailing bytes too, with a warning (as gzip -d does). */
static int gz_build_next_member(gz_build *b, nck_diag *diag)
{
	const char *name = nck_src_name(b->in.src);
	uint64_t at = gz_in_offset(&b->in, &b->z);
	int rc;

	if (gz_in_magic(&b->in, &b->z)) {
		if (inflateReset(&b->z) != Z_OK)
			return nck_diag_set(diag, -ENOMEM, name, (int64_t)at,
					    "inflateReset failed");
		gz_build_close_chunk(b);
		if ((rc = gz_add_point(b->idx, at, b->out, 0, NULL, 0)) < 0)
			return nck_diag_set(diag, rc, name, (int64_t)at, "gzip index: %s",
					    strerror(-rc));
		b->last = b->out;
		return 0;
	}
	for (;;) {
		int64_t n = gz_in_ensure(&b->in, &b->z, 1);

		if (n < 0)
			return nck_diag_set(diag, -EIO, name, (int64_t)at, "read failed");
		if (n == 0)
			return 1;
		for (size_t i = 0; i < (size_t)n; i++) {
			if (b->z.next_in[i] != 0) {
				nck_log(NCK_LOG_WARN,
					"%s: offset %llu: trailing bytes after the gzip "
					"data ignored",
					name, (unsigned long long)at);
				return 1;
			}
		}
		gz_in_drop(&b->z, (size_t)n);
	}
}

/* Records a checkpoint at a block boundary when `spacing` output has passed. */
static int gz_build_maybe_point(gz_build *b)
{
	int dt = b->z.data_type;

	/* Bit 7: stopped at a block boundary; bit 6: after the last block. */
	if (!(dt & 128) || (dt & 64) || b->out - b->last < b->idx->spacing)
		return 0;
	b->last = b->out;
	gz_build_close_chunk(b);
	return gz_add_point(b->idx, gz_in_offset(&b->in, &b->z), b->out, dt & 7, b->window,
			    NCK_GZ_WINDOW - b->z.avail_out);
}

/* The inflate loop of the builder. */
static int gz_build_run(gz_build *b, nck_diag *diag)
{
	const char *name = nck_src_name(b->in.src);
	int64_t n;
	int rc, ret;

	for (;;) {
		if (b->z.avail_in == 0) {
			if ((n = gz_in_ensure(&b->in, &b->z, 1)) < 0)
				return nck_diag_set(diag, -EIO, name, (int64_t)b->in.pos,
						    "read failed");
			if (n == 0)
				return nck_diag_set(diag, -EBADMSG, name, (int64_t)b->in.pos,
						    "corrupt gzip data: unexpected end of file "
						    "(truncated archive)");
			gz_progress_show(&b->pg, name, b->in.pos, false);
		}
		if (b->z.avail_out == 0) {
			b->z.next_out = b->window;
			b->z.avail_out = NCK_GZ_WINDOW;
		}
		n = b->z.avail_out;
		ret = inflate(&b->z, Z_BLOCK);
		b->crc = (uint32_t)crc32(b->crc, b->z.next_out - (n - b->z.avail_out),
					 (uInt)(n - b->z.avail_out));
		if (!nck_ckd_add64(&b->out, b->out, (uint64_t)(n - b->z.avail_out)))
			return nck_diag_set(diag, -EOVERFLOW, name, -1,
					    "decompressed size overflows");
		if (ret == Z_MEM_ERROR)
			return nck_diag_set(diag, -ENOMEM, name, -1, "out of memory");
		if (ret != Z_OK && ret != Z_STREAM_END)
			return nck_diag_set(diag, -EBADMSG, name,
					    (int64_t)gz_in_offset(&b->in, &b->z),
					    "corrupt gzip data: %s",
					    b->z.msg ? b->z.msg : "invalid deflate stream");
		if (ret == Z_STREAM_END) {
			if ((rc = gz_build_next_member(b, diag)) != 0)
				return rc < 0 ? rc : 0;
			continue;
		}
		if ((rc = gz_build_maybe_point(b)) < 0)
			return nck_diag_set(diag, rc, name, -1, "gzip index: %s", strerror(-rc));
	}
}

int nck_gz_index_build(nck_gz_index **out, const nck_src *file, uint64_t spacing, nck_diag *diag)
{
	gz_build *b = calloc(1, sizeof(*b));
	nck_gz_index *idx = calloc(1, sizeof(*idx));
	bool zinit = false;
	int rc;

	*out = NULL;
	if (!b || !idx || !(b->in.buf = malloc(GZ_IN_BUILD))) {
		rc = nck_diag_set(diag, -ENOMEM, nck_src_name(file), -1, "out of memory");
		goto out;
	}
	b->idx = idx;
	b->in.src = file;
	b->in.cap = GZ_IN_BUILD;
	idx->csize = nck_src_size(file);
	idx->spacing = spacing ? spacing : NCK_GZ_SPACING_DEFAULT;
	if (idx->spacing < GZ_SPACING_MIN)
		idx->spacing = GZ_SPACING_MIN;
	b->pg = (gz_progress){.on = idx->csize >= GZ_PROGRESS_MIN,
			      .tty = isatty(STDERR_FILENO),
			      .start = gz_now(),
			      .total = idx->csize};
	b->pg.last = b->pg.start;
	if (nck_src_fd(file) >= 0)
		posix_fadvise(nck_src_fd(file), 0, 0, POSIX_FADV_SEQUENTIAL);
	/* 15 + 16: a 32 KiB window, gzip framing checked by zlib. */
	if (inflateInit2(&b->z, 15 + 16) != Z_OK) {
		rc = nck_diag_set(diag, -ENOMEM, nck_src_name(file), -1, "inflateInit2 failed");
		goto out;
	}
	zinit = true;
	b->z.next_out = b->window;
	b->z.avail_out = NCK_GZ_WINDOW;
	if ((rc = gz_add_point(idx, 0, 0, 0, NULL, 0)) < 0 || (rc = gz_build_run(b, diag)) < 0)
		goto out;
	gz_progress_show(&b->pg, nck_src_name(file), idx->csize, true);
	gz_build_close_chunk(b);
	idx->usize = b->out;
	*out = idx;
	idx = NULL;
out:
	if (rc < 0)
		nck_diag_set(diag, rc, nck_src_name(file), -1, "gzip index: %s", strerror(-rc));
	if (zinit)
		inflateEnd(&b->z);
	if (b)
		free(b->in.buf);
	free(b);
	nck_gz_index_free(idx);
	return rc;
}

/* ---- extraction --------------------------------------------------------------- */

/* Positions a fresh z_stream at checkpoint `p` (zran: prime bits, set window). */
static int gz_extract_start(const nck_gz_index *idx, const nck_gz_point *p, gz_in *in, z_stream *z,
			    bool *raw)
{
	*raw = !(p->flags & NCK_GZ_PT_MEMBER);
	in->pos = p->in - (*raw && p->bits ? 1 : 0);
	if (inflateInit2(z, *raw ? -15 : 15 + 16) != Z_OK)
		return -ENOMEM;
	if (!*raw)
		return 0;
	if (p->bits) {
		if (gz_in_ensure(in, z, 1) < 1)
			return -EIO;
		if (inflatePrime(z, p->bits, z->next_in[0] >> (8 - p->bits)) != Z_OK)
			return -EIO;
		gz_in_drop(z, 1);
	}
	if (inflateSetDictionary(z, idx->windows + (size_t)p->window * NCK_GZ_WINDOW,
				 NCK_GZ_WINDOW) != Z_OK)
		return -EIO;
	return 0;
}

/* At the end of a member: skips a raw member's trailer and starts the next
 * member in gzip mode. -EIO when no member follows. */
static int gz_extract_next_member(gz_in *in, z_stream *z, bool *raw)
{
	if (*raw) {
		if (gz_in_ensure(in, z, 8) < 8)
			return -EIO;
		gz_in_drop(z, 8); /* CRC-32 and ISIZE (RFC 1952 §2.3) */
	}
	if (!gz_in_magic(in, z))
		return -EIO;
	if (inflateReset2(z, 15 + 16) != Z_OK)
		return -EIO;
	*raw = false;
	return 0;
}

uint32_t nck_gz_crc(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* zlib's crc32 takes uInt lengths: feed at most 1 GiB at a time. */
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}

/* Decompressions started by nck_gz_index_extract(), process-wide. */
static atomic_ulong gz_extracts;

unsigned long nck_gz_extract_count(void)
{
	return atomic_load(&gz_extracts);
}

int nck_gz_index_extract(const nck_gz_index *idx, const nck_src *file, size_t point, uint64_t skip,
			 void *buf, size_t len)
{
	gz_in in = {.src = file, .cap = GZ_IN_EXTRACT};
	unsigned char *discard = NULL, *dst = buf;

	atomic_fetch_add(&gz_extracts, 1);
	bool raw = false, zinit = false;
	z_stream z;
	int rc = 0, ret;

	memset(&z, 0, sizeof(z));
	if (point >= idx->n_points)
		return -EIO;
	in.buf = malloc(GZ_IN_EXTRACT);
	discard = skip ? malloc(NCK_GZ_WINDOW) : NULL;
	if (!in.buf || (skip && !discard)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = gz_extract_start(idx, &idx->points[point], &in, &z, &raw);
	zinit = rc != -ENOMEM;
	if (rc < 0)
		goto out;
	while (skip > 0 || len > 0) {
		size_t want;

		if (skip > 0) {
			want = skip < NCK_GZ_WINDOW ? (size_t)skip : NCK_GZ_WINDOW;
			z.next_out = discard;
		} else {
			want = len < UINT_MAX ? len : UINT_MAX;
			z.next_out = dst;
		}
		z.avail_out = (uInt)want;
		if (z.avail_in == 0 && gz_in_ensure(&in, &z, 1) < 1) {
			rc = -EIO;
			goto out;
		}
		ret = inflate(&z, Z_NO_FLUSH);
		want -= z.avail_out;
		if (skip > 0) {
			skip -= want;
		} else {
			dst += want;
			len -= want;
		}
		if (ret == Z_STREAM_END && (skip > 0 || len > 0))
			rc = gz_extract_next_member(&in, &z, &raw);
		else if (ret != Z_OK && ret != Z_STREAM_END)
			rc = ret == Z_MEM_ERROR ? -ENOMEM : -EIO;
		if (rc < 0)
			goto out;
	}
out:
	if (zinit)
		inflateEnd(&z);
	free(in.buf);
	free(discard);
	return rc;
}
