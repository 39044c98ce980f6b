/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of a source's loans (nck_src_map / nck_src_unmap) and read-ahead
 * hints (nck_src_willneed): memory and slices lend in place, a lender that
 * lends through another source leaves the inner one to be given back (as a
 * listing does through its objects), and slices shift offsets to their
 * parent.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "io/src.h"
#include "nck_test.h"

/* A lender over a static buffer that counts what it lent and got back. */
typedef struct lender {
	unsigned char data[256];
	int lent, returned;
	uint64_t hint_off;
	size_t hint_len;
	const nck_src *inner; /* lends through this source instead, when set */
} lender;

static int64_t lender_pread(void *impl, void *buf, size_t len, uint64_t off)
{
	lender *l = impl;

	memcpy(buf, l->data + off, len);
	return (int64_t)len;
}

static int lender_check(void *impl)
{
	(void)impl;
	return 0;
}

static const struct stat *lender_stat(void *impl)
{
	static struct stat st;

	(void)impl;
	return &st;
}

static void lender_free(void *impl)
{
	(void)impl;
}

static int lender_map(void *impl, uint64_t off, size_t len, nck_loan *m)
{
	lender *l = impl;

	if (l->inner)
		return nck_src_map(l->inner, off, len, m);
	m->iov[0] = (struct iovec){ .iov_base = l->data + off, .iov_len = len };
	m->pins[0] = l;
	m->n = 1;
	l->lent++;
	return 0;
}

static void lender_unmap(void *impl, nck_loan *m)
{
	lender *l = impl;

	ASSERT_TRUE(m->pins[0] == l);
	l->returned++;
	m->n = 0;
}

static void lender_willneed(void *impl, uint64_t off, size_t len)
{
	lender *l = impl;

	l->hint_off = off;
	l->hint_len = len;
}

static const nck_src_vtab lender_vtab = {
	.pread = lender_pread,
	.check = lender_check,
	.stat = lender_stat,
	.free = lender_free,
	.map = lender_map,
	.unmap = lender_unmap,
	.willneed = lender_willneed,
};

static const nck_src_vtab plain_vtab = {
	.pread = lender_pread,
	.check = lender_check,
	.stat = lender_stat,
	.free = lender_free,
};

NCK_TEST(src_loan_memory_and_slices_lend_in_place)
{
	static const char bytes[] = "0123456789abcdef";
	nck_src *mem, *slice;
	nck_loan m;

	ASSERT_EQ_INT(nck_src_new_mem(&mem, bytes, 16, "mem"), 0);
	ASSERT_EQ_INT(nck_src_new_slice(&slice, mem, 4, 8, "slice"), 0);
	ASSERT_EQ_INT(nck_src_map(mem, 3, 5, &m), 0);
	ASSERT_EQ_INT(m.n, 1);
	ASSERT_TRUE(m.iov[0].iov_base == bytes + 3 && m.iov[0].iov_len == 5);
	nck_src_unmap(&m);
	ASSERT_EQ_INT(nck_src_map(slice, 2, 6, &m), 0);
	ASSERT_TRUE(m.iov[0].iov_base == bytes + 6 && m.iov[0].iov_len == 6);
	nck_src_unmap(&m);
	/* Past the end of the slice (inside the parent): refused. */
	ASSERT_EQ_INT(nck_src_map(slice, 4, 5, &m), -EIO);
	ASSERT_EQ_INT(m.n, 0);
	nck_src_close(slice);
	nck_src_close(mem);
}

NCK_TEST(src_loan_goes_back_to_the_lender_that_made_it)
{
	static lender inner, outer;
	nck_src *in_src, *out_src, *slice;
	nck_loan m;

	memset(&inner, 0, sizeof(inner));
	memset(&outer, 0, sizeof(outer));
	for (int i = 0; i < 256; i++)
		inner.data[i] = (unsigned char)i;
	ASSERT_EQ_INT(nck_src_new_impl_take(&in_src, &lender_vtab, &inner, 256, "inner"), 0);
	outer.inner = in_src;
	ASSERT_EQ_INT(nck_src_new_impl_take(&out_src, &lender_vtab, &outer, 256, "outer"), 0);
	ASSERT_EQ_INT(nck_src_new_slice(&slice, out_src, 100, 100, "member"), 0);
	/* slice -> outer -> inner: the bytes are the inner's at 100 + 10. */
	ASSERT_EQ_INT(nck_src_map(slice, 10, 20, &m), 0);
	ASSERT_EQ_INT(m.n, 1);
	ASSERT_EQ_INT(((unsigned char *)m.iov[0].iov_base)[0], 110);
	ASSERT_EQ_INT(inner.lent, 1);
	nck_src_unmap(&m);
	ASSERT_EQ_INT(inner.returned, 1);
	ASSERT_EQ_INT(outer.returned, 0);
	nck_src_unmap(&m); /* a second give-back is a no-op */
	ASSERT_EQ_INT(inner.returned, 1);
	/* Hints go down the same way, offsets shifted and clipped. */
	nck_src_willneed(slice, 90, 50);
	ASSERT_EQ_INT(outer.hint_off, 190);
	ASSERT_EQ_INT(outer.hint_len, 10);
	nck_src_close(slice);
	nck_src_close(out_src);
	nck_src_close(in_src);
}

NCK_TEST(src_loan_refused_by_a_source_that_cannot_lend)
{
	static lender plain;
	nck_src *src;
	nck_loan m;

	memset(&plain, 0, sizeof(plain));
	ASSERT_EQ_INT(nck_src_new_impl_take(&src, &plain_vtab, &plain, 256, "plain"), 0);
	ASSERT_EQ_INT(nck_src_map(src, 0, 16, &m), -ENOTSUP);
	ASSERT_EQ_INT(m.n, 0);
	nck_src_unmap(&m);
	nck_src_willneed(src, 0, 16); /* no willneed: nothing happens */
	nck_src_close(src);
}
