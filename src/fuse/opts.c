/* SPDX-License-Identifier: MIT */
/*
 * nemockptfs option parsing (see opts.h), with libfuse's fuse_opt.
 */
#include "fuse/opts.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	KEY_IGNORE,    /* fstab-only words */
	KEY_MOUNTFLAG, /* generic mount flags handed to the kernel mount */
	KEY_UID,       /* uid=N, checked here: fuse_opt's %u would wrap */
	KEY_GID,       /* gid=N */
	KEY_CACHE_SIZE, /* cache_size=N[KMG] */
	KEY_SHARD_SIZE, /* shard_size=N[KMG] */
	KEY_GROUP_SIZE, /* group_size=N */
	KEY_REMOTE_CACHE_SIZE, /* remote_cache_size=N[KMG] */
	KEY_DISK_CACHE_SIZE, /* disk_cache_size=N[KMG] */
};

#define OPT(t, p) { t, offsetof(nck_fuse_opts, p), 1 }
#define OPTV(t, p) { t, offsetof(nck_fuse_opts, p), 0 }

static const struct fuse_opt opts_table[] = {
	OPT("-f", foreground),
	OPT("-d", debug),
	OPT("debug", debug),
	OPT("-V", show_version),
	OPT("--version", show_version),
	OPT("-h", show_help),
	OPT("--help", show_help),
	OPT("allow_other", allow_other),
	OPT("default_permissions", default_permissions),
	OPT("ro", ro),
	OPT("rw", rw),
	FUSE_OPT_KEY("uid=", KEY_UID),
	FUSE_OPT_KEY("gid=", KEY_GID),
	OPTV("umask=%o", umask),
	OPT("umask=", umask_set),
	OPTV("max_threads=%u", max_threads),
	OPTV("read_ahead_kb=%u", read_ahead_kb),
	OPTV("cache_dir=%s", cache_dir),
	FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
	FUSE_OPT_KEY("shard_size=", KEY_SHARD_SIZE),
	OPTV("notify_fd=%d", notify_fd),
	OPTV("calib=%s", calib),
	OPTV("gpu=%s", gpu),
	OPTV("cache=%s", cache),
	OPT("nopassthrough", no_passthrough),
	OPT("auto_unmount", auto_unmount),
	OPTV("shutdown_timeout=%u", shutdown_timeout),
	FUSE_OPT_KEY("group_size=", KEY_GROUP_SIZE),
	OPTV("token_file=%s", token_file),
	OPTV("ca_file=%s", ca_file),
	OPTV("retries=%u", retries),
	OPT("retries=", retries_set),
	OPTV("timeout=%u", timeout),
	OPTV("endpoint=%s", endpoint),
	OPT("s3_path_style", s3_path_style),
	FUSE_OPT_KEY("remote_cache_size=", KEY_REMOTE_CACHE_SIZE),
	FUSE_OPT_KEY("disk_cache_size=", KEY_DISK_CACHE_SIZE),
	FUSE_OPT_KEY("defaults", KEY_IGNORE),
	FUSE_OPT_KEY("nofail", KEY_IGNORE),
	FUSE_OPT_KEY("_netdev", KEY_IGNORE),
	FUSE_OPT_KEY("auto", KEY_IGNORE),
	FUSE_OPT_KEY("noauto", KEY_IGNORE),
	FUSE_OPT_KEY("user", KEY_IGNORE),
	FUSE_OPT_KEY("users", KEY_IGNORE),
	FUSE_OPT_KEY("comment=", KEY_IGNORE),
	FUSE_OPT_KEY("nodev", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("dev", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("nosuid", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("suid", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("noexec", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("exec", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("noatime", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("atime", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("relatime", KEY_MOUNTFLAG),
	FUSE_OPT_KEY("async", KEY_MOUNTFLAG),
	FUSE_OPT_END,
};

/* Appends `arg` to the comma list *list. */
static int opts_append(char **list, const char *arg)
{
	size_t old = *list ? strlen(*list) : 0, n = strlen(arg);
	char *p = realloc(*list, old + n + 2);

	if (!p)
		return -1;
	if (old)
		p[old++] = ',';
	memcpy(p + old, arg, n + 1);
	*list = p;
	return 0;
}

/* Parses a uid or gid: decimal, below (uid_t)-1, which means "no change". */
static int opts_id(nck_fuse_opts *o, const char *arg, unsigned *out, int *set)
{
	const char *v = strchr(arg, '=') + 1;
	unsigned long long n = 0;

	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || n > UINT32_MAX) {
			n = UINT32_MAX;
			break;
		}
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (!*v || n >= UINT32_MAX) {
		snprintf(o->error, sizeof(o->error), "bad value in option '%s'", arg);
		return -1;
	}
	*out = (unsigned)n;
	*set = 1;
	return 0;
}

/* Parses KEY=N with an optional K, M or G suffix (powers of 1024) into *out. */
static int opts_size(nck_fuse_opts *o, const char *arg, uint64_t *out)
{
	const char *v = strchr(arg, '=') + 1;
	unsigned long long n = 0;
	unsigned shift = 0;
	const char *p = v;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			break;
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (*p == 'K' || *p == 'k')
		shift = 10, p++;
	else if (*p == 'M' || *p == 'm')
		shift = 20, p++;
	else if (*p == 'G' || *p == 'g')
		shift = 30, p++;
	if (p == v || *p || n == 0 || n > (UINT64_MAX >> shift)) {
		snprintf(o->error, sizeof(o->error), "bad value in option '%s'", arg);
		return -1;
	}
	*out = (uint64_t)n << shift;
	return 0;
}

/* fuse_opt callback: positional arguments, ids, ignored words and unknown options. */
static int opts_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	nck_fuse_opts *o = data;

	(void)outargs;
	switch (key) {
	case KEY_IGNORE:
		return 0;
	case KEY_MOUNTFLAG:
		return opts_append(&o->mount_flags, arg);
	case KEY_UID:
		return opts_id(o, arg, &o->uid, &o->uid_set);
	case KEY_GID:
		return opts_id(o, arg, &o->gid, &o->gid_set);
	case KEY_CACHE_SIZE:
		return opts_size(o, arg, &o->cache_size);
	case KEY_SHARD_SIZE:
		return opts_size(o, arg, &o->shard_size);
	case KEY_REMOTE_CACHE_SIZE:
		return opts_size(o, arg, &o->remote_cache_size);
	case KEY_DISK_CACHE_SIZE:
		return opts_size(o, arg, &o->disk_cache_size);
	case KEY_GROUP_SIZE:
		if (opts_size(o, arg, &o->group_size) < 0)
			return -1;
		if (o->group_size > 65536) {
			snprintf(o->error, sizeof(o->error), "group_size=%llu is over 65536",
				 (unsigned long long)o->group_size);
			return -1;
		}
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (!o->source)
			return (o->source = strdup(arg)) ? 0 : -1;
		if (!o->mountpoint)
			return (o->mountpoint = strdup(arg)) ? 0 : -1;
		snprintf(o->error, sizeof(o->error), "unexpected argument '%s'", arg);
		return -1;
	default:
		/* x-systemd.*, x-gvfs-*, ...: meant for other programs (mount(8)). */
		if (strncmp(arg, "x-", 2) == 0)
			return 0;
		snprintf(o->error, sizeof(o->error), "unknown option '%s'", arg);
		return -1;
	}
}

/* Rejects values fuse_opt cannot check (it stores what sscanf gives it). */
static int opts_validate(nck_fuse_opts *o)
{
	if (o->umask_set && o->umask > 0777)
		snprintf(o->error, sizeof(o->error), "umask=%o is not a permission mask", o->umask);
	else if (o->max_threads > 1024)
		snprintf(o->error, sizeof(o->error), "max_threads=%u is over 1024", o->max_threads);
	else if (o->read_ahead_kb > 65536)
		snprintf(o->error, sizeof(o->error), "read_ahead_kb=%u is over 65536", o->read_ahead_kb);
	else if (o->cache && strcmp(o->cache, "auto") != 0 && strcmp(o->cache, "kernel") != 0 &&
		 strcmp(o->cache, "direct") != 0)
		snprintf(o->error, sizeof(o->error), "cache=%s is not auto, kernel or direct", o->cache);
	else if (o->retries_set && o->retries > 100)
		snprintf(o->error, sizeof(o->error), "retries=%u is over 100", o->retries);
	else if (o->timeout > 3600)
		snprintf(o->error, sizeof(o->error), "timeout=%u is over 3600", o->timeout);
	else if (!o->show_help && !o->show_version && (!o->source || !o->mountpoint))
		snprintf(o->error, sizeof(o->error), "a source and a mountpoint are needed");
	return o->error[0] ? -EINVAL : 0;
}

int nck_fuse_opts_parse(nck_fuse_opts *opts, int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int rc;

	memset(opts, 0, sizeof(*opts));
	opts->notify_fd = -1;
	/* 512 KiB: the best first-read throughput measured (docs/PERFORMANCE.md). */
	opts->read_ahead_kb = 512;
	rc = fuse_opt_parse(&args, opts, opts_table, opts_proc);
	fuse_opt_free_args(&args);
	if (rc < 0) {
		if (!opts->error[0])
			snprintf(opts->error, sizeof(opts->error), "bad option value or out of memory");
		return -EINVAL;
	}
	if (opts->debug)
		opts->foreground = 1;
	return opts_validate(opts);
}

void nck_fuse_opts_dispose(nck_fuse_opts *opts)
{
	if (!opts)
		return;
	free(opts->source);
	free(opts->mountpoint);
	free(opts->mount_flags);
	free(opts->cache_dir);
	free(opts->calib);
	free(opts->gpu);
	free(opts->cache);
	opts->cache = NULL;
	opts->source = opts->mountpoint = opts->mount_flags = opts->cache_dir = NULL;
	opts->calib = opts->gpu = NULL;
	free(opts->token_file);
	free(opts->ca_file);
	free(opts->endpoint);
	opts->token_file = opts->ca_file = opts->endpoint = NULL;
}

const char *nck_fuse_opts_usage(void)
{
	return "usage: nemockptfs SOURCE MOUNTPOINT [-f] [-d] [-o OPTION[,OPTION...]]\n"
	       "\n"
	       "Mounts a NeMo checkpoint (.nemo/.qnemo tar file or checkpoint directory,\n"
	       "or an http://, https:// or s3://BUCKET/KEY URL of a tar file)\n"
	       "read-only at MOUNTPOINT. Returns once the mount is live.\n"
	       "\n"
	       "  -f                     stay in the foreground\n"
	       "  -d, -o debug           log every FUSE request (implies -f)\n"
	       "  -V, --version          print the version and exit\n"
	       "  -h, --help             print this help and exit\n"
	       "  -o allow_other         let other users see the mount\n"
	       "  -o default_permissions let the kernel check permissions\n"
	       "  -o uid=N,gid=N         owner shown for every file (default: the caller)\n"
	       "  -o umask=OOO           show 0444/0555 less OOO (default: the source's modes less write bits)\n"
	       "  -o max_threads=N       upper bound of FUSE worker threads\n"
	       "  -o read_ahead_kb=N     kernel readahead of the mount (root only; default 512,\n"
	       "                         0 keeps the kernel's 128)\n"
	       "  -o cache_dir=DIR       where gzip seek indexes are kept (default\n"
	       "                         $XDG_CACHE_HOME/nemockpt, ~/.cache/nemockpt, /var/cache/nemockpt)\n"
	       "  -o cache_size=N[KMG]   gzip data and quantized tensors kept in memory (256M each)\n"
	       "  -o shard_size=N[KMG]   merged/ safetensors shard size (default 5G)\n"
	       "  -o calib=FILE          activation amax per module (JSON) for qnemo/fp8\n"
	       "  -o group_size=N        qnemo/int4_awq block size (default 128)\n"
	       "  -o gpu=auto|off|N      quantize on GPU N, on the CPU, or on a GPU if one works\n"
	       "  -o cache=auto|kernel|direct  page cache of files that are not passed\n"
	       "                         through: kernel keeps them in the FUSE page cache,\n"
	       "                         direct reads them from the source each time (mmap\n"
	       "                         still works); auto picks per kind (docs/DECISIONS.md)\n"
	       "  -o nopassthrough       never hand whole source files to the kernel\n"
	       "                         (passthrough needs root and libfuse 3.17)\n"
	       "  -o auto_unmount        unmount when the daemon is killed (fusermount3 3.15+)\n"
	       "  -o shutdown_timeout=S  after SIGTERM, serve open files at most S seconds\n"
	       "                         (default: until the last one is closed)\n"
	       "  -o token_file=FILE     http(s): bearer token (default: $HF_TOKEN for Hugging Face)\n"
	       "  -o ca_file=FILE        https: CA certificates to trust (PEM)\n"
	       "  -o retries=N           http(s): retries of a failed request (default 5)\n"
	       "  -o timeout=S           http(s): connect and stall timeout (default 30)\n"
	       "  -o remote_cache_size=N[KMG] http(s): fetched blocks kept in memory (256M)\n"
	       "  -o disk_cache_size=N[KMG] http(s), s3: fetched blocks kept on disk under\n"
	       "                         cache_dir, at most N bytes (default 0: none)\n"
	       "  -o endpoint=URL        s3: an S3-compatible endpoint (default $AWS_ENDPOINT_URL)\n"
	       "  -o s3_path_style       s3: path-style addressing on AWS\n"
	       "  -o notify_fd=N         write \"READY=1\\n\" to fd N once the mount is live\n"
	       "  -o ro                  accepted; the mount is always read-only\n"
	       "fstab words (defaults, nofail, _netdev, auto, noauto, user, users, x-*) are ignored.\n";
}
