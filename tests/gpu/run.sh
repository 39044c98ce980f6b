#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# GPU check of the quantization kernels, for a machine with an NVIDIA GPU
# (run from the repository root: bash tests/gpu/run.sh):
#   1. configures and builds with -DNEMOCKPT_CUDA=ON into build-gpu (only the
#      targets needed); if the project cannot be configured there (a library
#      the FUSE side needs is missing), builds the same targets directly with
#      gcc and nvcc into build-gpu/direct;
#   2. gpu_check: the CUDA backend == the CPU backend, bit for bit, on
#      exhaustive and random inputs and on a synthetic 2 GiB bf16 weight (fp8
#      and INT4), with throughputs (GB/s of bf16 input): CPU on one core and
#      on all cores, GPU end to end (host -> device -> host, copies
#      included), and the raw pinned H2D/D2H copy bandwidth;
#   3. the same 2 GiB run with the host buffers staged through pinned memory
#      instead of page-locked (NEMOCKPT_CUDA_REGISTER_MIN), to compare;
#   4. bench_quant: CPU per core / all cores and the GPU backend per operation;
#   5. the qnemo/ views through real mounts (needs FUSE and the CMake build):
#      the committed tiny fixture and a synthetic 2 GiB zarr checkpoint
#      (tests/gpu/make_zarr_model.py, stdlib only) mounted with -o gpu=0 and
#      -o gpu=off; every fp8 and int4_awq rank file must be equal bit for
#      bit, and the first read of each is timed (GB/s of the file: compare
#      with the pinned copy bandwidth gpu_check printed in step 2).
# Exits non-zero on any mismatch or error. About 1-2 minutes on an H100 host
# with 16 cores (most of it the build).
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
build=${BUILD_DIR:-build-gpu}
jobs=$(nproc)
nvcc=$(command -v nvcc || true)
[ -n "$nvcc" ] || nvcc=/usr/local/cuda/bin/nvcc
cuda_home=$(dirname "$(dirname "$nvcc")")
t0=$(date +%s)

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current \
	--format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
echo "cpus: $jobs; nvcc: $nvcc"

# Direct build of the quant targets (no CMake project: no FUSE, libarchive...).
build_direct() {
	local out=$build/direct
	mkdir -p "$out/lib/nemockpt" "$out/bin" "$out/obj"
	local lib=$root/$out/lib/nemockpt/libnemockpt_cuda.so
	local cflags=(-std=c11 -O3 -D_GNU_SOURCE -Isrc -Iinclude -ffp-contract=off
		-fno-trapping-math -DNCK_VERSION=\"gpu-check\")
	"$nvcc" -O3 -std=c++17 -Xcompiler=-fPIC,-fvisibility=hidden -ftz=false -prec-div=true \
		-prec-sqrt=true -fmad=false -Isrc -Iinclude \
		--generate-code=arch=compute_80,code=sm_80 \
		--generate-code=arch=compute_90,code=[compute_90,sm_90] \
		-c src/gpu/kernels.cu -o "$out/obj/kernels.o"
	gcc "${cflags[@]}" -fPIC -fvisibility=hidden -isystem "$cuda_home/include" \
		-c src/gpu/cuda_backend.c -o "$out/obj/cuda_backend.o"
	"$nvcc" -shared -cudart static -o "$lib" "$out/obj/kernels.o" "$out/obj/cuda_backend.o" \
		-Xlinker --exclude-libs,ALL -lpthread
	local quant=(src/quant/quant.c src/quant/backend.c src/util/log.c src/util/diag.c src/util/dtype.c)
	gcc "${cflags[@]}" -DNCK_QUANT_CUDA_BUILD_PATH=\""$lib"\" -isystem "$cuda_home/include" \
		tests/gpu/gpu_check.c "${quant[@]}" -o "$out/bin/gpu_check" \
		-L"$cuda_home/lib64" -lcudart_static -lpthread -ldl -lrt
	gcc "${cflags[@]}" -DNCK_QUANT_CUDA_BUILD_PATH=\""$lib"\" bench/bench_quant.c \
		"${quant[@]}" -o "$out/bin/bench_quant" -lpthread -ldl
	bin=$out/bin
}

echo "== build"
mkdir -p "$build"
log=$build/configure.log
if [ "${GPU_DIRECT_BUILD:-0}" != 1 ] &&
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNEMOCKPT_CUDA=ON \
		-DCMAKE_CUDA_COMPILER="$nvcc" -DNEMOCKPT_INTEGRATION_TESTS=OFF \
		>"$log" 2>&1
then
	cmake --build "$build" -j"$jobs" --target gpu_check bench_quant nemockpt_cuda
	bin=$build/bin
else
	echo "no CMake build (GPU_DIRECT_BUILD=1, or see $log); building directly:"
	grep -m3 -i "error\|not found" "$log" 2>/dev/null || true
	build_direct
fi
echo "build: $(( $(date +%s) - t0 )) s"

status=0
echo "== gpu_check (page-locked caller buffers for inputs >= 64 MiB)"
"$bin/gpu_check" || status=1
echo "== gpu_check, 2 GiB part staged through pinned buffers"
NEMOCKPT_CUDA_REGISTER_MIN=$((1 << 62)) "$bin/gpu_check" --skip-varied || status=1
echo "== bench_quant (512 MiB bf16)"
"$bin/bench_quant" --mib 512 --backend 0 --min-seconds 0.3 || status=1

# Mounts $1 twice (gpu=0, gpu=off; extra options $2), reads every quantized
# rank file of layout $3 from both, times the reads and compares the bytes.
check_views() {
	local src=$1 opt=$2 layout=$3 mode f rel size a b c e
	for mode in 0 off; do
		mkdir -p "$build/mnt-$mode"
		"$bin/nemockptfs" "$src" "$build/mnt-$mode" -o "gpu=$mode${opt:+,$opt}" || return 1
	done
	for f in "$build"/mnt-0/qnemo/{fp8,int4_awq}/"$layout"/rank*.safetensors; do
		rel=${f#"$build"/mnt-0/}
		size=$(stat -c %s "$f")
		a=$(date +%s.%N); cat "$f" >/dev/null; b=$(date +%s.%N)
		c=$(date +%s.%N); cat "$build/mnt-off/$rel" >/dev/null; e=$(date +%s.%N)
		awk -v f="$rel" -v n="$size" -v a="$a" -v b="$b" -v c="$c" -v e="$e" 'BEGIN {
			printf "%s: %.1f MiB, first read gpu %.2f GB/s, cpu %.2f GB/s\n",
				f, n / 1048576, n / (b - a) / 1e9, n / (e - c) / 1e9 }'
		cmp "$f" "$build/mnt-off/$rel" || return 1
	done
	fusermount3 -u "$build/mnt-0"
	fusermount3 -u "$build/mnt-off"
}

echo "== qnemo views through the mount: gpu=0 == gpu=off, bit for bit"
if [ "$bin" != "$build/bin" ] || [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "mount check not possible here (no CMake build with FUSE, or no /dev/fuse): FAILED"
	status=1
else
	cmake --build "$build" -j"$jobs" --target nemockptfs
	model=$build/model-2g
	[ -f "$model/model_config.yaml" ] || python3 tests/gpu/make_zarr_model.py "$model"
	check_views tests/fuzz/corpus/views/nemo1_tp2pp2_tied.nemo group_size=8 tp2pp2 || status=1
	check_views "$model" "" tp2pp1 || status=1
fi
echo "== total $(( $(date +%s) - t0 )) s; $([ $status = 0 ] && echo OK || echo FAILED)"
exit $status
