"""nemo/tp<T>pp<P>/: an extracted .nemo at another layout. Debian's torch
(1.13) loads every weights file (torch.load, weights_only=True) and the tensors equal the rank
tensors cut from the oracle in test_ranks_view; Python's zipfile checks
every CRC; PyYAML reads the config with only the parallel sizes changed;
the artifacts are the source's bytes."""

import os
import zipfile

import numpy as np
import pytest
import torch
import yaml

from test_catalog import fixtures_dir, sources  # noqa: F401 (session fixture)
from test_ranks_view import expected_rank, le_bytes
from viewcheck import check_three_ways

NEMO1 = ["nemo1_single", "nemo1_tp2", "nemo1_tp2pp2", "nemo1_tp2pp2_tied", "nemo1_mha_tp2",
         "nemo1_dist_torch", "nemo1_dist_zarr"]
LAYOUTS = [(1, 1), (2, 1), (2, 2), (1, 4)]


def layouts(meta):
    """LAYOUTS, plus tp4pp1 where the model has 4 query groups (MHA)."""
    return LAYOUTS + ([(4, 1)] if meta.get("num_query_groups", 2) % 4 == 0 else [])


def weights_path(tp, pp, r, p):
    if tp == 1 and pp == 1:
        return "model_weights.ckpt"
    if pp == 1:
        return f"mp_rank_{r:02d}/model_weights.ckpt"
    return f"tp_rank_{r:02d}_pp_rank_{p:03d}/model_weights.ckpt"


def bits(t):
    """A torch tensor's elements as the numpy bit patterns the oracle uses."""
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(np.uint16)
    return t.contiguous().numpy()


def check_zip(path):
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # every CRC-32
        for info in z.infolist():
            if "/data/" in info.filename:
                with open(path, "rb") as f:
                    f.seek(info.header_offset + 26)
                    n, m = np.frombuffer(f.read(4), "<u2")
                start = info.header_offset + 30 + int(n) + int(m)
                assert start % 64 == 0, (info.filename, start)
        names = z.namelist()
    assert names[0] == "model_weights/data.pkl" and "model_weights/version" in names


@pytest.mark.parametrize("name", NEMO1)
def test_weights_load_with_torch(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        for tp, pp in layouts(meta):
            d = mnt / "nemo" / f"tp{tp}pp{pp}"
            for p in range(pp):
                for r in range(tp):
                    path = d / weights_path(tp, pp, r, p)
                    check_zip(path)
                    # weights_only: torch's restricted unpickler (tensors and
                    # plain containers), as a careful user loads it
                    sd = torch.load(path, weights_only=True, map_location="cpu")
                    want = expected_rank(meta, npz, tp, pp, r, p)
                    weights = {k: v for k, v in sd.items() if not k.endswith("._extra_state")}
                    assert sorted(weights) == sorted(want), set(weights) ^ set(want)
                    for k, a in want.items():
                        assert tuple(sd[k].shape) == a.shape, k
                        assert bits(sd[k]).tobytes() == le_bytes(a), k


@pytest.mark.parametrize("name", ["nemo1_tp2pp2", "nemo1_dist_zarr"])
def test_config_and_artifacts(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    src_dir = srcs[0]
    src_cfg = yaml.safe_load((src_dir / "model_config.yaml").read_text())
    artifacts = sorted(f for f in os.listdir(src_dir)
                       if (src_dir / f).is_file() and f != "model_config.yaml"
                       and not f.endswith((".ckpt", ".pt")))
    assert artifacts  # the tokenizer at least
    with nemo.mount(srcs[-1]) as mnt:
        listed = set(os.listdir(mnt / "nemo"))
        assert {"tp1pp1", "tp2pp1"} <= listed
        for tp, pp in LAYOUTS:
            d = mnt / "nemo" / f"tp{tp}pp{pp}"
            cfg = yaml.safe_load((d / "model_config.yaml").read_text())
            want = dict(src_cfg, tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp)
            assert cfg == want
            for a in artifacts:
                assert (d / a).read_bytes() == (src_dir / a).read_bytes()
            top = {weights_path(tp, pp, r, p).split("/")[0]
                   for p in range(pp) for r in range(tp)}
            assert set(os.listdir(d)) == {"model_config.yaml", *artifacts, *top}
        assert not (mnt / "nemo" / "tp4pp1").exists()


def test_not_offered_without_model_config(fixtures_dir, nemo):  # noqa: F811
    for name in ("nemo2", "megatron_iter"):
        meta, srcs = sources(fixtures_dir, name)
        with nemo.mount(srcs[-1]) as mnt:
            assert (mnt / "ranks").is_dir()
            assert not (mnt / "nemo").exists()


@pytest.mark.parametrize("name", NEMO1)
def test_random_ranges_and_mmap(fixtures_dir, nemo, name):  # noqa: F811
    """Every weights file of tp2pp2 read in ranges (the central directory
    first, so the CRC pieces are computed before any data is read) and by
    mmap, against a whole read that torch.load and zipfile accepted."""
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        for p in range(2):
            for r in range(2):
                path = mnt / "nemo" / "tp2pp2" / weights_path(2, 2, r, p)
                size = os.path.getsize(path)
                fd = os.open(path, os.O_RDONLY)
                try:
                    tail = os.pread(fd, 4096, max(0, size - 4096))
                finally:
                    os.close(fd)
                whole = path.read_bytes()
                assert len(whole) == size and whole.endswith(tail)
                check_zip(path)
                sd = torch.load(path, map_location="cpu")
                for k, a in expected_rank(meta, npz, 2, 2, r, p).items():
                    assert bits(sd[k]).tobytes() == le_bytes(a), k
                check_three_ways(path, whole, seed=r)
