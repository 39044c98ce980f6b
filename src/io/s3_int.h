/* SPDX-License-Identifier: MIT */
/*
 * S3 addressing, configuration and SigV4 signing for the remote source
 * (s3.c). Internal to src/io.
 */
#ifndef NCK_IO_S3_INT_H
#define NCK_IO_S3_INT_H

#include <curl/curl.h>

#include "io/remote.h"

/* A resolved s3:// object. Holds secrets: wiped by its owner. */
typedef struct nck_s3 {
	char bucket[256];
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

#endif
