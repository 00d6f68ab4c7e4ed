#!/usr/bin/env bash
# One prepared GPU check (for a short lease of a GPU machine): build libggml-cuda.so from the pinned ollama
# module, then score the same model on CPU and GPU (log-probs within 1e-3, tokens/s for both) and time
# training on the GPU. Usage: infra/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv || true
export CGO_CFLAGS="-O3 -march=native" CGO_CXXFLAGS="-O3 -march=native"
lib_dir=$PWD/build/cuda
[ -f "$lib_dir/libggml-cuda.so" ] || bash infra/build-cuda.sh "$lib_dir"
export EVOMERGE_CUDA_LIB=$lib_dir/libggml-cuda.so
EVOMERGE_THREADS=4 go test -count=1 -run TestCUDAMatchesCPU -v ./internal/llm
EVOMERGE_BACKEND=cuda go run ./bench/train -device cuda -big -steps 200
