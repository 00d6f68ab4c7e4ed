package dataset

import (
	"fmt"

	"github.com/evomerge/evomerge/internal/gguf"
)

// ErrNoChatTemplate is returned by TemplateFromGGUF for a model without
// tokenizer.chat_template.
var ErrNoChatTemplate = fmt.Errorf("the model has no chat template (tokenizer.chat_template)")

// TemplateFromGGUF builds the chat template a GGUF model carries, with its
// bos and eos token texts. override, when not empty, replaces the model's
// template (the run config's own).
func TemplateFromGGUF(f *gguf.File, override string) (*ChatTemplate, error) {
	src := override
	if src == "" {
		s, ok := f.String("tokenizer.chat_template")
		if !ok || s == "" {
			return nil, ErrNoChatTemplate
		}
		src = s
	}
	v, _ := f.Lookup("tokenizer.ggml.tokens")
	tokens, _ := v.([]string)
	text := func(key string) string {
		id, ok := f.Uint(key)
		if !ok || id >= uint64(len(tokens)) {
			return ""
		}
		return tokens[id]
	}
	return NewChatTemplate(src, text("tokenizer.ggml.bos_token_id"), text("tokenizer.ggml.eos_token_id"))
}
