/* SPDX-License-Identifier: MIT */
/*
 * nck_ts: plans a torch.save zip file of a flat state dict (name -> dense
 * contiguous tensor) from metadata only, so that a view can present e.g. a
 * virtual `model_weights.ckpt` whose tensor bytes are produced lazily.
 *
 * The layout is what `torch.save(OrderedDict)` writes through
 * `caffe2/serialize/inline_container.cc` and miniz 3.0.2 (spec:
 * ../shared/spec/tensor-formats.md §1.2-1.3): records `<archive>/data.pkl`,
 * `<archive>/byteorder`, `<archive>/data/<i>` (one storage per tensor, keys
 * "0", "1", ... in tensor order), `<archive>/version`; all stored; zero CRC
 * and sizes in local headers, a data descriptor after each non-empty record,
 * an 'FB' extra field that starts every record's data on a multiple of 64;
 * ZIP64 extras where a size or offset reaches 0xFFFFFFFF; always the ZIP64
 * end records before the classic one. Not written: `.data/serialization_id`
 * (it hashes the data's CRCs, unknown when planning; torch.load does not
 * need it) and the 2.7+ `.format_version`/`.storage_alignment` records.
 *
 * The plan is a list of pieces tiling [0, size): MEM pieces point into bytes
 * the plan owns (headers, data.pkl, descriptors, central directory, end
 * records), a DATA piece stands for all the bytes of one tensor, row-major
 * and little-endian. A tensor's CRC-32 appears twice in the MEM bytes (its
 * data descriptor and its central-directory entry); both start as 0 until
 * nck_ts_set_crc fills them in.
 *
 * Thread-safety: built on one thread. Afterwards the plan is read-only
 * except for the CRC fields: nck_ts_set_crc may run concurrently for
 * distinct tensors, and must not race with readers of the MEM bytes that
 * hold that tensor's CRC (entries[i].crc_at[]).
 */
#ifndef NCK_FORMAT_TORCHSAVE_H
#define NCK_FORMAT_TORCHSAVE_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"
#include "nemockpt/dtype.h"

/* One state-dict entry: a dense, contiguous tensor. */
typedef struct nck_ts_tensor {
	const char *name; /* dict key, UTF-8, borrowed for the call only */
	nck_dtype dtype;
	uint32_t ndim; /* 0 for a scalar (shape () and stride ()) */
	uint64_t shape[NCK_MAX_DIMS];
} nck_ts_tensor;

typedef enum nck_ts_piece_kind {
	NCK_TS_MEM,  /* bytes [0, len) of `mem` */
	NCK_TS_DATA, /* bytes [0, len) of tensor `tensor`'s data */
} nck_ts_piece_kind;

typedef struct nck_ts_piece {
	uint64_t off, len; /* range of the file; len > 0 */
	nck_ts_piece_kind kind;
	const unsigned char *mem; /* NCK_TS_MEM: owned by the plan; else NULL */
	size_t tensor;		  /* NCK_TS_DATA: index into the tensor list */
} nck_ts_piece;

/* Where one tensor landed. */
typedef struct nck_ts_entry {
	uint64_t header;    /* file offset of the record's local header */
	uint64_t data;	    /* file offset of the tensor's first byte (a multiple of 64) */
	uint64_t nbytes;    /* numel * dtype size; 0: no DATA piece, no CRC to set */
	uint64_t crc_at[2]; /* file offsets of the 4-byte CRC fields (descriptor, central
			       directory) that nck_ts_set_crc writes; 0 when nbytes is 0 */
	unsigned char *crc_mem[2]; /* internal: the same fields in the plan's bytes */
} nck_ts_entry;

typedef struct nck_ts_plan {
	uint64_t size;	      /* bytes in the file */
	nck_ts_piece *pieces; /* file order, contiguous, covering [0, size) */
	size_t n_pieces;
	nck_ts_entry *entries; /* one per tensor, in the order given */
	size_t n_entries;
	unsigned char *mem; /* internal: every MEM byte, in file order */
	size_t mem_len;
} nck_ts_plan;

/*
 * Plans the zip of the `n` tensors `t` (in that order, a dict in that
 * order) under the record prefix `archive` (torch.save uses the file name
 * without its last extension: "model_weights" for model_weights.ckpt). Names
 * should be distinct; torch.load keeps the last of duplicates. Nothing is
 * borrowed after the call. The plan belongs to the caller (nck_ts_plan_free).
 * Errors: -EINVAL empty or non-UTF-8 archive or name, a record name over
 * 65535 bytes, ndim over NCK_MAX_DIMS, NULL arguments; -ENOTSUP a dtype
 * torch cannot store; -EOVERFLOW a size, stride or offset past INT64_MAX;
 * -ENOMEM. diag (may be NULL) names the tensor.
 */
int nck_ts_plan_build(nck_ts_plan **out, const char *archive, const nck_ts_tensor *t, size_t n,
		      nck_diag *diag);

/*
 * Writes tensor i's CRC-32 (zlib's crc32 of its nbytes) into its data
 * descriptor and central-directory entry. A no-op for an empty tensor or
 * an i out of range. Thread-safe for distinct i; see the file comment.
 */
void nck_ts_set_crc(nck_ts_plan *p, size_t i, uint32_t crc);

/* Index of the piece holding byte `off`, or p->n_pieces if off >= size. O(log n). */
size_t nck_ts_piece_at(const nck_ts_plan *p, uint64_t off);

/* Frees the plan and its bytes. NULL-safe. */
void nck_ts_plan_free(nck_ts_plan *p);

#endif
