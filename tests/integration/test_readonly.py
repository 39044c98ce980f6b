"""Every write-type operation fails with EROFS; statvfs works."""

import errno
import os
import tarfile

import pytest

import tarmaker


def _sources(nemo, kind):
    entries = [
        tarmaker.Entry("dir", None, 0o755),
        tarmaker.Entry("dir/file.bin", tarmaker.rand_bytes(5000, 1)),
        tarmaker.Entry("dir/sub", None, 0o755),
        tarmaker.Entry("top.txt", b"hello\n"),
    ]
    if kind == "tar":
        return tarmaker.write_tar_entries(nemo.path("ro.tar"), entries,
                                          tarfile.PAX_FORMAT)
    return tarmaker.write_tree(nemo.path("ro.dir"), entries)


def write_ops(mnt):
    raw = mnt / "raw"
    f = raw / "dir" / "file.bin"
    d = raw / "dir"
    new = raw / "dir" / "new_entry"
    return [
        ("open O_WRONLY", lambda: os.open(f, os.O_WRONLY)),
        ("open O_RDWR", lambda: os.open(f, os.O_RDWR)),
        ("open O_WRONLY|O_TRUNC", lambda: os.open(f, os.O_WRONLY | os.O_TRUNC)),
        ("open O_APPEND", lambda: os.open(f, os.O_WRONLY | os.O_APPEND)),
        ("open(w) info.json", lambda: open(mnt / "info.json", "wb")),
        ("create", lambda: os.open(new, os.O_CREAT | os.O_WRONLY, 0o644)),
        ("create excl", lambda: os.open(new, os.O_CREAT | os.O_EXCL
                                        | os.O_RDWR, 0o644)),
        ("create in mount root", lambda: os.open(mnt / "x", os.O_CREAT
                                                 | os.O_WRONLY, 0o644)),
        ("mkdir", lambda: os.mkdir(new)),
        ("mkdir in mount root", lambda: os.mkdir(mnt / "newdir")),
        ("rmdir", lambda: os.rmdir(raw / "dir" / "sub")),
        ("unlink", lambda: os.unlink(f)),
        ("unlink info.json", lambda: os.unlink(mnt / "info.json")),
        ("rename file", lambda: os.rename(f, raw / "dir" / "renamed")),
        ("rename over existing", lambda: os.rename(f, raw / "top.txt")),
        ("rename dir", lambda: os.rename(d, raw / "dir2")),
        ("truncate", lambda: os.truncate(f, 0)),
        ("truncate extend", lambda: os.truncate(f, 10 ** 6)),
        ("chmod", lambda: os.chmod(f, 0o777)),
        ("chmod dir", lambda: os.chmod(d, 0o777)),
        ("chown", lambda: os.chown(f, 0, 0)),
        ("utime", lambda: os.utime(f, (0, 0))),
        ("utime now", lambda: os.utime(f)),
        ("setxattr", lambda: os.setxattr(f, "user.test", b"v")),
        ("removexattr", lambda: os.removexattr(f, "user.test")),
        ("symlink", lambda: os.symlink("/etc/passwd", new)),
        ("link", lambda: os.link(f, new)),
        ("mknod fifo", lambda: os.mkfifo(new)),
    ]


@pytest.mark.parametrize("kind", ["tar", "directory"])
def test_write_ops_fail_with_erofs(nemo, kind):
    src = _sources(nemo, kind)
    failures = []
    with nemo.mount(src) as mnt:
        before = os.stat(mnt / "raw" / "dir" / "file.bin")
        for label, op in write_ops(mnt):
            try:
                res = op()
            except OSError as e:
                if e.errno != errno.EROFS:
                    failures.append("%s: errno %s (%s), want EROFS"
                                    % (label, e.errno,
                                       errno.errorcode.get(e.errno)))
            else:
                if isinstance(res, int):
                    os.close(res)
                elif hasattr(res, "close"):
                    res.close()
                failures.append("%s: succeeded, want EROFS" % label)
        after = os.stat(mnt / "raw" / "dir" / "file.bin")
        assert (after.st_size, after.st_mode, after.st_mtime) == \
            (before.st_size, before.st_mode, before.st_mtime)
        with open(mnt / "raw" / "top.txt", "rb") as fh:
            assert fh.read() == b"hello\n"
        assert sorted(os.listdir(mnt / "raw" / "dir")) == ["file.bin", "sub"]
    assert not failures, "\n".join(failures)


def test_ftruncate_and_write_on_read_fd(nemo):
    src = _sources(nemo, "tar")
    with nemo.mount(src) as mnt:
        fd = os.open(mnt / "raw" / "top.txt", os.O_RDONLY)
        try:
            with pytest.raises(OSError) as ei:
                os.write(fd, b"x")
            assert ei.value.errno == errno.EBADF
            with pytest.raises(OSError) as ei:
                os.ftruncate(fd, 0)
            assert ei.value.errno in (errno.EINVAL, errno.EBADF, errno.EROFS)
            assert os.pread(fd, 100, 0) == b"hello\n"
        finally:
            os.close(fd)


def test_statvfs(nemo):
    src = _sources(nemo, "tar")
    with nemo.mount(src) as mnt:
        for p in (mnt, mnt / "raw", mnt / "raw" / "dir" / "file.bin"):
            sv = os.statvfs(p)
            assert sv.f_bsize > 0
        fd = os.open(mnt / "raw" / "top.txt", os.O_RDONLY)
        try:
            assert os.fstatvfs(fd).f_bsize > 0
        finally:
            os.close(fd)
