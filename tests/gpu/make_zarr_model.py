#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes a synthetic Llama-style NeMo 1 checkpoint with a zarr distributed
checkpoint (model_config.yaml + model_weights/ with metadata.json and one
directory per key: .zarray and raw bf16 chunk files), using only the
standard library, so that the GPU check runs on machines without numpy or
torch. Values are random bf16 numbers of magnitude below 2 (no NaN or inf).

usage: make_zarr_model.py OUTDIR [--layers N] [--hidden H] [--ffn F]
"""
import argparse
import json
import os

# bf16 little-endian: every byte is mapped into 0x38..0x3F or 0xB8..0xBF, so
# a high byte (sign and exponent) gives |x| in [2^-15, 2): finite, varied.
TABLE = bytes((0x38 | (b & 7)) | (b & 0x80) for b in range(256))


def write_array(root, key, shape, chunks, per_chunk_files):
    d = os.path.join(root, key)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, ".zarray"), "w") as f:
        json.dump({"chunks": chunks, "compressor": None, "dtype": "bfloat16", "fill_value": None,
                   "filters": None, "order": "C", "shape": shape, "zarr_format": 2}, f, indent=4)
    n = 2
    for c in chunks:
        n *= c
    for name in per_chunk_files:
        with open(os.path.join(d, name), "wb") as f:
            left = n
            while left:
                k = min(left, 64 << 20)
                f.write(os.urandom(k).translate(TABLE))
                left -= k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    h, L, f, n, g, v = a.hidden, a.layers, a.ffn, a.heads, a.groups, a.vocab
    d = h // n
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "model_config.yaml"), "w") as fh:
        fh.write(f"""mcore_gpt: true
precision: bf16
tensor_model_parallel_size: 1
pipeline_model_parallel_size: 1
encoder_seq_length: 4096
max_position_embeddings: 4096
num_layers: {L}
hidden_size: {h}
ffn_hidden_size: {f}
num_attention_heads: {n}
num_query_groups: {g}
kv_channels: null
make_vocab_size_divisible_by: 128
normalization: rmsnorm
activation: fast-swiglu
bias: false
share_embeddings_and_output_weights: false
position_embedding_type: rope
layernorm_epsilon: 1.0e-05
""")
    w = os.path.join(a.out, "model_weights")
    os.makedirs(w, exist_ok=True)
    with open(os.path.join(w, "metadata.json"), "w") as fh:
        json.dump({"sharded_backend": "zarr", "sharded_backend_version": 1,
                   "common_backend": "torch", "common_backend_version": 1}, fh)
    layers = [f"{i}.0.0" for i in range(L)]
    norms = [f"{i}.0" for i in range(L)]
    p = "model.decoder.layers."
    write_array(w, "model.embedding.word_embeddings.weight", [v, h], [v, h], ["0.0"])
    write_array(w, "model.output_layer.weight", [v, h], [v, h], ["0.0"])
    write_array(w, "model.decoder.final_layernorm.weight", [h], [h], ["0"])
    write_array(w, p + "self_attention.linear_qkv.layer_norm_weight", [L, h], [1, h], norms)
    write_array(w, p + "mlp.linear_fc1.layer_norm_weight", [L, h], [1, h], norms)
    write_array(w, p + "self_attention.linear_qkv.weight", [L, (n + 2 * g) * d, h],
                [1, (n + 2 * g) * d, h], layers)
    write_array(w, p + "self_attention.linear_proj.weight", [L, h, n * d], [1, h, n * d], layers)
    write_array(w, p + "mlp.linear_fc1.weight", [L, 2 * f, h], [1, 2 * f, h], layers)
    write_array(w, p + "mlp.linear_fc2.weight", [L, h, f], [1, h, f], layers)


if __name__ == "__main__":
    main()
