/* SPDX-License-Identifier: MIT */
/*
 * Test helper: writes zip archives and pickles byte by byte, independently
 * of the readers under test, so unit tests and the torch fuzz target have
 * their own oracle. Zip layout from PKWARE APPNOTE 6.3.10 §4.3 and the
 * torch writer's habits (tensor-formats.md §1.2: zero sizes in local
 * headers, data descriptor, 'FB' padding to 64 bytes, ZIP64 trailer);
 * pickle opcodes from CPython `Lib/pickletools.py`. Allocation failures
 * abort: this is test code.
 */
#ifndef NCK_TESTS_FMTBUILD_H
#define NCK_TESTS_FMTBUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- committed fixtures ------------------------------------------------------------ */

/*
 * Writes the absolute path of `rel` (relative to the repository root) into
 * buf. The root is found from this header's own path, which CMake passes
 * to the compiler as an absolute path.
 */
static inline void fb_repo_path(char *buf, size_t size, const char *rel)
{
	const char *self = __FILE__, *cut = strstr(self, "tests/unit/format/fmtbuild.h");

	if (!cut || self[0] != '/')
		abort();
	snprintf(buf, size, "%.*s%s", (int)(cut - self), self, rel);
}

/* Reads a whole file into a malloc'd buffer (NULL if it cannot be read). */
static inline unsigned char *fb_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* ---- zip ---------------------------------------------------------------------- */

#define ZB_MAX_ENTRIES	 64
#define ZB_ZIP64	 0x1u /* ZIP64 EOCD record and locator before the EOCD (torch) */
#define ZB_EOCD_CAPPED	 0x2u /* classic EOCD fields hold 0xFFFF/0xFFFFFFFF (with ZB_ZIP64) */
#define ZB_CENTRAL_ZIP64 0x4u /* every central entry keeps sizes and offset in a ZIP64 extra */

typedef struct zb_entry {
	char name[256];
	uint64_t lho, size;
	uint32_t crc;
	uint16_t method;
} zb_entry;

typedef struct zipbuild {
	unsigned char *buf;
	size_t len, cap;
	zb_entry ents[ZB_MAX_ENTRIES];
	size_t n;
	size_t cd_offset; /* set by zb_finish */
} zipbuild;

static inline void zb_put(zipbuild *z, const void *p, size_t n)
{
	if (z->len + n > z->cap) {
		size_t cap = (z->len + n) * 2 + 64;

		z->buf = realloc(z->buf, cap);
		if (!z->buf)
			abort();
		z->cap = cap;
	}
	if (n)
		memcpy(z->buf + z->len, p, n);
	z->len += n;
}

static inline void zb_u16(zipbuild *z, uint64_t v)
{
	unsigned char b[2] = { (unsigned char)v, (unsigned char)(v >> 8) };

	zb_put(z, b, 2);
}

static inline void zb_u32(zipbuild *z, uint64_t v)
{
	zb_u16(z, v & 0xffff);
	zb_u16(z, v >> 16 & 0xffff);
}

static inline void zb_u64(zipbuild *z, uint64_t v)
{
	zb_u32(z, v & 0xffffffffu);
	zb_u32(z, v >> 32);
}

/* CRC-32 (IEEE 802.3, reflected, as zip uses), bit by bit. */
static inline uint32_t zb_crc32(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= s[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

/*
 * Appends a record the way torch writes one: a local header with zero CRC
 * and sizes and flag bit 3, an 'FB' extra padding the data to a multiple of
 * 64 bytes from the archive start, the data, then a data descriptor.
 * `method` is only recorded (the data is never compressed). Returns the
 * data offset.
 */
static inline size_t zb_record(zipbuild *z, const char *name, const void *data, size_t n,
			       uint16_t method)
{
	zb_entry *e = &z->ents[z->n++];
	size_t nl = strlen(name), pad, at;

	if (z->n > ZB_MAX_ENTRIES || nl >= sizeof(e->name))
		abort();
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->lho = z->len;
	e->size = n;
	e->crc = zb_crc32(data, n);
	e->method = method;
	zb_u32(z, 0x04034b50);
	zb_u16(z, 45);
	zb_u16(z, n ? 0x0808 : 0x0800); /* UTF-8 name; data descriptor when non-empty */
	zb_u16(z, method);
	zb_u32(z, 0); /* time, date */
	zb_u32(z, 0); /* crc */
	zb_u32(z, 0); /* sizes, as torch writes them */
	zb_u32(z, 0);
	zb_u16(z, nl);
	at = z->len + 2 + nl + 4; /* where the data would start with an empty pad */
	pad = (64 - at % 64) % 64;
	zb_u16(z, 4 + pad);
	zb_put(z, name, nl);
	zb_u16(z, 0x4246); /* 'F','B' */
	zb_u16(z, pad);
	for (size_t i = 0; i < pad; i++)
		zb_put(z, "Z", 1);
	at = z->len;
	zb_put(z, data, n);
	if (n) {
		zb_u32(z, 0x08074b50);
		zb_u32(z, e->crc);
		zb_u32(z, n);
		zb_u32(z, n);
	}
	return at;
}

/* Writes the central directory, the optional ZIP64 trailer and the EOCD with a comment. */
static inline void zb_finish(zipbuild *z, unsigned flags, const char *comment, size_t clen)
{
	size_t cd = z->len, z64;
	int x64 = (flags & ZB_CENTRAL_ZIP64) != 0;

	z->cd_offset = cd;
	for (size_t i = 0; i < z->n; i++) {
		zb_entry *e = &z->ents[i];
		size_t nl = strlen(e->name);

		zb_u32(z, 0x02014b50);
		zb_u16(z, 0x031e);
		zb_u16(z, 45);
		zb_u16(z, e->size ? 0x0808 : 0x0800);
		zb_u16(z, e->method);
		zb_u32(z, 0);
		zb_u32(z, e->crc);
		zb_u32(z, x64 ? 0xffffffffu : e->size);
		zb_u32(z, x64 ? 0xffffffffu : e->size);
		zb_u16(z, nl);
		zb_u16(z, x64 ? 28 : 0);
		zb_u16(z, 0); /* comment */
		zb_u16(z, 0); /* disk */
		zb_u16(z, 0);
		zb_u32(z, 0);
		zb_u32(z, x64 ? 0xffffffffu : e->lho);
		zb_put(z, e->name, nl);
		if (x64) {
			zb_u16(z, 0x0001);
			zb_u16(z, 24);
			zb_u64(z, e->size);
			zb_u64(z, e->size);
			zb_u64(z, e->lho);
		}
	}
	z64 = z->len;
	if (flags & ZB_ZIP64) {
		zb_u32(z, 0x06064b50);
		zb_u64(z, 44);
		zb_u16(z, 0x031e);
		zb_u16(z, 45);
		zb_u32(z, 0);
		zb_u32(z, 0);
		zb_u64(z, z->n);
		zb_u64(z, z->n);
		zb_u64(z, z64 - cd);
		zb_u64(z, cd);
		zb_u32(z, 0x07064b50);
		zb_u32(z, 0);
		zb_u64(z, z64);
		zb_u32(z, 1);
	}
	zb_u32(z, 0x06054b50);
	zb_u16(z, 0);
	zb_u16(z, 0);
	zb_u16(z, (flags & ZB_EOCD_CAPPED) ? 0xffff : z->n);
	zb_u16(z, (flags & ZB_EOCD_CAPPED) ? 0xffff : z->n);
	zb_u32(z, (flags & ZB_EOCD_CAPPED) ? 0xffffffffu : z64 - cd);
	zb_u32(z, (flags & ZB_EOCD_CAPPED) ? 0xffffffffu : cd);
	zb_u16(z, clen);
	zb_put(z, comment, clen);
}

/* ---- pickle --------------------------------------------------------------------- */

typedef struct pklbuild {
	unsigned char buf[32768];
	size_t len;
} pklbuild;

static inline void pb_bytes(pklbuild *p, const void *s, size_t n)
{
	if (p->len + n > sizeof(p->buf))
		abort();
	memcpy(p->buf + p->len, s, n);
	p->len += n;
}

static inline void pb_op(pklbuild *p, unsigned char op)
{
	pb_bytes(p, &op, 1);
}

static inline void pb_le(pklbuild *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		pb_op(p, (unsigned char)(v >> (8 * i)));
}

/* PROTO 2, as torch.save writes. */
static inline void pb_proto(pklbuild *p)
{
	pb_op(p, 0x80);
	pb_op(p, 2);
}

/* BINUNICODE. */
static inline void pb_str(pklbuild *p, const char *s)
{
	pb_op(p, 'X');
	pb_le(p, strlen(s), 4);
	pb_bytes(p, s, strlen(s));
}

/* The shortest int opcode, as pickle.py's save_long picks it. */
static inline void pb_int(pklbuild *p, int64_t v)
{
	if (v >= 0 && v <= 0xff) {
		pb_op(p, 'K');
		pb_le(p, (uint64_t)v, 1);
	} else if (v >= 0 && v <= 0xffff) {
		pb_op(p, 'M');
		pb_le(p, (uint64_t)v, 2);
	} else if (v >= INT32_MIN && v <= INT32_MAX) {
		pb_op(p, 'J');
		pb_le(p, (uint64_t)v, 4);
	} else {
		pb_op(p, 0x8a);
		pb_op(p, 8);
		pb_le(p, (uint64_t)v, 8);
	}
}

/* GLOBAL "module\nname\n". */
static inline void pb_global(pklbuild *p, const char *module, const char *name)
{
	pb_op(p, 'c');
	pb_bytes(p, module, strlen(module));
	pb_op(p, '\n');
	pb_bytes(p, name, strlen(name));
	pb_op(p, '\n');
}

/* MARK ints... TUPLE. */
static inline void pb_ints(pklbuild *p, const int64_t *v, int n)
{
	pb_op(p, '(');
	for (int i = 0; i < n; i++)
		pb_int(p, v[i]);
	pb_op(p, 't');
}

/* The persistent id ('storage', torch.<cls>, key, 'cpu', numel) + BINPERSID. */
static inline void pb_storage(pklbuild *p, const char *cls, const char *key, int64_t numel)
{
	pb_op(p, '(');
	pb_str(p, "storage");
	pb_global(p, "torch", cls);
	pb_str(p, key);
	pb_str(p, "cpu");
	pb_int(p, numel);
	pb_op(p, 't');
	pb_op(p, 'Q');
}

/* collections.OrderedDict() (the empty backward-hooks argument). */
static inline void pb_odict(pklbuild *p)
{
	pb_global(p, "collections", "OrderedDict");
	pb_op(p, ')');
	pb_op(p, 'R');
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()). */
static inline void pb_tensor_v2(pklbuild *p, const char *cls, const char *key, int64_t numel,
				int64_t offset, const int64_t *shape, const int64_t *stride, int nd,
				int requires_grad)
{
	pb_global(p, "torch._utils", "_rebuild_tensor_v2");
	pb_op(p, '(');
	pb_storage(p, cls, key, numel);
	pb_int(p, offset);
	pb_ints(p, shape, nd);
	pb_ints(p, stride, nd);
	pb_op(p, requires_grad ? 0x88 : 0x89);
	pb_odict(p);
	pb_op(p, 't');
	pb_op(p, 'R');
}

/* _rebuild_tensor_v3(UntypedStorage of nbytes, offset, size, stride, False, OrderedDict(),
 * torch.<dtype>). */
static inline void pb_tensor_v3(pklbuild *p, const char *dtype, const char *key, int64_t nbytes,
				int64_t offset, const int64_t *shape, const int64_t *stride, int nd)
{
	pb_global(p, "torch._utils", "_rebuild_tensor_v3");
	pb_op(p, '(');
	pb_storage(p, "UntypedStorage", key, nbytes);
	pb_int(p, offset);
	pb_ints(p, shape, nd);
	pb_ints(p, stride, nd);
	pb_op(p, 0x89);
	pb_odict(p);
	pb_global(p, "torch", dtype);
	pb_op(p, 't');
	pb_op(p, 'R');
}

/* ---- a whole torch.save archive ----------------------------------------------------- */

/*
 * Writes "<prefix>/data.pkl" = pickle, "<prefix>/byteorder" = little, one
 * "<prefix>/data/<i>" record per storage (sizes[i] bytes of value i*7+1),
 * "<prefix>/version", then the ZIP64 trailer, as torch.save does.
 */
static inline void zb_torch(zipbuild *z, const char *prefix, const void *pkl, size_t pkl_len,
			    const size_t *sizes, int n_storages)
{
	char name[300];

	snprintf(name, sizeof(name), "%s/data.pkl", prefix);
	zb_record(z, name, pkl, pkl_len, 0);
	snprintf(name, sizeof(name), "%s/byteorder", prefix);
	zb_record(z, name, "little", 6, 0);
	for (int i = 0; i < n_storages; i++) {
		unsigned char *d = malloc(sizes[i] ? sizes[i] : 1);

		if (!d)
			abort();
		for (size_t k = 0; k < sizes[i]; k++)
			d[k] = (unsigned char)(k * 7 + 1);
		snprintf(name, sizeof(name), "%s/data/%d", prefix, i);
		zb_record(z, name, d, sizes[i], 0);
		free(d);
	}
	snprintf(name, sizeof(name), "%s/version", prefix);
	zb_record(z, name, "3\n", 2, 0);
	zb_finish(z, ZB_ZIP64, "", 0);
}

#endif
