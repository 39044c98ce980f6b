/* SPDX-License-Identifier: MIT */
/*
 * Directory reader: a checkpoint directory (NeMo 2.0 context/ + weights/, an
 * extracted .nemo, a .qnemo directory, a Megatron iteration directory) is
 * scanned once, recursively, with *at() calls relative to the root fd.
 *
 * Symlinks are never followed (left out with a warning), nor are device
 * nodes, FIFOs and sockets: nothing outside the directory can appear in the
 * mount. Each file's identity (device, inode, size, mtime, ctime) is recorded so
 * that a read through a path swapped after the scan is refused with EIO.
 *
 * Thread-safety: runs once, on one thread, while a mount is built.
 */
#include "container/container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nemockpt/log.h"

/* Deeper trees are refused: no checkpoint nests this far. */
#define DIR_MAX_DEPTH 64

static int dir_bid(const unsigned char *head, size_t len, bool is_dir)
{
	(void)head;
	(void)len;
	return is_dir ? 10 : 0;
}

/* Joins a parent path and a name into the arena ("" parent: the name). */
static const char *dir_join(nck_arena *arena, const char *parent, const char *name)
{
	size_t pl = strlen(parent), nl = strlen(name);
	char *p = nck_arena_alloc(arena, pl + nl + 2);

	if (!p)
		return NULL;
	if (pl)
		snprintf(p, pl + nl + 2, "%s/%s", parent, name);
	else
		memcpy(p, name, nl + 1);
	return p;
}

/* Records a file or directory entry from its lstat. */
static int dir_add(nck_container *c, const char *path, const struct stat *st)
{
	nck_entry *e = nck_container_add(c);

	if (!e)
		return c->n_entries >= NCK_CONTAINER_MAX_ENTRIES ? -E2BIG : -ENOMEM;
	e->path = path;
	e->kind = S_ISDIR(st->st_mode) ? NCK_ENTRY_DIR : NCK_ENTRY_FILE;
	e->mode = (uint32_t)(st->st_mode & 07777);
	e->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	e->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	e->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	e->st = *st;
	return 0;
}

/* Scans the directory open at `dfd` (its path is `rel`); takes ownership of dfd. */
static int dir_scan(nck_container *c, int dfd, const char *rel, int depth, nck_diag *diag)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dfd);
		return nck_diag_set(diag, -errno, c->path, -1, "%s: %s", rel, strerror(errno));
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		const char *name = de->d_name, *path;
		struct stat st;
		int sub;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		path = dir_join(&c->arena, rel, name);
		if (!path) {
			rc = nck_diag_set(diag, -ENOMEM, c->path, -1, "out of memory");
			break;
		}
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = nck_diag_set(diag, -errno, c->path, -1, "%s: %s", path, strerror(errno));
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			nck_log(NCK_LOG_WARN, "%s: '%s' left out: %s", c->path, path,
				S_ISLNK(st.st_mode) ? "symbolic links are never followed"
						    : "not a regular file or directory");
			c->n_skipped++;
			continue;
		}
		if ((rc = dir_add(c, path, &st)) < 0) {
			nck_container_add_error(c, diag);
			break;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth + 1 >= DIR_MAX_DEPTH) {
			rc = nck_diag_set(diag, -EBADMSG, c->path, -1, "%s: nested too deep", path);
			break;
		}
		sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = nck_diag_set(diag, -errno, c->path, -1, "%s: %s", path, strerror(errno));
			break;
		}
		if ((rc = dir_scan(c, sub, path, depth + 1, diag)) < 0)
			break;
	}
	if (rc == 0 && errno != 0)
		rc = nck_diag_set(diag, -errno, c->path, -1, "%s: %s", rel, strerror(errno));
	closedir(d);
	return rc;
}

static int dir_open(nck_container *c, nck_diag *diag)
{
	int dfd = openat(c->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return nck_diag_set(diag, -errno, c->path, -1, "%s", strerror(errno));
	return dir_scan(c, dfd, "", 0, diag);
}

const nck_container_ops nck_container_dir_ops = {
	.version = NCK_CONTAINER_OPS_VERSION,
	.name = "directory",
	.bid = dir_bid,
	.open = dir_open,
};
