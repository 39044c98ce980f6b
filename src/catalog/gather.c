/* SPDX-License-Identifier: MIT */
/*
 * The gather engine (see gather.h). A request is walked row by row of the
 * window (a "row" is one index of every dimension but the last); in each
 * row the chunks that hold it are visited in column order, so runs come
 * out in window order and adjacent ones merge. Only chunks that meet the
 * window's columns and the request's first-dimension range are candidates,
 * so a small read of a large tensor touches a few rows, not the tensor.
 * The copying reader batches short runs into block reads (see below).
 */
#include "catalog/gather.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "catalog/catalog_int.h"
#include "util/grow.h"

/* Candidates kept on the stack; more are allocated. */
#define GATHER_STACK_CHUNKS 32

/* The run being grown, and what the request has been given so far. */
typedef struct gather_state {
	nck_gather_cb cb;
	void *payload;
	const nck_src *src; /* pending run; NULL when none */
	uint64_t pos, dst;
	uint64_t len;
	uint64_t covered;   /* bytes handed to cb, or pending */
	const nck_src *checked; /* the last source whose identity was checked */
} gather_state;

static int gather_flush(gather_state *g)
{
	int rc = 0;

	if (g->src && g->len)
		rc = g->cb(g->payload, g->src, g->pos, g->dst, (size_t)g->len);
	g->src = NULL;
	g->len = 0;
	return rc;
}

/* Adds a run, merging it with the pending one when both stay contiguous. */
static int gather_emit(gather_state *g, const nck_src *src, uint64_t pos, uint64_t dst, uint64_t len)
{
	int rc;

	g->covered += len;
	if (g->src == src && g->pos + g->len == pos && g->dst + g->len == dst) {
		g->len += len;
		return 0;
	}
	if ((rc = gather_flush(g)) < 0)
		return rc;
	if (src != g->checked) {
		if ((rc = nck_src_check(src)) < 0)
			return rc;
		g->checked = src;
	}
	g->src = src;
	g->pos = pos;
	g->dst = dst;
	g->len = len;
	return 0;
}

uint64_t nck_tensor_cols(const nck_tensor *t)
{
	return t->ndim ? t->shape[t->ndim - 1] : 1;
}

/* Copies one row's part of a chunk: columns [a, b) of row `idx`. */
static int gather_chunk_row(gather_state *g, const nck_catalog *cat, const nck_tensor *t,
			    const nck_chunk *ch, const uint64_t *idx, uint64_t a, uint64_t b,
			    uint64_t row_dst, uint64_t col0, uint64_t off, uint64_t end)
{
	uint32_t last = t->ndim ? t->ndim - 1 : 0;
	size_t esz = nck_dtype_size(t->dtype);
	const nck_src *src = cat->files[ch->file].src;
	uint64_t src_elem = 0, lo, hi, s, e;
	int64_t step = t->ndim ? ch->stride[last] : 1;
	int rc;

	for (uint32_t d = 0; d < last; d++)
		src_elem += (idx[d] - ch->offset[d]) * (uint64_t)ch->stride[d];
	if (t->ndim)
		src_elem += (a - ch->offset[last]) * (uint64_t)step;
	lo = row_dst + (a - col0) * esz;
	hi = lo + (b - a) * esz;
	s = lo > off ? lo : off;
	e = hi < end ? hi : end;
	if (s >= e)
		return 0;
	if (step == 1 || b - a == 1)
		return gather_emit(g, src, ch->base + src_elem * esz + (s - lo), s - off, e - s);
	/* A strided row (a transposed view): element by element. */
	for (uint64_t k = (s - lo) / esz; lo + k * esz < e; k++) {
		uint64_t d0 = lo + k * esz, from = d0 < s ? s - d0 : 0;
		uint64_t to = d0 + esz > e ? e - d0 : esz;
		uint64_t at = ch->base + (src_elem + k * (uint64_t)step) * esz;

		if ((rc = gather_emit(g, src, at + from, d0 + from - off, to - from)) < 0)
			return rc;
	}
	return 0;
}

int nck_catalog_gather(const nck_catalog *cat, const nck_tensor *t, uint64_t col0, uint64_t ncols,
		       uint64_t off, uint64_t len, nck_gather_cb cb, void *payload)
{
	uint32_t last = t->ndim ? t->ndim - 1 : 0;
	size_t esz = nck_dtype_size(t->dtype);
	uint64_t cols = nck_tensor_cols(t), rows = 1, bpr, r0, r1, inner = 1, d0_lo, d0_hi;
	const nck_chunk *stack[GATHER_STACK_CHUNKS], **cand = stack;
	gather_state g = { .cb = cb, .payload = payload };
	size_t n_cand = 0;
	int rc = 0;

	for (uint32_t d = 0; d < last; d++)
		rows *= t->shape[d];
	if (col0 > cols || ncols > cols - col0 || esz == 0)
		return -EINVAL;
	bpr = ncols * esz;
	if (len == 0)
		return 0;
	if (bpr == 0 || rows == 0 || off > rows * bpr || len > rows * bpr - off)
		return -EINVAL;
	r0 = off / bpr;
	r1 = (off + len - 1) / bpr; /* inclusive */
	/* The first dimension's range of those rows (rows of higher dims nest in it). */
	for (uint32_t d = 1; d < last; d++)
		inner *= t->shape[d];
	d0_lo = last ? r0 / inner : 0;
	d0_hi = last ? r1 / inner : 0;
	if (t->n_chunks > GATHER_STACK_CHUNKS && !(cand = malloc(t->n_chunks * sizeof(*cand))))
		return -ENOMEM;
	for (size_t c = 0; c < t->n_chunks; c++) {
		const nck_chunk *ch = &t->chunks[c];
		uint64_t cl = t->ndim ? ch->offset[last] : 0, cn = t->ndim ? ch->shape[last] : 1;

		if (cl >= col0 + ncols || cl + cn <= col0 || cn == 0)
			continue;
		if (last && (ch->offset[0] > d0_hi || ch->offset[0] + ch->shape[0] <= d0_lo))
			continue;
		cand[n_cand++] = ch;
	}
	/* Column order within a row: chunks that share a row differ in their
	 * last-dimension offset, so sorting by it (stable on ties) suffices. */
	for (size_t i = 1; i < n_cand; i++) {
		const nck_chunk *x = cand[i];
		size_t j = i;

		while (j > 0 && (t->ndim ? cand[j - 1]->offset[last] > x->offset[last] : false)) {
			cand[j] = cand[j - 1];
			j--;
		}
		cand[j] = x;
	}
	for (uint64_t r = r0; r <= r1 && rc == 0; r++) {
		uint64_t idx[NCK_MAX_DIMS] = { 0 }, rem = r;

		for (uint32_t d = last; d-- > 0;) {
			idx[d] = rem % t->shape[d];
			rem /= t->shape[d];
		}
		for (size_t c = 0; c < n_cand && rc == 0; c++) {
			const nck_chunk *ch = cand[c];
			uint64_t cl = t->ndim ? ch->offset[last] : 0, cn = t->ndim ? ch->shape[last] : 1;
			uint64_t a = cl > col0 ? cl : col0, b = cl + cn < col0 + ncols ? cl + cn : col0 + ncols;
			bool in = true;

			for (uint32_t d = 0; d < last && in; d++)
				in = idx[d] >= ch->offset[d] && idx[d] - ch->offset[d] < ch->shape[d];
			if (in)
				rc = gather_chunk_row(&g, cat, t, ch, idx, a, b, r * bpr, col0, off,
						      off + len);
		}
	}
	if (rc == 0)
		rc = gather_flush(&g);
	if (cand != stack)
		free(cand);
	if (rc == 0 && g.covered != len)
		rc = -EIO;
	return rc;
}

/* ---- the copying reader ---------------------------------------------------- */

/*
 * Runs shorter than this are batched: a strided window (row-parallel
 * columns, a transposed chunk) gives many short runs that lie close
 * together in the source, so they are read as large blocks into a
 * per-thread buffer and scattered from there, instead of one pread each.
 */
#define GATHER_SHORT_RUN (64u << 10)
/* The largest block of neighbouring runs, and the largest hole a block may
 * span. Blocks of a file-backed source are scattered by preadv, their holes
 * into a per-thread sink of GATHER_MAX_GAP bytes; only other sources (gzip)
 * read a block into a per-thread buffer of GATHER_BLOCK bytes. */
#define GATHER_BLOCK (4u << 20)
#define GATHER_MAX_GAP (64u << 10)
/* iovecs per preadv (IOV_MAX is 1024 on Linux). */
#define GATHER_IOV 1024

typedef struct gather_run {
	const nck_src *src;
	uint64_t pos, dst;
	size_t len;
} gather_run;

typedef struct gather_batch {
	unsigned char *buf; /* the caller's */
	gather_run *runs;   /* short runs, read later */
	size_t n, cap;
} gather_batch;

/* Each thread's block buffer, freed when the thread exits. */
static pthread_key_t gather_key;
static pthread_once_t gather_once = PTHREAD_ONCE_INIT;

static void gather_key_init(void)
{
	(void)pthread_key_create(&gather_key, free);
}

static unsigned char *gather_thread_block(void)
{
	unsigned char *p;

	pthread_once(&gather_once, gather_key_init);
	if ((p = pthread_getspecific(gather_key)))
		return p;
	if ((p = malloc(GATHER_BLOCK)) && pthread_setspecific(gather_key, p) != 0) {
		free(p);
		p = NULL;
	}
	return p;
}

/* Long runs are read at once; short ones are kept for block reads. */
static int gather_collect(void *payload, const nck_src *src, uint64_t pos, uint64_t dst, size_t len)
{
	gather_batch *b = payload;

	if (len >= GATHER_SHORT_RUN)
		return nck_src_pread(src, b->buf + dst, len, pos) == (int64_t)len ? 0 : -EIO;
	if (nck_grow((void **)&b->runs, &b->cap, b->n, sizeof(*b->runs), 256) < 0)
		return -ENOMEM;
	b->runs[b->n++] = (gather_run){ .src = src, .pos = pos, .dst = dst, .len = len };
	return 0;
}

static int gather_run_cmp(const void *a, const void *b)
{
	const gather_run *x = a, *y = b;

	if (x->src != y->src)
		return (uintptr_t)x->src < (uintptr_t)y->src ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Reads runs [i, j) of one file-backed source (sorted, within one block)
 * with preadv: the kernel scatters them straight into the reply buffer, one
 * copy; the small holes between them go to the thread's sink.
 */
static int gather_preadv(const gather_batch *b, size_t i, size_t j)
{
	const nck_src *src = b->runs[i].src;
	int fd = nck_src_fd(src);
	uint64_t base = nck_src_base(src);
	/* Every hole is at most GATHER_MAX_GAP: they may all share one sink. */
	static _Thread_local unsigned char sink[GATHER_MAX_GAP];
	struct iovec iov[GATHER_IOV];

	while (i < j) {
		uint64_t at = b->runs[i].pos, cur = at;
		int n = 0;
		ssize_t got;

		while (i < j && n + 2 <= GATHER_IOV) {
			const gather_run *r = &b->runs[i];

			if (r->pos < cur)
				return -EIO; /* overlapping runs: cannot happen in one window */
			if (r->pos > cur)
				iov[n++] = (struct iovec){ .iov_base = sink, .iov_len = r->pos - cur };
			iov[n++] = (struct iovec){ .iov_base = b->buf + r->dst, .iov_len = r->len };
			cur = r->pos + r->len;
			i++;
		}
		do
			got = preadv(fd, iov, n, (off_t)(base + at));
		while (got < 0 && errno == EINTR);
		if (got != (ssize_t)(cur - at))
			return -EIO;
	}
	return 0;
}

/* Reads the short runs in source order, as blocks of neighbouring runs. */
static int gather_flush_batch(gather_batch *b)
{
	size_t i = 0;
	int rc;

	qsort(b->runs, b->n, sizeof(*b->runs), gather_run_cmp);
	while (i < b->n) {
		const gather_run *first = &b->runs[i];
		uint64_t end = first->pos + first->len;
		size_t j = i + 1;

		while (j < b->n && b->runs[j].src == first->src && b->runs[j].pos <= end + GATHER_MAX_GAP &&
		       b->runs[j].pos + b->runs[j].len - first->pos <= GATHER_BLOCK) {
			if (b->runs[j].pos + b->runs[j].len > end)
				end = b->runs[j].pos + b->runs[j].len;
			j++;
		}
		if (j == i + 1) {
			if (nck_src_pread(first->src, b->buf + first->dst, first->len, first->pos) !=
			    (int64_t)first->len)
				return -EIO;
		} else if (nck_src_fd(first->src) >= 0) {
			if ((rc = gather_preadv(b, i, j)) < 0)
				return rc;
		} else {
			unsigned char *block = gather_thread_block();

			if (!block)
				return -ENOMEM;
			if (nck_src_pread(first->src, block, end - first->pos, first->pos) !=
			    (int64_t)(end - first->pos))
				return -EIO;
			for (size_t k = i; k < j; k++)
				memcpy(b->buf + b->runs[k].dst, block + (b->runs[k].pos - first->pos),
				       b->runs[k].len);
		}
		i = j;
	}
	return 0;
}

int nck_catalog_read_window(const nck_catalog *cat, const nck_tensor *t, uint64_t col0,
			    uint64_t ncols, uint64_t off, void *buf, size_t len)
{
	gather_batch b = { .buf = buf };
	int rc = nck_catalog_gather(cat, t, col0, ncols, off, len, gather_collect, &b);

	if (rc == 0 && b.n)
		rc = gather_flush_batch(&b);
	free(b.runs);
	return rc;
}

int nck_catalog_read(const nck_catalog *cat, const nck_tensor *t, uint64_t off, void *buf,
		     size_t len)
{
	return nck_catalog_read_window(cat, t, 0, nck_tensor_cols(t), off, buf, len);
}
