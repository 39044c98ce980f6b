/* SPDX-License-Identifier: MIT */
/*
 * Project-wide constants shared by the front ends (daemon, CLI), tests and
 * fuzzers.
 *
 * Thread-safety: constants only.
 */
#ifndef NCK_NEMOCKPT_COMMON_H
#define NCK_NEMOCKPT_COMMON_H

#ifndef NCK_VERSION
#define NCK_VERSION "0.1.0"
#endif

/* The name of the FUSE subtype, so findmnt shows "fuse.nemockpt". */
#define NCK_SUBTYPE "nemockpt"

#endif
