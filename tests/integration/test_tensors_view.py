"""tensors/<name>.npy: every weight of every fixture, loaded by numpy from
the mount, equals the unsharded oracle the fixture was cut from (bf16
widened exactly to float32); random ranges and mmap see the same bytes."""

import io
import json
import mmap
import os
import random

import numpy as np
import pytest

from test_catalog import FIXTURES, fixtures_dir, sources  # noqa: F401 (session fixture)


def expected_array(npz, t):
    a = npz[t["name"]]
    if t["dtype"] == "BF16":
        return (a.astype("<u4") << 16).view("<f4")
    return a


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr))
    return buf.getvalue()


@pytest.mark.parametrize("name", FIXTURES)
def test_every_tensor_loads_with_numpy(fixtures_dir, nemo, name):  # noqa: F811
    meta, srcs = sources(fixtures_dir, name)
    npz = np.load(fixtures_dir / name / "oracle.npz")
    with nemo.mount(srcs[-1]) as mnt:
        names = sorted(os.listdir(mnt / "tensors"))
        assert names == sorted(t["name"] + ".npy" for t in meta["tensors"])
        for t in meta["tensors"]:
            got = np.load(mnt / "tensors" / (t["name"] + ".npy"))
            want = expected_array(npz, t)
            assert got.shape == want.shape and got.dtype == want.dtype, t["name"]
            assert np.array_equal(got, want, equal_nan=True) or \
                got.tobytes() == want.tobytes(), t["name"]


def test_random_ranges_and_mmap(fixtures_dir, nemo):  # noqa: F811
    """The .npy files' bytes (header and data) equal what numpy.save writes
    for the oracle, read whole, in random ranges and through mmap."""
    meta, srcs = sources(fixtures_dir, "nemo1_tp2pp2")
    npz = np.load(fixtures_dir / "nemo1_tp2pp2" / "oracle.npz")
    rng = random.Random(7)
    with nemo.mount(srcs[-1]) as mnt:
        for t in meta["tensors"][:8]:
            path = mnt / "tensors" / (t["name"] + ".npy")
            data = path.read_bytes()
            got = np.load(io.BytesIO(data))
            assert np.array_equal(got, expected_array(npz, t))
            assert os.stat(path).st_size == len(data)
            fd = os.open(path, os.O_RDONLY)
            try:
                for _ in range(50):
                    off = rng.randrange(len(data))
                    n = rng.randrange(1, len(data) - off + 1)
                    assert os.pread(fd, n, off) == data[off:off + n], (t["name"], off, n)
                with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
                    assert m[:] == data
            finally:
                os.close(fd)
            # The data part is exactly numpy's own serialization of the oracle's values.
            ref = npy_bytes(expected_array(npz, t))
            hdr = len(data) - got.nbytes
            assert data[hdr:] == ref[len(ref) - got.nbytes:]
