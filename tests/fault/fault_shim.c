/* SPDX-License-Identifier: MIT */
/*
 * A test-only LD_PRELOAD library that injects faults into the daemon's
 * reads of chosen source files (issue 12): pread, pread64, preadv,
 * preadv64 and splice from a descriptor whose path contains
 * $NCK_FAULT_PATH, and that touch bytes [$NCK_FAULT_FROM, $NCK_FAULT_TO) of
 * that file, fail with EIO ($NCK_FAULT_MODE=eio), return half the bytes
 * asked for (short), or sleep $NCK_FAULT_STALL_MS milliseconds first
 * (stall). Every injected fault is counted in the file $NCK_FAULT_LOG
 * (one byte appended per fault), so a test knows faults happened. With
 * $NCK_FAULT_ARM set, faults happen only while that file exists (a test
 * arms them once the mount is up).
 *
 * The path is looked up through /proc/self/fd at each call: the daemon
 * opens files with openat2(2) directly, which no libc wrapper sees.
 * Thread-safety: no state but the environment, read at every call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*preadv_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*splice_fn)(int, loff_t *, int, loff_t *, size_t, unsigned int);

enum { FAULT_NONE, FAULT_EIO, FAULT_SHORT, FAULT_STALL };

/* Which fault applies to `len` bytes at `off` of `fd` (FAULT_NONE if none). */
static int fault_of(int fd, uint64_t off, uint64_t len)
{
	const char *want = getenv("NCK_FAULT_PATH"), *mode = getenv("NCK_FAULT_MODE");
	char link[64], path[4096];
	uint64_t from, to;
	ssize_t n;

	if (!want || !mode || len == 0)
		return FAULT_NONE;
	if (getenv("NCK_FAULT_ARM") && access(getenv("NCK_FAULT_ARM"), F_OK) != 0)
		return FAULT_NONE;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return FAULT_NONE;
	path[n] = '\0';
	if (!strstr(path, want))
		return FAULT_NONE;
	from = strtoull(getenv("NCK_FAULT_FROM") ? getenv("NCK_FAULT_FROM") : "0", NULL, 0);
	to = strtoull(getenv("NCK_FAULT_TO") ? getenv("NCK_FAULT_TO") : "-1", NULL, 0);
	if (off >= to || off + len <= from)
		return FAULT_NONE;
	if (getenv("NCK_FAULT_LOG")) {
		int lfd = open(getenv("NCK_FAULT_LOG"), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

		if (lfd >= 0) {
			if (write(lfd, mode, 1) < 0) {
				/* best effort */
			}
			close(lfd);
		}
	}
	if (strcmp(mode, "eio") == 0)
		return FAULT_EIO;
	if (strcmp(mode, "short") == 0)
		return FAULT_SHORT;
	if (strcmp(mode, "stall") == 0) {
		long ms = strtol(getenv("NCK_FAULT_STALL_MS") ? getenv("NCK_FAULT_STALL_MS") : "100",
				 NULL, 10);
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		return FAULT_STALL;
	}
	return FAULT_NONE;
}

static ssize_t do_pread(const char *sym, int fd, void *buf, size_t len, off_t off)
{
	static pread_fn real[2];
	int k = strcmp(sym, "pread") != 0;
	int f = fault_of(fd, (uint64_t)off, len);

	if (!real[k])
		real[k] = (pread_fn)dlsym(RTLD_NEXT, sym);
	if (f == FAULT_EIO) {
		errno = EIO;
		return -1;
	}
	if (f == FAULT_SHORT && len > 1)
		len /= 2;
	return real[k](fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return do_pread("pread", fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	return do_pread("pread64", fd, buf, len, off);
}

static ssize_t do_preadv(const char *sym, int fd, const struct iovec *iov, int n, off_t off)
{
	static preadv_fn real[2];
	int k = strcmp(sym, "preadv") != 0;
	uint64_t len = 0;
	int f;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	f = fault_of(fd, (uint64_t)off, len);
	if (!real[k])
		real[k] = (preadv_fn)dlsym(RTLD_NEXT, sym);
	if (f == FAULT_EIO) {
		errno = EIO;
		return -1;
	}
	if (f == FAULT_SHORT && n > 1)
		n /= 2; /* the first half of the iovecs: a short count */
	return real[k](fd, iov, n, off);
}

ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	return do_preadv("preadv", fd, iov, n, off);
}

ssize_t preadv64(int fd, const struct iovec *iov, int n, off_t off)
{
	return do_preadv("preadv64", fd, iov, n, off);
}

ssize_t splice(int in, loff_t *in_off, int out, loff_t *out_off, size_t len, unsigned int flags)
{
	static splice_fn real;
	int f = in_off ? fault_of(in, (uint64_t)*in_off, len) : FAULT_NONE;

	if (!real)
		real = (splice_fn)dlsym(RTLD_NEXT, "splice");
	if (f == FAULT_EIO) {
		errno = EIO;
		return -1;
	}
	if (f == FAULT_SHORT && len > 1)
		len /= 2;
	return real(in, in_off, out, out_off, len, flags);
}
