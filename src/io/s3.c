/* SPDX-License-Identifier: MIT */
/*
 * S3 for the remote source (see s3_int.h): `s3://bucket/key` resolved to
 * an https (or endpoint) URL, the standard AWS configuration, and
 * Signature Version 4 computed here (libcrypto HMAC-SHA256) rather than by
 * CURLOPT_AWS_SIGV4: libcurl 7.88 signs x-amz-content-sha256 without
 * sending it, signs the query verbatim and does not encode the path, all
 * fixed only in 8.x (docs/DECISIONS.md).
 *
 * Configuration, first found wins: -o endpoint=, then $AWS_ENDPOINT_URL_S3,
 * $AWS_ENDPOINT_URL, the profile's endpoint_url; keys from
 * $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY/$AWS_SESSION_TOKEN, else the
 * profile ($AWS_PROFILE or "default") of $AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials; region from $AWS_REGION, $AWS_DEFAULT_REGION, the
 * profile of $AWS_CONFIG_FILE or ~/.aws/config ("[profile NAME]"), else
 * us-east-1. No keys at all: requests go unsigned (public buckets).
 *
 * Thread-safety: resolve once; signing is reentrant.
 */
#include "io/s3_int.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- INI files ------------------------------------------------------------------ */

/* Looks up `key` in section `section` of the INI file at `path` into out. */
static bool s3_ini(const char *path, const char *section, const char *key, char *out, size_t n)
{
	FILE *f = path ? fopen(path, "re") : NULL;
	char line[1024];
	bool in = false, found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = line, *eq, *end;

		while (isspace((unsigned char)*p))
			p++;
		end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*p == '#' || *p == ';' || !*p)
			continue;
		if (*p == '[') {
			char *close = strchr(p, ']');

			if (close) {
				*close = '\0';
				p++;
				while (isspace((unsigned char)*p))
					p++;
				in = strcmp(p, section) == 0;
			}
			continue;
		}
		if (!in || !(eq = strchr(p, '=')))
			continue;
		end = eq;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if ((size_t)(end - p) != strlen(key) || strncmp(p, key, (size_t)(end - p)) != 0)
			continue;
		p = eq + 1;
		while (isspace((unsigned char)*p))
			p++;
		snprintf(out, n, "%s", p);
		found = true;
	}
	fclose(f);
	return found;
}

/* A file under ~/.aws unless the variable names one. */
static void s3_file(char *out, size_t n, const char *var, const char *name)
{
	const char *v = getenv(var), *home = getenv("HOME");

	if (v && *v)
		snprintf(out, n, "%s", v);
	else if (home && *home)
		snprintf(out, n, "%s/.aws/%s", home, name);
	else
		out[0] = '\0';
}

/* Copies the first set variable of names into out. */
static bool s3_env(char *out, size_t n, const char *a, const char *b)
{
	const char *v = getenv(a);

	if ((!v || !*v) && b)
		v = getenv(b);
	if (!v || !*v)
		return false;
	snprintf(out, n, "%s", v);
	return true;
}

/* ---- URLs ----------------------------------------------------------------------- */

static size_t s3_encode(char *out, size_t n, size_t at, const char *s, bool keep_slash);

/* Appends `s` URI-encoded (RFC 3986 unreserved kept; '/' kept if keep_slash). */
size_t nck_s3_encode(char *out, size_t n, size_t at, const char *s, bool keep_slash)
{
	return s3_encode(out, n, at, s, keep_slash);
}

static size_t s3_encode(char *out, size_t n, size_t at, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
			if (at + 1 < n)
				out[at] = (char)c;
			at++;
		} else {
			if (at + 3 < n) {
				out[at] = '%';
				out[at + 1] = hex[c >> 4];
				out[at + 2] = hex[c & 15];
			}
			at += 3;
		}
	}
	if (at < n)
		out[at] = '\0';
	return at;
}

int nck_s3_resolve(nck_s3 *s, const char *url, const nck_remote_opts *o, nck_diag *diag)
{
	const char *p = url + 5, *slash;
	char profile[128], cred_file[1024], conf_file[1024], section[160], endpoint[1024];
	size_t at;
	int n;

	memset(s, 0, sizeof(*s));
	if (strncasecmp(url, "s3://", 5) != 0)
		return nck_diag_set(diag, -EINVAL, url, -1, "expected s3://BUCKET/KEY");
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	if (slash == p || (size_t)(slash - p) >= sizeof(s->bucket) ||
	    strlen(*slash ? slash + 1 : slash) >= sizeof(s->key))
		return nck_diag_set(diag, -EINVAL, url, -1, "expected s3://BUCKET/KEY");
	memcpy(s->bucket, p, (size_t)(slash - p));
	s->bucket[slash - p] = '\0';
	snprintf(s->key, sizeof(s->key), "%s", *slash ? slash + 1 : "");
	if (!s3_env(profile, sizeof(profile), "AWS_PROFILE", NULL))
		snprintf(profile, sizeof(profile), "default");
	s3_file(cred_file, sizeof(cred_file), "AWS_SHARED_CREDENTIALS_FILE", "credentials");
	s3_file(conf_file, sizeof(conf_file), "AWS_CONFIG_FILE", "config");
	if (strcmp(profile, "default") == 0)
		snprintf(section, sizeof(section), "default");
	else
		snprintf(section, sizeof(section), "profile %s", profile);
	if (s3_env(s->key_id, sizeof(s->key_id), "AWS_ACCESS_KEY_ID", NULL)) {
		s3_env(s->secret, sizeof(s->secret), "AWS_SECRET_ACCESS_KEY", NULL);
		s3_env(s->token, sizeof(s->token), "AWS_SESSION_TOKEN", NULL);
	} else if (s3_ini(cred_file, profile, "aws_access_key_id", s->key_id, sizeof(s->key_id))) {
		s3_ini(cred_file, profile, "aws_secret_access_key", s->secret, sizeof(s->secret));
		s3_ini(cred_file, profile, "aws_session_token", s->token, sizeof(s->token));
	}
	if (s->key_id[0] && !s->secret[0])
		return nck_diag_set(diag, -EINVAL, url, -1, "an access key without a secret key");
	if (!s3_env(s->region, sizeof(s->region), "AWS_REGION", "AWS_DEFAULT_REGION") &&
	    !s3_ini(conf_file, section, "region", s->region, sizeof(s->region)))
		snprintf(s->region, sizeof(s->region), "us-east-1");
	endpoint[0] = '\0';
	if (o->endpoint && *o->endpoint)
		snprintf(endpoint, sizeof(endpoint), "%s", o->endpoint);
	else if (!s3_env(endpoint, sizeof(endpoint), "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"))
		s3_ini(conf_file, section, "endpoint_url", endpoint, sizeof(endpoint));
	n = strlen(endpoint) ? (int)strlen(endpoint) : 0;
	while (n > 0 && endpoint[n - 1] == '/')
		endpoint[--n] = '\0';
	/* A custom endpoint (MinIO, moto, radosgw) is addressed by path; AWS by
	 * virtual host unless asked, or unless the bucket has dots (TLS). */
	if (endpoint[0])
		n = snprintf(s->url, sizeof(s->url), "%s/%s/", endpoint, s->bucket);
	else if (o->path_style || strchr(s->bucket, '.'))
		n = snprintf(s->url, sizeof(s->url), "https://s3.%s.amazonaws.com/%s/", s->region,
			     s->bucket);
	else
		n = snprintf(s->url, sizeof(s->url), "https://%s.s3.%s.amazonaws.com/", s->bucket,
			     s->region);
	if (n < 0 || (size_t)n >= sizeof(s->url))
		return nck_diag_set(diag, -EINVAL, url, -1, "URL too long");
	/* The bucket's URL (listings): the object URL up to the key. */
	memcpy(s->base, s->url, (size_t)n + 1);
	/* ... and where it is listed: "ENDPOINT/BUCKET" path-style, "HOST/" virtual. */
	memcpy(s->list, s->url, (size_t)n + 1);
	if (endpoint[0] || o->path_style || strchr(s->bucket, '.'))
		s->list[n - 1] = '\0';
	at = s3_encode(s->url, sizeof(s->url), (size_t)n, s->key, true);
	if (at >= sizeof(s->url))
		return nck_diag_set(diag, -EINVAL, url, -1, "URL too long");
	return 0;
}

/* ---- SigV4 ------------------------------------------------------------------------ */

static void s3_hex(char *out, const unsigned char *d, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static void s3_hmac(unsigned char out[32], const void *key, size_t klen, const char *msg)
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

int nck_s3_sign(struct curl_slist **hdrs, const nck_s3 *s, const char *method, const char *url)
{
	const char *hp = strstr(url, "://"), *path;
	char host[512], date[17], day[9], creq[8192], sts[512], scope[160], sig[65], line[2400];
	unsigned char h[32], k1[32], k2[32], k3[32], k4[32];
	char hh[65], key[300];
	struct curl_slist *l = *hdrs, *t;
	struct tm tm;
	time_t now = time(NULL);
	size_t hl;
	int n;

	if (!s->key_id[0])
		return 0; /* anonymous */
	if (!hp)
		return -EINVAL;
	hp += 3;
	hl = strcspn(hp, "/?");
	path = hp + hl;
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, hp, hl);
	host[hl] = '\0';
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(day, date, 8);
	day[8] = '\0';
	/* The path is already encoded and the query, if any, already
	 * canonical (sorted, encoded, every name with '='): see s3list.c. */
	n = snprintf(creq, sizeof(creq),
		     "%s\n%.*s\n%s\nhost:%s\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:%s\n%s%s%s\n"
		     "host;x-amz-content-sha256;x-amz-date%s\nUNSIGNED-PAYLOAD",
		     method, *path && *path != '?' ? (int)strcspn(path, "?") : 1,
		     *path && *path != '?' ? path : "/", strchr(path, '?') ? strchr(path, '?') + 1 : "",
		     host, date,
		     s->token[0] ? "x-amz-security-token:" : "", s->token, s->token[0] ? "\n" : "",
		     s->token[0] ? ";x-amz-security-token" : "");
	if (n < 0 || (size_t)n >= sizeof(creq))
		return -EINVAL;
	SHA256((const unsigned char *)creq, (size_t)n, h);
	s3_hex(hh, h, 32);
	snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", day, s->region);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, scope, hh);
	snprintf(key, sizeof(key), "AWS4%s", s->secret);
	s3_hmac(k1, key, strlen(key), day);
	s3_hmac(k2, k1, 32, s->region);
	s3_hmac(k3, k2, 32, "s3");
	s3_hmac(k4, k3, 32, "aws4_request");
	s3_hmac(h, k4, 32, sts);
	s3_hex(sig, h, 32);
	memset(key, 0, sizeof(key));
	memset(k1, 0, sizeof(k1));
	memset(k4, 0, sizeof(k4));
#define ADD(...)                                              \
	do {                                                  \
		snprintf(line, sizeof(line), __VA_ARGS__);    \
		if (!(t = curl_slist_append(l, line)))        \
			return -ENOMEM;                       \
		l = t;                                        \
	} while (0)
	ADD("x-amz-date: %s", date);
	ADD("x-amz-content-sha256: UNSIGNED-PAYLOAD");
	if (s->token[0])
		ADD("x-amz-security-token: %s", s->token);
	ADD("Authorization: AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;"
	    "x-amz-content-sha256;x-amz-date%s, Signature=%s",
	    s->key_id, scope, s->token[0] ? ";x-amz-security-token" : "", sig);
#undef ADD
	memset(line, 0, sizeof(line));
	*hdrs = l;
	return 0;
}
