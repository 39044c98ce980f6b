/* SPDX-License-Identifier: MIT */
/*
 * Opcodes of the restricted pickle machine (pickle.c) that push scalars:
 * None/True/False, integers (binary, LONG1/LONG4, protocol 0 text), floats,
 * and strings and bytes (binary, and protocol 0 text with its escapes).
 *
 * Thread-safety: a parse touches only its own state and the caller's arena.
 */
#include "format/pickle_int.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scalars ---------------------------------------------------------------------- */

/* NONE, NEWTRUE, NEWFALSE: the shared singletons. */
int nck_pkl_op_none(pkl_vm *vm, unsigned char op)
{
	return nck_pkl_push(vm, op == 'N' ? vm->none : op == 0x88 ? vm->yes : vm->no);
}

/* Pushes a new INT. */
static int pkl_push_int(pkl_vm *vm, int64_t i)
{
	nck_pv *v = NULL;
	int rc;

	if ((rc = nck_pkl_new(vm, &v, NCK_PV_INT)) < 0)
		return rc;
	v->i = i;
	return nck_pkl_push(vm, v);
}

/* Pushes an OPAQUE holding the pickled form of an int that does not fit int64. */
static int pkl_push_bigint(pkl_vm *vm, const void *s, size_t n)
{
	nck_pv *v = NULL;
	int rc;

	if ((rc = nck_pkl_new_str(vm, &v, NCK_PV_OPAQUE, s, n)) < 0)
		return rc;
	return nck_pkl_push(vm, v);
}

/* BININT1 (u8), BININT2 (u16), BININT (i32). */
int nck_pkl_op_binint(pkl_vm *vm, unsigned char op)
{
	size_t n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
	uint64_t v = 0;
	int rc;

	if ((rc = nck_pkl_take_uint(vm, n, &v)) < 0)
		return rc;
	return pkl_push_int(vm, op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v);
}

/* LONG1/LONG4: little-endian two's complement of a given length. */
int nck_pkl_op_long_bin(pkl_vm *vm, unsigned char op)
{
	const unsigned char *p = NULL;
	uint64_t n = 0, v = 0;
	int rc;

	if ((rc = nck_pkl_take_uint(vm, op == 0x8a ? 1 : 4, &n)) < 0)
		return rc;
	if (op == 0x8b && n > INT32_MAX)
		return nck_pkl_err(vm, -EBADMSG, "LONG4 with a negative length");
	if (!(p = nck_pkl_take(vm, n)))
		return -EBADMSG;
	if (n == 0)
		return pkl_push_int(vm, 0);
	/* Fits int64 when every byte past the 8th only repeats the sign. */
	for (size_t i = 8; i < n; i++)
		if (p[i] != ((p[7] & 0x80) ? 0xff : 0x00))
			return pkl_push_bigint(vm, p, (size_t)n);
	for (size_t i = (n < 8 ? (size_t)n : 8); i-- > 0;)
		v = v << 8 | p[i];
	if (n < 8 && (p[n - 1] & 0x80))
		v |= ~(uint64_t)0 << (8 * n);
	return pkl_push_int(vm, (int64_t)v);
}

/* BINFLOAT: 8-byte big-endian IEEE 754 double. */
int nck_pkl_op_binfloat(pkl_vm *vm, unsigned char op)
{
	const unsigned char *p = NULL;
	nck_pv *v = NULL;
	uint64_t bits = 0;
	int rc;

	(void)op;
	if (!(p = nck_pkl_take(vm, 8)))
		return -EBADMSG;
	if ((rc = nck_pkl_new(vm, &v, NCK_PV_FLOAT)) < 0)
		return rc;
	for (int i = 0; i < 8; i++)
		bits = bits << 8 | p[i];
	memcpy(&v->f, &bits, sizeof(v->f));
	return nck_pkl_push(vm, v);
}

/* INT and LONG (protocol 0): decimal text; INT "00"/"01" are False/True. */
int nck_pkl_op_int_text(pkl_vm *vm, unsigned char op)
{
	const char *s = NULL;
	size_t n = 0;
	int64_t i = 0;
	int rc;

	if ((rc = nck_pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (op == 'I' && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1'))
		return nck_pkl_push(vm, s[1] == '1' ? vm->yes : vm->no);
	if (op == 'L' && n && s[n - 1] == 'L')
		n--;
	rc = nck_pkl_parse_i64(s, n, &i);
	if (rc < 0)
		return nck_pkl_err(vm, -EBADMSG, "bad integer text");
	return rc ? pkl_push_bigint(vm, s, n) : pkl_push_int(vm, i);
}

/* FLOAT (protocol 0): repr() text, parsed in the C locale. */
int nck_pkl_op_float_text(pkl_vm *vm, unsigned char op)
{
	char buf[PKL_MAX_NUM_TEXT + 1], *end = NULL;
	locale_t c_locale;
	const char *s = NULL;
	nck_pv *v = NULL;
	size_t n = 0;
	int rc;

	(void)op;
	if ((rc = nck_pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (n == 0 || n > PKL_MAX_NUM_TEXT || memchr(s, '\0', n))
		return nck_pkl_err(vm, -EBADMSG, "bad float text");
	memcpy(buf, s, n);
	buf[n] = '\0';
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!c_locale)
		return nck_pkl_err(vm, -ENOMEM, "out of memory");
	if ((rc = nck_pkl_new(vm, &v, NCK_PV_FLOAT)) == 0)
		v->f = strtod_l(buf, &end, c_locale);
	freelocale(c_locale);
	if (rc < 0)
		return rc;
	if (end != buf + n)
		return nck_pkl_err(vm, -EBADMSG, "bad float text");
	return nck_pkl_push(vm, v);
}

/* ---- strings and bytes ------------------------------------------------------------ */

/* BINUNICODE (u32), SHORT_BINUNICODE (u8), BINUNICODE8 (u64), and the Python 2
 * BINSTRING (i32) / SHORT_BINSTRING (u8), which torch.load decodes as UTF-8. */
int nck_pkl_op_str_bin(pkl_vm *vm, unsigned char op)
{
	size_t w = (op == 0x8c || op == 'U') ? 1 : op == 0x8d ? 8 : 4;
	const unsigned char *p = NULL;
	nck_pv *v = NULL;
	uint64_t n = 0;
	int rc;

	if ((rc = nck_pkl_take_uint(vm, w, &n)) < 0)
		return rc;
	if (op == 'T' && n > INT32_MAX)
		return nck_pkl_err(vm, -EBADMSG, "BINSTRING with a negative length");
	if (!(p = nck_pkl_take(vm, n)))
		return -EBADMSG;
	if ((rc = nck_pkl_new_str(vm, &v, NCK_PV_STR, p, (size_t)n)) < 0)
		return rc;
	return nck_pkl_push(vm, v);
}

/* BINBYTES (u32), SHORT_BINBYTES (u8), BINBYTES8 and BYTEARRAY8 (u64). */
int nck_pkl_op_bytes_bin(pkl_vm *vm, unsigned char op)
{
	size_t w = op == 'C' ? 1 : op == 'B' ? 4 : 8;
	const unsigned char *p = NULL;
	nck_pv *v = NULL;
	uint64_t n = 0;
	int rc;

	if ((rc = nck_pkl_take_uint(vm, w, &n)) < 0)
		return rc;
	if (!(p = nck_pkl_take(vm, n)))
		return -EBADMSG;
	if ((rc = nck_pkl_new_str(vm, &v, NCK_PV_BYTES, p, (size_t)n)) < 0)
		return rc;
	return nck_pkl_push(vm, v);
}

/* Value of hex digit c, or -1. */
static int pkl_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the backslash escape at s[*i] (just after the backslash) as
 * codecs.escape_decode does; unknown escapes keep the backslash. */
static size_t pkl_escape(const char *s, size_t n, size_t *i, unsigned char *o)
{
	static const char from[] = "\\'\"abfnrtv", to[] = "\\'\"\a\b\f\n\r\t\v";
	const char *hit = *i < n && s[*i] ? strchr(from, s[*i]) : NULL;
	unsigned v = 0;
	size_t k = 0;

	if (hit) {
		*i += 1;
		return o[0] = (unsigned char)to[hit - from], 1;
	}
	if (*i + 2 < n && s[*i] == 'x' && pkl_hex(s[*i + 1]) >= 0 && pkl_hex(s[*i + 2]) >= 0) {
		o[0] = (unsigned char)(pkl_hex(s[*i + 1]) << 4 | pkl_hex(s[*i + 2]));
		*i += 3;
		return 1;
	}
	while (k < 3 && *i < n && s[*i] >= '0' && s[*i] <= '7')
		v = v * 8 + (unsigned)(s[(*i)++] - '0'), k++;
	if (k)
		return o[0] = (unsigned char)v, 1;
	return o[0] = '\\', 1;
}

/* STRING (protocol 0): a quoted repr() with backslash escapes, decoded as UTF-8. */
int nck_pkl_op_string_text(pkl_vm *vm, unsigned char op)
{
	unsigned char *buf = NULL;
	const char *s = NULL;
	nck_pv *v = NULL;
	size_t n = 0, o = 0;
	int rc;

	(void)op;
	if ((rc = nck_pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
		return nck_pkl_err(vm, -EBADMSG, "STRING argument is not quoted");
	s++, n -= 2;
	buf = malloc(n + 1);
	if (!buf)
		return nck_pkl_err(vm, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n;) {
		if (s[i] != '\\') {
			buf[o++] = (unsigned char)s[i++];
			continue;
		}
		i++;
		if (i < n && s[i] == '\n') {
			i++;
			continue;
		}
		o += pkl_escape(s, n, &i, buf + o);
	}
	rc = nck_pkl_new_str(vm, &v, NCK_PV_STR, buf, o);
	free(buf);
	return rc < 0 ? rc : nck_pkl_push(vm, v);
}

/* Parses `k` hex digits at s into *cp; false if one is not a hex digit. */
static bool pkl_hex_run(const char *s, size_t k, uint32_t *cp)
{
	*cp = 0;
	for (size_t j = 0; j < k; j++) {
		int h = pkl_hex(s[j]);

		if (h < 0)
			return false;
		*cp = *cp << 4 | (uint32_t)h;
	}
	return true;
}

/* UNICODE (protocol 0): raw-unicode-escape, i.e. latin-1 bytes plus \uXXXX
 * and \UXXXXXXXX escapes. */
int nck_pkl_op_unicode_text(pkl_vm *vm, unsigned char op)
{
	unsigned char *buf = NULL;
	const char *s = NULL;
	nck_pv *v = NULL;
	size_t n = 0, o = 0;
	int rc;

	(void)op;
	if ((rc = nck_pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	/* Each input byte makes at most 2 output bytes (latin-1 above 0x7f). */
	if (n > (SIZE_MAX - 1) / 2 || !(buf = malloc(2 * n + 1)))
		return nck_pkl_err(vm, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		uint32_t cp = 0;

		if (s[i] == '\\' && i + 1 < n)
			k = s[i + 1] == 'u' ? 4 : s[i + 1] == 'U' ? 8 : 0;
		if (k && n - i - 2 >= k && pkl_hex_run(s + i + 2, k, &cp)) {
			if (cp > 0x10ffff) {
				free(buf);
				return nck_pkl_err(vm, -EBADMSG, "bad \\U escape");
			}
			o += nck_pkl_utf8_put(buf + o, cp);
			i += 2 + k;
		} else {
			o += nck_pkl_utf8_put(buf + o, (unsigned char)s[i++]);
		}
	}
	rc = nck_pkl_new_str(vm, &v, NCK_PV_STR, buf, o);
	free(buf);
	return rc < 0 ? rc : nck_pkl_push(vm, v);
}

