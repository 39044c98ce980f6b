/* SPDX-License-Identifier: MIT */
/*
 * nemockpt: the command-line tool. Answers questions about a checkpoint
 * without FUSE, through the same core the daemon uses (squashfuse_ls's idea).
 *
 *   nemockpt info SRC               the mount's info.json
 *   nemockpt members [--json] SRC   regular files of raw/ with size and offset
 *
 * Exit status: 0 on success, 1 for bad input (one line naming the file and
 * offset), 2 for bad usage.
 */
#include <jansson.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nemockpt/common.h"
#include "nemockpt/diag.h"
#include "nemockpt/log.h"
#include "nemockpt/vfs.h"

static const char usage[] =
	"usage: nemockpt info SRC\n"
	"       nemockpt members [--json] SRC\n"
	"       nemockpt -V | -h\n";

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
static int cmd_members(const nck_vfs *vfs, int json)
{
	json_t *arr;

	if (!json) {
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

int main(int argc, char **argv)
{
	nck_vfs_opts vopts = { .uid = getuid(), .gid = getgid() };
	const char *cmd, *src;
	nck_vfs *vfs = NULL;
	char line[2048];
	nck_diag diag;
	int json = 0, status;

	/* Member names are UTF-8 (PAX) or raw bytes: libarchive converts them
	 * to the locale's charset, which must not be 7-bit ASCII. */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	nck_log_init("nemockpt", NCK_LOG_WARN);
	if (argc >= 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("nemockpt %s\n", NCK_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 4 && strcmp(argv[2], "--json") == 0)
		json = 1;
	if (argc != 3 + json || (strcmp(argv[1], "info") != 0 && strcmp(argv[1], "members") != 0)) {
		fputs(usage, stderr);
		return 2;
	}
	cmd = argv[1];
	src = argv[argc - 1];
	nck_diag_init(&diag);
	if (nck_vfs_open(&vfs, src, &vopts, &diag) < 0) {
		nck_diag_format(&diag, line, sizeof(line));
		fprintf(stderr, "nemockpt: %s\n", line);
		return 1;
	}
	if (strcmp(cmd, "info") == 0) {
		fputs(nck_vfs_info_json(vfs), stdout);
		status = 0;
	} else {
		status = cmd_members(vfs, json);
	}
	nck_vfs_close(vfs);
	return status;
}
