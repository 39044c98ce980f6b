"""ranks/tp<T>pp<P>/rank<R>.safetensors: every rank of every layout checked
against rank tensors cut here, in Python, from the fixtures' unsharded
oracle with the Megatron rules (spec A.2-A.8), written independently of the
C code: stage-local layer numbers, QKV and fc1 by the rules of their kind,
row-parallel tensors on dim 1, vocabulary zero-padded to V_T, the tied copy
on the last stage."""

import errno
import json
import os
import re

import numpy as np
import pytest

from test_catalog import fixtures_dir, sources  # noqa: F401 (session fixture)
from fixturelib.model import tp_shard
from test_merged_view import parse_safetensors
from viewcheck import check_three_ways

GPT = ["nemo1_single", "nemo1_tp2", "nemo1_tp2pp2", "nemo1_tp2pp2_tied", "nemo1_mha_tp2",
       "nemo1_dist_torch",
       "nemo1_dist_zarr", "nemo2", "megatron_iter", "megatron_release_legacy"]
LAYOUTS = [(1, 1), (2, 1), (1, 2), (2, 2), (1, 4), (2, 4)]

# TP rule by name suffix (spec A.1), MCore and legacy names.
RULES = [("linear_qkv.weight", "col"), ("query_key_value.weight", "col"),
         ("linear_fc1.weight", "glu"), ("dense_h_to_4h.weight", "glu"),
         ("linear_proj.weight", "row"), ("self_attention.dense.weight", "row"),
         ("linear_fc2.weight", "row"), ("dense_4h_to_h.weight", "row"),
         ("word_embeddings.weight", "vocab"), ("output_layer.weight", "vocab")]
LAYER = re.compile(r"(^|\.)layers\.(\d+)\.")


def kind(name):
    for suffix, k in RULES:
        if name.endswith(suffix):
            return k
    return "rep"


def padded(v, d, t):
    unit = d * t
    return (v + unit - 1) // unit * unit


def cut(a, k, tp, r, rows_t):
    """Rank r's part of the full tensor a: fixturelib's split (the one the
    fixtures were cut with), vocabulary first zero-padded to V_T rows."""
    if k == "vocab":
        full = np.zeros((rows_t,) + a.shape[1:], a.dtype)
        full[:a.shape[0]] = a[:rows_t]
        a = full
    return tp_shard({"col": "qkv"}.get(k, k), a, tp, r)


def expected_rank(meta, npz, tp, pp, r, p):
    """{name: array} of rank (r, p) of layout (tp, pp)."""
    names = [t["name"] for t in meta["tensors"]]
    layers = 1 + max(int(m.group(2)) for m in map(LAYER.search, names) if m)
    per = layers // pp
    rows_t = padded(meta["vocab_size"], meta["make_vocab_size_divisible_by"], tp)
    out = {}
    for name in names:
        m = LAYER.search(name)
        if m:
            g = int(m.group(2))
            if g // per != p:
                continue
            s, e = m.span(2)
            local = name[:s] + str(g % per) + name[e:]
        else:
            last = "final_layernorm" in name or "final_norm" in name or "output_layer" in name
            if (pp - 1 if last else 0) != p:
                continue
            local = name
        out[local] = cut(npz[name], kind(name), tp, r, rows_t)
    if meta["tied"] and pp > 1 and p == pp - 1:
        emb = next(n for n in names if n.endswith("embedding.word_embeddings.weight"))
        if "language_model." in emb:
            pre = emb[:emb.index("language_model.")]
            copy = "word_embeddings_for_head.weight" if meta["layout"].startswith("megatron") \
                else "word_embeddings.weight"
            dup = pre + copy
        else:
            dup = emb[:-len("embedding.word_embeddings.weight")] + "output_layer.weight"
        out[dup] = cut(npz[emb], "vocab", tp, r, rows_t)
    return out


def le_bytes(a):
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()


def check_rank_file(data, want, meta_tp, meta_pp):
    md, tensors = parse_safetensors(data)
    assert md["tensor_model_parallel_size"] == str(meta_tp)
    assert md["pipeline_model_parallel_size"] == str(meta_pp)
    assert sorted(tensors) == sorted(want), set(tensors) ^ set(want)
    for name, a in want.items():
        dtype, shape, raw = tensors[name]
        assert shape == list(a.shape), (name, shape, a.shape)
        assert raw == le_bytes(a), name


@pytest.mark.parametrize("name", GPT)
def test_every_rank_matches_oracle(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        for tp, pp in LAYOUTS:
            d = mnt / "ranks" / f"tp{tp}pp{pp}"
            files = sorted(os.listdir(d))
            assert files == sorted(f"rank{i}.safetensors" for i in range(tp * pp))
            for p in range(pp):
                for r in range(tp):
                    data = (d / f"rank{p * tp + r}.safetensors").read_bytes()
                    check_rank_file(data, expected_rank(meta, npz, tp, pp, r, p), tp, pp)


@pytest.mark.parametrize("name", ["nemo1_tp2pp2", "nemo1_dist_torch", "megatron_iter"])
def test_listing_and_invalid_layouts(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    with nemo.mount(srcs[-1]) as mnt:
        listed = set(os.listdir(mnt / "ranks"))
        src = {f"tp{meta['tp']}pp{meta['pp']}"}
        # 4 heads in 2 query groups: T in {1, 2}; 4 layers: P in {1, source P}.
        want = src | {f"tp{t}pp{p}" for t in (1, 2) for p in {1, meta["pp"]}}
        assert listed == want
        views = json.loads((mnt / "info.json").read_text())["views"]
        assert set(views["ranks"]) == listed and views["ranks"][0] == next(iter(src))
        for k in ("nemo", "qnemo/bf16", "qnemo/fp8"):
            if (mnt / k).exists():
                assert set(views[k]) == set(os.listdir(mnt / k)), k
        assert (mnt / "ranks" / "tp1pp4").is_dir()  # valid, not listed
        for bad in ("tp4pp1", "tp8pp1", "tp3pp1", "tp1pp3", "tp0pp1", "tp01pp1", "tp1pp1x",
                    "tp1", "pp1tp1", "tp-1pp1", "tp1pp8"):
            assert not (mnt / "ranks" / bad).exists(), bad
        st = os.stat(mnt / "ranks" / "tp2pp1" / "rank1.safetensors")
        assert st.st_size > 0 and st.st_mode & 0o777 == 0o444


def test_not_offered_for_other_models(fixtures_dir, nemo):  # noqa: F811
    for name in ("asr_single", "qnemo_tp2"):
        meta, srcs = sources(fixtures_dir, name)
        with nemo.mount(srcs[-1]) as mnt:
            assert not (mnt / "ranks").exists()
            assert not (mnt / "nemo").exists()
            assert json.loads((mnt / "info.json").read_text())["views"] == {}


@pytest.mark.parametrize("name", GPT)
def test_random_ranges_and_mmap(fixtures_dir, nemo, name):  # noqa: F811
    """Every rank file of two layouts, read whole, in ranges and by mmap; the
    expected bytes are the header as read (validated by parse_safetensors)
    and the oracle's tensors."""
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        for tp, pp in ((1, 1), (2, 2)):
            for p in range(pp):
                for r in range(tp):
                    path = mnt / "ranks" / f"tp{tp}pp{pp}" / f"rank{p * tp + r}.safetensors"
                    with open(path, "rb") as f:
                        head = f.read(8)
                        header = head + f.read(int.from_bytes(head, "little"))
                    want = expected_rank(meta, npz, tp, pp, r, p)
                    expect = header + b"".join(le_bytes(want[k]) for k in sorted(want))
                    check_rank_file(expect, want, tp, pp)
                    check_three_ways(path, expect, seed=p * tp + r)


def test_damaged_source_gives_eio_on_affected_ranks(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """A rank file of the source damaged under the mount: the ranks that need
    it fail with EIO, the others keep reading."""
    import shutil
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    npz = np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(srcs[0], ckpt)
    with nemo.mount(ckpt) as mnt:
        d = mnt / "ranks" / "tp2pp2"
        sizes = {i: os.path.getsize(d / f"rank{i}.safetensors") for i in range(4)}
        victim = ckpt / "tp_rank_01_pp_rank_001" / "model_weights.ckpt"
        with open(victim, "r+b") as f:  # same size, new mtime: a changed source
            f.seek(0)
            f.write(b"\0" * 8)
        with pytest.raises(OSError) as e:
            (d / "rank3.safetensors").read_bytes()
        assert e.value.errno == errno.EIO
        data = (d / "rank0.safetensors").read_bytes()
        assert len(data) == sizes[0]
        check_rank_file(data, expected_rank(meta, npz, 2, 2, 0, 0), 2, 2)


def test_absurd_vocab_divisor_is_ignored(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """make_vocab_size_divisible_by: 2^62 would overflow the padding
    arithmetic: it is ignored (128 applies), every layout still reads."""
    import shutil
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(srcs[0], ckpt)
    cfg = ckpt / "model_config.yaml"
    text = re.sub(r"make_vocab_size_divisible_by: \d+", "make_vocab_size_divisible_by: "
                  "4611686018427387904", cfg.read_text())
    assert "4611686018427387904" in text
    cfg.write_text(text)
    with nemo.mount(ckpt) as mnt:
        for name in sorted(os.listdir(mnt / "ranks")) + ["tp4pp1", "tp8pp1"]:
            d = mnt / "ranks" / name
            if not d.exists():
                continue
            for f in os.listdir(d):
                data = (d / f).read_bytes()
                parse_safetensors(data)
        emb = json.loads((mnt / "info.json").read_text())
        assert emb["padded_vocab"] == 128  # V = 70 padded by the default 128


def test_mha_offers_tp4(fixtures_dir, nemo):  # noqa: F811
    """4 heads in 4 query groups: T = 4 is valid (one head a rank, QKV
    rows [q k v] of that head) and listed; every rank of tp4pp1 and tp4pp2
    matches the oracle cut (vocabulary padded to V_4 = 96)."""
    meta, srcs = sources(fixtures_dir, "nemo1_mha_tp2")
    npz = np.load(fixtures_dir / "nemo1_mha_tp2" / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        assert set(os.listdir(mnt / "ranks")) == {"tp1pp1", "tp2pp1", "tp4pp1"}
        assert not (mnt / "ranks" / "tp8pp1").exists()
        for tp, pp in ((4, 1), (4, 2)):
            for p in range(pp):
                for r in range(tp):
                    data = (mnt / "ranks" / f"tp{tp}pp{pp}" / f"rank{p * tp + r}.safetensors").read_bytes()
                    check_rank_file(data, expected_rank(meta, npz, tp, pp, r, p), tp, pp)
