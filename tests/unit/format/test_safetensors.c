/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the safetensors header reader: a real file written by
 * safetensors 0.8.0 (tests/fixtures/real/torch-2.11/model.safetensors; the
 * expected values below were read from its JSON header with Python's json
 * module, independently of this reader), the reference's own test vector
 * (safetensors `tensor.rs`), and hand-built bad headers with the offsets
 * their errors must report.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>

#include "format/safetensors.h"
#include "nck_test.h"

/* A safetensors image in memory: size field, header, data of zeros. */
typedef struct st_img {
	unsigned char *buf;
	size_t len;
	size_t hdr_len; /* strlen of the JSON header */
} st_img;

/* Builds [u64le len(json)][json][data_len zero bytes] at `base` bytes into the buffer. */
static st_img st_build_at(const char *json, size_t data_len, size_t base)
{
	st_img im = { 0 };
	size_t n = strlen(json);

	im.hdr_len = n;
	im.len = base + 8 + n + data_len;
	im.buf = calloc(1, im.len + 1);
	ASSERT_TRUE(im.buf != NULL);
	memset(im.buf, 0xAB, base);
	for (int i = 0; i < 8; i++)
		im.buf[base + i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(im.buf + base + 8, json, n);
	return im;
}

static st_img st_build(const char *json, size_t data_len)
{
	return st_build_at(json, data_len, 0);
}

/* Opens [base, base+len) of the image; returns the rc, *out on success. */
static int st_open_mem(nck_st_file **out, const st_img *im, uint64_t base, uint64_t len,
		       nck_diag *d)
{
	nck_src *src = NULL;
	int rc;

	nck_diag_init(d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, im->buf, im->len, "mem.safetensors"), 0);
	rc = nck_st_open(out, src, base, len, d);
	nck_src_close(src);
	return rc;
}

/* Expects nck_st_open to fail with `code` at `offset`, mentioning `needle`. */
static void st_expect_error(const char *json, size_t data_len, int code, int64_t offset,
			    const char *needle)
{
	st_img im = st_build(json, data_len);
	nck_st_file *f = (nck_st_file *)1;
	nck_diag d;

	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), code);
	ASSERT_TRUE(f == NULL);
	ASSERT_EQ_INT(d.code, code);
	if (offset >= 0)
		ASSERT_EQ_INT(d.offset, offset);
	ASSERT_CONTAINS(d.msg, needle);
	ASSERT_EQ_STR(d.path, "mem.safetensors");
	free(im.buf);
}

/* The path of a file under tests/, found from this source file's location. */
static void st_test_path(char *buf, size_t size, const char *rel)
{
	char here[4096];

	snprintf(here, sizeof(here), "%s", __FILE__);
	snprintf(buf, size, "%s/../../%s", dirname(here), rel);
}

NCK_TEST(st_real_file_from_safetensors_0_8)
{
	char path[4200];
	nck_src *src = NULL;
	nck_st_file *f = NULL;
	const nck_st_tensor *t;
	nck_diag d;

	st_test_path(path, sizeof(path), "fixtures/real/torch-2.11/model.safetensors");
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_open_file(&src, AT_FDCWD, path, false, &d), 0);
	ASSERT_EQ_INT(nck_src_size(src), 266);
	ASSERT_EQ_INT(nck_st_open(&f, src, 0, nck_src_size(src), &d), 0);
	ASSERT_EQ_INT(f->header_len, 208); /* padded with spaces to a multiple of 8 */
	ASSERT_EQ_INT(f->data_start, 216);
	ASSERT_EQ_STR(f->metadata_json, "{\"format\":\"pt\"}");
	ASSERT_EQ_INT(f->n_tensors, 3);
	/* Sorted by name, although the file orders them c, a, b by offset. */
	ASSERT_EQ_STR(f->tensors[0].name, "a");
	ASSERT_EQ_STR(f->tensors[1].name, "b");
	ASSERT_EQ_STR(f->tensors[2].name, "c");
	t = nck_st_find(f, "a");
	ASSERT_TRUE(t == &f->tensors[0]);
	ASSERT_EQ_INT(t->dtype, NCK_DTYPE_BF16);
	ASSERT_EQ_INT(t->ndim, 2);
	ASSERT_EQ_INT(t->shape[0], 3);
	ASSERT_EQ_INT(t->shape[1], 4);
	ASSERT_EQ_INT(t->data_offset, 216 + 16);
	ASSERT_EQ_INT(t->size, 24);
	t = nck_st_find(f, "b");
	ASSERT_EQ_INT(t->dtype, NCK_DTYPE_F16);
	ASSERT_EQ_INT(t->ndim, 1);
	ASSERT_EQ_INT(t->shape[0], 5);
	ASSERT_EQ_INT(t->data_offset, 216 + 40);
	ASSERT_EQ_INT(t->size, 10);
	t = nck_st_find(f, "c");
	ASSERT_EQ_INT(t->dtype, NCK_DTYPE_F32);
	ASSERT_EQ_INT(t->ndim, 2);
	ASSERT_EQ_INT(t->shape[0], 2);
	ASSERT_EQ_INT(t->shape[1], 2);
	ASSERT_EQ_INT(t->data_offset, 216);
	ASSERT_EQ_INT(t->size, 16);
	ASSERT_TRUE(nck_st_find(f, "d") == NULL);
	ASSERT_TRUE(nck_st_find(f, "") == NULL);
	nck_st_file_free(f);
	nck_src_close(src);
}

NCK_TEST(st_reference_test_vector)
{
	/* tensor.rs: N = 60 (not padded), one I32 [2,2]: 8 + 60 + 16 = 84 bytes
	 * (tensor-formats.md §5 says 76, which leaves out the size field). */
	st_img im = st_build("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
			     16);
	nck_st_file *f = NULL;
	nck_diag d;

	ASSERT_EQ_INT(im.len, 84);
	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), 0);
	ASSERT_EQ_INT(f->n_tensors, 1);
	ASSERT_TRUE(f->metadata_json == NULL);
	ASSERT_EQ_INT(f->header_len, 60);
	ASSERT_EQ_INT(f->tensors[0].data_offset, 68);
	ASSERT_EQ_INT(f->tensors[0].size, 16);
	ASSERT_EQ_INT(f->tensors[0].dtype, NCK_DTYPE_I32);
	nck_st_file_free(f);
	free(im.buf);
}

NCK_TEST(st_offsets_are_absolute_inside_a_larger_source)
{
	const char *json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
	st_img im = st_build_at(json, 12, 1000);
	nck_st_file *f = NULL;
	nck_diag d;

	/* Extra bytes after the member (like tar padding) are outside [base, base+len). */
	im.len += 24;
	im.buf = realloc(im.buf, im.len);
	ASSERT_TRUE(im.buf != NULL);
	memset(im.buf + im.len - 24, 0, 24);
	ASSERT_EQ_INT(st_open_mem(&f, &im, 1000, im.len - 1000 - 24, &d), 0);
	ASSERT_EQ_INT(f->tensors[0].data_offset, 1000 + 8 + strlen(json));
	ASSERT_EQ_INT(f->data_start, 1000 + 8 + strlen(json));
	nck_st_file_free(f);
	/* The same range with the padding included has trailing bytes. */
	ASSERT_EQ_INT(st_open_mem(&f, &im, 1000, im.len - 1000, &d), -EBADMSG);
	ASSERT_EQ_INT(d.offset, 1000 + 8 + strlen(json) + 12);
	/* A range past the end of the source is a caller bug. */
	ASSERT_EQ_INT(st_open_mem(&f, &im, 1000, im.len, &d), -EINVAL);
	free(im.buf);
}

NCK_TEST(st_scalar_empty_tensor_metadata_and_whitespace)
{
	const char *json = "  {\"__metadata__\":{\"a\":\"1\",\"b\":\"x y\"},"
			   "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
			   "\"e\":{\"dtype\":\"BF16\",\"shape\":[4,0],\"data_offsets\":[8,8]},"
			   "\"z\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[8,11],\"x\":1}}   ";
	st_img im = st_build(json, 11);
	nck_st_file *f = NULL;
	nck_diag d;

	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), 0);
	ASSERT_EQ_STR(f->metadata_json, "{\"a\":\"1\",\"b\":\"x y\"}");
	ASSERT_EQ_INT(f->n_tensors, 3);
	ASSERT_EQ_INT(nck_st_find(f, "s")->ndim, 0);
	ASSERT_EQ_INT(nck_st_find(f, "s")->size, 8);
	ASSERT_EQ_INT(nck_st_find(f, "e")->size, 0);
	ASSERT_EQ_INT(nck_st_find(f, "e")->shape[1], 0);
	ASSERT_EQ_INT(nck_st_find(f, "z")->dtype, NCK_DTYPE_BOOL);
	ASSERT_EQ_INT(nck_st_find(f, "z")->data_offset, 8 + strlen(json) + 8);
	nck_st_file_free(f);
	free(im.buf);
}

NCK_TEST(st_null_metadata_and_no_tensors)
{
	st_img im = st_build("{\"__metadata__\":null}", 0);
	nck_st_file *f = NULL;
	nck_diag d;

	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), 0);
	ASSERT_EQ_INT(f->n_tensors, 0);
	ASSERT_TRUE(f->metadata_json == NULL);
	ASSERT_TRUE(nck_st_find(f, "x") == NULL);
	nck_st_file_free(f);
	free(im.buf);
	nck_st_file_free(NULL);
}

NCK_TEST(st_hole_is_refused_at_its_offset)
{
	const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
			   "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}";

	st_expect_error(json, 10, -EBADMSG, (int64_t)(8 + strlen(json) + 6), "hole");
}

NCK_TEST(st_overlap_is_refused)
{
	const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
			   "\"b\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[2,6]}}";

	st_expect_error(json, 6, -EBADMSG, (int64_t)(8 + strlen(json) + 2), "overlap");
}

NCK_TEST(st_first_tensor_must_start_at_zero)
{
	const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}";

	st_expect_error(json, 8, -EBADMSG, (int64_t)(8 + strlen(json) + 4), "expected 0");
}

NCK_TEST(st_trailing_bytes_are_refused)
{
	const char *json = "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}";

	st_expect_error(json, 9, -EBADMSG, (int64_t)(8 + strlen(json) + 8), "1 trailing bytes");
}

NCK_TEST(st_size_mismatch_is_refused)
{
	const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}";

	st_expect_error(json, 20, -EBADMSG, (int64_t)(8 + strlen(json)), "need 24");
}

NCK_TEST(st_offsets_past_the_end_are_refused)
{
	const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";

	st_expect_error(json, 10, -EBADMSG, (int64_t)(8 + strlen(json)), "past the end");
}

NCK_TEST(st_end_before_begin_is_refused)
{
	const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
			   "\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,1]}}";

	st_expect_error(json, 2, -EBADMSG, (int64_t)(8 + strlen(json) + 2), "end 1 < begin 2");
}

NCK_TEST(st_header_too_large)
{
	st_img im = st_build("{}", 0);
	nck_st_file *f = NULL;
	nck_diag d;

	/* 100,000,001 > MAX_HEADER_SIZE, checked before the length is compared with the file. */
	im.buf[0] = 0x01;
	im.buf[1] = 0xE1;
	im.buf[2] = 0xF5;
	im.buf[3] = 0x05;
	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), -EBADMSG);
	ASSERT_EQ_INT(d.offset, 0);
	ASSERT_CONTAINS(d.msg, "100000001");
	ASSERT_CONTAINS(d.msg, "limit");
	/* Huge values must not wrap around either. */
	memset(im.buf, 0xFF, 8);
	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), -EBADMSG);
	free(im.buf);
}

NCK_TEST(st_header_past_end_and_short_file)
{
	st_img im = st_build("{}", 0);
	nck_st_file *f = NULL;
	nck_diag d;

	im.buf[0] = 3; /* claims 3 header bytes, file has 2 */
	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "past the end");
	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, 7, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "too short");
	free(im.buf);
}

NCK_TEST(st_bad_json_reports_its_position)
{
	/* jansson stops at the byte after '}' where a ',' or '"' was expected. */
	st_expect_error("{\"a\":{\"dtype\":\"U8\"}}}", 0, -EBADMSG, 8 + 21, "not valid JSON");
	st_expect_error("{\"a\":1", 0, -EBADMSG, -1, "not valid JSON");
}

NCK_TEST(st_nul_padding_is_refused)
{
	st_img im = st_build("{}xx", 0);
	nck_st_file *f = NULL;
	nck_diag d;

	im.buf[8 + 2] = 0;
	im.buf[8 + 3] = 0;
	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "JSON");
	free(im.buf);
}

NCK_TEST(st_header_must_be_an_object)
{
	st_expect_error("[1,2]", 0, -EBADMSG, 8, "not a JSON object");
}

NCK_TEST(st_metadata_values_must_be_strings)
{
	const char *json = "{\"__metadata__\":{\"format\":\"pt\",\"step\":3}}";

	st_expect_error(json, 0, -EBADMSG, 8 + 1, "'step' is not a string");
	st_expect_error("{\"__metadata__\":[\"pt\"]}", 0, -EBADMSG, 8 + 1, "not an object");
}

NCK_TEST(st_unknown_dtype_is_malformed)
{
	const char *json = "{\"__metadata__\":{},\"w\":{\"dtype\":\"F128\",\"shape\":[1],"
			   "\"data_offsets\":[0,16]}}";

	st_expect_error(json, 16, -EBADMSG, 8 + 19, "unknown dtype 'F128'");
	st_expect_error("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -EBADMSG,
			8 + 1, "dtype");
}

NCK_TEST(st_known_but_unsupported_dtype_is_enotsup)
{
	const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
			   "\"s\":{\"dtype\":\"F8_E8M0\",\"shape\":[2],\"data_offsets\":[2,4]}}";

	st_expect_error(json, 4, -ENOTSUP, -1, "'s': dtype is not supported");
	/* F4 packs two elements per byte: [3] is 12 bits, not whole bytes. */
	st_expect_error("{\"q\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
			-EBADMSG, -1, "whole number of bytes");
	/* A malformed file with an unsupported dtype is still malformed. */
	st_expect_error("{\"q\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]}}", 3,
			-EBADMSG, -1, "trailing");
}

NCK_TEST(st_bad_tensor_entries)
{
	st_expect_error("{\"w\":[1]}", 0, -EBADMSG, 8 + 1, "not an object");
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
			-EBADMSG, -1, "shape[0]");
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", 1,
			-EBADMSG, -1, "shape[0]");
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, -EBADMSG, -1,
			"shape is not an array");
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1,
			-EBADMSG, -1, "data_offsets");
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1,
			-EBADMSG, -1, "data_offsets");
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, -EBADMSG, -1,
			"data_offsets");
}

NCK_TEST(st_duplicate_keys_are_refused)
{
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
			"\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
			1, -EBADMSG, -1, "duplicate");
}

NCK_TEST(st_shape_overflow_and_too_many_dims)
{
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,0],"
			"\"data_offsets\":[0,0]}}",
			0, -EOVERFLOW, -1, "overflows");
	st_expect_error("{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
			"\"data_offsets\":[0,0]}}",
			0, -EOVERFLOW, -1, "overflows");
	st_expect_error("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,2],"
			"\"data_offsets\":[0,2]}}",
			2, -ENOTSUP, -1, "more than 8 dimensions");
}

NCK_TEST(st_unicode_names_and_find)
{
	const char *json = "{\"z\\u00e9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
			   "\"A\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
			   "\"m.1\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}";
	st_img im = st_build(json, 3);
	nck_st_file *f = NULL;
	nck_diag d;

	ASSERT_EQ_INT(st_open_mem(&f, &im, 0, im.len, &d), 0);
	ASSERT_EQ_STR(f->tensors[0].name, "A");
	ASSERT_EQ_STR(f->tensors[1].name, "m.1");
	ASSERT_EQ_STR(f->tensors[2].name, "z\xc3\xa9");
	ASSERT_EQ_INT(nck_st_find(f, "z\xc3\xa9")->data_offset, 8 + strlen(json) + 1);
	ASSERT_TRUE(nck_st_find(f, "m") == NULL);
	nck_st_file_free(f);
	free(im.buf);
}
