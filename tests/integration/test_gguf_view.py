"""gguf/: GGUF v3 files for llama.cpp, read with a GGUF parser written here
(header, key-value pairs, tensor infos, alignment; shared/spec/gguf-nvfp4.md
1.1-1.4) and checked against tensors cut from every Llama fixture's
unsharded oracle (test_hf_view.hf_oracle, then the 1.7 names and the 1.9
Q/K permutation done with numpy's reshape/swapaxes): BF16 as the oracle's
bits, F16 as numpy's float16 cast, F32 norms widened, Q8_0 and Q4_0 as a
numpy transcription of the 1.5 definitions (gguf-py itself checks them in
tests/conformance/test_gguf.py). Also random ranges, mmap, 16 concurrent
readers under a tiny cache, `nemockpt get`, and a damaged source: sizes
and headers still answer (nothing is computed for them), tensor data
gives EIO."""

import concurrent.futures
import json
import os
import random
import shutil
import struct
import subprocess

import numpy as np
import pytest

import nemofs
from test_catalog import fixtures_dir, hf_tokenizer_source, sources  # noqa: F401 (session fixture)
from test_hf_view import HF_FIXTURES, hf_oracle, model_dims
from viewcheck import check_three_ways

FILES = {"model-BF16.gguf": (30, 32), "model-F16.gguf": (1, 1), "model-Q8_0.gguf": (8, 7),
         "model-Q4_0.gguf": (2, 2)}
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18)}

# ---- a GGUF reader --------------------------------------------------------------

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
          11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.at = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.at)[0]
        self.at += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.at:self.at + n]
        assert len(s) == n
        self.at += n
        return s.decode("utf-8")

    def value(self, ty):
        if ty == 8:
            return self.string()
        if ty == 9:
            et, n = self.take("<I"), self.take("<Q")
            assert et != 9
            return [self.value(et) for _ in range(n)]
        return self.take(SCALAR[ty])


def parse_gguf(data):
    """(kv {key: (type, value)}, tensors [(name, ne, type, offset)], data start)."""
    r = Reader(data)
    assert r.take("<4s") == b"GGUF" and r.take("<I") == 3
    n_t, n_kv = r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        ty = r.take("<I")
        assert k and k not in kv
        kv[k] = (ty, r.value(ty))
    align = kv.get("general.alignment", (4, 32))
    assert align[0] == 4 and align[1] & (align[1] - 1) == 0
    tensors = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        tensors.append((name, ne, r.take("<I"), r.take("<Q")))
    start = -(-r.at // align[1]) * align[1]
    assert data[r.at:start] == b"\0" * (start - r.at)
    return kv, tensors, start


# ---- the oracle ----------------------------------------------------------------------

def f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def permute(w, n):
    return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_oracle(meta, npz):
    """GGUF name -> bf16 bits (numpy order), in the files' tensor order."""
    heads, groups, _ = model_dims(meta)
    hf = hf_oracle(meta, npz)
    out = {"token_embd.weight": hf["model.embed_tokens.weight"]}
    for i in range(4):
        p, b = "model.layers.%d." % i, "blk.%d." % i
        out[b + "attn_norm.weight"] = hf[p + "input_layernorm.weight"]
        out[b + "attn_q.weight"] = permute(hf[p + "self_attn.q_proj.weight"], heads)
        out[b + "attn_k.weight"] = permute(hf[p + "self_attn.k_proj.weight"], groups)
        out[b + "attn_v.weight"] = hf[p + "self_attn.v_proj.weight"]
        out[b + "attn_output.weight"] = hf[p + "self_attn.o_proj.weight"]
        out[b + "ffn_norm.weight"] = hf[p + "post_attention_layernorm.weight"]
        out[b + "ffn_gate.weight"] = hf[p + "mlp.gate_proj.weight"]
        out[b + "ffn_up.weight"] = hf[p + "mlp.up_proj.weight"]
        out[b + "ffn_down.weight"] = hf[p + "mlp.down_proj.weight"]
    out["output_norm.weight"] = hf["model.norm.weight"]
    if "lm_head.weight" in hf:
        out["output.weight"] = hf["lm_head.weight"]
    return out


def q8_0(x):
    """Q8_0 of float32 rows (spec 1.5): d = amax/127, roundf(x * (1/d))."""
    b = x.reshape(-1, 32)
    d = np.abs(b).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    p = (b * inv).astype(np.float32)
    q = np.where(p < 0, -np.floor(-p + np.float32(0.5)), np.floor(p + np.float32(0.5)))
    return np.concatenate([d.astype("<f2").view(np.uint8), q.astype(np.int8).view(np.uint8)],
                          axis=1).tobytes()


def q4_0(x):
    """Q4_0 of float32 rows (gguf-py 0.19.0): the signed first maximum m,
    d = m / -8, q = min(15, trunc(float32(x * (1/d)) + 8.5))."""
    b = x.reshape(-1, 32)
    m = np.take_along_axis(b, np.abs(b).argmax(axis=1)[:, None], axis=1)
    d = (m / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    v = ((b * inv).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.clip(np.trunc(v), 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([d.astype("<f2").view(np.uint8), packed], axis=1).tobytes()


def encode(bits, ty):
    """The bytes of a tensor (bf16 bits) as ggml type ty."""
    x = f32(bits)
    if ty == 0:
        return x.astype("<f4").tobytes()
    if ty == 30:
        return bits.astype("<u2").tobytes()
    if ty == 1:
        return x.astype("<f2").tobytes()
    return q8_0(x) if ty == 8 else q4_0(x)


def expect_type(a, wtype):
    if a.ndim == 1:
        return 0
    return 1 if wtype in (8, 2) and a.shape[-1] % 32 else wtype


def expected_file(data, want, wtype):
    """The whole file: its own header (checked against the oracle's names,
    shapes and types) then the oracle's tensor bytes, each padded to 32."""
    kv, tensors, start = parse_gguf(data)
    assert [t[0] for t in tensors] == list(want)
    body, off = b"", 0
    for name, ne, ty, o in tensors:
        a = want[name]
        assert ne == list(reversed(a.shape)) and ty == expect_type(a, wtype), name
        assert o == off, name
        blk, nb = BLOCK[ty]
        raw = encode(a, ty)
        assert len(raw) == a.size // blk * nb
        body += raw + b"\0" * (-len(raw) % 32)
        off += len(raw) + (-len(raw) % 32)
    return kv, data[:start] + body


# ---- tests ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", HF_FIXTURES)
def test_files_equal_oracle(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    want = gguf_oracle(meta, np.load(fixtures_dir / name / "oracle.npz"))
    heads, groups, d = model_dims(meta)
    with nemo.mount(srcs[-1]) as mnt:
        assert sorted(os.listdir(mnt / "gguf")) == sorted(FILES)
        for fname, (wtype, ftype) in FILES.items():
            path = mnt / "gguf" / fname
            data = path.read_bytes()
            kv, expect = expected_file(data, want, wtype)
            assert data == expect, fname
            assert os.stat(path).st_size == len(expect)
            assert kv["general.architecture"] == (8, "llama")
            assert kv["general.alignment"] == (4, 32)
            assert kv["general.file_type"] == (4, ftype)
            assert kv["general.quantization_version"] == (4, 2)
            assert kv["llama.attention.head_count"] == (4, heads)
            assert kv["llama.attention.head_count_kv"] == (4, groups)
            assert kv["llama.rope.dimension_count"] == (4, d)
            assert kv["llama.vocab_size"] == (4, meta["vocab_size"])
            assert kv["llama.rope.freq_base"] == (6, 10000.0)
            tok = kv["tokenizer.ggml.model"][1]
            assert tok == ("llama" if meta["files"].get("tokenizer") else "no_vocab")
            if tok == "llama":
                assert len(kv["tokenizer.ggml.tokens"][1]) == meta["vocab_size"]


@pytest.mark.parametrize("name", ["nemo1_single", "nemo1_tp2pp2", "nemo2"])
def test_random_ranges_and_mmap(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    want = gguf_oracle(meta, np.load(fixtures_dir / name / "oracle.npz"))
    with nemo.mount(srcs[-1]) as mnt:
        for fname, (wtype, _) in FILES.items():
            path = mnt / "gguf" / fname
            expect = expected_file(path.read_bytes(), want, wtype)[1]
            check_three_ways(path, expect, seed=len(name) + wtype)


def test_concurrent_readers_with_a_tiny_cache(fixtures_dir, nemo):  # noqa: F811
    """16 threads read random ranges of every file while the cache holds
    about one tensor: every byte equals the oracle."""
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    want = gguf_oracle(meta, np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz"))
    with nemo.mount(srcs[-1], "cache_size=2K") as mnt:
        files = {}
        for fname, (wtype, _) in FILES.items():
            path = mnt / "gguf" / fname
            with open(path, "rb") as f:
                files[path] = expected_file(f.read(), want, wtype)[1]

        def worker(seed):
            rng = random.Random(seed)
            for _ in range(60):
                path, whole = rng.choice(list(files.items()))
                off = rng.randrange(len(whole))
                n = rng.choice([1, 7, 300, 4096, 1 << 20])
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    assert os.pread(fd, n, off) == whole[off:off + n], (path, off, n)
                finally:
                    os.close(fd)
            return True

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            assert all(ex.map(worker, range(16)))


def test_cli_get_matches_mount(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2_tied")
    got = subprocess.run([nemofs.cli_bin(), "get", str(srcs[-1]), "gguf/model-Q4_0.gguf"],
                         capture_output=True, check=True, timeout=60).stdout
    with nemo.mount(srcs[-1]) as mnt:
        assert got == (mnt / "gguf" / "model-Q4_0.gguf").read_bytes()


@pytest.mark.parametrize("name", ["asr_single", "qnemo_tp2"])
def test_no_gguf_for_other_models(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    with nemo.mount(srcs[-1]) as mnt:
        assert not (mnt / "gguf").exists()
        info = json.loads((mnt / "info.json").read_text())
    assert info["gguf"]["directory"] is None
    reason = info["gguf"]["reason"]
    assert isinstance(reason, str) and reason and "\n" not in reason


def test_info_lists_gguf(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo2")
    with nemo.mount(srcs[-1]) as mnt:
        info = json.loads((mnt / "info.json").read_text())
        listed = sorted(os.listdir(mnt / "gguf"))
    assert info["gguf"]["directory"] == "gguf"
    assert sorted(info["gguf"]["files"]) == listed == sorted(FILES)


@pytest.mark.allow_stderr(r"read of inode")
def test_damaged_source_gives_eio(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """A rank file changed under the mount: listing, sizes and headers
    still answer (they compute nothing), every tensor with bytes in the
    damaged range fails with EIO, every time, in every file."""
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    with nemo.mount(ck) as mnt:
        d = mnt / "gguf"
        heads = {}
        for fname in FILES:
            with open(d / fname, "rb") as f:
                heads[fname] = f.read(1 << 16)
        victim = ck / "mp_rank_01" / "model_weights.ckpt"
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        for fname in FILES:
            path = d / fname
            assert sorted(os.listdir(d)) == sorted(FILES)
            size = os.stat(path).st_size
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                kv, tensors, start = parse_gguf(heads[fname])
                # the header's whole pages read (a page that holds damaged
                # tensor bytes too fails as a whole: the kernel reads pages)
                page = start - start % 4096
                assert page > 0 and os.pread(fd, page, 0) == heads[fname][:page]
                # layer 1's attn_k: query group 1, which rank 1 holds
                t = [t for t in tensors if t[0] == "blk.1.attn_k.weight"][0]
                blk, nb = BLOCK[t[2]]
                n = t[1][0] * t[1][1] // blk * nb
                assert start + t[3] + n <= size
                for _ in range(2):
                    with pytest.raises(OSError) as err:
                        os.pread(fd, n, start + t[3])
                    assert err.value.errno == 5, fname
            finally:
                os.close(fd)


@pytest.mark.parametrize("text", [
    '{"model": {"type": "BPE", "vocab": {"a": 0}',  # cut short: not JSON
    '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 123456789012}}, '
    '"pre_tokenizer": {"type": "ByteLevel"}}',  # an id past the model's rows
    '{"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": [{"id": 1, "content": 7}], '
    '"pre_tokenizer": {"type": "ByteLevel"}}',  # a token that is not a string
    '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}, '
    '"pre_tokenizer": {"type": "ByteLevel"}}',  # a merge that is not a pair
    "[" * 100000 + "]" * 100000,  # nesting past any parser's depth
    '{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}',  # not BPE
], ids=["truncated", "huge_id", "non_string_token", "bad_merge", "deep_nesting", "unigram"])
def test_hostile_tokenizer_json_gives_no_vocab(fixtures_dir, nemo, tmp_path, text):  # noqa: F811
    """A damaged or hostile tokenizer.json beside the checkpoint: the mount
    and every gguf/ file still work, with tokenizer.ggml.model no_vocab and
    no other tokenizer keys (hand-written GGUF parser as the oracle)."""
    meta, ck = hf_tokenizer_source(fixtures_dir, tmp_path, {
        "tokenizer.json": text, "tokenizer_config.json": '{"bos_token": "a"}'})
    with nemo.mount(ck) as mnt:
        for fname in FILES:
            data = (mnt / "gguf" / fname).read_bytes()
            kv, tensors, start = parse_gguf(data)
            assert kv["tokenizer.ggml.model"][1] == "no_vocab"
            assert [k for k in kv if k.startswith("tokenizer.")] == ["tokenizer.ggml.model"]
            assert tensors[0][0] == "token_embd.weight"
