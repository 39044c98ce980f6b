/* SPDX-License-Identifier: MIT */
/*
 * nemockptfs FUSE operations (see ops.h).
 *
 * Everything is immutable, so entries and attributes carry day-long
 * timeouts, open files keep the kernel page cache (keep_cache) and
 * directories their readdir cache. direct_io is never set: it breaks the
 * shared mmap that safetensors loaders use (spec fuse-techniques.md §5.4).
 * Reads answer with fuse_reply_data over the backing fd, so with
 * FUSE_CAP_SPLICE_WRITE the bytes move by splice(2) without a copy in user
 * space. Members of a gzip archive cannot be spliced: their bytes are
 * decompressed into a buffer of the request's size, freed after the reply.
 * Every write-type operation fails with EROFS.
 */
#include "fuse/ops.h"

#include <errno.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/statvfs.h>

#include "nemockpt/log.h"

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uint64_t), "fuse_ino_t holds 64-bit inodes");

/* Nothing changes under a mount: a day is as good as forever. */
#define OPS_TIMEOUT 86400.0
/* Most extents one read is answered with. */
#define OPS_MAX_EXTENTS 16
/* d_ino of names listed before their inode exists (never 0: some tools
 * skip such entries). */
#define OPS_UNLINKED_INO 0xFFFFFFFFull
/* Read errors logged before going quiet (style.md §4: rate-limited read path). */
#define OPS_MAX_ERROR_LOGS 32

static atomic_uint ops_error_logs;

/*
 * The vfs of the session. Any request after INIT proves that the kernel has
 * processed the INIT reply, so the first one applies the readahead tuning
 * (INIT itself would clamp it back).
 */
static nck_vfs *ops_vfs(fuse_req_t req)
{
	nck_fuse_ctx *ctx = fuse_req_userdata(req);

	if (!atomic_flag_test_and_set(&ctx->tuned) && ctx->mountpoint)
		nck_fuse_tune_read_ahead(ctx->mountpoint, ctx->read_ahead_kb);
	return ctx->vfs;
}

/* Fills a fuse_entry_param for `ino`. */
static int ops_entry(const nck_vfs *vfs, fuse_ino_t ino, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = 1;
	e->attr_timeout = OPS_TIMEOUT;
	e->entry_timeout = OPS_TIMEOUT;
	return nck_vfs_getattr(vfs, ino, &e->attr);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Zero-copy replies: off by default in libfuse 3.14 (spec §7.4). */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Plain readdir for directories already cached; plus for the first. */
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* Pages stay valid: never invalidate on mtime checks. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

/* ---- metadata ------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	nck_vfs *vfs = ops_vfs(req);
	struct fuse_entry_param e;
	uint64_t ino;
	int rc = nck_vfs_lookup(vfs, parent, name, &ino);

	if (rc == -ENOENT) {
		/* ino 0 with a timeout: the kernel caches the negative entry. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = OPS_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc == 0)
		rc = ops_entry(vfs, ino, &e);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req); /* inodes are never freed while mounted */
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc = nck_vfs_getattr(ops_vfs(req), ino, &st);

	(void)fi;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, OPS_TIMEOUT);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	uint64_t nodes, bytes;

	(void)ino;
	nck_vfs_totals(ops_vfs(req), &nodes, &bytes);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (fsblkcnt_t)((bytes + 4095) / 4096);
	sv.f_files = (fsfilcnt_t)nodes;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* ---- directories ---------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc = nck_vfs_getattr(ops_vfs(req), ino, &st);

	if (rc == 0 && !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Fills up to `size` bytes of entries from index `off`; plus adds attributes. */
static void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	const nck_vfs *vfs = ops_vfs(req);
	char *buf = malloc(size);
	size_t used = 0;
	uint64_t i = off < 0 ? 0 : (uint64_t)off;
	const char *name;
	uint64_t child;
	int rc;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	while ((rc = nck_vfs_readdir(vfs, ino, i, &name, &child)) == 0) {
		struct fuse_entry_param e;
		size_t n;

		if (child == 0) {
			/* A view layout made on lookup: a name without an inode yet
			 * (ino 0 in a plus entry makes the kernel link nothing). */
			memset(&e, 0, sizeof(e));
			e.attr.st_mode = S_IFDIR;
			e.attr.st_ino = OPS_UNLINKED_INO;
		} else if (ops_entry(vfs, child, &e) < 0) {
			break;
		}
		if (plus)
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)(i + 1));
		else
			n = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t)(i + 1));
		if (n > size - used)
			break;
		used += n;
		i++;
	}
	if (rc < 0 && rc != -ENOENT)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	ops_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	ops_readdir(req, ino, size, off, true);
}

/* ---- files ---------------------------------------------------------------- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	nck_vfs_file *file;
	int rc = nck_vfs_file_open(&file, ops_vfs(req), ino, fi->flags);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)file;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		nck_vfs_file_close(file); /* the opener was interrupted */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	nck_vfs_file_close((nck_vfs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Logs a failed read, at most OPS_MAX_ERROR_LOGS times per mount. */
static void ops_log_read_error(fuse_ino_t ino, int rc)
{
	unsigned n = atomic_fetch_add(&ops_error_logs, 1);

	if (n < OPS_MAX_ERROR_LOGS)
		nck_log(NCK_LOG_WARN, "read of inode %llu failed: %s%s", (unsigned long long)ino,
			strerror(-rc), rc == -EIO ? " (was the source changed?)" : "");
}

/* Copies the NCK_EXTENT_SRC and _GEN extents (gzip members, computed views) into one buffer of at
 * most the request's size, and points them at it as memory extents.
 * *buf_out is NULL when there are none. 0, -EIO or -ENOMEM. */
static int ops_copy_src_extents(nck_extent *ext, size_t n, void **buf_out)
{
	size_t total = 0, at = 0;
	char *buf;
	int rc;

	*buf_out = NULL;
	for (size_t i = 0; i < n; i++)
		if (ext[i].kind == NCK_EXTENT_SRC || ext[i].kind == NCK_EXTENT_GEN)
			total += ext[i].len;
	if (total == 0)
		return 0;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (ext[i].kind != NCK_EXTENT_SRC && ext[i].kind != NCK_EXTENT_GEN)
			continue;
		if ((rc = nck_vfs_extent_read(&ext[i], buf + at)) < 0) {
			free(buf);
			return rc;
		}
		ext[i].kind = NCK_EXTENT_MEM;
		ext[i].mem = buf + at;
		at += ext[i].len;
	}
	*buf_out = buf;
	return 0;
}

static bool ops_has_fd(const nck_extent *ext, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ext[i].kind == NCK_EXTENT_FD)
			return true;
	return false;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	const nck_vfs_file *file = (const nck_vfs_file *)(uintptr_t)fi->fh;
	nck_extent ext[OPS_MAX_EXTENTS];
	/* A bufvec with room for OPS_MAX_EXTENTS buffers (it declares one). */
	union {
		struct fuse_bufvec bv;
		char room[sizeof(struct fuse_bufvec) +
			  (OPS_MAX_EXTENTS - 1) * sizeof(struct fuse_buf)];
	} v;
	struct fuse_buf *bufs;
	void *copy = NULL;
	size_t n = 0;
	int rc = nck_vfs_read(ops_vfs(req), file, off < 0 ? 0 : (uint64_t)off, size, ext,
			      OPS_MAX_EXTENTS, &n);

	if (rc == 0)
		rc = ops_copy_src_extents(ext, n, &copy);
	if (rc < 0) {
		ops_log_read_error(ino, rc);
		fuse_reply_err(req, rc == -ENOMEM || rc == -EINTR ? -rc : EIO);
		return;
	}
	/* Only memory: one writev. Splicing memory would copy it twice (into
	 * the pipe, then into the FUSE page); splice pays off for fd data only. */
	if (!ops_has_fd(ext, n)) {
		struct iovec iov[OPS_MAX_EXTENTS];

		for (size_t i = 0; i < n; i++)
			iov[i] = (struct iovec){ .iov_base = (void *)(uintptr_t)ext[i].mem,
						 .iov_len = ext[i].len };
		fuse_reply_iov(req, iov, (int)n);
		free(copy);
		return;
	}
	memset(&v, 0, sizeof(v));
	v.bv.count = n;
	bufs = v.bv.buf;
	for (size_t i = 0; i < n; i++) {
		struct fuse_buf *b = &bufs[i];

		b->size = ext[i].len;
		if (ext[i].kind == NCK_EXTENT_FD) {
			b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
			b->fd = ext[i].fd;
			b->pos = (off_t)ext[i].pos;
		} else {
			b->mem = (void *)(uintptr_t)ext[i].mem;
		}
	}
	fuse_reply_data(req, &v.bv, FUSE_BUF_SPLICE_MOVE);
	free(copy); /* the reply has been written: nothing refers to it any more */
}

/* ---- everything that would write ------------------------------------------- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)attr;
	(void)to_set;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EROFS);
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	(void)parent;
	(void)name;
	(void)newparent;
	(void)newname;
	(void)flags;
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)buf;
	(void)size;
	(void)off;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	(void)ino;
	(void)mode;
	(void)offset;
	(void)length;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops nck_fuse_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.statfs = op_statfs,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.open = op_open,
	.release = op_release,
	.read = op_read,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_remove,
	.rmdir = op_remove,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.write = op_write,
	.create = op_create,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
};
