package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"

	"github.com/evomerge/evomerge/internal/atomicfile"
	"github.com/evomerge/evomerge/internal/gguf"
	"github.com/evomerge/evomerge/internal/llm"
	"github.com/evomerge/evomerge/internal/safetensors"
)

// Info describes a converted model.
type Info struct {
	Architecture string     // config.json's architectures[0]
	Config       llm.Config // the engine's config of the GGUF written
	Tensors      int
	// ChatTemplate is the tokenizer's chat template (tokenizer_config.json's chat_template, else
	// chat_template.jinja); "" when the folder has none. BOS and EOS are its special tokens' texts.
	ChatTemplate string
	BOS, EOS     string
}

// layerTensor maps the per-layer Hugging Face tensor names to GGUF's.
var layerTensor = map[string]string{
	"input_layernorm.weight":          "attn_norm.weight",
	"self_attn.q_proj.weight":         "attn_q.weight",
	"self_attn.k_proj.weight":         "attn_k.weight",
	"self_attn.v_proj.weight":         "attn_v.weight",
	"self_attn.q_proj.bias":           "attn_q.bias",
	"self_attn.k_proj.bias":           "attn_k.bias",
	"self_attn.v_proj.bias":           "attn_v.bias",
	"self_attn.q_norm.weight":         "attn_q_norm.weight",
	"self_attn.k_norm.weight":         "attn_k_norm.weight",
	"self_attn.o_proj.weight":         "attn_output.weight",
	"post_attention_layernorm.weight": "ffn_norm.weight",
	"mlp.gate_proj.weight":            "ffn_gate.weight",
	"mlp.up_proj.weight":              "ffn_up.weight",
	"mlp.down_proj.weight":            "ffn_down.weight",
}

var globalTensor = map[string]string{
	"model.embed_tokens.weight": "token_embd.weight",
	"model.norm.weight":         "output_norm.weight",
	"lm_head.weight":            "output.weight",
}

var layerName = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)$`)
var ggufLayerName = regexp.MustCompile(`^blk\.(\d+)\.(.+)$`)

// ggufName is the GGUF name of a Hugging Face tensor ("" for tensors that carry nothing, such as old
// checkpoints' rotary inv_freq buffers).
func ggufName(hf string) (name string, skip bool, ok bool) {
	if g, found := globalTensor[hf]; found {
		return g, false, true
	}
	m := layerName.FindStringSubmatch(hf)
	if m == nil {
		return "", false, false
	}
	if m[2] == "self_attn.rotary_emb.inv_freq" {
		return "", true, true
	}
	g, found := layerTensor[m[2]]
	if !found {
		return "", false, false
	}
	return "blk." + m[1] + "." + g, false, true
}

// hfName is the inverse of ggufName.
func hfName(g string) (string, bool) {
	for h, gg := range globalTensor {
		if gg == g {
			return h, true
		}
	}
	m := ggufLayerName.FindStringSubmatch(g)
	if m == nil {
		return "", false
	}
	for h, gg := range layerTensor {
		if gg == m[2] {
			return "model.layers." + m[1] + "." + h, true
		}
	}
	return "", false
}

// readPlan reads and checks dir's config.json: the folder's cleaned name, the parsed config and the plan
// of the conversion.
func readPlan(dir string) (string, *Config, *plan, error) {
	folder := filepath.Clean(dir)
	cfgPath := filepath.Join(folder, ConfigName)
	data, ok, err := readLimited(cfgPath, maxConfigBytes)
	if err != nil {
		return folder, nil, nil, err
	}
	if !ok {
		return folder, nil, nil, fmt.Errorf("hf: model %s: %s is missing", folder, ConfigName)
	}
	hc, err := ParseConfig(data, cfgPath)
	if err != nil {
		return folder, nil, nil, err
	}
	p, err := hc.modelPlan(folder, ConfigName)
	if err != nil {
		return folder, nil, nil, err
	}
	return folder, hc, p, nil
}

// matchTensors pairs the engine's tensors for p with the checkpoint's (by their safetensors headers alone):
// every tensor the config implies must be there with its shape and a float dtype, and nothing else may be.
// sources[i] is the checkpoint tensor of infos[i] (zero for rope_freqs.weight, which the plan computes).
func matchTensors(folder string, p *plan, st *safetensors.Model) ([]gguf.TensorInfo, []safetensors.Tensor, error) {
	cfg := p.cfg
	byGGUF := map[string]safetensors.Tensor{}
	for _, t := range st.Tensors {
		g, skip, known := ggufName(t.Name)
		if skip {
			continue
		}
		if !known {
			return nil, nil, fmt.Errorf("hf: model %s: %s: tensor %s is not part of %s as the engine runs it", folder, t.Source, t.Name, p.hfArch)
		}
		if g == "output.weight" && p.tied {
			continue // tie_word_embeddings: the output is the embedding, whatever lm_head holds
		}
		byGGUF[g] = t
	}
	if _, ok := byGGUF["output.weight"]; !ok && !p.tied {
		if _, hasLM := st.Tensor("lm_head.weight"); !hasLM {
			return nil, nil, fmt.Errorf("hf: model %s: tensor lm_head.weight is missing (and %s says tie_word_embeddings is false)", folder, ConfigName)
		}
	}

	specs := cfg.Specs(gguf.TypeF32)
	var infos []gguf.TensorInfo
	var sources []safetensors.Tensor
	for _, s := range specs {
		if s.Name == "output.weight" && p.tied {
			continue
		}
		if s.Name == "rope_freqs.weight" {
			infos = append(infos, gguf.TensorInfo{Name: s.Name, Shape: s.Shape, Type: gguf.TypeF32})
			sources = append(sources, safetensors.Tensor{})
			continue
		}
		hfN, _ := hfName(s.Name)
		t, ok := byGGUF[s.Name]
		if !ok {
			return nil, nil, fmt.Errorf("hf: model %s: tensor %s is missing (%s says %d layers of %s)", folder, hfN, ConfigName, cfg.Layers, p.hfArch)
		}
		delete(byGGUF, s.Name)
		want := reversed(s.Shape)
		if !equalInts(t.Shape, want) {
			return nil, nil, fmt.Errorf("hf: model %s: %s: tensor %s has shape %v, but %s implies %v", folder, t.Source, t.Name, t.Shape, ConfigName, want)
		}
		typ := gguf.TypeF32
		switch t.DType {
		case safetensors.F32:
		case safetensors.F16:
			typ = gguf.TypeF16
		case safetensors.BF16:
			typ = gguf.TypeBF16
		default:
			return nil, nil, fmt.Errorf("hf: model %s: %s: tensor %s has dtype %s (F32, F16 and BF16 are supported)", folder, t.Source, t.Name, t.DType)
		}
		if len(s.Shape) == 1 {
			typ = gguf.TypeF32 // norms and biases in F32, as llama.cpp's converter writes them
		}
		infos = append(infos, gguf.TensorInfo{Name: s.Name, Shape: s.Shape, Type: typ})
		sources = append(sources, t)
	}
	for g, t := range byGGUF {
		return nil, nil, fmt.Errorf("hf: model %s: %s: tensor %s (%s) is not part of %s with the shape %s gives", folder, t.Source, t.Name, g, p.hfArch, ConfigName)
	}
	return infos, sources, nil
}

// Import converts the Hugging Face model folder dir to a GGUF file written to w.
func Import(dir string, w io.Writer) (*Info, error) { return importAs(dir, "", w) }

// importAs is Import with general.name given ("": config.json's _name_or_path, else the folder's name).
func importAs(dir, name string, w io.Writer) (*Info, error) {
	folder, hc, p, err := readPlan(dir)
	if err != nil {
		return nil, err
	}
	cfg := p.cfg
	st, err := safetensors.OpenModel(folder)
	if err != nil {
		return nil, fmt.Errorf("hf: model %s: %v", folder, err)
	}
	defer st.Close()
	infos, sources, err := matchTensors(folder, p, st)
	if err != nil {
		return nil, err
	}

	v, err := loadVocab(folder, hc, cfg.Vocab)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = filepath.Base(folder)
	}
	if hc.NameOrPath != "" {
		name = filepath.Base(hc.NameOrPath)
	}
	kvs := []gguf.KV{{Key: "general.architecture", Value: cfg.Architecture()}, {Key: "general.name", Value: name}}
	if p.ropeFreqs != nil {
		var compact bytes.Buffer
		if err := json.Compact(&compact, hc.RopeScaling); err == nil {
			kvs = append(kvs, gguf.KV{Key: ropeScalingKey, Value: compact.String()})
		}
	}
	if ft, ok := fileType(infos); ok {
		kvs = append(kvs, gguf.KV{Key: "general.file_type", Value: ft})
	}
	kvs = append(kvs, archKVs(cfg)...)
	kvs = append(kvs, v.kvs()...)

	gw, err := gguf.NewWriter(w, kvs, infos)
	if err != nil {
		return nil, fmt.Errorf("hf: model %s: %v", folder, err)
	}
	var buf []byte
	for i, ti := range infos {
		src := sources[i]
		if ti.Name == "rope_freqs.weight" {
			raw := make([]byte, 4*len(p.ropeFreqs))
			if err := safetensors.Encode(safetensors.F32, p.ropeFreqs, raw); err != nil {
				return nil, err
			}
			if err := gw.WriteTensor(ti.Name, raw); err != nil {
				return nil, err
			}
			continue
		}
		if int64(cap(buf)) < src.Size {
			buf = make([]byte, src.Size)
		}
		raw := buf[:src.Size]
		if _, err := src.File.ReadAt(raw, src.Offset); err != nil {
			return nil, fmt.Errorf("hf: model %s: %s: reading tensor %s: %v", folder, src.Source, src.Name, err)
		}
		if ti.Type == gguf.TypeF32 && src.DType != safetensors.F32 {
			f := make([]float32, ti.Elements())
			if err := safetensors.Decode(src.DType, raw, f); err != nil {
				return nil, err
			}
			raw = make([]byte, 4*len(f))
			if err := safetensors.Encode(safetensors.F32, f, raw); err != nil {
				return nil, err
			}
		}
		if p.permute {
			if m := ggufLayerName.FindStringSubmatch(ti.Name); m != nil && (m[2] == "attn_q.weight" || m[2] == "attn_k.weight") {
				heads := cfg.Heads
				if m[2] == "attn_k.weight" {
					heads = cfg.KVHeads
				}
				raw = permuteRows(raw, heads, cfg.HeadDim(), false)
			}
		}
		if err := gw.WriteTensor(ti.Name, raw); err != nil {
			return nil, err
		}
	}
	if err := gw.Close(); err != nil {
		return nil, err
	}
	return v.info(p, len(infos)), nil
}

// ImportFile converts dir into the GGUF file out (written atomically) and returns its sha256 (hex).
func ImportFile(dir, out string) (string, *Info, error) { return ImportFileAs(dir, "", out) }

// ImportFileAs is ImportFile for a folder copied from elsewhere (an S3 prefix into a temporary
// directory): name is the model's name when config.json has no _name_or_path, so the GGUF's bytes do
// not depend on where the copy was made.
func ImportFileAs(dir, name, out string) (string, *Info, error) {
	var info *Info
	sum, err := atomicfile.Write(out, func(w io.Writer) error {
		var err error
		info, err = importAs(dir, name, w)
		return err
	})
	return sum, info, err
}

// CheckFolder reads what Import would refuse before any weight is read: config.json's architecture and
// shape, the safetensors headers (every tensor the config implies, with its shape and dtype, and no other)
// and the tokenizer files. It is cheap enough to run when a run is started: a shard is read up to the end
// of its header only, so a copy holding just the headers (the rest of the file a hole) checks the same.
func CheckFolder(dir string) (*Info, error) {
	folder, hc, p, err := readPlan(dir)
	if err != nil {
		return nil, err
	}
	st, err := safetensors.OpenModel(folder)
	if err != nil {
		return nil, fmt.Errorf("hf: model %s: %v", folder, err)
	}
	defer st.Close()
	infos, _, err := matchTensors(folder, p, st)
	if err != nil {
		return nil, err
	}
	v, err := loadVocab(folder, hc, p.cfg.Vocab)
	if err != nil {
		return nil, err
	}
	return v.info(p, len(infos)), nil
}

// info describes the model a plan and a vocabulary make.
func (v *vocab) info(p *plan, tensors int) *Info {
	text := func(id int) string {
		if id < 0 || id >= len(v.tokens) {
			return ""
		}
		return v.tokens[id]
	}
	return &Info{Architecture: p.hfArch, Config: p.cfg, Tensors: tensors, ChatTemplate: v.chatTemplate,
		BOS: text(v.bos), EOS: text(v.eos)}
}

// loadVocab reads the folder's tokenizer files.
func loadVocab(folder string, hc *Config, n int) (*vocab, error) {
	src := tokenizerSources{folder: folder, configJSON: hc, folderName: folder,
		jsonName:   filepath.Join(folder, TokenizerJSONName),
		modelName:  filepath.Join(folder, TokenizerModelName),
		configName: filepath.Join(folder, TokenizerConfigName)}
	var err error
	if src.json, _, err = readLimited(src.jsonName, maxTokenizerJSONBytes); err != nil {
		return nil, err
	}
	if src.model, _, err = readLimited(src.modelName, maxTokenizerModelBytes); err != nil {
		return nil, err
	}
	if src.config, _, err = readLimited(src.configName, maxTokenizerConfigBytes); err != nil {
		return nil, err
	}
	if src.chatTemplateFile, _, err = readLimited(filepath.Join(folder, ChatTemplateName), maxChatTemplateBytes); err != nil {
		return nil, err
	}
	genPath := filepath.Join(folder, GenerationConfigName)
	if gen, ok, err := readLimited(genPath, maxConfigBytes); err != nil {
		return nil, err
	} else if ok {
		if src.genConfig, err = ParseConfig(gen, genPath); err != nil {
			return nil, err
		}
	}
	return buildVocab(src, n)
}

// permuteRows reorders the rows of a Q or K projection between Hugging Face's rotate-half layout (per head:
// the first halves of all pairs, then the second halves) and GGUF llama's interleaved pairs. inverse goes
// from GGUF back to Hugging Face.
func permuteRows(raw []byte, heads, headDim int, inverse bool) []byte {
	rows := heads * headDim
	rowBytes := len(raw) / rows
	out := make([]byte, len(raw))
	half := headDim / 2
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				gg := h*headDim + 2*i + j    // GGUF row
				hf := h*headDim + j*half + i // Hugging Face row
				dst, src := gg, hf
				if inverse {
					dst, src = hf, gg
				}
				copy(out[dst*rowBytes:(dst+1)*rowBytes], raw[src*rowBytes:(src+1)*rowBytes])
			}
		}
	}
	return out
}

// archKVs are the <arch>.* keys of cfg, the keys the engine writes for a model of this config.
func archKVs(c llm.Config) []gguf.KV { return c.Metadata() }

// fileType is llama.cpp's general.file_type for the type most 2-D weights have.
func fileType(infos []gguf.TensorInfo) (uint32, bool) {
	var types []gguf.Type
	for _, t := range infos {
		if len(t.Shape) > 1 {
			types = append(types, t.Type)
		}
	}
	return gguf.FileType(types)
}

func reversed(s []int64) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[len(s)-1-i] = d
	}
	return out
}

func equalInts(a, b []int64) bool {
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
