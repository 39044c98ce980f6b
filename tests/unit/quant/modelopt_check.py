#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NVFP4 of the numpy oracle (quant_oracle.py, which test_quant.c checks the C
code against) and of nemockpt's qnemo/nvfp4 view against NVIDIA ModelOpt's
own functions (modelopt.torch.quantization.qtensor.NVFP4QTensor), on the CPU.

Not part of ctest: it needs a virtual environment with nvidia-modelopt and a
PyPI torch (>= 2.1 for float8_e4m3fn), which the project does not install.

usage: VENV/bin/python modelopt_check.py [MOUNTED_ZARR_MODEL_DIR MOUNTPOINT]

 1. every bf16 bit pattern (65,536 values as 4,096 blocks of 16, also
    shuffled) at several global scales: ModelOpt's quantize() with that
    weights_scaling_factor_2 against quant_oracle.nvfp4_ref(), bit for bit
    (packed codes and E4M3 block scales); NaN and inf inputs are left out
    (ModelOpt's amax propagates NaN, nemockpt ignores it: docs/DECISIONS.md);
 2. given a zarr model (tests/gpu/make_zarr_model.py) and a mount of it:
    dense, fc, gate and proj of every layer of qnemo/nvfp4/tp1pp1/rank0
    against ModelOpt's quantize() of the same weight with the global scale
    get_weights_scaling_factor_2() of the merged tensor (fc1 for fc, gate).
Exit 0 when everything matches.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from modelopt.torch.quantization.qtensor import NVFP4QTensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quant_oracle as qo  # noqa: E402

failures = 0


def expect(what, got, want):
    global failures
    got, want = np.asarray(got), np.asarray(want)
    bad = np.flatnonzero(got.ravel() != want.ravel()) if got.shape == want.shape else [-1]
    if len(bad):
        failures += 1
        print(f"MISMATCH {what}: {len(bad)} differ, first at {bad[0]}")
    else:
        print(f"ok {what}: {got.size} bytes")


def modelopt(w_bf16_u16, g):
    """ModelOpt's packed codes and E4M3 scales (as bytes) of a bf16 [rows, cols] array."""
    t = torch.from_numpy(w_bf16_u16.astype(np.int16)).view(torch.bfloat16)
    q, s, _ = NVFP4QTensor.quantize(t, 16, weights_scaling_factor_2=torch.tensor(g,
                                                                                 dtype=torch.float32))
    return q._quantized_data.numpy().view(np.uint8), s.view(torch.uint8).numpy()


def exhaustive():
    v = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    finite = ((v >> 7) & 0xFF) != 0xFF
    for order, vals in (("sorted", v[finite]), ("shuffled", v[finite][np.argsort(
            (np.arange(finite.sum()) * 40503) % 65536, kind="stable")])):
        vals = vals[:vals.size // 16 * 16]
        x = (vals.astype(np.uint32) << 16).view(np.float32)
        for g in (1.0, 2.0 ** -20, 2.0 ** 20, 0.3 / 2688, 1e-3, float(qo.scale_of(
                np.float32(np.abs(x).max()), 2688))):
            g = np.float32(g)
            mp, ms = modelopt(vals.reshape(-1, 16), g)
            op, os_ = qo.nvfp4_ref(x, g)
            expect(f"exhaustive {order} g={g:.3g} scales", ms.ravel(), os_)
            expect(f"exhaustive {order} g={g:.3g} codes", mp.ravel(), op)


def parse(path):
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    hdr.pop("__metadata__", None)
    return {k: data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
            for k, v in hdr.items()}, hdr


def mounted(src, mnt):
    """dense, fc, gate and proj of every layer of qnemo/nvfp4/tp1pp1 (whole
    tensors at T=1; fc and gate are fc1's halves and share its global scale)."""
    w = Path(src) / "model_weights"
    p = "model.decoder.layers."
    tensors, hdr = parse(Path(mnt) / "qnemo" / "nvfp4" / "tp1pp1" / "rank0.safetensors")
    for k in range(len([n for n in hdr if n.endswith("attention.dense.weight")])):
        def chunk(key):
            raw = np.fromfile(w / (p + key) / f"{k}.0.0", "<u2")
            shape = json.loads((w / (p + key) / ".zarray").read_text())["shape"][1:]
            return raw.reshape(shape)
        fc1 = chunk("mlp.linear_fc1.weight")
        f = fc1.shape[0] // 2
        for name, a, merged in (("attention.dense", chunk("self_attention.linear_proj.weight"),
                                 None), ("mlp.proj", chunk("mlp.linear_fc2.weight"), None),
                                ("mlp.fc", fc1[:f], fc1), ("mlp.gate", fc1[f:], fc1)):
            merged = a if merged is None else merged
            m = torch.from_numpy(merged.astype(np.int16)).view(torch.bfloat16)
            g = NVFP4QTensor.get_weights_scaling_factor_2(m).float()
            mp, ms = modelopt(a, g.item())
            base = f"transformer.layers.{k}.{name}."
            expect(f"{base} global", np.frombuffer(tensors[base + "weights_scaling_factor_2"],
                                                   "<f4"), np.array([g.item()], np.float32))
            expect(f"{base} codes", np.frombuffer(tensors[base + "weight"], np.uint8), mp.ravel())
            expect(f"{base} scales", np.frombuffer(tensors[base + "weights_scaling_factor"],
                                                   np.uint8), ms.ravel())


def main():
    print(f"torch {torch.__version__}")
    exhaustive()
    if len(sys.argv) == 3:
        mounted(sys.argv[1], sys.argv[2])
    print(f"modelopt_check: {'OK' if failures == 0 else 'FAILED'} ({failures} mismatches)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
