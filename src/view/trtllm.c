/* SPDX-License-Identifier: MIT */
/*
 * qnemo/{bf16,fp8,int4_awq,nvfp4}/tp{T}pp{P}/: TensorRT-LLM checkpoints laid out
 * as a .qnemo (config.json, rank{R}.safetensors, tokenizer.model,
 * tokenizer_config.yaml), spec sharding-hf-trtllm.md Part C.
 *
 * Each rank tensor is a list of row pieces of a logical tensor (or zero
 * rows), optionally inside a column window: QKV as [Q_r; K_r; V_r] with the
 * KV heads of the rank (duplicated when the query groups are fewer than
 * T), fc1's gate half as mlp.fc and its up half as mlp.gate, row-parallel
 * tensors as column windows, embedding and lm_head zero-padded to a
 * multiple of T (of lcm(T, 64) for AWQ). Quantized linears (qkv, dense,
 * fc, gate, proj; never lm_head) are computed from those pieces through
 * the quantization cache (qcache.c): FP8 with one scale per merged tensor
 * (fc and gate share fc1's), INT4 with block scales of the rank's own rows,
 * which are slices of the merged tensor's; NVFP4 (spec gguf-nvfp4.md 2.2,
 * 2.5) with FP8's per-merged-tensor amax as its global scale (qkv one,
 * fc and gate fc1's) and E4M3 block scales of 16 of the rank's own rows.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/yamlcfg.h"
#include "util/grow.h"
#include "view/gpt.h"
#include "view/qcache.h"
#include "view/sthdr.h"
#include "view/viewset.h"

typedef nck_gpt_model trt_model;

static bool trt_quantized(nck_view_kind kind)
{
	return kind == NCK_VIEW_QNEMO_FP8 || kind == NCK_VIEW_QNEMO_INT4 ||
	       kind == NCK_VIEW_QNEMO_NVFP4;
}

/* NVFP4: every rank linear's input dimension splits into blocks of 16
 * (TensorRT-LLM's FP4Linear asserts in_features % 16 == 0). */
static bool trt_nvfp4_ok(const trt_model *tm, uint32_t T)
{
	uint64_t b = NCK_QUANT_NVFP4_BLOCK;

	return tm->h % b == 0 && (tm->n * tm->d / T) % b == 0 && (tm->f / T) % b == 0;
}

static uint64_t trt_group(const nck_view_ctx *ctx)
{
	return ctx->group_size ? ctx->group_size : NCK_QUANT_GROUP_DEFAULT;
}

/* KV heads per rank (KV heads are duplicated when G < T). */
static uint64_t trt_kv_per_rank(const trt_model *tm, uint32_t T)
{
	return tm->G >= T ? tm->G / T : 1;
}

/* Checks one quantized linear's rank shape [out, in] for INT4. */
static bool trt_int4_ok(uint64_t out, uint64_t in, uint64_t g)
{
	return out % 2 == 0 && in % g == 0;
}

int nck_trtllm_check(const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T, uint32_t P,
		     char *why, size_t why_len)
{
	const trt_model *tm = ctx->gpt;
	uint64_t g = trt_group(ctx), q_rows;

	if (!tm) {
		snprintf(why, why_len, "%s", ctx->gpt_why);
		return -EINVAL;
	}
	if (trt_quantized(kind) && tm->dtype != NCK_DTYPE_BF16 && tm->dtype != NCK_DTYPE_F16 &&
	    tm->dtype != NCK_DTYPE_F32) {
		snprintf(why, why_len, "weights of dtype %s cannot be quantized", nck_dtype_name(tm->dtype));
		return -EINVAL;
	}
	if (T == 0 && P == 0)
		return 0; /* the view applies; no layout asked */
	if (T < 1 || T > 1024 || P < 1 || P > 1024 || tm->L % P || tm->n % T ||
	    (tm->G >= T ? tm->G % T : T % tm->G) || tm->f % T || tm->h % T) {
		snprintf(why, why_len, "%llu heads, %llu groups, %llu layers do not split as tp%upp%u",
			 (unsigned long long)tm->n, (unsigned long long)tm->G,
			 (unsigned long long)tm->L, T, P);
		return -EINVAL;
	}
	if (kind == NCK_VIEW_QNEMO_NVFP4 && !trt_nvfp4_ok(tm, T)) {
		snprintf(why, why_len, "rank linears do not split into nvfp4 blocks of %d",
			 NCK_QUANT_NVFP4_BLOCK);
		return -EINVAL;
	}
	if (kind == NCK_VIEW_QNEMO_INT4) {
		q_rows = (tm->n / T + 2 * trt_kv_per_rank(tm, T)) * tm->d;
		if (!trt_int4_ok(q_rows, tm->h, g) || !trt_int4_ok(tm->h, tm->n * tm->d / T, g) ||
		    !trt_int4_ok(tm->f / T, tm->h, g) || !trt_int4_ok(tm->h, tm->f / T, g)) {
			snprintf(why, why_len, "rank linears do not split into int4 blocks of %llu",
				 (unsigned long long)g);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- rank tensors -------------------------------------------------------------- */

/* One tensor of a rank before quantization: rows of a window of a logical
 * tensor (MHA QKV has three pieces per head), and what quantizes it. */
typedef struct trt_out {
	char name[192];
	nck_gpt_cut cut;       /* source, window, row pieces */
	bool quant;            /* a quantized linear's weight */
	const nck_tensor *scale_of[1]; /* FP8: the merged tensor of the scale */
	char module[160];      /* global module name, for the calibration file */
} trt_out;

/* Starts tensor `part` of layer k (k < 0: outside the layers). */
static void trt_init(trt_out *o, const nck_tensor *src, int64_t k, const char *part)
{
	memset(o, 0, sizeof(*o));
	nck_gpt_cut_init(&o->cut, src);
	if (k < 0)
		snprintf(o->name, sizeof(o->name), "%s", part);
	else
		snprintf(o->name, sizeof(o->name), "transformer.layers.%lld.%s", (long long)k, part);
}

/* QKV rows of rank r: [Q_r; K_r; V_r] from the group-interleaved merged
 * layout (spec A.4, C.3.1). Pieces: at most one per group and kind. */
static void trt_qkv(trt_out *o, const trt_model *tm, uint32_t T, uint32_t r)
{
	uint64_t d = tm->d, nq = tm->n / T, kv = trt_kv_per_rank(tm, T);
	uint64_t kv0 = tm->G >= T ? r * kv : r / (T / tm->G);

	for (uint64_t i = r * nq; i < (r + 1) * nq; i++)
		nck_gpt_cut_rows(&o->cut, nck_gpt_qkv_row(tm, 0, i), d, false);
	for (int v = 1; v <= 2; v++)
		for (uint64_t j = kv0; j < kv0 + kv; j++)
			nck_gpt_cut_rows(&o->cut, nck_gpt_qkv_row(tm, v, j), d, false);
}

/* Collects the tensors of rank (r, p). */
typedef struct trt_list {
	trt_out *v;
	size_t n, cap;
} trt_list;

static void trt_list_free(trt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		nck_gpt_cut_dispose(&l->v[i].cut);
	free(l->v);
}

static trt_out *trt_new(trt_list *l)
{
	if (nck_grow((void **)&l->v, &l->cap, l->n, sizeof(*l->v), 32) < 0)
		return NULL;
	return &l->v[l->n++];
}

/* A column tensor: rows [r*n, (r+1)*n) of rows [base, base + n*T). */
static int trt_col(trt_list *l, const nck_tensor *t, uint64_t base, uint64_t total, uint32_t T,
		   uint32_t r, int64_t k, const char *part)
{
	trt_out *o;

	if (!t)
		return 0;
	if (!(o = trt_new(l)))
		return -ENOMEM;
	trt_init(o, t, k, part);
	nck_gpt_cut_rows(&o->cut, base + r * (total / T), total / T, false);
	return 0;
}

/* A replicated tensor (norms, row-parallel biases): all of it. */
static int trt_rep(trt_list *l, const nck_tensor *t, int64_t k, const char *part)
{
	return t ? trt_col(l, t, 0, t->ndim ? t->shape[0] : 1, 1, 0, k, part) : 0;
}

/* Embedding or lm_head: V' rows (zero rows past the source's), chunk r. */
static int trt_vocab(trt_list *l, const nck_tensor *t, uint64_t vp, uint32_t T, uint32_t r,
		     const char *name)
{
	uint64_t n = vp / T, r0 = r * n, have = t->shape[0] > r0 ? t->shape[0] - r0 : 0;
	trt_out *o;

	if (!(o = trt_new(l)))
		return -ENOMEM;
	trt_init(o, t, -1, name);
	if (have > n)
		have = n;
	nck_gpt_cut_rows(&o->cut, r0, have, false);
	nck_gpt_cut_rows(&o->cut, 0, n - have, true);
	return 0;
}

static uint64_t trt_vocab_rows(const trt_model *tm, nck_view_kind kind, uint32_t T)
{
	uint64_t m = T, rows = tm->emb->shape[0];

	if (kind == NCK_VIEW_QNEMO_INT4) { /* ModelOpt pads AWQ vocabularies to 64 too: lcm(T, 64) */
		uint64_t a = 64, b = T;

		while (b) {
			uint64_t c = a % b;

			a = b;
			b = c;
		}
		m = 64 * T / a;
	}
	return (rows + m - 1) / m * m;
}

/* Marks the newest tensor of l as the weight of quantized linear `module`
 * of global layer g; its FP8 scale comes from its whole source tensor. */
static void trt_linear(trt_list *l, uint64_t g, const char *module)
{
	trt_out *o = &l->v[l->n - 1];

	o->quant = true;
	o->scale_of[0] = o->cut.src;
	snprintf(o->module, sizeof(o->module), "transformer.layers.%llu.%s", (unsigned long long)g,
		 module);
}

/* The tensors of one layer on rank r. */
static int trt_layer(trt_list *l, const trt_model *tm, uint64_t g, int64_t k, uint32_t T,
		     uint32_t r)
{
	const nck_tensor *const *t = tm->layer[g];
	uint64_t fc1 = t[NCK_GPT_FC1_W]->shape[0], half = tm->m.gated ? fc1 / 2 : fc1;
	trt_out *o;

	if (trt_rep(l, t[NCK_GPT_IN_LN_W], k, "input_layernorm.weight") < 0 ||
	    trt_rep(l, t[NCK_GPT_IN_LN_B], k, "input_layernorm.bias") < 0 ||
	    trt_rep(l, t[NCK_GPT_POST_LN_W], k, "post_layernorm.weight") < 0 ||
	    trt_rep(l, t[NCK_GPT_POST_LN_B], k, "post_layernorm.bias") < 0 ||
	    trt_rep(l, t[NCK_GPT_DENSE_B], k, "attention.dense.bias") < 0 ||
	    trt_rep(l, t[NCK_GPT_FC2_B], k, "mlp.proj.bias") < 0)
		return -ENOMEM;
	for (int b = 0; b < 2; b++) { /* qkv weight, then bias */
		const nck_tensor *q = t[b ? NCK_GPT_QKV_B : NCK_GPT_QKV_W];

		if (!q)
			continue;
		if (!(o = trt_new(l)))
			return -ENOMEM;
		trt_init(o, q, k, b ? "attention.qkv.bias" : "attention.qkv.weight");
		trt_qkv(o, tm, T, r);
		if (!b)
			trt_linear(l, g, "attention.qkv");
	}
	if (trt_col(l, t[NCK_GPT_FC1_W], 0, half, T, r, k, "mlp.fc.weight") < 0)
		return -ENOMEM;
	trt_linear(l, g, "mlp.fc");
	if (trt_col(l, t[NCK_GPT_FC1_B], 0, half, T, r, k, "mlp.fc.bias") < 0)
		return -ENOMEM;
	if (tm->m.gated) {
		if (trt_col(l, t[NCK_GPT_FC1_W], half, half, T, r, k, "mlp.gate.weight") < 0)
			return -ENOMEM;
		trt_linear(l, g, "mlp.gate");
		if (trt_col(l, t[NCK_GPT_FC1_B], half, half, T, r, k, "mlp.gate.bias") < 0)
			return -ENOMEM;
	}
	for (int w = 0; w < 2; w++) { /* row-parallel: dense, proj */
		const nck_tensor *x = t[w ? NCK_GPT_FC2_W : NCK_GPT_DENSE_W];

		if (!(o = trt_new(l)))
			return -ENOMEM;
		trt_init(o, x, k, w ? "mlp.proj.weight" : "attention.dense.weight");
		o->cut.ncols = x->shape[1] / T;
		o->cut.col0 = r * o->cut.ncols;
		nck_gpt_cut_rows(&o->cut, 0, x->shape[0], false);
		trt_linear(l, g, w ? "mlp.proj" : "attention.dense");
	}
	return 0;
}

/* Every tensor of rank (r, p), unsorted. */
static int trt_rank(trt_list *l, const trt_model *tm, nck_view_kind kind, uint32_t T, uint32_t P,
		    uint32_t r, uint32_t p)
{
	uint64_t per = tm->L / P, vp = trt_vocab_rows(tm, kind, T);
	int rc = 0;

	if (p == 0)
		rc = trt_vocab(l, tm->emb, vp, T, r, "transformer.vocab_embedding.weight");
	for (uint64_t k = 0; k < per && rc == 0; k++)
		rc = trt_layer(l, tm, p * per + k, (int64_t)k, T, r);
	if (rc == 0 && p == P - 1) {
		rc |= trt_rep(l, tm->ln_f_w, -1, "transformer.ln_f.weight");
		rc |= trt_rep(l, tm->ln_f_b, -1, "transformer.ln_f.bias");
		if (tm->lm_head)
			rc |= trt_vocab(l, tm->lm_head, vp, T, r, "lm_head.weight");
		else if (P > 1) /* tied: the last stage's copy of the embedding */
			rc |= trt_vocab(l, tm->emb, vp, T, r, "lm_head.weight");
	}
	return rc ? -ENOMEM : 0;
}

/* ---- files ------------------------------------------------------------------- */

/* A quantized linear of a rank file: the slice, and what computes it. */
typedef struct trt_q {
	nck_qslice q;
	const nck_tensor *scale_src;
	nck_qcache *qc;
	struct trt_q *next;
} trt_q;

static void trt_free_q(void *priv)
{
	for (trt_q *q = priv, *next; q; q = next) {
		next = q->next;
		nck_qcache_forget(q->qc, &q->q);
		nck_layout_dispose(&q->q.src);
		free(q);
	}
}

static int trt_fn_qdata(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf, size_t len)
{
	const trt_q *q = arg;

	(void)cat;
	return nck_qcache_read(q->qc, &q->q, 0, pos, buf, len);
}

static int trt_fn_qscales(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			  size_t len)
{
	const trt_q *q = arg;

	(void)cat;
	return nck_qcache_read(q->qc, &q->q, 1, pos, buf, len);
}

/* Little-endian bytes of a float32. */
static void trt_f32le(unsigned char out[4], float v)
{
	uint32_t u;

	memcpy(&u, &v, 4);
	for (int i = 0; i < 4; i++)
		out[i] = (unsigned char)(u >> (8 * i));
}

/* Bytes [pos, pos+len) of a float32 scale computed with result rc. */
static int trt_scale_bytes(int rc, float v, uint64_t pos, void *buf, size_t len)
{
	unsigned char b[4];

	if (rc < 0)
		return rc;
	trt_f32le(b, v);
	memcpy(buf, b + pos, len);
	return 0;
}

static int trt_fn_fp8_scale(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			    size_t len)
{
	const trt_q *q = arg;
	float s = 0;
	int rc = nck_qcache_fp8_scale(q->qc, &q->q, &s);

	(void)cat;
	return trt_scale_bytes(rc, s, pos, buf, len);
}

static int trt_fn_nvfp4_global(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			       size_t len)
{
	const trt_q *q = arg;
	float g = 0;
	int rc = nck_qcache_nvfp4_global(q->qc, &q->q, &g);

	(void)cat;
	return trt_scale_bytes(rc, g, pos, buf, len);
}

/* AWQ's prequant_scaling_factor: ones in the model dtype (round to nearest: p = 1). */
static int trt_fn_ones(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf, size_t len)
{
	nck_dtype dt = *(const nck_dtype *)arg;
	unsigned char one[4] = { 0 }, *p = buf;
	size_t es = nck_dtype_size(dt);

	(void)cat;
	if (dt == NCK_DTYPE_BF16) {
		one[0] = 0x80;
		one[1] = 0x3F;
	} else if (dt == NCK_DTYPE_F16) {
		one[1] = 0x3C;
	} else {
		trt_f32le(one, 1.0f);
	}
	for (size_t i = 0; i < len; i++)
		p[i] = one[(pos + i) % es];
	return 0;
}


/* One tensor of a rank file and how its bytes are made. */
typedef enum trt_ekind {
	E_PLAIN, E_QDATA, E_QSCALES, E_FP8_SF, E_ACT_SF, E_PREQUANT, E_NVFP4_SF2
} trt_ekind;

typedef struct trt_entry {
	char name[224];
	nck_dtype dtype;
	uint32_t ndim;
	uint64_t shape[2];
	trt_ekind kind;
	const trt_out *o;
	trt_q *q;
	const unsigned char *mem; /* E_ACT_SF: 4 bytes */
} trt_entry;

static int trt_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const trt_entry *)a)->name, ((const trt_entry *)b)->name);
}

/* The file-building state of one view set. */
typedef struct trt_build {
	nck_viewset *vs;
	const nck_view_ctx *ctx;
	nck_view_kind kind;
	const trt_model *tm;
	size_t calib_missing;  /* modules the calibration file lacks (counted on tp rank 0) */
	bool count_calib;
	trt_entry *e;
	size_t n, cap;
} trt_build;

static trt_entry *trt_entry_new(trt_build *b, const char *base, const char *suffix, nck_dtype dt,
				uint32_t ndim, uint64_t d0, uint64_t d1, trt_ekind kind)
{
	trt_entry *e;

	if (nck_grow((void **)&b->e, &b->cap, b->n, sizeof(*e), 64) < 0)
		return NULL;
	e = &b->e[b->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s%s", base, suffix);
	e->dtype = dt;
	e->ndim = ndim;
	e->shape[0] = d0;
	e->shape[1] = d1;
	e->kind = kind;
	return e;
}

/* The activation scale of a module: calibrated amax / 448 (NVFP4: / 2688), or 1.0. */
static float trt_act_scale(trt_build *b, const char *module)
{
	const json_t *v = b->ctx->calib ? json_object_get(b->ctx->calib, module) : NULL;
	float amax = v && json_is_number(v) ? (float)json_number_value(v) : 0.0f;

	if (!(amax > 0.0f) || amax != amax || amax > 3.0e38f) {
		b->calib_missing += b->ctx->calib != NULL && b->count_calib;
		return 1.0f;
	}
	return b->kind == NCK_VIEW_QNEMO_NVFP4 ? nck_quant_nvfp4_global(amax)
					       : nck_quant_fp8_scale(amax);
}

/* The NVFP4 entries of a quantized linear (ModelOpt's TensorRT-LLM export):
 * U8 [rows, cols/2] codes, F8_E4M3 [rows, cols/16] block scales, F32 [1]
 * global weight and activation scales. */
static int trt_add_nvfp4(trt_build *b, trt_q *tq, const char *base, const trt_out *o)
{
	unsigned char *act;
	trt_entry *e;

	if (!(e = trt_entry_new(b, base, "weight", NCK_DTYPE_U8, 2, o->cut.rows, o->cut.ncols / 2, E_QDATA)))
		return -ENOMEM;
	e->q = tq;
	if (!(e = trt_entry_new(b, base, "weights_scaling_factor", NCK_DTYPE_F8_E4M3, 2, o->cut.rows,
				o->cut.ncols / NCK_QUANT_NVFP4_BLOCK, E_QSCALES)))
		return -ENOMEM;
	e->q = tq;
	if (!(e = trt_entry_new(b, base, "weights_scaling_factor_2", NCK_DTYPE_F32, 1, 1, 0,
				E_NVFP4_SF2)))
		return -ENOMEM;
	e->q = tq;
	if (!(act = nck_arena_alloc(&b->vs->arena, 4)) ||
	    !(e = trt_entry_new(b, base, "activation_scaling_factor", NCK_DTYPE_F32, 1, 1, 0,
				E_ACT_SF)))
		return -ENOMEM;
	trt_f32le(act, trt_act_scale(b, o->module));
	e->mem = act;
	return 0;
}

/* The entries of one rank tensor (a quantized linear gives several). */
static int trt_add(trt_build *b, const trt_out *o)
{
	bool q = o->quant && b->kind != NCK_VIEW_QNEMO_BF16;
	char base[224];
	trt_entry *e;
	trt_q *tq;
	unsigned char *act;

	if (!q) {
		e = trt_entry_new(b, o->name, "", o->cut.src->dtype, o->cut.src->ndim == 2 ? 2 : 1, o->cut.rows,
				  o->cut.ncols, E_PLAIN);
		if (e)
			e->o = o;
		return e ? 0 : -ENOMEM;
	}
	if (!(tq = calloc(1, sizeof(*tq))))
		return -ENOMEM;
	tq->next = b->vs->priv;
	b->vs->priv = tq;
	b->vs->free_priv = trt_free_q;
	tq->qc = b->ctx->qcache;
	tq->scale_src = o->scale_of[0];
	tq->q = (nck_qslice){ .dtype = o->cut.src->dtype, .rows = o->cut.rows, .cols = o->cut.ncols,
			      .algo = b->kind == NCK_VIEW_QNEMO_FP8     ? NCK_QALGO_FP8
				      : b->kind == NCK_VIEW_QNEMO_NVFP4 ? NCK_QALGO_NVFP4
									: NCK_QALGO_INT4_AWQ,
			      .group = trt_group(b->ctx), .scale_of = &tq->scale_src, .n_scale_of = 1 };
	if (nck_gpt_cut_segments(&tq->q.src, &o->cut) < 0)
		return -ENOMEM;
	snprintf(base, sizeof(base), "%.*s", (int)(strlen(o->name) - strlen("weight")), o->name);
	if (b->kind == NCK_VIEW_QNEMO_NVFP4)
		return trt_add_nvfp4(b, tq, base, o);
	if (b->kind == NCK_VIEW_QNEMO_FP8) {
		if (!(e = trt_entry_new(b, base, "weight", NCK_DTYPE_F8_E4M3, 2, o->cut.rows, o->cut.ncols, E_QDATA)))
			return -ENOMEM;
		e->q = tq;
		if (!(e = trt_entry_new(b, base, "weights_scaling_factor", NCK_DTYPE_F32, 1, 1, 0, E_FP8_SF)))
			return -ENOMEM;
		e->q = tq;
		if (!(act = nck_arena_alloc(&b->vs->arena, 4)) ||
		    !(e = trt_entry_new(b, base, "activation_scaling_factor", NCK_DTYPE_F32, 1, 1, 0,
					E_ACT_SF)))
			return -ENOMEM;
		trt_f32le(act, trt_act_scale(b, o->module));
		e->mem = act;
		return 0;
	}
	if (!(e = trt_entry_new(b, base, "weight", NCK_DTYPE_I8, 2, o->cut.rows / 2, o->cut.ncols, E_QDATA)))
		return -ENOMEM;
	e->q = tq;
	if (!(e = trt_entry_new(b, base, "weights_scaling_factor", NCK_DTYPE_F32, 2, o->cut.rows,
				o->cut.ncols / tq->q.group, E_QSCALES)))
		return -ENOMEM;
	e->q = tq;
	if (!(e = trt_entry_new(b, base, "prequant_scaling_factor", o->cut.src->dtype, 1, o->cut.ncols, 0,
				E_PREQUANT)))
		return -ENOMEM;
	e->q = tq;
	return 0;
}

static uint64_t trt_entry_bytes(const trt_entry *e)
{
	uint64_t n = nck_dtype_size(e->dtype);

	for (uint32_t d = 0; d < e->ndim; d++)
		n *= e->shape[d];
	return n;
}

/* Appends an entry's bytes to the file layout. */
static int trt_entry_segments(nck_layout *l, const trt_entry *e)
{
	uint64_t n = trt_entry_bytes(e);

	switch (e->kind) {
	case E_PLAIN:
		return nck_gpt_cut_segments(l, &e->o->cut);
	case E_QDATA:
		return nck_layout_fn(l, trt_fn_qdata, e->q, 0, n);
	case E_QSCALES:
		return nck_layout_fn(l, trt_fn_qscales, e->q, 0, n);
	case E_FP8_SF:
		return nck_layout_fn(l, trt_fn_fp8_scale, e->q, 0, n);
	case E_ACT_SF:
		return nck_layout_mem(l, e->mem, n);
	case E_PREQUANT:
		return nck_layout_fn(l, trt_fn_ones, &e->q->q.dtype, 0, n);
	case E_NVFP4_SF2:
		return nck_layout_fn(l, trt_fn_nvfp4_global, e->q, 0, n);
	}
	return -EINVAL;
}

/* rank{R}.safetensors of rank (r, p). */
static int trt_file(trt_build *b, uint32_t T, uint32_t P, uint32_t r, uint32_t p)
{
	const char *meta[] = { "format", "pt", NULL };
	trt_list list = { 0 };
	nck_st_entry *st = NULL;
	nck_vfile *f;
	char name[48], *hdr = NULL;
	size_t hlen;
	int rc;

	b->n = 0;
	b->count_calib = r == 0; /* every tp rank has the same modules */
	if ((rc = trt_rank(&list, b->tm, b->kind, T, P, r, p)) < 0)
		goto out;
	for (size_t i = 0; i < list.n; i++)
		if (list.v[i].cut.nomem)
			rc = -ENOMEM;
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < list.n && rc == 0; i++)
		rc = trt_add(b, &list.v[i]);
	if (rc < 0)
		goto out;
	qsort(b->e, b->n, sizeof(*b->e), trt_entry_cmp);
	rc = -ENOMEM;
	if (!(st = calloc(b->n ? b->n : 1, sizeof(*st))))
		goto out;
	for (size_t i = 0; i < b->n; i++)
		st[i] = (nck_st_entry){ .name = b->e[i].name, .dtype = b->e[i].dtype,
					.ndim = b->e[i].ndim, .shape = b->e[i].shape,
					.bytes = trt_entry_bytes(&b->e[i]) };
	if ((rc = nck_st_header(&hdr, &hlen, st, b->n, meta)) < 0 ||
	    (rc = nck_viewset_own(b->vs, hdr)) < 0)
		goto out;
	snprintf(name, sizeof(name), "rank%u.safetensors", p * T + r);
	rc = -ENOMEM;
	if (!(f = nck_viewset_add(b->vs, name, NCK_VFILE_LAYOUT)))
		goto out;
	rc = nck_layout_mem(&f->layout, hdr, hlen);
	for (size_t i = 0; i < b->n && rc == 0; i++)
		rc = trt_entry_segments(&f->layout, &b->e[i]);
	f->size = f->layout.size;
out:
	free(st);
	trt_list_free(&list);
	return rc;
}

/* config.json (spec C.2), with what nemockpt chose under "nemockpt". */
static int trt_config(trt_build *b, uint32_t T, uint32_t P)
{
	const trt_model *tm = b->tm;
	const nck_yaml_node *root = b->ctx->cfg;
	const char *act = NULL, *algo[] = { NULL, "FP8", "W4A16_AWQ", "NVFP4" };
	json_t *c = json_object(), *q = json_object(), *own = json_object();
	bool bias = tm->layer[0][NCK_GPT_QKV_B] || tm->layer[0][NCK_GPT_FC1_B];
	double maxpos;
	nck_vfile *f;
	char *text;
	int k = b->kind == NCK_VIEW_QNEMO_FP8 ? 1 : b->kind == NCK_VIEW_QNEMO_INT4 ? 2 : 0;

	k = b->kind == NCK_VIEW_QNEMO_NVFP4 ? 3 : k;
	act = nck_gpt_cfg_str(root, "activation");
	maxpos = nck_gpt_cfg_num(root, "max_position_embeddings",
			     nck_gpt_cfg_num(root, "encoder_seq_length", nck_gpt_cfg_num(root, "seq_length", 0)));
	json_object_set_new(c, "architecture", json_string("LlamaForCausalLM"));
	json_object_set_new(c, "dtype", json_string(tm->dtype == NCK_DTYPE_F16 ? "float16"
						     : tm->dtype == NCK_DTYPE_F32 ? "float32"
										  : "bfloat16"));
	json_object_set_new(c, "logits_dtype", json_string("float32"));
	json_object_set_new(c, "num_hidden_layers", json_integer((json_int_t)tm->L));
	json_object_set_new(c, "num_attention_heads", json_integer((json_int_t)tm->n));
	json_object_set_new(c, "num_key_value_heads", json_integer((json_int_t)tm->G));
	json_object_set_new(c, "head_size", json_integer((json_int_t)tm->d));
	json_object_set_new(c, "hidden_size", json_integer((json_int_t)tm->h));
	json_object_set_new(c, "intermediate_size", json_integer((json_int_t)tm->f));
	json_object_set_new(c, "vocab_size", json_integer((json_int_t)trt_vocab_rows(tm, b->kind, T)));
	json_object_set_new(c, "position_embedding_type", json_string("rope_gpt_neox"));
	if (maxpos > 0)
		json_object_set_new(c, "max_position_embeddings", json_integer((json_int_t)maxpos));
	json_object_set_new(c, "hidden_act",
			    json_string(!tm->m.gated || (act && strstr(act, "geglu")) ? "gelu" : "silu"));
	json_object_set_new(c, "norm_epsilon", json_real(nck_gpt_cfg_num(root, "layernorm_epsilon", 1e-5)));
	json_object_set_new(c, "rotary_base", json_real(nck_gpt_cfg_num(root, "rotary_base", 10000)));
	json_object_set_new(c, "rotary_pct", json_real(nck_gpt_cfg_num(root, "rotary_percentage", 1.0)));
	json_object_set_new(c, "use_parallel_embedding", json_true());
	json_object_set_new(c, "embedding_sharding_dim", json_integer(0));
	json_object_set_new(c, "share_embedding_table", json_boolean(!tm->lm_head && P == 1));
	json_object_set_new(c, "bias", json_boolean(bias));
	json_object_set_new(c, "rmsnorm", json_boolean(!tm->layer[0][NCK_GPT_IN_LN_B]));
	json_object_set_new(c, "mapping", json_pack("{s:i, s:i, s:i}", "world_size", (int)(T * P),
						    "tp_size", (int)T, "pp_size", (int)P));
	json_object_set_new(q, "quant_algo", algo[k] ? json_string(algo[k]) : json_null());
	json_object_set_new(q, "kv_cache_quant_algo", json_null());
	if (k == 3)
		json_object_set_new(q, "group_size", json_integer(NCK_QUANT_NVFP4_BLOCK));
	if (k == 2) {
		json_object_set_new(q, "group_size", json_integer((json_int_t)trt_group(b->ctx)));
		json_object_set_new(q, "has_zero_point", json_false());
		json_object_set_new(q, "pre_quant_scale", json_true());
	}
	if (k)
		json_object_set_new(q, "exclude_modules", json_pack("[s]", "lm_head"));
	json_object_set_new(c, "quantization", q);
	json_object_set_new(own, "source", json_string(b->ctx->source ? b->ctx->source : ""));
	if (k == 1 || k == 3) {
		json_object_set_new(own, "activation_scaling_factor",
				    json_string(b->ctx->calib ? "calibration file" : "1.0 (no calibration)"));
		json_object_set_new(own, "calibration",
				    b->ctx->calib_name ? json_string(b->ctx->calib_name) : json_null());
		json_object_set_new(own, "modules_without_calibration",
				    json_integer((json_int_t)b->calib_missing));
	}
	if (k == 2)
		json_object_set_new(own, "awq", json_string("round to nearest, prequant scale 1"));
	json_object_set_new(c, "nemockpt", own);
	text = json_dumps(c, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	json_decref(c);
	if (!text || nck_viewset_own(b->vs, text) < 0 ||
	    !(f = nck_viewset_add(b->vs, "config.json", NCK_VFILE_MEM)))
		return -ENOMEM;
	f->mem = text;
	f->size = strlen(text);
	return 0;
}

/* The tokenizer as a .qnemo holds it: tokenizer.model (SentencePiece) and
 * its tokenizer_config.yaml; another tokenizer file keeps its plain name. */
static int trt_tokenizer(trt_build *b)
{
	static const char sp_config[] = "library: sentencepiece\ntype: null\nmodel: tokenizer.model\n"
					"vocab_file: null\nmerge_file: null\ndelimiter: null\n"
					"sentencepiece_legacy: false\n";
	const nck_entry *tok = b->ctx->tokenizer;
	const char *base, *dot;
	nck_vfile *f;

	if (!tok)
		return 0;
	base = nck_artifact_name(tok->path);
	dot = strrchr(base, '.');
	if (dot && strcmp(dot, ".model") == 0) {
		if (!(f = nck_viewset_add(b->vs, "tokenizer_config.yaml", NCK_VFILE_MEM)))
			return -ENOMEM;
		f->mem = sp_config;
		f->size = sizeof(sp_config) - 1;
		base = "tokenizer.model";
	}
	if (!(f = nck_viewset_add(b->vs, base, NCK_VFILE_MEMBER)))
		return -ENOMEM;
	f->member = tok;
	return 0;
}

int nck_trtllm_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		     uint32_t P)
{
	trt_build b = { .vs = vs, .ctx = ctx, .kind = kind, .tm = ctx->gpt };
	int rc;

	if ((trt_quantized(kind) && !ctx->qcache) || !ctx->gpt)
		return -ENOENT;
	rc = trt_tokenizer(&b);
	for (uint32_t p = 0; p < P && rc == 0; p++)
		for (uint32_t r = 0; r < T && rc == 0; r++)
			rc = trt_file(&b, T, P, r, p);
	if (rc == 0)
		rc = trt_config(&b, T, P);
	free(b.e);
	return rc;
}
