/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for a whole mount: a tar checkpoint in memory is opened
 * as the mount opens one (nck_vfs_open_container: catalog, view context,
 * merged/, tensors/, hf/, gguf/, info.json, the view directories), then
 * the tree is walked: every listed tpXppY of ranks/, nemo/ and qnemo/ is
 * looked up (which builds it) and every file is read whole in 64 KiB steps,
 * its extents copied out as FUSE would. A read may fail with EIO (damaged
 * data) or ENOMEM but never otherwise, and nothing may crash.
 *
 * Structure-aware: the custom mutator parses the input as a ustar archive
 * and changes one member (its bytes, its size or its name, among the
 * names a checkpoint has), then writes a valid archive again, so that the
 * catalog sees checkpoints rather than broken tars. Inputs that are not
 * tars get libFuzzer's byte mutations.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nemockpt/log.h"
#include "vfs/vfs_int.h"

/* Inputs above this are not mounted (libFuzzer's rss limit is 2 GB; the
 * views of a checkpoint are a few times its size). */
#define FZ_MAX_INPUT (4u << 20)
#define FZ_STEP 65536
#define FZ_MAX_EXT 64
#define FZ_MAX_DEPTH 16
#define FZ_MAX_MEMBERS 128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
/* Weak: the replay driver (replay.c) links no libFuzzer and never mutates. */
__attribute__((weak)) size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* ---- reading the mount ------------------------------------------------------ */

static void fz_check(int rc)
{
	if (rc != 0 && rc != -EIO && rc != -ENOMEM)
		__builtin_trap();
}

/* Copies out one extent, as the FUSE layer does. */
static int fz_extent(const nck_extent *e, unsigned char *buf)
{
	if (e->len > FZ_STEP)
		__builtin_trap(); /* never more than was asked for */
	switch (e->kind) {
	case NCK_EXTENT_FD:
		return pread(e->fd, buf, e->len, (off_t)e->pos) == (ssize_t)e->len ? 0 : -EIO;
	case NCK_EXTENT_MEM:
		memcpy(buf, e->mem, e->len);
		return 0;
	default:
		return nck_vfs_extent_read(e, buf);
	}
}

/* Reads file `ino` whole in 64 KiB steps. */
static void fz_read(nck_vfs *vfs, uint64_t ino, unsigned char *buf)
{
	nck_extent ext[FZ_MAX_EXT];
	nck_vfs_file *f = NULL;
	struct stat st;
	int rc;

	if (nck_vfs_getattr(vfs, ino, &st) < 0)
		__builtin_trap(); /* listed but unknown */
	if ((rc = nck_vfs_file_open(&f, vfs, ino, O_RDONLY)) < 0) {
		fz_check(rc);
		return;
	}
	for (uint64_t at = 0; at < (uint64_t)st.st_size; at += FZ_STEP) {
		size_t n = 0, got = 0;

		rc = nck_vfs_read(vfs, f, at, FZ_STEP, ext, FZ_MAX_EXT, &n);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (got + ext[i].len > FZ_STEP)
				__builtin_trap();
			rc = fz_extent(&ext[i], buf + got);
			got += ext[i].len;
		}
		fz_check(rc);
		if (rc == 0 && n == 0)
			__builtin_trap(); /* a file shorter than its size */
	}
	nck_vfs_file_close(f);
}

/* Visits directory `dir`: files are read, subdirectories and view layouts
 * (looked up, so built) visited. */
static void fz_walk(nck_vfs *vfs, uint64_t dir, int depth, unsigned char *buf)
{
	const char *name;
	uint64_t ino;

	if (depth > FZ_MAX_DEPTH)
		__builtin_trap(); /* the tree is shallow */
	for (uint64_t i = 2; nck_vfs_readdir(vfs, dir, i, &name, &ino) == 0; i++) {
		struct stat st;

		if (ino == 0 && nck_vfs_lookup(vfs, dir, name, &ino) < 0)
			continue; /* a listed layout whose build failed: lookup says so */
		if (nck_vfs_getattr(vfs, ino, &st) < 0)
			__builtin_trap();
		if (S_ISDIR(st.st_mode))
			fz_walk(vfs, ino, depth + 1, buf);
		else
			fz_read(vfs, ino, buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* group_size 8: the fixtures' rows are too short for the default 128,
	 * which would leave qnemo/int4_awq unbuilt; "off": no CUDA. */
	nck_vfs_opts opts = { .cache_size = 1u << 20, .group_size = 8, .gpu = "off" };
	nck_container *c = NULL;
	nck_vfs *vfs = NULL;
	nck_src *src = NULL;
	unsigned char *buf;
	nck_diag diag;

	if (size > FZ_MAX_INPUT || !(buf = malloc(FZ_STEP)))
		return 0;
	nck_log_init("fuzz_checkpoint", NCK_LOG_ERROR);
	nck_diag_init(&diag);
	if (nck_src_new_mem(&src, data, size, "fuzz.nemo") == 0 &&
	    nck_container_open_src_take(&c, src, &diag) == 0 &&
	    nck_vfs_open_container(&vfs, c, &opts, &diag) == 0) {
		fz_walk(vfs, NCK_VFS_ROOT_INO, 0, buf);
		nck_vfs_close(vfs);
	}
	free(buf);
	return 0;
}

/* ---- the mutator -------------------------------------------------------------- */

typedef struct fz_member {
	unsigned char hdr[512];
	const uint8_t *data; /* into the input, or fz_mut.own */
	size_t len;
	bool drop;
} fz_member;

typedef struct fz_tar {
	fz_member m[FZ_MAX_MEMBERS];
	size_t n;
} fz_tar;

/* Names a checkpoint's members have (catalog/detect.c). */
static const char *const fz_names[] = {
	"model_config.yaml",
	"model_weights.ckpt",
	"mp_rank_00/model_weights.ckpt",
	"mp_rank_01/model_weights.ckpt",
	"mp_rank_02/model_weights.ckpt",
	"tp_rank_00_pp_rank_000/model_weights.ckpt",
	"tp_rank_01_pp_rank_001/model_weights.ckpt",
	"mp_rank_00/",
	"model_weights/",
	"model_weights/.metadata",
	"model_weights/__0_0.distcp",
	"model_weights/__0_1.distcp",
	"model_weights/__1_0.distcp",
	"model_weights/common.pt",
	"model_weights/metadata.json",
	"tokenizer.model",
	"a1b2_tokenizer.model",
	"tokenizer_config.yaml",
	"config.json",
	"rank0.safetensors",
	"rank1.safetensors",
	"model.safetensors",
	"./",
};

static uint32_t fz_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* An octal header field, or -1 (base-256 and junk are not handled). */
static int64_t fz_octal(const unsigned char *p, size_t n)
{
	int64_t v = 0;
	size_t i = 0;

	while (i < n && p[i] == ' ')
		i++;
	if (i == n || p[i] < '0' || p[i] > '7')
		return -1;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++)
		v = v * 8 + (p[i] - '0');
	return v;
}

static unsigned fz_sum(const unsigned char *h)
{
	unsigned s = 0;

	for (int i = 0; i < 512; i++)
		s += i >= 148 && i < 156 ? ' ' : h[i];
	return s;
}

/* Splits a ustar archive into members; false if it is not one. */
static bool fz_parse(fz_tar *t, const uint8_t *p, size_t size)
{
	size_t off = 0;
	static const unsigned char zero[512];

	t->n = 0;
	while (off + 512 <= size && memcmp(p + off, zero, 512) != 0) {
		fz_member *m = &t->m[t->n];
		int64_t len = fz_octal(p + off + 124, 12);

		if (t->n == FZ_MAX_MEMBERS || memcmp(p + off + 257, "ustar", 5) != 0 || len < 0 ||
		    fz_octal(p + off + 148, 8) != (int64_t)fz_sum(p + off) ||
		    (uint64_t)len > size - off - 512)
			return false;
		memcpy(m->hdr, p + off, 512);
		m->data = p + off + 512;
		m->len = (size_t)len;
		m->drop = false;
		t->n++;
		off += 512 + ((size_t)len + 511) / 512 * 512;
	}
	return t->n > 0;
}

/* Writes the archive into out (cap bytes): headers with their sizes and
 * checksums made right, data padded, two zero blocks. 0 if it does not fit. */
static size_t fz_encode(const fz_tar *t, uint8_t *out, size_t cap)
{
	size_t off = 0;

	for (size_t i = 0; i < t->n; i++) {
		const fz_member *m = &t->m[i];
		size_t pad = (m->len + 511) / 512 * 512;
		unsigned char h[512];

		if (m->drop)
			continue;
		if (off + 512 + pad + 1024 > cap)
			return 0;
		memcpy(h, m->hdr, 512);
		snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)m->len);
		snprintf((char *)h + 148, 8, "%06o", fz_sum(h));
		h[155] = ' ';
		memcpy(out + off, h, 512);
		memcpy(out + off + 512, m->data, m->len);
		memset(out + off + 512 + m->len, 0, pad - m->len);
		off += 512 + pad;
	}
	memset(out + off, 0, 1024);
	return off + 1024;
}

/* Renames member m (a directory if the name ends in '/'); a pax header
 * just before it, which may carry its old path, goes. */
static void fz_rename(fz_tar *t, size_t m, const char *name)
{
	unsigned char *h = t->m[m].hdr;
	size_t len = strlen(name);

	memset(h, 0, 100);
	memcpy(h, name, len);
	memset(h + 345, 0, 155);
	h[156] = name[len - 1] == '/' ? '5' : '0';
	if (h[156] == '5')
		t->m[m].len = 0;
	if (m > 0 && t->m[m - 1].hdr[156] == 'x')
		t->m[m - 1].drop = true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static fz_tar t;
	static uint8_t *own, *out;
	static size_t cap;
	uint32_t s = seed | 1;
	size_t m, n, room;
	uint32_t op;
	fz_member *mb;

	if (max_size > FZ_MAX_INPUT)
		max_size = FZ_MAX_INPUT;
	if (cap < max_size) {
		free(own);
		free(out);
		own = malloc(max_size);
		out = malloc(max_size);
		cap = own && out ? max_size : 0;
	}
	if (!cap || !fz_parse(&t, data, size) || fz_rand(&s) % 16 == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	/* members with data are more interesting than directories */
	m = fz_rand(&s) % t.n;
	for (size_t k = 0; k < t.n && t.m[m].len == 0; k++)
		m = (m + 1) % t.n;
	mb = &t.m[m];
	room = max_size > size + 1536 ? max_size - size - 1536 : 0;
	op = fz_rand(&s) % 3;
	switch (op == 0 && mb->len == 0 ? 1 : op) {
	case 0: /* its bytes */
		n = mb->len + room < cap ? mb->len + room : cap;
		memcpy(own, mb->data, mb->len);
		mb->len = LLVMFuzzerMutate(own, mb->len, n);
		mb->data = own;
		break;
	case 1: /* its size: cut, or grown with zeros or its own bytes */
		n = fz_rand(&s) % 4 == 0 ? 0 : fz_rand(&s) % (mb->len + 1 + (room < 4096 ? room : 4096));
		memcpy(own, mb->data, mb->len < n ? mb->len : n);
		for (size_t i = mb->len; i < n; i++)
			own[i] = mb->len && fz_rand(&s) % 2 ? mb->data[i % mb->len] : 0;
		mb->data = own;
		mb->len = n;
		break;
	default:
		fz_rename(&t, m, fz_names[fz_rand(&s) % (sizeof(fz_names) / sizeof(fz_names[0]))]);
		break;
	}
	n = fz_encode(&t, out, max_size);
	if (n == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(data, out, n);
	return n;
}
