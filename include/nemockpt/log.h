/* SPDX-License-Identifier: MIT */
/*
 * nck_log: one-line log messages, to stderr in the foreground and to syslog
 * once the daemon has detached. Errors are logged once, where they are
 * handled (the CLI or the FUSE layer), never at every level.
 *
 * Thread-safety: all functions may be called from any thread; each line is
 * written with a single write(2) so lines from threads do not interleave.
 */
#ifndef NCK_NEMOCKPT_LOG_H
#define NCK_NEMOCKPT_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum nck_log_level {
	NCK_LOG_ERROR = 0,
	NCK_LOG_WARN = 1,
	NCK_LOG_INFO = 2,
	NCK_LOG_DEBUG = 3,
} nck_log_level;

/* Sets the program name that prefixes each line and the most verbose level shown. */
void nck_log_init(const char *progname, nck_log_level max_level);

/* Sends further lines to syslog(3) instead of stderr (after daemonizing). */
void nck_log_use_syslog(bool on);

/* Logs one line; a trailing newline in fmt is not needed. */
/*
 * Copies the string `src` into `dst` (capacity `cap` > 0, always
 * NUL-terminated, truncated) with control characters (below 0x20, and
 * 0x7f) written as `\xNN` so that an untrusted name
 * cannot forge a log line or drive a terminal. Returns the length written.
 */
size_t nck_log_escape(char *dst, size_t cap, const char *src);

/* Logs one line; control characters in the formatted text are escaped. */
void nck_log(nck_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Receives progress lines of long start-up work (a gzip index build). */
typedef void (*nck_status_hook)(const char *status);

/* Sets the hook (the daemon forwards lines as sd_notify STATUS=). NULL: none. */
void nck_log_set_status_hook(nck_status_hook hook);

/* Passes one formatted progress line to the hook, if any. */
void nck_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
