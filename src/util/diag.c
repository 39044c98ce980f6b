/* SPDX-License-Identifier: MIT */
/*
 * nck_diag: recording and formatting mount-time errors (see nemockpt/diag.h).
 * Thread-safety: none needed; a diag belongs to one thread.
 */
#include "nemockpt/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nemockpt/log.h"

void nck_diag_init(nck_diag *diag)
{
	if (!diag)
		return;
	memset(diag, 0, sizeof(*diag));
	diag->offset = -1;
}

int nck_diag_set(nck_diag *diag, int code, const char *path, int64_t offset, const char *fmt, ...)
{
	char raw[sizeof(diag->msg)];
	va_list ap;

	if (!diag || diag->code != 0)
		return code;
	diag->code = code;
	diag->offset = offset;
	/* Messages are one line: untrusted names could carry newlines and
	 * terminal escapes, so control characters are escaped. */
	nck_log_escape(diag->path, sizeof(diag->path), path ? path : "");
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	nck_log_escape(diag->msg, sizeof(diag->msg), raw);
	return code;
}

void nck_diag_format(const nck_diag *diag, char *buf, size_t size)
{
	size_t n = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (!diag)
		return;
	if (diag->path[0])
		n += (size_t)snprintf(buf + n, size - n, "%s: ", diag->path);
	if (n < size && diag->offset >= 0)
		n += (size_t)snprintf(buf + n, size - n, "offset %lld: ", (long long)diag->offset);
	if (n < size)
		snprintf(buf + n, size - n, "%s", diag->msg[0] ? diag->msg : strerror(-diag->code));
}
