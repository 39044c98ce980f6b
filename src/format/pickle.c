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
 * Files: this one (the dispatch table, the entry points and the value
 * helpers of pickle.h), pickle_vm.c, pickle_scalar.c, pickle_obj.c; their
 * shared internals in pickle_int.h; the GLOBAL allowlist in pickle_allow.c.
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

/* ---- dispatch ------------------------------------------------------------------- */

/* Handlers by opcode byte (Lib/pickle.py constants); NULL is an unknown opcode. */
/* clang-format off */
static const pkl_op_fn pkl_ops[256] = {
	[0x80] = nck_pkl_op_proto, [0x95] = nck_pkl_op_frame, ['.'] = nck_pkl_op_stop, ['('] = nck_pkl_op_mark,
	['0'] = nck_pkl_op_stack, ['1'] = nck_pkl_op_stack, ['2'] = nck_pkl_op_stack,
	['N'] = nck_pkl_op_none, [0x88] = nck_pkl_op_none, [0x89] = nck_pkl_op_none,
	['K'] = nck_pkl_op_binint, ['M'] = nck_pkl_op_binint, ['J'] = nck_pkl_op_binint,
	[0x8a] = nck_pkl_op_long_bin, [0x8b] = nck_pkl_op_long_bin, ['G'] = nck_pkl_op_binfloat,
	['I'] = nck_pkl_op_int_text, ['L'] = nck_pkl_op_int_text, ['F'] = nck_pkl_op_float_text,
	['X'] = nck_pkl_op_str_bin, [0x8c] = nck_pkl_op_str_bin, [0x8d] = nck_pkl_op_str_bin,
	['T'] = nck_pkl_op_str_bin, ['U'] = nck_pkl_op_str_bin,
	['B'] = nck_pkl_op_bytes_bin, ['C'] = nck_pkl_op_bytes_bin, [0x8e] = nck_pkl_op_bytes_bin, [0x96] = nck_pkl_op_bytes_bin,
	['S'] = nck_pkl_op_string_text, ['V'] = nck_pkl_op_unicode_text,
	[')'] = nck_pkl_op_empty, [']'] = nck_pkl_op_empty, ['}'] = nck_pkl_op_empty, [0x8f] = nck_pkl_op_empty,
	[0x85] = nck_pkl_op_tuple_n, [0x86] = nck_pkl_op_tuple_n, [0x87] = nck_pkl_op_tuple_n,
	['t'] = nck_pkl_op_from_mark, ['l'] = nck_pkl_op_from_mark, ['d'] = nck_pkl_op_from_mark, [0x91] = nck_pkl_op_from_mark,
	['a'] = nck_pkl_op_add_one, ['s'] = nck_pkl_op_add_one,
	['e'] = nck_pkl_op_add_many, ['u'] = nck_pkl_op_add_many, [0x90] = nck_pkl_op_add_many,
	['c'] = nck_pkl_op_global, [0x93] = nck_pkl_op_stack_global,
	['R'] = nck_pkl_op_call, [0x81] = nck_pkl_op_call, [0x92] = nck_pkl_op_call, ['o'] = nck_pkl_op_obj, ['i'] = nck_pkl_op_obj,
	['b'] = nck_pkl_op_build, ['P'] = nck_pkl_op_persid, ['Q'] = nck_pkl_op_persid,
	['p'] = nck_pkl_op_put, ['q'] = nck_pkl_op_put, ['r'] = nck_pkl_op_put, [0x94] = nck_pkl_op_put,
	['g'] = nck_pkl_op_get, ['h'] = nck_pkl_op_get, ['j'] = nck_pkl_op_get,
	[0x82] = nck_pkl_op_unsupported, [0x83] = nck_pkl_op_unsupported, [0x84] = nck_pkl_op_unsupported,
	[0x97] = nck_pkl_op_unsupported, [0x98] = nck_pkl_op_readonly,
};
/* clang-format on */

/* Creates the shared None/True/False values. */
static int pkl_singletons(pkl_vm *vm)
{
	int rc;

	if ((rc = nck_pkl_new(vm, &vm->none, NCK_PV_NONE)) < 0 ||
	    (rc = nck_pkl_new(vm, &vm->yes, NCK_PV_BOOL)) < 0 ||
	    (rc = nck_pkl_new(vm, &vm->no, NCK_PV_BOOL)) < 0)
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
		rc = nck_pkl_err(&vm, -ENOMEM, "out of memory");
		goto out;
	}
	vm.stack_cap = 64;
	if ((rc = pkl_singletons(&vm)) < 0)
		goto out;
	while (!vm.result) {
		unsigned char op;

		vm.op = vm.pos;
		if (vm.pos >= vm.len) {
			rc = nck_pkl_err(&vm, -EBADMSG, "ends without STOP");
			goto out;
		}
		op = vm.data[vm.pos++];
		if (!pkl_ops[op]) {
			rc = nck_pkl_err(&vm, -EBADMSG, "unknown opcode 0x%02x", op);
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

