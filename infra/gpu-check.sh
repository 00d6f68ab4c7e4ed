#!/usr/bin/env bash
# One prepared GPU check (for a short lease of a GPU machine): build libggml-cuda.so from the pinned ollama
# module, score the same model on CPU and GPU (log-probs within 1e-3, tokens/s for both), then the real-size
# training benchmark on CUDA: full and LoRA tokens/s at the 113.7M and 106M shapes, and TinyLlama's shape
# (1.1B) with LoRA over an F16 and a BF16 base with MFU against the card's peak. Usage:
#   infra/gpu-check.sh [peak dense F16/BF16 TFLOP/s of the card, default 989 (H100/H200 SXM)]
# Every step is bounded by `timeout` so one stuck step cannot eat the lease.
set -euo pipefail
cd "$(dirname "$0")/.."
peak=${1:-989}
nvidia-smi --query-gpu=name,memory.total --format=csv || true
export CGO_CFLAGS="-O3 -march=native" CGO_CXXFLAGS="-O3 -march=native"
lib_dir=$PWD/build/cuda
[ -f "$lib_dir/libggml-cuda.so" ] || bash infra/build-cuda.sh "$lib_dir"
export EVOMERGE_CUDA_LIB=$lib_dir/libggml-cuda.so
export EVOMERGE_BACKEND=cuda # the trainer's backend follows the environment until it takes the model's options
EVOMERGE_THREADS=4 timeout 300 go test -count=1 -run TestCUDAMatchesCPU -v ./internal/llm
go build -o build/bench-train ./bench/train
run() { echo "== bench-train $*"; timeout 240 build/bench-train -device cuda -threads 4 "$@" || echo "FAILED ($?): $*"; }
run -shape 113m -batch 8 -steps 20
run -shape 113m -batch 8 -steps 20 -method lora
run -shape 106m -batch 4 -steps 20
run -shape 106m -batch 4 -steps 20 -method lora
run -shape tinyllama -batch 8 -steps 10 -method lora -type f16 -peak-tflops "$peak"
run -shape tinyllama -batch 8 -steps 10 -method lora -type bf16 -peak-tflops "$peak"
run -shape tinyllama -batch 8 -steps 5 -peak-tflops "$peak"
