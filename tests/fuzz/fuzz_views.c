/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the views: a tar archive in memory is cataloged,
 * then every listed layout of every view kind is built (merged/ headers,
 * shard rules, safetensors headers, torch.save plans, the YAML rewrite,
 * TensorRT-LLM names and quantization, hf/ and gguf/) and each of its
 * layout files is read whole. A read may fail with EIO (damaged data) but
 * never with anything else, and nothing may crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/build.h"
#include "nemockpt/log.h"
#include "view/qcache.h"
#include "view/viewset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a file of a set in 64 KiB steps. */
static void fuzz_read(const nck_catalog *cat, const nck_vfile *f, unsigned char *buf)
{
	for (uint64_t at = 0; f->kind == NCK_VFILE_LAYOUT && at < f->size; at += 65536) {
		size_t n = f->size - at < 65536 ? (size_t)(f->size - at) : 65536;
		int rc = nck_layout_read(cat, &f->layout, at, buf, n);

		if (rc != 0 && rc != -EIO && rc != -ENOMEM)
			__builtin_trap();
	}
}

static void fuzz_views(const nck_container *c, const nck_catalog *cat, unsigned char *buf)
{
	const nck_entry *artifacts[1] = { NULL };
	nck_view_ctx ctx = { .cat = cat, .source = "fuzz.nemo", .artifacts = artifacts,
			     .group_size = 8 };
	const char *cfg, *tok;
	void *bytes = NULL, *tok_bytes = NULL;
	size_t len = 0, tok_len = 0;

	nck_catalog_artifacts(cat, &cfg, &tok);
	for (size_t i = 0; cfg && i < c->n_entries; i++)
		if (c->entries[i].kind == NCK_ENTRY_FILE && strcmp(c->entries[i].path, cfg) == 0 &&
		    nck_container_slurp(&bytes, &len, c, &c->entries[i], 1u << 20, NULL) == 0)
			break;
	for (size_t i = 0; tok && i < c->n_entries; i++)
		if (c->entries[i].kind == NCK_ENTRY_FILE && strcmp(c->entries[i].path, tok) == 0 &&
		    nck_container_slurp(&tok_bytes, &tok_len, c, &c->entries[i], 1u << 20, NULL) == 0) {
			ctx.tokenizer = &c->entries[i];
			break;
		}
	ctx.container = c;
	ctx.tokenizer_data = tok_bytes;
	ctx.tokenizer_len = tok_len;
	ctx.qcache = nck_qcache_new(cat, nck_quant_backend_cpu(), 1u << 20);
	ctx.config_path = bytes ? cfg : NULL;
	ctx.config = bytes;
	ctx.config_len = len;
	if (nck_view_prepare(&ctx) < 0)
		ctx.gpt = NULL;
	for (int k = 0; k < NCK_VIEW_COUNT; k++) {
		uint32_t tp_pp[8][2];
		size_t n = nck_view_listing(&ctx, (nck_view_kind)k, tp_pp, 8);

		for (size_t j = 0; j < n; j++) {
			nck_viewset *vs = NULL;

			if (tp_pp[j][0] * tp_pp[j][1] > 8 ||
			    nck_viewset_build(&vs, &ctx, (nck_view_kind)k, tp_pp[j][0], tp_pp[j][1]) < 0)
				continue;
			for (size_t f = 0; f < vs->n_files; f++)
				fuzz_read(cat, &vs->files[f], buf);
			nck_viewset_free(vs);
		}
	}
	nck_view_release(&ctx);
	nck_qcache_free(ctx.qcache);
	free(bytes);
	free(tok_bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nck_container *c = NULL;
	nck_catalog *cat = NULL;
	nck_src *src = NULL;
	unsigned char *buf = malloc(65536);

	nck_log_init("fuzz_views", NCK_LOG_ERROR);
	if (buf && nck_src_new_mem(&src, data, size, "fuzz.nemo") == 0 &&
	    nck_container_open_src_take(&c, src, NULL) == 0 && nck_catalog_build(&cat, c, NULL) == 0) {
		fuzz_views(c, cat, buf);
		nck_catalog_close(cat);
	}
	nck_container_close(c);
	free(buf);
	return 0;
}
