/* SPDX-License-Identifier: MIT */
/*
 * Restricted pickle machine (see pickle.h). One handler per opcode, found
 * through a 256-entry table; an empty slot is an unknown opcode. The stack
 * is split by MARKs kept on a separate mark stack, as CPython's `_Unpickler`
 * does (`metastack`), so nothing pops across a MARK. The memo is a dense
 * array: a memo index may not exceed the number of PUTs run before it, which
 * CPython's Pickler always satisfies (it numbers entries len(memo)), so a
 * hostile index cannot make the array large.
 *
 * Opcode semantics: CPython `Lib/pickle.py` (`_Unpickler.load_*`) and
 * `Lib/pickletools.py` (argument encodings); protocol 0 text escapes as in
 * `codecs.escape_decode` and `raw_unicode_escape`, partially (pickle.h).
 *
 * Thread-safety: a parse touches only its own state and the caller's arena.
 */
#include "format/pickle.h"
#include "format/pickle_allow.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PKL_DEF_DEPTH	 1000u
/* Values and bytes: a state dict of 100,000 tensors takes about 20 values
 * and 1.5 KiB each; a bound well above that keeps a crafted pickle from
 * taking more than the 256 MiB `nemockpt info` is allowed (issue 12). */
#define PKL_DEF_ITEMS	 ((size_t)4 << 20)
#define PKL_DEF_BYTES	 ((size_t)128 << 20)
#define PKL_MAX_PROTO	 5  /* pickle.HIGHEST_PROTOCOL in CPython 3.8-3.14 */
#define PKL_MAX_NUM_TEXT 64 /* longest protocol-0 number we convert */

typedef struct pkl_vm {
	nck_arena *arena;
	const unsigned char *data;
	size_t len, pos;
	size_t op; /* offset of the opcode being run, for messages */
	const char *name;
	nck_pkl_limits lim;
	nck_pkl_persid_cb persid_cb;
	void *payload;
	nck_diag *diag;
	nck_pv **stack;
	size_t sp, stack_cap;
	size_t *marks; /* stack heights at each open MARK */
	size_t n_marks, marks_cap;
	nck_pv **memo; /* NULL where unset */
	size_t memo_cap, memo_count, n_puts;
	size_t n_items, n_bytes;
	nck_pv *none, *yes, *no; /* shared singletons */
	nck_pv *result;
} pkl_vm;

typedef int (*pkl_op_fn)(pkl_vm *vm, unsigned char op);

/* ---- errors, allocation, values ----------------------------------------------- */

/* Records an error at the current opcode and returns `code`. */
__attribute__((format(printf, 3, 4))) static int pkl_err(pkl_vm *vm, int code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nck_diag_set(vm->diag, code, vm->name, (int64_t)vm->op, "pickle: %s", msg);
	return code; /* visibly negative, so callers' flow analysis sees the failure */
}

/* Takes `n` bytes from the arena, within the byte limit. */
static int pkl_alloc(pkl_vm *vm, void **out, size_t n)
{
	if (n > vm->lim.max_bytes - vm->n_bytes)
		return pkl_err(vm, -E2BIG, "more than %zu bytes of values", vm->lim.max_bytes);
	*out = nck_arena_alloc(vm->arena, n ? n : 1);
	if (!*out)
		return pkl_err(vm, -ENOMEM, "out of memory");
	vm->n_bytes += n;
	return 0;
}

/* Counts `n` values or slots against the item limit. */
static int pkl_count(pkl_vm *vm, size_t n)
{
	if (n > vm->lim.max_items - vm->n_items)
		return pkl_err(vm, -E2BIG, "more than %zu values", vm->lim.max_items);
	vm->n_items += n;
	return 0;
}

/* A new zeroed value of `kind`. */
static int pkl_new(pkl_vm *vm, nck_pv **out, nck_pv_kind kind)
{
	void *p = NULL;
	int rc;

	if ((rc = pkl_count(vm, 1)) < 0 || (rc = pkl_alloc(vm, &p, sizeof(nck_pv))) < 0)
		return rc;
	*out = p;
	(*out)->kind = kind;
	return 0;
}

/* Raises the depth of container `c` to hold `item`; -E2BIG past the limit. */
static int pkl_deepen(pkl_vm *vm, nck_pv *c, const nck_pv *item)
{
	if (item && item->depth + 1u > c->depth) {
		if (item->depth + 1u > vm->lim.max_depth)
			return pkl_err(vm, -E2BIG, "values nested deeper than %zu",
				       vm->lim.max_depth);
		c->depth = item->depth + 1u;
	}
	return 0;
}

/* Decodes one UTF-8 sequence at s[*i] (surrogates allowed, overlongs not). */
static bool pkl_utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp)
{
	unsigned c = s[*i];
	size_t k;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		*i += 1;
		return true;
	}
	if ((c & 0xe0) == 0xc0)
		k = 1, v = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		k = 2, v = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		k = 3, v = c & 0x07, min = 0x10000;
	else
		return false;
	if (n - *i - 1 < k)
		return false;
	for (size_t j = 1; j <= k; j++) {
		if ((s[*i + j] & 0xc0) != 0x80)
			return false;
		v = v << 6 | (s[*i + j] & 0x3f);
	}
	if (v < min || v > 0x10ffff)
		return false;
	*cp = v;
	*i += k + 1;
	return true;
}

/* Whether s[0..n) is UTF-8 as Python's 'surrogatepass' writes it. */
static bool pkl_utf8_ok(const unsigned char *s, size_t n)
{
	uint32_t cp;

	for (size_t i = 0; i < n;)
		if (!pkl_utf8_next(s, n, &i, &cp))
			return false;
	return true;
}

/* Appends code point `cp` as UTF-8; returns the bytes written (1-4). */
static size_t pkl_utf8_put(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80)
		return o[0] = (unsigned char)cp, 1;
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A STR/BYTES/OPAQUE value holding a NUL-terminated copy of s[0..n). */
static int pkl_new_str(pkl_vm *vm, nck_pv **out, nck_pv_kind kind, const void *s, size_t n)
{
	void *p = NULL;
	int rc;

	if (kind == NCK_PV_STR && !pkl_utf8_ok(s, n))
		return pkl_err(vm, -EBADMSG, "string is not valid UTF-8");
	if (n == SIZE_MAX)
		return pkl_err(vm, -E2BIG, "string too long");
	if ((rc = pkl_new(vm, out, kind)) < 0 || (rc = pkl_alloc(vm, &p, n + 1)) < 0)
		return rc;
	if (n)
		memcpy(p, s, n);
	((char *)p)[n] = '\0';
	(*out)->str.s = p;
	(*out)->str.len = n;
	return 0;
}

/* Slots in use: items of a TUPLE/LIST, keys plus values of a DICT. */
static size_t pkl_slots(const nck_pv *seq)
{
	return seq->kind == NCK_PV_DICT ? 2 * seq->seq.n : seq->seq.n;
}

/* Makes room for `extra` more slots in TUPLE/LIST/DICT `seq` (geometric growth). */
static int pkl_seq_reserve(pkl_vm *vm, nck_pv *seq, size_t extra)
{
	size_t need, cap, bytes;
	void *p = NULL;
	int rc;

	if (__builtin_add_overflow(pkl_slots(seq), extra, &need))
		return pkl_err(vm, -E2BIG, "container too large");
	if (need <= seq->seq.cap)
		return 0;
	cap = seq->seq.cap ? seq->seq.cap : 4;
	while (cap < need)
		if (__builtin_mul_overflow(cap, 2, &cap))
			return pkl_err(vm, -E2BIG, "container too large");
	if (__builtin_mul_overflow(cap, sizeof(nck_pv *), &bytes))
		return pkl_err(vm, -E2BIG, "container too large");
	if ((rc = pkl_alloc(vm, &p, bytes)) < 0)
		return rc;
	if (pkl_slots(seq))
		memcpy(p, seq->seq.items, pkl_slots(seq) * sizeof(nck_pv *));
	seq->seq.items = p;
	seq->seq.cap = cap;
	return 0;
}

/* Appends `n` slots to `seq` (an even number for a DICT: keys and values),
 * counting each slot and tracking depth. */
static int pkl_seq_add(pkl_vm *vm, nck_pv *seq, nck_pv *const *items, size_t n)
{
	size_t slots = pkl_slots(seq);
	int rc;

	if ((rc = pkl_count(vm, n)) < 0 || (rc = pkl_seq_reserve(vm, seq, n)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = pkl_deepen(vm, seq, items[i])) < 0)
			return rc;
		seq->seq.items[slots++] = items[i];
	}
	seq->seq.n = seq->kind == NCK_PV_DICT ? slots / 2 : slots;
	return 0;
}

/* A new TUPLE/LIST/DICT holding a copy of items[0..n). */
static int pkl_new_seq(pkl_vm *vm, nck_pv **out, nck_pv_kind kind, nck_pv *const *items, size_t n)
{
	int rc;

	if ((rc = pkl_new(vm, out, kind)) < 0)
		return rc;
	(*out)->depth = 1;
	return pkl_seq_add(vm, *out, items, n);
}

/* ---- the stack, marks and memo -------------------------------------------------- */

/* Height of the stack at the innermost MARK: nothing below it may be popped. */
static size_t pkl_base(const pkl_vm *vm)
{
	return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
}

/* Pushes `v`, growing the stack (bounded by the input: one push per opcode). */
static int pkl_push(pkl_vm *vm, nck_pv *v)
{
	if (vm->sp == vm->stack_cap) {
		size_t cap = vm->stack_cap ? vm->stack_cap * 2 : 64;
		nck_pv **s = realloc(vm->stack, cap * sizeof(*s));

		if (!s)
			return pkl_err(vm, -ENOMEM, "out of memory");
		vm->stack = s;
		vm->stack_cap = cap;
	}
	vm->stack[vm->sp++] = v;
	return 0;
}

/* Pops the top value of the innermost MARK segment. */
static int pkl_pop(pkl_vm *vm, nck_pv **out)
{
	if (vm->sp <= pkl_base(vm))
		return pkl_err(vm, -EBADMSG, "stack underflow");
	*out = vm->stack[--vm->sp];
	return 0;
}

/* The top value of the innermost MARK segment, left in place. */
static int pkl_top(pkl_vm *vm, nck_pv **out)
{
	if (vm->sp <= pkl_base(vm))
		return pkl_err(vm, -EBADMSG, "stack underflow");
	*out = vm->stack[vm->sp - 1];
	return 0;
}

/* Closes the innermost MARK; the items pushed since are stack[*start..sp). */
static int pkl_pop_mark(pkl_vm *vm, size_t *start)
{
	if (!vm->n_marks)
		return pkl_err(vm, -EBADMSG, "no MARK to pop");
	*start = vm->marks[--vm->n_marks];
	return 0;
}

/* Stores the top of the stack as memo[idx]. */
static int pkl_memo_put(pkl_vm *vm, uint64_t idx)
{
	nck_pv *top = NULL;
	int rc;

	if ((rc = pkl_top(vm, &top)) < 0)
		return rc;
	if (idx > vm->n_puts)
		return pkl_err(vm, -EBADMSG, "memo index %llu out of sequence",
			       (unsigned long long)idx);
	vm->n_puts++;
	if (idx >= vm->memo_cap) {
		size_t cap = vm->memo_cap ? vm->memo_cap * 2 : 64;
		nck_pv **m;

		while (cap <= idx)
			cap *= 2;
		m = realloc(vm->memo, cap * sizeof(*m));
		if (!m)
			return pkl_err(vm, -ENOMEM, "out of memory");
		memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof(*m));
		vm->memo = m;
		vm->memo_cap = cap;
	}
	if (!vm->memo[idx])
		vm->memo_count++;
	vm->memo[idx] = top;
	return 0;
}

/* Pushes memo[idx] (the same value, not a copy). */
static int pkl_memo_get(pkl_vm *vm, uint64_t idx)
{
	if (idx >= vm->memo_cap || !vm->memo[idx])
		return pkl_err(vm, -EBADMSG, "memo index %llu not set", (unsigned long long)idx);
	return pkl_push(vm, vm->memo[idx]);
}

/* ---- argument readers ----------------------------------------------------------- */

/* The next `n` argument bytes, or NULL (-EBADMSG recorded) when the pickle ends first. */
static const unsigned char *pkl_take(pkl_vm *vm, uint64_t n)
{
	const unsigned char *p;

	if (n > vm->len - vm->pos) {
		pkl_err(vm, -EBADMSG, "truncated (needs %llu more bytes)", (unsigned long long)n);
		return NULL;
	}
	p = vm->data + vm->pos;
	vm->pos += (size_t)n;
	return p;
}

/* Little-endian unsigned integer of `n` (1, 2, 4 or 8) argument bytes. */
static int pkl_take_uint(pkl_vm *vm, size_t n, uint64_t *v)
{
	const unsigned char *p = pkl_take(vm, n);

	if (!p)
		return -EBADMSG;
	*v = 0;
	for (size_t i = n; i-- > 0;)
		*v = *v << 8 | p[i];
	return 0;
}

/* A protocol 0 argument: the bytes up to the next newline, which is consumed. */
static int pkl_take_line(pkl_vm *vm, const char **s, size_t *n)
{
	const unsigned char *nl = memchr(vm->data + vm->pos, '\n', vm->len - vm->pos);

	if (!nl)
		return pkl_err(vm, -EBADMSG, "truncated (no end of line)");
	*s = (const char *)vm->data + vm->pos;
	*n = (size_t)(nl - (vm->data + vm->pos));
	vm->pos += *n + 1;
	return 0;
}

/* Parses a decimal int64: 0 ok, 1 overflow, -1 not a number. */
static int pkl_parse_i64(const char *s, size_t n, int64_t *out)
{
	bool neg = n && s[0] == '-';
	size_t i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

	if (i == n)
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (lim - (uint64_t)(s[i] - '0')) / 10)
			return 1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* ---- scalars ---------------------------------------------------------------------- */

/* NONE, NEWTRUE, NEWFALSE: the shared singletons. */
static int op_none(pkl_vm *vm, unsigned char op)
{
	return pkl_push(vm, op == 'N' ? vm->none : op == 0x88 ? vm->yes : vm->no);
}

/* Pushes a new INT. */
static int pkl_push_int(pkl_vm *vm, int64_t i)
{
	nck_pv *v = NULL;
	int rc;

	if ((rc = pkl_new(vm, &v, NCK_PV_INT)) < 0)
		return rc;
	v->i = i;
	return pkl_push(vm, v);
}

/* Pushes an OPAQUE holding the pickled form of an int that does not fit int64. */
static int pkl_push_bigint(pkl_vm *vm, const void *s, size_t n)
{
	nck_pv *v = NULL;
	int rc;

	if ((rc = pkl_new_str(vm, &v, NCK_PV_OPAQUE, s, n)) < 0)
		return rc;
	return pkl_push(vm, v);
}

/* BININT1 (u8), BININT2 (u16), BININT (i32). */
static int op_binint(pkl_vm *vm, unsigned char op)
{
	size_t n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
	uint64_t v = 0;
	int rc;

	if ((rc = pkl_take_uint(vm, n, &v)) < 0)
		return rc;
	return pkl_push_int(vm, op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v);
}

/* LONG1/LONG4: little-endian two's complement of a given length. */
static int op_long_bin(pkl_vm *vm, unsigned char op)
{
	const unsigned char *p = NULL;
	uint64_t n = 0, v = 0;
	int rc;

	if ((rc = pkl_take_uint(vm, op == 0x8a ? 1 : 4, &n)) < 0)
		return rc;
	if (op == 0x8b && n > INT32_MAX)
		return pkl_err(vm, -EBADMSG, "LONG4 with a negative length");
	if (!(p = pkl_take(vm, n)))
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
static int op_binfloat(pkl_vm *vm, unsigned char op)
{
	const unsigned char *p = NULL;
	nck_pv *v = NULL;
	uint64_t bits = 0;
	int rc;

	(void)op;
	if (!(p = pkl_take(vm, 8)))
		return -EBADMSG;
	if ((rc = pkl_new(vm, &v, NCK_PV_FLOAT)) < 0)
		return rc;
	for (int i = 0; i < 8; i++)
		bits = bits << 8 | p[i];
	memcpy(&v->f, &bits, sizeof(v->f));
	return pkl_push(vm, v);
}

/* INT and LONG (protocol 0): decimal text; INT "00"/"01" are False/True. */
static int op_int_text(pkl_vm *vm, unsigned char op)
{
	const char *s = NULL;
	size_t n = 0;
	int64_t i = 0;
	int rc;

	if ((rc = pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (op == 'I' && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1'))
		return pkl_push(vm, s[1] == '1' ? vm->yes : vm->no);
	if (op == 'L' && n && s[n - 1] == 'L')
		n--;
	rc = pkl_parse_i64(s, n, &i);
	if (rc < 0)
		return pkl_err(vm, -EBADMSG, "bad integer text");
	return rc ? pkl_push_bigint(vm, s, n) : pkl_push_int(vm, i);
}

/* FLOAT (protocol 0): repr() text, parsed in the C locale. */
static int op_float_text(pkl_vm *vm, unsigned char op)
{
	char buf[PKL_MAX_NUM_TEXT + 1], *end = NULL;
	locale_t c_locale;
	const char *s = NULL;
	nck_pv *v = NULL;
	size_t n = 0;
	int rc;

	(void)op;
	if ((rc = pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (n == 0 || n > PKL_MAX_NUM_TEXT || memchr(s, '\0', n))
		return pkl_err(vm, -EBADMSG, "bad float text");
	memcpy(buf, s, n);
	buf[n] = '\0';
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!c_locale)
		return pkl_err(vm, -ENOMEM, "out of memory");
	if ((rc = pkl_new(vm, &v, NCK_PV_FLOAT)) == 0)
		v->f = strtod_l(buf, &end, c_locale);
	freelocale(c_locale);
	if (rc < 0)
		return rc;
	if (end != buf + n)
		return pkl_err(vm, -EBADMSG, "bad float text");
	return pkl_push(vm, v);
}

/* ---- strings and bytes ------------------------------------------------------------ */

/* BINUNICODE (u32), SHORT_BINUNICODE (u8), BINUNICODE8 (u64), and the Python 2
 * BINSTRING (i32) / SHORT_BINSTRING (u8), which torch.load decodes as UTF-8. */
static int op_str_bin(pkl_vm *vm, unsigned char op)
{
	size_t w = (op == 0x8c || op == 'U') ? 1 : op == 0x8d ? 8 : 4;
	const unsigned char *p = NULL;
	nck_pv *v = NULL;
	uint64_t n = 0;
	int rc;

	if ((rc = pkl_take_uint(vm, w, &n)) < 0)
		return rc;
	if (op == 'T' && n > INT32_MAX)
		return pkl_err(vm, -EBADMSG, "BINSTRING with a negative length");
	if (!(p = pkl_take(vm, n)))
		return -EBADMSG;
	if ((rc = pkl_new_str(vm, &v, NCK_PV_STR, p, (size_t)n)) < 0)
		return rc;
	return pkl_push(vm, v);
}

/* BINBYTES (u32), SHORT_BINBYTES (u8), BINBYTES8 and BYTEARRAY8 (u64). */
static int op_bytes_bin(pkl_vm *vm, unsigned char op)
{
	size_t w = op == 'C' ? 1 : op == 'B' ? 4 : 8;
	const unsigned char *p = NULL;
	nck_pv *v = NULL;
	uint64_t n = 0;
	int rc;

	if ((rc = pkl_take_uint(vm, w, &n)) < 0)
		return rc;
	if (!(p = pkl_take(vm, n)))
		return -EBADMSG;
	if ((rc = pkl_new_str(vm, &v, NCK_PV_BYTES, p, (size_t)n)) < 0)
		return rc;
	return pkl_push(vm, v);
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
static int op_string_text(pkl_vm *vm, unsigned char op)
{
	unsigned char *buf = NULL;
	const char *s = NULL;
	nck_pv *v = NULL;
	size_t n = 0, o = 0;
	int rc;

	(void)op;
	if ((rc = pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
		return pkl_err(vm, -EBADMSG, "STRING argument is not quoted");
	s++, n -= 2;
	buf = malloc(n + 1);
	if (!buf)
		return pkl_err(vm, -ENOMEM, "out of memory");
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
	rc = pkl_new_str(vm, &v, NCK_PV_STR, buf, o);
	free(buf);
	return rc < 0 ? rc : pkl_push(vm, v);
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
static int op_unicode_text(pkl_vm *vm, unsigned char op)
{
	unsigned char *buf = NULL;
	const char *s = NULL;
	nck_pv *v = NULL;
	size_t n = 0, o = 0;
	int rc;

	(void)op;
	if ((rc = pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	/* Each input byte makes at most 2 output bytes (latin-1 above 0x7f). */
	if (n > (SIZE_MAX - 1) / 2 || !(buf = malloc(2 * n + 1)))
		return pkl_err(vm, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		uint32_t cp = 0;

		if (s[i] == '\\' && i + 1 < n)
			k = s[i + 1] == 'u' ? 4 : s[i + 1] == 'U' ? 8 : 0;
		if (k && n - i - 2 >= k && pkl_hex_run(s + i + 2, k, &cp)) {
			if (cp > 0x10ffff) {
				free(buf);
				return pkl_err(vm, -EBADMSG, "bad \\U escape");
			}
			o += pkl_utf8_put(buf + o, cp);
			i += 2 + k;
		} else {
			o += pkl_utf8_put(buf + o, (unsigned char)s[i++]);
		}
	}
	rc = pkl_new_str(vm, &v, NCK_PV_STR, buf, o);
	free(buf);
	return rc < 0 ? rc : pkl_push(vm, v);
}

/* ---- containers ------------------------------------------------------------------- */

/* The GLOBAL builtins.<name>, allocated per use. */
static int pkl_builtin(pkl_vm *vm, nck_pv **out, const char *name)
{
	int rc;

	if ((rc = pkl_new(vm, out, NCK_PV_GLOBAL)) < 0)
		return rc;
	(*out)->global.module = "builtins";
	(*out)->global.name = name;
	return 0;
}

/* A set as CALL builtins.<name>() whose items are those of LIST `items`. */
static int pkl_new_set(pkl_vm *vm, nck_pv **out, const char *name, nck_pv *items)
{
	nck_pv *cls = NULL, *args = NULL;
	int rc;

	if ((rc = pkl_builtin(vm, &cls, name)) < 0 ||
	    (rc = pkl_new_seq(vm, &args, NCK_PV_TUPLE, NULL, 0)) < 0 ||
	    (rc = pkl_new(vm, out, NCK_PV_CALL)) < 0)
		return rc;
	(*out)->call.callable = cls;
	(*out)->call.args = args;
	(*out)->call.items = items;
	(*out)->depth = 1;
	return pkl_deepen(vm, *out, items);
}

/* EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT, EMPTY_SET. */
static int op_empty(pkl_vm *vm, unsigned char op)
{
	nck_pv *v = NULL, *items = NULL;
	nck_pv_kind kind;
	int rc;

	if (op == 0x8f) {
		if ((rc = pkl_new_seq(vm, &items, NCK_PV_LIST, NULL, 0)) < 0 ||
		    (rc = pkl_new_set(vm, &v, "set", items)) < 0)
			return rc;
		return pkl_push(vm, v);
	}
	kind = op == ')' ? NCK_PV_TUPLE : op == ']' ? NCK_PV_LIST : NCK_PV_DICT;
	rc = pkl_new_seq(vm, &v, kind, NULL, 0);
	return rc < 0 ? rc : pkl_push(vm, v);
}

/* TUPLE1, TUPLE2, TUPLE3: the top 1-3 items. */
static int op_tuple_n(pkl_vm *vm, unsigned char op)
{
	size_t n = (size_t)(op - 0x84);
	nck_pv *v = NULL;
	int rc;

	if (vm->sp - pkl_base(vm) < n)
		return pkl_err(vm, -EBADMSG, "stack underflow");
	vm->sp -= n;
	if ((rc = pkl_new_seq(vm, &v, NCK_PV_TUPLE, vm->stack + vm->sp, n)) < 0)
		return rc;
	return pkl_push(vm, v);
}

/* TUPLE, LIST, DICT, FROZENSET: from the items above the innermost MARK. */
static int op_from_mark(pkl_vm *vm, unsigned char op)
{
	nck_pv_kind kind = op == 't' ? NCK_PV_TUPLE : op == 'd' ? NCK_PV_DICT : NCK_PV_LIST;
	nck_pv *v = NULL, *set = NULL;
	size_t start = 0, n;
	int rc;

	if ((rc = pkl_pop_mark(vm, &start)) < 0)
		return rc;
	n = vm->sp - start;
	vm->sp = start;
	if (kind == NCK_PV_DICT && n % 2)
		return pkl_err(vm, -EBADMSG, "DICT with an odd number of items");
	if ((rc = pkl_new_seq(vm, &v, kind, vm->stack + start, n)) < 0)
		return rc;
	if (op == 0x91) {
		if ((rc = pkl_new_set(vm, &set, "frozenset", v)) < 0)
			return rc;
		v = set;
	}
	return pkl_push(vm, v);
}

/*
 * Adds items to `target`: a LIST (APPEND(S)), DICT (SETITEM(S), `n` counts
 * keys and values) or an object CALL, whose `items` collects them. `want`
 * is the kind the items container must have.
 */
static int pkl_extend(pkl_vm *vm, nck_pv *target, nck_pv_kind want, nck_pv *const *items, size_t n)
{
	nck_pv *dst = target;
	int rc;

	if (target->kind == NCK_PV_CALL) {
		if (!target->call.items &&
		    (rc = pkl_new_seq(vm, &target->call.items, want, NULL, 0)) < 0)
			return rc;
		dst = target->call.items;
	}
	if (dst->kind != want)
		return pkl_err(vm, -EBADMSG, "%s on a value that is not a %s",
			       want == NCK_PV_DICT ? "SETITEM" : "APPEND",
			       want == NCK_PV_DICT ? "dict" : "list");
	if ((rc = pkl_seq_add(vm, dst, items, n)) < 0)
		return rc;
	return dst == target ? 0 : pkl_deepen(vm, target, dst);
}

/* APPEND, SETITEM: one item (or pair) on top of the target. */
static int op_add_one(pkl_vm *vm, unsigned char op)
{
	size_t n = op == 's' ? 2 : 1;
	nck_pv *target = NULL;

	if (vm->sp - pkl_base(vm) < n + 1)
		return pkl_err(vm, -EBADMSG, "stack underflow");
	vm->sp -= n;
	target = vm->stack[vm->sp - 1];
	return pkl_extend(vm, target, op == 's' ? NCK_PV_DICT : NCK_PV_LIST, vm->stack + vm->sp, n);
}

/* APPENDS, SETITEMS, ADDITEMS: the items above the MARK go into the value below it. */
static int op_add_many(pkl_vm *vm, unsigned char op)
{
	nck_pv_kind want = op == 'u' ? NCK_PV_DICT : NCK_PV_LIST;
	nck_pv *target = NULL;
	size_t start = 0, n;
	int rc;

	if ((rc = pkl_pop_mark(vm, &start)) < 0)
		return rc;
	n = vm->sp - start;
	vm->sp = start;
	if (start <= pkl_base(vm))
		return pkl_err(vm, -EBADMSG, "stack underflow");
	target = vm->stack[start - 1];
	if (want == NCK_PV_DICT && n % 2)
		return pkl_err(vm, -EBADMSG, "SETITEMS with an odd number of items");
	if (op == 0x90 && !(target->kind == NCK_PV_CALL && target->call.items))
		return pkl_err(vm, -EBADMSG, "ADDITEMS on a value that is not a set");
	return pkl_extend(vm, target, want, vm->stack + start, n);
}

/* ---- globals, calls, persistent ids -------------------------------------------- */

/* Python 2 module names that Python 3 imports under new names
 * (`Lib/_compat_pickle.py` IMPORT_MAPPING, the entries pickles of checkpoints use). */
static const char *pkl_py3_module(const char *m)
{
	if (strcmp(m, "__builtin__") == 0)
		return "builtins";
	if (strcmp(m, "copy_reg") == 0)
		return "copyreg";
	return m;
}

/* Pushes GLOBAL module.name from raw bytes (UTF-8, no NUL). */
static int pkl_push_global(pkl_vm *vm, const char *mod, size_t mlen, const char *name, size_t nlen)
{
	nck_pv *v = NULL, *m = NULL, *n = NULL;
	int rc;

	if (memchr(mod, '\0', mlen) || memchr(name, '\0', nlen))
		return pkl_err(vm, -EBADMSG, "global name contains a NUL byte");
	if ((rc = pkl_new_str(vm, &m, NCK_PV_STR, mod, mlen)) < 0 ||
	    (rc = pkl_new_str(vm, &n, NCK_PV_STR, name, nlen)) < 0 ||
	    (rc = pkl_new(vm, &v, NCK_PV_GLOBAL)) < 0)
		return rc;
	v->global.module = pkl_py3_module(m->str.s);
	v->global.name = n->str.s;
	/* Never executed here, but a file torch's weights-only loader refuses
	 * (os.system, builtins.eval) is refused the same way. */
	if (!vm->lim.any_global && !nck_pkl_global_allowed(v->global.module, v->global.name))
		return pkl_err(vm, -ENOTSUP, "global %s.%s is not allowed (torch's weights_only loader refuses it)",
			       v->global.module, v->global.name);
	return pkl_push(vm, v);
}

/* GLOBAL: "module\nname\n". */
static int op_global(pkl_vm *vm, unsigned char op)
{
	const char *m = NULL, *n = NULL;
	size_t ml = 0, nl = 0;
	int rc;

	(void)op;
	if ((rc = pkl_take_line(vm, &m, &ml)) < 0 || (rc = pkl_take_line(vm, &n, &nl)) < 0)
		return rc;
	return pkl_push_global(vm, m, ml, n, nl);
}

/* STACK_GLOBAL: module and name strings from the stack. */
static int op_stack_global(pkl_vm *vm, unsigned char op)
{
	nck_pv *m = NULL, *n = NULL;
	int rc;

	(void)op;
	if ((rc = pkl_pop(vm, &n)) < 0 || (rc = pkl_pop(vm, &m)) < 0)
		return rc;
	if (m->kind != NCK_PV_STR || n->kind != NCK_PV_STR)
		return pkl_err(vm, -EBADMSG, "STACK_GLOBAL needs two strings");
	return pkl_push_global(vm, m->str.s, m->str.len, n->str.s, n->str.len);
}

/* BYTES from a STR whose code points are all below 256 (latin-1 encoding). */
static int pkl_latin1(pkl_vm *vm, nck_pv **out, const nck_pv *text)
{
	const unsigned char *s = (const unsigned char *)text->str.s;
	unsigned char *buf = malloc(text->str.len + 1);
	size_t o = 0;
	uint32_t cp;
	int rc;

	if (!buf)
		return pkl_err(vm, -ENOMEM, "out of memory");
	for (size_t i = 0; i < text->str.len;) {
		if (!pkl_utf8_next(s, text->str.len, &i, &cp) || cp > 0xff) {
			free(buf);
			return pkl_err(vm, -EBADMSG, "latin-1 bytes with a code point above 0xff");
		}
		buf[o++] = (unsigned char)cp;
	}
	rc = pkl_new_str(vm, out, NCK_PV_BYTES, buf, o);
	free(buf);
	return rc;
}

/* Whether `v` names the latin-1 codec as pickle's save_bytes writes it. */
static bool pkl_is_latin1(const nck_pv *v)
{
	return nck_pv_is_str(v, "latin1") || nck_pv_is_str(v, "latin-1");
}

/* A CALL node; `kwargs` may be NULL. */
static int pkl_new_call(pkl_vm *vm, nck_pv **out, nck_pv *callable, nck_pv *args, nck_pv *kwargs)
{
	int rc;

	if ((rc = pkl_new(vm, out, NCK_PV_CALL)) < 0)
		return rc;
	(*out)->call.callable = callable;
	(*out)->call.args = args;
	(*out)->call.kwargs = kwargs;
	(*out)->depth = 1;
	if ((rc = pkl_deepen(vm, *out, callable)) < 0 || (rc = pkl_deepen(vm, *out, args)) < 0)
		return rc;
	return pkl_deepen(vm, *out, kwargs);
}

/*
 * REDUCE: callable(*args), interpreted for the stdlib idioms every reader
 * needs (OrderedDict(), bytes as pickle.py's save_bytes writes them at
 * protocol < 3, bytearray); anything else stays a symbolic CALL.
 */
static int pkl_reduce(pkl_vm *vm, nck_pv **out, nck_pv *callable, nck_pv *args)
{
	size_t n = args->kind == NCK_PV_TUPLE ? args->seq.n : SIZE_MAX;
	nck_pv *const *a = args->seq.items;
	bool bytearray = nck_pv_is_global(callable, "builtins", "bytearray");

	if (n == 0 && nck_pv_is_global(callable, "collections", "OrderedDict"))
		return pkl_new_seq(vm, out, NCK_PV_DICT, NULL, 0);
	if (n == 0 && (bytearray || nck_pv_is_global(callable, "builtins", "bytes")))
		return pkl_new_str(vm, out, NCK_PV_BYTES, "", 0);
	if (n == 2 && (bytearray || nck_pv_is_global(callable, "_codecs", "encode")) &&
	    a[0]->kind == NCK_PV_STR && pkl_is_latin1(a[1]))
		return pkl_latin1(vm, out, a[0]);
	if (n == 1 && bytearray && a[0]->kind == NCK_PV_BYTES)
		return pkl_new_str(vm, out, NCK_PV_BYTES, a[0]->str.s, a[0]->str.len);
	return pkl_new_call(vm, out, callable, args, NULL);
}

/* REDUCE, NEWOBJ (callable and args on the stack), NEWOBJ_EX (plus kwargs). */
static int op_call(pkl_vm *vm, unsigned char op)
{
	nck_pv *callable = NULL, *args = NULL, *kwargs = NULL, *v = NULL;
	int rc;

	if (op == 0x92 && (rc = pkl_pop(vm, &kwargs)) < 0)
		return rc;
	if ((rc = pkl_pop(vm, &args)) < 0 || (rc = pkl_pop(vm, &callable)) < 0)
		return rc;
	if (op == 'R')
		rc = pkl_reduce(vm, &v, callable, args);
	else
		rc = pkl_new_call(vm, &v, callable, args, kwargs);
	return rc < 0 ? rc : pkl_push(vm, v);
}

/* OBJ (class and args above a MARK) and INST (class named by two text lines). */
static int op_obj(pkl_vm *vm, unsigned char op)
{
	nck_pv *cls = NULL, *args = NULL, *v = NULL;
	const char *m = NULL, *n = NULL;
	size_t start = 0, ml = 0, nl = 0, first;
	int rc;

	if (op == 'i') {
		if ((rc = pkl_take_line(vm, &m, &ml)) < 0 ||
		    (rc = pkl_take_line(vm, &n, &nl)) < 0 ||
		    (rc = pkl_push_global(vm, m, ml, n, nl)) < 0 || (rc = pkl_pop(vm, &cls)) < 0)
			return rc;
	}
	if ((rc = pkl_pop_mark(vm, &start)) < 0)
		return rc;
	first = start;
	if (op == 'o') {
		if (vm->sp == start)
			return pkl_err(vm, -EBADMSG, "OBJ without a class");
		cls = vm->stack[first++];
	}
	rc = pkl_new_seq(vm, &args, NCK_PV_TUPLE, vm->stack + first, vm->sp - first);
	vm->sp = start;
	if (rc < 0 || (rc = pkl_new_call(vm, &v, cls, args, NULL)) < 0)
		return rc;
	return pkl_push(vm, v);
}

/* BUILD: keeps the state on an object; on other values (a dict's attributes) drops it. */
static int op_build(pkl_vm *vm, unsigned char op)
{
	nck_pv *state = NULL, *target = NULL;
	int rc;

	(void)op;
	if ((rc = pkl_pop(vm, &state)) < 0 || (rc = pkl_top(vm, &target)) < 0)
		return rc;
	if (target->kind != NCK_PV_CALL)
		return 0;
	target->call.state = state;
	return pkl_deepen(vm, target, state);
}

/* Replaces a persistent id through the callback, or wraps it in a PERSID. */
static int pkl_persid(pkl_vm *vm, nck_pv *pid)
{
	nck_pv *v = NULL;
	int rc;

	if (vm->persid_cb) {
		if ((rc = vm->persid_cb(&v, pid, vm->payload)) < 0)
			return pkl_err(vm, rc, "persistent id rejected");
		if (!v)
			return pkl_err(vm, -EINVAL, "persistent id callback gave no value");
		return pkl_push(vm, v);
	}
	if ((rc = pkl_new(vm, &v, NCK_PV_PERSID)) < 0)
		return rc;
	v->persid = pid;
	v->depth = 1;
	if ((rc = pkl_deepen(vm, v, pid)) < 0)
		return rc;
	return pkl_push(vm, v);
}

/* PERSID (text line) and BINPERSID (any value from the stack). */
static int op_persid(pkl_vm *vm, unsigned char op)
{
	nck_pv *pid = NULL;
	const char *s = NULL;
	size_t n = 0;
	int rc;

	if (op == 'Q')
		rc = pkl_pop(vm, &pid);
	else if ((rc = pkl_take_line(vm, &s, &n)) == 0)
		rc = pkl_new_str(vm, &pid, NCK_PV_STR, s, n);
	return rc < 0 ? rc : pkl_persid(vm, pid);
}

/* ---- stack, memo and framing opcodes --------------------------------------------- */

/* PROTO: any protocol up to 5; the opcodes themselves say what is used. */
static int op_proto(pkl_vm *vm, unsigned char op)
{
	uint64_t v = 0;
	int rc;

	(void)op;
	if ((rc = pkl_take_uint(vm, 1, &v)) < 0)
		return rc;
	if (v > PKL_MAX_PROTO)
		return pkl_err(vm, -ENOTSUP, "protocol %u is not supported", (unsigned)v);
	return 0;
}

/* FRAME: an advisory length prefix (protocol 4); only checked to lie inside the data. */
static int op_frame(pkl_vm *vm, unsigned char op)
{
	uint64_t v = 0;
	int rc;

	(void)op;
	if ((rc = pkl_take_uint(vm, 8, &v)) < 0)
		return rc;
	if (v > vm->len - vm->pos)
		return pkl_err(vm, -EBADMSG, "frame of %llu bytes runs past the end",
			       (unsigned long long)v);
	return 0;
}

/* STOP: the one value left on the stack is the result. */
static int op_stop(pkl_vm *vm, unsigned char op)
{
	(void)op;
	if (vm->n_marks || vm->sp != 1)
		return pkl_err(vm, -EBADMSG, "STOP with %zu values and %zu MARKs on the stack",
			       vm->sp, vm->n_marks);
	vm->result = vm->stack[0];
	return 0;
}

/* MARK: opens a stack segment; open MARKs count against max_depth. */
static int op_mark(pkl_vm *vm, unsigned char op)
{
	(void)op;
	if (vm->n_marks >= vm->lim.max_depth)
		return pkl_err(vm, -E2BIG, "more than %zu open MARKs", vm->lim.max_depth);
	if (vm->n_marks == vm->marks_cap) {
		size_t cap = vm->marks_cap ? vm->marks_cap * 2 : 16;
		size_t *m = realloc(vm->marks, cap * sizeof(*m));

		if (!m)
			return pkl_err(vm, -ENOMEM, "out of memory");
		vm->marks = m;
		vm->marks_cap = cap;
	}
	vm->marks[vm->n_marks++] = vm->sp;
	return 0;
}

/* POP (which closes an empty MARK, as CPython does), POP_MARK, DUP. */
static int op_stack(pkl_vm *vm, unsigned char op)
{
	nck_pv *v = NULL;
	size_t start = 0;

	if (op == '2')
		return pkl_top(vm, &v) < 0 ? -EBADMSG : pkl_push(vm, v);
	if (op == '1' || (vm->sp == pkl_base(vm) && vm->n_marks)) {
		if (pkl_pop_mark(vm, &start) < 0)
			return -EBADMSG;
		vm->sp = start;
		return 0;
	}
	return pkl_pop(vm, &v);
}

/* Reads a memo index: decimal text line (PUT/GET), u8 or u32 argument. */
static int pkl_take_index(pkl_vm *vm, unsigned char op, uint64_t *idx)
{
	const char *s = NULL;
	size_t n = 0;
	int64_t v = 0;
	int rc;

	if (op == 'q' || op == 'h')
		return pkl_take_uint(vm, 1, idx);
	if (op == 'r' || op == 'j')
		return pkl_take_uint(vm, 4, idx);
	if ((rc = pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (pkl_parse_i64(s, n, &v) != 0 || v < 0)
		return pkl_err(vm, -EBADMSG, "bad memo index text");
	*idx = (uint64_t)v;
	return 0;
}

/* PUT, BINPUT, LONG_BINPUT, MEMOIZE (index len(memo)). */
static int op_put(pkl_vm *vm, unsigned char op)
{
	uint64_t idx = vm->memo_count;
	int rc;

	if (op != 0x94 && (rc = pkl_take_index(vm, op, &idx)) < 0)
		return rc;
	return pkl_memo_put(vm, idx);
}

/* GET, BINGET, LONG_BINGET. */
static int op_get(pkl_vm *vm, unsigned char op)
{
	uint64_t idx = 0;
	int rc;

	if ((rc = pkl_take_index(vm, op, &idx)) < 0)
		return rc;
	return pkl_memo_get(vm, idx);
}

/* EXT1/2/4 need the copyreg extension registry; NEXT_BUFFER needs out-of-band buffers. */
static int op_unsupported(pkl_vm *vm, unsigned char op)
{
	return pkl_err(vm, -ENOTSUP, "opcode 0x%02x is not supported", op);
}

/* READONLY_BUFFER: a no-op on the value below. */
static int op_readonly(pkl_vm *vm, unsigned char op)
{
	nck_pv *v = NULL;

	(void)op;
	return pkl_top(vm, &v);
}

/* ---- dispatch ------------------------------------------------------------------- */

/* Handlers by opcode byte (Lib/pickle.py constants); NULL is an unknown opcode. */
/* clang-format off */
static const pkl_op_fn pkl_ops[256] = {
	[0x80] = op_proto, [0x95] = op_frame, ['.'] = op_stop, ['('] = op_mark,
	['0'] = op_stack, ['1'] = op_stack, ['2'] = op_stack,
	['N'] = op_none, [0x88] = op_none, [0x89] = op_none,
	['K'] = op_binint, ['M'] = op_binint, ['J'] = op_binint,
	[0x8a] = op_long_bin, [0x8b] = op_long_bin, ['G'] = op_binfloat,
	['I'] = op_int_text, ['L'] = op_int_text, ['F'] = op_float_text,
	['X'] = op_str_bin, [0x8c] = op_str_bin, [0x8d] = op_str_bin,
	['T'] = op_str_bin, ['U'] = op_str_bin,
	['B'] = op_bytes_bin, ['C'] = op_bytes_bin, [0x8e] = op_bytes_bin, [0x96] = op_bytes_bin,
	['S'] = op_string_text, ['V'] = op_unicode_text,
	[')'] = op_empty, [']'] = op_empty, ['}'] = op_empty, [0x8f] = op_empty,
	[0x85] = op_tuple_n, [0x86] = op_tuple_n, [0x87] = op_tuple_n,
	['t'] = op_from_mark, ['l'] = op_from_mark, ['d'] = op_from_mark, [0x91] = op_from_mark,
	['a'] = op_add_one, ['s'] = op_add_one,
	['e'] = op_add_many, ['u'] = op_add_many, [0x90] = op_add_many,
	['c'] = op_global, [0x93] = op_stack_global,
	['R'] = op_call, [0x81] = op_call, [0x92] = op_call, ['o'] = op_obj, ['i'] = op_obj,
	['b'] = op_build, ['P'] = op_persid, ['Q'] = op_persid,
	['p'] = op_put, ['q'] = op_put, ['r'] = op_put, [0x94] = op_put,
	['g'] = op_get, ['h'] = op_get, ['j'] = op_get,
	[0x82] = op_unsupported, [0x83] = op_unsupported, [0x84] = op_unsupported,
	[0x97] = op_unsupported, [0x98] = op_readonly,
};
/* clang-format on */

/* Creates the shared None/True/False values. */
static int pkl_singletons(pkl_vm *vm)
{
	int rc;

	if ((rc = pkl_new(vm, &vm->none, NCK_PV_NONE)) < 0 ||
	    (rc = pkl_new(vm, &vm->yes, NCK_PV_BOOL)) < 0 ||
	    (rc = pkl_new(vm, &vm->no, NCK_PV_BOOL)) < 0)
		return rc;
	vm->yes->b = true;
	return 0;
}

int nck_pkl_parse_ex(nck_pv **out, nck_arena *arena, const void *data, size_t len, const char *name,
		     const nck_pkl_limits *limits, nck_pkl_persid_cb persid_cb, void *payload,
		     nck_diag *diag)
{
	pkl_vm vm = { .arena = arena,
		      .data = data,
		      .len = len,
		      .name = name,
		      .persid_cb = persid_cb,
		      .payload = payload,
		      .diag = diag };
	int rc;

	*out = NULL;
	if (limits)
		vm.lim = *limits;
	vm.lim.max_depth = vm.lim.max_depth ? vm.lim.max_depth : PKL_DEF_DEPTH;
	vm.lim.max_items = vm.lim.max_items ? vm.lim.max_items : PKL_DEF_ITEMS;
	vm.lim.max_bytes = vm.lim.max_bytes ? vm.lim.max_bytes : PKL_DEF_BYTES;
	/* The stack always exists, so that "stack + sp" is never arithmetic on
	 * a null pointer (undefined behaviour, even with an empty range). */
	vm.stack = malloc(64 * sizeof(*vm.stack));
	if (!vm.stack) {
		rc = pkl_err(&vm, -ENOMEM, "out of memory");
		goto out;
	}
	vm.stack_cap = 64;
	if ((rc = pkl_singletons(&vm)) < 0)
		goto out;
	while (!vm.result) {
		unsigned char op;

		vm.op = vm.pos;
		if (vm.pos >= vm.len) {
			rc = pkl_err(&vm, -EBADMSG, "ends without STOP");
			goto out;
		}
		op = vm.data[vm.pos++];
		if (!pkl_ops[op]) {
			rc = pkl_err(&vm, -EBADMSG, "unknown opcode 0x%02x", op);
			goto out;
		}
		if ((rc = pkl_ops[op](&vm, op)) < 0)
			goto out;
	}
	*out = vm.result;
out:
	free(vm.stack);
	free(vm.marks);
	free(vm.memo);
	return rc;
}

int nck_pkl_parse(nck_pv **out, nck_arena *arena, const void *data, size_t len, const char *name,
		  const nck_pkl_limits *limits, nck_diag *diag)
{
	return nck_pkl_parse_ex(out, arena, data, len, name, limits, NULL, NULL, diag);
}

/* ---- helpers ----------------------------------------------------------------------- */

bool nck_pv_is_global(const nck_pv *v, const char *module, const char *name)
{
	return v && v->kind == NCK_PV_GLOBAL && strcmp(v->global.module, module) == 0 &&
	       strcmp(v->global.name, name) == 0;
}

bool nck_pv_is_str(const nck_pv *v, const char *s)
{
	return v && v->kind == NCK_PV_STR && v->str.len == strlen(s) &&
	       memcmp(v->str.s, s, v->str.len) == 0;
}

bool nck_pv_is_call_of(const nck_pv *v, const char *module, const char *name)
{
	return v && v->kind == NCK_PV_CALL && nck_pv_is_global(v->call.callable, module, name);
}

const nck_pv *nck_pv_dict_get(const nck_pv *dict, const char *key)
{
	if (dict && dict->kind == NCK_PV_CALL)
		dict = dict->call.items;
	if (!dict || dict->kind != NCK_PV_DICT)
		return NULL;
	for (size_t k = dict->seq.n; k-- > 0;)
		if (nck_pv_is_str(dict->seq.items[2 * k], key))
			return dict->seq.items[2 * k + 1];
	return NULL;
}

const nck_pv *nck_pv_seq_get(const nck_pv *seq, size_t i)
{
	if (!seq || (seq->kind != NCK_PV_TUPLE && seq->kind != NCK_PV_LIST) || i >= seq->seq.n)
		return NULL;
	return seq->seq.items[i];
}

bool nck_pv_get_int(const nck_pv *v, int64_t *out)
{
	if (v && v->kind == NCK_PV_INT)
		return *out = v->i, true;
	if (v && v->kind == NCK_PV_BOOL)
		return *out = v->b, true;
	return false;
}
