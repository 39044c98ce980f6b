/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the inode table: numbering, lookups, readdir order,
 * synthesized parents, duplicates and conflicts; and of nck_vfs over a
 * directory source (attributes, reads, symlinks left out).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nck_test.h"
#include "nemockpt/vfs.h"
#include "vfs/tree.h"

/* Builds a tree of files at `paths` (NULL-terminated). */
static void build(nck_arena *a, nck_node **nodes, size_t *n, const char *const *paths)
{
	nck_node dir = { .kind = NCK_NODE_DIR, .mtime_sec = 7 };
	nck_tree_builder b;

	nck_arena_init(a);
	ASSERT_EQ_INT(nck_tree_builder_init(&b, a, &dir, "test"), 0);
	for (size_t i = 0; paths[i]; i++) {
		nck_node f = { .kind = NCK_NODE_RAW, .size = i + 1 };

		ASSERT_EQ_INT(nck_tree_add(&b, paths[i], &f), 0);
	}
	ASSERT_EQ_INT(nck_tree_build(nodes, n, &b), 0);
	nck_tree_builder_dispose(&b);
}

/* Resolves a slash-separated path from the root; 0 when missing. */
static uint64_t resolve(const nck_node *nodes, const char *path)
{
	char buf[256], *save = NULL;
	uint64_t ino = 1;

	ASSERT_TRUE(strlen(path) < sizeof(buf));
	memcpy(buf, path, strlen(path) + 1);
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		const nck_node *n = nck_tree_child(nodes, &nodes[ino], c);

		if (!n)
			return 0;
		ino = (uint64_t)(n - nodes);
	}
	return ino;
}

NCK_TEST(tree_children_are_consecutive_and_sorted)
{
	static const char *const paths[] = { "z", "b/y", "b/x", "a", "b/c/d", NULL };
	nck_node *nodes;
	nck_arena a;
	size_t n;

	build(&a, &nodes, &n, paths);
	/* root, a, b, z, b/c, b/x, b/y, b/c/d: 8 nodes + slot 0 */
	ASSERT_EQ_INT(n, 9);
	ASSERT_EQ_INT(nodes[1].n_children, 3);
	ASSERT_EQ_STR(nodes[nodes[1].first_child].name, "a");
	ASSERT_EQ_STR(nodes[nodes[1].first_child + 1].name, "b");
	ASSERT_EQ_STR(nodes[nodes[1].first_child + 2].name, "z");
	ASSERT_EQ_INT(resolve(nodes, "b"), 3);
	ASSERT_EQ_INT(nodes[3].n_children, 3);
	ASSERT_EQ_INT(nodes[3].n_subdirs, 1);
	ASSERT_EQ_STR(nodes[nodes[3].first_child].name, "c");
	ASSERT_EQ_INT(nodes[resolve(nodes, "b/c/d")].parent, resolve(nodes, "b/c"));
	ASSERT_EQ_INT(nodes[resolve(nodes, "b/c")].kind, NCK_NODE_DIR);
	ASSERT_EQ_INT(nodes[resolve(nodes, "b/c")].mtime_sec, 7); /* synthesized */
	ASSERT_EQ_INT(resolve(nodes, "b/nope"), 0);
	ASSERT_EQ_INT(resolve(nodes, "a/x"), 0);
	nck_arena_dispose(&a);
}

NCK_TEST(tree_later_duplicate_wins_and_dir_beats_file)
{
	static const char *const paths[] = { "f", "f", "d", "d/x", NULL };
	nck_node *nodes;
	nck_arena a;
	size_t n;

	build(&a, &nodes, &n, paths);
	ASSERT_EQ_INT(n, 5); /* root, d, f, d/x */
	ASSERT_EQ_INT(nodes[resolve(nodes, "f")].size, 2);
	ASSERT_EQ_INT(nodes[resolve(nodes, "d")].kind, NCK_NODE_DIR);
	ASSERT_EQ_INT(nodes[resolve(nodes, "d/x")].size, 4);
	nck_arena_dispose(&a);
}

NCK_TEST(tree_many_entries_lookup)
{
	static const char *paths[2001];
	char names[2000][16];
	nck_node *nodes;
	nck_arena a;
	size_t n;

	for (int i = 0; i < 2000; i++) {
		snprintf(names[i], sizeof(names[i]), "d%d/f%04d", i % 7, i);
		paths[i] = names[i];
	}
	paths[2000] = NULL;
	build(&a, &nodes, &n, paths);
	ASSERT_EQ_INT(n, 1 + 1 + 7 + 2000);
	for (int i = 0; i < 2000; i++)
		ASSERT_EQ_INT(nodes[resolve(nodes, names[i])].size, i + 1);
	nck_arena_dispose(&a);
}

/* Writes a small file. */
static void put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ_INT(write(fd, s, strlen(s)), strlen(s));
	close(fd);
}

NCK_TEST(vfs_directory_source_tree_attrs_and_reads)
{
	nck_vfs_opts o = { .uid = 123, .gid = 456, .umask = 027 };
	uint64_t raw, ctx, f, ino;
	nck_vfs_file *fh;
	nck_extent ext[4];
	const char *name;
	struct stat st;
	nck_vfs *vfs;
	nck_diag d;
	size_t n;
	char buf[16];

	ASSERT_EQ_INT(mkdir("ck", 0755), 0);
	ASSERT_EQ_INT(mkdir("ck/context", 0755), 0);
	put("ck/context/model.yaml", "num_layers: 2\n");
	ASSERT_EQ_INT(symlink("/etc/passwd", "ck/context/escape"), 0);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vfs_open(&vfs, "ck", &o, &d), 0);
	ASSERT_EQ_INT(nck_vfs_lookup(vfs, NCK_VFS_ROOT_INO, "raw", &raw), 0);
	ASSERT_EQ_INT(nck_vfs_lookup(vfs, raw, "context", &ctx), 0);
	ASSERT_EQ_INT(nck_vfs_lookup(vfs, ctx, "escape", &ino), -ENOENT);
	ASSERT_EQ_INT(nck_vfs_lookup(vfs, ctx, "model.yaml", &f), 0);
	ASSERT_EQ_INT(nck_vfs_lookup(vfs, f, "x", &ino), -ENOTDIR);
	ASSERT_EQ_INT(nck_vfs_getattr(vfs, f, &st), 0);
	ASSERT_EQ_INT(st.st_size, 14);
	ASSERT_EQ_INT(st.st_uid, 123);
	ASSERT_EQ_INT(st.st_gid, 456);
	ASSERT_EQ_INT(st.st_mode, S_IFREG | 0550); /* 0555 minus 027 */
	ASSERT_EQ_INT(nck_vfs_getattr(vfs, ctx, &st), 0);
	ASSERT_EQ_INT(st.st_mode, S_IFDIR | 0550);
	ASSERT_EQ_INT(nck_vfs_readdir(vfs, ctx, 2, &name, &ino), 0);
	ASSERT_EQ_STR(name, "model.yaml");
	ASSERT_EQ_INT(nck_vfs_readdir(vfs, ctx, 3, &name, &ino), -ENOENT);
	ASSERT_EQ_INT(nck_vfs_file_open(&fh, vfs, f, O_RDWR), -EROFS);
	ASSERT_EQ_INT(nck_vfs_file_open(&fh, vfs, ctx, O_RDONLY), -EISDIR);
	ASSERT_EQ_INT(nck_vfs_file_open(&fh, vfs, f, O_RDONLY), 0);
	ASSERT_EQ_INT(nck_vfs_read(vfs, fh, 4, 100, ext, 4, &n), 0);
	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(ext[0].kind, NCK_EXTENT_FD);
	ASSERT_EQ_INT(ext[0].len, 10);
	ASSERT_EQ_INT(pread(ext[0].fd, buf, ext[0].len, (off_t)ext[0].pos), 10);
	ASSERT_TRUE(memcmp(buf, "layers: 2\n", 10) == 0);
	ASSERT_EQ_INT(nck_vfs_read(vfs, fh, 14, 100, ext, 4, &n), 0);
	ASSERT_EQ_INT(n, 0);
	/* Changed in place after the mount: reads fail instead of lying. */
	put("ck/context/model.yaml", "num_layers: 3\n");
	ASSERT_EQ_INT(nck_vfs_read(vfs, fh, 0, 100, ext, 4, &n), -EIO);
	nck_vfs_file_close(fh);
	nck_vfs_close(vfs);
}

NCK_TEST(vfs_missing_source_names_the_file)
{
	nck_vfs_opts o = { 0 };
	nck_vfs *vfs;
	nck_diag d;
	char line[512];

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_vfs_open(&vfs, "no-such.nemo", &o, &d), -ENOENT);
	nck_diag_format(&d, line, sizeof(line));
	ASSERT_CONTAINS(line, "no-such.nemo");
}
