/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the gather engine: tensors made of chunks in memory sources
 * (row blocks, column blocks, a transposed chunk, several files), every
 * window and byte range compared with the logical values computed here
 * from the indices, run merging, and holes giving EIO.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "catalog/gather.h"
#include "nck_test.h"

#define R 12
#define C 10

/* The logical value at (r, c). */
static uint16_t val(uint64_t r, uint64_t c)
{
	return (uint16_t)(r * C + c + 1);
}

typedef struct fixture {
	nck_catalog *cat;
	uint16_t file[2][R * C];
	nck_tensor *t;
} fixture;

/* A catalog with one [R, C] u16 tensor: rows 0..5 as a contiguous column
 * block (cols 0..3) and a transposed block (cols 4..9) in file 0, rows
 * 6..11 contiguous in file 1 after a 7-element prefix. */
static void fixture_init(fixture *f, bool hole)
{
	nck_chunk *ch;

	memset(f, 0, sizeof(*f));
	f->cat = calloc(1, sizeof(*f->cat));
	nck_arena_init(&f->cat->arena);
	f->cat->files = calloc(2, sizeof(*f->cat->files));
	f->cat->n_files = f->cat->cap_files = 2;
	for (int i = 0; i < 2; i++)
		nck_src_new_mem(&f->cat->files[i].src, f->file[i], sizeof(f->file[i]), "mem");
	for (uint64_t r = 0; r < 6; r++) {
		for (uint64_t c = 0; c < 4; c++)
			f->file[0][r * 4 + c] = val(r, c);
		for (uint64_t c = 4; c < C; c++)
			f->file[0][24 + (c - 4) * 6 + r] = val(r, c); /* transposed: stride [1, 6] */
	}
	for (uint64_t r = 6; r < R; r++)
		for (uint64_t c = 0; c < C; c++)
			f->file[1][7 + (r - 6) * C + c] = val(r, c);
	f->t = nck_catalog_add(f->cat, "w", hole ? 2 : 3);
	f->t->dtype = NCK_DTYPE_U16;
	f->t->ndim = 2;
	f->t->shape[0] = R;
	f->t->shape[1] = C;
	ch = (nck_chunk *)f->t->chunks;
	ch[0] = (nck_chunk){ .file = 0, .base = 0, .shape = { 6, 4 }, .stride = { 4, 1 } };
	ch[1] = (nck_chunk){ .file = 0, .base = 48, .offset = { 0, 4 }, .shape = { 6, 6 },
			     .stride = { 1, 6 } };
	if (!hole)
		ch[2] = (nck_chunk){ .file = 1, .base = 14, .offset = { 6, 0 }, .shape = { 6, C },
				     .stride = { C, 1 } };
}

static void fixture_dispose(fixture *f)
{
	nck_catalog_close(f->cat);
}

NCK_TEST(gather_every_window_and_range)
{
	fixture f;
	uint16_t want[R * C], got[R * C];

	fixture_init(&f, false);
	for (uint64_t c0 = 0; c0 < C; c0++) {
		for (uint64_t nc = 1; c0 + nc <= C; nc++) {
			uint64_t total = R * nc * 2;

			for (uint64_t r = 0; r < R; r++)
				for (uint64_t j = 0; j < nc; j++)
					want[r * nc + j] = val(r, c0 + j);
			for (uint64_t off = 0; off < total; off += 3) {
				for (uint64_t len = 1; off + len <= total; len += 7) {
					memset(got, 0xAB, sizeof(got));
					ASSERT_EQ_INT(nck_catalog_read_window(f.cat, f.t, c0, nc, off,
									      got, len),
						      0);
					ASSERT_TRUE(memcmp(got, (char *)want + off, len) == 0);
				}
			}
		}
	}
	/* The whole tensor through the plain reader. */
	ASSERT_EQ_INT(nck_catalog_read(f.cat, f.t, 0, got, sizeof(got)), 0);
	for (uint64_t r = 0; r < R; r++)
		for (uint64_t c = 0; c < C; c++)
			ASSERT_EQ_INT(got[r * C + c], val(r, c));
	fixture_dispose(&f);
}

/* Counts runs and checks they arrive in order. */
typedef struct runs {
	int n;
	uint64_t next;
} runs;

static int count_run(void *payload, const nck_src *src, uint64_t pos, uint64_t dst, size_t len)
{
	runs *r = payload;

	(void)src;
	(void)pos;
	if (dst != r->next)
		return -EPROTO;
	r->next = dst + len;
	r->n++;
	return 0;
}

NCK_TEST(gather_merges_contiguous_runs)
{
	fixture f;
	runs r = { 0 };

	fixture_init(&f, false);
	/* Rows 6..11, whole width: one run of file 1. */
	ASSERT_EQ_INT(nck_catalog_gather(f.cat, f.t, 0, C, 6 * C * 2, 6 * C * 2, count_run, &r), 0);
	ASSERT_EQ_INT(r.n, 1);
	/* Columns 0..3 of rows 0..5: the column block is contiguous: one run. */
	r = (runs){ 0 };
	ASSERT_EQ_INT(nck_catalog_gather(f.cat, f.t, 0, 4, 0, 6 * 4 * 2, count_run, &r), 0);
	ASSERT_EQ_INT(r.n, 1);
	/* The transposed block: one run per element, in window order. */
	r = (runs){ 0 };
	ASSERT_EQ_INT(nck_catalog_gather(f.cat, f.t, 4, 6, 0, 6 * 6 * 2, count_run, &r), 0);
	ASSERT_EQ_INT(r.n, 36);
	fixture_dispose(&f);
}

NCK_TEST(gather_rejects_bad_ranges_and_holes)
{
	fixture f;
	uint16_t buf[R * C];

	fixture_init(&f, false);
	ASSERT_EQ_INT(nck_catalog_read_window(f.cat, f.t, 0, C, R * C * 2, buf, 1), -EINVAL);
	ASSERT_EQ_INT(nck_catalog_read_window(f.cat, f.t, 4, 7, 0, buf, 2), -EINVAL);
	ASSERT_EQ_INT(nck_catalog_read_window(f.cat, f.t, 0, 0, 0, buf, 2), -EINVAL);
	ASSERT_EQ_INT(nck_catalog_read_window(f.cat, f.t, 0, C, 0, buf, 0), 0);
	fixture_dispose(&f);
	/* Without the chunk of rows 6..11, reads there fail; rows 0..5 still work. */
	fixture_init(&f, true);
	ASSERT_EQ_INT(nck_catalog_read_window(f.cat, f.t, 0, C, 5 * C * 2, buf, 4 * C), -EIO);
	ASSERT_EQ_INT(nck_catalog_read_window(f.cat, f.t, 0, C, 0, buf, 6 * C * 2), 0);
	ASSERT_EQ_INT(buf[5 * C + 9], val(5, 9));
	fixture_dispose(&f);
}

NCK_TEST(gather_three_dims_and_scalars)
{
	nck_catalog *cat = calloc(1, sizeof(*cat));
	uint32_t data[2 * 3 * 4 + 1], got[2 * 3 * 4];
	nck_tensor *t, *s;
	nck_chunk *ch;

	nck_arena_init(&cat->arena);
	cat->files = calloc(1, sizeof(*cat->files));
	cat->n_files = cat->cap_files = 1;
	for (uint32_t i = 0; i < 24; i++)
		data[i] = 1000 + i;
	data[24] = 77;
	nck_src_new_mem(&cat->files[0].src, data, sizeof(data), "mem");
	/* [2, 3, 4] in two chunks split on dim 1: rows {0} and {1, 2} of each slab. */
	t = nck_catalog_add(cat, "t", 2);
	t->dtype = NCK_DTYPE_U32;
	t->ndim = 3;
	t->shape[0] = 2;
	t->shape[1] = 3;
	t->shape[2] = 4;
	ch = (nck_chunk *)t->chunks;
	ch[0] = (nck_chunk){ .shape = { 2, 1, 4 }, .stride = { 12, 4, 1 } };
	ch[1] = (nck_chunk){ .base = 16, .offset = { 0, 1, 0 }, .shape = { 2, 2, 4 },
			     .stride = { 12, 4, 1 } };
	ASSERT_EQ_INT(nck_catalog_read_window(cat, t, 1, 2, 0, got, 2 * 3 * 2 * 4), 0);
	for (uint32_t a = 0; a < 2; a++)
		for (uint32_t b = 0; b < 3; b++)
			for (uint32_t j = 0; j < 2; j++)
				ASSERT_EQ_INT(got[(a * 3 + b) * 2 + j], 1000 + a * 12 + b * 4 + 1 + j);
	s = nck_catalog_add(cat, "s", 1);
	s->dtype = NCK_DTYPE_U32;
	ch = (nck_chunk *)s->chunks;
	ch[0] = (nck_chunk){ .base = 96 };
	ASSERT_EQ_INT(nck_catalog_read(cat, s, 0, got, 4), 0);
	ASSERT_EQ_INT(got[0], 77);
	nck_catalog_close(cat);
}
