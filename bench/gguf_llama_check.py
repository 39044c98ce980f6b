#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""llama.cpp itself loads gguf/ from a mount (docs/DECISIONS.md, gguf/).

Run with an interpreter that has llama-cpp-python (which builds llama.cpp
from source), numpy, sentencepiece and pytest (the mount harness,
tests/integration/nemofs.py, imports it), e.g.

  python3 -m venv /tmp/llama-venv
  CMAKE_ARGS="-DGGML_NATIVE=OFF" /tmp/llama-venv/bin/pip install \\
      llama-cpp-python==0.3.36 numpy sentencepiece pytest
  NEMOCKPTFS=build/bin/nemockptfs /tmp/llama-venv/bin/python bench/gguf_llama_check.py

For each Llama fixture given (default: a tied GQA TP=2 .nemo and an untied
PP=2 one), it mounts the checkpoint, loads gguf/model-F16.gguf and
gguf/model-Q8_0.gguf with llama.cpp (mmap, its default: the pages come from
the mount) and compares the logits of a fixed prompt with a float32 numpy
forward pass of the Llama written here from the fixture's oracle.npz (HF
layout: rotate-half rotary, GQA, SwiGLU, RMSNorm); and llama.cpp's
tokenization of a fixed text with sentencepiece's. Bounds:

  F16: 1e-2 max abs (the issue's bound): llama.cpp multiplies F16 weights
       with activations rounded to F16 (relative error 2^-11 per operand);
  BF16: 1e-2 too: the weights are the oracle's exactly, activations are
       rounded to bf16 (2^-8) in the products;
  Q8_0: 5e-2 max abs and 5 % of the logits' max abs: the weights carry
       Q8_0's error (up to d/2 = amax/254 per element) and ggml quantizes the
       activations to Q8_0 too for the dot products, so two relative errors
       of ~0.4 % per element, over 4 layers, on logits of magnitude ~0.1-1;
  Q4_0: 0.25 max abs: a weight's error is up to d/2 = amax/16 (~6 %), so
       only the argmax agreement printed says much; it is a smoke test.

Exit status 0 when every check passes; figures are printed.
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import nemofs  # noqa: E402

# (file, max |logits - reference| allowed): see the docstring.
FILES = [("model-BF16.gguf", 1e-2), ("model-F16.gguf", 1e-2), ("model-Q8_0.gguf", 5e-2),
         ("model-Q4_0.gguf", 0.25)]
PROMPT = [1, 5, 9, 20, 33, 3, 7, 64, 12, 41, 2, 17]
TEXT = "the thing is on the station and he sent a message in the end"


def f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def hf_weights(fx):
    """The HF-layout float32 weights of a fixture (spec B.1-B.3)."""
    meta = json.loads((fx / "oracle.json").read_text())
    z = np.load(fx / "oracle.npz")
    heads = meta.get("heads", 4)
    groups = meta.get("groups", 2 if heads == 4 else heads)
    d = meta.get("head_dim", 8)
    q = heads // groups
    V = meta["vocab_size"]
    w = {"layers": [{} for _ in range(4)]}
    for t in meta["tensors"]:
        n, a = t["name"], f32(z[t["name"]])
        if ".layers." in n:
            i = int(n.split(".layers.")[1].split(".")[0])
            L = w["layers"][i]
            if n.endswith("linear_qkv.weight") or n.endswith("query_key_value.weight"):
                g = a.reshape(groups, q + 2, d, a.shape[1])
                L["q"] = g[:, :q].reshape(heads * d, -1)
                L["k"] = g[:, q].reshape(groups * d, -1)
                L["v"] = g[:, q + 1].reshape(groups * d, -1)
            elif n.endswith("linear_proj.weight") or n.endswith("attention.dense.weight"):
                L["o"] = a
            elif n.endswith("linear_fc1.weight") or n.endswith("dense_h_to_4h.weight"):
                L["gate"], L["up"] = np.split(a, 2)
            elif n.endswith("linear_fc2.weight") or n.endswith("dense_4h_to_h.weight"):
                L["down"] = a
            elif "linear_qkv.layer_norm" in n or "input_norm" in n:
                L["in_norm"] = a
            else:
                L["post_norm"] = a
        elif n.endswith("word_embeddings.weight"):
            w["emb"] = a[:V]
        elif n.endswith("output_layer.weight"):
            w["out"] = a[:V]
        else:
            w["norm"] = a
    w.setdefault("out", w["emb"])
    return w, dict(heads=heads, groups=groups, d=d, eps=1e-5, theta=10000.0)


def rms(x, g, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def rope(x, theta):
    """Rotate-half rotary over [T, heads, d] (HF Llama)."""
    T, _, d = x.shape
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(T)[:, None] * inv[None]
    cos = np.cos(np.concatenate([ang, ang], -1))[:, None].astype(np.float32)
    sin = np.sin(np.concatenate([ang, ang], -1))[:, None].astype(np.float32)
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * cos + rot * sin


def forward(w, c, ids):
    n, G, d = c["heads"], c["groups"], c["d"]
    x = w["emb"][ids]
    T = len(ids)
    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    for L in w["layers"]:
        h = rms(x, L["in_norm"], c["eps"])
        q = rope((h @ L["q"].T).reshape(T, n, d), c["theta"])
        k = rope((h @ L["k"].T).reshape(T, G, d), c["theta"])
        v = (h @ L["v"].T).reshape(T, G, d)
        k, v = np.repeat(k, n // G, axis=1), np.repeat(v, n // G, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(d) + mask
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        x = x + np.einsum("hts,shd->thd", p, v).reshape(T, n * d) @ L["o"].T
        h = rms(x, L["post_norm"], c["eps"])
        g = h @ L["gate"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ L["up"].T)) @ L["down"].T
    return rms(x, w["norm"], c["eps"]) @ w["out"].T


def llama_logits(path, ids, vocab=True):
    from llama_cpp import Llama
    llm = Llama(model_path=str(path), n_ctx=64, logits_all=True, n_threads=2, verbose=False)
    llm.eval(ids)
    out = np.array(llm.scores[:len(ids)], dtype=np.float32)
    toks = llm.tokenize(TEXT.encode(), add_bos=True) if vocab else None
    del llm
    gc.collect()
    return out, toks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", help="make_fixtures.py output (made in a temp dir if absent)")
    ap.add_argument("names", nargs="*", default=["nemo1_tp2", "nemo1_tp2pp2"])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gguf-llama-"))
    fxd = Path(args.fixtures) if args.fixtures else tmp / "fx"
    if not args.fixtures:
        subprocess.run(["/usr/bin/python3", str(REPO / "tests/fixtures/make_fixtures.py"),
                        str(fxd)], check=True, stdout=subprocess.DEVNULL)
    import sentencepiece as spm
    ok = True
    h = nemofs.Harness(tmp / "h", timeout=600)
    (tmp / "h").mkdir(exist_ok=True)
    try:
        for name in args.names:
            fx = fxd / name
            meta = json.loads((fx / "oracle.json").read_text())
            w, c = hf_weights(fx)
            want = forward(w, c, np.array(PROMPT))
            src = fx / meta["files"].get("tarball", meta["files"]["dir"])
            with h.mount(src) as mnt:
                tok = mnt / "hf" / "tokenizer.model"
                sp = spm.SentencePieceProcessor(model_file=str(tok)) if tok.exists() else None
                for fname, bound in FILES:
                    got, toks = llama_logits(mnt / "gguf" / fname, PROMPT, sp is not None)
                    diff = float(np.abs(got - want).max())
                    scale = float(np.abs(want).max())
                    good = diff <= bound and (fname != "model-Q8_0.gguf" or diff <= 0.05 * scale)
                    same_tok = sp is None or toks == [sp.bos_id()] + sp.encode(TEXT)
                    print("%-14s %-16s max|logits-ref| %.3g (bound %.0e, max|ref| %.3g) "
                          "argmax agree %.0f%%  tokens %s" %
                          (name, fname, diff, bound, scale,
                           100 * float((got.argmax(-1) == want.argmax(-1)).mean()),
                           "(no vocabulary)" if sp is None else "equal" if same_tok else
                           "DIFFER %s vs %s" % (toks, [sp.bos_id()] + sp.encode(TEXT))))
                    ok &= good and same_tok
    finally:
        errors = h.finish()
        if errors:
            print("\n".join(errors))
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
