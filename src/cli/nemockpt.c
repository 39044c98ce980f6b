/* SPDX-License-Identifier: MIT */
/*
 * nemockpt: the command-line tool. Answers questions about a checkpoint
 * without FUSE, through the same core the daemon uses (squashfuse_ls's idea).
 *
 *   nemockpt info SRC                 what the checkpoint is (the mount's info.json)
 *   nemockpt ls [-v] [--json] SRC     one line (or JSON object) per logical tensor
 *   nemockpt cat SRC NAME             the merged tensor's bytes, row-major, little-endian
 *   nemockpt members [--json] SRC     regular files of raw/ with size and data offset
 *   nemockpt get [-o OPTS] SRC PATH   the bytes of any file of the mount's tree
 *                                     (qnemo/fp8/tp2pp1/rank0.safetensors, ...)
 *
 * Exit status: 0 on success, 1 for bad input (one line naming the file and
 * offset), 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nemockpt/catalog.h"
#include "nemockpt/common.h"
#include "nemockpt/diag.h"
#include "nemockpt/log.h"
#include "nemockpt/vfs.h"

static const char usage[] =
	"usage: nemockpt info SRC\n"
	"       nemockpt ls [-v] [--json] SRC\n"
	"       nemockpt cat SRC NAME\n"
	"       nemockpt members [--json] SRC\n"
	"       nemockpt get [-o shard_size=N,group_size=N,calib=FILE,gpu=auto|off|N] SRC PATH\n"
	"       nemockpt -V | -h\n";

/* Bytes per read of `cat`. */
#define CAT_BLOCK (8u << 20)

typedef struct cli_args {
	const char *cmd, *src, *name;
	int json, verbose;
	char *opts; /* get: -o list */
} cli_args;

/* ---- members ------------------------------------------------------------ */

/* Prints one member as a text line. */
static void print_member(const char *path, uint64_t size, uint64_t offset, void *payload)
{
	(void)payload;
	printf("%12llu %12llu %s\n", (unsigned long long)offset, (unsigned long long)size, path);
}

/* Appends one member to a JSON array. */
static void json_member(const char *path, uint64_t size, uint64_t offset, void *payload)
{
	json_t *o = json_pack("{s:s, s:I, s:I}", "path", path, "size", (json_int_t)size,
			      "offset", (json_int_t)offset);

	if (o)
		json_array_append_new(payload, o);
}

/* Runs `members`: as text, or as a JSON array. */
static int cmd_members(const nck_vfs *vfs, const cli_args *a)
{
	json_t *arr;

	if (!a->json) {
		nck_vfs_foreach_member(vfs, print_member, NULL);
		return 0;
	}
	arr = json_array();
	if (!arr)
		return 1;
	nck_vfs_foreach_member(vfs, json_member, arr);
	json_dumpf(arr, stdout, JSON_INDENT(1));
	putchar('\n');
	json_decref(arr);
	return 0;
}

/* ---- ls ------------------------------------------------------------------- */

/* "[4, 8]" for a shape. */
static void format_shape(char *buf, size_t size, const nck_tensor *t)
{
	size_t n = (size_t)snprintf(buf, size, "[");

	for (uint32_t d = 0; d < t->ndim && n < size; d++)
		n += (size_t)snprintf(buf + n, size - n, "%s%llu", d ? ", " : "",
				      (unsigned long long)t->shape[d]);
	if (n < size)
		snprintf(buf + n, size - n, "]");
}

/* The JSON object of one tensor (with chunks when verbose). */
static json_t *tensor_json(const nck_catalog *cat, const nck_tensor *t, int verbose)
{
	json_t *o = json_object(), *shape = json_array(), *chunks;

	for (uint32_t d = 0; d < t->ndim; d++)
		json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "dtype", json_string(nck_dtype_name(t->dtype)));
	json_object_set_new(o, "shape", shape);
	json_object_set_new(o, "role", json_string(t->role == NCK_ROLE_WEIGHT ? "weight" : "non_weight"));
	if (!verbose)
		return o;
	chunks = json_array();
	for (size_t c = 0; c < t->n_chunks; c++) {
		const nck_chunk *ch = &t->chunks[c];
		json_t *off = json_array(), *sh = json_array(), *st = json_array();

		for (uint32_t d = 0; d < t->ndim; d++) {
			json_array_append_new(off, json_integer((json_int_t)ch->offset[d]));
			json_array_append_new(sh, json_integer((json_int_t)ch->shape[d]));
			json_array_append_new(st, json_integer((json_int_t)ch->stride[d]));
		}
		json_array_append_new(chunks, json_pack("{s:s, s:I, s:o, s:o, s:o}", "file",
							 nck_catalog_file_path(cat, ch->file), "base",
							 (json_int_t)ch->base, "offset", off, "shape",
							 sh, "stride", st));
	}
	json_object_set_new(o, "chunks", chunks);
	return o;
}

/* Runs `ls`. */
static int cmd_ls(const nck_catalog *cat, const cli_args *a)
{
	json_t *arr = a->json ? json_array() : NULL;

	for (size_t i = 0; i < nck_catalog_count(cat); i++) {
		const nck_tensor *t = nck_catalog_at(cat, i);
		char shape[256];

		if (arr) {
			json_array_append_new(arr, tensor_json(cat, t, a->verbose));
			continue;
		}
		format_shape(shape, sizeof(shape), t);
		printf("%-60s %-7s %s%s\n", t->name, nck_dtype_name(t->dtype), shape,
		       t->role == NCK_ROLE_WEIGHT ? "" : "  (non-weight)");
		for (size_t c = 0; a->verbose && c < t->n_chunks; c++) {
			const nck_chunk *ch = &t->chunks[c];

			printf("    chunk %zu: %s +%llu, offset", c, nck_catalog_file_path(cat, ch->file),
			       (unsigned long long)ch->base);
			for (uint32_t d = 0; d < t->ndim; d++)
				printf(" %llu", (unsigned long long)ch->offset[d]);
			printf(", shape");
			for (uint32_t d = 0; d < t->ndim; d++)
				printf(" %llu", (unsigned long long)ch->shape[d]);
			printf(", stride");
			for (uint32_t d = 0; d < t->ndim; d++)
				printf(" %lld", (long long)ch->stride[d]);
			putchar('\n');
		}
	}
	if (arr) {
		json_dumpf(arr, stdout, JSON_INDENT(1));
		putchar('\n');
		json_decref(arr);
	}
	return 0;
}

/* ---- cat ------------------------------------------------------------------ */

/* Runs `cat`: the tensor's bytes to stdout, in blocks. */
static int cmd_cat(const nck_catalog *cat, const cli_args *a)
{
	const nck_tensor *t = nck_catalog_find(cat, a->name);
	uint64_t total, off = 0;
	char *buf;
	int rc = 0;

	if (!t) {
		fprintf(stderr, "nemockpt: %s: no tensor named '%s' (see nemockpt ls)\n", a->src,
			a->name);
		return 1;
	}
	total = nck_tensor_bytes(t);
	buf = malloc(CAT_BLOCK);
	if (!buf)
		return 1;
	while (off < total && rc == 0) {
		size_t n = total - off < CAT_BLOCK ? (size_t)(total - off) : CAT_BLOCK;

		rc = nck_catalog_read(cat, t, off, buf, n);
		if (rc == 0 && fwrite(buf, 1, n, stdout) != n)
			rc = -EIO;
		off += n;
	}
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "nemockpt: %s: reading '%s': %s\n", a->src, a->name, strerror(-rc));
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- get ------------------------------------------------------------------ */

/* Copies one planned extent to stdout. */
static int get_extent(const nck_extent *e, char *buf)
{
	int64_t n;

	switch (e->kind) {
	case NCK_EXTENT_FD:
		n = pread(e->fd, buf, e->len, (off_t)e->pos);
		if (n != (int64_t)e->len)
			return -EIO;
		break;
	case NCK_EXTENT_MEM:
		memcpy(buf, e->mem, e->len);
		break;
	default:
		if (nck_vfs_extent_read(e, buf) < 0)
			return -EIO;
	}
	return fwrite(buf, 1, e->len, stdout) == e->len ? 0 : -EIO;
}

/* Runs `get`: looks PATH up component by component and reads the file as
 * the daemon would answer a read. */
static int cmd_get(nck_vfs *vfs, const cli_args *a)
{
	uint64_t ino = NCK_VFS_ROOT_INO, off = 0;
	char *path = strdup(a->name), *save = NULL, *buf = malloc(CAT_BLOCK);
	nck_vfs_file *f = NULL;
	struct stat st;
	int rc = path && buf ? 0 : -ENOMEM;

	for (char *c = path ? strtok_r(path, "/", &save) : NULL; c && rc == 0;
	     c = strtok_r(NULL, "/", &save))
		rc = nck_vfs_lookup(vfs, ino, c, &ino);
	if (rc == 0 && (rc = nck_vfs_getattr(vfs, ino, &st)) == 0)
		rc = nck_vfs_file_open(&f, vfs, ino, O_RDONLY);
	while (rc == 0 && off < (uint64_t)st.st_size) {
		nck_extent ext[16];
		size_t n = 0;

		rc = nck_vfs_read(vfs, f, off, CAT_BLOCK, ext, 16, &n);
		for (size_t i = 0; i < n && rc == 0; i++) {
			rc = get_extent(&ext[i], buf);
			off += ext[i].len;
		}
		if (rc == 0 && n == 0)
			rc = -EIO;
	}
	nck_vfs_file_close(f);
	free(path);
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "nemockpt: %s: %s: %s\n", a->src, a->name, strerror(-rc));
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Applies `get`'s -o list to the vfs options; 0 or 2 (usage). */
static int parse_vfs_opts(nck_vfs_opts *v, char *list)
{
	char *save = NULL, *end;

	for (char *o = list ? strtok_r(list, ",", &save) : NULL; o; o = strtok_r(NULL, ",", &save)) {
		char *val = strchr(o, '=');

		if (!val)
			return 2;
		*val++ = '\0';
		if (strcmp(o, "calib") == 0) {
			v->calib = val;
		} else if (strcmp(o, "gpu") == 0) {
			v->gpu = val;
		} else if (strcmp(o, "group_size") == 0 || strcmp(o, "shard_size") == 0) {
			unsigned long long n = strtoull(val, &end, 10);

			if (end == val || *end || n == 0)
				return 2;
			*(o[0] == 'g' ? &v->group_size : &v->shard_size) = n;
		} else {
			return 2;
		}
	}
	return 0;
}

/* ---- main ----------------------------------------------------------------- */

/* Parses the command line; returns 0 or 2 (usage). */
static int parse_args(cli_args *a, int argc, char **argv)
{
	int i = 2, rest;

	memset(a, 0, sizeof(*a));
	if (argc < 2)
		return 2;
	a->cmd = argv[1];
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && strcmp(a->cmd, "get") == 0)
			a->opts = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			a->json = 1;
		else if (strcmp(argv[i], "-v") == 0)
			a->verbose = 1;
		else
			return 2;
	}
	rest = argc - i;
	if ((strcmp(a->cmd, "cat") == 0 || strcmp(a->cmd, "get") == 0) && rest == 2) {
		a->src = argv[i];
		a->name = argv[i + 1];
		return 0;
	}
	if ((strcmp(a->cmd, "info") == 0 || strcmp(a->cmd, "ls") == 0 ||
	     strcmp(a->cmd, "members") == 0) && rest == 1) {
		a->src = argv[i];
		return 0;
	}
	return 2;
}

int main(int argc, char **argv)
{
	nck_vfs_opts vopts = { .uid = getuid(), .gid = getgid(), .require_catalog = true };
	nck_vfs *vfs = NULL;
	char line[2048];
	nck_diag diag;
	cli_args a;
	int status;

	/* Member names are UTF-8 (PAX) or raw bytes: libarchive converts them
	 * to the locale's charset, which must not be 7-bit ASCII. */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	nck_raise_nofile();
	nck_log_init("nemockpt", NCK_LOG_WARN);
	if (argc >= 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("nemockpt %s\n", NCK_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (parse_args(&a, argc, argv) != 0 || parse_vfs_opts(&vopts, a.opts) != 0) {
		fputs(usage, stderr);
		return 2;
	}
	/* members lists raw/ and needs no catalog. */
	vopts.require_catalog = strcmp(a.cmd, "members") != 0;
	nck_diag_init(&diag);
	if (nck_vfs_open(&vfs, a.src, &vopts, &diag) < 0) {
		nck_diag_format(&diag, line, sizeof(line));
		/* Errors inside the checkpoint name the member; say which checkpoint. */
		if (diag.path[0] && diag.path[0] != '/')
			fprintf(stderr, "nemockpt: %s: %s\n", a.src, line);
		else
			fprintf(stderr, "nemockpt: %s\n", line);
		return 1;
	}
	if (strcmp(a.cmd, "info") == 0) {
		fputs(nck_vfs_info_json(vfs), stdout);
		status = 0;
	} else if (strcmp(a.cmd, "members") == 0) {
		status = cmd_members(vfs, &a);
	} else if (strcmp(a.cmd, "ls") == 0) {
		status = cmd_ls(nck_vfs_catalog(vfs), &a);
	} else if (strcmp(a.cmd, "get") == 0) {
		status = cmd_get(vfs, &a);
	} else {
		status = cmd_cat(nck_vfs_catalog(vfs), &a);
	}
	nck_vfs_close(vfs);
	return status;
}
