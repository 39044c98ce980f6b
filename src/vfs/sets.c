/* SPDX-License-Identifier: MIT */
/*
 * The re-sharding views' directories: ranks/ and nemo/ are built with the
 * tree (their default listing only); each tpXppY below them becomes a set
 * on its first lookup: the view builds its files (view/viewset.h) and a
 * small inode table is numbered for them, like the main tree. Sets are
 * never freed before unmount, so inodes handed to the kernel stay valid.
 */
#include "vfs/vfs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nemockpt/log.h"
#include "view/qcache.h"

/* Largest tokenizer artifact read for hf/ (the catalog reads the same file,
 * up to the same size, to count its vocabulary: catalog/config.c). */
#define SETS_TOKENIZER_MAX (64u << 20)

/* The members at the root of the checkpoint that are neither the config nor
 * weights: tokenizer files and other artifacts nemo/ shows as they are. */
static void sets_find_artifacts(nck_vfs *vfs)
{
	const nck_container *c = vfs->container;
	const nck_entry **list;
	size_t n = 0;

	if (!(list = nck_arena_alloc(&vfs->arena, (c->n_entries + 1) * sizeof(*list))))
		return;
	for (size_t i = 0; i < c->n_entries; i++) {
		const nck_entry *e = &c->entries[i];
		const char *dot = strrchr(e->path, '.');

		if (e->kind != NCK_ENTRY_FILE || strchr(e->path, '/') ||
		    strcmp(e->path, "model_config.yaml") == 0 ||
		    (dot && (strcmp(dot, ".ckpt") == 0 || strcmp(dot, ".pt") == 0)))
			continue;
		list[n++] = e;
	}
	list[n] = NULL;
	vfs->view_ctx.artifacts = list;
}

/* Finds the config and tokenizer members, reads the config the nemo/ view
 * rewrites (a missing or oversized one only disables that view), and lists
 * the root artifacts. */
static void sets_load_config(nck_vfs *vfs)
{
	const char *cfg, *tok;
	const nck_entry *e;
	nck_diag diag;
	size_t len;

	nck_catalog_artifacts(vfs->catalog, &cfg, &tok);
	vfs->view_ctx.cat = vfs->catalog;
	vfs->view_ctx.container = vfs->container;
	vfs->view_ctx.source = vfs->container->path;
	vfs->view_ctx.config_path = cfg;
	vfs->view_ctx.tokenizer = nck_vfs_entry(vfs, tok);
	nck_diag_init(&diag);
	if ((e = nck_vfs_entry(vfs, cfg)) &&
	    nck_container_slurp(&vfs->config, &len, vfs->container, e, 16u << 20, &diag) == 0) {
		vfs->view_ctx.config = vfs->config;
		vfs->view_ctx.config_len = len;
	}
	nck_diag_init(&diag);
	if (vfs->view_ctx.tokenizer &&
	    nck_container_slurp(&vfs->tokenizer, &len, vfs->container, vfs->view_ctx.tokenizer,
				SETS_TOKENIZER_MAX, &diag) == 0) {
		vfs->view_ctx.tokenizer_data = vfs->tokenizer;
		vfs->view_ctx.tokenizer_len = len;
	}
	sets_find_artifacts(vfs);
}

/* The activation calibration file of qnemo/fp8: a JSON object of module
 * name -> activation amax. A file that cannot be read or parsed stops the
 * mount. */
static int sets_load_calib(nck_vfs *vfs, const char *path, nck_diag *diag)
{
	json_error_t err;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);

	if (!root)
		/* jansson's text quotes the bytes near the error: never echo a file's content. */
		return json_error_code(&err) == json_error_cannot_open_file
			       ? nck_diag_set(diag, -ENOENT, path, -1, "calibration: cannot open the file")
			       : nck_diag_set(diag, -EBADMSG, path, err.position,
					      "calibration: not valid JSON (line %d, column %d)", err.line,
					      err.column);
	if (!json_is_object(root)) {
		json_decref(root);
		return nck_diag_set(diag, -EBADMSG, path, 0,
				    "calibration: not a JSON object of module -> amax");
	}
	vfs->calib = root;
	vfs->view_ctx.calib = root;
	vfs->view_ctx.calib_name = nck_arena_strndup(&vfs->arena, path, strlen(path));
	return 0;
}

int nck_vfs_views_init(nck_vfs *vfs, nck_diag *diag)
{
	const nck_quant_backend *be;
	int rc;

	if (!vfs->catalog)
		return 0;
	sets_load_config(vfs);
	vfs->view_ctx.group_size = vfs->opts.group_size;
	vfs->view_ctx.shard_size = vfs->opts.shard_size;
	if (nck_view_prepare(&vfs->view_ctx) < 0)
		return nck_diag_set(diag, -ENOMEM, vfs->container->path, -1, "out of memory");
	if (vfs->opts.calib && (rc = sets_load_calib(vfs, vfs->opts.calib, diag)) < 0)
		return rc;
	/* A named backend must work now; "auto" looks for a GPU at the first
	 * quantization, so mounts that quantize nothing never load CUDA. */
	be = NULL;
	if (vfs->opts.gpu && strcmp(vfs->opts.gpu, "auto") != 0 &&
	    !(be = nck_quant_backend_get(vfs->opts.gpu, diag)))
		return -ENODEV;
	if (!(vfs->qcache = nck_qcache_new(vfs->catalog, be, vfs->opts.cache_size)))
		return nck_diag_set(diag, -ENOMEM, vfs->container->path, -1, "out of memory");
	vfs->view_ctx.qcache = vfs->qcache;
	vfs->opts.calib = vfs->opts.gpu = NULL; /* borrowed for the open only */
	return 0;
}

/* The node of a view set's file, from the directory's prototype. */
static nck_node sets_vfile_node(const nck_vfile *f, const nck_node *dir_proto)
{
	nck_node proto = *dir_proto;

	proto.perm = 0444;
	proto.size = f->size;
	if (f->kind == NCK_VFILE_LAYOUT) {
		proto.kind = NCK_NODE_LAYOUT;
		proto.layout = &f->layout;
	} else if (f->kind == NCK_VFILE_MEM) {
		proto.kind = NCK_NODE_MEM;
		proto.mem = f->mem;
	} else if (f->kind == NCK_VFILE_NPY) {
		proto.kind = NCK_NODE_NPY;
		proto.tensor = f->tensor;
	} else {
		proto.kind = NCK_NODE_RAW;
		proto.entry = f->member;
		proto.perm = f->member->mode;
		proto.size = f->member->size;
		if (f->member_mtime) {
			proto.mtime_sec = f->member->mtime_sec;
			proto.mtime_nsec = f->member->mtime_nsec;
		}
	}
	return proto;
}

/* Adds a view of one layout (tensors/, merged/, hf/, gguf/): its set is
 * built now (metadata only) and its files become nodes of the main tree
 * under the view's directory. */
static int sets_add_fixed(nck_vfs *vfs, nck_tree_builder *b, const nck_node *dir, nck_view_kind k)
{
	const char *name = nck_view_name(k);
	int rc;

	if (vfs->fixed[k])
		return 0;
	if ((rc = nck_viewset_build(&vfs->fixed[k], &vfs->view_ctx, k, 1, 1)) < 0)
		return rc == -ENOENT ? 0 : rc;
	if ((rc = nck_tree_add(b, name, dir)) < 0)
		return rc;
	for (size_t i = 0; i < vfs->fixed[k]->n_files; i++) {
		const nck_vfile *f = &vfs->fixed[k]->files[i];
		nck_node proto = sets_vfile_node(f, dir);
		size_t len = strlen(name) + strlen(f->path) + 2;
		char *path = nck_arena_alloc(&vfs->arena, len);

		if (!path)
			return -ENOMEM;
		snprintf(path, len, "%s/%s", name, f->path);
		if ((rc = nck_tree_add(b, path, &proto)) < 0)
			return rc;
	}
	return 0;
}

int nck_vfs_add_views(nck_vfs *vfs, nck_tree_builder *b, const nck_node *dir)
{
	if (!vfs->catalog)
		return 0;
	for (uint32_t k = 0; k < NCK_VIEW_COUNT; k++) {
		uint32_t tp_pp[16][2];
		nck_node proto = *dir;
		const char **names;
		size_t n;
		int rc;

		if (!nck_view_applies(&vfs->view_ctx, (nck_view_kind)k))
			continue;
		if (!nck_view_get_ops((nck_view_kind)k)->layouts) {
			if ((rc = sets_add_fixed(vfs, b, dir, (nck_view_kind)k)) < 0)
				return rc;
			continue;
		}
		n = nck_view_listing(&vfs->view_ctx, (nck_view_kind)k, tp_pp, 16);
		if (!(names = nck_arena_alloc(&vfs->arena, (n + 1) * sizeof(*names))))
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			char name[32];

			snprintf(name, sizeof(name), "tp%upp%u", tp_pp[i][0], tp_pp[i][1]);
			if (!(names[i] = nck_arena_strndup(&vfs->arena, name, strlen(name))))
				return -ENOMEM;
		}
		proto.kind = NCK_NODE_VIEWDIR;
		proto.view = k;
		proto.listing = names;
		proto.n_listing = n;
		if ((rc = nck_tree_add(b, nck_view_name((nck_view_kind)k), &proto)) < 0)
			return rc;
	}
	return 0;
}

/* Parses "tp<T>pp<P>": decimal, no sign, no leading zero. */
static bool sets_parse(const char *name, uint32_t *tp, uint32_t *pp)
{
	uint32_t v[2];
	const char *p = name;

	for (int k = 0; k < 2; k++) {
		uint64_t x = 0;
		const char *d;

		if (strncmp(p, k ? "pp" : "tp", 2) != 0)
			return false;
		d = p += 2;
		while (*p >= '0' && *p <= '9' && p - d < 6)
			x = x * 10 + (uint64_t)(*p++ - '0');
		if (p == d || (*d == '0' && p - d > 1) || x == 0)
			return false;
		v[k] = (uint32_t)x;
	}
	if (*p)
		return false;
	*tp = v[0];
	*pp = v[1];
	return true;
}

/* Numbers the set's files as an inode table. */
static int sets_tree(nck_vfs_set *set, const nck_node *dir_proto)
{
	nck_tree_builder b;
	int rc;

	if ((rc = nck_tree_builder_init(&b, &set->arena, dir_proto, "view")) < 0)
		goto out;
	for (size_t i = 0; i < set->vs->n_files; i++) {
		const nck_vfile *f = &set->vs->files[i];
		nck_node proto = sets_vfile_node(f, dir_proto);

		if ((rc = nck_tree_add(&b, f->path, &proto)) < 0)
			goto out;
	}
	rc = nck_tree_build(&set->nodes, &set->n_nodes, &b);
out:
	nck_tree_builder_dispose(&b);
	return rc;
}

static void sets_free(nck_vfs_set *set)
{
	if (!set)
		return;
	nck_viewset_free(set->vs);
	nck_arena_dispose(&set->arena);
	free(set);
}

/* Finds the published set of (view, tp, pp): its directory's inode. */
static bool sets_find(const nck_vfs *vfs, uint32_t view, uint32_t tp, uint32_t pp, uint64_t *ino_out)
{
	size_t n = __atomic_load_n(&vfs->n_sets, __ATOMIC_ACQUIRE);

	for (size_t i = 0; i < n; i++) {
		const nck_vfs_set *s = __atomic_load_n(&vfs->sets[i], __ATOMIC_ACQUIRE);

		if (s->view == view && s->tp == tp && s->pp == pp) {
			*ino_out = NCK_VFS_SET_BASE + ((uint64_t)i << NCK_VFS_SET_SHIFT) + 1;
			return true;
		}
	}
	return false;
}

int nck_vfs_set_get(nck_vfs *vfs, const nck_node *viewdir, uint64_t viewdir_ino, const char *name,
		    uint64_t *ino_out)
{
	nck_node dir_proto = { .kind = NCK_NODE_DIR, .perm = 0555,
			       .mtime_sec = viewdir->mtime_sec, .mtime_nsec = viewdir->mtime_nsec };
	uint32_t tp, pp;
	nck_vfs_set *set = NULL;
	int rc = 0;

	if (!sets_parse(name, &tp, &pp))
		return -ENOENT;
	/* Built ones are found without the lock (published with release
	 * stores: the set, then the count); building serializes below. */
	if (sets_find(vfs, viewdir->view, tp, pp, ino_out))
		return 0;
	pthread_mutex_lock(&vfs->sets_lock);
	if (sets_find(vfs, viewdir->view, tp, pp, ino_out))
		goto out;
	if (vfs->n_sets == NCK_VFS_MAX_SETS) {
		nck_log(NCK_LOG_WARN, "%s/%s: more than %d view directories: not shown",
			nck_view_name((nck_view_kind)viewdir->view), name, NCK_VFS_MAX_SETS);
		rc = -ENOENT;
		goto out;
	}
	rc = -ENOMEM;
	if (!(set = calloc(1, sizeof(*set))))
		goto out;
	nck_arena_init(&set->arena);
	set->view = viewdir->view;
	set->tp = tp;
	set->pp = pp;
	set->parent = viewdir_ino;
	if ((rc = nck_viewset_build(&set->vs, &vfs->view_ctx, (nck_view_kind)set->view, tp, pp)) < 0 ||
	    (rc = sets_tree(set, &dir_proto)) < 0)
		goto out;
	if (set->n_nodes >= (1ull << NCK_VFS_SET_SHIFT)) {
		rc = -E2BIG;
		goto out;
	}
	*ino_out = NCK_VFS_SET_BASE + ((uint64_t)vfs->n_sets << NCK_VFS_SET_SHIFT) + 1;
	__atomic_store_n(&vfs->sets[vfs->n_sets], set, __ATOMIC_RELEASE);
	__atomic_store_n(&vfs->n_sets, vfs->n_sets + 1, __ATOMIC_RELEASE);
	set = NULL;
out:
	pthread_mutex_unlock(&vfs->sets_lock);
	if (rc < 0 && rc != -ENOENT)
		nck_log(NCK_LOG_WARN, "%s/%s: %s", nck_view_name((nck_view_kind)viewdir->view), name,
			strerror(-rc));
	sets_free(set);
	return rc;
}

void nck_vfs_sets_free(nck_vfs *vfs)
{
	for (size_t i = 0; i < vfs->n_sets; i++)
		sets_free(vfs->sets[i]);
	vfs->n_sets = 0;
	free(vfs->config);
	vfs->config = NULL;
	for (size_t k = 0; k < NCK_VIEW_COUNT; k++) { /* before the cache they forget into (gguf/) */
		nck_viewset_free(vfs->fixed[k]);
		vfs->fixed[k] = NULL;
	}
	nck_qcache_free(vfs->qcache);
	vfs->qcache = NULL;
	nck_view_release(&vfs->view_ctx);
	free(vfs->tokenizer);
	vfs->tokenizer = NULL;
	json_decref(vfs->calib);
	vfs->calib = NULL;
}
