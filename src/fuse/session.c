/* SPDX-License-Identifier: MIT */
/*
 * nck_fuse_run: session set-up, readiness, daemonizing and the MT loop.
 */
#include "fuse/session.h"

#include <errno.h>
#include <signal.h>
#include <fuse_lowlevel.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuse/notify.h"
#include "fuse/ops.h"
#include "nemockpt/common.h"
#include "nemockpt/log.h"

/* Default upper bound of worker threads (spec fuse-techniques.md §8 item 1). */
#define SESSION_MAX_THREADS 32

/* Routes libfuse's own messages into nck_log. */
__attribute__((format(printf, 2, 0))) static void session_fuse_log(enum fuse_log_level level,
								  const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	nck_log(level <= FUSE_LOG_ERR ? NCK_LOG_ERROR
		: level == FUSE_LOG_WARNING ? NCK_LOG_WARN
		: level <= FUSE_LOG_INFO ? NCK_LOG_INFO : NCK_LOG_DEBUG,
		"%s", line);
}

/* Appends `s` to buf with ',' and '\' escaped, as fuse_opt expects. */
static void session_escape(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);

	for (; *s && n + 2 < size; s++) {
		if (*s == ',' || *s == '\\')
			buf[n++] = '\\';
		buf[n++] = *s;
	}
	buf[n] = '\0';
}

/* Builds the option string handed to fuse_session_new(). NULL if too long. */
static char *session_mount_opts(const nck_fuse_opts *opts, const char *source)
{
	size_t size = 3 * strlen(source) + (opts->mount_flags ? strlen(opts->mount_flags) : 0) + 256;
	char *buf = malloc(size);

	if (!buf)
		return NULL;
	snprintf(buf, size, "ro,subtype=%s,%s%s%s%s", NCK_SUBTYPE,
		 opts->allow_other ? "allow_other," : "",
		 opts->default_permissions ? "default_permissions," : "",
		 opts->mount_flags ? opts->mount_flags : "", opts->mount_flags ? "," : "");
	strcat(buf, "fsname=");
	session_escape(buf, size, source);
	return buf;
}

/* Writes "READY=1\n" to the notify fd and closes it. */
static void session_notify_fd(int fd)
{
	static const char msg[] = "READY=1\n";

	if (fd < 0)
		return;
	if (write(fd, msg, sizeof(msg) - 1) < 0)
		nck_log(NCK_LOG_WARN, "notify_fd=%d: %s", fd, strerror(errno));
	close(fd);
}

int nck_fuse_run(nck_vfs *vfs, const nck_fuse_opts *opts, const char *argv0)
{
	char *mopts = session_mount_opts(opts, opts->source);
	char *argv[] = { (char *)argv0, "-o", mopts, opts->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(opts->debug ? 4 : 3, argv);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	bool mounted = false, handlers = false;
	nck_fuse_ctx ctx = { .vfs = vfs, .read_ahead_kb = opts->read_ahead_kb };
	int status = 1, rc;

	fuse_set_log_func(session_fuse_log);
	if (!mopts)
		goto out;
	/* Resolved before mounting: afterwards the path is served by us. */
	ctx.mountpoint = realpath(opts->mountpoint, NULL);
	se = fuse_session_new(&args, &nck_fuse_ops, sizeof(nck_fuse_ops), &ctx);
	if (!se)
		goto out; /* libfuse logged why */
	if (fuse_set_signal_handlers(se) < 0)
		goto out;
	handlers = true;
	/* SIGHUP is ignored: a daemon that lost its terminal keeps serving. */
	if (sigaction(SIGHUP, &(struct sigaction){ .sa_handler = SIG_IGN }, NULL) < 0)
		goto out;
	if (fuse_session_mount(se, opts->mountpoint) < 0)
		goto out;
	mounted = true;
	session_notify_fd(opts->notify_fd);
	nck_notify("READY=1\nSTATUS=Serving %s at %s", opts->source, opts->mountpoint);
	if (!opts->foreground) {
		if (fuse_daemonize(0) < 0)
			goto out;
		nck_log_use_syslog(true);
	}
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out;
	fuse_loop_cfg_set_max_threads(cfg, opts->max_threads ? opts->max_threads : SESSION_MAX_THREADS);
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	/* 0 after an unmount; the signal number after SIGTERM/SIGINT/SIGHUP,
	 * which is a clean stop too; a negative errno on failure. */
	rc = fuse_session_loop_mt(se, cfg);
	status = rc >= 0 ? 0 : 1;
	if (rc > 0) {
		nck_notify("STOPPING=1");
		nck_log(NCK_LOG_INFO, "signal %d: unmounting %s", rc, opts->mountpoint);
	}
	else if (rc < 0)
		nck_log(NCK_LOG_ERROR, "session loop failed: %s", strerror(-rc));
out:
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free(mopts);
	free(ctx.mountpoint);
	return status;
}
