/* SPDX-License-Identifier: MIT */
/*
 * nck_tree: builds the immutable inode table of a mount from a list of paths.
 *
 * Paths are added in any order; missing parent directories are synthesized
 * with the builder's default attributes. nck_tree_build() then numbers the
 * nodes breadth-first so that the children of every directory hold
 * consecutive inode numbers in strcmp() order: a lookup is a binary search
 * over that range and readdir is an index. Inode 1 is the root; slot 0 of
 * the table is unused.
 *
 * Conflicts: a later file replaces an earlier one (tar semantics); a
 * directory wins over a file of the same path, with a warning.
 *
 * Ownership: nodes and names live in the arena given to the builder.
 * Thread-safety: one thread builds; the resulting table is read-only.
 */
#ifndef NCK_VFS_TREE_H
#define NCK_VFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "container/container.h"
#include "nemockpt/catalog.h"
#include "nemockpt/diag.h"
#include "util/arena.h"
#include "util/strmap.h"

typedef enum nck_node_kind {
	NCK_NODE_DIR = 0,
	NCK_NODE_RAW = 1, /* a container member: entry */
	NCK_NODE_MEM = 2, /* bytes in memory: mem, size */
	NCK_NODE_NPY = 3, /* a catalog tensor as a .npy file: tensor, size */
	NCK_NODE_LAYOUT = 4, /* a synthesized file: layout, size */
	NCK_NODE_VIEWDIR = 5, /* ranks/, nemo/: tpXppY entries made on lookup (view, listing) */
} nck_node_kind;

typedef struct nck_node {
	const char *name;       /* last path component; "" for the root */
	uint64_t parent;        /* parent inode (the root is its own parent) */
	uint64_t first_child;   /* directories: inode of the first child */
	uint64_t n_children;    /* directories: number of children */
	uint64_t n_subdirs;     /* directories: children that are directories */
	nck_node_kind kind;
	uint32_t perm;          /* permission bits of the source (x bits kept) */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;          /* files: bytes */
	const nck_entry *entry; /* RAW: the member (borrowed from the container) */
	const void *mem;        /* MEM: the bytes (arena) */
	const nck_tensor *tensor; /* NPY: the tensor (borrowed from the catalog) */
	const struct nck_layout *layout; /* LAYOUT: the file's plan (borrowed from the vfs) */
	uint32_t view;          /* VIEWDIR: the nck_view_kind */
	const char *const *listing; /* VIEWDIR: names listed by readdir (arena) */
	size_t n_listing;
	bool in_raw;            /* under raw/ (views may show the same members elsewhere) */
} nck_node;

typedef struct nck_tree_builder {
	nck_arena *arena;    /* borrowed: where nodes and names go */
	nck_node dir_proto;  /* attributes of synthesized directories */
	nck_node *nodes;     /* build order; index 0 is the root */
	size_t *parents;     /* build index of each node's parent */
	size_t len, cap;
	nck_strmap index;    /* path -> build index */
	const char *origin;  /* for warnings: the source path */
} nck_tree_builder;

/* Starts a tree whose root and synthesized directories copy `dir_proto`'s times. */
int nck_tree_builder_init(nck_tree_builder *b, nck_arena *arena, const nck_node *dir_proto,
			  const char *origin);

/* Frees the builder's temporary tables (not the arena). NULL-safe. */
void nck_tree_builder_dispose(nck_tree_builder *b);

/*
 * Adds `proto` (kind and attributes) at `path` ("a/b/c", arena-owned or
 * static, no empty components). Returns 0 or -ENOMEM.
 */
int nck_tree_add(nck_tree_builder *b, const char *path, const nck_node *proto);

/*
 * Numbers the nodes and returns the inode table (arena-owned) of *n_out
 * slots, slot 0 unused. -ENOMEM.
 */
int nck_tree_build(nck_node **nodes_out, size_t *n_out, nck_tree_builder *b);

/* Binary search for `name` among the children of directory node `dir`. */
const nck_node *nck_tree_child(const nck_node *nodes, const nck_node *dir, const char *name);

#endif
