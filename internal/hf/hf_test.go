package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/hf/hftest"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/safetensors"
)

const python = "/usr/bin/python3"

// referenceLogits runs testdata/reference.py (torch, float64) over a folder.
func referenceLogits(t *testing.T, folder string, ids []int32) [][]float64 {
	t.Helper()
	if err := exec.Command(python, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("the reference forward needs torch and numpy under %s (make python-deps): %v", python, err)
	}
	var s []string
	for _, id := range ids {
		s = append(s, fmt.Sprint(id))
	}
	cmd := exec.Command(python, "testdata/reference.py", folder, strings.Join(s, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference.py: %v\n%s", err, stderr.String())
	}
	var logits [][]float64
	if err := json.Unmarshal(out, &logits); err != nil {
		t.Fatal(err)
	}
	return logits
}

func importTo(t *testing.T, folder string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "model.gguf")
	if _, _, err := ImportFile(folder, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func engineLogits(t *testing.T, path string, ids []int32) [][]float32 {
	t.Helper()
	m, err := llm.Load(path, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.Logits(ids)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func maxDiff(a [][]float32, b [][]float64) float64 {
	worst := 0.0
	for i := range b {
		for j := range b[i] {
			worst = math.Max(worst, math.Abs(float64(a[i][j])-b[i][j]))
		}
	}
	return worst
}

var refIDs = []int32{280, 5, 71, 259, 40, 100, 263, 1, 200, 33, 279, 7}

// cases are one folder per architecture and RoPE variant, each checked against the reference forward.
func refCases() map[string]hftest.Options {
	c := map[string]hftest.Options{}
	add := func(name string, f func(*hftest.Options)) {
		o := hftest.Default()
		f(&o)
		c[name] = o
	}
	add("llama-gqa", func(o *hftest.Options) {})
	add("llama-sharded-tied", func(o *hftest.Options) { o.Shards = 3; o.Tied = true; o.KVHeads = 4 })
	add("mistral", func(o *hftest.Options) { o.Architecture = "MistralForCausalLM"; o.KVHeads = 1 })
	add("llama-linear", func(o *hftest.Options) { o.RopeScaling = `{"type":"linear","factor":2.0}` })
	add("llama3-rope", func(o *hftest.Options) {
		o.RopeScaling = `{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}`
	})
	add("qwen2", func(o *hftest.Options) { o.Architecture = "Qwen2ForCausalLM" })
	add("qwen3", func(o *hftest.Options) { o.Architecture = "Qwen3ForCausalLM"; o.HeadDim = 16; o.Tied = true })
	return c
}

// TestImportMatchesReference: the engine's logits of an imported folder equal a float64 forward of the
// Hugging Face weights in their own layout (rotate-half RoPE), which is what proves the Q/K permutation.
func TestImportMatchesReference(t *testing.T) {
	for name, o := range refCases() {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := hftest.Write(dir, o); err != nil {
				t.Fatal(err)
			}
			got := engineLogits(t, importTo(t, dir), refIDs)
			want := referenceLogits(t, dir, refIDs)
			if d := maxDiff(got, want); d > 2e-4 {
				t.Fatalf("logits differ from the reference by %g", d)
			}
		})
	}
}

// TestPermutationIsNeeded: without the Q/K permutation the llama logits are far from the reference, so
// the reference check above can fail.
func TestPermutationIsNeeded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "llama")
	if err := hftest.Write(dir, hftest.Default()); err != nil {
		t.Fatal(err)
	}
	path := importTo(t, dir)
	f, file, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var kvs []gguf.KV
	kvs = append(kvs, f.KVs...)
	var infos []gguf.TensorInfo
	data := map[string][]byte{}
	for _, ti := range f.Tensors {
		b, _ := f.ReadTensor(file, ti.Name)
		if strings.HasSuffix(ti.Name, "attn_q.weight") {
			b = permuteRows(b, 4, 8, true) // back to the Hugging Face order
		}
		data[ti.Name] = b
		infos = append(infos, gguf.TensorInfo{Name: ti.Name, Shape: ti.Shape, Type: ti.Type})
	}
	file.Close()
	bad := filepath.Join(t.TempDir(), "unpermuted.gguf")
	var buf bytes.Buffer
	w, err := gguf.NewWriter(&buf, kvs, infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		if err := w.WriteTensor(ti.Name, data[ti.Name]); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	os.WriteFile(bad, buf.Bytes(), 0o644)
	want := referenceLogits(t, dir, refIDs)
	if d := maxDiff(engineLogits(t, bad, refIDs), want); d < 1e-2 {
		t.Fatalf("unpermuted Q rows still match the reference (%g): the check proves nothing", d)
	}
}

func readGGUF(t *testing.T, path string) (*gguf.File, map[string][]byte) {
	t.Helper()
	f, file, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	data := map[string][]byte{}
	for _, ti := range f.Tensors {
		b, err := f.ReadTensor(file, ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		data[ti.Name] = b
	}
	return f, data
}

func TestTokenizerAndMetadataCarriedOver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	o := hftest.Default()
	o.DType = safetensors.BF16
	if err := hftest.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	path := importTo(t, dir)
	f, _ := readGGUF(t, path)
	str := func(k string) string { s, _ := f.String(k); return s }
	if str("tokenizer.ggml.model") != "gpt2" || str("tokenizer.ggml.pre") != "llama-bpe" {
		t.Fatalf("tokenizer %q pre %q", str("tokenizer.ggml.model"), str("tokenizer.ggml.pre"))
	}
	if str("tokenizer.chat_template") != hftest.ChatTemplate {
		t.Fatalf("chat template %q", str("tokenizer.chat_template"))
	}
	if ti, _ := f.Tensor("blk.0.attn_q.weight"); ti.Type != gguf.TypeBF16 {
		t.Fatalf("attn_q type %s, want BF16 kept", ti.Type)
	}
	if ti, _ := f.Tensor("blk.0.attn_norm.weight"); ti.Type != gguf.TypeF32 {
		t.Fatalf("norm type %s, want F32", ti.Type)
	}
	if v, _ := f.Float("llama.attention.layer_norm_rms_epsilon"); float32(v) != 1e-5 {
		t.Fatalf("eps %v", v)
	}
	toks, _ := f.Lookup("tokenizer.ggml.tokens")
	if n := len(toks.([]string)); n != o.Vocab {
		t.Fatalf("%d tokens, want %d (padded to vocab_size)", n, o.Vocab)
	}
	m, err := llm.Load(path, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	bos := int32(256 + len(hftest.Merges))
	if m.Tok.BOS() != bos || m.Tok.EOS() != bos+1 || !m.Tok.AddBOS() || !m.Tok.IsEOG(bos+1) {
		t.Fatalf("bos %d eos %d addBOS %v", m.Tok.BOS(), m.Tok.EOS(), m.Tok.AddBOS())
	}
	ids, err := m.Tok.Encode("the cat and the")
	if err != nil {
		t.Fatal(err)
	}
	// "the" (t, he), " cat" (Ġc, at), " and" (Ġand), " the" (Ġthe)
	want := []int32{'t', 256 + 1, 256 + 11, 256 + 9, 256 + 21, 256 + 2}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("encode: %v, want %v", ids, want)
	}
	if s, _ := m.Tok.Decode(ids); s != "the cat and the" {
		t.Fatalf("decode %q", s)
	}
}

// TestExportRoundTrip: import → export → import gives the same GGUF bytes (tensors and metadata), and the
// exported folder is a Hugging Face checkpoint the reference forward reads to the same logits.
func TestExportRoundTrip(t *testing.T) {
	for name, o := range map[string]hftest.Options{
		"llama-bf16": func() hftest.Options { o := hftest.Default(); o.DType = safetensors.BF16; return o }(),
		"llama3-tied-sharded": func() hftest.Options {
			o := hftest.Default()
			o.Tied, o.Shards = true, 2
			o.RopeScaling = `{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}`
			return o
		}(),
		"qwen2-f16": func() hftest.Options {
			o := hftest.Default()
			o.Architecture = "Qwen2ForCausalLM"
			o.DType = safetensors.F16
			return o
		}(),
		"qwen3": func() hftest.Options {
			o := hftest.Default()
			o.Architecture = "Qwen3ForCausalLM"
			o.HeadDim = 16
			return o
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := hftest.Write(dir, o); err != nil {
				t.Fatal(err)
			}
			a := importTo(t, dir)
			exported := filepath.Join(t.TempDir(), name)
			if err := Export(a, exported); err != nil {
				t.Fatal(err)
			}
			b := importTo(t, exported)
			ab, _ := os.ReadFile(a)
			bb, _ := os.ReadFile(b)
			if !bytes.Equal(ab, bb) {
				fa, da := readGGUF(t, a)
				fb, db := readGGUF(t, b)
				for i := range fa.KVs {
					if i >= len(fb.KVs) || fmt.Sprint(fa.KVs[i]) != fmt.Sprint(fb.KVs[i]) {
						t.Fatalf("metadata %d differs: %v", i, fa.KVs[i].Key)
					}
				}
				for n := range da {
					if !bytes.Equal(da[n], db[n]) {
						t.Fatalf("tensor %s differs", n)
					}
				}
				t.Fatalf("re-imported GGUF differs (%d vs %d bytes)", len(ab), len(bb))
			}
			if o.DType == safetensors.F32 {
				want := referenceLogits(t, exported, refIDs)
				if d := maxDiff(engineLogits(t, a, refIDs), want); d > 2e-4 {
					t.Fatalf("exported folder's reference logits differ by %g", d)
				}
			}
		})
	}
}

// TestExportEngineModel: a model the engine made (SentencePiece byte vocabulary, F32) survives
// export → import with the same tensors and tokenizer.
func TestExportEngineModel(t *testing.T) {
	m, err := llm.NewTiny(llm.ByteLlamaConfig(2, 32, 4, 2, 48, 64), 3, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tiny.gguf")
	if _, err := m.Save(src); err != nil {
		t.Fatal(err)
	}
	m.Close()
	dir := filepath.Join(t.TempDir(), "tiny-hf")
	if err := Export(src, dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{ConfigName, SafetensorsName, TokenizerJSONName, TokenizerModelName, TokenizerConfigName, GenerationConfigName} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Fatalf("export lacks %s", n)
		}
	}
	back := importTo(t, dir)
	fa, da := readGGUF(t, src)
	fb, db := readGGUF(t, back)
	for n, b := range da {
		if !bytes.Equal(b, db[n]) {
			t.Fatalf("tensor %s differs after the round trip", n)
		}
	}
	for _, k := range []string{"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
		"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
		"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix", "llama.rope.freq_base", "llama.attention.head_count_kv"} {
		va, _ := fa.Lookup(k)
		vb, _ := fb.Lookup(k)
		if fmt.Sprint(va) != fmt.Sprint(vb) {
			t.Fatalf("%s: %v became %v", k, va, vb)
		}
	}
	// The round-tripped model still tokenizes as the byte model does.
	mb, err := llm.Load(back, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if _, ok := mb.Tok.(llm.ByteTokenizer); !ok {
		t.Fatalf("tokenizer %T, want the byte tokenizer back", mb.Tok)
	}
	if la, lb := engineLogits(t, src, []int32{1, 50, 60}), engineLogits(t, back, []int32{1, 50, 60}); fmt.Sprint(la) != fmt.Sprint(lb) {
		t.Fatal("logits changed over the round trip")
	}
}

// editConfigText replaces text in config.json (hftest writes it indented, one key a line).
func editConfigText(old, new string) func(string) {
	return func(dir string) {
		p := filepath.Join(dir, ConfigName)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644)
	}
}

func TestRefusals(t *testing.T) {
	write := func(t *testing.T, o hftest.Options, edit func(dir string)) string {
		dir := filepath.Join(t.TempDir(), "model-x")
		if err := hftest.Write(dir, o); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(dir)
		}
		return dir
	}
	editConfig := func(f func(map[string]any)) func(string) {
		return func(dir string) {
			p := filepath.Join(dir, ConfigName)
			b, _ := os.ReadFile(p)
			var c map[string]any
			json.Unmarshal(b, &c)
			f(c)
			b, _ = json.Marshal(c)
			os.WriteFile(p, b, 0o644)
		}
	}
	for _, c := range []struct {
		name string
		edit func(string)
		want []string
	}{
		{"architecture", editConfig(func(c map[string]any) { c["architectures"] = []string{"GemmaForCausalLM"} }),
			[]string{"model-x", "config.json", "architectures", "GemmaForCausalLM"}},
		{"shape", editConfig(func(c map[string]any) { c["intermediate_size"] = 64 }),
			[]string{"model.safetensors", "mlp.gate_proj.weight", "config.json", "[64 32]"}},
		{"missing tensor", editConfig(func(c map[string]any) { c["num_hidden_layers"] = 3 }),
			[]string{"model-x", "model.layers.2.input_layernorm.weight", "missing"}},
		{"missing lm_head", editConfig(func(c map[string]any) { c["tie_word_embeddings"] = nil }), nil}, // untied by default: the file has lm_head
		{"key type", editConfig(func(c map[string]any) { c["num_hidden_layers"] = "two" }),
			[]string{"config.json", "num_hidden_layers"}},
		{"rope type", editConfig(func(c map[string]any) { c["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4} }),
			[]string{"config.json", "rope_scaling.rope_type", "yarn"}},
		{"truncated weights", func(dir string) {
			p := filepath.Join(dir, SafetensorsName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-100], 0o644)
		}, []string{"model.safetensors", "truncated"}},
		{"no tokenizer", func(dir string) { os.Remove(filepath.Join(dir, TokenizerJSONName)) },
			[]string{"model-x", "tokenizer.json", "tokenizer.model"}},
		{"unknown pre-tokenizer", func(dir string) {
			p := filepath.Join(dir, TokenizerJSONName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`\\p{N}{1,3}`), []byte(`\\p{N}{1,5}`), 1), 0o644)
		}, []string{"tokenizer.json", "pre_tokenizer", `\p{N}{1,5}`}},
		{"unreadable config", func(dir string) { os.WriteFile(filepath.Join(dir, ConfigName), []byte("{"), 0o644) },
			[]string{"config.json"}},
		{"config syntax", func(dir string) {
			os.WriteFile(filepath.Join(dir, ConfigName), []byte("{\n  \"hidden_size\": 32,\n  \"vocab_size\": 300,,\n}"), 0o644)
		}, []string{"config.json:3:21: invalid character ','"}},
		{"config key type line", editConfigText(`"num_hidden_layers": 2`, `"num_hidden_layers": "2"`),
			[]string{"config.json:13:26: key num_hidden_layers"}},
		{"extra tensor", func(dir string) {
			os.Remove(filepath.Join(dir, SafetensorsName))
			o := hftest.Default()
			o.Layers = 3
			tmp := filepath.Join(filepath.Dir(dir), "three")
			hftest.Write(tmp, o)
			os.Rename(filepath.Join(tmp, SafetensorsName), filepath.Join(dir, SafetensorsName))
		}, []string{"model.layers.2.", "not part of"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := write(t, hftest.Default(), c.edit)
			// Import refuses it, and so does CheckFolder, which reads no weight.
			_, err := Import(dir, &bytes.Buffer{})
			_, checkErr := CheckFolder(dir)
			for _, err := range []error{err, checkErr} {
				if c.want == nil {
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not name %q", err, w)
					}
				}
			}
		})
	}
	// CheckFolder refuses the architecture without reading weights.
	dir := write(t, hftest.Default(), editConfig(func(c map[string]any) { c["architectures"] = []string{"PhiForCausalLM"} }))
	os.Remove(filepath.Join(dir, SafetensorsName))
	if _, err := CheckFolder(dir); err == nil || !strings.Contains(err.Error(), "PhiForCausalLM") {
		t.Fatalf("CheckFolder: %v", err)
	}
}

// A copy of a folder holding only the safetensors headers (what the starter fetches from S3) checks as the
// whole folder does, and CheckFolder reports the chat template.
func TestCheckFolderReadsHeadersOnly(t *testing.T) {
	for _, shards := range []int{1, 3} {
		o := hftest.Default()
		o.Shards = shards
		src := filepath.Join(t.TempDir(), "src")
		if err := hftest.Write(src, o); err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		open := func(name string) (io.ReadCloser, bool, error) {
			f, err := os.Open(filepath.Join(src, name))
			if os.IsNotExist(err) {
				return nil, false, nil
			}
			return f, err == nil, err
		}
		if err := Fetch(open, dst, true); err != nil {
			t.Fatal(err)
		}
		want, err := CheckFolder(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := CheckFolder(dst)
		if err != nil {
			t.Fatal(err)
		}
		if got.Tensors != want.Tensors || got.Config != want.Config || got.ChatTemplate != hftest.ChatTemplate || got.BOS != hftest.Specials[0] {
			t.Fatalf("header copy checks as %+v, the folder as %+v", got, want)
		}
		// The copy's weights are a hole: its shards have the full size but hold zeros.
		entries, _ := os.ReadDir(dst)
		for _, e := range entries {
			if filepath.Ext(e.Name()) != ".safetensors" {
				continue
			}
			a, _ := os.Stat(filepath.Join(src, e.Name()))
			b, _ := os.Stat(filepath.Join(dst, e.Name()))
			if a.Size() != b.Size() {
				t.Fatalf("%s: copy has %d bytes, the shard %d", e.Name(), b.Size(), a.Size())
			}
		}
		// A shard the index names but the source lacks is refused by name.
		if shards > 1 {
			os.Remove(filepath.Join(src, "model-00002-of-00003.safetensors"))
			if err := Fetch(open, t.TempDir(), true); err == nil || !strings.Contains(err.Error(), "model-00002-of-00003.safetensors") {
				t.Fatalf("missing shard: %v", err)
			}
		}
	}
}

func TestSPMRoundTrip(t *testing.T) {
	tokens := []string{"<unk>", "<s>", "</s>", "▁a", "b", "<0x41>", "▁ab"}
	scores := []float32{0, 0, 0, -1.5, -2, 0, -0.25}
	types := []int32{2, 3, 3, 1, 4, 6, 1}
	b := appendSPM(nil, tokens, scores, types, false)
	m, err := parseSPM(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.modelType != spmBPE || m.addDummyPrefix || len(m.pieces) != len(tokens) {
		t.Fatalf("%+v", m)
	}
	for i, p := range m.pieces {
		if p.piece != tokens[i] || p.score != scores[i] || p.typ != types[i] {
			t.Fatalf("piece %d: %+v", i, p)
		}
	}
	if _, err := parseSPM(b[:len(b)-3]); err == nil {
		t.Fatal("truncated tokenizer.model accepted")
	}
}
