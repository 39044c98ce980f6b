/* SPDX-License-Identifier: MIT */
/*
 * nck_fuse_run: session set-up, readiness, daemonizing, the MT loop and a
 * graceful stop.
 *
 * Stopping (SIGTERM, SIGINT): the first signal detaches the mount (a lazy
 * unmount: umount2(MNT_DETACH) as root, `fusermount3 -u -z` otherwise), so
 * new opens no longer reach us, and the loop goes on serving the files that
 * are still open. When the kernel releases the last of them it drops the
 * superblock and ends the connection; the loop then returns and the daemon
 * exits 0. A second signal, or -o shutdown_timeout=S seconds after the
 * first, ends the loop at once (open files then get ENOTCONN). The signal
 * handler only writes to a pipe; a watcher thread does the work.
 */
#include "fuse/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fuse_lowlevel.h>
#include <libgen.h>
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
	snprintf(buf, size, "ro,subtype=%s,%s%s%s%s%s", NCK_SUBTYPE,
		 opts->allow_other ? "allow_other," : "",
		 opts->auto_unmount ? "auto_unmount," : "",
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

/* ---- detaching and stopping ------------------------------------------------ */

extern char **environ;

/* Lazily unmounts `dir`: umount2(MNT_DETACH) with CAP_SYS_ADMIN, else the
 * setuid helper. Returns 0 or a negative errno. */
static int session_detach(const char *dir)
{
	char *const argv[] = { "fusermount3", "-u", "-z", "-q", "--", (char *)dir, NULL };
	int status;
	pid_t pid;

	if (umount2(dir, MNT_DETACH) == 0)
		return 0;
	if (errno != EPERM)
		return -errno;
	if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0)
		return -EPERM;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

int nck_fuse_clear_dead_mount(const char *path)
{
	char *copy = strdup(path), *dir = NULL, *abs = NULL, dev[64];
	struct stat st;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	if (stat(path, &st) == 0 || errno != ENOTCONN)
		goto out; /* alive, or not a FUSE mount: nothing to replace */
	/* realpath() of the path itself fails (ENOTCONN): resolve its parent. */
	dir = realpath(dirname(copy), NULL);
	strcpy(copy, path);
	if (!dir || asprintf(&abs, "%s/%s", strcmp(dir, "/") ? dir : "", basename(copy)) < 0) {
		abs = NULL;
		rc = -ENOTCONN;
		goto out;
	}
	if (nck_fuse_find_mount(dev, sizeof(dev), abs) < 0) {
		rc = -ENOTCONN; /* someone else's dead mount: not ours to remove */
		goto out;
	}
	rc = session_detach(abs);
	if (rc == 0)
		nck_log(NCK_LOG_WARN, "%s: replacing a dead nemockpt mount (its daemon was killed)", abs);
out:
	free(copy);
	free(dir);
	free(abs);
	return rc;
}

/* State shared by the signal handler, the watcher thread and the loop. */
typedef struct session_stop {
	int pipe[2];           /* the handler writes one byte per signal */
	struct fuse_session *se;
	const char *mountpoint;
	unsigned timeout_s;    /* 0: wait for the last open file */
	pthread_t main;        /* the thread in fuse_session_loop_mt */
	pthread_t watcher;
	bool detached;
} session_stop;

static session_stop *session_stopping;

/* SIGTERM/SIGINT: async-signal-safe, hands over to the watcher. */
static void session_on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (session_stopping && write(session_stopping->pipe[1], &c, 1) < 0) {
		/* the pipe is full: a stop is pending anyway */
	}
	errno = saved;
}

/* SIGUSR1: only interrupts the loop's sem_wait (installed without SA_RESTART). */
static void session_on_wake(int sig)
{
	(void)sig;
}

/* Waits for one byte on the pipe, at most `ms` (-1: forever). Returns the
 * byte (a signal number, or 0 for "the loop ended"), or -1 on timeout. */
static int session_wait(session_stop *st, int ms)
{
	struct pollfd p = { .fd = st->pipe[0], .events = POLLIN };
	char c;
	int n;

	while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	if (n <= 0 || read(st->pipe[0], &c, 1) != 1)
		return -1;
	return (unsigned char)c;
}

/* The watcher: first signal detaches; a second one or the timeout ends the loop. */
static void *session_watch(void *arg)
{
	session_stop *st = arg;
	int sig = session_wait(st, -1), rc;

	if (sig <= 0)
		return NULL;
	nck_notify("STOPPING=1");
	rc = session_detach(st->mountpoint);
	st->detached = rc == 0;
	if (rc == 0)
		nck_log(NCK_LOG_INFO, "signal %d: %s detached; serving open files until they are "
			"closed%s", sig, st->mountpoint,
			st->timeout_s ? " or shutdown_timeout passes" : " (signal again to stop now)");
	else
		nck_log(NCK_LOG_WARN, "signal %d: detaching %s failed (%s): stopping now", sig,
			st->mountpoint, strerror(-rc));
	if (rc == 0) {
		sig = session_wait(st, st->timeout_s ? (int)(st->timeout_s * 1000) : -1);
		if (sig == 0)
			return NULL; /* the last file was closed: the loop ended by itself */
		nck_log(NCK_LOG_INFO, "%s: stopping with files still open",
			sig > 0 ? "second signal" : "shutdown_timeout");
	}
	fuse_session_exit(st->se);
	/* Until the loop has ended: a wake-up that comes just before the loop
	 * sleeps again would be lost. */
	do
		pthread_kill(st->main, SIGUSR1);
	while (session_wait(st, 100) < 0);
	return NULL;
}

/* Installs the stop handlers; SIGHUP and SIGPIPE are ignored (a daemon that
 * lost its terminal keeps serving; a reader that went away is no error). */
static int session_signals(session_stop *st)
{
	struct sigaction sa = { .sa_handler = session_on_signal };
	struct sigaction wake = { .sa_handler = session_on_wake };
	struct sigaction ign = { .sa_handler = SIG_IGN };

	if (pipe2(st->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	/* The watcher blocks in poll(), the pipe only holds a few bytes. */
	fcntl(st->pipe[0], F_SETFL, 0);
	session_stopping = st;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigemptyset(&wake.sa_mask);
	return sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
			       sigaction(SIGUSR1, &wake, NULL) < 0 || sigaction(SIGHUP, &ign, NULL) < 0 ||
			       sigaction(SIGPIPE, &ign, NULL) < 0
		       ? -1
		       : 0;
}

/* Makes libfuse's unmount a no-op after we detached the mount ourselves
 * (the path may hold a newer mount by now): libfuse skips umount when the
 * device fd polls POLLERR, which the write end of a pipe without a reader
 * does; the /dev/fuse fd is closed, which ends the connection. */
static void session_forget_mount(struct fuse_session *se)
{
	int fd = fuse_session_fd(se), p[2];

	if (fd < 0 || pipe2(p, O_CLOEXEC) < 0)
		return;
	close(p[0]);
	dup2(p[1], fd);
	close(p[1]);
}

int nck_fuse_run(nck_vfs *vfs, const nck_fuse_opts *opts, const char *argv0)
{
	char *mopts = session_mount_opts(opts, opts->source);
	char *argv[] = { (char *)argv0, "-o", mopts, opts->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(opts->debug ? 4 : 3, argv);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	bool mounted = false, watching = false;
	session_stop stop = { .pipe = { -1, -1 }, .timeout_s = opts->shutdown_timeout };
	nck_fuse_ctx ctx = {
		.vfs = vfs,
		.read_ahead_kb = opts->read_ahead_kb,
		.want_passthrough = !opts->no_passthrough,
		.cache = !opts->cache || strcmp(opts->cache, "auto") == 0 ? NCK_FUSE_CACHE_AUTO
			 : strcmp(opts->cache, "kernel") == 0		   ? NCK_FUSE_CACHE_KERNEL
									   : NCK_FUSE_CACHE_DIRECT,
	};
	int status = 1, rc;
	char dev[64];

	pthread_mutex_init(&ctx.backing_lock, NULL);
	fuse_set_log_func(session_fuse_log);
	if (!mopts)
		goto out;
	/* Resolved before mounting: afterwards the path is served by us. */
	ctx.mountpoint = realpath(opts->mountpoint, NULL);
	se = fuse_session_new(&args, &nck_fuse_ops, sizeof(nck_fuse_ops), &ctx);
	if (!se)
		goto out; /* libfuse logged why */
	stop.se = se;
	stop.mountpoint = ctx.mountpoint ? ctx.mountpoint : opts->mountpoint;
	if (session_signals(&stop) < 0)
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
	/* After daemonizing: fork() keeps only the calling thread. */
	stop.main = pthread_self();
	if (pthread_create(&stop.watcher, NULL, session_watch, &stop) != 0)
		goto out;
	watching = true;
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out;
	fuse_loop_cfg_set_max_threads(cfg, opts->max_threads ? opts->max_threads : SESSION_MAX_THREADS);
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	/* 0 after an unmount (also the one that follows our lazy detach), a
	 * negative errno on failure. */
	rc = fuse_session_loop_mt(se, cfg);
	/* The kernel ends the connection at the last release of an unmounted
	 * mount; a worker whose read of /dev/fuse races that teardown (the
	 * request was dequeued as the queue was shut) gets ECONNABORTED instead
	 * of ENODEV: once the mount is gone from the table, a normal end. An
	 * abort through fusectl leaves the mount in place: that stays a failure
	 * (systemd's Restart=on-failure mounts again). */
	if (rc == -ECONNABORTED &&
	    (stop.detached || !ctx.mountpoint ||
	     nck_fuse_find_mount(dev, sizeof(dev), ctx.mountpoint) < 0)) {
		nck_log(NCK_LOG_INFO, "%s: the kernel ended the connection", stop.mountpoint);
		rc = 0;
	}
	status = rc >= 0 ? 0 : 1;
	if (rc < 0)
		nck_log(NCK_LOG_ERROR, "session loop failed: %s", strerror(-rc));
out:
	if (watching) {
		char c = 0;

		/* Ends a watcher still waiting (unmounted by someone else, or the
		 * last file closed after a detach). */
		if (write(stop.pipe[1], &c, 1) < 0)
			nck_log(NCK_LOG_WARN, "stop pipe: %s", strerror(errno));
		pthread_join(stop.watcher, NULL);
	}
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	if (mounted && stop.detached)
		session_forget_mount(se);
	if (mounted)
		fuse_session_unmount(se);
	session_stopping = NULL;
	if (stop.pipe[0] >= 0) {
		close(stop.pipe[0]);
		close(stop.pipe[1]);
	}
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free(mopts);
	free(ctx.mountpoint);
	nck_fuse_backing_free(&ctx);
	pthread_mutex_destroy(&ctx.backing_lock);
	return status;
}
