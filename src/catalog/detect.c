/* SPDX-License-Identifier: MIT */
/*
 * Layout detection: which checkpoint generation a container holds, from its
 * listing alone (the listing is the ground truth; the YAML's parallel sizes
 * are cross-checked later). Rank directory names follow NeMo's
 * inject_model_parallel_rank (mp_rank_TT, tp_rank_TT_pp_rank_PPP) and
 * Megatron-LM's get_checkpoint_name (mp_rank_TT[_PPP]); spec
 * nemo-layouts.md §0 (decision table), §2.1, §5, §7.
 *
 * Thread-safety: runs once while a catalog is built.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finds the file entry at `path`, or NULL. */
static const nck_entry *detect_find(const nck_container *c, const char *path)
{
	for (size_t i = 0; i < c->n_entries; i++)
		if (c->entries[i].kind == NCK_ENTRY_FILE && strcmp(c->entries[i].path, path) == 0)
			return &c->entries[i];
	return NULL;
}

/* True if some entry lies under directory `dir`. */
static bool detect_has_dir(const nck_container *c, const char *dir)
{
	size_t n = strlen(dir);

	for (size_t i = 0; i < c->n_entries; i++)
		if (strncmp(c->entries[i].path, dir, n) == 0 && c->entries[i].path[n] == '/')
			return true;
	return false;
}

/* Reads exactly `n` decimal digits at *p; advances *p. */
static bool detect_digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + (unsigned)((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* Skips the literal `lit` at *p; false if it is not there. */
static bool detect_lit(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Parses "<prefix>mp_rank_TT[_PPP]/<file>" or "<prefix>tp_rank_TT_pp_rank_PPP/<file>"
 * (2-digit TP, 3-digit PP). Returns 1 (and tp, pp, whether PP was named) on a match. */
static int detect_rank_dir(const char *path, const char *prefix, const char *file, unsigned *tp,
			   unsigned *pp, bool *has_pp)
{
	const char *p = path;

	*pp = 0;
	*has_pp = false;
	if (!detect_lit(&p, prefix))
		return 0;
	if (detect_lit(&p, "tp_rank_")) {
		if (!detect_digits(&p, 2, tp) || !detect_lit(&p, "_pp_rank_") || !detect_digits(&p, 3, pp))
			return 0;
		*has_pp = true;
	} else if (detect_lit(&p, "mp_rank_")) {
		if (!detect_digits(&p, 2, tp))
			return 0;
		if (*p == '_') {
			p++;
			if (!detect_digits(&p, 3, pp))
				return 0;
			*has_pp = true;
		}
	} else {
		return 0;
	}
	return detect_lit(&p, "/") && strcmp(p, file) == 0;
}

/* Collects the per-rank files named `file` under `prefix`; checks the
 * grid is complete (every tp < T for every pp < P, once). */
static int detect_ranks(nck_layout *l, const nck_container *c, nck_arena *arena, const char *prefix,
			const char *file, nck_diag *diag)
{
	unsigned tp, pp, max_tp = 0, max_pp = 0;
	bool has_pp = false, any = false;
	size_t n = 0;

	for (size_t i = 0; i < c->n_entries; i++) {
		if (c->entries[i].kind != NCK_ENTRY_FILE ||
		    !detect_rank_dir(c->entries[i].path, prefix, file, &tp, &pp, &has_pp))
			continue;
		any = true;
		max_tp = tp > max_tp ? tp : max_tp;
		max_pp = pp > max_pp ? pp : max_pp;
		n++;
	}
	if (!any)
		return 0;
	if ((uint64_t)(max_tp + 1) * (max_pp + 1) > NCK_CATALOG_MAX_RANKS)
		return nck_diag_set(diag, -EBADMSG, c->path, -1, "%u x %u ranks: too many",
				    max_tp + 1, max_pp + 1);
	l->tp = max_tp + 1;
	l->pp = max_pp + 1;
	l->n_ranks = (size_t)l->tp * l->pp;
	l->ranks = nck_arena_alloc(arena, l->n_ranks * sizeof(*l->ranks));
	if (!l->ranks)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_entries; i++) {
		nck_rank_file *r;

		if (c->entries[i].kind != NCK_ENTRY_FILE ||
		    !detect_rank_dir(c->entries[i].path, prefix, file, &tp, &pp, &has_pp))
			continue;
		r = &l->ranks[(size_t)pp * l->tp + tp];
		if (r->entry)
			return nck_diag_set(diag, -EBADMSG, c->path, -1, "two files for rank tp=%u pp=%u",
					    tp, pp);
		*r = (nck_rank_file){ .tp = tp, .pp = pp, .entry = &c->entries[i] };
	}
	for (size_t i = 0; i < l->n_ranks; i++)
		if (!l->ranks[i].entry)
			return nck_diag_set(diag, -EBADMSG, c->path, -1,
					    "rank tp=%zu pp=%zu is missing (%s%s)", i % l->tp,
					    i / l->tp, prefix, file);
	(void)n;
	return 1;
}

/* Megatron-LM: the newest iter_NNNNNNN/ directory (the one
 * latest_checkpointed_iteration.txt names, in every checkpoint saved by
 * Megatron's own loop), or NULL. */
static const char *detect_megatron_iter(const nck_container *c, nck_arena *arena)
{
	unsigned long best = 0, it;
	bool found = false;
	char buf[32];

	for (size_t i = 0; i < c->n_entries; i++) {
		int n = 0;

		if (sscanf(c->entries[i].path, "iter_%7lu/%n", &it, &n) == 1 && n == 13 &&
		    (!found || it > best)) {
			best = it;
			found = true;
		}
	}
	if (!found) {
		/* Converted checkpoints live in release/ (the tracker file says "release"). */
		for (size_t i = 0; i < c->n_entries; i++)
			if (strncmp(c->entries[i].path, "release/", 8) == 0)
				return "release/";
		return NULL;
	}
	snprintf(buf, sizeof(buf), "iter_%07lu/", best);
	return nck_arena_strndup(arena, buf, strlen(buf));
}

/* The tokenizer artifact: a file whose name says so, at the root or in
 * context/ (NeMo 2). The config's nemo: reference, when present, wins
 * (config.c). */
static const nck_entry *detect_tokenizer(const nck_container *c)
{
	static const char *const suffixes[] = { "tokenizer.model", "tokenizer.json", "vocab.json",
						"vocab.txt" };

	for (size_t s = 0; s < sizeof(suffixes) / sizeof(suffixes[0]); s++) {
		size_t sl = strlen(suffixes[s]);

		for (size_t i = 0; i < c->n_entries; i++) {
			const char *p = c->entries[i].path;
			size_t pl = strlen(p);

			if (c->entries[i].kind == NCK_ENTRY_FILE && pl >= sl &&
			    strcmp(p + pl - sl, suffixes[s]) == 0)
				return &c->entries[i];
		}
	}
	return NULL;
}

int nck_layout_detect(nck_layout *out, const nck_container *c, nck_arena *arena, nck_diag *diag)
{
	const char *iter;
	int rc;

	memset(out, 0, sizeof(*out));
	out->tp = out->pp = 1;
	out->tokenizer = detect_tokenizer(c);
	if (detect_has_dir(c, "context") && detect_find(c, "weights/metadata.json")) {
		*out = (nck_layout){ .kind = NCK_LAYOUT_DIST, .format = "nemo2", .name = "torch_dist",
				     .tp = 1, .pp = 1, .dist_dir = "weights",
				     .config = detect_find(c, "context/model.yaml"),
				     .tokenizer = out->tokenizer };
		return 0;
	}
	out->config = detect_find(c, "model_config.yaml");
	out->format = "nemo";
	if (detect_find(c, "model_weights/metadata.json")) {
		out->kind = NCK_LAYOUT_DIST;
		out->name = "distributed";
		out->dist_dir = "model_weights";
		return 0;
	}
	if ((out->ranks = NULL, detect_find(c, "model_weights.ckpt"))) {
		out->kind = NCK_LAYOUT_NEMO_SINGLE;
		out->name = "single";
		out->n_ranks = 1;
		out->ranks = nck_arena_alloc(arena, sizeof(*out->ranks));
		if (!out->ranks)
			return -ENOMEM;
		out->ranks[0].entry = detect_find(c, "model_weights.ckpt");
		return 0;
	}
	if ((rc = detect_ranks(out, c, arena, "", "model_weights.ckpt", diag)) != 0) {
		if (rc < 0)
			return rc;
		out->kind = out->pp > 1 || detect_has_dir(c, "tp_rank_00_pp_rank_000")
				    ? NCK_LAYOUT_NEMO_TP_PP : NCK_LAYOUT_NEMO_TP;
		out->name = out->kind == NCK_LAYOUT_NEMO_TP ? "tp" : "tp_pp";
		return 0;
	}
	if (detect_find(c, "config.json") && detect_find(c, "rank0.safetensors")) {
		out->kind = NCK_LAYOUT_QNEMO;
		out->format = "qnemo";
		out->name = "trtllm";
		out->config = detect_find(c, "config.json");
		return 0;
	}
	out->format = "megatron";
	out->config = NULL;
	iter = detect_megatron_iter(c, arena);
	if ((rc = detect_ranks(out, c, arena, iter ? iter : "", "model_optim_rng.pt", diag)) != 0) {
		if (rc < 0)
			return rc;
		out->kind = NCK_LAYOUT_MEGATRON;
		out->name = out->pp > 1 ? "tp_pp" : "tp";
		return 0;
	}
	if (iter) {
		char meta[64];

		snprintf(meta, sizeof(meta), "%smetadata.json", iter);
		if (detect_find(c, meta)) {
			out->kind = NCK_LAYOUT_DIST;
			out->name = "torch_dist";
			out->dist_dir = nck_arena_strndup(arena, iter, strlen(iter) - 1);
			return out->dist_dir ? 0 : -ENOMEM;
		}
	}
	/* A torch_dist directory (metadata.json), or a plain PyTorch DCP
	 * checkpoint, which has only .metadata and __R_I.distcp files. */
	if (detect_find(c, ".metadata") &&
	    (detect_find(c, "metadata.json") || detect_find(c, "__0_0.distcp"))) {
		out->kind = NCK_LAYOUT_DIST;
		out->format = detect_find(c, "metadata.json") ? "megatron" : "dcp";
		out->name = "torch_dist";
		out->dist_dir = "";
		return 0;
	}
	for (size_t i = 0; i < c->n_entries; i++) {
		const char *p = c->entries[i].path;
		size_t n = strlen(p);

		if (c->entries[i].kind == NCK_ENTRY_FILE && !strchr(p, '/') && n > 12 &&
		    strcmp(p + n - 12, ".safetensors") == 0) {
			out->kind = NCK_LAYOUT_SAFETENSORS;
			out->format = "safetensors";
			out->name = "files";
			return 0;
		}
	}
	out->format = "unknown";
	out->name = "none";
	out->kind = NCK_LAYOUT_NONE;
	return 0;
}
