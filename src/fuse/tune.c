/* SPDX-License-Identifier: MIT */
/*
 * Mount tuning that libfuse has no API for: the kernel readahead of the
 * mount's backing device info (bdi), found through /proc/self/mountinfo.
 */
#include "fuse/ops.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nemockpt/common.h"
#include "nemockpt/log.h"

/* Decodes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void tune_unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

int nck_fuse_find_mount(char *dev, size_t size, const char *dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, id[64], mnt[4096], *sep;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -ENOENT;
	while (getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint opts ... - fstype source superopts */
		if (sscanf(line, "%*s %*s %63s %*s %4095s", id, mnt) != 2)
			continue;
		sep = strstr(line, " - ");
		tune_unescape(mnt);
		if (sep && strncmp(sep + 3, "fuse." NCK_SUBTYPE " ", strlen(NCK_SUBTYPE) + 6) == 0 &&
		    strcmp(mnt, dir) == 0) {
			snprintf(dev, size, "%s", id);
			rc = 0; /* keep going: the last match is the newest */
		}
	}
	free(line);
	fclose(f);
	return rc;
}

void nck_fuse_tune_read_ahead(const char *dir, unsigned kb)
{
	char dev[64], path[128];
	bool ok = false;
	FILE *f;

	if (kb == 0 || nck_fuse_find_mount(dev, sizeof(dev), dir) < 0)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	f = fopen(path, "we");
	if (f) {
		ok = fprintf(f, "%u\n", kb) > 0;
		ok = fclose(f) == 0 && ok;
	}
	nck_log(NCK_LOG_DEBUG, "read_ahead_kb=%u %s bdi %s%s%s", kb, ok ? "set on" : "not applied to",
		dev, ok ? "" : ": ", ok ? "" : strerror(errno));
}
