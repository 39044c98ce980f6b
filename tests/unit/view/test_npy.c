/* SPDX-License-Identifier: MIT */
/*
 * .npy view: header layout (NumPy format 1.0: magic, version, header length,
 * dict, 64-byte alignment) and exact fp8 widening, checked against values
 * from the OCP 8-bit floating point specification (E4M3 max 448, min
 * subnormal 2^-9; E5M2 max 57344, min subnormal 2^-16).
 */
#include <math.h>

#include "nck_test.h"
#include "view/npy.h"

NCK_TEST(npy_header_layout)
{
	nck_tensor t = { .name = "w", .dtype = NCK_DTYPE_BF16, .ndim = 2, .shape = { 3, 4 } };
	char buf[NCK_NPY_MAX_HEADER];
	size_t n = nck_npy_header(buf, &t);

	ASSERT_EQ_INT(n % 64, 0);
	ASSERT_TRUE(memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0);
	ASSERT_EQ_INT((unsigned char)buf[8] | (unsigned char)buf[9] << 8, n - 10);
	buf[n - 1] = '\0';
	ASSERT_CONTAINS(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
	ASSERT_EQ_INT(nck_npy_size(&t), n + 3 * 4 * 4);
	t.ndim = 1;
	t.dtype = NCK_DTYPE_I64;
	n = nck_npy_header(buf, &t);
	buf[n - 1] = '\0';
	ASSERT_CONTAINS(buf + 10, "'descr': '<i8'");
	ASSERT_CONTAINS(buf + 10, "'shape': (3,)");
	t.ndim = 0;
	n = nck_npy_header(buf, &t);
	buf[n - 1] = '\0';
	ASSERT_CONTAINS(buf + 10, "'shape': ()");
}

NCK_TEST(npy_fp8_e4m3_values)
{
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x7e, true) == 448.0f);
	ASSERT_TRUE(nck_npy_fp8_to_f32(0xfe, true) == -448.0f);
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x38, true) == 1.0f);
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x08, true) == ldexpf(1.0f, -6));
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x01, true) == ldexpf(1.0f, -9));
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x00, true) == 0.0f);
	ASSERT_TRUE(isnan(nck_npy_fp8_to_f32(0x7f, true)));
	ASSERT_TRUE(isnan(nck_npy_fp8_to_f32(0xff, true)));
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x78, true) == 256.0f); /* E=15, M=0 is finite in E4M3 */
}

NCK_TEST(npy_fp8_e5m2_values)
{
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x7b, false) == 57344.0f);
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x3c, false) == 1.0f);
	ASSERT_TRUE(nck_npy_fp8_to_f32(0x01, false) == ldexpf(1.0f, -16));
	ASSERT_TRUE(isinf(nck_npy_fp8_to_f32(0x7c, false)) && nck_npy_fp8_to_f32(0x7c, false) > 0);
	ASSERT_TRUE(isinf(nck_npy_fp8_to_f32(0xfc, false)) && nck_npy_fp8_to_f32(0xfc, false) < 0);
	ASSERT_TRUE(isnan(nck_npy_fp8_to_f32(0x7d, false)));
}
