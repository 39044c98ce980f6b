"""Remote sources: a .nemo mounted straight from http:// and https://.

Servers, all on 127.0.0.1 and started here: Debian's nginx with a generated
config (HTTP, and HTTPS with a CA made by openssl, passed as -o ca_file=),
and a fault-injecting range server written below (http.server) that sends
503 and 429 bursts, resets mid-body, short bodies, stalls past the timeout,
other 4xx and a changing ETag.

Oracles: the local mount of the same file (every file of every view, with
the one field that names the source taken out), the bytes the test wrote
(raw/ members, random ranges), nginx's access log (requests of a second
mount), and the server's own request records."""

import hashlib
import http.server
import io
import json
import mmap
import os
import random
import shutil
import socket
import socketserver
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

import nemofs
from test_catalog import fixtures_dir  # noqa: F401 (session fixture)

FIXTURES = ["nemo1_tp2", "nemo1_tp2pp2", "qnemo_tp2", "asr_single"]
BIG = 6 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0):
    """Connects until the server listens (it has no readiness pipe)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server on port %d never listened" % port)


def make_ca(d: Path):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=60)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=nemockpt test CA",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(d / "srv.key"), "-out", str(d / "srv.csr"))
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", str(d / "srv.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
         "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext"), "-out", str(d / "srv.pem"))


def big_tarball(fixtures, out: Path, seed=7):
    """nemo1_tp2's members plus big.bin (BIG random bytes): the oracle of raw/big.bin."""
    data = random.Random(seed).randbytes(BIG)
    ckpt = fixtures / "nemo1_tp2" / "ckpt"
    (out.parent / "big.bin").write_bytes(data)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(ckpt.iterdir()):
            tar.add(p, arcname="./" + p.name)
        tar.add(out.parent / "big.bin", arcname="./big.bin")
    return data


@pytest.fixture(scope="module")
def www(fixtures_dir, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("www")
    for name in FIXTURES:
        meta = json.loads((fixtures_dir / name / "oracle.json").read_text())
        for k in ("tarball", "tarball_gzip"):
            if meta["files"].get(k):
                shutil.copy(fixtures_dir / name / meta["files"][k], d / Path(meta["files"][k]).name)
    big = big_tarball(fixtures_dir, d / "big.nemo")
    return d, big


@pytest.fixture(scope="module")
def nginx(www, tmp_path_factory):
    root, _ = www
    d = tmp_path_factory.mktemp("nginx")
    make_ca(d)
    port, sport = free_port(), free_port()
    tmp = d / "tmp"
    tmp.mkdir()
    conf = d / "nginx.conf"
    conf.write_text(f"""
daemon off;
user root;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  log_format counts '$request_method $status $body_bytes_sent $http_range';
  access_log {d}/access.log counts;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; root {root}; location /moved/ {{ rewrite ^/moved/(.*)$ /$1 redirect; }} }}
  server {{ listen 127.0.0.1:{sport} ssl; root {root};
           ssl_certificate {d}/srv.pem; ssl_certificate_key {d}/srv.key; }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(d)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        wait_port(sport, proc)
        yield {"http": "http://127.0.0.1:%d" % port, "https": "https://127.0.0.1:%d" % sport,
               "ca": d / "ca.pem", "log": d / "access.log"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def normalize(rel, data, source):
    """A view file with its source name taken out (the one field that must
    differ between a remote and a local mount): safetensors headers'
    __metadata__.source and JSON "source" values; and info.json's gzip
    index_path (a remote gzip's seek index is kept in memory only:
    docs/DECISIONS.md)."""
    if rel.endswith(".safetensors") and len(data) >= 8:
        n = int.from_bytes(data[:8], "little")
        hdr = json.loads(data[8:8 + n])
        meta = hdr.get("__metadata__", {})
        if meta.get("source") == source:
            meta["source"] = "SRC"
        return json.dumps(hdr, sort_keys=True).encode() + data[8 + n:].lstrip(b" ")
    if rel.endswith(".json"):
        def strip(o):
            if isinstance(o, dict):
                return {k: ("SRC" if k == "source" and v == source else strip(v))
                        for k, v in o.items() if k not in DIFFERING}
            if isinstance(o, list):
                return [strip(x) for x in o]
            return o
        try:
            return json.dumps(strip(json.loads(data)), sort_keys=True).encode()
        except ValueError:
            return data
    return data


# info.json fields that name how the source is held, not what it holds:
# a remote gzip's index is in memory; a bucket directory is a listing
# (container "s3 directory", source_bytes the objects' total).
# The gzip index's provenance: a local mount may load an index an earlier
# test persisted, a remote one builds it (kept in memory only).
DIFFERING = {"index_path", "index", "index_builds", "member_table", "chunks_inflated_at_mount"}


def tree_files(root: Path):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p
    return out


def compare_mounts(remote_mnt, local_mnt, url, local_src, differing=()):
    DIFFERING.update(differing)
    r, l = tree_files(remote_mnt), tree_files(local_mnt)
    assert sorted(r) == sorted(l)
    # Opening tp layouts in ranks/ and nemo/ is lazy: a walk sees the listed ones.
    assert len(r) > 5
    for rel in sorted(l):
        a = normalize(rel, r[rel].read_bytes(), url)
        b = normalize(rel, l[rel].read_bytes(), str(local_src))
        assert a == b, rel


@pytest.mark.parametrize("name", FIXTURES)
def test_every_view_file_equals_local_mount(www, nginx, mounted, name):
    root, _ = www
    for f in sorted(root.glob(name + "*.nemo")):
        scheme = "https" if name == "nemo1_tp2pp2" else "http"
        url = "%s/%s" % (nginx[scheme], f.name)
        opts = ["ca_file=%s" % nginx["ca"]] if scheme == "https" else []
        with mounted(url, *opts) as rm, mounted(f) as lm:
            compare_mounts(rm, lm, url, f)
            info = json.loads((rm / "info.json").read_text())
            assert info["source"] == url


@pytest.mark.parametrize("cache", ["auto", "direct"])
def test_raw_member_and_random_ranges_16_threads(www, nginx, mounted, cache):
    """Under cache=direct every read reaches the daemon as asked (unaligned,
    any size), and replies are written from the block cache's own blocks
    while 16 threads evict under a 2 MiB budget."""
    root, big = www
    url = nginx["http"] + "/big.nemo"
    with mounted(url, "remote_cache_size=2M", "cache=" + cache) as mnt:
        p = mnt / "raw" / "big.bin"
        assert p.stat().st_size == BIG
        assert hashlib.sha256(p.read_bytes()).digest() == hashlib.sha256(big).digest()
        errors = []

        def worker(seed):
            rnd = random.Random(seed)
            fd = os.open(p, os.O_RDONLY)
            try:
                for _ in range(60):
                    off = rnd.randrange(BIG)
                    n = rnd.choice([1, 511, 4096, 70000, 300000])
                    got = os.pread(fd, n, off)
                    if got != big[off:off + n]:
                        errors.append((off, n))
            finally:
                os.close(fd)
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []


def test_sequential_read_fetches_whole_runs(www, nginx, mounted):
    """Readahead asks for whole 2 MiB runs, not the slice (128 or 512 KiB,
    read_ahead_kb) each kernel read slides its window by: an 8 MiB block
    cache makes the window (a quarter of it) one run, far shorter than the
    20 MiB member. One FUSE thread keeps the kernel's reads in order."""
    root, _ = www
    size = 20 << 20
    data = random.Random(11).randbytes(size)
    (root / "long.bin").write_bytes(data)
    with tarfile.open(root / "long.nemo", "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root / "long.bin", arcname="./long.bin")
    with mounted(nginx["http"] + "/long.nemo", "remote_cache_size=8M", "max_threads=1") as mnt:
        before = len(access_lines(nginx["log"]))
        with open(mnt / "raw" / "long.bin", "rb") as f:
            got = b"".join(iter(lambda: f.read(1 << 20), b""))
    lines = access_lines(nginx["log"])[before:]
    assert got == data
    sizes = [int(l[2]) for l in lines if l[0] == "GET"]
    # Every byte fetched, none twice (readahead reaches half the 8 MiB
    # budget, so no block is evicted before it is read): the mount-time
    # record may serve the first block, and the last one holds the tar's end.
    assert size - (64 << 10) <= sum(sizes) <= (root / "long.nemo").stat().st_size, sizes
    # Short ones: the reads before the first readahead, the first run up to
    # a run boundary, the member's end.
    short = [n for n in sizes if n < (2 << 20)]
    assert len(short) <= 6, sizes
    assert len(sizes) <= size // (2 << 20) + 6, sizes


def test_https_needs_the_ca(www, nginx, nemo):
    url = nginx["https"] + "/nemo1_tp2.nemo"
    res = nemo.expect_failure(url, nemo.mkdir("mnt"))
    assert "127.0.0.1" in res.stderr and "certificate" in res.stderr.lower()


def test_redirect_followed(www, nginx, mounted):
    root, big = www
    with mounted(nginx["http"] + "/moved/big.nemo") as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes() == big


def access_lines(log: Path):
    return [l.split() for l in log.read_text().splitlines()] if log.exists() else []


def test_second_mount_makes_only_a_head(www, nginx, mounted, tmp_path):
    url = nginx["http"] + "/nemo1_tp2pp2.nemo"
    cache = tmp_path / "cache"
    before = len(access_lines(nginx["log"]))
    with mounted(url, "cache_dir=%s" % cache) as mnt:
        (mnt / "info.json").read_bytes()
    first = access_lines(nginx["log"])[before:]
    assert any(l[0] == "GET" for l in first)
    before = len(access_lines(nginx["log"]))
    with mounted(url, "cache_dir=%s" % cache) as mnt:
        subprocess.run(["ls", "-R", str(mnt)], check=True, capture_output=True)
        json.loads((mnt / "info.json").read_text())
    second = access_lines(nginx["log"])[before:]
    assert [l[0] for l in second] == ["HEAD"], second


MANY = 1000


def pax(i):
    return i < 100 or i % 10 == 0 or i % 50 == 0


@pytest.fixture(scope="module")
def many_tar(www):
    """A PAX tar of MANY members of 64-68 KiB (unaligned sizes: padding):
    members 0-99 and every tenth have a float mtime (a PAX record, as
    tarfile.add writes one), every 50th a 150-byte name (a PAX path
    record); the rest are plain ustar headers."""
    root, _ = www
    path = root / "many.tar"
    rnd = random.Random(11)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(MANY):
            data = rnd.randbytes((64 << 10) + rnd.randrange(4096))
            name = "m/%04d.bin" % i if i % 50 else "m/%04d-%s.bin" % (i, "x" * 140)
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1700000000.5 if pax(i) else 1700000000
            tar.addfile(ti, io.BytesIO(data))
    return path


def test_many_member_tar_mount_fetches_little_more_than_headers(www, nginx, mounted, many_tar):
    url = nginx["http"] + "/" + many_tar.name
    before = len(access_lines(nginx["log"]))
    with mounted(url) as mnt:
        lines = access_lines(nginx["log"])[before:]
        with tarfile.open(many_tar) as tf:
            members = tf.getmembers()
            assert len(members) == MANY
            for m in (members[0], members[1], members[50], members[500], members[-1]):
                assert (mnt / "raw" / m.name).read_bytes() == tf.extractfile(m).read(), m.name
    gets = [l for l in lines if l[0] == "GET"]
    fetched = sum(int(l[2]) for l in gets)
    # The headers themselves: 512 bytes a member, 1,024 more with a PAX
    # record; the first read (4 KiB) and the end of the archive are extra.
    headers = sum(512 + (1024 if pax(i) else 0) for i in range(MANY))
    assert fetched < headers + (16 << 10), (fetched, headers)
    assert fetched < MANY * 1024 + (16 << 10)
    # One request a member, a second one where the headers outgrow the
    # previous members' (a PAX record after plain headers): never a
    # second one inside a run of PAX members.
    odd = sum(1 for i in range(1, MANY) if pax(i) and not pax(i - 1))
    assert len(gets) <= MANY + odd + 8, (len(gets), odd)


def blk_files(cache: Path):
    d = cache / "blocks"
    return sorted(p for p in d.iterdir() if p.suffix == ".blk") if d.exists() else []


def test_disk_cache_second_mount_reads_without_data_gets(www, nginx, mounted, tmp_path):
    _, big = www
    url = nginx["http"] + "/big.nemo"
    cache = tmp_path / "cache"
    opts = ("cache_dir=%s" % cache, "disk_cache_size=64M")
    with mounted(url, *opts) as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes() == big
    files = blk_files(cache)
    # 64 KiB blocks: big.bin alone spans 96 of them.
    assert len(files) >= BIG // 65536
    before = len(access_lines(nginx["log"]))
    with mounted(url, *opts) as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes() == big
    second = access_lines(nginx["log"])[before:]
    assert [l[0] for l in second] == ["HEAD"], second
    # A flipped byte in a block's data, one in another's header, a
    # truncated third: each reads as a miss, fetched again, never served.
    for p, at in ((files[len(files) // 2], -100), (files[len(files) // 3], 20)):
        b = bytearray(p.read_bytes())
        b[at] ^= 0x01
        p.write_bytes(bytes(b))
    t = files[len(files) // 4]
    t.write_bytes(t.read_bytes()[:-1])
    before = len(access_lines(nginx["log"]))
    with mounted(url, *opts) as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes() == big
    third = access_lines(nginx["log"])[before:]
    gets = [l for l in third if l[0] == "GET"]
    assert 1 <= len(gets) <= 3 and sum(int(l[2]) for l in gets) == 3 * 65536, third
    # Fetched again, they were kept again: a fourth mount is HEAD only.
    before = len(access_lines(nginx["log"]))
    with mounted(url, *opts) as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes() == big
    assert [l[0] for l in access_lines(nginx["log"])[before:]] == ["HEAD"]


def test_disk_cache_bound_honoured(www, nginx, mounted, tmp_path):
    _, big = www
    url = nginx["http"] + "/big.nemo"
    cache = tmp_path / "cache"
    bound = 1 << 20
    with mounted(url, "cache_dir=%s" % cache, "disk_cache_size=1M") as mnt:
        p = mnt / "raw" / "big.bin"
        assert p.read_bytes() == big
        rnd = random.Random(3)
        with open(p, "rb") as f:
            for _ in range(40):
                off = rnd.randrange(BIG)
                f.seek(off)
                assert f.read(200000) == big[off:off + 200000]
                total = sum(q.stat().st_size for q in blk_files(cache))
                assert total <= bound + 65536 + 64, total
    files = blk_files(cache)
    assert files and sum(q.stat().st_size for q in files) <= bound + 65536 + 64


def test_disk_cache_changed_object_never_serves_old_bytes(www, faulty, mounted, tmp_path):
    _, big = www
    f, url = faulty
    cache = tmp_path / "cache"
    opts = ("cache_dir=%s" % cache, "disk_cache_size=64M")
    with mounted(url, *opts) as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes() == big
    assert blk_files(cache)
    # The new version: the same tar with big.bin's bytes inverted.
    off = big_member_offset(f.data)
    new = bytes(b ^ 0xFF for b in big)
    with f.lock:
        f.etag = '"v2"'
        f.data = f.data[:off] + new + f.data[off + BIG:]
    with mounted(url, *opts) as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes() == new


def test_credentials_never_shown(www, nginx, nemo, tmp_path):
    url = nginx["http"].replace("http://", "http://alice:s3cr3tpw@") + "/nemo1_tp2.nemo?sig=t0ps3cr3t"
    shown = nginx["http"] + "/nemo1_tp2.nemo"
    d = nemo.start(url)
    try:
        fsname, _ = nemofs.findmnt(d.mnt)
        assert fsname == shown
        cmdline = Path("/proc/%d/cmdline" % d.proc.pid).read_bytes()
        assert b"s3cr3t" not in cmdline and shown.encode() in cmdline
        info = (d.mnt / "info.json").read_text()
        assert "s3cr3t" not in info and shown in info
        assert "s3cr3t" not in subprocess.run(["findmnt", "-n", str(d.mnt)], capture_output=True,
                                              text=True).stdout
    finally:
        nemo.stop(d)
    assert "s3cr3t" not in d.log()


# ---- the fault-injecting server --------------------------------------------------

class Faults:
    """What the server does, request by request (guarded by lock)."""

    def __init__(self, data):
        self.lock = threading.Lock()
        self.data = data
        self.etag = '"v1"'
        self.plan = []         # actions for the next matching GETs, in order
        self.when = lambda start: True  # which GETs the plan applies to
        self.always = None     # an action for every matching GET
        self.requests = []     # (method, range, action)
        self.token = None      # a bearer token to require
        self.ignore_ranges = False
        self.head_status = 200

    def next_action(self, method, start):
        with self.lock:
            act = "ok"
            if method == "GET" and self.when(start):
                if self.plan:
                    act = self.plan.pop(0)
                elif self.always:
                    act = self.always
            self.requests.append((method, start, act))
            return act


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _auth_ok(self, f):
        return f.token is None or self.headers.get("Authorization") == "Bearer " + f.token

    def do_HEAD(self):
        f = self.server.faults
        f.next_action("HEAD", None)
        if not self._auth_ok(f):
            return self._status(401)
        if f.head_status != 200:
            return self._status(f.head_status)
        self.send_response(200)
        self.send_header("Content-Length", str(len(f.data)))
        self.send_header("ETag", f.etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def _status(self, code, extra=()):
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        f = self.server.faults
        rng = self.headers.get("Range", "")
        first, last = 0, len(f.data) - 1
        if rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            first, last = int(a), min(int(b), len(f.data) - 1)
        act = f.next_action("GET", first)
        if not self._auth_ok(f):
            return self._status(401)
        im = self.headers.get("If-Match")
        if im is not None and im != f.etag:
            return self._status(412)
        if act == "503":
            return self._status(503)
        if act == "429":
            return self._status(429, [("Retry-After", "0")])
        if act == "403":
            return self._status(403)
        if act == "slow":
            time.sleep(3)  # the fault itself: a stall past the client's timeout
        body = f.data[first:last + 1]
        if f.ignore_ranges or not rng:
            self.send_response(200)
            self.send_header("Content-Length", str(len(f.data)))
            body = f.data
        else:
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, len(f.data)))
            self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f.etag)
        self.end_headers()
        if act in ("reset", "short") and len(body) > 1:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            if act == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR) if act == "short" else None
            return
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def faulty(www):
    root, _ = www
    data = (root / "big.nemo").read_bytes()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.faults = Faults(data)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.faults, "http://127.0.0.1:%d/big.nemo" % srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def big_member_offset(data):
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tar:
        m = tar.getmember("./big.bin")
        return m.offset_data


@pytest.mark.parametrize("fault", ["503", "429", "reset", "short"])
def test_transient_faults_are_retried(www, faulty, mounted, fault):
    _, big = www
    f, url = faulty
    f.plan = [fault] * 3
    with mounted(url, "retries=5") as mnt:
        f.plan = [fault] * 3
        assert (mnt / "raw" / "big.bin").read_bytes() == big
    acts = [a for _, _, a in f.requests]
    assert acts.count(fault) == 6


@pytest.mark.nemo_timeout(120)
def test_stall_past_timeout_is_retried(www, faulty, mounted):
    _, big = www
    f, url = faulty
    base = big_member_offset(f.data)
    with mounted(url, "timeout=1", "retries=3") as mnt:
        f.when = lambda start: start >= base
        f.plan = ["slow"]
        assert (mnt / "raw" / "big.bin").read_bytes() == big
    assert [a for _, _, a in f.requests].count("slow") == 1


@pytest.mark.allow_stderr(r"HTTP 503|HTTP 403")
@pytest.mark.parametrize("fault", ["503", "403"])
def test_persistent_failure_gives_eio_on_that_read_only(www, faulty, mounted, fault):
    _, big = www
    f, url = faulty
    base = big_member_offset(f.data)
    with mounted(url, "retries=2", "remote_cache_size=1M") as mnt:
        f.when = lambda start: start >= base + (1 << 20)
        f.always = fault
        # O_DIRECT: each pread is one request to the daemon (no readahead,
        # no second try of the page by the kernel), so the attempts counted
        # below are one read's.
        fd = os.open(mnt / "raw" / "big.bin", os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 65536)
        try:
            assert os.preadv(fd, [memoryview(buf)[:4096]], 0) == 4096
            assert buf[:4096] == big[:4096]
            with pytest.raises(OSError) as e:
                os.preadv(fd, [buf], 3 << 20)
            assert e.value.errno == 5
        finally:
            os.close(fd)
            buf.close()
        # Everything else still reads.
        assert json.loads((mnt / "info.json").read_text())
    # The failing range: 3 attempts for a 503 (retries=2), 1 for a 403.
    tries = {}
    for m, start, a in f.requests:
        if a == fault:
            tries[start] = tries.get(start, 0) + 1
    assert tries and set(tries.values()) == {3 if fault == "503" else 1}, tries


@pytest.mark.allow_stderr(r"changed on the server")
def test_etag_change_gives_eio_never_other_bytes(www, faulty, mounted):
    _, big = www
    f, url = faulty
    # A small cache keeps readahead (a quarter of it) away from 4 MiB.
    with mounted(url, "remote_cache_size=1M") as mnt:
        fd = os.open(mnt / "raw" / "big.bin", os.O_RDONLY)
        try:
            assert os.pread(fd, 4096, 0) == big[:4096]
            with f.lock:
                f.etag = '"v2"'
                f.data = bytes(len(f.data))  # the new version: all zeros
            with pytest.raises(OSError) as e:
                os.pread(fd, 65536, 4 << 20)
            assert e.value.errno == 5
            with pytest.raises(OSError):
                os.pread(fd, 65536, 5 << 20)
        finally:
            os.close(fd)
    assert any(a == "ok" and m == "GET" for m, _, a in f.requests)


def test_server_ignoring_ranges_refused_at_mount(faulty, nemo):
    f, url = faulty
    f.ignore_ranges = True
    res = nemo.expect_failure(url, nemo.mkdir("mnt"))
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "ignores range requests" in lines[0] and url in lines[0]


@pytest.mark.parametrize("status", [404, 403])
def test_missing_or_forbidden_object_fails_at_mount(faulty, nemo, status):
    f, url = faulty
    f.head_status = status
    res = nemo.expect_failure(url, nemo.mkdir("mnt"))
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and ("HTTP %d" % status) in lines[0] and url in lines[0]


def test_bearer_token_from_file_and_bad_token(www, faulty, nemo, mounted, tmp_path):
    _, big = www
    f, url = faulty
    f.token = "hf_good_token_123"
    tok = tmp_path / "token"
    tok.write_text("hf_good_token_123\n")
    with mounted(url, "token_file=%s" % tok) as mnt:
        assert (mnt / "raw" / "big.bin").read_bytes()[:65536] == big[:65536]
    d = nemo.daemons[-1]
    assert "hf_good" not in d.log() and b"hf_good" not in " ".join(d.argv).encode()
    tok.write_text("hf_bad\n")
    res = nemo.expect_failure(url, nemo.mkdir("mnt"), "token_file=%s" % tok)
    assert "HTTP 401" in res.stderr and "hf_bad" not in res.stderr


# ---- S3 (moto's server mode, SigV4 checked) ----------------------------------------

MOTO_PIN = "moto[server]==5.2.5"
SEED = r'''
import json, sys, boto3
import os
ep, path, key, tree = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
kw = dict(endpoint_url=ep, region_name="us-east-1",
          aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="u")
iam.put_user_policy(UserName="u", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="u")["AccessKey"]
s3 = boto3.client("s3", **dict(kw, aws_access_key_id=k["AccessKeyId"],
                                aws_secret_access_key=k["SecretAccessKey"]))
s3.create_bucket(Bucket="ckpt")
s3.upload_file(path, "ckpt", key)
for d, _, fs in os.walk(tree):
    for f in fs:
        p = os.path.join(d, f)
        s3.upload_file(p, "ckpt", "dirs/nemo2/" + os.path.relpath(p, tree))
for i in range(1100):
    s3.put_object(Bucket="ckpt", Key="many/k%04d" % i, Body=b"object %d\n" % i)
print(json.dumps({"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]}))
'''


@pytest.fixture(scope="module")
def moto(www, fixtures_dir, tmp_path_factory):  # noqa: F811
    """moto_server with IAM authentication on (INITIAL_NO_AUTH_ACTION_COUNT:
    the seeding's first 3 calls create the user, its policy and its key;
    every later request must carry a valid SigV4 signature), seeded with
    big.nemo, the nemo2 fixture's directory under dirs/nemo2/ and 1,100
    small objects under many/ (two ListObjectsV2 pages) by boto3. The venv: $NEMOCKPT_TEST_VENV if it has moto_server,
    else a new one with the pinned moto."""
    root, _ = www
    venv = os.environ.get("NEMOCKPT_TEST_VENV")
    if not venv or not (Path(venv) / "bin" / "moto_server").exists():
        venv = str(tmp_path_factory.mktemp("venv"))
        subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True, timeout=120)
        subprocess.run([venv + "/bin/pip", "install", "-q", MOTO_PIN], check=True, timeout=600)
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen([venv + "/bin/moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        ep = "http://127.0.0.1:%d" % port
        out = subprocess.run([venv + "/bin/python", "-c", SEED, ep, str(root / "big.nemo"),
                              "models/run 1/big.nemo", str(fixtures_dir / "nemo2" / "ckpt")],
                             check=True, capture_output=True, text=True, timeout=120).stdout
        yield ep, json.loads(out)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def s3_env(keys, secret=None, **extra):
    e = nemofs.daemon_env(dict(AWS_ACCESS_KEY_ID=keys["id"],
                               AWS_SECRET_ACCESS_KEY=secret or keys["secret"], **extra))
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        e.pop(k, None)
    return e


@pytest.mark.nemo_timeout(900)
def test_s3_tarball_signed(www, moto, nemo, tmp_path):
    _, big = www
    ep, keys = moto
    url = "s3://ckpt/models/run 1/big.nemo"  # a space: the key is percent-encoded and signed so
    d = nemo.start(url, "endpoint=" + ep, env=s3_env(keys))
    try:
        assert (d.mnt / "raw" / "big.bin").read_bytes() == big
        assert json.loads((d.mnt / "info.json").read_text())["source"] == url
    finally:
        nemo.stop(d)
    assert keys["secret"] not in d.log()
    # The same keys from ~/.aws/credentials + config (profile, endpoint_url).
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "credentials").write_text("[other]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                                     % (keys["id"], keys["secret"]))
    (aws / "config").write_text("[profile other]\nregion = us-east-1\nendpoint_url = %s\n" % ep)
    env = nemofs.daemon_env(dict(AWS_PROFILE="other", AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
                                 AWS_CONFIG_FILE=str(aws / "config")))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        env.pop(k, None)
    d = nemo.start(url, env=env)
    try:
        assert (d.mnt / "raw" / "big.bin").read_bytes()[-4096:] == big[-4096:]
    finally:
        nemo.stop(d)


def test_s3_disk_cache_serves_kept_blocks(www, moto, nemo, tmp_path):
    """moto keeps no access log, so the second mount's block is shown to come
    from the disk: the test rewrites one kept file (a Python model of its
    format: "NCKBLK1\\n", key, offset, length, CRC-32 of those 28 bytes and
    the data) with other bytes and a valid CRC, and reads them back."""
    import struct
    import zlib
    _, big = www
    ep, keys = moto
    url = "s3://ckpt/models/run 1/big.nemo"
    cache = tmp_path / "cache"
    opts = ("endpoint=" + ep, "cache_dir=%s" % cache, "disk_cache_size=64M")
    d = nemo.start(url, *opts, env=s3_env(keys))
    try:
        assert (d.mnt / "raw" / "big.bin").read_bytes() == big
    finally:
        nemo.stop(d)
    files = blk_files(cache)
    assert files
    p = files[len(files) // 2]
    raw = p.read_bytes()
    assert raw[:8] == b"NCKBLK1\n"
    key, off, n, crc = struct.unpack("<QQII", raw[8:32])
    assert n == len(raw) - 32 and crc == zlib.crc32(raw[:28] + raw[32:])
    planted = bytes(b ^ 0x5A for b in raw[32:])
    p.write_bytes(raw[:28] + struct.pack("<I", zlib.crc32(raw[:28] + planted)) + planted)
    with tarfile.open(www[0] / "big.nemo") as tf:
        data_off = tf.getmember("./big.bin").offset_data
    d = nemo.start(url, *opts, env=s3_env(keys))
    try:
        got = (d.mnt / "raw" / "big.bin").read_bytes()
    finally:
        nemo.stop(d)
    lo, hi = max(off, data_off), min(off + n, data_off + BIG)
    assert lo < hi
    want = bytearray(big)
    want[lo - data_off:hi - data_off] = planted[lo - off:hi - off]
    assert got == bytes(want)


def test_s3_bad_credentials_fail_at_mount(moto, nemo):
    ep, keys = moto
    url = "s3://ckpt/models/run 1/big.nemo"
    d, state, _ = nemo._spawn_notify(url, nemo.mkdir("mnt"), ["endpoint=" + ep], ("-f",),
                                     s3_env(keys, secret="not-the-secret"))
    assert state != "ready"
    rc = d.proc.wait()
    d.stopped, d.returncode = True, rc
    nemo.checked_logs.add(d.log_path)
    lines = [l for l in d.log().splitlines() if l.strip()]
    assert rc != 0 and len(lines) == 1 and "HTTP 403" in lines[0] and url in lines[0], lines
    assert "not-the-secret" not in d.log()


@pytest.mark.nemo_timeout(300)
def test_s3_directory_every_view_equals_local_mount(moto, nemo, mounted, fixtures_dir,  # noqa: F811
                                                   tmp_path):
    ep, keys = moto
    url = "s3://ckpt/dirs/nemo2/"
    # A local copy under the prefix's own name: gguf/'s general.name is the
    # source's base name, as for any source.
    local = tmp_path / "nemo2"
    shutil.copytree(fixtures_dir / "nemo2" / "ckpt", local)
    d = nemo.start(url, "endpoint=" + ep, env=s3_env(keys))
    try:
        with mounted(local) as lm:
            compare_mounts(d.mnt, lm, url, local, differing=("container", "source_bytes"))
        info = json.loads((d.mnt / "info.json").read_text())
        assert info["container"] == "s3 directory" and info["source"] == url
    finally:
        nemo.stop(d)
        DIFFERING.difference_update(("container", "source_bytes"))


def test_s3_listing_pages_past_1000_keys(moto, nemo):
    ep, keys = moto
    d = nemo.start("s3://ckpt/many/", "endpoint=" + ep, env=s3_env(keys))
    try:
        names = sorted(os.listdir(d.mnt / "raw"))
        assert names == ["k%04d" % i for i in range(1100)]
        for i in (0, 999, 1000, 1099):
            assert (d.mnt / "raw" / ("k%04d" % i)).read_bytes() == b"object %d\n" % i
    finally:
        nemo.stop(d)
