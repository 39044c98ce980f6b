/* SPDX-License-Identifier: MIT */
/*
 * nck_grow: room for one more element in a growing array.
 *
 * Thread-safety: pure (the caller owns the array).
 */
#ifndef NCK_UTIL_GROW_H
#define NCK_UTIL_GROW_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Makes sure *arr (n of *cap elements of `elem` bytes used) has room for
 * one more, doubling its capacity from `first`. 0, or -ENOMEM with *arr
 * and *cap unchanged.
 */
static inline int nck_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t first)
{
	size_t ncap = *cap ? *cap * 2 : first;
	void *p;

	if (n < *cap)
		return 0;
	if (ncap <= *cap || ncap > SIZE_MAX / elem)
		return -ENOMEM;
	if (!(p = realloc(*arr, ncap * elem)))
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

#endif
