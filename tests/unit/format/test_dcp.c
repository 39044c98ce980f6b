/* SPDX-License-Identifier: MIT */
/*
 * DCP .metadata reader: the real file torch 2.11's
 * torch.distributed.checkpoint.save wrote (tests/fixtures/real/torch-2.11/
 * dcp; shapes and dtypes from its manifest.json, storage offsets and
 * lengths read once with Python's pickle and stand-in classes), plus
 * damaged copies of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fmtbuild.h"
#include "format/dcp.h"
#include "nck_test.h"

#ifndef NCK_SOURCE_DIR
#error "NCK_SOURCE_DIR must be defined"
#endif

#define REAL_DCP NCK_SOURCE_DIR "/tests/fixtures/real/torch-2.11/dcp/.metadata"

/* Reads a whole file; fails the test when it cannot. */
static unsigned char *slurp(const char *path, size_t *len)
{
	unsigned char *buf = fb_slurp(path, len);

	ASSERT_TRUE(buf != NULL && *len > 0);
	return buf;
}

/* The tensor named fqn; fails the test when absent. */
static const nck_dcp_tensor *find(const nck_dcp *d, const char *fqn)
{
	for (size_t i = 0; i < d->n_tensors; i++)
		if (strcmp(d->tensors[i].fqn, fqn) == 0)
			return &d->tensors[i];
	nck_test_fail(__FILE__, __LINE__, "no tensor %s", fqn);
}

NCK_TEST(dcp_real_torch_2_11_metadata)
{
	size_t len;
	unsigned char *data = slurp(REAL_DCP, &len);
	const nck_dcp_tensor *t;
	nck_dcp *d;
	nck_diag diag;

	nck_diag_init(&diag);
	ASSERT_EQ_INT(nck_dcp_parse(&d, data, len, ".metadata", &diag), 0);
	ASSERT_EQ_INT(d->n_tensors, 4);
	ASSERT_EQ_INT(d->n_bytes, 0);
	t = find(d, "model.layers.weight");
	ASSERT_EQ_INT(t->dtype, NCK_DTYPE_BF16);
	ASSERT_EQ_INT(t->ndim, 3);
	ASSERT_EQ_INT(t->size[0], 2);
	ASSERT_EQ_INT(t->size[1], 8);
	ASSERT_EQ_INT(t->size[2], 8);
	ASSERT_EQ_INT(t->n_chunks, 1);
	ASSERT_EQ_STR(t->chunks[0].item.file, "__0_0.distcp");
	ASSERT_EQ_INT(t->chunks[0].item.offset, 4987);
	ASSERT_EQ_INT(t->chunks[0].item.length, 1833);
	t = find(d, "extra.step");
	ASSERT_EQ_INT(t->dtype, NCK_DTYPE_I64);
	ASSERT_EQ_INT(t->chunks[0].item.offset, 0);
	ASSERT_EQ_INT(t->chunks[0].item.length, 1577);
	t = find(d, "model.norm.weight");
	ASSERT_EQ_INT(t->dtype, NCK_DTYPE_F32);
	ASSERT_EQ_INT(t->chunks[0].item.offset, 1577);
	t = find(d, "model.embedding.weight");
	ASSERT_EQ_INT(t->size[0], 16);
	ASSERT_EQ_INT(t->chunks[0].item.offset, 3154);
	nck_dcp_free(d);
	free(data);
}

NCK_TEST(dcp_truncated_metadata_is_an_error)
{
	size_t len;
	unsigned char *data = slurp(REAL_DCP, &len);
	nck_diag diag;
	nck_dcp *d;

	for (size_t cut = 0; cut < len; cut += 97) {
		nck_diag_init(&diag);
		ASSERT_TRUE(nck_dcp_parse(&d, data, cut, ".metadata", &diag) < 0);
		ASSERT_EQ_STR(diag.path, ".metadata");
	}
	free(data);
}

NCK_TEST(dcp_not_metadata_is_an_error)
{
	/* A valid pickle of a plain dict: {"a": 1} at protocol 2. */
	static const unsigned char pkl[] = { 0x80, 0x02, '}', 'q', 0x00, 'X', 0x01, 0x00, 0x00,
					     0x00, 'a',  'q', 0x01, 'K', 0x01, 's', '.' };
	nck_diag diag;
	nck_dcp *d;

	nck_diag_init(&diag);
	ASSERT_EQ_INT(nck_dcp_parse(&d, pkl, sizeof(pkl), "x", &diag), -EBADMSG);
	ASSERT_CONTAINS(diag.msg, "storage_data");
}
