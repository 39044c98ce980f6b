/* SPDX-License-Identifier: MIT */
/*
 * The on-disk block cache of remote sources (-o disk_cache_size=): data
 * blocks fetched from an object kept as files under CACHE_DIR/blocks/,
 * named by a key of the object (64 bits of SHA-256 of its URL, ETag and
 * size: an object whose ETag or size changed never matches an old file)
 * and the block's offset. Each file holds a
 * header (offset, length, key, CRC-32 of header and data) and the data;
 * any mismatch reads as a miss. The directory's total is kept at most at
 * the bound by removing the oldest-written files first (FIFO).
 *
 * Thread-safety: one nck_rdisk per directory and process, shared by every
 * remote source of it (refcounted); its lock guards the byte count and the
 * eviction, while file reads and writes run outside it.
 */
#ifndef NCK_IO_RDISK_H
#define NCK_IO_RDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nck_rdisk nck_rdisk;

/* The cache under `cache_dir`, bounded by `limit` bytes (the largest
 * bound asked of it in this process); NULL without memory. */
nck_rdisk *nck_rdisk_get(const char *cache_dir, uint64_t limit);

/* Drops a reference from nck_rdisk_get(). */
void nck_rdisk_put(nck_rdisk *d);

/* Reads block `off` of object `key` (exactly `len` bytes) into buf: true
 * on a hit whose header and CRC check out. */
bool nck_rdisk_load(nck_rdisk *d, uint64_t key, uint64_t off, void *buf, size_t len);

/* True when a file for the block exists (unchecked: a hint). */
bool nck_rdisk_has(nck_rdisk *d, uint64_t key, uint64_t off);

/* Keeps the block; failures only cost a later miss. */
void nck_rdisk_store(nck_rdisk *d, uint64_t key, uint64_t off, const void *data, size_t len);

#endif
