#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Catalog benchmark (docs/PERFORMANCE.md): `nemockpt info` and mount time
on a checkpoint of about 10,000 tensors and several GB, reading no tensor
data.

The checkpoint is a NeMo 1 single-rank .nemo (model_config.yaml, a
tokenizer, model_weights.ckpt) whose torch.save zip has one storage record
per tensor. Record data are holes in a sparse file: the archive is ~6 GB
long but uses a few MB of disk, and any byte of tensor data that were read
would show in the time.

usage: bench/bench_catalog.py [--dir D] [--layers N] [--runs N]
"""
import argparse
import os
import platform
import statistics
import struct
import subprocess
import sys
import tarfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
import make_sample  # noqa: E402  (torch_pickle: the state dict's data.pkl)

HIDDEN, FFN, VOCAB = 512, 1408, 32000
PER_LAYER = [("self_attention.linear_qkv.layer_norm_weight", (HIDDEN,)),
             ("self_attention.linear_qkv.weight", (3 * HIDDEN, HIDDEN)),
             ("self_attention.linear_proj.weight", (HIDDEN, HIDDEN)),
             ("mlp.linear_fc1.layer_norm_weight", (HIDDEN,)),
             ("mlp.linear_fc1.weight", (2 * FFN, HIDDEN)),
             ("mlp.linear_fc2.weight", (HIDDEN, FFN)),
             ("self_attention.core_attention.k_scale", (1,)),
             ("self_attention.core_attention.v_scale", (1,)),
             ("mlp.router_bias", (8,))]


def specs(layers):
    out = [("model.embedding.word_embeddings.weight", (VOCAB, HIDDEN), "bf16")]
    for i in range(layers):
        out += [(f"model.decoder.layers.{i}.{n}", s, "bf16") for n, s in PER_LAYER]
    out += [("model.decoder.final_layernorm.weight", (HIDDEN,), "bf16"),
            ("model.output_layer.weight", (VOCAB, HIDDEN), "bf16")]
    return out


def write_sparse_zip(f, members):
    """A stored ZIP64 archive of (name, bytes or int size) members, written
    at f's position; int sizes become holes. Returns nothing."""
    start = f.tell()
    central = []
    for name, data in members:
        size = data if isinstance(data, int) else len(data)
        crc = 0 if isinstance(data, int) else zlib.crc32(data)
        off = f.tell() - start
        nb = name.encode()
        extra = struct.pack("<HHQQ", 1, 16, size, size)
        pad = (-(f.tell() + 30 + len(nb) + len(extra) + 4)) % 64  # 64-byte aligned data
        extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                            0xFFFFFFFF, len(nb), len(extra)) + nb + extra)
        if isinstance(data, int):
            f.seek(size, os.SEEK_CUR)
        else:
            f.write(data)
        central.append((nb, crc, size, off))
    cd = f.tell() - start
    for nb, crc, size, off in central:
        extra = struct.pack("<HHQQQ", 1, 24, size, size, off)
        f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc,
                            0xFFFFFFFF, 0xFFFFFFFF, len(nb), len(extra), 0, 0, 0, 0,
                            0xFFFFFFFF) + nb + extra)
    cd_size = f.tell() - start - cd
    z64 = f.tell() - start
    n = len(central)
    f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd))
    f.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
    f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                        0xFFFFFFFF, 0))


def make_checkpoint(path, layers):
    sp = specs(layers)
    members = [("model_weights/data.pkl", make_sample.torch_pickle(sp)),
               ("model_weights/byteorder", b"little")]
    for i, (_, shape, _) in enumerate(sp):
        n = 2
        for d in shape:
            n *= d
        members.append((f"model_weights/data/{i}", n))
    members.append(("model_weights/version", b"3\n"))
    ckpt = path + ".ckpt.tmp"
    with open(ckpt, "wb") as f:
        write_sparse_zip(f, members)
        size = f.tell()
    config = (f"mcore_gpt: true\nnum_layers: {layers}\nhidden_size: {HIDDEN}\n"
              f"activation: fast-swiglu\nmake_vocab_size_divisible_by: 128\n"
              f"tensor_model_parallel_size: 1\npipeline_model_parallel_size: 1\n").encode()
    with open(path, "wb") as out:
        for name, data in (("./model_config.yaml", config),):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            out.write(ti.tobuf(tarfile.PAX_FORMAT) + data + b"\0" * ((-len(data)) % 512))
        ti = tarfile.TarInfo("./model_weights.ckpt")
        ti.size = size
        out.write(ti.tobuf(tarfile.PAX_FORMAT))
        # Copy the zip keeping its holes: data regions stay unwritten.
        with open(ckpt, "rb") as f:
            pos = 0
            while pos < size:
                try:
                    data_start = os.lseek(f.fileno(), pos, os.SEEK_DATA)
                except OSError:
                    break
                hole = os.lseek(f.fileno(), data_start, os.SEEK_HOLE)
                f.seek(data_start)
                out.seek(out.tell() + (data_start - pos))
                out.write(f.read(hole - data_start))
                pos = hole
            out.seek(out.tell() + (size - pos))
        out.write(b"\0" * ((-size) % 512) + b"\0" * 1024)
        out.truncate()
    os.unlink(ckpt)
    return len(sp), size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/var/tmp/nemockpt-bench")
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build-release", "bin"))
    ap.add_argument("--layers", type=int, default=1111)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"catalog-{args.layers}.nemo")
    if not os.path.exists(path):
        make_checkpoint(path, args.layers)
    cli = os.path.join(args.bin, "nemockpt")
    daemon = os.path.join(args.bin, "nemockptfs")
    out = subprocess.run([cli, "info", path], check=True, capture_output=True, text=True).stdout
    tensors = int(out.split('"tensors": ')[1].split(",")[0])
    info_t, mount_t = [], []
    mnt = os.path.join(args.dir, "mnt-catalog")
    os.makedirs(mnt, exist_ok=True)
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([cli, "info", path], check=True, stdout=subprocess.DEVNULL)
        info_t.append(time.perf_counter() - t0)
        r, w = os.pipe()
        t0 = time.perf_counter()
        p = subprocess.Popen([daemon, path, mnt, "-f", "-o", f"notify_fd={w}"], pass_fds=(w,))
        os.close(w)
        with os.fdopen(r, "rb") as rf:
            assert rf.read() == b"READY=1\n"
        mount_t.append(time.perf_counter() - t0)
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        p.wait(timeout=60)
    st = os.stat(path)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"kernel {platform.release()}")
    print(f"\n### Catalog of {tensors} tensors, {st.st_size / 1e9:.2f} GB archive "
          f"({st.st_blocks * 512 / 1e6:.1f} MB on disk)\n")
    print("| operation | median ms | min ms | max ms | runs |\n|---|---|---|---|---|")
    for label, ts in (("nemockpt info", info_t), ("mount (spawn to ready)", mount_t)):
        print(f"| {label} | {statistics.median(ts) * 1e3:.1f} | {min(ts) * 1e3:.1f} | "
              f"{max(ts) * 1e3:.1f} | {len(ts)} |")


if __name__ == "__main__":
    main()
