"""Tar sources: every header format and producer mounts to the same tree.

Oracle: GNU ``tar -xf`` extracts each archive into a temp dir; the mount's
raw/ must match that tree byte for byte. Metadata (size, mtime, modes) is
checked against Python tarfile's view of the archive.
"""

import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

import nemofs
import tarmaker
from nemofs import (assert_same_tree, check_info, expected_dir_mode,
                    expected_file_mode)


def check_tar_mount(nemo, archive, *opts, ref=None):
    """Mount archive, compare with GNU tar's extraction and tarfile."""
    if ref is None:
        ref = tarmaker.gnu_tar_extract(archive, nemo.path("ref"))
    regular = tarmaker.member_table(archive)
    dir_members = {tarmaker.norm_member_name(m.name): m
                   for m in tarmaker.all_members(archive) if m.isdir()}
    with nemo.mount(archive, *opts) as mnt:
        top = set(os.listdir(mnt))
        assert {"info.json", "raw"} <= top, top
        raw = mnt / "raw"
        dirs, files = assert_same_tree(raw, ref)
        assert set(files) == set(regular), (
            sorted(set(files) ^ set(regular)))
        uid, gid = os.getuid(), os.getgid()
        for name, m in regular.items():
            st = os.stat(raw / name)
            assert stat.S_ISREG(st.st_mode), name
            assert st.st_size == m.size, name
            assert int(st.st_mtime) == int(m.mtime), (
                name, st.st_mtime, m.mtime)
            assert stat.S_IMODE(st.st_mode) == expected_file_mode(m.mode), (
                name, oct(st.st_mode), oct(m.mode))
            assert (st.st_uid, st.st_gid) == (uid, gid), name
        for d in dirs | {""}:
            st = os.stat(raw / d)
            assert stat.S_ISDIR(st.st_mode), d
            dm = dir_members[d].mode if d in dir_members and d != "" else None
            assert stat.S_IMODE(st.st_mode) == expected_dir_mode(dm), (
                d, oct(st.st_mode))
            assert (st.st_uid, st.st_gid) == (uid, gid), d
            if d in dir_members and d != "":
                assert int(st.st_mtime) == int(dir_members[d].mtime), d
        check_info(mnt, archive, "tar", files)
    return regular


FORMAT_IDS = ["pax", "gnu", "ustar"]


@pytest.mark.parametrize("prefix", ["", "./"], ids=["plain", "dotslash"])
@pytest.mark.parametrize("fmt", FORMAT_IDS)
def test_python_tarfile_formats(nemo, fmt, prefix):
    entries = tarmaker.standard_entries(long_names=(fmt != "ustar"))
    arc = tarmaker.write_tar_entries(nemo.path("model.tar"), entries,
                                     tarmaker.FORMATS[fmt], prefix=prefix)
    regular = check_tar_mount(nemo, arc)
    assert len(regular) == sum(1 for e in entries if not e.is_dir)


def test_ustar_prefix_field(nemo):
    """A 150-char path stored as ustar prefix + name."""
    entries = tarmaker.standard_entries(long_names=False)
    target = [e for e in entries
              if not e.is_dir and len(e.path) == 150]
    assert len(target) == 1
    arc = tarmaker.write_tar_entries(nemo.path("ustar.tar"), entries,
                                     tarfile.USTAR_FORMAT)
    m = [m for m in tarmaker.all_members(arc) if m.name == target[0].path]
    assert len(m) == 1
    # The fixture really uses the prefix field (no PAX/GNU long name).
    prefix = tarmaker.ustar_prefix_field(arc, m[0].offset)
    assert prefix and target[0].path.startswith(prefix.decode() + "/")
    with nemo.mount(arc) as mnt:
        with open(mnt / "raw" / target[0].path, "rb") as f:
            assert f.read() == target[0].data


@pytest.mark.parametrize("fmt", FORMAT_IDS)
def test_nemo_style_dot_root(nemo, fmt):
    """tar.add(tmpdir, arcname='.') -> './' root dir entry with mode 0700."""
    src = tarmaker.write_tree(nemo.path("src"), tarmaker.standard_entries(
        long_names=(fmt != "ustar")))
    arc = tarmaker.write_nemo_style_tar(nemo.path("nemo.tar"), src,
                                        tarmaker.FORMATS[fmt])
    first = tarmaker.all_members(arc)[0]
    assert first.name in (".", "./") and first.isdir()
    assert first.mode & 0o777 == 0o700
    check_tar_mount(nemo, arc)
    # The source dir itself is a second oracle (tar.add follows the tree).
    with nemo.mount(arc) as mnt:
        assert_same_tree(mnt / "raw", src)
        st = os.stat(mnt / "raw")
        assert stat.S_IMODE(st.st_mode) == 0o555


@pytest.mark.parametrize("dot", [True, False], ids=["dot", "names"])
@pytest.mark.parametrize("fmt", [None, "gnu", "posix", "ustar"],
                         ids=["default", "gnu", "posix", "ustar"])
def test_gnu_tar_created(nemo, fmt, dot):
    src = tarmaker.write_tree(nemo.path("src"), tarmaker.standard_entries(
        long_names=(fmt != "ustar")))
    arc = tarmaker.gnu_tar_create(nemo.path("gnu.tar"), src, fmt, dot=dot)
    check_tar_mount(nemo, arc)


@pytest.mark.parametrize("fmt", FORMAT_IDS)
def test_empty_archive(nemo, fmt):
    arc = tarmaker.write_empty_tar(nemo.path("empty.tar"),
                                   tarmaker.FORMATS[fmt])
    with nemo.mount(arc) as mnt:
        assert os.listdir(mnt / "raw") == []
        assert stat.S_ISDIR(os.stat(mnt / "raw").st_mode)
        info = check_info(mnt, arc, "tar", {})
        assert info["members"] == 0 and info["total_bytes"] == 0


@pytest.mark.parametrize("prefix", ["", "./"], ids=["plain", "dotslash"])
@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_no_parent_dir_entries(nemo, fmt, prefix):
    """Parents must be synthesised when the tar has no directory entries."""
    entries = tarmaker.standard_entries()
    arc = tarmaker.write_tar_entries(nemo.path("nodirs.tar"), entries,
                                     tarmaker.FORMATS[fmt], prefix=prefix,
                                     include_dirs=False)
    assert not any(m.isdir() for m in tarmaker.all_members(arc))
    # Oracle: GNU tar creates the parents too, but not empty dirs that have
    # no entry at all: build the expected tree from the file list.
    ref = tarmaker.gnu_tar_extract(arc, nemo.path("ref"))
    with nemo.mount(arc) as mnt:
        dirs, files = assert_same_tree(mnt / "raw", ref)
        assert "empty_dir" not in dirs
        assert "context/nemo_tokenizer" in dirs
        for d in dirs:
            assert stat.S_IMODE(os.stat(mnt / "raw" / d).st_mode) == 0o555


def test_many_small_files(nemo):
    entries = tarmaker.small_files_entries(n_dirs=30, per_dir=50)
    arc = tarmaker.write_tar_entries(nemo.path("small.tar"), entries,
                                     tarfile.PAX_FORMAT, prefix="./")
    regular = check_tar_mount(nemo, arc)
    assert len(regular) == 1500


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_large_flat_directory(nemo, fmt):
    """3000 entries in one directory: readdir needs many rounds."""
    names = ["tensor_%05d_%s.distcp" % (i, "x" * (i % 50)) for i in range(3000)]
    entries = [tarmaker.Entry("weights", None)]
    entries += [tarmaker.Entry("weights/" + n, n.encode()) for n in names]
    arc = tarmaker.write_tar_entries(nemo.path("flat.tar"), entries,
                                     tarmaker.FORMATS[fmt], prefix="./")
    with nemo.mount(arc) as mnt:
        d = mnt / "raw" / "weights"
        listed = os.listdir(d)
        assert len(listed) == len(names)
        assert set(listed) == set(names)
        with os.scandir(d) as it:
            seen = {e.name: e.is_file(follow_symlinks=False) for e in it}
        assert set(seen) == set(names) and all(seen.values())
        for n in names[::97]:
            with open(d / n, "rb") as f:
                assert f.read() == n.encode()


def test_cp_r_copy_is_identical(nemo):
    entries = tarmaker.standard_entries()
    arc = tarmaker.write_tar_entries(nemo.path("model.tar"), entries,
                                     tarfile.PAX_FORMAT, prefix="./")
    ref = tarmaker.gnu_tar_extract(arc, nemo.path("ref"))
    dest = nemo.path("copy")
    with nemo.mount(arc) as mnt:
        r = subprocess.run(["cp", "-r", str(mnt / "raw"), str(dest)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    assert_same_tree(dest, ref)


def test_pax_headers_unicode_and_fractional_mtime(nemo):
    """Global PAX header, per-member records, sub-second mtime."""
    arc = nemo.path("pax.tar")
    files = {
        "ünï/cödé_名前.bin": tarmaker.rand_bytes(3000, 11),
        "plain.txt": b"plain\n",
        "x" * 200 + "/y.bin": tarmaker.rand_bytes(700, 12),
    }
    with tarfile.open(arc, "w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global header"}) as tf:
        for i, (name, data) in enumerate(sorted(files.items())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = tarmaker.BASE_MTIME + i + 0.25
            ti.pax_headers = {"comment": "member %d" % i}
            tf.addfile(ti, io.BytesIO(data))
    check_tar_mount(nemo, arc)


def test_relative_source_path(nemo):
    entries = tarmaker.standard_entries(long_names=False)
    arc = tarmaker.write_tar_entries(nemo.path("rel.tar"), entries,
                                     tarfile.GNU_FORMAT)
    with nemo.mount(arc.name, cwd=str(arc.parent)) as mnt:
        info = nemofs.read_info(mnt)
        assert info["source"] == str(arc), info
        assert info["container"] == "tar"
        assert os.path.getsize(mnt / "raw" / "weights" / "__0_0.distcp") \
            == 300_000


def _cli_members(nemo, src):
    cli = nemofs.require_executable(nemofs.cli_bin(), "CLI (NEMOCKPT)")
    res = nemo.run([cli, "members", "--json", str(src)])
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert isinstance(data, list)
    out = {}
    for ent in data:
        assert {"path", "size", "offset"} <= set(ent), ent
        p = tarmaker.norm_member_name(ent["path"].lstrip("/"))
        assert p not in out, "duplicate path %r" % p
        out[p] = ent
    return out


@pytest.mark.parametrize("kind", ["pax", "gnu", "ustar", "gnutar-posix",
                                  "gnutar-gnu"])
def test_cli_members_offsets(nemo, kind):
    """`nemockpt members --json` offsets equal tarfile's offset_data."""
    long_names = kind not in ("ustar",)
    entries = tarmaker.standard_entries(long_names=long_names)
    if kind.startswith("gnutar-"):
        src = tarmaker.write_tree(nemo.path("src"), entries)
        arc = tarmaker.gnu_tar_create(nemo.path("a.tar"), src,
                                      kind.split("-")[1])
    else:
        arc = tarmaker.write_tar_entries(nemo.path("a.tar"), entries,
                                         tarmaker.FORMATS[kind], prefix="./")
    table = tarmaker.member_table(arc)
    got = _cli_members(nemo, arc)
    assert set(got) == set(table), sorted(set(got) ^ set(table))
    for name, m in table.items():
        assert got[name]["size"] == m.size, name
        assert got[name]["offset"] == m.offset_data, (
            name, got[name]["offset"], m.offset_data)


def test_project_sample_checkpoint(nemo):
    """The repository's sample .nemo (tests/fixtures/make_sample.py)."""
    script = nemofs.REPO / "tests" / "fixtures" / "make_sample.py"
    if not script.exists():
        pytest.skip("tests/fixtures/make_sample.py not present")
    out = nemo.path("sample.nemo")
    r = subprocess.run(["/usr/bin/python3", str(script), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    regular = check_tar_mount(nemo, out)
    assert any(n.endswith("model_config.yaml") for n in regular)


def test_duplicates_and_unnormalised_names_match_gnu_tar(nemo):
    """Repeated members (the last one wins, as with tar -x) and names with
    '//' or '/./' components."""
    arc = nemo.path("dups.tar")
    with tarfile.open(arc, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in [("dup.bin", b"first"), ("./dup.bin", b"second!"),
                           ("d//e/./f.bin", b"fff"), ("d/e/g.bin", b"g"),
                           ("./d/e/f2.bin", b"f2")]:
            tarmaker.write_raw_member(tf, name, data)
    ref = tarmaker.gnu_tar_extract(arc, nemo.path("ref"))
    with nemo.mount(arc) as mnt:
        assert_same_tree(mnt / "raw", ref)
        with open(mnt / "raw" / "dup.bin", "rb") as f:
            assert f.read() == b"second!"
        info = nemofs.read_info(mnt)
        assert info["members"] == 4


@pytest.mark.parametrize("fmt", ["pax", "gnu", "ustar"])
def test_special_members_left_out(nemo, fmt):
    arc = nemo.path("special.tar")
    with tarfile.open(arc, "w", format=tarmaker.FORMATS[fmt]) as tf:
        tarmaker.write_raw_member(tf, "model_config.yaml", b"a: 1\n")
        for name, ty in [("fifo_member", tarfile.FIFOTYPE),
                         ("chr_member", tarfile.CHRTYPE),
                         ("blk_member", tarfile.BLKTYPE)]:
            tarmaker.write_raw_member(tf, "dev/" + name, type_=ty)
        tarmaker.write_raw_member(tf, "weights/w.bin", b"w" * 1000)
    with nemo.mount(arc) as mnt:
        dirs, files, others = nemofs.walk_tree(mnt / "raw")
        assert not others
        assert files == {"model_config.yaml": 5, "weights/w.bin": 1000}
        log = nemo.daemon(mnt).log()
    for name in ("fifo_member", "chr_member", "blk_member"):
        assert name in log, "no warning naming %s:\n%s" % (name, log)


def _unicode_archive(nemo, fmt):
    arc = nemo.path("unicode.tar")
    with tarfile.open(arc, "w", format=tarmaker.FORMATS[fmt]) as tf:
        tarmaker.write_raw_member(tf, "ünï/名前.txt", b"abc")
        tarmaker.write_raw_member(tf, "ascii.txt", b"plain")
        # A non-UTF-8 byte (0xE9) kept as is (PAX: hdrcharset=BINARY).
        tarmaker.write_raw_member(tf, "latin1_\udce9.bin", b"x")
    return arc


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_non_ascii_names_in_any_locale(nemo, fmt, locale):
    arc = _unicode_archive(nemo, fmt)
    env = nemofs.daemon_env({"LC_ALL": locale, "LANG": locale})
    with nemo.mount(arc, env=env) as mnt:
        raw = os.fsencode(str(mnt / "raw"))
        names = set(os.listdir(raw))
        assert names == {"ünï".encode(), b"ascii.txt", b"latin1_\xe9.bin"}
        with open(os.path.join(raw, "ünï/名前.txt".encode()), "rb") as f:
            assert f.read() == b"abc"
        with open(os.path.join(raw, b"latin1_\xe9.bin"), "rb") as f:
            assert f.read() == b"x"


@pytest.mark.parametrize("fmt", ["pax", "gnu", "ustar"])
def test_clean_archive_mounts_without_warnings(nemo, fmt):
    """Nothing is left out of a well-formed archive, so nothing to warn
    about (warnings are for left-out members and ignored options)."""
    entries = tarmaker.standard_entries(long_names=(fmt != "ustar"))
    arc = tarmaker.write_tar_entries(nemo.path("clean.tar"), entries,
                                     tarmaker.FORMATS[fmt], prefix="./")
    with nemo.mount(arc) as mnt:
        assert os.listdir(mnt / "raw")
        log = nemo.daemon(mnt).log()
    # The members are stand-ins (a metadata.json of random bytes), so the
    # tensor catalog may say it has nothing to show; the tar layer must not warn.
    log = "\n".join(l for l in log.splitlines() if "no tensor views" not in l)
    assert log.strip() == "", "unexpected daemon stderr:\n" + log


def _lenient_end(path, how, last):
    end = last.offset_data + ((last.size + 511) // 512) * 512
    if how == "no_eof_blocks":
        os.truncate(path, end)
    elif how == "one_zero_block":
        os.truncate(path, end + 512)
    elif how == "trailing_garbage":
        with open(path, "ab") as f:
            f.write(tarmaker.rand_bytes(3000, 77))
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", ["no_eof_blocks", "one_zero_block",
                                 "trailing_garbage"])
def test_archive_end_variants_accepted(nemo, how):
    """Endings GNU tar accepts: the mount must show every member."""
    entries = tarmaker.standard_entries(long_names=False)
    arc = tarmaker.write_tar_entries(nemo.path("end.tar"), entries,
                                     tarfile.GNU_FORMAT)
    last = max(tarmaker.all_members(arc), key=lambda m: m.offset)
    _lenient_end(arc, how, last)
    check_tar_mount(nemo, arc)
