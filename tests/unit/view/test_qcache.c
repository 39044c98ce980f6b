/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the quantization cache, on a tensor of a committed fixture:
 * it is computed once however it is read (many small reads, a cache
 * smaller than the tensor, several threads at once), amax once per merged
 * tensor, and a forgotten slice is computed again. A counting backend
 * wraps the CPU one; the results are checked against the CPU functions
 * called directly on the tensor's bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nck_test.h"
#include "view/qcache.h"

static int n_fp8, n_amax, n_pack;

static int count_amax(const nck_quant_backend *be, float *amax, const void *src, nck_dtype dt,
		      size_t n)
{
	(void)be;
	__atomic_add_fetch(&n_amax, 1, __ATOMIC_SEQ_CST);
	return nck_quant_cpu_amax(amax, src, dt, n, 1);
}

static int count_fp8(const nck_quant_backend *be, uint8_t *dst, const void *src, nck_dtype dt,
		     size_t n, float scale)
{
	(void)be;
	__atomic_add_fetch(&n_fp8, 1, __ATOMIC_SEQ_CST);
	return nck_quant_cpu_fp8(dst, src, dt, n, scale, 1);
}

static int count_scales(const nck_quant_backend *be, float *s, const void *src, nck_dtype dt,
			size_t rows, size_t cols, size_t g)
{
	(void)be;
	return nck_quant_cpu_int4_scales(s, src, dt, rows, cols, g, 1);
}

static int count_pack(const nck_quant_backend *be, uint8_t *dst, const void *src, nck_dtype dt,
		      size_t rows, size_t cols, size_t g, const float *s)
{
	(void)be;
	__atomic_add_fetch(&n_pack, 1, __ATOMIC_SEQ_CST);
	return nck_quant_cpu_int4_pack(dst, src, dt, rows, cols, g, s, 1);
}

static const nck_quant_backend counting = {
	.abi = NCK_QUANT_BACKEND_ABI, .name = "counting", .amax = count_amax, .fp8 = count_fp8,
	.int4_scales = count_scales, .int4_pack = count_pack,
};

/* A committed fixture: its merged layer-0 fc1 weight, bf16 [96, 32]. */
#define FIXTURE NCK_SOURCE_DIR "/tests/fuzz/corpus/views/nemo1_tp2.nemo"
#define TENSOR "model.decoder.layers.0.mlp.linear_fc1.weight"
#define ROWS 96
#define COLS 32

typedef struct fixture {
	nck_catalog *cat;
	const nck_tensor *t;
	uint16_t data[ROWS * COLS];
	nck_qslice q;
} fixture;

/* The tensor read directly, and a slice of all of it. */
static void fixture_init(fixture *f, nck_qalgo algo)
{
	nck_diag diag;

	memset(f, 0, sizeof(*f));
	nck_diag_init(&diag);
	if (nck_catalog_open(&f->cat, FIXTURE, &diag) < 0 || !(f->t = nck_catalog_find(f->cat, TENSOR)) ||
	    f->t->shape[0] != ROWS || f->t->shape[1] != COLS ||
	    nck_catalog_read(f->cat, f->t, 0, f->data, sizeof(f->data)) < 0)
		abort();
	f->q = (nck_qslice){ .dtype = NCK_DTYPE_BF16, .rows = ROWS, .cols = COLS, .algo = algo,
			     .group = 16, .n_scale_of = 1, .scale_of = &f->t };
	nck_layout_tensor(&f->q.src, f->t);
	n_fp8 = n_amax = n_pack = 0;
}

static void fixture_dispose(fixture *f)
{
	nck_layout_dispose(&f->q.src);
	nck_catalog_close(f->cat);
}

NCK_TEST(qcache_computes_a_tensor_larger_than_the_cache_once)
{
	fixture f;
	uint8_t want[ROWS * COLS], got[ROWS * COLS];
	float amax, scale;
	nck_qcache *qc;

	fixture_init(&f, NCK_QALGO_FP8);
	qc = nck_qcache_new(f.cat, &counting, 1024); /* budget: 1 KiB, the codes 3 KiB */
	ASSERT_TRUE(qc != NULL);
	for (size_t at = 0; at < sizeof(got); at += 100) {
		size_t n = sizeof(got) - at < 100 ? sizeof(got) - at : 100;

		ASSERT_EQ_INT(nck_qcache_read(qc, &f.q, 0, at, got + at, n), 0);
	}
	ASSERT_EQ_INT(n_fp8, 1);
	ASSERT_EQ_INT(n_amax, 1);
	ASSERT_EQ_INT(nck_quant_cpu_amax(&amax, f.data, NCK_DTYPE_BF16, ROWS * COLS, 1), 0);
	ASSERT_EQ_INT(nck_qcache_fp8_scale(qc, &f.q, &scale), 0);
	ASSERT_TRUE(scale == nck_quant_fp8_scale(amax));
	ASSERT_EQ_INT(n_amax, 1); /* kept */
	ASSERT_EQ_INT(nck_quant_cpu_fp8(want, f.data, NCK_DTYPE_BF16, ROWS * COLS, scale, 1), 0);
	ASSERT_TRUE(memcmp(got, want, sizeof(got)) == 0);
	/* Forgotten: computed again on the next read. */
	nck_qcache_forget(qc, &f.q);
	ASSERT_EQ_INT(nck_qcache_read(qc, &f.q, 0, 0, got, 10), 0);
	ASSERT_EQ_INT(n_fp8, 2);
	ASSERT_EQ_INT(nck_qcache_read(qc, &f.q, 0, sizeof(got) - 1, got, 2), -EINVAL);
	nck_qcache_free(qc);
	fixture_dispose(&f);
}

typedef struct reader_arg {
	nck_qcache *qc;
	const nck_qslice *q;
	uint8_t out[ROWS / 2 * COLS + ROWS * (COLS / 16) * 4];
	int rc;
} reader_arg;

static void *reader(void *p)
{
	reader_arg *a = p;
	uint64_t w = nck_qslice_int4_bytes(a->q);

	a->rc = nck_qcache_read(a->qc, a->q, 0, 0, a->out, w) ||
		nck_qcache_read(a->qc, a->q, 1, 0, a->out + w, nck_qslice_scales_bytes(a->q));
	return NULL;
}

NCK_TEST(qcache_int4_single_flight_across_threads)
{
	fixture f;
	reader_arg *args = calloc(8, sizeof(*args));
	pthread_t th[8];
	uint8_t packed[ROWS / 2 * COLS];
	float scales[ROWS * (COLS / 16)];
	nck_qcache *qc;

	fixture_init(&f, NCK_QALGO_INT4_AWQ);
	qc = nck_qcache_new(f.cat, &counting, 0);
	for (int i = 0; i < 8; i++) {
		args[i] = (reader_arg){ .qc = qc, .q = &f.q };
		pthread_create(&th[i], NULL, reader, &args[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ_INT(n_pack, 1);
	ASSERT_EQ_INT(nck_quant_cpu_int4_scales(scales, f.data, NCK_DTYPE_BF16, ROWS, COLS, 16, 1), 0);
	ASSERT_EQ_INT(nck_quant_cpu_int4_pack(packed, f.data, NCK_DTYPE_BF16, ROWS, COLS, 16, scales, 1),
		      0);
	for (int i = 0; i < 8; i++) {
		ASSERT_EQ_INT(args[i].rc, 0);
		ASSERT_TRUE(memcmp(args[i].out, packed, sizeof(packed)) == 0);
		ASSERT_TRUE(memcmp(args[i].out + sizeof(packed), scales, sizeof(scales)) == 0);
	}
	nck_qcache_free(qc);
	fixture_dispose(&f);
	free(args);
}
