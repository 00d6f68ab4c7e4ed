package hf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/fuzzcheck"
	"github.com/evomerge/evomerge/internal/hf/hftest"
)

// JSON decoding into maps and slices of small values: a bounded multiple of the input plus a constant.
var jsonBound = fuzzcheck.Bound{PerByte: 256, Fixed: 8 << 20}

// fuzzVocab is the embedding rows the fuzzed tokenizer is built for (bounds the token table).
const fuzzVocab = 512

func FuzzParseConfig(f *testing.F) {
	dir := f.TempDir()
	if err := hftest.Write(filepath.Join(dir, "m"), hftest.Default()); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, "m", ConfigName))
	f.Add(good)
	f.Add([]byte(`{"architectures":["Qwen3ForCausalLM"],"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"head_dim":32,"vocab_size":10,"rope_scaling":{"rope_type":"llama3","factor":8,"original_max_position_embeddings":1e300}}`))
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4}}`))
	f.Add([]byte(`{"architectures":["GemmaForCausalLM"]}`))
	f.Add([]byte(`{"num_hidden_layers":"two"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzcheck.Check(t, "hf.ParseConfig", len(b), jsonBound, func() {
			c, err := ParseConfig(b, "config.json")
			if err != nil {
				return
			}
			p, err := c.modelPlan("fuzz", ConfigName)
			if err != nil {
				return
			}
			// What is accepted is a config the engine runs.
			if err := p.cfg.Validate(); err != nil {
				t.Fatalf("accepted a config the engine refuses: %v", err)
			}
			if p.cfg.RopeFreqs && len(p.ropeFreqs) != p.cfg.HeadDim()/2 {
				t.Fatalf("%d rope factors for head dim %d", len(p.ropeFreqs), p.cfg.HeadDim())
			}
		})
	})
}

func FuzzTokenizerJSON(f *testing.F) {
	dir := f.TempDir()
	if err := hftest.Write(filepath.Join(dir, "m"), hftest.Default()); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, "m", TokenizerJSONName))
	f.Add(good)
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},"pre_tokenizer":{"type":"ByteLevel","use_regex":true},"added_tokens":[{"id":511,"content":"<|x|>","special":true}]}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":100000},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}`))
	f.Add([]byte(`{"model":{"type":"Unigram","vocab":[["a",0.0]]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzcheck.Check(t, "hf.bpeVocab", len(b), jsonBound, func() {
			v, err := bpeVocab(b, fuzzVocab)
			if err != nil {
				return
			}
			if len(v.tokens) != fuzzVocab || len(v.types) != fuzzVocab {
				t.Fatalf("%d tokens, %d types for %d rows", len(v.tokens), len(v.types), fuzzVocab)
			}
			_ = v.check() // may refuse (merges of unknown pieces); must not panic
		})
	})
}

func FuzzParseSPM(f *testing.F) {
	f.Add(appendSPM(nil, []string{"<unk>", "<s>", "</s>", "▁a"}, []float32{0, 0, 0, -1}, []int32{2, 3, 3, 1}, true))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzcheck.Check(t, "hf.spmVocab", len(b), fuzzcheck.Bound{PerByte: 64, Fixed: 4 << 20}, func() {
			_, _ = spmVocab(b, fuzzVocab)
		})
	})
}
