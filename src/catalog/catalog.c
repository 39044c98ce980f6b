/* SPDX-License-Identifier: MIT */
/*
 * nck_catalog: builds the logical tensor table of a checkpoint (the reader
 * table: layout detection and reading; the config), sorts it, summarizes it, and
 * reads tensor bytes by gathering their chunks (see nemockpt/catalog.h).
 * Reads go through the gather engine (gather.c).
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building ------------------------------------------------------------- */

nck_tensor *nck_catalog_add(nck_catalog *cat, const char *name, size_t n_chunks)
{
	size_t len = strlen(name);
	nck_tensor *t;

	if (cat->n_tensors >= NCK_CATALOG_MAX_TENSORS)
		cat->over_limit = "tensors";
	else if (n_chunks > NCK_CATALOG_MAX_CHUNKS - cat->n_chunks)
		cat->over_limit = "chunks";
	else if (len > NCK_CATALOG_MAX_NAME_BYTES - cat->name_bytes)
		cat->over_limit = "bytes of tensor names";
	if (cat->over_limit)
		return NULL;
	if (cat->n_tensors == cat->cap_tensors) {
		size_t cap = cat->cap_tensors ? 2 * cat->cap_tensors : 256;

		t = realloc(cat->tensors, cap * sizeof(*t));
		if (!t)
			return NULL;
		cat->tensors = t;
		cat->cap_tensors = cap;
	}
	t = &cat->tensors[cat->n_tensors];
	memset(t, 0, sizeof(*t));
	t->name = nck_arena_strndup(&cat->arena, name, len);
	t->chunks = n_chunks ? nck_arena_alloc(&cat->arena, n_chunks * sizeof(nck_chunk)) : NULL;
	if (!t->name || (n_chunks && !t->chunks))
		return NULL;
	t->n_chunks = n_chunks;
	cat->n_tensors++;
	cat->n_chunks += n_chunks;
	cat->name_bytes += len;
	return t;
}

int nck_catalog_add_file(nck_catalog *cat, const nck_entry *e, uint32_t *index_out, nck_diag *diag)
{
	nck_catalog_file *f;
	int rc;

	for (size_t i = 0; i < cat->n_files; i++) {
		if (cat->files[i].entry == e) {
			*index_out = (uint32_t)i;
			return 0;
		}
	}
	if (cat->n_files == cat->cap_files) {
		size_t cap = cat->cap_files ? 2 * cat->cap_files : 16;

		f = realloc(cat->files, cap * sizeof(*f));
		if (!f)
			return nck_diag_set(diag, -ENOMEM, cat->container->path, -1, "out of memory");
		cat->files = f;
		cat->cap_files = cap;
	}
	f = &cat->files[cat->n_files];
	f->entry = e;
	if ((rc = nck_container_member_src(&f->src, cat->container, e)) < 0)
		return nck_diag_set(diag, rc, e->path, -1, "cannot open the member");
	*index_out = (uint32_t)cat->n_files++;
	return 0;
}

void nck_tensor_cut_rows(nck_tensor *t, uint64_t keep)
{
	size_t w = 0;

	for (size_t i = 0; i < t->n_chunks; i++) {
		nck_chunk ch = t->chunks[i];

		if (ch.offset[0] >= keep)
			continue;
		if (ch.offset[0] + ch.shape[0] > keep)
			ch.shape[0] = keep - ch.offset[0];
		((nck_chunk *)t->chunks)[w++] = ch;
	}
	t->n_chunks = w;
	t->shape[0] = keep;
}

uint64_t nck_catalog_padded_vocab(nck_catalog *cat)
{
	uint64_t d = cat->cfg.divisible_by > 0 ? (uint64_t)cat->cfg.divisible_by : 1;

	if (cat->cfg.vocab == 0)
		return 0;
	cat->info.padded_vocab = (cat->cfg.vocab + d - 1) / d * d;
	return cat->info.padded_vocab;
}

void nck_catalog_warn(nck_catalog *cat, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (cat->n_warnings >= NCK_CATALOG_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cat->warnings[cat->n_warnings] = nck_arena_strndup(&cat->arena, line, strlen(line));
	if (cat->warnings[cat->n_warnings])
		cat->n_warnings++;
}

/* Orders tensors by name. */
static int catalog_cmp(const void *a, const void *b)
{
	return strcmp(((const nck_tensor *)a)->name, ((const nck_tensor *)b)->name);
}

/* Tensors up to 2^56 bytes: every size, offset and padded shape computed
 * from them fits in 64 bits. A stride-0 (expanded) tensor could claim any
 * shape over a few bytes of storage. */
static bool catalog_size_ok(const nck_tensor *t)
{
	uint64_t n = nck_dtype_size(t->dtype);

	for (uint32_t d = 0; d < t->ndim; d++)
		if (__builtin_mul_overflow(n, t->shape[d], &n) || n > (1ull << 56))
			return false;
	return true;
}

/* Fills the summary once the tensors are known. */
static void catalog_summarize(nck_catalog *cat)
{
	uint64_t per_dtype[NCK_DTYPE_COUNT] = { 0 };
	nck_catalog_info *in = &cat->info;

	in->format = cat->layout.format;
	in->layout = cat->layout.name;
	if (!in->model)
		in->model = cat->n_tensors ? "other" : "none";
	in->tp = cat->layout.tp;
	in->pp = cat->layout.pp;
	/* Distributed files are the same for any TP/PP: the config says what
	 * the training run used. */
	if (cat->layout.kind == NCK_LAYOUT_DIST && cat->cfg.tp > 0)
		in->tp = (uint32_t)cat->cfg.tp;
	if (cat->layout.kind == NCK_LAYOUT_DIST && cat->cfg.pp > 0)
		in->pp = (uint32_t)cat->cfg.pp;
	in->vocab_size = cat->cfg.vocab;
	for (size_t i = 0; i < cat->n_tensors; i++) {
		const nck_tensor *t = &cat->tensors[i];
		uint64_t n = 1;

		if (t->role != NCK_ROLE_WEIGHT)
			continue;
		for (uint32_t d = 0; d < t->ndim; d++)
			n *= t->shape[d];
		in->n_weights++;
		in->n_params += n;
		in->weight_bytes += n * nck_dtype_size(t->dtype);
		per_dtype[t->dtype] += n;
	}
	for (int d = 1; d < NCK_DTYPE_COUNT; d++)
		if (per_dtype[d] > per_dtype[in->dtype])
			in->dtype = (nck_dtype)d;
	if (cat->cfg.tp > 0 && (uint64_t)cat->cfg.tp != in->tp && cat->layout.kind != NCK_LAYOUT_DIST)
		nck_catalog_warn(cat, "the config says tensor_model_parallel_size=%lld, the files %u",
				 (long long)cat->cfg.tp, in->tp);
	if (cat->cfg.pp > 0 && (uint64_t)cat->cfg.pp != in->pp && cat->layout.kind != NCK_LAYOUT_DIST)
		nck_catalog_warn(cat, "the config says pipeline_model_parallel_size=%lld, the files %u",
				 (long long)cat->cfg.pp, in->pp);
	cat->warnings[cat->n_warnings] = NULL;
	in->warnings = cat->warnings;
}

/*
 * The checkpoint layouts and their readers, asked in this order (libarchive's
 * format table; one line per layout; spec nemo-layouts.md §0). The order is
 * the precedence: the first detect that matches decides, where listings
 * fit several (a .nemo with model_weights/metadata.json and
 * model_weights.ckpt is distributed; an iteration directory with rank
 * files and metadata.json is read by its rank files).
 */
static const nck_catalog_reader *const catalog_readers[] = {
	&nck_catalog_nemo2_dist_reader,      /* context/, weights/metadata.json */
	&nck_catalog_nemo_dist_reader,       /* model_weights/metadata.json */
	&nck_catalog_nemo_legacy_reader,     /* model_weights.ckpt, per rank or not */
	&nck_catalog_qnemo_reader,           /* config.json, rank0.safetensors */
	&nck_catalog_megatron_legacy_reader, /* [iter_N/]mp_rank_TT[_PPP]/model_optim_rng.pt */
	&nck_catalog_megatron_dist_reader,   /* iter_N/metadata.json */
	&nck_catalog_root_dist_reader,       /* .metadata, metadata.json or __0_0.distcp */
	&nck_catalog_safetensors_reader,     /* *.safetensors at the root */
	NULL,
};

int nck_layout_detect(nck_layout *out, const nck_catalog_reader **reader_out,
		      const nck_container *c, nck_arena *arena, nck_diag *diag)
{
	const nck_entry *tok = nck_detect_tokenizer(c);
	int rc;

	*reader_out = NULL;
	for (size_t i = 0; catalog_readers[i]; i++) {
		*out = (nck_layout){ .tp = 1, .pp = 1, .tokenizer = tok };
		rc = catalog_readers[i]->detect(out, c, arena, diag);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			*reader_out = catalog_readers[i];
			return 0;
		}
	}
	*out = (nck_layout){ .kind = NCK_LAYOUT_NONE, .format = "unknown", .name = "none", .tp = 1,
			     .pp = 1, .tokenizer = tok };
	return 0;
}

/* Runs the reader whose detect matched (none for NCK_LAYOUT_NONE). */
static int catalog_read_layout(nck_catalog *cat, nck_diag *diag)
{
	return cat->reader ? cat->reader->read(cat, diag) : 0;
}

/* The one-line error of a catalog over one of its limits. */
static int catalog_limit_error(const nck_catalog *cat, nck_diag *diag)
{
	const char *what = cat->over_limit;
	size_t lim = strcmp(what, "tensors") == 0  ? NCK_CATALOG_MAX_TENSORS
		     : strcmp(what, "chunks") == 0 ? NCK_CATALOG_MAX_CHUNKS
						   : NCK_CATALOG_MAX_NAME_BYTES;

	return nck_diag_set(diag, -E2BIG, cat->container->path, -1,
			    "the metadata lists more than %zu %s: refused (a limit of this version)",
			    lim, what);
}

int nck_catalog_build(nck_catalog **out, nck_container *c, nck_diag *diag)
{
	nck_catalog *cat = calloc(1, sizeof(*cat));
	nck_diag rdiag;
	int rc;

	*out = NULL;
	nck_diag_init(&rdiag);
	if (!cat)
		return nck_diag_set(diag, -ENOMEM, c->path, -1, "out of memory");
	nck_arena_init(&cat->arena);
	cat->container = c;
	if ((rc = nck_layout_detect(&cat->layout, &cat->reader, c, &cat->arena, diag)) < 0 ||
	    (rc = nck_model_cfg_load(&cat->cfg, c, &cat->layout, diag)) < 0)
		goto fail;
	if (cat->cfg.vocab_error[0])
		nck_catalog_warn(cat, "vocabulary size unknown: %s", cat->cfg.vocab_error);
	if ((rc = catalog_read_layout(cat, &rdiag)) < 0 || cat->over_limit) {
		rc = cat->over_limit ? catalog_limit_error(cat, diag) : rc;
		if (!cat->over_limit && diag)
			*diag = rdiag;
		goto fail;
	}
	if (cat->n_tensors > 1)
		qsort(cat->tensors, cat->n_tensors, sizeof(*cat->tensors), catalog_cmp);
	for (size_t i = 0; i < cat->n_tensors; i++) {
		if (!catalog_size_ok(&cat->tensors[i])) {
			rc = nck_diag_set(diag, -EBADMSG, c->path, -1,
					  "tensor '%s' is larger than 2^56 bytes", cat->tensors[i].name);
			goto fail;
		}
		if (i && strcmp(cat->tensors[i - 1].name, cat->tensors[i].name) == 0) {
			rc = nck_diag_set(diag, -EBADMSG, c->path, -1, "tensor '%s' is defined twice",
					  cat->tensors[i].name);
			goto fail;
		}
	}
	catalog_summarize(cat);
	if ((rc = nck_catalog_facts_build(cat)) < 0)
		goto fail;
	*out = cat;
	return 0;
fail:
	if (rc == -ENOMEM)
		nck_diag_set(diag, rc, c->path, -1, "out of memory");
	nck_catalog_close(cat);
	return rc;
}

int nck_catalog_open(nck_catalog **out, const char *path, nck_diag *diag)
{
	nck_container *c = NULL;
	int rc;

	*out = NULL;
	if ((rc = nck_container_open(&c, path, diag)) < 0)
		return rc;
	if ((rc = nck_catalog_build(out, c, diag)) < 0) {
		nck_container_close(c);
		return rc;
	}
	(*out)->own_container = true;
	return 0;
}

void nck_catalog_close(nck_catalog *cat)
{
	if (!cat)
		return;
	for (size_t i = 0; i < cat->n_files; i++)
		nck_src_close(cat->files[i].src);
	free(cat->files);
	free(cat->tensors);
	free(cat->splits);
	if (cat->own_container)
		nck_container_close(cat->container);
	nck_arena_dispose(&cat->arena);
	free(cat);
}

/* ---- queries ---------------------------------------------------------------- */

const nck_catalog_info *nck_catalog_get_info(const nck_catalog *cat)
{
	return &cat->info;
}

size_t nck_catalog_count(const nck_catalog *cat)
{
	return cat->n_tensors;
}

const nck_tensor *nck_catalog_at(const nck_catalog *cat, size_t i)
{
	return i < cat->n_tensors ? &cat->tensors[i] : NULL;
}

const nck_tensor *nck_catalog_find(const nck_catalog *cat, const char *name)
{
	nck_tensor key = { .name = name };

	return bsearch(&key, cat->tensors, cat->n_tensors, sizeof(key), catalog_cmp);
}

const char *nck_catalog_file_path(const nck_catalog *cat, uint32_t file)
{
	return file < cat->n_files ? cat->files[file].entry->path : NULL;
}

void nck_catalog_artifacts(const nck_catalog *cat, const char **config_out,
			   const char **tokenizer_out)
{
	*config_out = cat->layout.config ? cat->layout.config->path : NULL;
	*tokenizer_out = cat->cfg.tokenizer ? cat->cfg.tokenizer->path
		       : cat->layout.tokenizer ? cat->layout.tokenizer->path : NULL;
}

uint32_t nck_catalog_source_mode(const nck_catalog *cat)
{
	uint32_t m = 0777;

	for (size_t i = 0; i < cat->n_files; i++)
		m &= cat->files[i].entry->mode;
	if (cat->layout.config)
		m &= cat->layout.config->mode;
	if (cat->cfg.tokenizer)
		m &= cat->cfg.tokenizer->mode;
	else if (cat->layout.tokenizer)
		m &= cat->layout.tokenizer->mode;
	return m & 0777;
}

uint64_t nck_tensor_bytes(const nck_tensor *t)
{
	uint64_t n = nck_dtype_size(t->dtype);

	for (uint32_t d = 0; d < t->ndim; d++)
		n *= t->shape[d];
	return n;
}

/* ---- facts for the views ---------------------------------------------------- */

static uint64_t catalog_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t c = a % b;

		a = b;
		b = c;
	}
	return a;
}

/* The split rule of t by its name. */
static nck_split catalog_split_of(const nck_catalog *cat, const nck_tensor *t)
{
	if (!cat->info.model || strcmp(cat->info.model, "gpt") != 0)
		return NCK_SPLIT_NONE;
	switch (nck_param_kind_of(t->name, &cat->cfg)) {
	case NCK_PARAM_COLUMN:
		return NCK_SPLIT_COLUMN;
	case NCK_PARAM_COLUMN_GATED:
		return NCK_SPLIT_GATED;
	case NCK_PARAM_ROW:
		return NCK_SPLIT_ROW;
	case NCK_PARAM_VOCAB:
		return NCK_SPLIT_VOCAB;
	default:
		return NCK_SPLIT_NONE;
	}
}

int nck_catalog_facts_build(nck_catalog *cat)
{
	const nck_model_cfg *cfg = &cat->cfg;
	nck_model_facts *out = &cat->facts;

	memset(out, 0, sizeof(*out));
	if (!(cat->splits = calloc(cat->n_tensors ? cat->n_tensors : 1, sizeof(*cat->splits))))
		return -ENOMEM;
	out->gpt = cat->info.model && strcmp(cat->info.model, "gpt") == 0 &&
		   cat->layout.kind != NCK_LAYOUT_QNEMO;
	out->tied = cfg->tied;
	out->gated = cfg->gated;
	out->heads = cfg->heads > 0 ? (uint64_t)cfg->heads : 0;
	out->groups = cfg->groups > 0 ? (uint64_t)cfg->groups : out->heads;
	out->ffn = cfg->ffn > 0 ? (uint64_t)cfg->ffn : 0;
	out->vocab = cfg->vocab;
	out->divisible_by = cfg->divisible_by > 0 ? (uint64_t)cfg->divisible_by : 128;
	for (size_t i = 0; i < cat->n_tensors; i++) {
		const nck_tensor *t = &cat->tensors[i];
		size_t start, len;
		uint64_t layer;

		if (nck_param_layer(t->name, &start, &len, &layer) && layer + 1 > out->layers)
			out->layers = layer + 1;
		cat->splits[i] = t->role == NCK_ROLE_WEIGHT ? catalog_split_of(cat, t) : NCK_SPLIT_NONE;
		switch (cat->splits[i]) {
		case NCK_SPLIT_COLUMN:
			out->column_gcd = catalog_gcd(out->column_gcd, t->ndim ? t->shape[0] : 1);
			break;
		case NCK_SPLIT_GATED:
			/* An odd row count cannot be halved: 1 keeps only T = 1 valid... */
			out->gated_gcd = catalog_gcd(out->gated_gcd,
						     t->ndim && t->shape[0] % 2 == 0 ? t->shape[0] / 2 : 1);
			/* ...and T = 1 needs no halving at all. */
			break;
		case NCK_SPLIT_ROW:
			if (t->ndim == 2)
				out->row_gcd = catalog_gcd(out->row_gcd, t->shape[1]);
			else
				out->row_not_2d = true;
			break;
		default:
			break;
		}
	}
	return 0;
}

void nck_catalog_model(const nck_catalog *cat, nck_model_facts *out)
{
	*out = cat->facts;
}

nck_split nck_catalog_split(const nck_catalog *cat, const nck_tensor *t)
{
	size_t i = (size_t)(t - cat->tensors);

	return i < cat->n_tensors && cat->splits ? cat->splits[i] : NCK_SPLIT_NONE;
}

bool nck_name_layer(const char *name, size_t *start, size_t *len, uint64_t *layer)
{
	return nck_param_layer(name, start, len, layer);
}
