// Package hf converts between Hugging Face model folders (config.json, *.safetensors single or sharded,
// tokenizer.json / tokenizer.model, tokenizer_config.json, generation_config.json) and the GGUF files the
// engine and llama.cpp load. Import renames the tensors, undoes Hugging Face's rotate-half layout of the
// llama Q/K projections (GGUF's llama RoPE is interleaved), keeps the weights' dtypes (F32/F16/BF16; norms
// become F32 as llama.cpp's converter writes them), and carries the tokenizer and chat template over. Export
// is the inverse, for publishing a winner that transformers loads. Architectures are the engine's: llama
// (LlamaForCausalLM, MistralForCausalLM), qwen2 and qwen3; anything else is refused, naming the folder,
// file and key. Every file read is bounded in size, and every count taken from a header is checked against
// the bytes that back it.
package hf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File names inside a model folder.
const (
	ConfigName           = "config.json"
	TokenizerJSONName    = "tokenizer.json"
	TokenizerModelName   = "tokenizer.model"
	TokenizerConfigName  = "tokenizer_config.json"
	GenerationConfigName = "generation_config.json"
	ChatTemplateName     = "chat_template.jinja"
	SafetensorsName      = "model.safetensors"
	SafetensorsIndexName = "model.safetensors.index.json"
)

// Size limits of the JSON and protobuf files a folder holds (the largest public ones are well below).
const (
	maxConfigBytes          = 1 << 20
	maxTokenizerJSONBytes   = 128 << 20
	maxTokenizerModelBytes  = 64 << 20
	maxTokenizerConfigBytes = 32 << 20
	maxChatTemplateBytes    = 4 << 20
)

// IsFolder reports whether path is a directory holding a config.json (an HF model folder).
func IsFolder(path string) bool {
	st, err := os.Stat(filepath.Join(path, ConfigName))
	return err == nil && st.Mode().IsRegular()
}

// readLimited reads a whole file of at most limit bytes; ok is false when it does not exist.
func readLimited(path string, limit int64) (data []byte, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("hf: %s: %w", path, err)
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, true, fmt.Errorf("hf: %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, true, fmt.Errorf("hf: %s: larger than the %d-byte limit", path, limit)
	}
	return data, true, nil
}
