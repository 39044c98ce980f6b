"""Concurrent readers against one daemon."""

import concurrent.futures
import math
import os
import select
import random
import tarfile

import pytest

import nemofs
import tarmaker

BIG = 64 << 20
THREADS = 16
READS_PER_THREAD = 200
MAX_READ = 4 << 20


@pytest.fixture
def big_archive(nemo):
    data = tarmaker.rand_bytes(BIG, 1234)
    small = {"meta/f%03d.json" % i: tarmaker.pattern_bytes(100 + 37 * i,
                                                           "m%d" % i)
             for i in range(64)}
    entries = [tarmaker.Entry("context/model.yaml", b"a: 1\n")]
    entries += [tarmaker.Entry(n, d) for n, d in small.items()]
    entries.append(tarmaker.Entry("weights/model_weights.ckpt", data))
    arc = tarmaker.write_tar_entries(nemo.path("conc.tar"), entries,
                                     tarfile.PAX_FORMAT, prefix="./")
    return arc, data, small


def _log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))) \
        if hi > lo else lo


@pytest.mark.nemo_timeout(150)
@pytest.mark.parametrize("opts", [(), ("max_threads=2",)],
                         ids=["default", "max_threads2"])
def test_random_range_readers(nemo, big_archive, opts):
    arc, data, _ = big_archive
    if opts:
        reads = 50          # keep the constrained variant quick
    else:
        reads = READS_PER_THREAD
    with nemo.mount(arc, *opts) as mnt:
        path = mnt / "raw" / "weights" / "model_weights.ckpt"
        assert os.stat(path).st_size == BIG

        def reader(tid):
            rng = random.Random(1000 + tid)
            fd = os.open(path, os.O_RDONLY)
            bad = []
            try:
                for i in range(reads):
                    ln = min(_log_uniform(rng, 1, MAX_READ), MAX_READ)
                    off = rng.randrange(0, BIG + 1024)
                    got = os.pread(fd, ln, off)
                    if got != data[off:off + ln]:
                        bad.append((off, ln, len(got)))
            finally:
                os.close(fd)
            return bad

        with concurrent.futures.ThreadPoolExecutor(THREADS) as ex:
            results = list(ex.map(reader, range(THREADS)))
    bad = [(t, b) for t, r in enumerate(results) for b in r]
    assert not bad, "mismatching reads (thread, (off, len, got)): %r" % (
        bad[:10],)


@pytest.mark.nemo_timeout(120)
def test_mixed_metadata_and_reads(nemo, big_archive):
    arc, data, small = big_archive
    with nemo.mount(arc) as mnt:
        raw = mnt / "raw"

        def meta(tid):
            rng = random.Random(tid)
            names = list(small)
            for _ in range(150):
                n = rng.choice(names)
                if rng.random() < 0.3:
                    assert sorted(os.listdir(raw / "meta")) == \
                        sorted(os.path.basename(x) for x in names)
                assert os.stat(raw / n).st_size == len(small[n])
                with open(raw / n, "rb") as f:
                    assert f.read() == small[n]
            return True

        def bulk(tid):
            fd = os.open(raw / "weights" / "model_weights.ckpt", os.O_RDONLY)
            try:
                start = (tid * 13 << 20) % (BIG - (8 << 20))
                got = nemofs.pread_all(fd, 8 << 20, start)
                assert got == data[start:start + (8 << 20)]
            finally:
                os.close(fd)
            return True

        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            futs = [ex.submit(meta, t) for t in range(8)]
            futs += [ex.submit(bulk, t) for t in range(4)]
            for f in futs:
                assert f.result()


@pytest.mark.nemo_timeout(120)
def test_sigterm_under_load(nemo, big_archive):
    """SIGTERM while readers hold open files: the mount is detached and the
    readers go on with right bytes; a second SIGTERM: exit 0, readers get
    errors (or a short read) instead of hanging."""
    import signal
    import threading
    arc, data, _ = big_archive
    d = nemo.start(arc)
    path = d.mnt / "raw" / "weights" / "model_weights.ckpt"
    started = threading.Barrier(5)
    outcome = {}

    def reader(tid):
        fd = os.open(path, os.O_RDONLY)
        started.wait(timeout=30)
        rng = random.Random(tid)
        try:
            for _ in range(1_000_000):
                off = rng.randrange(0, BIG)
                got = os.pread(fd, 1 << 16, off)
                # A read cut by the forced stop may come back short; every
                # byte returned is right.
                assert got == data[off:off + len(got)]
                if len(got) < min(1 << 16, BIG - off):
                    outcome[tid] = "short"
                    break
            else:
                outcome[tid] = "finished"
        except OSError as e:
            outcome[tid] = e.errno
        finally:
            os.close(fd)

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    started.wait(timeout=30)
    # The first SIGTERM detaches the mount and keeps serving the open files;
    # the second stops the daemon with the readers still reading.
    d.proc.send_signal(signal.SIGTERM)
    with open("/proc/self/mountinfo") as mi:
        p = select.poll()
        p.register(mi, select.POLLPRI)
        while nemofs.is_mounted(d.mnt):
            assert p.poll(20_000), "SIGTERM did not detach the mount"
            mi.seek(0)
            mi.read()
    assert all(t.is_alive() for t in threads), outcome
    rc = nemo.signal_and_wait(d, signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "reader hung after the daemon exited"
    assert rc == 0, "exit status %d after SIGTERM\n%s" % (rc, d.log())
    assert not nemofs.is_mounted(d.mnt)
    assert len(outcome) == 4, outcome
