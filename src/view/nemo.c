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
 * central directory, so those bytes depend on the data. They are computed
 * on the first read of a piece that holds them (once per tensor, under the
 * file's lock) by reading the tensor through the same layout; the other
 * bytes never wait for it. torch.load does not check them, zip tools do.
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

/* A piece of the zip that holds CRC fields: entries [lo, hi). */
typedef struct nemo_crc_piece {
	nemo_file *file;
	const unsigned char *mem;
	size_t lo, hi;
} nemo_crc_piece;

struct nemo_file {
	nck_ts_plan *plan;
	const nck_viewset *vs;    /* the file is vs->files[index] (the table may move while building) */
	size_t index;
	pthread_mutex_t lock;     /* guards done[] and the plan's CRC bytes */
	bool *done;               /* per entry: CRC computed and set */
	nemo_crc_piece *pieces;
	size_t n_pieces;
	nemo_file *next;          /* the set's list, for freeing */
};

static void nemo_free_files(void *priv)
{
	for (nemo_file *f = priv, *next; f; f = next) {
		next = f->next;
		nck_ts_plan_free(f->plan);
		pthread_mutex_destroy(&f->lock);
		free(f->done);
		free(f->pieces);
		free(f);
	}
}

/* Computes entry i's CRC from its data bytes. Called with the lock held. */
static int nemo_crc(const nck_catalog *cat, nemo_file *f, size_t i)
{
	const nck_ts_entry *e = &f->plan->entries[i];
	unsigned char *buf;
	uLong crc = crc32(0, NULL, 0);
	int rc = 0;

	if (f->done[i] || e->nbytes == 0)
		return 0;
	if (!(buf = malloc(NEMO_CRC_BLOCK)))
		return -ENOMEM;
	for (uint64_t at = 0; at < e->nbytes && rc == 0; at += NEMO_CRC_BLOCK) {
		size_t n = e->nbytes - at < NEMO_CRC_BLOCK ? (size_t)(e->nbytes - at) : NEMO_CRC_BLOCK;

		if ((rc = nck_layout_read(cat, &f->vs->files[f->index].layout, e->data + at, buf,
					  n)) == 0)
			crc = crc32(crc, buf, (uInt)n);
	}
	free(buf);
	if (rc < 0)
		return rc;
	nck_ts_set_crc(f->plan, i, (uint32_t)crc);
	f->done[i] = true;
	return 0;
}

/* Bytes of a piece that holds CRC fields: they are computed first. */
static int nemo_crc_read(const nck_catalog *cat, const void *arg, uint64_t pos, void *buf,
			 size_t len)
{
	const nemo_crc_piece *p = arg;
	nemo_file *f = p->file;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = p->lo; i < p->hi && rc == 0; i++)
		rc = nemo_crc(cat, f, i);
	if (rc == 0)
		memcpy(buf, p->mem + pos, len);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* The entries whose CRC fields lie in [off, off+len): a range, since both
 * the descriptors and the directory entries come in entry order. */
static void nemo_crc_range(const nck_ts_plan *plan, uint64_t off, uint64_t len, size_t *lo,
			   size_t *hi)
{
	*lo = plan->n_entries;
	*hi = 0;
	for (size_t i = 0; i < plan->n_entries; i++) {
		const nck_ts_entry *e = &plan->entries[i];

		for (int k = 0; k < 2; k++) {
			if (e->nbytes && e->crc_at[k] >= off && e->crc_at[k] < off + len) {
				*lo = i < *lo ? i : *lo;
				*hi = i + 1 > *hi ? i + 1 : *hi;
			}
		}
	}
}

/* Lays the zip out: its memory pieces (through CRC pieces where needed)
 * and each tensor's bytes. */
static int nemo_layout(nemo_file *f, nck_layout *l, const nck_shard_tensor *st)
{
	const nck_ts_plan *plan = f->plan;
	int rc = 0;

	if (!(f->pieces = calloc(plan->n_pieces ? plan->n_pieces : 1, sizeof(*f->pieces))))
		return -ENOMEM;
	for (size_t i = 0; i < plan->n_pieces && rc == 0; i++) {
		const nck_ts_piece *pc = &plan->pieces[i];
		nemo_crc_piece *cp = &f->pieces[f->n_pieces];

		if (pc->kind == NCK_TS_DATA) {
			rc = nck_shard_segments(l, &st[pc->tensor]);
			continue;
		}
		nemo_crc_range(plan, pc->off, pc->len, &cp->lo, &cp->hi);
		if (cp->lo >= cp->hi) {
			rc = nck_layout_mem(l, pc->mem, pc->len);
			continue;
		}
		cp->file = f;
		cp->mem = pc->mem;
		f->n_pieces++;
		rc = nck_layout_fn(l, nemo_crc_read, cp, 0, pc->len);
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
	if (!(f->done = calloc(n ? n : 1, sizeof(*f->done))))
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

int nck_nemo_build(nck_viewset *vs, const nck_view_ctx *ctx, uint32_t T, uint32_t P)
{
	nck_model_facts m;
	int rc;

	nck_catalog_model(ctx->cat, &m);
	if ((rc = nemo_config(vs, ctx, T, P)) < 0)
		return rc;
	for (uint32_t pp = 0; pp < P && rc == 0; pp++)
		for (uint32_t tp = 0; tp < T && rc == 0; tp++)
			rc = nemo_weights(vs, ctx, &m, T, P, tp, pp);
	return rc;
}
