/* SPDX-License-Identifier: MIT */
/*
 * nck_test runner: `bin --list` or `bin NAME` (see nck_test.h).
 */
#include "nck_test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct {
	const char *name;
	nck_test_fn fn;
} tests[MAX_TESTS];
static int n_tests;

void nck_test_register(const char *name, nck_test_fn fn)
{
	if (n_tests == MAX_TESTS) {
		fprintf(stderr, "too many tests\n");
		exit(1);
	}
	tests[n_tests].name = name;
	tests[n_tests++].fn = fn;
}

void nck_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Runs a test inside a fresh temporary directory. */
static int run_one(int i)
{
	char dir[] = "/tmp/nck_test.XXXXXX";
	char cmd[64];

	if (!mkdtemp(dir) || chdir(dir) < 0) {
		perror("temp dir");
		return 1;
	}
	tests[i].fn();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (chdir("/") < 0 || system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	printf("PASS %s\n", tests[i].name);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (int i = 0; i < n_tests; i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	if (argc == 2) {
		for (int i = 0; i < n_tests; i++)
			if (strcmp(tests[i].name, argv[1]) == 0)
				return run_one(i);
		fprintf(stderr, "no test named %s\n", argv[1]);
		return 1;
	}
	/* No argument: run them all in order (handy under a debugger). */
	for (int i = 0; i < n_tests; i++)
		if (run_one(i) != 0)
			return 1;
	return 0;
}
