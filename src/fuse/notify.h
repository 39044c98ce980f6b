/* SPDX-License-Identifier: MIT */
/*
 * Readiness and status for service managers: the sd_notify(3) datagram
 * protocol (one AF_UNIX datagram of "KEY=VALUE\n" lines to $NOTIFY_SOCKET),
 * written here rather than linked from libsystemd. A socket name starting
 * with '@' is in the abstract namespace.
 *
 * Thread-safety: any thread; each call opens and closes its own socket.
 */
#ifndef NCK_FUSE_NOTIFY_H
#define NCK_FUSE_NOTIFY_H

/*
 * Sends the formatted state ("READY=1", "STATUS=...", "STOPPING=1") when
 * $NOTIFY_SOCKET is set. Returns 0 (also when unset) or a negative errno;
 * failures are not fatal to the caller.
 */
int nck_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
