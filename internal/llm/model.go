package llm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/evomerge/evomerge/internal/ggml"
	"github.com/evomerge/evomerge/internal/gguf"

	"github.com/evomerge/evomerge/internal/atomicfile"
)

// Options choose where a model runs.
type Options struct {
	Threads     int    // CPU threads (0: the number of cores; engines read no environment)
	Device      string // "cpu" (default) or "cuda"
	CUDALibrary string // libggml-cuda.so for Device "cuda"
	Window      int    // most tokens per sequence (0: the model's context length, capped at 4096)
}

// Model is a language model whose weights live on a ggml backend.
type Model struct {
	Config Config
	Tok    Tokenizer

	backend *ggml.Backend
	wctx    *ggml.Context
	wbuf    *ggml.Buffer
	W       Weights
	names   []string // tensor names in file order
	byName  map[string]ggml.Tensor
	meta    []gguf.KV // metadata kept from the source file (general.* and others)
	window  int
	cache   *KVCache
	path    string
	sha     string
}

// supportedWeightTypes are the types inference runs on.
var supportedWeightTypes = map[gguf.Type]bool{
	gguf.TypeF32: true, gguf.TypeF16: true, gguf.TypeBF16: true, gguf.TypeQ8_0: true, gguf.TypeQ4_0: true,
	gguf.TypeQ4_1: true, gguf.TypeQ5_0: true, gguf.TypeQ5_1: true, gguf.TypeQ2_K: true, gguf.TypeQ3_K: true,
	gguf.TypeQ4_K: true, gguf.TypeQ5_K: true, gguf.TypeQ6_K: true,
}

// TensorSpec is the name, shape (ggml order) and type of one weight.
type TensorSpec struct {
	Name  string
	Shape []int64
	Type  gguf.Type
}

// Specs lists the weights a model of this config has, in the order the project writes them. Norms, biases
// and rope_freqs are F32 whatever t is.
func (c Config) Specs(t gguf.Type) []TensorSpec {
	d, f, v := int64(c.Dim), int64(c.FFN), int64(c.Vocab)
	hd := int64(c.HeadDim())
	q, kv := int64(c.Heads)*hd, int64(c.KVHeads)*hd
	s := []TensorSpec{
		{"token_embd.weight", []int64{d, v}, t},
		{"output_norm.weight", []int64{d}, gguf.TypeF32},
		{"output.weight", []int64{d, v}, t},
	}
	if c.RopeFreqs {
		s = append(s, TensorSpec{"rope_freqs.weight", []int64{hd / 2}, gguf.TypeF32})
	}
	a := c.spec()
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		s = append(s,
			TensorSpec{p + "attn_norm.weight", []int64{d}, gguf.TypeF32},
			TensorSpec{p + "attn_q.weight", []int64{d, q}, t},
			TensorSpec{p + "attn_k.weight", []int64{d, kv}, t},
			TensorSpec{p + "attn_v.weight", []int64{d, kv}, t})
		if a.qkvBias {
			s = append(s,
				TensorSpec{p + "attn_q.bias", []int64{q}, gguf.TypeF32},
				TensorSpec{p + "attn_k.bias", []int64{kv}, gguf.TypeF32},
				TensorSpec{p + "attn_v.bias", []int64{kv}, gguf.TypeF32})
		}
		if a.qkNorm {
			s = append(s,
				TensorSpec{p + "attn_q_norm.weight", []int64{hd}, gguf.TypeF32},
				TensorSpec{p + "attn_k_norm.weight", []int64{hd}, gguf.TypeF32})
		}
		s = append(s,
			TensorSpec{p + "attn_output.weight", []int64{q, d}, t},
			TensorSpec{p + "ffn_norm.weight", []int64{d}, gguf.TypeF32},
			TensorSpec{p + "ffn_gate.weight", []int64{d, f}, t},
			TensorSpec{p + "ffn_up.weight", []int64{d, f}, t},
			TensorSpec{p + "ffn_down.weight", []int64{f, d}, t},
		)
	}
	return s
}

// Trainable says whether a fine-tune may update a tensor: everything but rope_freqs.weight, which is part of
// the position encoding (and has no gradient in ggml).
func Trainable(name string) bool { return name != "rope_freqs.weight" }

// ProjTensorName is the GGUF name of a block's projection.
func ProjTensorName(layer int, p Proj) string {
	return fmt.Sprintf("blk.%d.%s.weight", layer, [...]string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}[p])
}

// Load opens a GGUF model (architecture llama, qwen2 or qwen3).
func Load(path string, o Options) (*Model, error) {
	f, file, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	cfg, err := configFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tok, err := tokenizerFromGGUF(f, cfg.Vocab)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	specs := cfg.Specs(gguf.TypeF32)
	if _, ok := f.Tensor("output.weight"); !ok {
		specs = slices.DeleteFunc(specs, func(s TensorSpec) bool { return s.Name == "output.weight" }) // tied to the embedding
	}
	want := map[string]bool{}
	for _, s := range specs {
		want[s.Name] = true
	}
	for _, ti := range f.Tensors {
		if !want[ti.Name] {
			// llama.cpp refuses a file with tensors its architecture does not use; so do we, rather than
			// run a model that is not the one in the file.
			return nil, fmt.Errorf("%s: tensor %s is not part of architecture %s", path, ti.Name, cfg.Architecture())
		}
	}
	for i, s := range specs {
		ti, ok := f.Tensor(s.Name)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s is missing", path, s.Name)
		}
		if !equalShape(ti.Shape, s.Shape) {
			return nil, fmt.Errorf("%s: tensor %s has shape %v, want %v", path, s.Name, ti.Shape, s.Shape)
		}
		if !supportedWeightTypes[ti.Type] {
			return nil, fmt.Errorf("%s: tensor %s has type %s, which inference does not support", path, s.Name, ti.Type)
		}
		if len(s.Shape) == 1 {
			continue // norms are converted to F32 when loaded
		}
		specs[i].Type = ti.Type
	}
	var meta []gguf.KV
	for _, kv := range f.KVs {
		if keepMetadata(kv.Key) {
			meta = append(meta, kv)
		}
	}
	m, err := newModel(cfg, tok, meta, specs, o, func(s TensorSpec, dst []byte) error {
		ti, _ := f.Tensor(s.Name)
		if ti.Type == s.Type {
			_, err := file.ReadAt(dst, ti.Offset)
			return err
		}
		raw := make([]byte, ti.Size)
		if _, err := file.ReadAt(raw, ti.Offset); err != nil {
			return err
		}
		return ggml.ToFloat32(ggml.Type(ti.Type), raw, unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), len(dst)/4))
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.path = path
	return m, nil
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// keepMetadata says which source keys survive a save: everything but what Save derives itself.
func keepMetadata(key string) bool {
	for a := range archs {
		if strings.HasPrefix(key, a+".") {
			return false
		}
	}
	return !strings.HasPrefix(key, "tokenizer.") &&
		key != "general.architecture" && key != "general.file_type" && key != "general.alignment" &&
		key != "general.parameter_count"
}

// NewTiny creates a model from nothing: byte-level tokenizer, weights drawn from N(0, 0.02) by a PRNG seeded
// with seed (the output projections of each block scaled by 1/sqrt(2·layers), norms 1).
func NewTiny(cfg Config, seed uint64, o Options) (*Model, error) {
	if cfg.Vocab == 0 {
		cfg.Vocab = ByteVocabLen
	}
	if cfg.Vocab != ByteVocabLen {
		return nil, fmt.Errorf("llm: a byte-level model has %d tokens, not %d", ByteVocabLen, cfg.Vocab)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	residual := 0.02 / math.Sqrt(2*float64(cfg.Layers))
	meta := []gguf.KV{{Key: "general.name", Value: "evomerge-tiny"}}
	return newModel(cfg, ByteTokenizer{}, meta, cfg.Specs(gguf.TypeF32), o, func(s TensorSpec, dst []byte) error {
		v := unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), len(dst)/4)
		std := 0.02
		if strings.HasSuffix(s.Name, "attn_output.weight") || strings.HasSuffix(s.Name, "ffn_down.weight") {
			std = residual
		}
		for i := range v {
			switch {
			case strings.HasSuffix(s.Name, ".bias"):
				v[i] = 0
			case len(s.Shape) == 1: // norms, and rope_freqs as factors of 1
				v[i] = 1
			default:
				v[i] = float32(rng.NormFloat64() * std)
			}
		}
		return nil
	})
}

// FromHost builds a model from weights in memory (tensors by name, each in the type its spec says).
func FromHost(cfg Config, tok Tokenizer, meta []gguf.KV, specs []TensorSpec, data map[string][]byte, o Options) (*Model, error) {
	return newModel(cfg, tok, meta, specs, o, func(s TensorSpec, dst []byte) error {
		src, ok := data[s.Name]
		if !ok || len(src) != len(dst) {
			return fmt.Errorf("llm: tensor %s: have %d bytes, want %d", s.Name, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	})
}

func newModel(cfg Config, tok Tokenizer, meta []gguf.KV, specs []TensorSpec, o Options, fill func(TensorSpec, []byte) error) (*Model, error) {
	b, err := ggml.NewBackend(ggml.BackendOptions{Device: o.Device, CUDALibrary: o.CUDALibrary, Threads: o.Threads})
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Tok: tok, backend: b, meta: meta, byName: map[string]ggml.Tensor{}}
	m.window = o.Window
	if m.window <= 0 || m.window > cfg.Context {
		m.window = min(cfg.Context, 4096)
	}
	if sw := cfg.SlidingWindow; sw > 0 && m.window > sw {
		// Attention here is full over the window: exact only while every key is inside the sliding window.
		if o.Window > 0 {
			b.Close()
			return nil, fmt.Errorf("llm: a window of %d tokens exceeds %s.attention.sliding_window = %d (sliding-window attention is not implemented)", o.Window, cfg.Architecture(), sw)
		}
		m.window = sw
	}
	m.wctx = ggml.NewContext(len(specs), 0, false)
	for _, s := range specs {
		t := m.wctx.New(ggml.Type(s.Type), s.Shape...).SetName(s.Name)
		m.byName[s.Name] = t
		m.names = append(m.names, s.Name)
	}
	if m.wbuf, err = b.Alloc(m.wctx); err != nil {
		m.Close()
		return nil, err
	}
	// Before the weights are written: generation streams them all per token (see AdviseHugePages).
	m.wbuf.AdviseHugePages()
	var buf []byte
	for _, s := range specs {
		t := m.byName[s.Name]
		if int64(cap(buf)) < t.Bytes() {
			buf = make([]byte, t.Bytes())
		}
		buf = buf[:t.Bytes()]
		if err := fill(s, buf); err != nil {
			m.Close()
			return nil, fmt.Errorf("tensor %s: %w", s.Name, err)
		}
		t.SetBytes(buf)
	}
	m.W = WeightsFrom(cfg, m.byName)
	return m, nil
}

// WeightsFrom arranges named tensors into Weights (output falls back to the embedding when absent).
func WeightsFrom(cfg Config, byName map[string]ggml.Tensor) Weights {
	w := Weights{Embed: byName["token_embd.weight"], OutputNorm: byName["output_norm.weight"], Output: byName["output.weight"],
		RopeFreqs: byName["rope_freqs.weight"]}
	if w.Output.Nil() {
		w.Output = w.Embed
	}
	for i := 0; i < cfg.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		ly := Layer{
			AttnNorm: byName[p+"attn_norm.weight"],
			FFNNorm:  byName[p+"ffn_norm.weight"],
			QBias:    byName[p+"attn_q.bias"],
			KBias:    byName[p+"attn_k.bias"],
			VBias:    byName[p+"attn_v.bias"],
			QNorm:    byName[p+"attn_q_norm.weight"],
			KNorm:    byName[p+"attn_k_norm.weight"],
		}
		for p := ProjQ; p <= ProjDown; p++ {
			ly.Proj[p] = byName[ProjTensorName(i, p)]
		}
		w.Layers = append(w.Layers, ly)
	}
	return w
}

// Close frees the model's memory.
func (m *Model) Close() {
	if m.cache != nil {
		m.cache.free()
		m.cache = nil
	}
	m.wbuf.Free()
	if m.wctx != nil {
		m.wctx.Free()
	}
	if m.backend != nil {
		m.backend.Close()
	}
}

// Backend is the ggml backend the model runs on.
func (m *Model) Backend() *ggml.Backend { return m.backend }

// Window is the most tokens one sequence may have.
func (m *Model) Window() int { return m.window }

// Specs lists the model's tensors in file order.
func (m *Model) Specs() []TensorSpec {
	out := make([]TensorSpec, len(m.names))
	for i, n := range m.names {
		t := m.byName[n]
		out[i] = TensorSpec{n, t.Shape(), gguf.Type(t.Type())}
	}
	return out
}

// TensorData copies a tensor's bytes out of the backend.
func (m *Model) TensorData(name string) ([]byte, error) {
	t, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("llm: no tensor %s", name)
	}
	b := make([]byte, t.Bytes())
	t.GetBytes(b)
	return b, nil
}

// TensorF32 returns a tensor's values as float32, dequantizing if needed.
func (m *Model) TensorF32(name string) ([]float32, error) {
	b, err := m.TensorData(name)
	if err != nil {
		return nil, err
	}
	t := m.byName[name]
	v := make([]float32, t.Elements())
	return v, ggml.ToFloat32(t.Type(), b, v)
}

// ExtraMetadata is the metadata kept from the model's source beyond what Save derives (general.name ...).
func (m *Model) ExtraMetadata() []gguf.KV { return append([]gguf.KV(nil), m.meta...) }

// Metadata is the model's GGUF metadata in the order Save writes it.
func (m *Model) Metadata() []gguf.KV {
	kvs := []gguf.KV{{Key: "general.architecture", Value: m.Config.Architecture()}}
	if ft, ok := fileType(m.Specs()); ok {
		kvs = append(kvs, gguf.KV{Key: "general.file_type", Value: ft})
	}
	kvs = append(kvs, m.meta...)
	kvs = append(kvs, m.Config.Metadata()...)
	return append(kvs, m.Tok.metadata()...)
}

// fileType is llama.cpp's general.file_type for the type most 2-D weights have.
func fileType(specs []TensorSpec) (uint32, bool) {
	var types []gguf.Type
	for _, s := range specs {
		if len(s.Shape) > 1 {
			types = append(types, s.Type)
		}
	}
	return gguf.FileType(types)
}

// WriteTo writes the model as GGUF.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	specs := m.Specs()
	infos := make([]gguf.TensorInfo, len(specs))
	for i, s := range specs {
		infos[i] = gguf.TensorInfo{Name: s.Name, Shape: s.Shape, Type: s.Type}
	}
	cw := &countingWriter{w: w}
	gw, err := gguf.NewWriter(cw, m.Metadata(), infos)
	if err != nil {
		return cw.n, err
	}
	for _, s := range specs {
		data, err := m.TensorData(s.Name)
		if err != nil {
			return cw.n, err
		}
		if err := gw.WriteTensor(s.Name, data); err != nil {
			return cw.n, err
		}
	}
	return cw.n, gw.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Save writes the model to path atomically and returns the file's sha256 (hex).
func (m *Model) Save(path string) (string, error) {
	sum, err := WriteFileAtomic(path, func(w io.Writer) error { _, err := m.WriteTo(w); return err })
	if err == nil {
		m.path, m.sha = path, sum
	}
	return sum, err
}

// WriteFileAtomic writes a file through a temporary name in the same directory, hashing it on the way, and
// renames it into place only when everything was written; on error nothing is left under path.
func WriteFileAtomic(path string, write func(io.Writer) error) (string, error) {
	return atomicfile.Write(path, write)
}

// SHA256 is the hex sha256 of the model's file (computed once; "" for a model never saved).
func (m *Model) SHA256() string {
	if m.sha == "" && m.path != "" {
		f, err := os.Open(m.path)
		if err != nil {
			return ""
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return ""
		}
		m.sha = hex.EncodeToString(h.Sum(nil))
	}
	return m.sha
}

var errEmptyContinuation = errors.New("llm: empty continuation")
