"""merged/: every weight as safetensors (one file, or shards with an index),
checked with a safetensors reader written here, independently of the C one,
against the unsharded oracle of every fixture."""

import json
import os
import shutil
import struct

import numpy as np
import pytest

from test_catalog import FIXTURES, fixtures_dir, sources  # noqa: F401 (session fixture)
from viewcheck import check_three_ways

DTYPES = {"BF16": ("<u2", 2), "F16": ("<f2", 2), "F32": ("<f4", 4), "I64": ("<i8", 8),
          "I32": ("<i4", 4), "U8": ("|u1", 1), "F64": ("<f8", 8), "BOOL": ("|b1", 1),
          "I8": ("|i1", 1), "F8_E4M3": ("|u1", 1)}


def parse_safetensors(data, name_order=True):
    """The format's rules (safetensors README): u64 N, N bytes of JSON with
    string-only __metadata__, tensors whose data_offsets tile the data section
    in order with no hole, no overlap and no trailing bytes; with name_order
    (merged/'s promise), the header lists them in name order."""
    assert len(data) >= 8
    n = struct.unpack("<Q", data[:8])[0]
    assert 8 + n <= len(data) and n % 8 == 0, n
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    names = list(header)
    assert not name_order or names == sorted(names), "tensors not in name order"
    pos, body = 0, data[8 + n:]
    out = {}
    for name in names:
        t = header[name]
        b, e = t["data_offsets"]
        assert b == pos, (name, b, pos)
        np_dtype, size = DTYPES[t["dtype"]]
        assert e - b == size * int(np.prod(t["shape"], dtype=np.int64)), name
        out[name] = (t["dtype"], t["shape"], body[b:e])
        pos = e
    assert pos == len(body), "trailing bytes"
    return meta, out


def oracle_bytes(npz, name):
    a = npz[name]
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()


@pytest.mark.parametrize("name", FIXTURES)
def test_model_safetensors_matches_oracle(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        data = (mnt / "merged" / "model.safetensors").read_bytes()
        md, tensors = parse_safetensors(data)
        assert md["format"] == "pt"
        assert sorted(tensors) == sorted(t["name"] for t in meta["tensors"])
        for t in meta["tensors"]:
            dtype, shape, raw = tensors[t["name"]]
            assert (dtype, shape) == (t["dtype"], t["shape"]), t["name"]
            assert raw == oracle_bytes(npz, t["name"]), t["name"]
        # The config and the tokenizer sit beside the weights, under plain names.
        files = set(os.listdir(mnt / "merged"))
        tok = meta["files"].get("tokenizer")
        if tok:
            base = os.path.basename(tok)
            plain = base[33:] if len(base) > 33 and base[32] == "_" else base
            assert plain in files, files
            assert (mnt / "merged" / plain).read_bytes() == \
                (fixtures_dir / name / meta["files"]["dir"] / tok.split("ckpt/")[-1]).read_bytes()


def test_sharded_with_index(fixtures_dir, nemo):  # noqa: F811
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    npz = np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz")
    with nemo.mount(srcs[-1], "shard_size=40K") as mnt:
        index = json.loads((mnt / "merged" / "model.safetensors.index.json").read_text())
        shards = sorted(f for f in os.listdir(mnt / "merged") if f.endswith(".safetensors"))
        assert len(shards) > 1 and "model.safetensors" not in shards
        assert shards == ["model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
                          for i in range(len(shards))]
        total, seen = 0, {}
        for sh in shards:
            _, tensors = parse_safetensors((mnt / "merged" / sh).read_bytes())
            for n, (_, _, raw) in tensors.items():
                seen[n] = sh
                total += len(raw)
                assert raw == oracle_bytes(npz, n), n
        assert index["weight_map"] == seen
        assert index["metadata"]["total_size"] == total
        assert sorted(seen) == sorted(t["name"] for t in meta["tensors"])


@pytest.mark.parametrize("name", FIXTURES)
def test_random_ranges_and_mmap(fixtures_dir, nemo, name):  # noqa: F811
    """model.safetensors read whole, in ranges and by mmap: the header as
    read (validated by parse_safetensors), then the oracle's tensors."""
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        path = mnt / "merged" / "model.safetensors"
        with open(path, "rb") as f:
            head = f.read(8)
            header = head + f.read(struct.unpack("<Q", head)[0])
        names = [k for k in json.loads(header[8:]) if k != "__metadata__"]
        expect = header + b"".join(oracle_bytes(npz, k) for k in names)
        parse_safetensors(expect)
        check_three_ways(path, expect, seed=len(name))


@pytest.mark.allow_stderr(r"read of inode")
def test_damaged_source_gives_eio_on_that_range_only(fixtures_dir, nemo, tmp_path):  # noqa: F811
    """A rank file changed under the mount: tensors with bytes in it fail with
    EIO, tensors entirely in the other rank's file still read."""
    meta, srcs = sources(fixtures_dir, "nemo1_tp2")
    npz = np.load(fixtures_dir / "nemo1_tp2" / "oracle.npz")
    ck = tmp_path / "ck"
    shutil.copytree(srcs[0], ck)
    with nemo.mount(ck) as mnt:
        path = mnt / "merged" / "model.safetensors"
        fd = os.open(path, os.O_RDONLY)
        # No readahead: only the pages read here enter the page cache.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        n = struct.unpack("<Q", os.pread(fd, 8, 0))[0]
        header = json.loads(os.pread(fd, n, 8))
        # Damage rank 1's file in place (same size, new mtime).
        victim = ck / "mp_rank_01" / "model_weights.ckpt"
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        sharded = "model.embedding.word_embeddings.weight"  # rows 40.. live in rank 1's file
        replicated = "model.decoder.layers.0.mlp.linear_fc1.layer_norm_weight"  # rank 0 only
        try:
            b, e = header[sharded]["data_offsets"]
            # The second half of the tensor, from a page boundary: never read before.
            start = (8 + n + (b + e) // 2 + 4095) // 4096 * 4096
            assert start < 8 + n + e
            with pytest.raises(OSError) as err:
                os.pread(fd, 8 + n + e - start, start)
            assert err.value.errno == 5
            b, e = header[replicated]["data_offsets"]
            assert os.pread(fd, e - b, 8 + n + b) == oracle_bytes(npz, replicated)
        finally:
            os.close(fd)
