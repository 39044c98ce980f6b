/* SPDX-License-Identifier: MIT */
/*
 * nemo/tp{T}pp{P}/: an extracted .nemo at another layout, for NeMo's
 * restore_from on a directory: model_config.yaml with the parallel sizes
 * rewritten (format/yamlemit.c), the root artifacts as they are, and the
 * weights as torch.save zip files (format/torchsave.c) named as NeMo names
 * them: model_weights.ckpt (T = P = 1), mp_rank_TT/ (P = 1) or
 * tp_rank_TT_pp_rank_PPP/ (spec nemo-layouts.md).
 *
 * CRC-32s: torch.save writes each record's CRC after its data and in the
 * central directory, so those bytes depend on the data. Each 4-byte CRC
 * field is a computed segment: its first read reads the tensor through the
 * same layout and sets both copies (once per tensor; readers of other
 * tensors' fields do not wait). No other byte waits for a CRC, but reading
 * the central directory (torch.load does it first) computes every CRC: one
 * pass over the file's data. torch.load does not check them; zip tools do.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/torchsave.h"
#include "format/yamlemit.h"
#include "view/shard.h"
#include "view/viewset.h"

/* Bytes read at a time to compute a CRC. */
#define NEMO_CRC_BLOCK (1u << 20)

typedef struct nemo_file nemo_file;

/* One CRC-32 field of the zip: the 4 bytes of entry `entry` at `mem`. */
typedef struct nemo_crc_field {
	nemo_file *file;
	size_t entry;
	uint64_t pos;             /* in the file */
	const unsigned char *mem; /* in the plan's memory */
} nemo_crc_field;

enum { CRC_NONE = 0, CRC_BUSY = 1, CRC_SET = 2 };

struct nemo_file {
	nck_ts_plan *plan;
	const nck_viewset *vs;    /* the file is vs->files[index] (the table may move while building) */
	size_t index;
	pthread_mutex_t lock;     /* guards state[] and the plan's CRC bytes */
	pthread_cond_t cond;      /* a CRC was set (or failed) */
	unsigned char *state;     /* per entry: CRC_NONE, CRC_BUSY, CRC_SET */
	nemo_crc_field *fields;   /* every CRC field, by position */
	size_t n_fields;
	nemo_file *next;          /* the set's list, for freeing */
};

static void nemo_free_files(void *priv)
{
	for (nemo_file *f = priv, *next; f; f = next) {
		next = f->next;
		nck_ts_plan_free(f->plan);
		pthread_mutex_destroy(&f->lock);
		pthread_cond_destroy(&f->cond);
		free(f->state);
		free(f->fields);
		free(f);
	}
}

/* The CRC-32 of entry i's data, read through the file's own layout. */
static int nemo_crc_compute(const nck_catalog *cat, nemo_file *f, size_t i, uint32_t *out)
{
	const nck_ts_entry *e = &f->plan->entries[i];
	unsigned char *buf = malloc(NEMO_CRC_BLOCK);
	uLong crc = crc32(0, NULL, 0);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t at = 0; at < e->nbytes && rc == 0; at += NEMO_CRC_BLOCK) {
		size_t n = e->nbytes - at < NEMO_CRC_BLOCK ? (size_t)(e->nbytes - at) : NEMO_CRC_BLOCK;

		if ((rc = nck_layout_read(cat, &f->vs->files[f->index].layout, e->data + at, buf,
					  n)) == 0)
			crc = crc32(crc, buf, (uInt)n);
	}
	free(buf);
	*out = (uint32_t)crc;
	return rc;
}

/* Sets entry i's CRC once; concurrent readers of it wait, readers of
 * other entries do not (the data are read outside the lock). */
static int nemo_crc_ensure(const nck_catalog *cat, nemo_file *f, size_t i)
{
	uint32_t crc = 0;
	int rc;

	pthread_mutex_lock(&f->lock);
	while (f->state[i] == CRC_BUSY)
		pthread_cond_wait(&f->cond, &f->lock);
	if (f->state[i] == CRC_SET) {
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	f->state[i] = CRC_BUSY;
	pthread_mutex_unlock(&f->lock);
	rc = nemo_crc_compute(cat, f, i, &crc);
	pthread_mutex_lock(&f->lock);
	if (rc == 0)
		nck_ts_set_crc(f->plan, i, crc);
	f->state[i] = rc == 0 ? CRC_SET : CRC_NONE;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* Bytes of one CRC field: computed on first use. */
static int nemo_crc_read(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			 size_t len)
{
	const nemo_crc_field *fd = arg;
	int rc = nemo_crc_ensure(cat, fd->file, fd->entry);

	if (rc == 0) {
		pthread_mutex_lock(&fd->file->lock);
		memcpy(buf, fd->mem + pos, len);
		pthread_mutex_unlock(&fd->file->lock);
	}
	return rc;
}

static int nemo_field_cmp(const void *a, const void *b)
{
	const nemo_crc_field *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Every CRC field of the plan, sorted by position. */
static int nemo_fields(nemo_file *f)
{
	const nck_ts_plan *plan = f->plan;

	if (!(f->fields = calloc(2 * plan->n_entries + 1, sizeof(*f->fields))))
		return -ENOMEM;
	for (size_t i = 0; i < plan->n_entries; i++)
		for (int k = 0; k < 2 && plan->entries[i].nbytes; k++)
			f->fields[f->n_fields++] = (nemo_crc_field){ .file = f, .entry = i,
								     .pos = plan->entries[i].crc_at[k] };
	qsort(f->fields, f->n_fields, sizeof(*f->fields), nemo_field_cmp);
	return 0;
}

/* Lays the zip out: memory pieces split around their CRC fields (computed
 * 4-byte segments), and each tensor's bytes. */
static int nemo_layout(nemo_file *f, nck_layout *l, const nck_shard_tensor *st)
{
	const nck_ts_plan *plan = f->plan;
	size_t next = 0;
	int rc = nemo_fields(f);

	for (size_t i = 0; i < plan->n_pieces && rc == 0; i++) {
		const nck_ts_piece *pc = &plan->pieces[i];
		uint64_t at = pc->off, end = pc->off + pc->len;

		if (pc->kind == NCK_TS_DATA) {
			rc = nck_shard_segments(l, &st[pc->tensor]);
			continue;
		}
		while (rc == 0 && next < f->n_fields && f->fields[next].pos < end) {
			nemo_crc_field *fd = &f->fields[next++];

			if (fd->pos < at || fd->pos + 4 > end)
				return -EINVAL; /* a field across pieces: the planner's bug */
			fd->mem = pc->mem + (fd->pos - pc->off);
			if ((rc = nck_layout_mem(l, pc->mem + (at - pc->off), fd->pos - at)) == 0)
				rc = nck_layout_fn(l, nemo_crc_read, fd, 0, 4);
			at = fd->pos + 4;
		}
		if (rc == 0)
			rc = nck_layout_mem(l, pc->mem + (at - pc->off), end - at);
	}
	return rc;
}

/* The directory of rank (tp, pp)'s weights, as NeMo names it. */
static void nemo_rank_path(char *out, size_t n, uint32_t T, uint32_t P, uint32_t tp, uint32_t pp)
{
	if (T == 1 && P == 1)
		snprintf(out, n, "model_weights.ckpt");
	else if (P == 1)
		snprintf(out, n, "mp_rank_%02u/model_weights.ckpt", tp);
	else
		snprintf(out, n, "tp_rank_%02u_pp_rank_%03u/model_weights.ckpt", tp, pp);
}

/* Adds the weights file of rank (tp, pp). */
static int nemo_weights(nck_viewset *vs, const nck_view_ctx *ctx, const nck_model_facts *m,
			uint32_t T, uint32_t P, uint32_t tp, uint32_t pp)
{
	nck_shard_tensor *st = NULL;
	nck_ts_tensor *tt = NULL;
	nemo_file *f;
	nck_vfile *vf;
	char path[96];
	nck_diag diag;
	size_t n = 0;
	int rc;

	if (!(f = calloc(1, sizeof(*f))))
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->next = vs->priv;
	vs->priv = f;
	vs->free_priv = nemo_free_files;
	if ((rc = nck_shard_rank(ctx->cat, m, T, P, tp, pp, true, &vs->arena, &st, &n)) < 0)
		return rc;
	rc = -ENOMEM;
	if (!(tt = calloc(n ? n : 1, sizeof(*tt))))
		goto out;
	for (size_t i = 0; i < n; i++) {
		tt[i] = (nck_ts_tensor){ .name = st[i].name, .dtype = st[i].dtype, .ndim = st[i].ndim };
		memcpy(tt[i].shape, st[i].shape, sizeof(tt[i].shape));
	}
	nck_diag_init(&diag);
	if ((rc = nck_ts_plan_build(&f->plan, "model_weights", tt, n, &diag)) < 0)
		goto out;
	rc = -ENOMEM;
	if (!(f->state = calloc(n ? n : 1, sizeof(*f->state))))
		goto out;
	nemo_rank_path(path, sizeof(path), T, P, tp, pp);
	if (!(vf = nck_viewset_add(vs, path, NCK_VFILE_LAYOUT)))
		goto out;
	f->vs = vs;
	f->index = vs->n_files - 1;
	if ((rc = nemo_layout(f, &vf->layout, st)) < 0)
		goto out;
	vf->size = vf->layout.size;
	rc = vf->size == f->plan->size ? 0 : -EINVAL;
out:
	free(tt);
	free(st);
	return rc;
}

/* model_config.yaml with the new sizes, and the artifacts as they are. */
static int nemo_config(nck_viewset *vs, const nck_view_ctx *ctx, uint32_t T, uint32_t P)
{
	nck_vfile *f;
	nck_diag diag;
	char *yaml;
	size_t len;
	int rc;

	nck_diag_init(&diag);
	if ((rc = nck_yaml_set_parallel(ctx->config_path, ctx->config, ctx->config_len, T, P, &yaml,
					&len, &diag)) < 0 ||
	    (rc = nck_viewset_own(vs, yaml)) < 0)
		return rc;
	if (!(f = nck_viewset_add(vs, "model_config.yaml", NCK_VFILE_MEM)))
		return -ENOMEM;
	f->mem = yaml;
	f->size = len;
	for (size_t i = 0; ctx->artifacts && ctx->artifacts[i]; i++) {
		if (!(f = nck_viewset_add(vs, ctx->artifacts[i]->path, NCK_VFILE_MEMBER)))
			return -ENOMEM;
		f->member = ctx->artifacts[i];
	}
	return 0;
}

int nck_nemo_build(nck_viewset *vs, const nck_view_ctx *ctx, nck_view_kind kind, uint32_t T,
		   uint32_t P)
{
	nck_model_facts m;
	int rc;

	(void)kind;
	nck_catalog_model(ctx->cat, &m);
	if ((rc = nemo_config(vs, ctx, T, P)) < 0)
		return rc;
	for (uint32_t pp = 0; pp < P && rc == 0; pp++)
		for (uint32_t tp = 0; tp < T && rc == 0; tp++)
			rc = nemo_weights(vs, ctx, &m, T, P, tp, pp);
	return rc;
}
