// Package ggml is a small typed Go layer over ggml (the tensor library under llama.cpp and Ollama), compiled
// from the pinned github.com/ollama/ollama module through cgo. It offers contexts, tensors, the graph ops a
// llama block needs (forward and backward), AdamW steps, type conversion, and backends (CPU by default, CUDA when
// libggml-cuda.so is given). It knows nothing of models: internal/llm builds on it.
//
// ggml aborts the process on a failed assertion, so callers validate shapes before building graphs; this
// package checks what it cheaply can and returns errors for the rest.
package ggml

/*
#cgo LDFLAGS: -lm -lstdc++
#include <stdlib.h>
#include "ggml.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	_ "github.com/ollama/ollama/ml/backend/ggml/ggml/src" // compiles and links ggml and its CPU backend
)

// Type is a ggml tensor type id (the same ids GGUF stores).
type Type uint32

// Tensor types used by the engine.
const (
	F32  Type = 0
	F16  Type = 1
	Q8_0 Type = 8
	Q4_K Type = 12
	I32  Type = 26
	BF16 Type = 30
)

// TypeName is ggml's name for t ("f16", "q4_K"...), or "" if ggml does not know t.
func TypeName(t Type) string {
	if t >= 40 {
		return ""
	}
	tr := C.ggml_get_type_traits(C.int(t))
	if tr == nil || tr.type_name == nil || tr.blck_size == 0 {
		return ""
	}
	return C.GoString(tr.type_name)
}

// RowSize is the number of bytes n elements of type t take (n a multiple of the block size).
func RowSize(t Type, n int64) int64 { return int64(C.ggml_row_size(C.int(t), C.int64_t(n))) }

// Context holds tensor and graph metadata. It never holds tensor data: data lives in backend buffers.
type Context struct {
	c     *C.struct_ggml_context
	norms []Tensor // RMS norm outputs, for the backward-pass workaround (see NormOutputs)
	xents []xent   // CrossEntropyRows losses not yet fused (see Graph.FuseCrossEntropy)
}

// NewContext makes a metadata-only context for up to maxTensors tensors and one graph of graphSize nodes
// (graphSize 0: no graph).
func NewContext(maxTensors, graphSize int, grads bool) *Context {
	size := C.size_t(maxTensors) * C.ggml_tensor_overhead()
	if graphSize > 0 {
		size += C.ggml_graph_overhead_custom(C.size_t(graphSize), C.bool(grads))
	}
	c := C.ggml_init(C.struct_ggml_init_params{mem_size: size + 1<<16, mem_buffer: nil, no_alloc: true})
	return &Context{c: c}
}

// Free releases the context's metadata (not backend buffers).
func (c *Context) Free() {
	if c != nil && c.c != nil {
		C.ggml_free(c.c)
		c.c = nil
	}
}

// Tensor is a handle to a ggml tensor. Its zero value is "no tensor".
type Tensor struct{ t *C.struct_ggml_tensor }

// Nil reports whether t is the zero handle.
func (t Tensor) Nil() bool { return t.t == nil }

// Ne is the size of dimension i (ggml order: 0 is the contiguous one).
func (t Tensor) Ne(i int) int64 { return int64(t.t.ne[i]) }

// Nb is the stride in bytes of dimension i.
func (t Tensor) Nb(i int) int64 { return int64(t.t.nb[i]) }

// Type is the tensor's element type.
func (t Tensor) Type() Type { return Type(t.t._type) }

// Bytes is the tensor's data size.
func (t Tensor) Bytes() int64 { return int64(C.ggml_nbytes(t.t)) }

// Contiguous reports whether the tensor's elements lie densely in ggml order.
func (t Tensor) Contiguous() bool { return bool(C.ggml_is_contiguous(t.t)) }

// Elements is the number of elements.
func (t Tensor) Elements() int64 { return t.Ne(0) * t.Ne(1) * t.Ne(2) * t.Ne(3) }

// Shape returns the sizes of the dimensions in ggml order, trimmed of trailing ones.
func (t Tensor) Shape() []int64 {
	s := []int64{t.Ne(0), t.Ne(1), t.Ne(2), t.Ne(3)}
	for len(s) > 1 && s[len(s)-1] == 1 {
		s = s[:len(s)-1]
	}
	return s
}

// SetName names the tensor (ggml keeps up to 63 bytes).
func (t Tensor) SetName(name string) Tensor {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	C.ggml_set_name(t.t, cs)
	return t
}

// Mark flags a tensor for the allocator and the backward pass.
func (t Tensor) SetParam()  { C.ggml_set_param(t.t) }
func (t Tensor) SetLoss()   { C.ggml_set_loss(t.t) }
func (t Tensor) SetInput()  { C.ggml_set_input(t.t) }
func (t Tensor) SetOutput() { C.ggml_set_output(t.t) }

// New makes a tensor of type t with the given dimensions (1 to 3, ggml order).
func (c *Context) New(t Type, ne ...int64) Tensor {
	switch len(ne) {
	case 1:
		return Tensor{C.ggml_new_tensor_1d(c.c, C.int(t), C.int64_t(ne[0]))}
	case 2:
		return Tensor{C.ggml_new_tensor_2d(c.c, C.int(t), C.int64_t(ne[0]), C.int64_t(ne[1]))}
	case 3:
		return Tensor{C.ggml_new_tensor_3d(c.c, C.int(t), C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]))}
	}
	panic(fmt.Sprintf("ggml: New with %d dimensions", len(ne))) // programming error, not input
}

// Dup makes a new tensor with the type and shape of t.
func (c *Context) Dup(t Tensor) Tensor { return Tensor{C.ggml_dup_tensor(c.c, t.t)} }

// Alias is a new leaf tensor of t's type and shape over t's memory. t must be contiguous and already placed
// (a tensor of an allocated graph): another graph can then read what that graph wrote without depending on
// the nodes that made it (an optimizer graph reading the gradients of the backward graph, with no copy).
func (c *Context) Alias(t Tensor) (Tensor, error) {
	if t.t.data == nil || t.t.buffer == nil || !t.Contiguous() {
		return Tensor{}, fmt.Errorf("ggml: Alias needs a placed, contiguous tensor")
	}
	a := c.Dup(t)
	if st := C.ggml_backend_tensor_alloc(t.t.buffer, a.t, t.t.data); st != 0 {
		return Tensor{}, fmt.Errorf("ggml: Alias: placing the tensor failed (status %d)", int(st))
	}
	return a, nil
}

// The ops. Each returns a new node; none is in place (the backward pass needs that).
func (c *Context) Add(a, b Tensor) Tensor    { return Tensor{C.ggml_add(c.c, a.t, b.t)} }
func (c *Context) Mul(a, b Tensor) Tensor    { return Tensor{C.ggml_mul(c.c, a.t, b.t)} }
func (c *Context) MulMat(a, b Tensor) Tensor { return Tensor{C.ggml_mul_mat(c.c, a.t, b.t)} }
func (c *Context) Scale(a Tensor, s float32) Tensor {
	return Tensor{C.ggml_scale(c.c, a.t, C.float(s))}
}
func (c *Context) RMSNorm(a Tensor, eps float32) Tensor {
	t := Tensor{C.ggml_rms_norm(c.c, a.t, C.float(eps))}
	c.norms = append(c.norms, t)
	return t
}

// NormOutputs are the RMS norm nodes made in this context. ggml's CPU RMS_NORM_BACK kernel is wrong when the
// allocator runs it in place; marking the gradients of these nodes as outputs keeps them out of place.
func (c *Context) NormOutputs() []Tensor { return c.norms }

func (c *Context) Sqr(a Tensor) Tensor           { return Tensor{C.ggml_sqr(c.c, a.t)} }
func (c *Context) GetRows(a, rows Tensor) Tensor { return Tensor{C.ggml_get_rows(c.c, a.t, rows.t)} }
func (c *Context) SiLU(a Tensor) Tensor          { return Tensor{C.ggml_silu(c.c, a.t)} }
func (c *Context) Cont(a Tensor) Tensor          { return Tensor{C.ggml_cont(c.c, a.t)} }
func (c *Context) Sum(a Tensor) Tensor           { return Tensor{C.ggml_sum(c.c, a.t)} }
func (c *Context) Transpose(a Tensor) Tensor     { return Tensor{C.ggml_transpose(c.c, a.t)} }
func (c *Context) Cpy(a, dst Tensor) Tensor      { return Tensor{C.ggml_cpy(c.c, a.t, dst.t)} }

// RoPE rotates pairs (i, i+1) of the first dims values of each head (mode 0, the original llama layout)
// by the angle pos * base^(-i/dims). a is [headDim, heads, n]; pos is an I32 tensor [n].
func (c *Context) RoPE(a, pos Tensor, dims int, base float32) Tensor {
	return Tensor{C.ggml_rope_ext(c.c, a.t, pos.t, nil, C.int(dims), 0, 0, C.float(base), 1, 0, 1, 0, 0)}
}

// SoftMax computes softmax(a*scale + mask) over rows; mask may be the zero Tensor.
func (c *Context) SoftMax(a, mask Tensor, scale float32) Tensor {
	return Tensor{C.ggml_soft_max_ext(c.c, a.t, mask.t, C.float(scale), 0)}
}

// CrossEntropy is the mean over rows of -sum(labels * log softmax(logits)); a scalar.
func (c *Context) CrossEntropy(logits, labels Tensor) Tensor {
	return Tensor{C.ggml_cross_entropy_loss(c.c, logits.t, labels.t)}
}

func (c *Context) Reshape2D(a Tensor, ne0, ne1 int64) Tensor {
	return Tensor{C.ggml_reshape_2d(c.c, a.t, C.int64_t(ne0), C.int64_t(ne1))}
}
func (c *Context) Reshape3D(a Tensor, ne0, ne1, ne2 int64) Tensor {
	return Tensor{C.ggml_reshape_3d(c.c, a.t, C.int64_t(ne0), C.int64_t(ne1), C.int64_t(ne2))}
}
func (c *Context) View2D(a Tensor, ne0, ne1, nb1, offset int64) Tensor {
	return Tensor{C.ggml_view_2d(c.c, a.t, C.int64_t(ne0), C.int64_t(ne1), C.size_t(nb1), C.size_t(offset))}
}
func (c *Context) View3D(a Tensor, ne0, ne1, ne2, nb1, nb2, offset int64) Tensor {
	return Tensor{C.ggml_view_3d(c.c, a.t, C.int64_t(ne0), C.int64_t(ne1), C.int64_t(ne2), C.size_t(nb1), C.size_t(nb2), C.size_t(offset))}
}

// Permute moves dimension i of a to position axes[i].
func (c *Context) Permute(a Tensor, ax0, ax1, ax2, ax3 int) Tensor {
	return Tensor{C.ggml_permute(c.c, a.t, C.int(ax0), C.int(ax1), C.int(ax2), C.int(ax3))}
}

// AdamWStep updates a in place from its gradient and moments; params is the 7-float tensor
// [lr, beta1, beta2, eps, weight decay, 1/(1-beta1^t), 1/(1-beta2^t)].
func (c *Context) AdamWStep(a, grad, m, v, params Tensor) Tensor {
	return Tensor{C.ggml_opt_step_adamw(c.c, a.t, grad.t, m.t, v.t, params.t)}
}

// Graph is a computation graph built in a Context.
type Graph struct{ g *C.struct_ggml_cgraph }

// NewGraph makes a graph of up to size nodes; grads must be true to build a backward pass.
func (c *Context) NewGraph(size int, grads bool) Graph {
	return Graph{C.ggml_new_graph_custom(c.c, C.size_t(size), C.bool(grads))}
}

// Expand adds t and everything it depends on to the graph.
func (g Graph) Expand(t Tensor) { C.ggml_build_forward_expand(g.g, t.t) }

// BuildBackward adds the gradient nodes for every parameter of the loss in g.
func (g Graph) BuildBackward(c *Context) { C.ggml_build_backward_expand(c.c, g.g, nil) }

// Grad is the gradient of node t (zero Tensor if t has none).
func (g Graph) Grad(t Tensor) Tensor { return Tensor{C.ggml_graph_get_grad(g.g, t.t)} }

// Reset zeroes the gradients and sets the loss gradient to 1.
func (g Graph) Reset() { C.ggml_graph_reset(g.g) }

// Nodes returns the graph's nodes in execution order.
func (g Graph) Nodes() []Tensor {
	n := int(C.ggml_graph_n_nodes(g.g))
	out := make([]Tensor, n)
	for i := range out {
		out[i] = Tensor{C.ggml_graph_node(g.g, C.int(i))}
	}
	return out
}

func (c *Context) Reshape4D(a Tensor, ne0, ne1, ne2, ne3 int64) Tensor {
	return Tensor{C.ggml_reshape_4d(c.c, a.t, C.int64_t(ne0), C.int64_t(ne1), C.int64_t(ne2), C.int64_t(ne3))}
}
