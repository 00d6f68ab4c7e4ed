package merge

import (
	"strconv"
	"strings"
)

// layerPrefixes are the name parts that precede a layer number: GGUF ("blk.N."),
// Hugging Face llama/mistral/qwen ("model.layers.N."), GPT-2 style ("h.N.").
var layerPrefixes = []string{"blk.", "model.layers.", "layers.", "transformer.h.", "h."}

// layerOf returns the layer number in a tensor name and the byte span of the
// number, or -1 when the tensor belongs to no layer (embeddings, final norm, head).
func layerOf(name string) (layer, start, end int) {
	for _, p := range layerPrefixes {
		i := 0
		if !strings.HasPrefix(name, p) {
			continue
		}
		i = len(p)
		j := i
		for j < len(name) && name[j] >= '0' && name[j] <= '9' {
			j++
		}
		if j == i || j >= len(name) || name[j] != '.' {
			continue
		}
		n, err := strconv.Atoi(name[i:j])
		if err != nil {
			continue
		}
		return n, i, j
	}
	return -1, 0, 0
}

// withLayer renames a layer tensor to another layer number.
func withLayer(name string, layer int) string {
	l, s, e := layerOf(name)
	if l < 0 {
		return name
	}
	return name[:s] + strconv.Itoa(layer) + name[e:]
}

// classOf maps a tensor name to its class. Norms are checked first because GGUF
// calls the attention norm "attn_norm".
func classOf(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "norm"):
		return ClassNorm
	case strings.Contains(n, "embed_tokens") || strings.Contains(n, "token_embd") || strings.Contains(n, "wte") || strings.Contains(n, "embeddings"):
		return ClassEmbedding
	case strings.HasPrefix(n, "lm_head") || strings.HasPrefix(n, "output.") || n == "output":
		return ClassOutput
	case strings.Contains(n, "attn") || strings.Contains(n, "attention"):
		return ClassAttention
	case strings.Contains(n, "mlp") || strings.Contains(n, "ffn") || strings.Contains(n, "feed_forward"):
		return ClassMLP
	}
	return ClassOther
}

// paramPos is where a tensor sits for gradient interpolation: 0 before the layers,
// layer/(layers-1) inside, 1 after (mergekit evaluates gradients the same way).
func paramPos(outLayer, numLayers int, beforeLayers bool) float64 {
	if outLayer < 0 {
		if beforeLayers {
			return 0
		}
		return 1
	}
	if numLayers <= 1 {
		return 0
	}
	return float64(outLayer) / float64(numLayers-1)
}

// interp evaluates piecewise-linear anchors spread evenly over [0, 1] at pos.
func interp(anchors []float64, pos float64) float64 {
	k := len(anchors)
	if k == 1 {
		return anchors[0]
	}
	x := pos * float64(k-1)
	if x <= 0 {
		return anchors[0]
	}
	if x >= float64(k-1) {
		return anchors[k-1]
	}
	i := int(x)
	f := x - float64(i)
	return anchors[i] + f*(anchors[i+1]-anchors[i])
}

// value resolves a Param for a tensor of the given class at pos; ok is false when
// the Param is empty (use the default).
func (p Param) value(class string, pos float64) (float64, bool) {
	if a, ok := p.ByClass[class]; ok && len(a) > 0 {
		return interp(a, pos), true
	}
	if len(p.Anchors) > 0 {
		return interp(p.Anchors, pos), true
	}
	return 0, false
}
