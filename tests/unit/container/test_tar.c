/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the tar index: member offsets, name forms (ustar prefix,
 * PAX path, GNU long names), large sizes, left-out members and errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "container/container.h"
#include "nck_test.h"
#include "tarbuild.h"

/* Indexes the archive in t (a memory source). */
static int index_mem(nck_container **out, tarbuild *t, nck_diag *diag)
{
	nck_src *src;

	nck_diag_init(diag);
	ASSERT_EQ_INT(nck_src_new_mem(&src, t->buf, t->len, "mem.tar"), 0);
	return nck_container_open_src_take(out, src, diag);
}

/* Finds an entry by path; a missing one fails the test. */
static const nck_entry *find(const nck_container *c, const char *path)
	__attribute__((returns_nonnull));

static const nck_entry *find(const nck_container *c, const char *path)
{
	for (size_t i = 0; i < c->n_entries; i++)
		if (strcmp(c->entries[i].path, path) == 0)
			return &c->entries[i];
	nck_test_fail(__FILE__, __LINE__, "no entry %s", path);
}

NCK_TEST(tar_offsets_of_plain_members)
{
	tarbuild t = { 0 };
	nck_container *c;
	nck_diag d;
	size_t a = tb_file(&t, "a.txt", "hello"), b;

	tb_header(&t, "dir/", NULL, '5', 0, 0);
	b = tb_file(&t, "dir/b.bin", "0123456789");
	tb_end(&t);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), 0);
	ASSERT_EQ_STR(c->ops->name, "tar");
	ASSERT_EQ_INT(c->n_entries, 3);
	ASSERT_EQ_INT(find(c, "a.txt")->offset, a);
	ASSERT_EQ_INT(find(c, "a.txt")->size, 5);
	ASSERT_EQ_INT(find(c, "dir")->kind, NCK_ENTRY_DIR);
	ASSERT_EQ_INT(find(c, "dir/b.bin")->offset, b);
	ASSERT_EQ_INT(find(c, "dir/b.bin")->size, 10);
	ASSERT_EQ_INT(find(c, "dir/b.bin")->mtime_sec, 1700000000);
	nck_container_close(c);
	free(t.buf);
}

NCK_TEST(tar_dot_slash_names_and_root_entry)
{
	tarbuild t = { 0 };
	nck_container *c;
	nck_diag d;

	tb_header(&t, "./", NULL, '5', 0, 0);
	tb_file(&t, "./model_config.yaml", "a: 1\n");
	tb_file(&t, ".//x/./y", "z");
	tb_end(&t);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), 0);
	ASSERT_EQ_INT(c->n_entries, 2);
	ASSERT_EQ_INT(find(c, "model_config.yaml")->size, 5);
	ASSERT_EQ_INT(find(c, "x/y")->size, 1);
	nck_container_close(c);
	free(t.buf);
}

NCK_TEST(tar_ustar_prefix_field)
{
	tarbuild t = { 0 };
	char prefix[140], longname[300];
	nck_container *c;
	nck_diag d;

	memset(prefix, 'p', 130);
	prefix[130] = '\0';
	tb_header(&t, "leaf.bin", prefix, '0', 3, 0);
	tb_data(&t, "abc", 3);
	tb_end(&t);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), 0);
	snprintf(longname, sizeof(longname), "%s/leaf.bin", prefix);
		ASSERT_EQ_INT(find(c, longname)->offset, 512);
	nck_container_close(c);
	free(t.buf);
}

NCK_TEST(tar_pax_path_and_size_take_precedence)
{
	tarbuild t = { 0 };
	char name[400];
	nck_container *c;
	nck_diag d;
	size_t off;

	memset(name, 'n', 250);
	strcpy(name + 250, "/tensor.bin");
	tb_pax(&t, "path", name);
	tb_header(&t, "truncated-name", NULL, '0', 4, 0);
	off = tb_data(&t, "data", 4);
	tb_end(&t);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), 0);
	ASSERT_EQ_INT(c->n_entries, 1);
	ASSERT_EQ_STR(c->entries[0].path, name);
	ASSERT_EQ_INT(c->entries[0].offset, off);
	nck_container_close(c);
	free(t.buf);
}

NCK_TEST(tar_gnu_long_name)
{
	tarbuild t = { 0 };
	char name[300];
	nck_container *c;
	nck_diag d;
	size_t off;

	memset(name, 'g', 200);
	strcpy(name + 200, ".bin");
	tb_header(&t, "././@LongLink", NULL, 'L', strlen(name) + 1, 0);
	tb_data(&t, name, strlen(name) + 1);
	tb_header(&t, "ggg", NULL, '0', 2, 0);
	off = tb_data(&t, "xy", 2);
	tb_end(&t);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), 0);
	ASSERT_EQ_STR(c->entries[0].path, name);
	ASSERT_EQ_INT(c->entries[0].offset, off);
	nck_container_close(c);
	free(t.buf);
}

/* Writes t to a file, followed by a hole of `hole` bytes and t2. */
static void write_sparse(const char *path, const tarbuild *t, uint64_t hole, const tarbuild *t2)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ_INT(pwrite(fd, t->buf, t->len, 0), t->len);
	ASSERT_EQ_INT(pwrite(fd, t2->buf, t2->len, (off_t)(t->len + hole)), t2->len);
	close(fd);
}

/* A member of 8 GiB and more, in a sparse file, in both big-size encodings. */
static void check_huge(int base256)
{
	const uint64_t size = (8ull << 30) + 12345;
	tarbuild t = { 0 }, tail = { 0 };
	uint64_t padded = (size + 511) / 512 * 512;
	nck_container *c;
	nck_diag d;
	char sz[32];
	size_t tail_off;

	if (!base256) {
		snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
		tb_pax(&t, "size", sz);
	}
	tb_header(&t, "huge.bin", NULL, '0', base256 ? size : 0, base256);
	tail_off = tb_file(&tail, "after.txt", "after");
	tb_end(&tail);
	write_sparse("huge.tar", &t, padded, &tail);
	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_container_open(&c, "huge.tar", &d), 0);
	ASSERT_EQ_INT(c->n_entries, 2);
	ASSERT_EQ_INT(find(c, "huge.bin")->size, size);
	ASSERT_EQ_INT(find(c, "huge.bin")->offset, t.len);
	ASSERT_EQ_INT(find(c, "after.txt")->offset, t.len + padded + tail_off);
	nck_container_close(c);
	free(t.buf);
	free(tail.buf);
}

NCK_TEST(tar_member_over_8gib_base256)
{
	check_huge(1);
}

NCK_TEST(tar_member_over_8gib_pax_size)
{
	check_huge(0);
}

NCK_TEST(tar_empty_archive)
{
	tarbuild t = { 0 };
	nck_container *c;
	nck_diag d;

	tb_grow(&t, 10240);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), 0);
	ASSERT_EQ_INT(c->n_entries, 0);
	nck_container_close(c);
	free(t.buf);
}

NCK_TEST(tar_unsafe_and_link_members_are_left_out)
{
	tarbuild t = { 0 };
	nck_container *c;
	nck_diag d;

	tb_file(&t, "/etc/passwd", "x");
	tb_file(&t, "../evil", "x");
	tb_file(&t, "a/../../b", "x");
	tb_header(&t, "link", NULL, '2', 0, 0); /* symlink */
	tb_header(&t, "hard", NULL, '1', 0, 0); /* hard link */
	tb_header(&t, "fifo", NULL, '6', 0, 0);
	tb_file(&t, "good", "ok");
	tb_end(&t);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), 0);
	ASSERT_EQ_INT(c->n_entries, 1);
	ASSERT_EQ_STR(c->entries[0].path, "good");
	ASSERT_EQ_INT(c->n_skipped, 6);
	nck_container_close(c);
	free(t.buf);
}

NCK_TEST(tar_truncated_header_is_an_error_with_offset)
{
	tarbuild t = { 0 };
	nck_container *c;
	nck_diag d;

	tb_file(&t, "a", "hello");
	tb_file(&t, "b", "world");
	t.len = 1024 + 200; /* cut inside the second header */
	ASSERT_EQ_INT(index_mem(&c, &t, &d), -EBADMSG);
	ASSERT_EQ_INT(d.offset, 1024);
	ASSERT_EQ_STR(d.path, "mem.tar");
	free(t.buf);
}

NCK_TEST(tar_member_past_end_is_an_error_with_offset)
{
	tarbuild t = { 0 };
	nck_container *c;
	nck_diag d;

	tb_header(&t, "big", NULL, '0', 100000, 0);
	tb_data(&t, "only a little", 13);
	ASSERT_EQ_INT(index_mem(&c, &t, &d), -EBADMSG);
	ASSERT_EQ_INT(d.offset, 512);
	ASSERT_CONTAINS(d.msg, "past the end");
	free(t.buf);
}

NCK_TEST(tar_bad_checksum_is_not_a_tar)
{
	tarbuild t = { 0 };
	nck_container *c;
	nck_diag d;

	tb_file(&t, "a", "hello");
	tb_end(&t);
	t.buf[0] ^= 1;
	ASSERT_EQ_INT(index_mem(&c, &t, &d), -EBADMSG);
	ASSERT_EQ_INT(d.offset, 0);
	free(t.buf);
}

NCK_TEST(compressed_archives_are_refused)
{
	static const unsigned char bz[] = { 'B', 'Z', 'h', '9', 0x31, 0x41, 0x59, 0x26, 0x53 };
	nck_container *c;
	nck_src *src;
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, bz, sizeof(bz), "m.nemo"), 0);
	ASSERT_EQ_INT(nck_container_open_src_take(&c, src, &d), -ENOTSUP);
	ASSERT_CONTAINS(d.msg, "bzip2");
}

NCK_TEST(corrupt_gzip_is_malformed_with_offset)
{
	/* A gzip header, then deflate bytes that are not a valid block. */
	static const unsigned char gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 3, 4 };
	nck_container *c;
	nck_src *src;
	nck_diag d;

	nck_diag_init(&d);
	ASSERT_EQ_INT(nck_src_new_mem(&src, gz, sizeof(gz), "m.nemo"), 0);
	ASSERT_EQ_INT(nck_container_open_src_take(&c, src, &d), -EBADMSG);
	ASSERT_CONTAINS(d.msg, "corrupt gzip data");
	ASSERT_TRUE(d.offset >= 10);
}

NCK_TEST(path_normalize_rules)
{
	nck_arena a;
	const char *p;

	nck_arena_init(&a);
	ASSERT_EQ_INT(nck_container_path_normalize(&p, &a, "./a//b/./c/"), 0);
	ASSERT_EQ_STR(p, "a/b/c");
	ASSERT_EQ_INT(nck_container_path_normalize(&p, &a, "./"), 1);
	ASSERT_EQ_INT(nck_container_path_normalize(&p, &a, "."), 1);
	ASSERT_EQ_INT(nck_container_path_normalize(&p, &a, "/abs"), -EPERM);
	ASSERT_EQ_INT(nck_container_path_normalize(&p, &a, "a/../b"), -EPERM);
	ASSERT_EQ_INT(nck_container_path_normalize(&p, &a, ".."), -EPERM);
	ASSERT_EQ_INT(nck_container_path_normalize(&p, &a, "a/..b"), 0);
	ASSERT_EQ_STR(p, "a/..b");
	nck_arena_dispose(&a);
}
