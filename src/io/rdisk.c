/* SPDX-License-Identifier: MIT */
/*
 * On-disk block cache (see rdisk.h).
 *
 * File: CACHE_DIR/blocks/<key 16 hex>-<offset 16 hex>.blk =
 *   "NCKBLK1\n" | u64 key | u64 offset | u32 length | u32 CRC-32 | data
 * (little-endian host order; the CRC covers the first 28 bytes and the
 * data). Written through nck_afile_write (temporary file, rename), not
 * synced: a torn or lost write fails the CRC and is fetched again.
 *
 * Bound: `used` counts the bytes of the .blk files, from a scan of the
 * directory at the first store and the stores since. A store that would
 * pass the bound first rescans (other processes may share the directory)
 * and removes the oldest files by mtime until 7/8 of the bound is left, so
 * scans are rare. Several processes on one directory can overshoot by the
 * blocks they write between two scans.
 */
#include "io/rdisk.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "io/afile.h"
#include "nemockpt/log.h"

#define RDISK_MAGIC "NCKBLK1\n"
#define RDISK_HDR 32u
#define RDISK_MAX_BLOCK (64u << 20)
#define RDISK_STALE_TMP 600 /* seconds: older temporary files are a crash's */

struct nck_rdisk {
	nck_rdisk *next;
	char *dir;               /* CACHE_DIR/blocks */
	uint64_t limit;
	uint64_t used;           /* bytes of .blk files (lock) */
	bool scanned;
	unsigned refs;           /* (registry lock) */
	pthread_mutex_t lock;
};

static pthread_mutex_t rdisk_registry = PTHREAD_MUTEX_INITIALIZER;
static nck_rdisk *rdisk_all;

nck_rdisk *nck_rdisk_get(const char *cache_dir, uint64_t limit)
{
	char dir[4096];
	nck_rdisk *d;
	int n = snprintf(dir, sizeof(dir), "%s/blocks", cache_dir);

	if (n < 0 || (size_t)n >= sizeof(dir))
		return NULL;
	pthread_mutex_lock(&rdisk_registry);
	for (d = rdisk_all; d && strcmp(d->dir, dir) != 0; d = d->next)
		;
	if (!d && (d = calloc(1, sizeof(*d))) != NULL) {
		if (!(d->dir = strdup(dir))) {
			free(d);
			d = NULL;
		} else {
			pthread_mutex_init(&d->lock, NULL);
			d->next = rdisk_all;
			rdisk_all = d;
		}
	}
	if (d) {
		d->refs++;
		pthread_mutex_lock(&d->lock);
		if (limit > d->limit)
			d->limit = limit;
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_unlock(&rdisk_registry);
	return d;
}

void nck_rdisk_put(nck_rdisk *d)
{
	nck_rdisk **pp;

	if (!d)
		return;
	pthread_mutex_lock(&rdisk_registry);
	if (--d->refs == 0) {
		for (pp = &rdisk_all; *pp != d; pp = &(*pp)->next)
			;
		*pp = d->next;
		pthread_mutex_destroy(&d->lock);
		free(d->dir);
		free(d);
	}
	pthread_mutex_unlock(&rdisk_registry);
}

static void rdisk_path(const nck_rdisk *d, char *out, size_t n, uint64_t key, uint64_t off)
{
	snprintf(out, n, "%s/%016" PRIx64 "-%016" PRIx64 ".blk", d->dir, key, off);
}

static void rdisk_header(unsigned char h[RDISK_HDR], uint64_t key, uint64_t off, uint32_t len)
{
	memcpy(h, RDISK_MAGIC, 8);
	memcpy(h + 8, &key, 8);
	memcpy(h + 16, &off, 8);
	memcpy(h + 24, &len, 4);
}

bool nck_rdisk_load(nck_rdisk *d, uint64_t key, uint64_t off, void *buf, size_t len)
{
	char path[4200];
	unsigned char h[RDISK_HDR], want[RDISK_HDR];
	uint32_t crc;
	bool ok = false;
	FILE *f;

	if (len > RDISK_MAX_BLOCK)
		return false;
	rdisk_path(d, path, sizeof(path), key, off);
	if (!(f = fopen(path, "rbe")))
		return false;
	rdisk_header(want, key, off, (uint32_t)len);
	if (fread(h, 1, RDISK_HDR, f) == RDISK_HDR && memcmp(h, want, 28) == 0 &&
	    fread(buf, 1, len, f) == len && fgetc(f) == EOF) {
		crc = (uint32_t)crc32(crc32(0, h, 28), buf, (uInt)len);
		ok = memcmp(h + 28, &crc, 4) == 0;
	}
	fclose(f);
	if (!ok)
		nck_log(NCK_LOG_WARN, "%s: does not check out: fetching the block again", path);
	return ok;
}

bool nck_rdisk_has(nck_rdisk *d, uint64_t key, uint64_t off)
{
	char path[4200];

	rdisk_path(d, path, sizeof(path), key, off);
	return access(path, F_OK) == 0;
}

/* A cache file found by a scan. */
typedef struct rdisk_file {
	time_t mtime;
	uint64_t size;
	char name[40];
} rdisk_file;

static int rdisk_cmp_age(const void *a, const void *b)
{
	const rdisk_file *x = a, *y = b;

	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime ? 1 : strcmp(x->name, y->name);
}

/* Whether `name` is one of ours: <16 hex>-<16 hex>.blk. */
static bool rdisk_is_block(const char *name)
{
	return strlen(name) == 37 && name[16] == '-' && strcmp(name + 33, ".blk") == 0;
}

/*
 * Counts the directory's block files (lock held) and, when `target` is
 * below their total, removes the oldest until it is met. Removes stale
 * temporary files on the way. Sets d->used.
 */
static void rdisk_scan(nck_rdisk *d, uint64_t target)
{
	rdisk_file *files = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	time_t now = time(NULL);
	struct dirent *de;
	DIR *dir = opendir(d->dir);

	d->scanned = true;
	d->used = 0;
	if (!dir)
		return;
	while ((de = readdir(dir)) != NULL) {
		char path[4400];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", d->dir, de->d_name);
		if (de->d_name[0] == '.' && strncmp(de->d_name, ".blk.", 5) == 0) {
			if (stat(path, &st) == 0 && now - st.st_mtime > RDISK_STALE_TMP)
				unlink(path);
			continue;
		}
		if (!rdisk_is_block(de->d_name) || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		total += (uint64_t)st.st_size;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			rdisk_file *g = realloc(files, nc * sizeof(*g));

			if (!g)
				continue; /* counted, not listed: the bound still holds */
			files = g;
			cap = nc;
		}
		files[n].mtime = st.st_mtime;
		files[n].size = (uint64_t)st.st_size;
		memcpy(files[n].name, de->d_name, 38);
		n++;
	}
	closedir(dir);
	if (total > target && files) {
		qsort(files, n, sizeof(*files), rdisk_cmp_age);
		for (size_t i = 0; i < n && total > target; i++) {
			char path[4400];

			snprintf(path, sizeof(path), "%s/%s", d->dir, files[i].name);
			if (unlink(path) == 0 || errno == ENOENT)
				total -= files[i].size;
		}
	}
	free(files);
	d->used = total;
}

/* Reserves `need` bytes of the bound (lock taken here); false when the
 * block cannot fit at all. `replaced`: the size of the file it replaces. */
static bool rdisk_reserve(nck_rdisk *d, uint64_t need, uint64_t replaced)
{
	bool ok = true;

	pthread_mutex_lock(&d->lock);
	if (need > d->limit) {
		ok = false;
	} else {
		if (!d->scanned)
			rdisk_scan(d, UINT64_MAX);
		d->used -= replaced < d->used ? replaced : d->used;
		if (d->used + need > d->limit)
			rdisk_scan(d, d->limit - d->limit / 8 > need ? d->limit - d->limit / 8 - need
								       : 0);
		d->used += need;
	}
	pthread_mutex_unlock(&d->lock);
	return ok;
}

void nck_rdisk_store(nck_rdisk *d, uint64_t key, uint64_t off, const void *data, size_t len)
{
	char path[4200];
	unsigned char h[RDISK_HDR];
	uint32_t crc;
	struct stat st;
	uint64_t need = RDISK_HDR + (uint64_t)len;
	int rc;

	if (len > RDISK_MAX_BLOCK)
		return;
	rdisk_path(d, path, sizeof(path), key, off);
	if (!rdisk_reserve(d, need, stat(path, &st) == 0 ? (uint64_t)st.st_size : 0))
		return;
	rdisk_header(h, key, off, (uint32_t)len);
	crc = (uint32_t)crc32(crc32(0, h, 28), data, (uInt)len);
	memcpy(h + 28, &crc, 4);
	{
		nck_apart parts[] = { { h, RDISK_HDR }, { data, len } };

		rc = nck_afile_write(path, "blk", parts, 2, 0600, false);
		if (rc == -ENOENT && nck_mkdirs(d->dir) == 0)
			rc = nck_afile_write(path, "blk", parts, 2, 0600, false);
	}
	if (rc < 0) {
		pthread_mutex_lock(&d->lock);
		d->used -= need < d->used ? need : d->used;
		pthread_mutex_unlock(&d->lock);
		nck_log(NCK_LOG_DEBUG, "%s: not kept: %s", path, strerror(-rc));
	}
}
