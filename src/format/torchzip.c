/* SPDX-License-Identifier: MIT */
/*
 * Zip central-directory reader for torch.save archives (see zip.h).
 *
 * Order of work: find the end of central directory record (EOCD) by scanning
 * back from the end of the range, follow the ZIP64 locator to the ZIP64 EOCD
 * when there is one, read the whole central directory with one pread, parse
 * each entry (ZIP64 extra fields included), then read each entry's local
 * header to learn where its data starts. Every offset and size is checked
 * against the range before use. Field offsets: PKWARE APPNOTE 6.3.10
 * §4.3.7 (local header), §4.3.12 (central header), §4.3.14-16 (ZIP64 EOCD,
 * locator, EOCD), §4.5.3 (ZIP64 extra).
 *
 * Thread-safety: nck_zip_open runs on one thread; lookups are read-only.
 */
#include "format/torchzip.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/ckd.h"

#define ZIP_SIG_LOCAL	0x04034b50u
#define ZIP_SIG_CENTRAL 0x02014b50u
#define ZIP_SIG_EOCD	0x06054b50u
#define ZIP_SIG_EOCD64	0x06064b50u
#define ZIP_SIG_LOC64	0x07064b50u

#define ZIP_LOCAL_LEN	30u /* fixed part of a local file header */
#define ZIP_CENTRAL_LEN 46u /* fixed part of a central directory header */
#define ZIP_EOCD_LEN	22u /* EOCD without its comment */
#define ZIP_EOCD64_LEN	56u /* ZIP64 EOCD without its extensible data */
#define ZIP_LOC64_LEN	20u /* ZIP64 EOCD locator */
#define ZIP_MAX_COMMENT 65535u
#define ZIP_EXTRA_ZIP64 0x0001u

/* Values a classic field holds when the real one is in a ZIP64 structure. */
#define ZIP_U16_MAX 0xffffu
#define ZIP_U32_MAX 0xffffffffu

/* What the trailer records say about the central directory. */
typedef struct zip_trailer {
	uint64_t n_entries; /* total entries */
	uint64_t cd_size;   /* bytes */
	uint64_t cd_offset; /* from the archive start */
	uint64_t cd_limit;  /* the directory must end at or before this offset */
} zip_trailer;

/* ---- little-endian fields ------------------------------------------------- */

/* Little-endian field readers (all zip integers are little-endian, APPNOTE §4.4). */
static uint16_t rd16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* Reads exactly `n` bytes at archive offset `rel`; -EIO when short. */
static int zip_pread(const nck_zip *zip, void *buf, size_t n, uint64_t rel, nck_diag *diag)
{
	int64_t got = nck_src_pread(zip->src, buf, n, zip->base + rel);

	if (got >= 0 && (uint64_t)got == n)
		return 0;
	nck_diag_set(diag, -EIO, nck_src_name(zip->src), (int64_t)(zip->base + rel),
		     "short read of %zu bytes in a zip archive", n);
	return -EIO;
}

/* Reports malformed input at archive offset `rel`. */
static int zip_bad(const nck_zip *zip, uint64_t rel, nck_diag *diag, const char *what)
{
	nck_diag_set(diag, -EBADMSG, nck_src_name(zip->src), (int64_t)(zip->base + rel),
		     "bad zip archive: %s", what);
	return -EBADMSG;
}

/* ---- trailer ---------------------------------------------------------------- */

/*
 * Finds the EOCD: the last signature whose comment ends exactly at the end
 * of the range, so a fake signature inside a comment is not taken. Sets
 * *eocd_rel and copies the 22 fixed bytes to `rec`.
 */
static int zip_find_eocd(const nck_zip *zip, uint64_t *eocd_rel, unsigned char rec[ZIP_EOCD_LEN],
			 nck_diag *diag)
{
	size_t tail_len = zip->len < ZIP_EOCD_LEN + ZIP_MAX_COMMENT
				  ? (size_t)zip->len
				  : ZIP_EOCD_LEN + ZIP_MAX_COMMENT;
	uint64_t tail_rel = zip->len - tail_len;
	unsigned char *tail = NULL;
	int rc;

	if (zip->len < ZIP_EOCD_LEN)
		return zip_bad(zip, 0, diag, "shorter than an end of central directory record");
	tail = malloc(tail_len);
	if (!tail)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(zip->src), -1, "out of memory");
	if ((rc = zip_pread(zip, tail, tail_len, tail_rel, diag)) < 0)
		goto out;
	rc = -EBADMSG;
	for (size_t i = tail_len - ZIP_EOCD_LEN + 1; i-- > 0;) {
		if (rd32(tail + i) == ZIP_SIG_EOCD &&
		    i + ZIP_EOCD_LEN + rd16(tail + i + 20) == tail_len) {
			memcpy(rec, tail + i, ZIP_EOCD_LEN);
			*eocd_rel = tail_rel + i;
			rc = 0;
			break;
		}
	}
	if (rc < 0)
		rc = zip_bad(zip, tail_rel, diag, "no end of central directory record");
out:
	free(tail);
	return rc;
}

/* Reads the ZIP64 EOCD that the locator before the EOCD points to, if any. */
static int zip_read_zip64(const nck_zip *zip, uint64_t eocd_rel, zip_trailer *t, bool *found,
			  nck_diag *diag)
{
	unsigned char loc[ZIP_LOC64_LEN] = { 0 }, rec[ZIP_EOCD64_LEN] = { 0 };
	uint64_t rec_rel, end;
	int rc = 0;

	*found = false;
	if (eocd_rel < ZIP_LOC64_LEN)
		return 0;
	if ((rc = zip_pread(zip, loc, sizeof(loc), eocd_rel - ZIP_LOC64_LEN, diag)) < 0)
		return rc;
	if (rd32(loc) != ZIP_SIG_LOC64)
		return 0;
	if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
		return nck_diag_set(diag, -ENOTSUP, nck_src_name(zip->src),
				    (int64_t)(zip->base + eocd_rel - ZIP_LOC64_LEN),
				    "multi-disk zip archives are not supported");
	rec_rel = rd64(loc + 8);
	NCK_CKD_ADD(&end, rec_rel, (uint64_t)ZIP_EOCD64_LEN);
	if (end > eocd_rel - ZIP_LOC64_LEN)
		return zip_bad(zip, eocd_rel - ZIP_LOC64_LEN, diag,
			       "ZIP64 end record out of range");
	if ((rc = zip_pread(zip, rec, sizeof(rec), rec_rel, diag)) < 0)
		return rc;
	if (rd32(rec) != ZIP_SIG_EOCD64)
		return zip_bad(zip, rec_rel, diag, "bad ZIP64 end record signature");
	if (rd32(rec + 16) != 0 || rd32(rec + 20) != 0 || rd64(rec + 24) != rd64(rec + 32))
		return nck_diag_set(diag, -ENOTSUP, nck_src_name(zip->src),
				    (int64_t)(zip->base + rec_rel),
				    "multi-disk zip archives are not supported");
	t->n_entries = rd64(rec + 32);
	t->cd_size = rd64(rec + 40);
	t->cd_offset = rd64(rec + 48);
	t->cd_limit = rec_rel;
	*found = true;
out:
	if (rc == -EOVERFLOW)
		return zip_bad(zip, eocd_rel, diag, "ZIP64 end record offset overflows");
	return rc;
}

/* Locates the central directory from the EOCD and, when present, ZIP64 records. */
static int zip_read_trailer(const nck_zip *zip, zip_trailer *t, nck_diag *diag)
{
	unsigned char rec[ZIP_EOCD_LEN] = { 0 };
	uint64_t eocd_rel = 0, end;
	bool z64 = false;
	int rc;

	if ((rc = zip_find_eocd(zip, &eocd_rel, rec, diag)) < 0)
		return rc;
	if ((rc = zip_read_zip64(zip, eocd_rel, t, &z64, diag)) < 0)
		return rc;
	if (!z64) {
		if (rd16(rec + 4) != 0 || rd16(rec + 6) != 0 || rd16(rec + 8) != rd16(rec + 10))
			return nck_diag_set(diag, -ENOTSUP, nck_src_name(zip->src),
					    (int64_t)(zip->base + eocd_rel),
					    "multi-disk zip archives are not supported");
		t->n_entries = rd16(rec + 10);
		t->cd_size = rd32(rec + 12);
		t->cd_offset = rd32(rec + 16);
		t->cd_limit = eocd_rel;
	}
	if (!nck_ckd_add64(&end, t->cd_offset, t->cd_size) || end > t->cd_limit)
		return zip_bad(zip, eocd_rel, diag, "central directory out of range");
	if (t->n_entries > NCK_ZIP_MAX_ENTRIES)
		return nck_diag_set(
			diag, -E2BIG, nck_src_name(zip->src), (int64_t)(zip->base + eocd_rel),
			"zip archive lists %llu entries", (unsigned long long)t->n_entries);
	if (t->n_entries > t->cd_size / ZIP_CENTRAL_LEN)
		return zip_bad(zip, eocd_rel, diag,
			       "entry count larger than the central directory");
	if (t->cd_size > NCK_ZIP_MAX_CD)
		return nck_diag_set(
			diag, -E2BIG, nck_src_name(zip->src), (int64_t)(zip->base + eocd_rel),
			"zip central directory of %llu bytes", (unsigned long long)t->cd_size);
	return 0;
}

/* ---- central directory -------------------------------------------------------- */

/*
 * Replaces the classic fields that hold 0xFFFFFFFF with the values of the
 * ZIP64 extra field, in its fixed order: uncompressed size, compressed size,
 * local header offset (APPNOTE §4.5.3). Other extra fields are skipped.
 */
static int zip_parse_extra(const nck_zip *zip, uint64_t rel, const unsigned char *x, size_t n,
			   nck_zip_entry *e, nck_diag *diag)
{
	size_t pos = 0;

	while (pos + 4 <= n) {
		uint16_t id = rd16(x + pos), sz = rd16(x + pos + 2);
		const unsigned char *f = x + pos + 4;
		size_t used = 0;

		if (sz > n - pos - 4)
			return zip_bad(zip, rel, diag, "extra field runs past its header");
		if (id == ZIP_EXTRA_ZIP64) {
			uint64_t *vals[3] = { &e->size, &e->comp_size, &e->header_offset };

			for (int k = 0; k < 3; k++) {
				if (*vals[k] != ZIP_U32_MAX)
					continue;
				if (sz - used < 8)
					return zip_bad(zip, rel, diag,
						       "ZIP64 extra field too short");
				*vals[k] = rd64(f + used);
				used += 8;
			}
		}
		pos += 4u + sz;
	}
	return 0;
}

/* Learns where the data of `e` starts from its local header (name and extra lengths). */
static int zip_locate_data(const nck_zip *zip, nck_zip_entry *e, nck_diag *diag)
{
	unsigned char h[ZIP_LOCAL_LEN] = { 0 };
	uint64_t rel = e->header_offset, end = 0, data = 0;
	int rc = 0;

	NCK_CKD_ADD(&end, rel, (uint64_t)ZIP_LOCAL_LEN);
	if (end > zip->len)
		return zip_bad(zip, rel, diag, "local header out of range");
	if ((rc = zip_pread(zip, h, sizeof(h), rel, diag)) < 0)
		return rc;
	if (rd32(h) != ZIP_SIG_LOCAL)
		return zip_bad(zip, rel, diag, "bad local header signature");
	NCK_CKD_ADD(&data, end, (uint64_t)rd16(h + 26) + rd16(h + 28));
	NCK_CKD_ADD(&end, data, e->comp_size);
	if (end > zip->len)
		return zip_bad(zip, rel, diag, "entry data runs past the end of the archive");
	e->data_offset = zip->base + data;
	e->header_offset = zip->base + rel;
out:
	if (rc == -EOVERFLOW)
		return zip_bad(zip, rel, diag, "entry offset overflows");
	return rc;
}

/* Parses the central header at cd[*pos] into `e` and advances *pos past it. */
static int zip_parse_central(nck_zip *zip, const unsigned char *cd, size_t cd_len, size_t *pos,
			     uint64_t cd_rel, nck_zip_entry *e, nck_diag *diag)
{
	const unsigned char *h = cd + *pos;
	uint64_t rel = cd_rel + *pos;
	size_t name_len, extra_len, comment_len;
	int rc;

	if (cd_len - *pos < ZIP_CENTRAL_LEN)
		return zip_bad(zip, rel, diag, "central directory truncated");
	if (rd32(h) != ZIP_SIG_CENTRAL)
		return zip_bad(zip, rel, diag, "bad central header signature");
	name_len = rd16(h + 28);
	extra_len = rd16(h + 30);
	comment_len = rd16(h + 32);
	if (cd_len - *pos - ZIP_CENTRAL_LEN < name_len + extra_len + comment_len)
		return zip_bad(zip, rel, diag, "central directory truncated");
	if (memchr(h + ZIP_CENTRAL_LEN, '\0', name_len))
		return zip_bad(zip, rel, diag, "entry name contains a NUL byte");
	e->flags = rd16(h + 8);
	e->method = rd16(h + 10);
	e->crc32 = rd32(h + 16);
	e->comp_size = rd32(h + 20);
	e->size = rd32(h + 24);
	e->header_offset = rd32(h + 42);
	if (rd16(h + 34) != 0 && rd16(h + 34) != ZIP_U16_MAX)
		return nck_diag_set(diag, -ENOTSUP, nck_src_name(zip->src),
				    (int64_t)(zip->base + rel),
				    "multi-disk zip archives are not supported");
	rc = zip_parse_extra(zip, rel, h + ZIP_CENTRAL_LEN + name_len, extra_len, e, diag);
	if (rc < 0)
		return rc;
	if (e->method == 0 && e->comp_size != e->size)
		return zip_bad(zip, rel, diag, "stored entry with different sizes");
	e->name = nck_arena_strndup(&zip->arena, (const char *)h + ZIP_CENTRAL_LEN, name_len);
	if (!e->name)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(zip->src), -1, "out of memory");
	*pos += ZIP_CENTRAL_LEN + name_len + extra_len + comment_len;
	return zip_locate_data(zip, e, diag);
}

/* Orders entry pointers by name. */
static int zip_cmp_entry(const void *a, const void *b)
{
	const nck_zip_entry *x = *(const nck_zip_entry *const *)a;
	const nck_zip_entry *y = *(const nck_zip_entry *const *)b;

	return strcmp(x->name, y->name);
}

/* Builds the sorted name index; duplicate names are malformed (torch never writes them). */
static int zip_build_index(nck_zip *zip, nck_diag *diag)
{
	size_t bytes;

	if (__builtin_mul_overflow(zip->n_entries, sizeof(*zip->by_name), &bytes) ||
	    !(zip->by_name = nck_arena_alloc(&zip->arena, bytes ? bytes : 1)))
		return nck_diag_set(diag, -ENOMEM, nck_src_name(zip->src), -1, "out of memory");
	for (size_t i = 0; i < zip->n_entries; i++)
		zip->by_name[i] = &zip->entries[i];
	qsort(zip->by_name, zip->n_entries, sizeof(*zip->by_name), zip_cmp_entry);
	for (size_t i = 1; i < zip->n_entries; i++)
		if (strcmp(zip->by_name[i - 1]->name, zip->by_name[i]->name) == 0)
			return zip_bad(zip, zip->by_name[i]->header_offset - zip->base, diag,
				       "duplicate entry name");
	return 0;
}

/* Parses the whole central directory described by `t`. */
static int zip_read_directory(nck_zip *zip, const zip_trailer *t, nck_diag *diag)
{
	unsigned char *cd = NULL;
	size_t pos = 0;
	int rc;
	size_t bytes = 0;

	if (!__builtin_mul_overflow((size_t)t->n_entries, sizeof(nck_zip_entry), &bytes))
		zip->entries = nck_arena_alloc(&zip->arena, bytes ? bytes : 1);
	cd = malloc(t->cd_size ? (size_t)t->cd_size : 1);
	if (!zip->entries || !cd) {
		rc = nck_diag_set(diag, -ENOMEM, nck_src_name(zip->src), -1, "out of memory");
		goto out;
	}
	if ((rc = zip_pread(zip, cd, (size_t)t->cd_size, t->cd_offset, diag)) < 0)
		goto out;
	for (size_t i = 0; i < t->n_entries; i++) {
		rc = zip_parse_central(zip, cd, (size_t)t->cd_size, &pos, t->cd_offset,
				       &zip->entries[i], diag);
		if (rc < 0)
			goto out;
		zip->n_entries++;
	}
	rc = zip_build_index(zip, diag);
out:
	free(cd);
	return rc;
}

/* The first entry's top directory: torch's PyTorchStreamReader takes the prefix from it. */
static int zip_set_prefix(nck_zip *zip, nck_diag *diag)
{
	const char *first = zip->n_entries ? zip->entries[0].name : "";
	const char *slash = strchr(first, '/');

	zip->prefix = nck_arena_strndup(&zip->arena, first, slash ? (size_t)(slash - first) : 0);
	if (!zip->prefix)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(zip->src), -1, "out of memory");
	return 0;
}

/* ---- public API ------------------------------------------------------------------ */

int nck_zip_open(nck_zip **out, const nck_src *src, uint64_t base, uint64_t len, nck_diag *diag)
{
	zip_trailer t = { 0 };
	nck_zip *zip = NULL;
	uint64_t end;
	int rc;

	*out = NULL;
	if (!nck_ckd_add64(&end, base, len) || end > nck_src_size(src))
		return nck_diag_set(diag, -EBADMSG, nck_src_name(src), (int64_t)base,
				    "zip range of %llu bytes runs past the end of the source",
				    (unsigned long long)len);
	zip = calloc(1, sizeof(*zip));
	if (!zip)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(src), -1, "out of memory");
	nck_arena_init(&zip->arena);
	zip->src = src;
	zip->base = base;
	zip->len = len;
	if ((rc = zip_read_trailer(zip, &t, diag)) < 0)
		goto out;
	if ((rc = zip_read_directory(zip, &t, diag)) < 0)
		goto out;
	if ((rc = zip_set_prefix(zip, diag)) < 0)
		goto out;
	*out = zip;
	zip = NULL;
out:
	nck_zip_free(zip);
	return rc;
}

/* strcmp() of `name` against the joined name "<prefix>/<rel>" (or `rel` alone). */
static int zip_cmp_joined(const char *prefix, const char *rel, const char *name)
{
	if (*prefix) {
		for (; *prefix; prefix++, name++)
			if (*prefix != *name)
				return (unsigned char)*prefix - (unsigned char)*name;
		if (*name != '/')
			return '/' - (unsigned char)*name;
		name++;
	}
	return strcmp(rel, name);
}

/* Binary search of the name index for "<prefix>/<rel>". */
static const nck_zip_entry *zip_search(const nck_zip *zip, const char *prefix, const char *rel)
{
	size_t lo = 0, hi = zip->n_entries;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = zip_cmp_joined(prefix, rel, zip->by_name[mid]->name);

		if (c == 0)
			return zip->by_name[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const nck_zip_entry *nck_zip_find(const nck_zip *zip, const char *name)
{
	return zip_search(zip, "", name);
}

const nck_zip_entry *nck_zip_find_rel(const nck_zip *zip, const char *rel)
{
	return zip_search(zip, zip->prefix, rel);
}

int nck_zip_entry_check(const nck_zip *zip, const nck_zip_entry *e, nck_diag *diag)
{
	if (e->method != 0 || (e->flags & NCK_ZIP_F_ENCRYPTED))
		return nck_diag_set(
			diag, -ENOTSUP, nck_src_name(zip->src), (int64_t)e->header_offset,
			"zip entry '%s' is %s (method %u); only stored entries are read", e->name,
			(e->flags & NCK_ZIP_F_ENCRYPTED) ? "encrypted" : "compressed", e->method);
	return 0;
}

int nck_zip_read(void **out, const nck_zip *zip, const nck_zip_entry *e, size_t max, nck_diag *diag)
{
	void *buf = NULL;
	int64_t got;
	int rc;

	*out = NULL;
	if ((rc = nck_zip_entry_check(zip, e, diag)) < 0)
		return rc;
	if (e->size > max)
		return nck_diag_set(diag, -E2BIG, nck_src_name(zip->src), (int64_t)e->data_offset,
				    "zip entry '%s' has %llu bytes, more than %zu", e->name,
				    (unsigned long long)e->size, max);
	buf = malloc(e->size ? (size_t)e->size : 1);
	if (!buf)
		return nck_diag_set(diag, -ENOMEM, nck_src_name(zip->src), -1, "out of memory");
	got = nck_src_pread(zip->src, buf, (size_t)e->size, e->data_offset);
	if (got < 0 || (uint64_t)got != e->size) {
		free(buf);
		return nck_diag_set(diag, -EIO, nck_src_name(zip->src), (int64_t)e->data_offset,
				    "short read of zip entry '%s'", e->name);
	}
	*out = buf;
	return 0;
}

void nck_zip_free(nck_zip *zip)
{
	if (!zip)
		return;
	nck_arena_dispose(&zip->arena);
	free(zip);
}
