/* SPDX-License-Identifier: MIT */
/*
 * The remote source (see remote.h): block cache, readahead and the record
 * of mount-time reads over the HTTP client of http.c.
 *
 * Blocks: the object is cut into blocks of `bs` bytes (64 KiB, more for
 * objects over 64 GiB so the table stays under 2^20 entries). Each block
 * has a state, EMPTY, LOADING or READY, as in gzsrc.c: the first reader of
 * an EMPTY block claims it and the EMPTY blocks after it that the read
 * also needs (a run, at most 2 MiB), fetches the run with one request
 * outside the lock and publishes every block; other readers wait on the
 * condition variable. A failed fetch puts the blocks back to EMPTY (nothing
 * wrong is cached; waiters try themselves). READY blocks sit in an LRU list
 * and unreferenced ones are evicted past the budget.
 *
 * Small reads (under 16 KiB) while the mount is built fetch exactly their
 * bytes, uncached, unless their blocks are cached or on their way: the tar
 * walk reads one header per member and must not pull a block for each.
 *
 * Readahead: a read that starts where the previous one ended claims the
 * EMPTY blocks of the next 32 MiB (ending on a run boundary, so that past
 * the first its requests are whole runs) as runs and queues them for up to 4
 * worker threads (started as runs are queued, gone after 5 s idle), so one
 * sequential reader keeps several requests in flight; a view file's reader,
 * whose source runs jump between members, has the vfs ask for them ahead
 * instead (willneed, the same queue).
 *
 * Loans: a reply is written from the blocks themselves (remote_map lends
 * them referenced, so eviction skips them, until the reply is written);
 * pread copies out one block at a time.
 *
 * Record: until sealed, every fetched range (up to 64 MiB) is kept; seal
 * writes them to CACHE_DIR/remote-<fnv64 of URL>.ranges with the redacted
 * URL, the ETag and the size, and a CRC-32 over all. An open that finds a
 * file matching its HEAD serves reads inside its ranges from memory.
 *
 * Thread-safety: `lock` guards block states, the LRU list, the queue and
 * the record; fetches run outside it.
 */
#include "io/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "io/afile.h"
#include "io/http_int.h"
#include "io/rdisk.h"
#include "nemockpt/log.h"
#include "util/fnv.h"
#include "util/grow.h"

#define REMOTE_BLOCK_MIN (64u * 1024u)
#define REMOTE_MAX_BLOCKS (1u << 20)
#define REMOTE_RUN_BYTES (2u << 20)
#define REMOTE_SMALL (16u * 1024u)
#define REMOTE_RA_BYTES (32u << 20)
#define REMOTE_WORKERS 4
/* A readahead worker with nothing to do for this long exits (a listing has
 * a source per object: only those being read keep threads). */
#define REMOTE_WORKER_IDLE_S 5
#define REMOTE_QUEUE 64
#define REMOTE_RECORD_MAX (64u << 20)
#define REMOTE_CACHE_DEFAULT (256u << 20)
#define REMOTE_MAGIC "NCKRNG1\n"

typedef enum rb_state {
	RB_EMPTY = 0,
	RB_LOADING = 1,
	RB_READY = 2,
} rb_state;

typedef struct rblock {
	rb_state state;
	uint32_t refs;
	unsigned char *data;
	struct rblock *prev, *next;
} rblock;

/* A recorded range. */
typedef struct rrange {
	uint64_t off;
	size_t len;
	unsigned char *data;
} rrange;

/* A queued readahead run. */
typedef struct rrun {
	uint64_t first;
	uint32_t n;
} rrun;

typedef struct remote {
	nck_http *http;
	char *display;
	char *url_key;          /* hex FNV-1a 64 of the full URL */
	char *cache_dir;
	nck_http_meta meta;
	struct stat st;
	uint64_t size;
	uint64_t bs;
	uint64_t n_blocks;
	uint64_t budget, used;
	rblock *blocks;
	rblock *head, *tail;
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* a block left LOADING */
	pthread_cond_t work;     /* the queue got a run, or stop */
	rrun queue[REMOTE_QUEUE];
	size_t q_head, q_len;
	bool stop;
	pthread_cond_t gone;     /* a worker exited */
	size_t n_workers;        /* readahead workers alive (lock) */
	size_t n_idle;           /* ... of them waiting for a run (lock) */
	pthread_t exited[REMOTE_WORKERS]; /* workers that returned, not yet joined (lock) */
	size_t n_exited;
	atomic_uint_fast64_t last_end; /* where the previous read ended */
	atomic_bool changed;     /* the object changed: every read fails */
	/* record of fetched ranges (lock) */
	rrange *rec;
	size_t n_rec, cap_rec;
	uint64_t rec_bytes;
	size_t n_loaded;         /* the first n_loaded came from the file (sorted) */
	bool sealed;
	nck_rdisk *disk;         /* blocks kept on disk, or NULL */
	uint64_t disk_key;       /* 64 bits of SHA-256 of URL, ETag and size */
} remote;

static const nck_src_vtab remote_vtab;

/* ---- URLs ---------------------------------------------------------------------- */

bool nck_url_is_remote(const char *s)
{
	return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0 ||
	       strncasecmp(s, "s3://", 5) == 0;
}

void nck_url_redact(char *out, size_t n, const char *url)
{
	const char *p = strstr(url, "://");
	const char *auth = p ? p + 3 : url;
	size_t alen = strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', alen);
	size_t plen;

	if (!n)
		return;
	if (at) {
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	plen = strcspn(auth + alen, "?#");
	snprintf(out, n, "%.*s%.*s%.*s", p ? (int)(p + 3 - url) : 0, url, (int)alen, auth, (int)plen,
		 auth + alen);
}

/* FNV-1a 64 of `s` as 16 hex digits into out[17]. */
static void remote_fnv(char out[17], const char *s)
{
	snprintf(out, 17, "%016" PRIx64, nck_fnv1a_str(NCK_FNV1A_INIT, s));
}

/* ---- record ----------------------------------------------------------------------- */

/* Keeps a copy of a fetched range while the mount is being built (lock held). */
static void remote_record(remote *r, const struct iovec *iov, int iovcnt, uint64_t off, size_t len)
{
	size_t at = 0;
	rrange *rr;

	if (r->sealed || !r->cache_dir || len > REMOTE_RECORD_MAX - r->rec_bytes)
		return;
	if (nck_grow((void **)&r->rec, &r->cap_rec, r->n_rec, sizeof(*r->rec), 64) < 0)
		return;
	rr = &r->rec[r->n_rec];
	if (!(rr->data = malloc(len ? len : 1)))
		return;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(rr->data + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	rr->off = off;
	rr->len = len;
	r->n_rec++;
	r->rec_bytes += len;
}

/* Serves [off, off+len) from a loaded range if one holds it all (buf NULL:
 * only says whether one does). The loaded ranges are sorted by offset and
 * do not overlap. */
static bool remote_from_record_locked(remote *r, void *buf, size_t len, uint64_t off)
{
	size_t lo = 0, hi = r->n_loaded;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->rec[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;
	{
		const rrange *rr = &r->rec[lo - 1];

		if (off - rr->off > rr->len || len > rr->len - (off - rr->off))
			return false;
		if (buf)
			memcpy(buf, rr->data + (off - rr->off), len);
	}
	return true;
}

/* The same; takes the lock while the record can still grow (the mount is
 * being built: workers append), none once sealed (immutable). */
static bool remote_from_record(remote *r, void *buf, size_t len, uint64_t off)
{
	bool ok;

	if (r->sealed)
		return remote_from_record_locked(r, buf, len, off);
	pthread_mutex_lock(&r->lock);
	ok = remote_from_record_locked(r, buf, len, off);
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static int remote_cmp_range(const void *a, const void *b)
{
	const rrange *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* The record file's path. */
static void remote_record_path(const remote *r, char *out, size_t n)
{
	snprintf(out, n, "%s/remote-%s.ranges", r->cache_dir, r->url_key);
}

/* The header that must match: redacted URL, ETag, size. */
static int remote_record_key(const remote *r, char *out, size_t n)
{
	return snprintf(out, n, "%s\n%s\n%" PRIu64 "\n", r->display, r->meta.etag, r->size);
}

/* Sorts the ranges and merges overlapping or touching ones into their
 * union (lock held): all were fetched under one ETag, so they agree. A
 * merge that cannot get memory drops the later range (only a miss later). */
static void remote_record_normalize(remote *r)
{
	size_t w = 0;

	qsort(r->rec, r->n_rec, sizeof(*r->rec), remote_cmp_range);
	for (size_t i = 0; i < r->n_rec; i++) {
		rrange *cur = &r->rec[i], *prev = w ? &r->rec[w - 1] : NULL;
		uint64_t pend = prev ? prev->off + prev->len : 0, cend = cur->off + cur->len;
		unsigned char *grown;

		if (!prev || cur->off > pend) {
			r->rec[w++] = *cur;
			continue;
		}
		if (cend > pend && (grown = realloc(prev->data, (size_t)(cend - prev->off))) != NULL) {
			memcpy(grown + (pend - prev->off), cur->data + (pend - cur->off),
			       (size_t)(cend - pend));
			prev->data = grown;
			r->rec_bytes += cend - pend;
			prev->len = (size_t)(cend - prev->off);
		}
		r->rec_bytes -= cur->len;
		free(cur->data);
	}
	r->n_rec = w;
}

/* Loads the record file if it matches the HEAD. Any mismatch: ignored. */
static void remote_record_load(remote *r)
{
	char path[4200], key[1600], *got = NULL;
	int klen = remote_record_key(r, key, sizeof(key));
	unsigned char hdr[8 + 4 + 8];
	uint32_t kl, crc, want;
	uint64_t count;
	FILE *f;

	if (!r->cache_dir || !r->meta.etag[0] || klen < 0 || (size_t)klen >= sizeof(key))
		return;
	remote_record_path(r, path, sizeof(path));
	if (!(f = fopen(path, "re")))
		return;
	if (fread(hdr, 1, sizeof(hdr), f) != sizeof(hdr) || memcmp(hdr, REMOTE_MAGIC, 8) != 0)
		goto bad;
	memcpy(&kl, hdr + 8, 4);
	memcpy(&count, hdr + 12, 8);
	if (kl != (uint32_t)klen || count > (1u << 20))
		goto bad;
	crc = (uint32_t)crc32(0, hdr, sizeof(hdr));
	if (!(got = malloc(kl)) || fread(got, 1, kl, f) != kl || memcmp(got, key, kl) != 0)
		goto bad;
	crc = (uint32_t)crc32(crc, (unsigned char *)got, kl);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t off, len;
		unsigned char rh[16];
		rrange *rr;

		if (fread(rh, 1, 16, f) != 16)
			goto bad;
		memcpy(&off, rh, 8);
		memcpy(&len, rh + 8, 8);
		crc = (uint32_t)crc32(crc, rh, 16);
		if (len > REMOTE_RECORD_MAX - r->rec_bytes || off > r->size || len > r->size - off)
			goto bad;
		if (nck_grow((void **)&r->rec, &r->cap_rec, r->n_rec, sizeof(*r->rec), 64) < 0)
			goto bad;
		rr = &r->rec[r->n_rec];
		if (!(rr->data = malloc(len ? (size_t)len : 1)))
			goto bad;
		rr->off = off;
		rr->len = (size_t)len;
		r->n_rec++;
		r->rec_bytes += len;
		if (fread(rr->data, 1, (size_t)len, f) != len)
			goto bad;
		crc = (uint32_t)crc32(crc, rr->data, (uInt)len);
	}
	if (fread(&want, 1, 4, f) != 4 || want != crc)
		goto bad;
	fclose(f);
	free(got);
	remote_record_normalize(r);
	r->n_loaded = r->n_rec;
	nck_log(NCK_LOG_DEBUG, "%s: %zu ranges of mount-time reads from %s", r->display, r->n_rec,
		path);
	return;
bad:
	fclose(f);
	free(got);
	for (size_t i = 0; i < r->n_rec; i++)
		free(r->rec[i].data);
	r->n_rec = 0;
	r->rec_bytes = 0;
	nck_log(NCK_LOG_WARN, "%s: does not check out: fetching again", path);
}

/* Writes the record (lock held) to a temporary file renamed into place. */
static int remote_record_save(remote *r)
{
	char path[4200], key[1600];
	int klen = remote_record_key(r, key, sizeof(key));
	unsigned char hdr[8 + 4 + 8], (*rh)[16] = NULL;
	uint32_t kl = (uint32_t)klen, crc;
	uint64_t count = r->n_rec;
	nck_apart *parts = NULL;
	size_t np = 0;
	int rc;

	if (klen < 0 || (size_t)klen >= sizeof(key))
		return -ENAMETOOLONG;
	if ((rc = nck_mkdirs(r->cache_dir)) < 0)
		return rc;
	parts = malloc((2 * r->n_rec + 3) * sizeof(*parts));
	rh = malloc((r->n_rec ? r->n_rec : 1) * sizeof(*rh));
	if (!parts || !rh) {
		free(parts);
		free(rh);
		return -ENOMEM;
	}
	memcpy(hdr, REMOTE_MAGIC, 8);
	memcpy(hdr + 8, &kl, 4);
	memcpy(hdr + 12, &count, 8);
	parts[np++] = (nck_apart){ hdr, sizeof(hdr) };
	crc = (uint32_t)crc32(0, hdr, sizeof(hdr));
	parts[np++] = (nck_apart){ key, kl };
	crc = (uint32_t)crc32(crc, (unsigned char *)key, kl);
	for (size_t i = 0; i < r->n_rec; i++) {
		uint64_t off = r->rec[i].off, len = r->rec[i].len;

		memcpy(rh[i], &off, 8);
		memcpy(rh[i] + 8, &len, 8);
		parts[np++] = (nck_apart){ rh[i], 16 };
		parts[np++] = (nck_apart){ r->rec[i].data, r->rec[i].len };
		crc = (uint32_t)crc32(crc, rh[i], 16);
		crc = (uint32_t)crc32(crc, r->rec[i].data, (uInt)r->rec[i].len);
	}
	parts[np++] = (nck_apart){ &crc, 4 };
	remote_record_path(r, path, sizeof(path));
	rc = nck_afile_write(path, "ranges", parts, np, 0600, false);
	free(parts);
	free(rh);
	return rc;
}

/* ---- LRU ----------------------------------------------------------------------- */

static void rb_unlink(remote *r, rblock *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		r->head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		r->tail = b->prev;
	b->prev = b->next = NULL;
}

static void rb_push(remote *r, rblock *b)
{
	b->prev = NULL;
	b->next = r->head;
	if (r->head)
		r->head->prev = b;
	r->head = b;
	if (!r->tail)
		r->tail = b;
}

/* Frees unreferenced blocks from the cold end while over budget (lock held). */
static void rb_evict(remote *r)
{
	rblock *b = r->tail;

	while (b && r->used > r->budget) {
		rblock *prev = b->prev;

		if (b->refs == 0) {
			rb_unlink(r, b);
			r->used -= r->bs;
			free(b->data);
			b->data = NULL;
			b->state = RB_EMPTY;
		}
		b = prev;
	}
}

/* ---- fetching -------------------------------------------------------------------- */

/* Bytes of block i (the last one is short). */
static size_t rb_len(const remote *r, uint64_t i)
{
	uint64_t start = i * r->bs;

	return (size_t)(r->size - start < r->bs ? r->size - start : r->bs);
}

/* Fetches the iovecs' total length from `off` into them, recording it;
 * -EIO once the object changed. */
static int remote_fetchv(remote *r, const struct iovec *iov, int iovcnt, uint64_t off)
{
	size_t len = 0;
	int rc;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (atomic_load(&r->changed))
		return -EIO;
	rc = nck_http_getv(r->http, iov, iovcnt, off, r->meta.etag, r->meta.etag_linked);
	if (rc == -ESTALE)
		atomic_store(&r->changed, true);
	if (rc == -ENOTSUP)
		nck_log(NCK_LOG_ERROR, "%s: bytes %" PRIu64 "+%zu: the server ignored the range",
			r->display, off, len);
	if (rc < 0)
		return rc == -ENOMEM ? -ENOMEM : rc == -ENOTSUP ? -ENOTSUP : -EIO;
	pthread_mutex_lock(&r->lock);
	remote_record(r, iov, iovcnt, off, len);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int remote_fetch(remote *r, void *buf, uint64_t off, size_t len)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };

	return remote_fetchv(r, &v, 1, off);
}

/* Most blocks in one run (REMOTE_RUN_BYTES of the smallest blocks). */
#define REMOTE_RUN_MAX (REMOTE_RUN_BYTES / REMOTE_BLOCK_MIN)

/*
 * Fills the run of `n` blocks from `first` (LOADING: this thread alone
 * loads them; their buffers in v) from the disk cache, fetching each
 * stretch of missing blocks with one request and keeping what it fetched.
 */
static int remote_fetch_via_disk(remote *r, const struct iovec *v, uint64_t first, uint32_t n)
{
	bool hit[REMOTE_RUN_MAX];
	uint32_t k = 0;

	for (uint32_t j = 0; j < n; j++)
		hit[j] = nck_rdisk_load(r->disk, r->disk_key, (first + j) * r->bs, v[j].iov_base,
					v[j].iov_len);
	while (k < n) {
		uint32_t end = k;
		int rc;

		if (hit[k]) {
			k++;
			continue;
		}
		while (end < n && !hit[end])
			end++;
		rc = remote_fetchv(r, v + k, (int)(end - k), (first + k) * r->bs);
		if (rc < 0)
			return rc;
		for (; k < end; k++)
			nck_rdisk_store(r->disk, r->disk_key, (first + k) * r->bs, v[k].iov_base,
					v[k].iov_len);
	}
	return 0;
}

/*
 * Fetches the run of `n` blocks from `first`, which the caller marked
 * LOADING, straight into their buffers, and publishes them (READY, or back
 * to EMPTY on failure). Block `keep`, if inside the run, is returned
 * referenced in *out.
 */
static int remote_load_run(remote *r, uint64_t first, uint32_t n, uint64_t keep, rblock **out)
{
	struct iovec v[REMOTE_RUN_MAX];
	int rc = 0;

	for (uint32_t k = 0; k < n; k++) {
		v[k].iov_len = rb_len(r, first + k);
		if (!(v[k].iov_base = malloc(v[k].iov_len)))
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = r->disk ? remote_fetch_via_disk(r, v, first, n)
			     : remote_fetchv(r, v, (int)n, first * r->bs);
	pthread_mutex_lock(&r->lock);
	for (uint32_t k = 0; k < n; k++) {
		rblock *b = &r->blocks[first + k];

		if (rc == 0) {
			b->data = v[k].iov_base;
			b->state = RB_READY;
			b->refs = first + k == keep ? 1 : 0;
			r->used += r->bs;
			rb_push(r, b);
			if (first + k == keep)
				*out = b;
		} else {
			free(v[k].iov_base);
			b->state = RB_EMPTY;
		}
	}
	rb_evict(r);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* Claims up to a run of EMPTY blocks from `first` to `last` (lock held):
 * marks them LOADING and returns how many. */
static uint32_t remote_claim(remote *r, uint64_t first, uint64_t last)
{
	uint32_t max = (uint32_t)(REMOTE_RUN_BYTES / r->bs), n = 0;

	if (max == 0)
		max = 1;
	while (first + n <= last && first + n < r->n_blocks && n < max &&
	       r->blocks[first + n].state == RB_EMPTY) {
		r->blocks[first + n].state = RB_LOADING;
		n++;
	}
	return n;
}

/* Returns block i READY and referenced; a miss fetches the run of EMPTY
 * blocks from i up to `last`. -EIO, -ENOMEM. */
static int remote_block_get(remote *r, uint64_t i, uint64_t last, rblock **out)
{
	rblock *b = &r->blocks[i];
	uint32_t n;

	pthread_mutex_lock(&r->lock);
	while (b->state == RB_LOADING)
		pthread_cond_wait(&r->cond, &r->lock);
	if (b->state == RB_READY) {
		b->refs++;
		rb_unlink(r, b);
		rb_push(r, b);
		pthread_mutex_unlock(&r->lock);
		*out = b;
		return 0;
	}
	n = remote_claim(r, i, last);
	pthread_mutex_unlock(&r->lock);
	return remote_load_run(r, i, n, i, out);
}

static void remote_block_put(remote *r, rblock *b)
{
	pthread_mutex_lock(&r->lock);
	b->refs--;
	if (b->refs == 0 && r->used > r->budget)
		rb_evict(r);
	pthread_mutex_unlock(&r->lock);
}

/* ---- readahead --------------------------------------------------------------------- */

/* Worker: fetches queued runs until stopped. */
static void *remote_worker(void *arg)
{
	remote *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		rrun run;
		bool idle = false;

		while (!r->stop && r->q_len == 0 && !idle) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += REMOTE_WORKER_IDLE_S;
			r->n_idle++;
			idle = pthread_cond_timedwait(&r->work, &r->lock, &until) == ETIMEDOUT &&
			       r->q_len == 0;
			r->n_idle--;
		}
		if (r->stop || idle)
			break;
		run = r->queue[r->q_head];
		r->q_head = (r->q_head + 1) % REMOTE_QUEUE;
		r->q_len--;
		pthread_mutex_unlock(&r->lock);
		remote_load_run(r, run.first, run.n, UINT64_MAX, NULL);
		pthread_mutex_lock(&r->lock);
	}
	/* Joined by the next spawn or by remote_free, so that a worker's exit,
	 * its thread-local destructors included (libcrypto's error state of
	 * the requests it signed), has ended before the object and the
	 * process go. n_workers + n_exited stays within REMOTE_WORKERS. */
	r->exited[r->n_exited++] = pthread_self();
	r->n_workers--;
	pthread_cond_broadcast(&r->gone);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Joins the workers that have returned (lock held: they no longer take it). */
static void remote_reap(remote *r)
{
	while (r->n_exited)
		pthread_join(r->exited[--r->n_exited], NULL);
}

/* Starts one more worker (lock held). False if none could be. */
static bool remote_spawn(remote *r)
{
	pthread_t t;

	remote_reap(r);
	if (pthread_create(&t, NULL, remote_worker, r) != 0)
		return false;
	r->n_workers++;
	return true;
}

/* Queues the EMPTY blocks first..last as runs for the workers, started
 * here as the queue needs them (up to REMOTE_WORKERS; an object that is
 * never streamed, like most members of a listing, costs no threads, and
 * idle ones exit). */
static void remote_queue(remote *r, uint64_t first, uint64_t last)
{
	if (atomic_load(&r->changed) || first >= r->n_blocks)
		return;
	if (last >= r->n_blocks)
		last = r->n_blocks - 1;
	pthread_mutex_lock(&r->lock);
	/* A worker first: a run claimed (LOADING) must have one to load it. */
	if (r->stop || (r->n_workers == 0 && !remote_spawn(r))) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	for (uint64_t i = first; i <= last && r->q_len < REMOTE_QUEUE;) {
		uint32_t n;

		if (r->blocks[i].state != RB_EMPTY) {
			i++;
			continue;
		}
		n = remote_claim(r, i, last);
		r->queue[(r->q_head + r->q_len) % REMOTE_QUEUE] = (rrun){ .first = i, .n = n };
		r->q_len++;
		i += n;
	}
	while (r->n_workers < REMOTE_WORKERS && r->n_idle < r->q_len && remote_spawn(r))
		;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->lock);
}

/* The readahead window of a block cache of this budget, in blocks. */
static uint64_t remote_window(const remote *r)
{
	uint64_t window = r->budget / 4 < REMOTE_RA_BYTES ? r->budget / 4 : REMOTE_RA_BYTES;

	return window / r->bs ? window / r->bs : 1;
}

/* Queues the readahead window after block `last` (a sequential reader).
 * The window's end is rounded up to the end of a run (of the window, if
 * that is shorter), so that as the reader moves on it exposes whole runs:
 * after the first, each request is a full run (2 MiB, or the window) up
 * to the object's end, not the few blocks one read slid the window by.
 * The window may thus reach less than one run past its length. */
static void remote_readahead(remote *r, uint64_t last)
{
	uint64_t window = remote_window(r), run = REMOTE_RUN_BYTES / r->bs;
	uint64_t unit = run == 0 ? 1 : run < window ? run : window;

	remote_queue(r, last + 1, ((last + window) / unit + 1) * unit - 1);
}

/* The vfs will read [off, off+len) soon (the source runs of a view file's
 * next bytes): fetch its blocks in the background, at most a window. */
static void remote_willneed(void *impl, uint64_t off, size_t len)
{
	remote *r = impl;
	uint64_t first = off / r->bs, last = (off + len - 1) / r->bs;

	if (last - first >= remote_window(r))
		last = first + remote_window(r) - 1;
	remote_queue(r, first, last);
}

/* ---- nck_src callbacks --------------------------------------------------------------- */

/* True for a small read that should fetch exactly its bytes: while the
 * mount is built (the tar walk reads one header per member and must not
 * pull a block for each) and some of its blocks are neither cached nor
 * being fetched (lock taken here). Afterwards small reads go through the
 * blocks: a strided view reads short runs along each member, and a
 * prefetch may have queued their blocks already. */
static bool remote_read_exact(remote *r, uint64_t first, uint64_t last)
{
	bool exact = false;

	pthread_mutex_lock(&r->lock);
	for (uint64_t i = first; i <= last && !r->sealed && !exact; i++)
		exact = r->blocks[i].state == RB_EMPTY;
	pthread_mutex_unlock(&r->lock);
	return exact;
}

/* True when the disk cache has a file for each of blocks first..last. */
static bool remote_all_on_disk(remote *r, uint64_t first, uint64_t last)
{
	bool ok = r->disk != NULL;

	for (uint64_t i = first; i <= last && ok; i++)
		ok = nck_rdisk_has(r->disk, r->disk_key, i * r->bs);
	return ok;
}

static void remote_unmap(void *impl, nck_loan *m)
{
	for (int i = 0; i < m->n; i++)
		remote_block_put(impl, m->pins[i]);
	m->n = 0;
}

/* True when a read of [off, off+len) continues the previous one (once per
 * read: its own steps do not count). */
static bool remote_sequential(remote *r, uint64_t off, size_t len)
{
	return atomic_exchange(&r->last_end, off + len) == off && off > 0;
}

/*
 * Gets the blocks of [off, off+len) (NCK_LOAN_MAX at most), READY and
 * referenced, into m: the pieces of them the range covers, in order. A miss
 * fetches the run of missing blocks up to block `claim_last` (the end of the
 * whole read) in one request.
 */
static int remote_hold(remote *r, uint64_t off, size_t len, uint64_t claim_last, nck_loan *m)
{
	uint64_t first = off / r->bs, last = (off + len - 1) / r->bs;
	size_t done = 0;
	int rc;

	m->n = 0;
	for (uint64_t i = first; i <= last; i++) {
		uint64_t start = i * r->bs, pos = off + done;
		size_t n = (size_t)(start + rb_len(r, i) - pos);
		rblock *b;

		if (n > len - done)
			n = len - done;
		if ((rc = remote_block_get(r, i, claim_last > last ? claim_last : last, &b)) < 0) {
			remote_unmap(r, m);
			return rc;
		}
		m->pins[m->n] = b;
		m->iov[m->n++] = (struct iovec){ .iov_base = b->data + (pos - start), .iov_len = n };
		done += n;
	}
	return 0;
}

static int64_t remote_pread(void *impl, void *buf, size_t len, uint64_t off)
{
	remote *r = impl;
	unsigned char *dst = buf;
	uint64_t first = off / r->bs, last = (off + len - 1) / r->bs;
	bool seq = remote_sequential(r, off, len);
	int rc;

	if (atomic_load(&r->changed))
		return -EIO;
	if (remote_from_record(r, buf, len, off))
		return (int64_t)len;
	if (len < REMOTE_SMALL && remote_read_exact(r, first, last) &&
	    !remote_all_on_disk(r, first, last)) {
		rc = remote_fetch(r, buf, off, len);
		return rc < 0 ? rc : (int64_t)len;
	}
	/* A block at a time: a copy pins one block, and a miss still fetches
	 * the run up to the read's end. */
	for (size_t done = 0; done < len;) {
		uint64_t pos = off + done;
		size_t n = (size_t)(r->bs - pos % r->bs);
		nck_loan m;

		if (n > len - done)
			n = len - done;
		if ((rc = remote_hold(r, pos, n, last, &m)) < 0)
			return rc;
		memcpy(dst + done, m.iov[0].iov_base, n);
		done += n;
		remote_unmap(r, &m);
	}
	if (seq)
		remote_readahead(r, last);
	return (int64_t)len;
}

/* Lends the blocks of a read, referenced, so the reply is written from the
 * cache itself (one copy less than remote_pread). What pread serves another
 * way (the record, small uncached reads) or a read over NCK_LOAN_MAX
 * blocks is -ENOTSUP. */
static int remote_map(void *impl, uint64_t off, size_t len, nck_loan *m)
{
	remote *r = impl;
	uint64_t last = (off + len - 1) / r->bs;
	bool seq;
	int rc;

	if (atomic_load(&r->changed))
		return -EIO;
	if (len < REMOTE_SMALL || last - off / r->bs >= NCK_LOAN_MAX ||
	    remote_from_record(r, NULL, len, off))
		return -ENOTSUP;
	seq = remote_sequential(r, off, len);
	if ((rc = remote_hold(r, off, len, last, m)) == 0 && seq)
		remote_readahead(r, last);
	return rc;
}

static int remote_check(void *impl)
{
	remote *r = impl;

	return atomic_load(&r->changed) ? -EIO : 0;
}

static const struct stat *remote_stat(void *impl)
{
	remote *r = impl;

	return &r->st;
}

static void remote_free(void *impl)
{
	remote *r = impl;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->work);
	while (r->n_workers)
		pthread_cond_wait(&r->gone, &r->lock);
	remote_reap(r);
	pthread_mutex_unlock(&r->lock);
	if (r->blocks) {
		uint64_t held = 0;

		for (uint64_t i = 0; i < r->n_blocks; i++)
			held += r->blocks[i].refs != 0;
		/* Every read and loan has given its blocks back by now: a count
		 * here is a reference leaked (or put twice), which tests catch. */
		if (held)
			nck_log(NCK_LOG_ERROR, "%s: %" PRIu64 " cached blocks still referenced at close",
				r->display, held);
	}
	if (r->blocks)
		for (uint64_t i = 0; i < r->n_blocks; i++)
			free(r->blocks[i].data);
	free(r->blocks);
	for (size_t i = 0; i < r->n_rec; i++)
		free(r->rec[i].data);
	free(r->rec);
	pthread_cond_destroy(&r->gone);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	nck_http_free(r->http);
	nck_rdisk_put(r->disk);
	free(r->display);
	free(r->url_key);
	free(r->cache_dir);
	free(r);
}

static const nck_src_vtab remote_vtab = {
	.pread = remote_pread,
	.check = remote_check,
	.stat = remote_stat,
	.free = remote_free,
	.map = remote_map,
	.unmap = remote_unmap,
	.willneed = remote_willneed,
};

/* ---- open ----------------------------------------------------------------------------- */

/* Block size and table for r->size. */
static int remote_blocks(remote *r)
{
	r->bs = REMOTE_BLOCK_MIN;
	while (r->size / r->bs >= REMOTE_MAX_BLOCKS)
		r->bs *= 2;
	r->n_blocks = r->size ? (r->size - 1) / r->bs + 1 : 0;
	r->blocks = calloc(r->n_blocks ? (size_t)r->n_blocks : 1, sizeof(*r->blocks));
	return r->blocks ? 0 : -ENOMEM;
}

/* Joins the disk cache when asked for: the object's ETag and size key its
 * files, so an object without an ETag is never kept (a change could not be
 * told). */
static void remote_disk_open(remote *r, const char *url, const nck_remote_opts *opts)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char id[300];
	EVP_MD_CTX *c;
	bool ok;

	if (!opts->disk_cache_size || !r->cache_dir || !r->meta.etag[0])
		return;
	/* A cryptographic hash: a server chooses its ETags, and a key it could
	 * aim at another object's (as with FNV) would serve that object's
	 * cached blocks as its own. */
	snprintf(id, sizeof(id), "\n%s\n%" PRIu64, r->meta.etag, r->size);
	c = EVP_MD_CTX_new();
	ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, url, strlen(url)) == 1 && EVP_DigestUpdate(c, id, strlen(id)) == 1 &&
	     EVP_DigestFinal_ex(c, md, NULL) == 1;
	EVP_MD_CTX_free(c);
	if (!ok) {
		nck_log(NCK_LOG_WARN, "%s: no disk cache (SHA-256 failed)", r->display);
		return;
	}
	memcpy(&r->disk_key, md, sizeof(r->disk_key));
	if (!(r->disk = nck_rdisk_get(r->cache_dir, opts->disk_cache_size)))
		nck_log(NCK_LOG_WARN, "%s: no disk cache (its directory %s/blocks cannot be used)",
			r->display, r->cache_dir);
}

/* Checks with one small range GET that the server honours ranges. */
static int remote_probe(remote *r, nck_diag *diag)
{
	unsigned char b;
	int rc;

	if (r->size == 0 || remote_from_record(r, &b, 1, 0))
		return 0;
	rc = nck_http_get(r->http, &b, 0, 1, r->meta.etag, r->meta.etag_linked);
	if (rc == -ENOTSUP)
		return nck_diag_set(diag, -ENOTSUP, r->display, -1,
				    "the server ignores range requests (HTTP 200 to a Range): "
				    "it cannot be mounted");
	if (rc < 0)
		return nck_diag_set(diag, rc == -ENOMEM ? -ENOMEM : -EIO, r->display, 0,
				    "range request failed (see the log)");
	return 0;
}

/* Opens the object at `url`: its size and ETag from `known` (a listing)
 * or from a HEAD, then a probe that ranges are honoured (not for known
 * objects: the listing's server answered ranges for the listing's kind). */
static int remote_new(nck_src **out, const char *url, const nck_remote_opts *opts,
		      const nck_http_meta *known, nck_diag *diag)
{
	nck_remote_opts none = { 0 };
	char disp[2048], key[17];
	remote *r;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &none;
	nck_url_redact(disp, sizeof(disp), url);
	if (!(r = calloc(1, sizeof(*r))))
		return nck_diag_set(diag, -ENOMEM, disp, -1, "out of memory");
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->gone, NULL);
	remote_fnv(key, url);
	r->display = strdup(disp);
	r->url_key = strdup(key);
	r->cache_dir = opts->cache_dir ? strdup(opts->cache_dir) : NULL;
	r->budget = opts->cache_size ? opts->cache_size : REMOTE_CACHE_DEFAULT;
	if (!r->display || !r->url_key || (opts->cache_dir && !r->cache_dir)) {
		remote_free(r);
		return nck_diag_set(diag, -ENOMEM, disp, -1, "out of memory");
	}
	if ((rc = nck_http_new(&r->http, url, disp, opts, diag)) < 0 ||
	    (!known && (rc = nck_http_head(r->http, &r->meta, diag)) < 0)) {
		remote_free(r);
		return rc;
	}
	if (known)
		r->meta = *known;
	r->size = r->meta.size;
	r->st.st_mode = S_IFREG | 0444;
	r->st.st_size = (off_t)r->size;
	r->st.st_mtim.tv_sec = r->meta.mtime;
	r->st.st_nlink = 1;
	r->st.st_ino = (ino_t)strtoull(key, NULL, 16);
	if ((rc = remote_blocks(r)) < 0) {
		remote_free(r);
		return nck_diag_set(diag, rc, disp, -1, "out of memory");
	}
	remote_record_load(r);
	remote_disk_open(r, url, opts);
	if (!known && (rc = remote_probe(r, diag)) < 0) {
		remote_free(r);
		return rc;
	}
	return nck_src_new_impl_take(out, &remote_vtab, r, r->size, disp);
}

int nck_src_open_remote(nck_src **out, const char *url, const nck_remote_opts *opts,
			nck_diag *diag)
{
	return remote_new(out, url, opts, NULL, diag);
}

int nck_remote_open_known(nck_src **out, const char *url, const nck_remote_opts *opts,
			  uint64_t size, const char *etag, time_t mtime, nck_diag *diag)
{
	nck_http_meta m = { .size = size, .mtime = mtime };

	snprintf(m.etag, sizeof(m.etag), "%s", etag);
	return remote_new(out, url, opts, &m, diag);
}

bool nck_src_is_remote(const nck_src *src)
{
	return src && nck_src_vtab_of(src) == &remote_vtab;
}

int nck_src_remote_seal(nck_src *src)
{
	remote *r;
	int rc = 0;

	if (nck_src_is_remote_listing(src))
		return nck_remote_listing_seal(src);
	if (!nck_src_is_remote(src))
		return 0;
	r = nck_src_impl_of(src);
	pthread_mutex_lock(&r->lock);
	if (!r->sealed && r->cache_dir && r->n_rec > r->n_loaded && r->meta.etag[0]) {
		remote_record_normalize(r);
		rc = remote_record_save(r);
		if (rc == 0)
			nck_log(NCK_LOG_DEBUG, "%s: %zu ranges, %" PRIu64 " bytes of mount-time reads kept",
				r->display, r->n_rec, r->rec_bytes);
	}
	if (!r->sealed && r->n_loaded == 0) {
		/* Nothing to serve from: the record was only for the file. */
		for (size_t i = 0; i < r->n_rec; i++)
			free(r->rec[i].data);
		r->n_rec = 0;
		r->rec_bytes = 0;
	} else if (!r->sealed) {
		r->n_loaded = r->n_rec; /* normalized: sorted, no overlaps */
	}
	r->sealed = true;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

uint64_t nck_src_remote_requests(const nck_src *src)
{
	const remote *r;

	if (!nck_src_is_remote(src))
		return 0;
	r = nck_src_impl_of(src);
	return nck_http_requests(r->http);
}
