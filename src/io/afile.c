/* SPDX-License-Identifier: MIT */
/*
 * Atomic cache files (see afile.h): a temporary file in the same
 * directory, written in full, then rename(2), which replaces the target in
 * one step; a crash leaves the old file or the new one, plus at worst a
 * stray temporary file. Readers still check their own length and CRC: an
 * unsynced rename can survive a power loss with the data lost.
 */
#include "io/afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int nck_mkdirs(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -errno;
		path[i] = dir[i];
	}
	return 0;
}

/* Writes all of `len` bytes. */
static int afile_full_write(int fd, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Syncs the directory of `path`, so that a rename in it is durable. */
static void afile_sync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int dfd;

	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return;
	if (slash == path) {
		dir[0] = '/'; /* a file directly under the root */
		dir[1] = '\0';
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
}

int nck_afile_write(const char *path, const char *prefix, const nck_apart *parts, size_t n,
		    mode_t mode, bool durable)
{
	char tmp[4200];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0, k;

	k = slash ? snprintf(tmp, sizeof(tmp), "%.*s/.%s.XXXXXX", (int)(slash - path), path, prefix)
		  : snprintf(tmp, sizeof(tmp), ".%s.XXXXXX", prefix);
	if (k < 0 || (size_t)k >= sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = mkstemp(tmp)) < 0)
		return -errno;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = afile_full_write(fd, parts[i].data, parts[i].len);
	if (rc == 0 && (fchmod(fd, mode) < 0 || (durable && fsync(fd) < 0)))
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	if (durable)
		afile_sync_dir(path);
	return 0;
}
