/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the byte-level BPE tokenizer.json reader: the input
 * as the tokenizer.json, and its second half as the tokenizer_config.json
 * of the first half, for a small vocabulary and a large one. What it
 * returns must hold: texts inside V ids, types in range, merges inside
 * their buffer, special ids below V or -1.
 */
#include <stddef.h>
#include <stdint.h>

#include "format/hftok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const nck_hftok *t, uint64_t V)
{
	const int64_t ids[4] = {t->bos, t->eos, t->unk, t->pad};

	if (t->n != V)
		__builtin_trap();
	for (uint64_t i = 0; i < V; i++)
		if (t->type[i] < 1 || t->type[i] > 5 || (!t->text[i] && t->type[i] != NCK_HFTOK_UNUSED) ||
		    t->len[i] > NCK_HFTOK_MAX_TOKEN)
			__builtin_trap();
	for (size_t i = 0; i < t->n_merges; i++)
		if (t->merge_off[i] > t->merge_off[i + 1])
			__builtin_trap();
	for (int i = 0; i < 4; i++)
		if (ids[i] < -1 || (ids[i] >= 0 && (uint64_t)ids[i] >= V))
			__builtin_trap();
	if (t->add_bos < -1 || t->add_bos > 1 || t->add_eos < -1 || t->add_eos > 1)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t vs[] = {1, 300, 70000};
	nck_diag diag;
	nck_hftok t;

	for (size_t k = 0; k < sizeof(vs) / sizeof(vs[0]); k++) {
		for (int half = 0; half < 2; half++) {
			size_t n = half ? size / 2 : size;

			nck_diag_init(&diag);
			if (nck_hftok_parse(&t, data, n, half ? data + n : NULL, size - n, vs[k],
					    "tokenizer.json", &diag) == 0)
				check(&t, vs[k]);
			else if (diag.code == 0 || t.root || t.text)
				__builtin_trap();
			nck_hftok_free(&t);
		}
	}
	return 0;
}
