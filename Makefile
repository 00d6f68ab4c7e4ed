# EvoMerge build. ggml is compiled through cgo from the pinned ollama module; -O3 -march=native makes its
# CPU kernels about 5x faster than the module's default flags (SSE2 only).
# PORTABLE=1 builds for exactly x86-64-v3 instead (AVX2, FMA, F16C): slower on newer CPUs than native, but
# the same bytes on every x86-64-v3 machine with this toolchain (README: CPU kinds). GOAMD64=v1 keeps Go's
# own arithmetic free of fused multiply-adds whatever the environment says.
ifeq ($(PORTABLE),1)
export CGO_CFLAGS   := -O3 -march=x86-64-v3 -mtune=generic
export CGO_CXXFLAGS := -O3 -march=x86-64-v3 -mtune=generic
export GOAMD64      := v1
else
export CGO_CFLAGS   ?= -O3 -march=native
export CGO_CXXFLAGS ?= -O3 -march=native
endif
GO ?= go
PY := /usr/bin/python3

.PHONY: all build test test-report test-portable vet fuzz fuzz-short quickstart experiment-demo bench-llm bench-train bench-merge bench-real chaos cuda python-deps check-llamacpp llamacpp-npm gpu-check-dry

all: build

build:
	$(GO) build -o bin/ ./starter ./workers ./infra/evomerge-server

vet:
	$(GO) vet ./...

# Every test. ggml threads busy-wait, so every test gives the engines Threads: 1 itself (the engines read no environment).
test:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 45m ./...
	$(MAKE) fuzz-short

# The HTML reports opened in a real headless browser (Debian's chromium, installed when missing); in
# `make test` this check skips, saying why, where no chromium is installed.
test-report:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (apt)"; \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium; else sudo apt-get install -y chromium; fi; }
	$(GO) test -count=1 -v -run 'TestReportsInHeadlessBrowser|TestRender' ./internal/report

# The portable build's promise: a short fine-tune and merge give the golden bytes in
# internal/portable/testdata (skipped, saying why, in a native build).
test-portable:
	$(MAKE) --no-print-directory PORTABLE=1 _test-portable
_test-portable:
	$(GO) test -count=1 -v -run 'TestPortableBytes|TestFeatureProbe' ./internal/portable $(PORTABLE_TEST_FLAGS)

# Every parser of user or store bytes has a fuzz target (package:FuzzName). `go test` runs their seed
# corpora; `make fuzz` mutates each for FUZZTIME, `make test` for 2000 inputs each (a count, not a
# duration: a 2 s deadline ended runs with a spurious "context deadline exceeded"). A failing input is written to
# the package's testdata/fuzz/<FuzzName>/ and must be checked in with the fix (it then runs in every test).
FUZZ_TARGETS := \
	./internal/gguf:FuzzRead \
	./internal/safetensors:FuzzReadHeader \
	./internal/safetensors:FuzzOpenIndex \
	./internal/merge:FuzzParseMergekit \
	./workflows:FuzzParseRunConfig \
	./starter:FuzzParseRunConfigYAML \
	./internal/eval/bench:FuzzLoadNative \
	./internal/eval/bench:FuzzLoadGeneric \
	./internal/train:FuzzLoadCheckpoint \
	./internal/eval/bench:FuzzRead \
	./internal/tokenizer:FuzzNew \
	./internal/tokenizer:FuzzEncodeDecode \
	./internal/hf:FuzzParseConfig \
	./internal/hf:FuzzTokenizerJSON \
	./internal/hf:FuzzParseSPM \
	./internal/dataset:FuzzLoad
FUZZTIME ?= 1m

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

# Is evolution worth it? The four arms x 5 seeds on the demo population at equal compute, on an
# embedded server (about 15 minutes on 2 cores); prints mean ± 95 % CI per arm, paired differences, verdict.
experiment-demo:
	$(GO) run ./starter experiment -f experiments/demo.yaml --local --no-ui --dir .evomerge/experiment-demo --port 7243 --html .evomerge/experiment-demo/report.html

# The main job: embedded Temporal + web UI, an in-process worker, the demo evolution on tiny models.
quickstart:
	$(GO) run ./starter quickstart

# Inference speed: scoring and generation tokens/s, shared context vs independent pairs.
bench-llm:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./internal/llm

# The reference implementations in benchmarks use Debian's torch; OpenBLAS makes that baseline fair.
python-deps:
	@$(PY) -c 'import torch, numpy' 2>/dev/null && dpkg -s libopenblas0-pthread >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq python3-torch python3-numpy libopenblas0-pthread)

# Build libggml-cuda.so from the pinned ollama module (needs nvcc and cmake).
cuda:
	bash infra/build-cuda.sh

# Merge speed: linear, slerp, ties and dare_ties on generated ~1 GB F16 models (kept in BENCH_MERGE_DIR),
# beside the streaming floor (read the parents, write a child, no arithmetic) and a PyTorch reference;
# prints time ratios and peak RSS against the issue's targets.
BENCH_MERGE_DIR ?= /tmp/evomerge-bench-merge
bench-merge: python-deps
	$(GO) run ./bench/merge -dir $(BENCH_MERGE_DIR) -python $(PY)

# Training tokens/s of the engine beside a PyTorch CPU reference of the same model, batch and threads.
bench-train: python-deps
	$(GO) run ./bench/train

# Real-size benchmarks side by side (issue 14), one run: inference of the 106M and TinyLlama shapes in F32, F16
# and Q8_0 beside llama.cpp (npm node-llama-cpp's prebuilt CPU build, installed into $(LLAMACPP_NPM)): prompt
# tok/s, scoring items/s, generation tok/s, peak RSS; then training of the 113.7M and 106M shapes beside PyTorch
# given the same shape (full and LoRA). Ratios against the targets; models are generated (random weights, kept in
# $(BENCH_REAL_MODELS), about 9 GB for all). Long (about 15 min for inference at 1 and 2 threads, plus training):
# BENCH_REAL_FLAGS picks a subset, e.g. "-only infer -infer-shapes 106m -types q8_0 -threads 2".
BENCH_REAL_STEPS ?= 2
BENCH_REAL_MODELS ?= .cache/bench-real
BENCH_REAL_FLAGS ?=
bench-real: python-deps llamacpp-npm
	$(GO) build -o bin/bench-train ./bench/train
	$(GO) build -o bin/bench-real ./bench/real
	bin/bench-real -train bin/bench-train -python $(PY) -steps $(BENCH_REAL_STEPS) -npm $(LLAMACPP_NPM) \
		-models $(BENCH_REAL_MODELS) $(BENCH_REAL_FLAGS)

# The GPU check's dry run on the CPU (same steps and code paths, small shapes, 2 threads): checks
# infra/gpu-check.sh without a GPU. On a GPU machine run `bash infra/gpu-check.sh` itself.
gpu-check-dry:
	bash infra/gpu-check.sh --device cpu

# Durability proof (issues 7, 15): server, 2 cpu-queue and 2 gpu-queue workers (--device cpu here),
# versitygw (S3) and the starter as separate processes; an uninterrupted run, then the same config and seed while workers are SIGKILLed 10 times (during a
# fine-tune past a checkpoint, a merge, an evaluation) and the server is SIGKILLed and restarted twice. Fails
# unless winners and whole lineages match byte for byte and the store verifies. CI's short version:
# EVOMERGE_CHAOS=1 go test ./infra/chaos/. The full issue-15 run (about 10 min on 2 cores, needs root for the
# disk faults): CHAOS_FLAGS="-kills 50 -restarts 3 -store-outages 4 -store-stalls 3 -cache-wipes 2 -disk-faults 2"
CHAOS_FLAGS ?= -kills 10 -restarts 2
chaos:
	$(GO) run ./infra/chaos/cmd/chaos $(CHAOS_FLAGS)

# The engine beside real llama.cpp (issue 10): installs npm's node-llama-cpp (llama.cpp's own prebuilt CPU
# build, nothing compiled) into $(LLAMACPP_NPM), runs both on the tiny models of internal/llm/refcheck (llama GQA,
# rope_freqs, linear scaling, sliding window, qwen2, qwen3; F32, F16, Q8_0) and compares per-position logits
# and greedy continuations. UPDATE=1 rewrites the golden file that `go test ./internal/llm/refcheck` checks.
LLAMACPP_NPM ?= .cache/node-llama-cpp
llamacpp-npm:
	@test -d $(LLAMACPP_NPM)/node_modules/node-llama-cpp || \
		(mkdir -p $(LLAMACPP_NPM) && cd $(LLAMACPP_NPM) && npm install --no-audit --no-fund node-llama-cpp@3.22.1)

check-llamacpp: llamacpp-npm
	$(GO) run ./infra/llamacpp -npm $(LLAMACPP_NPM) $(if $(UPDATE),-update)
