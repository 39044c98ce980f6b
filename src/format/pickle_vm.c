/* SPDX-License-Identifier: MIT */
/*
 * The restricted pickle machine's state (pickle.c): errors, arena allocation
 * within the limits, values (strings checked as UTF-8, growable sequences),
 * the stack split by MARKs, the memo, and the readers of opcode arguments.
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

#include "util/grow.h"

/* ---- errors, allocation, values ----------------------------------------------- */

/* Records an error at the current opcode and returns `code`. */
__attribute__((format(printf, 3, 4))) int nck_pkl_err(pkl_vm *vm, int code, const char *fmt, ...)
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
		return nck_pkl_err(vm, -E2BIG, "more than %zu bytes of values", vm->lim.max_bytes);
	*out = nck_arena_alloc(vm->arena, n ? n : 1);
	if (!*out)
		return nck_pkl_err(vm, -ENOMEM, "out of memory");
	vm->n_bytes += n;
	return 0;
}

/* Counts `n` values or slots against the item limit. */
static int pkl_count(pkl_vm *vm, size_t n)
{
	if (n > vm->lim.max_items - vm->n_items)
		return nck_pkl_err(vm, -E2BIG, "more than %zu values", vm->lim.max_items);
	vm->n_items += n;
	return 0;
}

/* A new zeroed value of `kind`. */
int nck_pkl_new(pkl_vm *vm, nck_pv **out, nck_pv_kind kind)
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
int nck_pkl_deepen(pkl_vm *vm, nck_pv *c, const nck_pv *item)
{
	if (item && item->depth + 1u > c->depth) {
		if (item->depth + 1u > vm->lim.max_depth)
			return nck_pkl_err(vm, -E2BIG, "values nested deeper than %zu",
				       vm->lim.max_depth);
		c->depth = item->depth + 1u;
	}
	return 0;
}

/* Decodes one UTF-8 sequence at s[*i] (surrogates allowed, overlongs not). */
bool nck_pkl_utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp)
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
		if (!nck_pkl_utf8_next(s, n, &i, &cp))
			return false;
	return true;
}

/* Appends code point `cp` as UTF-8; returns the bytes written (1-4). */
size_t nck_pkl_utf8_put(unsigned char *o, uint32_t cp)
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
int nck_pkl_new_str(pkl_vm *vm, nck_pv **out, nck_pv_kind kind, const void *s, size_t n)
{
	void *p = NULL;
	int rc;

	if (kind == NCK_PV_STR && !pkl_utf8_ok(s, n))
		return nck_pkl_err(vm, -EBADMSG, "string is not valid UTF-8");
	if (n == SIZE_MAX)
		return nck_pkl_err(vm, -E2BIG, "string too long");
	if ((rc = nck_pkl_new(vm, out, kind)) < 0 || (rc = pkl_alloc(vm, &p, n + 1)) < 0)
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
		return nck_pkl_err(vm, -E2BIG, "container too large");
	if (need <= seq->seq.cap)
		return 0;
	cap = seq->seq.cap ? seq->seq.cap : 4;
	while (cap < need)
		if (__builtin_mul_overflow(cap, 2, &cap))
			return nck_pkl_err(vm, -E2BIG, "container too large");
	if (__builtin_mul_overflow(cap, sizeof(nck_pv *), &bytes))
		return nck_pkl_err(vm, -E2BIG, "container too large");
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
int nck_pkl_seq_add(pkl_vm *vm, nck_pv *seq, nck_pv *const *items, size_t n)
{
	size_t slots = pkl_slots(seq);
	int rc;

	if ((rc = pkl_count(vm, n)) < 0 || (rc = pkl_seq_reserve(vm, seq, n)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = nck_pkl_deepen(vm, seq, items[i])) < 0)
			return rc;
		seq->seq.items[slots++] = items[i];
	}
	seq->seq.n = seq->kind == NCK_PV_DICT ? slots / 2 : slots;
	return 0;
}

/* A new TUPLE/LIST/DICT holding a copy of items[0..n). */
int nck_pkl_new_seq(pkl_vm *vm, nck_pv **out, nck_pv_kind kind, nck_pv *const *items, size_t n)
{
	int rc;

	if ((rc = nck_pkl_new(vm, out, kind)) < 0)
		return rc;
	(*out)->depth = 1;
	return nck_pkl_seq_add(vm, *out, items, n);
}

/* ---- the stack, marks and memo -------------------------------------------------- */

/* Height of the stack at the innermost MARK: nothing below it may be popped. */
size_t nck_pkl_base(const pkl_vm *vm)
{
	return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
}

/* Pushes `v`, growing the stack (bounded by the input: one push per opcode). */
int nck_pkl_push(pkl_vm *vm, nck_pv *v)
{
	if (nck_grow((void **)&vm->stack, &vm->stack_cap, vm->sp, sizeof(*vm->stack), 64) < 0)
		return nck_pkl_err(vm, -ENOMEM, "out of memory");
	vm->stack[vm->sp++] = v;
	return 0;
}

/* Pops the top value of the innermost MARK segment. */
int nck_pkl_pop(pkl_vm *vm, nck_pv **out)
{
	if (vm->sp <= nck_pkl_base(vm))
		return nck_pkl_err(vm, -EBADMSG, "stack underflow");
	*out = vm->stack[--vm->sp];
	return 0;
}

/* The top value of the innermost MARK segment, left in place. */
int nck_pkl_top(pkl_vm *vm, nck_pv **out)
{
	if (vm->sp <= nck_pkl_base(vm))
		return nck_pkl_err(vm, -EBADMSG, "stack underflow");
	*out = vm->stack[vm->sp - 1];
	return 0;
}

/* Closes the innermost MARK; the items pushed since are stack[*start..sp). */
int nck_pkl_pop_mark(pkl_vm *vm, size_t *start)
{
	if (!vm->n_marks)
		return nck_pkl_err(vm, -EBADMSG, "no MARK to pop");
	*start = vm->marks[--vm->n_marks];
	return 0;
}

/* Stores the top of the stack as memo[idx]. */
int nck_pkl_memo_put(pkl_vm *vm, uint64_t idx)
{
	nck_pv *top = NULL;
	int rc;

	if ((rc = nck_pkl_top(vm, &top)) < 0)
		return rc;
	if (idx > vm->n_puts)
		return nck_pkl_err(vm, -EBADMSG, "memo index %llu out of sequence",
			       (unsigned long long)idx);
	vm->n_puts++;
	if (idx >= vm->memo_cap) {
		size_t cap = vm->memo_cap ? vm->memo_cap * 2 : 64;
		nck_pv **m;

		while (cap <= idx)
			cap *= 2;
		m = realloc(vm->memo, cap * sizeof(*m));
		if (!m)
			return nck_pkl_err(vm, -ENOMEM, "out of memory");
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
int nck_pkl_memo_get(pkl_vm *vm, uint64_t idx)
{
	if (idx >= vm->memo_cap || !vm->memo[idx])
		return nck_pkl_err(vm, -EBADMSG, "memo index %llu not set", (unsigned long long)idx);
	return nck_pkl_push(vm, vm->memo[idx]);
}

/* ---- argument readers ----------------------------------------------------------- */

/* The next `n` argument bytes, or NULL (-EBADMSG recorded) when the pickle ends first. */
const unsigned char *nck_pkl_take(pkl_vm *vm, uint64_t n)
{
	const unsigned char *p;

	if (n > vm->len - vm->pos) {
		nck_pkl_err(vm, -EBADMSG, "truncated (needs %llu more bytes)", (unsigned long long)n);
		return NULL;
	}
	p = vm->data + vm->pos;
	vm->pos += (size_t)n;
	return p;
}

/* Little-endian unsigned integer of `n` (1, 2, 4 or 8) argument bytes. */
int nck_pkl_take_uint(pkl_vm *vm, size_t n, uint64_t *v)
{
	const unsigned char *p = nck_pkl_take(vm, n);

	if (!p)
		return -EBADMSG;
	*v = 0;
	for (size_t i = n; i-- > 0;)
		*v = *v << 8 | p[i];
	return 0;
}

/* A protocol 0 argument: the bytes up to the next newline, which is consumed. */
int nck_pkl_take_line(pkl_vm *vm, const char **s, size_t *n)
{
	const unsigned char *nl = memchr(vm->data + vm->pos, '\n', vm->len - vm->pos);

	if (!nl)
		return nck_pkl_err(vm, -EBADMSG, "truncated (no end of line)");
	*s = (const char *)vm->data + vm->pos;
	*n = (size_t)(nl - (vm->data + vm->pos));
	vm->pos += *n + 1;
	return 0;
}

/* Parses a decimal int64: 0 ok, 1 overflow, -1 not a number. */
int nck_pkl_parse_i64(const char *s, size_t n, int64_t *out)
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

