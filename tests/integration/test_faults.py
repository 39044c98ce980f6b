"""Fault injection and stress (issue 12, suite).

Faults: tests/fault/fault_shim.c (LD_PRELOAD on the daemon) makes chosen
preads/preadvs/splices of one source file fail with EIO, return short, or
stall. Reads that need those bytes must get EIO or the right bytes, reads of
other files must keep working, nothing may hang past a bound or crash, and
no wrong byte is ever returned. The oracle is the source files' bytes.

Stress: 64 threads over every view for NCK_STRESS_SECONDS (default 30) s;
raw/ against the source files, merged/ and tensors/ against bytes checked
once against the fixture's numpy oracle, the other views against their
first single-threaded read (their bytes are checked against oracles by
their own tests); then the daemon's descriptors and VmRSS are flat.
"""

import concurrent.futures
import errno
import io
import os
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import nemofs
import tarmaker
from test_catalog import fixtures_dir, sources  # noqa: F401 (session fixture)
from test_merged_view import oracle_bytes, parse_safetensors

MiB = 1 << 20
BIG = 8 * MiB


def _shim():
    p = os.environ.get("NCK_FAULT_SHIM") or str(
        Path(nemofs.daemon_bin()).parents[1] / "tests" / "libnck_fault_shim.so")
    assert os.path.exists(p), "fault shim not built: %s" % p
    return p


def _env(mode, path, lo, hi, log, stall_ms=300, arm=None):
    env = {"NCK_FAULT_ARM": str(arm)} if arm else {}
    env.update({"LD_PRELOAD": _shim(), "NCK_FAULT_MODE": mode, "NCK_FAULT_PATH": path,
           "NCK_FAULT_FROM": str(lo), "NCK_FAULT_TO": str(hi), "NCK_FAULT_LOG": str(log),
           "NCK_FAULT_STALL_MS": str(stall_ms)})
    # An ASan daemon refuses a preloaded library that comes before its runtime.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    return env


@pytest.fixture
def srcdir(nemo):
    d = nemo.path("src")
    (d / "w").mkdir(parents=True)
    data = {"w/bad.bin": tarmaker.rand_bytes(BIG, 7), "w/good.bin": tarmaker.rand_bytes(BIG, 8)}
    for k, v in data.items():
        (d / k).write_bytes(v)
    return d, data


def _check_read(fd, data, off, ln):
    """pread through the mount: the right bytes, or EIO, or (the kernel
    returning the pages read before a failed one) a short count of right
    bytes; never others."""
    try:
        got = os.pread(fd, ln, off)
    except OSError as e:
        assert e.errno == errno.EIO, e
        return "eio"
    assert got == data[off:off + len(got)], "WRONG BYTES at %d+%d" % (off, len(got))
    if len(got) < len(data[off:off + ln]):
        return "eio"  # a short read: the failed part was not returned
    return "ok"


@pytest.mark.allow_stderr(r".")
@pytest.mark.nemo_timeout(120)
@pytest.mark.parametrize("mode", ["eio", "short", "stall"])
def test_injected_faults(nemo, srcdir, tmp_path, mode):
    d, data = srcdir
    log = tmp_path / "faults.log"
    lo, hi = 2 * MiB, 3 * MiB
    # nopassthrough: a whole directory file would be handed to the kernel,
    # which reads it without the daemon (and without the shim).
    with nemo.mount(d, "nopassthrough", env=_env(mode, "bad.bin", lo, hi, log)) as mnt:
        bad, good = mnt / "raw" / "w" / "bad.bin", mnt / "raw" / "w" / "good.bin"
        outcomes = {"ok": 0, "eio": 0}
        rng = random.Random(1)
        t0 = time.monotonic()

        def one(i):
            r = random.Random(i)
            f = bad if r.random() < 0.6 else good
            with open(f, "rb", buffering=0) as fh:
                off = r.randrange(BIG)
                ln = r.choice((4096, 65536, 1 << 20))
                res = _check_read(fh.fileno(), data["w/" + f.name], off, ln)
            if f == good:
                assert res == "ok", "a read of another file failed"
            return res

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            for res in ex.map(one, range(400)):
                outcomes[res] += 1
        elapsed = time.monotonic() - t0
        # Ranges clear of the fault read right, whatever the mode.
        with open(bad, "rb", buffering=0) as fh:
            assert os.pread(fh.fileno(), MiB, 0) == data["w/bad.bin"][:MiB]
            assert os.pread(fh.fileno(), MiB, 5 * MiB) == data["w/bad.bin"][5 * MiB:6 * MiB]
            hit = _check_read(fh.fileno(), data["w/bad.bin"], lo + 100, 8192)
        assert nemo.daemon(mnt).proc.poll() is None, "daemon died"
        if mode == "eio":
            assert hit == "eio" and outcomes["eio"] > 0
        if mode == "stall":
            assert hit == "ok" and outcomes["eio"] == 0
        assert elapsed < 90, "reads hung: %.0f s" % elapsed
        rng.random()
    assert log.exists() and log.stat().st_size > 0, "no fault was injected"


@pytest.mark.allow_stderr(r".")
@pytest.mark.nemo_timeout(120)
def test_faults_under_views(nemo, fixtures_dir, tmp_path):
    """EIO on the weights file: merged/ and tensors/ reads give EIO or the
    oracle's bytes, raw/ config keeps reading, the daemon survives."""
    meta, srcs = sources(fixtures_dir, "nemo1_single")
    npz = np.load(fixtures_dir / "nemo1_single" / "oracle.npz")
    log = tmp_path / "f.log"
    src = srcs[0]
    # The pickle (the first record) and the central directory (the end)
    # read; tensor bytes between them fail.
    size = (src / "model_weights.ckpt").stat().st_size
    arm = tmp_path / "armed"
    with nemo.mount(src, env=_env("eio", "model_weights.ckpt", size // 4, size * 3 // 4,
                                  log, arm=arm)) as mnt:
        arm.write_bytes(b"")  # the catalog is built: faults from now on
        with pytest.raises(OSError) as ei:
            (mnt / "merged" / "model.safetensors").read_bytes()
        assert ei.value.errno == errno.EIO
        npys = sorted(os.listdir(mnt / "tensors"))
        assert len(npys) == len(meta["tensors"])
        failed = 0
        for n in npys:
            try:
                (mnt / "tensors" / n).read_bytes()
            except OSError as e:
                assert e.errno == errno.EIO
                failed += 1
        assert failed > 0
        assert (mnt / "raw" / "model_config.yaml").read_bytes() == \
            (src / "model_config.yaml").read_bytes()
        assert nemo.daemon(mnt).proc.poll() is None
    assert log.stat().st_size > 0
    del npz


# ---- stress ------------------------------------------------------------------


def _fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def _threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def _rss(pid):
    with open("/proc/%d/status" % pid) as f:
        return int([l for l in f if l.startswith("VmRSS:")][0].split()[1]) * 1024


@pytest.mark.nemo_timeout(300)
def test_stress_every_view(nemo, fixtures_dir):
    seconds = float(os.environ.get("NCK_STRESS_SECONDS", "30"))
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    npz = np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz")
    src = srcs[0]
    # AddressSanitizer's quarantine (256 MiB by default) would fill as freed
    # memory: cut it, and allow for its allocator caches.
    sanitized = "libasan" in subprocess.run(["ldd", nemofs.daemon_bin()], capture_output=True,
                                            text=True).stdout
    env = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                  "quarantine_size_mb=16"]))}
    slack = (48 if sanitized else 16) * MiB
    with nemo.mount(src, env=env) as mnt:
        pid = nemo.daemon(mnt).pid
        expect = {}
        for root, _, names in os.walk(mnt):
            for n in names:
                p = Path(root) / n
                rel = str(p.relative_to(mnt))
                expect[rel] = p.read_bytes()
        # The independent oracles.
        for rel, b in expect.items():
            if rel.startswith("raw/"):
                assert b == (src / rel[4:]).read_bytes(), rel
        _, tensors = parse_safetensors(expect["merged/model.safetensors"])
        for t in meta["tensors"]:
            assert tensors[t["name"]][2] == oracle_bytes(npz, t["name"]), t["name"]
        npys = [n for n in expect if n.startswith("tensors/")]
        assert len(npys) == len(meta["tensors"])  # (test_tensors_view checks their bytes)
        views = {p.split("/")[0] for p in expect}
        assert {"raw", "merged", "tensors", "ranks", "nemo", "qnemo"} <= views, views
        names = sorted(expect)
        counts = []

        def reader(tid, stop):
            rng = random.Random(tid)
            n = nbytes = 0
            while time.monotonic() < stop:
                rel = rng.choice(names)
                want = expect[rel]
                with open(mnt / rel, "rb", buffering=0) as f:
                    # Drop the file's cached pages: reads reach the daemon.
                    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                    for _ in range(8):
                        off = rng.randrange(len(want) + 1)
                        ln = rng.choice((1, 100, 4096, 65536, 1 << 20))
                        got = os.pread(f.fileno(), ln, off)
                        assert got == want[off:off + ln], (rel, off, ln)
                        n += 1
                        nbytes += len(got)
            counts.append((n, nbytes))

        def load(seconds):
            stop = time.monotonic() + seconds
            with concurrent.futures.ThreadPoolExecutor(64) as ex:
                for f in [ex.submit(reader, t, stop) for t in range(64)]:
                    f.result()

        # The first half brings up the worker threads (libfuse keeps a splice
        # pipe pair per thread) and the caches; the second must add nothing.
        load(seconds / 2)
        fds0, rss0, th0 = _fds(pid), _rss(pid), _threads(pid)
        load(seconds / 2)
        # A worker thread started in the second half may own its splice
        # pipe pair (libfuse 3.14 makes them per thread, on first use).
        allowed = fds0 + 2 + 2 * max(0, _threads(pid) - th0)
        reads = sum(c[0] for c in counts)
        nbytes = sum(c[1] for c in counts)
        # The kernel sends RELEASE after close(2) without waiting for it:
        # the daemon's descriptors of raw/ files go as those arrive.
        deadline = time.monotonic() + 20
        while _fds(pid) > allowed and time.monotonic() < deadline:
            os.stat(mnt / "info.json")
            time.sleep(0.05)
        fds1, rss1 = _fds(pid), _rss(pid)
        print("stress: 64 readers, %.0f s, %d reads, %d MiB, fds %d -> %d, VmRSS %d -> %d MiB"
              % (seconds, reads, nbytes // MiB, fds0, fds1, rss0 // MiB, rss1 // MiB))
        assert reads > 1000
        assert fds1 <= allowed, (fds0, fds1, allowed)
        assert rss1 <= rss0 + slack, (rss0, rss1)
