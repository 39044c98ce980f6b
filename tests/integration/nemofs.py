"""Test harness for the nemockptfs integration tests.

Starts/stops daemons without sleep-based synchronisation:

* foreground daemons are started with ``-f -o notify_fd=N`` and we wait for
  "READY=1" on the pipe (select with a timeout, watching a pidfd of the
  daemon at the same time so that an early exit is reported at once);
* unmounting is ``fusermount3 -u`` followed by waiting for the daemon's exit
  status (must be 0);
* background daemons (no ``-f``, mount helpers, mount(8)) are found through
  /proc once the mounting command has returned, and their exit is awaited
  with a pidfd. The test process makes itself a child subreaper while such
  daemons run, so that their exit status can be collected too.

Every daemon's stderr goes to a file that is checked for sanitizer reports
and "ERROR" lines.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import select
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]

READY_TIMEOUT = 20.0
EXIT_TIMEOUT = 20.0
CMD_TIMEOUT = 30.0

# Lines matching these always fail a test.
SANITIZER_PATTERNS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "ThreadSanitizer",
    "MemorySanitizer",
    "runtime error:",
)
# Lines containing this fail a test unless the test allows them: the
# daemon's error lines ("nemockptfs: error: ...", src/util/log.c).
ERROR_PATTERN = ": error: "


def daemon_bin() -> str:
    return os.path.abspath(os.environ.get("NEMOCKPTFS") or
                           str(REPO / "build" / "bin" / "nemockptfs"))


def cli_bin() -> str:
    return os.path.abspath(os.environ.get("NEMOCKPT") or
                           str(REPO / "build" / "bin" / "nemockpt"))


def helper_script() -> str:
    return str(REPO / "mount-helpers" / "mount.nemockpt")


def require_executable(path: str, what: str) -> str:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("%s not found or not executable: %s "
                    "(build the project or set the environment variable)"
                    % (what, path), pytrace=False)
    return path


def daemon_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["NEMOCKPTFS"] = os.path.abspath(daemon_bin())
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------
# Mount table and processes
# --------------------------------------------------------------------------

def _unescape_mountinfo(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mount_points() -> List[str]:
    pts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            pts.append(_unescape_mountinfo(fields[4]))
    return pts


def is_mounted(path) -> bool:
    # abspath, not realpath: never stat a possibly hung FUSE mountpoint.
    return os.path.abspath(str(path)) in mount_points()


def mountinfo_entry(path) -> Tuple[str, str, str]:
    """(source, fstype, mount options) of the mount at path, from
    /proc/self/mountinfo (unescaped; robust to spaces in names)."""
    want = os.path.abspath(str(path))
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.rstrip("\n").split(" ")
            if _unescape_mountinfo(fields[4]) != want:
                continue
            sep = fields.index("-")
            found = (_unescape_mountinfo(fields[sep + 2]), fields[sep + 1],
                     fields[5])
    assert found, "nothing mounted at %s" % want
    return found


def findmnt(path) -> Tuple[str, str]:
    r = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE",
                        "--mountpoint", str(path)],
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert r.returncode == 0, "findmnt found no mount at %s: %s" % (
        path, r.stderr)
    parts = r.stdout.split()
    assert len(parts) == 2, "unexpected findmnt output %r" % r.stdout
    return parts[0], parts[1]


def force_unmount(path) -> None:
    """Best effort, used only on the error path."""
    if not is_mounted(path):
        return
    for cmd in (["fusermount3", "-u", "-z", str(path)],
                ["umount", "-l", str(path)]):
        try:
            subprocess.run(cmd, capture_output=True, timeout=CMD_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if not is_mounted(path):
            return


def daemon_pids_for(mnt) -> List[int]:
    """PIDs of nemockptfs processes whose argv names the mountpoint."""
    want_exe = os.path.realpath(daemon_bin())
    names = {str(mnt), os.path.abspath(str(mnt))}
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % d)
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if exe.endswith(" (deleted)"):
            exe = exe[:-10]
        if exe != want_exe:
            continue
        args = {a.decode(errors="replace") for a in argv}
        if args & names:
            out.append(int(d))
    return out


def wait_pid_exit(pid: int, timeout: float = EXIT_TIMEOUT) -> Optional[int]:
    """Wait (pidfd + select) for an arbitrary process to exit.

    Returns its exit code when it is our child (or was re-parented to us as
    child subreaper), None when the status cannot be collected. Raises
    TimeoutError when it is still alive after `timeout`.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return _try_reap(pid)
    try:
        r, _, _ = select.select([pidfd], [], [], timeout)
        if not r:
            raise TimeoutError("process %d still alive after %.0fs"
                               % (pid, timeout))
    finally:
        os.close(pidfd)
    return _try_reap(pid)


def _try_reap(pid: int) -> Optional[int]:
    try:
        wpid, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool) -> bool:
    return _libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0


# --------------------------------------------------------------------------
# Log checks
# --------------------------------------------------------------------------

def bad_log_lines(text: str, allow: Sequence[re.Pattern]) -> List[str]:
    bad = []
    for line in text.splitlines():
        if any(p in line for p in SANITIZER_PATTERNS):
            bad.append(line)
        elif ERROR_PATTERN in line and not any(a.search(line) for a in allow):
            bad.append(line)
    return bad


# --------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------

@dataclass
class Daemon:
    proc: subprocess.Popen
    src: str
    mnt: Path
    log_path: Path
    out_path: Path
    argv: List[str]
    stopped: bool = False
    returncode: Optional[int] = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Result:
    argv: List[str]
    returncode: int
    stdout: str
    stderr: str


class Harness:
    def __init__(self, tmp: Path, allow: Iterable[str] = (),
                 timeout: float = 90.0):
        self.tmp = Path(tmp)
        self.allow = [re.compile(a) for a in allow]
        self.daemons: List[Daemon] = []
        self.bg: Dict[int, Path] = {}          # background daemon pid -> mnt
        self.mounts: List[Path] = []
        self.checked_logs: set = set()
        self.extra_logs: List[Tuple[str, Path]] = []
        self.errors: List[str] = []
        self._n = 0
        self._subreaper = False
        self.timed_out = False
        self._lock = threading.Lock()
        self._watchdog = threading.Timer(timeout, self._on_timeout)
        self._watchdog.daemon = True
        self._watchdog.start()
        self.timeout = timeout

    # -- paths -------------------------------------------------------------
    def path(self, name: str) -> Path:
        self._n += 1
        return self.tmp / ("%s.%d" % (name, self._n))

    def mkdir(self, name: str = "mnt") -> Path:
        p = self.path(name)
        p.mkdir(parents=True)
        return p

    # -- foreground daemon --------------------------------------------------
    def command(self, src, mnt, opts: Sequence[str] = (),
                flags: Sequence[str] = ("-f",)) -> List[str]:
        argv = [require_executable(daemon_bin(), "daemon (NEMOCKPTFS)"),
                str(src), str(mnt)] + list(flags)
        if opts:
            argv += ["-o", ",".join(opts)]
        return argv

    def _spawn_notify(self, src, mnt, opts, flags, env, cwd=None):
        rfd, wfd = os.pipe()
        logp = self.path("daemon-stderr.log")
        outp = self.path("daemon-stdout.log")
        argv = self.command(src, mnt, list(opts) + ["notify_fd=%d" % wfd],
                            flags)
        with open(logp, "wb") as le, open(outp, "wb") as lo:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=lo, stderr=le,
                                        pass_fds=(wfd,), cwd=cwd,
                                        env=env or daemon_env())
            finally:
                os.close(wfd)
        d = Daemon(proc, str(src), Path(mnt), logp, outp, argv)
        with self._lock:
            self.daemons.append(d)
            self.mounts.append(Path(mnt))
        try:
            state, buf = wait_ready(proc, rfd, READY_TIMEOUT)
        finally:
            os.close(rfd)
        return d, state, buf

    def start(self, src, *opts: str, mnt: Optional[Path] = None,
              flags: Sequence[str] = ("-f",),
              env: Optional[Dict[str, str]] = None, cwd=None) -> Daemon:
        """Start a foreground daemon and wait until the mount is live."""
        mnt = Path(mnt) if mnt is not None else self.mkdir("mnt")
        d, state, buf = self._spawn_notify(src, mnt, opts, flags, env, cwd)
        if state == "ready":
            return d
        if state == "timeout":
            d.proc.kill()
            d.proc.wait()
            d.stopped = True
            force_unmount(mnt)
            pytest.fail("daemon did not report READY=1 within %.0fs "
                        "(got %r)\ncmd: %s\nstderr:\n%s"
                        % (READY_TIMEOUT, buf, " ".join(d.argv), d.log()),
                        pytrace=False)
        rc = d.proc.wait()
        d.stopped, d.returncode = True, rc
        force_unmount(mnt)
        pytest.fail("daemon exited (status %s) before READY=1\ncmd: %s\n"
                    "stderr:\n%s" % (rc, " ".join(d.argv), d.log()),
                    pytrace=False)

    def stop(self, d: Daemon, how: str = "fusermount") -> None:
        """Unmount, wait for exit status 0, check the daemon's log."""
        errors = []
        if how == "fusermount":
            cmd = ["fusermount3", "-u", str(d.mnt)]
        elif how == "umount":
            cmd = ["umount", str(d.mnt)]
        else:
            raise ValueError(how)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=CMD_TIMEOUT)
            if r.returncode != 0:
                errors.append("%s failed (%d): %s" % (
                    " ".join(cmd), r.returncode, r.stderr.strip()))
                force_unmount(d.mnt)
        except subprocess.TimeoutExpired:
            errors.append("%s timed out" % " ".join(cmd))
            force_unmount(d.mnt)
        rc = self._wait_daemon(d)
        if rc is None:
            errors.append("daemon did not exit within %.0fs after unmount; "
                          "killed" % EXIT_TIMEOUT)
        elif rc != 0:
            errors.append("daemon exit status %d after unmount (want 0)"
                          % rc)
        if is_mounted(d.mnt):
            errors.append("%s still mounted after unmount" % d.mnt)
            force_unmount(d.mnt)
        errors += self.check_log(d.log_path, "daemon stderr")
        if errors:
            pytest.fail("\n".join(errors) + "\ncmd: %s\nstderr:\n%s"
                        % (" ".join(d.argv), d.log()), pytrace=False)

    def _wait_daemon(self, d: Daemon,
                     timeout: float = EXIT_TIMEOUT) -> Optional[int]:
        try:
            rc = d.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()
            rc = None
        d.stopped, d.returncode = True, rc
        return rc

    def signal_and_wait(self, d: Daemon, sig: int) -> int:
        d.proc.send_signal(sig)
        rc = self._wait_daemon(d)
        if rc is None:
            force_unmount(d.mnt)
            pytest.fail("daemon ignored signal %d for %.0fs"
                        % (sig, EXIT_TIMEOUT), pytrace=False)
        return rc

    def _stop_quiet(self, d: Daemon) -> None:
        if d.stopped:
            return
        try:
            subprocess.run(["fusermount3", "-u", str(d.mnt)],
                           capture_output=True, timeout=CMD_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        force_unmount(d.mnt)
        if self._wait_daemon(d) is None:
            force_unmount(d.mnt)

    @contextlib.contextmanager
    def mount(self, src, *opts: str, mnt: Optional[Path] = None,
              flags: Sequence[str] = ("-f",),
              env: Optional[Dict[str, str]] = None, cwd=None):
        """Context manager: yields the live mountpoint, always unmounts."""
        d = self.start(src, *opts, mnt=mnt, flags=flags, env=env, cwd=cwd)
        try:
            yield d.mnt
        except BaseException:
            self._stop_quiet(d)
            raise
        self.stop(d)

    def daemon(self, mnt) -> Daemon:
        for d in reversed(self.daemons):
            if Path(d.mnt) == Path(mnt):
                return d
        raise KeyError(mnt)

    # -- commands expected to fail -----------------------------------------
    def expect_failure(self, src, mnt, *opts: str,
                       foreground: bool = True) -> Result:
        """Run the daemon on bad input; it must exit non-zero, mount nothing.

        Foreground: -f plus notify_fd, so that an unexpected successful
        mount is noticed without hanging. Background: plain invocation.
        """
        if foreground:
            d, state, buf = self._spawn_notify(src, mnt, opts, ("-f",), None)
            if state == "ready":
                self._stop_quiet(d)
                pytest.fail("daemon mounted %s although it should have "
                            "failed\ncmd: %s\nstderr:\n%s"
                            % (src, " ".join(d.argv), d.log()),
                            pytrace=False)
            if state == "timeout":
                d.proc.kill()
                d.proc.wait()
                d.stopped = True
                force_unmount(mnt)
                pytest.fail("daemon neither failed nor became ready within "
                            "%.0fs\nstderr:\n%s" % (READY_TIMEOUT, d.log()),
                            pytrace=False)
            rc = d.proc.wait()
            d.stopped, d.returncode = True, rc
            self.checked_logs.add(d.log_path)
            res = Result(d.argv, rc, d.out_path.read_text(errors="replace"),
                         d.log())
        else:
            argv = self.command(src, mnt, opts, flags=())
            res = self.run(argv, mounts=(mnt,))
            if res.returncode == 0:
                pytest.fail("background daemon exited 0 on bad input\n"
                            "cmd: %s\nstderr:\n%s"
                            % (" ".join(argv), res.stderr), pytrace=False)
        san = [l for l in res.stderr.splitlines()
               if any(p in l for p in SANITIZER_PATTERNS)]
        assert not san, "sanitizer report:\n" + res.stderr
        assert not is_mounted(mnt), "%s mounted after failure" % mnt
        left = daemon_pids_for(mnt)
        assert not left, "daemon processes left running: %r" % left
        return res

    # -- arbitrary commands (helpers, -V, background mode) -----------------
    def run(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None,
            mounts: Sequence[Path] = (), timeout: float = CMD_TIMEOUT,
            cwd=None) -> Result:
        """Run a command with stdout/stderr going to files.

        Files, not pipes: a daemonised process inheriting a pipe would keep
        it open and make the call hang. Mountpoints listed in `mounts` are
        cleaned up at teardown if still mounted, and any nemockptfs daemon
        serving them is tracked (and waited for) as a background daemon.
        """
        if mounts and not self._subreaper:
            self._subreaper = set_subreaper(True)
        outp = self.path("cmd-stdout.log")
        errp = self.path("cmd-stderr.log")
        with self._lock:
            self.mounts.extend(Path(m) for m in mounts)
        with open(outp, "wb") as fo, open(errp, "wb") as fe:
            try:
                p = subprocess.run(list(map(str, argv)),
                                   stdin=subprocess.DEVNULL, stdout=fo,
                                   stderr=fe, env=env or daemon_env(),
                                   timeout=timeout, cwd=cwd)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = None
        res = Result([str(a) for a in argv], rc if rc is not None else -999,
                     outp.read_text(errors="replace"),
                     errp.read_text(errors="replace"))
        for m in mounts:
            for pid in daemon_pids_for(m):
                with self._lock:
                    self.bg[pid] = Path(m)
        if rc is None:
            pytest.fail("command timed out after %.0fs: %s\nstderr:\n%s"
                        % (timeout, " ".join(res.argv), res.stderr),
                        pytrace=False)
        self.extra_logs.append((" ".join(res.argv), errp))
        return res

    def bg_daemon(self, mnt) -> int:
        pids = [p for p, m in self.bg.items() if Path(m) == Path(mnt)]
        assert len(pids) == 1, (
            "expected exactly one nemockptfs process serving %s, found %r"
            % (mnt, pids))
        return pids[0]

    def unmount_bg(self, mnt, cmd: Optional[Sequence[str]] = None,
                   env=None) -> Optional[int]:
        """Unmount a background mount and wait for its daemon to exit.

        Returns the daemon's exit status when it could be collected.
        """
        pid = self.bg_daemon(mnt)
        cmd = list(cmd) if cmd else ["fusermount3", "-u", str(mnt)]
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=CMD_TIMEOUT, env=env)
        assert r.returncode == 0, "%s failed: %s" % (" ".join(cmd), r.stderr)
        try:
            rc = wait_pid_exit(pid)
        except TimeoutError as e:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("daemon did not exit after unmount: %s" % e,
                        pytrace=False)
        with self._lock:
            self.bg.pop(pid, None)
        assert not is_mounted(mnt), "%s still mounted" % mnt
        if rc is not None:
            assert rc == 0, "background daemon exit status %d (want 0)" % rc
        return rc

    # -- logs --------------------------------------------------------------
    def check_log(self, path: Path, label: str) -> List[str]:
        self.checked_logs.add(path)
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return []
        bad = bad_log_lines(text, self.allow)
        if bad:
            return ["%s contains forbidden lines:\n  %s"
                    % (label, "\n  ".join(bad))]
        return []

    # -- watchdog / teardown -----------------------------------------------
    def _on_timeout(self) -> None:
        self.timed_out = True
        with self._lock:
            daemons = list(self.daemons)
            bg = dict(self.bg)
            mounts = list(self.mounts)
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()   # aborts the FUSE connection: blocked I/O
        for pid in bg:           # in the test returns ENOTCONN
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for m in mounts:
            force_unmount(m)

    def finish(self) -> List[str]:
        self._watchdog.cancel()
        errors = list(self.errors)
        if self.timed_out:
            errors.append("test exceeded its %.0fs time limit; daemons "
                          "were killed" % self.timeout)
        for d in self.daemons:
            if not d.stopped:
                if d.proc.poll() is None and not self.timed_out:
                    errors.append("daemon for %s still running at teardown"
                                  % d.mnt)
                self._stop_quiet(d)
            if d.log_path not in self.checked_logs:
                errors += self.check_log(d.log_path, "daemon stderr")
        for pid, m in list(self.bg.items()):
            force_unmount(m)
            try:
                wait_pid_exit(pid, 5)
            except TimeoutError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for m in self.mounts:
            if is_mounted(m):
                errors.append("%s still mounted at teardown" % m)
                force_unmount(m)
        for label, p in self.extra_logs:
            if p in self.checked_logs:
                continue
            self.checked_logs.add(p)
            text = p.read_text(errors="replace")
            san = [l for l in text.splitlines()
                   if any(s in l for s in SANITIZER_PATTERNS)]
            if san:
                errors.append("sanitizer report from %s:\n  %s"
                              % (label, "\n  ".join(san)))
        if self._subreaper:
            set_subreaper(False)
        return errors


def wait_ready(proc: subprocess.Popen, rfd: int,
               timeout: float) -> Tuple[str, bytes]:
    """Wait for READY=1 on rfd or the exit of proc. No sleeping."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        deadline = time.monotonic() + timeout
        buf = b""
        pipe_open = True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", buf
            fds = [pidfd] + ([rfd] if pipe_open else [])
            r, _, _ = select.select(fds, [], [], remaining)
            if rfd in r:
                chunk = os.read(rfd, 4096)
                if chunk:
                    buf += chunk
                    if b"READY=1\n" in buf:
                        return "ready", buf
                else:
                    pipe_open = False
                continue
            if pidfd in r:
                return "exited", buf
    finally:
        os.close(pidfd)


# --------------------------------------------------------------------------
# Tree comparison and mount checks
# --------------------------------------------------------------------------

CHUNK = 1 << 20


def walk_tree(root) -> Tuple[set, Dict[str, int], set]:
    """(dirs, {file: size}, symlinks-and-others) relative to root."""
    root = str(root)
    dirs, files, others = set(), {}, set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        names = os.listdir(dirpath)
        assert len(names) == len(set(names)), \
            "duplicate directory entries in %s: %r" % (dirpath, names)
        for dn in list(dirnames):
            p = os.path.join(dirpath, dn)
            r = os.path.join(rel, dn)
            if os.path.islink(p):
                others.add(r)
                dirnames.remove(dn)
            else:
                dirs.add(r)
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            r = os.path.join(rel, fn)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                files[r] = st.st_size
            else:
                others.add(r)
    return dirs, files, others


def first_difference(a: str, b: str) -> Optional[int]:
    """Offset of the first differing byte of two files, None if equal."""
    off = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(CHUNK), fb.read(CHUNK)
            if ca != cb:
                n = min(len(ca), len(cb))
                for i in range(n):
                    if ca[i] != cb[i]:
                        return off + i
                return off + n
            if not ca:
                return None
            off += len(ca)


def assert_same_tree(mounted_root, ref_root, check_bytes: bool = True,
                     ref_ignores_symlinks: bool = False) -> Tuple[set, dict]:
    """mounted_root (e.g. MNT/raw) must mirror ref_root exactly."""
    mdirs, mfiles, mothers = walk_tree(mounted_root)
    rdirs, rfiles, rothers = walk_tree(ref_root)
    assert not mothers, "non-regular entries in the mount: %r" % mothers
    if not ref_ignores_symlinks:
        assert not rothers, "oracle tree has non-regular entries %r" % rothers
    assert mdirs == rdirs, (
        "directory sets differ:\n only in mount: %r\n only in oracle: %r"
        % (sorted(mdirs - rdirs), sorted(rdirs - mdirs)))
    assert set(mfiles) == set(rfiles), (
        "file sets differ:\n only in mount: %r\n only in oracle: %r"
        % (sorted(set(mfiles) - set(rfiles)),
           sorted(set(rfiles) - set(mfiles))))
    for rel, size in rfiles.items():
        assert mfiles[rel] == size, "size of %s: mount %d, oracle %d" % (
            rel, mfiles[rel], size)
    if check_bytes:
        for rel in rfiles:
            d = first_difference(os.path.join(str(mounted_root), rel),
                                 os.path.join(str(ref_root), rel))
            assert d is None, "%s differs from oracle at byte %d" % (rel, d)
    return mdirs, mfiles


def expected_file_mode(member_mode: int, umask: Optional[int] = None) -> int:
    """Without -o umask=: the source's bits less write bits (squashfuse);
    with it: 0444, or 0555 if executable in the source, less the umask."""
    if umask is None:
        return member_mode & 0o555
    m = 0o444 | (0o111 if member_mode & 0o111 else 0)
    return m & ~umask


def expected_dir_mode(member_mode: Optional[int] = None, umask: int = 0) -> int:
    """A directory member's bits less write bits; 0555 for a directory only
    implied by paths, or with -o umask= (less the umask)."""
    if member_mode is None:
        return 0o555 & ~umask
    return member_mode & 0o555


def read_info(mnt) -> dict:
    with open(os.path.join(str(mnt), "info.json"), "rb") as f:
        data = f.read()
    info = json.loads(data)
    assert isinstance(info, dict), "info.json is not a JSON object"
    return info


def check_info(mnt, src, container: str, files: Dict[str, int]) -> dict:
    info = read_info(mnt)
    for k in ("source", "container", "members", "total_bytes"):
        assert k in info, "info.json lacks %r: %r" % (k, info)
    assert os.path.isabs(info["source"]), info["source"]
    assert info["source"] in (os.path.abspath(str(src)),
                              os.path.realpath(str(src))), (
        info["source"], str(src))
    assert info["container"] == container, info
    assert info["members"] == len(files), (info["members"], len(files))
    assert info["total_bytes"] == sum(files.values()), (
        info["total_bytes"], sum(files.values()))
    return info


def read_file(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def pread_all(fd: int, length: int, offset: int) -> bytes:
    """pread until `length` bytes or EOF (FUSE may return short reads)."""
    out = bytearray()
    while len(out) < length:
        chunk = os.pread(fd, length - len(out), offset + len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def expect_errno(err: int, fn, *args, **kw) -> None:
    try:
        fn(*args, **kw)
    except OSError as e:
        assert e.errno == err, "%s%r: errno %s (%s), want %s" % (
            getattr(fn, "__name__", fn), args, e.errno,
            errno.errorcode.get(e.errno), errno.errorcode[err])
    else:
        raise AssertionError("%s%r succeeded, want %s" % (
            getattr(fn, "__name__", fn), args, errno.errorcode[err]))
