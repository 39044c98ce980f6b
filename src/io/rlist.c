/* SPDX-License-Identifier: MIT */
/*
 * The listing source (see remote.h): the objects under an s3:// prefix laid
 * end to end, so that the container layer can treat a bucket directory as
 * it treats a tar (entries at offsets of one source) and nothing above it
 * changes. Each object is a remote source of its own (remote.c), opened on
 * its first read with the size and ETag the listing gave.
 *
 * Thread-safety: `lock` guards the lazy opens; an opened object's pointer
 * is published once and never changes; reads run outside the lock.
 */
#include "io/http_int.h"
#include "io/s3_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nemockpt/log.h"

typedef struct lobj {
	char *url;            /* s3://BUCKET/KEY */
	char etag[256];
	time_t mtime;
	_Atomic(nck_src *) src; /* opened on the first read */
	bool failed;          /* the open failed: reads give EIO (lock) */
} lobj;

typedef struct rlist {
	char *display;
	nck_remote_opts opts; /* strings owned */
	lobj *objs;
	nck_remote_member *members;
	size_t n;
	uint64_t size;
	struct stat st;
	pthread_mutex_t lock;
	bool sealed; /* the mount is built: objects opened from now on are sealed at once (lock) */
} rlist;

static const nck_src_vtab rlist_vtab;

/* The object of member i, opened once. NULL: the open failed (logged). */
static nck_src *rlist_obj(rlist *l, size_t i)
{
	lobj *o = &l->objs[i];
	nck_src *src = atomic_load(&o->src);
	nck_diag d;

	if (src)
		return src;
	pthread_mutex_lock(&l->lock);
	if (!(src = atomic_load(&o->src)) && !o->failed) {
		nck_diag_init(&d);
		if (nck_remote_open_known(&src, o->url, &l->opts, l->members[i].size, o->etag,
					  o->mtime, &d) < 0) {
			char line[1600];

			nck_diag_format(&d, line, sizeof(line));
			nck_log(NCK_LOG_ERROR, "%s", line);
			o->failed = true;
			src = NULL;
		} else {
			/* After the mount nothing is recorded for a second mount, and
			 * small reads go through the blocks, as for an object open
			 * when the listing was sealed. */
			if (l->sealed)
				(void)nck_src_remote_seal(src);
			atomic_store(&o->src, src);
		}
	}
	pthread_mutex_unlock(&l->lock);
	return src;
}

/* The member holding byte `off` (binary search over the offsets). */
static size_t rlist_find(const rlist *l, uint64_t off)
{
	size_t lo = 0, hi = l->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->members[mid].offset <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int64_t rlist_pread(void *impl, void *buf, size_t len, uint64_t off)
{
	rlist *l = impl;
	unsigned char *dst = buf;
	size_t done = 0;

	while (done < len) {
		uint64_t pos = off + done;
		size_t i = rlist_find(l, pos);
		const nck_remote_member *m = &l->members[i];
		uint64_t in = pos - m->offset;
		size_t n;
		nck_src *src;
		int64_t got;

		if (pos < m->offset || in >= m->size)
			return -EIO; /* empty objects have no bytes to land in */
		n = m->size - in < len - done ? (size_t)(m->size - in) : len - done;
		if (!(src = rlist_obj(l, i)))
			return -EIO;
		got = nck_src_pread(src, dst + done, n, in);
		if (got != (int64_t)n)
			return got < 0 ? got : -EIO;
		done += n;
	}
	return (int64_t)len;
}

static int rlist_check(void *impl)
{
	rlist *l = impl;

	for (size_t i = 0; i < l->n; i++) {
		nck_src *src = atomic_load(&l->objs[i].src);

		if (src && nck_src_check(src) < 0)
			return -EIO;
	}
	return 0;
}

static const struct stat *rlist_stat(void *impl)
{
	rlist *l = impl;

	return &l->st;
}

static void rlist_free(void *impl)
{
	rlist *l = impl;

	if (!l)
		return;
	for (size_t i = 0; l->objs && i < l->n; i++) {
		nck_src_close(atomic_load(&l->objs[i].src));
		free(l->objs[i].url);
		free((char *)l->members[i].path);
	}
	free(l->objs);
	free(l->members);
	free(l->display);
	free((char *)l->opts.token_file);
	free((char *)l->opts.ca_file);
	free((char *)l->opts.cache_dir);
	free((char *)l->opts.endpoint);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* The object that holds all of [off, off+len), and where in it; NULL when
 * the range crosses objects (or the object cannot be opened). */
static nck_src *rlist_within(rlist *l, uint64_t off, size_t len, uint64_t *in)
{
	size_t i = l->n ? rlist_find(l, off) : 0;
	const nck_remote_member *m = &l->members[i];

	if (!l->n || off < m->offset || off - m->offset >= m->size || len > m->size - (off - m->offset))
		return NULL;
	*in = off - m->offset;
	return rlist_obj(l, i);
}

/* A range inside one object is lent by that object's source (nck_src_map
 * keeps the lender in the loan, so it is given back there). */
static int rlist_map(void *impl, uint64_t off, size_t len, nck_loan *m)
{
	uint64_t in;
	nck_src *src = rlist_within(impl, off, len, &in);

	return src ? nck_src_map(src, in, len, m) : -ENOTSUP;
}

static void rlist_willneed(void *impl, uint64_t off, size_t len)
{
	uint64_t in;
	nck_src *src = rlist_within(impl, off, len, &in);

	if (src)
		nck_src_willneed(src, in, len);
}

static const nck_src_vtab rlist_vtab = {
	.pread = rlist_pread,
	.map = rlist_map,
	.willneed = rlist_willneed,
	.check = rlist_check,
	.stat = rlist_stat,
	.free = rlist_free,
};

/* strdup of an optional string; false when out of memory. */
static bool rlist_dup(const char **dst, const char *s)
{
	*dst = s ? strdup(s) : NULL;
	return !s || *dst;
}

/* Fills l->objs/members from a listing under `prefix` (key order as listed). */
static int rlist_fill(rlist *l, nck_s3_object *objs, size_t n, const char *bucket,
		      const char *prefix, nck_diag *diag)
{
	size_t plen = strlen(prefix);

	l->objs = calloc(n ? n : 1, sizeof(*l->objs));
	l->members = calloc(n ? n : 1, sizeof(*l->members));
	if (!l->objs || !l->members)
		return nck_diag_set(diag, -ENOMEM, l->display, -1, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const nck_s3_object *o = &objs[i];
		size_t klen = strlen(o->key);
		lobj *lo = &l->objs[l->n];
		nck_remote_member *m = &l->members[l->n];

		if (strncmp(o->key, prefix, plen) != 0 || klen == plen || o->key[klen - 1] == '/')
			continue; /* the prefix itself, folder markers */
		if (o->size > UINT64_MAX - l->size)
			return nck_diag_set(diag, -EBADMSG, l->display, -1, "listing: sizes overflow");
		lo->url = malloc(strlen(bucket) + klen + 7);
		m->path = strdup(o->key + plen);
		if (!lo->url || !m->path) {
			free(lo->url);
			free((char *)m->path);
			return nck_diag_set(diag, -ENOMEM, l->display, -1, "out of memory");
		}
		sprintf(lo->url, "s3://%s/%s", bucket, o->key);
		snprintf(lo->etag, sizeof(lo->etag), "%s", o->etag);
		lo->mtime = o->mtime;
		m->offset = l->size;
		m->size = o->size;
		m->mtime = (int64_t)o->mtime;
		l->size += o->size;
		l->n++;
	}
	return 0;
}

int nck_src_open_remote_listing(nck_src **out, const nck_remote_member **members, size_t *n_out,
				const char *url, const nck_remote_opts *opts, nck_diag *diag)
{
	nck_remote_opts none = { 0 };
	char disp[2048];
	nck_http *h = NULL;
	nck_s3_object *objs = NULL;
	size_t n = 0;
	rlist *l;
	bool ok;
	int rc;

	*out = NULL;
	*members = NULL;
	*n_out = 0;
	if (!opts)
		opts = &none;
	nck_url_redact(disp, sizeof(disp), url);
	if (!(l = calloc(1, sizeof(*l))))
		return nck_diag_set(diag, -ENOMEM, disp, -1, "out of memory");
	pthread_mutex_init(&l->lock, NULL);
	l->opts = *opts;
	/* Each object has its own block cache: a sixteenth of the budget (at
	 * least 16 MiB), so a few objects streamed at once stay near it. The
	 * bound is per opened object, not shared (docs/DECISIONS.md). */
	{
		uint64_t total = opts->cache_size ? opts->cache_size : 256u << 20;

		l->opts.cache_size = total / 16 > (16u << 20) ? total / 16 : 16u << 20;
	}
	l->display = strdup(disp);
	/* Every string is duplicated (none skipped after a failure): rlist_free
	 * frees them all, so none may still be the caller's. */
	ok = l->display != NULL;
	ok = rlist_dup(&l->opts.token_file, opts->token_file) && ok;
	ok = rlist_dup(&l->opts.ca_file, opts->ca_file) && ok;
	ok = rlist_dup(&l->opts.cache_dir, opts->cache_dir) && ok;
	ok = rlist_dup(&l->opts.endpoint, opts->endpoint) && ok;
	if (!ok) {
		rlist_free(l);
		return nck_diag_set(diag, -ENOMEM, disp, -1, "out of memory");
	}
	if ((rc = nck_http_new(&h, url, disp, opts, diag)) < 0 ||
	    (rc = nck_s3_list(&objs, &n, h, disp, diag)) < 0 ||
	    (rc = rlist_fill(l, objs, n, nck_http_s3(h)->bucket, nck_http_s3(h)->key, diag)) < 0) {
		nck_s3_objects_free(objs, n);
		nck_http_free(h);
		rlist_free(l);
		return rc;
	}
	nck_s3_objects_free(objs, n);
	nck_http_free(h);
	if (l->n == 0) {
		rlist_free(l);
		return nck_diag_set(diag, -ENOENT, disp, -1, "no objects under this prefix");
	}
	l->st.st_mode = S_IFDIR | 0555;
	l->st.st_size = (off_t)l->size;
	l->st.st_nlink = 1;
	*members = l->members;
	*n_out = l->n;
	return nck_src_new_impl_take(out, &rlist_vtab, l, l->size, disp);
}

bool nck_src_is_remote_listing(const nck_src *src)
{
	return src && nck_src_vtab_of(src) == &rlist_vtab;
}

int nck_remote_listing_seal(nck_src *src)
{
	rlist *l = nck_src_impl_of(src);
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	l->sealed = true;
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < l->n; i++) {
		nck_src *o = atomic_load(&l->objs[i].src);
		int r = o ? nck_src_remote_seal(o) : 0;

		if (r < 0)
			rc = r;
	}
	return rc;
}
