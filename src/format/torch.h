/* SPDX-License-Identifier: MIT */
/*
 * nck_torch: a torch.save file (zip format, PyTorch >= 1.6) read as a list
 * of tensors whose bytes lie, uncompressed, in the file's storage records.
 * Spec: ../shared/spec/tensor-formats.md §1 (torch/serialization.py `_save`,
 * torch/_tensor.py `_reduce_ex_internal`, torch/_utils.py `_rebuild_*`).
 *
 * `data.pkl` is unpickled symbolically (pickle.h) and walked: nested dicts
 * (OrderedDict included), lists and tuples give the tensor keys; tensors are
 * the REDUCE calls of torch._utils._rebuild_tensor (v1), _rebuild_tensor_v2,
 * _rebuild_tensor_v3 (dtype argument, UntypedStorage), _rebuild_parameter,
 * _rebuild_parameter_with_state and torch._tensor._rebuild_from_type_v2,
 * over storages named by persistent ids ('storage', torch.<X>Storage, key,
 * location, numel). Every tensor is checked: known dtype, shape and strides
 * non-negative, the largest element it addresses inside its storage record,
 * record stored (method 0) and as long as the storage says. Other objects
 * (io.BytesIO, argparse.Namespace, numpy arrays, ...) stay opaque values in
 * `root` and are never executed. Not supported: the legacy non-zip format,
 * big-endian files, quantized, sparse, meta, nested and complex tensors.
 *
 * Thread-safety: built on one thread; read-only afterwards.
 */
#ifndef NCK_FORMAT_TORCH_H
#define NCK_FORMAT_TORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/pickle.h"
#include "format/torchzip.h"
#include "io/src.h"
#include "nemockpt/diag.h"
#include "nemockpt/dtype.h"
#include "util/arena.h"

/* Deepest container nesting the tensor walk follows. */
#define NCK_TORCH_MAX_DEPTH 256
/* Most container and value visits of one walk (bounds shared-value blow-up). */
#define NCK_TORCH_MAX_VISITS ((size_t)1 << 24)
/* Largest data.pkl read into memory. */
#define NCK_TORCH_MAX_PICKLE ((size_t)1 << 30)

typedef struct nck_torch_tensor {
	/* State-dict path: dict keys and list indexes joined with '.'; "" for a root tensor. */
	const char *key;
	nck_dtype dtype;
	uint32_t ndim;
	uint64_t shape[NCK_MAX_DIMS];
	int64_t stride[NCK_MAX_DIMS]; /* elements, never negative */
	uint64_t storage_offset;      /* elements */
	const char *storage_key;      /* "0", "1", ...: the record "<prefix>/data/<key>" */
	uint64_t storage_data;	/* ABSOLUTE offset of the storage record's data in the src */
	uint64_t storage_bytes; /* size of the storage record */
	bool requires_grad;
	bool is_parameter; /* rebuilt through _rebuild_parameter* */
} nck_torch_tensor;

typedef struct nck_torch_file {
	nck_torch_tensor *tensors; /* in pickle order */
	size_t n_tensors;
	nck_pv *root;	 /* the whole unpickled value (non-tensor entries too) */
	nck_zip *zip;	 /* owned */
	nck_arena arena; /* tensors, keys and pickle values */
} nck_torch_file;

/*
 * Reads the torch.save zip archive in [base, base + len) of `src` (borrowed,
 * must outlive the result). The result belongs to the caller
 * (nck_torch_file_free). Errors: those of nck_zip_open and nck_pkl_parse;
 * -EBADMSG no data.pkl, a malformed tensor (bad arguments, negative stride,
 * storage record missing or too short, duplicate key); -ENOTSUP unknown dtype
 * or storage class, more than NCK_MAX_DIMS dimensions, compressed records,
 * big-endian data, tensor kinds listed above; -E2BIG walk limits; -ENOMEM.
 * A pickle error's diag offset is made absolute in `src` (the bad opcode's
 * byte); tensor errors name the tensor's key and carry offset -1.
 */
int nck_torch_open(nck_torch_file **out, const nck_src *src, uint64_t base, uint64_t len,
		   nck_diag *diag);

/* The tensor with state-dict key `key`, or NULL. Borrowed. Linear search. */
const nck_torch_tensor *nck_torch_find(const nck_torch_file *f, const char *key);

/* Frees the file's tensors, values and zip index. NULL-safe. */
void nck_torch_file_free(nck_torch_file *f);

#endif
