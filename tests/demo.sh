#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The README's demo: on a fresh Debian 12 machine (as root), installs what is
# missing, builds nemockpt, writes the built-in sample checkpoint (a tiny
# tensor-parallel-2 Llama-style .nemo), mounts it, shows the tree, reads
# files through the mount and compares them with tar's own extraction, then
# unmounts.
set -eu

cd "$(dirname "$0")/.."
pkgs="build-essential cmake pkg-config libfuse3-dev fuse3 libarchive-dev libjansson-dev
libyaml-dev zlib1g-dev libcurl4-openssl-dev libexpat1-dev libssl-dev python3 python3-numpy tar"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo "== building"
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEMOCKPT_BUILD_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" >/dev/null

work=$(mktemp -d)
mnt=$work/mnt
mkdir "$mnt"
cleanup() {
	fusermount3 -u "$mnt" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "== writing the sample checkpoint"
/usr/bin/python3 tests/fixtures/make_sample.py "$work/sample.nemo"
ls -l "$work/sample.nemo"

echo "== mounting: nemockptfs sample.nemo mnt"
build-demo/bin/nemockptfs "$work/sample.nemo" "$mnt"
findmnt "$mnt"

echo "== ls -l mnt mnt/raw mnt/ranks mnt/qnemo/fp8"
ls -l "$mnt" "$mnt/raw" "$mnt/ranks" "$mnt/qnemo/fp8"

echo "== cat mnt/info.json"
cat "$mnt/info.json"

echo "== head mnt/raw/model_config.yaml"
head -n 8 "$mnt/raw/model_config.yaml"

echo "== comparing every file with tar -x"
mkdir "$work/x"
tar -xf "$work/sample.nemo" -C "$work/x"
diff -r "$work/x" "$mnt/raw" && echo "identical: $(cd "$work/x" && find . -type f | wc -l) files"

echo "== the merged model: build-demo/bin/nemockpt ls sample.nemo"
build-demo/bin/nemockpt ls "$work/sample.nemo"

echo "== numpy reads a merged tensor and the merged safetensors header"
/usr/bin/python3 - "$mnt" <<'PY'
import json, struct, sys
import numpy as np
mnt = sys.argv[1]
a = np.load(mnt + "/tensors/model.decoder.layers.0.mlp.linear_fc1.weight.npy")
print("tensors/model.decoder.layers.0.mlp.linear_fc1.weight.npy:", a.dtype, a.shape)
with open(mnt + "/merged/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
print("merged/model.safetensors:", len(header) - 1, "tensors,", header["__metadata__"])
PY

echo "== re-sharded and quantized on the fly: ls -l mnt/ranks/tp1pp2 mnt/nemo/tp1pp1 mnt/qnemo/fp8/tp1pp1"
ls -l "$mnt/ranks/tp1pp2" "$mnt/nemo/tp1pp1" "$mnt/qnemo/fp8/tp1pp1"
/usr/bin/python3 - "$mnt" <<'PY'
import json, struct, sys
mnt = sys.argv[1] + "/qnemo/fp8/tp1pp1/"
with open(mnt + "rank0.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
for k in sorted(header):
    if k.startswith("transformer.layers.0.attention.qkv"):
        print(k, header[k]["dtype"], header[k]["shape"])
print("config.json quantization:", json.load(open(mnt + "config.json"))["quantization"])
PY

echo "== a Hugging Face model directory: ls -l mnt/hf (transformers' from_pretrained loads it)"
ls -l "$mnt/hf"
/usr/bin/python3 - "$mnt" <<'PY'
import json, struct, sys
hf = sys.argv[1] + "/hf/"
c = json.load(open(hf + "config.json"))
print("config.json:", {k: c[k] for k in ("architectures", "num_attention_heads", "num_key_value_heads",
                                          "vocab_size", "tie_word_embeddings", "dtype")})
with open(hf + "model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
for k in sorted(header):
    if k.startswith("model.layers.0.self_attn") or k.startswith("model.layers.0.mlp"):
        print(k, header[k]["dtype"], header[k]["shape"])
PY

echo "== unmounting"
fusermount3 -u "$mnt"
echo "done"
