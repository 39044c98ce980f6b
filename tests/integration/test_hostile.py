"""Hostile inputs of issue 12: forged log lines (finding 9), pickles that
name globals outside the weights-only set (7), duplicate members (6).

Oracles: torch.load(weights_only=True) (Debian's torch) for the pickles,
GNU tar -x for which duplicate member wins, the bytes the test wrote."""

import io
import os
import shutil
import subprocess
import tarfile

import pytest
import torch

import nemofs
import tarmaker
from test_catalog import fixtures_dir  # noqa: F401 (session fixture)

FORGED = "nemockpt: error: FORGED LINE"
EVIL = "evil\n" + FORGED + "\x1b[31m\r\x07"


def cli(*args):
    return subprocess.run([nemofs.cli_bin(), *map(str, args)], capture_output=True,
                          timeout=120)


def _no_forgery(text):
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text, repr(text)
    for line in text.splitlines():
        assert not line.startswith(FORGED), repr(text)


def _evil_tar(path):
    """A tar whose symlink member (left out, with a warning naming it) has a
    name holding a newline, a forged log line and terminal escapes."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("ok.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
        ti = tarfile.TarInfo(EVIL)
        ti.type = tarfile.SYMTYPE
        ti.linkname = "ok.txt"
        tf.addfile(ti)
    return path


@pytest.mark.allow_stderr(r"warning")
def test_logged_member_names_escaped(nemo):
    p = _evil_tar(nemo.path("evil.tar"))
    res = cli("info", p)
    err = res.stderr.decode("utf-8", "replace")
    assert "evil" in err, err  # the warning is there, named
    _no_forgery(err)
    with nemo.mount(p) as mnt:
        assert (mnt / "raw" / "ok.txt").read_bytes() == b"abc"
        log = nemo.daemon(mnt).log()
    assert "evil" in log, log
    _no_forgery(log)


def test_calib_error_does_not_echo_content(nemo, fixtures_dir):
    src = fixtures_dir / "nemo1_single" / "nemo1_single.nemo"
    calib = nemo.path("calib.json")
    calib.write_text("SECRET-TOKEN-1234 root:$6$hash\n")
    res = nemo.expect_failure(src, nemo.mkdir(), "calib=" + str(calib))
    assert "calib" in res.stderr, res.stderr
    assert "SECRET" not in res.stderr and "root:" not in res.stderr, res.stderr
    res = cli("get", "-o", "calib=" + str(calib), src, "info.json")
    err = res.stderr.decode()
    assert res.returncode != 0 and "SECRET" not in err and "root:" not in err, err


# ---- pickles (finding 7) ---------------------------------------------------


class _Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def _hostile_ckpt(nemo, fixtures_dir, fn, tarball):
    """nemo1_single with model_weights.ckpt re-saved with one more entry
    whose unpickling would call fn("true")."""
    src = fixtures_dir / "nemo1_single" / "ckpt"
    d = nemo.path("hostile")
    shutil.copytree(src, d)
    sd = torch.load(str(d / "model_weights.ckpt"))
    sd["payload"] = _Evil(fn, "true")
    torch.save(sd, str(d / "model_weights.ckpt"))
    with pytest.raises(Exception):
        torch.load(str(d / "model_weights.ckpt"), weights_only=True)  # the oracle refuses it
    if not tarball:
        return d
    t = nemo.path("hostile.nemo")
    with tarfile.open(t, "w") as tf:
        for name in sorted(os.listdir(d)):
            tf.add(d / name, arcname="./" + name)
    return t


@pytest.mark.allow_stderr(r"not allowed")
@pytest.mark.parametrize("fn,shown", [(os.system, "posix.system"),
                                      (eval, "builtins.eval")])
@pytest.mark.parametrize("tarball", [False, True])
def test_pickle_global_refused(nemo, fixtures_dir, fn, shown, tarball):
    p = _hostile_ckpt(nemo, fixtures_dir, fn, tarball)
    res = cli("info", p)
    err = res.stderr.decode()
    assert res.returncode != 0, err
    lines = [l for l in err.splitlines() if shown in l]
    assert len(lines) == 1 and "model_weights.ckpt" in lines[0], err
    # The daemon refuses the file (no tensor views, raw/ only) with one
    # warning naming the global.
    with nemo.mount(p) as mnt:
        assert not (mnt / "merged").exists()
        assert (mnt / "raw" / "model_weights.ckpt").stat().st_size > 0
        log = nemo.daemon(mnt).log()
    assert len([l for l in log.splitlines() if shown in l]) == 1, log


def test_pickle_allowed_globals_still_load(fixtures_dir):
    """Every fixture written by real torch (state dicts, Megatron args,
    DCP metadata, BytesIO extra states) still catalogs."""
    for name in ("nemo1_single", "nemo1_tp2pp2", "nemo1_dist_torch", "nemo2",
                 "megatron_iter", "megatron_release_legacy", "asr_single"):
        d = fixtures_dir / name / "ckpt"
        assert d.is_dir(), d
        res = cli("info", d)
        assert res.returncode == 0, (name, res.stderr.decode())


# ---- duplicate members (finding 6) -----------------------------------------


def _dup_tar(path, name, first, second):
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for data in (first, second):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


@pytest.mark.allow_stderr(r"duplicate")
def test_duplicate_member_last_wins_with_warning(nemo, tmp_path):
    p = _dup_tar(nemo.path("dup.tar"), "notes/a.txt", b"first" * 10, b"second" * 7)
    out = tmp_path / "x"
    tarmaker.gnu_tar_extract(p, out)
    want = (out / "notes" / "a.txt").read_bytes()
    assert want == b"second" * 7  # the oracle: tar -x keeps the last
    res = cli("info", p)
    err = res.stderr.decode()
    assert "duplicate" in err and "notes/a.txt" in err, err
    with nemo.mount(p) as mnt:
        assert (mnt / "raw" / "notes" / "a.txt").read_bytes() == want
        assert "notes/a.txt" in nemo.daemon(mnt).log()


@pytest.mark.allow_stderr(r"duplicate")
def test_duplicate_config_same_in_every_layer(nemo, fixtures_dir, tmp_path):
    """A .nemo with two model_config.yaml members: raw/, merged/ and the
    nemo/ view's config all come from the last (tar -x's) one."""
    src = fixtures_dir / "nemo1_single" / "nemo1_single.nemo"
    p = nemo.path("dup.nemo")
    shutil.copy(src, p)
    with tarfile.open(src) as tf:
        m = [x for x in tf.getmembers() if x.name.endswith("model_config.yaml")][0]
        cfg = tf.extractfile(m).read()
    second = cfg + b"# the second copy\n"
    with tarfile.open(p, "a") as tf:
        ti = tarfile.TarInfo(m.name)
        ti.size = len(second)
        tf.addfile(ti, io.BytesIO(second))
    out = tmp_path / "x"
    tarmaker.gnu_tar_extract(p, out)
    want = (out / tarmaker.norm_member_name(m.name)).read_bytes()
    assert want == second
    with nemo.mount(p) as mnt:
        assert (mnt / "raw" / "model_config.yaml").read_bytes() == want
        assert (mnt / "merged" / "model_config.yaml").read_bytes() == want
        log = nemo.daemon(mnt).log()
    assert len([l for l in log.splitlines() if "duplicate member" in l]) == 1, log
