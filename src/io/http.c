/* SPDX-License-Identifier: MIT */
/*
 * HTTP for the remote source (see http_int.h), through libcurl 7.88.
 *
 * Connections: easy handles live in a pool (a stack under a mutex); a
 * request takes one, uses it on its thread alone and gives it back, so
 * keep-alive connections are reused across threads without ever sharing a
 * handle between two at once (libcurl-thread.md). A share handle with
 * locks carries the DNS and TLS session caches; connections are not
 * shared through it (not supported between concurrent threads).
 *
 * Retries: connect failures, timeouts, resets, short bodies, 5xx and 429
 * are retried up to `retries` times with capped exponential backoff and
 * full jitter (Retry-After honoured up to the cap); every other answer is
 * final. Ranges are never sent with Accept-Encoding (a range applies to the
 * encoded form), and only one range at a time (no multipart answers).
 *
 * Secrets: the bearer token goes through CURLOPT_XOAUTH2_BEARER, so libcurl
 * holds it back on a redirect to another host; user info in the URL is
 * curl's to use. Messages only ever name the redacted URL.
 */
#include "io/http_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "io/s3_int.h"
#include "nemockpt/log.h"

#define HTTP_POOL_MAX 64
#define HTTP_BACKOFF_BASE_MS 50u
#define HTTP_BACKOFF_CAP_MS 2000u
#define HTTP_RETRY_AFTER_CAP_S 10u
/* libcurl's receive buffer: 16 KiB by default; block runs are 2 MiB, so larger
 * reads mean fewer recv() calls and write callbacks per run. */
#define HTTP_RECV_BUFFER (512L * 1024L)

struct nck_http {
	char *url;
	char *display;
	char *token;     /* bearer token or NULL (owned, wiped on free) */
	char *ca_file;
	unsigned retries;
	unsigned timeout_s;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[HTTP_POOL_MAX];
	size_t n_pool;
	atomic_uint_fast64_t requests;
	nck_s3 *s3;      /* s3:// objects: addressing and keys (owned, wiped on free) */
};

/* What one response told (the last hop's, except X-Linked-*). */
typedef struct http_resp {
	long status;
	bool have_range;
	uint64_t range_first, range_last, range_total; /* total UINT64_MAX: "*" */
	bool have_length;
	uint64_t length;
	char etag[256];
	char linked_etag[256];
	bool have_linked_size;
	uint64_t linked_size;
	time_t mtime;
	unsigned retry_after;
	unsigned char *dst; /* body destination (whole bodies) */
	const struct iovec *iov; /* or these buffers in turn (ranges) */
	int iovcnt, iov_i;
	size_t iov_off;     /* bytes of iov[iov_i] filled */
	size_t cap, got;
	bool overflow;
	bool grow;          /* whole bodies (listings): dst grows up to cap */
	size_t alloc;
} http_resp;

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc;

static void http_global_init(void)
{
	http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- header parsing ------------------------------------------------------------ */

/* Parses a decimal u64 at *p, advancing it. False when there is none or it overflows. */
static bool http_u64(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

/* Copies a header value (trimmed) into out. */
static void http_value(char *out, size_t n, const char *v, size_t len)
{
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	while (len && *v == ' ')
		v++, len--;
	if (len >= n)
		len = n - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

/* "bytes FIRST-LAST/TOTAL" (TOTAL may be "*"). */
static void http_content_range(http_resp *r, const char *v)
{
	const char *p = v;

	if (strncasecmp(p, "bytes ", 6) != 0)
		return;
	p += 6;
	if (!http_u64(&p, &r->range_first) || *p++ != '-' || !http_u64(&p, &r->range_last) ||
	    *p++ != '/')
		return;
	if (*p == '*')
		r->range_total = UINT64_MAX;
	else if (!http_u64(&p, &r->range_total))
		return;
	r->have_range = r->range_first <= r->range_last;
}

/* CURLOPT_HEADERFUNCTION: one header line. A status line starts a new
 * response (a redirect hop): its fields are reset, X-Linked-* kept. */
static size_t http_header_cb(char *line, size_t size, size_t n, void *payload)
{
	http_resp *r = payload;
	size_t len = size * n;
	char v[300];
	const char *colon = memchr(line, ':', len);
	size_t klen;

	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		r->have_range = r->have_length = false;
		r->etag[0] = '\0';
		r->mtime = 0;
		r->retry_after = 0;
		return len;
	}
	if (!colon)
		return len;
	klen = (size_t)(colon - line);
	http_value(v, sizeof(v), colon + 1, len - klen - 1);
#define IS(name) (klen == sizeof(name) - 1 && strncasecmp(line, name, klen) == 0)
	if (IS("content-range")) {
		http_content_range(r, v);
	} else if (IS("content-length")) {
		const char *p = v;

		r->have_length = http_u64(&p, &r->length) && *p == '\0';
	} else if (IS("etag")) {
		http_value(r->etag, sizeof(r->etag), colon + 1, len - klen - 1);
	} else if (IS("x-linked-etag")) {
		http_value(r->linked_etag, sizeof(r->linked_etag), colon + 1, len - klen - 1);
	} else if (IS("x-linked-size")) {
		const char *p = v;

		r->have_linked_size = http_u64(&p, &r->linked_size) && *p == '\0';
	} else if (IS("last-modified")) {
		time_t t = curl_getdate(v, NULL);

		r->mtime = t > 0 ? t : 0;
	} else if (IS("retry-after")) {
		const char *p = v;
		uint64_t s;

		if (http_u64(&p, &s))
			r->retry_after = s > HTTP_RETRY_AFTER_CAP_S ? HTTP_RETRY_AFTER_CAP_S : (unsigned)s;
	}
#undef IS
	return len;
}

/* CURLOPT_WRITEFUNCTION: the body goes to r->dst while it fits; more than
 * asked aborts the transfer (a 200 with the whole object, a long body). */
static size_t http_write_cb(char *data, size_t size, size_t n, void *payload)
{
	http_resp *r = payload;
	size_t len = size * n;

	if (r->grow) {
		if (len > r->cap - r->got) {
			r->overflow = true;
			return 0;
		}
		if (r->got + len > r->alloc) {
			size_t a = r->alloc ? r->alloc : 65536;
			unsigned char *p;

			while (a < r->got + len)
				a *= 2;
			if (!(p = realloc(r->dst, a)))
				return 0;
			r->dst = p;
			r->alloc = a;
		}
		memcpy(r->dst + r->got, data, len);
		r->got += len;
		return len;
	}
	if (!r->iov)
		return len <= 65536 ? len : 0; /* error bodies: read a little, then drop */
	if (len > r->cap - r->got) {
		r->overflow = true;
		return 0;
	}
	/* cap is the iovecs' total, so the loop ends inside them. */
	for (size_t at = 0; at < len;) {
		const struct iovec *v = &r->iov[r->iov_i];
		size_t k = v->iov_len - r->iov_off;

		if (k > len - at)
			k = len - at;
		memcpy((unsigned char *)v->iov_base + r->iov_off, data + at, k);
		at += k;
		r->iov_off += k;
		if (r->iov_off == v->iov_len && r->iov_i + 1 < r->iovcnt) {
			r->iov_i++;
			r->iov_off = 0;
		}
	}
	r->got += len;
	return len;
}

/* ---- handles ------------------------------------------------------------------- */

static void http_share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *u)
{
	nck_http *h = u;

	(void)c;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[data]);
}

static void http_share_unlock(CURL *c, curl_lock_data data, void *u)
{
	nck_http *h = u;

	(void)c;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[data]);
}

/* A handle from the pool, or a new one with the client's settings. */
static CURL *http_take(nck_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->n_pool)
		c = h->pool[--h->n_pool];
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		return c;
	if (!(c = curl_easy_init()))
		return NULL;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* A signed S3 request is for one host: a redirect is not followed. */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, h->s3 ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)h->timeout_s);
	/* A stall (no byte for timeout_s) ends the transfer; a slow but
	 * moving one does not. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)h->timeout_s);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
	curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "nemockpt/" NCK_VERSION);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (h->token) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, h->token);
	}
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb);
	return c;
}

/* Gives a handle back (a failed transfer's too: curl drops a broken connection). */
static void http_give(nck_http *h, CURL *c)
{
	pthread_mutex_lock(&h->pool_lock);
	if (h->n_pool < HTTP_POOL_MAX) {
		h->pool[h->n_pool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

/* Reads a token file: its first line, trimmed. */
static int http_read_token(char **out, const char *path, nck_diag *diag)
{
	FILE *f = fopen(path, "re");
	char buf[4096];
	size_t n;

	if (!f)
		return nck_diag_set(diag, -EINVAL, path, -1, "token file: %s", strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	while (n && buf[0] == ' ')
		memmove(buf, buf + 1, n--);
	n = strlen(buf);
	while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	if (!buf[0])
		return nck_diag_set(diag, -EINVAL, path, -1, "token file is empty");
	*out = strdup(buf);
	memset(buf, 0, sizeof(buf));
	return *out ? 0 : nck_diag_set(diag, -ENOMEM, path, -1, "out of memory");
}

/* True for huggingface.co, its subdomains and the host of $HF_ENDPOINT:
 * the hosts HF_TOKEN is meant for. */
static bool http_is_hub(const char *url)
{
	const char *ep = getenv("HF_ENDPOINT");
	const char *host = strstr(url, "://");
	size_t hl;

	if (!host)
		return false;
	host += 3;
	if (strchr(host, '@') && strchr(host, '@') < host + strcspn(host, "/"))
		host = strchr(host, '@') + 1;
	hl = strcspn(host, "/:?#");
	if ((hl == 14 && strncasecmp(host, "huggingface.co", 14) == 0) ||
	    (hl > 15 && strncasecmp(host + hl - 15, ".huggingface.co", 15) == 0))
		return true;
	if (ep && (ep = strstr(ep, "://")) != NULL) {
		ep += 3;
		return strcspn(ep, "/:?#") == hl && strncasecmp(ep, host, hl) == 0;
	}
	return false;
}

int nck_http_new(nck_http **out, const char *url, const char *display, const nck_remote_opts *o,
		 nck_diag *diag)
{
	nck_http *h;
	int rc;

	*out = NULL;
	pthread_once(&http_once, http_global_init);
	if (http_global_rc != CURLE_OK)
		return nck_diag_set(diag, -EIO, display, -1, "libcurl: %s",
				    curl_easy_strerror(http_global_rc));
	if (!(h = calloc(1, sizeof(*h))))
		return nck_diag_set(diag, -ENOMEM, display, -1, "out of memory");
	pthread_mutex_init(&h->pool_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	h->retries = o->retries == NCK_REMOTE_NO_RETRY ? 0 : o->retries ? o->retries : 5;
	h->timeout_s = o->timeout_s ? o->timeout_s : 30;
	if (strncasecmp(url, "s3://", 5) == 0) {
		if (!(h->s3 = calloc(1, sizeof(*h->s3)))) {
			nck_http_free(h);
			return nck_diag_set(diag, -ENOMEM, display, -1, "out of memory");
		}
		if ((rc = nck_s3_resolve(h->s3, url, o, diag)) < 0) {
			nck_http_free(h);
			return rc;
		}
		url = h->s3->url;
	}
	h->url = strdup(url);
	h->display = strdup(display);
	h->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	h->share = curl_share_init();
	if (!h->url || !h->display || (o->ca_file && !h->ca_file) || !h->share) {
		nck_http_free(h);
		return nck_diag_set(diag, -ENOMEM, display, -1, "out of memory");
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, http_share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, http_share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (h->s3) {
		/* S3 authenticates by signature, never by bearer token. */
	} else if (o->token_file) {
		if ((rc = http_read_token(&h->token, o->token_file, diag)) < 0) {
			nck_http_free(h);
			return rc;
		}
	} else if (getenv("HF_TOKEN") && *getenv("HF_TOKEN") && http_is_hub(url)) {
		if (!(h->token = strdup(getenv("HF_TOKEN")))) {
			nck_http_free(h);
			return nck_diag_set(diag, -ENOMEM, display, -1, "out of memory");
		}
	}
	*out = h;
	return 0;
}

void nck_http_free(nck_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_pool; i++)
		curl_easy_cleanup(h->pool[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	pthread_mutex_destroy(&h->pool_lock);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	if (h->token) {
		memset(h->token, 0, strlen(h->token));
		free(h->token);
	}
	if (h->url) {
		memset(h->url, 0, strlen(h->url));
		free(h->url);
	}
	if (h->s3) {
		memset(h->s3, 0, sizeof(*h->s3));
		free(h->s3);
	}
	free(h->display);
	free(h->ca_file);
	free(h);
}

uint64_t nck_http_requests(const nck_http *h)
{
	return atomic_load(&((nck_http *)h)->requests);
}

/* ---- requests ------------------------------------------------------------------ */

/* The outcome of one attempt. */
typedef enum http_verdict {
	HTTP_OK,
	HTTP_RETRY,
	HTTP_FAIL,
} http_verdict;

/* True for transport failures worth another attempt. */
static bool http_transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* True for statuses worth another attempt: 429 and 5xx (RFC 9110 §15.6). */
static bool http_status_transient(long status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

/* Sleeps before attempt `attempt` + 1: random(0, min(cap, base * 2^attempt)),
 * at least Retry-After (capped). */
static void http_backoff(unsigned attempt, unsigned retry_after)
{
	unsigned ceil_ms = HTTP_BACKOFF_BASE_MS << (attempt < 10 ? attempt : 10);
	unsigned ms;
	struct timespec ts;

	if (ceil_ms > HTTP_BACKOFF_CAP_MS)
		ceil_ms = HTTP_BACKOFF_CAP_MS;
	ms = (unsigned)((uint64_t)random() % (ceil_ms + 1));
	if (retry_after * 1000u > ms)
		ms = retry_after * 1000u;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Runs one transfer on a pooled handle; *cc and r->status tell how it went. */
static CURLcode http_perform(nck_http *h, http_resp *r, bool head, const char *range,
			     struct curl_slist *hdrs, const char *url)
{
	CURL *c;
	CURLcode cc;
	struct curl_slist *signed_hdrs = NULL;

	if (h->s3) {
		/* A fresh signature per attempt: its date must be current. */
		for (struct curl_slist *p = hdrs; p; p = p->next) {
			struct curl_slist *t = curl_slist_append(signed_hdrs, p->data);

			if (!t) {
				curl_slist_free_all(signed_hdrs);
				return CURLE_OUT_OF_MEMORY;
			}
			signed_hdrs = t;
		}
		if (nck_s3_sign(&signed_hdrs, h->s3, head ? "HEAD" : "GET", url ? url : h->url) < 0) {
			curl_slist_free_all(signed_hdrs);
			return CURLE_OUT_OF_MEMORY;
		}
		hdrs = signed_hdrs;
	}
	if (!(c = http_take(h))) {
		curl_slist_free_all(signed_hdrs);
		return CURLE_OUT_OF_MEMORY;
	}
	atomic_fetch_add(&h->requests, 1);
	curl_easy_setopt(c, CURLOPT_URL, url ? url : h->url);
	curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
	if (!head)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_RANGE, range);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	/* Nothing of this request may stick to the pooled handle. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_RANGE, NULL);
	http_give(h, c);
	if (signed_hdrs) {
		for (struct curl_slist *p = signed_hdrs; p; p = p->next)
			memset(p->data, 0, strlen(p->data));
		curl_slist_free_all(signed_hdrs);
	}
	return cc;
}

/* Maps a final HTTP status of the HEAD to an errno. */
static int http_status_errno(long status)
{
	if (status == 404 || status == 410)
		return -ENOENT;
	if (status == 401 || status == 403)
		return -EACCES;
	return -EIO;
}

int nck_http_head(nck_http *h, nck_http_meta *m, nck_diag *diag)
{
	http_resp r;
	CURLcode cc;

	memset(m, 0, sizeof(*m));
	for (unsigned attempt = 0;; attempt++) {
		memset(&r, 0, sizeof(r));
		cc = http_perform(h, &r, true, NULL, NULL, NULL);
		if (cc == CURLE_OK && r.status >= 200 && r.status < 300)
			break;
		if ((cc != CURLE_OK ? http_transient(cc) : http_status_transient(r.status)) &&
		    attempt < h->retries) {
			http_backoff(attempt, r.retry_after);
			continue;
		}
		if (cc == CURLE_OUT_OF_MEMORY)
			return nck_diag_set(diag, -ENOMEM, h->display, -1, "out of memory");
		if (cc != CURLE_OK)
			return nck_diag_set(diag, -EIO, h->display, -1, "%s", curl_easy_strerror(cc));
		return nck_diag_set(diag, http_status_errno(r.status), h->display, -1, "HTTP %ld",
				    r.status);
	}
	if (r.have_linked_size) {
		m->size = r.linked_size;
	} else if (r.have_length) {
		m->size = r.length;
	} else {
		return nck_diag_set(diag, -EIO, h->display, -1,
				    "HTTP %ld without a Content-Length: the size is unknown",
				    r.status);
	}
	if (r.linked_etag[0]) {
		snprintf(m->etag, sizeof(m->etag), "%s", r.linked_etag);
		m->etag_linked = true;
	} else {
		snprintf(m->etag, sizeof(m->etag), "%s", r.etag);
	}
	m->mtime = r.mtime;
	return 0;
}

/* Judges one GET attempt of [off, off+len). */
static http_verdict http_judge(nck_http *h, CURLcode cc, const http_resp *r, uint64_t off,
			       size_t len, const char *etag, bool linked, int *err)
{
	*err = -EIO;
	if (cc == CURLE_OUT_OF_MEMORY) {
		*err = -ENOMEM;
		return HTTP_FAIL;
	}
	if (r->status == 200 || (cc == CURLE_WRITE_ERROR && r->status == 200)) {
		*err = -ENOTSUP;
		return HTTP_FAIL;
	}
	if (r->status == 412) {
		*err = -ESTALE;
		return HTTP_FAIL;
	}
	if (cc != CURLE_OK && r->status != 206)
		return http_transient(cc) ? HTTP_RETRY : HTTP_FAIL;
	if (r->status != 206)
		return http_status_transient(r->status) ? HTTP_RETRY : HTTP_FAIL;
	if (etag[0] && !linked && r->etag[0] && strcmp(r->etag, etag) != 0) {
		*err = -ESTALE;
		return HTTP_FAIL;
	}
	if (!r->have_range || r->range_first != off || r->range_last - r->range_first + 1 != len) {
		nck_log(NCK_LOG_WARN, "%s: bytes %" PRIu64 "+%zu: the answer's Content-Range differs",
			h->display, off, len);
		return HTTP_FAIL;
	}
	/* A reset or a short body: curl says so, or the count does. */
	if (cc != CURLE_OK || r->got != len || r->overflow)
		return cc == CURLE_OK || http_transient(cc) || r->got != len ? HTTP_RETRY : HTTP_FAIL;
	return HTTP_OK;
}

int nck_http_get(nck_http *h, void *buf, uint64_t off, size_t len, const char *etag, bool linked)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };

	return nck_http_getv(h, &v, 1, off, etag, linked);
}

int nck_http_getv(nck_http *h, const struct iovec *iov, int iovcnt, uint64_t off, const char *etag,
		  bool linked)
{
	size_t len = 0;

	char range[64], ifmatch[300];
	struct curl_slist *hdrs = NULL, *more;
	http_resp r;
	CURLcode cc;
	int err = -EIO;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len == 0)
		return 0;
	snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, off, off + len - 1);
	/* No Accept-Encoding: libcurl sends none unless asked. */
	if (etag[0] && !linked) {
		snprintf(ifmatch, sizeof(ifmatch), "If-Match: %s", etag);
		if (!(hdrs = curl_slist_append(NULL, ifmatch)))
			return -ENOMEM;
	}
	if (!(more = curl_slist_append(hdrs, "Accept-Encoding:"))) {
		curl_slist_free_all(hdrs);
		return -ENOMEM;
	}
	hdrs = more;
	for (unsigned attempt = 0;; attempt++) {
		http_verdict v;

		memset(&r, 0, sizeof(r));
		r.iov = iov;
		r.iovcnt = iovcnt;
		r.cap = len;
		cc = http_perform(h, &r, false, range, hdrs, NULL);
		v = http_judge(h, cc, &r, off, len, etag, linked, &err);
		if (v == HTTP_OK) {
			err = 0;
			break;
		}
		if (v == HTTP_RETRY && attempt < h->retries) {
			nck_log(NCK_LOG_DEBUG, "%s: bytes %" PRIu64 "+%zu: %s (HTTP %ld): retrying",
				h->display, off, len, curl_easy_strerror(cc), r.status);
			http_backoff(attempt, r.retry_after);
			continue;
		}
		if (err == -ESTALE)
			nck_log(NCK_LOG_ERROR, "%s: the object changed on the server (ETag %s): "
					     "reads fail with EIO", h->display, etag);
		else if (err != -ENOTSUP) /* the caller says it, in its words */
			nck_log(NCK_LOG_ERROR, "%s: bytes %" PRIu64 "+%zu: %s (HTTP %ld) after %u attempts",
				h->display, off, len, cc == CURLE_OK ? "bad answer" : curl_easy_strerror(cc),
				r.status, attempt + 1);
		break;
	}
	curl_slist_free_all(hdrs);
	return err;
}

int nck_http_get_body(nck_http *h, const char *url, char **body, size_t *len, nck_diag *diag)
{
	http_resp r;
	CURLcode cc;

	*body = NULL;
	*len = 0;
	for (unsigned attempt = 0;; attempt++) {
		memset(&r, 0, sizeof(r));
		r.grow = true;
		r.cap = 64u << 20;
		cc = http_perform(h, &r, false, NULL, NULL, url);
		if (cc == CURLE_OK && r.status == 200)
			break;
		free(r.dst);
		if ((cc != CURLE_OK ? http_transient(cc) : http_status_transient(r.status)) &&
		    attempt < h->retries) {
			http_backoff(attempt, r.retry_after);
			continue;
		}
		if (cc == CURLE_OUT_OF_MEMORY)
			return nck_diag_set(diag, -ENOMEM, h->display, -1, "out of memory");
		if (cc != CURLE_OK)
			return nck_diag_set(diag, -EIO, h->display, -1, "listing: %s",
					    curl_easy_strerror(cc));
		return nck_diag_set(diag, http_status_errno(r.status), h->display, -1,
				    "listing: HTTP %ld", r.status);
	}
	*body = (char *)r.dst;
	*len = r.got;
	if (!*body && !(*body = malloc(1)))
		return nck_diag_set(diag, -ENOMEM, h->display, -1, "out of memory");
	return 0;
}

const nck_s3 *nck_http_s3(const nck_http *h)
{
	return h->s3;
}
