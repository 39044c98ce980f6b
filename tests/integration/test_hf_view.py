"""hf/: the checkpoint as a Hugging Face Llama directory, checked with the
safetensors reader of test_merged_view (written apart from the C one)
against tensors cut here from every fixture's unsharded Megatron-layout
oracle with the spec's rules (sharding-hf-trtllm.md B.1-B.4): q/k/v_proj
de-interleaved from the per-group [q..q k v] QKV rows, gate/up_proj the
halves of fc1, embed_tokens and lm_head the first V rows, lm_head absent
when tied. transformers itself reads hf/ in tests/conformance."""

import json
import os
import re
import shutil
import struct

import numpy as np
import pytest

from test_catalog import (FIXTURES, fixtures_dir, hf_tokenizer_source,  # noqa: F401 (session fixture)
                          llama31_source, sources)
from test_merged_view import parse_safetensors
from viewcheck import check_three_ways

# The Llama-family fixtures: every GPT one but the .qnemo (TensorRT-LLM names).
HF_FIXTURES = [n for n in FIXTURES if n not in ("qnemo_tp2", "asr_single")]
LAYER = re.compile(r"layers\.(\d+)\.(.*)$")

# Megatron name suffixes (MCore TE spec and legacy) -> the role of the tensor.
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


def model_dims(meta):
    """Heads, query groups, head dim of a fixture: the base model's 4, 2, 8
    (tests/fixtures/README.md), unless oracle.json says num_query_groups (MHA)."""
    return 4, meta.get("num_query_groups", 2), 8


def hf_oracle(meta, npz):
    """The HF state dict (name -> uint16/float bytes as numpy) cut from the
    Megatron oracle, written from spec B.1-B.3 without the C code's tables."""
    heads, groups, d = model_dims(meta)
    q = heads // groups
    vocab = meta["vocab_size"]
    out = {}
    for t in meta["tensors"]:
        name, a = t["name"], npz[t["name"]]
        m = LAYER.search(name)
        if m:
            i, rest = int(m.group(1)), m.group(2)
            role = ROLES[rest]
            p = "model.layers.%d." % i
            if role == "in_norm":
                out[p + "input_layernorm.weight"] = a
            elif role == "post_norm":
                out[p + "post_attention_layernorm.weight"] = a
            elif role == "dense":
                out[p + "self_attn.o_proj.weight"] = a
            elif role == "fc2":
                out[p + "mlp.down_proj.weight"] = a
            elif role == "fc1":
                f = a.shape[0] // 2
                out[p + "mlp.gate_proj.weight"] = a[:f]
                out[p + "mlp.up_proj.weight"] = a[f:]
            elif role == "qkv":
                g = a.reshape(groups, q + 2, d, a.shape[1])
                out[p + "self_attn.q_proj.weight"] = g[:, :q].reshape(heads * d, -1)
                out[p + "self_attn.k_proj.weight"] = g[:, q].reshape(groups * d, -1)
                out[p + "self_attn.v_proj.weight"] = g[:, q + 1].reshape(groups * d, -1)
        elif name.endswith("word_embeddings.weight"):
            out["model.embed_tokens.weight"] = a[:vocab]
        elif name.endswith("final_layernorm.weight") or name.endswith("final_norm.weight"):
            out["model.norm.weight"] = a
        elif name.endswith("output_layer.weight"):
            out["lm_head.weight"] = a[:vocab]
        else:
            raise KeyError(name)
    return out


def raw(a):
    return np.ascontiguousarray(a).tobytes()


def read_hf(mnt):
    """Every tensor of hf/ (one file or shards) as (dtype, shape, bytes)."""
    d = mnt / "hf"
    files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    tensors, where = {}, {}
    for f in files:
        meta, ts = parse_safetensors((d / f).read_bytes(), name_order=False)
        assert meta.get("format") == "pt", f  # transformers refuses other formats
        for n, v in ts.items():
            assert n not in tensors, n
            tensors[n], where[n] = v, f
    return files, tensors, where


@pytest.mark.parametrize("name", HF_FIXTURES)
def test_weights_match_oracle(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    want = hf_oracle(meta, np.load(fixtures_dir / name / "oracle.npz"))
    assert ("lm_head.weight" in want) != meta["tied"]
    for src in srcs:
        with nemo.mount(src) as mnt:
            files, got = read_hf(mnt)[:2]
            assert files == ["model.safetensors"], src
            assert sorted(got) == sorted(want), src
            for n, a in want.items():
                dtype, shape, data = got[n]
                assert dtype == "BF16" and shape == list(a.shape), (src, n, shape)
                assert data == raw(a), (src, n)


@pytest.mark.parametrize("name", ["nemo1_tp2", "nemo1_tp2pp2", "nemo2", "megatron_release_legacy"])
def test_config_json(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    heads, groups, d = model_dims(meta)
    with nemo.mount(srcs[-1]) as mnt:
        c = json.loads((mnt / "hf" / "config.json").read_text())
        g = json.loads((mnt / "hf" / "generation_config.json").read_text())
    assert c["architectures"] == ["LlamaForCausalLM"] and c["model_type"] == "llama"
    assert (c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]) == (32, 48, 4)
    assert (c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]) == (heads, groups, d)
    assert c["vocab_size"] == meta["vocab_size"] == 70
    assert c["tie_word_embeddings"] is meta["tied"]
    assert c["hidden_act"] == "silu" and c["attention_bias"] is False and c["mlp_bias"] is False
    assert c["dtype"] == "bfloat16"
    assert c["rope_theta"] == 10000.0 and c["rope_scaling"] is None
    assert c["rms_norm_eps"] == pytest.approx(1e-5)
    # Special ids come from the SentencePiece model; Megatron-LM checkpoints have none.
    ids = (1, 2) if meta["files"].get("tokenizer") else (None, None)
    assert (c["bos_token_id"], c["eos_token_id"], c["pad_token_id"]) == ids + (None,)
    assert (g["bos_token_id"], g["eos_token_id"]) == ids
    if meta["layout"].startswith("nemo"):  # the NeMo configs say seq_length 128
        assert c["max_position_embeddings"] == 128


def test_tokenizer_files(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    tok = (fixtures_dir / "nemo1_tp2" / "ckpt" / meta["files"]["tokenizer"]).read_bytes()
    with nemo.mount(srcs[-1]) as mnt:
        d = mnt / "hf"
        assert (d / "tokenizer.model").read_bytes() == tok
        tc = json.loads((d / "tokenizer_config.json").read_text())
        sm = json.loads((d / "special_tokens_map.json").read_text())
    assert tc["tokenizer_class"] == "LlamaTokenizer"
    assert (tc["bos_token"], tc["eos_token"], tc["unk_token"]) == ("<s>", "</s>", "<unk>")
    assert tc["add_bos_token"] is True and tc["add_eos_token"] is False
    assert sm == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def test_sharded_with_index(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    want = hf_oracle(meta, np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz"))
    with nemo.mount(srcs[-1], "shard_size=20K") as mnt:
        files, got, where = read_hf(mnt)
        index = json.loads((mnt / "hf" / "model.safetensors.index.json").read_text())
    assert len(files) > 2 and files == ["model-%05d-of-%05d.safetensors" % (i + 1, len(files))
                                        for i in range(len(files))]
    assert index["weight_map"] == where
    assert index["metadata"]["total_size"] == sum(len(v[2]) for v in got.values())
    assert sorted(got) == sorted(want)
    for n, a in want.items():
        assert got[n][2] == raw(a), n
    # Shards follow the model's order: layer 0 comes before layer 3.
    assert where["model.layers.0.mlp.up_proj.weight"] < where["model.layers.3.mlp.up_proj.weight"]


@pytest.mark.parametrize("name", ["nemo1_single", "nemo1_dist_zarr", "nemo2"])
def test_random_ranges_and_mmap(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    want = hf_oracle(meta, np.load(fixtures_dir / name / "oracle.npz"))
    with nemo.mount(srcs[-1]) as mnt:
        path = mnt / "hf" / "model.safetensors"
        with open(path, "rb") as f:
            head = f.read(8)
            header = head + f.read(struct.unpack("<Q", head)[0])
        names = [k for k in json.loads(header[8:]) if k != "__metadata__"]
        expect = header + b"".join(raw(want[k]) for k in names)
        parse_safetensors(expect, name_order=False)
        check_three_ways(path, expect, seed=len(name))


@pytest.mark.parametrize("name", ["asr_single", "qnemo_tp2"])
def test_no_hf_for_other_models(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    with nemo.mount(srcs[-1]) as mnt:
        assert not (mnt / "hf").exists()
        info = json.loads((mnt / "info.json").read_text())
    assert info["hf"]["directory"] is None
    reason = info["hf"]["reason"]
    assert isinstance(reason, str) and reason and "\n" not in reason


def test_info_lists_hf(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    with nemo.mount(srcs[-1]) as mnt:
        info = json.loads((mnt / "info.json").read_text())
        listed = sorted(os.listdir(mnt / "hf"))
    assert info["hf"]["directory"] == "hf"
    assert sorted(info["hf"]["files"]) == listed


def test_cli_get_matches_mount(fixtures_dir, nemo, tmp_path):  # noqa: F811
    import subprocess

    import nemofs
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2_tied")
    got = subprocess.run([nemofs.cli_bin(), "get", str(srcs[-1]), "hf/model.safetensors"],
                         capture_output=True, check=True, timeout=60).stdout
    with nemo.mount(srcs[-1]) as mnt:
        assert got == (mnt / "hf" / "model.safetensors").read_bytes()


@pytest.mark.allow_stderr(r"read of inode")
def test_damaged_source_gives_eio(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """A rank file changed under the mount: a tensor with bytes in it fails
    with EIO, every time; the files that do not need it still read."""
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    with nemo.mount(ck) as mnt:
        fd = os.open(mnt / "hf" / "model.safetensors", os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        n = struct.unpack("<Q", os.pread(fd, 8, 0))[0]
        header = json.loads(os.pread(fd, n, 8))
        victim = ck / "mp_rank_01" / "model_weights.ckpt"
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        try:
            b, e = header["model.layers.1.self_attn.k_proj.weight"]["data_offsets"]  # group 1: rank 1
            for _ in range(2):
                with pytest.raises(OSError) as err:
                    os.pread(fd, e - b, 8 + n + b)
                assert err.value.errno == 5
        finally:
            os.close(fd)
        tok = (ck / meta["files"]["tokenizer"]).read_bytes()
        assert (mnt / "hf" / "tokenizer.model").read_bytes() == tok
        assert json.loads((mnt / "hf" / "config.json").read_text())["vocab_size"] == 70


def test_hf_tokenizer_files_pass_through(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """A NeMo 2 checkpoint whose tokenizer is a Hugging Face one
    (context/nemo_tokenizer/): hf/ shows its files as they are, and no
    SentencePiece files."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({"t%d" % i: i for i in range(3, 70)})
    files = {
        "tokenizer.json": json.dumps({
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
            "decoder": None, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}}),
        "tokenizer_config.json": json.dumps({"tokenizer_class": "PreTrainedTokenizerFast",
                                             "bos_token": "<s>", "eos_token": "</s>"}),
        "special_tokens_map.json": json.dumps({"bos_token": "<s>", "eos_token": "</s>"}),
    }
    meta, ck = hf_tokenizer_source(fixtures_dir, tmp_path, files)
    with nemo.mount(ck) as mnt:
        d = mnt / "hf"
        names = sorted(os.listdir(d))
        for n, text in files.items():
            assert (d / n).read_text() == text, n
        c = json.loads((d / "config.json").read_text())
    assert "tokenizer.model" not in names
    assert c["vocab_size"] == 70


def test_rope_scaling_from_the_config(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """Spec B.4: NeMo 1's seq_len_interpolation_factor is linear scaling;
    NeMo 2's Llama31Config is Llama 3.1's, with NeMo's defaults."""
    meta, srcs = sources(fixtures_dir, "nemo1_single")
    ck = tmp_path / "n1"
    shutil.copytree(srcs[0], ck)
    with open(ck / "model_config.yaml", "a") as f:
        f.write("seq_len_interpolation_factor: 2.0\n")
    with nemo.mount(ck) as mnt:
        c = json.loads((mnt / "hf" / "config.json").read_text())
    assert c["rope_scaling"] == {"rope_type": "linear", "factor": 2.0}
    meta, ck = llama31_source(fixtures_dir, tmp_path)
    with nemo.mount(ck) as mnt:
        c = json.loads((mnt / "hf" / "config.json").read_text())
    assert c["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 8192}


def test_sentencepiece_with_hf_files_beside_it(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """A fast tokenizer's files saved next to its tokenizer.model win over
    the configs hf/ would write: both are shown as they are."""
    meta, srcs = sources(fixtures_dir, "nemo2")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    extra = {"tokenizer.json": '{"version": "1.0", "model": {"type": "BPE", "vocab": {}}}',
             "tokenizer_config.json": '{"tokenizer_class": "LlamaTokenizer", "chat_template": "x"}'}
    for n, text in extra.items():
        (ck / "context" / n).write_text(text)
    with nemo.mount(ck) as mnt:
        d = mnt / "hf"
        names = sorted(os.listdir(d))
        assert (d / "tokenizer.model").read_bytes() == (ck / "context" / "tokenizer.model").read_bytes()
        for n, text in extra.items():
            assert (d / n).read_text() == text
    assert "special_tokens_map.json" not in names


def test_every_tensor_its_own_shard(fixtures_dir, nemo):  # noqa: F811
    """A shard size below every tensor's: one tensor per shard, none lost."""
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    want = hf_oracle(meta, np.load(fixtures_dir / "nemo1_tp2" / "oracle.npz"))
    with nemo.mount(srcs[-1], "shard_size=1K") as mnt:
        files, got, where = read_hf(mnt)
    assert len(files) == len(want) == len(got)
    assert sorted(where.values()) == files
    for n, a in want.items():
        assert got[n][2] == raw(a), n
