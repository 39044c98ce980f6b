/* SPDX-License-Identifier: MIT */
/*
 * nck_src: file, memory, slice and implemented byte sources (see src.h).
 */
#include "io/src.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct nck_src {
	int fd;                /* -1 for memory sources and slices */
	const unsigned char *mem;
	const nck_src *parent; /* slices: the source they window */
	const nck_src_vtab *vt; /* implemented sources: their callbacks */
	void *impl;            /* ... and payload (owned) */
	uint64_t base;         /* slices: offset of byte 0 in the parent */
	uint64_t size;
	struct stat st;        /* identity at open (file sources) */
	char name[];
};

/* Allocates a source with its name. */
static nck_src *src_alloc(const char *name)
{
	size_t n = strlen(name);
	nck_src *src = calloc(1, sizeof(*src) + n + 1);

	if (!src)
		return NULL;
	memcpy(src->name, name, n + 1);
	src->fd = -1;
	return src;
}

int nck_src_open_file(nck_src **out, int dirfd, const char *path, bool nofollow, nck_diag *diag)
{
	int flags = O_RDONLY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0);
	nck_src *src = NULL;
	int rc;

	*out = NULL;
	src = src_alloc(path);
	if (!src)
		return nck_diag_set(diag, -ENOMEM, path, -1, "out of memory");
	src->fd = openat(dirfd, path, flags);
	if (src->fd < 0 || fstat(src->fd, &src->st) < 0) {
		rc = -errno;
		nck_diag_set(diag, rc, path, -1, "%s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(src->st.st_mode)) {
		rc = nck_diag_set(diag, -EISDIR, path, -1, "is a directory");
		goto out;
	}
	if (!S_ISREG(src->st.st_mode)) {
		rc = nck_diag_set(diag, -EBADMSG, path, -1, "not a regular file");
		goto out;
	}
	src->size = (uint64_t)src->st.st_size;
	*out = src;
	return 0;
out:
	nck_src_close(src);
	return rc;
}

int nck_src_new_fd_take(nck_src **out, int fd, const char *name, const struct stat *expect)
{
	nck_src *src;

	*out = NULL;
	if (expect && nck_src_check_fd(fd, expect) < 0) {
		close(fd);
		return -EIO;
	}
	src = src_alloc(name);
	if (!src) {
		close(fd);
		return -ENOMEM;
	}
	src->fd = fd;
	if (fstat(fd, &src->st) < 0) {
		nck_src_close(src);
		return -EIO;
	}
	src->size = (uint64_t)src->st.st_size;
	*out = src;
	return 0;
}

int nck_src_new_mem(nck_src **out, const void *data, size_t len, const char *name)
{
	nck_src *src = src_alloc(name);

	*out = NULL;
	if (!src)
		return -ENOMEM;
	src->mem = data;
	src->size = len;
	*out = src;
	return 0;
}

int nck_src_new_slice(nck_src **out, const nck_src *parent, uint64_t base, uint64_t len,
		      const char *name)
{
	nck_src *src;

	*out = NULL;
	if (base > parent->size || len > parent->size - base)
		return -EINVAL;
	src = src_alloc(name);
	if (!src)
		return -ENOMEM;
	src->parent = parent;
	src->base = base;
	src->size = len;
	*out = src;
	return 0;
}

int nck_src_new_impl_take(nck_src **out, const nck_src_vtab *vt, void *impl, uint64_t size,
			  const char *name)
{
	nck_src *src = src_alloc(name);

	*out = NULL;
	if (!src) {
		vt->free(impl);
		return -ENOMEM;
	}
	src->vt = vt;
	src->impl = impl;
	src->size = size;
	*out = src;
	return 0;
}

const nck_src_vtab *nck_src_vtab_of(const nck_src *src)
{
	return src->vt;
}

void *nck_src_impl_of(const nck_src *src)
{
	return src->impl;
}

void nck_src_close(nck_src *src)
{
	if (!src)
		return;
	if (src->vt)
		src->vt->free(src->impl);
	if (src->fd >= 0)
		close(src->fd);
	free(src);
}

int64_t nck_src_pread(const nck_src *src, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	if (off >= src->size)
		return 0;
	if (len > src->size - off)
		len = (size_t)(src->size - off);
	if (src->parent) {
		int64_t got = nck_src_pread(src->parent, buf, len, src->base + off);

		return got == (int64_t)len ? got : -EIO;
	}
	if (src->mem) {
		memcpy(buf, src->mem + off, len);
		return (int64_t)len;
	}
	if (src->vt)
		return len ? src->vt->pread(src->impl, buf, len, off) : 0;
	while (done < len) {
		n = pread(src->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -EIO;
		if (n == 0)
			break; /* the file shrank under us */
		done += (size_t)n;
	}
	return done == len ? (int64_t)done : -EIO;
}

int nck_src_map(const nck_src *src, uint64_t off, size_t len, nck_loan *m)
{
	int rc;

	m->n = 0;
	m->vt = NULL;
	if (off > src->size || len > src->size - off)
		return -EIO;
	if (src->parent)
		return nck_src_map(src->parent, src->base + off, len, m);
	if (src->mem) {
		m->iov[0] = (struct iovec){ .iov_base = (void *)(uintptr_t)(src->mem + off),
					    .iov_len = len };
		m->n = 1;
		return 0;
	}
	if (!src->vt || !src->vt->map || len == 0)
		return -ENOTSUP;
	/* Set first: a source that lends through another (a listing through
	 * its object) has the inner nck_src_map() name the real lender. */
	m->vt = src->vt;
	m->impl = src->impl;
	if ((rc = src->vt->map(src->impl, off, len, m)) < 0) {
		m->n = 0;
		m->vt = NULL;
		return rc;
	}
	return 0;
}

void nck_src_unmap(nck_loan *m)
{
	const nck_src_vtab *vt = m->vt;

	if (vt && vt->unmap)
		vt->unmap(m->impl, m);
	m->vt = NULL;
	m->n = 0;
}

void nck_src_willneed(const nck_src *src, uint64_t off, size_t len)
{
	if (off >= src->size || len == 0)
		return;
	if (len > src->size - off)
		len = (size_t)(src->size - off);
	if (src->parent)
		nck_src_willneed(src->parent, src->base + off, len);
	else if (src->vt && src->vt->willneed)
		src->vt->willneed(src->impl, off, len);
	else if (!src->mem && !src->vt && src->fd >= 0)
		(void)posix_fadvise(src->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

uint64_t nck_src_size(const nck_src *src)
{
	return src->size;
}

const char *nck_src_name(const nck_src *src)
{
	return src->name;
}

int nck_src_fd(const nck_src *src)
{
	return src->parent ? nck_src_fd(src->parent) : src->fd;
}

uint64_t nck_src_base(const nck_src *src)
{
	return src->parent ? src->base + nck_src_base(src->parent) : 0;
}

const struct stat *nck_src_stat(const nck_src *src)
{
	if (src->vt)
		return src->vt->stat(src->impl);
	return src->parent ? nck_src_stat(src->parent) : &src->st;
}

int nck_src_check_fd(int fd, const struct stat *expect)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -EIO;
	if (st.st_ino != expect->st_ino || st.st_dev != expect->st_dev ||
	    st.st_size != expect->st_size || st.st_mtim.tv_sec != expect->st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != expect->st_mtim.tv_nsec ||
	    /* A rewrite in place followed by `touch -r` keeps size and mtime;
	     * only the change time tells. */
	    st.st_ctim.tv_sec != expect->st_ctim.tv_sec ||
	    st.st_ctim.tv_nsec != expect->st_ctim.tv_nsec)
		return -EIO;
	return 0;
}

int nck_src_check(const nck_src *src)
{
	if (src->parent)
		return nck_src_check(src->parent);
	if (src->vt)
		return src->vt->check(src->impl);
	if (src->fd < 0)
		return 0;
	return nck_src_check_fd(src->fd, &src->st);
}
