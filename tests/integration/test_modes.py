"""File modes (issue 12, finding 3): the source's permission bits with the
write bits cleared, as squashfuse shows them; views take the most
restrictive mode of the files they are computed from; -o umask= still
overrides. The oracle is os.stat / the tar headers."""

import errno
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile

import pytest

from test_catalog import fixtures_dir  # noqa: F401 (session fixture)


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def _read_as_nobody(path):
    code = ("import os,sys\n"
            "try:\n"
            "    open(sys.argv[1],'rb').read(1); print('OK')\n"
            "except OSError as e:\n"
            "    print('ERRNO', e.errno)\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code, str(path)],
                       user=65534, group=65534, extra_groups=[],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def _ckpt(nemo, fixtures_dir, weights_mode):
    d = nemo.path("ckpt")
    shutil.copytree(fixtures_dir / "nemo1_single" / "ckpt", d)
    os.chmod(d, 0o755)
    os.chmod(d / "model_weights.ckpt", weights_mode)
    os.chmod(d / "model_config.yaml", 0o644)
    extra = d / "run.sh"
    extra.write_bytes(b"#!/bin/sh\n")
    os.chmod(extra, 0o750)
    return d


def test_directory_source_modes_kept(nemo, fixtures_dir):
    d = _ckpt(nemo, fixtures_dir, 0o600)
    with nemo.mount(d) as mnt:
        for name in ("model_weights.ckpt", "model_config.yaml", "run.sh"):
            assert _mode(mnt / "raw" / name) == _mode(d / name) & 0o555, name
        assert _mode(mnt / "raw") == 0o555
        # views are computed from the 0600 weights: 0400
        assert _mode(mnt / "merged" / "model.safetensors") == 0o400
        npy = sorted(os.listdir(mnt / "tensors"))[0]
        assert _mode(mnt / "tensors" / npy) == 0o400
        assert _mode(mnt / "info.json") == 0o400
        # the config copy in merged/ keeps its own member's mode
        assert _mode(mnt / "merged" / "model_config.yaml") == 0o444


def test_tar_member_modes_kept(nemo):
    p = nemo.path("modes.tar")
    modes = {"secret.bin": 0o600, "group.txt": 0o640, "tool": 0o755, "pub.txt": 0o644}
    with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("sub")
        ti.type, ti.mode = tarfile.DIRTYPE, 0o700
        tf.addfile(ti)
        for name, m in modes.items():
            ti = tarfile.TarInfo("sub/" + name)
            ti.size, ti.mode = 3, m
            tf.addfile(ti, io.BytesIO(b"abc"))
    with tarfile.open(p) as tf:
        want = {m.name: m.mode & 0o555 for m in tf.getmembers()}
    with nemo.mount(p) as mnt:
        for name, m in want.items():
            assert _mode(mnt / "raw" / name) == m, (name, oct(m))
    with nemo.mount(p, "umask=022") as mnt:
        # an explicit umask overrides the source's bits, as before
        assert _mode(mnt / "raw" / "sub" / "secret.bin") == 0o444
        assert _mode(mnt / "raw" / "sub" / "tool") == 0o555
        assert _mode(mnt / "raw" / "sub") == 0o555


def test_archive_file_mode_restricts(nemo):
    """A 0600 .nemo: nothing in it is shown wider than its file."""
    p = nemo.path("private.tar")
    with tarfile.open(p, "w") as tf:
        ti = tarfile.TarInfo("pub.txt")
        ti.size, ti.mode = 3, 0o644
        tf.addfile(ti, io.BytesIO(b"abc"))
    os.chmod(p, 0o600)
    with nemo.mount(p) as mnt:
        assert _mode(mnt / "raw" / "pub.txt") == 0o400
        assert _mode(mnt / "raw") == 0o500


@pytest.mark.needs_root
def test_private_file_not_readable_by_others(nemo, fixtures_dir):
    d = _ckpt(nemo, fixtures_dir, 0o600)
    mnt = tempfile.mkdtemp(prefix="nemockpt-mnt-", dir="/tmp")
    os.chmod(mnt, 0o755)
    # a path other users can traverse to the source is not needed: the
    # daemon (root) reads it; only the mount's modes decide
    try:
        with nemo.mount(d, "allow_other", "default_permissions", mnt=mnt) as m:
            assert _read_as_nobody(m / "raw" / "model_weights.ckpt") == \
                "ERRNO %d" % errno.EACCES
            assert _read_as_nobody(m / "merged" / "model.safetensors") == \
                "ERRNO %d" % errno.EACCES
            assert _read_as_nobody(m / "raw" / "model_config.yaml") == "OK"
            with open(m / "raw" / "model_weights.ckpt", "rb") as f:
                assert f.read(3)  # root still reads it
    finally:
        os.rmdir(mnt)
