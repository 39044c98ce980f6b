/* SPDX-License-Identifier: MIT */
/*
 * Checked size arithmetic for values that come from untrusted input.
 *
 * NCK_CKD_ADD/MUL store the result in *dst, or set `rc = -EOVERFLOW` and jump
 * to the local label `out` (the one allowed control-flow macro, style.md §4).
 * The function form nck_ckd_add64() returns false on overflow instead.
 *
 * Thread-safety: pure functions.
 */
#ifndef NCK_UTIL_CKD_H
#define NCK_UTIL_CKD_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define NCK_CKD_ADD(dst, a, b)                                \
	do {                                                  \
		if (__builtin_add_overflow((a), (b), (dst))) { \
			rc = -EOVERFLOW;                      \
			goto out;                             \
		}                                             \
	} while (0)

#define NCK_CKD_MUL(dst, a, b)                                \
	do {                                                  \
		if (__builtin_mul_overflow((a), (b), (dst))) { \
			rc = -EOVERFLOW;                      \
			goto out;                             \
		}                                             \
	} while (0)

/* *out = a + b; returns false (and leaves *out unspecified) on overflow. */
static inline bool nck_ckd_add64(uint64_t *out, uint64_t a, uint64_t b)
{
	return !__builtin_add_overflow(a, b, out);
}

#endif
