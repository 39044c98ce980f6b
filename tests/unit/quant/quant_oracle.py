#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent oracle for nck_quant (tests/unit/quant/test_quant.c).

Usage: /usr/bin/python3 quant_oracle.py MANIFEST

Each line of MANIFEST names one result the C code produced and the files it
wrote; this script recomputes the result from the definitions with numpy
(not from the C code's bit tricks) and compares bit for bit. Exit status 0
when everything matches, 1 (with the first mismatches printed) otherwise.

Definitions (spec: sharding-hf-trtllm.md C.4, C.5; quant.h):
  * inputs widen to float32 exactly (bf16: upper half of a float32; f16:
    numpy's IEEE half);
  * amax = max |x| ignoring NaN (0 for no elements); scale = amax / maxbound
    in float32, or 1.0 when that is not a positive finite float32;
  * fp8 = the E4M3FN code nearest to float32(x) / float32(scale) (a float32
    division): all 127 non-negative finite codes are enumerated as values,
    the nearest wins, a tie goes to the even code; magnitudes above 448
    (and infinities) saturate to 448; NaN -> 0x7F; the sign bit is the
    quotient's;
  * int4: q = clip(round_half_even(float32(w) / float32(s)), -8, 7), NaN -> 0;
    block scales = block amax / 7; packed byte (i, j) = q[2i, j] & 15 |
    (q[2i+1, j] & 15) << 4.
  * nvfp4 (ModelOpt nvfp4_tensor.py; spec gguf-nvfp4.md 2.3): global g =
    amax / 2688 (the scale rule above); per block of 16 consecutive
    elements t = float32(block amax) / float32(6 * g), 1.0 if t == 0, at
    least 2^-9, then the E4M3 code above; each element's E2M1 code is the
    nearest of the 8 values 0, 0.5, 1, 1.5, 2, 3, 4, 6 (enumerated; a tie
    goes to the even code) to |y|, y = float32(x) / float32(value(s) * g),
    NaN -> 7, sign bit = (y < 0); byte i = code[2i] | code[2i+1] << 4.

numpy 1.24 has no float8 dtype, hence the enumeration.

Manifest lines (DTYPE is BF16, F16 or F32; BITS are float32 bits in hex):
  conv   DTYPE N IN OUT                   OUT: float32 widening of IN
  amax   DTYPE N IN BITS                  BITS: the amax C computed
  scale  MAXBOUND AMAXBITS BITS           BITS: the scale C computed
  fp8    DTYPE N SCALEBITS IN OUT         OUT: N codes
  scales DTYPE ROWS COLS G IN OUT         OUT: ROWS x COLS/G float32 scales
  pack   DTYPE ROWS COLS G IN SCALES OUT  OUT: ROWS/2 x COLS bytes from SCALES
  e2m1   N IN OUT                         IN: N float32; OUT: N codes (one a byte)
  nvfp4  DTYPE N GBITS IN CODES SCALES    CODES: N/2 bytes, SCALES: N/16 E4M3 codes
"""
import sys

import numpy as np


def e4m3_table():
    """Values of codes 0x00..0x7E (non-negative, finite), increasing."""
    vals = []
    for code in range(0x7F):
        e, m = code >> 3, code & 7
        if e == 0:
            vals.append(m / 8.0 * 2.0 ** -6)
        else:
            vals.append((1.0 + m / 8.0) * 2.0 ** (e - 7))
    vals = np.array(vals, dtype=np.float64)
    assert np.all(np.diff(vals) > 0) and vals[-1] == 448.0
    return vals


E4M3 = e4m3_table()


def f32_bits(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def bits_f32(u):
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def load(path, dtype, n=None):
    raw = np.fromfile(path, dtype=np.uint8)
    if dtype == "BF16":
        x = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F16":
        x = raw.view("<f2").astype(np.float32)
    elif dtype == "F32":
        x = raw.view("<f4").copy()
    else:
        raise ValueError(dtype)
    if n is not None and x.size != n:
        raise ValueError("%s: %d elements, expected %d" % (path, x.size, n))
    return x


def widen_f16_exact(raw_u16):
    """f16 -> f32 bits: numpy for numbers, the definition for NaN payloads."""
    x = raw_u16.view("<f2").astype(np.float32).view(np.uint32).copy()
    nan = (raw_u16 & 0x7C00) == 0x7C00
    nan &= (raw_u16 & 0x03FF) != 0
    h = raw_u16.astype(np.uint32)
    x[nan] = ((h[nan] & 0x8000) << 16) | 0x7F800000 | ((h[nan] & 0x3FF) << 13)
    return x


def amax_of(x):
    a = np.abs(x.astype(np.float32))
    a[np.isnan(a)] = 0
    return np.float32(a.max()) if a.size else np.float32(0)


def scale_of(amax, maxbound):
    with np.errstate(all="ignore"):
        s = np.float32(amax) / np.float32(maxbound)
    return s if (s > 0 and np.isfinite(s)) else np.float32(1.0)


def fp8_encode(q):
    """E4M3FN codes of float32 array q, by nearest enumerated value."""
    q = np.asarray(q, dtype=np.float32)
    sign = ((q.view(np.uint32) >> 24) & 0x80).astype(np.int64)
    nan = np.isnan(q)
    a = np.abs(q.astype(np.float64))
    a[nan] = 0
    a = np.minimum(a, 448.0)
    hi = np.clip(np.searchsorted(E4M3, a, side="left"), 0, 126)
    lo = np.clip(hi - 1, 0, 126)
    dlo, dhi = a - E4M3[lo], E4M3[hi] - a
    code = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    code = np.where(nan, 0x7F, code)
    return (code | sign).astype(np.uint8)


E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float64)


def e4m3_value(codes):
    return E4M3[np.asarray(codes, dtype=np.int64) & 0x7F]


def e2m1_encode(y):
    """E2M1 codes of float32 array y: nearest enumerated value, tie to even."""
    y = np.asarray(y, dtype=np.float32)
    a = np.abs(y.astype(np.float64))
    nan = np.isnan(a)
    a[nan] = 0
    a = np.minimum(a, 6.0)                      # beyond 6 (and inf) the nearest is 6
    d = np.abs(a[..., None] - E2M1)            # distance to each of the 8 values
    best = d.min(axis=-1, keepdims=True)
    cand = d == best                            # one or two nearest codes
    even = cand & (np.arange(8) % 2 == 0)
    code = np.where(even.any(axis=-1), even.argmax(axis=-1), cand.argmax(axis=-1))
    code = np.where(nan, 7, code)
    with np.errstate(invalid="ignore"):
        neg = (y < 0)
    return (code | (neg.astype(np.int64) << 3)).astype(np.uint8)


def nvfp4_ref(x, g):
    """(packed codes, E4M3 block scales) of float32 x (size % 16 == 0) at global g."""
    g = np.float32(g)
    blocks = x.astype(np.float32).reshape(-1, 16)
    a = np.abs(blocks)
    a[np.isnan(a)] = 0
    amax = a.max(axis=1).astype(np.float32)
    with np.errstate(all="ignore"):
        t = (amax / np.float32(np.float32(6.0) * g)).astype(np.float32)
    t = np.where(t == 0, np.float32(1.0), t).astype(np.float32)
    t = np.maximum(t, np.float32(2.0 ** -9)).astype(np.float32)
    s = fp8_encode(t)
    d = (e4m3_value(s).astype(np.float32) * g).astype(np.float32)
    with np.errstate(all="ignore"):
        y = (blocks / d[:, None]).astype(np.float32)
    c = e2m1_encode(y).reshape(-1)
    packed = (c[0::2] | (c[1::2] << 4)).astype(np.uint8)
    return packed, s


def int4_q(w, s):
    with np.errstate(all="ignore"):
        x = (w.astype(np.float32) / s.astype(np.float32)).astype(np.float32)
    x[np.isnan(x)] = 0
    return np.clip(np.round(x), -8, 7).astype(np.int64)


def self_test():
    cases = {448.0: 0x7E, 1.0: 0x38, 2.0 ** -9: 0x01, 2.0 ** -10: 0x00,
             3 * 2.0 ** -10: 0x02, 464.0: 0x7E, 1e30: 0x7E, -0.0: 0x80,
             240.0: 0x77, 2.0 ** -6: 0x08, 15 * 2.0 ** -10: 0x08,
             13 * 2.0 ** -10: 0x06, 432.0: 0x7E, 416.0: 0x7D, -3.0: 0xC4,
             float("inf"): 0x7E, float("-inf"): 0xFE}
    got = fp8_encode(np.array(list(cases), dtype=np.float32))
    assert list(got) == list(cases.values()), (list(cases), list(got))
    assert fp8_encode(np.array([np.nan], np.float32))[0] == 0x7F
    ties = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -0.75, -2.5, -5, 7, -0.0,
                     0.0, -1e-30, np.inf, -np.inf, np.nan, 0.2500001, 4.99999], np.float32)
    assert list(e2m1_encode(ties)) == [0, 2, 2, 4, 4, 6, 6, 8, 10, 12, 14, 7, 0, 0, 8, 7,
                                       15, 7, 1, 6], list(e2m1_encode(ties))
    # spec gguf-nvfp4.md 2.6: a_b 3, amax 12: scale 0x6E, (1.3, -0.7) -> byte 0xB5
    x = np.zeros(16, np.float32)
    x[:3] = [1.3, -0.7, 3.0]
    p, sc = nvfp4_ref(x, scale_of(np.float32(12.0), 2688))
    assert sc[0] == 0x6E and p[0] == 0xB5, (hex(sc[0]), hex(p[0]))
    assert list(int4_q(np.array([0.5, 1.5, 2.5, -0.5, -1.5, -8.5, 7.5, 99], np.float32),
                       np.float32(1))) == [0, 2, 2, 0, -2, -8, 7, 7]


class Checker:
    def __init__(self):
        self.failures = 0
        self.checks = 0

    def fail(self, line, msg):
        self.failures += 1
        print("MISMATCH [%s]: %s" % (line, msg))

    def compare(self, line, got, want, inputs=None):
        self.checks += 1
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            self.fail(line, "shape %s != %s" % (got.shape, want.shape))
            return
        bad = np.flatnonzero(got.ravel() != want.ravel())
        if bad.size:
            shown = []
            for i in bad[:8]:
                extra = ""
                if inputs is not None and i < inputs.size:
                    extra = " (input %r)" % (inputs.ravel()[i],)
                shown.append("@%d got %s want %s%s" % (i, got.ravel()[i], want.ravel()[i], extra))
            self.fail(line, "%d of %d differ: %s" % (bad.size, got.size, "; ".join(shown)))

    def conv(self, line, dtype, n, inp, out):
        got = np.fromfile(out, dtype="<u4")
        raw = np.fromfile(inp, dtype=np.uint8)
        if dtype == "F16":
            want = widen_f16_exact(raw.view("<u2"))
        else:
            want = f32_bits(load(inp, dtype, n))
        self.compare(line, got, want)

    def amax(self, line, dtype, n, inp, bits):
        want = f32_bits(amax_of(load(inp, dtype, n)))
        self.compare(line, np.uint32(int(bits, 16)), want)

    def scale(self, line, maxbound, amax_bits, bits):
        amax = bits_f32(np.uint32(int(amax_bits, 16)))
        want = f32_bits(scale_of(amax, float(maxbound)))
        self.compare(line, np.uint32(int(bits, 16)), want)

    def fp8(self, line, dtype, n, scale_bits, inp, out):
        x = load(inp, dtype, n)
        s = bits_f32(np.uint32(int(scale_bits, 16)))
        with np.errstate(all="ignore"):
            q = (x / s).astype(np.float32)
        self.compare(line, np.fromfile(out, dtype=np.uint8), fp8_encode(q), x)

    def scales(self, line, dtype, rows, cols, g, inp, out):
        x = load(inp, dtype, rows * cols).reshape(rows, cols // g, g)
        a = np.abs(x)
        a[np.isnan(a)] = 0
        amax = a.max(axis=2)
        want = np.array([scale_of(v, 7.0) for v in amax.ravel()], dtype=np.float32)
        got = np.fromfile(out, dtype="<f4")
        self.compare(line, f32_bits(got), f32_bits(want))

    def e2m1(self, line, n, inp, out):
        y = load(inp, "F32", n)
        self.compare(line, np.fromfile(out, dtype=np.uint8), e2m1_encode(y), y)

    def nvfp4(self, line, dtype, n, gbits, inp, codes, scales):
        x = load(inp, dtype, n)
        want_p, want_s = nvfp4_ref(x, bits_f32(np.uint32(int(gbits, 16))))
        self.compare(line + " scales", np.fromfile(scales, dtype=np.uint8), want_s)
        self.compare(line + " codes", np.fromfile(codes, dtype=np.uint8), want_p)

    def pack(self, line, dtype, rows, cols, g, inp, scales, out):
        w = load(inp, dtype, rows * cols).reshape(rows, cols)
        s = np.fromfile(scales, dtype="<f4").reshape(rows, cols // g)
        q = int4_q(w, np.repeat(s, g, axis=1))
        want = ((q[0::2] & 15) | ((q[1::2] & 15) << 4)).astype(np.uint8)
        got = np.fromfile(out, dtype=np.uint8).reshape(rows // 2, cols)
        self.compare(line, got, want)


def main():
    self_test()
    chk = Checker()
    with open(sys.argv[1]) as f:
        lines = [ln.split() for ln in f if ln.strip()]
    for n, t in enumerate(lines, 1):
        op, args = t[0], t[1:]
        tag = "%d %s" % (n, " ".join(t))
        if op == "conv":
            chk.conv(tag, args[0], int(args[1]), args[2], args[3])
        elif op == "amax":
            chk.amax(tag, args[0], int(args[1]), args[2], args[3])
        elif op == "scale":
            chk.scale(tag, args[0], args[1], args[2])
        elif op == "fp8":
            chk.fp8(tag, args[0], int(args[1]), args[2], args[3], args[4])
        elif op == "scales":
            chk.scales(tag, args[0], int(args[1]), int(args[2]), int(args[3]), args[4], args[5])
        elif op == "pack":
            chk.pack(tag, args[0], int(args[1]), int(args[2]), int(args[3]), args[4], args[5],
                     args[6])
        elif op == "e2m1":
            chk.e2m1(tag, int(args[0]), args[1], args[2])
        elif op == "nvfp4":
            chk.nvfp4(tag, args[0], int(args[1]), args[2], args[3], args[4], args[5])
        else:
            chk.fail(tag, "unknown operation")
    if chk.checks == 0:
        chk.fail("-", "empty manifest")
    print("oracle: %d checks, %d mismatches" % (chk.checks, chk.failures))
    return 1 if chk.failures else 0


if __name__ == "__main__":
    sys.exit(main())
