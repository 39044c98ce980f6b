/* SPDX-License-Identifier: MIT */
/*
 * nck_loan: bytes of a source lent as the source's own memory for one
 * reply, so it is written from there without a copy (a remote source's
 * block cache). Made by nck_vfs_extent_lend() (nck_src_map() below it),
 * valid until given back with nck_vfs_loan_return(); `pins`, `vt` and
 * `impl` are the lender's bookkeeping.
 */
#ifndef NCK_NEMOCKPT_LOAN_H
#define NCK_NEMOCKPT_LOAN_H

#include <sys/uio.h>

/* Most buffers one loan may take (a 1 MiB read over 64 KiB blocks, unaligned). */
#define NCK_LOAN_MAX 24

typedef struct nck_loan {
	struct iovec iov[NCK_LOAN_MAX]; /* the bytes, in order */
	int n;
	void *pins[NCK_LOAN_MAX];
	const void *vt; /* the lender (NULL: nothing to give back) */
	void *impl;
} nck_loan;

#endif
