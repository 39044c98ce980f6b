/* SPDX-License-Identifier: MIT */
/*
 * nck_container: reader registry, detection by bidding, and the helpers the
 * readers share (see container.h).
 */
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "nemockpt/log.h"
#include "util/ckd.h"

const nck_container_ops *const nck_container_readers[] = {
	&nck_container_tar_ops,
	&nck_container_dir_ops,
	&nck_container_compressed_ops,
	&nck_container_gztar_ops,
	NULL,
};

/* Bytes given to bid(): enough for a tar header and compression magics. */
#define CONTAINER_HEAD 4096

/* ---- bidding -------------------------------------------------------------- */

/* Picks the reader with the highest bid; a tie is an error naming both. */
static int container_select(const nck_container_ops **out, const char *path,
			    const unsigned char *head, size_t len, bool is_dir, nck_diag *diag)
{
	const nck_container_ops *best = NULL, *tie = NULL;
	int best_bid = 0;

	for (size_t i = 0; nck_container_readers[i]; i++) {
		int bid = nck_container_readers[i]->bid(head, len, is_dir);

		if (bid > best_bid) {
			best = nck_container_readers[i];
			best_bid = bid;
			tie = NULL;
		} else if (bid > 0 && bid == best_bid) {
			tie = nck_container_readers[i];
		}
	}
	if (!best)
		return nck_diag_set(diag, -EBADMSG, path, 0,
				    len == 0 ? "empty file, not a tar archive"
					     : "not a tar archive or a checkpoint directory");
	if (tie)
		return nck_diag_set(diag, -EBADMSG, path, 0, "ambiguous format: %s or %s",
				    best->name, tie->name);
	*out = best;
	return 0;
}

/* ---- open/close ------------------------------------------------------------ */

/* Allocates an empty container for `path`. */
static nck_container *container_alloc(const char *path)
{
	nck_container *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->path = strdup(path);
	if (!c->path) {
		free(c);
		return NULL;
	}
	c->dirfd = -1;
	nck_arena_init(&c->arena);
	return c;
}

/* ---- duplicate members ------------------------------------------------------ */

/* Orders entry indexes by path, then by position in the archive. */
static int container_cmp_index(const void *a, const void *b, void *payload)
{
	const nck_entry *e = payload;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int d = strcmp(e[i].path, e[j].path);

	return d ? d : (i > j) - (i < j);
}

/*
 * One rule for every layer: of regular files with the same path, the last
 * one wins, as `tar -x` leaves it, with a warning naming the member. raw/,
 * the catalog and every view then see the same bytes.
 */
static int container_dedupe(nck_container *c, nck_diag *diag)
{
	size_t *idx = NULL, w = 0;
	bool *drop = NULL;

	if (c->n_entries < 2)
		return 0;
	idx = malloc(c->n_entries * sizeof(*idx));
	drop = calloc(c->n_entries, sizeof(*drop));
	if (!idx || !drop) {
		free(idx);
		free(drop);
		return nck_diag_set(diag, -ENOMEM, c->path, -1, "out of memory");
	}
	for (size_t i = 0; i < c->n_entries; i++)
		idx[i] = i;
	qsort_r(idx, c->n_entries, sizeof(*idx), container_cmp_index, c->entries);
	for (size_t k = 0; k + 1 < c->n_entries; k++) {
		const nck_entry *a = &c->entries[idx[k]], *b = &c->entries[idx[k + 1]];

		if (a->kind != NCK_ENTRY_FILE || b->kind != NCK_ENTRY_FILE ||
		    strcmp(a->path, b->path) != 0)
			continue;
		drop[idx[k]] = true;
		nck_log(NCK_LOG_WARN,
			"%s: duplicate member '%s': the later copy (data at offset %llu) is used, as tar -x does",
			c->path, b->path, (unsigned long long)b->offset);
	}
	for (size_t i = 0; i < c->n_entries; i++)
		if (!drop[i])
			c->entries[w++] = c->entries[i];
	c->n_skipped += c->n_entries - w;
	c->n_entries = w;
	free(idx);
	free(drop);
	return 0;
}

/* Runs the bidding and the chosen reader over c->src or c->dirfd. */
static int container_build(nck_container *c, nck_diag *diag)
{
	unsigned char head[CONTAINER_HEAD];
	int64_t n = 0;
	int rc;

	if (c->src) {
		n = nck_src_pread(c->src, head, sizeof(head), 0);
		if (n < 0)
			return nck_diag_set(diag, -EIO, c->path, 0, "read failed");
	}
	rc = container_select(&c->ops, c->path, c->src ? head : NULL, (size_t)n, !c->src, diag);
	if (rc < 0)
		return rc;
	if ((rc = c->ops->open(c, diag)) < 0)
		return rc;
	return container_dedupe(c, diag);
}

int nck_container_open(nck_container **out, const char *path, nck_diag *diag)
{
	return nck_container_open_opts(out, path, NULL, diag);
}

/* A bucket directory: its objects as entries at offsets of one listing
 * source, the way a tar's members are (so the vfs reads it as one). */
static int container_listing(nck_container *c, const char *url, const nck_remote_opts *ro,
			     nck_diag *diag)
{
	const nck_remote_member *m;
	size_t n;
	int rc;

	if ((rc = nck_src_open_remote_listing(&c->src, &m, &n, url, ro, diag)) < 0)
		return rc;
	c->remote = c->src;
	c->st = *nck_src_stat(c->src);
	c->ops = &nck_container_s3dir_ops;
	for (size_t i = 0; i < n; i++) {
		const char *path;
		nck_entry *e;

		rc = nck_container_path_normalize(&path, &c->arena, m[i].path);
		if (rc == -ENOMEM)
			return nck_diag_set(diag, rc, c->path, -1, "out of memory");
		if (rc != 0) {
			nck_log(NCK_LOG_WARN, "%s: '%s' left out: %s", c->path, m[i].path,
				rc == 1 ? "names the root" : "absolute name or '..' component");
			c->n_skipped++;
			continue;
		}
		if (!(e = nck_container_add(c)))
			return nck_diag_set(diag, -ENOMEM, c->path, -1, "out of memory");
		e->path = path;
		e->kind = NCK_ENTRY_FILE;
		e->mode = 0444;
		e->mtime_sec = m[i].mtime;
		e->size = m[i].size;
		e->offset = m[i].offset;
	}
	return 0;
}

/* Never wins a bid: chosen by container_listing for s3:// prefixes. */
static int s3dir_bid(const unsigned char *head, size_t len, bool is_dir)
{
	(void)head;
	(void)len;
	(void)is_dir;
	return 0;
}

static int s3dir_open(nck_container *c, nck_diag *diag)
{
	return nck_diag_set(diag, -EINVAL, c->path, -1, "not a listing");
}

const nck_container_ops nck_container_s3dir_ops = {
	.version = NCK_CONTAINER_OPS_VERSION,
	.name = "s3 directory",
	.bid = s3dir_bid,
	.open = s3dir_open,
};

/* True for s3://BUCKET and s3://BUCKET/PREFIX/ (a directory). */
static bool container_is_listing(const char *url)
{
	const char *p;

	if (strncasecmp(url, "s3://", 5) != 0)
		return false;
	p = strchr(url + 5, '/');
	return !p || url[strlen(url) - 1] == '/';
}

/* Opens an http(s) tarball: a remote source read like a local file. */
static int container_open_url(nck_container **out, const char *url, const nck_container_opts *opts,
			      nck_diag *diag)
{
	char disp[2048], dir[1024];
	nck_remote_opts ro = opts ? opts->remote : (nck_remote_opts){ 0 };
	nck_container *c;
	int rc;

	nck_url_redact(disp, sizeof(disp), url);
	if (!(c = container_alloc(disp)))
		return nck_diag_set(diag, -ENOMEM, disp, -1, "out of memory");
	if (opts)
		c->opts = *opts;
	if (!(opts && opts->gz_no_persist) &&
	    nck_gz_cache_dir(dir, sizeof(dir), opts ? opts->cache_dir : NULL) == 0)
		ro.cache_dir = dir;
	if (container_is_listing(url)) {
		rc = container_listing(c, url, &ro, diag);
	} else {
		if ((rc = nck_src_open_remote(&c->src, url, &ro, diag)) < 0)
			goto out;
		c->remote = c->src;
		c->st = *nck_src_stat(c->src);
		rc = container_build(c, diag);
	}
	c->opts.cache_dir = NULL;
	if (rc < 0)
		goto out;
	*out = c;
	return 0;
out:
	nck_container_close(c);
	return rc;
}

int nck_container_open_opts(nck_container **out, const char *path, const nck_container_opts *opts,
			    nck_diag *diag)
{
	nck_container *c = NULL;
	char *abs = NULL;
	struct stat st;
	int rc;

	*out = NULL;
	if (nck_url_is_remote(path))
		return container_open_url(out, path, opts, diag);
	if (stat(path, &st) < 0)
		return nck_diag_set(diag, -errno, path, -1, "%s", strerror(errno));
	/* Absolute, so that info.json and messages name the file unambiguously. */
	abs = realpath(path, NULL);
	c = container_alloc(abs ? abs : path);
	free(abs);
	if (!c)
		return nck_diag_set(diag, -ENOMEM, path, -1, "out of memory");
	if (opts)
		c->opts = *opts;
	if (S_ISDIR(st.st_mode)) {
		c->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->dirfd < 0 || fstat(c->dirfd, &c->st) < 0) {
			rc = nck_diag_set(diag, -errno, path, -1, "%s", strerror(errno));
			goto out;
		}
	} else {
		if ((rc = nck_src_open_file(&c->src, AT_FDCWD, path, false, diag)) < 0)
			goto out;
		c->st = *nck_src_stat(c->src);
	}
	rc = container_build(c, diag);
	c->opts.cache_dir = NULL; /* borrowed for the build only */
	if (rc < 0)
		goto out;
	*out = c;
	return 0;
out:
	nck_container_close(c);
	return rc;
}

int nck_container_open_src_take(nck_container **out, nck_src *src, nck_diag *diag)
{
	nck_container *c;
	int rc;

	*out = NULL;
	c = container_alloc(nck_src_name(src));
	if (!c) {
		nck_src_close(src);
		return -ENOMEM;
	}
	c->src = src;
	c->opts.gz_no_persist = true;
	c->st.st_size = (off_t)nck_src_size(src);
	if ((rc = container_build(c, diag)) < 0) {
		nck_container_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void nck_container_seal(nck_container *c)
{
	int rc;

	if (c && c->remote && (rc = nck_src_remote_seal(c->remote)) < 0)
		nck_log(NCK_LOG_WARN, "%s: cannot keep the mount-time reads: %s", c->path,
			strerror(-rc));
}

void nck_container_close(nck_container *c)
{
	if (!c)
		return;
	nck_src_close(c->src);
	if (c->dirfd >= 0)
		close(c->dirfd);
	nck_arena_dispose(&c->arena);
	free(c->entries);
	free(c->path);
	free(c);
}

/* ---- member access ------------------------------------------------------------ */

int nck_container_member_fd(const nck_container *c, const nck_entry *e)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	if (c->dirfd < 0)
		return -EINVAL;
	fd = (int)syscall(SYS_openat2, c->dirfd, e->path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(c->dirfd, e->path, (int)how.flags);
	if (fd < 0)
		return errno == ENOMEM ? -ENOMEM : -EIO;
	if (nck_src_check_fd(fd, &e->st) < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

int nck_container_member_src(nck_src **out, const nck_container *c, const nck_entry *e)
{
	int fd;

	*out = NULL;
	if (c->src)
		return nck_src_new_slice(out, c->src, e->offset, e->size, e->path);
	fd = nck_container_member_fd(c, e);
	if (fd < 0)
		return fd;
	return nck_src_new_fd_take(out, fd, e->path, &e->st);
}

int nck_container_slurp(void **out, size_t *len_out, const nck_container *c, const nck_entry *e,
			uint64_t max, nck_diag *diag)
{
	nck_src *src = NULL;
	char *buf;
	int64_t n;
	int rc;

	*out = NULL;
	if (e->size > max || e->size >= SIZE_MAX)
		return nck_diag_set(diag, -EBADMSG, e->path, -1, "%llu bytes: larger than %llu",
				    (unsigned long long)e->size, (unsigned long long)max);
	if ((rc = nck_container_member_src(&src, c, e)) < 0)
		return nck_diag_set(diag, rc, e->path, -1, "cannot open the member");
	buf = malloc((size_t)e->size + 1);
	n = buf ? nck_src_pread(src, buf, (size_t)e->size, 0) : -ENOMEM;
	nck_src_close(src);
	if (n < 0 || (uint64_t)n != e->size) {
		free(buf);
		return nck_diag_set(diag, n == -ENOMEM ? -ENOMEM : -EIO, e->path, -1, "read failed");
	}
	buf[e->size] = '\0';
	*out = buf;
	*len_out = (size_t)e->size;
	return 0;
}

/* ---- helpers for readers ----------------------------------------------------- */

int nck_container_path_normalize(const char **out, nck_arena *arena, const char *name)
{
	size_t len = strlen(name), n = 0;
	const char *p = name, *end = name + len;
	char *buf;

	*out = NULL;
	if (name[0] == '/')
		return -EPERM;
	buf = nck_arena_alloc(arena, len + 1);
	if (!buf)
		return -ENOMEM;
	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t clen = slash ? (size_t)(slash - p) : (size_t)(end - p);

		if (clen == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		if (clen > 255)
			return -ENAMETOOLONG;
		if (clen > 0 && !(clen == 1 && p[0] == '.')) {
			if (n)
				buf[n++] = '/';
			memcpy(buf + n, p, clen);
			n += clen;
		}
		p += clen + (slash ? 1 : 0);
	}
	buf[n] = '\0';
	if (n == 0)
		return 1;
	*out = buf;
	return 0;
}

int nck_container_add_error(const nck_container *c, nck_diag *diag)
{
	if (c->n_entries >= NCK_CONTAINER_MAX_ENTRIES)
		return nck_diag_set(diag, -E2BIG, c->path, -1,
				    "more than %u members: refused (a limit of this version)",
				    NCK_CONTAINER_MAX_ENTRIES);
	return nck_diag_set(diag, -ENOMEM, c->path, -1, "out of memory");
}

nck_entry *nck_container_add(nck_container *c)
{
	if (c->n_entries >= NCK_CONTAINER_MAX_ENTRIES)
		return NULL;
	if (c->n_entries == c->cap_entries) {
		size_t cap = c->cap_entries ? c->cap_entries * 2 : 256;
		nck_entry *e;

		if (cap > SIZE_MAX / sizeof(*e))
			return NULL;
		e = realloc(c->entries, cap * sizeof(*e));
		if (!e)
			return NULL;
		c->entries = e;
		c->cap_entries = cap;
	}
	memset(&c->entries[c->n_entries], 0, sizeof(c->entries[0]));
	return &c->entries[c->n_entries++];
}
