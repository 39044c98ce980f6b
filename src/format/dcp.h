/* SPDX-License-Identifier: MIT */
/*
 * PyTorch Distributed Checkpoint (DCP) metadata: the `.metadata` pickle of a
 * torch_dist checkpoint (torch.distributed.checkpoint.metadata.Metadata, or
 * Megatron-Core's subclass MCoreMetadata), read with the restricted pickle
 * reader, never executed.
 *
 * For every tensor key: its dtype (TensorProperties, from either module
 * path), global size, and chunks (ChunkStorageMetadata offsets and sizes);
 * each chunk is located in the `__R_I.distcp` files through storage_data,
 * matched by (fqn, offsets) and never by MetadataIndex.index, which is only a
 * hint. BytesStorageMetadata items (ShardedObjects such as TE _extra_state)
 * are listed apart.
 *
 * Spec: tensor-formats.md §2 (pytorch torch/distributed/checkpoint/
 * metadata.py, filesystem.py), §3 (Megatron-Core dist_checkpointing).
 * Ownership: everything lives in the nck_dcp's arena.
 * Thread-safety: parse on one thread; read-only afterwards.
 */
#ifndef NCK_FORMAT_DCP_H
#define NCK_FORMAT_DCP_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"
#include "nemockpt/dtype.h"
#include "util/arena.h"

typedef struct nck_dcp_item {
	const char *file; /* relative_path of the .distcp file */
	uint64_t offset;  /* byte offset of the item (a torch.save blob) in the file */
	uint64_t length;  /* its bytes */
} nck_dcp_item;

typedef struct nck_dcp_chunk {
	uint64_t offsets[NCK_MAX_DIMS]; /* box origin in the global tensor */
	uint64_t sizes[NCK_MAX_DIMS];   /* box extent */
	nck_dcp_item item;
} nck_dcp_chunk;

typedef struct nck_dcp_tensor {
	const char *fqn;
	nck_dtype dtype;
	uint32_t ndim;
	uint64_t size[NCK_MAX_DIMS];
	nck_dcp_chunk *chunks;
	size_t n_chunks;
} nck_dcp_tensor;

typedef struct nck_dcp_bytes {
	const char *fqn;
	nck_dcp_item item;
} nck_dcp_bytes;

typedef struct nck_dcp {
	nck_dcp_tensor *tensors; /* in the pickle's order */
	size_t n_tensors;
	nck_dcp_bytes *bytes;
	size_t n_bytes;
	nck_arena arena;
} nck_dcp;

/*
 * Parses `len` bytes of a .metadata pickle (`name` labels errors). Errors:
 * -EBADMSG malformed (diag offset: the pickle opcode, or -1 for a structural
 * problem with the key named), -ENOTSUP an unknown dtype or a chunk with no
 * storage entry, -ENOMEM.
 */
int nck_dcp_parse(nck_dcp **out, const void *data, size_t len, const char *name, nck_diag *diag);

/* Releases the metadata. NULL-safe. */
void nck_dcp_free(nck_dcp *dcp);

#endif
