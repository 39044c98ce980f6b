/* SPDX-License-Identifier: MIT */
/*
 * gguf/: the checkpoint as GGUF v3 files that llama.cpp loads
 * (shared/spec/gguf-nvfp4.md Part 1; ggml-org/ggml docs/gguf.md):
 *
 *   model-BF16.gguf  model-F16.gguf  model-Q8_0.gguf  model-Q4_0.gguf
 *
 * One file = header (magic, version 3, counts), the metadata a Llama
 * conversion writes (1.6: general.*, llama.*, a SentencePiece vocabulary as
 * tokenizer.ggml.*), tensor infos, zero padding to general.alignment (32),
 * then each tensor padded to 32. Tensors are the hf/ view's (gpt.h row
 * cuts) under llama.cpp's names (1.7), with attn_q and attn_k rows permuted
 * from the rotate-half order to ggml's adjacent pairs (1.9) by a row
 * mapping read when needed (one segment per tensor, not one per row). Which type:
 * 1-D tensors (norms, biases) F32, widened exactly (1.7 rule 2); 2-D ones
 * the file's type, F16 when a row is not whole Q8_0/Q4_0 blocks (rule 4).
 * Q4_0 is quantized as `llama-quantize --pure` types it (every 2-D weight).
 *
 * Bytes: BF16 of a bf16 model are windows of the source (zero-copy; Q and
 * K rows are copied, one row read at a time); F32,
 * F16 and BF16 of other dtypes are converted when read (FN segments, no
 * cache: elementwise); Q8_0 and Q4_0 blocks are computed per tensor through
 * the quantization cache (qcache.h), so listing computes nothing and memory
 * stays bounded. Every size and offset is fixed when the view is built.
 *
 * Ownership: the set owns the headers and the per-tensor state (freed by
 * its free_priv, which also forgets cached blocks). Thread-safety: built
 * once; the read callbacks are thread-safe.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/gather.h"
#include "container/container.h"
#include "format/hftok.h"
#include "format/vocab.h"
#include "nemockpt/catalog.h"
#include "nemockpt/log.h"
#include "quant/ggml.h"
#include "util/grow.h"
#include "view/gpt.h"
#include "view/qcache.h"
#include "view/viewset.h"

#define GGUF_VERSION	     3u
#define GGUF_ALIGN	     32u /* general.alignment (GGUF_DEFAULT_ALIGNMENT) */
#define GGUF_QUANT_VERSION   2u	 /* GGML_QUANT_VERSION */
#define GGUF_DEFAULT_MAX_POS 4096
/* Elements converted at a time by a read (bounded scratch). */
#define GGUF_CHUNK 16384u
/* Largest tokenizer_config.json read beside a tokenizer.json. */
#define GGUF_TOKCFG_MAX (4u << 20)

/* GGUF value types (1.2). */
enum { GV_U8 = 0, GV_U32 = 4, GV_I32 = 5, GV_F32 = 6, GV_BOOL = 7, GV_STR = 8, GV_ARR = 9 };
/* Token types (gguf-py TokenType) used here. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_UNUSED = 5, TT_BYTE = 6 };

/* The files: name, type of 2-D weights, general.file_type (1.8). */
static const struct gguf_file {
	const char *name;
	uint32_t wtype, ftype;
} gguf_files[] = {
    {"model-BF16.gguf", NCK_GGML_BF16, 32},
    {"model-F16.gguf", NCK_GGML_F16, 1},
    {"model-Q8_0.gguf", NCK_GGML_Q8_0, 7},
    {"model-Q4_0.gguf", NCK_GGML_Q4_0, 2},
};
#define GGUF_N_FILES (sizeof(gguf_files) / sizeof(gguf_files[0]))

/* A tensor of the model (build time). */
typedef struct gguf_tensor {
	char name[64];
	nck_gpt_cut cut;
	uint32_t ndim;
	uint64_t ne[2]; /* ggml order: ne[0] is the row length */
	int perm;	/* attn_q (0) or attn_k (1): rows permuted (no pieces); -1 */
} gguf_tensor;

/* The rows of attn_q / attn_k in ggml's rotary order, read from the QKV. */
typedef struct gguf_perm {
	const nck_gpt_model *gm;
	const nck_tensor *t; /* the QKV weight or bias */
	int kind;	     /* 0 query heads, 1 key heads */
	uint64_t rb;	     /* bytes of a row (an element for a bias) */
} gguf_perm;

/* A tensor of one file: what its read callbacks need (lives with the set). */
typedef struct gguf_out {
	nck_layout src;	 /* the source bytes (unquantized types) */
	nck_dtype dtype; /* of the source */
	uint32_t type;	 /* ggml type */
	nck_qslice q;	 /* Q8_0 / Q4_0: the slice the cache computes */
	gguf_perm perm;	 /* attn_q / attn_k: what gguf_fn_perm reads */
	nck_qcache *qc;
	bool quantized;
} gguf_out;

typedef struct gguf_priv {
	gguf_out *outs;
	size_t n;
} gguf_priv;

typedef struct gguf_build {
	nck_viewset *vs;
	const nck_view_ctx *ctx;
	const nck_gpt_model *gm;
	uint64_t vocab;
	gguf_tensor *t;
	size_t n, cap;
	bool nomem;
	gguf_priv *priv;
	size_t used; /* outs handed out */
	const float *rope; /* rope_freqs.weight (owned by the set), or NULL */
	uint64_t n_rope;
	nck_hftok hf;	   /* a byte-level BPE tokenizer.json's vocabulary */
	bool have_hf;
} gguf_build;

/* ---- which models ------------------------------------------------------------ */

int nck_gguf_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P, char *why,
		   size_t why_len)
{
	const nck_gpt_model *gm = ctx->gpt;
	int rc;

	if ((rc = nck_hf_check(ctx, kind, 0, 0, why, why_len)) < 0)
		return rc;
	if (gm->d % 2) {
		snprintf(why, why_len,
			 "the head dim is odd (llama.cpp's rotary pairs need it even)");
		return -EINVAL;
	}
	if (gm->L > UINT32_MAX || gm->h > UINT32_MAX || gm->f > UINT32_MAX || gm->n > UINT32_MAX ||
	    gm->d > UINT32_MAX) {
		snprintf(why, why_len, "a dimension does not fit GGUF's uint32 metadata");
		return -EINVAL;
	}
	if ((T || P) && (T != 1 || P != 1)) {
		snprintf(why, why_len, "gguf/ has one layout");
		return -EINVAL;
	}
	return 0;
}

/* ---- tensors ------------------------------------------------------------------ */

/* Starts a tensor named `part` (layer < 0) or blk.<layer>.<part>. */
static gguf_tensor *gguf_add(gguf_build *b, const nck_tensor *src, int64_t layer, const char *part)
{
	gguf_tensor *t;

	if (!src)
		return NULL;
	if (nck_grow((void **)&b->t, &b->cap, b->n, sizeof(*t), 64) < 0) {
		b->nomem = true;
		return NULL;
	}
	t = &b->t[b->n++];
	memset(t, 0, sizeof(*t));
	if (layer < 0)
		snprintf(t->name, sizeof(t->name), "%s", part);
	else
		snprintf(t->name, sizeof(t->name), "blk.%lld.%s", (long long)layer, part);
	nck_gpt_cut_init(&t->cut, src);
	t->perm = -1;
	return t;
}

/* Rows [row0, row0+rows) of src. */
static void gguf_rows(gguf_build *b, const nck_tensor *src, int64_t layer, const char *part,
		      uint64_t row0, uint64_t rows)
{
	gguf_tensor *t = gguf_add(b, src, layer, part);

	if (t)
		nck_gpt_cut_rows(&t->cut, row0, rows, false);
}

/* The whole of src. */
/*
 * Adds `part` of src as row pieces, as hf/ does, except attn_q and attn_k:
 * they keep the QKV's query or key rows as a mapping read by gguf_fn_perm
 * (Megatron's group order, B.2, to ggml's rotary order, 1.9), so a large
 * model's tables do not hold one segment per row.
 */
static void gguf_part(gguf_build *b, const nck_tensor *src, int64_t layer, const char *part,
		      nck_gpt_part which)
{
	gguf_tensor *t = gguf_add(b, src, layer, part);

	if (!t)
		return;
	if (which == NCK_GPT_PART_Q || which == NCK_GPT_PART_K) {
		t->perm = which == NCK_GPT_PART_Q ? 0 : 1;
		t->cut.rows = (which == NCK_GPT_PART_Q ? b->gm->n : b->gm->G) * b->gm->d;
		return;
	}
	nck_gpt_cut_part(&t->cut, b->gm, which);
}

/* The tensors of layer g under llama.cpp's names. */
static void gguf_layer(gguf_build *b, uint64_t layer)
{
	for (size_t i = 0; i < nck_gpt_n_layer_exports; i++) {
		const nck_gpt_export *x = &nck_gpt_layer_exports[i];

		gguf_part(b, b->gm->layer[layer][x->role], (int64_t)layer, x->gguf, x->part);
	}
}

/* Every tensor in model order, with its ggml shape. */
static int gguf_tensors(gguf_build *b)
{
	const nck_gpt_model *gm = b->gm;

	gguf_rows(b, gm->emb, -1, "token_embd.weight", 0, b->vocab);
	for (uint64_t g = 0; g < gm->L; g++)
		gguf_layer(b, g);
	gguf_part(b, gm->ln_f_w, -1, "output_norm.weight", NCK_GPT_PART_ALL);
	gguf_rows(b, gm->lm_head, -1, "output.weight", 0, b->vocab);
	for (size_t i = 0; i < b->n; i++) {
		gguf_tensor *t = &b->t[i];

		b->nomem |= t->cut.nomem;
		t->ndim = t->cut.src->ndim == 2 ? 2 : 1;
		t->ne[0] = t->ndim == 2 ? t->cut.ncols : t->cut.rows;
		t->ne[1] = t->ndim == 2 ? t->cut.rows : 1;
	}
	return b->nomem ? -ENOMEM : 0;
}

/* The type of tensor t in a file of 2-D type wtype (1.7). */
static uint32_t gguf_type(const gguf_tensor *t, uint32_t wtype)
{
	if (t->ndim == 1)
		return NCK_GGML_F32;
	if ((wtype == NCK_GGML_Q8_0 || wtype == NCK_GGML_Q4_0) && t->ne[0] % NCK_GGML_QK)
		return NCK_GGML_F16;
	return wtype;
}

/* ---- reading ------------------------------------------------------------------ */

static size_t gguf_type_size(uint32_t type)
{
	return type == NCK_GGML_F32 ? 4 : 2;
}

/* Bytes [pos, pos+len) of an elementwise-converted tensor, a chunk at a time. */
static int gguf_fn_convert(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			   size_t len)
{
	const gguf_out *o = arg;
	size_t si = nck_dtype_size(o->dtype), so = gguf_type_size(o->type);
	uint64_t e0 = pos / so, e1 = (pos + len + so - 1) / so;
	unsigned char *in = malloc((size_t)GGUF_CHUNK * si), *out = malloc((size_t)GGUF_CHUNK * so);
	int rc = in && out ? 0 : -ENOMEM;

	for (uint64_t e = e0; e < e1 && rc == 0; e += GGUF_CHUNK) {
		uint64_t k = e1 - e < GGUF_CHUNK ? e1 - e : GGUF_CHUNK;
		uint64_t a = e * so > pos ? e * so : pos;
		uint64_t z = (e + k) * so < pos + len ? (e + k) * so : pos + len;

		if ((rc = nck_layout_read(cat, &o->src, e * si, in, (size_t)(k * si))) == 0 &&
		    (rc = nck_ggml_convert(out, o->type, in, o->dtype, (size_t)k)) == 0)
			memcpy((unsigned char *)buf + (a - pos), out + (a - e * so),
			       (size_t)(z - a));
	}
	free(in);
	free(out);
	return rc;
}

/* Bytes of a quantized tensor's blocks, from the cache. */
static int gguf_fn_blocks(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			  size_t len)
{
	const gguf_out *o = arg;

	(void)cat;
	return nck_qcache_read(o->qc, &o->q, 0, pos, buf, len);
}

/* Reads `n` consecutive QKV rows from `row0` into out (a bias: elements). */
static int gguf_qkv_rows(const nck_catalog *cat, const gguf_perm *p, uint64_t row0, uint64_t n,
			 unsigned char *out)
{
	if (n == 0)
		return 0;
	if (p->t->ndim == 2)
		return nck_catalog_read_window(cat, p->t, 0, p->t->shape[1], row0 * p->rb, out,
					       (size_t)(n * p->rb));
	return nck_catalog_read_window(cat, p->t, row0, n, 0, out, (size_t)(n * p->rb));
}

/*
 * Rows [k0, k1) of head h in ggml's order into out: new row k = 2i + j is
 * row j * d/2 + i of the head (spec 1.9), so the even rows are one run of
 * the head's first half and the odd rows one run of its second half: two
 * reads, then the rows are interleaved in place from the back.
 */
static int gguf_perm_head(const nck_catalog *cat, const gguf_perm *p, uint64_t h, uint64_t k0,
			  uint64_t k1, unsigned char *out)
{
	uint64_t half = p->gm->d / 2, base = nck_gpt_qkv_row(p->gm, p->kind, h);
	uint64_t e0 = (k0 + 1) / 2, e1 = (k1 + 1) / 2; /* even k: first-half rows i */
	uint64_t o0 = k0 / 2, o1 = k1 / 2;	       /* odd k: second-half rows i */
	uint64_t ne = e1 - e0, no = o1 - o0;
	unsigned char *odd = out + ne * p->rb;
	int rc;

	if ((rc = gguf_qkv_rows(cat, p, base + e0, ne, out)) < 0 ||
	    (rc = gguf_qkv_rows(cat, p, base + half + o0, no, odd)) < 0)
		return rc;
	/* out holds [evens][odds]; interleave through a copy of the odds */
	if (no) {
		unsigned char *tmp = malloc((size_t)(no * p->rb));

		if (!tmp)
			return -ENOMEM;
		memcpy(tmp, odd, (size_t)(no * p->rb));
		for (uint64_t k = k1; k-- > k0;) {
			const unsigned char *src =
			    k % 2 ? tmp + (k / 2 - o0) * p->rb : out + (k / 2 - e0) * p->rb;

			memmove(out + (k - k0) * p->rb, src, (size_t)p->rb);
		}
		free(tmp);
	}
	return 0;
}

/* Bytes [pos, pos+len) of a permuted attn_q / attn_k: the whole rows that
 * hold them, head by head, then the requested bytes. */
static int gguf_fn_perm(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			size_t len)
{
	const gguf_perm *p = arg;
	uint64_t d = p->gm->d, r0 = pos / p->rb, r1 = (pos + len + p->rb - 1) / p->rb;
	unsigned char *rows = malloc((size_t)((r1 - r0) * p->rb));
	int rc = rows ? 0 : -ENOMEM;

	for (uint64_t r = r0; r < r1 && rc == 0;) {
		uint64_t h = r / d, k1 = (h + 1) * d < r1 ? d : r1 - h * d;

		rc = gguf_perm_head(cat, p, h, r % d, k1, rows + (r - r0) * p->rb);
		r = h * d + k1;
	}
	if (rc == 0)
		memcpy(buf, rows + (pos - r0 * p->rb), len);
	free(rows);
	return rc;
}

/* The source bytes of tensor t: its cut's segments, or the permuted rows. */
static int gguf_source(nck_layout *l, gguf_out *o, const gguf_tensor *t, const nck_gpt_model *gm)
{
	size_t es = nck_dtype_size(t->cut.src->dtype);

	if (t->perm < 0)
		return nck_gpt_cut_segments(l, &t->cut);
	o->perm = (gguf_perm){.gm = gm,
			      .t = t->cut.src,
			      .kind = t->perm,
			      .rb = t->cut.src->ndim == 2 ? t->cut.ncols * es : es};
	return nck_layout_fn(l, gguf_fn_perm, &o->perm, 0, nck_gpt_cut_bytes(&t->cut));
}

static void gguf_free_priv(void *priv)
{
	gguf_priv *p = priv;

	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		if (p->outs[i].quantized)
			nck_qcache_forget(p->outs[i].qc, &p->outs[i].q);
		nck_layout_dispose(&p->outs[i].src);
		nck_layout_dispose(&p->outs[i].q.src);
	}
	free(p->outs);
	free(p);
}

/* Appends tensor t's bytes, as `type`, to layout l. */
static int gguf_segments(gguf_build *b, nck_layout *l, const gguf_tensor *t, uint32_t type,
			 uint64_t nbytes)
{
	gguf_out *o = &b->priv->outs[b->used++];
	nck_dtype dt = t->cut.src->dtype;
	int rc;

	o->dtype = dt;
	o->type = type;
	if ((type == NCK_GGML_BF16 && dt == NCK_DTYPE_BF16) ||
	    (type == NCK_GGML_F16 && dt == NCK_DTYPE_F16) ||
	    (type == NCK_GGML_F32 && dt == NCK_DTYPE_F32))
		return gguf_source(l, o, t, b->gm); /* as stored */
	if (type == NCK_GGML_Q8_0 || type == NCK_GGML_Q4_0) {
		o->quantized = true;
		o->qc = b->ctx->qcache;
		o->q = (nck_qslice){.dtype = dt,
				    .rows = t->ne[1],
				    .cols = t->ne[0],
				    .algo = type == NCK_GGML_Q8_0 ? NCK_QALGO_GGML_Q8_0
								  : NCK_QALGO_GGML_Q4_0};
		if ((rc = gguf_source(&o->q.src, o, t, b->gm)) < 0)
			return rc;
		return nck_layout_fn(l, gguf_fn_blocks, o, 0, nbytes);
	}
	if ((rc = gguf_source(&o->src, o, t, b->gm)) < 0)
		return rc;
	return nck_layout_fn(l, gguf_fn_convert, o, 0, nbytes);
}

/* ---- Llama 3.1 rope factors ---------------------------------------------------- */

/*
 * rope_freqs.weight for rope_type llama3: one factor per rotary pair, as
 * convert_hf_to_gguf.py's LlamaModel computes them, each step in float32 as
 * torch does there (freq = 1/base^(2i/d), wavelen = 2*pi/freq; 1 below
 * old_ctx/high_freq_factor, `factor` above old_ctx/low_freq_factor, else
 * 1/((1-smooth)/factor + smooth)). The bytes are owned by the set.
 */
static int gguf_rope_freqs(gguf_build *b)
{
	const double two_pi = 6.283185307179586;
	nck_gpt_llama3_rope r;
	uint64_t d = b->gm->d;
	double theta = nck_gpt_cfg_num(b->ctx->cfg, "rotary_base", 10000);
	float base, hi, lo, *f;

	if (!nck_gpt_llama3_rope_get(b->ctx->cfg, &r))
		return 0;
	base = (float)(theta >= 1 && theta <= 1e12 ? theta : 10000); /* as hf/'s rope_theta */
	hi = (float)(r.old_ctx / r.high_freq_factor);
	lo = (float)(r.old_ctx / r.low_freq_factor);
	if (!(f = malloc((size_t)(d / 2) * sizeof(*f))) || nck_viewset_own(b->vs, f) < 0)
		return -ENOMEM;
	for (uint64_t i = 0; i < d / 2; i++) {
		float freq = 1.0f / powf(base, (float)(2 * i) / (float)d);
		float wl = (float)two_pi / freq, smooth;

		if (wl < hi) {
			f[i] = 1.0f;
		} else if (wl > lo) {
			f[i] = (float)r.factor;
		} else {
			smooth = ((float)r.old_ctx / wl - (float)r.low_freq_factor) /
				 (float)(r.high_freq_factor - r.low_freq_factor);
			f[i] = 1.0f / ((1.0f - smooth) / (float)r.factor + smooth);
		}
	}
	b->rope = f;
	b->n_rope = d / 2;
	return 0;
}

/* ---- a tokenizer.json vocabulary ------------------------------------------------ */

/* The tokenizer_config.json beside the tokenizer artifact (its bytes, to
 * free), or NULL. */
static void *gguf_tokcfg(const nck_view_ctx *ctx, size_t *len)
{
	const nck_container *c = ctx->container;
	void *data = NULL;

	for (size_t i = 0; c && i < c->n_entries; i++) {
		const nck_entry *e = &c->entries[i];

		if (!nck_view_beside_tokenizer(ctx, e) ||
		    strcmp(nck_artifact_name(e->path), "tokenizer_config.json") != 0)
			continue;
		if (nck_container_slurp(&data, len, c, e, GGUF_TOKCFG_MAX, NULL) == 0)
			return data;
	}
	return NULL;
}

/* A tokenizer.json source: its byte-level BPE vocabulary into b->hf, or a
 * log line saying why the files have none (no_vocab). Never fails the view. */
static void gguf_hf_load(gguf_build *b)
{
	const nck_view_ctx *ctx = b->ctx;
	nck_vocab_kind kind;
	char line[1024];
	nck_diag diag;
	uint64_t n;
	size_t clen = 0;
	void *cfg;
	int rc;

	if (!ctx->tokenizer || !ctx->tokenizer_data ||
	    nck_vocab_count(&n, &kind, ctx->tokenizer_data, ctx->tokenizer_len,
			    ctx->tokenizer->path, NULL) < 0 ||
	    kind != NCK_VOCAB_HF_JSON)
		return;
	cfg = gguf_tokcfg(ctx, &clen);
	nck_diag_init(&diag);
	rc = nck_hftok_parse(&b->hf, ctx->tokenizer_data, ctx->tokenizer_len, cfg, clen, b->vocab,
			     ctx->tokenizer->path, &diag);
	free(cfg);
	if (rc == 0) {
		b->have_hf = true;
		return;
	}
	nck_diag_format(&diag, line, sizeof(line));
	nck_log(NCK_LOG_WARN, "gguf/: %s; the files have no vocabulary (no_vocab)", line);
}

/* ---- header ------------------------------------------------------------------- */

/* A growing byte buffer; nomem sticks. */
typedef struct gguf_buf {
	unsigned char *p;
	size_t n, cap;
	bool nomem;
	uint64_t n_kv;
} gguf_buf;

static void gb_put(gguf_buf *g, const void *d, size_t n)
{
	if (g->nomem)
		return;
	if (g->cap - g->n < n) {
		size_t cap = g->cap ? g->cap : 4096;
		unsigned char *p;

		while (cap - g->n < n) {
			if (cap > SIZE_MAX / 2) {
				g->nomem = true;
				return;
			}
			cap *= 2;
		}
		if (!(p = realloc(g->p, cap))) {
			g->nomem = true;
			return;
		}
		g->p = p;
		g->cap = cap;
	}
	memcpy(g->p + g->n, d, n);
	g->n += n;
}

static void gb_u32(gguf_buf *g, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};

	gb_put(g, b, 4);
}

static void gb_u64(gguf_buf *g, uint64_t v)
{
	gb_u32(g, (uint32_t)v);
	gb_u32(g, (uint32_t)(v >> 32));
}

static void gb_f32(gguf_buf *g, float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	gb_u32(g, u);
}

/* A GGUF string: u64 length, bytes. */
static void gb_str(gguf_buf *g, const char *s, size_t len)
{
	gb_u64(g, len);
	gb_put(g, s, len);
}

/* A key and its value type (counts the pair). */
static void kv_key(gguf_buf *g, const char *key, uint32_t type)
{
	gb_str(g, key, strlen(key));
	gb_u32(g, type);
	g->n_kv++;
}

static void kv_str(gguf_buf *g, const char *key, const char *v)
{
	kv_key(g, key, GV_STR);
	gb_str(g, v, strlen(v));
}

static void kv_u32(gguf_buf *g, const char *key, uint64_t v)
{
	kv_key(g, key, GV_U32);
	gb_u32(g, (uint32_t)v);
}

static void kv_f32(gguf_buf *g, const char *key, double v)
{
	kv_key(g, key, GV_F32);
	gb_f32(g, (float)v);
}

static void kv_bool(gguf_buf *g, const char *key, bool v)
{
	unsigned char b = v;

	kv_key(g, key, GV_BOOL);
	gb_put(g, &b, 1);
}

/* An array's key, element type and count. */
static void kv_arr(gguf_buf *g, const char *key, uint32_t type, uint64_t n)
{
	kv_key(g, key, GV_ARR);
	gb_u32(g, type);
	gb_u64(g, n);
}

/* ---- metadata ----------------------------------------------------------------- */

/* The model's sequence length (as hf/'s max_position_embeddings). */
static double gguf_max_pos(const nck_view_ctx *ctx)
{
	return nck_gpt_cfg_num(
	    ctx->cfg, "max_position_embeddings",
	    nck_gpt_cfg_num(ctx->cfg, "encoder_seq_length",
			    nck_gpt_cfg_num(ctx->cfg, "seq_length", GGUF_DEFAULT_MAX_POS)));
}

/* general.name: the source's base name without .nemo / .qnemo. */
static void gguf_name(char *out, size_t len, const char *source)
{
	const char *s = source ? source : "", *base;
	size_t n = strlen(s);

	while (n > 1 && s[n - 1] == '/')
		n--;
	base = s;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' && i + 1 < n)
			base = s + i + 1;
	n -= (size_t)(base - s);
	if (n > 5 && strncmp(base + n - 5, ".nemo", 5) == 0)
		n -= 5;
	if (n > 6 && strncmp(base + n - 6, ".qnemo", 6) == 0)
		n -= 6;
	snprintf(out, len, "%.*s", (int)(n ? n : 5), n ? base : "model");
}

/* The GGUF token type of a SentencePiece piece type (the converter's
 * IsUnknown / IsControl / IsUnused / IsByte tests; the rest NORMAL). */
static int32_t gguf_token_type(int32_t sp)
{
	return sp == TT_UNKNOWN || sp == TT_CONTROL || sp == TT_UNUSED || sp == TT_BYTE ? sp
											: TT_NORMAL;
}

/* One of the vocabulary arrays (what: 0 tokens, 1 scores, 2 token types)
 * of V ids: the model's pieces, then [PAD<i>] fillers (UNUSED, -1000). */
static void gguf_vocab_array(gguf_buf *g, const nck_view_ctx *ctx, uint64_t V, int what)
{
	static const char *const keys[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.scores",
					   "tokenizer.ggml.token_type"};
	static const uint32_t types[] = {GV_STR, GV_F32, GV_I32};
	nck_sp_iter it;
	nck_sp_piece p;
	uint64_t k = 0;
	char pad[40];

	kv_arr(g, keys[what], types[what], V);
	if (nck_vocab_sp_iter_init(&it, ctx->tokenizer_data, ctx->tokenizer_len, NULL, NULL) < 0)
		memset(&it, 0, sizeof(it));
	for (; k < V && nck_vocab_sp_next(&it, &p); k++) {
		if (what == 0)
			gb_str(g, p.text, p.len);
		else if (what == 1)
			gb_f32(g, p.score);
		else
			gb_u32(g, (uint32_t)gguf_token_type(p.type));
	}
	for (; k < V; k++) {
		int n = snprintf(pad, sizeof(pad), "[PAD%llu]", (unsigned long long)k);

		if (what == 0)
			gb_str(g, pad, (size_t)n);
		else if (what == 1)
			gb_f32(g, -1000.0f);
		else
			gb_u32(g, TT_UNUSED);
	}
}

/* An id key when the id exists. */
static void gguf_id(gguf_buf *g, const char *key, int64_t id, uint64_t V)
{
	if (id >= 0 && (uint64_t)id < V)
		kv_u32(g, key, (uint64_t)id);
}

/* tokenizer.ggml.* of a byte-level BPE tokenizer.json, as the converter's
 * _set_vocab_gpt2 and SpecialVocab write them (hftok.h). */
static void gguf_gpt2_vocab(gguf_buf *g, const nck_hftok *t)
{
	char pad[40];

	kv_str(g, "tokenizer.ggml.model", "gpt2");
	kv_str(g, "tokenizer.ggml.pre", t->pre);
	kv_arr(g, "tokenizer.ggml.tokens", GV_STR, t->n);
	for (uint64_t i = 0; i < t->n; i++) {
		int n = t->text[i] ? 0 : snprintf(pad, sizeof(pad), "[PAD%llu]", (unsigned long long)i);

		gb_str(g, t->text[i] ? t->text[i] : pad, t->text[i] ? t->len[i] : (size_t)n);
	}
	kv_arr(g, "tokenizer.ggml.token_type", GV_I32, t->n);
	for (uint64_t i = 0; i < t->n; i++)
		gb_u32(g, t->type[i]);
	if (t->n_merges) {
		kv_arr(g, "tokenizer.ggml.merges", GV_STR, t->n_merges);
		for (size_t i = 0; i < t->n_merges; i++)
			gb_str(g, t->merge_buf ? t->merge_buf + t->merge_off[i] : "",
			       t->merge_off[i + 1] - t->merge_off[i]);
	}
	gguf_id(g, "tokenizer.ggml.bos_token_id", t->bos, t->n);
	gguf_id(g, "tokenizer.ggml.eos_token_id", t->eos, t->n);
	gguf_id(g, "tokenizer.ggml.unknown_token_id", t->unk, t->n);
	gguf_id(g, "tokenizer.ggml.padding_token_id", t->pad, t->n);
	if (t->add_bos >= 0)
		kv_bool(g, "tokenizer.ggml.add_bos_token", t->add_bos);
	if (t->add_eos >= 0)
		kv_bool(g, "tokenizer.ggml.add_eos_token", t->add_eos);
}

/* tokenizer.ggml.*: a SentencePiece ("llama") vocabulary, a byte-level BPE
 * one ("gpt2"), or "no_vocab". */
static void gguf_tokenizer(gguf_buf *g, const gguf_build *b)
{
	const nck_view_ctx *ctx = b->ctx;
	nck_sp_special sp;

	if (b->have_hf) {
		gguf_gpt2_vocab(g, &b->hf);
		return;
	}
	if (!ctx->tokenizer_data ||
	    nck_vocab_sp_special(&sp, ctx->tokenizer_data, ctx->tokenizer_len, NULL, NULL) < 0) {
		kv_str(g, "tokenizer.ggml.model", "no_vocab");
		return;
	}
	kv_str(g, "tokenizer.ggml.model", "llama");
	kv_str(g, "tokenizer.ggml.pre", "default");
	for (int what = 0; what < 3; what++)
		gguf_vocab_array(g, ctx, b->vocab, what);
	if (sp.bos >= 0 && (uint64_t)sp.bos < b->vocab)
		kv_u32(g, "tokenizer.ggml.bos_token_id", (uint64_t)sp.bos);
	if (sp.eos >= 0 && (uint64_t)sp.eos < b->vocab)
		kv_u32(g, "tokenizer.ggml.eos_token_id", (uint64_t)sp.eos);
	if (sp.unk >= 0 && (uint64_t)sp.unk < b->vocab)
		kv_u32(g, "tokenizer.ggml.unknown_token_id", (uint64_t)sp.unk);
	if (sp.pad >= 0 && (uint64_t)sp.pad < b->vocab)
		kv_u32(g, "tokenizer.ggml.padding_token_id", (uint64_t)sp.pad);
	/* as hf/'s tokenizer_config.json: BOS added, EOS not */
	kv_bool(g, "tokenizer.ggml.add_bos_token", sp.bos >= 0);
	kv_bool(g, "tokenizer.ggml.add_eos_token", false);
}

/* Every key-value pair of a file of general.file_type ftype (1.6). */
static void gguf_meta(gguf_buf *g, const gguf_build *b, uint32_t ftype)
{
	const nck_gpt_model *gm = b->gm;
	const nck_view_ctx *ctx = b->ctx;
	double factor = nck_gpt_cfg_num(ctx->cfg, "seq_len_interpolation_factor", 0);
	double max_pos = gguf_max_pos(ctx);
	char name[256];

	gguf_name(name, sizeof(name), ctx->source);
	kv_str(g, "general.architecture", "llama");
	kv_str(g, "general.type", "model");
	kv_str(g, "general.name", name);
	kv_u32(g, "general.alignment", GGUF_ALIGN);
	kv_u32(g, "llama.block_count", gm->L);
	kv_u32(g, "llama.context_length",
	       max_pos >= 1 && max_pos <= UINT32_MAX ? (uint64_t)max_pos : GGUF_DEFAULT_MAX_POS);
	kv_u32(g, "llama.embedding_length", gm->h);
	kv_u32(g, "llama.feed_forward_length", gm->f);
	kv_u32(g, "llama.attention.head_count", gm->n);
	kv_u32(g, "llama.attention.head_count_kv", gm->G);
	kv_f32(g, "llama.rope.freq_base", nck_gpt_cfg_num(ctx->cfg, "rotary_base", 10000));
	kv_f32(g, "llama.attention.layer_norm_rms_epsilon",
	       nck_gpt_cfg_num(ctx->cfg, "layernorm_epsilon", 1e-5));
	kv_u32(g, "llama.attention.key_length", gm->d);
	kv_u32(g, "llama.attention.value_length", gm->d);
	if (factor > 0) {
		kv_str(g, "llama.rope.scaling.type", "linear");
		kv_f32(g, "llama.rope.scaling.factor", factor);
	}
	kv_u32(g, "llama.vocab_size", b->vocab);
	kv_u32(g, "llama.rope.dimension_count", gm->d);
	kv_u32(g, "general.file_type", ftype);
	kv_u32(g, "general.quantization_version", GGUF_QUANT_VERSION);
	gguf_tokenizer(g, b);
}

/* ---- files --------------------------------------------------------------------- */

static uint64_t gguf_pad(uint64_t n)
{
	return (n + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
}

/* Bytes of tensor t as `type`. */
static uint64_t gguf_nbytes(const gguf_tensor *t, uint32_t type)
{
	return nck_ggml_bytes(type, t->ne[0] * t->ne[1]);
}

/* The tensor infos, in order, with offsets from the data section (1.3). */
static int gguf_infos(gguf_buf *g, const gguf_build *b, uint32_t wtype)
{
	uint64_t off = 0;

	if (b->rope) { /* the converter yields it before the model's tensors */
		gb_str(g, "rope_freqs.weight", strlen("rope_freqs.weight"));
		gb_u32(g, 1);
		gb_u64(g, b->n_rope);
		gb_u32(g, NCK_GGML_F32);
		gb_u64(g, off);
		off += gguf_pad(b->n_rope * 4);
	}
	for (size_t i = 0; i < b->n; i++) {
		const gguf_tensor *t = &b->t[i];
		uint32_t type = gguf_type(t, wtype);
		uint64_t nb = gguf_nbytes(t, type);

		/* an empty tensor (a vocabulary of 0) or sizes past 2^64: no file */
		if (nb == 0 || nb > UINT64_MAX - off - GGUF_ALIGN)
			return -ENOENT;
		gb_str(g, t->name, strlen(t->name));
		gb_u32(g, t->ndim);
		for (uint32_t d = 0; d < t->ndim; d++)
			gb_u64(g, t->ne[d]);
		gb_u32(g, type);
		gb_u64(g, off);
		off += gguf_pad(nb);
	}
	return 0;
}

/* One file: header, metadata, tensor infos, padding, then the tensors. */
static int gguf_file(gguf_build *b, const struct gguf_file *gf)
{
	gguf_buf kv = {0}, ti = {0}, h = {0};
	nck_vfile *f;
	int rc;

	gguf_meta(&kv, b, gf->ftype);
	if ((rc = gguf_infos(&ti, b, gf->wtype)) < 0)
		goto out;
	gb_put(&h, "GGUF", 4);
	gb_u32(&h, GGUF_VERSION);
	gb_u64(&h, b->n + (b->rope != NULL));
	gb_u64(&h, kv.n_kv);
	gb_put(&h, kv.p, kv.n);
	gb_put(&h, ti.p, ti.n);
	while (!h.nomem && h.n % GGUF_ALIGN)
		gb_put(&h, "", 1);
	rc = -ENOMEM;
	if (kv.nomem || ti.nomem || h.nomem || nck_viewset_own(b->vs, h.p) < 0) {
		h.p = NULL; /* freed by nck_viewset_own on failure */
		goto out;
	}
	if (!(f = nck_viewset_add(b->vs, gf->name, NCK_VFILE_LAYOUT)))
		goto out;
	rc = nck_layout_mem(&f->layout, h.p, h.n);
	h.p = NULL; /* owned by the set */
	if (rc == 0 && b->rope && (rc = nck_layout_mem(&f->layout, b->rope, b->n_rope * 4)) == 0)
		rc = nck_layout_zero(&f->layout, gguf_pad(b->n_rope * 4) - b->n_rope * 4);
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		uint32_t type = gguf_type(&b->t[i], gf->wtype);
		uint64_t nb = gguf_nbytes(&b->t[i], type);

		if ((rc = gguf_segments(b, &f->layout, &b->t[i], type, nb)) == 0)
			rc = nck_layout_zero(&f->layout, gguf_pad(nb) - nb);
	}
	f->size = f->layout.size;
out:
	free(kv.p);
	free(ti.p);
	free(h.p);
	return rc;
}

int nck_gguf_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		   uint32_t P)
{
	gguf_build b = {.vs = vs, .ctx = ctx, .gm = ctx->gpt};
	uint64_t rows;
	int rc;

	(void)kind;
	(void)T;
	(void)P;
	if (!b.gm || !ctx->qcache)
		return -ENOENT;
	rows = b.gm->emb->shape[0];
	/* V rows, as hf/: the tokenizer's, never more than the embedding has */
	b.vocab = b.gm->m.vocab && b.gm->m.vocab < rows ? b.gm->m.vocab : rows;
	if (b.gm->lm_head && b.gm->lm_head->shape[0] < b.vocab)
		b.vocab = b.gm->lm_head->shape[0];
	if ((rc = gguf_tensors(&b)) < 0 || (rc = gguf_rope_freqs(&b)) < 0)
		goto out;
	gguf_hf_load(&b);
	rc = -ENOMEM;
	if (!(b.priv = calloc(1, sizeof(*b.priv))))
		goto out;
	vs->priv = b.priv;
	vs->free_priv = gguf_free_priv;
	if (!(b.priv->outs = calloc(b.n * GGUF_N_FILES + 1, sizeof(*b.priv->outs))))
		goto out;
	b.priv->n = b.n * GGUF_N_FILES;
	rc = 0;
	for (size_t i = 0; i < GGUF_N_FILES && rc == 0; i++)
		rc = gguf_file(&b, &gguf_files[i]);
out:
	for (size_t i = 0; i < b.n; i++)
		nck_gpt_cut_dispose(&b.t[i].cut);
	free(b.t);
	nck_hftok_free(&b.hf);
	return rc;
}
