"""The archive file changes under a live mount: reads fail with EIO.

The kernel page cache may keep pages read before the change, so every
check reads, through a freshly opened descriptor, a range that was never
read before.
"""

import errno
import os
import tarfile

import pytest

import tarmaker

BIG = 16 << 20


@pytest.fixture
def arc(nemo):
    files = {
        "context/model.yaml": tarmaker.pattern_bytes(3000, "yaml"),
        "weights/small.bin": tarmaker.rand_bytes(20_000, 1),
        "weights/big.distcp": tarmaker.rand_bytes(BIG, 2),
    }
    p = tarmaker.write_tar_entries(
        nemo.path("live.tar"), [tarmaker.Entry(n, d) for n, d in
                                files.items()], tarfile.GNU_FORMAT)
    return p, files, tarmaker.member_table(p)


def _expect_eio(path, offset, length):
    """Open anew and read an untouched range: EIO from open or read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        assert e.errno == errno.EIO, "open: errno %d, want EIO" % e.errno
        return
    try:
        data = os.pread(fd, length, offset)
    except OSError as e:
        assert e.errno == errno.EIO, "pread: errno %d, want EIO" % e.errno
    else:
        raise AssertionError("pread(%d, %d) returned %d bytes, want EIO"
                             % (length, offset, len(data)))
    finally:
        os.close(fd)


@pytest.mark.allow_stderr(r".")
def test_truncated_under_mount(nemo, arc):
    path, files, table = arc
    big = table["weights/big.distcp"]
    with nemo.mount(path) as mnt:
        p = mnt / "raw" / "weights" / "big.distcp"
        fd = os.open(p, os.O_RDONLY)
        try:
            assert os.pread(fd, 4096, 0) == files["weights/big.distcp"][:4096]
        finally:
            os.close(fd)
        os.truncate(path, big.offset_data + 8192)
        _expect_eio(p, 12 << 20, 65536)
        _expect_eio(p, BIG - 100, 100)
        # The mount stays usable (no hang, no crash): metadata still works.
        assert os.listdir(mnt / "raw")
    # nemo.mount's exit checked fusermount3 -u and exit status 0.


@pytest.mark.allow_stderr(r".")
def test_rewritten_with_new_mtime(nemo, arc):
    path, files, table = arc
    big = table["weights/big.distcp"]
    with nemo.mount(path) as mnt:
        p = mnt / "raw" / "weights" / "big.distcp"
        with open(p, "rb") as f:
            assert f.read(4096) == files["weights/big.distcp"][:4096]
        st = os.stat(path)
        # Same size, different bytes in a range never read, new mtime.
        with open(path, "r+b") as f:
            f.seek(big.offset_data + (10 << 20))
            f.write(b"\xff" * 65536)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_234_567_891))
        assert os.path.getsize(path) == st.st_size
        _expect_eio(p, 10 << 20, 65536)
        _expect_eio(p, 14 << 20, 4096)
        assert os.listdir(mnt / "raw")


@pytest.mark.allow_stderr(r".")
def test_small_member_after_truncation(nemo, arc):
    """A member wholly past the new end of file, never read before."""
    path, files, table = arc
    order = sorted(table.values(), key=lambda m: m.offset)
    last = order[-1]
    with nemo.mount(path) as mnt:
        first = order[0]
        name0 = tarmaker.norm_member_name(first.name)
        with open(mnt / "raw" / name0, "rb") as f:
            assert f.read() == files[name0]
        os.truncate(path, last.offset)
        _expect_eio(mnt / "raw" / tarmaker.norm_member_name(last.name),
                    0, 4096)


@pytest.mark.allow_stderr(r".")
def test_rewritten_same_size_and_mtime(nemo, arc):
    """dd conv=notrunc, then touch -r: only ctime tells (issue 12, 8)."""
    path, files, table = arc
    big = table["weights/big.distcp"]
    with nemo.mount(path) as mnt:
        p = mnt / "raw" / "weights" / "big.distcp"
        with open(p, "rb") as f:
            assert f.read(4096) == files["weights/big.distcp"][:4096]
        st = os.stat(path)
        with open(path, "r+b") as f:
            f.seek(big.offset_data + (10 << 20))
            f.write(b"\xff" * 65536)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        st2 = os.stat(path)
        assert (st2.st_size, st2.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
        _expect_eio(p, 10 << 20, 65536)
        assert os.listdir(mnt / "raw")


@pytest.mark.allow_stderr(r".")
def test_dir_file_rewritten_same_size_and_mtime(nemo):
    """The same for a file of a directory source."""
    root = nemo.path("srcdir")
    os.makedirs(os.path.join(root, "weights"))
    data = tarmaker.rand_bytes(BIG, 3)
    f = os.path.join(root, "weights", "big.distcp")
    with open(f, "wb") as fh:
        fh.write(data)
    with nemo.mount(root) as mnt:
        p = mnt / "raw" / "weights" / "big.distcp"
        with open(p, "rb") as fh:
            assert fh.read(4096) == data[:4096]
        st = os.stat(f)
        with open(f, "r+b") as fh:
            fh.seek(10 << 20)
            fh.write(b"\xff" * 65536)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        _expect_eio(p, 10 << 20, 65536)
