/* SPDX-License-Identifier: MIT */
/*
 * nck_fuse_run: mounts a built vfs and serves it until unmounted.
 *
 * The order matters for readiness: the vfs is complete before this is
 * called, the kernel mount is made, then the notify fd (if any) gets
 * "READY=1\n", then the process detaches (unless in the foreground) — so
 * when the command returns, the mount is live — and then the multithreaded
 * loop runs. SIGTERM/SIGINT detach the mount and serve the files still open
 * until the last is closed (a second signal or -o shutdown_timeout= stops at
 * once); SIGHUP is ignored.
 *
 * Thread-safety: called once from main.
 */
#ifndef NCK_FUSE_SESSION_H
#define NCK_FUSE_SESSION_H

#include "fuse/opts.h"
#include "nemockpt/vfs.h"

/* Returns the process exit status: 0 after a clean unmount, 1 on failure
 * (reason logged). */
int nck_fuse_run(nck_vfs *vfs, const nck_fuse_opts *opts, const char *argv0);

/*
 * If `path` is a dead nemockpt mount ("Transport endpoint is not connected":
 * its daemon was killed), detaches it so that a new mount can take its
 * place. Returns 0 (nothing to do, or replaced), -ENOTCONN for a dead mount
 * that is not nemockpt's, or a negative errno from the unmount.
 */
int nck_fuse_clear_dead_mount(const char *path);

#endif
