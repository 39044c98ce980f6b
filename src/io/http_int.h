/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client of the remote source (http.c): a pool of curl easy
 * handles shared by every thread, HEAD and range GET with retries.
 * Internal to src/io.
 */
#ifndef NCK_IO_HTTP_INT_H
#define NCK_IO_HTTP_INT_H

#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "io/remote.h"

typedef struct nck_http nck_http;

/* What a HEAD told about the object. */
typedef struct nck_http_meta {
	uint64_t size;
	char etag[256]; /* as sent, quotes included; "" when none */
	bool etag_linked; /* from X-Linked-Etag (a hub): the CDN may send another */
	time_t mtime;     /* Last-Modified, or 0 */
} nck_http_meta;

/* A client for `url` (copied); `display` is its redacted form. -ENOMEM,
 * -EINVAL (an unreadable token file: diag says why). */
int nck_http_new(nck_http **out, const char *url, const char *display, const nck_remote_opts *o,
		 nck_diag *diag);

void nck_http_free(nck_http *h);

/* HEAD with retries. Errors as nck_src_open_remote(). */
int nck_http_head(nck_http *h, nck_http_meta *m, nck_diag *diag);

/*
 * Fetches exactly [off, off+len) into buf with retries: the answer must be
 * 206 with that Content-Range, `len` bytes and, when `etag` is not empty,
 * the same ETag (sent as If-Match unless `linked`). Returns 0, -ENOTSUP
 * (the server answered 200: it ignores ranges), -ESTALE (the object
 * changed: 412 or another ETag), -EIO (anything else, logged), -ENOMEM.
 */
int nck_http_get(nck_http *h, void *buf, uint64_t off, size_t len, const char *etag, bool linked);

/* nck_http_get() of the iovecs' total length from `off`, the body laid
 * into the buffers in turn (no staging copy). */
int nck_http_getv(nck_http *h, const struct iovec *iov, int iovcnt, uint64_t off, const char *etag,
		  bool linked);

/* GETs all of `url` (200 only) into a malloc'd *body (retries; up to
 * 64 MiB). Errors as nck_http_head(), diag says "listing". */
int nck_http_get_body(nck_http *h, const char *url, char **body, size_t *len, nck_diag *diag);

struct nck_s3;
/* The S3 addressing and keys of an s3:// client, or NULL. Borrowed. */
const struct nck_s3 *nck_http_s3(const nck_http *h);

/* A remote source of an object whose size and ETag a listing gave: no
 * HEAD, no probe (remote.c). Errors as nck_src_open_remote(). */
int nck_remote_open_known(nck_src **out, const char *url, const nck_remote_opts *opts,
			  uint64_t size, const char *etag, time_t mtime, nck_diag *diag);

/* Listing sources (rlist.c): recognized, and sealed object by object. */
bool nck_src_is_remote_listing(const nck_src *src);
int nck_remote_listing_seal(nck_src *src);

/* Requests sent so far (retries included). */
uint64_t nck_http_requests(const nck_http *h);

#endif
