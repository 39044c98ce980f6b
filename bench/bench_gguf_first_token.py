#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gguf/ end to end (issue #13, docs/PERFORMANCE.md): the time from "I have
a .nemo" to llama.cpp's first token, through the mount against the
conversion a user would otherwise run.

usage: bench/bench_gguf_first_token.py --python VENV_PYTHON [--llama DIR]
       [--build DIR] [--workdir D] [--size-gb G] [--repeat N]
       [--types Q8_0,BF16,F16,Q8_0-via-F16]

The checkpoint is bench_views.py's (a Llama-style TP=4 NeMo 1 .nemo, bf16,
hidden 2048, ffn 5632, 16 heads in 4 query groups, vocabulary 32000 in a
SentencePiece artifact, untied; made once under --workdir and shared with
bench_hf.py and bench_gguf.py). llama.cpp is bench/llama-build.sh's
(llama-cpp-python 0.3.36's vendored tree: --llama is that tree, whose
convert_hf_to_gguf.py and gguf-py the status quo runs; the programs are in
its ../../../build/bin). VENV_PYTHON has torch 2.x, safetensors, numpy,
sentencepiece and gguf (tests/venv.sh prints the suite's).

Every pipeline starts with cold caches (`sync; echo 3 > drop_caches`, so
root), then the programs (python with torch, transformers and gguf; tar;
llama-simple; nemockptfs), not the checkpoint, are read back in, as
bench_hf.py does. The first token is `llama-simple -m FILE -n 1 PROMPT`
(mmap, greedy, llama.cpp's default threads), timed to the program's exit.
  status quo  tar -xf into a temp dir; bench_hf.py's torch NeMo->HF script
              (merge the 4 ranks, split QKV/fc1, cut the vocabulary,
              save_file, config.json) plus the tokenizer artifact copied as
              tokenizer.model with a tokenizer_config.json (add_bos_token);
              `convert_hf_to_gguf.py DIR --outtype q8_0` (its own
              quantizer, what users run; bf16/f16 for those types;
              Q8_0-via-F16: f16, then llama-quantize ... Q8_0); then
              llama-simple on the converted file;
  nemockpt    spawn the mount; llama-simple on <mnt>/gguf/model-TYPE.gguf.
The pipelines alternate which goes first. The first token's id must be
the same on both sides; after the first repeat the converted file and the
mount's are compared tensor by tensor (names, types, shapes, bytes) and
key by key (not timed).
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_hf as BH  # noqa: E402
import bench_views as BV  # noqa: E402

# Words that are whole pieces of the bench vocabulary (U+2581 and up to three
# letters, not starting with "a"), each built from pieces by its prefixes:
# it has no byte pieces, and llama.cpp's SentencePiece tokenizer throws on
# a character it cannot cover.
PROMPT = "the cat sat on the mat so he ran to the end of the day"
LLAMA_DEFAULT = os.path.expanduser(
    "~/.cache/nemockpt/llama.cpp-0.3.36/llama_cpp_python-0.3.36/vendor/llama.cpp")
# --types: the converter's --outtype for each, and the gguf/ file it is
# compared with. Q8_0-via-F16 is the other common route: --outtype f16, then
# `llama-quantize F16.gguf Q8_0.gguf Q8_0`.
OUTTYPE = {"Q8_0": "q8_0", "BF16": "bf16", "F16": "f16", "Q8_0-via-F16": "f16"}
MOUNT_FILE = {"Q8_0": "Q8_0", "BF16": "BF16", "F16": "F16", "Q8_0-via-F16": "Q8_0"}

# The converted file against the mount's: every tensor and metadata key.
COMPARE = r'''
import json, sys
import numpy as np
from gguf import GGUFReader
a, b = GGUFReader(sys.argv[1]), GGUFReader(sys.argv[2])
ta = {t.name: t for t in a.tensors}
tb = {t.name: t for t in b.tensors}
out = {"tensors": len(ta), "names_equal": sorted(ta) == sorted(tb), "differ": []}
for n in sorted(set(ta) & set(tb)):
    x, y = ta[n], tb[n]
    if (x.tensor_type != y.tensor_type or list(x.shape) != list(y.shape)
            or not np.array_equal(np.asarray(x.data).view(np.uint8),
                                  np.asarray(y.data).view(np.uint8))):
        out["differ"].append(n)
def val(f):
    if not f.types:
        return None
    if f.types[0].name == "ARRAY":
        return ("array", len(f.data), hash(tuple(bytes(f.parts[i]) for i in f.data)))
    return bytes(f.parts[f.data[0]]) if f.data else None
fa = {k: val(f) for k, f in a.fields.items() if not k.startswith("GGUF.")}
fb = {k: val(f) for k, f in b.fields.items() if not k.startswith("GGUF.")}
out["keys_only_converted"] = sorted(set(fa) - set(fb))
out["keys_only_mount"] = sorted(set(fb) - set(fa))
out["keys_differ"] = sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k])
toks = b.fields["tokenizer.ggml.tokens"]
pieces = {bytes(toks.parts[i]).decode().replace("\u2581", " "): j for j, i in enumerate(toks.data)}
out["piece_ids"] = {p: pieces.get(p) for p in json.loads(sys.argv[3])}
print(json.dumps(out))
'''

TOKCFG = r'''
import json, os, shutil, sys, yaml
ext, hf = sys.argv[1], sys.argv[2]
cfg = yaml.safe_load(open(os.path.join(ext, "model_config.yaml")))
shutil.copyfile(os.path.join(ext, cfg["tokenizer"]["model"][len("nemo:"):]),
                os.path.join(hf, "tokenizer.model"))
json.dump({"add_bos_token": True, "add_eos_token": False, "tokenizer_class": "LlamaTokenizer"},
          open(os.path.join(hf, "tokenizer_config.json"), "w"))
'''


def warm_programs(python, simple, exe, convert):
    """After drop_caches: the programs back in the page cache, not the data."""
    subprocess.run([python, "-c", "import torch, yaml, safetensors, numpy, sentencepiece, "
                    "transformers, gguf"], check=True)
    subprocess.run([python, convert, "--help"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["tar", "--version"], check=True, stdout=subprocess.DEVNULL)
    for f in (simple, exe):
        BV.read_file(f)


def cold(python, simple, exe, convert):
    BV.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    warm_programs(python, simple, exe, convert)


def first_token(simple, gguf):
    """llama-simple -n 1; returns (wall s, printed text, load ms, prompt eval ms)."""
    t0 = time.perf_counter()
    p = subprocess.run([simple, "-m", gguf, "-n", "1", PROMPT], capture_output=True)
    dt = time.perf_counter() - t0
    err = p.stderr.decode(errors="replace")
    if p.returncode:
        raise RuntimeError(f"llama-simple {gguf}: exit {p.returncode}\n{err[-3000:]}")
    load = re.search(r"load time =\s*([0-9.]+) ms", err)
    pev = re.search(r"prompt eval time =\s*([0-9.]+) ms", err)
    ms = [float(m.group(1)) if m else float("nan") for m in (load, pev)]
    return (dt, p.stdout.decode(errors="replace").rstrip("\n"), ms[0], ms[1])


def generated(text):
    """The piece llama-simple printed after the prompt's echo (all of the
    bench vocabulary's normal pieces start with U+2581, printed as a space)."""
    i = text.rfind(" ")
    return text[i:] if i >= 0 else text


def run_status_quo(args, ty, work, nemo, simple, quantize, convert, scripts, keep_file):
    tmp = tempfile.mkdtemp(dir=work)
    try:
        ext, hf = os.path.join(tmp, "x"), os.path.join(tmp, "hf")
        os.mkdir(ext)
        out = os.path.join(tmp, f"model-{ty}.gguf")
        t0 = time.perf_counter()
        subprocess.run(["tar", "-xf", nemo, "-C", ext], check=True)
        t1 = time.perf_counter()
        BH.run_json([args.python, scripts["convert"], ext, hf, str(BV.VOCAB)])
        subprocess.run([args.python, scripts["tokcfg"], ext, hf], check=True)
        t2 = time.perf_counter()
        p = subprocess.run([args.python, convert, hf, "--outtype", OUTTYPE[ty], "--outfile", out],
                           capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError("convert_hf_to_gguf.py: " + p.stderr[-3000:])
        t3 = time.perf_counter()
        if ty == "Q8_0-via-F16":
            q = os.path.join(tmp, "model-Q8_0.gguf")
            p = subprocess.run([quantize, out, q, "Q8_0"], capture_output=True, text=True)
            if p.returncode:
                raise RuntimeError("llama-quantize: " + p.stderr[-3000:])
            os.unlink(out)
            out = q
        t3q = time.perf_counter()
        ft, text, load_ms, pev_ms = first_token(simple, out)
        t4 = time.perf_counter()
        row = {"tar_s": t1 - t0, "hf_s": t2 - t1, "gguf_s": t3 - t2, "quantize_s": t3q - t3,
               "token_s": t4 - t3q, "total_s": t4 - t0, "load_ms": load_ms, "prompt_ms": pev_ms,
               "text": text, "gguf_bytes": os.path.getsize(out)}
        keep = None
        if keep_file:
            keep = os.path.join(work, f"converted-{ty}.gguf")
            os.replace(out, keep)
        return row, keep
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_mount(exe, nemo, mnt, ty, simple):
    t0 = time.perf_counter()
    with BV.Mount(exe, nemo, mnt) as m:
        t1 = time.perf_counter()
        path = os.path.join(mnt, "gguf", f"model-{MOUNT_FILE[ty]}.gguf")
        ft, text, load_ms, pev_ms = first_token(simple, path)
        t2 = time.perf_counter()
        size = os.path.getsize(path)
    return {"mount_s": t1 - t0, "token_s": t2 - t1, "total_s": t2 - t0, "load_ms": load_ms,
            "prompt_ms": pev_ms, "text": text, "gguf_bytes": size, "spawn_s": m.mount_s}


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="interpreter with torch 2.x, safetensors, gguf")
    ap.add_argument("--llama", default=LLAMA_DEFAULT, help="llama.cpp source tree (llama-build.sh)")
    ap.add_argument("--simple", help="llama-simple (default: the tree's ../../../build/bin; "
                    "llama-quantize beside it)")
    ap.add_argument("--workdir", default="/var/tmp/nemockpt-bench-views")
    ap.add_argument("--build", default=os.path.join(BV.REPO, "build-rel"))
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--types", default="Q8_0")
    args = ap.parse_args()
    if not BV.can_drop():
        raise SystemExit("cold runs need root (drop_caches)")
    exe = os.path.join(args.build, "bin", "nemockptfs")
    bindir = os.path.join(args.llama, "..", "..", "..", "build", "bin")
    simple = args.simple or os.path.join(bindir, "llama-simple")
    quantize = os.path.join(os.path.dirname(simple), "llama-quantize")
    convert = os.path.join(args.llama, "convert_hf_to_gguf.py")
    for f in (exe, simple, convert):
        if not os.path.exists(f):
            raise SystemExit(f"{f}: not found (bench/llama-build.sh, cmake --build)")
    types = args.types.split(",")
    if any(t not in OUTTYPE for t in types):
        raise SystemExit(f"--types: each one of {', '.join(OUTTYPE)}")
    if "Q8_0-via-F16" in types and not os.path.exists(quantize):
        raise SystemExit(f"{quantize}: not found (bench/llama-build.sh --quantize)")
    os.makedirs(args.workdir, exist_ok=True)
    layers = BV.layers_for(args.size_gb)
    nemo = BV.make_checkpoint(args.workdir, layers)
    mnt = os.path.join(args.workdir, "mnt-gguf")
    os.makedirs(mnt, exist_ok=True)
    scripts = {}
    for name, text in (("convert", BH.CONVERT), ("tokcfg", TOKCFG), ("compare", COMPARE)):
        scripts[name] = os.path.join(args.workdir, f"gguf_ft_{name}.py")
        with open(scripts[name], "w") as f:
            f.write(text)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; {nemo} {os.path.getsize(nemo) / BV.GiB:.2f} GiB, "
          f"{layers} layers; llama-simple {simple}", flush=True)
    rows = {ty: {"status quo": [], "nemockpt": []} for ty in types}
    checks = {}
    for k in range(args.repeat):
        for ty in types:
            order = ["status quo", "nemockpt"] if k % 2 == 0 else ["nemockpt", "status quo"]
            for side in order:
                cold(args.python, simple, exe, convert)
                if side == "nemockpt":
                    r = run_mount(exe, nemo, mnt, ty, simple)
                else:
                    r, keep = run_status_quo(args, ty, args.workdir, nemo, simple, quantize,
                                             convert, scripts, ty not in checks)
                rows[ty][side].append(r)
                print(f"  {k} {ty:5} {side:10} total {r['total_s']:7.1f} s  "
                      + "  ".join(f"{a} {b:.2f}" for a, b in r.items()
                                  if isinstance(b, float) and a != "total_s")
                      + f"  token {generated(r['text'])!r}  (load {os.getloadavg()[0]:.1f})",
                      flush=True)
                if side == "status quo" and keep:
                    with BV.Mount(exe, nemo, mnt):
                        p = subprocess.run(
                            [args.python, scripts["compare"], keep,
                             os.path.join(mnt, "gguf", f"model-{MOUNT_FILE[ty]}.gguf"),
                             json.dumps([generated(r["text"])])],
                            check=True, capture_output=True, text=True)
                    os.unlink(keep)
                    checks[ty] = json.loads(p.stdout.strip().splitlines()[-1])
                    print(f"  compare {ty}: {checks[ty]}", flush=True)
    ok = True
    print()
    for ty in types:
        sq, nk = rows[ty]["status quo"], rows[ty]["nemockpt"]
        toks = {generated(r["text"]) for r in sq + nk}
        texts = {r["text"] for r in sq + nk}
        c = checks.get(ty, {})
        ids = c.get("piece_ids", {})
        same = len(texts) == 1
        ok &= same
        print(f"{ty}: first token {sorted(toks)} id {[ids.get(t) for t in sorted(toks)]}; "
              f"the whole output {'equal' if same else 'DIFFERS'} in all {len(sq + nk)} runs; "
              f"converted file vs mount: {c.get('tensors')} tensors, "
              f"{len(c.get('differ', [])) if c else '?'} differ {c.get('differ', [])[:5]}, "
              f"keys only converted {c.get('keys_only_converted')}, only mount "
              f"{c.get('keys_only_mount')}, values differ {c.get('keys_differ')}")
    print(f"\n| pipeline (cold caches) | total s (median of {args.repeat}) | parts |")
    print("|---|---|---|")
    for ty in types:
        sq, nk = rows[ty]["status quo"], rows[ty]["nemockpt"]
        lq = " + llama-quantize Q8_0" if ty == "Q8_0-via-F16" else ""
        lqs = f", llama-quantize {med(sq, 'quantize_s'):.1f}" if lq else ""
        print(f"| tar -x + torch NeMo->HF + convert_hf_to_gguf.py --outtype {OUTTYPE[ty]}{lq} + "
              f"llama-simple | {med(sq, 'total_s'):.1f} | tar {med(sq, 'tar_s'):.1f}, NeMo->HF "
              f"{med(sq, 'hf_s'):.1f}, convert_hf_to_gguf {med(sq, 'gguf_s'):.1f}{lqs}, "
              f"first token "
              f"{med(sq, 'token_s'):.1f} (llama.cpp load {med(sq, 'load_ms') / 1e3:.1f}, prompt "
              f"{med(sq, 'prompt_ms') / 1e3:.1f}) |")
        print(f"| nemockptfs + llama-simple gguf/model-{MOUNT_FILE[ty]}.gguf | "
              f"{med(nk, 'total_s'):.1f} | "
              f"mount {med(nk, 'mount_s'):.2f}, first token {med(nk, 'token_s'):.1f} "
              f"(llama.cpp load {med(nk, 'load_ms') / 1e3:.1f}, prompt "
              f"{med(nk, 'prompt_ms') / 1e3:.1f}) |")
        runs = [[round(r["total_s"], 1) for r in x] for x in (sq, nk)]
        print(f"ratio {ty}: {med(sq, 'total_s') / med(nk, 'total_s'):.1f}x; runs: status quo "
              f"{runs[0]}, mount {runs[1]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
