#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""hf/ benchmark (issue #10, docs/PERFORMANCE.md): first reads of
hf/model*.safetensors against merged/model*.safetensors of the same
mount, side by side, and the time from "I have a .nemo" to a loaded
transformers model, through the mount against tar -x plus the NeMo-to-HF
conversion a user would otherwise run.

usage: bench/bench_hf.py --python VENV_PYTHON [--workdir D] [--build DIR]
       [--size-gb G] [--repeat N] [--modes warm,cold] [--no-e2e]

The checkpoint is bench_views.py's (a Llama-style TP=4 NeMo 1 .nemo, bf16,
hidden 2048, 16 heads in 4 query groups, SwiGLU, vocabulary 32000, untied;
generated once under --workdir and shared with that benchmark).
VENV_PYTHON is an interpreter with torch 2.x, transformers and safetensors
(tests/venv.sh prints the suite's).

Part 1, reads (one fresh mount per figure, 1 MiB read()s, the mount's own
time excluded; `warm`: the .nemo read once before, so it is in the page
cache; `cold`: every cache dropped first): merged/ and hf/ alternate, so
neither always runs first.
Part 2, end to end, cold caches before each pipeline:
  status quo  tar -xf into a temp dir; a torch script (written here, from
              the spec: merge the 4 ranks by Megatron's rules, then split
              QKV into q/k/v_proj by query group, fc1 into gate/up_proj,
              cut the vocabulary, save_file() one model.safetensors and a
              config.json); then from_pretrained() of that directory;
  nemockpt    spawn the mount, from_pretrained("<mnt>/hf").
Both loads run the same script, in a new process, with no extra arguments.
The converted file is compared tensor by tensor with hf/'s (not timed).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_views as BV  # noqa: E402

CONVERT = r'''
import json, os, sys, time
import torch, yaml
from safetensors.torch import save_file
ext, out, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = yaml.safe_load(open(os.path.join(ext, "model_config.yaml")))
T = cfg["tensor_model_parallel_size"]
t0 = time.perf_counter()
ranks = [torch.load(os.path.join(ext, "mp_rank_%02d" % r, "model_weights.ckpt"),
                    map_location="cpu", weights_only=False) for r in range(T)]
t1 = time.perf_counter()
n, g, h = cfg["num_attention_heads"], cfg["num_query_groups"], cfg["hidden_size"]
d, q, f = h // n, n // g, cfg["ffn_hidden_size"]
sd = {}
for k in ranks[0]:
    if k.endswith("_extra_state"):
        continue
    parts = [r[k] for r in ranks]
    if k.endswith(("linear_proj.weight", "linear_fc2.weight")):
        w = torch.cat(parts, 1)
    elif k.endswith("linear_fc1.weight"):
        w = torch.cat([p[:f // T] for p in parts] + [p[f // T:] for p in parts])
    elif k.endswith(("linear_qkv.weight", "word_embeddings.weight", "output_layer.weight")):
        w = torch.cat(parts)
    else:
        w = parts[0]
    sd[k[len("model."):]] = w
hf = {}
for k, w in sd.items():
    if k.startswith("decoder.layers."):
        i, rest = k[len("decoder.layers."):].split(".", 1)
        p = "model.layers.%s." % i
        if rest == "self_attention.linear_qkv.weight":
            x = w.view(g, q + 2, d, h)
            hf[p + "self_attn.q_proj.weight"] = x[:, :q].reshape(n * d, h).clone()
            hf[p + "self_attn.k_proj.weight"] = x[:, q].reshape(g * d, h).clone()
            hf[p + "self_attn.v_proj.weight"] = x[:, q + 1].reshape(g * d, h).clone()
        elif rest == "mlp.linear_fc1.weight":
            hf[p + "mlp.gate_proj.weight"] = w[:f].clone()
            hf[p + "mlp.up_proj.weight"] = w[f:].clone()
        else:
            hf[p + {"self_attention.linear_proj.weight": "self_attn.o_proj.weight",
                    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
                    "mlp.linear_fc1.layer_norm_weight": "post_attention_layernorm.weight",
                    "mlp.linear_fc2.weight": "mlp.down_proj.weight"}[rest]] = w
    elif k == "embedding.word_embeddings.weight":
        hf["model.embed_tokens.weight"] = w[:vocab].clone()
    elif k == "output_layer.weight":
        hf["lm_head.weight"] = w[:vocab].clone()
    elif k == "decoder.final_layernorm.weight":
        hf["model.norm.weight"] = w
t2 = time.perf_counter()
os.makedirs(out, exist_ok=True)
save_file(hf, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
           "intermediate_size": f, "num_hidden_layers": cfg["num_layers"],
           "num_attention_heads": n, "num_key_value_heads": g, "head_dim": d,
           "hidden_act": "silu", "max_position_embeddings": cfg["max_position_embeddings"],
           "rms_norm_eps": cfg["layernorm_epsilon"], "rope_theta": float(cfg["rotary_base"]),
           "tie_word_embeddings": False, "vocab_size": vocab, "dtype": "bfloat16"},
          open(os.path.join(out, "config.json"), "w"))
t3 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "convert_s": t2 - t1, "save_s": t3 - t2}))
'''

LOAD = r'''
import json, sys, time
t0 = time.perf_counter()
from transformers import AutoModelForCausalLM
t1 = time.perf_counter()
m = AutoModelForCausalLM.from_pretrained(sys.argv[1])
t2 = time.perf_counter()
assert type(m).__name__ == "LlamaForCausalLM"
print(json.dumps({"import_s": t1 - t0, "from_pretrained_s": t2 - t1,
                  "params": sum(p.numel() for p in m.parameters())}))
'''

VERIFY = r'''
import sys, torch
from safetensors import safe_open
a, b = safe_open(sys.argv[1], "pt"), safe_open(sys.argv[2], "pt")
ka, kb = sorted(a.keys()), sorted(b.keys())
assert ka == kb, (len(ka), len(kb))
for k in ka:
    x, y = a.get_tensor(k), b.get_tensor(k)
    assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x.view(torch.int16), y.view(torch.int16)), k
print(len(ka))
'''


def files_of(mnt, d):
    return sorted(os.path.join(d, n) for n in os.listdir(os.path.join(mnt, d))
                  if n.endswith(".safetensors"))


def bench_reads(exe, nemo, mnt, modes, repeat):
    with BV.Mount(exe, nemo, mnt):
        cases = {"merged": files_of(mnt, "merged"), "hf": files_of(mnt, "hf")}
    res = {}
    for mode in modes:
        for k in range(repeat):
            for key in (["merged", "hf"] if k % 2 == 0 else ["hf", "merged"]):
                BV.prepare(mode, nemo)
                with BV.Mount(exe, nemo, mnt):
                    n, dt = BV.read_files([os.path.join(mnt, p) for p in cases[key]])
                res.setdefault((mode, key), []).append(n / dt / 1e9)
                print(f"  {mode:4} {key:6} {n / BV.GiB:6.2f} GiB {n / dt / 1e9:6.2f} GB/s", flush=True)
    return cases, res


def run_json(argv):
    p = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_e2e(exe, nemo, mnt, work, python, repeat):
    conv, load, ver = (os.path.join(work, n) for n in ("hf_convert.py", "hf_load.py", "hf_verify.py"))
    for path, text in ((conv, CONVERT), (load, LOAD), (ver, VERIFY)):
        with open(path, "w") as f:
            f.write(text)
    rows = {"status quo": [], "nemockpt": []}
    verified = None
    for k in range(repeat):
        tmp = tempfile.mkdtemp(dir=work)
        try:
            BV.prepare("cold", nemo)
            t0 = time.perf_counter()
            subprocess.run(["tar", "-xf", nemo, "-C", tmp], check=True)
            t1 = time.perf_counter()
            c = run_json([python, conv, tmp, os.path.join(tmp, "hf"), str(BV.VOCAB)])
            t2 = time.perf_counter()
            ld = run_json([python, load, os.path.join(tmp, "hf")])
            t3 = time.perf_counter()
            rows["status quo"].append({"tar_s": t1 - t0, "convert_s": t2 - t1, "load_s": t3 - t2,
                                       "total_s": t3 - t0, **{"script_" + a: b for a, b in c.items()}})
            BV.prepare("cold", nemo)
            t0 = time.perf_counter()
            with BV.Mount(exe, nemo, mnt) as m:
                t1 = time.perf_counter()
                ld2 = run_json([python, load, os.path.join(mnt, "hf")])
                t2 = time.perf_counter()
                if verified is None:
                    verified = subprocess.run(
                        [python, ver, os.path.join(tmp, "hf", "model.safetensors"),
                         os.path.join(mnt, "hf", "model.safetensors")],
                        check=True, capture_output=True, text=True).stdout.strip()
            rows["nemockpt"].append({"mount_s": t1 - t0, "load_s": t2 - t1, "total_s": t2 - t0,
                                     "from_pretrained_s": ld2["from_pretrained_s"]})
            assert ld["params"] == ld2["params"]
            print(f"  status quo {rows['status quo'][-1]['total_s']:7.1f} s   "
                  f"nemockpt {rows['nemockpt'][-1]['total_s']:7.1f} s", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows, verified


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="interpreter with torch 2.x, transformers, safetensors")
    ap.add_argument("--workdir", default="/var/tmp/nemockpt-bench-views")
    ap.add_argument("--build", default=os.path.join(BV.REPO, "build-release"))
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default="warm,cold")
    ap.add_argument("--no-e2e", action="store_true")
    args = ap.parse_args()
    exe = os.path.join(args.build, "bin", "nemockptfs")
    modes = args.modes.split(",")
    if "cold" in modes and not BV.can_drop():
        raise SystemExit("cold runs need root (drop_caches)")
    os.makedirs(args.workdir, exist_ok=True)
    layers = BV.layers_for(args.size_gb)
    nemo = BV.make_checkpoint(args.workdir, layers)
    mnt = os.path.join(args.workdir, "mnt-hf")
    os.makedirs(mnt, exist_ok=True)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; "
          f"{nemo} {os.path.getsize(nemo) / BV.GiB:.2f} GiB, {layers} layers")
    cases, reads = bench_reads(exe, nemo, mnt, modes, args.repeat)
    print("\n| mode | file | GB/s (median of %d) | hf/ vs merged/ |" % args.repeat)
    print("|---|---|---|---|")
    for mode in modes:
        m, h = med(reads[(mode, "merged")]), med(reads[(mode, "hf")])
        print(f"| {mode} | merged/ ({len(cases['merged'])} file) | {m:.2f} | |")
        print(f"| {mode} | hf/ ({len(cases['hf'])} file) | {h:.2f} | {h / m:.2f}x |")
    if args.no_e2e:
        return
    rows, verified = bench_e2e(exe, nemo, mnt, args.workdir, args.python, args.repeat)
    sq, nk = rows["status quo"], rows["nemockpt"]
    print(f"\nverified: {verified} tensors of the converted file equal hf/'s bit for bit")
    print("\n| pipeline (cold caches) | total s (median of %d) | parts |" % args.repeat)
    print("|---|---|---|")
    print(f"| tar -x + torch convert + from_pretrained | {med([r['total_s'] for r in sq]):.1f} | "
          f"tar {med([r['tar_s'] for r in sq]):.1f}, convert {med([r['convert_s'] for r in sq]):.1f} "
          f"(torch.load {med([r['script_load_s'] for r in sq]):.1f}, save {med([r['script_save_s'] for r in sq]):.1f}), "
          f"load {med([r['load_s'] for r in sq]):.1f} |")
    print(f"| nemockptfs + from_pretrained(hf/) | {med([r['total_s'] for r in nk]):.1f} | "
          f"mount {med([r['mount_s'] for r in nk]):.2f}, load {med([r['load_s'] for r in nk]):.1f} "
          f"(from_pretrained {med([r['from_pretrained_s'] for r in nk]):.1f}) |")
    print(f"\nratio: {med([r['total_s'] for r in sq]) / med([r['total_s'] for r in nk]):.1f}x faster through the mount")


if __name__ == "__main__":
    main()
