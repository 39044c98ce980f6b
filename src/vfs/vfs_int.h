/* SPDX-License-Identifier: MIT */
/*
 * The body of struct nck_vfs, shared by the vfs module's files.
 * Thread-safety: immutable after nck_vfs_open(), except the open-handle
 * list, guarded by files_lock.
 */
#ifndef NCK_VFS_VFS_INT_H
#define NCK_VFS_VFS_INT_H

#include <pthread.h>

#include "container/container.h"
#include "nemockpt/vfs.h"
#include "util/arena.h"
#include "vfs/tree.h"

struct nck_vfs {
	nck_container *container; /* owned */
	nck_catalog *catalog;     /* owned; NULL when it could not be built */
	struct nck_merged *merged; /* merged/ plan (owned), NULL without a catalog */
	char catalog_error[512];  /* why, for info.json */
	nck_arena arena;          /* nodes, names, info.json */
	nck_node *nodes;          /* inode table; slot 0 unused */
	size_t n_nodes;           /* slots, including slot 0 */
	nck_vfs_opts opts;
	const char *info_json;    /* arena */
	size_t info_len;
	uint64_t n_files;         /* regular files under raw/ */
	uint64_t file_bytes;      /* their total size */
	/* Open handles, so that the ones still open at unmount (the kernel sends
	 * no release after a signal) are closed too. The only mutable state. */
	pthread_mutex_t files_lock;
	nck_vfs_file *files;      /* doubly linked through prev/next */
};

/* Builds vfs->info_json from the container and totals. -ENOMEM. */
int nck_vfs_info_build(nck_vfs *vfs);

#endif
