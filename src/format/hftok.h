/* SPDX-License-Identifier: MIT */
/*
 * nck_hftok: a Hugging Face tokenizer.json (huggingface/tokenizers) with a
 * byte-level BPE model, read as llama.cpp's convert_hf_to_gguf.py reads it
 * for a "gpt2" vocabulary (get_vocab_base, gguf-py SpecialVocab), for gguf/.
 *
 *   tokens     ids 0..V-1: model.vocab (token -> id) and added_tokens[]
 *              (an added token's content wins over the vocab's for its id);
 *              an id nothing names is a filler (text NULL: "[PAD<i>]")
 *   types      NORMAL 1, CONTROL 3 (an added token with "special": true),
 *              USER_DEFINED 4 (another added token), UNUSED 5 (fillers)
 *   merges     model.merges, "a b" strings as they are, or [a, b] pairs
 *              joined by a space with spaces inside a part written U+0120
 *              (gguf-py's encoding of transformers >= 4.45's pair form)
 *   pre        "llama-bpe" when the pre_tokenizer splits with Llama 3's
 *              regex, else "default"
 *   special    bos/eos/unk/pad from tokenizer_config.json's <typ>_token (a
 *              string or {"content": ...}) resolved against added_tokens, as
 *              SpecialVocab does; add_bos_token / add_eos_token when booleans
 *
 * Bounds: the input is untrusted. Ids must be below V (the model's
 * vocabulary, as the converter asserts), a token at most
 * NCK_HFTOK_MAX_TOKEN bytes, merges at most NCK_HFTOK_MAX_MERGES; anything
 * else malformed is -EBADMSG with a one-line diag naming the file.
 *
 * Ownership: the result owns its memory (nck_hftok_free). Thread-safety:
 * pure functions; no state.
 */
#ifndef NCK_FORMAT_HFTOK_H
#define NCK_FORMAT_HFTOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"

#define NCK_HFTOK_MAX_TOKEN  65536u
#define NCK_HFTOK_MAX_MERGES (16u << 20)
#define NCK_HFTOK_MAX_VOCAB  (16u << 20)

/* Token types (gguf-py TokenType). */
enum { NCK_HFTOK_NORMAL = 1, NCK_HFTOK_CONTROL = 3, NCK_HFTOK_USER = 4, NCK_HFTOK_UNUSED = 5 };

typedef struct nck_hftok {
	uint64_t n;		/* ids 0..n-1 (V) */
	const char **text;	/* per id: the token's bytes, or NULL (a filler) */
	size_t *len;		/* per id: their length */
	uint8_t *type;		/* per id: NCK_HFTOK_* */
	char *merge_buf;	/* the merges' bytes, back to back */
	size_t *merge_off;	/* merge i is merge_buf[merge_off[i], merge_off[i+1]) */
	size_t n_merges;
	const char *pre;	/* "llama-bpe" or "default" (static) */
	int64_t bos, eos, unk, pad; /* -1: none */
	int add_bos, add_eos;	/* -1: not said, else 0 / 1 */
	void *root;		/* the parsed JSON the texts point into */
} nck_hftok;

/*
 * Reads the BPE vocabulary of the tokenizer.json in json[0..len) for V ids,
 * with the tokenizer_config.json in cfg[0..cfg_len) (cfg may be NULL).
 * `name` names the file in messages. 0, or: -ENOTSUP (a model that is not
 * BPE: WordLevel, Unigram, WordPiece; diag says which), -EBADMSG
 * (malformed, an id >= V, a bound passed; diag), -ENOMEM. On failure *out
 * holds nothing to free.
 */
int nck_hftok_parse(nck_hftok *out, const void *json, size_t len, const void *cfg,
		    size_t cfg_len, uint64_t V, const char *name, nck_diag *diag);

/* Frees what nck_hftok_parse made. NULL-safe, idempotent. */
void nck_hftok_free(nck_hftok *t);

#endif
