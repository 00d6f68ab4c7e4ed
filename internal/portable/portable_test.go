package portable

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/merge"
	"github.com/evomerge/evomerge/internal/train"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt (only in a portable build)")

const goldenFile = "testdata/golden.txt"

// fineTuneAndMerge fine-tunes a seeded tiny model two ways (full and LoRA) and merges the children with
// ties and slerp: the ggml forward/backward, AdamW and merge kernels all leave their bytes in the hashes.
func fineTuneAndMerge(t *testing.T) map[string]string {
	dir := t.TempDir()
	cfg := llm.Config{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 128, Context: 64, RopeBase: 10000, NormEps: 1e-5}
	base, err := llm.NewTiny(cfg, 11, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	data := []train.Example{{Prompt: "12+30=", Completion: "42"}, {Prompt: "7+8=", Completion: "15"},
		{Prompt: "20+5=", Completion: "25"}, {Prompt: "3+3=", Completion: "6"}}
	out := map[string]string{}
	save := func(name string, m *llm.Model) string {
		p := filepath.Join(dir, name+".gguf")
		sum, err := m.Save(p)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = sum
		return p
	}
	paths := []string{save("base", base)}
	for _, tc := range []struct {
		name string
		c    train.Config
	}{
		{"full", train.Config{Steps: 6, LR: 3e-3, Warmup: 2, BatchSize: 2, Seed: 5, WeightDecay: 0.01}},
		{"lora", train.Config{Steps: 6, LR: 1e-2, Warmup: 2, BatchSize: 2, Seed: 6, Method: "lora", Rank: 4, Alpha: 8}},
	} {
		m, _, err := train.Run(context.Background(), train.Job{Base: base, Data: data, Config: tc.c})
		if err != nil {
			t.Fatalf("%s fine-tune: %v", tc.name, err)
		}
		paths = append(paths, save(tc.name, m))
		m.Close()
	}
	for _, mc := range []struct {
		name   string
		inputs []string
		spec   merge.Spec
	}{
		{"ties", paths, merge.Spec{Method: "ties", Base: 0, Seed: 9, PerModel: []map[string]merge.Param{
			{}, {"density": merge.Const(0.5)}, {"density": merge.Const(0.7)}}}},
		{"slerp", paths[1:], merge.Spec{Method: "slerp", Base: 0, Global: map[string]merge.Param{"t": merge.Const(0.3)}}},
	} {
		res, err := merge.Merge(context.Background(), mc.inputs, filepath.Join(dir, mc.name+".gguf"), mc.spec, merge.Options{Parallelism: 1, NoSync: true})
		if err != nil {
			t.Fatalf("%s merge: %v", mc.name, err)
		}
		out[mc.name] = res.SHA256
	}
	return out
}

func render(h map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"base", "full", "lora", "ties", "slerp"} {
		b.WriteString(k + " " + h[k] + "\n")
	}
	return b.String()
}

// TestPortableBytes checks that a portable build (C and C++ compiled for exactly x86-64-v3) reproduces the
// golden bytes of a short fine-tune and merge. Any x86-64-v3 machine must give these bytes; a machine that
// does not has found a difference the portable build promises away. A native build only reports its hashes.
func TestPortableBytes(t *testing.T) {
	got := render(fineTuneAndMerge(t))
	if !IsX8664V3() {
		t.Skipf("native build (C compiled for %v, C++ for %v): its bytes match only on machines of this CPU kind, "+
			"so the portable golden does not apply; run `make test-portable` to check it. This build's hashes:\n%s",
			Features("c"), Features("c++"), got)
	}
	if *update {
		if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("portable build, bytes differ from %s (made on another x86-64-v3 machine):\ngot\n%swant\n%s", goldenFile, got, want)
	}
}

func TestFeatureProbeSeesTheCompiler(t *testing.T) {
	// Every amd64 toolchain here targets at least SSE2; the probe must at least agree between C and C++
	// (both take the same -march from the Makefile), or the two halves of ggml were built differently.
	c, cxx := Features("c"), Features("c++")
	if strings.Join(c, ",") != strings.Join(cxx, ",") {
		t.Fatalf("C compiled for %v but C++ for %v (CGO_CFLAGS and CGO_CXXFLAGS disagree)", c, cxx)
	}
}
