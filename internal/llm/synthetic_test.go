package llm

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
)

// longCfg has a window longer than two micro-batches, so that long steps go through the cache in chunks.
var longCfg = Config{Vocab: ByteVocabLen, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 128, Context: 1400, RopeBase: 10000, NormEps: 1e-5}

func sharpLongModel(t *testing.T) *Model {
	t.Helper()
	return sharpModelOf(t, longCfg, gguf.TypeF32, rand.New(rand.NewPCG(9, 10)))
}

// A context longer than a micro-batch runs through the cache in chunks; its scores must equal the plain
// no-cache forward over context and continuation, position by position.
func TestScoreTokensLongContextMatchesPlain(t *testing.T) {
	m := sharpLongModel(t)
	rng := rand.New(rand.NewPCG(11, 12))
	ids := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(3 + rng.IntN(256))
		}
		return out
	}
	ctx := append([]int32{1}, ids(ubatch*2+37)...) // three chunks
	conts := [][]int32{ids(1), ids(4), ids(6)}
	got, err := m.ScoreTokens(ctx, conts)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range conts {
		all := append(append([]int32(nil), ctx...), c...)
		logits, err := m.Logits(all)
		if err != nil {
			t.Fatal(err)
		}
		var want float64
		greedy := true
		for j, tok := range c {
			lp, g := logProb(logits[len(ctx)-1+j], tok)
			want += lp
			greedy = greedy && g
		}
		if math.Abs(got[k].LogProb-want) > 1e-3 || got[k].Greedy != greedy || got[k].Tokens != len(c) {
			t.Errorf("continuation %d: chunked %+v, plain %v (greedy %v)", k, got[k], want, greedy)
		}
	}
	// The greedy continuation of a long prompt through the chunked cache equals the plain path's argmax.
	p := ctx[:ubatch+100]
	next, err := m.GreedyTokens(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := m.Logits(append(append([]int32(nil), p...), next[0]))
	if err != nil {
		t.Fatal(err)
	}
	if w0, w1 := sample(logits[len(p)-1], 0, 0, nil), sample(logits[len(p)], 0, 0, nil); next[0] != w0 || next[1] != w1 {
		t.Errorf("greedy through the chunked cache %v, plain %v", next, []int32{w0, w1})
	}
}

// A synthetic model is written deterministically, loads with its real vocabulary size, and runs.
func TestWriteSynthetic(t *testing.T) {
	cfg := Config{Vocab: 1000, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 128, Context: 128, RopeBase: 10000, NormEps: 1e-5}
	dir := t.TempDir()
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ8_0} {
		a, err := WriteSynthetic(filepath.Join(dir, "a.gguf"), cfg, typ, 5)
		if err != nil {
			t.Fatal(err)
		}
		b, err := WriteSynthetic(filepath.Join(dir, "b.gguf"), cfg, typ, 5)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("%s: the same seed wrote different files", typ)
		}
		m, err := Load(filepath.Join(dir, "a.gguf"), Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.Vocab != 1000 || m.Specs()[0].Type != typ {
			t.Errorf("loaded vocab %d, type %s", m.Config.Vocab, m.Specs()[0].Type)
		}
		if got, err := m.Tok.Encode("ab c"); err != nil || len(got) != 4 {
			t.Errorf("the padded byte vocabulary tokenizes %q as %v (%v)", "ab c", got, err)
		}
		if _, err := m.ScoreTokens([]int32{1, 900, 17}, [][]int32{{999, 3}}); err != nil {
			t.Error(err)
		}
		m.Close()
	}
	if _, err := WriteSynthetic(filepath.Join(dir, "c.gguf"), Config{Vocab: 100, Dim: 64, Layers: 1, Heads: 4, KVHeads: 2, FFN: 128, Context: 128, RopeBase: 10000, NormEps: 1e-5}, gguf.TypeF32, 1); err == nil {
		t.Error("a vocabulary smaller than the byte vocabulary was accepted")
	}
}

func TestScoreTokensBadInputs(t *testing.T) {
	m := sharpModel(t, gguf.TypeF32)
	for name, c := range map[string]struct {
		ctx   []int32
		conts [][]int32
	}{
		"empty context":      {nil, [][]int32{{5}}},
		"empty continuation": {[]int32{1}, [][]int32{{}}},
		"id outside vocab":   {[]int32{1}, [][]int32{{5, ByteVocabLen}}},
		"too long":           {make([]int32, tinyCfg.Context), [][]int32{{5}}},
	} {
		if _, err := m.ScoreTokens(c.ctx, c.conts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
