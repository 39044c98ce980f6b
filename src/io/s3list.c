/* SPDX-License-Identifier: MIT */
/*
 * ListObjectsV2 for the remote listing source (see s3_int.h): GET
 * BUCKET?continuation-token=T&list-type=2&prefix=P, page after page while
 * IsTruncated, each page parsed with expat. Query parameters are sent
 * sorted by name and percent-encoded (the signature covers them as sent).
 *
 * Only ListBucketResult/Contents/{Key, Size, ETag, LastModified},
 * IsTruncated and NextContinuationToken are read; anything else is
 * ignored. Text is collected per element with a bound, so a hostile page
 * cannot grow memory without limit (64 MiB a page at most, http.c).
 */
#include "io/s3_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/http_int.h"

#define LIST_MAX_OBJECTS 10000000u
#define LIST_TEXT_MAX 4096

struct nck_s3_page {
	nck_s3_object *objs;
	size_t n, cap;
	int depth;
	bool in_contents;
	char text[LIST_TEXT_MAX];
	size_t tlen;
	bool overflow;
	nck_s3_object cur;
	bool truncated;
	char next[1100];
	int err;
};

typedef nck_s3_page list_parse;

static void XMLCALL list_start(void *u, const XML_Char *name, const XML_Char **attrs)
{
	list_parse *p = u;

	(void)attrs;
	p->depth++;
	p->tlen = 0;
	p->overflow = false;
	if (p->depth == 2 && strcmp(name, "Contents") == 0) {
		p->in_contents = true;
		memset(&p->cur, 0, sizeof(p->cur));
	}
}

static void XMLCALL list_text(void *u, const XML_Char *s, int len)
{
	list_parse *p = u;

	if ((size_t)len > sizeof(p->text) - 1 - p->tlen) {
		p->overflow = true;
		return;
	}
	memcpy(p->text + p->tlen, s, (size_t)len);
	p->tlen += (size_t)len;
}

/* A decimal u64, all of s. */
static bool list_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

static void XMLCALL list_end(void *u, const XML_Char *name)
{
	list_parse *p = u;

	p->text[p->tlen] = '\0';
	if (p->in_contents && p->depth == 3) {
		if (p->overflow)
			p->err = -EBADMSG;
		else if (strcmp(name, "Key") == 0 && p->cur.key)
			p->err = -EBADMSG; /* two keys for one object */
		else if (strcmp(name, "Key") == 0 && !(p->cur.key = strdup(p->text)))
			p->err = -ENOMEM;
		else if (strcmp(name, "Size") == 0 && !list_u64(p->text, &p->cur.size))
			p->err = -EBADMSG;
		else if (strcmp(name, "ETag") == 0 && p->tlen < sizeof(p->cur.etag))
			memcpy(p->cur.etag, p->text, p->tlen + 1);
		else if (strcmp(name, "LastModified") == 0)
			p->cur.mtime = curl_getdate(p->text, NULL) > 0 ? curl_getdate(p->text, NULL) : 0;
	} else if (p->depth == 2 && strcmp(name, "Contents") == 0) {
		p->in_contents = false;
		if (!p->cur.key) {
			p->err = p->err ? p->err : -EBADMSG;
		} else if (p->n == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 256;
			nck_s3_object *o = cap <= LIST_MAX_OBJECTS ? realloc(p->objs, cap * sizeof(*o)) : NULL;

			if (!o) {
				free(p->cur.key);
				p->err = -ENOMEM;
			} else {
				p->objs = o;
				p->cap = cap;
			}
		}
		if (p->cur.key && p->n < p->cap)
			p->objs[p->n++] = p->cur;
		memset(&p->cur, 0, sizeof(p->cur));
	} else if (p->depth == 2 && strcmp(name, "IsTruncated") == 0) {
		p->truncated = strcmp(p->text, "true") == 0;
	} else if (p->depth == 2 && strcmp(name, "NextContinuationToken") == 0) {
		if (p->overflow || p->tlen >= sizeof(p->next))
			p->err = -EBADMSG;
		else
			memcpy(p->next, p->text, p->tlen + 1);
	}
	p->depth--;
	p->tlen = 0;
}

int nck_s3_parse_page(nck_s3_page *p, const char *body, size_t len)
{
	XML_Parser x = XML_ParserCreate(NULL);
	int rc = 0;

	if (!x)
		return -ENOMEM;
	p->next[0] = '\0';
	p->truncated = false;
	p->depth = 0;
	p->in_contents = false;
	p->err = 0;
	XML_SetUserData(x, p);
	XML_SetElementHandler(x, list_start, list_end);
	XML_SetCharacterDataHandler(x, list_text);
	if (len > INT32_MAX || XML_Parse(x, body, (int)len, 1) != XML_STATUS_OK)
		rc = -EBADMSG;
	XML_ParserFree(x);
	free(p->cur.key);
	p->cur.key = NULL;
	if (rc == 0 && p->err)
		rc = p->err;
	return rc;
}

nck_s3_page *nck_s3_page_new(void)
{
	return calloc(1, sizeof(nck_s3_page));
}

void nck_s3_page_free(nck_s3_page *p)
{
	if (!p)
		return;
	nck_s3_objects_free(p->objs, p->n);
	free(p->cur.key);
	free(p);
}

size_t nck_s3_page_count(const nck_s3_page *p)
{
	return p->n;
}

int nck_s3_list(nck_s3_object **out, size_t *n_out, struct nck_http *h, const char *display,
		nck_diag *diag)
{
	const nck_s3 *s = nck_http_s3(h);
	list_parse p = { 0 };
	char *url = NULL;
	size_t cap = 8192;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	if (!s || !(url = malloc(cap)))
		return nck_diag_set(diag, -ENOMEM, display, -1, "out of memory");
	for (unsigned page = 0;; page++) {
		size_t at = (size_t)snprintf(url, cap, "%s?", s->list);
		char *body;
		size_t len;

		if (p.next[0]) {
			at += (size_t)snprintf(url + at, cap - at, "continuation-token=");
			at = nck_s3_encode(url, cap, at, p.next, false);
			at += (size_t)snprintf(url + at, at < cap ? cap - at : 0, "&");
		}
		at += (size_t)snprintf(url + at, at < cap ? cap - at : 0, "list-type=2&prefix=");
		at = nck_s3_encode(url, cap, at, s->key, false);
		if (at >= cap) {
			rc = nck_diag_set(diag, -EINVAL, display, -1, "listing URL too long");
			break;
		}
		p.next[0] = '\0';
		p.truncated = false;
		if ((rc = nck_http_get_body(h, url, &body, &len, diag)) < 0)
			break;
		rc = nck_s3_parse_page(&p, body, len);
		free(body);
		if (rc < 0) {
			rc = nck_diag_set(diag, rc, display, -1, "listing page %u: %s", page + 1,
					  rc == -ENOMEM ? "out of memory" : "malformed ListBucketResult");
			break;
		}
		if (!p.truncated)
			break;
		if (!p.next[0]) {
			rc = nck_diag_set(diag, -EBADMSG, display, -1,
					  "listing page %u: truncated without a continuation token",
					  page + 1);
			break;
		}
	}
	free(url);
	free(p.cur.key);
	if (rc < 0) {
		nck_s3_objects_free(p.objs, p.n);
		return rc;
	}
	*out = p.objs;
	*n_out = p.n;
	return 0;
}

void nck_s3_objects_free(nck_s3_object *objs, size_t n)
{
	for (size_t i = 0; objs && i < n; i++)
		free(objs[i].key);
	free(objs);
}
