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
#      exhaustive and random inputs and on a synthetic 2 GiB bf16 weight (fp8,
#      INT4 and NVFP4), with throughputs (GB/s of bf16 input): CPU on one core
#      and on all cores, GPU end to end (host -> device -> host, copies
#      included), and the raw pinned H2D/D2H copy bandwidth;
#   3. the same 2 GiB run with the host buffers staged through pinned memory
#      instead of page-locked (NEMOCKPT_CUDA_REGISTER_MIN), to compare;
#   4. bench_quant: CPU per core / all cores and the GPU backend per operation;
#   5. the qnemo/ views through real mounts (needs FUSE and the CMake build),
#      mounted with -o gpu=0 and -o gpu=off: every file under qnemo/ of the
#      committed fixtures (tests/fuzz/corpus/views/*.nemo) must be equal bit
#      for bit; then the fp8, int4_awq and nvfp4 rank files of a synthetic
#      2 GiB zarr checkpoint (tests/gpu/make_zarr_model.py, stdlib only),
#      each first read timed (GB/s of the file) and set against the copy bound
#      of the pinned H2D/D2H bandwidth gpu_check measured in step 2 (target
#      0.7x or better).
# Without a GPU (nvidia-smi finds none, or GPU_CHECK_CPU=1) the CUDA steps are
# replaced so that the rest of the script is still proven: gpu_check runs
# over the mock backend library (nemockpt_cuda_mock: the real host code of
# the CUDA backend, CPU kernels) on a 256 MiB weight, bench_quant on the CPU,
# and the mounts use -o gpu=auto (CPU) against -o gpu=off.
# Environment: BUILD_DIR (build-gpu), GPU_DIRECT_BUILD=1, GPU_CHECK_CPU=1,
# GPU_CHECK_MIB (the mock run's weight, 256), SYNTH_MODEL_ARGS (options of
# make_zarr_model.py; its defaults make the 2 GiB model).
# Exits 1 on any mismatch or error, 77 when everything ran but the CUDA steps
# were replaced, 0 after a full GPU run. About 2-3 minutes on an H100/H200
# host with 16 cores (most of it the build and the synthetic model).
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
build=${BUILD_DIR:-build-gpu}
jobs=$(nproc)
nvcc=$(command -v nvcc || true)
[ -n "$nvcc" ] || nvcc=/usr/local/cuda/bin/nvcc
cuda_home=$(dirname "$(dirname "$nvcc")")
t0=$(date +%s)

have_gpu=0
if [ "${GPU_CHECK_CPU:-0}" != 1 ] && nvidia-smi -L >/dev/null 2>&1; then
	have_gpu=1
fi

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current \
	--format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
echo "cpus: $jobs; nvcc: $nvcc; $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null || true)"
[ $have_gpu = 1 ] || echo "no GPU: the CUDA steps are replaced (see the header of this script)"

# Direct build of the quant targets (no CMake project: no FUSE, libarchive...).
build_direct() {
	local out=$build/direct
	mkdir -p "$out/lib/nemockpt" "$out/bin" "$out/obj"
	local lib=$out/lib/nemockpt/libnemockpt_cuda.so
	case $lib in /*) ;; *) lib=$root/$lib ;; esac
	local cflags=(-std=c11 -O3 -D_GNU_SOURCE -Isrc -Iinclude -ffp-contract=off
		-fno-trapping-math -DNCK_VERSION=\"gpu-check\")
	"$nvcc" -O3 -std=c++17 -Xcompiler=-fPIC,-fvisibility=hidden -ftz=false -prec-div=true \
		-prec-sqrt=true -fmad=false -Isrc -Iinclude \
		--generate-code=arch=compute_80,code=sm_80 \
		"--generate-code=arch=compute_90,code=[compute_90,sm_90]" \
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
	gcc "${cflags[@]}" -shared -fPIC -fvisibility=hidden -isystem "$cuda_home/include" \
		tests/gpu/mock_cudart.c src/gpu/cuda_backend.c src/quant/quant.c \
		-o "$out/lib/libnemockpt_cuda_mock.so" -lpthread
	bin=$out/bin
	mock=$out/lib/libnemockpt_cuda_mock.so
}

echo "== build"
mkdir -p "$build"
log=$build/configure.log
if [ "${GPU_DIRECT_BUILD:-0}" != 1 ] &&
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNEMOCKPT_CUDA=ON \
		-DCMAKE_CUDA_COMPILER="$nvcc" -DNEMOCKPT_INTEGRATION_TESTS=OFF \
		>"$log" 2>&1
then
	cmake --build "$build" -j"$jobs" --target gpu_check bench_quant nemockpt_cuda \
		nemockpt_cuda_mock nemockptfs
	bin=$build/bin
	mock=$build/tests/gpu/libnemockpt_cuda_mock.so
else
	echo "no CMake build (GPU_DIRECT_BUILD=1, or see $log); building directly:"
	grep -m3 -i "error\|not found" "$log" 2>/dev/null || true
	build_direct
fi
echo "build: $(( $(date +%s) - t0 )) s"

status=0
gpulog=$build/gpu_check.log
if [ $have_gpu = 1 ]; then
	echo "== gpu_check (page-locked caller buffers for inputs >= 64 MiB)"
	"$bin/gpu_check" | tee "$gpulog" || status=1
	echo "== gpu_check, 2 GiB part staged through pinned buffers"
	NEMOCKPT_CUDA_REGISTER_MIN=$((1 << 62)) "$bin/gpu_check" --skip-varied || status=1
	echo "== bench_quant (512 MiB bf16)"
	"$bin/bench_quant" --mib 512 --backend 0 --min-seconds 0.3 || status=1
	modes="0 off"
else
	echo "== gpu_check over the mock backend library (host code of the CUDA backend, CPU kernels)"
	"$bin/gpu_check" --library "$mock" --mib "${GPU_CHECK_MIB:-256}" | tee "$gpulog" ||
		status=1
	echo "== bench_quant (256 MiB bf16, CPU only)"
	"$bin/bench_quant" --mib 256 --min-seconds 0.3 || status=1
	modes="auto off"
fi
h2d=$(sed -n 's/.*H2D \([0-9.]*\) GB\/s.*/\1/p' "$gpulog" | tail -1)
d2h=$(sed -n 's/.*D2H \([0-9.]*\) GB\/s.*/\1/p' "$gpulog" | tail -1)

# Mounts $1 once per mode (extra options $2); `mounted` names the mode dirs.
mount_both() {
	local src=$1 opt=$2 mode
	for mode in $modes; do
		mkdir -p "$build/mnt-$mode"
		"$bin/nemockptfs" "$src" "$build/mnt-$mode" -o "gpu=$mode${opt:+,$opt}" || return 1
	done
}

unmount_both() {
	local mode
	for mode in $modes; do
		fusermount3 -u "$build/mnt-$mode" || true
	done
}

# Reads and compares every file under qnemo/ of both mounts of $1 (options $2).
check_all_files() {
	local a=${modes%% *} b=${modes##* } n=0 f rc=0
	mount_both "$1" "$2" || return 1
	while IFS= read -r f; do
		cmp "$build/mnt-$a/$f" "$build/mnt-$b/$f" || rc=1
		n=$((n + 1))
	done < <(cd "$build/mnt-$a" && find qnemo -type f | sort)
	echo "$1: $n files under qnemo/ equal (gpu=$a vs gpu=$b)"
	[ "$n" -gt 0 ] || rc=1
	unmount_both
	return $rc
}

# Times the first read of every rank file of the view dirs $3... of $1
# (options $2) on both mounts, compares them, and sets the gpu= mount's GB/s
# against the copy bound: the file's quantized bytes come from `in` input
# bytes each (fp8 2, int4_awq ~3.6, nvfp4 ~3.6) over H2D, and go back over
# D2H, in parallel, so bound = min(H2D / in, D2H) (file bytes per second).
check_timed() {
	local src=$1 opt=$2 a=${modes%% *} b=${modes##* } dir f rel size t1 t2 t3 t4 in rc=0
	shift 2
	mount_both "$src" "$opt" || return 1
	for dir in "$@"; do
		case $dir in
		qnemo/fp8/*) in=2 ;;
		*) in=3.5556 ;; # 2 bytes in, 0.5 + 1/16 (nvfp4) or 0.5 + 4/128 (int4) out
		esac
		for f in "$build/mnt-$a/$dir"/rank*.safetensors; do
			rel=${f#"$build"/mnt-"$a"/}
			size=$(stat -c %s "$f")
			t1=$(date +%s.%N); cat "$f" >/dev/null; t2=$(date +%s.%N)
			t3=$(date +%s.%N); cat "$build/mnt-$b/$rel" >/dev/null; t4=$(date +%s.%N)
			awk -v f="$rel" -v n="$size" -v a="$t1" -v b="$t2" -v c="$t3" -v e="$t4" \
				-v h="${h2d:-0}" -v d="${d2h:-0}" -v ib="$in" -v ma="$a" -v mb="$b" 'BEGIN {
				g = n / (b - a) / 1e9; bound = (h / ib < d ? h / ib : d)
				printf "%s: %.1f MiB, first read gpu=%s %.2f GB/s, gpu=%s %.2f GB/s",
					f, n / 1048576, ma, g, mb, n / (e - c) / 1e9
				if (bound > 0)
					printf "; copy bound %.2f GB/s: %.2fx", bound, g / bound
				printf "\n" }' || rc=1
			cmp "$f" "$build/mnt-$b/$rel" || rc=1
		done
	done
	unmount_both
	return $rc
}

echo "== qnemo views through the mount: gpu=${modes%% *} == gpu=${modes##* }, bit for bit"
if [ "$bin" != "$build/bin" ] || [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "mount check not possible here (no CMake build with FUSE, or no /dev/fuse): FAILED"
	status=1
else
	for fx in tests/fuzz/corpus/views/*.nemo; do
		check_all_files "$fx" group_size=8 || status=1
	done
	model=$build/model-2g
	# shellcheck disable=SC2086 # SYNTH_MODEL_ARGS: options for the generator, split on spaces
	[ -f "$model/model_config.yaml" ] ||
		python3 tests/gpu/make_zarr_model.py "$model" ${SYNTH_MODEL_ARGS:-}
	check_timed "$model" "" qnemo/fp8/tp2pp1 qnemo/nvfp4/tp2pp1 qnemo/int4_awq/tp2pp1 ||
		status=1
fi
if [ $status = 0 ] && [ $have_gpu = 0 ]; then
	echo "== total $(( $(date +%s) - t0 )) s; OK without the CUDA steps (no GPU): 77"
	exit 77
fi
echo "== total $(( $(date +%s) - t0 )) s; $([ $status = 0 ] && echo OK || echo FAILED)"
exit $status
