/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the zip reader: the real torch 2.11 files (offsets, sizes and
 * CRCs hard-coded from Python's zipfile), archives inside a larger source
 * (DCP blobs), ZIP64 records and extras, comments, and malformed directories.
 */
#include <errno.h>
#include <fcntl.h>

#include "fmtbuild.h"
#include "format/torchzip.h"
#include "nck_test.h"

/* Opens the zip in [base, base + len) of a memory source over buf. */
static int open_mem(nck_zip **out, nck_src **src, const void *buf, size_t size, uint64_t base,
		    uint64_t len, nck_diag *d)
{
	nck_diag_init(d);
	ASSERT_EQ_INT(nck_src_new_mem(src, buf, size, "mem.zip"), 0);
	return nck_zip_open(out, *src, base, len, d);
}

/*
 * Builds a small two-record archive with the given trailer flags and
 * comment: data.pkl's data at 64, data/0's local header at 85 (64 + 5 + a
 * 16-byte descriptor) and its data padded from 133 to 192.
 */
static void build_small(zipbuild *z, unsigned flags, const char *comment, size_t clen)
{
	zb_record(z, "archive/data.pkl", "\x80\x02K\x01.", 5, 0);
	zb_record(z, "archive/data/0", "0123456789abcdef", 16, 0);
	zb_finish(z, flags, comment, clen);
}

/* An entry by name; a missing one fails the test. */
static const nck_zip_entry *must_find(const nck_zip *zip, const char *name)
	__attribute__((returns_nonnull));

static const nck_zip_entry *must_find(const nck_zip *zip, const char *name)
{
	const nck_zip_entry *e = nck_zip_find(zip, name);

	if (!e)
		nck_test_fail(__FILE__, __LINE__, "no entry %s", name);
	return e;
}

NCK_TEST(zip_real_torch_save_offsets)
{
	/* Expected values: Python zipfile + local headers of the committed file. */
	static const struct {
		const char *name;
		uint64_t data, size;
		uint32_t crc;
	} want[] = {
		{ "torch_save/data.pkl", 64, 886, 0x4ee052b0 },
		{ "torch_save/.format_version", 1088, 1, 0x83dcefb7 },
		{ "torch_save/byteorder", 1344, 6, 0x19e33d85 },
		{ "torch_save/data/0", 1472, 64, 0xd494a174 },
		{ "torch_save/data/5", 2176, 192, 0xf44f41a2 },
		{ "torch_save/data/7", 2624, 4, 0xba7d75b7 },
		{ "torch_save/.data/serialization_id", 2880, 40, 0x8dc87a92 },
	};
	char path[4096];
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	fb_repo_path(path, sizeof(path), "tests/fixtures/real/torch-2.11/torch_save.pt");
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_open_file(&src, AT_FDCWD, path, false, &d), 0);
	ASSERT_EQ_INT(nck_zip_open(&zip, src, 0, nck_src_size(src), &d), 0);
	ASSERT_EQ_INT(zip->n_entries, 14);
	ASSERT_EQ_STR(zip->prefix, "torch_save");
	ASSERT_EQ_STR(zip->entries[0].name, "torch_save/data.pkl");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const nck_zip_entry *e = must_find(zip, want[i].name);

		ASSERT_EQ_INT(e->data_offset, want[i].data);
		ASSERT_EQ_INT(e->size, want[i].size);
		ASSERT_EQ_INT(e->crc32, want[i].crc);
		ASSERT_EQ_INT(e->method, 0);
		ASSERT_EQ_INT(e->data_offset % 64, 0);
	}
	ASSERT_TRUE(nck_zip_find_rel(zip, "data/3") == must_find(zip, "torch_save/data/3"));
	ASSERT_TRUE(nck_zip_find_rel(zip, "data/8") == NULL);
	ASSERT_TRUE(nck_zip_find(zip, "data.pkl") == NULL);
	nck_zip_free(zip);
	nck_src_close(src);
}

NCK_TEST(zip_real_dcp_blobs_at_offsets)
{
	/* The four torch.save blobs of the DCP file: start, end, data/0 offset and size. */
	static const uint64_t blob[4][4] = {
		{ 0, 1577, 704, 8 },
		{ 1577, 3154, 2281, 32 },
		{ 3154, 4987, 3858, 256 },
		{ 4987, 6820, 5691, 256 },
	};
	char path[4096];
	nck_src *src;
	nck_diag d;

	fb_repo_path(path, sizeof(path), "tests/fixtures/real/torch-2.11/dcp/__0_0.distcp");
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_open_file(&src, AT_FDCWD, path, false, &d), 0);
	ASSERT_EQ_INT(nck_src_size(src), 6820);
	for (int i = 0; i < 4; i++) {
		nck_zip *zip;

		ASSERT_EQ_INT(nck_zip_open(&zip, src, blob[i][0], blob[i][1] - blob[i][0], &d), 0);
		ASSERT_EQ_INT(zip->n_entries, 7);
		ASSERT_EQ_STR(zip->prefix, "archive");
		ASSERT_EQ_INT(must_find(zip, "archive/data/0")->data_offset, blob[i][2]);
		ASSERT_EQ_INT(must_find(zip, "archive/data/0")->size, blob[i][3]);
		ASSERT_EQ_INT(must_find(zip, "archive/data.pkl")->data_offset, blob[i][0] + 64);
		nck_zip_free(zip);
	}
	/* The whole file is not one zip: its last EOCD points into the last blob only. */
	nck_zip *zip = NULL;

	ASSERT_TRUE(nck_zip_open(&zip, src, 0, 6820, &d) < 0);
	ASSERT_TRUE(zip == NULL);
	nck_src_close(src);
}

NCK_TEST(zip_classic_trailer_and_read)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;
	void *buf;

	build_small(&z, 0, "", 0);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), 0);
	ASSERT_EQ_INT(zip->n_entries, 2);
	ASSERT_EQ_STR(zip->prefix, "archive");
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->data_offset, 192);
	ASSERT_EQ_INT(nck_zip_read(&buf, zip, must_find(zip, "archive/data/0"), 1024, &d), 0);
	ASSERT_TRUE(memcmp(buf, "0123456789abcdef", 16) == 0);
	free(buf);
	ASSERT_EQ_INT(nck_zip_read(&buf, zip, must_find(zip, "archive/data/0"), 15, &d), -E2BIG);
	ASSERT_TRUE(buf == NULL);
	nck_zip_free(zip);
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_comment_of_64k_with_a_fake_end_record)
{
	zipbuild z = { 0 };
	char *comment = malloc(65535);
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	/* A comment that itself looks like an EOCD (whose comment length does not fit). */
	memset(comment, 'c', 65535);
	memcpy(comment + 100, "PK\x05\x06", 4);
	build_small(&z, ZB_ZIP64, comment, 65535);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), 0);
	ASSERT_EQ_INT(zip->n_entries, 2);
	nck_zip_free(zip);
	nck_src_close(src);
	free(z.buf);
	free(comment);
}

NCK_TEST(zip_comment_too_long_for_the_scan)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	/* An EOCD whose comment length claims more bytes than follow it. */
	build_small(&z, 0, "abc", 3);
	z.buf[z.len - 3 - 2] = 4;
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "no end of central directory");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_zip64_record_overrides_capped_eocd)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, ZB_ZIP64 | ZB_EOCD_CAPPED, "", 0);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), 0);
	ASSERT_EQ_INT(zip->n_entries, 2);
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->size, 16);
	nck_zip_free(zip);
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_capped_eocd_without_zip64_is_rejected)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, ZB_EOCD_CAPPED, "", 0);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_zip64_extra_fields_in_central_directory)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, ZB_ZIP64 | ZB_CENTRAL_ZIP64, "", 0);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), 0);
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->size, 16);
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->comp_size, 16);
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->data_offset, 192);
	ASSERT_EQ_INT(must_find(zip, "archive/data.pkl")->size, 5);
	nck_zip_free(zip);
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_zip64_extra_too_short)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, ZB_ZIP64 | ZB_CENTRAL_ZIP64, "", 0);
	/* First central entry: its ZIP64 extra claims 16 bytes instead of 24. */
	z.buf[z.cd_offset + 46 + strlen("archive/data.pkl") + 2] = 16;
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "ZIP64 extra field too short");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_inside_a_larger_source)
{
	zipbuild z = { 0 };
	unsigned char *big;
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, ZB_ZIP64, "", 0);
	big = malloc(z.len + 1000);
	memset(big, 'P', z.len + 1000);
	memcpy(big + 300, z.buf, z.len);
	ASSERT_EQ_INT(open_mem(&zip, &src, big, z.len + 1000, 300, z.len, &d), 0);
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->data_offset, 300 + 192);
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->header_offset, 300 + z.ents[1].lho);
	nck_zip_free(zip);
	/* A range running past the source is refused. */
	ASSERT_EQ_INT(nck_zip_open(&zip, src, 1001, z.len, &d), -EBADMSG);
	nck_src_close(src);
	free(big);
	free(z.buf);
}

NCK_TEST(zip_truncated_central_directory)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;
	size_t eocd;

	build_small(&z, 0, "", 0);
	/* Shrink the recorded directory size so the second entry does not fit. */
	eocd = z.len - 22;
	z.buf[eocd + 12] = 100;
	z.buf[eocd + 13] = 0;
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "central directory truncated");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_entry_count_larger_than_directory)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, 0, "", 0);
	z.buf[z.len - 22 + 8] = 0xff;
	z.buf[z.len - 22 + 10] = 0xff;
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "entry count");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_too_many_entries_in_zip64_record)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;
	size_t rec;

	build_small(&z, ZB_ZIP64, "", 0);
	rec = z.len - 22 - 20 - 56;
	z.buf[rec + 24 + 4] = 1; /* entries on this disk: 2 + 2^32 */
	z.buf[rec + 32 + 4] = 1; /* total entries */
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -E2BIG);
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_local_header_offset_out_of_range)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;
	size_t ent2 = 0;

	build_small(&z, 0, "", 0);
	ent2 = z.cd_offset + 46 + strlen("archive/data.pkl");
	z.buf[ent2 + 42 + 2] = 0x10; /* local header offset + 1 MiB */
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "local header out of range");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_data_past_the_end)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;
	size_t ent2;

	build_small(&z, 0, "", 0);
	ent2 = z.cd_offset + 46 + strlen("archive/data.pkl");
	/* Both sizes of data/0 become 0x10000010. */
	z.buf[ent2 + 20 + 3] = 0x10;
	z.buf[ent2 + 24 + 3] = 0x10;
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "runs past the end");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_bad_local_signature)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, 0, "", 0);
	z.buf[z.ents[1].lho] = 'X';
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "local header signature");
	ASSERT_EQ_INT(d.offset, z.ents[1].lho);
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_deflated_entry_listed_but_not_read)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;
	void *buf;

	zb_record(&z, "archive/data.pkl", "x", 1, 0);
	zb_record(&z, "archive/data/0", "abcd", 4, 8);
	zb_finish(&z, ZB_ZIP64, "", 0);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), 0);
	ASSERT_EQ_INT(must_find(zip, "archive/data/0")->method, 8);
	ASSERT_EQ_INT(nck_zip_entry_check(zip, must_find(zip, "archive/data.pkl"), &d), 0);
	ASSERT_EQ_INT(nck_zip_read(&buf, zip, must_find(zip, "archive/data/0"), 100, &d), -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "archive/data/0");
	nck_zip_free(zip);
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_duplicate_names_rejected)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	zb_record(&z, "archive/a", "1", 1, 0);
	zb_record(&z, "archive/b", "2", 1, 0);
	zb_record(&z, "archive/a", "3", 1, 0);
	zb_finish(&z, 0, "", 0);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "duplicate");
	nck_src_close(src);
	free(z.buf);
}

NCK_TEST(zip_no_prefix_and_empty_archive)
{
	zipbuild z = { 0 }, e = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	zb_record(&z, "flat.txt", "1", 1, 0);
	zb_finish(&z, 0, "", 0);
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), 0);
	ASSERT_EQ_STR(zip->prefix, "");
	ASSERT_TRUE(nck_zip_find_rel(zip, "flat.txt") == &zip->entries[0]);
	nck_zip_free(zip);
	nck_src_close(src);
	zb_finish(&e, 0, "", 0);
	ASSERT_EQ_INT(e.len, 22);
	ASSERT_EQ_INT(open_mem(&zip, &src, e.buf, e.len, 0, e.len, &d), 0);
	ASSERT_EQ_INT(zip->n_entries, 0);
	ASSERT_TRUE(nck_zip_find(zip, "x") == NULL);
	nck_zip_free(zip);
	nck_src_close(src);
	free(z.buf);
	free(e.buf);
}

NCK_TEST(zip_too_short_or_not_a_zip)
{
	static const char junk[64] = "this is not a zip archive at all";
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	ASSERT_EQ_INT(open_mem(&zip, &src, junk, 10, 0, 10, &d), -EBADMSG);
	nck_src_close(src);
	ASSERT_EQ_INT(open_mem(&zip, &src, junk, sizeof(junk), 0, sizeof(junk), &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "no end of central directory");
	nck_src_close(src);
	nck_zip_free(NULL);
}

NCK_TEST(zip_multi_disk_not_supported)
{
	zipbuild z = { 0 };
	nck_src *src;
	nck_zip *zip;
	nck_diag d;

	build_small(&z, 0, "", 0);
	z.buf[z.len - 22 + 4] = 1; /* number of this disk */
	ASSERT_EQ_INT(open_mem(&zip, &src, z.buf, z.len, 0, z.len, &d), -ENOTSUP);
	nck_src_close(src);
	free(z.buf);
}
