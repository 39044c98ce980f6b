"""PyPI torch (2.x, unmodified) loads every nemo/tpXppY/**/model_weights.ckpt
with torch.load(weights_only=True, map_location="cpu") - its restricted
unpickler - at four layouts per fixture (tp1pp1, tp2pp1, tp2pp2, and
tp4pp1 where the query groups allow it, else tp1pp4), each file's cached
pages dropped first; every weight equals the rank tensor cut from the
oracle (test_ranks_view.expected_rank). Debian's torch 1.13 does the same
in tests/integration/test_nemo_view.py."""

import os

import numpy as np
import pytest
import torch

from test_catalog import sources
from test_nemo_view import NEMO1, bits, weights_path
from test_ranks_view import expected_rank, le_bytes
from test_safetensors import drop_cache


def layouts(meta):
    mha = meta.get("num_query_groups", 2) % 4 == 0
    return [(1, 1), (2, 1), (2, 2), (4, 1) if mha else (1, 4)]


@pytest.mark.parametrize("name", NEMO1)
def test_weights_only_load(fixtures_dir, nemo, name):
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        assert (mnt / "nemo" / "tp4pp1").is_dir() == (layouts(meta)[3] == (4, 1))
        n = 0
        for tp, pp in layouts(meta):
            d = mnt / "nemo" / f"tp{tp}pp{pp}"
            for p in range(pp):
                for r in range(tp):
                    path = d / weights_path(tp, pp, r, p)
                    drop_cache(path)
                    sd = torch.load(path, weights_only=True, map_location="cpu")
                    want = expected_rank(meta, npz, tp, pp, r, p)
                    weights = {k: v for k, v in sd.items() if not k.endswith("._extra_state")}
                    assert sorted(weights) == sorted(want), set(weights) ^ set(want)
                    for k, a in want.items():
                        assert sd[k].dtype == torch.bfloat16 and tuple(sd[k].shape) == a.shape, k
                        assert bits(sd[k]).tobytes() == le_bytes(a), (path, k)
                    n += 1
        assert n == sum(tp * pp for tp, pp in layouts(meta))
        assert os.path.getsize(d / weights_path(tp, pp, 0, 0)) > 0
