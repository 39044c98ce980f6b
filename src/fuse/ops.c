/* SPDX-License-Identifier: MIT */
/*
 * nemockptfs FUSE operations (see ops.h).
 *
 * Everything is immutable, so entries and attributes carry day-long
 * timeouts and directories keep their readdir cache. Files take one of three
 * read paths, chosen at open (docs/DECISIONS.md "Read paths"):
 *  - a file that is one whole regular file of the source (raw/ of a directory
 *    source, a view that is exactly one file) is passed through: the kernel
 *    reads the backing file itself (FUSE_PASSTHROUGH, libfuse 3.17, root);
 *  - otherwise, with -o cache=kernel, the FUSE page cache keeps it (keep_cache);
 *  - with -o cache=direct, direct_io: every read comes here, no second copy
 *    in the page cache; shared mmap still works where the kernel allows it
 *    (FUSE_CAP_DIRECT_IO_ALLOW_MMAP), else the file stays page-cached, as
 *    direct_io without it breaks the mmap that safetensors loaders use.
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

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/compat.h"
#include "nemockpt/log.h"

#if NCK_HAVE_PASSTHROUGH
#define NCK_PT_WORD "built in"
#else
#define NCK_PT_WORD "not built (libfuse < 3.16)"
#endif
#if NCK_HAVE_DIO_MMAP
#define NCK_DIO_WORD "built in"
#else
#define NCK_DIO_WORD "not built (libfuse < 3.17)"
#endif

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uint64_t), "fuse_ino_t holds 64-bit inodes");

/* Nothing changes under a mount: a day is as good as forever. */
#define OPS_TIMEOUT 86400.0
/* Most extents one read is answered with. */
#define OPS_MAX_EXTENTS 16
/* Most of them whose memory is borrowed from the source (a tar member or a
 * view file's runs of a remote source; the rest are copied). */
#define OPS_MAX_LOANS 4
/* d_ino of names listed before their inode exists (never 0: some tools
 * skip such entries). */
#define OPS_UNLINKED_INO 0xFFFFFFFFull
/* -o cache=auto: which kinds of file take direct I/O (the rest stay in the
 * FUSE page cache). Settled by bench/bench_mount_read.py, docs/DECISIONS.md. */
#define NCK_FUSE_AUTO_DIRECT(kind) ((void)(kind), false)
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

const char *nck_fuse_features(void)
{
	return "passthrough " NCK_PT_WORD ", direct I/O with mmap " NCK_DIO_WORD;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	nck_fuse_ctx *ctx = userdata;

	/* Zero-copy replies: off by default in libfuse 3.14 (spec §7.4). */
	if (nck_conn_want(conn, FUSE_CAP_SPLICE_WRITE))
		nck_conn_want(conn, FUSE_CAP_SPLICE_MOVE);
	nck_conn_want(conn, FUSE_CAP_READDIRPLUS);
	/* Plain readdir for directories already cached; plus for the first. */
	nck_conn_want(conn, FUSE_CAP_READDIRPLUS_AUTO);
	nck_conn_want(conn, FUSE_CAP_CACHE_SYMLINKS);
	/* Pages stay valid: never invalidate on mtime checks. */
	nck_conn_unwant(conn, FUSE_CAP_AUTO_INVAL_DATA);
#if NCK_HAVE_PASSTHROUGH
	/* Conflicts with writeback caching, which a read-only fs never asks for. */
	if (ctx->want_passthrough && nck_conn_want(conn, FUSE_CAP_PASSTHROUGH))
		atomic_store(&ctx->passthrough, true);
#endif
#if NCK_HAVE_DIO_MMAP
	if (nck_conn_want(conn, FUSE_CAP_DIRECT_IO_ALLOW_MMAP))
		atomic_store(&ctx->dio_mmap, true);
#endif
	ctx->max_write = conn->max_write;
	nck_log(NCK_LOG_DEBUG, "read paths: passthrough %s, direct I/O with mmap %s, cache=%s, "
		"requests up to %u KiB",
		atomic_load(&ctx->passthrough) ? "on" : ctx->want_passthrough ? "unavailable" : "off",
		atomic_load(&ctx->dio_mmap) ? "on" : "unavailable",
		ctx->cache == NCK_FUSE_CACHE_KERNEL ? "kernel"
		: ctx->cache == NCK_FUSE_CACHE_DIRECT ? "direct" : "auto",
		conn->max_write / 1024);
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

/* What a file is made of, which decides its read path. */
typedef enum ops_kind {
	OPS_KIND_WHOLE,  /* exactly one whole regular file of the source */
	OPS_KIND_MEMBER, /* one byte range of a source file (a tar member) */
	OPS_KIND_VIEW,   /* computed, decompressed or assembled from pieces */
} ops_kind;

/* Classifies an open file by planning a read of all of it (no bytes move).
 * For OPS_KIND_WHOLE, *fd_out is the backing fd (borrowed from the handle).
 * Returns the kind, or a negative errno (-EIO: the source changed). */
static int ops_classify(nck_vfs *vfs, const nck_vfs_file *file, fuse_ino_t ino, int *fd_out)
{
	nck_extent ext[2];
	struct stat st, bst;
	size_t n = 0;
	int rc;

	*fd_out = -1;
	if ((rc = nck_vfs_getattr(vfs, ino, &st)) < 0)
		return rc;
	if (st.st_size == 0)
		return OPS_KIND_VIEW;
	rc = nck_vfs_read(vfs, file, 0, (size_t)st.st_size, ext, 2, &n);
	if (rc < 0)
		return rc;
	if (n != 1 || ext[0].kind != NCK_EXTENT_FD)
		return OPS_KIND_VIEW;
	if (ext[0].pos == 0 && ext[0].len == (uint64_t)st.st_size && fstat(ext[0].fd, &bst) == 0 &&
	    S_ISREG(bst.st_mode) && bst.st_size == st.st_size) {
		*fd_out = ext[0].fd;
		return OPS_KIND_WHOLE;
	}
	return OPS_KIND_MEMBER;
}

/* A passed-through inode: its backing id and the opens that use it
 * (libfuse: one backing id per inode, closed when the last open is released). */
struct nck_fuse_backing {
	fuse_ino_t ino;
	int id;
	unsigned opens;
	nck_fuse_backing *next;
};

#if NCK_HAVE_PASSTHROUGH
/* Registers `fd` as the backing file of `ino` (or reuses the inode's id).
 * Returns the id, or 0 when the file must take the FUSE path. */
static int ops_backing_get(fuse_req_t req, nck_fuse_ctx *ctx, fuse_ino_t ino, int fd)
{
	nck_fuse_backing *b;
	int id = 0;

	pthread_mutex_lock(&ctx->backing_lock);
	for (b = ctx->backing; b; b = b->next)
		if (b->ino == ino)
			break;
	if (b) {
		b->opens++;
		id = b->id;
	} else if (atomic_load(&ctx->passthrough) && (b = calloc(1, sizeof(*b)))) {
		id = fuse_passthrough_open(req, fd);
		if (id > 0) {
			*b = (nck_fuse_backing){ .ino = ino, .id = id, .opens = 1, .next = ctx->backing };
			ctx->backing = b;
		} else {
			/* EPERM without CAP_SYS_ADMIN, ELOOP on a stacked fs: every
			 * later open takes the FUSE path, so one inode never mixes
			 * the two (the kernel refuses that). */
			free(b);
			atomic_store(&ctx->passthrough, false);
			nck_log(NCK_LOG_INFO, "passthrough refused by the kernel (needs CAP_SYS_ADMIN "
				"and a backing file on a plain fs): reading through FUSE instead");
		}
	}
	pthread_mutex_unlock(&ctx->backing_lock);
	return id;
}

/* Drops one open of `ino`; closes its backing id after the last. */
static void ops_backing_put(fuse_req_t req, nck_fuse_ctx *ctx, fuse_ino_t ino)
{
	nck_fuse_backing **pp, *b = NULL;

	pthread_mutex_lock(&ctx->backing_lock);
	for (pp = &ctx->backing; *pp; pp = &(*pp)->next)
		if ((*pp)->ino == ino)
			break;
	if (*pp && --(*pp)->opens == 0) {
		b = *pp;
		*pp = b->next;
		fuse_passthrough_close(req, b->id);
	}
	pthread_mutex_unlock(&ctx->backing_lock);
	free(b);
}
#endif

/* The page-cache policy for a file of `kind` that is not passed through.
 * auto: measured in bench/bench_mount_read.py (docs/DECISIONS.md). */
static bool ops_direct(const nck_fuse_ctx *ctx, ops_kind kind)
{
	if (!atomic_load(&ctx->dio_mmap))
		return false; /* direct_io would break shared mmap (ENODEV) */
	if (ctx->cache == NCK_FUSE_CACHE_DIRECT)
		return true;
	if (ctx->cache == NCK_FUSE_CACHE_KERNEL)
		return false;
	return NCK_FUSE_AUTO_DIRECT(kind);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	nck_fuse_ctx *ctx = fuse_req_userdata(req);
	nck_vfs *vfs = ops_vfs(req);
	nck_vfs_file *file;
	int rc = nck_vfs_file_open(&file, vfs, ino, fi->flags), fd = -1, kind = OPS_KIND_VIEW;

	/* A file whose source cannot be planned now (it changed, it is
	 * damaged) still opens, on the FUSE path: its reads answer EIO for
	 * the bytes they cannot serve, as for any damaged range. */
	if (rc == 0 && (kind = ops_classify(vfs, file, ino, &fd)) < 0)
		kind = OPS_KIND_VIEW;
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)file;
	fi->noflush = 1;
#if NCK_HAVE_PASSTHROUGH
	if (kind == OPS_KIND_WHOLE && ctx->want_passthrough &&
	    (fi->backing_id = ops_backing_get(req, ctx, ino, fd)) > 0) {
		/* keep_cache is refused with passthrough: pages live in the
		 * backing file's own cache. */
		if (fuse_reply_open(req, fi) == -ENOENT) {
			ops_backing_put(req, ctx, ino);
			nck_vfs_file_close(file); /* the opener was interrupted */
		}
		return;
	}
#endif
	if (ops_direct(ctx, (ops_kind)kind))
		fi->direct_io = 1;
	else
		fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		nck_vfs_file_close(file); /* the opener was interrupted */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
#if NCK_HAVE_PASSTHROUGH
	ops_backing_put(req, fuse_req_userdata(req), ino);
#else
	(void)ino;
#endif
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

/* Copies the extents of `kind` (NCK_EXTENT_SRC: gzip members, reads a
 * source would not lend; NCK_EXTENT_GEN: computed views) into one buffer
 * and points them at it as memory extents. *buf_out is NULL when there are
 * none. 0, -EIO or -ENOMEM. */
static int ops_copy_extents(nck_extent *ext, size_t n, nck_extent_kind kind, void **buf_out)
{
	size_t total = 0, at = 0;
	char *buf;
	int rc;

	*buf_out = NULL;
	for (size_t i = 0; i < n; i++)
		if (ext[i].kind == kind)
			total += ext[i].len;
	if (total == 0)
		return 0;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (ext[i].kind != kind)
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

/*
 * Borrows the memory of up to OPS_MAX_LOANS NCK_EXTENT_SRC extents from
 * their source (a remote source's block cache) so the reply is written from
 * it without a copy: each becomes an NCK_EXTENT_MEM extent with mem NULL
 * and loan_of[i] its loan; the rest stay for ops_copy_extents().
 * 0, or -EIO / -ENOMEM with every loan given back.
 */
static int ops_lend_src_extents(nck_extent *ext, size_t n, nck_loan *loans, size_t *n_loans,
				int *loan_of)
{
	*n_loans = 0;
	for (size_t i = 0; i < n; i++) {
		int rc;

		loan_of[i] = -1;
		if (ext[i].kind != NCK_EXTENT_SRC || *n_loans == OPS_MAX_LOANS)
			continue;
		rc = nck_vfs_extent_lend(&ext[i], &loans[*n_loans]);
		if (rc == -ENOTSUP)
			continue;
		if (rc < 0) {
			while (*n_loans)
				nck_vfs_loan_return(&loans[--*n_loans]);
			return rc;
		}
		ext[i].kind = NCK_EXTENT_MEM;
		ext[i].mem = NULL;
		loan_of[i] = (int)(*n_loans)++;
	}
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
	nck_loan loans[OPS_MAX_LOANS];
	int loan_of[OPS_MAX_EXTENTS];
	size_t n = 0, n_loans = 0;
	void *copy = NULL, *copy_src = NULL;
	int rc = nck_vfs_read(ops_vfs(req), file, off < 0 ? 0 : (uint64_t)off, size, ext,
			      OPS_MAX_EXTENTS, &n);
	bool has_fd = rc == 0 && ops_has_fd(ext, n);

	/* Computed pieces first (they may read a remote source), then the
	 * loans, so blocks are held only while the rest is copied. Only
	 * memory: one writev, from lent memory where the source has it.
	 * Splicing memory would copy it twice (into the pipe, then into the
	 * FUSE page); splice pays off for fd data only. */
	if (rc == 0)
		rc = ops_copy_extents(ext, n, NCK_EXTENT_GEN, &copy);
	if (rc == 0 && !has_fd)
		rc = ops_lend_src_extents(ext, n, loans, &n_loans, loan_of);
	if (rc == 0 && (rc = ops_copy_extents(ext, n, NCK_EXTENT_SRC, &copy_src)) < 0)
		while (n_loans)
			nck_vfs_loan_return(&loans[--n_loans]);
	if (rc < 0) {
		free(copy);
		ops_log_read_error(ino, rc);
		fuse_reply_err(req, rc == -ENOMEM || rc == -EINTR ? -rc : EIO);
		return;
	}
	if (!has_fd) {
		struct iovec iov[OPS_MAX_EXTENTS + OPS_MAX_LOANS * NCK_LOAN_MAX];
		int k = 0;

		for (size_t i = 0; i < n; i++) {
			if (loan_of[i] < 0) {
				iov[k++] = (struct iovec){ .iov_base = (void *)(uintptr_t)ext[i].mem,
							   .iov_len = ext[i].len };
				continue;
			}
			for (int j = 0; j < loans[loan_of[i]].n; j++)
				iov[k++] = loans[loan_of[i]].iov[j];
		}
		fuse_reply_iov(req, iov, k);
		/* The reply has been written: the loans and the copies are free. */
		while (n_loans)
			nck_vfs_loan_return(&loans[--n_loans]);
		free(copy);
		free(copy_src);
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
	/* The reply has been written: nothing refers to the copies any more. */
	free(copy);
	free(copy_src);
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

void nck_fuse_backing_free(nck_fuse_ctx *ctx)
{
	pthread_mutex_lock(&ctx->backing_lock);
	while (ctx->backing) {
		nck_fuse_backing *next = ctx->backing->next;

		free(ctx->backing);
		ctx->backing = next;
	}
	pthread_mutex_unlock(&ctx->backing_lock);
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
