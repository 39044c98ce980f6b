/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the restricted pickle machine (src/format/pickle.c)
 * over arbitrary bytes, with tight limits so each run stays fast. An odd
 * first byte also installs a persistent-id callback. Accepted values are
 * walked (bounded, since they may share nodes or form cycles) to check their
 * shape: counts within capacities, strings NUL-terminated, depth consistent.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Persistent-id callback: keeps the id itself, refuses a None id. */
static int fuzz_persid(nck_pv **out, nck_pv *pid, void *payload)
{
	(void)payload;
	if (pid->kind == NCK_PV_NONE)
		return -ENOTSUP;
	*out = pid;
	return 0;
}

/* Checks one value and its children, visiting at most *budget nodes. */
static void fuzz_walk(const nck_pv *v, int depth, size_t *budget)
{
	int64_t i;

	if (!v)
		__builtin_trap();
	if (depth > 64 || *budget == 0)
		return;
	(*budget)--;
	switch (v->kind) {
	case NCK_PV_STR:
	case NCK_PV_BYTES:
	case NCK_PV_OPAQUE:
		if (v->str.s[v->str.len] != '\0')
			__builtin_trap();
		break;
	case NCK_PV_TUPLE:
	case NCK_PV_LIST:
	case NCK_PV_DICT: {
		size_t slots = v->kind == NCK_PV_DICT ? 2 * v->seq.n : v->seq.n;

		if (slots > v->seq.cap && slots)
			__builtin_trap();
		for (size_t k = 0; k < slots; k++)
			fuzz_walk(v->seq.items[k], depth + 1, budget);
		(void)nck_pv_dict_get(v, "key");
		(void)nck_pv_seq_get(v, 0);
		break;
	}
	case NCK_PV_GLOBAL:
		if (!v->global.module || !v->global.name)
			__builtin_trap();
		(void)nck_pv_is_global(v, "torch", "Size");
		break;
	case NCK_PV_CALL:
		fuzz_walk(v->call.callable, depth + 1, budget);
		fuzz_walk(v->call.args, depth + 1, budget);
		if (v->call.state)
			fuzz_walk(v->call.state, depth + 1, budget);
		if (v->call.kwargs)
			fuzz_walk(v->call.kwargs, depth + 1, budget);
		if (v->call.items)
			fuzz_walk(v->call.items, depth + 1, budget);
		(void)nck_pv_dict_get(v, "key");
		break;
	case NCK_PV_PERSID:
		fuzz_walk(v->persid, depth + 1, budget);
		break;
	default:
		(void)nck_pv_get_int(v, &i);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_pkl_limits lim = { .max_depth = 200, .max_items = 1 << 16, .max_bytes = 16 << 20 };
	nck_arena arena;
	nck_pv *root = NULL;
	nck_diag diag;
	size_t budget = 10000;
	int rc;

	nck_arena_init(&arena);
	nck_diag_init(&diag);
	rc = nck_pkl_parse_ex(&root, &arena, data, size, "fuzz.pkl", &lim,
			      size && (data[0] & 1) ? fuzz_persid : NULL, NULL, &diag);
	if (rc == 0)
		fuzz_walk(root, 0, &budget);
	else if (root || diag.code == 0 || diag.offset < 0 || (uint64_t)diag.offset > size)
		__builtin_trap();
	nck_arena_dispose(&arena);
	return 0;
}
