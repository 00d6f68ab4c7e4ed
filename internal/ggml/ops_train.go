package ggml

/*
#include <stdlib.h>
#include <string.h>
#include "ggml.h"
#include "gemm.h"
#include "adamw.h"

size_t ggml_backend_sched_get_buffer_size(ggml_backend_sched_t sched, ggml_backend_t backend);
size_t ggml_backend_buffer_get_size(ggml_backend_buffer_t buffer);

enum { evo_F32 = 0, evo_OP_MUL_MAT = 29, evo_OP_OUT_PROD = 31, evo_OP_CPY = 34, evo_OP_TRANSPOSE = 39 };

// evo_transposed returns a contiguous F32 tensor holding x with dimensions 0 and 1 swapped. A transpose view of
// a contiguous F32 tensor is undone for free; frozen F16/BF16 weights are converted while transposing, quantized
// ones are dequantized first (quantized rows cannot be transposed), so only one F32 temporary exists at a time.
static struct ggml_tensor *evo_transposed(struct ggml_context *ctx, struct ggml_tensor *x) {
	// A cast to F32 of a stored weight (see Context.Cast): convert the stored tensor again rather than keep the
	// forward's F32 copy alive until the backward pass.
	if (x->op == evo_OP_CPY && x->type == evo_F32 && x->src[0] != NULL && x->src[0]->type != evo_F32 && ggml_is_contiguous(x->src[0])) {
		x = x->src[0];
	}
	if (x->op == evo_OP_TRANSPOSE && x->src[0] != NULL && x->src[0]->type == evo_F32 && ggml_is_contiguous(x->src[0])) {
		return x->src[0];
	}
	if (ggml_is_quantized(x->type)) {
		x = ggml_cast(ctx, x, evo_F32);
	}
	if (x->type != evo_F32) {
		return ggml_cast(ctx, ggml_transpose(ctx, x), evo_F32);
	}
	return ggml_cont(ctx, ggml_transpose(ctx, x));
}

// evo_gemm_op computes a MUL_MAT (kind 0) or OUT_PROD (kind 1) node of F32 operands with evo_gemm, reading
// the operands through their strides (out_prod's transpose views and permuted attention operands need no
// copy). Dimensions 2 and 3 are a batch of independent products; a's planes broadcast over b's as in ggml
// (grouped-query attention). With at least as many planes as threads each thread takes whole planes.
static void evo_gemm_op(struct ggml_tensor *dst, const struct ggml_tensor *a, const struct ggml_tensor *b, int ith, int nth, void *ud) {
	const int64_t e = sizeof(float);
	const int mm = (intptr_t)ud == 0;
	const int64_t sam = (mm ? a->nb[1] : a->nb[0]) / e, sak = (mm ? a->nb[0] : a->nb[1]) / e;
	const int64_t sbn = (mm ? b->nb[1] : b->nb[0]) / e, sbk = (mm ? b->nb[0] : b->nb[1]) / e;
	const int64_t K = mm ? a->ne[0] : a->ne[1];
	const int64_t r2 = dst->ne[2] / a->ne[2], r3 = dst->ne[3] / a->ne[3];
	const int64_t planes = dst->ne[2] * dst->ne[3];
	int64_t p0 = 0, p1 = planes;
	int sub_ith = ith, sub_nth = nth;
	if (planes >= nth) {
		p0 = planes * ith / nth;
		p1 = planes * (ith + 1) / nth;
		sub_ith = 0;
		sub_nth = 1;
	}
	for (int64_t p = p0; p < p1; p++) {
		const int64_t i2 = p % dst->ne[2], i3 = p / dst->ne[2];
		const char *ap = (const char *)a->data + (i2 / r2) * a->nb[2] + (i3 / r3) * a->nb[3];
		const char *bp = (const char *)b->data + i2 * b->nb[2] + i3 * b->nb[3];
		char *cp = (char *)dst->data + i2 * dst->nb[2] + i3 * dst->nb[3];
		evo_gemm((const float *)ap, sam, sak, (const float *)bp, sbn, sbk, (float *)cp, dst->nb[1] / e,
			dst->ne[0], dst->ne[1], K, sub_ith, sub_nth);
	}
}

static int evo_is_f32_strided(const struct ggml_tensor *t) {
	if (t->type != evo_F32) return 0;
	for (int i = 0; i < 4; i++)
		if (t->nb[i] % sizeof(float) != 0) return 0;
	return 1;
}

// evo_is_cast is a conversion to F32 of a stored F16/BF16/quantized weight (see Context.Cast).
static int evo_is_cast(const struct ggml_tensor *t) {
	return t->op == evo_OP_CPY && t->src[0] != NULL && t->src[0]->type != evo_F32;
}

// evo_products_to_gemm makes every F32 MUL_MAT and OUT_PROD node of g compute with evo_gemm (the node
// becomes a custom op with the same shape and identity). An OUT_PROD through a converted frozen weight reads a
// new conversion of the stored weight (not in g: rebuild the graph from its outputs), so the forward's F32
// copy need not stay alive until the backward pass.
static int evo_products_to_gemm(struct ggml_context *ctx, struct ggml_cgraph *g) {
	int n = ggml_graph_n_nodes(g), count = 0;
	for (int i = 0; i < n; i++) {
		struct ggml_tensor *t = ggml_graph_node(g, i);
		intptr_t kind;
		if (t->op == evo_OP_MUL_MAT) {
			kind = 0;
		} else if (t->op == evo_OP_OUT_PROD) {
			kind = 1;
		} else {
			continue;
		}
		struct ggml_tensor *a = t->src[0], *b = t->src[1];
		if (!evo_is_f32_strided(t) || !evo_is_f32_strided(a) || !evo_is_f32_strided(b) || t->nb[0] != sizeof(float) ||
			b->ne[2] != t->ne[2] || b->ne[3] != t->ne[3] || t->ne[2] % a->ne[2] != 0 || t->ne[3] % a->ne[3] != 0) {
			continue;
		}
		if (kind == 1) {
			// Through a converted frozen weight: convert the stored weight again (a contiguous, temporary F32
			// copy the GEMM reads transposed through strides) rather than keep the forward's copy alive.
			if (evo_is_cast(a)) a = ggml_cast(ctx, a->src[0], evo_F32);
			if (evo_is_cast(b)) b = ggml_cast(ctx, b->src[0], evo_F32);
		}
		struct ggml_tensor *proto = ggml_map_custom2(ctx, a, b, evo_gemm_op, -1, (void *)kind);
		t->op = proto->op;
		memcpy(t->op_params, proto->op_params, sizeof(t->op_params));
		t->src[0] = a;
		t->src[1] = b;
		count++;
	}
	return count;
}

// evo_adamw_op runs evo_adamw on the sources of a custom node: parameter, accumulated gradient, moments,
// the 7 hyperparameters and the 1-element gradient scale.
static void evo_adamw_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
	struct ggml_tensor **s = dst->src;
	int64_t n = s[0]->ne[0] * s[0]->ne[1] * s[0]->ne[2] * s[0]->ne[3];
	evo_adamw(s[0]->data, s[1]->data, s[2]->data, s[3]->data, n, s[4]->data, *(const float *)s[5]->data, ith, nth);
}

static struct ggml_tensor *evo_adamw_node(struct ggml_context *ctx, struct ggml_tensor *w, struct ggml_tensor *acc,
	struct ggml_tensor *m, struct ggml_tensor *v, struct ggml_tensor *hp, struct ggml_tensor *scale) {
	struct ggml_tensor *args[6] = {w, acc, m, v, hp, scale};
	return ggml_custom_4d(ctx, evo_F32, 1, 1, 1, 1, args, 6, evo_adamw_op, -1, NULL);
}

// evo_sum_squares_op writes Σ x² of its contiguous F32 source into its 1-element destination (one task).
static void evo_sum_squares_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
	const struct ggml_tensor *x = dst->src[0];
	if (ith == 0) {
		*(float *)dst->data = (float)evo_sum_squares(x->data, x->ne[0] * x->ne[1] * x->ne[2] * x->ne[3]);
	}
}

static struct ggml_tensor *evo_sum_squares_node(struct ggml_context *ctx, struct ggml_tensor *x) {
	struct ggml_tensor *args[1] = {x};
	return ggml_custom_4d(ctx, evo_F32, 1, 1, 1, 1, args, 1, evo_sum_squares_op, 1, NULL);
}

// evo_out_prod_to_mul_mat turns every OUT_PROD node of g into the same product computed as MUL_MAT of its
// operands transposed: out_prod(a, b)[i,j] = sum_k a[i,k]·b[j,k] = mul_mat(aᵀ, bᵀ)[i,j], with the same
// broadcasting over dimensions 2 and 3. The nodes keep their identity (consumers and gradients still point at
// them); the new transposes are not in g, so the caller rebuilds a graph from its outputs.
static int evo_out_prod_to_mul_mat(struct ggml_context *ctx, struct ggml_cgraph *g) {
	int n = ggml_graph_n_nodes(g), count = 0;
	for (int i = 0; i < n; i++) {
		struct ggml_tensor *t = ggml_graph_node(g, i);
		if (t->op != evo_OP_OUT_PROD) {
			continue;
		}
		struct ggml_tensor *a = evo_transposed(ctx, t->src[0]);
		struct ggml_tensor *b = evo_transposed(ctx, t->src[1]);
		t->op = evo_OP_MUL_MAT;
		t->src[0] = a;
		t->src[1] = b;
		count++;
	}
	return count;
}
*/
import "C"

// ProductsToGEMM makes every F32 matrix product of g (batched ones included) (MUL_MAT, and OUT_PROD, ggml's backward of a
// product) compute with the package's packed, cache-blocked GEMM (gemm.c), which reads transposed operands
// through their strides instead of copying them. Nodes keep their identity; run it before OutProdToMulMat,
// which handles what is left (products through converted frozen weights). It returns how
// many nodes it changed.
func (g Graph) ProductsToGEMM(c *Context) int {
	return int(C.evo_products_to_gemm(c.c, g.g))
}

// OutProdToMulMat rewrites every OUT_PROD node of g (ggml's backward of a matrix product, a scalar AXPY loop
// on the CPU) into a MUL_MAT of transposed copies of its operands, which runs on ggml's blocked matmul
// kernels. It returns how many nodes it rewrote. The rewritten nodes need the new transposes before them, which
// g does not contain: compute a graph rebuilt from the outputs with Context.GraphOf, not g itself. Gradients
// found with g.Grad stay valid.
func (g Graph) OutProdToMulMat(c *Context) int {
	return int(C.evo_out_prod_to_mul_mat(c.c, g.g))
}

// GraphOf builds a new graph (no gradient bookkeeping) of size nodes holding outputs and everything they
// depend on, in dependency order.
func (c *Context) GraphOf(size int, outputs ...Tensor) Graph {
	g := c.NewGraph(size, false)
	for _, t := range outputs {
		g.Expand(t)
	}
	return g
}

// LossSeed is the tensor ggml's backward pass starts from (d loss / d loss): Graph.Reset sets it to 1. A graph
// made with GraphOf has no Reset; the caller sets the seed to 1 before each compute.
func (g Graph) LossSeed(loss Tensor) Tensor {
	return Tensor{C.ggml_graph_get_grad_acc(g.g, loss.t)}
}

// Op is the node's ggml operation id (ggml.h enum ggml_op of the pinned version).
func (t Tensor) Op() int { return int(t.t.op) }

// IsQuantized reports whether t is a block-quantized type (Q8_0, Q4_K...), not F32, F16, BF16 or I32.
func IsQuantized(t Type) bool { return bool(C.ggml_is_quantized(C.int(t))) }

// Cast converts a to type t (dequantizing a quantized a) into a new tensor of the same shape.
func (c *Context) Cast(a Tensor, t Type) Tensor { return Tensor{C.ggml_cast(c.c, a.t, C.int(t))} }

// OutProd is ggml's out_prod: out[i,j] = Σ_k a[i,k]·b[j,k] (a is [M,K], b is [N,K], out is [M,N]).
func (c *Context) OutProd(a, b Tensor) Tensor { return Tensor{C.ggml_out_prod(c.c, a.t, b.t)} }

// AdamWScaled is one AdamW step of p from the gradient scale·acc (scale a 1-element tensor, e.g. 1/accum times
// the clip factor) in a single pass, updating p, m and v in place; params is laid out as for AdamWStep. p, acc,
// m and v are contiguous F32 tensors of one shape. The returned node is a 1-element token for the graph.
func (c *Context) AdamWScaled(p, acc, m, v, params, scale Tensor) Tensor {
	for _, t := range []Tensor{acc, m, v} {
		if t.Type() != F32 || p.Type() != F32 || t.Elements() != p.Elements() {
			panic("ggml: AdamWScaled needs F32 tensors of one shape") // programming error, not input
		}
	}
	return Tensor{C.evo_adamw_node(c.c, p.t, acc.t, m.t, v.t, params.t, scale.t)}
}

// SumSquares is Σ a² over a contiguous F32 tensor as a 1-element F32 tensor, in one read of a (ggml's
// Sum(Sqr(a)) writes and reads a squared copy), accumulated in double in a fixed order.
func (c *Context) SumSquares(a Tensor) Tensor {
	if a.Type() != F32 || !bool(C.ggml_is_contiguous(a.t)) {
		panic("ggml: SumSquares needs a contiguous F32 tensor") // programming error, not input
	}
	return Tensor{C.evo_sum_squares_node(c.c, a.t)}
}

// CPUOnly reports whether b runs every node on the CPU (no GPU backend). The package's custom ops (the training
// GEMM of ProductsToGEMM, AdamWScaled, SumSquares, the fused cross-entropy) have CPU kernels only: with a GPU,
// ggml's scheduler would run them on the CPU over copies of device tensors (an in-place optimizer step would
// update the copy and be lost), so graphs for such a backend are built from ggml's native ops instead.
func (b *Backend) CPUOnly() bool { return b.gpu == nil }

// ComputeBytes is the memory the scheduler holds, over all devices, for the intermediate tensors of the graphs
// allocated so far (activations, gradients, temporaries).
func (b *Backend) ComputeBytes() int64 {
	n := int64(C.ggml_backend_sched_get_buffer_size(b.sched, b.cpu))
	if b.gpu != nil {
		n += int64(C.ggml_backend_sched_get_buffer_size(b.sched, b.gpu))
	}
	return n
}

// Bytes is the size of the buffer.
func (buf *Buffer) Bytes() int64 {
	if buf == nil || buf.b == nil {
		return 0
	}
	return int64(C.ggml_backend_buffer_get_size(buf.b))
}
