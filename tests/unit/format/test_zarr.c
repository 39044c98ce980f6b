/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the zarr v2 `.zarray` reader and chunk keys: hand-written
 * metadata in zarr-python 2's layout (indent 4, sorted keys), as Megatron's
 * zarr strategy writes it (shared/spec/tensor-formats.md §4), plus the
 * unsupported and malformed variants.
 */
#include <errno.h>
#include <math.h>

#include "format/zarr.h"
#include "nck_test.h"

/* The spec's example: linear_qkv.weight, 32 layers, TP = 2, bf16. */
static const char zarr_qkv[] = "{\n"
			       "    \"chunks\": [\n        1,\n        3072,\n        4096\n    ],\n"
			       "    \"compressor\": null,\n"
			       "    \"dtype\": \"bfloat16\",\n"
			       "    \"fill_value\": null,\n"
			       "    \"filters\": null,\n"
			       "    \"order\": \"C\",\n"
			       "    \"shape\": [\n        32,\n        6144,\n        4096\n    ],\n"
			       "    \"zarr_format\": 2\n"
			       "}";

/* Parses a NUL-terminated .zarray text. */
static int zarr_parse_str(nck_zarr_array *a, const char *json, nck_diag *d)
{
	nck_diag_init(d);
	return nck_zarr_parse(a, json, strlen(json),
			      "decoder.layers.self_attention.linear_qkv.weight", d);
}

/* Expects a parse failure with `code` and a message containing `needle`. */
static void zarr_expect(const char *json, int code, const char *needle)
{
	nck_zarr_array a;
	nck_diag d;

	ASSERT_EQ_INT(zarr_parse_str(&a, json, &d), code);
	ASSERT_EQ_INT(d.code, code);
	ASSERT_CONTAINS(d.msg, needle);
}

NCK_TEST(zarr_megatron_bfloat16_array)
{
	nck_zarr_array a;
	nck_diag d;

	ASSERT_EQ_INT(zarr_parse_str(&a, zarr_qkv, &d), 0);
	ASSERT_EQ_INT(a.dtype, NCK_DTYPE_BF16);
	ASSERT_EQ_INT(a.ndim, 3);
	ASSERT_EQ_INT(a.shape[0], 32);
	ASSERT_EQ_INT(a.shape[1], 6144);
	ASSERT_EQ_INT(a.shape[2], 4096);
	ASSERT_EQ_INT(a.chunks[0], 1);
	ASSERT_EQ_INT(a.chunks[1], 3072);
	ASSERT_EQ_INT(a.chunks[2], 4096);
	ASSERT_EQ_INT(a.grid[0], 32);
	ASSERT_EQ_INT(a.grid[1], 2);
	ASSERT_EQ_INT(a.grid[2], 1);
	ASSERT_EQ_INT(a.chunk_bytes, 3072ull * 4096 * 2);
	ASSERT_EQ_INT(a.order, 'C');
	ASSERT_EQ_INT(a.dim_sep, '.');
	ASSERT_TRUE(!a.has_fill);
}

NCK_TEST(zarr_numpy_dtypes)
{
	static const struct {
		const char *descr;
		nck_dtype dtype;
	} cases[] = {
		{ "<f4", NCK_DTYPE_F32 }, { "<f2", NCK_DTYPE_F16 }, { "<f8", NCK_DTYPE_F64 },
		{ "<i8", NCK_DTYPE_I64 }, { "<i4", NCK_DTYPE_I32 }, { "<i2", NCK_DTYPE_I16 },
		{ "|i1", NCK_DTYPE_I8 },  { "|u1", NCK_DTYPE_U8 },  { "|b1", NCK_DTYPE_BOOL },
	};
	char json[256];
	nck_zarr_array a;
	nck_diag d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"%s\",\"fill_value\":0,"
			 "\"filters\":null,\"order\":\"C\",\"shape\":[5],\"zarr_format\":2}",
			 cases[i].descr);
		ASSERT_EQ_INT(zarr_parse_str(&a, json, &d), 0);
		ASSERT_EQ_INT(a.dtype, cases[i].dtype);
		ASSERT_EQ_INT(a.grid[0], 3); /* 5 / 2 rounded up: a partial edge chunk */
		ASSERT_EQ_INT(a.chunk_bytes, 2 * nck_dtype_size(cases[i].dtype));
		ASSERT_TRUE(a.has_fill);
		ASSERT_TRUE(a.fill_value == 0.0);
	}
}

NCK_TEST(zarr_unsupported_dtypes)
{
	zarr_expect("{\"chunks\":[1],\"compressor\":null,\"dtype\":\"<c8\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[1],\"zarr_format\":2}",
		    -ENOTSUP, "dtype '<c8' is not supported");
	zarr_expect("{\"chunks\":[1],\"compressor\":null,\"dtype\":\">f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[1],\"zarr_format\":2}",
		    -ENOTSUP, "dtype '>f4'");
	zarr_expect("{\"chunks\":[1],\"compressor\":null,\"dtype\":[[\"a\",\"<f4\"]],"
		    "\"fill_value\":null,\"filters\":null,\"order\":\"C\",\"shape\":[1],"
		    "\"zarr_format\":2}",
		    -ENOTSUP, "structured");
}

NCK_TEST(zarr_blosc_compressor_is_refused_with_the_array_name)
{
	zarr_expect("{\"chunks\":[4],\"compressor\":{\"blocksize\":0,\"clevel\":5,\"cname\":\"lz4\","
		    "\"id\":\"blosc\",\"shuffle\":1},\"dtype\":\"<f4\",\"fill_value\":0.0,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[8],\"zarr_format\":2}",
		    -ENOTSUP,
		    "compressed zarr array decoder.layers.self_attention.linear_qkv.weight: "
		    "compressor 'blosc' is not supported");
}

NCK_TEST(zarr_filters_are_refused_but_empty_filters_are_fine)
{
	nck_zarr_array a;
	nck_diag d;

	zarr_expect("{\"chunks\":[4],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":[{\"id\":\"delta\",\"dtype\":\"<f4\"}],\"order\":\"C\",\"shape\":[8],"
		    "\"zarr_format\":2}",
		    -ENOTSUP, "filter 'delta'");
	ASSERT_EQ_INT(zarr_parse_str(&a,
				     "{\"chunks\":[4],\"compressor\":null,\"dtype\":\"<f4\","
				     "\"fill_value\":null,\"filters\":[],\"order\":\"C\",\"shape\":[8],"
				     "\"zarr_format\":2}",
				     &d),
		      0);
	/* filters absent altogether */
	ASSERT_EQ_INT(zarr_parse_str(&a,
				     "{\"chunks\":[4],\"compressor\":null,\"dtype\":\"<f4\","
				     "\"fill_value\":null,\"order\":\"C\",\"shape\":[8],\"zarr_format\":2}",
				     &d),
		      0);
}

NCK_TEST(zarr_fortran_order_is_refused)
{
	zarr_expect("{\"chunks\":[2,2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"F\",\"shape\":[4,4],\"zarr_format\":2}",
		    -ENOTSUP, "Fortran order");
	zarr_expect("{\"chunks\":[2,2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"K\",\"shape\":[4,4],\"zarr_format\":2}",
		    -EBADMSG, "'order'");
}

NCK_TEST(zarr_format_must_be_2)
{
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[4],\"zarr_format\":3}",
		    -ENOTSUP, "zarr_format 3");
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[4]}",
		    -EBADMSG, "'zarr_format' missing");
}

NCK_TEST(zarr_bad_shapes_and_chunks)
{
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[-4],\"zarr_format\":2}",
		    -EBADMSG, "shape[0]");
	zarr_expect("{\"chunks\":[0],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[4],\"zarr_format\":2}",
		    -EBADMSG, "chunks[0] is not an integer >= 1");
	zarr_expect("{\"chunks\":[2,2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[4],\"zarr_format\":2}",
		    -EBADMSG, "chunks has 2 dimensions, shape has 1");
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":4,\"zarr_format\":2}",
		    -EBADMSG, "'shape' missing or not a list");
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[2.5],\"zarr_format\":2}",
		    -EBADMSG, "shape[0]");
	zarr_expect("{\"chunks\":[1,1,1,1,1,1,1,1,1],\"compressor\":null,\"dtype\":\"<f4\","
		    "\"fill_value\":null,\"filters\":null,\"order\":\"C\","
		    "\"shape\":[1,1,1,1,1,1,1,1,1],\"zarr_format\":2}",
		    -ENOTSUP, "at most 8");
	zarr_expect("{\"chunks\":[4294967296,4294967296],\"compressor\":null,\"dtype\":\"<f4\","
		    "\"fill_value\":null,\"filters\":null,\"order\":\"C\","
		    "\"shape\":[1,1],\"zarr_format\":2}",
		    -EOVERFLOW, "overflows");
}

NCK_TEST(zarr_bad_json_and_missing_keys)
{
	nck_zarr_array a;
	nck_diag d;

	ASSERT_EQ_INT(zarr_parse_str(&a, "{\"chunks\": [1,}", &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "not valid JSON");
	ASSERT_TRUE(d.offset > 0);
	zarr_expect("[2]", -EBADMSG, "not an object");
	zarr_expect("{\"chunks\":[2],\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[4],\"zarr_format\":2}",
		    -EBADMSG, "'compressor' is missing");
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"fill_value\":null,"
		    "\"filters\":null,\"order\":\"C\",\"shape\":[4],\"zarr_format\":2}",
		    -EBADMSG, "'dtype' missing");
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":null,"
		    "\"filters\":null,\"shape\":[4],\"zarr_format\":2}",
		    -EBADMSG, "'order' missing");
	zarr_expect("{\"chunks\":[2],\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\","
		    "\"fill_value\":null,\"filters\":null,\"order\":\"C\",\"shape\":[4],"
		    "\"zarr_format\":2}",
		    -EBADMSG, "duplicate");
}

NCK_TEST(zarr_fill_values)
{
	nck_zarr_array a;
	nck_diag d;

	ASSERT_EQ_INT(zarr_parse_str(&a,
				     "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\","
				     "\"fill_value\":\"NaN\",\"filters\":null,\"order\":\"C\","
				     "\"shape\":[4],\"zarr_format\":2}",
				     &d),
		      0);
	ASSERT_TRUE(a.has_fill && isnan(a.fill_value));
	ASSERT_EQ_INT(zarr_parse_str(&a,
				     "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\","
				     "\"fill_value\":\"-Infinity\",\"filters\":null,\"order\":\"C\","
				     "\"shape\":[4],\"zarr_format\":2}",
				     &d),
		      0);
	ASSERT_TRUE(isinf(a.fill_value) && a.fill_value < 0);
	ASSERT_EQ_INT(zarr_parse_str(&a,
				     "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<i8\","
				     "\"fill_value\":-7,\"filters\":null,\"order\":\"C\","
				     "\"shape\":[4],\"zarr_format\":2}",
				     &d),
		      0);
	ASSERT_TRUE(a.fill_value == -7.0);
	zarr_expect("{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":\"abc\","
		    "\"filters\":null,\"order\":\"C\",\"shape\":[4],\"zarr_format\":2}",
		    -EBADMSG, "fill_value");
}

NCK_TEST(zarr_chunk_keys_with_both_separators)
{
	nck_zarr_array a;
	nck_diag d;
	uint64_t idx[3] = { 31, 1, 0 };
	char key[32];

	ASSERT_EQ_INT(zarr_parse_str(&a, zarr_qkv, &d), 0);
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, sizeof(key), &a, idx), 0);
	ASSERT_EQ_STR(key, "31.1.0");
	idx[0] = 0;
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, sizeof(key), &a, idx), 0);
	ASSERT_EQ_STR(key, "0.1.0");
	/* Exactly fits (5 chars + NUL), then one byte short. */
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, 6, &a, idx), 0);
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, 5, &a, idx), -ENAMETOOLONG);
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, 0, &a, idx), -ENAMETOOLONG);
	/* Outside the 32 x 2 x 1 grid. */
	idx[1] = 2;
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, sizeof(key), &a, idx), -EINVAL);

	ASSERT_EQ_INT(zarr_parse_str(&a,
				     "{\"chunks\":[1,3072,4096],\"compressor\":null,"
				     "\"dimension_separator\":\"/\",\"dtype\":\"bfloat16\","
				     "\"fill_value\":null,\"filters\":null,\"order\":\"C\","
				     "\"shape\":[32,6144,4096],\"zarr_format\":2}",
				     &d),
		      0);
	ASSERT_EQ_INT(a.dim_sep, '/');
	idx[0] = 7;
	idx[1] = 1;
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, sizeof(key), &a, idx), 0);
	ASSERT_EQ_STR(key, "7/1/0");
	zarr_expect("{\"chunks\":[1],\"compressor\":null,\"dimension_separator\":\"-\","
		    "\"dtype\":\"<f4\",\"fill_value\":null,\"filters\":null,\"order\":\"C\","
		    "\"shape\":[1],\"zarr_format\":2}",
		    -EBADMSG, "dimension_separator");
}

NCK_TEST(zarr_zero_dimensional_array)
{
	nck_zarr_array a;
	nck_diag d;
	char key[8];

	ASSERT_EQ_INT(zarr_parse_str(&a,
				     "{\"chunks\":[],\"compressor\":null,\"dtype\":\"<i8\","
				     "\"fill_value\":null,\"filters\":null,\"order\":\"C\","
				     "\"shape\":[],\"zarr_format\":2}",
				     &d),
		      0);
	ASSERT_EQ_INT(a.ndim, 0);
	ASSERT_EQ_INT(a.chunk_bytes, 8);
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, sizeof(key), &a, NULL), 0);
	ASSERT_EQ_STR(key, "0");
	ASSERT_EQ_INT(nck_zarr_chunk_key(key, 1, &a, NULL), -ENAMETOOLONG);
}
