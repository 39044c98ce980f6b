/* SPDX-License-Identifier: MIT */
/*
 * nck_diag: the caller-owned error record that mount-time code fills in
 * (modelled on jansson's json_error_t).
 *
 * Every function that can fail returns 0 or a negative errno and, when given
 * a non-NULL diag, records the cause: the code, the file, the byte offset in
 * that file (-1 when there is none) and a message. The first error wins, so
 * an outer layer never overwrites the root cause. Hot read paths pass NULL.
 *
 * Codes used across the project: -ENOENT not found; -EBADMSG malformed input;
 * -ENOTSUP valid but unsupported; -EOVERFLOW arithmetic on untrusted fields
 * overflowed; -EIO a backing read failed or was short; -ENOMEM; -EINVAL a
 * caller bug.
 *
 * Thread-safety: a diag belongs to one thread at a time.
 */
#ifndef NCK_NEMOCKPT_DIAG_H
#define NCK_NEMOCKPT_DIAG_H

#include <stddef.h>
#include <stdint.h>

typedef struct nck_diag {
	int code;        /* 0 while no error, else a negative errno */
	int64_t offset;  /* byte offset in `path`, or -1 */
	char path[1024]; /* the file the error is about, "" if none */
	char msg[512];   /* human-readable cause, no trailing newline */
} nck_diag;

/* Resets `diag` to "no error". NULL-safe. */
void nck_diag_init(nck_diag *diag);

/*
 * Records an error unless `diag` already holds one, and returns `code` so
 * that callers can write `return nck_diag_set(diag, -EBADMSG, ...)`.
 * `path` may be NULL, `offset` may be -1. `diag` may be NULL.
 */
int nck_diag_set(nck_diag *diag, int code, const char *path, int64_t offset, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * Writes the one-line form "<path>: offset <N>: <msg>" (parts left out when
 * absent) into buf, always NUL-terminated.
 */
void nck_diag_format(const nck_diag *diag, char *buf, size_t size);

#endif
