"""Read paths: whole-file reads, pread at odd offsets, mmap, lookups."""

import errno
import mmap
import os
import random
import stat
import tarfile

import pytest

import tarmaker
from nemofs import expect_errno, pread_all

SIZES = [0, 1, 511, 512, 513, 4095, 4096, 4097, 65539, 131073,
         (1 << 20) + 7, (6 << 20) + 3]


@pytest.fixture
def read_archive(nemo):
    files = {}
    for i, size in enumerate(SIZES):
        name = "weights/part_%02d_%d.bin" % (i, size)
        files[name] = tarmaker.rand_bytes(size, 100 + i)
    files["model_config.yaml"] = tarmaker.pattern_bytes(2345, "cfg")
    entries = [tarmaker.Entry(n, d) for n, d in files.items()]
    arc = tarmaker.write_tar_entries(nemo.path("reads.tar"), entries,
                                     tarfile.PAX_FORMAT, prefix="./")
    return arc, files


def test_whole_file_reads(nemo, read_archive):
    arc, files = read_archive
    with nemo.mount(arc) as mnt:
        for name, data in files.items():
            p = mnt / "raw" / name
            assert os.stat(p).st_size == len(data)
            with open(p, "rb") as f:
                assert f.read() == data, name
            # Unbuffered reads with an odd chunk size.
            fd = os.open(p, os.O_RDONLY)
            try:
                buf = bytearray()
                while True:
                    c = os.read(fd, 12345)
                    if not c:
                        break
                    buf += c
                assert bytes(buf) == data, name
            finally:
                os.close(fd)


def test_pread_odd_offsets(nemo, read_archive):
    arc, files = read_archive
    rng = random.Random(5)
    with nemo.mount(arc) as mnt:
        for name, data in files.items():
            n = len(data)
            ranges = [(0, 1), (1, 1), (0, 4096), (511, 2), (4095, 4099),
                      (12345, 54321), (n - 1, 1), (n, 1), (n, 4096),
                      (n + 1000, 10), (max(n - 3, 0), 100), (0, n + 9999),
                      (n + (1 << 30), 7)]
            for _ in range(20):
                off = rng.randrange(0, n + 2)
                ranges.append((off, rng.randrange(1, 300_000)))
            fd = os.open(mnt / "raw" / name, os.O_RDONLY)
            try:
                for off, ln in ranges:
                    if off < 0:
                        continue
                    got = os.pread(fd, ln, off)
                    want = data[off:off + ln]
                    assert got == want, (name, off, ln, len(got), len(want))
            finally:
                os.close(fd)


def test_seek_and_read(nemo, read_archive):
    arc, files = read_archive
    name = [n for n in files if n.endswith("_%d.bin" % ((6 << 20) + 3))][0]
    data = files[name]
    with nemo.mount(arc) as mnt:
        with open(mnt / "raw" / name, "rb", buffering=0) as f:
            for off in (len(data) - 1, 3, 5 << 20, 0, 1 << 20):
                f.seek(off)
                assert f.read(70000) == data[off:off + 70000]
            assert f.seek(0, os.SEEK_END) == len(data)
            assert f.read(10) == b""


def test_mmap_shared(nemo, read_archive):
    arc, files = read_archive
    rng = random.Random(9)
    with nemo.mount(arc) as mnt:
        for name, data in files.items():
            if not data:
                continue
            fd = os.open(mnt / "raw" / name, os.O_RDONLY)
            try:
                m = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED,
                              prot=mmap.PROT_READ)
                try:
                    assert len(m) == len(data)
                    for _ in range(10):
                        a = rng.randrange(0, len(data))
                        b = min(len(data), a + rng.randrange(1, 100_000))
                        assert m[a:b] == data[a:b], (name, a, b)
                    assert m[:] == data, name
                finally:
                    m.close()
            finally:
                os.close(fd)


def test_several_mib_files_byte_exact(nemo):
    """A few multi-MiB members back to back, read in full."""
    files = {"w/shard_%d.distcp" % i: tarmaker.rand_bytes((3 << 20) + i * 4099,
                                                          500 + i)
             for i in range(3)}
    arc = tarmaker.write_tar_entries(
        nemo.path("big.tar"), [tarmaker.Entry(n, d) for n, d in files.items()],
        tarfile.GNU_FORMAT)
    with nemo.mount(arc) as mnt:
        for name, data in files.items():
            fd = os.open(mnt / "raw" / name, os.O_RDONLY)
            try:
                assert pread_all(fd, len(data) + 1, 0) == data
            finally:
                os.close(fd)


def test_lookup_errors(nemo, read_archive):
    arc, files = read_archive
    with nemo.mount(arc) as mnt:
        raw = mnt / "raw"
        expect_errno(errno.ENOENT, os.stat, raw / "does-not-exist")
        expect_errno(errno.ENOENT, os.stat, raw / "weights" / "nope.bin")
        expect_errno(errno.ENOENT, open, raw / "nope", "rb")
        expect_errno(errno.ENOTDIR, os.listdir, raw / "model_config.yaml")
        expect_errno(errno.ENOTDIR, os.stat,
                     raw / "model_config.yaml" / "child")
        expect_errno(errno.EINVAL, os.readlink, raw / "model_config.yaml")
        expect_errno(errno.EISDIR, open, raw / "weights", "rb")
        assert stat.S_ISREG(os.stat(mnt / "info.json").st_mode)
        assert stat.S_ISDIR(os.stat(raw).st_mode)


def test_info_json_reads(nemo, read_archive):
    arc, files = read_archive
    with nemo.mount(arc) as mnt:
        p = mnt / "info.json"
        with open(p, "rb") as f:
            whole = f.read()
        assert os.stat(p).st_size == len(whole)
        fd = os.open(p, os.O_RDONLY)
        try:
            assert os.pread(fd, 5, 1) == whole[1:6]
            assert os.pread(fd, 10, len(whole)) == b""
        finally:
            os.close(fd)


def test_open_close_does_not_leak_daemon_fds(nemo, read_archive):
    arc, files = read_archive
    name = "model_config.yaml"
    with nemo.mount(arc) as mnt:
        pid = nemo.daemon(mnt).pid
        p = mnt / "raw" / name

        def nfds():
            return len(os.listdir("/proc/%d/fd" % pid))

        with open(p, "rb") as f:
            assert f.read() == files[name]
        before = nfds()
        for i in range(1000):
            fd = os.open(p, os.O_RDONLY)
            try:
                assert os.pread(fd, 7, i % 100) == files[name][i % 100:
                                                               i % 100 + 7]
            finally:
                os.close(fd)
        after = nfds()
        assert after - before < 100, (before, after)
