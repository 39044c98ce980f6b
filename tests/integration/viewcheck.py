"""Reading a view file three ways against the bytes it must hold: whole,
random ranges of 1 byte to 8 MiB with the kernel's cached pages dropped
before each (so the daemon serves every range, not the page cache), and a
shared mmap."""

import mmap
import os
import random

SIZES = [1, 2, 3, 7, 64, 4095, 4096, 65537, 1 << 20, 8 << 20]


def check_three_ways(path, expect, seed=0, ranges=100):
    with open(path, "rb") as f:
        assert f.read() == expect, path
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        for _ in range(ranges):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            n = rng.choice(SIZES)
            off = rng.randrange(0, len(expect))
            assert os.pread(fd, n, off) == expect[off:off + n], (path, off, n)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
            assert m[:] == expect, path
    finally:
        os.close(fd)
