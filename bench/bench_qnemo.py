#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""qnemo/ benchmark (issue #5, docs/PERFORMANCE.md): first-read throughput of
the quantized TensorRT-LLM views on the CPU backend, against reading the
same weights unquantized (merged/model.safetensors) in the same run.

A synthetic Llama-style checkpoint (zarr distributed checkpoint, bf16,
written by tests/gpu/make_zarr_model.py, standard library only) is mounted
fresh for each pass with -o gpu=off (or --gpu), and every rank file of
qnemo/<algo>/tp<T>pp1/ is read once with 1 MiB reads. Throughput is GB of
bf16 weights per second (the model's weight bytes over the time to read
every rank file), so it compares with the CPU kernels' figures of
bench_quant (GB/s of bf16 input).

usage: bench_qnemo.py [--build DIR] [--workdir DIR] [--layers N] [--repeat N]
                      [--tp T] [--gpu off|auto|N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mount(build, src, mnt, opts):
    subprocess.run([str(build / "bin" / "nemockptfs"), str(src), str(mnt), "-o", opts],
                   check=True)


def umount(mnt):
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True)


def read_all(paths):
    n = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                n += len(b)
    return n


def drop_caches():
    if os.geteuid() == 0:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build-release"))
    ap.add_argument("--workdir", default="/var/tmp/nemockpt-bench-qnemo")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tp", type=int, default=2)
    ap.add_argument("--gpu", default="off")
    a = ap.parse_args()
    build, work = Path(a.build), Path(a.workdir)
    model = work / f"zarr-l{a.layers}"
    if not (model / "model_config.yaml").exists():
        subprocess.run([sys.executable, str(REPO / "tests" / "gpu" / "make_zarr_model.py"),
                        str(model), "--layers", str(a.layers)], check=True)
    info = json.loads(subprocess.run([str(build / "bin" / "nemockpt"), "info", str(model)],
                                     check=True, capture_output=True).stdout)
    weights = info["weight_bytes"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mnt = Path(tmp) / "mnt"
        mnt.mkdir()
        cases = [("merged/ (bf16, no quantization)", "merged", None)]
        cases += [(f"qnemo/{algo}/tp{a.tp}pp1", f"qnemo/{algo}/tp{a.tp}pp1", algo)
                  for algo in ("bf16", "fp8", "int4_awq")]
        for label, rel, algo in cases:
            times = []
            for _ in range(a.repeat):
                mount(build, model, mnt, f"gpu={a.gpu}")
                try:
                    d = mnt / rel
                    files = sorted(d / f for f in os.listdir(d) if f.endswith(".safetensors"))
                    drop_caches()
                    t0 = time.perf_counter()
                    n = read_all(files)
                    times.append(time.perf_counter() - t0)
                finally:
                    umount(mnt)
            med = statistics.median(times)
            rows.append((label, n, med, min(times), max(times)))
    base = rows[0][2]
    print(f"\n```sh\n/usr/bin/python3 bench/bench_qnemo.py --layers {a.layers} --tp {a.tp} "
          f"--repeat {a.repeat} --gpu {a.gpu}\n```\n")
    print(f"Model: zarr checkpoint, bf16, hidden 2048, ffn 5632, 16 heads in 4 groups, "
          f"{a.layers} layers, vocabulary 32000: {weights / 2**30:.2f} GiB of weights; "
          f"backend gpu={a.gpu}; {os.cpu_count()} CPUs; page cache dropped before each read "
          f"({'yes' if os.geteuid() == 0 else 'no: not root'}).\n")
    print("| read (every rank file, first read) | bytes read | median s | min | max "
          "| GB/s of bf16 weights | per CPU | vs merged/ |")
    print("|---|---|---|---|---|---|---|---|")
    for label, n, med, lo, hi in rows:
        gbs = weights / med / 1e9
        print(f"| {label} | {n / 2**30:.2f} GiB | {med:.2f} | {lo:.2f} | {hi:.2f} | {gbs:.2f} "
              f"| {gbs / os.cpu_count():.2f} | {base / med:.2f}x |")


if __name__ == "__main__":
    main()
