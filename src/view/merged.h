/* SPDX-License-Identifier: MIT */
/*
 * The merged/ view: every weight of the catalog in safetensors files, names
 * sorted, as one model.safetensors or, above a shard size, Hugging Face's
 * model-0000i-of-0000n.safetensors plus model.safetensors.index.json.
 * Headers are computed once (at mount); tensor bytes are gathered when read.
 *
 * Layout of each file (safetensors spec): an 8-byte little-endian header
 * length N, N bytes of JSON ("__metadata__" first, then tensors in name
 * order with data_offsets relative to the data section), padded with spaces
 * to a multiple of 8, then the tensors' bytes back to back.
 *
 * Ownership: a nck_merged and its shards are freed by nck_merged_free().
 * Thread-safety: built once; reads are concurrent and lock-free.
 */
#ifndef NCK_VIEW_MERGED_H
#define NCK_VIEW_MERGED_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/catalog.h"
#include "view/layout.h"

typedef struct nck_merged_shard {
	char name[64];              /* "model.safetensors" or "model-00001-of-00003.safetensors" */
	char *header;               /* the 8-byte length and the padded JSON */
	size_t header_len;
	const nck_tensor **tensors; /* in name order */
	uint64_t *offsets;          /* data offset of each tensor, n_tensors + 1 entries */
	size_t n_tensors;
	uint64_t size;              /* the whole file */
	nck_layout layout;          /* the header, then every tensor */
} nck_merged_shard;

typedef struct nck_merged {
	nck_merged_shard *shards;
	size_t n_shards;
	char *index_json;           /* model.safetensors.index.json, or NULL with one shard */
	size_t index_len;
} nck_merged;

/*
 * Plans the files for the catalog's weights; `shard_size` 0 means 5 GiB.
 * `source`, `tp` and `pp` go into __metadata__. -ENOMEM, -E2BIG (a header
 * over the safetensors limit).
 */
int nck_merged_build(nck_merged **out, const nck_catalog *cat, uint64_t shard_size,
		     const char *source);

/* Releases the plan. NULL-safe. */
void nck_merged_free(nck_merged *m);

#endif
