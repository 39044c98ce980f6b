#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gguf/ benchmark (issue #13, docs/PERFORMANCE.md): on the views
benchmark's 2.4 GB Llama .nemo (bench_views.py: hidden 2048, ffn 5632, 24
layers, TP=4, vocabulary 32000), the first-read throughput of
gguf/model-BF16.gguf against merged/model.safetensors, of the F16 file
(converted when read), and of Q8_0 / Q4_0 (computed when read) against
gguf-py's numpy quantizer on one of the model's tensors.

usage: bench/bench_gguf.py [--nemo FILE] [--build DIR] [--workdir D]

Every figure is one fresh mount and one read of the whole file with 1 MiB
read()s, the .nemo in the page cache (read once before each pass): the
figure measures the filesystem, not the disk. Run with an interpreter that
has numpy (and gguf-py, for the quantizer reference).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_views as bv  # noqa: E402


def warm(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def one_read(exe, nemo, mnt, rel):
    warm(nemo)
    with bv.Mount(exe, nemo, mnt) as m:
        t0 = time.perf_counter()
        size = os.path.getsize(os.path.join(mnt, rel))
        stat_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = bv.read_file(os.path.join(mnt, rel))
        dt = time.perf_counter() - t0
    assert n == size
    return n, dt, m.mount_s, stat_s


def gguf_py_rate():
    """gguf-py's quantize() of a [5632, 2048] float32 tensor, in source bf16 bytes/s."""
    try:
        import gguf
    except ImportError:
        return {}
    x = np.random.default_rng(0).normal(0, 0.02, (bv.FFN, bv.HIDDEN)).astype(np.float32)
    out = {}
    for ty in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
        t0 = time.perf_counter()
        gguf.quants.quantize(x, ty)
        out[ty.name] = x.size * 2 / (time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default="/var/tmp/nemockpt-bench-views")
    ap.add_argument("--nemo", help="the checkpoint (default: bench_views.py's, made if absent)")
    ap.add_argument("--build", default=os.path.join(bv.REPO, "build"))
    ap.add_argument("--size-gb", type=float, default=2.0)
    args = ap.parse_args()
    exe = os.path.join(args.build, "bin", "nemockptfs")
    nemo = args.nemo
    if not nemo:
        os.makedirs(args.workdir, exist_ok=True)
        nemo = bv.make_checkpoint(args.workdir, bv.layers_for(args.size_gb))
    mnt = tempfile.mkdtemp(prefix="bench-gguf-")
    print(f"checkpoint {nemo} ({os.path.getsize(nemo) / bv.GiB:.2f} GiB), nemockptfs {exe}, "
          f"{os.cpu_count()} CPUs")
    rows = []
    for rel in ("merged/model.safetensors", "gguf/model-BF16.gguf", "gguf/model-F16.gguf",
                "gguf/model-Q8_0.gguf", "gguf/model-Q4_0.gguf"):
        n, dt, mount_s, stat_s = one_read(exe, nemo, mnt, rel)
        rows.append((rel, n, dt))
        print(f"{rel:26s} {n / bv.GiB:6.2f} GiB  {dt:7.2f} s  {n / dt / 1e6:8.1f} MB/s "
              f"(mount {mount_s:.2f} s, stat {stat_s * 1e3:.2f} ms)")
    src = rows[0][1]
    for rel, n, dt in rows[3:]:
        print(f"{rel:26s} source bf16 quantized at {src / dt / 1e6:.1f} MB/s")
    for name, rate in gguf_py_rate().items():
        print(f"gguf-py quantize {name:5s}     source bf16 at {rate / 1e6:.1f} MB/s (one thread, numpy)")
    os.rmdir(mnt)


if __name__ == "__main__":
    main()
