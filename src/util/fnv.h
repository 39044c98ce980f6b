/* SPDX-License-Identifier: MIT */
/*
 * FNV-1a, 64-bit: the non-cryptographic hash of the string map, the gzip
 * content fingerprint and the remote record's file name. Never for keys an
 * untrusted party could aim (the disk block cache uses SHA-256).
 *
 * Thread-safety: pure functions.
 */
#ifndef NCK_UTIL_FNV_H
#define NCK_UTIL_FNV_H

#include <stddef.h>
#include <stdint.h>

#define NCK_FNV1A_INIT 0xcbf29ce484222325ull

/* Continues hash `h` over `len` bytes at p (start from NCK_FNV1A_INIT). */
static inline uint64_t nck_fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* The same over a NUL-terminated string. */
static inline uint64_t nck_fnv1a_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

#endif
