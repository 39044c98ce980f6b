/* SPDX-License-Identifier: MIT */
/*
 * Tokenizer vocabulary counter (see vocab.h).
 *
 * SentencePiece: a bounded walk over the protobuf wire format
 * (protobuf.dev "Encoding": varint, fixed64, length-delimited, fixed32;
 * groups are refused, SentencePiece never writes them). Top-level field 1
 * of ModelProto (`repeated SentencePiece pieces = 1`, google/sentencepiece
 * `src/sentencepiece_model.proto`) is counted, and each piece's bytes are
 * walked as a message too, so random bytes are not taken for a model. No
 * recursion, no allocation: every length is checked against what is left.
 *
 * JSON kinds are parsed with jansson; no json_t outlives nck_vocab_count().
 * Thread-safety: no shared state.
 */
#include "format/vocab.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

/* ModelProto.pieces: field 1 (sentencepiece_model.proto). */
#define VOCAB_SP_PIECES 1u
/* Largest protobuf field number (2^29 - 1, protobuf.dev "Field Numbers"). */
#define VOCAB_PB_MAX_FIELD 0x1fffffffu

/* ---- protobuf ------------------------------------------------------------- */

/* Reads a varint at *pos; false when truncated or wider than 64 bits. */
static bool vocab_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		unsigned char b;

		if (*pos >= len)
			return false;
		b = p[(*pos)++];
		/* The tenth byte may only carry the 64th bit. */
		if (shift == 63 && b > 1)
			return false;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

/*
 * Walks the fields of one message in p[0..len). When `count` is not NULL,
 * counts field VOCAB_SP_PIECES (which must be length-delimited) and walks
 * each one as a nested message. Returns 0, or -EBADMSG with *bad set to the
 * offset of the faulty field (relative to p).
 */
static int vocab_pb_walk(const unsigned char *p, size_t len, uint64_t *count, size_t *bad)
{
	size_t pos = 0, at = 0, inner = 0;
	uint64_t tag, v;

	while (pos < len) {
		at = pos;
		if (!vocab_varint(p, len, &pos, &tag) || (tag >> 3) == 0 ||
		    (tag >> 3) > VOCAB_PB_MAX_FIELD)
			goto bad;
		if (count && (tag >> 3) == VOCAB_SP_PIECES && (tag & 7) != 2)
			goto bad;
		switch (tag & 7) {
		case 0: /* varint */
			if (!vocab_varint(p, len, &pos, &v))
				goto bad;
			break;
		case 1: /* fixed64 */
		case 5: /* fixed32 */
			if (len - pos < ((tag & 7) == 1 ? 8u : 4u))
				goto bad;
			pos += (tag & 7) == 1 ? 8u : 4u;
			break;
		case 2: /* length-delimited */
			if (!vocab_varint(p, len, &pos, &v) || v > len - pos)
				goto bad;
			if (count && (tag >> 3) == VOCAB_SP_PIECES) {
				if (vocab_pb_walk(p + pos, (size_t)v, NULL, &inner) < 0) {
					*bad = pos + inner;
					return -EBADMSG;
				}
				(*count)++;
			}
			pos += (size_t)v;
			break;
		default: /* groups (3, 4) and the unused wire types 6, 7 */
			goto bad;
		}
	}
	return 0;
bad:
	*bad = at;
	return -EBADMSG;
}

/* Counts the pieces of a SentencePiece ModelProto. */
static int vocab_sentencepiece(uint64_t *out, const unsigned char *p, size_t len, const char *name,
			       nck_diag *diag)
{
	uint64_t n = 0;
	size_t bad = 0;

	if (vocab_pb_walk(p, len, &n, &bad) < 0)
		return nck_diag_set(diag, -EBADMSG, name, (int64_t)bad,
				    "not a SentencePiece model: bad protobuf field");
	if (n == 0)
		return nck_diag_set(diag, -EBADMSG, name, 0,
				    "not a SentencePiece model: no pieces");
	*out = n;
	return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

/* Raises *max_plus to id + 1 for a JSON integer id >= 0; false if it is not one. */
static bool vocab_id(const json_t *id, uint64_t *max_plus)
{
	json_int_t v;

	if (!json_is_integer(id) || (v = json_integer_value(id)) < 0)
		return false;
	if ((uint64_t)v + 1 > *max_plus)
		*max_plus = (uint64_t)v + 1;
	return true;
}

/* max id + 1 over an object token -> id. */
static int vocab_json_map(uint64_t *out, const json_t *map, const char *what, const char *name,
			  nck_diag *diag)
{
	uint64_t max_plus = 0;
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)map, key, v) {
		if (!vocab_id(v, &max_plus))
			return nck_diag_set(diag, -EBADMSG, name, -1,
					    "%s: id of token '%s' is not a non-negative integer", what,
					    key);
	}
	*out = max_plus;
	return 0;
}

/* tokenizer.json: max id + 1 over model.vocab and added_tokens. */
static int vocab_hf(uint64_t *out, const json_t *root, const char *name, nck_diag *diag)
{
	const json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
	const json_t *added = json_object_get(root, "added_tokens");
	uint64_t max_plus = 0;
	size_t i;
	int rc;

	if (json_is_object(vocab)) {
		if ((rc = vocab_json_map(&max_plus, vocab, "model.vocab", name, diag)) < 0)
			return rc;
	} else if (json_is_array(vocab)) {
		/* Unigram: a list of [piece, score]; ids are the positions. */
		max_plus = json_array_size(vocab);
	} else {
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: model.vocab is missing");
	}
	if (added && !json_is_null(added) && !json_is_array(added))
		return nck_diag_set(diag, -EBADMSG, name, -1,
				    "tokenizer.json: added_tokens is not a list");
	for (i = 0; i < json_array_size(added); i++) {
		if (!vocab_id(json_object_get(json_array_get(added, i), "id"), &max_plus))
			return nck_diag_set(diag, -EBADMSG, name, -1,
					    "tokenizer.json: added_tokens[%zu] has no valid id", i);
	}
	*out = max_plus;
	return 0;
}

/* Parses JSON and counts it as tokenizer.json (`hf`, or a "model" object
 * when `sniff`) or as a GPT-2 vocab.json. */
static int vocab_json(uint64_t *out, nck_vocab_kind *kind, const void *data, size_t len, bool hf,
		      const char *name, nck_diag *diag)
{
	json_error_t jerr;
	json_t *root = json_loadb(data, len, 0, &jerr);
	int rc;

	if (!root)
		return nck_diag_set(diag, -EBADMSG, name, jerr.position, "bad JSON: %s", jerr.text);
	if (!json_is_object(root)) {
		rc = nck_diag_set(diag, -EBADMSG, name, 0, "vocabulary JSON is not an object");
	} else if (hf || json_is_object(json_object_get(root, "model"))) {
		*kind = NCK_VOCAB_HF_JSON;
		rc = vocab_hf(out, root, name, diag);
	} else {
		*kind = NCK_VOCAB_JSON;
		rc = vocab_json_map(out, root, "vocab.json", name, diag);
	}
	json_decref(root);
	return rc;
}

/* ---- text ----------------------------------------------------------------- */

/* Lines as readlines() splits them on '\n'. */
static uint64_t vocab_lines(const unsigned char *p, size_t len)
{
	uint64_t n = 0;
	const unsigned char *nl;
	size_t pos = 0;

	while (pos < len && (nl = memchr(p + pos, '\n', len - pos)) != NULL) {
		n++;
		pos = (size_t)(nl - p) + 1;
	}
	return n + (pos < len);
}

/* Continuation bytes after UTF-8 lead byte b; 4 when b cannot lead. */
static size_t vocab_utf8_tail(unsigned char b)
{
	if (b < 0x80)
		return 0;
	if (b >= 0xC2 && b < 0xE0)
		return 1;
	if (b >= 0xE0 && b < 0xF0)
		return 2;
	if (b >= 0xF0 && b < 0xF5)
		return 3;
	return 4;
}

/* True for NUL-free, well-formed UTF-8 (RFC 3629: no overlongs, surrogates
 * or code points past U+10FFFF). */
static bool vocab_is_text(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char b = p[i], lo = 0x80, hi = 0xBF;
		size_t n = vocab_utf8_tail(b);

		if (b == 0 || n == 4 || len - i - 1 < n)
			return false;
		if (b == 0xE0)
			lo = 0xA0;
		else if (b == 0xED)
			hi = 0x9F;
		else if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;
		for (size_t k = 1; k <= n; k++, lo = 0x80, hi = 0xBF)
			if (p[i + k] < lo || p[i + k] > hi)
				return false;
		i += n + 1;
	}
	return true;
}

/* ---- detection ------------------------------------------------------------ */

/* True when `name` ends with `suffix`. */
static bool vocab_suffix(const char *name, const char *suffix)
{
	size_t n = name ? strlen(name) : 0, s = strlen(suffix);

	return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* The first byte that is not JSON whitespace, or -1. */
static int vocab_first(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return p[i];
	return -1;
}

/* Picks the kind from content alone (names without a known suffix). */
static int vocab_sniff(uint64_t *out, nck_vocab_kind *kind, const unsigned char *p, size_t len,
		       const char *name, nck_diag *diag)
{
	uint64_t n = 0;
	size_t bad;

	if (vocab_first(p, len) == '{')
		return vocab_json(out, kind, p, len, false, name, diag);
	/* protobuf writes fields in number order, so a model starts with a piece. */
	if (len > 0 && p[0] == (VOCAB_SP_PIECES << 3 | 2) && vocab_pb_walk(p, len, &n, &bad) == 0) {
		*kind = NCK_VOCAB_SENTENCEPIECE;
		*out = n;
		return 0;
	}
	if (vocab_is_text(p, len)) {
		*kind = NCK_VOCAB_TXT;
		*out = vocab_lines(p, len);
		return 0;
	}
	return nck_diag_set(diag, -EBADMSG, name, 0, "not a known tokenizer vocabulary format");
}

int nck_vocab_count(uint64_t *out, nck_vocab_kind *kind_out, const void *data, size_t len,
		    const char *name, nck_diag *diag)
{
	const unsigned char *p = data ? data : (const void *)"";
	nck_vocab_kind kind = NCK_VOCAB_TXT;
	uint64_t n = 0;
	int rc;

	*out = 0;
	if (!data)
		len = 0;
	if (vocab_suffix(name, ".model")) {
		kind = NCK_VOCAB_SENTENCEPIECE;
		rc = vocab_sentencepiece(&n, p, len, name, diag);
	} else if (vocab_suffix(name, "tokenizer.json")) {
		rc = vocab_json(&n, &kind, p, len, true, name, diag);
	} else if (vocab_suffix(name, ".json")) {
		rc = vocab_json(&n, &kind, p, len, false, name, diag);
	} else if (vocab_suffix(name, ".txt")) {
		n = vocab_lines(p, len);
		rc = 0;
	} else {
		rc = vocab_sniff(&n, &kind, p, len, name, diag);
	}
	if (rc < 0)
		return rc;
	*out = n;
	if (kind_out)
		*kind_out = kind;
	return 0;
}

/* ---- SentencePiece special tokens ---------------------------------------- */

/* TrainerSpec (ModelProto field 2) and NormalizerSpec (field 3) fields. */
#define VOCAB_SP_TRAINER 2u
#define VOCAB_SP_NORMALIZER 3u
#define VOCAB_SP_UNK_ID 40u
#define VOCAB_SP_BOS_ID 41u
#define VOCAB_SP_EOS_ID 42u
#define VOCAB_SP_PAD_ID 43u
#define VOCAB_SP_DUMMY_PREFIX 3u
/* SentencePiece.piece: field 1 of a piece. */
#define VOCAB_SP_PIECE_TEXT 1u

/* One field of a message: its number, wire type, and value (a varint, or
 * the bytes of a length-delimited field). */
typedef struct vocab_field {
	uint32_t num, wire;
	uint64_t v;
	const unsigned char *data;
	size_t len;
} vocab_field;

/* Reads the field at *pos: false at the end or at a field that does not
 * fit (nested messages are not validated by vocab_pb_walk, so every length
 * is checked here too). f->v is set for varint and length-delimited fields
 * only. */
static bool vocab_next(const unsigned char *p, size_t len, size_t *pos, vocab_field *f)
{
	uint64_t tag;

	if (*pos >= len || !vocab_varint(p, len, pos, &tag))
		return false;
	f->num = (uint32_t)(tag >> 3);
	f->wire = (uint32_t)(tag & 7);
	f->data = NULL;
	f->len = 0;
	switch (f->wire) {
	case 0:
		return vocab_varint(p, len, pos, &f->v);
	case 1:
	case 5:
		*pos += f->wire == 1 ? 8u : 4u;
		return *pos <= len;
	case 2:
		if (!vocab_varint(p, len, pos, &f->v) || f->v > len - *pos)
			return false;
		f->data = p + *pos;
		f->len = (size_t)f->v;
		*pos += (size_t)f->v;
		return true;
	default:
		return false;
	}
}

/* The ids of the trainer spec and the normalizer's add_dummy_prefix. */
static void vocab_sp_ids(nck_sp_special *out, const vocab_field *f)
{
	size_t pos = 0;
	vocab_field g;

	while (vocab_next(f->data, f->len, &pos, &g)) {
		int64_t v;

		if (g.wire != 0)
			continue;
		v = (int64_t)(int32_t)(uint32_t)g.v; /* int32 fields: sign-extended varints */
		if (f->num == VOCAB_SP_NORMALIZER) {
			if (g.num == VOCAB_SP_DUMMY_PREFIX)
				out->add_dummy_prefix = g.v != 0;
			continue;
		}
		if (g.num == VOCAB_SP_UNK_ID)
			out->unk = v;
		else if (g.num == VOCAB_SP_BOS_ID)
			out->bos = v;
		else if (g.num == VOCAB_SP_EOS_ID)
			out->eos = v;
		else if (g.num == VOCAB_SP_PAD_ID)
			out->pad = v;
	}
}

/* Copies the text of piece message f into dst (empty if 64 bytes or longer,
 * or not NUL-free UTF-8, so that it can go into JSON as it is). */
static void vocab_sp_piece(char dst[64], const vocab_field *f)
{
	size_t pos = 0;
	vocab_field g;

	dst[0] = '\0';
	while (vocab_next(f->data, f->len, &pos, &g)) {
		if (g.num == VOCAB_SP_PIECE_TEXT && g.wire == 2 && g.len < 64 &&
		    vocab_is_text(g.data, g.len)) {
			memcpy(dst, g.data, g.len);
			dst[g.len] = '\0';
			return;
		}
	}
}

int nck_vocab_sp_special(nck_sp_special *out, const void *data, size_t len, const char *name,
			 nck_diag *diag)
{
	const unsigned char *p = data ? data : (const void *)"";
	int64_t *ids[4] = { &out->unk, &out->bos, &out->eos, &out->pad };
	char *pieces[4] = { out->unk_piece, out->bos_piece, out->eos_piece, out->pad_piece };
	size_t pos = 0;
	uint64_t k = 0;
	vocab_field f;
	int rc;

	memset(out, 0, sizeof(*out));
	out->unk = 0; /* sentencepiece_model.proto defaults */
	out->bos = 1;
	out->eos = 2;
	out->pad = -1;
	out->add_dummy_prefix = true;
	if ((rc = vocab_sentencepiece(&out->pieces, p, data ? len : 0, name, diag)) < 0)
		return rc;
	while (vocab_next(p, len, &pos, &f))
		if ((f.num == VOCAB_SP_TRAINER || f.num == VOCAB_SP_NORMALIZER) && f.wire == 2)
			vocab_sp_ids(out, &f);
	for (int i = 0; i < 4; i++)
		if (*ids[i] < 0 || (uint64_t)*ids[i] >= out->pieces)
			*ids[i] = -1;
	pos = 0;
	while (vocab_next(p, len, &pos, &f)) {
		if (f.num != VOCAB_SP_PIECES || f.wire != 2)
			continue;
		for (int i = 0; i < 4; i++)
			if (*ids[i] >= 0 && (uint64_t)*ids[i] == k)
				vocab_sp_piece(pieces[i], &f);
		k++;
	}
	return 0;
}

/* ---- SentencePiece pieces ------------------------------------------------- */

/* SentencePiece fields: score (2, float), type (3, enum); NORMAL is type 1. */
#define VOCAB_SP_PIECE_SCORE 2u
#define VOCAB_SP_PIECE_TYPE 3u
#define VOCAB_SP_NORMAL 1

int nck_vocab_sp_iter_init(nck_sp_iter *it, const void *data, size_t len, const char *name,
			   nck_diag *diag)
{
	const unsigned char *p = data ? data : (const void *)"";
	uint64_t n = 0;
	int rc;

	memset(it, 0, sizeof(*it));
	if ((rc = vocab_sentencepiece(&n, p, data ? len : 0, name, diag)) < 0)
		return rc;
	it->p = p;
	it->len = data ? len : 0;
	return 0;
}

/* Fills piece *out from the fields of piece message f. */
static void vocab_sp_fields(nck_sp_piece *out, const vocab_field *f)
{
	size_t pos = 0;
	vocab_field g;

	out->text = "";
	out->len = 0;
	out->score = 0.0f;
	out->type = VOCAB_SP_NORMAL;
	while (vocab_next(f->data, f->len, &pos, &g)) {
		if (g.num == VOCAB_SP_PIECE_TEXT && g.wire == 2) {
			out->text = (const char *)g.data;
			out->len = g.len;
		} else if (g.num == VOCAB_SP_PIECE_SCORE && g.wire == 5) {
			/* fixed32: the float's bits, little-endian (the walk checked 4 bytes) */
			const unsigned char *b = f->data + pos - 4;
			uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
				     (uint32_t)b[3] << 24;

			memcpy(&out->score, &u, sizeof(u));
		} else if (g.num == VOCAB_SP_PIECE_TYPE && g.wire == 0) {
			out->type = (int32_t)(uint32_t)g.v;
		}
	}
}

bool nck_vocab_sp_next(nck_sp_iter *it, nck_sp_piece *out)
{
	vocab_field f;

	while (it->p && vocab_next(it->p, it->len, &it->pos, &f)) {
		if (f.num == VOCAB_SP_PIECES && f.wire == 2) {
			vocab_sp_fields(out, &f);
			return true;
		}
	}
	return false;
}
