/* SPDX-License-Identifier: MIT */
/*
 * torch.save zip planner (see torchsave.h).
 *
 * Order of work: check every tensor and pickle the state dict into a
 * scratch buffer, then lay the records out in file order, appending every
 * byte that is not tensor data to one growing buffer (the MEM bytes) and
 * cutting a new piece wherever a tensor's data goes; then the central
 * directory and the end records; last, point the MEM pieces into the
 * final buffer. A file offset is always (MEM bytes so far + tensor bytes
 * so far), so no offset is tracked by hand.
 *
 * Byte layouts: PKWARE APPNOTE 6.3.10 §4.3.7 (local header), §4.3.9 (data
 * descriptor), §4.3.12 (central header), §4.3.14-16 (ZIP64 end record,
 * locator, end record), §4.5.3 (ZIP64 extra); what miniz 3.0.2 puts in them
 * (`mz_zip_writer_add_mem_ex_v2`, `mz_zip_writer_finalize_archive`) and how
 * torch pads (`detail::getPadding` in inline_container.cc) as summarised in
 * tensor-formats.md §1.2. Pickle opcodes: CPython `Lib/pickle.py`
 * (`save_long`, `save_tuple`, `_batch_setitems`) at protocol 2.
 *
 * Thread-safety: see torchsave.h.
 */
#include "format/torchsave.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* 64-byte data alignment: kFieldAlignment in torch's inline_container.h. */
#define TS_ALIGN 64u
/* Most items per MARK ... SETITEMS: pickle.py's _BATCHSIZE. */
#define TS_PKL_BATCH 1000u

#define ZIP_SIG_LOCAL	0x04034b50u
#define ZIP_SIG_DESC	0x08074b50u
#define ZIP_SIG_CENTRAL 0x02014b50u
#define ZIP_SIG_EOCD64	0x06064b50u
#define ZIP_SIG_LOC64	0x07064b50u
#define ZIP_SIG_EOCD	0x06054b50u
#define ZIP_LOCAL_LEN	30u	/* fixed part of a local header */
#define ZIP_EOCD64_BODY 44u	/* ZIP64 end record after its signature and size field */
#define ZIP_U16_MAX	0xffffu /* classic fields hold this when ZIP64 has the value */
#define ZIP_U32_MAX	0xffffffffu
#define ZIP_F_DESC	0x0008u /* bit 3: CRC and sizes follow the data */
#define ZIP_F_UTF8	0x0800u /* bit 11: UTF-8 name (miniz always sets it) */
#define ZIP_X_ZIP64	0x0001u
#define ZIP_X_PAD	0x4246u /* 'F','B': torch's padding field */
#define ZIP_MADE_BY64	0x031eu /* miniz's "made by" and "needed" in the ZIP64 end record */
#define ZIP_NEEDED64	0x002du

/* Element types: the storage class torch pickles for _rebuild_tensor_v2,
 * or NULL for dtypes in torch.storage._new_dtypes(), which go through
 * _rebuild_tensor_v3 with an UntypedStorage and the dtype global. */
static const struct ts_type {
	const char *storage;
	const char *dtype;
} ts_types[NCK_DTYPE_COUNT] = {
	[NCK_DTYPE_BOOL] = { "BoolStorage", "bool" },
	[NCK_DTYPE_U8] = { "ByteStorage", "uint8" },
	[NCK_DTYPE_I8] = { "CharStorage", "int8" },
	[NCK_DTYPE_U16] = { NULL, "uint16" },
	[NCK_DTYPE_I16] = { "ShortStorage", "int16" },
	[NCK_DTYPE_U32] = { NULL, "uint32" },
	[NCK_DTYPE_I32] = { "IntStorage", "int32" },
	[NCK_DTYPE_U64] = { NULL, "uint64" },
	[NCK_DTYPE_I64] = { "LongStorage", "int64" },
	[NCK_DTYPE_F16] = { "HalfStorage", "float16" },
	[NCK_DTYPE_BF16] = { "BFloat16Storage", "bfloat16" },
	[NCK_DTYPE_F32] = { "FloatStorage", "float32" },
	[NCK_DTYPE_F64] = { "DoubleStorage", "float64" },
	[NCK_DTYPE_F8_E4M3] = { NULL, "float8_e4m3fn" },
	[NCK_DTYPE_F8_E5M2] = { NULL, "float8_e5m2" },
};

/* ---- byte buffer ------------------------------------------------------------------ */

/* A growing byte string; `oom` sticks once an append fails, checked once at the end. */
typedef struct ts_buf {
	unsigned char *p;
	size_t len, cap;
	bool oom;
} ts_buf;

/* Appends n bytes for the caller to fill and returns them; NULL (and oom set) when out of
 * memory. */
static unsigned char *buf_grow(ts_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	unsigned char *p;

	while (cap - b->len < n && cap <= SIZE_MAX / 2)
		cap *= 2;
	if (b->oom || cap - b->len < n || (cap != b->cap && !(p = realloc(b->p, cap)))) {
		b->oom = true;
		return NULL;
	}
	if (cap != b->cap)
		b->p = p, b->cap = cap;
	b->len += n;
	return b->p + b->len - n;
}

static void buf_put(ts_buf *b, const void *s, size_t n)
{
	unsigned char *d = buf_grow(b, n);

	if (d && n)
		memcpy(d, s, n);
}

static void buf_fill(ts_buf *b, int c, size_t n)
{
	unsigned char *d = buf_grow(b, n);

	if (d && n)
		memset(d, c, n);
}

/* Appends the n low bytes of v, little-endian. */
static void buf_le(ts_buf *b, uint64_t v, unsigned n)
{
	unsigned char *d = buf_grow(b, n);

	for (unsigned i = 0; d && i < n; i++)
		d[i] = (unsigned char)(v >> (8 * i));
}

/* ---- checks ----------------------------------------------------------------------- */

/* Whether s[0, n) is UTF-8 that Python's strict decoder accepts (no
 * overlongs, surrogates or code points past U+10FFFF): data.pkl's strings
 * are decoded that way. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if (n - i < len)
			return false;
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Element count and contiguous strides (elements) of t. torch's contiguous
 * strides treat a 0-sized dimension as 1 (zeros(0, 4).stride() == (4, 1)). */
static int tensor_layout(const nck_ts_tensor *t, uint64_t *numel, uint64_t *stride)
{
	uint64_t n = 1, s = 1;

	for (uint32_t d = t->ndim; d-- > 0;) {
		uint64_t dim = t->shape[d];

		stride[d] = s;
		if (dim > INT64_MAX || __builtin_mul_overflow(n, dim, &n) ||
		    __builtin_mul_overflow(s, dim ? dim : 1, &s) || s > INT64_MAX)
			return -EOVERFLOW;
	}
	*numel = n;
	return 0;
}

/* ---- data.pkl --------------------------------------------------------------------- */

/* An int with the shortest opcode, as pickle.py's save_long picks it (v <= INT64_MAX). */
static void pkl_int(ts_buf *b, uint64_t v)
{
	if (v <= 0xff) {
		buf_put(b, "K", 1);
		buf_le(b, v, 1);
	} else if (v <= 0xffff) {
		buf_put(b, "M", 1);
		buf_le(b, v, 2);
	} else if (v <= 0x7fffffff) {
		buf_put(b, "J", 1);
		buf_le(b, v, 4);
	} else {
		/* LONG1: two's complement, one byte more than the bits need (a sign bit). */
		unsigned n = (unsigned)(64 - __builtin_clzll(v)) / 8 + 1;

		buf_le(b, 0x8a, 1);
		buf_le(b, n, 1);
		buf_le(b, v, n);
	}
}

/* BINUNICODE: u32 length and the UTF-8 bytes. */
static void pkl_str(ts_buf *b, const char *s, size_t n)
{
	buf_put(b, "X", 1);
	buf_le(b, n, 4);
	buf_put(b, s, n);
}

/* GLOBAL "module\nname\n". */
static void pkl_global(ts_buf *b, const char *module, const char *name)
{
	buf_put(b, "c", 1);
	buf_put(b, module, strlen(module));
	buf_put(b, "\n", 1);
	buf_put(b, name, strlen(name));
	buf_put(b, "\n", 1);
}

/* A tuple of ints, with the opcodes save_tuple uses at protocol 2. */
static void pkl_ints(ts_buf *b, const uint64_t *v, uint32_t n)
{
	static const char tuple_op[4] = { ')', '\x85', '\x86', '\x87' };

	if (n > 3)
		buf_put(b, "(", 1);
	for (uint32_t i = 0; i < n; i++)
		pkl_int(b, v[i]);
	buf_put(b, n > 3 ? "t" : &tuple_op[n], 1);
}

/*
 * One tensor as torch/_tensor.py `_reduce_ex_internal` pickles it:
 * _rebuild_tensor_v2(<storage>, 0, shape, stride, False, OrderedDict()),
 * or _rebuild_tensor_v3(..., dtype) for the dtypes without a storage class;
 * <storage> is the persistent id ('storage', cls, key, 'cpu', numel) of
 * torch/serialization.py `_save`, numel counted in bytes for UntypedStorage.
 */
static void pkl_tensor(ts_buf *b, const nck_ts_tensor *t, size_t key, uint64_t numel,
		       const uint64_t *stride)
{
	const struct ts_type *ty = &ts_types[t->dtype];
	char k[24];

	snprintf(k, sizeof(k), "%zu", key);
	pkl_global(b, "torch._utils", ty->storage ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
	buf_put(b, "((", 2);
	pkl_str(b, "storage", 7);
	pkl_global(b, "torch", ty->storage ? ty->storage : "UntypedStorage");
	pkl_str(b, k, strlen(k));
	pkl_str(b, "cpu", 3);
	pkl_int(b, ty->storage ? numel : numel * nck_dtype_size(t->dtype));
	buf_put(b, "tQ", 2); /* TUPLE, BINPERSID */
	pkl_int(b, 0);
	pkl_ints(b, t->shape, t->ndim);
	pkl_ints(b, stride, t->ndim);
	buf_put(b, "\x89", 1); /* requires_grad False */
	pkl_global(b, "collections", "OrderedDict");
	buf_put(b, ")R", 2);
	if (!ty->storage)
		pkl_global(b, "torch", ty->dtype);
	buf_put(b, "tR", 2);
}

/* Checks one tensor, records its byte size in *e and pickles "name: tensor". */
static int pkl_item(ts_buf *b, const nck_ts_tensor *t, size_t i, nck_ts_entry *e, nck_diag *diag)
{
	uint64_t numel, stride[NCK_MAX_DIMS];
	size_t nlen;
	int rc;

	if (!t->name || (nlen = strlen(t->name)) > ZIP_U32_MAX ||
	    !utf8_ok((const unsigned char *)t->name, nlen))
		return nck_diag_set(diag, -EINVAL, NULL, -1, "tensor %zu: no UTF-8 name", i);
	if (t->ndim > NCK_MAX_DIMS)
		return nck_diag_set(diag, -EINVAL, NULL, -1, "%s: %u dimensions", t->name,
				    t->ndim);
	if ((unsigned)t->dtype >= NCK_DTYPE_COUNT || !ts_types[t->dtype].dtype)
		return nck_diag_set(diag, -ENOTSUP, NULL, -1, "%s: dtype torch cannot store",
				    t->name);
	rc = tensor_layout(t, &numel, stride);
	if (rc == 0 && (__builtin_mul_overflow(numel, nck_dtype_size(t->dtype), &e->nbytes) ||
			e->nbytes > INT64_MAX))
		rc = -EOVERFLOW;
	if (rc < 0)
		return nck_diag_set(diag, rc, NULL, -1, "%s: size overflows", t->name);
	pkl_str(b, t->name, nlen);
	pkl_tensor(b, t, i, numel, stride);
	return 0;
}

/* data.pkl: an OrderedDict filled by SETITEMS in batches, as pickle.py writes it. */
static int pkl_build(ts_buf *b, const nck_ts_tensor *t, size_t n, nck_ts_entry *entries,
		     nck_diag *diag)
{
	int rc;

	buf_put(b, "\x80\x02", 2); /* PROTO 2: torch's DEFAULT_PROTOCOL */
	pkl_global(b, "collections", "OrderedDict");
	buf_put(b, ")R", 2);
	for (size_t i = 0; i < n; i += TS_PKL_BATCH) {
		size_t m = n - i < TS_PKL_BATCH ? n - i : TS_PKL_BATCH;

		if (m > 1)
			buf_put(b, "(", 1);
		for (size_t k = i; k < i + m; k++)
			if ((rc = pkl_item(b, &t[k], k, &entries[k], diag)) < 0)
				return rc;
		buf_put(b, m > 1 ? "u" : "s", 1);
	}
	buf_put(b, ".", 1);
	return b->oom ? -ENOMEM : 0;
}

/* ---- zip layout ------------------------------------------------------------------- */

/* Where a record landed: what its central-directory entry repeats. */
typedef struct ts_rec {
	uint64_t lho, size;
	uint32_t crc;
	size_t tensor; /* index, or SIZE_MAX for the plan's own records */
} ts_rec;

typedef struct ts_builder {
	ts_buf mem;	     /* MEM bytes so far */
	uint64_t data_bytes; /* tensor bytes so far */
	uint64_t run_off;    /* file offset where the current MEM piece starts */
	size_t run_buf;	     /* ... and its offset in mem */
	nck_ts_piece *pieces;
	size_t n_pieces;
	ts_rec *recs; /* data.pkl, byteorder, one per tensor, version */
	size_t n_recs, n_tensors;
	const char *archive;
	size_t alen;
	char *name; /* scratch: the current record's name */
	nck_ts_entry *entries;
} ts_builder;

/* The file offset of the next byte. */
static uint64_t pos(const ts_builder *b)
{
	return b->data_bytes + b->mem.len;
}

/* Writes record r's name into b->name (which starts with the archive); returns its length. */
static size_t rec_name(ts_builder *b, size_t r)
{
	char *at = b->name + b->alen;

	if (r >= 2 && r < b->n_recs - 1)
		return b->alen + (size_t)sprintf(at, "/data/%zu", r - 2);
	return b->alen + (size_t)sprintf(at, "%s", r == 0 ? "/data.pkl"
						   : r == 1 ? "/byteorder"
							    : "/version");
}

/* Ends the current MEM piece (if it has bytes) and starts the next at the current offset. */
static void cut_mem(ts_builder *b)
{
	if (b->mem.len > b->run_buf)
		b->pieces[b->n_pieces++] = (nck_ts_piece){ .off = b->run_off,
							   .len = b->mem.len - b->run_buf,
							   .kind = NCK_TS_MEM };
	b->run_buf = b->mem.len;
	b->run_off = pos(b);
}

/*
 * Appends, when m is not NULL, the ZIP64 extra field miniz writes: both sizes
 * when they reach 0xFFFFFFFF, the header offset when it does; returns its
 * length (0: none). miniz leaves the compressed size 0 in a local header's
 * field; we write the real one, which APPNOTE §4.5.3 asks for and no reader
 * of torch files looks at.
 */
static unsigned zip64_extra(ts_buf *m, uint64_t size, uint64_t lho)
{
	bool big = size >= ZIP_U32_MAX, far = lho >= ZIP_U32_MAX;
	unsigned len = (big ? 16u : 0u) + (far ? 8u : 0u);

	if (len && m) {
		buf_le(m, ZIP_X_ZIP64, 2);
		buf_le(m, len, 2);
		if (big) {
			buf_le(m, size, 8); /* uncompressed */
			buf_le(m, size, 8); /* compressed: stored, the same */
		}
		if (far)
			buf_le(m, lho, 8);
	}
	return len ? len + 4 : 0;
}

/*
 * Appends record r: the local header (zero CRC and sizes, as miniz writes
 * them, bit 3 set when there is data), its ZIP64 extra, the 'FB' padding
 * field, the data (`data` copied, or a DATA piece of tensor rec->tensor when
 * `data` is NULL) and the data descriptor, 64-bit when the ZIP64 extra is
 * there. The padding counts from the archive start (detail::getPadding).
 */
static void emit_record(ts_builder *b, size_t r, const void *data, uint64_t size)
{
	ts_rec *rec = &b->recs[r];
	ts_buf *m = &b->mem;
	size_t nlen = rec_name(b, r);
	uint64_t lho = pos(b);
	unsigned x64 = zip64_extra(NULL, size, lho);
	size_t pad = (TS_ALIGN - (lho + ZIP_LOCAL_LEN + nlen + x64 + 4) % TS_ALIGN) % TS_ALIGN;

	rec->lho = lho;
	rec->size = size;
	rec->crc = data ? (uint32_t)crc32_z(0, data, (size_t)size) : 0;
	buf_le(m, ZIP_SIG_LOCAL, 4);
	buf_le(m, 0, 2); /* version needed: miniz writes 0 for stored records */
	buf_le(m, ZIP_F_UTF8 | (size ? ZIP_F_DESC : 0), 2);
	buf_fill(m, 0, 2 + 4 + 12); /* method stored, DOS time/date, CRC, sizes */
	buf_le(m, nlen, 2);
	buf_le(m, x64 + 4 + pad, 2);
	buf_put(m, b->name, nlen);
	zip64_extra(m, size, lho);
	buf_le(m, ZIP_X_PAD, 2);
	buf_le(m, pad, 2);
	buf_fill(m, 'Z', pad);
	if (rec->tensor != SIZE_MAX)
		b->entries[rec->tensor].header = lho, b->entries[rec->tensor].data = pos(b);
	if (data) {
		buf_put(m, data, (size_t)size);
	} else if (size) {
		cut_mem(b);
		b->pieces[b->n_pieces++] = (nck_ts_piece){
			.off = pos(b), .len = size, .kind = NCK_TS_DATA, .tensor = rec->tensor
		};
		b->data_bytes += size;
		b->run_off = pos(b);
	}
	if (!size)
		return;
	buf_le(m, ZIP_SIG_DESC, 4);
	if (rec->tensor != SIZE_MAX)
		b->entries[rec->tensor].crc_at[0] = pos(b);
	buf_le(m, rec->crc, 4);
	buf_le(m, size, x64 ? 8 : 4);
	buf_le(m, size, x64 ? 8 : 4);
}

/* Appends record r's central-directory entry: sizes and offset capped at
 * 0xFFFFFFFF with the real values in a ZIP64 extra (no 'FB' field here). */
static void emit_central(ts_builder *b, size_t r)
{
	const ts_rec *rec = &b->recs[r];
	ts_buf *m = &b->mem;
	size_t nlen = rec_name(b, r);
	uint64_t csize = rec->size < ZIP_U32_MAX ? rec->size : ZIP_U32_MAX;

	buf_le(m, ZIP_SIG_CENTRAL, 4);
	buf_le(m, 0, 4); /* made by, needed: 0, as in torch's files */
	buf_le(m, ZIP_F_UTF8 | (rec->size ? ZIP_F_DESC : 0), 2);
	buf_fill(m, 0, 2 + 4); /* method stored, DOS time/date */
	if (rec->tensor != SIZE_MAX && rec->size)
		b->entries[rec->tensor].crc_at[1] = pos(b);
	buf_le(m, rec->crc, 4);
	buf_le(m, csize, 4);
	buf_le(m, csize, 4);
	buf_le(m, nlen, 2);
	buf_le(m, zip64_extra(NULL, rec->size, rec->lho), 2);
	buf_fill(m, 0, 2 + 2 + 2 + 4); /* comment length, disk, internal and external attributes */
	buf_le(m, rec->lho < ZIP_U32_MAX ? rec->lho : ZIP_U32_MAX, 4);
	buf_put(m, b->name, nlen);
	zip64_extra(m, rec->size, rec->lho);
}

/* The central directory and the end records miniz always writes with
 * MZ_ZIP_FLAG_WRITE_ZIP64: ZIP64 end record, locator, classic end record. */
static void emit_trailer(ts_builder *b)
{
	ts_buf *m = &b->mem;
	uint64_t cd = pos(b), cd_len, z64;
	uint64_t n = b->n_recs;

	for (size_t r = 0; r < b->n_recs; r++)
		emit_central(b, r);
	z64 = pos(b);
	cd_len = z64 - cd;
	buf_le(m, ZIP_SIG_EOCD64, 4);
	buf_le(m, ZIP_EOCD64_BODY, 8);
	buf_le(m, ZIP_MADE_BY64, 2);
	buf_le(m, ZIP_NEEDED64, 2);
	buf_fill(m, 0, 4 + 4); /* this disk, the directory's disk */
	buf_le(m, n, 8);
	buf_le(m, n, 8);
	buf_le(m, cd_len, 8);
	buf_le(m, cd, 8);
	buf_le(m, ZIP_SIG_LOC64, 4);
	buf_le(m, 0, 4);
	buf_le(m, z64, 8);
	buf_le(m, 1, 4); /* disks */
	buf_le(m, ZIP_SIG_EOCD, 4);
	buf_fill(m, 0, 2 + 2);
	buf_le(m, n < ZIP_U16_MAX ? n : ZIP_U16_MAX, 2);
	buf_le(m, n < ZIP_U16_MAX ? n : ZIP_U16_MAX, 2);
	buf_le(m, cd_len < ZIP_U32_MAX ? cd_len : ZIP_U32_MAX, 4);
	buf_le(m, cd < ZIP_U32_MAX ? cd : ZIP_U32_MAX, 4);
	buf_le(m, 0, 2); /* comment length */
	cut_mem(b);
}

/* Lays out every record after data.pkl (already pickled into pkl). */
static void emit_all(ts_builder *b, const ts_buf *pkl)
{
	for (size_t r = 0; r < b->n_recs; r++)
		b->recs[r].tensor = r >= 2 && r - 2 < b->n_tensors ? r - 2 : SIZE_MAX;
	emit_record(b, 0, pkl->p, pkl->len);
	emit_record(b, 1, "little", 6);
	for (size_t i = 0; i < b->n_tensors; i++)
		emit_record(b, i + 2, NULL, b->entries[i].nbytes);
	emit_record(b, b->n_recs - 1, "3\n", 2); /* kMinProducedFileFormatVersion */
	emit_trailer(b);
}

/* ---- plan ------------------------------------------------------------------------- */

/* Hands the MEM buffer to the plan and points MEM pieces and CRC fields into it. */
static void plan_finish(nck_ts_plan *p, ts_builder *b)
{
	uint64_t data_before = 0, data_seen = 0;

	p->mem = b->mem.p;
	p->mem_len = b->mem.len;
	b->mem.p = NULL;
	p->pieces = b->pieces;
	p->n_pieces = b->n_pieces;
	b->pieces = NULL;
	p->size = pos(b);
	for (size_t i = 0; i < p->n_pieces; i++) {
		nck_ts_piece *pc = &p->pieces[i];

		if (pc->kind == NCK_TS_DATA)
			data_before += pc->len;
		else
			pc->mem = p->mem + (pc->off - data_before);
	}
	/* A descriptor's CRC follows its tensor's data; the central directory follows all. */
	for (size_t i = 0; i < p->n_entries; i++) {
		nck_ts_entry *e = &p->entries[i];

		if (!e->nbytes)
			continue;
		data_seen += e->nbytes;
		e->crc_mem[0] = p->mem + (e->crc_at[0] - data_seen);
		e->crc_mem[1] = p->mem + (e->crc_at[1] - data_before);
	}
}

/* Checks the archive name: non-empty UTF-8 without '/' (torch's reader takes
 * the prefix up to the first '/'), short enough for every record name. */
static int check_archive(const char *archive, size_t n, nck_diag *diag)
{
	size_t alen = archive ? strlen(archive) : 0;
	char key[32];

	snprintf(key, sizeof(key), "/data/%zu", n);
	if (!alen || strchr(archive, '/') || !utf8_ok((const unsigned char *)archive, alen) ||
	    alen + strlen(key) > ZIP_U16_MAX)
		return nck_diag_set(diag, -EINVAL, NULL, -1, "bad archive name for torch.save");
	return 0;
}

int nck_ts_plan_build(nck_ts_plan **out, const char *archive, const nck_ts_tensor *t, size_t n,
		      nck_diag *diag)
{
	ts_builder b = { .archive = archive, .n_tensors = n };
	ts_buf pkl = { 0 };
	nck_ts_plan *p = NULL;
	uint64_t total = 0;
	int rc = -EINVAL;

	if (!out || (n && !t))
		return nck_diag_set(diag, -EINVAL, NULL, -1, "no tensors");
	*out = NULL;
	if ((rc = check_archive(archive, n, diag)) < 0)
		return rc;
	rc = -ENOMEM;
	b.alen = strlen(archive);
	b.n_recs = n + 3;
	if (n > SIZE_MAX / sizeof(nck_ts_piece) / 2 - 2 || !(p = calloc(1, sizeof(*p))) ||
	    !(p->entries = calloc(n ? n : 1, sizeof(*p->entries))) ||
	    !(b.pieces = calloc(2 * n + 2, sizeof(*b.pieces))) ||
	    !(b.recs = calloc(b.n_recs, sizeof(*b.recs))) || !(b.name = malloc(b.alen + 32)))
		goto out;
	memcpy(b.name, archive, b.alen);
	p->n_entries = n;
	b.entries = p->entries;
	if ((rc = pkl_build(&pkl, t, n, p->entries, diag)) < 0)
		goto out;
	/* Bounds the file below INT64_MAX: headers add at most ~64 KiB per record. */
	for (size_t i = 0; i < n; i++)
		if (__builtin_add_overflow(total, p->entries[i].nbytes, &total) ||
		    total > INT64_MAX / 2) {
			rc = nck_diag_set(diag, -EOVERFLOW, NULL, -1, "%s: file too large",
					  t[i].name);
			goto out;
		}
	emit_all(&b, &pkl);
	if (b.mem.oom) {
		rc = -ENOMEM;
		goto out;
	}
	plan_finish(p, &b);
	*out = p;
	p = NULL;
	rc = 0;
out:
	if (rc == -ENOMEM)
		nck_diag_set(diag, rc, NULL, -1, "out of memory planning a torch.save file");
	nck_ts_plan_free(p);
	free(pkl.p);
	free(b.mem.p);
	free(b.pieces);
	free(b.recs);
	free(b.name);
	return rc;
}

void nck_ts_set_crc(nck_ts_plan *p, size_t i, uint32_t crc)
{
	if (!p || i >= p->n_entries || !p->entries[i].nbytes)
		return;
	for (int k = 0; k < 2; k++)
		for (int j = 0; j < 4; j++)
			p->entries[i].crc_mem[k][j] = (unsigned char)(crc >> (8 * j));
}

size_t nck_ts_piece_at(const nck_ts_plan *p, uint64_t off)
{
	size_t lo = 0, hi = p->n_pieces;

	if (off >= p->size)
		return p->n_pieces;
	/* The last piece starting at or before off. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->pieces[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void nck_ts_plan_free(nck_ts_plan *p)
{
	if (!p)
		return;
	free(p->pieces);
	free(p->entries);
	free(p->mem);
	free(p);
}
