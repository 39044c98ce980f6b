"""safetensors 0.8 (PyPI, unmodified) reads every safetensors file of
merged/, ranks/ (every default-listed tpXppY), qnemo/{bf16,fp8,int4_awq}
(default listings, -o group_size=8 as test_qnemo_view.py mounts the tiny
fixtures) and hf/ of every fixture: safe_open with the "pt" and "np"
frameworks and load_file of safetensors.torch and safetensors.numpy (all
mmap, their default), the kernel's cached pages of the file dropped before
each open so the daemon serves the bytes. Every tensor's dtype, shape and
bytes equal a cut of the fixture's oracle made here: the integration
tests' cutters (test_ranks_view.expected_rank, test_qnemo_view.expected)
and reference.hf_state (sharding-hf-trtllm.md B.1/B.2) for hf/.

Two limits of safetensors' numpy framework, asserted so that a change
shows: numpy has no bfloat16, which safetensors looks up as
numpy.dtype("bfloat16") - importing ml_dtypes registers it (done here); and
F8_E4M3 tensors raise AttributeError (it looks for numpy.float8_e4m3fn,
which numpy 2.4 lacks even with ml_dtypes): those are read with "pt"
only."""

import json
import os

import ml_dtypes  # noqa: F401 (registers numpy's "bfloat16" for safetensors.numpy)
import numpy as np
import pytest
import safetensors.numpy as st_np
import safetensors.torch as st_pt
import torch
from safetensors import safe_open

import reference as R
import test_qnemo_view as QV
from test_catalog import FIXTURES, sources
from test_ranks_view import expected_rank

PT = {"BF16": torch.bfloat16, "F32": torch.float32, "I64": torch.int64, "I8": torch.int8,
      "U8": torch.uint8, "F8_E4M3": torch.float8_e4m3fn, "F16": torch.float16}
NP = {"BF16": "bfloat16", "F32": "float32", "I64": "int64", "I8": "int8", "U8": "uint8",
      "F16": "float16"}
ORACLE_DTYPE = {np.dtype("uint16"): "BF16", np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
GPT = [n for n in FIXTURES if n not in ("asr_single", "qnemo_tp2")]  # Llama family, MCore names
ALGOS = ("bf16", "fp8", "int4_awq")
GROUP = QV.GROUP


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def entry(a, dtype=None):
    """(safetensors dtype, shape, little-endian bytes) of an oracle array."""
    a = np.asarray(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    return (dtype or ORACLE_DTYPE[a.dtype], list(a.shape), a.astype(a.dtype.newbyteorder("<")).tobytes())


def pt_bytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def check_pt(tensors, want, path):
    assert sorted(tensors) == sorted(want), (path, set(tensors) ^ set(want))
    for k, (dtype, shape, raw) in want.items():
        t = tensors[k]
        assert t.dtype == PT[dtype] and list(t.shape) == shape, (path, k, t.dtype, t.shape, dtype, shape)
        assert pt_bytes(t) == raw, (path, k)


def check_np(arrays, want, path):
    assert sorted(arrays) == sorted(want), (path, set(arrays) ^ set(want))
    for k, (dtype, shape, raw) in want.items():
        a = arrays[k]
        assert a.dtype.name == NP[dtype] and list(a.shape) == shape, (path, k, a.dtype, a.shape)
        assert np.ascontiguousarray(a).tobytes() == raw, (path, k)


def check_file(path, want):
    """Four readers of one file, each after dropping its cached pages."""
    path = str(path)
    drop_cache(path)
    with safe_open(path, framework="pt") as f:
        check_pt({k: f.get_tensor(k) for k in f.keys()}, want, path)
    f8 = {k for k, (dtype, _, _) in want.items() if dtype == "F8_E4M3"}
    drop_cache(path)
    with safe_open(path, framework="np") as f:
        assert sorted(f.keys()) == sorted(want), path
        for k in f8:
            with pytest.raises(AttributeError, match="float8_e4m3fn"):
                f.get_tensor(k)
        check_np({k: f.get_tensor(k) for k in f.keys() if k not in f8},
                 {k: v for k, v in want.items() if k not in f8}, path)
    drop_cache(path)
    check_pt(st_pt.load_file(path), want, path)
    drop_cache(path)
    if f8:
        with pytest.raises(AttributeError, match="float8_e4m3fn"):
            st_np.load_file(path)
    else:
        check_np(st_np.load_file(path), want, path)
    return len(want)


def check_model_dir(d, want):
    """A directory holding model.safetensors, or shards listed by
    model.safetensors.index.json; want: every tensor of the model."""
    files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    if "model.safetensors.index.json" in os.listdir(d):
        wm = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]
        assert sorted(wm) == sorted(want), set(wm) ^ set(want)
        assert sorted(set(wm.values())) == files
        return sum(check_file(d / f, {k: want[k] for k, v in wm.items() if v == f}) for f in files)
    assert files == ["model.safetensors"], files
    return check_file(d / "model.safetensors", want)


def layouts(d):
    """The tpXppY directories listed under d, as (name, tp, pp)."""
    out = []
    for e in sorted(os.listdir(d)):
        tp, pp = e[2:].split("pp")
        out.append((e, int(tp), int(pp)))
    assert out, d
    return out


@pytest.mark.parametrize("name", FIXTURES)
def test_merged(fixtures_dir, nemo, name):
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    want = {t["name"]: entry(npz[t["name"]], t["dtype"]) for t in meta["tensors"]}
    with nemo.mount(srcs[-1]) as mnt:
        assert check_model_dir(mnt / "merged", want) == len(meta["tensors"])


@pytest.mark.parametrize("name", GPT)
def test_ranks(fixtures_dir, nemo, name):
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        for lay, tp, pp in layouts(mnt / "ranks"):
            d = mnt / "ranks" / lay
            assert sorted(os.listdir(d)) == sorted(f"rank{i}.safetensors" for i in range(tp * pp))
            for p in range(pp):
                for r in range(tp):
                    want = {k: entry(a) for k, a in expected_rank(meta, npz, tp, pp, r, p).items()}
                    check_file(d / f"rank{p * tp + r}.safetensors", want)


@pytest.mark.parametrize("name", GPT)
def test_qnemo(fixtures_dir, nemo, name):
    meta, lt = R.oracle_bits(fixtures_dir / name)
    _, srcs = sources(fixtures_dir, name)
    with nemo.mount(srcs[-1], f"group_size={GROUP}") as mnt:
        seen = set()
        for algo in ALGOS:
            for lay, tp, pp in layouts(mnt / "qnemo" / algo):
                d = mnt / "qnemo" / algo / lay
                ranks = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
                assert ranks == sorted(f"rank{i}.safetensors" for i in range(tp * pp))
                for p in range(pp):
                    for r in range(tp):
                        want = QV.expected(meta, lt, algo, tp, pp, r, p)
                        check_file(d / f"rank{p * tp + r}.safetensors", want)
                        seen.update(dt for dt, _, _ in want.values())
        assert {"BF16", "F8_E4M3", "F32", "I8"} <= seen


def test_qnemo_fixture(fixtures_dir):
    """The .qnemo fixture's own rank files (a TensorRT-LLM export written by
    the fixture generator, read here straight from disk, no mount): the
    readers agree with the oracle's TP=1 TRT-LLM tensors cut per rank."""
    meta, srcs = sources(fixtures_dir, "qnemo_tp2")
    npz = np.load(fixtures_dir / "qnemo_tp2" / "oracle.npz")
    with safe_open(str(srcs[0] / "rank0.safetensors"), framework="pt") as f:
        qkv = f.get_tensor("transformer.layers.0.attention.qkv.weight")
    full = npz["transformer.layers.0.attention.qkv.weight"]
    # rank 0 = q0 q1 | k0 | v0 of [q0 q1 q2 q3 | k0 k1 | v0 v1] (8 rows a head)
    rows = list(range(0, 16)) + list(range(32, 40)) + list(range(48, 56))
    assert pt_bytes(qkv) == entry(full[rows])[2]


@pytest.mark.parametrize("name", GPT)
def test_hf(fixtures_dir, nemo, name):
    """hf/ of every Llama-family fixture: HF names, q/k/v de-interleaved
    (B.2), gate/up the halves of fc1, embed_tokens / lm_head rows [0, V),
    no lm_head when tied, norms as input_layernorm /
    post_attention_layernorm, bf16 as the source."""
    meta, bits = R.oracle_bits(fixtures_dir / name)
    _, cfg = R.load_oracle(fixtures_dir / name)
    want = {k: entry(a) for k, a in R.hf_state(bits, cfg).items()}
    assert want["model.embed_tokens.weight"][1] == [70, 32]
    assert ("lm_head.weight" in want) == (not meta["tied"])
    _, srcs = sources(fixtures_dir, name)
    with nemo.mount(srcs[-1]) as mnt:
        assert (mnt / "hf").is_dir(), f"{name}: no hf/ directory"
        assert check_model_dir(mnt / "hf", want) == len(want)


def test_no_hf_for_other_architectures(fixtures_dir, nemo):
    _, srcs = sources(fixtures_dir, "asr_single")
    with nemo.mount(srcs[-1]) as mnt:
        assert (mnt / "merged").is_dir() and not (mnt / "hf").exists()
