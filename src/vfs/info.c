/* SPDX-License-Identifier: MIT */
/*
 * info.json: the summary of what a mount holds. Built once with jansson and
 * kept as bytes in the vfs arena. Later views add their own keys here.
 * Thread-safety: runs once, while the vfs is built.
 */
#include "vfs/vfs_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nemockpt/common.h"

/* Adds what the catalog knows: format, layout, TP/PP, dtype, counts, warnings. */
static int info_catalog(json_t *root, const nck_vfs *vfs)
{
	const nck_catalog_info *in;
	json_t *warnings;

	if (!vfs->catalog)
		return json_object_set_new(root, "catalog_error", json_string(vfs->catalog_error));
	in = nck_catalog_get_info(vfs->catalog);
	warnings = json_array();
	if (!warnings)
		return -1;
	for (size_t i = 0; in->warnings && in->warnings[i]; i++)
		json_array_append_new(warnings, json_string(in->warnings[i]));
	if (json_object_set_new(root, "format", json_string(in->format)) ||
	    json_object_set_new(root, "layout", json_string(in->layout)) ||
	    json_object_set_new(root, "model", json_string(in->model)) ||
	    json_object_set_new(root, "tp", json_integer(in->tp)) ||
	    json_object_set_new(root, "pp", json_integer(in->pp)) ||
	    json_object_set_new(root, "dtype", in->n_weights ? json_string(nck_dtype_name(in->dtype))
							      : json_null()) ||
	    json_object_set_new(root, "tensors",
				json_integer((json_int_t)nck_catalog_count(vfs->catalog))) ||
	    json_object_set_new(root, "weights", json_integer((json_int_t)in->n_weights)) ||
	    json_object_set_new(root, "parameters", json_integer((json_int_t)in->n_params)) ||
	    json_object_set_new(root, "weight_bytes", json_integer((json_int_t)in->weight_bytes)) ||
	    json_object_set_new(root, "vocab_size",
				in->vocab_size ? json_integer((json_int_t)in->vocab_size) : json_null()) ||
	    json_object_set_new(root, "padded_vocab",
				in->padded_vocab ? json_integer((json_int_t)in->padded_vocab)
						 : json_null()))
		return json_decref(warnings), -1;
	return json_object_set_new(root, "warnings", warnings);
}

/* Adds "gzip": how the seek index of a gzip source was obtained. */
static int info_gzip(json_t *root, const nck_container *c)
{
	const nck_gz_report *r = &c->gz;
	json_t *gz;

	if (!r->active)
		return 0;
	gz = json_object();
	if (!gz)
		return -1;
	if (json_object_set_new(gz, "index", json_string(r->loaded ? "loaded" : "built")) ||
	    json_object_set_new(gz, "index_path",
				r->index_path[0] ? json_string(r->index_path) : json_null()) ||
	    json_object_set_new(gz, "checkpoints", json_integer((json_int_t)r->checkpoints)) ||
	    json_object_set_new(gz, "index_builds", json_integer((json_int_t)r->builds)) ||
	    json_object_set_new(gz, "member_table", json_string(c->members_loaded ? "loaded" : "walked")) ||
	    json_object_set_new(gz, "chunks_inflated_at_mount",
				json_integer((json_int_t)nck_gz_extract_count())) ||
	    json_object_set_new(gz, "compressed_bytes",
				json_integer((json_int_t)r->compressed_bytes)))
		return json_decref(gz), -1;
	return json_object_set_new(root, "gzip", gz);
}

/* Adds "views": each view directory and the layouts it lists (any other
 * valid layout also resolves when named). */
static int info_views(json_t *root, const nck_vfs *vfs)
{
	json_t *views = json_object();

	if (!views)
		return -1;
	for (size_t i = 1; i < vfs->n_nodes; i++) {
		const nck_node *n = &vfs->nodes[i];
		json_t *list;

		if (n->kind != NCK_NODE_VIEWDIR)
			continue;
		if (!(list = json_array()) ||
		    json_object_set_new(views, nck_view_name((nck_view_kind)n->view), list))
			return json_decref(views), -1;
		for (size_t k = 0; k < n->n_listing; k++)
			if (json_array_append_new(list, json_string(n->listing[k])))
				return json_decref(views), -1;
	}
	return json_object_set_new(root, "views", views);
}

/* Adds the entry of a view of one layout ("hf", "gguf"): its directory and
 * files (and `architecture` when its ops name one), or why the model has none. */
static int info_fixed(json_t *root, const nck_vfs *vfs, nck_view_kind kind)
{
	const nck_viewset *vs = vfs->fixed[kind];
	const char *name = nck_view_name(kind);
	const char *architecture = nck_view_get_ops(kind)->architecture;
	char why[256] = "no tensor catalog";
	json_t *entry, *files;

	if (!vs) {
		if (vfs->catalog && nck_view_applies_why(&vfs->view_ctx, kind, why, sizeof(why)))
			snprintf(why, sizeof(why), "the view could not be built");
		/* Reasons are printable ASCII (gpt.c), so this cannot fail on the text. */
		return json_object_set_new(root, name, json_pack("{s:n, s:s}", "directory", "reason", why));
	}
	if (!(files = json_array()))
		return -1;
	for (size_t i = 0; i < vs->n_files; i++)
		json_array_append_new(files, json_string(vs->files[i].path));
	entry = architecture ? json_pack("{s:s, s:s, s:o}", "directory", name, "architecture",
					 architecture, "files", files)
			     : json_pack("{s:s, s:o}", "directory", name, "files", files);
	return entry ? json_object_set_new(root, name, entry) : -1;
}

int nck_vfs_info_build(nck_vfs *vfs)
{
	const nck_container *c = vfs->container;
	json_t *root = json_object();
	char *text = NULL;
	char *copy;
	size_t len;
	int rc = -ENOMEM;

	if (!root)
		goto out;
	if (json_object_set_new(root, "nemockpt_version", json_string(NCK_VERSION)) ||
	    json_object_set_new(root, "source", json_string(c->path)) ||
	    json_object_set_new(root, "container", json_string(c->ops->name)) ||
	    json_object_set_new(root, "source_bytes",
				json_integer(c->src ? (json_int_t)c->st.st_size : 0)) ||
	    json_object_set_new(root, "members", json_integer((json_int_t)vfs->n_files)) ||
	    json_object_set_new(root, "total_bytes", json_integer((json_int_t)vfs->file_bytes)) ||
	    json_object_set_new(root, "skipped", json_integer((json_int_t)c->n_skipped)))
		goto out;
	if (info_catalog(root, vfs) < 0 || info_gzip(root, c) < 0 || info_views(root, vfs) < 0)
		goto out;
	for (uint32_t k = 0; k < NCK_VIEW_COUNT; k++)
		if (nck_view_get_ops((nck_view_kind)k)->info_entry &&
		    info_fixed(root, vfs, (nck_view_kind)k) < 0)
			goto out;
	/* json_string() returns NULL for invalid UTF-8 paths, which fails above. */
	text = json_dumps(root, JSON_INDENT(2));
	if (!text)
		goto out;
	len = strlen(text);
	copy = nck_arena_alloc(&vfs->arena, len + 2);
	if (!copy)
		goto out;
	memcpy(copy, text, len);
	copy[len] = '\n';
	copy[len + 1] = '\0';
	vfs->info_json = copy;
	vfs->info_len = len + 1;
	rc = 0;
out:
	free(text);
	json_decref(root);
	return rc;
}
