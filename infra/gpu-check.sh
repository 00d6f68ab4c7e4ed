#!/usr/bin/env bash
# One prepared GPU check (issue 14 item 7), sized for a short lease of a GPU machine:
#   1. build libggml-cuda.so from the pinned ollama module (infra/build-cuda.sh), unless given;
#   2. score the same model on CPU and GPU (TestCUDAMatchesCPU: log-probs within 1e-3);
#   3. inference at real size on the GPU, through the same code as `make bench-real` (bench/real's engine
#      rows): prompt tok/s (500 tokens), scoring items/s, generation tok/s for TinyLlama's shape and the 106M
#      shape in F16 and BF16 (llama.cpp's CPU reference is not run on a GPU);
#   4. training at real size (bench/train): full and LoRA tokens/s at the 113.7M and 106M shapes, and
#      TinyLlama's shape (1.1B) with LoRA over an F16 and a BF16 base and a full fine-tune, with MFU against
#      the card's peak.
#
# Usage:
#   infra/gpu-check.sh [--peak TFLOPS] [--cuda-lib PATH]   on a GPU machine (peak: dense F16/BF16 TFLOP/s of
#                                                           the card, default 989 = H100/H200 SXM)
#   infra/gpu-check.sh --device cpu                          dry run on the CPU: the same steps and code paths
#                                                           with small shapes and 2 threads (no CUDA build, no
#                                                           CPU/GPU comparison), to check the script here
#
# Every step is bounded by `timeout`, so one stuck step cannot eat the lease; a failed step is reported and the
# others still run; the script exits 1 if any step failed, naming them.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
peak=989
lib=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) device=${2:?--device needs cpu or cuda}; shift 2 ;;
    --peak) peak=${2:?--peak needs TFLOP/s}; shift 2 ;;
    --cuda-lib) lib=${2:?--cuda-lib needs a path}; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$device" in cpu | cuda) ;; *) echo "gpu-check: --device $device: want cpu or cuda" >&2; exit 2 ;; esac
[[ "$peak" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "gpu-check: --peak $peak is not a number" >&2; exit 2; }

need() { command -v "$1" >/dev/null || { echo "gpu-check: $1 not found ($2)" >&2; exit 1; }; }
need go "the Go toolchain"
need timeout "coreutils"
export CGO_CFLAGS="-O3 -march=native" CGO_CXXFLAGS="-O3 -march=native"

failed=()
# step NAME SECONDS CMD...: runs CMD under a time limit; a failure is recorded, not fatal.
step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name"
  local rc=0
  timeout "$limit" "$@" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "gpu-check: FAILED ($rc): $name" >&2
    failed+=("$name")
  fi
}

if [[ "$device" == cuda ]]; then
  need nvidia-smi "no NVIDIA driver: this is not a GPU machine (try --device cpu for a dry run)"
  nvidia-smi --query-gpu=name,memory.total --format=csv
  if [[ -z "$lib" ]]; then
    lib_dir=$PWD/build/cuda
    if [[ ! -f "$lib_dir/libggml-cuda.so" ]]; then
      need nvcc "the CUDA toolkit"
      need cmake "cmake"
      bash infra/build-cuda.sh "$lib_dir"
    fi
    lib=$lib_dir/libggml-cuda.so
  fi
  [[ -f "$lib" ]] || { echo "gpu-check: $lib does not exist" >&2; exit 1; }
  threads=4
  # Only the CUDA tests read the library's path from the environment (EVOMERGE_CUDA_LIB); the benchmarks and
  # the engines take the device and the library as flags (the trainer runs on the model's backend).
  step "cuda matches cpu" 300 env EVOMERGE_CUDA_LIB="$lib" go test -count=1 -run TestCUDAMatchesCPU -v ./internal/llm
  step "fine-tune on cuda" 300 env EVOMERGE_CUDA_LIB="$lib" go test -count=1 -run TestFineTuneOnCUDA -v ./internal/train
  infer_shapes=tinyllama,106m infer_types=f16,bf16
  t113=113m t106=106m ttl=tinyllama steps=20 tl_steps=10
else
  threads=2
  infer_shapes=tiny infer_types=f16,bf16
  t113=tiny t106=tiny ttl=tiny steps=1 tl_steps=1
fi

mkdir -p build
go build -o build/bench-train ./bench/train
go build -o build/bench-real ./bench/real

# 3. Inference (bench/real's engine rows on this device).
infer=(build/bench-real -only infer -device "$device" -llamacpp=false -infer-shapes "$infer_shapes"
  -types "$infer_types" -threads "$threads" -models build/bench-real-models -reps 2)
if [[ "$device" == cuda ]]; then infer+=(-cuda-lib "$lib"); fi
step "inference $infer_shapes $infer_types" 900 "${infer[@]}"

# 4. Training (bench/train on this device).
dev_flags=(-device "$device")
if [[ "$device" == cuda ]]; then dev_flags+=(-cuda-lib "$lib"); fi
train() { step "bench-train $*" 300 build/bench-train "${dev_flags[@]}" -threads "$threads" -no-ref "$@"; }
train -shape "$t113" -batch 8 -steps "$steps"
train -shape "$t113" -batch 8 -steps "$steps" -method lora
train -shape "$t106" -batch 4 -steps "$steps"
train -shape "$t106" -batch 4 -steps "$steps" -method lora
train -shape "$ttl" -batch 8 -steps "$tl_steps" -method lora -type f16 -peak-tflops "$peak"
train -shape "$ttl" -batch 8 -steps "$tl_steps" -method lora -type bf16 -peak-tflops "$peak"
train -shape "$ttl" -batch 8 -steps "$tl_steps" -peak-tflops "$peak"

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "gpu-check: ${#failed[@]} step(s) failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "gpu-check: all steps passed ($device)"
