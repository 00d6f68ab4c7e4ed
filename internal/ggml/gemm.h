// The packed F32 matrix product of gemm.c (see there).
#pragma once
#include <stdint.h>

// evo_gemm computes C[n*ldc + m] = sum_k A(m,k)·B(n,k) for m < M, n < N, with A(m,k) = a[m*sam + k*sak] and
// B(n,k) = b[n*sbn + k*sbk] (strides in elements), for thread ith of nth (each writes its own part of C).
void evo_gemm(const float *a, int64_t sam, int64_t sak, const float *b, int64_t sbn, int64_t sbk, float *c, int64_t ldc,
	int64_t M, int64_t N, int64_t K, int ith, int nth);
