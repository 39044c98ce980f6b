/* SPDX-License-Identifier: MIT */
/*
 * Quantized tensors, computed once and cached (see qcache.h). One mutex
 * guards the table, the LRU list and the amax table; computations and
 * copies run outside it. An entry being computed is in the table, so a
 * second reader waits on the condition variable instead of computing it
 * again; a failed computation is removed, so a later read tries again.
 */
#include "view/qcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "quant/ggml.h"

#define QCACHE_BUCKETS 1024
#define QCACHE_DEFAULT_BUDGET (256ull << 20)
/*
 * Memory outside the budget is bounded (issue 12, docs/RELIABILITY.md):
 * the unquantized input is read and quantized in blocks of QCACHE_STAGE
 * bytes (an amax pass in blocks of the same size), never staged whole, and
 * at most QCACHE_WORKERS computations run at once (each quantization is
 * split over the backend's own threads anyway), so staging takes at most
 * QCACHE_WORKERS * QCACHE_STAGE bytes whatever the number of readers.
 */
#define QCACHE_STAGE (4u << 20)
#define QCACHE_AMAX_BLOCK QCACHE_STAGE
#define QCACHE_WORKERS 2

typedef struct qentry {
	const nck_qslice *key;
	unsigned char *data; /* FP8 codes, or INT4 packed weight then scales */
	uint64_t size;
	int state;           /* 0 computing, 1 ready */
	int refs;            /* readers copying from data, and the computing thread */
	struct qentry *prev, *next; /* LRU: head is the most recent */
	struct qentry *hnext;
} qentry;

enum { AMAX_NONE = 0, AMAX_BUSY = 1, AMAX_DONE = 2 };

struct nck_qcache {
	const nck_catalog *cat;
	const nck_quant_backend *be;
	uint64_t budget, used; /* used: results cached and being computed */
	int computing;         /* computations running (at most QCACHE_WORKERS) */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	qentry *buckets[QCACHE_BUCKETS];
	qentry *head, *tail;
	float *amax;           /* per catalog tensor */
	unsigned char *amax_state;
};

uint64_t nck_qslice_fp8_bytes(const nck_qslice *q)
{
	return q->rows * q->cols;
}

uint64_t nck_qslice_int4_bytes(const nck_qslice *q)
{
	return q->rows / 2 * q->cols;
}

uint64_t nck_qslice_ggml_bytes(const nck_qslice *q)
{
	return nck_ggml_bytes(q->algo == NCK_QALGO_GGML_Q8_0 ? NCK_GGML_Q8_0 : NCK_GGML_Q4_0,
			      q->rows * q->cols);
}

uint64_t nck_qslice_scales_bytes(const nck_qslice *q)
{
	if (q->algo == NCK_QALGO_NVFP4)
		return q->rows * (q->cols / NCK_QUANT_NVFP4_BLOCK);
	return q->group ? q->rows * (q->cols / q->group) * 4 : 0;
}

uint64_t nck_qslice_nvfp4_bytes(const nck_qslice *q)
{
	return q->rows * (q->cols / 2);
}

nck_qcache *nck_qcache_new(const nck_catalog *cat, const nck_quant_backend *be, uint64_t budget)
{
	nck_qcache *qc = calloc(1, sizeof(*qc));
	size_t n = nck_catalog_count(cat);

	if (!qc)
		return NULL;
	qc->cat = cat;
	qc->be = be;
	qc->budget = budget ? budget : QCACHE_DEFAULT_BUDGET;
	qc->amax = calloc(n ? n : 1, sizeof(*qc->amax));
	qc->amax_state = calloc(n ? n : 1, 1);
	if (!qc->amax || !qc->amax_state) {
		nck_qcache_free(qc);
		return NULL;
	}
	pthread_mutex_init(&qc->lock, NULL);
	pthread_cond_init(&qc->cond, NULL);
	return qc;
}

void nck_qcache_free(nck_qcache *qc)
{
	if (!qc)
		return;
	for (size_t b = 0; b < QCACHE_BUCKETS; b++) {
		for (qentry *e = qc->buckets[b], *next; e; e = next) {
			next = e->hnext;
			free(e->data);
			free(e);
		}
	}
	if (qc->amax_state) {
		pthread_mutex_destroy(&qc->lock);
		pthread_cond_destroy(&qc->cond);
	}
	free(qc->amax);
	free(qc->amax_state);
	free(qc);
}

/* ---- amax of merged tensors ------------------------------------------------- */

/* The backend, resolved on first use when none was given. */
static const nck_quant_backend *qcache_backend(nck_qcache *qc)
{
	const nck_quant_backend *be = __atomic_load_n(&qc->be, __ATOMIC_ACQUIRE), *none = NULL;

	if (be)
		return be;
	/* Outside the lock: loading CUDA takes a while. Two first users may both
	 * resolve it; both get the same static backend. */
	be = nck_quant_backend_get("auto", NULL);
	if (!__atomic_compare_exchange_n(&qc->be, &none, be, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		be = none;
	return be;
}

/* Reads tensor t in blocks and reduces |w| with max (order-independent). */
static int qcache_amax_compute(nck_qcache *qc, const nck_tensor *t, float *out)
{
	uint64_t total = nck_tensor_bytes(t), esz = nck_dtype_size(t->dtype);
	size_t block = QCACHE_AMAX_BLOCK - QCACHE_AMAX_BLOCK % esz;
	unsigned char *buf = malloc(block);
	float m = 0.0f, part;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t at = 0; at < total && rc == 0; at += block) {
		size_t n = total - at < block ? (size_t)(total - at) : block;

		if ((rc = nck_catalog_read(qc->cat, t, at, buf, n)) == 0 &&
		    (rc = nck_quant_amax(qcache_backend(qc), &part, buf, t->dtype, n / esz)) == 0 &&
		    part > m)
			m = part;
	}
	free(buf);
	*out = m;
	return rc;
}

/* The amax of tensor t, computed once. */
static int qcache_amax(nck_qcache *qc, const nck_tensor *t, float *out)
{
	size_t i = (size_t)(t - nck_catalog_at(qc->cat, 0));
	float v = 0.0f;
	int rc;

	pthread_mutex_lock(&qc->lock);
	while (qc->amax_state[i] == AMAX_BUSY)
		pthread_cond_wait(&qc->cond, &qc->lock);
	if (qc->amax_state[i] == AMAX_DONE) {
		*out = qc->amax[i];
		pthread_mutex_unlock(&qc->lock);
		return 0;
	}
	qc->amax_state[i] = AMAX_BUSY;
	pthread_mutex_unlock(&qc->lock);
	rc = qcache_amax_compute(qc, t, &v);
	pthread_mutex_lock(&qc->lock);
	qc->amax_state[i] = rc == 0 ? AMAX_DONE : AMAX_NONE;
	qc->amax[i] = v;
	pthread_cond_broadcast(&qc->cond);
	pthread_mutex_unlock(&qc->lock);
	*out = v;
	return rc;
}

/* A slice with every element of its one merged tensor (TP=1, any row
 * order) gives that tensor's amax from the bytes already read: the
 * separate amax pass is skipped. */
static void qcache_amax_from_slice(nck_qcache *qc, const nck_qslice *q,
				   const nck_quant_backend *be, const void *src)
{
	const nck_tensor *t = q->n_scale_of == 1 ? q->scale_of[0] : NULL;
	size_t i;
	float v;

	if (!t || nck_tensor_bytes(t) != q->rows * q->cols * nck_dtype_size(q->dtype) ||
	    t->dtype != q->dtype)
		return;
	i = (size_t)(t - nck_catalog_at(qc->cat, 0));
	pthread_mutex_lock(&qc->lock);
	if (qc->amax_state[i] != AMAX_NONE) {
		pthread_mutex_unlock(&qc->lock);
		return;
	}
	qc->amax_state[i] = AMAX_BUSY;
	pthread_mutex_unlock(&qc->lock);
	if (nck_quant_amax(be, &v, src, q->dtype, q->rows * q->cols) < 0)
		v = -1.0f;
	pthread_mutex_lock(&qc->lock);
	qc->amax_state[i] = v >= 0.0f ? AMAX_DONE : AMAX_NONE;
	qc->amax[i] = v;
	pthread_cond_broadcast(&qc->cond);
	pthread_mutex_unlock(&qc->lock);
}

/* The joint amax of q's merged tensors. */
static int qcache_joint_amax(nck_qcache *qc, const nck_qslice *q, float *amax)
{
	float m = 0.0f, a;
	int rc;

	for (size_t i = 0; i < q->n_scale_of; i++) {
		if ((rc = qcache_amax(qc, q->scale_of[i], &a)) < 0)
			return rc;
		if (a > m)
			m = a;
	}
	*amax = m;
	return 0;
}

int nck_qcache_fp8_scale(nck_qcache *qc, const nck_qslice *q, float *scale)
{
	float m;
	int rc = qcache_joint_amax(qc, q, &m);

	if (rc == 0)
		*scale = nck_quant_fp8_scale(m);
	return rc;
}

int nck_qcache_nvfp4_global(nck_qcache *qc, const nck_qslice *q, float *global)
{
	float m;
	int rc = qcache_joint_amax(qc, q, &m);

	if (rc == 0)
		*global = nck_quant_nvfp4_global(m);
	return rc;
}

/* ---- computed tensors ------------------------------------------------------- */

static size_t qcache_bucket(const nck_qslice *q)
{
	return ((uintptr_t)q >> 4) % QCACHE_BUCKETS;
}

/* Where a computed form's second part (the INT4 scales) starts: after the
 * first, aligned for the floats. (Catalog tensors are at most 2^56 bytes,
 * so none of these sizes overflow.) */
static uint64_t qcache_second(const nck_qslice *q)
{
	if (q->algo == NCK_QALGO_FP8)
		return nck_qslice_fp8_bytes(q);
	if (q->algo == NCK_QALGO_NVFP4)
		return nck_qslice_nvfp4_bytes(q);
	if (q->algo == NCK_QALGO_GGML_Q8_0 || q->algo == NCK_QALGO_GGML_Q4_0)
		return nck_qslice_ggml_bytes(q);
	return (nck_qslice_int4_bytes(q) + 7) & ~7ull;
}

/* Bytes of slice q's computed form: FP8 codes or ggml blocks; packed INT4
 * or NVFP4 codes, then their block scales. */
static uint64_t qcache_size(const nck_qslice *q)
{
	bool scales = q->algo == NCK_QALGO_INT4_AWQ || q->algo == NCK_QALGO_NVFP4;

	return qcache_second(q) + (scales ? nck_qslice_scales_bytes(q) : 0);
}

static bool qcache_ggml(const nck_qslice *q)
{
	return q->algo == NCK_QALGO_GGML_Q8_0 || q->algo == NCK_QALGO_GGML_Q4_0;
}

/* Rows of q read and quantized at a time: as many as fit in QCACHE_STAGE
 * bytes, an even number (INT4 packs row pairs), at least two. */
static uint64_t qcache_block_rows(const nck_qslice *q)
{
	uint64_t row = q->cols * nck_dtype_size(q->dtype), r = row ? QCACHE_STAGE / row : q->rows;

	r &= ~1ull;
	return r < 2 ? 2 : r;
}

/* Quantizes rows [r0, r0+nr) of q (read into src) into their place in dst.
 * Every format's blocks lie inside rows, so row blocks are independent. */
static int qcache_compute_rows(nck_qcache *qc, const nck_qslice *q, const nck_quant_backend *be,
			       unsigned char *dst, const unsigned char *src, uint64_t r0,
			       uint64_t nr, float scale)
{
	uint64_t n = nr * q->cols, w = qcache_second(q);

	if (qcache_ggml(q)) { /* no device kernel: the CPU quantizer, the same bytes everywhere */
		uint32_t t = q->algo == NCK_QALGO_GGML_Q8_0 ? NCK_GGML_Q8_0 : NCK_GGML_Q4_0;

		(void)qc;
		return nck_ggml_quantize(dst + nck_ggml_bytes(t, r0 * q->cols), t, src, q->dtype, nr,
					 q->cols, nck_quant_cpu_threads());
	}
	if (q->algo == NCK_QALGO_FP8)
		return nck_quant_fp8(be, dst + r0 * q->cols, src, q->dtype, n, scale);
	if (q->algo == NCK_QALGO_NVFP4)
		return nck_quant_nvfp4(be, dst + r0 * (q->cols / 2),
				       dst + w + r0 * (q->cols / NCK_QUANT_NVFP4_BLOCK), src, q->dtype, n,
				       scale);
	{
		float *scales = (float *)(void *)(dst + w) + r0 * (q->cols / q->group);
		int rc = nck_quant_int4_scales(be, scales, src, q->dtype, nr, q->cols, q->group);

		return rc < 0 ? rc
			      : nck_quant_int4_pack(be, dst + r0 / 2 * q->cols, src, q->dtype, nr,
						    q->cols, q->group, scales);
	}
}

/*
 * Quantizes slice q into dst (qcache_size(q) bytes) block by block of rows:
 * FP8 codes with the scale of the merged tensors, NVFP4 codes and block
 * scales with its global scale, packed INT4 rows followed by their block
 * scales, or ggml blocks (all may be produced piecewise, quant.h, ggml.h).
 */
static int qcache_compute(nck_qcache *qc, const nck_qslice *q, unsigned char *dst)
{
	uint64_t esz = nck_dtype_size(q->dtype), br = qcache_block_rows(q);
	uint64_t in = q->rows * q->cols * esz;
	size_t stage = (size_t)(br < q->rows ? br : q->rows) * (size_t)(q->cols * esz);
	unsigned char *src = malloc(stage ? stage : 1);
	const nck_quant_backend *be = qcache_ggml(q) ? NULL : qcache_backend(qc);
	bool global = q->algo == NCK_QALGO_FP8 || q->algo == NCK_QALGO_NVFP4, whole = in <= stage;
	float scale = 1.0f;
	int rc = 0;

	if (!src)
		return -ENOMEM;
	if (global) {
		/* A slice read in one block gives its tensor's amax on the way
		 * (qcache_amax_from_slice); a larger one costs a separate pass. */
		if (whole && (rc = nck_layout_read(qc->cat, &q->src, 0, src, in)) == 0)
			qcache_amax_from_slice(qc, q, be, src);
		if (rc == 0)
			rc = q->algo == NCK_QALGO_FP8 ? nck_qcache_fp8_scale(qc, q, &scale)
						      : nck_qcache_nvfp4_global(qc, q, &scale);
	}
	for (uint64_t r0 = 0; r0 < q->rows && rc == 0; r0 += br) {
		uint64_t nr = q->rows - r0 < br ? q->rows - r0 : br;

		if (!(global && whole) &&
		    (rc = nck_layout_read(qc->cat, &q->src, r0 * q->cols * esz, src,
					  nr * q->cols * esz)) < 0)
			break;
		rc = qcache_compute_rows(qc, q, be, dst, src, r0, nr, scale);
	}
	free(src);
	return rc < 0 && rc != -ENOMEM ? -EIO : rc;
}

static void qcache_unlink_lru(nck_qcache *qc, qentry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else if (qc->head == e)
		qc->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else if (qc->tail == e)
		qc->tail = e->prev;
	e->prev = e->next = NULL;
}

/* Makes e (not in the list) the most recent entry. Lock held. */
static void qcache_push_front(nck_qcache *qc, qentry *e)
{
	e->prev = NULL;
	e->next = qc->head;
	if (qc->head)
		qc->head->prev = e;
	qc->head = e;
	if (!qc->tail)
		qc->tail = e;
}

static void qcache_unlink_table(nck_qcache *qc, qentry *e)
{
	qentry **p = &qc->buckets[qcache_bucket(e->key)];

	while (*p && *p != e)
		p = &(*p)->hnext;
	if (*p)
		*p = e->hnext;
}

/*
 * Evicts unreferenced entries from the cold end while over budget. Lock
 * held. The most recent entry stays even when it alone is over budget: a
 * tensor larger than the cache, read in many requests one after another,
 * is then computed once, not once per request.
 */
static void qcache_trim(nck_qcache *qc)
{
	qentry *e = qc->tail;

	while (e && qc->used > qc->budget) {
		qentry *prev = e->prev;

		if (e->refs == 0 && e->state == 1 && e != qc->head) {
			qcache_unlink_lru(qc, e);
			qcache_unlink_table(qc, e);
			qc->used -= e->size;
			free(e->data);
			free(e);
		}
		e = prev;
	}
}

/*
 * Finds or computes q's entry and takes a reference. Lock not held. A new
 * computation waits while QCACHE_WORKERS run, or while its result would
 * not fit in the budget beside those being computed; its result's bytes
 * count as used from the start, so what is cached plus what is being
 * computed stays within the budget, or is one tensor when that alone is
 * larger.
 */
static int qcache_get(nck_qcache *qc, const nck_qslice *q, qentry **out)
{
	uint64_t size = qcache_size(q);
	qentry *e;
	int rc;

	pthread_mutex_lock(&qc->lock);
	for (;;) {
		for (e = qc->buckets[qcache_bucket(q)]; e && e->key != q; e = e->hnext)
			;
		if (e && e->state == 1)
			break;
		if (!e) {
			qcache_trim(qc);
			if (qc->computing == 0 ||
			    (qc->computing < QCACHE_WORKERS && qc->used + size <= qc->budget))
				break;
		}
		pthread_cond_wait(&qc->cond, &qc->lock); /* being computed, or no room */
	}
	if (e) {
		e->refs++;
		qcache_unlink_lru(qc, e);
		qcache_push_front(qc, e);
		pthread_mutex_unlock(&qc->lock);
		*out = e;
		return 0;
	}
	if (!(e = calloc(1, sizeof(*e))) || !(e->data = malloc(size ? size : 1))) {
		free(e);
		pthread_mutex_unlock(&qc->lock);
		return -ENOMEM;
	}
	e->key = q;
	e->size = size;
	e->refs = 1;
	e->hnext = qc->buckets[qcache_bucket(q)];
	qc->buckets[qcache_bucket(q)] = e;
	qc->used += size;
	qc->computing++;
	pthread_mutex_unlock(&qc->lock);

	rc = qcache_compute(qc, q, e->data);

	pthread_mutex_lock(&qc->lock);
	qc->computing--;
	if (rc < 0) {
		qcache_unlink_table(qc, e);
		qc->used -= e->size;
		free(e->data);
		free(e);
		e = NULL;
	} else {
		e->state = 1;
		qcache_push_front(qc, e);
	}
	pthread_cond_broadcast(&qc->cond);
	pthread_mutex_unlock(&qc->lock);
	*out = e;
	return rc;
}

static void qcache_put(nck_qcache *qc, qentry *e)
{
	pthread_mutex_lock(&qc->lock);
	e->refs--;
	qcache_trim(qc);
	pthread_mutex_unlock(&qc->lock);
}

void nck_qcache_forget(nck_qcache *qc, const nck_qslice *q)
{
	qentry *e;

	if (!qc)
		return;
	pthread_mutex_lock(&qc->lock);
	for (e = qc->buckets[qcache_bucket(q)]; e && e->key != q; e = e->hnext)
		;
	if (e && e->state == 1 && e->refs == 0) {
		qcache_unlink_lru(qc, e);
		qcache_unlink_table(qc, e);
		qc->used -= e->size;
		free(e->data);
		free(e);
	}
	pthread_mutex_unlock(&qc->lock);
}

int nck_qcache_read(nck_qcache *qc, const nck_qslice *q, int what, uint64_t pos, void *buf,
		    size_t len)
{
	uint64_t base = what == 0 ? 0 : qcache_second(q);
	qentry *e;
	int rc = qcache_get(qc, q, &e);

	if (rc < 0)
		return rc;
	if (base + pos > e->size || len > e->size - base - pos)
		rc = -EINVAL;
	else
		memcpy(buf, e->data + base + pos, len);
	qcache_put(qc, e);
	return rc;
}
