/* SPDX-License-Identifier: MIT */
/*
 * Opcodes of the restricted pickle machine (pickle.c) that build objects and
 * move values: containers, GLOBAL/STACK_GLOBAL (only allowlisted names,
 * pickle_allow.c), REDUCE/NEWOBJ/OBJ/BUILD as call records, persistent
 * ids, and the stack, memo and framing opcodes.
 *
 * Thread-safety: a parse touches only its own state and the caller's arena.
 */
#include "format/pickle_int.h"
#include "format/pickle_allow.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

/* ---- containers ------------------------------------------------------------------- */

/* The GLOBAL builtins.<name>, allocated per use. */
static int pkl_builtin(pkl_vm *vm, nck_pv **out, const char *name)
{
	int rc;

	if ((rc = nck_pkl_new(vm, out, NCK_PV_GLOBAL)) < 0)
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
	    (rc = nck_pkl_new_seq(vm, &args, NCK_PV_TUPLE, NULL, 0)) < 0 ||
	    (rc = nck_pkl_new(vm, out, NCK_PV_CALL)) < 0)
		return rc;
	(*out)->call.callable = cls;
	(*out)->call.args = args;
	(*out)->call.items = items;
	(*out)->depth = 1;
	return nck_pkl_deepen(vm, *out, items);
}

/* EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT, EMPTY_SET. */
int nck_pkl_op_empty(pkl_vm *vm, unsigned char op)
{
	nck_pv *v = NULL, *items = NULL;
	nck_pv_kind kind;
	int rc;

	if (op == 0x8f) {
		if ((rc = nck_pkl_new_seq(vm, &items, NCK_PV_LIST, NULL, 0)) < 0 ||
		    (rc = pkl_new_set(vm, &v, "set", items)) < 0)
			return rc;
		return nck_pkl_push(vm, v);
	}
	kind = op == ')' ? NCK_PV_TUPLE : op == ']' ? NCK_PV_LIST : NCK_PV_DICT;
	rc = nck_pkl_new_seq(vm, &v, kind, NULL, 0);
	return rc < 0 ? rc : nck_pkl_push(vm, v);
}

/* TUPLE1, TUPLE2, TUPLE3: the top 1-3 items. */
int nck_pkl_op_tuple_n(pkl_vm *vm, unsigned char op)
{
	size_t n = (size_t)(op - 0x84);
	nck_pv *v = NULL;
	int rc;

	if (vm->sp - nck_pkl_base(vm) < n)
		return nck_pkl_err(vm, -EBADMSG, "stack underflow");
	vm->sp -= n;
	if ((rc = nck_pkl_new_seq(vm, &v, NCK_PV_TUPLE, vm->stack + vm->sp, n)) < 0)
		return rc;
	return nck_pkl_push(vm, v);
}

/* TUPLE, LIST, DICT, FROZENSET: from the items above the innermost MARK. */
int nck_pkl_op_from_mark(pkl_vm *vm, unsigned char op)
{
	nck_pv_kind kind = op == 't' ? NCK_PV_TUPLE : op == 'd' ? NCK_PV_DICT : NCK_PV_LIST;
	nck_pv *v = NULL, *set = NULL;
	size_t start = 0, n;
	int rc;

	if ((rc = nck_pkl_pop_mark(vm, &start)) < 0)
		return rc;
	n = vm->sp - start;
	vm->sp = start;
	if (kind == NCK_PV_DICT && n % 2)
		return nck_pkl_err(vm, -EBADMSG, "DICT with an odd number of items");
	if ((rc = nck_pkl_new_seq(vm, &v, kind, vm->stack + start, n)) < 0)
		return rc;
	if (op == 0x91) {
		if ((rc = pkl_new_set(vm, &set, "frozenset", v)) < 0)
			return rc;
		v = set;
	}
	return nck_pkl_push(vm, v);
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
		    (rc = nck_pkl_new_seq(vm, &target->call.items, want, NULL, 0)) < 0)
			return rc;
		dst = target->call.items;
	}
	if (dst->kind != want)
		return nck_pkl_err(vm, -EBADMSG, "%s on a value that is not a %s",
			       want == NCK_PV_DICT ? "SETITEM" : "APPEND",
			       want == NCK_PV_DICT ? "dict" : "list");
	if ((rc = nck_pkl_seq_add(vm, dst, items, n)) < 0)
		return rc;
	return dst == target ? 0 : nck_pkl_deepen(vm, target, dst);
}

/* APPEND, SETITEM: one item (or pair) on top of the target. */
int nck_pkl_op_add_one(pkl_vm *vm, unsigned char op)
{
	size_t n = op == 's' ? 2 : 1;
	nck_pv *target = NULL;

	if (vm->sp - nck_pkl_base(vm) < n + 1)
		return nck_pkl_err(vm, -EBADMSG, "stack underflow");
	vm->sp -= n;
	target = vm->stack[vm->sp - 1];
	return pkl_extend(vm, target, op == 's' ? NCK_PV_DICT : NCK_PV_LIST, vm->stack + vm->sp, n);
}

/* APPENDS, SETITEMS, ADDITEMS: the items above the MARK go into the value below it. */
int nck_pkl_op_add_many(pkl_vm *vm, unsigned char op)
{
	nck_pv_kind want = op == 'u' ? NCK_PV_DICT : NCK_PV_LIST;
	nck_pv *target = NULL;
	size_t start = 0, n;
	int rc;

	if ((rc = nck_pkl_pop_mark(vm, &start)) < 0)
		return rc;
	n = vm->sp - start;
	vm->sp = start;
	if (start <= nck_pkl_base(vm))
		return nck_pkl_err(vm, -EBADMSG, "stack underflow");
	target = vm->stack[start - 1];
	if (want == NCK_PV_DICT && n % 2)
		return nck_pkl_err(vm, -EBADMSG, "SETITEMS with an odd number of items");
	if (op == 0x90 && !(target->kind == NCK_PV_CALL && target->call.items))
		return nck_pkl_err(vm, -EBADMSG, "ADDITEMS on a value that is not a set");
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
		return nck_pkl_err(vm, -EBADMSG, "global name contains a NUL byte");
	if ((rc = nck_pkl_new_str(vm, &m, NCK_PV_STR, mod, mlen)) < 0 ||
	    (rc = nck_pkl_new_str(vm, &n, NCK_PV_STR, name, nlen)) < 0 ||
	    (rc = nck_pkl_new(vm, &v, NCK_PV_GLOBAL)) < 0)
		return rc;
	v->global.module = pkl_py3_module(m->str.s);
	v->global.name = n->str.s;
	/* Never executed here, but a file torch's weights-only loader refuses
	 * (os.system, builtins.eval) is refused the same way. */
	if (!vm->lim.any_global && !nck_pkl_global_allowed(v->global.module, v->global.name))
		return nck_pkl_err(vm, -ENOTSUP, "global %s.%s is not allowed (torch's weights_only loader refuses it)",
			       v->global.module, v->global.name);
	return nck_pkl_push(vm, v);
}

/* GLOBAL: "module\nname\n". */
int nck_pkl_op_global(pkl_vm *vm, unsigned char op)
{
	const char *m = NULL, *n = NULL;
	size_t ml = 0, nl = 0;
	int rc;

	(void)op;
	if ((rc = nck_pkl_take_line(vm, &m, &ml)) < 0 || (rc = nck_pkl_take_line(vm, &n, &nl)) < 0)
		return rc;
	return pkl_push_global(vm, m, ml, n, nl);
}

/* STACK_GLOBAL: module and name strings from the stack. */
int nck_pkl_op_stack_global(pkl_vm *vm, unsigned char op)
{
	nck_pv *m = NULL, *n = NULL;
	int rc;

	(void)op;
	if ((rc = nck_pkl_pop(vm, &n)) < 0 || (rc = nck_pkl_pop(vm, &m)) < 0)
		return rc;
	if (m->kind != NCK_PV_STR || n->kind != NCK_PV_STR)
		return nck_pkl_err(vm, -EBADMSG, "STACK_GLOBAL needs two strings");
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
		return nck_pkl_err(vm, -ENOMEM, "out of memory");
	for (size_t i = 0; i < text->str.len;) {
		if (!nck_pkl_utf8_next(s, text->str.len, &i, &cp) || cp > 0xff) {
			free(buf);
			return nck_pkl_err(vm, -EBADMSG, "latin-1 bytes with a code point above 0xff");
		}
		buf[o++] = (unsigned char)cp;
	}
	rc = nck_pkl_new_str(vm, out, NCK_PV_BYTES, buf, o);
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

	if ((rc = nck_pkl_new(vm, out, NCK_PV_CALL)) < 0)
		return rc;
	(*out)->call.callable = callable;
	(*out)->call.args = args;
	(*out)->call.kwargs = kwargs;
	(*out)->depth = 1;
	if ((rc = nck_pkl_deepen(vm, *out, callable)) < 0 || (rc = nck_pkl_deepen(vm, *out, args)) < 0)
		return rc;
	return nck_pkl_deepen(vm, *out, kwargs);
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
		return nck_pkl_new_seq(vm, out, NCK_PV_DICT, NULL, 0);
	if (n == 0 && (bytearray || nck_pv_is_global(callable, "builtins", "bytes")))
		return nck_pkl_new_str(vm, out, NCK_PV_BYTES, "", 0);
	if (n == 2 && (bytearray || nck_pv_is_global(callable, "_codecs", "encode")) &&
	    a[0]->kind == NCK_PV_STR && pkl_is_latin1(a[1]))
		return pkl_latin1(vm, out, a[0]);
	if (n == 1 && bytearray && a[0]->kind == NCK_PV_BYTES)
		return nck_pkl_new_str(vm, out, NCK_PV_BYTES, a[0]->str.s, a[0]->str.len);
	return pkl_new_call(vm, out, callable, args, NULL);
}

/* REDUCE, NEWOBJ (callable and args on the stack), NEWOBJ_EX (plus kwargs). */
int nck_pkl_op_call(pkl_vm *vm, unsigned char op)
{
	nck_pv *callable = NULL, *args = NULL, *kwargs = NULL, *v = NULL;
	int rc;

	if (op == 0x92 && (rc = nck_pkl_pop(vm, &kwargs)) < 0)
		return rc;
	if ((rc = nck_pkl_pop(vm, &args)) < 0 || (rc = nck_pkl_pop(vm, &callable)) < 0)
		return rc;
	if (op == 'R')
		rc = pkl_reduce(vm, &v, callable, args);
	else
		rc = pkl_new_call(vm, &v, callable, args, kwargs);
	return rc < 0 ? rc : nck_pkl_push(vm, v);
}

/* OBJ (class and args above a MARK) and INST (class named by two text lines). */
int nck_pkl_op_obj(pkl_vm *vm, unsigned char op)
{
	nck_pv *cls = NULL, *args = NULL, *v = NULL;
	const char *m = NULL, *n = NULL;
	size_t start = 0, ml = 0, nl = 0, first;
	int rc;

	if (op == 'i') {
		if ((rc = nck_pkl_take_line(vm, &m, &ml)) < 0 ||
		    (rc = nck_pkl_take_line(vm, &n, &nl)) < 0 ||
		    (rc = pkl_push_global(vm, m, ml, n, nl)) < 0 || (rc = nck_pkl_pop(vm, &cls)) < 0)
			return rc;
	}
	if ((rc = nck_pkl_pop_mark(vm, &start)) < 0)
		return rc;
	first = start;
	if (op == 'o') {
		if (vm->sp == start)
			return nck_pkl_err(vm, -EBADMSG, "OBJ without a class");
		cls = vm->stack[first++];
	}
	rc = nck_pkl_new_seq(vm, &args, NCK_PV_TUPLE, vm->stack + first, vm->sp - first);
	vm->sp = start;
	if (rc < 0 || (rc = pkl_new_call(vm, &v, cls, args, NULL)) < 0)
		return rc;
	return nck_pkl_push(vm, v);
}

/* BUILD: keeps the state on an object; on other values (a dict's attributes) drops it. */
int nck_pkl_op_build(pkl_vm *vm, unsigned char op)
{
	nck_pv *state = NULL, *target = NULL;
	int rc;

	(void)op;
	if ((rc = nck_pkl_pop(vm, &state)) < 0 || (rc = nck_pkl_top(vm, &target)) < 0)
		return rc;
	if (target->kind != NCK_PV_CALL)
		return 0;
	target->call.state = state;
	return nck_pkl_deepen(vm, target, state);
}

/* Replaces a persistent id through the callback, or wraps it in a PERSID. */
static int pkl_persid(pkl_vm *vm, nck_pv *pid)
{
	nck_pv *v = NULL;
	int rc;

	if (vm->persid_cb) {
		if ((rc = vm->persid_cb(&v, pid, vm->payload)) < 0)
			return nck_pkl_err(vm, rc, "persistent id rejected");
		if (!v)
			return nck_pkl_err(vm, -EINVAL, "persistent id callback gave no value");
		return nck_pkl_push(vm, v);
	}
	if ((rc = nck_pkl_new(vm, &v, NCK_PV_PERSID)) < 0)
		return rc;
	v->persid = pid;
	v->depth = 1;
	if ((rc = nck_pkl_deepen(vm, v, pid)) < 0)
		return rc;
	return nck_pkl_push(vm, v);
}

/* PERSID (text line) and BINPERSID (any value from the stack). */
int nck_pkl_op_persid(pkl_vm *vm, unsigned char op)
{
	nck_pv *pid = NULL;
	const char *s = NULL;
	size_t n = 0;
	int rc;

	if (op == 'Q')
		rc = nck_pkl_pop(vm, &pid);
	else if ((rc = nck_pkl_take_line(vm, &s, &n)) == 0)
		rc = nck_pkl_new_str(vm, &pid, NCK_PV_STR, s, n);
	return rc < 0 ? rc : pkl_persid(vm, pid);
}

/* ---- stack, memo and framing opcodes --------------------------------------------- */

/* PROTO: any protocol up to 5; the opcodes themselves say what is used. */
int nck_pkl_op_proto(pkl_vm *vm, unsigned char op)
{
	uint64_t v = 0;
	int rc;

	(void)op;
	if ((rc = nck_pkl_take_uint(vm, 1, &v)) < 0)
		return rc;
	if (v > PKL_MAX_PROTO)
		return nck_pkl_err(vm, -ENOTSUP, "protocol %u is not supported", (unsigned)v);
	return 0;
}

/* FRAME: an advisory length prefix (protocol 4); only checked to lie inside the data. */
int nck_pkl_op_frame(pkl_vm *vm, unsigned char op)
{
	uint64_t v = 0;
	int rc;

	(void)op;
	if ((rc = nck_pkl_take_uint(vm, 8, &v)) < 0)
		return rc;
	if (v > vm->len - vm->pos)
		return nck_pkl_err(vm, -EBADMSG, "frame of %llu bytes runs past the end",
			       (unsigned long long)v);
	return 0;
}

/* STOP: the one value left on the stack is the result. */
int nck_pkl_op_stop(pkl_vm *vm, unsigned char op)
{
	(void)op;
	if (vm->n_marks || vm->sp != 1)
		return nck_pkl_err(vm, -EBADMSG, "STOP with %zu values and %zu MARKs on the stack",
			       vm->sp, vm->n_marks);
	vm->result = vm->stack[0];
	return 0;
}

/* MARK: opens a stack segment; open MARKs count against max_depth. */
int nck_pkl_op_mark(pkl_vm *vm, unsigned char op)
{
	(void)op;
	if (vm->n_marks >= vm->lim.max_depth)
		return nck_pkl_err(vm, -E2BIG, "more than %zu open MARKs", vm->lim.max_depth);
	if (nck_grow((void **)&vm->marks, &vm->marks_cap, vm->n_marks, sizeof(*vm->marks), 16) < 0)
		return nck_pkl_err(vm, -ENOMEM, "out of memory");
	vm->marks[vm->n_marks++] = vm->sp;
	return 0;
}

/* POP (which closes an empty MARK, as CPython does), POP_MARK, DUP. */
int nck_pkl_op_stack(pkl_vm *vm, unsigned char op)
{
	nck_pv *v = NULL;
	size_t start = 0;

	if (op == '2')
		return nck_pkl_top(vm, &v) < 0 ? -EBADMSG : nck_pkl_push(vm, v);
	if (op == '1' || (vm->sp == nck_pkl_base(vm) && vm->n_marks)) {
		if (nck_pkl_pop_mark(vm, &start) < 0)
			return -EBADMSG;
		vm->sp = start;
		return 0;
	}
	return nck_pkl_pop(vm, &v);
}

/* Reads a memo index: decimal text line (PUT/GET), u8 or u32 argument. */
static int pkl_take_index(pkl_vm *vm, unsigned char op, uint64_t *idx)
{
	const char *s = NULL;
	size_t n = 0;
	int64_t v = 0;
	int rc;

	if (op == 'q' || op == 'h')
		return nck_pkl_take_uint(vm, 1, idx);
	if (op == 'r' || op == 'j')
		return nck_pkl_take_uint(vm, 4, idx);
	if ((rc = nck_pkl_take_line(vm, &s, &n)) < 0)
		return rc;
	if (nck_pkl_parse_i64(s, n, &v) != 0 || v < 0)
		return nck_pkl_err(vm, -EBADMSG, "bad memo index text");
	*idx = (uint64_t)v;
	return 0;
}

/* PUT, BINPUT, LONG_BINPUT, MEMOIZE (index len(memo)). */
int nck_pkl_op_put(pkl_vm *vm, unsigned char op)
{
	uint64_t idx = vm->memo_count;
	int rc;

	if (op != 0x94 && (rc = pkl_take_index(vm, op, &idx)) < 0)
		return rc;
	return nck_pkl_memo_put(vm, idx);
}

/* GET, BINGET, LONG_BINGET. */
int nck_pkl_op_get(pkl_vm *vm, unsigned char op)
{
	uint64_t idx = 0;
	int rc;

	if ((rc = pkl_take_index(vm, op, &idx)) < 0)
		return rc;
	return nck_pkl_memo_get(vm, idx);
}

/* EXT1/2/4 need the copyreg extension registry; NEXT_BUFFER needs out-of-band buffers. */
int nck_pkl_op_unsupported(pkl_vm *vm, unsigned char op)
{
	return nck_pkl_err(vm, -ENOTSUP, "opcode 0x%02x is not supported", op);
}

/* READONLY_BUFFER: a no-op on the value below. */
int nck_pkl_op_readonly(pkl_vm *vm, unsigned char op)
{
	nck_pv *v = NULL;

	(void)op;
	return nck_pkl_top(vm, &v);
}

