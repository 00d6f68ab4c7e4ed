// The fused AdamW step of adamw.c.
#pragma once
#include <stdint.h>

// evo_adamw updates elements [ith·n/nth, (ith+1)·n/nth) of w, m, v from the gradient scale·acc with the
// 7 AdamW hyperparameters hp (the layout of ggml_opt_step_adamw's params).
void evo_adamw(float *w, const float *acc, float *m, float *v, int64_t n, const float *hp, float scale, int ith, int nth);

// evo_sum_squares is Σ x[i]² accumulated in double, in a fixed order.
double evo_sum_squares(const float *x, int64_t n);
