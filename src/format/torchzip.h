/* SPDX-License-Identifier: MIT */
/*
 * nck_zip: the zip container of torch.save files, as written by PyTorch's
 * `caffe2/serialize/inline_container.cc` through miniz 3.0.2 (spec:
 * ../shared/spec/tensor-formats.md §1.2; PKWARE APPNOTE 6.3.10 §4.3).
 *
 * A zip is read from a byte range [base, base + len) of an nck_src: a plain
 * file, a tar member or one blob inside a DCP `.distcp` file. Offsets inside
 * the zip count from `base` (the archive start); every offset the API hands
 * out is absolute in the nck_src. The end of central directory is found by
 * scanning back over a comment of up to 64 KiB; the ZIP64 locator and record
 * and ZIP64 extra fields are honoured. Sizes and offsets come only from the
 * central directory (torch's local headers carry zeros and a data
 * descriptor); the data start is read from each local header. Entries of
 * any method are listed, but only stored (method 0) records can be read.
 * The reader never decompresses and never checks CRCs (data is served raw).
 *
 * Thread-safety: built on one thread; afterwards read-only and shareable.
 */
#ifndef NCK_FORMAT_TORCHZIP_H
#define NCK_FORMAT_TORCHZIP_H

#include <stddef.h>
#include <stdint.h>

#include "io/src.h"
#include "nemockpt/diag.h"
#include "util/arena.h"

/* Most entries one archive may list (a torch.save file has one per storage). */
#define NCK_ZIP_MAX_ENTRIES (1u << 20)
/* Largest central directory read into memory. */
#define NCK_ZIP_MAX_CD ((uint64_t)128 << 20)

/* General-purpose flag bit 0: the entry is encrypted (APPNOTE §4.4.4). */
#define NCK_ZIP_F_ENCRYPTED 0x0001u

typedef struct nck_zip_entry {
	const char *name;	/* full name as stored, NUL-terminated, in the zip's arena */
	uint64_t data_offset;	/* ABSOLUTE offset of the record data in the nck_src */
	uint64_t size;		/* uncompressed size (central directory or ZIP64 extra) */
	uint64_t comp_size;	/* bytes stored at data_offset; equals size when method is 0 */
	uint64_t header_offset; /* ABSOLUTE offset of the local file header */
	uint16_t method;	/* 0 stored, 8 deflate, ... */
	uint16_t flags;		/* general-purpose bit flags */
	uint32_t crc32;		/* as recorded; not verified */
} nck_zip_entry;

typedef struct nck_zip {
	nck_zip_entry *entries; /* central-directory order */
	size_t n_entries;
	const char *prefix; /* first entry's name up to its first '/' ("" if it has none) */
	nck_arena arena;    /* names, entries, index */
	const nck_src *src; /* borrowed; must outlive the zip */
	uint64_t base, len; /* the archive's byte range in src */
	const nck_zip_entry **by_name; /* entries sorted by name (for nck_zip_find) */
} nck_zip;

/*
 * Indexes the zip archive in [base, base + len) of `src` (borrowed; it must
 * outlive the result). The result belongs to the caller (nck_zip_free).
 * Errors: -EBADMSG malformed (no end record, truncated or inconsistent
 * directory, an offset or size outside the range, duplicate names);
 * -ENOTSUP multi-disk archives; -E2BIG more than NCK_ZIP_MAX_ENTRIES entries
 * or a central directory over NCK_ZIP_MAX_CD; -EOVERFLOW; -EIO; -ENOMEM.
 */
int nck_zip_open(nck_zip **out, const nck_src *src, uint64_t base, uint64_t len, nck_diag *diag);

/* The entry named exactly `name`, or NULL. Borrowed from `zip`. Never fails otherwise. */
const nck_zip_entry *nck_zip_find(const nck_zip *zip, const char *name);

/* The entry named "<prefix>/<rel>" (or `rel` when the prefix is ""), or NULL. */
const nck_zip_entry *nck_zip_find_rel(const nck_zip *zip, const char *rel);

/*
 * Whether the record's bytes can be served raw: 0 when it is stored and not
 * encrypted, else -ENOTSUP (recorded in diag with the entry's name).
 */
int nck_zip_entry_check(const nck_zip *zip, const nck_zip_entry *e, nck_diag *diag);

/*
 * Reads the whole stored record `e` into a new malloc'd buffer (*out, owned
 * by the caller, free() it; never NULL on success, also for empty records).
 * Errors: -ENOTSUP not stored or encrypted; -E2BIG larger than `max`; -EIO
 * short or failed read; -ENOMEM.
 */
int nck_zip_read(void **out, const nck_zip *zip, const nck_zip_entry *e, size_t max,
		 nck_diag *diag);

/* Frees the index and its names. NULL-safe. */
void nck_zip_free(nck_zip *zip);

#endif
