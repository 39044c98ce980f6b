/* SPDX-License-Identifier: MIT */
/*
 * Process limits the programs adjust at start-up (see nemockpt/common.h).
 * Thread-safety: call before threads exist.
 */
#include "nemockpt/common.h"

#include <sys/resource.h>

void nck_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}
