/* SPDX-License-Identifier: MIT */
/*
 * Test helper: writes tar archives byte by byte from the POSIX ustar and GNU
 * layouts (field offsets from POSIX.1-2001 "pax" and the GNU tar manual),
 * independently of libarchive, so the unit tests have their own oracle.
 */
#ifndef NCK_TESTS_TARBUILD_H
#define NCK_TESTS_TARBUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tarbuild {
	unsigned char *buf;
	size_t len, cap;
} tarbuild;

/* Ensures room for n more bytes (zeroed). */
static inline unsigned char *tb_grow(tarbuild *t, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = (t->len + n) * 2;

		t->buf = realloc(t->buf, cap);
		if (!t->buf)
			abort();
		memset(t->buf + t->cap, 0, cap - t->cap);
		t->cap = cap;
	}
	t->len += n;
	return t->buf + t->len - n;
}

/* Writes an octal field of `w` bytes: w-1 digits and a NUL. */
static inline void tb_octal(unsigned char *f, size_t w, uint64_t v)
{
	for (size_t i = w - 1; i-- > 0; v >>= 3)
		f[i] = (unsigned char)('0' + (v & 7));
	f[w - 1] = 0;
}

/* Appends one 512-byte header. prefix may be NULL; base256 picks GNU's
 * binary size encoding. Returns the header's offset. */
static inline size_t tb_header(tarbuild *t, const char *name, const char *prefix, char type,
			       uint64_t size, int base256)
{
	size_t off = t->len;
	unsigned char *h = tb_grow(t, 512);
	unsigned sum = 0;

	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	tb_octal(h + 100, 8, 0644);
	tb_octal(h + 108, 8, 1000);
	tb_octal(h + 116, 8, 1000);
	if (base256) {
		h[124] = 0x80;
		for (int i = 0; i < 8; i++)
			h[135 - i] = (unsigned char)(size >> (8 * i));
	} else {
		tb_octal(h + 124, 12, size);
	}
	tb_octal(h + 136, 12, 1700000000);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	if (prefix)
		memcpy(h + 345, prefix, strlen(prefix));
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	tb_octal(h + 148, 7, sum);
	h[155] = ' ';
	return off;
}

/* Appends data padded to 512 bytes; returns the data offset. */
static inline size_t tb_data(tarbuild *t, const void *d, size_t n)
{
	size_t off = t->len;

	memcpy(tb_grow(t, n), d, n);
	tb_grow(t, (512 - n % 512) % 512);
	return off;
}

/* Appends a file member; returns its data offset. */
static inline size_t tb_file(tarbuild *t, const char *name, const char *content)
{
	tb_header(t, name, NULL, '0', strlen(content), 0);
	return tb_data(t, content, strlen(content));
}

/* Appends a pax 'x' header holding one "key=value" record. */
static inline void tb_pax(tarbuild *t, const char *key, const char *value)
{
	char rec[1024];
	size_t body = strlen(key) + strlen(value) + 3, len = body + 1;

	/* The record length counts its own digits. */
	while ((size_t)snprintf(rec, sizeof(rec), "%zu %s=%s\n", len, key, value) != len)
		len++;
	tb_header(t, "././@PaxHeader", NULL, 'x', len, 0);
	tb_data(t, rec, len);
}

/* Appends the end-of-archive marker: two zero blocks. */
static inline void tb_end(tarbuild *t)
{
	tb_grow(t, 1024);
}

#endif
