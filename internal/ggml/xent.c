// Row kernels of the fused softmax cross-entropy (see Context.CrossEntropyRows), written for this project: the
// loss over a 49152-word vocabulary reads each logit row once forward (max, then Σ exp) and once backward
// (exp(x − lse) − onehot), with no dense label tensor and no softmax kept in between. Sums run in a fixed
// order per row, so the bytes do not depend on how rows are split between threads.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "xent.h"

#if defined(__AVX512F__)
#include <immintrin.h>

// exp of 16 values y ≤ 0 (Cephes' single-precision polynomial on [-ln2/2, ln2/2], about 1 ulp; inputs below
// -87 give exp(-87), the smallest normal order of magnitude, instead of a denormal).
static inline __m512 evo_exp16(__m512 y) {
	y = _mm512_max_ps(y, _mm512_set1_ps(-87.0f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), y);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500E-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}
#endif

float evo_xent_lse(const float *x, int64_t n) {
	int64_t i = 0;
	float mx = -INFINITY;
#if defined(__AVX512F__)
	__m512 vm = _mm512_set1_ps(-INFINITY);
	for (; i + 16 <= n; i += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
	mx = _mm512_reduce_max_ps(vm);
#endif
	for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
	if (!isfinite(mx)) {
		return mx; // an infinite or NaN logit: the loss is not finite and the trainer reports divergence
	}
	double sum = 0;
	i = 0;
#if defined(__AVX512F__)
	__m512 vmax = _mm512_set1_ps(mx), s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_add_ps(s0, evo_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax)));
		s1 = _mm512_add_ps(s1, evo_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vmax)));
	}
	for (; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
		s0 = _mm512_mask_add_ps(s0, m, s0, evo_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax)));
	}
	float lanes[16];
	_mm512_storeu_ps(lanes, _mm512_add_ps(s0, s1));
	for (int j = 0; j < 16; j++) sum += lanes[j];
#else
	for (; i < n; i++) sum += expf(x[i] - mx);
#endif
	return mx + (float)log(sum);
}

void evo_xent_grad(const float *x, int64_t n, float lse, int32_t target, float g, float *out) {
#if defined(__AVX512F__)
	int64_t i = 0;
	__m512 vl = _mm512_set1_ps(lse), vg = _mm512_set1_ps(g);
	for (; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
		_mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(vg, evo_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vl))));
	}
#else
	for (int64_t i = 0; i < n; i++) out[i] = g * expf(x[i] - lse);
#endif
	if (target >= 0 && target < n) {
		out[target] -= g;
	}
}
