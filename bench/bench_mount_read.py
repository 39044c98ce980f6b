#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Foundation benchmarks (docs/PERFORMANCE.md): mount time of a large
.nemo-like tar, and read throughput through the mount against the same
bytes read directly from an extracted file, for nemockptfs and archivemount.

usage: bench/bench_mount_read.py [--dir D] [--nemockptfs PATH] [--runs N]
       [--member-gib G] [--read-ahead-kb K ...]

Everything it writes lives under --dir (default /var/tmp/nemockpt-bench):
  sparse-*.tar  sparse tars of 1,000 members of 1 KiB, 6 MiB, 64 MiB (mount time)
  big.tar       2 GiB member + 8 x 256 MiB members, real random bytes
  extracted/    the same members extracted by tar (the direct-read baseline)
Backing files are read once before each figure so that they sit in the page
cache: the figures compare FUSE overhead, not the disk.
"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time

MiB = 1 << 20
CHUNK = 1 * MiB


def read_file(path, max_seconds=None):
    """Reads a file with 1 MiB reads, whole or until max_seconds passed;
    returns bytes read."""
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    total = 0
    deadline = time.perf_counter() + max_seconds if max_seconds else None
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(mv)
            if not n:
                return total
            total += n
            if deadline and time.perf_counter() > deadline:
                return total


def timed_read(paths, max_seconds=None):
    """Reads `paths` in parallel threads (one each), whole or for at most
    max_seconds; returns GB/s."""
    results = [0] * len(paths)

    def work(i):
        results[i] = read_file(paths[i], max_seconds)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(paths))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    return sum(results) / dt / 1e9


def make_sparse_tar(path, members=1000, member_size=6 * MiB + 12345):
    """~6 GiB tar of `members` members whose data are holes (no disk used)."""
    if os.path.exists(path):
        return
    with open(path, "wb") as f:
        for i in range(members):
            ti = tarfile.TarInfo(f"./model_weights/layer_{i:04d}/__{i}_0.distcp")
            ti.size = member_size
            f.write(ti.tobuf(tarfile.PAX_FORMAT))
            f.seek(member_size + (-member_size) % 512, os.SEEK_CUR)
        f.write(b"\0" * 1024)


def make_data_tar(d, member_gib):
    """2 GiB member plus 8 x 256 MiB members of random bytes, and their extraction."""
    tar = os.path.join(d, "big.tar")
    ext = os.path.join(d, "extracted")
    if os.path.exists(tar) and os.path.isdir(ext):
        return tar, ext
    src = os.path.join(d, "src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "weights.bin"), "wb") as f:
        for _ in range(int(member_gib * 1024 / 64)):
            f.write(os.urandom(64 * MiB))
    for i in range(8):
        with open(os.path.join(src, f"shard_{i}.bin"), "wb") as f:
            for _ in range(4):
                f.write(os.urandom(64 * MiB))
    with tarfile.open(tar, "w:") as t:
        t.add(src, arcname=".")
    shutil.rmtree(src)
    os.makedirs(ext, exist_ok=True)
    subprocess.run(["tar", "-xf", tar, "-C", ext], check=True)
    return tar, ext


class Mount:
    """A mount of `src` at `mnt` by nemockptfs (notify_fd readiness) or archivemount."""

    def __init__(self, kind, exe, src, mnt, read_ahead_kb=None):
        self.kind, self.mnt, self.proc = kind, mnt, None
        t0 = time.perf_counter()
        if kind == "nemockptfs":
            r, w = os.pipe()
            opts = f"notify_fd={w}" + (f",read_ahead_kb={read_ahead_kb}" if read_ahead_kb else "")
            self.proc = subprocess.Popen([exe, src, mnt, "-f", "-o", opts],
                                         pass_fds=(w,), stderr=subprocess.PIPE)
            os.close(w)
            with os.fdopen(r, "rb") as rf:
                if rf.read() != b"READY=1\n":
                    raise RuntimeError(self.proc.stderr.read().decode())
        else:
            subprocess.run(["archivemount", "-o", "ro,readonly", src, mnt], check=True)
        self.mount_s = time.perf_counter() - t0

    def close(self):
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        if self.proc:
            self.proc.wait(timeout=60)


def bench_mount_time(exe, d, runs):
    """Mount time of 1,000-member tars whose members are 1 KiB, 6 MiB and
    64 MiB (sparse files: 6 GiB and 62 GiB of data that use no disk)."""
    mnt = os.path.join(d, "mnt")
    os.makedirs(mnt, exist_ok=True)
    rows = []
    for label, size in (("1 KiB", 1024), ("6 MiB", 6 * MiB + 12345), ("64 MiB", 64 * MiB + 1)):
        tar = os.path.join(d, f"sparse-{size}.tar")
        make_sparse_tar(tar, member_size=size)
        for kind in ("nemockptfs", "archivemount"):
            times = []
            for _ in range(runs if kind == "nemockptfs" else max(1, runs // 5)):
                m = Mount(kind, exe, tar, mnt)
                n = len(os.listdir(os.path.join(mnt, "raw/model_weights" if kind == "nemockptfs"
                                                else "model_weights")))
                m.close()
                assert n == 1000, n
                times.append(m.mount_s)
            rows.append((kind, label, os.path.getsize(tar), statistics.median(times), min(times),
                         max(times), len(times)))
    return rows


def bench_reads(exe, d, member_gib, runs, read_ahead):
    tar, ext = make_data_tar(d, member_gib)
    mnt = os.path.join(d, "mnt")
    os.makedirs(mnt, exist_ok=True)
    big = "weights.bin"
    shards = [f"shard_{i}.bin" for i in range(8)]
    res = {}

    def warm():
        read_file(tar)
        for n in [big] + shards:
            read_file(os.path.join(ext, n))

    def best(fn):
        return max(fn() for _ in range(runs))

    warm()
    res["direct, 1 reader"] = best(lambda: timed_read([os.path.join(ext, big)]))
    res["direct, 8 readers"] = best(lambda: timed_read([os.path.join(ext, s) for s in shards]))
    configs = [("nemockptfs", ra) for ra in read_ahead] + [("archivemount", None)]
    for kind, ra in configs:
        prefix = "raw/" if kind == "nemockptfs" else ""
        label = kind + (f" -o read_ahead_kb={ra}" if ra else "")
        # archivemount is far slower: read it for a bounded time (a partial
        # read of the same file, from its start), and once.
        cap = None if kind == "nemockptfs" else 20
        first, again, steady, par = [], [], [], []
        for _ in range(runs if kind == "nemockptfs" else 1):
            warm()
            m = Mount(kind, exe, tar, mnt, ra)
            first.append(timed_read([os.path.join(mnt, prefix + big)], cap))
            again.append(timed_read([os.path.join(mnt, prefix + big)], cap))
            # The third read: the kernel has moved the pages to its active
            # list by now, as the baseline's pages (read many times) are.
            steady.append(timed_read([os.path.join(mnt, prefix + big)], cap))
            m.close()
            warm()
            m = Mount(kind, exe, tar, mnt, ra)
            par.append(timed_read([os.path.join(mnt, prefix + s) for s in shards], cap))
            m.close()
        res[label] = (max(first), max(again), max(steady), max(par))
    return res


# ---- read paths: passthrough, cache=kernel, cache=direct (issue 11) --------

def drop_caches():
    """Empties the page cache (root), so a first read comes from the disk."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def read_ranges(path, parts, no_readahead=False):
    """`parts` threads each read 1/parts of `path` with 1 MiB preads; GB/s.
    no_readahead (POSIX_FADV_RANDOM) makes the kernel fill the page cache
    with single-page folios, as it does for every FUSE file that is not
    passed through on this 6.18 kernel."""
    size = os.path.getsize(path)
    step = -(-size // parts)
    fd = os.open(path, os.O_RDONLY)
    if no_readahead:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)

    def work(i):
        off, end = i * step, min(size, (i + 1) * step)
        while off < end:
            n = len(os.pread(fd, min(CHUNK, end - off), off))
            if n == 0:
                break
            off += n

    threads = [threading.Thread(target=work, args=(i,)) for i in range(parts)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    os.close(fd)
    return size / dt / 1e9


def mmap_read(path):
    """Page-faults the whole file through a shared mapping, as safetensors'
    safe_open and numpy.load(mmap_mode='r') do; GB/s."""
    import mmap
    import numpy as np
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ)
        a = np.frombuffer(m, dtype=np.uint64)
        a.sum()  # touches every page
        n = a.nbytes
        del a
        m.close()
    return n / (time.perf_counter() - t0) / 1e9


def pages_per_folio(path):
    """Mean pages per page-cache folio of `path` (whose pages are cached):
    maps the file, touches every page, and looks the frames up in
    /proc/self/pagemap and /proc/kpageflags (root)."""
    import mmap
    import struct
    import numpy as np
    page = os.sysconf("SC_PAGE_SIZE")
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ)
    a = np.frombuffer(m, dtype=np.uint8)
    a[::page].sum()  # maps every page
    start = a.__array_interface__["data"][0]
    with open("/proc/self/pagemap", "rb") as pm:
        pm.seek(start // page * 8)
        entries = np.frombuffer(pm.read(-(-len(a) // page) * 8), dtype=np.uint64)
    frames = entries[(entries >> np.uint64(63)) == 1] & np.uint64((1 << 55) - 1)
    folios = 0
    with open("/proc/kpageflags", "rb") as kf:
        for pfn in frames.tolist():
            kf.seek(pfn * 8)
            flags = struct.unpack("Q", kf.read(8))[0]
            folios += not flags >> 16 & 1  # KPF_COMPOUND_TAIL: part of the folio before
    del a
    m.close()
    return len(frames) / folios if folios else 0.0


def bench_paths(exe, d, gib, runs):
    """Each read path of one file of `gib` GiB: first read (cold cache),
    re-read, 8 readers (cold), mmap (cold); medians of `runs`."""
    base = os.path.join(d, "paths")
    src = os.path.join(base, "src")
    tarp = os.path.join(base, "paths.tar")
    member = os.path.join(src, "model_weights.bin")
    size = int(gib * 2**30)
    os.makedirs(src, exist_ok=True)
    if not os.path.exists(member) or os.path.getsize(member) != size:
        with open(member, "wb") as f:
            for _ in range(size // (64 * MiB)):
                f.write(os.urandom(64 * MiB))
        with open(os.path.join(src, "model_config.yaml"), "w") as f:
            f.write("hidden_size: 8\n")
        if os.path.exists(tarp):
            os.unlink(tarp)
    if not os.path.exists(tarp):
        with tarfile.open(tarp, "w", format=tarfile.PAX_FORMAT) as t:
            t.add(os.path.join(src, "model_config.yaml"), "./model_config.yaml")
            t.add(member, "./model_weights.bin")
    cases = [
        ("direct read of the file", None, None),
        # The same file cached in single-page folios (first read without
        # readahead): what the FUSE page cache holds on kernels without
        # large folios for FUSE, so its re-read is the bound for cache=kernel.
        ("direct read, single-page folios", None, "no_readahead"),
        ("tar member, cache=kernel", tarp, "cache=kernel"),
        ("tar member, cache=direct", tarp, "cache=direct"),
        ("directory file, passthrough", src, None),
        ("directory file, cache=kernel", src, "nopassthrough,cache=kernel"),
        ("directory file, cache=direct", src, "nopassthrough,cache=direct"),
    ]
    # Every case is mounted at once and the runs rotate the order of the
    # cases: a cold read right after another one reads slower on this VM's
    # disk (by up to 2x), so a fixed order would favour the first case
    # (--runs 7, a multiple of the 7 cases, puts each case first once).
    paths, mounted = {}, []
    try:
        for i, (label, source, opts) in enumerate(cases):
            if not source:
                paths[label] = member
                continue
            mnt = os.path.join(base, f"mnt{i}")
            os.makedirs(mnt, exist_ok=True)
            subprocess.run([exe, source, mnt] + (["-o", opts] if opts else []), check=True)
            mounted.append(mnt)
            paths[label] = os.path.join(mnt, "raw", "model_weights.bin")
        figs = {label: [] for label, _, _ in cases}
        for r in range(runs):
            for label, _, opts in cases[r % len(cases):] + cases[:r % len(cases)]:
                path = paths[label]
                no_ra = opts == "no_readahead"
                drop_caches()
                first = read_ranges(path, 1, no_ra)
                again = read_ranges(path, 1)
                # Counted once; direct I/O leaves no cached pages to count.
                folio = (pages_per_folio(path) if r == runs - 1
                         and "cache=direct" not in (opts or "") else None)
                # The single-page row is about its re-read: its cold figures
                # would be the first row's again.
                par = mm = None
                if not no_ra:
                    drop_caches()
                    par = read_ranges(path, 8)
                    drop_caches()
                    mm = mmap_read(path)
                figs[label].append((first, again, par, mm, folio))
    finally:
        # Every mount is tried; an unmount refused here must not hide the
        # error that got us here.
        for mnt in mounted:
            subprocess.run(["fusermount3", "-u", "-z", mnt])
    return {label: tuple(None if fl[0][i] is None else statistics.median(f[i] for f in fl)
                         for i in range(4)) + (fl[-1][4],)
            for label, fl in figs.items()}


def print_paths(gib, runs, res):
    base = res["direct read of the file"]
    print(f"\n### Read paths, {gib:g} GiB file, page cache dropped before each cold figure "
          f"(medians of {runs}, the order of the cases rotated each run)\n")
    print("| read path | first read GB/s | ratio | re-read GB/s | ratio | 8 readers (cold) GB/s "
          "| ratio | mmap (cold) GB/s | ratio | pages per folio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, f in res.items():
        print(f"| {label} | " + " | ".join("- | -" if f[i] is None
                                           else f"{f[i]:.2f} | {f[i] / base[i]:.2f}x"
                                           for i in range(4))
              + (" | - |" if f[4] is None else f" | {f[4]:.1f} |"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/var/tmp/nemockpt-bench")
    ap.add_argument("--nemockptfs", default=os.path.join(os.path.dirname(__file__),
                                                         "../build-release/bin/nemockptfs"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mount-runs", type=int, default=10)
    ap.add_argument("--member-gib", type=float, default=2)
    ap.add_argument("--only", choices=["mount", "read", "paths"], help="run one part only")
    ap.add_argument("--read-ahead-kb", type=int, nargs="*", default=[512, 128],
                    help="nemockptfs -o read_ahead_kb values to compare (512 is the default)")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    exe = os.path.abspath(args.nemockptfs)

    sys.stdout.reconfigure(line_buffering=True)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"kernel {platform.release()}")
    if args.only == "paths":
        print_paths(args.member_gib, args.runs,
                    bench_paths(exe, args.dir, args.member_gib, args.runs))
        return 0
    if args.only != "read":
        print_mount_time(bench_mount_time(exe, args.dir, args.mount_runs))
    if args.only != "mount":
        print_reads(args, bench_reads(exe, args.dir, args.member_gib, args.runs,
                                      args.read_ahead_kb))


def print_mount_time(rows):
    print("\n### Mount time, tar of 1,000 members (spawn to mount ready)\n")
    print("| program | member size | archive GiB | median ms | min ms | max ms | runs |")
    print("|---|---|---|---|---|---|---|")
    for kind, label, size, med, lo, hi, n in rows:
        print(f"| {kind} | {label} | {size / 2**30:.2f} | {med * 1e3:.1f} | {lo * 1e3:.1f} "
              f"| {hi * 1e3:.1f} | {n} |")


def print_reads(args, res):
    d1, d8 = res.pop("direct, 1 reader"), res.pop("direct, 8 readers")
    print(f"\n### Sequential reads, {args.member_gib:g} GiB member (best of {args.runs})\n")
    print(f"Direct read of the extracted file: {d1:.2f} GB/s; 8 readers on 8 x 256 MiB: {d8:.2f} GB/s\n")
    print("| program | first read GB/s | ratio | re-read GB/s | ratio | third read GB/s | ratio "
          "| 8 readers first read GB/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, (first, again, steady, par) in res.items():
        print(f"| {label} | {first:.2f} | {first / d1:.2f}x | {again:.2f} | {again / d1:.2f}x "
              f"| {steady:.2f} | {steady / d1:.2f}x | {par:.2f} | {par / d8:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
