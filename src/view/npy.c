/* SPDX-License-Identifier: MIT */
/*
 * tensors/<name>.npy (see npy.h). The header is computed from the catalog;
 * the data are gathered by the catalog's reader, then widened in place when
 * the stored dtype has no NumPy equivalent: bf16 is the upper half of an
 * IEEE float32 (exact), fp8 E4M3 (OCP "fn": no infinities, 0x7f/0xff NaN) and
 * E5M2 (the upper byte of an IEEE half) are decoded exactly. The tensors/
 * view of the view table (viewset.c) lists one such file per weight.
 */
#include "view/npy.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "nemockpt/log.h"
#include "view/viewset.h"

/* Stored elements widened per chunk of output. */
#define NPY_WIDEN_BLOCK 4096

const char *nck_npy_descr(nck_dtype dtype, size_t *elem_size)
{
	static const struct {
		const char *descr;
		size_t size;
	} map[NCK_DTYPE_COUNT] = {
		[NCK_DTYPE_BOOL] = { "|b1", 1 },    [NCK_DTYPE_U8] = { "|u1", 1 },
		[NCK_DTYPE_I8] = { "|i1", 1 },      [NCK_DTYPE_U16] = { "<u2", 2 },
		[NCK_DTYPE_I16] = { "<i2", 2 },     [NCK_DTYPE_U32] = { "<u4", 4 },
		[NCK_DTYPE_I32] = { "<i4", 4 },     [NCK_DTYPE_U64] = { "<u8", 8 },
		[NCK_DTYPE_I64] = { "<i8", 8 },     [NCK_DTYPE_F16] = { "<f2", 2 },
		[NCK_DTYPE_BF16] = { "<f4", 4 },    [NCK_DTYPE_F32] = { "<f4", 4 },
		[NCK_DTYPE_F64] = { "<f8", 8 },     [NCK_DTYPE_F8_E4M3] = { "<f4", 4 },
		[NCK_DTYPE_F8_E5M2] = { "<f4", 4 },
	};

	if (dtype <= NCK_DTYPE_UNKNOWN || dtype >= NCK_DTYPE_COUNT) {
		*elem_size = 0;
		return NULL;
	}
	*elem_size = map[dtype].size;
	return map[dtype].descr;
}

size_t nck_npy_header(char *buf, const nck_tensor *t)
{
	size_t esz, n;
	const char *descr = nck_npy_descr(t->dtype, &esz);
	char shape[256] = "";
	size_t sl = 0;

	/* Python's tuple repr: (), (5,), (3, 4). */
	for (uint32_t d = 0; d < t->ndim; d++)
		sl += (size_t)snprintf(shape + sl, sizeof(shape) - sl, "%s%llu", d ? ", " : "",
				       (unsigned long long)t->shape[d]);
	if (t->ndim == 1)
		snprintf(shape + sl, sizeof(shape) - sl, ",");
	/* "\x93NUMPY" 1 0, then the header length (uint16 little-endian). */
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	n = 10 + (size_t)snprintf(buf + 10, NCK_NPY_MAX_HEADER - 10,
				  "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
				  descr ? descr : "|u1", shape);
	/* Pad with spaces to a multiple of 64, the last byte a newline. */
	while ((n + 1) % 64)
		buf[n++] = ' ';
	buf[n++] = '\n';
	buf[8] = (char)((n - 10) & 0xff);
	buf[9] = (char)((n - 10) >> 8);
	return n;
}

/* Elements of `t`. */
static uint64_t npy_elems(const nck_tensor *t)
{
	uint64_t n = 1;

	for (uint32_t d = 0; d < t->ndim; d++)
		n *= t->shape[d];
	return n;
}

uint64_t nck_npy_size(const nck_tensor *t)
{
	char hdr[NCK_NPY_MAX_HEADER];
	size_t esz;

	nck_npy_descr(t->dtype, &esz);
	return nck_npy_header(hdr, t) + npy_elems(t) * esz;
}

float nck_npy_fp8_to_f32(uint8_t v, bool e4m3)
{
	int sign = v >> 7, e, m;
	float x;

	if (e4m3) {
		e = (v >> 3) & 0xf;
		m = v & 7;
		if (e == 15 && m == 7)
			return NAN;
		x = e ? ldexpf(1.0f + (float)m / 8.0f, e - 7) : ldexpf((float)m / 8.0f, -6);
	} else {
		e = (v >> 2) & 0x1f;
		m = v & 3;
		if (e == 31)
			return m ? NAN : (sign ? -INFINITY : INFINITY);
		x = e ? ldexpf(1.0f + (float)m / 4.0f, e - 15) : ldexpf((float)m / 4.0f, -14);
	}
	return sign ? -x : x;
}

/* Fills out[0..n) with the widened float32 bytes of stored elements
 * [first, first+n). */
static int npy_widen(const nck_catalog *cat, const nck_tensor *t, uint64_t first, size_t n,
		     float *out)
{
	size_t ssz = nck_dtype_size(t->dtype);
	unsigned char in[NPY_WIDEN_BLOCK * 2];
	int rc;

	for (size_t done = 0; done < n;) {
		size_t k = n - done < NPY_WIDEN_BLOCK ? n - done : NPY_WIDEN_BLOCK;

		if ((rc = nck_catalog_read(cat, t, (first + done) * ssz, in, k * ssz)) < 0)
			return rc;
		for (size_t i = 0; i < k; i++) {
			if (t->dtype == NCK_DTYPE_BF16) {
				uint32_t bits = (uint32_t)(in[2 * i] | in[2 * i + 1] << 8) << 16;

				memcpy(&out[done + i], &bits, 4);
			} else {
				out[done + i] = nck_npy_fp8_to_f32(in[i], t->dtype == NCK_DTYPE_F8_E4M3);
			}
		}
		done += k;
	}
	return 0;
}

int nck_npy_read(const nck_catalog *cat, const nck_tensor *t, uint64_t off, void *buf, size_t len)
{
	char hdr[NCK_NPY_MAX_HEADER];
	size_t hl = nck_npy_header(hdr, t), esz;
	unsigned char *p = buf;
	uint64_t total, dpos;
	int rc;

	nck_npy_descr(t->dtype, &esz);
	total = hl + npy_elems(t) * esz;
	if (off > total || len > total - off)
		return -EINVAL;
	if (off < hl) {
		size_t n = hl - off < len ? (size_t)(hl - off) : len;

		memcpy(p, hdr + off, n);
		p += n;
		off += n;
		len -= n;
	}
	if (len == 0)
		return 0;
	dpos = off - hl;
	if (esz == nck_dtype_size(t->dtype))
		return nck_catalog_read(cat, t, dpos, p, len);
	/* Widened: produce whole float32 values, copy the wanted bytes. */
	while (len > 0) {
		float tmp[NPY_WIDEN_BLOCK];
		uint64_t first = dpos / 4;
		size_t skip = (size_t)(dpos % 4);
		size_t n = (skip + len + 3) / 4, bytes;

		if (n > NPY_WIDEN_BLOCK)
			n = NPY_WIDEN_BLOCK;
		if ((rc = npy_widen(cat, t, first, n, tmp)) < 0)
			return rc;
		bytes = n * 4 - skip < len ? n * 4 - skip : len;
		memcpy(p, (unsigned char *)tmp + skip, bytes);
		p += bytes;
		dpos += bytes;
		len -= bytes;
	}
	return 0;
}

/* ---- the tensors/ view (view_ops) ------------------------------------------ */

/* Every catalog with a table has tensors/, empty or not. */
int nck_tensors_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		      char *why, size_t why_len)
{
	(void)ctx;
	(void)kind;
	(void)T;
	(void)P;
	(void)why;
	(void)why_len;
	return 0;
}

/* <name>.npy for every weight (names that cannot be file names are left
 * out with a warning). */
int nck_tensors_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		      uint32_t P)
{
	(void)kind;
	(void)T;
	(void)P;
	for (size_t i = 0; i < nck_catalog_count(ctx->cat); i++) {
		const nck_tensor *t = nck_catalog_at(ctx->cat, i);
		size_t len = strlen(t->name);
		char path[256];
		nck_vfile *f;

		if (t->role != NCK_ROLE_WEIGHT)
			continue;
		if (strchr(t->name, '/') || len + 4 > 255 || len == 0) {
			nck_log(NCK_LOG_WARN, "tensors/: '%s' is not a valid file name: left out",
				t->name);
			continue;
		}
		snprintf(path, sizeof(path), "%s.npy", t->name);
		if (!(f = nck_viewset_add(vs, path, NCK_VFILE_NPY)))
			return -ENOMEM;
		f->tensor = t;
		f->size = nck_npy_size(t);
	}
	return 0;
}
