/* SPDX-License-Identifier: MIT */
/*
 * nemockptfs: the daemon's main. Parses options, builds the whole tree
 * (any error is reported in one line and nothing is mounted), then hands
 * over to the FUSE session.
 *
 * Exit status: 0 after a clean unmount or for -h/-V; 1 for bad input or a
 * failed mount; 2 for bad usage.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <locale.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/notify.h"
#include "fuse/ops.h"
#include "fuse/opts.h"
#include "fuse/session.h"
#include "io/remote.h"
#include "nemockpt/common.h"
#include "nemockpt/diag.h"
#include "nemockpt/log.h"
#include "nemockpt/vfs.h"

/* Checks that the mountpoint is an existing directory before any work. */
static int check_mountpoint(const char *path, nck_diag *diag)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return nck_diag_set(diag, -errno, path, -1, "mountpoint: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return nck_diag_set(diag, -ENOTDIR, path, -1, "mountpoint: not a directory");
	return 0;
}

/* Forwards start-up progress (gzip indexing) to the service manager. */
static void status_to_notify(const char *status)
{
	nck_notify("STATUS=%s", status);
}

/*
 * A URL source: keeps the full URL for the open and shows only its
 * redacted form everywhere else (findmnt's fsname, status, ps: the
 * argument is overwritten in place, which /proc/PID/cmdline reflects).
 */
static int remote_source(nck_fuse_opts *opts, char **url_out, int argc, char **argv)
{
	char disp[2048];
	char *shown;

	nck_url_redact(disp, sizeof(disp), opts->source);
	if (!(shown = strdup(disp)))
		return -ENOMEM;
	for (int i = 1; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (strcmp(argv[i], opts->source) != 0 || strcmp(argv[i], disp) == 0)
			continue;
		memset(argv[i], 0, n);
		memcpy(argv[i], disp, strlen(disp) < n ? strlen(disp) : n);
	}
	*url_out = opts->source;
	opts->source = shown;
	return 0;
}

/* Makes an option's file path absolute: the daemon changes to /. */
static int absolute_option(char **path, nck_diag *diag)
{
	char *abs;

	if (!*path || (*path)[0] == '/')
		return 0;
	if (!(abs = realpath(*path, NULL)))
		return nck_diag_set(diag, -errno, *path, -1, "%s", strerror(errno));
	free(*path);
	*path = abs;
	return 0;
}

int main(int argc, char **argv)
{
	nck_vfs_opts vopts = { .uid = getuid(), .gid = getgid(), .umask = 0 };
	char line[2048], *abs = NULL, *url = NULL;
	nck_fuse_opts opts;
	nck_vfs *vfs = NULL;
	nck_diag diag;
	int status = 1, rc;

	/* Member names are UTF-8 (PAX) or raw bytes: libarchive converts them
	 * to the locale's charset, which must not be 7-bit ASCII. */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	nck_raise_nofile();
	/* Bounded memory (docs/RELIABILITY.md): a fixed mmap threshold keeps
	 * glibc from raising it (up to 32 MiB) after frees, which left freed
	 * quantized tensors and staging blocks in the heaps of up to 8 arenas
	 * per core; allocations of 2 MiB and more go back to the system when
	 * freed, so RSS follows what is live. */
	mallopt(M_MMAP_THRESHOLD, 2 << 20);
	mallopt(M_TRIM_THRESHOLD, 4 << 20);
	mallopt(M_ARENA_MAX, 8);
	nck_log_set_status_hook(status_to_notify);
	nck_log_init("nemockptfs", NCK_LOG_INFO);
	nck_diag_init(&diag);
	if (nck_fuse_opts_parse(&opts, argc, argv) < 0) {
		fprintf(stderr, "nemockptfs: %s\n(see nemockptfs -h)\n", opts.error);
		status = 2;
		goto out;
	}
	if (opts.show_help || opts.show_version) {
		if (opts.show_help)
			fputs(nck_fuse_opts_usage(), stdout);
		else
			printf("nemockptfs %s (libfuse %s, %s; %s)\n", NCK_VERSION, fuse_pkgversion(),
			       NCK_LIBFUSE_BUILD, nck_fuse_features());
		status = 0;
		goto out;
	}
	if (opts.debug)
		nck_log_init("nemockptfs", NCK_LOG_DEBUG);
	if (opts.rw)
		nck_log(NCK_LOG_WARN, "option 'rw' ignored: the mount is always read-only");
	if (opts.uid_set)
		vopts.uid = opts.uid;
	if (opts.gid_set)
		vopts.gid = opts.gid;
	vopts.umask = opts.umask;
	vopts.umask_set = opts.umask_set;
	vopts.cache_dir = opts.cache_dir;
	vopts.cache_size = opts.cache_size;
	vopts.shard_size = opts.shard_size;
	vopts.group_size = opts.group_size;
	vopts.calib = opts.calib;
	vopts.gpu = opts.gpu;
	vopts.retries = !opts.retries_set ? 0 : opts.retries ? opts.retries : UINT_MAX;
	vopts.timeout = opts.timeout;
	vopts.remote_cache_size = opts.remote_cache_size;
	vopts.disk_cache_size = opts.disk_cache_size;
	if (absolute_option(&opts.token_file, &diag) < 0 || absolute_option(&opts.ca_file, &diag) < 0)
		goto fail;
	vopts.token_file = opts.token_file;
	vopts.endpoint = opts.endpoint;
	vopts.path_style = opts.s3_path_style;
	vopts.ca_file = opts.ca_file;
	if (nck_url_is_remote(opts.source)) {
		if (remote_source(&opts, &url, argc, argv) < 0) {
			nck_diag_set(&diag, -ENOMEM, "nemockptfs", -1, "out of memory");
			goto fail;
		}
	} else {
		/* The daemon changes to / when it detaches: keep an absolute source. */
		abs = realpath(opts.source, NULL);
		if (!abs) {
			nck_diag_set(&diag, -errno, opts.source, -1, "%s", strerror(errno));
			goto fail;
		}
		free(opts.source);
		opts.source = abs;
	}
	/* A daemon killed with -9 leaves "Transport endpoint is not connected". */
	if ((rc = nck_fuse_clear_dead_mount(opts.mountpoint)) < 0) {
		nck_diag_set(&diag, rc, opts.mountpoint, -1, "mountpoint: %s%s", strerror(-rc),
			     rc == -ENOTCONN ? " (a dead FUSE mount that is not nemockpt's)" : "");
		goto fail;
	}
	if (check_mountpoint(opts.mountpoint, &diag) < 0)
		goto fail;
	nck_notify("STATUS=Reading %s", opts.source);
	if (nck_vfs_open(&vfs, url ? url : opts.source, &vopts, &diag) < 0)
		goto fail;
	status = nck_fuse_run(vfs, &opts, argv[0]);
	goto out;
fail:
	nck_diag_format(&diag, line, sizeof(line));
	fprintf(stderr, "nemockptfs: %s\n", line);
	nck_notify("STATUS=Failed: %s", line);
out:
	nck_vfs_close(vfs);
	nck_fuse_opts_dispose(&opts);
	if (url) {
		memset(url, 0, strlen(url));
		free(url);
	}
	return status;
}
