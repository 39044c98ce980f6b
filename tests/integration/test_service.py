"""Service integration: systemd units verify, sd_notify readiness through a
socket the test owns, SIGTERM with files open, SIGHUP ignored."""

import os
import select
import shutil
import signal
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

import nemofs
import tarmaker
from nemofs import is_mounted

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def arc(nemo):
    return tarmaker.write_tar_entries(nemo.path("svc.tar"), tarmaker.standard_entries(),
                                      tarfile.PAX_FORMAT, prefix="./")


def _first_file(mnt):
    for root, _, files in os.walk(mnt / "raw"):
        for f in files:
            return Path(root) / f
    raise AssertionError("no file in the mount")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_units_verify(tmp_path):
    """Every unit passes systemd-analyze verify (man pages found through
    MANPATH, ExecStart pointing at the built daemon)."""
    units = tmp_path / "units"
    units.mkdir()
    man = tmp_path / "man"
    for sec, pages in (("man1", ["nemockpt.1"]), ("man8", ["nemockptfs.8", "mount.nemockpt.8"])):
        (man / sec).mkdir(parents=True)
        for p in pages:
            shutil.copy(REPO / "docs" / "man" / p, man / sec / p)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "mnt-model.env").write_text("SOURCE=/data/model.nemo\nNEMOCKPT_ARGS=-o allow_other\n")
    service = (REPO / "systemd" / "nemockpt@.service.in").read_text()
    service = (service.replace("@CMAKE_INSTALL_FULL_BINDIR@", os.path.dirname(nemofs.daemon_bin()))
                      .replace("@NCK_CONFDIR@", str(conf)))
    assert "@" not in service.replace("nemockpt@", "").replace("%i", ""), "unconfigured variable"
    (units / "nemockpt@.service").write_text(service)
    shutil.copy(units / "nemockpt@.service", units / "nemockpt@mnt-model.service")
    for u in ("mnt-model.mount", "mnt-model.automount"):
        shutil.copy(REPO / "systemd" / u, units / u)
    env = dict(os.environ, MANPATH=str(man), SYSTEMD_LOG_LEVEL="warning")
    for u in ("nemockpt@mnt-model.service", "mnt-model.mount", "mnt-model.automount"):
        r = subprocess.run(["systemd-analyze", "verify", str(units / u)], capture_output=True,
                           text=True, env=env, cwd=units, timeout=60)
        out = "\n".join(l for l in (r.stdout + r.stderr).splitlines()
                        if "/data" not in l and "Failed to prepare filesystem" not in l)
        assert r.returncode == 0 and not out.strip(), "%s:\n%s%s" % (u, r.stdout, r.stderr)


def test_notify_socket_receives_ready(nemo, arc, tmp_path):
    """With NOTIFY_SOCKET set (systemd Type=notify), the daemon sends
    READY=1 once the mount is live."""
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    try:
        env = nemofs.daemon_env({"NOTIFY_SOCKET": sock_path})
        d = nemo.start(arc, env=env)
        msgs = []
        while not any("READY=1" in m for m in msgs):
            r, _, _ = select.select([sock], [], [], 20)
            assert r, "no READY=1 on NOTIFY_SOCKET; got %r" % msgs
            msgs.append(sock.recv(4096).decode())
        assert is_mounted(d.mnt)
        assert any(m.startswith("STATUS=Reading") for m in msgs), msgs
        ready = next(m for m in msgs if "READY=1" in m)
        assert "STATUS=Serving" in ready, ready
        nemo.stop(d)
    finally:
        sock.close()


def test_notify_socket_abstract_namespace(nemo, arc):
    name = "@nemockpt-test-%d" % os.getpid()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    try:
        d = nemo.start(arc, env=nemofs.daemon_env({"NOTIFY_SOCKET": name}))
        got = ""
        while "READY=1" not in got:
            r, _, _ = select.select([sock], [], [], 20)
            assert r, "no READY=1 on the abstract socket"
            got += sock.recv(4096).decode()
        nemo.stop(d)
    finally:
        sock.close()


def test_sigterm_with_open_file_detaches_then_exits_zero(nemo, arc):
    """SIGTERM detaches the mount at once; the daemon exits 0 after the last
    open file is closed (test_lifecycle.py checks reads in between)."""
    d = nemo.start(arc)
    f = open(_first_file(d.mnt), "rb")
    try:
        f.read(16)
        d.proc.send_signal(signal.SIGTERM)
    finally:
        f.close()
    rc = nemo.signal_and_wait(d, 0)
    assert rc == 0
    assert not is_mounted(d.mnt)


def test_sighup_is_ignored(nemo, arc):
    d = nemo.start(arc)
    d.proc.send_signal(signal.SIGHUP)
    # Still serving: a fresh open and read go through the daemon.
    with open(_first_file(d.mnt), "rb") as f:
        assert f.read(1) is not None
    assert d.proc.poll() is None
    assert (d.mnt / "info.json").read_bytes().startswith(b"{")
    nemo.stop(d)


def test_notify_status_while_indexing_gzip(nemo, tmp_path):
    """A gzip archive large enough for progress output (64 MiB compressed)
    reports its index build as STATUS= lines before READY=1."""
    import gzip
    import io
    member = os.urandom(66 << 20)  # incompressible: the gzip file stays > 64 MiB
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("./model_weights.bin")
        ti.size = len(member)
        t.addfile(ti, io.BytesIO(member))
    src = tmp_path / "big.nemo"
    src.write_bytes(gzip.compress(raw.getvalue(), compresslevel=1))
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    try:
        d = nemo.start(src, "cache_dir=%s" % (tmp_path / "idx"),
                       env=nemofs.daemon_env({"NOTIFY_SOCKET": sock_path}))
        msgs = []
        while not any("READY=1" in m for m in msgs):
            r, _, _ = select.select([sock], [], [], 60)
            assert r, "no READY=1; got %r" % msgs
            msgs.append(sock.recv(4096).decode())
        ready = [i for i, m in enumerate(msgs) if "READY=1" in m][0]
        assert any(m.startswith("STATUS=Indexing") for m in msgs[:ready]), msgs
        nemo.stop(d)
    finally:
        sock.close()
