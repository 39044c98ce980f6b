/* SPDX-License-Identifier: MIT */
/*
 * The tensors/ view: each logical tensor as a NumPy .npy file (format
 * version 1.0: magic, little-endian header length, a Python-literal dict,
 * padded with spaces and a newline so that data start on a 64-byte boundary,
 * then the data in C order). bf16 and fp8 have no NumPy dtype: they are
 * widened exactly to float32; every other dtype is kept.
 *
 * Spec: numpy/lib/format.py (NumPy's .npy format, ARRAY_ALIGN = 64).
 * Thread-safety: pure functions over an immutable catalog.
 */
#ifndef NCK_VIEW_NPY_H
#define NCK_VIEW_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/catalog.h"

/* Longest header written (the dict grows with the number of dimensions). */
#define NCK_NPY_MAX_HEADER 512

/* The .npy element type of `dtype` ("<f4", "|u1", ...) and its size. */
const char *nck_npy_descr(nck_dtype dtype, size_t *elem_size);

/*
 * Writes the header of tensor `t` into buf (at least NCK_NPY_MAX_HEADER
 * bytes); returns its length, a multiple of 64.
 */
size_t nck_npy_header(char *buf, const nck_tensor *t);

/* Size of the whole .npy file of `t`. */
uint64_t nck_npy_size(const nck_tensor *t);

/*
 * Produces bytes [off, off+len) of the .npy file of `t` into buf.
 * Returns 0, -EINVAL past the end, or the catalog read's error (-EIO).
 */
int nck_npy_read(const nck_catalog *cat, const nck_tensor *t, uint64_t off, void *buf, size_t len);

/* Exact float32 of an fp8 code: E4M3 (OCP "fn": bias 7, no infinities,
 * S.1111.111 is NaN) or E5M2 (bias 15, IEEE-like infinities and NaNs). */
float nck_npy_fp8_to_f32(uint8_t v, bool e4m3);

#endif
