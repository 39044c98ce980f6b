/* SPDX-License-Identifier: MIT */
/*
 * Project-wide constants shared by the front ends (daemon, CLI), tests and
 * fuzzers.
 *
 * Thread-safety: constants, and a start-up function.
 */
#ifndef NCK_NEMOCKPT_COMMON_H
#define NCK_NEMOCKPT_COMMON_H

#ifndef NCK_VERSION
#define NCK_VERSION "0.1.0"
/*
 * Raises the soft open-file limit to the hard one: a directory checkpoint
 * keeps one fd per data file its tensors point into (thousands of .distcp
 * files in large distributed checkpoints). Best effort, never fails.
 * TODO(#4): an fd pool instead. Call once at start-up.
 */
void nck_raise_nofile(void);

#endif

/* The name of the FUSE subtype, so findmnt shows "fuse.nemockpt". */
#define NCK_SUBTYPE "nemockpt"

/*
 * Raises the soft open-file limit to the hard one: a directory checkpoint
 * keeps one fd per data file its tensors point into (thousands of .distcp
 * files in large distributed checkpoints). Best effort, never fails.
 * TODO(#4): an fd pool instead. Call once at start-up.
 */
void nck_raise_nofile(void);

#endif
