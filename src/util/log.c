/* SPDX-License-Identifier: MIT */
/*
 * nck_log: one-line logging to stderr or syslog (see nemockpt/log.h).
 * Thread-safety: the settings are written once at start-up, before threads
 * exist; each line goes out in a single write(2) or syslog(3) call.
 */
#include "nemockpt/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_progname = "nemockpt";
static nck_log_level log_max = NCK_LOG_INFO;
static bool log_syslog;
static nck_status_hook log_status_hook;

void nck_log_init(const char *progname, nck_log_level max_level)
{
	log_progname = progname;
	log_max = max_level;
}

void nck_log_use_syslog(bool on)
{
	if (on && !log_syslog)
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = on;
}

size_t nck_log_escape(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *src; src++) {
		unsigned char c = (unsigned char)*src;
		size_t need = c < 0x20 || c == 0x7f ? 4 : 1;

		if (n + need >= cap)
			break;
		if (need == 4) {
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 15];
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return n;
}

void nck_log(nck_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prios[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[2048], line[2048];
	va_list ap;
	int n;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		nck_log_escape(line, sizeof(line), msg);
		syslog(prios[level], "%s", line);
	} else {
		n = snprintf(line, sizeof(line), "%s: %s: ", log_progname, names[level]);
		if (n > 0 && (size_t)n < sizeof(line))
			nck_log_escape(line + n, sizeof(line) - (size_t)n, msg);
		n = (int)strnlen(line, sizeof(line) - 2);
		line[n++] = '\n';
		if (write(STDERR_FILENO, line, (size_t)n) < 0) {
			/* Nowhere left to report a failed log write. */
		}
	}
}

void nck_log_set_status_hook(nck_status_hook hook)
{
	log_status_hook = hook;
}

void nck_status(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!log_status_hook)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_status_hook(line);
}
