#!/usr/bin/python3
"""Remote sources over loopback nginx: mount time and bytes fetched for a
many-member tarball, a second mount's requests, and sequential read
throughput of one large member through the mount against `curl -o
/dev/null` of the same byte range; then the same for a real checkpoint, a
6 GB, 1,300-member zarr .nemo (bench/dist_nemo.py), with merged/'s first
read through the remote mount against a mount of the local file.

  /usr/bin/python3 bench/bench_remote.py BUILD/bin/nemockptfs [--members N]
      [--member-kib K] [--big-mib M] [--rounds R] [--dir DIR] [--mount-only]
      [--no-nemo] [--link RATE]

Starts nginx on 127.0.0.1 (its own config in DIR), writes the tarballs
once (random bytes; the .nemo's tensor data are holes), prints one line
per figure. Throughput rows alternate the two reads R times (a fresh mount
each time) and give medians, with the CPU seconds the whole machine spent
on each (nginx's included). The sequential rows run on plain loopback and
again, with --link, with loopback shaped to RATE (8gbit, say: a token
bucket, `tc qdisc ... tbf`, root only, while lo has no qdisc of its own;
removed afterwards, on SIGTERM and SIGHUP too), where the link, not the
CPUs, is the limit. The served files are read once first, so that nginx
serves them from the page cache. --mount-only stops after the mounts and
`ls -R` (the rows that do not depend on --big-mib)."""

import argparse
import os
import random
import signal
import statistics
import socket
import subprocess
import sys
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


def mount(daemon, url, mnt, cache, *opts):
    t = time.monotonic()
    subprocess.run([daemon, url, str(mnt), "-o", ",".join(("cache_dir=%s" % cache,) + opts)],
                   check=True)
    return time.monotonic() - t


BUF = bytearray(4 << 20)


def read_all(path):
    """Seconds to read `path` start to end in 4 MiB reads (into one buffer)."""
    t = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        while f.readinto(BUF):
            pass
    return time.monotonic() - t


def busy():
    """CPU seconds spent by all CPUs so far (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def timed(fn):
    """(seconds, CPU seconds of the whole machine) of fn()."""
    c, t = busy(), time.monotonic()
    fn()
    return time.monotonic() - t, busy() - c


def run_tc(*args):
    """Runs tc; its output, or None where it failed or is missing."""
    try:
        r = subprocess.run(["tc", *args], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout if r.returncode == 0 else None


def lo_qdisc():
    """lo's own root qdisc as tc shows it; "" where it has none (noqueue),
    None where tc cannot tell."""
    shown = run_tc("qdisc", "show", "dev", "lo")
    if shown is None:
        return None
    return "" if shown.startswith("qdisc noqueue") else shown.strip()


def shape(rate):
    """Limits loopback to `rate` (tc's units, e.g. 8gbit) with a token
    bucket; None lifts it. False where it cannot: not root, no tc or
    sch_tbf, or lo has a root qdisc of its own (left alone)."""
    if rate is None:
        return run_tc("qdisc", "del", "dev", "lo", "root") is not None
    if lo_qdisc() != "":
        return False
    return run_tc("qdisc", "add", "dev", "lo", "root", "tbf", "rate", rate,
                  "burst", "4mb", "latency", "5ms") is not None


def mount_rows(daemon, url, log, mnt, cache):
    """The first mount, the second (unchanged object), ls -R + info.json."""
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    n0 = len(log.read_text().splitlines())
    t = mount(daemon, url, mnt, cache)
    reqs, nbytes, _ = log_since(log, n0)
    print("  first mount: %.3f s, %d requests, %.2f MB fetched" % (t, reqs, nbytes / 1e6))
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    n0 = len(log.read_text().splitlines())
    t = mount(daemon, url, mnt, cache)
    reqs, nbytes, lines = log_since(log, n0)
    print("  second mount: %.3f s, %d requests (%s), %d bytes fetched"
          % (t, reqs, ",".join(sorted({l.split()[0] for l in lines})), nbytes))
    n0 = len(log.read_text().splitlines())
    subprocess.run("ls -R %s > /dev/null && cat %s/info.json > /dev/null" % (mnt, mnt),
                   shell=True, check=True)
    reqs, nbytes, _ = log_since(log, n0)
    print("  ls -R + cat info.json: %d requests, %d bytes" % (reqs, nbytes))
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True)


def nemo_rows(a, d, base, log, mnt, cache):
    """The real checkpoint: mount rows, then merged/'s first read through
    the remote mount against a mount of the local file."""
    import dist_nemo
    nemo = d / "www" / "dist.nemo"
    if not nemo.exists():
        n, total = dist_nemo.write(str(nemo))
    url = base + "/dist.nemo"
    with tarfile.open(nemo) as tf:
        members = len(tf.getmembers())
    print("object: %s, %d members, %.2f GB (zarr distributed checkpoint, TP=8)"
          % (nemo.name, members, nemo.stat().st_size / 1e9))
    read_all(nemo)  # into the page cache, as the tarball in main()
    mount_rows(a.daemon, url, log, mnt, cache)
    if a.mount_only:
        return
    local = d / "mnt-local"
    local.mkdir(exist_ok=True)
    def read_merged(root):
        """Seconds and bytes to read every merged/ shard in turn."""
        files = sorted((root / "merged").glob("*.safetensors"))
        return sum(read_all(p) for p in files), sum(p.stat().st_size for p in files), len(files)

    tr, tl = [], []
    for _ in range(a.rounds):
        mount(a.daemon, url, mnt, cache)
        t, size, shards = read_merged(mnt)
        tr.append(t)
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        subprocess.run([a.daemon, str(nemo), str(local)], check=True)
        tl.append(read_merged(local)[0])
        subprocess.run(["fusermount3", "-u", str(local)], check=True)
    r_, l_ = statistics.median(tr), statistics.median(tl)
    print("  merged/ first read (%d shards, %.2f GB): remote %.0f MB/s, local file %.0f MB/s "
          "(%.2fx; medians of %d, each round %s)"
          % (shards, size / 1e9, size / 1e6 / r_, size / 1e6 / l_, l_ / r_, a.rounds,
             " ".join("%.2f" % (l / r) for r, l in zip(tr, tl))))


def sequential_row(a, url, log, mnt, cache, first, last, policy, link):
    """The 2 GiB member through a fresh mount against curl of its range,
    alternated a.rounds times: medians of throughput and of the whole
    machine's CPU seconds (nginx's included, on both sides)."""
    mb = (a.big_mib << 20) / 1e6
    tm, tc, cm, cc, reqs = [], [], [], [], []
    for _ in range(a.rounds):
        mount(a.daemon, url, mnt, cache, "cache=" + policy)
        n0 = len(log.read_text().splitlines())
        t, c = timed(lambda: read_all(mnt / "raw" / "big.bin"))
        reqs.append(log_since(log, n0)[0])
        tm.append(t)
        cm.append(c)
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        t, c = timed(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", "-r",
                                             "%d-%d" % (first, last), url], check=True))
        tc.append(t)
        cc.append(c)
    m_, c_ = statistics.median(tm), statistics.median(tc)
    print("  sequential read of %d MiB, %s, cache=%s: mount %.0f MB/s, curl %.0f MB/s "
          "(%.2fx; medians of %d, each round %s); CPU s: mount %.2f, curl %.2f; "
          "mount's requests %d"
          % (a.big_mib, "link " + link if link else "loopback unshaped", policy, mb / m_,
             mb / c_, c_ / m_, a.rounds, " ".join("%.2f" % (c / m) for m, c in zip(tm, tc)),
             statistics.median(cm), statistics.median(cc), statistics.median(reqs)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("daemon")
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--member-kib", type=int, default=256)
    ap.add_argument("--big-mib", type=int, default=2048)
    ap.add_argument("--dir", default="/var/tmp/nemockpt-bench-remote")
    ap.add_argument("--mount-only", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-nemo", action="store_true")
    ap.add_argument("--link", default="",
                    help="also measure the sequential rows with loopback shaped to this rate "
                         "(e.g. 8gbit; tc tbf, root)")
    a = ap.parse_args()
    def stop(n, _):
        """finally blocks (nginx, the qdisc, the mounts) run on SIGTERM and
        SIGHUP too, and a second signal does not cut them short."""
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        sys.exit(128 + n)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
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
        size = tarp.stat().st_size
        print("object: %d members + %d MiB member, %.2f GB" % (a.members, a.big_mib, size / 1e9))
        # nginx serves from the page cache; the development VM loses pages
        # of it between runs even with RAM free, and a figure served off
        # the disk is not the network's.
        read_all(tarp)
        mount_rows(a.daemon, url, log, mnt, cache)
        if not a.mount_only:
            with tarfile.open(tarp) as tf:
                m = tf.getmember("./big.bin")
                first, last = m.offset_data, m.offset_data + m.size - 1
            own = lo_qdisc()
            if own:
                print("  note: lo has a qdisc of its own, the unshaped rows are under it: "
                      + own)
            for link in [None] + ([a.link] if a.link else []):
                if link and not shape(link):
                    print("  link %s: not measured (tc tbf on lo needs root, tc, sch_tbf "
                          "and no qdisc of lo's own)" % link)
                    continue
                try:
                    for policy in ("auto", "direct"):
                        sequential_row(a, url, log, mnt, cache, first, last, policy, link)
                finally:
                    if link:
                        shape(None)
        if not a.no_nemo:
            nemo_rows(a, d, url.rsplit("/", 1)[0], log, mnt, cache)
    finally:
        for m in (d / "mnt", d / "mnt-local"):
            subprocess.run(["fusermount3", "-uqz", str(m)], stderr=subprocess.DEVNULL)
        ng.terminate()
        ng.wait()


if __name__ == "__main__":
    main()
