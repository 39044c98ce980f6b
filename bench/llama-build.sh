#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the llama.cpp that bench/bench_gguf_first_token.py runs (issue #13),
# outside the repository, in a per-user cache: the llama.cpp vendored in the
# llama-cpp-python 0.3.36 sdist from PyPI (the version bench/gguf_llama_check.py
# used), only the two programs the benchmark needs, not the Python binding
# (which builds everything, 51 minutes on the 2-core bench machine).
#
#   llama-simple    loads a .gguf (mmap), greedy-decodes -n tokens of a prompt
#   llama-quantize  F16/BF16 .gguf -> Q8_0 etc. (built only with --quantize:
#                   it pulls in llama.cpp's common library: 4 more minutes)
#
# The same tree has convert_hf_to_gguf.py and gguf-py, the status quo the
# benchmark times. A bench tool, not part of CI; the llama.cpp tree is never
# committed.
#
# usage: bench/llama-build.sh [--quantize]     prints the source directory
# env:   LLAMA_CACHE (default ~/.cache/nemockpt), JOBS (default 2),
#        PYTHON (one with pip, for the download; default python3)
set -eu

VERSION=0.3.36
CACHE=${LLAMA_CACHE:-$HOME/.cache/nemockpt}
ROOT=$CACHE/llama.cpp-$VERSION
SRC=$ROOT/llama_cpp_python-$VERSION/vendor/llama.cpp
BUILD=$ROOT/build
JOBS=${JOBS:-2}
TARGETS=llama-simple
[ "${1:-}" = --quantize ] && TARGETS="$TARGETS llama-quantize"

if [ ! -f "$SRC/CMakeLists.txt" ]; then
	mkdir -p "$ROOT/dl"
	# pip knows PyPI's mirrors and checks the sdist's hash.
	"${PYTHON:-python3}" -m pip download --no-deps --no-binary :all: \
		"llama-cpp-python==$VERSION" -d "$ROOT/dl" >&2
	tar -xzf "$ROOT/dl/llama_cpp_python-$VERSION.tar.gz" -C "$ROOT"
fi

# GGML_NATIVE=OFF: ggml's portable x86-64 set (SSE4.2, AVX, AVX2, BMI2, FMA,
# F16C), as bench/gguf_llama_check.py's wheel was built. -march=native on
# the bench VM (Xeon with AMX) builds ggml's AMX path, whose Q8_0 matmul
# segfaulted there in the first decode, on the mount's file and on
# convert_hf_to_gguf.py's alike (the tensors are equal; cf. llama.cpp issue
# 20824, a segfault in ggml_backend_amx_mul_mat). Both sides of the
# benchmark run the same binary. The set is given explicitly: ggml derives
# its defaults from GGML_NATIVE only in a new CMake cache.
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
	-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
	-DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DBUILD_SHARED_LIBS=OFF >&2
# shellcheck disable=SC2086
nice -n 19 cmake --build "$BUILD" -j"$JOBS" --target $TARGETS >&2
echo "$SRC"
