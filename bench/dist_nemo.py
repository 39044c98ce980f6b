#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A large NeMo 1 .nemo with a Megatron-Core zarr distributed checkpoint,
for the remote benchmark (docs/PERFORMANCE.md): about 6 GB and 1,300
members by default, written as a sparse file (tensor chunks are holes, so
it takes a few MB of disk and a few seconds to write).

Layout as the test fixture nemo1_dist_zarr (tests/fixtures/make_fixtures.py):
model_config.yaml with dist_ckpt_format zarr, the SentencePiece tokenizer,
model_weights/metadata.json, common.pt and one directory per tensor with
.zarray and one raw chunk per shard of a TP=T save, layers stacked on a
leading axis (chunk [1, rows/T, cols] for column-parallel weights, fc1 cut
in 2T chunks as [gate_r; up_r], [1, rows, cols/T] for row-parallel ones).

  /usr/bin/python3 bench/dist_nemo.py OUT.nemo [--hidden H] [--layers L] [--tp T]
"""
import argparse
import io
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
from fixturelib import model as M, writers as W  # noqa: E402
import make_fixtures as F  # noqa: E402


def tensors(h, ffn, heads, groups, layers, tp, vocab_rows):
    """(key, global shape, chunk shape) of every weight, MCore names."""
    d = h // heads
    qkv = (heads + 2 * groups) * d
    p = "model."
    L = "model.decoder.layers."
    return [
        (p + "embedding.word_embeddings.weight", (vocab_rows, h), (vocab_rows // tp, h)),
        (L + "self_attention.linear_qkv.layer_norm_weight", (layers, h), (1, h)),
        (L + "self_attention.linear_qkv.weight", (layers, qkv, h), (1, qkv // tp, h)),
        (L + "self_attention.linear_proj.weight", (layers, h, h), (1, h, h // tp)),
        (L + "mlp.linear_fc1.layer_norm_weight", (layers, h), (1, h)),
        (L + "mlp.linear_fc1.weight", (layers, 2 * ffn, h), (1, ffn // tp, h)),
        (L + "mlp.linear_fc2.weight", (layers, h, ffn), (1, h, ffn // tp)),
        (p + "decoder.final_layernorm.weight", (h,), (h,)),
        (p + "output_layer.weight", (vocab_rows, h), (vocab_rows // tp, h)),
    ]


def config(h, ffn, heads, groups, layers, tp, art):
    """model_config.yaml: the fixture's, with these dimensions."""
    text = F.nemo1_config(tp, 1, False, art, "zarr", groups=groups)
    for key, val in (("num_layers", layers), ("hidden_size", h), ("ffn_hidden_size", ffn),
                     ("num_attention_heads", heads), ("encoder_seq_length", 4096),
                     ("max_position_embeddings", 4096)):
        lines = text.splitlines()
        lines = [("%s: %d" % (key, val)) if ln.startswith(key + ":") else ln for ln in lines]
        text = "\n".join(lines) + "\n"
    return text


class SparseTar:
    """A PAX tar whose file data may be holes (seeked over, never written)."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.n = 0

    def _add(self, name, type_, size):
        ti = tarfile.TarInfo(name)
        ti.type = type_
        ti.size = size
        ti.mode = 0o755 if type_ == tarfile.DIRTYPE else 0o644
        ti.mtime = 1609459200
        self.f.write(ti.tobuf(format=tarfile.PAX_FORMAT))
        self.n += 1

    def dir(self, name):
        self._add(name, tarfile.DIRTYPE, 0)

    def file(self, name, data):
        self._add(name, tarfile.REGTYPE, len(data))
        self.f.write(data + b"\0" * (-len(data) % 512))

    def hole(self, name, size):
        self._add(name, tarfile.REGTYPE, size)
        self.f.seek(size + (-size % 512), os.SEEK_CUR)

    def close(self):
        self.f.write(b"\0" * 1024)
        self.f.close()


def write(path, h=3072, ffn=8192, heads=24, groups=8, layers=30, tp=8):
    art, spm = F.tokenizer_artifact("bench_dist")
    vocab_rows = M.padded_vocab(tp)
    tmp = path + ".tmp"
    t = SparseTar(tmp)
    t.dir("./")
    t.file("./model_config.yaml", config(h, ffn, heads, groups, layers, tp, art).encode())
    t.file("./" + art, spm)
    t.dir("./model_weights/")
    t.file("./model_weights/metadata.json", F.metadata_json("zarr").encode())
    buf = io.BytesIO()
    import torch
    torch.save({}, buf)
    t.file("./model_weights/common.pt", buf.getvalue())
    total = 0
    for key, shape, chunk in tensors(h, ffn, heads, groups, layers, tp, vocab_rows):
        t.dir("./model_weights/%s/" % key)
        t.file("./model_weights/%s/.zarray" % key, W.zarray_json(shape, chunk, "BF16").encode())
        grid = [s // c for s, c in zip(shape, chunk)]
        nbytes = 2
        for c in chunk:
            nbytes *= c
        idx = [0] * len(grid)
        while True:
            t.hole("./model_weights/%s/%s" % (key, ".".join(map(str, idx))), nbytes)
            total += nbytes
            k = len(idx) - 1
            while k >= 0:
                idx[k] += 1
                if idx[k] < grid[k]:
                    break
                idx[k] = 0
                k -= 1
            if k < 0:
                break
    t.close()
    os.rename(tmp, path)
    return t.n, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=3072)
    ap.add_argument("--ffn", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--tp", type=int, default=8)
    a = ap.parse_args()
    n, total = write(a.out, a.hidden, a.ffn, 24, 8, a.layers, a.tp)
    print("%s: %d members, %.2f GB of tensor data, %.2f GB file"
          % (a.out, n, total / 1e9, os.path.getsize(a.out) / 1e9))


if __name__ == "__main__":
    main()
