package llm

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/ollama/ollama/tokenizer"
)

var tinyCfg = Config{Vocab: ByteVocabLen, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 128, Context: 64, RopeBase: 10000, NormEps: 1e-5}

// sharpModel has weights large enough that attention and logits are far from uniform, so that a wrong mask,
// position or cache entry changes the numbers visibly.
func sharpModel(t testing.TB, typ gguf.Type) *Model {
	t.Helper()
	return sharpModelOf(t, tinyCfg, typ, rand.New(rand.NewPCG(7, 8)))
}

// sharpModelOf is a model of cfg with norms around 1 and matrices N(0, 0.3), drawn from rng.
func sharpModelOf(t testing.TB, cfg Config, typ gguf.Type, rng *rand.Rand) *Model {
	t.Helper()
	return hostModel(t, cfg, typ, func(s TensorSpec, _, _ int64) float32 {
		if len(s.Shape) == 1 {
			return 1 + 0.1*float32(rng.NormFloat64())
		}
		return float32(rng.NormFloat64() * 0.3)
	})
}

// hostModel builds a model of cfg (byte tokenizer, one thread) with its matrices stored as typ: value gives
// element i of n of each tensor, called in file order, so one seeded generator inside it fixes every weight.
func hostModel(t testing.TB, cfg Config, typ gguf.Type, value func(s TensorSpec, i, n int64) float32) *Model {
	t.Helper()
	data := map[string][]byte{}
	specs := cfg.Specs(typ)
	for _, s := range specs {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = value(s, int64(i), n)
		}
		b := make([]byte, ggml.RowSize(ggml.Type(s.Type), n))
		if err := ggml.FromFloat32(ggml.Type(s.Type), v, b, s.Shape[0]); err != nil {
			t.Fatal(err)
		}
		data[s.Name] = b
	}
	m, err := FromHost(cfg, ByteTokenizer{}, nil, specs, data, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// naiveScore computes a continuation's log-prob one token at a time, each from a full forward pass of the
// prefix without cache or batching.
func naiveScore(t *testing.T, m *Model, p Pair) (float64, bool) {
	t.Helper()
	ids, err := m.prompt(p.Context)
	if err != nil {
		t.Fatal(err)
	}
	cont, _ := m.Tok.Encode(p.Continuation)
	var sum float64
	greedy := true
	for _, tok := range cont {
		logits, err := m.Logits(ids)
		if err != nil {
			t.Fatal(err)
		}
		lp, g := logProb(logits[len(logits)-1], tok)
		sum += lp
		greedy = greedy && g
		ids = append(ids, tok)
	}
	return sum, greedy
}

func TestScoreMatchesNaive(t *testing.T) {
	m := sharpModel(t, gguf.TypeF32)
	pairs := []Pair{
		{"Question: 2+3=", " 5"},
		{"Question: 2+3=", " 6"},
		{"Question: 2+3=", " five or so"},
		{"Other context", " x"},
		{"Question: 2+3=", " 55555"},
		{"", "text after BOS only"},
	}
	// A group too large to pack (many long continuations) takes the KV-cache path.
	for i := 0; i < 20; i++ {
		pairs = append(pairs, Pair{"Long group:", fmt.Sprintf(" continuation number %d of many", i)})
	}
	got, err := m.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pairs {
		want, greedy := naiveScore(t, m, p)
		if math.Abs(got[i].LogProb-want) > 1e-4 {
			t.Errorf("pair %d: batched %v, naive %v", i, got[i].LogProb, want)
		}
		if got[i].Greedy != greedy {
			t.Errorf("pair %d: greedy %v, naive %v", i, got[i].Greedy, greedy)
		}
		if got[i].Tokens != len(p.Continuation) {
			t.Errorf("pair %d: %d tokens", i, got[i].Tokens)
		}
	}
}

// A continuation the model would produce greedily must be reported as greedy.
func TestGreedyFlag(t *testing.T) {
	m := sharpModel(t, gguf.TypeF32)
	out, err := m.Generate(context.Background(), "abc", GenerateOptions{MaxTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Skip("model generated EOS at once")
	}
	s, err := m.Score(context.Background(), []Pair{{"abc", out}})
	if err != nil {
		t.Fatal(err)
	}
	if !s[0].Greedy {
		t.Fatalf("greedy output %q not flagged greedy", out)
	}
}

func TestGenerateCacheEqualsNoCache(t *testing.T) {
	m := sharpModel(t, gguf.TypeF32)
	got, err := m.Generate(context.Background(), "Hello", GenerateOptions{MaxTokens: 20})
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := m.prompt("Hello")
	var want []int32
	for len(want) < 20 {
		logits, err := m.Logits(ids)
		if err != nil {
			t.Fatal(err)
		}
		next := sample(logits[len(logits)-1], 0, 0, nil)
		if next == m.Tok.EOS() {
			break
		}
		want = append(want, next)
		ids = append(ids, next)
	}
	wantText, _ := m.Tok.Decode(want)
	if got != wantText {
		t.Fatalf("with cache %q, without %q", got, wantText)
	}
}

func TestSamplingIsSeeded(t *testing.T) {
	m := sharpModel(t, gguf.TypeF32)
	o := GenerateOptions{MaxTokens: 16, Temperature: 1.2, TopP: 0.95, Seed: 42}
	a, err := m.Generate(context.Background(), "x", o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Generate(context.Background(), "x", o)
	if a != b {
		t.Fatalf("same seed gave %q and %q", a, b)
	}
	differs := false
	for seed := uint64(1); seed < 6 && !differs; seed++ {
		o.Seed = seed
		c, _ := m.Generate(context.Background(), "x", o)
		differs = c != a
	}
	if !differs {
		t.Fatal("five other seeds all gave the same sample")
	}
}

func TestStopStrings(t *testing.T) {
	if got, ok := cutAtStop("12 + 3 = 15\nQuestion", []string{"\n", "Question"}); !ok || got != "12 + 3 = 15" {
		t.Fatalf("got %q %v", got, ok)
	}
	m := sharpModel(t, gguf.TypeF32)
	full, _ := m.Generate(context.Background(), "ab", GenerateOptions{MaxTokens: 12})
	if len(full) < 4 {
		t.Skip("too short to test stops")
	}
	stop := full[2:4]
	got, _ := m.Generate(context.Background(), "ab", GenerateOptions{MaxTokens: 12, Stop: []string{stop}})
	if want := full[:strings.Index(full, stop)]; got != want {
		t.Fatalf("stop %q: got %q want %q", stop, got, want)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := sharpModel(t, gguf.TypeF32)
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	sum, err := m.Save(p)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Load(p, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.Config != m.Config {
		t.Fatalf("config %+v != %+v", m2.Config, m.Config)
	}
	if !reflect.DeepEqual(m2.Metadata(), m.Metadata()) {
		t.Fatal("metadata differs after a round trip")
	}
	for _, s := range m.Specs() {
		a, _ := m.TensorData(s.Name)
		b, err := m2.TensorData(s.Name)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("tensor %s differs: %v", s.Name, err)
		}
	}
	if _, ok := m2.Tok.(ByteTokenizer); !ok {
		t.Fatalf("byte vocabulary not recognised: %T", m2.Tok)
	}
	sum2, err := m2.Save(filepath.Join(dir, "m2.gguf"))
	if err != nil || sum2 != sum || m2.SHA256() != sum {
		t.Fatalf("re-save sha %s vs %s (%v)", sum2, sum, err)
	}
	// The metadata tools need to load it.
	f, file, err := gguf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
	for _, k := range []string{"general.architecture", "llama.context_length", "llama.embedding_length", "llama.block_count",
		"llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
		"llama.attention.layer_norm_rms_epsilon", "llama.rope.dimension_count", "tokenizer.ggml.model",
		"tokenizer.ggml.tokens", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"} {
		if _, ok := f.Lookup(k); !ok {
			t.Errorf("saved model lacks %s", k)
		}
	}
}

// Ollama's SentencePiece tokenizer, given the vocabulary we write, splits text exactly as ByteTokenizer does,
// so a tiny model served by Ollama sees the same tokens it was trained on.
func TestByteTokenizerMatchesOllama(t *testing.T) {
	tokens, scores, types := byteVocab()
	spm := tokenizer.NewSentencePiece(&tokenizer.Vocabulary{Values: tokens, Scores: scores, Types: types, BOS: []int32{1}, EOS: []int32{2}})
	for _, s := range []string{"Question: 12+30=", " 42", "a  b\tc\nd", "héllo wörld", "#### -1,234.5"} {
		want, err := spm.Encode(s, false)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ByteTokenizer{}.Encode(s)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: ours %v, ollama %v", s, got, want)
		}
		back, _ := ByteTokenizer{}.Decode(got)
		if back != s {
			t.Errorf("%q decoded as %q", s, back)
		}
	}
}

func TestQuantizedWeights(t *testing.T) {
	ref := sharpModel(t, gguf.TypeF32)
	pairs := []Pair{{"The cat", " sat"}, {"The cat", " ran away"}}
	want, err := ref.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	for typ, tol := range map[gguf.Type]float64{gguf.TypeF16: 0.05, gguf.TypeBF16: 0.5, gguf.TypeQ8_0: 0.5} {
		m := sharpModel(t, typ)
		p := filepath.Join(t.TempDir(), "q.gguf")
		if _, err := m.Save(p); err != nil {
			t.Fatal(err)
		}
		lm, err := Load(p, Options{Threads: 1})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got, err := lm.Score(context.Background(), pairs)
		lm.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Abs(got[i].LogProb-want[i].LogProb) > tol*math.Abs(want[i].LogProb)+0.05 {
				t.Errorf("%s: pair %d: %v vs f32 %v", typ, i, got[i].LogProb, want[i].LogProb)
			}
		}
	}
}

func writeModified(t *testing.T, src string, edit func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo)) string {
	t.Helper()
	f, file, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	kvs := append([]gguf.KV(nil), f.KVs...)
	ts := append([]gguf.TensorInfo(nil), f.Tensors...)
	kvs, ts = edit(kvs, ts)
	p := filepath.Join(t.TempDir(), "bad.gguf")
	out, _ := os.Create(p)
	defer out.Close()
	w, err := gguf.NewWriter(out, kvs, ts)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range ts {
		size, _ := ti.Type.BytesFor(ti.Elements())
		buf := make([]byte, size)
		if orig, ok := f.Tensor(ti.Name); ok && orig.Size == size {
			file.ReadAt(buf, orig.Offset)
		}
		if err := w.WriteTensor(ti.Name, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputs(t *testing.T) {
	m := sharpModel(t, gguf.TypeF32)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	if _, err := m.Save(good); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "trunc.gguf")
	os.WriteFile(truncated, raw[:len(raw)/2], 0o644)
	garbage := filepath.Join(dir, "garbage.gguf")
	os.WriteFile(garbage, []byte("this is not a model"), 0o644)

	setKV := func(key string, v any) func([]gguf.KV, []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
		return func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
			for i := range kvs {
				if kvs[i].Key == key {
					kvs[i].Value = v
				}
			}
			return kvs, ts
		}
	}
	cases := map[string]struct {
		path, want string
	}{
		"truncated": {truncated, "truncated"},
		"garbage":   {garbage, "not a GGUF"},
		"arch":      {writeModified(t, good, setKV("general.architecture", "gemma")), `architecture "gemma" is not supported`},
		"shape": {writeModified(t, good, func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
			for i := range ts {
				if ts[i].Name == "blk.1.ffn_up.weight" {
					ts[i].Shape = []int64{64, 96}
				}
			}
			return kvs, ts
		}), "blk.1.ffn_up.weight has shape [64 96]"},
		"tokenizer": {writeModified(t, good, func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
			var out []gguf.KV
			for _, kv := range kvs {
				if !strings.HasPrefix(kv.Key, "tokenizer.") {
					out = append(out, kv)
				}
			}
			return out, ts
		}), "no tokenizer"},
		"missing tensor": {writeModified(t, good, func(kvs []gguf.KV, ts []gguf.TensorInfo) ([]gguf.KV, []gguf.TensorInfo) {
			var out []gguf.TensorInfo
			for _, ti := range ts {
				if ti.Name != "blk.0.attn_k.weight" {
					out = append(out, ti)
				}
			}
			return kvs, out
		}), "blk.0.attn_k.weight is missing"},
	}
	for name, c := range cases {
		_, err := Load(c.path, Options{Threads: 1})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	if _, err := m.Score(context.Background(), []Pair{{"ctx", ""}}); err == nil || !strings.Contains(err.Error(), "empty continuation") {
		t.Errorf("empty continuation: %v", err)
	}
	long := strings.Repeat("x", tinyCfg.Context)
	if _, err := m.Score(context.Background(), []Pair{{long, " y"}}); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("long context: %v", err)
	}
	if _, err := m.Generate(context.Background(), long, GenerateOptions{MaxTokens: 3}); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("long prompt: %v", err)
	}
}

func TestNewTinyIsDeterministic(t *testing.T) {
	a, err := NewTiny(tinyCfg, 3, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := NewTiny(tinyCfg, 3, Options{Threads: 1})
	defer b.Close()
	var ba, bb bytes.Buffer
	a.WriteTo(&ba)
	b.WriteTo(&bb)
	if !bytes.Equal(ba.Bytes(), bb.Bytes()) {
		t.Fatal("same seed, different models")
	}
	bad := tinyCfg
	bad.Heads = 3
	if _, err := NewTiny(bad, 1, Options{}); err == nil {
		t.Fatal("heads not dividing dim accepted")
	}
}
