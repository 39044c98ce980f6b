"""Bad input: refused before mounting with one line on stderr; unsafe
entries: left out with a warning while the rest mounts."""

import errno
import io
import os
import re
import tarfile

import pytest

import nemofs
import tarmaker
from nemofs import is_mounted

OFFSET_RE = re.compile(r"offset \d+")


def _two_member_tar(path, first_size=100, second_size=100_000,
                    fmt=tarfile.GNU_FORMAT):
    a = tarmaker.rand_bytes(first_size, 1)
    b = tarmaker.rand_bytes(second_size, 2)
    tarmaker.write_tar_entries(path, [tarmaker.Entry("a.bin", a),
                                      tarmaker.Entry("dir", None),
                                      tarmaker.Entry("dir/b.bin", b)], fmt)
    return tarmaker.all_members(path)


def _cut(path, length):
    with open(path, "r+b") as f:
        f.truncate(length)
    assert os.path.getsize(path) == length


# Each builder returns (source path, needs "offset N" in the message).

def bad_missing(nemo):
    return nemo.path("does-not-exist.nemo"), False


def bad_random_bytes(nemo):
    p = nemo.path("random.nemo")
    p.write_bytes(tarmaker.rand_bytes(10_000, 99))
    return p, False


def bad_random_512(nemo):
    p = nemo.path("random512.nemo")
    p.write_bytes(tarmaker.rand_bytes(512, 98))
    return p, False


def bad_text_file(nemo):
    p = nemo.path("notes.txt")
    p.write_bytes(b"this is not a tar archive\n" * 100)
    return p, False


def _compressed(nemo, mode, name):
    p = nemo.path(name)
    with tarfile.open(p, mode) as tf:
        data = tarmaker.rand_bytes(5000, 3)
        ti = tarfile.TarInfo("model_weights.ckpt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return p


def bad_gzip(nemo):
    """A gzip tarball cut in half: the index build reports where the
    compressed data ends. Named .nemo on purpose: detection must not rely on
    the suffix. (Intact gzip archives mount: test_gzip.py.)"""
    p = _compressed(nemo, "w:gz", "model.nemo")
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    return p, True


def bad_bzip2(nemo):
    return _compressed(nemo, "w:bz2", "model_bz2.nemo"), False


def bad_xz(nemo):
    return _compressed(nemo, "w:xz", "model_xz.nemo"), False


def bad_cut_in_first_header(nemo):
    p = nemo.path("cut300.tar")
    _two_member_tar(p)
    _cut(p, 300)
    return p, False


def bad_cut_header_at_700(nemo):
    """Second header starts at 512 (first member empty); cut at 700."""
    p = nemo.path("cut700.tar")
    ms = _two_member_tar(p, first_size=0)
    assert ms[1].offset == 512
    _cut(p, 700)
    return p, True


def bad_cut_in_later_header(nemo):
    p = nemo.path("cuthdr.tar")
    ms = _two_member_tar(p)
    _cut(p, ms[2].offset + 188)
    return p, True


def bad_cut_in_pax_record(nemo):
    """Cut inside the data block of a PAX extended header."""
    p = nemo.path("cutpax.tar")
    tarmaker.write_tar_entries(p, [
        tarmaker.Entry("ok.bin", b"x" * 10),
        tarmaker.Entry("L" * 150 + ".bin", b"y" * 10)], tarfile.PAX_FORMAT)
    # The 'x' header sits right after ok.bin (header + 1 data block).
    pax_hdr = 1024
    with open(p, "rb") as f:
        f.seek(pax_hdr + 156)
        assert f.read(1) == tarfile.XHDTYPE
    _cut(p, pax_hdr + 512 + 40)
    return p, True


def bad_cut_in_data(nemo):
    p = nemo.path("cutdata.tar")
    ms = _two_member_tar(p)
    _cut(p, ms[2].offset_data + 50_001)
    return p, True


def bad_data_past_eof(nemo):
    """Block-aligned cut: final partial block, padding and end blocks gone."""
    p = nemo.path("pasteof.tar")
    ms = _two_member_tar(p)
    cut = ms[2].offset_data + (ms[2].size // 512) * 512
    assert cut % 512 == 0 and cut < ms[2].offset_data + ms[2].size
    _cut(p, cut)
    return p, True


def bad_header_only(nemo):
    """The header of a 100000-byte member and nothing else."""
    p = nemo.path("hdronly.tar")
    ms = _two_member_tar(p)
    _cut(p, ms[2].offset_data)
    return p, True


def _patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def bad_header_checksum(nemo):
    """A flipped byte in the second header (GNU tar: 'Skipping to next
    header', exit 2)."""
    p = nemo.path("badsum.tar")
    ms = _two_member_tar(p)
    with open(p, "rb") as f:
        f.seek(ms[2].offset + 5)
        c = f.read(1)
    _patch(p, ms[2].offset + 5, bytes([c[0] ^ 0xFF]))
    return p, True


def bad_size_field(nemo):
    """Garbage in the octal size field of the second header."""
    p = nemo.path("badsize.tar")
    ms = _two_member_tar(p)
    _patch(p, ms[2].offset + 124, b"zzzzzzzzzzz\0")
    return p, True


BAD_SOURCES = [bad_missing, bad_random_bytes, bad_random_512, bad_text_file,
               bad_gzip, bad_bzip2, bad_xz, bad_cut_in_first_header,
               bad_cut_header_at_700, bad_cut_in_later_header,
               bad_cut_in_pax_record, bad_cut_in_data, bad_data_past_eof,
               bad_header_only, bad_header_checksum, bad_size_field]


def check_one_line(stderr, path):
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "want exactly one stderr line, got:\n" + stderr
    line = lines[0]
    assert line.startswith("nemockptfs: "), line
    assert str(path) in line, "message does not name %s: %s" % (path, line)
    return line


@pytest.mark.parametrize("foreground", [True, False], ids=["fg", "bg"])
@pytest.mark.parametrize("make", BAD_SOURCES,
                         ids=[f.__name__[4:] for f in BAD_SOURCES])
def test_bad_source_refused(nemo, make, foreground):
    src, want_offset = make(nemo)
    mnt = nemo.mkdir("mnt")
    res = nemo.expect_failure(src, mnt, foreground=foreground)
    line = check_one_line(res.stderr, src)
    if want_offset:
        assert OFFSET_RE.search(line), "no 'offset N' in: " + line
    if make is bad_gzip:
        assert "corrupt gzip data" in line.lower(), line
    assert not is_mounted(mnt)
    assert os.listdir(mnt) == []


def test_offset_points_into_the_archive(nemo):
    """The reported offset lies within the file (and at/after the header
    of the broken member)."""
    src, _ = bad_cut_in_data(nemo)
    ms_size = os.path.getsize(src)
    res = nemo.expect_failure(src, nemo.mkdir("mnt"))
    n = int(OFFSET_RE.search(res.stderr).group(0).split()[1])
    assert 1024 <= n <= ms_size + 100_000, res.stderr


@pytest.mark.parametrize("foreground", [True, False], ids=["fg", "bg"])
def test_missing_mountpoint(nemo, foreground):
    src = tarmaker.write_tar_entries(nemo.path("ok.tar"),
                                     [tarmaker.Entry("a", b"a")],
                                     tarfile.PAX_FORMAT)
    mnt = nemo.path("no-such-mountpoint")
    res = nemo.expect_failure(src, mnt, foreground=foreground)
    check_one_line(res.stderr, mnt)
    assert not os.path.exists(mnt)


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_unsafe_entries_left_out(nemo, fmt):
    arc = nemo.path("unsafe.tar")
    good = {"ok.txt": b"fine\n", "dir/good.bin": tarmaker.rand_bytes(3000, 5)}
    bad_names = ["/etc/nemockpt_abs_evil", "../dotdot_evil",
                 "a/../../dotdot_b", "./../dotdot_c", "dir/../../dotdot_d"]
    with tarfile.open(arc, "w", format=tarmaker.FORMATS[fmt]) as tf:
        tarmaker.write_raw_member(tf, "ok.txt", good["ok.txt"])
        for n in bad_names:
            tarmaker.write_raw_member(tf, n, b"EVIL-CONTENT\n")
        tarmaker.write_raw_member(tf, "symlink_to_passwd",
                                  type_=tarfile.SYMTYPE,
                                  linkname="/etc/passwd")
        tarmaker.write_raw_member(tf, "dir/symlink_relative",
                                  type_=tarfile.SYMTYPE,
                                  linkname="good.bin")
        tarmaker.write_raw_member(tf, "dir/good.bin", good["dir/good.bin"])
        tarmaker.write_raw_member(tf, "hardlink_to_ok",
                                  type_=tarfile.LNKTYPE, linkname="ok.txt")
        tarmaker.write_raw_member(tf, "dir/hardlink_abs",
                                  type_=tarfile.LNKTYPE,
                                  linkname="/etc/passwd")
    # The fixture really holds the names verbatim.
    names = [m.name for m in tarmaker.all_members(arc)]
    for n in bad_names:
        assert n in names, (n, names)
    with nemo.mount(arc) as mnt:
        raw = mnt / "raw"
        dirs, files, others = nemofs.walk_tree(raw)
        assert not others
        assert dirs == {"dir"}, dirs
        assert files == {k: len(v) for k, v in good.items()}, files
        for k, v in good.items():
            with open(raw / k, "rb") as f:
                assert f.read() == v
        for n in ("etc", "a", "dotdot_evil", "dotdot_b", "dotdot_c",
                  "symlink_to_passwd", "hardlink_to_ok"):
            nemofs.expect_errno(errno.ENOENT, os.lstat, raw / n)
        for n in ("dotdot_evil", "dotdot_b", "dotdot_d"):
            assert not (mnt / n).exists()
            assert not (mnt.parent / n).exists()
        info = nemofs.read_info(mnt)
        assert info["members"] == 2
        assert info["total_bytes"] == sum(len(v) for v in good.values())
        log = nemo.daemon(mnt).log()
    for marker in ("nemockpt_abs_evil", "dotdot_evil", "dotdot_b",
                   "dotdot_c", "dotdot_d", "symlink_to_passwd",
                   "symlink_relative", "hardlink_to_ok", "hardlink_abs"):
        assert marker in log, "no warning naming %s:\n%s" % (marker, log)


def test_cli_refuses_bad_sources(nemo):
    cli = nemofs.require_executable(nemofs.cli_bin(), "CLI")
    for make in (bad_missing, bad_random_bytes, bad_gzip, bad_cut_in_data):
        src, _ = make(nemo)
        res = nemo.run([cli, "members", "--json", str(src)])
        assert res.returncode != 0, (make.__name__, res.stdout)
        assert str(src) in res.stderr, (make.__name__, res.stderr)


def test_member_below_symlink_name_is_not_followed(nemo):
    """'link' -> /etc is left out; 'link/passwd' is an ordinary member whose
    parent is synthesised as a directory: it holds the archive's bytes."""
    arc = nemo.path("symdir.tar")
    payload = b"archive bytes, not /etc/passwd\n"
    with tarfile.open(arc, "w", format=tarfile.PAX_FORMAT) as tf:
        tarmaker.write_raw_member(tf, "link", type_=tarfile.SYMTYPE,
                                  linkname="/etc")
        tarmaker.write_raw_member(tf, "link/passwd", payload)
        tarmaker.write_raw_member(tf, "keep.txt", b"keep\n")
    with nemo.mount(arc) as mnt:
        raw = mnt / "raw"
        assert os.path.isdir(raw / "link") and not os.path.islink(raw / "link")
        assert os.listdir(raw / "link") == ["passwd"]
        with open(raw / "link" / "passwd", "rb") as f:
            assert f.read() == payload
        _, files, others = nemofs.walk_tree(raw)
        assert not others
        assert files == {"link/passwd": len(payload), "keep.txt": 5}
