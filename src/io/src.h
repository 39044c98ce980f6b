/* SPDX-License-Identifier: MIT */
/*
 * nck_src: a random-access, read-only byte source. A file source owns one fd
 * (O_CLOEXEC) and remembers the file's identity (device, inode, size, mtime, ctime)
 * when it was opened, so that a later change of the file is detected and
 * turned into EIO instead of wrong bytes. A memory source wraps a buffer
 * (fuzzers and unit tests). An implemented source (nck_src_new_impl_take)
 * serves reads through callbacks: the gzip source of gzindex.h is one.
 *
 * Thread-safety: after open, every function may be called from any thread;
 * reads use pread(2) and share no cursor.
 */
#ifndef NCK_IO_SRC_H
#define NCK_IO_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "nemockpt/diag.h"
#include "nemockpt/loan.h"

typedef struct nck_src nck_src;

/*
 * Opens `path` (relative to `dirfd`, or AT_FDCWD) for reading. Symlinks in
 * the last component are not followed when `nofollow` is set. Errors:
 * -ENOENT, -EACCES, -EISDIR, other open(2)/fstat(2) errors, -ENOMEM.
 */
int nck_src_open_file(nck_src **out, int dirfd, const char *path, bool nofollow, nck_diag *diag);

/*
 * Makes a file source of an open fd (takes ownership of `fd`, also on
 * failure); `expect`, if not NULL, is the identity the file must have
 * (device, inode, size, mtime, ctime), else -EIO.
 */
int nck_src_new_fd_take(nck_src **out, int fd, const char *name, const struct stat *expect);

/* Wraps `len` bytes at `data` (borrowed, must outlive the source). -ENOMEM. */
int nck_src_new_mem(nck_src **out, const void *data, size_t len, const char *name);

/*
 * A window [base, base+len) of `parent` (borrowed: it must outlive the
 * slice) seen as a source of its own, offsets starting at 0. Reads and
 * change checks go to the parent. -EINVAL if the window does not fit,
 * -ENOMEM.
 */
int nck_src_new_slice(nck_src **out, const nck_src *parent, uint64_t base, uint64_t len,
		      const char *name);

/* Callbacks of an implemented source; `impl` is the payload given at creation. */
typedef struct nck_src_vtab {
	/* Reads exactly `len` bytes at `off` (within the size): returns len, or
	 * -EIO / -ENOMEM. Called from any thread. */
	int64_t (*pread)(void *impl, void *buf, size_t len, uint64_t off);
	/* 0 while the underlying data is unchanged, else -EIO. */
	int (*check)(void *impl);
	/* The identity of the underlying file. Borrowed. */
	const struct stat *(*stat)(void *impl);
	/* Releases `impl`. */
	void (*free)(void *impl);
	/* Optional: lends [off, off+len) (within the size) as memory held until
	 * unmap (m->pins). 0, -ENOTSUP (read it with pread instead: not held,
	 * too many buffers), -EIO, -ENOMEM. */
	int (*map)(void *impl, uint64_t off, size_t len, nck_loan *m);
	void (*unmap)(void *impl, nck_loan *m);
	/* Optional: [off, off+len) (within the size) will be read soon. */
	void (*willneed)(void *impl, uint64_t off, size_t len);
} nck_src_vtab;

/*
 * A source of `size` bytes whose reads go to `vt` (static, borrowed) with
 * payload `impl` (taken: vt->free releases it, also on failure). Its fd is
 * -1, so it is never read zero-copy. -ENOMEM.
 */
int nck_src_new_impl_take(nck_src **out, const nck_src_vtab *vt, void *impl, uint64_t size,
			  const char *name);

/* The callbacks and payload of an implemented source (NULL otherwise):
 * for the module that made it, to recognize its own. Borrowed. */
const nck_src_vtab *nck_src_vtab_of(const nck_src *src);
void *nck_src_impl_of(const nck_src *src);

/* Releases the source and its fd (slices own none). NULL-safe. */
void nck_src_close(nck_src *src);

/*
 * Reads up to `len` bytes at `off` into buf. Returns the number of bytes read
 * (short only at the end of the source) or -EIO.
 */
int64_t nck_src_pread(const nck_src *src, void *buf, size_t len, uint64_t off);

/*
 * Lends `len` bytes at `off` (all within the size) as the source's own
 * memory, so a reply can be written from it without a copy: the block
 * cache of a remote source. Returns 0 (release with nck_src_unmap()),
 * -ENOTSUP when the source cannot lend them (read them with
 * nck_src_pread()), -EIO or -ENOMEM.
 */
int nck_src_map(const nck_src *src, uint64_t off, size_t len, nck_loan *m);

/* Gives back what nck_src_map() lent. NULL-safe for a map never made. */
void nck_src_unmap(nck_loan *m);

/* Says that [off, off+len) will be read soon (clipped to the size): the
 * kernel's readahead of a file (POSIX_FADV_WILLNEED), a remote source's
 * fetch of those blocks in the background. A hint: nothing fails. */
void nck_src_willneed(const nck_src *src, uint64_t off, size_t len);

/* Size of the source when it was opened. */
uint64_t nck_src_size(const nck_src *src);

/* Name used in messages (the path given to open). Borrowed. */
const char *nck_src_name(const nck_src *src);

/* The fd of a file source (a slice's: its parent's), or -1 for memory and
 * implemented sources. Borrowed. */
int nck_src_fd(const nck_src *src);

/* Where byte 0 of the source is in the file of nck_src_fd(): 0, or a slice's base. */
uint64_t nck_src_base(const nck_src *src);

/* The stat(2) taken when the source was opened. Borrowed. */
const struct stat *nck_src_stat(const nck_src *src);

/*
 * Returns 0 while the file still has the identity, size and mtime it had at
 * open, or -EIO once it was changed in place. Memory sources never change.
 */
int nck_src_check(const nck_src *src);

/* Compares an fstat(2) of `fd` with the recorded identity of a file. */
int nck_src_check_fd(int fd, const struct stat *expect);

#endif
