/* SPDX-License-Identifier: MIT */
/*
 * Command-line options of the nemockptfs daemon, parsed with a fuse_opt
 * table. Unknown options are errors; fstab-only words are ignored; "rw" is
 * ignored with a warning because the mount is always read-only. Generic
 * mount flags that mount(8) and mount.fuse3 pass along (nodev, nosuid, ...)
 * go to the kernel mount.
 *
 * Ownership: strings in nck_fuse_opts are owned by it; nck_fuse_opts_dispose()
 * frees them.
 * Thread-safety: start-up only.
 */
#ifndef NCK_FUSE_OPTS_H
#define NCK_FUSE_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct nck_fuse_opts {
	char *source;          /* first non-option argument */
	char *mountpoint;      /* second non-option argument */
	char *mount_flags;     /* comma list passed to the kernel mount, or NULL */
	int foreground;
	int debug;
	int show_version;
	int show_help;
	int allow_other;
	int default_permissions;
	int ro;
	int rw;                /* given: warn */
	int notify_fd;         /* -1: none */
	unsigned uid, gid;     /* valid when uid_set/gid_set */
	int uid_set, gid_set;
	unsigned umask;        /* octal */
	int umask_set;
	unsigned max_threads;  /* 0: libfuse default */
	unsigned read_ahead_kb; /* kernel readahead of the mount; 0: leave the kernel's */
	char *cache_dir;       /* gzip index directory, or NULL for the default */
	uint64_t cache_size;   /* bytes of decompressed data cached; 0: default */
	uint64_t shard_size;   /* merged/ safetensors shard size; 0: default */
	uint64_t group_size;   /* qnemo/int4_awq block size; 0: default */
	char *calib;           /* activation calibration file for qnemo/fp8, or NULL */
	char *gpu;             /* quantization backend: "auto" (NULL), "off" or a device number */
	char *cache;           /* page-cache policy: "auto" (NULL), "kernel" or "direct" */
	int no_passthrough;    /* -o nopassthrough: never pass whole files through */
	int auto_unmount;      /* -o auto_unmount: fusermount3 unmounts if we are killed */
	unsigned shutdown_timeout; /* seconds open files are served after SIGTERM; 0: until closed */
	char *token_file;      /* http(s): bearer token file, or NULL */
	char *ca_file;         /* https: CA bundle, or NULL */
	uint64_t remote_cache_size; /* http(s): fetched blocks kept; 0: default */
	uint64_t disk_cache_size;   /* remote: bytes of blocks kept on disk; 0: none */
	unsigned retries;      /* http(s): retries of a failed request (valid when retries_set) */
	int retries_set;
	unsigned timeout;      /* http(s): connect/stall timeout in seconds; 0: default */
	char *endpoint;        /* s3: S3-compatible endpoint URL, or NULL */
	int s3_path_style;     /* s3: path-style addressing on AWS */
	char error[256];       /* why parsing failed */
} nck_fuse_opts;

/*
 * Parses argv. Returns 0, or -EINVAL with opts->error set (unknown option,
 * bad value, missing or extra arguments), or -ENOMEM.
 */
int nck_fuse_opts_parse(nck_fuse_opts *opts, int argc, char **argv);

/* Frees the strings of opts. NULL-safe. */
void nck_fuse_opts_dispose(nck_fuse_opts *opts);

/* The usage text for -h. */
const char *nck_fuse_opts_usage(void);

#endif
