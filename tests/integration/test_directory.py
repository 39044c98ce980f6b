"""Directory sources: NeMo 2 checkpoint dirs and extracted .nemo dirs."""

import errno
import json
import os
import stat


import nemofs
import tarmaker
from nemofs import assert_same_tree, check_info, expect_errno


def nemo2_entries():
    E = tarmaker.Entry
    rb, pb = tarmaker.rand_bytes, tarmaker.pattern_bytes
    e = [
        E("context", None, 0o755),
        E("context/io.json", pb(5000, "io")),
        E("context/model.yaml", pb(1500, "yaml")),
        E("context/nemo_tokenizer", None, 0o755),
        E("context/nemo_tokenizer/tokenizer.json", pb(20000, "tok")),
        E("context/nemo_tokenizer/special_tokens_map.json", b"{}\n"),
        E("weights", None, 0o755),
        E("weights/.metadata", rb(4321, 31)),
        E("weights/__0_0.distcp", rb(2 << 20, 32)),
        E("weights/__0_1.distcp", rb((2 << 20) + 1, 33)),
        E("weights/common.pt", rb(1000, 34)),
        E("weights/metadata.json", b'{"sharded_backend": "torch_dist"}\n'),
        E("weights/empty_shard", b""),
        E("weights/unused", None, 0o700),      # empty directory
        E("tools.sh", b"#!/bin/sh\n", 0o750),
    ]
    for i, ent in enumerate(e):
        ent.mtime = tarmaker.BASE_MTIME + 77 * (i + 1)
    return e


def extracted_nemo_entries():
    E = tarmaker.Entry
    rb, pb = tarmaker.rand_bytes, tarmaker.pattern_bytes
    return [
        E("model_config.yaml", pb(3000, "model_config")),
        E("model_weights.ckpt", rb((5 << 20) + 123, 41)),
        E("a1b2c3d4e5f6_tokenizer.model", rb(250_000, 42)),
        E("f00dfeed_vocab.txt", pb(80_000, "vocab")),
        E("empty.txt", b""),
    ]


def check_dir_mount(nemo, src, ignore_symlinks=False):
    src_files = {}
    with nemo.mount(src) as mnt:
        raw = mnt / "raw"
        dirs, files = assert_same_tree(raw, src,
                                       ref_ignores_symlinks=ignore_symlinks)
        uid, gid = os.getuid(), os.getgid()
        for rel in files:
            st, sst = os.stat(raw / rel), os.lstat(src / rel)
            assert st.st_size == sst.st_size
            assert int(st.st_mtime) == int(sst.st_mtime), rel
            assert stat.S_IMODE(st.st_mode) == nemofs.expected_file_mode(
                sst.st_mode), (rel, oct(st.st_mode), oct(sst.st_mode))
            assert (st.st_uid, st.st_gid) == (uid, gid)
            src_files[rel] = st.st_size
        for d in dirs | {""}:
            st = os.stat(raw / d)
            assert stat.S_IMODE(st.st_mode) == nemofs.expected_dir_mode(
                stat.S_IMODE(os.lstat(src / d).st_mode)), d
        check_info(mnt, src, "directory", files)
    return dirs, files


def test_nemo2_directory(nemo):
    src = tarmaker.write_tree(nemo.path("ckpt"), nemo2_entries())
    dirs, files = check_dir_mount(nemo, src)
    assert "weights/unused" in dirs
    assert "weights/empty_shard" in files


def test_extracted_nemo_directory(nemo):
    src = tarmaker.write_tree(nemo.path("extracted"),
                              extracted_nemo_entries())
    dirs, files = check_dir_mount(nemo, src)
    assert dirs == set()
    assert files["model_weights.ckpt"] == (5 << 20) + 123


def test_directory_source_from_extracted_tar_matches_tar_mount(nemo):
    """Mounting a .nemo tar and its extraction give the same raw/ tree."""
    entries = tarmaker.standard_entries()
    arc = tarmaker.write_tar_entries(nemo.path("m.nemo"), entries,
                                     tarmaker.FORMATS["pax"], prefix="./")
    ext = tarmaker.gnu_tar_extract(arc, nemo.path("ext"))
    with nemo.mount(arc) as mtar, nemo.mount(ext) as mdir:
        assert_same_tree(mtar / "raw", mdir / "raw")
        it, idir = nemofs.read_info(mtar), nemofs.read_info(mdir)
        assert it["members"] == idir["members"]
        assert it["total_bytes"] == idir["total_bytes"]


def test_symlinks_are_left_out(nemo, tmp_path):
    src = tarmaker.write_tree(nemo.path("ckpt"), nemo2_entries())
    outside = tmp_path / "outside_secret.txt"
    outside.write_bytes(b"top secret\n")
    os.symlink("/etc/passwd", src / "weights" / "passwd_link")
    os.symlink(str(outside), src / "context" / "secret_link")
    os.symlink("/etc", src / "context" / "etc_dir_link")
    os.symlink("model.yaml", src / "context" / "relative_link.yaml")
    os.symlink("../..", src / "weights" / "up_link")
    os.symlink("does/not/exist", src / "dangling_link")
    links = {"weights/passwd_link", "context/secret_link",
             "context/etc_dir_link", "context/relative_link.yaml",
             "weights/up_link", "dangling_link"}
    with nemo.mount(src) as mnt:
        raw = mnt / "raw"
        dirs, files, others = nemofs.walk_tree(raw)
        assert not others
        assert not (links & (dirs | set(files))), links & (dirs | set(files))
        for rel in links:
            assert os.path.basename(rel) not in os.listdir(
                raw / os.path.dirname(rel))
            expect_errno(errno.ENOENT, os.lstat, raw / rel)
            expect_errno(errno.ENOENT, open, raw / rel, "rb")
        # Nothing outside the source is reachable.
        for rel in files:
            with open(raw / rel, "rb") as f:
                body = f.read()
            assert b"top secret" not in body
            assert b"root:x:0:0" not in body
        info = nemofs.read_info(mnt)
        assert info["members"] == len(files)
    # And the rest is exactly the source minus the links.
    check_dir_mount(nemo, src, ignore_symlinks=True)


def test_cli_members_directory(nemo):
    src = tarmaker.write_tree(nemo.path("ckpt"), nemo2_entries())
    os.symlink("/etc/passwd", src / "weights" / "passwd_link")
    cli = nemofs.require_executable(nemofs.cli_bin(), "CLI (NEMOCKPT)")
    res = nemo.run([cli, "members", "--json", str(src)])
    assert res.returncode == 0, res.stderr
    got = {tarmaker.norm_member_name(e["path"].lstrip("/")): e["size"]
           for e in json.loads(res.stdout)}
    _, want, _ = nemofs.walk_tree(src)
    assert got == want


def test_special_files_left_out(nemo):
    """FIFOs, sockets and device nodes are not regular files: left out,
    and never opened (a FIFO would block)."""
    import socket
    src = tarmaker.write_tree(nemo.path("ckpt"), nemo2_entries())
    os.mkfifo(src / "weights" / "a_fifo")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(src / "context" / "a_socket"))
    finally:
        s.close()
    specials = {"weights/a_fifo", "context/a_socket"}
    if os.geteuid() == 0:
        os.mknod(src / "null_dev", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
        specials.add("null_dev")
    with nemo.mount(src) as mnt:
        dirs, files, others = nemofs.walk_tree(mnt / "raw")
        assert not others
        assert not (specials & (dirs | set(files)))
    check_dir_mount(nemo, src, ignore_symlinks=True)


def test_empty_directory_source(nemo):
    src = nemo.mkdir("empty_ckpt")
    with nemo.mount(src) as mnt:
        assert os.listdir(mnt / "raw") == []
        info = check_info(mnt, src, "directory", {})
        assert info["members"] == 0 and info["total_bytes"] == 0


def test_directory_source_trailing_slash_and_relative(nemo):
    src = tarmaker.write_tree(nemo.path("ckpt"), extracted_nemo_entries())
    with nemo.mount(str(src) + "/") as mnt:
        assert nemofs.read_info(mnt)["source"] == str(src)
        assert_same_tree(mnt / "raw", src)
    with nemo.mount(src.name, cwd=str(src.parent)) as mnt:
        assert nemofs.read_info(mnt)["source"] == str(src)
        assert_same_tree(mnt / "raw", src)
