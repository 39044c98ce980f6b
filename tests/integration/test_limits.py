"""Memory bounded by the input (issue 12, finding 1): crafted metadata is
refused with one line naming the limit, quickly and within 256 MiB of RSS,
and an input just within the limits catalogs within the same bound.

The RSS bound is for an unsanitized build; under AddressSanitizer (its
shadow memory and quarantine) it is three times that."""

import json
import os
import shutil
import struct
import subprocess
import time

import pytest
import torch

import nemofs
from test_catalog import fixtures_dir  # noqa: F401 (session fixture)

MiB = 1 << 20


def _sanitized():
    out = subprocess.run(["ldd", nemofs.cli_bin()], capture_output=True, text=True).stdout
    return "libasan" in out


def _bound():
    return (3 if _sanitized() else 1) * 256 * MiB


def _write_st(d, n, name_len=0):
    """A safetensors file of n zero-size tensors (names padded to name_len)."""
    os.makedirs(d, exist_ok=True)
    parts = []
    for i in range(n):
        k = ("t%d." % i).ljust(name_len, "x") if name_len else "t%d" % i
        parts.append('"%s":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' % k)
    h = ("{" + ",".join(parts) + "}").encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
    return len(h)


_MEASURE = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
            "sys.stderr.buffer.write(r.stderr)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def _info(src):
    """nemockpt info SRC: (returncode, stderr, max RSS in bytes, seconds),
    measured by a fresh interpreter whose only child is nemockpt."""
    t0 = time.monotonic()
    res = subprocess.run(["/usr/bin/python3", "-c", _MEASURE, nemofs.cli_bin(), "info", str(src)],
                         capture_output=True, timeout=120)
    rc, rss = map(int, res.stdout.split())
    return rc, res.stderr.decode(), rss * 1024, time.monotonic() - t0


def _one_line(err, *words):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], err


def test_crafted_safetensors_header_refused(tmp_path):
    """89 MB header, 1.5 million zero-size tensors: was 2.7 GB and 26 s."""
    d = tmp_path / "big"
    hlen = _write_st(d, 1_500_000)
    assert 80 * MiB < hlen < 100_000_000
    rc, err, rss, secs = _info(d)
    assert rc != 0
    _one_line(err, "model.safetensors", "1500000 tensors", "65536")
    assert rss < _bound(), "RSS %d MiB" % (rss // MiB)
    assert secs < 30


def test_within_limits_catalogs_in_bounded_memory(tmp_path):
    """65536 tensors with 127-byte names (8 MiB of names): catalogs, the
    CLI and the daemon stay within the bound."""
    d = tmp_path / "max"
    _write_st(d, 65536, name_len=127)
    rc, err, rss, _ = _info(d)
    assert rc == 0, err
    assert rss < _bound(), "RSS %d MiB" % (rss // MiB)


@pytest.mark.nemo_timeout(120)
def test_daemon_within_limits(nemo, tmp_path):
    d = tmp_path / "max"
    _write_st(d, 65536, name_len=127)
    with nemo.mount(d) as mnt:
        json.loads((mnt / "info.json").read_bytes())
        assert len(os.listdir(mnt / "tensors")) == 65536
        with open("/proc/%d/status" % nemo.daemon(mnt).pid) as f:
            hwm = [l for l in f if l.startswith("VmHWM:")][0]
    assert int(hwm.split()[1]) * 1024 < _bound(), hwm


def test_one_tensor_too_many_refused(tmp_path):
    d = tmp_path / "over"
    _write_st(d, 65537)
    rc, err, _, _ = _info(d)
    assert rc != 0
    _one_line(err, "more than 65536 tensors", "refused")


def test_metadata_text_bounded(tmp_path):
    """90 MB of __metadata__ strings, or one 90 MB tensor name."""
    for name, hdr in (("meta", {"__metadata__": {"k%d" % i: "v" * MiB for i in range(90)},
                                "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}),
                      ("name", {"n" * (90 * MiB): {"dtype": "F32", "shape": [1],
                                                   "data_offsets": [0, 4]}})):
        d = tmp_path / name
        d.mkdir()
        h = json.dumps(hdr, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        (d / "model.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + bytes(4))
        rc, err, rss, _ = _info(d)
        assert rc != 0
        _one_line(err, "refused")
        assert rss < _bound(), (name, rss // MiB)


def test_pickle_with_millions_of_values_refused(tmp_path, fixtures_dir):
    """A state dict padded with 1.5 million ints (34 MB pickle)."""
    d = tmp_path / "pkl"
    shutil.copytree(fixtures_dir / "nemo1_single" / "ckpt", d)
    sd = torch.load(str(d / "model_weights.ckpt"))
    for i in range(1_500_000):
        sd["x%d" % i] = i
    torch.save(sd, str(d / "model_weights.ckpt"))
    rc, err, rss, _ = _info(d)
    assert rc != 0
    _one_line(err, "model_weights.ckpt", "pickle", "more than")
    assert rss < _bound(), "RSS %d MiB" % (rss // MiB)


def test_listing_with_too_many_members_refused(tmp_path):
    """A tar of 262,145 empty members (zarr-like listings): refused with one
    line, in bounded memory."""
    import tarfile
    p = tmp_path / "many.tar"
    with open(p, "wb") as f:
        for i in range((256 << 10) + 1):
            ti = tarfile.TarInfo("c/%d" % i)
            f.write(ti.tobuf(tarfile.USTAR_FORMAT))
        f.write(bytes(1024))
    rc, err, rss, _ = _info(p)
    assert rc != 0
    _one_line(err, "more than 262144 members", "refused")
    assert rss < _bound(), "RSS %d MiB" % (rss // MiB)
