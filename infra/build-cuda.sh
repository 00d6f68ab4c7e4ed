#!/usr/bin/env bash
# Build ggml's CUDA backend (libggml-cuda.so + libggml-base.so) from the pinned
# ollama module, for workers started with --backend cuda.
#   ./infra/build-cuda.sh [OUT_DIR]     (default: build/cuda)
# Needs nvcc (CUDA toolkit) and cmake. The module cache is read-only, so the
# sources are copied first. The libraries end up in OUT_DIR itself
# (OUT_DIR/libggml-cuda.so, as infra/gpu-check.sh expects); the path is printed.
set -euo pipefail
OUT=${1:-build/cuda}
command -v nvcc >/dev/null || { echo "build-cuda: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }
command -v cmake >/dev/null || { echo "build-cuda: cmake not found" >&2; exit 1; }

MOD=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
[[ -n "$MOD" && -f "$MOD/CMakeLists.txt" ]] || { echo "build-cuda: ollama module not in the module cache (run go mod download)" >&2; exit 1; }

SRC="$OUT/src"
mkdir -p "$OUT"
if [[ ! -f "$SRC/CMakeLists.txt" ]]; then
  rm -rf "$SRC.tmp"
  cp -r "$MOD" "$SRC.tmp"
  chmod -R u+w "$SRC.tmp"
  mv "$SRC.tmp" "$SRC"
fi
ARCH=${CUDA_ARCHITECTURES:-native}
cmake -S "$SRC" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" >&2
cmake --build "$OUT/build" --target ggml-cuda -j "$(nproc)" >&2
LIB=$(find "$OUT/build" -name 'libggml-cuda.so' | head -n1)
[[ -n "$LIB" ]] || { echo "build-cuda: libggml-cuda.so was not produced" >&2; exit 1; }
# Copy the backend and the ggml-base library it links against next to each other.
for f in "$(dirname "$LIB")"/libggml-*.so*; do
  cp -P "$f" "$OUT/"
done
realpath "$OUT/libggml-cuda.so"
