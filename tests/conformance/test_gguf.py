"""gguf-py (PyPI gguf, unmodified) reads every gguf/ file of every
Llama-family fixture: the metadata a Llama conversion writes, every tensor's
name, type, shape and offset, and the data. The oracle is cut here from the
fixture's unsharded Megatron-layout oracle.npz with the rules of
shared/spec/gguf-nvfp4.md (1.7 names and types, 1.9 the Q/K permutation as
numpy's reshape/swapaxes) and sharding-hf-trtllm.md B.1-B.3 (q/k/v from the
group-interleaved QKV, gate/up the halves of fc1, vocabulary cut to V);
BF16/F16/F32 data must equal gguf-py's own quantize() of the oracle and
dequantize back to it exactly (F16: to its float16 rounding), Q8_0/Q4_0
blocks must equal gguf-py's quantize() byte for byte. The vocabulary is
checked against sentencepiece's view of the same tokenizer.model."""

import gc
import json
import re
import shutil

import gguf
import numpy as np
import pytest
import sentencepiece as spm
from gguf import GGMLQuantizationType as T

import test_catalog

LLAMA = ["nemo1_single", "nemo1_tp2", "nemo1_tp2pp2", "nemo1_tp2pp2_tied", "nemo1_dist_torch",
         "nemo1_dist_zarr", "nemo2", "megatron_iter", "megatron_release_legacy"]
FILES = {"model-BF16.gguf": (T.BF16, 32), "model-F16.gguf": (T.F16, 1),
         "model-Q8_0.gguf": (T.Q8_0, 7), "model-Q4_0.gguf": (T.Q4_0, 2)}
LAYER = re.compile(r"layers\.(\d+)\.(.*)$")
ROLES = {
    "self_attention.linear_qkv.layer_norm_weight": "in_norm",
    "input_norm.weight": "in_norm",
    "self_attention.linear_qkv.weight": "qkv",
    "self_attention.query_key_value.weight": "qkv",
    "self_attention.linear_proj.weight": "dense",
    "self_attention.dense.weight": "dense",
    "mlp.linear_fc1.layer_norm_weight": "post_norm",
    "post_attention_norm.weight": "post_norm",
    "mlp.linear_fc1.weight": "fc1",
    "mlp.dense_h_to_4h.weight": "fc1",
    "mlp.linear_fc2.weight": "fc2",
    "mlp.dense_4h_to_h.weight": "fc2",
}


def sources(fixtures_dir, name):
    meta = json.loads((fixtures_dir / name / "oracle.json").read_text())
    out = [fixtures_dir / name / meta["files"]["dir"]]
    if meta["files"].get("tarball"):
        out.append(fixtures_dir / name / meta["files"]["tarball"])
    return meta, out


def dims(meta):
    heads = meta.get("heads", 4)
    return heads, meta.get("groups", 2 if heads == 4 else heads), meta.get("head_dim", 8)


def f32(bits):
    """bf16 bits (uint16) -> float32, exact."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def permute(w, n):
    """llama.cpp's converter's Q/K permutation (spec 1.9), as numpy does it."""
    return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_oracle(meta, npz, conv=None):
    """GGUF name -> float32 array (numpy order) of the fixture's model (each
    weight passed through conv first, when given)."""
    heads, groups, d = dims(meta)
    q, vocab, out = heads // groups, meta["vocab_size"], {}
    for t in meta["tensors"]:
        name, a = t["name"], f32(npz[t["name"]])
        a = conv(a) if conv else a
        m = LAYER.search(name)
        if not m:
            if name.endswith("word_embeddings.weight"):
                out["token_embd.weight"] = a[:vocab]
            elif name.endswith("output_layer.weight"):
                out["output.weight"] = a[:vocab]
            else:
                assert name.endswith("final_layernorm.weight") or name.endswith("final_norm.weight")
                out["output_norm.weight"] = a
            continue
        p, role = "blk.%s." % m.group(1), ROLES[m.group(2)]
        if role == "qkv":
            g = a.reshape(groups, q + 2, d, a.shape[1])
            out[p + "attn_q.weight"] = permute(g[:, :q].reshape(heads * d, -1), heads)
            out[p + "attn_k.weight"] = permute(g[:, q].reshape(groups * d, -1), groups)
            out[p + "attn_v.weight"] = g[:, q + 1].reshape(groups * d, -1)
        elif role == "fc1":
            out[p + "ffn_gate.weight"], out[p + "ffn_up.weight"] = np.split(a, 2)
        else:
            out[p + {"in_norm": "attn_norm.weight", "post_norm": "ffn_norm.weight",
                     "dense": "attn_output.weight", "fc2": "ffn_down.weight"}[role]] = a
    return out


def order(meta, names):
    """The tensor order of the files: llama.cpp's model order."""
    per = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
           "ffn_up", "ffn_down"]
    want = ["token_embd.weight"]
    for i in range(4):
        want += ["blk.%d.%s.weight" % (i, p) for p in per]
    want += ["output_norm.weight"] + (["output.weight"] if "output.weight" in names else [])
    return want


def expected_type(a, wtype):
    if a.ndim == 1:
        return T.F32
    if wtype in (T.Q8_0, T.Q4_0) and a.shape[-1] % 32:
        return T.F16  # the converter's fallback for rows of partial blocks
    return wtype


def field(r, key):
    return r.fields[key].contents()


def check_metadata(r, meta, ftype, tokenizer):
    heads, groups, d = dims(meta)
    want = {
        "general.architecture": "llama", "general.type": "model", "general.alignment": 32,
        "llama.block_count": 4, "llama.embedding_length": 32, "llama.feed_forward_length": 48,
        "llama.attention.head_count": heads, "llama.attention.head_count_kv": groups,
        "llama.attention.key_length": d, "llama.attention.value_length": d,
        "llama.rope.dimension_count": d, "llama.vocab_size": meta["vocab_size"],
        "llama.rope.freq_base": 10000.0,
        "general.file_type": ftype, "general.quantization_version": 2,
    }
    types = {"general.alignment": gguf.GGUFValueType.UINT32,
             "general.file_type": gguf.GGUFValueType.UINT32,
             "llama.rope.freq_base": gguf.GGUFValueType.FLOAT32,
             "llama.attention.layer_norm_rms_epsilon": gguf.GGUFValueType.FLOAT32}
    for k, v in want.items():
        assert field(r, k) == v, k
    for k, ty in types.items():
        assert r.fields[k].types == [ty], k
    assert field(r, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-5)
    assert field(r, "general.name")
    if meta["layout"].startswith("nemo"):  # their configs say seq_length 128
        assert field(r, "llama.context_length") == 128
    else:
        assert field(r, "llama.context_length") > 0
    if tokenizer is None:
        assert field(r, "tokenizer.ggml.model") == "no_vocab"
        assert not [k for k in r.fields if k.startswith("tokenizer.ggml.") and k != "tokenizer.ggml.model"]
        return
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    V = meta["vocab_size"]
    assert sp.get_piece_size() == V
    assert field(r, "tokenizer.ggml.model") == "llama"
    assert field(r, "tokenizer.ggml.pre") == "default"
    assert field(r, "tokenizer.ggml.tokens") == [sp.id_to_piece(i) for i in range(V)]
    scores = np.array(field(r, "tokenizer.ggml.scores"), dtype=np.float32)
    assert scores.tolist() == [np.float32(sp.get_score(i)) for i in range(V)]

    def tt(i):
        return (2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i)
                else 6 if sp.is_byte(i) else 1)
    types = field(r, "tokenizer.ggml.token_type")
    assert types == [tt(i) for i in range(V)]
    assert 3 in types and 2 in types  # the fixture has control and unknown pieces
    assert field(r, "tokenizer.ggml.bos_token_id") == sp.bos_id()
    assert field(r, "tokenizer.ggml.eos_token_id") == sp.eos_id()
    assert field(r, "tokenizer.ggml.unknown_token_id") == sp.unk_id()
    assert ("tokenizer.ggml.padding_token_id" in r.fields) == (sp.pad_id() >= 0)
    assert field(r, "tokenizer.ggml.add_bos_token") is True
    assert field(r, "tokenizer.ggml.add_eos_token") is False


def check_tensors(r, raw, want, wtype):
    names = [t.name for t in r.tensors]
    assert names == order(None, want) and sorted(names) == sorted(want)
    assert r.alignment == 32 and r.data_offset % 32 == 0
    at = r.data_offset
    for t in r.tensors:
        a = want[t.name]
        ty = expected_type(a, wtype)
        assert t.tensor_type == ty, t.name
        assert list(t.shape) == list(reversed(a.shape)), t.name  # ggml order
        assert t.data_offset == at, t.name  # contiguous, each padded to 32
        ref = gguf.quants.quantize(a, ty)
        assert t.n_bytes == ref.nbytes, t.name
        assert raw[at:at + t.n_bytes] == ref.tobytes(), (t.name, ty.name)
        assert raw[at + t.n_bytes:at + -(-t.n_bytes // 32) * 32].strip(b"\0") == b""
        back = gguf.quants.dequantize(np.asarray(t.data), ty).reshape(a.shape)
        if ty == T.F32:
            assert np.array_equal(back, a), t.name
        elif ty == T.BF16:  # round to nearest even on the top 16 bits
            u = a.view(np.uint32).astype(np.uint64)
            r = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
            assert np.array_equal(back, r), t.name
        elif ty == T.F16:
            assert np.array_equal(back, a.astype(np.float16).astype(np.float32)), t.name
        else:  # quantized: near the oracle (rows whose f16 scale is finite)
            fin = np.isfinite(back).all(axis=-1)
            err = np.abs(back - a)[fin].max(initial=0)
            assert err <= np.abs(a[fin]).max(initial=0) / (7 if ty == T.Q4_0 else 100), t.name
        at += -(-t.n_bytes // 32) * 32
    assert at == len(raw)


def check_file(path, meta, want, wtype, ftype, tokenizer):
    raw = path.read_bytes()
    assert path.stat().st_size == len(raw)
    r = gguf.GGUFReader(path)  # memory-maps the file in the mount
    assert field(r, "GGUF.version") == 3
    check_metadata(r, meta, ftype, tokenizer)
    check_tensors(r, raw, want, wtype)


@pytest.mark.parametrize("name", LLAMA)
def test_every_file_reads_in_gguf_py(fixtures_dir, nemo, name):
    meta, srcs = sources(fixtures_dir, name)
    want = gguf_oracle(meta, np.load(fixtures_dir / name / "oracle.npz"))
    assert ("output.weight" in want) != meta["tied"]
    tok = meta["files"].get("tokenizer")
    if tok:
        base = fixtures_dir / name
        tok = base / tok if (base / tok).exists() else base / meta["files"]["dir"] / tok
    for src in srcs:
        with nemo.mount(src) as mnt:
            assert sorted(p.name for p in (mnt / "gguf").iterdir()) == sorted(FILES)
            for fname, (wtype, ftype) in FILES.items():
                check_file(mnt / "gguf" / fname, meta, want, wtype, ftype, tok)
                gc.collect()  # gguf-py's memmap of the mounted file, before unmounting


def hard_rows():
    """bf16 rows of 32 (one Q8_0/Q4_0 block each) at the quantizers' and
    casts' edges: zeros, equal magnitudes of both signs (Q4_0's first
    maximum), exact .5 products (Q8_0 rounds half away from zero, Q4_0
    truncates x/d + 8.5), a maximum at the start or the end, F16 overflow to
    infinity and F16 subnormals (with a tie), negative zero, constant rows."""
    rng = np.random.default_rng(7)
    rows = [np.zeros(32)]
    r = rng.normal(0, 0.01, 32)
    r[3], r[17] = 1.0, -1.0
    rows.append(r.copy())
    r[3], r[17] = -1.0, 1.0
    rows.append(r)
    rows.append(np.array([127, 0.5, 1.5, 2.5, -2.5, 3.5, -10.5, 126.5] * 4))  # Q8_0: d = 1
    rows.append(np.array([-8, -0.5, 0.5, -1.5, 1.5, 6.5, 7.5, -7.5] * 4))  # Q4_0: d = 1
    rows.append(np.array([8, -0.5, 0.5, -1.5, 1.5, 6.5, 7.5, -7.5] * 4))  # Q4_0: d = -1
    rows.append(np.array([65504, 65520, -70000, 1e38, 1.0, -2.0, 0.25, 3.0] * 4))
    rows.append(np.array([1.0, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, -1e-30, -0.0, 6e-5,
                          2.0 ** -14] * 4))
    rows.append(np.full(32, -3.0))
    rows.append(np.concatenate([rng.normal(0, 1, 31), [40.0]]))
    a = np.array(rows, dtype=np.float32)
    return (a.view(np.uint32) >> 16).astype(np.uint16)  # exact: every value is a bf16


def test_quantizers_at_their_edges(fixtures_dir, nemo, tmp_path):
    """The fixture's random weights rarely hit a rounding tie: here the
    output layer of a zarr checkpoint (uncompressed bf16 chunks) is
    overwritten with hard_rows() and every file still equals gguf-py."""
    import shutil
    name = "nemo1_dist_zarr"
    meta, srcs = sources(fixtures_dir, name)
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    zdir = ck / "model_weights" / "model.output_layer.weight"
    za = json.loads((zdir / ".zarray").read_text())
    assert za["compressor"] is None and za["dtype"] == "bfloat16" and za["chunks"][1] == 32
    rows = za["chunks"][0]
    chunk = np.frombuffer((zdir / "0.0").read_bytes(), dtype="<u2").reshape(rows, 32).copy()
    hard = hard_rows()
    chunk[:len(hard)] = hard
    (zdir / "0.0").write_bytes(chunk.tobytes())
    want = gguf_oracle(meta, np.load(fixtures_dir / name / "oracle.npz"))
    out = want["output.weight"].copy()
    out[:rows] = f32(chunk)[:min(rows, len(out))]
    want["output.weight"] = out
    tok = ck / meta["files"]["tokenizer"] if meta["files"].get("tokenizer") else None
    with nemo.mount(ck) as mnt, np.errstate(over="ignore", invalid="ignore"):
        for fname, (wtype, ftype) in FILES.items():
            check_file(mnt / "gguf" / fname, meta, want, wtype, ftype, tok)
            gc.collect()


# Elementwise re-typings of a bf16 weight: values with more mantissa bits
# than bf16 has, so BF16 and F16 files must round them (gguf-py's rules).
RETYPE = {
    "<f2": lambda a: (a * np.float32(1 + 2 ** -10)).astype(np.float16),
    "<f4": lambda a: (a * np.float32(1 + 2 ** -13) + np.float32(2 ** -30)).astype(np.float32),
}


@pytest.mark.parametrize("dtype", sorted(RETYPE))
def test_fp16_and_fp32_checkpoints(fixtures_dir, nemo, tmp_path, dtype):
    """The zarr fixture with every array re-typed to float16 or float32
    (chunk bytes converted elementwise, .zarray's dtype changed): the files
    convert from that dtype (F16 of an fp16 model is zero-copy, BF16
    rounds), still equal to gguf-py's quantize() of the re-typed weights."""
    import shutil
    name = "nemo1_dist_zarr"
    meta, srcs = sources(fixtures_dir, name)
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    conv = RETYPE[dtype]
    n = 0
    for za_path in ck.rglob(".zarray"):
        za = json.loads(za_path.read_text())
        assert za["dtype"] == "bfloat16" and za["compressor"] is None
        za["dtype"] = dtype
        za_path.write_text(json.dumps(za))
        for c in za_path.parent.iterdir():
            if c.name.startswith("."):
                continue
            bits = np.frombuffer(c.read_bytes(), dtype="<u2")
            c.write_bytes(conv(f32(bits)).astype(dtype).tobytes())
            n += 1
    assert n > 10
    want = gguf_oracle(meta, np.load(fixtures_dir / name / "oracle.npz"),
                       lambda a: conv(a).astype(np.float32))
    tok = ck / meta["files"]["tokenizer"] if meta["files"].get("tokenizer") else None
    with nemo.mount(ck) as mnt:
        for fname, (wtype, ftype) in FILES.items():
            check_file(mnt / "gguf" / fname, meta, want, wtype, ftype, tok)
            gc.collect()


# ---- a Hugging Face byte-level BPE tokenizer (tokenizer.json) -------------------------

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_style_tokenizer(gap):
    """A real byte-level BPE (tokenizers library) with Llama 3's pre-tokenizer:
    a vocabulary of byte-level symbols and merges, id `gap` left unused, and
    <|begin_of_text|> / <|end_of_text|> (special) and <extra> (not) added."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    syms = sorted(alphabet)[:40]
    merges = [(syms[i], syms[i + 1]) for i in range(0, 20, 2)]
    vocab, nid = {}, 0
    for s in syms + [a + b for a, b in merges]:
        nid += nid == gap
        vocab[s] = nid
        nid += 1
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
    tok.add_tokens(["<extra>"])
    return tok


def hf_tokenizer_source(fixtures_dir, tmp_path, tokenizer_json, config):
    """The nemo2 fixture with this tokenizer.json and tokenizer_config.json
    in context/nemo_tokenizer/ (a NeMo 2 checkpoint of a Hugging Face
    tokenizer)."""
    return test_catalog.hf_tokenizer_source(fixtures_dir, tmp_path, {
        "tokenizer.json": tokenizer_json, "tokenizer_config.json": json.dumps(config)})


@pytest.mark.parametrize("merge_form", ["pairs", "strings"])
def test_bpe_tokenizer_json_as_gpt2_vocab(fixtures_dir, nemo, tmp_path, merge_form):
    """convert_hf_to_gguf.py's _set_vocab_gpt2: tokens and types for ids
    0..V-1 (a gap is [PAD<i>] UNUSED), merges "a b", pre llama-bpe for Llama
    3's split regex, bos/eos from tokenizer_config.json. The oracle is the
    tokenizers library's own view of the tokenizer."""
    tok = llama3_style_tokenizer(gap=7)
    j = json.loads(tok.to_str())
    pairs = [list(m) if isinstance(m, list) else m.split(" ") for m in j["model"]["merges"]]
    j["model"]["merges"] = pairs if merge_form == "pairs" else [" ".join(p) for p in pairs]
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
              "eos_token": {"content": "<|end_of_text|>", "special": True},
              "add_bos_token": True, "add_eos_token": False}
    meta, ck = hf_tokenizer_source(fixtures_dir, tmp_path, json.dumps(j), config)
    vocab = tok.get_vocab(with_added_tokens=True)
    added = tok.get_added_tokens_decoder()
    V = max(vocab.values()) + 1
    assert V <= meta["vocab_size"] and tok.id_to_token(7) is None

    # gguf-py's own reader of the tokenizer files (what the converter calls)
    sv = gguf.SpecialVocab(ck / "context" / "nemo_tokenizer", load_merges=True, n_vocab=V)
    assert sv.merges and sv.special_token_ids["bos"] == tok.token_to_id("<|begin_of_text|>")

    def tt(i):
        if tok.id_to_token(i) is None:
            return 5
        return (3 if added[i].special else 4) if i in added else 1
    with nemo.mount(ck) as mnt:
        for fname in FILES:
            r = gguf.GGUFReader(mnt / "gguf" / fname)
            assert field(r, "tokenizer.ggml.model") == "gpt2"
            assert field(r, "tokenizer.ggml.pre") == "llama-bpe"
            assert field(r, "llama.vocab_size") == V
            assert field(r, "tokenizer.ggml.tokens") == [tok.id_to_token(i) or "[PAD%d]" % i
                                                        for i in range(V)]
            types = field(r, "tokenizer.ggml.token_type")
            assert types == [tt(i) for i in range(V)]
            assert sorted(set(types)) == [1, 3, 4, 5]
            assert field(r, "tokenizer.ggml.merges") == [" ".join(p) for p in pairs] == sv.merges
            for k in ("bos", "eos"):
                assert field(r, "tokenizer.ggml.%s_token_id" % k) == sv.special_token_ids[k]
                assert field(r, "tokenizer.ggml.add_%s_token" % k) is sv.add_special_token[k]
            assert field(r, "tokenizer.ggml.bos_token_id") == tok.token_to_id("<|begin_of_text|>")
            assert field(r, "tokenizer.ggml.eos_token_id") == tok.token_to_id("<|end_of_text|>")
            assert "tokenizer.ggml.unknown_token_id" not in r.fields
            assert field(r, "tokenizer.ggml.add_bos_token") is True
            assert field(r, "tokenizer.ggml.add_eos_token") is False
            assert "tokenizer.ggml.scores" not in r.fields
            assert [t.name for t in r.tensors][0] == "token_embd.weight"
            assert r.tensors[0].shape[1] == V
            del r
            gc.collect()


def test_bpe_without_llama3_split_is_default_pre(fixtures_dir, nemo, tmp_path):
    """A byte-level BPE whose pre-tokenizer is not Llama 3's: pre "default";
    no add_*_token keys when tokenizer_config.json says nothing."""
    from tokenizers import pre_tokenizers
    tok = llama3_style_tokenizer(gap=-1)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    meta, ck = hf_tokenizer_source(fixtures_dir, tmp_path, tok.to_str(), {})
    with nemo.mount(ck) as mnt:
        r = gguf.GGUFReader(mnt / "gguf" / "model-BF16.gguf")
        assert field(r, "tokenizer.ggml.model") == "gpt2"
        assert field(r, "tokenizer.ggml.pre") == "default"
        assert field(r, "tokenizer.ggml.tokens")[:3] == [tok.id_to_token(i) for i in range(3)]
        assert not [k for k in r.fields if k.endswith("_token_id") or k.startswith("tokenizer.ggml.add_")]
        del r
        gc.collect()


# ---- Llama 3.1 rope scaling ----------------------------------------------------------

def llama3_rope_factors(d, base=10000.0, factor=8.0, low=1.0, high=4.0, old=8192):
    """convert_hf_to_gguf.py LlamaModel's rope_freqs for rope_type llama3, in
    torch float32 as the converter computes them."""
    import math

    import torch
    freqs = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    low_wl, high_wl = old / low, old / high
    out = []
    for freq in freqs:
        wl = 2 * math.pi / freq
        if wl < high_wl:
            out.append(1)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (old / wl - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(out, dtype=torch.float32).numpy()


def test_llama31_rope_freqs(fixtures_dir, nemo, tmp_path):
    """A NeMo 2 Llama31Config: rope_freqs.weight (F32, head_dim/2, first, as
    the converter yields it) equal to the converter's factors to the bit, and
    no rope.scaling keys; the other tensors as in every file."""
    meta, ck = test_catalog.llama31_source(fixtures_dir, tmp_path)
    heads, groups, d = dims(meta)
    want = llama3_rope_factors(d)
    assert (want == 1).any() and ((want > 1) & (want < 8)).any()  # the smooth branch too
    oracle = gguf_oracle(meta, np.load(fixtures_dir / "nemo2" / "oracle.npz"))
    with nemo.mount(ck) as mnt:
        for fname, (wtype, ftype) in FILES.items():
            raw = (mnt / "gguf" / fname).read_bytes()
            r = gguf.GGUFReader(mnt / "gguf" / fname)
            t = r.tensors[0]
            assert t.name == "rope_freqs.weight" and t.tensor_type == T.F32
            assert list(t.shape) == [d // 2]
            got = np.asarray(t.data)
            assert got.tobytes() == want.tobytes(), (got, want)
            assert not [k for k in r.fields if k.startswith("llama.rope.scaling")]
            assert [x.name for x in r.tensors[1:]] == order(None, oracle)
            assert raw[t.data_offset + 4 * (d // 2):r.tensors[1].data_offset].strip(b"\0") == b""
            del r, t, got
            gc.collect()
