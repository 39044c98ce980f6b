#!/usr/bin/python3
"""Remote sources over loopback nginx: mount time and bytes fetched for a
many-member tarball, a second mount's requests, and sequential read
throughput of one large member through the mount against `curl -o
/dev/null` of the same byte range.

  /usr/bin/python3 bench/bench_remote.py BUILD/bin/nemockptfs [--members N]
      [--member-kib K] [--big-mib M] [--dir DIR] [--mount-only]

Starts nginx on 127.0.0.1 (its own config in DIR), writes the tarball
once (random bytes), prints one line per figure. --mount-only stops after
the two mounts and `ls -R` (the rows that do not depend on --big-mib)."""

import argparse
import os
import random
import socket
import subprocess
import tarfile
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tar(path: Path, members, kib, big_mib):
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    rnd = random.Random(1)
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        import io
        for i in range(members):
            data = rnd.randbytes(kib << 10)
            ti = tarfile.TarInfo("./m/%04d.bin" % i)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        big = path.parent / "big.bin"
        with open(big, "wb") as f:
            for _ in range(big_mib):
                f.write(rnd.randbytes(1 << 20))
        tar.add(big, arcname="./big.bin")
        big.unlink()
    tmp.rename(path)


def log_since(log: Path, start: int):
    lines = log.read_text().splitlines()[start:]
    return len(lines), sum(int(l.split()[2]) for l in lines if l.split()[2].isdigit()), lines


def mount(daemon, url, mnt, cache):
    t = time.monotonic()
    subprocess.run([daemon, url, str(mnt), "-o", "cache_dir=%s" % cache], check=True)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("daemon")
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--member-kib", type=int, default=256)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--dir", default="/var/tmp/nemockpt-bench-remote")
    ap.add_argument("--mount-only", action="store_true")
    a = ap.parse_args()
    d = Path(a.dir)
    (d / "www").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    tarp = d / "www" / ("bench-%d-%d-%d.nemo" % (a.members, a.member_kib, a.big_mib))
    make_tar(tarp, a.members, a.member_kib, a.big_mib)
    port = free_port()
    log = d / "access.log"
    log.write_text("")
    (d / "nginx.conf").write_text(f"""
daemon off; user root; worker_processes 2; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{ log_format c '$request_method $status $body_bytes_sent'; access_log {log} c;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp; sendfile on;
  server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}
""")
    ng = subprocess.Popen(["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)])
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = "http://127.0.0.1:%d/%s" % (port, tarp.name)
        mnt = d / "mnt"
        mnt.mkdir(exist_ok=True)
        cache = d / "cache"
        subprocess.run(["rm", "-rf", str(cache)], check=True)
        size = tarp.stat().st_size
        print("object: %d members + %d MiB member, %.2f GB" % (a.members, a.big_mib, size / 1e9))
        n0 = len(log.read_text().splitlines())
        t = mount(a.daemon, url, mnt, cache)
        reqs, nbytes, _ = log_since(log, n0)
        print("first mount: %.3f s, %d requests, %.2f MB fetched" % (t, reqs, nbytes / 1e6))
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        n0 = len(log.read_text().splitlines())
        t = mount(a.daemon, url, mnt, cache)
        reqs, nbytes, lines = log_since(log, n0)
        print("second mount: %.3f s, %d requests (%s), %d bytes fetched"
              % (t, reqs, ",".join(sorted({l.split()[0] for l in lines})), nbytes))
        n0 = len(log.read_text().splitlines())
        subprocess.run("ls -R %s > /dev/null && cat %s/info.json > /dev/null" % (mnt, mnt),
                       shell=True, check=True)
        reqs, nbytes, _ = log_since(log, n0)
        print("ls -R + cat info.json: %d requests, %d bytes" % (reqs, nbytes))
        if a.mount_only:
            subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
            return
        big = mnt / "raw" / "big.bin"
        t = time.monotonic()
        with open(big, "rb", buffering=0) as f:
            while f.read(4 << 20):
                pass
        tm = time.monotonic() - t
        # The member's byte range in the object: its data is the tail.
        first = size - 1024 - (a.big_mib << 20)
        first -= first % 512
        with tarfile.open(tarp) as tf:
            m = tf.getmember("./big.bin")
            first, last = m.offset_data, m.offset_data + m.size - 1
        t = time.monotonic()
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-r", "%d-%d" % (first, last), url],
                       check=True)
        tc = time.monotonic() - t
        mb = (a.big_mib << 20) / 1e6
        print("sequential read of %d MiB: mount %.0f MB/s, curl %.0f MB/s (%.2fx)"
              % (a.big_mib, mb / tm, mb / tc, tc / tm))
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    finally:
        ng.terminate()
        ng.wait()


if __name__ == "__main__":
    main()
