/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the tokenizer vocabulary counter: the same bytes
 * under every name suffix (SentencePiece, tokenizer.json, vocab.txt,
 * vocab.json) and under a name that forces detection by content; and the
 * SentencePiece special-token reader (ids inside the pieces, pieces
 * NUL-terminated).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format/vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "x_tokenizer.model", "tokenizer.json", "vocab.txt",
					     "vocab.json", "tokenizer.vocab_file" };
	nck_vocab_kind kind;
	uint64_t n, pieces = 0;
	nck_diag diag;
	nck_sp_special sp;
	nck_sp_iter it;
	nck_sp_piece p;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		nck_diag_init(&diag);
		if (nck_vocab_count(&n, &kind, data, size, names[i], &diag) == 0) {
			/* Pieces and lines are bounded by the input's size. */
			if ((kind == NCK_VOCAB_SENTENCEPIECE || kind == NCK_VOCAB_TXT) && n > size)
				__builtin_trap();
		} else if (diag.code == 0 || n != 0) {
			__builtin_trap();
		}
	}
	nck_diag_init(&diag);
	if (nck_vocab_sp_special(&sp, data, size, "x.model", &diag) == 0) {
		const int64_t ids[4] = { sp.unk, sp.bos, sp.eos, sp.pad };
		const char *texts[4] = { sp.unk_piece, sp.bos_piece, sp.eos_piece, sp.pad_piece };

		for (int i = 0; i < 4; i++)
			if (ids[i] < -1 || (ids[i] >= 0 && (uint64_t)ids[i] >= sp.pieces) ||
			    !memchr(texts[i], '\0', sizeof(sp.unk_piece))) /* NUL-terminated inside */
				__builtin_trap();
	} else if (diag.code == 0) {
		__builtin_trap();
	}
	nck_diag_init(&diag);
	if (nck_vocab_sp_iter_init(&it, data, size, "t.model", &diag) == 0) {
		/* Every piece lies inside the input; as many as the counter finds. */
		while (nck_vocab_sp_next(&it, &p)) {
			if (p.len > size || (p.len && ((const uint8_t *)p.text < data ||
						       (const uint8_t *)p.text + p.len > data + size)))
				__builtin_trap();
			pieces++;
		}
		if (nck_vocab_count(&n, &kind, data, size, "t.model", NULL) != 0 || n != pieces)
			__builtin_trap();
	} else if (nck_vocab_sp_next(&it, &p)) {
		__builtin_trap();
	}
	return 0;
}
