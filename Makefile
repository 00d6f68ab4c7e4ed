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

.PHONY: all build test test-portable vet fuzz fuzz-short quickstart bench-llm bench-train bench-merge bench-real chaos cuda python-deps check-llamacpp

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

# Real-size training side by side (issue 14): the 113.7M and 106M shapes at 1 and 2 threads, full fine-tune and
# LoRA (F32 and F16 base) beside PyTorch given the same shape, with peak RSS and ratios against the targets.
# Several minutes (each run is 3 warm-up + BENCH_REAL_STEPS steps).
BENCH_REAL_STEPS ?= 2
bench-real: python-deps
	$(GO) build -o bin/bench-train ./bench/train
	$(GO) run ./bench/real -train bin/bench-train -python $(PY) -steps $(BENCH_REAL_STEPS)

# Durability proof (issue 7): server, a cpu and a gpu worker, versitygw (S3) and the starter as separate
# processes; an uninterrupted run, then the same config and seed while workers are SIGKILLed 10 times (during a
# fine-tune past a checkpoint, a merge, an evaluation) and the server is SIGKILLed and restarted twice. Fails
# unless winners and whole lineages match byte for byte and the store verifies. CI's short version:
# EVOMERGE_CHAOS=1 go test ./infra/chaos/
CHAOS_FLAGS ?= -kills 10 -restarts 2
chaos:
	$(GO) run ./infra/chaos/cmd/chaos $(CHAOS_FLAGS)

# The engine beside real llama.cpp (issue 10): installs npm's node-llama-cpp (llama.cpp's own prebuilt CPU
# build, nothing compiled) into $(LLAMACPP_NPM), runs both on the tiny models of internal/llm/refcheck (llama GQA,
# rope_freqs, linear scaling, sliding window, qwen2, qwen3; F32, F16, Q8_0) and compares per-position logits
# and greedy continuations. UPDATE=1 rewrites the golden file that `go test ./internal/llm/refcheck` checks.
LLAMACPP_NPM ?= .cache/node-llama-cpp
check-llamacpp:
	@test -d $(LLAMACPP_NPM)/node_modules/node-llama-cpp || \
		(mkdir -p $(LLAMACPP_NPM) && cd $(LLAMACPP_NPM) && npm install --no-audit --no-fund node-llama-cpp@3.22.1)
	$(GO) run ./infra/llamacpp -npm $(LLAMACPP_NPM) $(if $(UPDATE),-update)
