/* SPDX-License-Identifier: MIT */
/*
 * Internals of the restricted pickle machine, shared by its files:
 * pickle.c (dispatch, entry points, value helpers), pickle_vm.c (state,
 * values, stack, memo, argument readers), pickle_scalar.c and pickle_obj.c
 * (the opcode handlers). Not part of any interface outside src/format/.
 */
#ifndef NCK_FORMAT_PICKLE_INT_H
#define NCK_FORMAT_PICKLE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/pickle.h"

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

/* ---- pickle_vm.c */
size_t nck_pkl_base(const pkl_vm *vm);
int nck_pkl_deepen(pkl_vm *vm, nck_pv *c, const nck_pv *item);
__attribute__((format(printf, 3, 4))) int nck_pkl_err(pkl_vm *vm, int code, const char *fmt, ...);
int nck_pkl_memo_get(pkl_vm *vm, uint64_t idx);
int nck_pkl_memo_put(pkl_vm *vm, uint64_t idx);
int nck_pkl_new(pkl_vm *vm, nck_pv **out, nck_pv_kind kind);
int nck_pkl_new_seq(pkl_vm *vm, nck_pv **out, nck_pv_kind kind, nck_pv *const *items, size_t n);
int nck_pkl_new_str(pkl_vm *vm, nck_pv **out, nck_pv_kind kind, const void *s, size_t n);
int nck_pkl_parse_i64(const char *s, size_t n, int64_t *out);
int nck_pkl_pop(pkl_vm *vm, nck_pv **out);
int nck_pkl_pop_mark(pkl_vm *vm, size_t *start);
int nck_pkl_push(pkl_vm *vm, nck_pv *v);
int nck_pkl_seq_add(pkl_vm *vm, nck_pv *seq, nck_pv *const *items, size_t n);
const unsigned char *nck_pkl_take(pkl_vm *vm, uint64_t n);
int nck_pkl_take_line(pkl_vm *vm, const char **s, size_t *n);
int nck_pkl_take_uint(pkl_vm *vm, size_t n, uint64_t *v);
int nck_pkl_top(pkl_vm *vm, nck_pv **out);
bool nck_pkl_utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp);
size_t nck_pkl_utf8_put(unsigned char *o, uint32_t cp);

/* ---- pickle_scalar.c: opcode handlers */
int nck_pkl_op_binfloat(pkl_vm *vm, unsigned char op);
int nck_pkl_op_binint(pkl_vm *vm, unsigned char op);
int nck_pkl_op_bytes_bin(pkl_vm *vm, unsigned char op);
int nck_pkl_op_float_text(pkl_vm *vm, unsigned char op);
int nck_pkl_op_int_text(pkl_vm *vm, unsigned char op);
int nck_pkl_op_long_bin(pkl_vm *vm, unsigned char op);
int nck_pkl_op_none(pkl_vm *vm, unsigned char op);
int nck_pkl_op_str_bin(pkl_vm *vm, unsigned char op);
int nck_pkl_op_string_text(pkl_vm *vm, unsigned char op);
int nck_pkl_op_unicode_text(pkl_vm *vm, unsigned char op);

/* ---- pickle_obj.c: opcode handlers */
int nck_pkl_op_add_many(pkl_vm *vm, unsigned char op);
int nck_pkl_op_add_one(pkl_vm *vm, unsigned char op);
int nck_pkl_op_build(pkl_vm *vm, unsigned char op);
int nck_pkl_op_call(pkl_vm *vm, unsigned char op);
int nck_pkl_op_empty(pkl_vm *vm, unsigned char op);
int nck_pkl_op_frame(pkl_vm *vm, unsigned char op);
int nck_pkl_op_from_mark(pkl_vm *vm, unsigned char op);
int nck_pkl_op_get(pkl_vm *vm, unsigned char op);
int nck_pkl_op_global(pkl_vm *vm, unsigned char op);
int nck_pkl_op_mark(pkl_vm *vm, unsigned char op);
int nck_pkl_op_obj(pkl_vm *vm, unsigned char op);
int nck_pkl_op_persid(pkl_vm *vm, unsigned char op);
int nck_pkl_op_proto(pkl_vm *vm, unsigned char op);
int nck_pkl_op_put(pkl_vm *vm, unsigned char op);
int nck_pkl_op_readonly(pkl_vm *vm, unsigned char op);
int nck_pkl_op_stack(pkl_vm *vm, unsigned char op);
int nck_pkl_op_stack_global(pkl_vm *vm, unsigned char op);
int nck_pkl_op_stop(pkl_vm *vm, unsigned char op);
int nck_pkl_op_tuple_n(pkl_vm *vm, unsigned char op);
int nck_pkl_op_unsupported(pkl_vm *vm, unsigned char op);

#endif
