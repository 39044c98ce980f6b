/* SPDX-License-Identifier: MIT */
/*
 * nck_dtype tables (see nemockpt/dtype.h). Names: safetensors
 * `safetensors/src/tensor.rs` Dtype; torch `torch/storage.py` storage
 * classes and `torch/_tensor_str.py` dtype names; numpy array-interface
 * type strings as zarr v2 writes them.
 */
#include "nemockpt/dtype.h"

#include <string.h>

static const struct dtype_info {
	const char *name;    /* safetensors */
	size_t size;
	const char *storage; /* torch storage class */
	const char *torch;   /* torch dtype name */
	const char *alias;   /* other torch dtype name */
	const char *numpy;   /* numpy descr, little-endian */
} dtype_table[NCK_DTYPE_COUNT] = {
	[NCK_DTYPE_BOOL] = { "BOOL", 1, "BoolStorage", "bool", NULL, "|b1" },
	[NCK_DTYPE_U8] = { "U8", 1, "ByteStorage", "uint8", NULL, "|u1" },
	[NCK_DTYPE_I8] = { "I8", 1, "CharStorage", "int8", NULL, "|i1" },
	[NCK_DTYPE_U16] = { "U16", 2, NULL, "uint16", NULL, "<u2" },
	[NCK_DTYPE_I16] = { "I16", 2, "ShortStorage", "int16", "short", "<i2" },
	[NCK_DTYPE_U32] = { "U32", 4, NULL, "uint32", NULL, "<u4" },
	[NCK_DTYPE_I32] = { "I32", 4, "IntStorage", "int32", "int", "<i4" },
	[NCK_DTYPE_U64] = { "U64", 8, NULL, "uint64", NULL, "<u8" },
	[NCK_DTYPE_I64] = { "I64", 8, "LongStorage", "int64", "long", "<i8" },
	[NCK_DTYPE_F16] = { "F16", 2, "HalfStorage", "float16", "half", "<f2" },
	[NCK_DTYPE_BF16] = { "BF16", 2, "BFloat16Storage", "bfloat16", NULL, "bfloat16" },
	[NCK_DTYPE_F32] = { "F32", 4, "FloatStorage", "float32", "float", "<f4" },
	[NCK_DTYPE_F64] = { "F64", 8, "DoubleStorage", "float64", "double", "<f8" },
	[NCK_DTYPE_F8_E4M3] = { "F8_E4M3", 1, "Float8_e4m3fnStorage", "float8_e4m3fn", NULL, NULL },
	[NCK_DTYPE_F8_E5M2] = { "F8_E5M2", 1, "Float8_e5m2Storage", "float8_e5m2", NULL, NULL },
};

/* Finds the dtype whose field (selected by `pick`) equals `s`. */
static nck_dtype dtype_find(const char *s, const char *(*pick)(const struct dtype_info *))
{
	if (!s)
		return NCK_DTYPE_UNKNOWN;
	for (int i = 1; i < NCK_DTYPE_COUNT; i++) {
		const char *v = pick(&dtype_table[i]);

		if (v && strcmp(v, s) == 0)
			return (nck_dtype)i;
	}
	return NCK_DTYPE_UNKNOWN;
}

static const char *pick_name(const struct dtype_info *d)
{
	return d->name;
}

static const char *pick_storage(const struct dtype_info *d)
{
	return d->storage;
}

static const char *pick_torch(const struct dtype_info *d)
{
	return d->torch;
}

static const char *pick_alias(const struct dtype_info *d)
{
	return d->alias;
}

static const char *pick_numpy(const struct dtype_info *d)
{
	return d->numpy;
}

size_t nck_dtype_size(nck_dtype dtype)
{
	return dtype > 0 && dtype < NCK_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

const char *nck_dtype_name(nck_dtype dtype)
{
	return dtype > 0 && dtype < NCK_DTYPE_COUNT ? dtype_table[dtype].name : "UNKNOWN";
}

nck_dtype nck_dtype_from_name(const char *name)
{
	return dtype_find(name, pick_name);
}

nck_dtype nck_dtype_from_torch_storage(const char *cls)
{
	return dtype_find(cls, pick_storage);
}

nck_dtype nck_dtype_from_torch_dtype(const char *name)
{
	nck_dtype d = dtype_find(name, pick_torch);

	return d ? d : dtype_find(name, pick_alias);
}

nck_dtype nck_dtype_from_numpy(const char *descr)
{
	char le[16];

	if (!descr || strlen(descr) >= sizeof(le))
		return NCK_DTYPE_UNKNOWN;
	/* One-byte types may be written with any byte-order mark. */
	strcpy(le, descr);
	if ((le[0] == '<' || le[0] == '=' || le[0] == '>') && le[2] == '1' && le[3] == '\0')
		le[0] = '|';
	if (le[0] == '=')
		le[0] = '<';
	return dtype_find(le, pick_numpy);
}
