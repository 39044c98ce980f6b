/* SPDX-License-Identifier: MIT */
/*
 * The remote source: an nck_src over an object served by HTTP(S) range
 * requests (libcurl), for `http://` and `https://` URLs, and `s3://BUCKET/KEY`
 * (an S3 or S3-compatible object, requests signed with SigV4: s3.c).
 *
 * At open, one HEAD gives the size and the validator (ETag, or the Hugging
 * Face X-Linked-Size / X-Linked-Etag of the first hop); a missing object or
 * refused credentials fail there with one line naming the URL (credentials
 * stripped) and the HTTP status. Every later request is a range GET
 * carrying If-Match, and each answer must be 206 with the Content-Range
 * asked for, the exact length and the same ETag: a changed object gives
 * EIO (and the source stays failed), never bytes of two versions.
 *
 * Reads go through a bounded block cache (remote.c): single flight per
 * block, runs of missing blocks fetched in one request, sequential readers
 * served by readahead workers with several requests in flight; small reads
 * that miss (tar headers at mount) fetch only their bytes. Curl easy
 * handles are pooled and reused by every thread (http.c).
 *
 * While the mount is being built every fetched range is recorded; sealing
 * the source (nck_src_remote_seal, once the catalog is built) writes them
 * to the cache directory keyed by URL + ETag + size, and the next open of
 * the unchanged object serves those reads from the file: it makes no data
 * request beyond its HEAD.
 *
 * Nothing secret is ever logged or named: messages and nck_src_name() use
 * the URL without user info and query (nck_url_redact).
 *
 * Thread-safety: after open, any thread (see src.h).
 */
#ifndef NCK_IO_REMOTE_H
#define NCK_IO_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/src.h"
#include "nemockpt/diag.h"

/* Options of a remote source; zero fields take the defaults. */
typedef struct nck_remote_opts {
	const char *token_file; /* bearer token file; NULL: $HF_TOKEN for Hugging Face hosts */
	const char *ca_file;    /* CA bundle for https; NULL: the system's */
	const char *cache_dir;  /* where fetched mount-time ranges persist; NULL: none */
	uint64_t cache_size;    /* bytes of blocks kept in memory; 0: 256 MiB */
	uint64_t disk_cache_size; /* bytes of blocks kept in files under cache_dir; 0: none */
	unsigned retries;       /* attempts after the first; 0: 5 (NCK_REMOTE_NO_RETRY: none) */
	unsigned timeout_s;     /* connect and stall timeout; 0: 30 s */
	const char *endpoint;   /* s3: an S3-compatible endpoint URL; NULL: AWS_ENDPOINT_URL*, AWS */
	bool path_style;        /* s3: path-style addressing on AWS */
} nck_remote_opts;

#define NCK_REMOTE_NO_RETRY 0xffffffffu

/* True for http://, https:// and s3:// URLs (case-insensitive scheme). */
bool nck_url_is_remote(const char *s);

/*
 * Copies `url` to out (size n) without its user info and query string:
 * what messages, info.json, findmnt and ps may show. Truncates to fit.
 */
void nck_url_redact(char *out, size_t n, const char *url);

/*
 * Opens the object at `url`. Errors (diag names the redacted URL): -ENOENT
 * (404, 410), -EACCES (401, 403), -ENOTSUP (a server that ignores ranges),
 * -EIO (network, other statuses), -EINVAL (a bad URL or option), -ENOMEM.
 */
int nck_src_open_remote(nck_src **out, const char *url, const nck_remote_opts *opts,
			nck_diag *diag);

/* A member of a listing source: an object under the prefix. */
typedef struct nck_remote_member {
	const char *path;  /* its key without the prefix (borrowed from the source) */
	uint64_t offset;   /* where its bytes start in the listing source */
	uint64_t size;
	int64_t mtime;
} nck_remote_member;

/*
 * Opens `url`, s3://BUCKET/PREFIX/ (or s3://BUCKET), as one source in
 * which every object under the prefix occupies [offset, offset+size), in
 * key order: a directory read as a tar without headers. Objects are
 * opened on their first read, with the listing's size and ETag (If-Match
 * as for any remote object). *members (owned by the source, valid until it
 * closes) and *n describe them; keys ending in '/' (folder markers) are
 * left out. Errors as nck_src_open_remote(), -ENOENT for an empty listing.
 */
int nck_src_open_remote_listing(nck_src **out, const nck_remote_member **members, size_t *n,
				const char *url, const nck_remote_opts *opts, nck_diag *diag);

/* True when `src` is a remote source. */
bool nck_src_is_remote(const nck_src *src);

/*
 * Ends the recording of mount-time reads and persists them (if a cache
 * directory was given and something new was fetched); a listing source
 * seals each object it opened. Not a remote source: no-op. Returns 0 or a negative errno (the caller warns).
 */
int nck_src_remote_seal(nck_src *src);

/* Requests sent so far (HEAD and GET, retries included): for tests. */
uint64_t nck_src_remote_requests(const nck_src *src);

#endif
