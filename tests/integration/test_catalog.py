"""Tensor catalog: `nemockpt ls --json`, `info` and `cat` on every checkpoint
layout the fixture generator writes, against the unsharded model each
fixture was cut from (oracle.npz / oracle.json written by
tests/fixtures/make_fixtures.py from the model BEFORE sharding; never output
of the code under test)."""

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nemofs

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tests" / "fixtures" / "make_fixtures.py"

FIXTURES = ["nemo1_single", "nemo1_tp2", "nemo1_tp2pp2", "nemo1_tp2pp2_tied", "nemo1_mha_tp2",
            "nemo1_dist_torch",
            "nemo1_dist_zarr", "nemo2", "qnemo_tp2", "megatron_iter", "megatron_release_legacy",
            "asr_single"]


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt_fixtures")
    subprocess.run(["/usr/bin/python3", str(GENERATOR), str(out)], check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    return out


def sources(fixtures_dir, name):
    """The fixture's checkpoint as a directory and, where it has them, a
    tarball and a gzip-compressed tarball."""
    meta = json.loads((fixtures_dir / name / "oracle.json").read_text())
    out = [fixtures_dir / name / meta["files"]["dir"]]
    for k in ("tarball", "tarball_gzip"):
        if meta["files"].get(k):
            out.append(fixtures_dir / name / meta["files"][k])
    return meta, out


def hf_tokenizer_source(fixtures_dir, tmp_path, files):
    """The nemo2 fixture with its SentencePiece tokenizer replaced by the
    Hugging Face tokenizer files `files` (name -> text) in
    context/nemo_tokenizer/, as NeMo 2 saves a fast tokenizer."""
    meta, srcs = sources(fixtures_dir, "nemo2")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    (ck / "context" / "tokenizer.model").unlink()
    tdir = ck / "context" / "nemo_tokenizer"
    tdir.mkdir()
    for name, text in files.items():
        (tdir / name).write_text(text)
    return meta, ck


def llama31_source(fixtures_dir, tmp_path):
    """The nemo2 fixture saved as a Llama31Config8B (Llama 3.1's rope
    scaling, NeMo's defaults): (meta, checkpoint directory)."""
    meta, srcs = sources(fixtures_dir, "nemo2")
    ck = tmp_path / "n2"
    shutil.copytree(srcs[0], ck)
    y = ck / "context" / "model.yaml"
    text = y.read_text()
    assert "llama.LlamaConfig\n" in text
    y.write_text(text.replace("llama.LlamaConfig\n", "llama.Llama31Config8B\n"))
    return meta, ck


def cli(*args, check=True):
    res = subprocess.run([nemofs.cli_bin(), *map(str, args)], capture_output=True, timeout=120)
    if check and res.returncode != 0:
        raise AssertionError("nemockpt %s failed (%d): %s" % (" ".join(map(str, args)),
                                                             res.returncode, res.stderr.decode()))
    return res


def oracle_bytes(npz, name, dtype):
    """Little-endian row-major bytes of the oracle tensor (bf16 kept as uint16)."""
    a = npz[name]
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()


@pytest.mark.parametrize("name", FIXTURES)
def test_ls_matches_oracle(fixtures_dir, name):
    meta, srcs = sources(fixtures_dir, name)
    want = {t["name"]: (t["dtype"], t["shape"]) for t in meta["tensors"]}
    for src in srcs:
        listing = json.loads(cli("ls", "--json", src).stdout)
        weights = {t["name"]: (t["dtype"], t["shape"]) for t in listing if t["role"] == "weight"}
        assert sorted(weights) == sorted(want), src
        for n, (dtype, shape) in want.items():
            assert weights[n] == (dtype, shape), (src, n)
        non = sorted(t["name"] for t in listing if t["role"] != "weight")
        assert non == sorted(meta.get("non_weights", [])), src


@pytest.mark.parametrize("name", FIXTURES)
def test_cat_every_tensor_bit_for_bit(fixtures_dir, name):
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    for src in srcs:
        for t in meta["tensors"]:
            got = cli("cat", src, t["name"]).stdout
            assert got == oracle_bytes(npz, t["name"], t["dtype"]), (src, t["name"])


@pytest.mark.parametrize("name", FIXTURES)
def test_info_summary(fixtures_dir, name):
    meta, srcs = sources(fixtures_dir, name)
    for src in srcs:
        info = json.loads(cli("info", src).stdout)
        assert info["weights"] == len(meta["tensors"])
        params = sum(int(np.prod(t["shape"], dtype=np.int64)) for t in meta["tensors"])
        assert info["parameters"] == params
        if meta["layout"] not in ("asr_single",) and meta.get("tp"):
            assert info["tp"] == meta.get("saved_tp", meta["tp"]), info
            assert info["pp"] == meta.get("saved_pp", meta["pp"]), info
        if meta.get("vocab_size") and name != "qnemo_tp2" and not name.startswith("megatron"):
            assert info["vocab_size"] == meta["vocab_size"]


def test_info_json_in_mount_carries_catalog(fixtures_dir, nemo):
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    with nemo.mount(srcs[1]) as mnt:
        info = json.loads((mnt / "info.json").read_text())
    assert info["format"] == "nemo" and info["layout"] == "tp_pp"
    assert info["tp"] == 2 and info["pp"] == 2
    assert info["weights"] == len(meta["tensors"])
    assert info["dtype"] == "BF16"


def test_cat_unknown_tensor_is_an_error(fixtures_dir):
    _, srcs = sources(fixtures_dir, "nemo1_single")
    res = cli("cat", srcs[0], "no.such.tensor", check=False)
    assert res.returncode == 1
    assert b"no.such.tensor" in res.stderr


# ---- damaged inputs: one line naming the file, non-zero exit, never a crash ----

def corrupt_copy(tmp_path, src_dir, rel, mutate):
    dst = tmp_path / "ck"
    shutil.copytree(src_dir, dst)
    p = dst / rel
    data = bytearray(p.read_bytes())
    p.write_bytes(mutate(data))
    return dst


def break_central_directory(d):
    """Corrupts the first central directory header's signature, found
    through the end-of-central-directory record (ZIP APPNOTE 4.3.16)."""
    eocd = d.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<I", d, eocd + 16)[0]
    assert d[cd:cd + 4] == b"PK\x01\x02"
    d[cd + 3] = 9
    return d


DAMAGES = [
    ("nemo1_single", "model_weights.ckpt", lambda d: d[: len(d) // 2], "truncated torch zip"),
    ("nemo1_single", "model_weights.ckpt", lambda d: d[:-22] + b"\0" * 22, "zeroed end of central directory"),
    ("nemo1_tp2", "mp_rank_01/model_weights.ckpt", break_central_directory,
     "bad central directory entry"),
    ("nemo1_dist_torch", "model_weights/.metadata", lambda d: d[:100], "truncated .metadata"),
    ("nemo1_dist_torch", "model_weights/metadata.json", lambda d: b"{not json", "bad metadata.json"),
    ("qnemo_tp2", "rank1.safetensors", lambda d: d[:-7], "safetensors with missing data"),
    ("qnemo_tp2", "config.json", lambda d: b"[1, 2", "bad config.json"),
    ("nemo1_single", "model_config.yaml", lambda d: b"a: [1, 2\nb: {", "bad YAML"),
]


@pytest.mark.parametrize("name, rel, mutate, what", DAMAGES, ids=[d[3] for d in DAMAGES])
def test_damaged_input_is_a_one_line_error(fixtures_dir, tmp_path, name, rel, mutate, what):
    _, srcs = sources(fixtures_dir, name)
    ck = corrupt_copy(tmp_path, srcs[0], rel, mutate)
    res = cli("ls", ck, check=False)
    err = res.stderr.decode()
    assert res.returncode == 1, (what, res.returncode, err)
    lines = [l for l in err.splitlines() if l.startswith("nemockpt: ")]
    assert len(lines) == 1, err
    assert rel.split("/")[-1] in lines[0] or str(ck) in lines[0], err
    assert "AddressSanitizer" not in err and "runtime error" not in err


def test_damaged_checkpoint_still_mounts_raw(fixtures_dir, tmp_path, nemo):
    """A catalog error leaves raw/ browsable; info.json says why."""
    _, srcs = sources(fixtures_dir, "nemo1_single")
    ck = corrupt_copy(tmp_path, srcs[0], "model_weights.ckpt", lambda d: d[:100])
    with nemo.mount(ck) as mnt:
        info = json.loads((mnt / "info.json").read_text())
        assert "catalog_error" in info and "model_weights.ckpt" in info["catalog_error"]
        assert (mnt / "raw" / "model_config.yaml").read_bytes() == \
            (ck / "model_config.yaml").read_bytes()


# ---- real files written by torch 2.11 (tests/fixtures/real/) ----------------

REAL = REPO / "tests" / "fixtures" / "real" / "torch-2.11"


def real_values(shape, dtype):
    """The generator's values: (i % 251) - 125 over the flat index, cast."""
    n = int(np.prod(shape, dtype=np.int64))
    v = ((np.arange(n, dtype=np.int64) % 251) - 125).reshape(shape)
    if dtype == "bfloat16":  # small integers are exact in bf16: the top half of f32
        return (v.astype("<f4").view("<u4") >> 16).astype("<u2")
    return v.astype({"float32": "<f4", "int64": "<i8", "float16": "<f2"}[dtype])


def test_real_torch_dcp_checkpoint():
    """A plain PyTorch DCP directory (.metadata + __0_0.distcp, no
    metadata.json) written by torch.distributed.checkpoint.save."""
    manifest = json.loads((REAL / "manifest.json").read_text())["files"]["dcp"]
    listing = {t["name"]: t for t in json.loads(cli("ls", "--json", REAL / "dcp").stdout)}
    names = sorted(k for k in manifest if not k.startswith("_"))
    assert sorted(listing) == names
    spelled = {"bfloat16": "BF16", "float32": "F32", "int64": "I64"}
    for name in names:
        m = manifest[name]
        assert listing[name]["dtype"] == spelled[m["dtype"]]
        assert listing[name]["shape"] == m["shape"]
        got = cli("cat", REAL / "dcp", name).stdout
        assert got == real_values(m["shape"], m["dtype"]).tobytes(), name


MORE_DAMAGES = [
    ("nemo1_dist_zarr", "model_weights/model.decoder.final_layernorm.weight/.zarray",
     lambda d: b'{"zarr_format": 2, "shape": [', "bad .zarray"),
    ("nemo1_dist_zarr", "model_weights/model.decoder.final_layernorm.weight/0",
     lambda d: d[:-2], "short zarr chunk"),
    ("nemo1_dist_torch", "model_weights/__0_0.distcp", lambda d: d[:64], "truncated .distcp"),
    ("megatron_iter", "iter_0000010/mp_rank_01/model_optim_rng.pt",
     lambda d: d[:30] + b"\xff" * 40 + d[70:], "damaged first local header"),
]


@pytest.mark.parametrize("name, rel, mutate, what", MORE_DAMAGES, ids=[d[3] for d in MORE_DAMAGES])
def test_more_damaged_inputs(fixtures_dir, tmp_path, name, rel, mutate, what):
    _, srcs = sources(fixtures_dir, name)
    if not (srcs[0] / rel).exists():
        pytest.fail("fixture layout changed: %s has no %s" % (name, rel))
    ck = corrupt_copy(tmp_path, srcs[0], rel, mutate)
    res = cli("ls", ck, check=False)
    err = res.stderr.decode()
    assert res.returncode == 1, (what, err)
    assert len([l for l in err.splitlines() if l.startswith("nemockpt: ")]) == 1, err
    assert "AddressSanitizer" not in err and "runtime error" not in err


def test_dcp_storage_transform_is_a_clear_error(fixtures_dir, tmp_path):
    """torch >= 2.6 may record transform_descriptors (e.g. compression) in a
    _StorageInfo: such items are not plain torch.save blobs, so the catalog
    refuses them by name instead of misreading them."""
    import pickle
    from fixturelib import dcp

    _, srcs = sources(fixtures_dir, "nemo1_dist_torch")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    meta_path = ck / "model_weights" / ".metadata"
    meta = dcp.load_metadata(meta_path)
    info = next(iter(meta.storage_data.values()))
    info.transform_descriptors = ["zstd"]
    with dcp._fake_modules():
        meta_path.write_bytes(pickle.dumps(meta, protocol=4))
    res = cli("ls", ck, check=False)
    err = res.stderr.decode()
    assert res.returncode == 1, err
    assert "storage transform 'zstd' is not supported" in err, err


def test_hugging_face_safetensors_directory(tmp_path):
    """A directory of plain .safetensors files (written by the reference
    safetensors 0.8.0) is cataloged tensor by tensor."""
    manifest = json.loads((REAL / "manifest.json").read_text())["files"]["model.safetensors"]
    hf = tmp_path / "hf"
    hf.mkdir()
    shutil.copy(REAL / "model.safetensors", hf / "model.safetensors")
    (hf / "config.json").write_text('{"architectures": ["X"]}')
    listing = {t["name"]: t for t in json.loads(cli("ls", "--json", hf).stdout)}
    assert sorted(listing) == sorted(manifest)
    spelled = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}
    for name, m in manifest.items():
        assert (listing[name]["dtype"], listing[name]["shape"]) == (spelled[m["dtype"]], m["shape"])
        assert cli("cat", hf, name).stdout == real_values(m["shape"], m["dtype"]).tobytes()


def test_megatron_torch_dist_iteration_directory(fixtures_dir, tmp_path):
    """Megatron-LM's --ckpt-format torch_dist: iter_NNNNNNN/ holds the same
    files as NeMo's model_weights/."""
    meta, srcs = sources(fixtures_dir, "nemo1_dist_torch")
    ck = tmp_path / "run"
    shutil.copytree(srcs[0] / "model_weights", ck / "iter_0000005")
    (ck / "latest_checkpointed_iteration.txt").write_text("5")
    listing = json.loads(cli("ls", "--json", ck).stdout)
    weights = {t["name"]: t["shape"] for t in listing if t["role"] == "weight"}
    # No config beside it: V is unknown, so the vocabulary tensors keep all 80 stored rows.
    for t in meta["tensors"]:
        rows = 80 if "word_embeddings" in t["name"] or "output_layer" in t["name"] else None
        assert weights[t["name"]] == ([rows] + t["shape"][1:] if rows else t["shape"]), t["name"]
    npz = np.load(fixtures_dir / "nemo1_dist_torch" / "oracle.npz")
    name = "model.decoder.layers.3.mlp.linear_fc1.weight"
    assert cli("cat", ck, name).stdout == oracle_bytes(npz, name, "BF16")


def test_config_disagreeing_with_listing_is_reported(fixtures_dir, tmp_path):
    _, srcs = sources(fixtures_dir, "nemo1_tp2")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    cfg = ck / "model_config.yaml"
    text = cfg.read_text()
    assert "tensor_model_parallel_size: 2" in text
    cfg.write_text(text.replace("tensor_model_parallel_size: 2", "tensor_model_parallel_size: 4"))
    info = json.loads(cli("info", ck).stdout)
    assert info["tp"] == 2  # the listing is the ground truth
    assert any("tensor_model_parallel_size=4" in w for w in info["warnings"]), info["warnings"]


def test_unknown_vocabulary_keeps_every_stored_row(fixtures_dir, tmp_path):
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    (ck / meta["files"]["tokenizer"]).unlink()
    info = json.loads(cli("info", ck).stdout)
    assert info["vocab_size"] is None
    assert any("vocabulary size unknown" in w for w in info["warnings"]), info["warnings"]
    listing = {t["name"]: t["shape"] for t in json.loads(cli("ls", "--json", ck).stdout)}
    assert listing["model.embedding.word_embeddings.weight"] == [80, 32]
