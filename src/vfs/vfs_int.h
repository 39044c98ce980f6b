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
#include "view/viewset.h"
#include "vfs/tree.h"

/* Directories of the views that re-shard (ranks/tpXppY/, ...) are built on
 * their first lookup and get inodes above NCK_VFS_SET_BASE: set number
 * shifted by NCK_VFS_SET_SHIFT, plus the node's index in the set's table. */
#define NCK_VFS_SET_BASE (1ull << 48)
#define NCK_VFS_SET_SHIFT 24
#define NCK_VFS_MAX_SETS 4096

/* One built view directory and its files. */
typedef struct nck_vfs_set {
	nck_viewset *vs;       /* the files (owned) */
	nck_arena arena;       /* nodes and names */
	nck_node *nodes;       /* slot 1 is the directory itself */
	size_t n_nodes;
	uint64_t parent;       /* inode of the view directory it is in */
	uint32_t view, tp, pp;
} nck_vfs_set;

struct nck_vfs {
	nck_container *container; /* owned */
	nck_catalog *catalog;     /* owned; NULL when it could not be built */
	char catalog_error[512];  /* why, for info.json */
	nck_arena arena;          /* nodes, names, info.json */
	nck_node *nodes;          /* inode table; slot 0 unused */
	size_t n_nodes;           /* slots, including slot 0 */
	nck_vfs_opts opts;
	mode_t src_mask;          /* widest bits anything shows: the source's own mode */
	mode_t view_mask;         /* computed files: src_mask & the catalog's sources' modes */
	const char *info_json;    /* arena */
	size_t info_len;
	uint64_t n_files;         /* regular files under raw/ */
	uint64_t file_bytes;      /* their total size */
	nck_view_ctx view_ctx;    /* what the views may use */
	void *config;             /* the config member's bytes (owned) */
	void *tokenizer;          /* the tokenizer artifact's bytes (owned), or NULL */
	nck_viewset *fixed[NCK_VIEW_COUNT]; /* one-layout views (merged/, hf/...), owned */
	struct nck_qcache *qcache; /* quantized tensors of qnemo/ (owned) */
	struct json_t *calib;     /* the calibration file's object (owned), or NULL */
	/* Built view directories: published with a release store once complete,
	 * read without the lock; sets_lock serializes building. */
	pthread_mutex_t sets_lock;
	nck_vfs_set *sets[NCK_VFS_MAX_SETS];
	size_t n_sets;
	/* Open handles, so that the ones still open at unmount (the kernel sends
	 * no release after a signal) are closed too. The only mutable state. */
	pthread_mutex_t files_lock;
	nck_vfs_file *files;      /* doubly linked through prev/next */
};

/* nck_vfs_open() of a container already open (taken: closed on failure
 * too), e.g. one over memory; opts->cache_dir is not used. For the fuzz
 * target that mounts a checkpoint in memory (tests/fuzz/fuzz_checkpoint.c). */
int nck_vfs_open_container(nck_vfs **out, nck_container *c, const nck_vfs_opts *opts,
			   nck_diag *diag);

/* The container entry of the regular file at `path`, or NULL (a linear
 * scan: for the few artifacts looked up at mount). */
const nck_entry *nck_vfs_entry(const nck_vfs *vfs, const char *path);

/* Prepares what the views use: the config's bytes, the artifacts, the
 * calibration file, the quantization backend and cache. Errors (a bad
 * calibration file, no such GPU) stop the mount, with diag. */
int nck_vfs_views_init(nck_vfs *vfs, nck_diag *diag);

/* Adds the view directories (with their default listings) to the tree. -ENOMEM. */
int nck_vfs_add_views(nck_vfs *vfs, nck_tree_builder *b, const nck_node *dir);

/* Finds or builds the set `name` ("tp2pp1") of view directory `viewdir`
 * and returns its directory's inode. -ENOENT (not a valid layout), -ENOMEM. */
int nck_vfs_set_get(nck_vfs *vfs, const nck_node *viewdir, uint64_t viewdir_ino, const char *name,
		    uint64_t *ino_out);

/* Frees every set (at close). */
void nck_vfs_sets_free(nck_vfs *vfs);

/* Builds vfs->info_json from the container and totals. -ENOMEM. */
int nck_vfs_info_build(nck_vfs *vfs);

#endif
