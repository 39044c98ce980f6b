"""A member larger than 8 GiB (beyond the ustar octal size field) inside a
sparse archive file. Nothing of that size is ever written or extracted:
the oracle is tarfile's extractfile().seek()/read() on the same archive."""

import json
import os
import random

import pytest

import nemofs
import tarmaker
from nemofs import pread_all


@pytest.fixture(params=["pax", "gnu"])
def sparse(request, nemo):
    fmt = tarmaker.FORMATS[request.param]
    sa = tarmaker.write_sparse_big_tar(nemo.path("huge.tar"), fmt)
    st = os.stat(sa.path)
    if st.st_blocks * 512 > 64 << 20:
        pytest.fail("archive is not sparse on this filesystem (%d bytes "
                    "allocated)" % (st.st_blocks * 512))
    yield sa
    os.unlink(sa.path)


def _ranges(sa):
    size = sa.big_size
    r = []
    for off, blob in sa.patterns:
        r.append((off, len(blob)))
        r.append((max(off - 7, 0), len(blob) + 20))   # straddle the edges
    r += [(2**32 - 4096, 8192),            # across 4 GiB
          (2**32, 4096), (2**31 - 1, 2),    # around 2 GiB
          (2**33 - 1, 3),                   # around 8 GiB
          (size - 1, 1), (size - 100, 1000),  # runs past EOF -> short
          (size, 10), (size + 4096, 10)]     # at/after EOF -> empty
    rng = random.Random(8)
    for _ in range(24):                     # sample the holes
        r.append((rng.randrange(0, size), rng.choice([1, 512, 4096, 65536])))
    return r


@pytest.mark.nemo_timeout(120)
def test_huge_member_reads(nemo, sparse):
    sa = sparse
    ranges = _ranges(sa)
    want = tarmaker.oracle_read_many(sa.path, sa.big_name, ranges)
    members = tarmaker.member_table(sa.path)
    assert members[sa.big_name].size == sa.big_size
    assert members[sa.big_name].offset_data == sa.big_data_offset
    with nemo.mount(sa.path) as mnt:
        raw = mnt / "raw"
        p = raw / sa.big_name
        st = os.stat(p)
        assert st.st_size == sa.big_size
        assert int(st.st_mtime) == tarmaker.BASE_MTIME + 42
        fd = os.open(p, os.O_RDONLY)
        try:
            for (off, ln), w in zip(ranges, want):
                got = pread_all(fd, ln, off)
                assert got == w, (off, ln, len(got), len(w))
            # The planted patterns themselves (oracle sanity, too).
            for off, blob in sa.patterns:
                assert os.pread(fd, len(blob), off) == blob, off
            assert os.pread(fd, 10, sa.big_size) == b""
        finally:
            os.close(fd)
        with open(raw / sa.small_name, "rb") as f:
            assert f.read() == sa.small_data
        assert os.stat(raw / sa.small_name).st_size == len(sa.small_data)
        info = nemofs.read_info(mnt)
        assert info["members"] == 2
        assert info["total_bytes"] == sa.big_size + len(sa.small_data)
        assert sorted(os.listdir(raw / "weights")) == sorted(
            [os.path.basename(sa.big_name), os.path.basename(sa.small_name)])


def test_huge_member_cli_offsets(nemo, sparse):
    sa = sparse
    cli = nemofs.require_executable(nemofs.cli_bin(), "CLI")
    res = nemo.run([cli, "members", "--json", str(sa.path)])
    assert res.returncode == 0, res.stderr
    got = {tarmaker.norm_member_name(e["path"]): e
           for e in json.loads(res.stdout)}
    table = tarmaker.member_table(sa.path)
    assert set(got) == set(table)
    for name, m in table.items():
        assert got[name]["size"] == m.size
        assert got[name]["offset"] == m.offset_data
    assert got[sa.big_name]["offset"] == sa.big_data_offset
    assert got[sa.small_name]["offset"] == sa.small_data_offset


@pytest.mark.nemo_timeout(120)
def test_huge_member_mmap_window(nemo, sparse):
    """mmap a window beyond 4 GiB (page-aligned offset)."""
    import mmap
    sa = sparse
    off = 2**32                       # page aligned
    want = tarmaker.oracle_read(sa.path, sa.big_name, off, 1 << 20)
    with nemo.mount(sa.path) as mnt:
        fd = os.open(mnt / "raw" / sa.big_name, os.O_RDONLY)
        try:
            m = mmap.mmap(fd, 1 << 20, flags=mmap.MAP_SHARED,
                          prot=mmap.PROT_READ, offset=off)
            try:
                assert m[:] == want
                assert m[1:257] == b"\xde\xad\xbe\xef" * 64
            finally:
                m.close()
        finally:
            os.close(fd)
