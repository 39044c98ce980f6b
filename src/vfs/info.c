/* SPDX-License-Identifier: MIT */
/*
 * info.json: the summary of what a mount holds. Built once with jansson and
 * kept as bytes in the vfs arena. Later views add their own keys here.
 * Thread-safety: runs once, while the vfs is built.
 */
#include "vfs/vfs_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "nemockpt/common.h"

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
				json_integer(c->src ? (json_int_t)nck_src_size(c->src) : 0)) ||
	    json_object_set_new(root, "members", json_integer((json_int_t)vfs->n_files)) ||
	    json_object_set_new(root, "total_bytes", json_integer((json_int_t)vfs->file_bytes)) ||
	    json_object_set_new(root, "skipped", json_integer((json_int_t)c->n_skipped)))
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
