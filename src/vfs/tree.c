/* SPDX-License-Identifier: MIT */
/*
 * nck_tree: path list -> breadth-first numbered inode table (see tree.h).
 */
#include "vfs/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nemockpt/log.h"

/* ---- building ------------------------------------------------------------- */

int nck_tree_builder_init(nck_tree_builder *b, nck_arena *arena, const nck_node *dir_proto,
			  const char *origin)
{
	nck_node root = *dir_proto;

	memset(b, 0, sizeof(*b));
	b->arena = arena;
	b->dir_proto = *dir_proto;
	b->dir_proto.kind = NCK_NODE_DIR;
	b->origin = origin;
	root.kind = NCK_NODE_DIR;
	root.name = "";
	b->nodes = calloc(64, sizeof(*b->nodes));
	b->parents = calloc(64, sizeof(*b->parents));
	if (!b->nodes || !b->parents)
		return -ENOMEM;
	b->cap = 64;
	b->nodes[0] = root;
	b->len = 1;
	return nck_strmap_put(&b->index, "", 0);
}

void nck_tree_builder_dispose(nck_tree_builder *b)
{
	if (!b)
		return;
	free(b->nodes);
	free(b->parents);
	nck_strmap_dispose(&b->index);
	memset(b, 0, sizeof(*b));
}

/* Appends a node under build index `parent` and indexes it by `path`. */
static int tree_append(nck_tree_builder *b, const char *path, const char *name, size_t parent,
		       const nck_node *proto, size_t *idx_out)
{
	if (b->len == b->cap) {
		size_t cap = b->cap * 2;
		nck_node *n = realloc(b->nodes, cap * sizeof(*n));
		size_t *p;

		if (!n)
			return -ENOMEM;
		b->nodes = n;
		p = realloc(b->parents, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->parents = p;
		b->cap = cap;
	}
	b->nodes[b->len] = *proto;
	b->nodes[b->len].name = name;
	b->parents[b->len] = parent;
	*idx_out = b->len;
	return nck_strmap_put(&b->index, path, b->len++);
}

/* Returns the build index of directory `path` (length `len`), creating it and
 * its parents as needed. A file in the way becomes a directory. */
static int tree_dir(nck_tree_builder *b, const char *path, size_t len, size_t *idx_out)
{
	const char *key, *slash, *name;
	size_t parent = 0, idx;
	int rc;

	if (len == 0) {
		*idx_out = 0;
		return 0;
	}
	key = nck_arena_strndup(b->arena, path, len);
	if (!key)
		return -ENOMEM;
	if (nck_strmap_find(&b->index, key, &idx)) {
		if (b->nodes[idx].kind != NCK_NODE_DIR) {
			nck_log(NCK_LOG_WARN, "%s: '%s' left out: a directory has the same name",
				b->origin, key);
			b->nodes[idx] = b->dir_proto;
			b->nodes[idx].name = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
		}
		*idx_out = idx;
		return 0;
	}
	slash = memrchr(key, '/', len);
	name = slash ? slash + 1 : key;
	if ((rc = tree_dir(b, key, slash ? (size_t)(slash - key) : 0, &parent)) < 0)
		return rc;
	return tree_append(b, key, name, parent, &b->dir_proto, idx_out);
}

int nck_tree_add(nck_tree_builder *b, const char *path, const nck_node *proto)
{
	const char *slash = strrchr(path, '/');
	size_t parent, idx;
	int rc;

	if (nck_strmap_find(&b->index, path, &idx)) {
		nck_node *old = &b->nodes[idx];

		if (old->kind == NCK_NODE_DIR && proto->kind != NCK_NODE_DIR) {
			nck_log(NCK_LOG_WARN, "%s: '%s' left out: a directory has the same name",
				b->origin, path);
		} else {
			const char *name = old->name;

			*old = *proto; /* later entries win, as when tar extracts */
			old->name = name;
		}
		return 0;
	}
	if ((rc = tree_dir(b, path, slash ? (size_t)(slash - path) : 0, &parent)) < 0)
		return rc;
	return tree_append(b, path, slash ? slash + 1 : path, parent, proto, &idx);
}

/* ---- numbering ------------------------------------------------------------ */

/* Orders build indexes by the names of the nodes in `payload`. */
static int tree_cmp_name(const void *a, const void *b, void *payload)
{
	const nck_node *nodes = payload;

	return strcmp(nodes[*(const size_t *)a].name, nodes[*(const size_t *)b].name);
}

int nck_tree_build(nck_node **nodes_out, size_t *n_out, nck_tree_builder *b)
{
	size_t n = b->len, *start = NULL, *kids = NULL, *fill = NULL, *ino = NULL, *order = NULL;
	nck_node *out = NULL;
	size_t head = 0, tail = 0, next = 2;
	int rc = -ENOMEM;

	start = calloc(n + 1, sizeof(*start));
	fill = calloc(n + 1, sizeof(*fill));
	kids = calloc(n, sizeof(*kids));
	ino = calloc(n, sizeof(*ino));
	order = calloc(n, sizeof(*order));
	out = nck_arena_alloc(b->arena, (n + 1) * sizeof(*out));
	if (!start || !fill || !kids || !ino || !order || !out)
		goto out;
	/* Children of each node, grouped by parent (counting sort), then by name. */
	for (size_t i = 1; i < n; i++)
		start[b->parents[i] + 1]++;
	for (size_t i = 0; i < n; i++)
		start[i + 1] += start[i];
	for (size_t i = 1; i < n; i++)
		kids[start[b->parents[i]] + fill[b->parents[i]]++] = i;
	for (size_t i = 0; i < n; i++)
		if (start[i + 1] - start[i] > 1)
			qsort_r(kids + start[i], start[i + 1] - start[i], sizeof(*kids),
				tree_cmp_name, b->nodes);
	/* Breadth-first numbering: a directory's children get consecutive inodes. */
	ino[0] = 1;
	out[1] = b->nodes[0];
	out[1].parent = 1;
	order[tail++] = 0;
	while (head < tail) {
		size_t d = order[head++];
		nck_node *dn = &out[ino[d]];

		dn->first_child = next;
		dn->n_children = start[d + 1] - start[d];
		dn->n_subdirs = 0;
		for (size_t k = start[d]; k < start[d + 1]; k++) {
			size_t c = kids[k];

			ino[c] = next++;
			out[ino[c]] = b->nodes[c];
			out[ino[c]].parent = ino[d];
			if (b->nodes[c].kind == NCK_NODE_DIR) {
				dn->n_subdirs++;
				order[tail++] = c;
			}
		}
	}
	*nodes_out = out;
	*n_out = n + 1;
	rc = 0;
out:
	free(start);
	free(fill);
	free(kids);
	free(ino);
	free(order);
	return rc;
}

const nck_node *nck_tree_child(const nck_node *nodes, const nck_node *dir, const char *name)
{
	uint64_t lo = dir->first_child, hi = dir->first_child + dir->n_children;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int c = strcmp(nodes[mid].name, name);

		if (c == 0)
			return &nodes[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
