/* SPDX-License-Identifier: MIT */
/*
 * nck_vocab: the vocabulary size of a tokenizer artifact found in a NeMo
 * checkpoint (shared/spec/nemo-layouts.md §1.6, §4.1, §5.4), for views that
 * need vocab_size (HF config.json, TRT-LLM config) without Python; and a
 * SentencePiece model's special tokens (nck_vocab_sp_special, for hf/).
 *
 * Kinds and how they are counted:
 *   SENTENCEPIECE  a `.model` file: the protobuf `ModelProto` of
 *                  google/sentencepiece `src/sentencepiece_model.proto`; the
 *                  count is the number of `pieces` (field 1) at the top level,
 *                  as SentencePieceProcessor::GetPieceSize() reports.
 *   HF_JSON        a Hugging Face `tokenizer.json` (huggingface/tokenizers):
 *                  max id + 1 over `model.vocab` (an object token -> id, or a
 *                  Unigram list of [piece, score] whose ids are positions) and
 *                  `added_tokens[].id`.
 *   TXT            a WordPiece `vocab.txt`: the number of lines, as Python's
 *                  readlines() counts them (a last line without a newline
 *                  counts; nothing after a final newline does).
 *   JSON           a GPT-2 `vocab.json` (token -> id): max id + 1, which is
 *                  what the model's embedding table needs even with gaps.
 * Detection: by the name's suffix (".model", "tokenizer.json", ".txt",
 * ".json"), else by content (NeMo's `.qnemo` renames artifacts to names
 * like `tokenizer.vocab_file`): '{' means JSON (HF when it has a "model"
 * object), a well-formed protobuf with pieces means SentencePiece, NUL-free
 * UTF-8 text means TXT.
 *
 * Thread-safety: pure function; no state.
 */
#ifndef NCK_FORMAT_VOCAB_H
#define NCK_FORMAT_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"

typedef enum nck_vocab_kind {
	NCK_VOCAB_SENTENCEPIECE,
	NCK_VOCAB_HF_JSON,
	NCK_VOCAB_TXT,
	NCK_VOCAB_JSON,
} nck_vocab_kind;

/*
 * Counts the vocabulary of the artifact in data[0..len). `name` (its file
 * name, may be NULL) picks the kind by suffix and names it in messages.
 * On success sets *out and, if kind_out is not NULL, *kind_out.
 * Errors: -EBADMSG malformed (bad protobuf, bad JSON, negative or non-integer
 * ids, a SentencePiece model without pieces, content of no known kind; diag
 * has the offset where known); -ENOMEM.
 */
int nck_vocab_count(uint64_t *out, nck_vocab_kind *kind_out, const void *data, size_t len,
		    const char *name, nck_diag *diag);

/* A SentencePiece model's special tokens: ids (-1: none) and pieces. */
typedef struct nck_sp_special {
	int64_t unk, bos, eos, pad;      /* TrainerSpec unk_id (40), bos_id (41), eos_id (42), pad_id (43) */
	/* Their text: NUL-free UTF-8, "" when none, 64 bytes or longer, or not UTF-8. */
	char unk_piece[64], bos_piece[64], eos_piece[64], pad_piece[64];
	bool add_dummy_prefix;           /* NormalizerSpec add_dummy_prefix (3) */
	uint64_t pieces;                 /* number of pieces */
} nck_sp_special;

/*
 * Reads the special tokens of a SentencePiece ModelProto in data[0..len):
 * the ids from its trainer_spec (sentencepiece_model.proto defaults when
 * absent: unk 0, bos 1, eos 2, pad -1; an id outside the pieces becomes -1)
 * and those pieces' text. 0, or -EBADMSG (diag: offset) as nck_vocab_count.
 */
int nck_vocab_sp_special(nck_sp_special *out, const void *data, size_t len, const char *name,
			 nck_diag *diag);

/* One piece of a SentencePiece model (ModelProto.pieces, in id order). */
typedef struct nck_sp_piece {
	const char *text;  /* SentencePiece.piece (1): borrowed from the model, not NUL-terminated */
	size_t len;
	float score;       /* SentencePiece.score (2); 0 when absent */
	int32_t type;      /* SentencePiece.type (3): 1 NORMAL (default), 2 UNKNOWN, 3 CONTROL,
			    * 4 USER_DEFINED, 5 UNUSED, 6 BYTE */
} nck_sp_piece;

/* Walks the pieces of a model validated by nck_vocab_sp_iter_init. */
typedef struct nck_sp_iter {
	const unsigned char *p;
	size_t len, pos;
} nck_sp_iter;

/*
 * Starts a walk over the pieces of the SentencePiece ModelProto in
 * data[0..len) (borrowed: it must outlive the walk). The whole message is
 * validated first, as nck_vocab_count does: 0, or -EBADMSG (diag: offset).
 */
int nck_vocab_sp_iter_init(nck_sp_iter *it, const void *data, size_t len, const char *name,
			   nck_diag *diag);

/* The next piece: true with *out set, false after the last. Bounded: no
 * allocation, no recursion; a field of the wrong wire type is ignored. */
bool nck_vocab_sp_next(nck_sp_iter *it, nck_sp_piece *out);

#endif
