"""qnemo/{bf16,fp8,int4_awq,nvfp4}/tp<T>pp<P>/: TensorRT-LLM checkpoints, checked
against rank tensors cut here from the fixtures' unsharded oracle with the
spec's rules (C.3: [Q_r; K_r; V_r], mlp.fc = gate half, mlp.gate = up
half, row-parallel on dim 1, vocabulary padded) and quantized with the
numpy oracle of tests/unit/quant/quant_oracle.py (C.4: FP8 per-tensor
scales of the merged tensor, INT4 block scales, row-pair packing; NVFP4:
the global scale of the merged tensor, E4M3 block scales of 16, E2M1 codes
with the even element in the low nibble, gguf-nvfp4.md 2.2-2.5). The bf16
view is also compared with the .qnemo fixture, a TRT-LLM export written by
the fixture generator."""

import concurrent.futures
import json
import os
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from test_catalog import fixtures_dir, sources  # noqa: F401 (session fixture)
from test_merged_view import parse_safetensors
from viewcheck import check_three_ways

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "quant"))
import quant_oracle as qo  # noqa: E402

HEADS, GROUPS, HEAD_DIM, FFN, LAYERS = 4, 2, 8, 48, 4
GROUP = 8  # int4 block size for the tiny fixtures (-o group_size=8)
LAYER = re.compile(r"decoder\.layers\.(\d+)\.(.*)$")


def f32(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def strip(name):
    """The MCore name without its model./module. prefix."""
    for key in ("decoder.", "embedding.", "output_layer."):
        i = name.find(key)
        if i >= 0:
            return name[i:]
    raise KeyError(name)


def logical(meta, npz):
    return {strip(t["name"]): npz[t["name"]] for t in meta["tensors"]}


FIXTURE_DIMS = {"heads": HEADS, "groups": GROUPS, "head_dim": HEAD_DIM, "ffn": FFN,
                "layers": LAYERS}


def groups_of(meta):
    """Query groups of a fixture: oracle.json says so where it is not the
    base model's (nemo1_mha_tp2: 4, multi-head attention)."""
    return meta.get("num_query_groups", GROUPS)


def qkv_rows(tp, r, dims=FIXTURE_DIMS):
    heads, groups = dims["heads"], dims["groups"]
    q, d = heads // groups, dims["head_dim"]
    rows = []
    for i in range(r * heads // tp, (r + 1) * heads // tp):
        g, m = divmod(i, q)
        rows += range((g * (q + 2) + m) * d, (g * (q + 2) + m + 1) * d)
    kv = range(r * groups // tp, (r + 1) * groups // tp) if groups >= tp \
        else [r // (tp // groups)]
    for slot in (q, q + 1):
        for g in kv:
            rows += range((g * (q + 2) + slot) * d, (g * (q + 2) + slot + 1) * d)
    return rows


def vocab_rows(rows, tp, algo):
    m = tp if algo != "int4_awq" else np.lcm(tp, 64)
    return -(-rows // m) * m


def vocab_cut(a, vp, tp, r):
    full = np.zeros((vp, a.shape[1]), a.dtype)
    full[:a.shape[0]] = a
    n = vp // tp
    return full[r * n:(r + 1) * n]


def trt_rank(meta, lt, algo, tp, pp, r, p, dims=FIXTURE_DIMS):
    """name -> (array, merged tensor for the FP8 scale or None): the
    unquantized TRT-LLM tensors of rank (r, p)."""
    per, ffn = dims["layers"] // pp, dims["ffn"]
    emb = lt["embedding.word_embeddings.weight"]
    vp = vocab_rows(emb.shape[0], tp, algo)
    out = {}
    if p == 0:
        out["transformer.vocab_embedding.weight"] = (vocab_cut(emb, vp, tp, r), None)
    for k in range(per):
        g, s = p * per + k, f"transformer.layers.{k}."
        L = f"decoder.layers.{g}."
        qkv, fc1 = lt[L + "self_attention.linear_qkv.weight"], lt[L + "mlp.linear_fc1.weight"]
        dense, fc2 = lt[L + "self_attention.linear_proj.weight"], lt[L + "mlp.linear_fc2.weight"]
        n = ffn // tp
        out[s + "input_layernorm.weight"] = (lt[L + "self_attention.linear_qkv.layer_norm_weight"], None)
        out[s + "post_layernorm.weight"] = (lt[L + "mlp.linear_fc1.layer_norm_weight"], None)
        if meta is not None and dims is FIXTURE_DIMS:
            dims = dict(FIXTURE_DIMS, groups=groups_of(meta))
        out[s + "attention.qkv.weight"] = (qkv[qkv_rows(tp, r, dims)], qkv)
        c = dense.shape[1] // tp
        out[s + "attention.dense.weight"] = (dense[:, r * c:(r + 1) * c], dense)
        out[s + "mlp.fc.weight"] = (fc1[:ffn][r * n:(r + 1) * n], fc1)
        out[s + "mlp.gate.weight"] = (fc1[ffn:][r * n:(r + 1) * n], fc1)
        c = fc2.shape[1] // tp
        out[s + "mlp.proj.weight"] = (fc2[:, r * c:(r + 1) * c], fc2)
    if p == pp - 1:
        out["transformer.ln_f.weight"] = (lt["decoder.final_layernorm.weight"], None)
        head = lt.get("output_layer.weight")
        if head is None and pp > 1:
            head = emb  # tied: the last stage's copy
        if head is not None:
            out["lm_head.weight"] = (vocab_cut(head, vp, tp, r), None)
    return out


def quantize(name, a, merged, algo, act):
    """Safetensors entries (dtype, shape, bytes) of one TRT tensor."""
    if merged is None or algo == "bf16":
        return {name: ("BF16", list(a.shape), a.astype("<u2").tobytes())}
    base = name[:-len("weight")]
    x = f32(a)
    if algo == "nvfp4":
        g = qo.scale_of(qo.amax_of(f32(merged)), 2688)
        packed, sc = qo.nvfp4_ref(x, g)
        out_, in_ = x.shape
        return {name: ("U8", [out_, in_ // 2], packed.tobytes()),
                base + "weights_scaling_factor": ("F8_E4M3", [out_, in_ // 16], sc.tobytes()),
                base + "weights_scaling_factor_2": ("F32", [1], np.float32(g).tobytes()),
                base + "activation_scaling_factor": ("F32", [1], np.float32(act).tobytes())}
    if algo == "fp8":
        s = qo.scale_of(qo.amax_of(f32(merged)), 448)
        codes = qo.fp8_encode((x / np.float32(s)).astype(np.float32))
        return {name: ("F8_E4M3", list(a.shape), codes.tobytes()),
                base + "weights_scaling_factor": ("F32", [1], np.float32(s).tobytes()),
                base + "activation_scaling_factor": ("F32", [1], np.float32(act).tobytes())}
    out_, in_ = x.shape
    blocks = x.reshape(out_, in_ // GROUP, GROUP)
    s = np.array([[qo.scale_of(qo.amax_of(b), 7) for b in row] for row in blocks], np.float32)
    q = qo.int4_q(x, np.repeat(s, GROUP, axis=1))
    packed = ((q[0::2] & 15) | ((q[1::2] & 15) << 4)).astype(np.uint8)
    return {name: ("I8", [out_ // 2, in_], packed.tobytes()),
            base + "weights_scaling_factor": ("F32", [out_, in_ // GROUP], s.tobytes()),
            base + "prequant_scaling_factor": ("BF16", [in_],
                                               np.full(in_, 0x3F80, "<u2").tobytes())}


def expected(meta, lt, algo, tp, pp, r, p, calib=None, dims=FIXTURE_DIMS):
    out = {}
    for name, (a, merged) in trt_rank(meta, lt, algo, tp, pp, r, p, dims).items():
        m = re.match(r"transformer\.layers\.(\d+)\.(.*)\.weight$", name)
        act = 1.0
        if calib and m:
            module = f"transformer.layers.{p * (dims['layers'] // pp) + int(m.group(1))}." \
                f"{m.group(2)}"
            if module in calib:
                act = np.float32(calib[module]) / np.float32(2688 if algo == "nvfp4" else 448)
        out.update(quantize(name, a, merged, algo, act))
    return out


def check_rank(data, want):
    md, tensors = parse_safetensors(data)
    assert md == {"format": "pt"}
    assert sorted(tensors) == sorted(want), set(tensors) ^ set(want)
    for name, (dtype, shape, raw) in want.items():
        got = tensors[name]
        assert (got[0], got[1]) == (dtype, shape), (name, got[:2], dtype, shape)
        assert got[2] == raw, name


MCORE = ["nemo1_tp2pp2", "nemo1_tp2", "nemo1_tp2pp2_tied", "nemo1_dist_torch", "nemo1_mha_tp2"]
LAYOUTS = {"bf16": [(1, 1), (2, 1), (2, 2), (4, 1)], "fp8": [(1, 1), (2, 1), (4, 2)],
           "int4_awq": [(1, 1), (2, 1), (2, 2)],
           "nvfp4": [(1, 1), (1, 2)]}  # T=2 would cut fc2's 48 columns into 24, not 16s


@pytest.mark.parametrize("name", MCORE)
def test_every_rank_matches_oracle(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    lt = logical(meta, np.load(fixtures_dir / name / "oracle.npz"))
    with nemo.mount(srcs[-1], f"group_size={GROUP}") as mnt:
        for algo, layouts in LAYOUTS.items():
            for tp, pp in layouts:
                d = mnt / "qnemo" / algo / f"tp{tp}pp{pp}"
                assert sorted(f for f in os.listdir(d) if f.startswith("rank")) == \
                    sorted(f"rank{i}.safetensors" for i in range(tp * pp))
                for p in range(pp):
                    for r in range(tp):
                        data = (d / f"rank{p * tp + r}.safetensors").read_bytes()
                        check_rank(data, expected(meta, lt, algo, tp, pp, r, p))


@pytest.mark.parametrize("name", MCORE)
def test_random_ranges_and_mmap(fixtures_dir, nemo, name):  # noqa: F811
    """Every quantized rank file of tp2pp2 read whole, in ranges (each range
    from the daemon) and by mmap, against header + oracle tensors."""
    meta, srcs = sources(fixtures_dir, name)
    lt = logical(meta, np.load(fixtures_dir / name / "oracle.npz"))
    with nemo.mount(srcs[-1], f"group_size={GROUP}") as mnt:
        for algo in ("bf16", "fp8", "int4_awq"):
            for i in range(4):
                path = mnt / "qnemo" / algo / "tp2pp2" / f"rank{i}.safetensors"
                with open(path, "rb") as f:
                    head = f.read(8)
                    header = head + f.read(int.from_bytes(head, "little"))
                want = expected(meta, lt, algo, 2, 2, i % 2, i // 2)
                expect = header + b"".join(want[k][2] for k in sorted(want))
                check_rank(expect, want)
                check_three_ways(path, expect, seed=i, ranges=40)


def test_config_json(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")  # tied
    with nemo.mount(srcs[-1], f"group_size={GROUP}") as mnt:
        for algo, quant in (("bf16", None), ("fp8", "FP8"), ("int4_awq", "W4A16_AWQ")):
            d = mnt / "qnemo" / algo / "tp2pp1"
            c = json.loads((d / "config.json").read_text())
            assert c["architecture"] == "LlamaForCausalLM" and c["dtype"] == "bfloat16"
            assert c["mapping"] == {"world_size": 2, "tp_size": 2, "pp_size": 1}
            assert (c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"],
                    c["head_size"], c["hidden_size"], c["intermediate_size"]) == \
                (LAYERS, HEADS, GROUPS, HEAD_DIM, 32, FFN)
            assert c["vocab_size"] == (72 if algo != "int4_awq" else 128)
            assert c["share_embedding_table"] is True  # tied, one stage: no lm_head
            assert c["hidden_act"] == "silu" and c["use_parallel_embedding"] is True
            q = c["quantization"]
            assert q["quant_algo"] == quant
            if quant:
                assert q["exclude_modules"] == ["lm_head"]
            if algo == "int4_awq":
                assert q["group_size"] == GROUP and q["pre_quant_scale"] is True
            if algo == "fp8":
                assert c["nemockpt"]["calibration"] is None
            assert (d / "tokenizer.model").read_bytes() == \
                (fixtures_dir / "nemo1_tp2" / "ckpt" / meta["files"]["tokenizer"]).read_bytes()
            assert "library: sentencepiece" in (d / "tokenizer_config.yaml").read_text()


def test_bf16_equals_a_trtllm_export(fixtures_dir, nemo):  # noqa: F811
    """The .qnemo fixture is the same model exported for TRT-LLM at TP=2."""
    _, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    qmeta, qsrcs = sources(fixtures_dir, "qnemo_tp2")
    with nemo.mount(srcs[-1]) as mnt:
        for r in range(2):
            _, mine = parse_safetensors(
                (mnt / "qnemo" / "bf16" / "tp2pp1" / f"rank{r}.safetensors").read_bytes())
            _, theirs = parse_safetensors((qsrcs[0] / f"rank{r}.safetensors").read_bytes())
            assert sorted(mine) == sorted(theirs)
            for k in theirs:
                assert mine[k] == theirs[k], k


def test_listing_and_invalid(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    with nemo.mount(srcs[-1], f"group_size={GROUP}") as mnt:
        # 4 heads, 2 KV heads (duplicated at T=4); int4 at T=4: fc2 columns 12 % 8 != 0.
        assert set(os.listdir(mnt / "qnemo" / "fp8")) == {"tp1pp1", "tp1pp2", "tp2pp1", "tp2pp2",
                                                         "tp4pp1", "tp4pp2"}
        assert set(os.listdir(mnt / "qnemo" / "int4_awq")) == {"tp1pp1", "tp1pp2", "tp2pp1",
                                                              "tp2pp2"}
        for bad in ("tp8pp1", "tp3pp1", "tp1pp3", "tp0pp1"):
            assert not (mnt / "qnemo" / "bf16" / bad).exists()
        assert not (mnt / "qnemo" / "int4_awq" / "tp4pp1").exists()
        assert set(os.listdir(mnt / "qnemo" / "nvfp4")) == {"tp1pp1", "tp1pp2"}
        assert not (mnt / "qnemo" / "nvfp4" / "tp2pp1").exists()
    with nemo.mount(srcs[-1]) as mnt:  # group 128 does not divide 32 columns
        assert os.listdir(mnt / "qnemo" / "int4_awq") == []
        assert not (mnt / "qnemo" / "int4_awq" / "tp1pp1").exists()
        assert (mnt / "qnemo" / "fp8" / "tp2pp1").is_dir()


def test_calibration_file(fixtures_dir, nemo, tmp_path):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    lt = logical(meta, np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz"))
    calib = {"transformer.layers.0.attention.qkv": 3.5, "transformer.layers.3.mlp.proj": 17.25,
             "transformer.layers.2.mlp.fc": 0.125}
    path = tmp_path / "calib.json"
    path.write_text(json.dumps(calib))
    with nemo.mount(srcs[-1], f"calib={path}") as mnt:
        d = mnt / "qnemo" / "fp8" / "tp2pp2"
        c = json.loads((d / "config.json").read_text())
        assert c["nemockpt"]["calibration"] == str(path)
        # 4 layers x 5 quantized linears, 3 of them calibrated
        assert c["nemockpt"]["modules_without_calibration"] == LAYERS * 5 - len(calib)
        for p in range(2):
            for r in range(2):
                check_rank((d / f"rank{p * 2 + r}.safetensors").read_bytes(),
                           expected(meta, lt, "fp8", 2, 2, r, p, calib))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    res = nemo.expect_failure(srcs[-1], nemo.mkdir("m2"), f"calib={bad}")
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], res.stderr


def test_concurrent_reads_with_a_small_cache(fixtures_dir, nemo):  # noqa: F811
    """16 threads read random ranges of every quantized rank file while the
    cache holds a few tensors: every byte equals the oracle."""
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    lt = logical(meta, np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz"))
    with nemo.mount(srcs[-1], f"group_size={GROUP}", "cache_size=4K") as mnt:
        files = {}
        for algo in ("fp8", "int4_awq"):
            d = mnt / "qnemo" / algo / "tp2pp2"
            for p in range(2):
                for r in range(2):
                    path = d / f"rank{p * 2 + r}.safetensors"
                    with open(path, "rb") as f:
                        n = int.from_bytes(f.read(8), "little")
                        header = f.read(n)
                    want = expected(meta, lt, algo, 2, 2, r, p)
                    body = b"".join(want[k][2] for k in sorted(want))
                    files[path] = n.to_bytes(8, "little") + header + body

        def worker(seed):
            rng = random.Random(seed)
            for _ in range(60):
                path, whole = rng.choice(list(files.items()))
                off = rng.randrange(len(whole))
                n = rng.choice([1, 5, 300, 4096, 1 << 20])
                fd = os.open(path, os.O_RDONLY)
                try:
                    # Drop the kernel's cached pages: the read reaches the daemon.
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    assert os.pread(fd, n, off) == whole[off:off + n], (path, off, n)
                finally:
                    os.close(fd)
            return True

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            assert all(ex.map(worker, range(16)))


def test_mha_with_many_heads(nemo, tmp_path):
    """48 heads, one per group (MHA): QKV of every rank is 3 x 48/T pieces
    of the [q k v] per-head interleave; checked against the chunk files."""
    import subprocess
    src = tmp_path / "mha"
    heads, d, h = 48, 8, 384
    subprocess.run(["/usr/bin/python3", str(Path(__file__).resolve().parents[1] / "gpu" /
                    "make_zarr_model.py"), str(src), "--layers", "1", "--hidden", str(h),
                    "--ffn", "384", "--heads", str(heads), "--groups", str(heads),
                    "--vocab", "256"], check=True)
    key = src / "model_weights" / "model.decoder.layers.self_attention.linear_qkv.weight"
    qkv = np.fromfile(key / "0.0.0", "<u2").reshape(3 * heads * d, h)
    with nemo.mount(src) as mnt:
        for tp in (1, 2, 3, 4):
            for r in range(tp):
                _, t = parse_safetensors((mnt / "qnemo" / "bf16" / f"tp{tp}pp1" /
                                          f"rank{r}.safetensors").read_bytes())
                rows = []
                for part in range(3):  # all q heads of the rank, then k, then v
                    for i in range(r * heads // tp, (r + 1) * heads // tp):
                        rows += range((3 * i + part) * d, (3 * i + part + 1) * d)
                dtype, shape, raw = t["transformer.layers.0.attention.qkv.weight"]
                assert shape == [3 * heads // tp * d, h]
                assert raw == qkv[rows].tobytes(), (tp, r)


def test_cli_get_equals_the_mount(fixtures_dir, nemo):  # noqa: F811
    """nemockpt get reads any file of the tree without FUSE: the same bytes."""
    import subprocess
    import nemofs
    _, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    paths = ["qnemo/fp8/tp2pp1/rank1.safetensors", "qnemo/int4_awq/tp1pp2/rank0.safetensors",
             "qnemo/bf16/tp4pp1/config.json", "ranks/tp1pp4/rank3.safetensors",
             "nemo/tp2pp1/mp_rank_01/model_weights.ckpt", "merged/model.safetensors",
             "raw/model_config.yaml", "info.json"]
    with nemo.mount(srcs[-1], f"group_size={GROUP}") as mnt:
        for p in paths:
            got = subprocess.run([nemofs.cli_bin(), "get", "-o", f"group_size={GROUP}",
                                  str(srcs[-1]), p], capture_output=True, timeout=60)
            assert got.returncode == 0, got.stderr
            assert got.stdout == (mnt / p).read_bytes(), p
    bad = subprocess.run([nemofs.cli_bin(), "get", str(srcs[-1]), "ranks/tp3pp1/rank0.safetensors"],
                         capture_output=True, timeout=60)
    assert bad.returncode == 1 and len(bad.stderr.decode().strip().splitlines()) == 1


# A zarr checkpoint whose linears split into NVFP4 blocks at T = 1, 2 and 4
# (dense: 64/T columns, proj: 128/T), read straight from its chunk files.
ZDIMS = {"heads": 4, "groups": 2, "head_dim": 16, "ffn": 128, "layers": 2}
ZHIDDEN, ZVOCAB = 64, 100


def zarr_model(tmp_path):
    import subprocess
    src = tmp_path / "zarr"
    subprocess.run(["/usr/bin/python3", str(Path(__file__).resolve().parents[1] / "gpu" /
                    "make_zarr_model.py"), str(src), "--layers", str(ZDIMS["layers"]),
                    "--hidden", str(ZHIDDEN), "--ffn", str(ZDIMS["ffn"]), "--heads",
                    str(ZDIMS["heads"]), "--groups", str(ZDIMS["groups"]), "--vocab",
                    str(ZVOCAB)], check=True)
    w = src / "model_weights"

    def arr(key, chunk, shape):
        return np.fromfile(w / key / chunk, "<u2").reshape(shape)
    h, d, n, g, f = ZHIDDEN, ZDIMS["head_dim"], ZDIMS["heads"], ZDIMS["groups"], ZDIMS["ffn"]
    lt = {"embedding.word_embeddings.weight": arr("model.embedding.word_embeddings.weight",
                                                  "0.0", (ZVOCAB, h)),
          "output_layer.weight": arr("model.output_layer.weight", "0.0", (ZVOCAB, h)),
          "decoder.final_layernorm.weight": arr("model.decoder.final_layernorm.weight", "0", (h,))}
    p = "model.decoder.layers."
    for i in range(ZDIMS["layers"]):
        L = f"decoder.layers.{i}."
        lt[L + "self_attention.linear_qkv.layer_norm_weight"] = \
            arr(p + "self_attention.linear_qkv.layer_norm_weight", f"{i}.0", (h,))
        lt[L + "mlp.linear_fc1.layer_norm_weight"] = \
            arr(p + "mlp.linear_fc1.layer_norm_weight", f"{i}.0", (h,))
        lt[L + "self_attention.linear_qkv.weight"] = \
            arr(p + "self_attention.linear_qkv.weight", f"{i}.0.0", ((n + 2 * g) * d, h))
        lt[L + "self_attention.linear_proj.weight"] = \
            arr(p + "self_attention.linear_proj.weight", f"{i}.0.0", (h, n * d))
        lt[L + "mlp.linear_fc1.weight"] = arr(p + "mlp.linear_fc1.weight", f"{i}.0.0", (2 * f, h))
        lt[L + "mlp.linear_fc2.weight"] = arr(p + "mlp.linear_fc2.weight", f"{i}.0.0", (h, f))
    return src, lt


def test_nvfp4_every_byte_at_tp_1_2_4(nemo, tmp_path):
    """Every nvfp4 rank file at T in {1, 2, 4} (P in {1, 2}), every byte
    against the numpy oracle; one file also in ranges and by mmap."""
    src, lt = zarr_model(tmp_path)
    with nemo.mount(src) as mnt:
        # listed: T in 1, 2, 4 (8 would cut dense into 8 columns) at the source's P = 1
        assert set(os.listdir(mnt / "qnemo" / "nvfp4")) == {"tp1pp1", "tp2pp1", "tp4pp1"}
        for tp, pp in ((1, 1), (2, 1), (4, 1), (2, 2), (4, 2)):
            d = mnt / "qnemo" / "nvfp4" / f"tp{tp}pp{pp}"
            assert sorted(f for f in os.listdir(d) if f.startswith("rank")) == \
                sorted(f"rank{i}.safetensors" for i in range(tp * pp))
            for p in range(pp):
                for r in range(tp):
                    data = (d / f"rank{p * tp + r}.safetensors").read_bytes()
                    check_rank(data, expected(None, lt, "nvfp4", tp, pp, r, p, dims=ZDIMS))
        c = json.loads((mnt / "qnemo" / "nvfp4" / "tp2pp1" / "config.json").read_text())
        assert c["quantization"]["quant_algo"] == "NVFP4"
        assert c["quantization"]["group_size"] == 16
        assert c["quantization"]["exclude_modules"] == ["lm_head"]
        assert c["quantization"]["kv_cache_quant_algo"] is None
        assert c["vocab_size"] == ZVOCAB and c["mapping"]["tp_size"] == 2
        path = mnt / "qnemo" / "nvfp4" / "tp4pp1" / "rank3.safetensors"
        with open(path, "rb") as f:
            head = f.read(8)
            header = head + f.read(int.from_bytes(head, "little"))
        want = expected(None, lt, "nvfp4", 4, 1, 3, 0, dims=ZDIMS)
        check_three_ways(path, header + b"".join(want[k][2] for k in sorted(want)), seed=3,
                         ranges=40)
        assert not (mnt / "qnemo" / "nvfp4" / "tp8pp1").exists()  # dense: 8 columns


def test_nvfp4_calibration_and_gpu_off(nemo, tmp_path):
    """Activation scales from -o calib= are amax / 2688 (1.0 for the rest);
    gpu=off gives the same bytes."""
    src, lt = zarr_model(tmp_path)
    calib = {"transformer.layers.0.attention.qkv": 3.5, "transformer.layers.1.mlp.gate": 0.25}
    path = tmp_path / "calib.json"
    path.write_text(json.dumps(calib))
    with nemo.mount(src, f"calib={path}", "gpu=off") as mnt:
        d = mnt / "qnemo" / "nvfp4" / "tp2pp1"
        c = json.loads((d / "config.json").read_text())
        assert c["nemockpt"]["modules_without_calibration"] == ZDIMS["layers"] * 5 - len(calib)
        for r in range(2):
            check_rank((d / f"rank{r}.safetensors").read_bytes(),
                       expected(None, lt, "nvfp4", 2, 1, r, 0, calib, dims=ZDIMS))
