#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Views benchmark (issue #4, docs/PERFORMANCE.md): merged/ (and ranks/)
read throughput of a legacy TP=4 .nemo against its raw shard members, and
end to end against the status quo (tar -xf + a torch merge script).

usage: bench/bench_views.py [--workdir D] [--build DIR] [--size-gb G]
       [--repeat N] [--ranks tp2pp1,...] [--modes warm,cold] [--no-e2e]
       [--no-verify]

The checkpoint is a NeMo 1 .nemo as NeMo writes it (PAX tar, `./` names):
model_config.yaml, a SentencePiece tokenizer artifact and
mp_rank_00..03/model_weights.ckpt written by the real torch.save: a
Llama-style Megatron-Core GPT, bf16, hidden 2048, SwiGLU ffn 5632
(`activation: fast-swiglu`, gated linear_fc1), 16 heads in 4 query groups,
vocabulary 32000 (make_vocab_size_divisible_by 128: 8064 embedding rows
per rank, 32000 merged), untied output layer, Transformer Engine
_extra_state entries; names, config keys and the per-rank layout are the
catalog fixtures' (tests/fixtures/make_fixtures.py, fixturelib/model.py).
The layer count is the smallest multiple of 4 that makes the rank files
reach --size-gb GiB. It is generated once under --workdir
(default /var/tmp/nemockpt-bench-views) and reused.

Part 1, reads: every figure is one fresh mount and one read of the file(s)
with 1 MiB read()s; the mount (spawn to ready) is timed apart. Two modes:
  warm  the backing .nemo is read once before each pass, so it sits in the
        page cache: the figure measures the filesystem, not the disk;
  cold  `sync; echo 3 > /proc/sys/vm/drop_caches` before each pass (root
        only), then the programs (python + torch import) are loaded again,
        so that only the checkpoint's data come from the disk.
Part 2, end to end (each pipeline ends with the merged weights in a file
in the same directory on the same disk; `sync` and clean-up are not timed):
  status quo  tar -xf the .nemo into a temp dir, then a torch script
              (written to --workdir) that loads the 4 rank files, merges
              them (QKV dim-0 concat, gated fc1 [gate;up] half-wise,
              linear_proj/linear_fc2 dim 1, vocab dim 0 cut to 32000 rows,
              replicated: rank 0) and torch.save()s the merged state dict;
  nemockpt    spawn the mount, copy merged/*.safetensors to a file
              (1 MiB read()/write()), unmount;
  just read   spawn the mount, read merged/*.safetensors into memory.
The first status-quo output is compared, tensor by tensor, with the bytes
of merged/model.safetensors (not timed; --no-verify skips it).
"""
import argparse
import collections
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3"

HIDDEN, FFN, HEADS, GROUPS, VOCAB, DIVISIBLE, TP, SEQ = 2048, 5632, 16, 4, 32000, 128, 4, 4096
HEAD_DIM = HIDDEN // HEADS
QKV_ROWS = (HEADS + 2 * GROUPS) * HEAD_DIM
GiB = 1 << 30
MiB = 1 << 20
CHUNK = MiB
DEFAULT_RANKS = "tp1pp1,tp2pp1,tp4pp1,tp2pp2"


def padded_vocab(t):
    return -(-VOCAB // (DIVISIBLE * t)) * DIVISIBLE * t


def layer_bytes():
    return 2 * (QKV_ROWS * HIDDEN + HIDDEN * HIDDEN + 2 * FFN * HIDDEN + FFN * HIDDEN + 2 * HIDDEN)


def fixed_bytes():
    return 2 * (2 * padded_vocab(TP) * HIDDEN + HIDDEN)


def layers_for(size_gb):
    n = max(1, math.ceil((size_gb * GiB - fixed_bytes()) / layer_bytes()))
    return -(-n // 4) * 4


# ---- the checkpoint -------------------------------------------------------------------

def nemo1_config(layers, artifact):
    """model_config.yaml with the keys (and order) of make_fixtures.nemo1_config."""
    return {
        "precision": "bf16", "mcore_gpt": True, "micro_batch_size": 1, "global_batch_size": 8,
        "tensor_model_parallel_size": TP, "pipeline_model_parallel_size": 1,
        "virtual_pipeline_model_parallel_size": None, "encoder_seq_length": SEQ,
        "max_position_embeddings": SEQ, "num_layers": layers, "hidden_size": HIDDEN,
        "ffn_hidden_size": FFN, "num_attention_heads": HEADS, "num_query_groups": GROUPS,
        "kv_channels": None, "init_method_std": 0.02, "hidden_dropout": 0.0,
        "attention_dropout": 0.0, "layernorm_epsilon": 1.0e-05,
        "make_vocab_size_divisible_by": DIVISIBLE, "normalization": "rmsnorm",
        "activation": "fast-swiglu", "bias": False, "position_embedding_type": "rope",
        "rotary_base": 10000, "rotary_percentage": 1.0,
        "share_embeddings_and_output_weights": False, "megatron_amp_O2": False,
        "transformer_engine": True,
        "tokenizer": {"library": "sentencepiece", "type": None, "model": f"nemo:{artifact}",
                      "vocab_file": None, "merge_file": None, "delimiter": None,
                      "sentencepiece_legacy": False},
        "target": "nemo.collections.nlp.models.language_modeling.megatron_gpt_model.MegatronGPTModel",
        "nemo_version": "1.23.0",
    }


def rank_shape(key):
    """Rank-local shape of a per-layer weight (fixturelib.model's TP rules)."""
    return {
        "self_attention.linear_proj.weight": (HIDDEN, HIDDEN // TP),     # row, dim 1
        "self_attention.linear_qkv.layer_norm_weight": (HIDDEN,),        # replicated
        "self_attention.linear_qkv.weight": (QKV_ROWS // TP, HIDDEN),    # whole query groups
        "mlp.linear_fc1.layer_norm_weight": (HIDDEN,),                   # replicated
        "mlp.linear_fc1.weight": (2 * FFN // TP, HIDDEN),                # [gate_r; up_r]
        "mlp.linear_fc2.weight": (HIDDEN, FFN // TP),                    # row, dim 1
    }[key]


def rand_bf16(torch, rng, shape, norm=False):
    """Random finite bf16: weights +-[2^-7, 2^-5), norms [1, 2)."""
    u = rng.integers(0, 1 << 16, size=int(np.prod(shape)), dtype=np.uint16)
    if norm:
        u &= 0x007F
        u |= 0x3F80
    else:
        u &= 0x80FF
        u |= 0x3C00
    return torch.from_numpy(u.view(np.int16)).view(torch.bfloat16).reshape(shape)


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def sentencepiece_model(vocab):
    """A SentencePiece ModelProto of `vocab` distinct pieces, shaped as
    fixturelib.writers.sentencepiece_model's (which names at most 705):
    pieces (field 1: piece, score, type on the specials), trainer_spec
    (BPE, vocab_size), normalizer_spec."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = bytearray()
    for k in range(vocab):
        if k < 3:
            p = ["<unk>", "<s>", "</s>"][k]
        else:
            i, p = k - 3, ""
            while True:
                i, r = divmod(i, 26)
                p = letters[r] + p
                if not i:
                    break
            p = "\u2581" + p
        body = _ld(1, p.encode()) + b"\x15" + struct.pack("<f", 0.0 if k < 3 else -float(k))
        if k < 3:
            body += b"\x18" + bytes([2 if k == 0 else 3])
        out += _ld(1, body)
    out += _ld(2, b"\x18\x02" + b"\x20" + _varint(vocab))
    out += _ld(3, _ld(1, b"identity"))
    return bytes(out)


def make_checkpoint(workdir, layers):
    """The .nemo (cached); returns its path."""
    tag = f"llama-h{HIDDEN}-f{FFN}-g{GROUPS}-l{layers}-tp{TP}"
    nemo = os.path.join(workdir, tag + ".nemo")
    if os.path.exists(nemo):
        return nemo
    sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
    import torch
    import make_fixtures as MF
    from fixturelib import model as M, writers as W

    print(f"generating {nemo} ({layers} layers) ...", flush=True)
    t0 = time.perf_counter()
    ck = os.path.join(workdir, tag + ".gen")
    shutil.rmtree(ck, ignore_errors=True)
    art = W.artifact_hash(tag, "tokenizer.model") + "_tokenizer.model"
    W.write(os.path.join(ck, art), sentencepiece_model(VOCAB))
    W.write(os.path.join(ck, "model_config.yaml"), W.dump_yaml(nemo1_config(layers, art)))
    rng = np.random.default_rng(1234)
    rows = padded_vocab(TP) // TP
    replicated = {}

    def rep(name):
        if name not in replicated:
            replicated[name] = rand_bf16(torch, rng, (HIDDEN,), norm=True)
        return replicated[name]

    for t in range(TP):
        sd = collections.OrderedDict()
        sd["model." + M.EMB] = rand_bf16(torch, rng, (rows, HIDDEN))
        for g in range(layers):
            for key, kind in M.LAYER_ENTRIES:
                name = f"model.decoder.layers.{g}.{key}"
                if kind == "extra":
                    sd[name] = MF.te1_extra(g, key, t)
                elif kind == "rep":
                    sd[name] = rep(name)
                else:
                    sd[name] = rand_bf16(torch, rng, rank_shape(key))
        sd["model." + M.FINAL_NORM] = rep("model." + M.FINAL_NORM)
        sd["model." + M.OUTPUT] = rand_bf16(torch, rng, (rows, HIDDEN))
        W.torch_save_file(os.path.join(ck, f"mp_rank_{t:02d}", "model_weights.ckpt"),
                          MF.to_torch_sd(sd))
        del sd

    # Streamed (W.make_tar builds the tar in memory), with its member fix-ups.
    k = [0]

    def fix(ti):
        ti.mtime = W.BASE_MTIME + k[0] + 0.25
        k[0] += 1
        ti.uid = ti.gid = 1000
        ti.uname = ti.gname = "nemo"
        ti.mode = (0o700 if ti.name in (".", "./") else 0o755) if ti.isdir() else 0o644
        return ti

    with tarfile.open(nemo + ".tmp", "w:", format=tarfile.PAX_FORMAT) as tf:
        tf.add(ck, arcname=".", filter=fix)
    os.rename(nemo + ".tmp", nemo)
    shutil.rmtree(ck)
    print(f"generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return nemo


# ---- the status quo: a torch merge script -----------------------------------------------

MERGE_SCRIPT = r'''#!/usr/bin/python3
"""Merges a legacy NeMo 1 TP=N PP=1 checkpoint (extracted) into one
torch.save state dict: the status quo that nemockpt's merged/ replaces.
usage: merge.py EXTRACTED_DIR OUT.pt VOCAB_ROWS"""
import json, os, sys, time
t0 = time.perf_counter()
import torch, yaml
src, out, vocab_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
t1 = time.perf_counter()
cfg = yaml.safe_load(open(os.path.join(src, "model_config.yaml")))
tp = cfg["tensor_model_parallel_size"]
assert cfg["pipeline_model_parallel_size"] == 1
gated = cfg.get("activation", "") in ("fast-swiglu", "swiglu", "fast-geglu", "geglu", "fast-reglu", "reglu")
ranks = [torch.load(os.path.join(src, f"mp_rank_{r:02d}", "model_weights.ckpt"), map_location="cpu")
         for r in range(tp)]
t2 = time.perf_counter()
merged = {}
for name, v0 in ranks[0].items():
    if name.endswith("_extra_state") or not torch.is_tensor(v0):
        continue  # not a weight (nemockpt's merged/ leaves it out too)
    parts = [sd[name] for sd in ranks]
    if name.endswith("word_embeddings.weight") or name.endswith("output_layer.weight"):
        keep, cut = vocab_rows, []   # vocabulary: dim 0, padding rows cut
        for p in parts:
            cut.append(p[:max(0, min(keep, p.shape[0]))])
            keep -= cut[-1].shape[0]
        merged[name] = torch.cat(cut, 0)
    elif name.endswith("linear_qkv.weight"):
        merged[name] = torch.cat(parts, 0)  # whole query groups per rank
    elif name.endswith("linear_fc1.weight") and gated:
        h = parts[0].shape[0] // 2          # rank r = [gate_r; up_r]
        merged[name] = torch.cat([p[:h] for p in parts] + [p[h:] for p in parts], 0)
    elif name.endswith("linear_fc1.weight"):
        merged[name] = torch.cat(parts, 0)
    elif name.endswith("linear_proj.weight") or name.endswith("linear_fc2.weight"):
        merged[name] = torch.cat(parts, 1)  # row-parallel
    else:
        merged[name] = v0                   # replicated: rank 0
del ranks
t3 = time.perf_counter()
torch.save(merged, out)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "merge_s": t3 - t2, "save_s": t4 - t3}))
'''


# ---- mounting and reading ---------------------------------------------------------------

class Mount:
    """nemockptfs SRC MNT -f, ready when it writes READY=1 to notify_fd."""

    def __init__(self, exe, src, mnt):
        self.mnt = mnt
        t0 = time.perf_counter()
        r, w = os.pipe()
        self.proc = subprocess.Popen([exe, src, mnt, "-f", "-o", f"notify_fd={w}"],
                                     pass_fds=(w,), stderr=subprocess.PIPE)
        os.close(w)
        with os.fdopen(r, "rb") as rf:
            if rf.read() != b"READY=1\n":
                self.proc.wait(timeout=60)
                raise RuntimeError("nemockptfs: " + self.proc.stderr.read().decode())
        self.mount_s = time.perf_counter() - t0

    def close(self):
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        self.proc.wait(timeout=120)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_file(path, into=None, out=None):
    """Reads a file with 1 MiB read()s (into a bytearray / written to a file
    object when given); returns bytes read."""
    total = 0
    with open(path, "rb", buffering=0) as f:
        if into is not None:
            mv = memoryview(into)
            while True:
                n = f.readinto(mv[total:total + CHUNK])
                if not n:
                    return total
                total += n
        buf = bytearray(CHUNK)
        mv = memoryview(buf)
        while True:
            n = f.readinto(mv)
            if not n:
                return total
            if out is not None:
                out.write(mv[:n])
            total += n


def read_files(paths, parallel=False):
    """Reads `paths` one after another (or one thread each); returns (bytes, seconds)."""
    t0 = time.perf_counter()
    if not parallel:
        n = sum(read_file(p) for p in paths)
    else:
        res = [0] * len(paths)
        th = [threading.Thread(target=lambda i=i: res.__setitem__(i, read_file(paths[i])))
              for i in range(len(paths))]
        for t in th:
            t.start()
        for t in th:
            t.join()
        n = sum(res)
    return n, time.perf_counter() - t0


def sync():
    os.sync()


def can_drop():
    return os.geteuid() == 0 and os.access("/proc/sys/vm/drop_caches", os.W_OK)


def prepare(mode, nemo):
    """warm: the backing .nemo in the page cache; cold: every cache dropped,
    then the programs (not the checkpoint) loaded again."""
    sync()
    if mode == "warm":
        read_file(nemo)
        return
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    subprocess.run([PY, "-c", "import torch, yaml"], check=True)
    subprocess.run(["tar", "--version"], check=True, stdout=subprocess.DEVNULL)


# ---- part 1: read throughput ------------------------------------------------------------

def probe(exe, nemo, mnt, ranks):
    """Mounts once: checks the catalog, lists merged/ and raw/, finds ranks/ layouts."""
    with Mount(exe, nemo, mnt) as m:
        info = json.load(open(os.path.join(mnt, "info.json")))
        merged = sorted(os.path.join("merged", n) for n in os.listdir(os.path.join(mnt, "merged"))
                        if n.endswith(".safetensors"))
        if not merged:
            raise SystemExit(f"no merged/*.safetensors in the mount; info.json: {info}")
        raw = [f"raw/mp_rank_{t:02d}/model_weights.ckpt" for t in range(TP)]
        for r in raw:
            os.stat(os.path.join(mnt, r))
        layouts, notes = {}, []
        if not os.path.isdir(os.path.join(mnt, "ranks")):
            notes.append("ranks/ is absent from this build: ranks/ figures skipped")
        else:
            for lay in ranks:
                d = os.path.join("ranks", lay)
                try:
                    files = sorted(os.path.join(d, n) for n in os.listdir(os.path.join(mnt, d))
                                   if n.endswith(".safetensors"))
                except OSError as e:
                    notes.append(f"{d}: {e.strerror}: skipped")
                    continue
                if files:
                    layouts[lay] = files
                else:
                    notes.append(f"{d}: no .safetensors files: skipped")
        sizes = {p: os.path.getsize(os.path.join(mnt, p))
                 for p in merged + raw + [f for fs in layouts.values() for f in fs]}
    return info, merged, raw, layouts, notes, sizes, m.mount_s


def bench_reads(exe, nemo, mnt, modes, repeat, merged, raw, layouts):
    cases = [("merged", f"merged/{'*' if len(merged) > 1 else os.path.basename(merged[0])}, 1 reader",
              merged, False),
             ("raw", "raw/mp_rank_0X/model_weights.ckpt, 4 files one after another, 1 reader",
              raw, False),
             ("raw4", "raw/mp_rank_0X/model_weights.ckpt, 4 readers in parallel", raw, True)]
    cases += [(lay, f"ranks/{lay}/*.safetensors ({len(fs)} files one after another, 1 reader)",
               fs, False) for lay, fs in layouts.items()]
    res = collections.OrderedDict()
    for mode in modes:
        for _ in range(repeat):
            for key, label, paths, par in cases:
                prepare(mode, nemo)
                with Mount(exe, nemo, mnt) as m:
                    n, dt = read_files([os.path.join(mnt, p) for p in paths], par)
                r = res.setdefault((mode, key), {"label": label, "bytes": n, "gbs": [], "mount": []})
                r["gbs"].append(n / dt / 1e9)
                r["mount"].append(m.mount_s)
                print(f"  {mode:4} {key:7} {n / GiB:6.2f} GiB {n / dt / 1e9:6.2f} GB/s "
                      f"(mount {m.mount_s * 1e3:.0f} ms)", flush=True)
    return res


# ---- part 2: end to end -----------------------------------------------------------------

def status_quo(nemo, tmp, script):
    ext = os.path.join(tmp, "extracted")
    os.makedirs(ext)
    out = os.path.join(tmp, "merged.pt")
    t0 = time.perf_counter()
    subprocess.run(["tar", "-xf", nemo, "-C", ext], check=True)
    t1 = time.perf_counter()
    p = subprocess.run([PY, script, ext, out, str(padded_vocab(1))], check=True,
                       capture_output=True, text=True)
    t2 = time.perf_counter()
    parts = json.loads(p.stdout.strip().splitlines()[-1])
    parts.update({"tar_s": t1 - t0, "script_s": t2 - t1, "total_s": t2 - t0})
    shutil.rmtree(ext)  # not timed
    return parts, out


def nemockpt_copy(exe, nemo, mnt, tmp, merged):
    t0 = time.perf_counter()
    with Mount(exe, nemo, mnt):
        t1 = time.perf_counter()
        for p in merged:
            with open(os.path.join(tmp, os.path.basename(p)), "wb") as out:
                read_file(os.path.join(mnt, p), out=out)
        t2 = time.perf_counter()
    return {"mount_s": t1 - t0, "copy_s": t2 - t1, "total_s": t2 - t0}


def nemockpt_read(exe, nemo, mnt, merged, keep=False):
    t0 = time.perf_counter()
    with Mount(exe, nemo, mnt):
        t1 = time.perf_counter()
        data = []
        for p in merged:
            path = os.path.join(mnt, p)
            buf = bytearray(os.path.getsize(path))
            assert read_file(path, into=buf) == len(buf)
            data.append(buf)
        t2 = time.perf_counter()
    return {"mount_s": t1 - t0, "read_s": t2 - t1, "total_s": t2 - t0}, (data if keep else None)


def verify(pt, blobs):
    """The status quo's merged state dict against merged/ (bytes, tensor by tensor)."""
    import torch
    sd = torch.load(pt, map_location="cpu")
    seen = set()
    for blob in blobs:
        (hlen,) = struct.unpack_from("<Q", blob, 0)
        header = json.loads(bytes(blob[8:8 + hlen]))
        header.pop("__metadata__", None)
        base = 8 + hlen
        for name, e in header.items():
            t = sd.get(name)
            if t is None:
                return f"{name}: in merged/, not in the torch merge"
            if e["dtype"] != "BF16" or list(t.shape) != e["shape"]:
                return f"{name}: merged/ {e['dtype']} {e['shape']}, torch {t.dtype} {list(t.shape)}"
            a, b = e["data_offsets"]
            got = np.frombuffer(blob, dtype="<i2", count=(b - a) // 2, offset=base + a)
            if not np.array_equal(got, t.contiguous().view(torch.int16).numpy().ravel()):
                return f"{name}: bytes differ"
            seen.add(name)
    missing = set(sd) - seen
    if missing:
        return f"{len(missing)} tensors of the torch merge missing from merged/, e.g. {min(missing)}"
    return None


def bench_e2e(exe, nemo, mnt, workdir, modes, repeat, merged, check):
    script = os.path.join(workdir, "statusquo_merge.py")
    with open(script, "w") as f:
        f.write(MERGE_SCRIPT)
    res = collections.OrderedDict()
    verdict = "not checked (--no-verify)" if not check else None
    for mode in modes:
        for i in range(repeat):
            tmp = os.path.join(workdir, "e2e")
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            prepare(mode, nemo)
            sq, pt = status_quo(nemo, tmp, script)
            res.setdefault((mode, "sq"), []).append(sq)
            if verdict is None:
                prepare(mode, nemo)
                r, blobs = nemockpt_read(exe, nemo, mnt, merged, keep=True)
                err = verify(pt, blobs)
                del blobs
                verdict = f"MISMATCH: {err}" if err else "identical (every tensor, bit for bit)"
                print(f"  verify: {verdict}", flush=True)
            os.unlink(pt)
            prepare(mode, nemo)
            cp = nemockpt_copy(exe, nemo, mnt, tmp, merged)
            res.setdefault((mode, "copy"), []).append(cp)
            shutil.rmtree(tmp)
            prepare(mode, nemo)
            rd, _ = nemockpt_read(exe, nemo, mnt, merged)
            res.setdefault((mode, "read"), []).append(rd)
            print(f"  {mode:4} run {i + 1}: status quo {sq['total_s']:.2f} s (tar {sq['tar_s']:.2f}, "
                  f"script {sq['script_s']:.2f}: import {sq['import_s']:.2f} load {sq['load_s']:.2f} "
                  f"merge {sq['merge_s']:.2f} save {sq['save_s']:.2f}); nemockpt copy "
                  f"{cp['total_s']:.2f} s; read {rd['total_s']:.2f} s", flush=True)
    shutil.rmtree(os.path.join(workdir, "e2e"), ignore_errors=True)
    return res, verdict


# ---- the report ---------------------------------------------------------------------------

def machine(build, exe, workdir):
    def first(path, key):
        try:
            for line in open(path):
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    mem = first("/proc/meminfo", "MemTotal")
    mem = f"{int(mem.split()[0]) / 2**20:.1f} GiB" if mem != "?" else mem
    osname = "?"
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    # The disk under the work dir: its block device, rotational flag, driver, fs type.
    disk = "?"
    try:
        st = os.stat(workdir)
        dev = os.path.realpath(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
        name = os.path.basename(dev)
        top = os.path.dirname(dev) if os.path.exists(os.path.join(dev, "partition")) else dev
        rot = open(os.path.join(top, "queue", "rotational")).read().strip()
        drv = os.path.basename(os.path.realpath(os.path.join(top, "device", "driver")))
        if drv == "driver":
            drv = "?"
        disk = f"{name} ({drv}, rotational={rot})"
    except OSError:
        pass
    fstype, best = "?", ""
    for line in open("/proc/mounts"):
        f = line.split()
        if workdir.startswith(f[1].rstrip("/") + "/") and len(f[1]) > len(best):
            best, fstype = f[1], f[2]
    btype = "?"
    try:
        for line in open(os.path.join(build, "CMakeCache.txt")):
            if line.startswith("CMAKE_BUILD_TYPE:"):
                btype = line.split("=", 1)[1].strip() or "(none)"
    except OSError:
        pass
    ver = subprocess.run([exe, "-V"], capture_output=True, text=True)
    ver = (ver.stdout or ver.stderr).strip().splitlines()[0] if (ver.stdout or ver.stderr) else "?"
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    return (f"{platform.node()}: {os.cpu_count()} CPUs ({first('/proc/cpuinfo', 'model name')}), "
            f"{mem} RAM, {disk}, {fstype} under {workdir}, Linux {platform.release()}, {osname}, "
            f"{ver}, {btype} build ({os.path.relpath(build, REPO)}, binary of "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(exe)))}; "
            f"checkout at run time {git})")


def fault_s(n):
    """Median seconds to fault in n bytes of fresh anonymous memory."""
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        a = np.empty(n, np.uint8)
        a[::4096] = 1
        ts.append(time.perf_counter() - t0)
        del a
    return statistics.median(ts)


def fmt_gbs(v):
    return (f"{statistics.median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}")


def report(args, mach, info, nemo, layers, sizes, merged, raw, notes, reads, e2e, verdict):
    modes_txt = {"warm": "page cache (warm)", "cold": "dropped (cold)"}
    raw_b = sum(sizes[p] for p in raw)
    mer_b = sum(sizes[p] for p in merged)
    params = mer_b // 2
    cmd = "/usr/bin/python3 " + " ".join(shlex.quote(a) for a in sys.argv)
    print("\n" + "=" * 78 + "\n")
    print("## Views (issue #4)\n")
    print("```sh\n" + cmd + "\n```\n")
    print(f"**Machine:** {mach}, measured {time.strftime('%Y-%m-%d')}; 1-minute load average "
          f"{args.load0:.2f} before the run (other work on the machine), "
          f"{os.getloadavg()[0]:.2f} at its end (the run's own included).\n")
    print(f"A legacy NeMo 1 `.nemo`, TP=4 PP=1 (`mp_rank_00..03/model_weights.ckpt`, real "
          f"`torch.save`): a Llama-style MCore GPT, bf16, hidden {HIDDEN}, SwiGLU ffn {FFN} "
          f"(gated `linear_fc1`), {HEADS} heads in {GROUPS} query groups, {layers} layers, "
          f"vocabulary {VOCAB} ({padded_vocab(TP) // TP} rows per rank, {padded_vocab(1)} merged), "
          f"untied; {params / 1e9:.2f} B parameters. Archive {os.path.getsize(nemo) / GiB:.2f} GiB; "
          f"rank files {raw_b / GiB:.2f} GiB; merged/ {mer_b / GiB:.2f} GiB "
          f"({', '.join(os.path.basename(p) for p in merged)}). Catalog: "
          f"{info.get('format', '?')}, tp {info.get('tp', '?')}, pp {info.get('pp', '?')}, "
          f"{info.get('weights', '?')} weights ({info.get('tensors', '?')} entries), "
          f"vocab_size {info.get('vocab_size', '?')}, padded {info.get('padded_vocab', '?')}.\n")
    if reads:
        print(f"### Read throughput (median of {args.repeat}, fresh mount for each read, "
              "1 MiB reads)\n")
        print("Backing tar: \"page cache\" = the .nemo read once before each pass; \"dropped\" = "
              "`echo 3 > /proc/sys/vm/drop_caches` before each pass (programs reloaded, "
              "checkpoint data from the disk). The ratio is to the raw shards read by one reader "
              "in the same mode (target for merged/: 0.7x or better).\n")
        print("| backing tar | read | GiB | median GB/s | min | max | ratio to raw | mount ms |")
        print("|---|---|---|---|---|---|---|---|")
        for (mode, key), r in reads.items():
            base = statistics.median(reads[(mode, "raw")]["gbs"])
            med, lo, hi = fmt_gbs(r["gbs"])
            print(f"| {modes_txt[mode]} | {r['label']} | {r['bytes'] / GiB:.2f} | {med} | {lo} | "
                  f"{hi} | {statistics.median(r['gbs']) / base:.2f}x | "
                  f"{statistics.median(r['mount']) * 1e3:.0f} |")
        print()
    for n in notes:
        print(f"Note: {n}.")
    if notes:
        print()
    if e2e:
        print(f"### End to end: the merged weights in a file (seconds, median of {args.repeat})\n")
        print("Status quo: `tar -xf` into a temp dir, then a torch 1.13 script "
              f"(`{os.path.join(args.workdir, 'statusquo_merge.py')}`) loads the 4 rank files, "
              "merges them (QKV dim 0, fc1 [gate;up] half-wise, linear_proj/fc2 dim 1, vocabulary "
              "dim 0 cut to the merged rows, replicated from rank 0) and `torch.save`s the state "
              "dict. nemockpt: spawn the mount, copy merged/ to a file in the same temp dir "
              "(1 MiB read/write), unmount. \"Just read\": spawn the mount, read merged/ into a "
              "bytearray. No fsync in any of them (`sync` untimed between runs).\n")
        print("| backing tar | pipeline | median s | min s | max s | speed-up vs status quo |")
        print("|---|---|---|---|---|---|")
        for mode in [m for m in ("warm", "cold") if (m, "sq") in e2e]:
            sq = statistics.median(x["total_s"] for x in e2e[(mode, "sq")])
            for key, label in (("sq", "status quo: tar -xf + torch merge + torch.save"),
                               ("copy", "nemockpt: mount + copy merged/ to a file"),
                               ("read", "nemockpt: mount + read merged/ into memory")):
                ts = [x["total_s"] for x in e2e[(mode, key)]]
                print(f"| {modes_txt[mode]} | {label} | {statistics.median(ts):.2f} | "
                      f"{min(ts):.2f} | {max(ts):.2f} | {sq / statistics.median(ts):.2f}x |")
        print()
        print("Status quo, median seconds of each step:\n")
        print("| backing tar | tar -xf | python + import torch | torch.load x4 | merge | "
              "torch.save | nemockpt mount (copy run) | nemockpt copy |")
        print("|---|---|---|---|---|---|---|---|")
        for mode in [m for m in ("warm", "cold") if (m, "sq") in e2e]:
            sq = e2e[(mode, "sq")]

            def med(k, rows=sq):
                return statistics.median(x[k] for x in rows)

            py = statistics.median(x["script_s"] - x["load_s"] - x["merge_s"] - x["save_s"]
                                   for x in sq)
            print(f"| {modes_txt[mode]} | {med('tar_s'):.2f} | {py:.2f} | {med('load_s'):.2f} | "
                  f"{med('merge_s'):.2f} | {med('save_s'):.2f} | "
                  f"{med('mount_s', e2e[(mode, 'copy')]):.3f} | {med('copy_s', e2e[(mode, 'copy')]):.2f} |")
        print()
        print(f"Reading into memory includes faulting in a fresh {mer_b / GiB:.2f} GiB buffer: "
              f"touching one byte per page of an empty numpy array that size takes "
              f"{fault_s(mer_b):.2f} s alone on this machine (the copy reuses a 1 MiB buffer).\n")
        print(f"Check: the status quo's merged state dict against merged/: {verdict}.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--workdir", default="/var/tmp/nemockpt-bench-views")
    ap.add_argument("--build", default=os.path.join(REPO, "build-release"))
    ap.add_argument("--size-gb", type=float, default=2.0,
                    help="minimum size of the 4 rank files, GiB (default 2)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ranks", default=DEFAULT_RANKS,
                    help=f"ranks/ layouts to read when the view exists (default {DEFAULT_RANKS})")
    ap.add_argument("--modes", default=None,
                    help="warm,cold (default: both as root, else warm)")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end part")
    ap.add_argument("--no-reads", action="store_true", help="skip the read-throughput part")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    args.workdir = os.path.abspath(args.workdir)
    build = os.path.abspath(args.build)
    exe = os.path.join(build, "bin", "nemockptfs")
    if not os.access(exe, os.X_OK):
        raise SystemExit(f"{exe}: not built (cmake -S . -B build-release "
                         "-DCMAKE_BUILD_TYPE=Release && cmake --build build-release)")
    modes = (args.modes or ("warm,cold" if can_drop() else "warm")).split(",")
    notes = []
    if "cold" in modes and not can_drop():
        modes.remove("cold")
        notes.append("not root: cold (drop_caches) figures skipped")
    os.makedirs(args.workdir, exist_ok=True)
    args.load0 = os.getloadavg()[0]
    layers = layers_for(args.size_gb)
    nemo = make_checkpoint(args.workdir, layers)
    mnt = os.path.join(args.workdir, "mnt")
    os.makedirs(mnt, exist_ok=True)
    mach = machine(build, exe, args.workdir)
    print(f"machine: {mach}")
    info, merged, raw, layouts, pnotes, sizes, _ = probe(
        exe, nemo, mnt, [x for x in args.ranks.split(",") if x])
    notes += pnotes
    print(f"checkpoint: {nemo} ({os.path.getsize(nemo) / GiB:.2f} GiB), catalog "
          f"{info.get('format')} tp {info.get('tp')} pp {info.get('pp')}; merged: {merged}; "
          f"ranks layouts: {list(layouts) or 'none'}")
    reads = None if args.no_reads else bench_reads(exe, nemo, mnt, modes, args.repeat, merged,
                                                   raw, layouts)
    e2e, verdict = (None, None) if args.no_e2e else bench_e2e(
        exe, nemo, mnt, args.workdir, modes, args.repeat, merged, not args.no_verify)
    report(args, mach, info, nemo, layers, sizes, merged, raw, notes, reads, e2e, verdict)


if __name__ == "__main__":
    sys.exit(main())
