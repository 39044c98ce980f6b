#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes gen.pt with the installed torch (Debian's python3-torch) and
expected.txt describing every tensor in it, for test_torch.c.

    /usr/bin/python3 gen_torch.py OUTDIR      (exit 77 when torch is missing)

expected.txt has one line per tensor, keys as nemockpt joins them (dict keys
and list indexes joined with '.'):
    key dtype ndim shape... stride... storage_offset requires_grad hexbytes
where hexbytes are the tensor's elements in row-major order, as torch itself
lays them out with .contiguous().
"""
import argparse
import io
import os
import sys

try:
    import torch
except ImportError:
    sys.exit(77)


def values(shape, dtype):
    n = 1
    for d in shape:
        n *= d
    return ((torch.arange(n, dtype=torch.int64) % 251) - 125).reshape(shape).to(dtype)


def flatten(obj, key, out):
    if isinstance(obj, torch.Tensor):
        out.append((key, obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{key}.{k}" if key else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{key}.{i}" if key else str(i), out)


def main():
    out = sys.argv[1]
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(values(p.shape, p.dtype))
    base = values((5, 6), torch.float64)
    obj = {
        "model": model.state_dict(),
        "params": model.state_dict(keep_vars=True),
        "views": {"t": base.t(), "col": base[:, 2], "narrow": base[1:4, 2:5]},
        "tied": [base, base],
        "dtypes": {"i32": values((3,), torch.int32), "i16": values((2, 2), torch.int16),
                   "i8": values((4,), torch.int8), "u8": values((4,), torch.uint8),
                   "bool": values((4,), torch.bool), "f16": values((3,), torch.float16),
                   "bf16": values((2, 3), torch.bfloat16)},
        "opt": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": values((2,), torch.float32)}},
                "param_groups": [{"lr": 0.1, "params": [0]}]},
        "empty": torch.zeros((0, 3)),
        "scalar": torch.tensor(7, dtype=torch.int64),
        "extra": io.BytesIO(b"abc"),
        "ns": argparse.Namespace(a=1, dtype=torch.bfloat16),
    }
    torch.save(obj, os.path.join(out, "gen.pt"))
    tensors = []
    flatten(obj, "", tensors)
    with open(os.path.join(out, "expected.txt"), "w") as f:
        for key, t in tensors:
            raw = t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            f.write(" ".join([key, str(t.dtype).replace("torch.", ""), str(t.dim()),
                              *map(str, t.shape), *map(str, t.stride()),
                              str(t.storage_offset()), str(int(t.requires_grad)),
                              raw.hex() or "-"]) + "\n")


if __name__ == "__main__":
    main()
