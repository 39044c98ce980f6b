"""gzip-compressed tarballs (.nemo of NeMo <= 1.6, .qnemo of NeMo 2.0-2.1):
mounted through a persisted seek index.

Oracles: `tar -xzf`, Python's tarfile/gzip. The daemon is started with
NEMOCKPT_GZ_SPACING set small, so that a few MiB give many checkpoints;
indexes go to the suite's private $XDG_CACHE_HOME (conftest.py)."""

import gzip
import json
import io
import os
import random
import re
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

import nemofs

SPACING = 256 << 10
OFFSET_RE = re.compile(r"offset \d+")


def env(**extra):
    return nemofs.daemon_env(dict({"NEMOCKPT_GZ_SPACING": str(SPACING)}, **extra))


def mixed(n, seed):
    """n bytes alternating incompressible and compressible 64 KiB runs."""
    rnd = random.Random(seed)
    out = bytearray()
    words = [bytes(rnd.choice(b"abcdefghij ") for _ in range(rnd.randint(2, 9)))
             for _ in range(200)]
    while len(out) < n:
        if rnd.random() < 0.5:
            out += rnd.randbytes(65536)
        else:
            run = bytearray()
            while len(run) < 65536:
                run += rnd.choice(words)
            out += run
    return bytes(out[:n])


def make_tree(root: Path, big=6 << 20):
    files = {
        "model_config.yaml": b"target: nemo.collections.asr.models.EncDecCTCModel\n",
        "model_weights.ckpt": mixed(big, 1),
        "sub/dir/a.txt": b"hello\n" * 1000,
        "sub/empty.bin": b"",
        "tokenizer/vocab.txt": mixed(300_000, 2),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def archive(tree: Path, out: Path, how: str) -> Path:
    if how == "tar-czf":
        subprocess.run(["tar", "-czf", str(out), "-C", str(tree), "."], check=True)
        return out
    fmt = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT}[how]
    with tarfile.open(out, "w:gz", format=fmt) as tf:
        tf.add(str(tree), arcname=".")
    return out


def oracle_extract(arc: Path, dest: Path) -> Path:
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(arc), "-C", str(dest)], check=True)
    return dest


def gzinfo(mnt):
    info = nemofs.read_info(mnt)
    assert info["container"] == "tar.gz", info
    return info["gzip"]


@pytest.mark.parametrize("how", ["pax", "gnu", "tar-czf"])
def test_every_file_equals_tar_xzf(nemo, how):
    tree = nemo.mkdir("tree")
    make_tree(tree)
    arc = archive(tree, nemo.path("model.nemo"), how)
    ref = oracle_extract(arc, nemo.path("ref"))
    with nemo.mount(arc, env=env()) as mnt:
        nemofs.assert_same_tree(mnt / "raw", ref)
        g = gzinfo(mnt)
        assert g["index"] == "built" and g["index_builds"] == 1, g
        assert g["checkpoints"] >= 8, g
        assert os.path.isfile(g["index_path"]), g


def test_random_ranges_16_threads(nemo):
    """Random reads (1 B .. 4 MiB) from 16 threads over a ~40 MiB member."""
    data = mixed(40 << 20, 7)
    arc = nemo.path("big.nemo")
    with tarfile.open(arc, "w:gz", compresslevel=6) as tf:
        ti = tarfile.TarInfo("./model_weights.ckpt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    # The oracle is Python's tarfile over the gzip stream.
    with tarfile.open(arc, "r:gz") as tf:
        assert tf.extractfile("./model_weights.ckpt").read() == data
    errors = []
    with nemo.mount(arc, env=env(NEMOCKPT_GZ_SPACING=str(1 << 20))) as mnt:
        assert gzinfo(mnt)["checkpoints"] >= 20
        path = mnt / "raw" / "model_weights.ckpt"

        def worker(seed):
            rnd = random.Random(seed)
            fd = os.open(path, os.O_RDONLY)
            try:
                for _ in range(12):
                    n = rnd.choice([1, 7, 4096, 65537, 1 << 20, 4 << 20])
                    off = rnd.randrange(0, len(data))
                    got = nemofs.pread_all(fd, n, off)
                    if got != data[off:off + n]:
                        errors.append((off, n))
            except OSError as e:
                errors.append(str(e))
            finally:
                os.close(fd)

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert not errors, errors[:5]


def _build_once(nemo, arc):
    with nemo.mount(arc, env=env()) as mnt:
        g = gzinfo(mnt)
    assert g["index"] == "built" and g["index_builds"] == 1, g
    return g


def test_second_mount_reuses_index_also_when_moved(nemo):
    tree = nemo.mkdir("tree")
    files = make_tree(tree)
    arc = archive(tree, nemo.path("model.nemo"), "pax")
    first = _build_once(nemo, arc)
    with nemo.mount(arc, env=env()) as mnt:
        g = gzinfo(mnt)
        assert (mnt / "raw" / "model_weights.ckpt").read_bytes() == files["model_weights.ckpt"]
    assert g["index"] == "loaded" and g["index_builds"] == 0, g
    assert g["index_path"] == first["index_path"] and g["checkpoints"] == first["checkpoints"]
    # No tar walk either: the member table came from the cache. The only
    # chunks inflated are the few holding what the tensor catalog reads
    # (model_config.yaml, the tokenizer, the end of model_weights.ckpt).
    assert g["member_table"] == "loaded", g
    assert g["chunks_inflated_at_mount"] <= 3 < g["checkpoints"], g
    # Renamed into another directory, and copied: same content, same index.
    moved = nemo.mkdir("elsewhere") / "renamed.nemo"
    os.rename(arc, moved)
    copy = nemo.path("copy.nemo")
    shutil.copyfile(moved, copy)
    for src in (moved, copy):
        with nemo.mount(src, env=env()) as mnt:
            g = gzinfo(mnt)
            assert (mnt / "raw" / "sub/dir/a.txt").read_bytes() == files["sub/dir/a.txt"]
        assert g["index"] == "loaded" and g["index_builds"] == 0, (src, g)


def test_damaged_member_table_means_a_tar_walk(nemo):
    """A member table that does not check out is never trusted: the tar is
    walked again (with a warning) and the files are still right."""
    tree = nemo.mkdir("tree")
    files = make_tree(tree)
    arc = archive(tree, nemo.path("model.nemo"), "pax")
    first = _build_once(nemo, arc)
    table = Path(first["index_path"] + ".members")
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0x40
    table.write_bytes(bytes(data))
    with nemo.mount(arc, env=env()) as mnt:
        g = gzinfo(mnt)
        for rel, want in files.items():
            assert (mnt / "raw" / rel).read_bytes() == want, rel
        log = nemo.daemon(mnt).log()
    assert g["index"] == "loaded" and g["member_table"] == "walked", g
    assert "member table does not check out" in log, log


def test_modified_archive_is_reindexed(nemo):
    tree = nemo.mkdir("tree")
    files = make_tree(tree)
    arc = archive(tree, nemo.path("model.nemo"), "gnu")
    first = _build_once(nemo, arc)
    # Appending a gzip member keeps a valid (multi-member) stream.
    with open(arc, "ab") as f:
        f.write(gzip.compress(b"\0" * 10240))
    with nemo.mount(arc, env=env()) as mnt:
        g = gzinfo(mnt)
        nemofs.assert_same_tree(mnt / "raw", oracle_extract(arc, nemo.path("ref")))
    assert g["index"] == "built" and g["index_builds"] == 1, g
    assert g["index_path"] != first["index_path"]
    # Same size, changed head: the gzip header's MTIME field.
    data = bytearray(arc.read_bytes())
    data[4:8] = b"\x01\x02\x03\x04"
    arc.write_bytes(bytes(data))
    with nemo.mount(arc, env=env()) as mnt:
        g2 = gzinfo(mnt)
        assert (mnt / "raw" / "model_weights.ckpt").read_bytes() == files["model_weights.ckpt"]
    assert g2["index"] == "built" and g2["index_builds"] == 1, g2


def _flip(p: Path, off: int):
    data = bytearray(p.read_bytes())
    data[off] ^= 0x55
    p.write_bytes(bytes(data))


DAMAGES = {
    "payload_byte": lambda p: _flip(p, p.stat().st_size - 100),
    "header_byte": lambda p: _flip(p, 30),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(os.urandom(5000)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_index_is_rebuilt_with_a_warning(nemo, damage):
    tree = nemo.mkdir("tree")
    files = make_tree(tree, big=2 << 20)
    arc = archive(tree, nemo.path("model.nemo"), "pax")
    first = _build_once(nemo, arc)
    DAMAGES[damage](Path(first["index_path"]))
    with nemo.mount(arc, env=env()) as mnt:
        g = gzinfo(mnt)
        assert (mnt / "raw" / "model_weights.ckpt").read_bytes() == files["model_weights.ckpt"]
        log = nemo.daemon(mnt).log()
    assert g["index"] == "built" and g["index_builds"] == 1, g
    assert "warning" in log and "rebuilding" in log, log
    # ... and the rebuilt index is good again.
    with nemo.mount(arc, env=env()) as mnt:
        assert gzinfo(mnt)["index"] == "loaded"


@pytest.mark.parametrize("where", ["middle", "truncated"])
def test_corrupt_gzip_stream_refused_with_offset(nemo, where):
    tree = nemo.mkdir("tree")
    make_tree(tree, big=1 << 20)
    arc = archive(tree, nemo.path("model.nemo"), "pax")
    data = bytearray(arc.read_bytes())
    if where == "middle":
        mid = len(data) // 2
        data[mid:mid + 16] = bytes(b ^ 0xa5 for b in data[mid:mid + 16])
    else:
        del data[len(data) * 2 // 3:]
    arc.write_bytes(bytes(data))
    mnt = nemo.mkdir("mnt")
    res = nemo.expect_failure(arc, mnt)
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("nemockptfs: %s: offset " % arc), lines[0]
    assert "corrupt gzip data" in lines[0], lines[0]
    assert not nemofs.is_mounted(mnt)


@pytest.mark.allow_stderr("read of inode")
def test_damage_found_after_indexing_gives_eio_for_that_range_only(nemo):
    """The index is cached; then a byte in the middle of the compressed
    data changes (size, head and tail kept): the fingerprint still matches,
    the cached index is used, reads of the damaged chunk fail with EIO and
    the rest of the archive reads fine."""
    before = mixed(3 << 20, 11)
    victim = mixed(3 << 20, 12)
    after = mixed(3 << 20, 13)
    arc = nemo.path("model.nemo")
    with tarfile.open(arc, "w:gz") as tf:
        for name, d in (("a.bin", before), ("victim.bin", victim), ("z.bin", after)):
            ti = tarfile.TarInfo(name)
            ti.size = len(d)
            tf.addfile(ti, io.BytesIO(d))
    _build_once(nemo, arc)
    size = arc.stat().st_size
    _flip(arc, size // 2)       # inside victim.bin's compressed bytes
    assert arc.stat().st_size == size
    with nemo.mount(arc, env=env()) as mnt:
        g = gzinfo(mnt)
        assert g["index"] == "loaded", g
        assert (mnt / "raw" / "a.bin").read_bytes() == before
        assert (mnt / "raw" / "z.bin").read_bytes() == after
        nemofs.expect_errno(5, (mnt / "raw" / "victim.bin").read_bytes)
        # The start of the victim lies in an undamaged chunk.
        fd = os.open(mnt / "raw" / "victim.bin", os.O_RDONLY)
        try:
            assert os.pread(fd, 4096, 0) == victim[:4096]
        finally:
            os.close(fd)


def test_cli_members_of_gzip_archive(nemo):
    """`nemockpt members` lists a gzip tarball's files (the tensor catalog
    of a gzip .nemo is checked in test_catalog.py on asr_single.gz.nemo)."""
    tree = nemo.mkdir("tree")
    files = make_tree(tree, big=1 << 20)
    arc = archive(tree, nemo.path("model.nemo"), "tar-czf")
    cli = nemofs.require_executable(nemofs.cli_bin(), "CLI")
    res = nemo.run([cli, "members", "--json", str(arc)], env=env())
    assert res.returncode == 0, res.stderr
    for rel in files:
        assert '"%s"' % rel in res.stdout, rel


def test_cache_dir_and_cache_size_options(nemo, tmp_path):
    """-o cache_dir= puts the index there; -o cache_size= takes K/M/G sizes
    and rejects nonsense before mounting."""
    import gzip
    import tarfile as _tarfile
    src = tmp_path / "opt.nemo"
    payload = os.urandom(1 << 20)
    with _tarfile.open(src, "w:gz") as t:
        ti = _tarfile.TarInfo("./w.bin")
        ti.size = len(payload)
        t.addfile(ti, io.BytesIO(payload))
    cache = tmp_path / "idx"
    with nemo.mount(src, "cache_dir=%s" % cache, "cache_size=64M") as mnt:
        assert (mnt / "raw" / "w.bin").read_bytes() == payload
        info = json.loads((mnt / "info.json").read_text())
    assert info["gzip"]["index_path"].startswith(str(cache) + "/")
    assert any(p.suffix == ".gzidx" for p in cache.iterdir())
    for bad in ("cache_size=0", "cache_size=12X", "cache_size=", "cache_size=-1"):
        mnt = nemo.mkdir("bad_cache")
        res = nemo.run([nemofs.daemon_bin(), str(src), str(mnt), "-o", bad])
        assert res.returncode != 0 and "cache_size" in res.stderr, (bad, res.stderr)
        assert not nemofs.is_mounted(mnt)
