// Row kernels of the fused softmax cross-entropy (xent.c).
#pragma once
#include <stdint.h>

// evo_xent_lse is log Σ exp(x[i]) over n values (shifted by their maximum).
float evo_xent_lse(const float *x, int64_t n);
// evo_xent_grad writes g·(exp(x[i] − lse) − [i == target]) to out[i] (out may be x).
void evo_xent_grad(const float *x, int64_t n, float lse, int32_t target, float g, float *out);
