/* SPDX-License-Identifier: MIT */
/*
 * Safetensors headers for the views: an 8-byte little-endian length N, then
 * N bytes of JSON ("__metadata__" first, then each tensor with its dtype,
 * shape and data_offsets, in the order given), padded with spaces to a
 * multiple of 8 as the reference implementation does.
 *
 * Thread-safety: pure.
 */
#ifndef NCK_VIEW_STHDR_H
#define NCK_VIEW_STHDR_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/dtype.h"

typedef struct nck_st_entry {
	const char *name;
	nck_dtype dtype;
	uint32_t ndim;
	const uint64_t *shape;
	uint64_t bytes;      /* data bytes; offsets follow from the order */
} nck_st_entry;

/*
 * Writes the header for `n` entries laid out back to back. `meta` lists
 * string pairs (key, value, ..., NULL). *out is malloc'ed. -ENOMEM, -E2BIG
 * (over the 100 MB header limit of the reference reader).
 */
int nck_st_header(char **out, size_t *len_out, const nck_st_entry *e, size_t n,
		  const char *const *meta);

/*
 * Writes model.safetensors.index.json (Hugging Face's sharded checkpoint
 * index): {"metadata": {"total_size": total}, "weight_map": {tensor: file}}
 * for tensor[i] in file[i], i < n, in that order. *out is malloc'ed and
 * NUL-terminated. -ENOMEM.
 */
int nck_st_index(char **out, size_t *len_out, const char *const *tensor, const char *const *file,
		 size_t n, uint64_t total);

#endif
