/* SPDX-License-Identifier: MIT */
/*
 * What layout detection shares: finding entries in the container's listing,
 * collecting a rank grid, Megatron-LM's iteration directory, the tokenizer
 * by name. Which layout a container holds is decided by the readers' detect
 * callbacks, asked in the order of catalog.c's table, from the listing alone
 * (the listing is the ground truth; the YAML's parallel sizes are
 * cross-checked later). Rank directory names follow NeMo's
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

/* A linear scan: detection asks a few names, once per catalog. */
const nck_entry *nck_detect_find(const nck_container *c, const char *path)
{
	for (size_t i = 0; i < c->n_entries; i++)
		if (c->entries[i].kind == NCK_ENTRY_FILE && strcmp(c->entries[i].path, path) == 0)
			return &c->entries[i];
	return NULL;
}

/* Directories need no entry of their own (a tar may list only files). */
bool nck_detect_has_dir(const nck_container *c, const char *dir)
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

/* Checks the grid is complete: every tp < T for every pp < P, once. */
int nck_detect_ranks(nck_layout *l, const nck_container *c, nck_arena *arena, const char *prefix,
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

/* The newest iter_NNNNNNN/ directory is the one
 * latest_checkpointed_iteration.txt names, in every checkpoint saved by
 * Megatron's own loop. */
const char *nck_detect_megatron_iter(const nck_container *c, nck_arena *arena)
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
const nck_entry *nck_detect_tokenizer(const nck_container *c)
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
