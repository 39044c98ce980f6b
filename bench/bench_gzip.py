#!/usr/bin/python3
"""gzip .nemo benchmark: seek-index build against `gzip -dc`, random 1 MiB
reads through a mount, index size, second-mount time.

Usage: bench/bench_gzip.py [--size-mb 1024] [--build build-gz-rel] [--keep DIR]

Writes a tarball with one member of mixed data (64 KiB runs, half random
bytes, half text-like), compressed by `tar -czf` (gzip's default level 6), into a
temporary directory, with a private $XDG_CACHE_HOME for the index. Needs
FUSE (fusermount3) for the read and mount timings.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_mixed(path: Path, size: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    words = [bytes(rnd.choice(b"abcdefghijklmnop ") for _ in range(rnd.randint(2, 10)))
             for _ in range(500)]
    text = bytearray()
    while len(text) < 4 << 20:
        text += rnd.choice(words)
    with open(path, "wb") as f:
        done = 0
        while done < size:
            n = min(65536, size - done)
            if rnd.random() < 0.5:
                f.write(rnd.randbytes(n))
            else:
                o = rnd.randrange(0, len(text) - n)
                f.write(text[o:o + n])
            done += n


def timed(argv, env=None, stdout=subprocess.DEVNULL):
    t = time.monotonic()
    r = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(map(str, argv)), r.stderr.decode()))
    return time.monotonic() - t, r


def mount(daemon, src, mnt, env):
    """Starts the daemon in the foreground; returns (proc, seconds to READY)."""
    rfd, wfd = os.pipe()
    t = time.monotonic()
    p = subprocess.Popen([daemon, str(src), str(mnt), "-f", "-o", "notify_fd=%d" % wfd],
                         pass_fds=(wfd,), env=env, stderr=subprocess.DEVNULL)
    os.close(wfd)
    buf = b""
    while b"READY=1" not in buf:
        chunk = os.read(rfd, 100)
        if not chunk:
            sys.exit("daemon exited before READY")
        buf += chunk
    os.close(rfd)
    return p, time.monotonic() - t


def unmount(p, mnt):
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    p.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--build", default=str(REPO / "build-gz-rel"))
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--keep", help="work directory to use and keep")
    a = ap.parse_args()
    bindir = Path(a.build) / "bin"
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-gzip-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "xdg"))
    try:
        tree = work / "tree"
        tree.mkdir(exist_ok=True)
        member = tree / "model_weights.ckpt"
        size = a.size_mb << 20
        arc = work / "model.nemo"
        if not arc.exists():
            write_mixed(member, size)
            subprocess.run(["tar", "-czf", str(arc), "-C", str(tree), "."], check=True)
            member.unlink()
        csize = arc.stat().st_size
        shutil.rmtree(work / "xdg", ignore_errors=True)
        print("archive: %d MiB uncompressed, %d MiB gzip (%.2f)" % (size >> 20, csize >> 20,
                                                                 csize / size))
        # Warm the page cache so both sides read from memory.
        subprocess.run(["cat", str(arc)], stdout=subprocess.DEVNULL, check=True)
        t_gz, _ = timed(["gzip", "-dc", str(arc)])
        print("gzip -dc > /dev/null:        %6.2f s  %7.1f MiB/s of output" % (t_gz, size / t_gz / 2**20))
        t_idx, _ = timed([str(bindir / "nemockpt"), "members", str(arc)], env=env)
        print("index build (nemockpt members, first): %6.2f s  %7.1f MiB/s of output "
              "(throughput %.2fx gzip -dc's)" % (t_idx, size / t_idx / 2**20, t_gz / t_idx))
        t_2, _ = timed([str(bindir / "nemockpt"), "members", str(arc)], env=env)
        print("second open (index loaded, CLI):      %6.3f s" % t_2)
        idx = list((work / "xdg" / "nemockpt").glob("*.gzidx"))
        isz = sum(p.stat().st_size for p in idx)
        print("index size: %.1f MiB = %.3f%% of the archive, %.3f%% of the output"
              % (isz / 2**20, 100 * isz / csize, 100 * isz / size))
        mnt = work / "mnt"
        mnt.mkdir(exist_ok=True)
        p, t_mount = mount(str(bindir / "nemockptfs"), arc, mnt, env)
        try:
            info = json.loads((mnt / "info.json").read_text())
            print("second mount: READY after %.3f s (gzip index %s, builds %d, %d checkpoints)"
                  % (t_mount, info["gzip"]["index"], info["gzip"]["index_builds"],
                     info["gzip"]["checkpoints"]))
            rnd = random.Random(5)
            lat = []
            fd = os.open(mnt / "raw" / "model_weights.ckpt", os.O_RDONLY)
            try:
                for _ in range(a.reads):
                    off = rnd.randrange(0, size - (1 << 20))
                    t = time.monotonic()
                    n = len(os.pread(fd, 1 << 20, off))
                    lat.append(time.monotonic() - t)
                    assert n > 0
            finally:
                os.close(fd)
            lat.sort()
            print("random 1 MiB reads (%d, cold chunks): median %.1f ms, p99 %.1f ms, max %.1f ms"
                  % (len(lat), 1e3 * statistics.median(lat), 1e3 * lat[int(len(lat) * 0.99) - 1],
                     1e3 * lat[-1]))
        finally:
            unmount(p, mnt)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
