package ggml

/*
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"
#include "xent.h"

enum { evo_xF32 = 0, evo_xI32 = 26, evo_OP_XENT = 90, evo_OP_XENT_BACK = 91 };

// Row split of n rows for thread ith of nth.
static void evo_rows(int64_t n, int ith, int nth, int64_t *r0, int64_t *r1) {
	*r0 = n * ith / nth;
	*r1 = n * (ith + 1) / nth;
}

// evo_xent_rows_op: sources logits [V, R], targets I32 [R], weights F32 [R]; writes (nll, lse) per row
// ([2, R]); rows of weight 0 are skipped (zeros).
static void evo_xent_rows_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
	const struct ggml_tensor *x = dst->src[0], *tg = dst->src[1], *w = dst->src[2];
	const int64_t V = x->ne[0], R = x->ne[1];
	int64_t r0, r1;
	evo_rows(R, ith, nth, &r0, &r1);
	for (int64_t r = r0; r < r1; r++) {
		float *o = (float *)dst->data + 2 * r;
		if (((const float *)w->data)[r] == 0) {
			o[0] = o[1] = 0;
			continue;
		}
		const float *row = (const float *)((const char *)x->data + r * x->nb[1]);
		const int32_t t = ((const int32_t *)tg->data)[r];
		const float lse = evo_xent_lse(row, V);
		o[0] = t >= 0 && t < V ? lse - row[t] : NAN; // an id outside the vocabulary: a non-finite loss, not a wild read
		o[1] = lse;
	}
}

// evo_xent_sum_op: Σ_r weights[r]·nll[r] in row order (one task, so the sum does not depend on threads).
static void evo_xent_sum_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
	const struct ggml_tensor *rows = dst->src[0], *w = dst->src[1];
	if (ith != 0) return;
	double s = 0;
	for (int64_t r = 0; r < rows->ne[1]; r++) {
		const float wr = ((const float *)w->data)[r];
		if (wr != 0) s += (double)wr * ((const float *)rows->data)[2 * r];
	}
	*(float *)dst->data = (float)s;
}

// evo_xent_back_op: sources d loss (1 element), logits, rows (nll, lse), targets, weights; writes
// d logits = g·w_r·(softmax(x_r) − onehot(t_r)).
static void evo_xent_back_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
	const struct ggml_tensor *g = dst->src[0], *x = dst->src[1], *rows = dst->src[2], *tg = dst->src[3], *w = dst->src[4];
	const int64_t V = x->ne[0], R = x->ne[1];
	const float gs = *(const float *)g->data;
	int64_t r0, r1;
	evo_rows(R, ith, nth, &r0, &r1);
	for (int64_t r = r0; r < r1; r++) {
		float *out = (float *)((char *)dst->data + r * dst->nb[1]);
		const float wr = ((const float *)w->data)[r];
		if (wr == 0) {
			memset(out, 0, V * sizeof(float));
			continue;
		}
		const float *row = (const float *)((const char *)x->data + r * x->nb[1]);
		evo_xent_grad(row, V, ((const float *)rows->data)[2 * r + 1], ((const int32_t *)tg->data)[r], gs * wr, out);
	}
}

static void evo_become(struct ggml_tensor *t, struct ggml_tensor *proto) {
	t->op = proto->op;
	memcpy(t->op_params, proto->op_params, sizeof(t->op_params));
	memcpy(t->src, proto->src, sizeof(t->src));
}

// evo_fuse_xent rewrites the CROSS_ENTROPY_LOSS node ce (made over a placeholder label tensor) and every
// CROSS_ENTROPY_LOSS_BACK node of g over the same logits into the row kernels above. Returns the nodes changed.
static int evo_fuse_xent(struct ggml_context *ctx, struct ggml_cgraph *g, struct ggml_tensor *ce,
	struct ggml_tensor *targets, struct ggml_tensor *weights) {
	if (ce->op != evo_OP_XENT) return 0;
	struct ggml_tensor *logits = ce->src[0];
	struct ggml_tensor *a[5] = {logits, targets, weights};
	struct ggml_tensor *rows = ggml_custom_4d(ctx, evo_xF32, 2, logits->ne[1], 1, 1, a, 3, evo_xent_rows_op, -1, NULL);
	int count = 0;
	int n = ggml_graph_n_nodes(g);
	for (int i = 0; i < n; i++) {
		struct ggml_tensor *t = ggml_graph_node(g, i);
		if (t->op != evo_OP_XENT_BACK || t->src[1] != logits) continue;
		struct ggml_tensor *b[5] = {t->src[0], logits, rows, targets, weights};
		evo_become(t, ggml_custom_4d(ctx, evo_xF32, 1, 1, 1, 1, b, 5, evo_xent_back_op, -1, NULL));
		count++;
	}
	struct ggml_tensor *s[2] = {rows, weights};
	evo_become(ce, ggml_custom_4d(ctx, evo_xF32, 1, 1, 1, 1, s, 2, evo_xent_sum_op, 1, NULL));
	return count + 1;
}
*/
import "C"

import "fmt"

// xent is a loss made by CrossEntropyRows, waiting for FuseCrossEntropy.
type xent struct{ loss, targets, weights Tensor }

// CrossEntropyRows is the weighted softmax cross-entropy Σ_r weights[r]·(log Σ_v exp x[v,r] − x[targets[r],r])
// over the rows of logits [V, R] (targets I32 [R], weights F32 [R]; a row of weight 0 costs nothing and gets a
// zero gradient), a scalar. It replaces ggml's dense-label CrossEntropy: no [V, R] label tensor, and the forward
// and backward passes read each logit row once each. ggml's backward pass builds on it as on CrossEntropy, but
// it computes only after Graph.FuseCrossEntropy has rewritten it (until then it stands on a label placeholder
// that has no data); compute a graph rebuilt with GraphOf.
func (c *Context) CrossEntropyRows(logits, targets, weights Tensor) (Tensor, error) {
	if logits.Type() != F32 || targets.Type() != I32 || weights.Type() != F32 || !logits.Contiguous() ||
		logits.Ne(2) != 1 || logits.Ne(3) != 1 || targets.Elements() != logits.Ne(1) || weights.Elements() != logits.Ne(1) {
		return Tensor{}, fmt.Errorf("ggml: CrossEntropyRows needs F32 logits [V, R], I32 targets [R] and F32 weights [R], got %v %v %v",
			logits.Shape(), targets.Shape(), weights.Shape())
	}
	placeholder := c.New(F32, logits.Ne(0), logits.Ne(1)) // metadata only: contexts here never hold data
	loss := Tensor{C.ggml_cross_entropy_loss(c.c, logits.t, placeholder.t)}
	c.xents = append(c.xents, xent{loss, targets, weights})
	return loss, nil
}

// FuseCrossEntropy turns every CrossEntropyRows loss of c in g (and the gradient ggml's backward pass made for
// its logits) into the fused row kernels. Call it after BuildBackward; the new nodes are not in g, so compute
// a graph rebuilt from the outputs with GraphOf. It returns how many nodes it changed.
func (g Graph) FuseCrossEntropy(c *Context) int {
	n := 0
	for _, x := range c.xents {
		n += int(C.evo_fuse_xent(c.c, g.g, x.loss.t, x.targets.t, x.weights.t))
	}
	c.xents = nil
	return n
}
