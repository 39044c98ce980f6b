/* SPDX-License-Identifier: MIT */
/*
 * nck_vfs: the mounted tree and its read planner (see nemockpt/vfs.h).
 *
 * The tree is built once from the container's entries (tree.c numbers it);
 * afterwards every function only reads it, so FUSE worker threads share it
 * without locks. Raw members of a tar are read from the archive's one fd
 * (of a gzip archive: copied out of its decompressed stream, NCK_EXTENT_SRC);
 * files of a directory source get an fd per open handle, opened beneath the
 * source root without following symlinks and checked against the identity
 * recorded at scan time.
 */
#include "vfs/vfs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/build.h"
#include "view/npy.h"
#include "nemockpt/log.h"

/* Sequential reads of a layout file ask the sources to read ahead the runs
 * of the next VFS_PREFETCH bytes (nck_src_willneed: POSIX_FADV_WILLNEED for
 * a file, background block fetches for a remote source): the runs of a
 * view file jump between members of one archive (shards, QKV heads, fc1
 * halves, row-parallel columns), which defeats the kernel's own readahead
 * of the source and a remote source's sequential one. Advised again each
 * time the reader passes half the window. */
#define VFS_PREFETCH (16u << 20)

/* A handle's prefetch state (mutable behind a const handle; atomics: reads
 * of one handle may run on several threads). */
typedef struct vfs_ra {
	_Atomic uint64_t next;  /* where a sequential read would start */
	_Atomic uint64_t ahead; /* advised up to here */
} vfs_ra;

struct nck_vfs_file {
	const nck_node *node;
	int fd;   /* the backing fd: borrowed (tar) or owned (directory file) */
	bool own; /* close fd on release */
	vfs_ra *ra; /* layout files: prefetch state (owned), else NULL */
	nck_vfs *vfs;
	nck_vfs_file *prev, *next; /* vfs->files */
};

/* ---- building ------------------------------------------------------------- */

/* Adds raw/<path> for every container entry. */
static int vfs_add_raw(nck_vfs *vfs, nck_tree_builder *b)
{
	const nck_container *c = vfs->container;

	for (size_t i = 0; i < c->n_entries; i++) {
		const nck_entry *e = &c->entries[i];
		size_t len = strlen(e->path);
		char *path = nck_arena_alloc(&vfs->arena, len + 5);
		nck_node proto = { 0 };
		int rc;

		if (!path)
			return -ENOMEM;
		memcpy(path, "raw/", 4);
		memcpy(path + 4, e->path, len + 1);
		proto.kind = e->kind == NCK_ENTRY_DIR ? NCK_NODE_DIR : NCK_NODE_RAW;
		proto.perm = e->mode;
		proto.mtime_sec = e->mtime_sec;
		proto.mtime_nsec = e->mtime_nsec;
		proto.size = e->size;
		proto.entry = e->kind == NCK_ENTRY_FILE ? e : NULL;
		if ((rc = nck_tree_add(b, path, &proto)) < 0)
			return rc;
	}
	return 0;
}

const nck_entry *nck_vfs_entry(const nck_vfs *vfs, const char *path)
{
	const nck_container *c = vfs->container;

	for (size_t i = 0; path && i < c->n_entries; i++)
		if (c->entries[i].kind == NCK_ENTRY_FILE && strcmp(c->entries[i].path, path) == 0)
			return &c->entries[i];
	return NULL;
}

/* Marks the nodes under raw/ (parents have lower inodes than their
 * children: the numbering is breadth-first), then counts its regular files
 * and their bytes (after duplicates were resolved by the tree). */
static void vfs_count(nck_vfs *vfs)
{
	const nck_node *raw = nck_tree_child(vfs->nodes, &vfs->nodes[1], "raw");
	uint64_t raw_ino = raw ? (uint64_t)(raw - vfs->nodes) : 0;

	for (size_t i = 2; i < vfs->n_nodes; i++)
		vfs->nodes[i].in_raw = i == raw_ino || vfs->nodes[vfs->nodes[i].parent].in_raw;
	for (size_t i = 1; i < vfs->n_nodes; i++) {
		if (vfs->nodes[i].kind == NCK_NODE_RAW && vfs->nodes[i].in_raw) {
			vfs->n_files++;
			vfs->file_bytes += vfs->nodes[i].size;
		}
	}
}

/* Nothing is shown wider than the source itself (the archive file, or the
 * directory: a class that may read it may read and search everything in
 * it), and computed files no wider than the files they come from. */
static void vfs_masks(nck_vfs *vfs)
{
	mode_t m = vfs->container->st.st_mode;

	vfs->src_mask = 0;
	for (int sh = 0; sh <= 6; sh += 3)
		if (m & ((S_ISDIR(m) ? 05u : 04u) << sh))
			vfs->src_mask |= 05u << sh;
	vfs->view_mask = 0444 & vfs->src_mask &
			 (vfs->catalog ? nck_catalog_source_mode(vfs->catalog) : 0777);
}

/* Builds the whole tree: raw/ from the container, the view kinds (sets.c), then info.json. */
static int vfs_build(nck_vfs *vfs, nck_diag *diag)
{
	const struct stat *st = &vfs->container->st;
	nck_node dir = { .kind = NCK_NODE_DIR, .perm = 0555 }, info = { .kind = NCK_NODE_MEM, .perm = 0444 };
	nck_tree_builder b;
	size_t raw_ino_slot;
	int rc;

	vfs_masks(vfs);
	dir.mtime_sec = (int64_t)st->st_mtim.tv_sec;
	dir.mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	info.mtime_sec = dir.mtime_sec;
	info.mtime_nsec = dir.mtime_nsec;
	if ((rc = nck_tree_builder_init(&b, &vfs->arena, &dir, vfs->container->path)) < 0 ||
	    (rc = nck_tree_add(&b, "raw", &dir)) < 0 || (rc = vfs_add_raw(vfs, &b)) < 0 ||
	    (rc = nck_vfs_add_views(vfs, &b, &dir)) < 0 ||
	    (rc = nck_tree_add(&b, "info.json", &info)) < 0 ||
	    (rc = nck_tree_build(&vfs->nodes, &vfs->n_nodes, &b)) < 0)
		goto out;
	vfs_count(vfs);
	if ((rc = nck_vfs_info_build(vfs)) < 0)
		goto out;
	/* info.json's bytes exist only now; patch its node. */
	raw_ino_slot = (size_t)(nck_tree_child(vfs->nodes, &vfs->nodes[1], "info.json") - vfs->nodes);
	vfs->nodes[raw_ino_slot].mem = vfs->info_json;
	vfs->nodes[raw_ino_slot].size = vfs->info_len;
out:
	nck_tree_builder_dispose(&b);
	if (rc < 0)
		return nck_diag_set(diag, rc, vfs->container->path, -1, "building the tree: %s",
				    strerror(-rc));
	return 0;
}

/* Builds the tensor catalog. Without require_catalog, a failure is a
 * warning: the mount still shows raw/, and info.json says why. */
static int vfs_catalog(nck_vfs *vfs, nck_diag *diag)
{
	nck_diag cdiag;
	int rc;

	nck_diag_init(&cdiag);
	rc = nck_catalog_build(&vfs->catalog, vfs->container, &cdiag);
	if (rc == 0)
		return 0;
	if (vfs->opts.require_catalog) {
		*diag = cdiag;
		return rc;
	}
	nck_diag_format(&cdiag, vfs->catalog_error, sizeof(vfs->catalog_error));
	nck_log(NCK_LOG_WARN, "no tensor views: %s", vfs->catalog_error);
	return 0;
}

/* An empty vfs with its options (the container comes next). */
static nck_vfs *vfs_alloc(const nck_vfs_opts *opts)
{
	nck_vfs *vfs = calloc(1, sizeof(*vfs));

	if (!vfs)
		return NULL;
	nck_arena_init(&vfs->arena);
	pthread_mutex_init(&vfs->files_lock, NULL);
	pthread_mutex_init(&vfs->sets_lock, NULL);
	vfs->opts = *opts;
	return vfs;
}

/* Everything after the container is open: catalog, views, tree. */
static int vfs_finish(nck_vfs *vfs, nck_diag *diag)
{
	int rc;

	if ((rc = vfs_catalog(vfs, diag)) < 0 || (rc = nck_vfs_views_init(vfs, diag)) < 0 ||
	    (rc = vfs_build(vfs, diag)) < 0)
		return rc;
	nck_container_seal(vfs->container);
	return 0;
}

int nck_vfs_open(nck_vfs **out, const char *source, const nck_vfs_opts *opts, nck_diag *diag)
{
	nck_vfs *vfs = vfs_alloc(opts);
	nck_container_opts copts;
	int rc;

	*out = NULL;
	if (!vfs)
		return nck_diag_set(diag, -ENOMEM, source, -1, "out of memory");
	copts = (nck_container_opts){ .cache_dir = opts->cache_dir, .gz_spacing = opts->gz_spacing,
				      .gz_cache_size = opts->cache_size,
				      .remote = { .token_file = opts->token_file, .ca_file = opts->ca_file,
						  .cache_size = opts->remote_cache_size,
						  .disk_cache_size = opts->disk_cache_size,
						  .retries = opts->retries, .timeout_s = opts->timeout,
						  .endpoint = opts->endpoint,
						  .path_style = opts->path_style } };
	vfs->opts.cache_dir = NULL; /* borrowed for the open only */
	if ((rc = nck_container_open_opts(&vfs->container, source, &copts, diag)) < 0 ||
	    (rc = vfs_finish(vfs, diag)) < 0) {
		nck_vfs_close(vfs);
		return rc;
	}
	*out = vfs;
	return 0;
}

int nck_vfs_open_container(nck_vfs **out, nck_container *c, const nck_vfs_opts *opts,
			   nck_diag *diag)
{
	nck_vfs *vfs = vfs_alloc(opts);
	int rc;

	*out = NULL;
	if (!vfs) {
		nck_container_close(c);
		return nck_diag_set(diag, -ENOMEM, c->path, -1, "out of memory");
	}
	vfs->container = c;
	vfs->opts.cache_dir = NULL;
	if ((rc = vfs_finish(vfs, diag)) < 0) {
		nck_vfs_close(vfs);
		return rc;
	}
	*out = vfs;
	return 0;
}

void nck_vfs_close(nck_vfs *vfs)
{
	if (!vfs)
		return;
	while (vfs->files)
		nck_vfs_file_close(vfs->files);
	pthread_mutex_destroy(&vfs->files_lock);
	nck_vfs_sets_free(vfs);
	pthread_mutex_destroy(&vfs->sets_lock);
	nck_catalog_close(vfs->catalog);
	nck_container_close(vfs->container);
	nck_arena_dispose(&vfs->arena);
	free(vfs);
}

/* ---- queries -------------------------------------------------------------- */

/* The inode table a node lives in: the main tree, or a view set whose
 * inodes are base + index. */
typedef struct vfs_tab {
	const nck_node *nodes;
	uint64_t base;
	const nck_vfs_set *set; /* NULL for the main tree */
} vfs_tab;

/* The node of `ino` and its table, or NULL. */
static const nck_node *vfs_resolve(const nck_vfs *vfs, uint64_t ino, vfs_tab *tab)
{
	const nck_vfs_set *set;
	uint64_t k, local;

	if (ino < NCK_VFS_SET_BASE) {
		*tab = (vfs_tab){ .nodes = vfs->nodes };
		return ino >= 1 && ino < vfs->n_nodes ? &vfs->nodes[ino] : NULL;
	}
	k = (ino - NCK_VFS_SET_BASE) >> NCK_VFS_SET_SHIFT;
	local = (ino - NCK_VFS_SET_BASE) & ((1ull << NCK_VFS_SET_SHIFT) - 1);
	if (k >= NCK_VFS_MAX_SETS)
		return NULL;
	set = __atomic_load_n(&vfs->sets[k], __ATOMIC_ACQUIRE);
	if (!set || local < 1 || local >= set->n_nodes)
		return NULL;
	*tab = (vfs_tab){ .nodes = set->nodes, .base = ino - local, .set = set };
	return &set->nodes[local];
}

static const nck_node *vfs_node(const nck_vfs *vfs, uint64_t ino)
{
	vfs_tab tab;

	return vfs_resolve(vfs, ino, &tab);
}

/* The inode of node n's parent. */
static uint64_t vfs_parent(const vfs_tab *tab, const nck_node *n)
{
	if (tab->set && n == &tab->nodes[1])
		return tab->set->parent;
	return tab->base + n->parent;
}

int nck_vfs_lookup(nck_vfs *vfs, uint64_t parent, const char *name, uint64_t *ino_out)
{
	vfs_tab tab;
	const nck_node *dir = vfs_resolve(vfs, parent, &tab), *child;

	if (!dir)
		return -ENOENT;
	if (dir->kind == NCK_NODE_VIEWDIR)
		return nck_vfs_set_get(vfs, dir, parent, name, ino_out);
	if (dir->kind != NCK_NODE_DIR)
		return -ENOTDIR;
	child = nck_tree_child(tab.nodes, dir, name);
	if (!child)
		return -ENOENT;
	*ino_out = tab.base + (uint64_t)(child - tab.nodes);
	return 0;
}

int nck_vfs_getattr(const nck_vfs *vfs, uint64_t ino, struct stat *st)
{
	const nck_node *n = vfs_node(vfs, ino);
	mode_t perm;

	if (!n)
		return -ENOENT;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = vfs->opts.uid;
	st->st_gid = vfs->opts.gid;
	if (n->kind == NCK_NODE_DIR || n->kind == NCK_NODE_VIEWDIR) {
		perm = vfs->opts.umask_set ? 0555 : n->perm & 0555 & vfs->src_mask;
		st->st_mode = S_IFDIR;
		st->st_nlink = 2 + (n->kind == NCK_NODE_DIR ? n->n_subdirs : n->n_listing);
	} else {
		/* Read-only everywhere. With umask=, 0444 plus the source's
		 * execute bits; else the source's bits less write bits (as
		 * squashfuse), computed files the mode of their sources. */
		perm = vfs->opts.umask_set ? 0444 | ((n->perm & 0111) ? 0111 : 0)
		       : n->kind == NCK_NODE_RAW ? n->perm & 0555 & vfs->src_mask
						 : n->perm & vfs->view_mask;
		st->st_mode = S_IFREG;
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	}
	st->st_mode |= perm & ~vfs->opts.umask;
	st->st_blksize = 131072;
	st->st_mtim.tv_sec = (time_t)n->mtime_sec;
	st->st_mtim.tv_nsec = (long)n->mtime_nsec;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	return 0;
}

int nck_vfs_readdir(const nck_vfs *vfs, uint64_t dir, uint64_t index, const char **name_out,
		    uint64_t *ino_out)
{
	vfs_tab tab;
	const nck_node *d = vfs_resolve(vfs, dir, &tab);

	if (!d)
		return -ENOENT;
	if (d->kind != NCK_NODE_DIR && d->kind != NCK_NODE_VIEWDIR)
		return -ENOTDIR;
	if (index < 2) {
		*name_out = index == 0 ? "." : "..";
		*ino_out = index == 0 ? dir : vfs_parent(&tab, d);
		return 0;
	}
	if (d->kind == NCK_NODE_VIEWDIR) {
		/* Listed without an inode: the set is built when looked up. */
		if (index - 2 >= d->n_listing)
			return -ENOENT;
		*name_out = d->listing[index - 2];
		*ino_out = 0;
		return 0;
	}
	if (index - 2 >= d->n_children)
		return -ENOENT;
	*ino_out = tab.base + d->first_child + index - 2;
	*name_out = tab.nodes[d->first_child + index - 2].name;
	return 0;
}

const nck_catalog *nck_vfs_catalog(const nck_vfs *vfs)
{
	return vfs->catalog;
}

const char *nck_vfs_info_json(const nck_vfs *vfs)
{
	return vfs->info_json;
}

void nck_vfs_foreach_member(const nck_vfs *vfs, nck_vfs_member_cb cb, void *payload)
{
	for (size_t i = 1; i < vfs->n_nodes; i++) {
		const nck_node *n = &vfs->nodes[i];

		if (n->kind == NCK_NODE_RAW && n->in_raw)
			cb(n->entry->path, n->size, n->entry->offset, payload);
	}
}

void nck_vfs_totals(const nck_vfs *vfs, uint64_t *nodes_out, uint64_t *bytes_out)
{
	*nodes_out = vfs->n_nodes - 1;
	*bytes_out = vfs->file_bytes;
}

/* ---- open files and reads ----------------------------------------------------- */

int nck_vfs_file_open(nck_vfs_file **out, nck_vfs *vfs, uint64_t ino, int flags)
{
	const nck_node *n = vfs_node(vfs, ino);
	nck_vfs_file *f;
	int rc;

	*out = NULL;
	if (!n)
		return -ENOENT;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT)))
		return -EROFS;
	if (n->kind == NCK_NODE_DIR)
		return -EISDIR;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->node = n;
	f->fd = -1;
	if (n->kind == NCK_NODE_LAYOUT && !(f->ra = calloc(1, sizeof(*f->ra)))) {
		free(f);
		return -ENOMEM;
	}
	if (n->kind == NCK_NODE_RAW && vfs->container->src) {
		f->fd = nck_src_fd(vfs->container->src);
	} else if (n->kind == NCK_NODE_RAW) {
		f->fd = nck_container_member_fd(vfs->container, n->entry);
		if (f->fd < 0) {
			rc = f->fd;
			free(f->ra);
			free(f);
			return rc;
		}
		f->own = true;
	}
	f->vfs = vfs;
	pthread_mutex_lock(&vfs->files_lock);
	f->next = vfs->files;
	if (f->next)
		f->next->prev = f;
	vfs->files = f;
	pthread_mutex_unlock(&vfs->files_lock);
	*out = f;
	return 0;
}

void nck_vfs_file_close(nck_vfs_file *file)
{
	nck_vfs *vfs;

	if (!file)
		return;
	vfs = file->vfs;
	pthread_mutex_lock(&vfs->files_lock);
	if (file->prev)
		file->prev->next = file->next;
	else
		vfs->files = file->next;
	if (file->next)
		file->next->prev = file->prev;
	pthread_mutex_unlock(&vfs->files_lock);
	if (file->own && file->fd >= 0)
		close(file->fd);
	free(file->ra);
	free(file);
}

/* Collects a layout's planned pieces as extents. */
typedef struct vfs_collect {
	const nck_vfs *vfs;
	const nck_node *node;
	nck_extent *ext;
	size_t n, max;
} vfs_collect;

static int vfs_piece(void *payload, nck_piece_kind kind, int fd, uint64_t pos, const void *mem,
		     size_t len)
{
	vfs_collect *c = payload;

	if (c->n == c->max)
		return -E2BIG;
	if (kind == NCK_PIECE_FD)
		c->ext[c->n++] = (nck_extent){ .kind = NCK_EXTENT_FD, .fd = fd, .pos = pos, .len = len };
	else if (kind == NCK_PIECE_MEM)
		c->ext[c->n++] = (nck_extent){ .kind = NCK_EXTENT_MEM, .mem = mem, .len = len };
	else if (kind == NCK_PIECE_SRC)
		c->ext[c->n++] = (nck_extent){ .kind = NCK_EXTENT_SRC, .src = mem, .pos = pos,
					       .len = len };
	else
		c->ext[c->n++] = (nck_extent){ .kind = NCK_EXTENT_GEN, .src = c->node,
					       .mem = c->vfs->catalog, .pos = pos, .len = len };
	return 0;
}

/* Prefetch advice, coalesced: the runs of a strided window (row-parallel
 * columns) are short and interleave between a few sources, so each source
 * keeps a pending range that grows while the runs stay within a gap of it.
 * Ranges are advised in the order they were opened (a remote source queues
 * them first come, first fetched), and a window of tiny runs (a transposed
 * chunk: one element each) stops being walked after VFS_ADVICE_RUNS. */
#define VFS_ADVICE_SLOTS 16
#define VFS_ADVICE_GAP (64u << 10)
#define VFS_ADVICE_RUNS 65536

typedef struct vfs_advice {
	struct {
		const nck_src *src;
		uint64_t pos, len;
	} slot[VFS_ADVICE_SLOTS];
	size_t n, last; /* slots in use; the one the previous run went to */
	size_t runs;
} vfs_advice;

/* Advises the oldest pending range. */
static void vfs_advice_flush(vfs_advice *a)
{
	nck_src_willneed(a->slot[0].src, a->slot[0].pos, (size_t)a->slot[0].len);
	memmove(&a->slot[0], &a->slot[1], (a->n - 1) * sizeof(a->slot[0]));
	a->n--;
	a->last = 0;
}

/* Grows slot i by the run at pos if it is that slot's source and near it. */
static bool vfs_advice_grow(vfs_advice *a, size_t i, const nck_src *src, uint64_t pos, size_t len)
{
	uint64_t end = a->slot[i].pos + a->slot[i].len;

	if (a->slot[i].src != src || pos < a->slot[i].pos || pos > end + VFS_ADVICE_GAP)
		return false;
	if (pos + len > end)
		a->slot[i].len = pos + len - a->slot[i].pos;
	a->last = i;
	return true;
}

/* One source run of the prefetch window. */
static int vfs_advise(void *payload, const nck_src *src, uint64_t pos, uint64_t dst, size_t len)
{
	vfs_advice *a = payload;

	(void)dst;
	if (++a->runs > VFS_ADVICE_RUNS)
		return -ECANCELED;
	if (a->last < a->n && vfs_advice_grow(a, a->last, src, pos, len))
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (vfs_advice_grow(a, i, src, pos, len))
			return 0;
	if (a->n == VFS_ADVICE_SLOTS)
		vfs_advice_flush(a);
	a->slot[a->n].src = src;
	a->slot[a->n].pos = pos;
	a->slot[a->n].len = len;
	a->last = a->n++;
	return 0;
}

/* Prefetches the source runs ahead of a sequential read of a layout file.
 * The kernel sends a reader's requests on several threads and not always
 * in order, so a read that starts within VFS_PREFETCH / 4 of where the last
 * one ended counts as sequential. */
static void vfs_prefetch(const nck_vfs *vfs, const nck_node *n, vfs_ra *ra, uint64_t off,
			 size_t len)
{
	uint64_t end = off + len, last, seen, from, to;

	if (!ra)
		return;
	/* Relaxed: the offsets are hints; a lost update costs one advice. */
	last = atomic_exchange_explicit(&ra->next, end, memory_order_relaxed);
	if (off + VFS_PREFETCH / 4 < last || off > last + VFS_PREFETCH / 4) {
		/* A jump: no prefetch for it, and the window starts again from
		 * here (else a reader that went back would get none until it
		 * passed the old mark). */
		atomic_store_explicit(&ra->ahead, end, memory_order_relaxed);
		return;
	}
	seen = atomic_load_explicit(&ra->ahead, memory_order_relaxed);
	if (seen >= end + VFS_PREFETCH / 2 && seen <= end + VFS_PREFETCH)
		return;
	from = seen > end && seen <= end + VFS_PREFETCH ? seen : end;
	to = n->size - end > VFS_PREFETCH ? end + VFS_PREFETCH : n->size;
	if (to <= from || !atomic_compare_exchange_strong_explicit(&ra->ahead, &seen, to,
								    memory_order_relaxed,
								    memory_order_relaxed))
		return; /* nothing left, or another thread advised it */
	{
		vfs_advice a = { .n = 0 };

		(void)nck_layout_sources(vfs->catalog, n->layout, from, (size_t)(to - from),
					 vfs_advise, &a);
		while (a.n)
			vfs_advice_flush(&a);
	}
}

/* A view file: runs of file-backed sources go out zero-copy next to header
 * bytes; a request that needs more pieces than a reply holds is copied
 * whole. */
static int vfs_read_layout(const nck_vfs *vfs, const nck_vfs_file *file, uint64_t off, size_t len,
			   nck_extent *ext, size_t max, size_t *n_out)
{
	const nck_node *n = file->node;
	vfs_collect c = { .vfs = vfs, .node = n, .ext = ext, .max = max };
	int rc = nck_layout_plan(vfs->catalog, n->layout, off, len, vfs_piece, &c);

	vfs_prefetch(vfs, n, file->ra, off, len);

	if (rc == -E2BIG) {
		ext[0] = (nck_extent){ .kind = NCK_EXTENT_GEN, .src = n, .mem = vfs->catalog,
				       .pos = off, .len = len };
		c.n = 1;
		rc = 0;
	}
	*n_out = rc < 0 ? 0 : c.n;
	return rc == -ENOMEM ? rc : rc < 0 ? -EIO : 0;
}

int nck_vfs_read(const nck_vfs *vfs, const nck_vfs_file *file, uint64_t off, size_t len,
		 nck_extent *ext, size_t max, size_t *n_out)
{
	const nck_node *n = file->node;
	int rc;

	*n_out = 0;
	if (off >= n->size || len == 0 || max == 0)
		return 0;
	if (len > n->size - off)
		len = (size_t)(n->size - off);
	if (n->kind == NCK_NODE_MEM) {
		ext[0] = (nck_extent){ .kind = NCK_EXTENT_MEM, .mem = (const char *)n->mem + off, .len = len };
		*n_out = 1;
		return 0;
	}
	if (n->kind == NCK_NODE_NPY) {
		/* Computed when copied out; the catalog's reader checks the source. */
		ext[0] = (nck_extent){ .kind = NCK_EXTENT_GEN, .src = n, .mem = vfs->catalog,
				       .pos = off, .len = len };
		*n_out = 1;
		return 0;
	}
	if (n->kind == NCK_NODE_LAYOUT)
		return vfs_read_layout(vfs, file, off, len, ext, max, n_out);
	/* A source changed in place would serve wrong bytes: refuse instead. */
	if (vfs->container->src)
		rc = nck_src_check(vfs->container->src);
	else
		rc = nck_src_check_fd(file->fd, &n->entry->st);
	if (rc < 0)
		return rc;
	if (file->fd < 0) {
		/* A gzip archive's member: bytes of the decompressed stream. */
		ext[0] = (nck_extent){ .kind = NCK_EXTENT_SRC, .src = vfs->container->src,
				       .pos = n->entry->offset + off, .len = len };
		*n_out = 1;
		return 0;
	}
	ext[0] = (nck_extent){
		.kind = NCK_EXTENT_FD,
		.fd = file->fd,
		.pos = (vfs->container->src ? n->entry->offset : 0) + off,
		.len = len,
	};
	*n_out = 1;
	return 0;
}

int nck_vfs_extent_lend(const nck_extent *ext, nck_loan *loan)
{
	loan->n = 0;
	loan->vt = NULL;
	if (ext->kind != NCK_EXTENT_SRC)
		return -ENOTSUP;
	return nck_src_map(ext->src, ext->pos, ext->len, loan);
}

void nck_vfs_loan_return(nck_loan *loan)
{
	nck_src_unmap(loan);
}

int nck_vfs_extent_read(const nck_extent *ext, void *buf)
{
	int64_t n;

	if (ext->kind == NCK_EXTENT_GEN) {
		const nck_node *node = ext->src;
		int rc = node->kind == NCK_NODE_NPY
				 ? nck_npy_read(ext->mem, node->tensor, ext->pos, buf, ext->len)
				 : nck_layout_read(ext->mem, node->layout, ext->pos, buf, ext->len);

		return rc == -ENOMEM ? rc : rc < 0 ? -EIO : 0;
	}
	if (ext->kind != NCK_EXTENT_SRC)
		return -EINVAL;
	n = nck_src_pread(ext->src, buf, ext->len, ext->pos);
	if (n == (int64_t)ext->len)
		return 0;
	return n == -ENOMEM ? -ENOMEM : -EIO;
}
