package llm

import "github.com/evomerge/evomerge/internal/ggml"

// Tensor is the model's own tensor named name, in its stored type and in the model's backend buffer. A LoRA
// trainer reads frozen weights through it instead of copying them; callers must not write to it.
func (m *Model) Tensor(name string) (ggml.Tensor, bool) {
	t, ok := m.byName[name]
	return t, ok
}
