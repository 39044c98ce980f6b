"""Mount and unmount 200 times with readers attached (issue 12, stress):
each cycle mounts a real .nemo, opens files of raw/, merged/ and gguf/,
reads them from two threads while the mount is taken away (a lazy
fusermount3 -u -z, a SIGTERM, or a plain unmount once they are closed),
and checks every byte. Afterwards nothing is left: no mount, no daemon, no
descriptor of the test process; every daemon exited 0 with a clean log
(LeakSanitizer runs at each exit in the sanitizer build); and the daemons'
descriptor counts and VmRSS, sampled at the same point of every cycle, do
not grow from the first cycles to the last."""

import os
import random
import select
import signal
import subprocess
import tarfile
import threading

import numpy as np
import pytest

import nemofs
from test_catalog import fixtures_dir, sources  # noqa: F401 (session fixture)
from test_merged_view import oracle_bytes, parse_safetensors

CYCLES = 200
READS = 20          # preads per reader and file, half before the unmount, half after
BOUND = 20.0        # seconds any awaited event may take


def _wait_unmounted(mnt):
    """Blocks (POLLPRI on /proc/self/mountinfo, no sleeping) until mnt is
    gone from the mount table."""
    with open("/proc/self/mountinfo") as f:
        p = select.poll()
        p.register(f, select.POLLPRI | select.POLLERR)
        while nemofs.is_mounted(mnt):
            assert p.poll(BOUND * 1000), "%s still mounted after %.0f s" % (mnt, BOUND)
            f.seek(0)
            f.read()


def _status(pid):
    """(open descriptors other than pipes, VmRSS in KiB) of a process. Pipes
    are left out: libfuse gives each worker thread a splice pipe pair, and
    how many workers a cycle starts depends on timing."""
    fds = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            fds += not os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("pipe:")
        except FileNotFoundError:
            pass
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


def _expected(fixtures_dir, meta, srcs):  # noqa: F811
    """What the files read hold, from the oracles: the weights member of the
    tarball as Python's tarfile reads it, and merged/'s tensors as the
    fixture's oracle.npz has them (checked on the first cycle's bytes)."""
    with tarfile.open(srcs[-1]) as tf:
        member = max(tf.getmembers(), key=lambda m: m.size if m.isfile() else -1)
        raw = tf.extractfile(member).read()
    npz = np.load(fixtures_dir / "nemo1_tp2" / "oracle.npz")
    name = member.name[2:] if member.name.startswith("./") else member.name
    return name, raw, npz


@pytest.mark.nemo_timeout(600)
def test_mount_unmount_200_times_with_readers(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    member, raw, npz = _expected(fixtures_dir, meta, srcs)
    names = ["raw/" + member, "merged/model.safetensors", "gguf/model-Q8_0.gguf"]
    want = {names[0]: raw}
    my_fds = len(os.listdir("/proc/self/fd"))
    samples = []
    mnt = nemo.mkdir("cycles")
    for cycle in range(CYCLES):
        how = ("lazy", "sigterm", "plain")[cycle % 3]
        d = nemo.start(srcs[-1], mnt=mnt)
        fds = [os.open(mnt / n, os.O_RDONLY) for n in names]
        if cycle == 0:
            # merged/ and gguf/ bytes: merged/ checked against the oracle,
            # gguf/'s then held to its first bytes in every later cycle
            data = os.pread(fds[1], os.fstat(fds[1]).st_size, 0)
            _, tensors = parse_safetensors(data)
            for t in meta["tensors"]:
                assert tensors[t["name"]][2] == oracle_bytes(npz, t["name"]), t["name"]
            want[names[1]] = data
            want[names[2]] = os.pread(fds[2], os.fstat(fds[2]).st_size, 0)
            assert want[names[2]][:4] == b"GGUF"
        detached = threading.Event()
        halfway = threading.Barrier(3, timeout=BOUND)
        errors = []

        def reader(tid):
            rng = random.Random(cycle * 7 + tid)
            try:
                for i in range(2 * READS):
                    if i == READS:
                        halfway.wait()
                        if how != "plain":
                            assert detached.wait(BOUND), "no detach"
                    k = rng.randrange(len(names))
                    size = len(want[names[k]])
                    off = rng.randrange(size)
                    n = rng.randrange(1, 1 << 17)
                    got = os.pread(fds[k], n, off)
                    assert got == want[names[k]][off:off + n], (names[k], off, n)
            except BaseException as e:  # noqa: B036 (reported by the main thread)
                errors.append("cycle %d (%s) reader %d: %r" % (cycle, how, tid, e))
                halfway.abort()

        threads = [threading.Thread(target=reader, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        try:
            halfway.wait()
        except threading.BrokenBarrierError:
            pass
        samples.append(_status(d.pid))
        if how == "lazy":
            r = subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True,
                               text=True, timeout=BOUND)
            assert r.returncode == 0, r.stderr
        elif how == "sigterm":
            d.proc.send_signal(signal.SIGTERM)
        if how != "plain":
            _wait_unmounted(mnt)
            detached.set()
        for t in threads:
            t.join(BOUND)
            assert not t.is_alive(), "cycle %d (%s): a reader hung" % (cycle, how)
        for fd in fds:
            os.close(fd)
        assert not errors, errors
        if how == "plain":
            nemo.stop(d)
        else:
            # the last release ends a detached mount: the daemon exits 0
            rc = nemo._wait_daemon(d)
            assert rc == 0, "cycle %d (%s): exit status %r\n%s" % (cycle, how, rc, d.log())
            bad = nemo.check_log(d.log_path, "daemon stderr")
            assert not bad, bad
    assert len(os.listdir("/proc/self/fd")) == my_fds, "descriptors left in the test process"
    # (only this test's mountpoint: the conformance suite mounts in parallel)
    assert not nemofs.is_mounted(mnt), "mount left behind"
    assert not nemofs.daemon_pids_for(mnt), "daemons left behind"
    # Flat: the last 50 cycles' daemons hold no more descriptors and no more
    # memory (medians, within 10 %) than the first 50's did at the same point.
    first, last = samples[:50], samples[-50:]
    assert max(f for f, _ in last) <= max(f for f, _ in first), samples
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    assert med([r for _, r in last]) <= 1.10 * med([r for _, r in first]), samples
