/* SPDX-License-Identifier: MIT */
/*
 * nck_test: the project's small unit-test harness (libarchive's model).
 *
 * NCK_TEST(name) { ... } defines a test; each test binary runs one test per
 * invocation (`bin name`), in a new temporary directory, so ctest gets one
 * entry per test and failures stay isolated. `bin --list` prints the names.
 * Assertions print both sides and the location, and end the test.
 * Exit status: 0 pass, 1 fail, 77 skip.
 *
 * Thread-safety: tests are single-threaded unless a test starts threads.
 */
#ifndef NCK_TESTS_HARNESS_NCK_TEST_H
#define NCK_TESTS_HARNESS_NCK_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*nck_test_fn)(void);

/* Registers a test; called by the constructors NCK_TEST generates. */
void nck_test_register(const char *name, nck_test_fn fn);

/* Reports a failed check and ends the test with status 1. */
void nck_test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

#define NCK_TEST(name)                                                      \
	static void test_##name(void);                                      \
	__attribute__((constructor)) static void test_register_##name(void) \
	{                                                                   \
		nck_test_register(#name, test_##name);                      \
	}                                                                   \
	static void test_##name(void)

#define ASSERT_TRUE(c)                                                          \
	do {                                                                    \
		if (!(c))                                                       \
			nck_test_fail(__FILE__, __LINE__, "expected true: %s", #c); \
	} while (0)

#define ASSERT_EQ_INT(a, b)                                                              \
	do {                                                                             \
		long long a_ = (long long)(a), b_ = (long long)(b);                      \
		if (a_ != b_)                                                            \
			nck_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, \
				      a_, b_);                                           \
	} while (0)

#define ASSERT_EQ_STR(a, b)                                                                 \
	do {                                                                                \
		const char *a_ = (a), *b_ = (b);                                            \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                      \
			nck_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
				      a_ ? a_ : "(null)", b_ ? b_ : "(null)");               \
	} while (0)

#define ASSERT_CONTAINS(hay, needle)                                                     \
	do {                                                                             \
		const char *h_ = (hay), *n_ = (needle);                                  \
		if (!h_ || !strstr(h_, n_))                                              \
			nck_test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", \
				      h_ ? h_ : "(null)", n_);                           \
	} while (0)

#endif
