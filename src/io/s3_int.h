/* SPDX-License-Identifier: MIT */
/*
 * S3 addressing, configuration and SigV4 signing for the remote source
 * (s3.c). Internal to src/io.
 */
#ifndef NCK_IO_S3_INT_H
#define NCK_IO_S3_INT_H

#include <curl/curl.h>
#include <time.h>

#include "io/remote.h"

/* A resolved s3:// object. Holds secrets: wiped by its owner. */
typedef struct nck_s3 {
	char bucket[256];
	char key[1100];   /* the key (or prefix) as given, not encoded */
	char base[1400];  /* the bucket's URL, ending in '/' */
	char list[1400];  /* the URL a listing's query is appended to */
	char url[3072];   /* the object's http(s) URL, key percent-encoded */
	char region[64];
	char key_id[128]; /* "" : unsigned requests */
	char secret[256];
	char token[2048];
} nck_s3;

/*
 * Parses `url` (s3://BUCKET/KEY) and reads the AWS configuration (env,
 * ~/.aws/credentials and config, opts->endpoint, opts->path_style).
 * -EINVAL with diag on a bad URL or a key without a secret.
 */
int nck_s3_resolve(nck_s3 *s, const char *url, const nck_remote_opts *opts, nck_diag *diag);

/*
 * Appends the SigV4 headers (x-amz-date, x-amz-content-sha256,
 * x-amz-security-token, Authorization) of a `method` request to `url`
 * (no query) to *hdrs. No keys: nothing. -ENOMEM, -EINVAL.
 */
int nck_s3_sign(struct curl_slist **hdrs, const nck_s3 *s, const char *method, const char *url);

/* An object of a listing. */
typedef struct nck_s3_object {
	char *key;        /* full key (owned) */
	uint64_t size;
	char etag[256];   /* as listed (quotes kept) */
	time_t mtime;
} nck_s3_object;

struct nck_http;

/*
 * Lists every object under the client's key (taken as a prefix),
 * following continuation tokens. *out: malloc'd, freed with
 * nck_s3_objects_free. Errors: those of nck_http_get_body(), -EBADMSG (a
 * page that does not parse), -ENOMEM.
 */
int nck_s3_list(nck_s3_object **out, size_t *n_out, struct nck_http *h, const char *display,
		nck_diag *diag);

void nck_s3_objects_free(nck_s3_object *objs, size_t n);

/* A ListObjectsV2 parse in progress: objects of every page so far, and
 * the last page's IsTruncated and NextContinuationToken (s3list.c). */
typedef struct nck_s3_page nck_s3_page;
nck_s3_page *nck_s3_page_new(void);
void nck_s3_page_free(nck_s3_page *p);
size_t nck_s3_page_count(const nck_s3_page *p);
/* Parses one page, appending its objects. -EBADMSG (bad XML, a Contents
 * without a Key, a bad Size, a text over 4 KiB), -ENOMEM. */
int nck_s3_parse_page(nck_s3_page *p, const char *body, size_t len);

/* Appends `s` percent-encoded (RFC 3986; '/' kept if keep_slash) at
 * out[at]; returns the length it needs (>= n: truncated). */
size_t nck_s3_encode(char *out, size_t n, size_t at, const char *s, bool keep_slash);

#endif
