// A fused AdamW step for the trainer's optimizer graph: one pass over a parameter reads its accumulated
// gradient, scales it (1/accum and the clip factor) and updates the moments and the parameter. ggml's own
// graph needed a separate broadcast multiply for the scale, which its CPU backend runs element by element.
#include <math.h>
#include <stdint.h>
#include "adamw.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

void evo_adamw(float *w, const float *acc, float *m, float *v, int64_t n, const float *hp, float scale, int ith, int nth) {
	// Same update as ggml's OPT_STEP_ADAMW (ggml-cpu ops.cpp) on g = scale·acc; hp is
	// [lr, beta1, beta2, eps, weight decay, 1/(1-beta1^t), 1/(1-beta2^t)].
	const float alpha = hp[0], beta1 = hp[1], beta2 = hp[2], eps = hp[3], wd = hp[4], beta1h = hp[5], beta2h = hp[6];
	const float keep = 1.f - alpha * wd;
	int64_t chunk = (n + nth - 1) / nth;
	chunk = (chunk + 15) & ~(int64_t)15;
	int64_t i0 = chunk * ith, i1 = i0 + chunk < n ? i0 + chunk : n;
	int64_t i = i0;
#if defined(__AVX512F__)
	const __m512 vs = _mm512_set1_ps(scale), vb1 = _mm512_set1_ps(beta1), vb1c = _mm512_set1_ps(1.0f - beta1);
	const __m512 vb2 = _mm512_set1_ps(beta2), vb2c = _mm512_set1_ps(1.0f - beta2), vb1h = _mm512_set1_ps(beta1h);
	const __m512 vb2h = _mm512_set1_ps(beta2h), veps = _mm512_set1_ps(eps), vkeep = _mm512_set1_ps(keep);
	const __m512 valpha = _mm512_set1_ps(alpha);
	for (; i + 16 <= i1; i += 16) {
		// Written with separate multiplies and adds, in ggml's order, so no FMA contraction changes a value.
		__m512 g = _mm512_mul_ps(_mm512_loadu_ps(acc + i), vs);
		__m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), vb1), _mm512_mul_ps(g, vb1c));
		__m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), vb2), _mm512_mul_ps(_mm512_mul_ps(g, g), vb2c));
		_mm512_storeu_ps(m + i, mi);
		_mm512_storeu_ps(v + i, vi);
		__m512 mh = _mm512_mul_ps(mi, vb1h);
		__m512 vh = _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(vi, vb2h)), veps);
		__m512 wi = _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(w + i), vkeep), _mm512_div_ps(_mm512_mul_ps(valpha, mh), vh));
		_mm512_storeu_ps(w + i, wi);
	}
#endif
	for (; i < i1; i++) {
		float g = acc[i] * scale;
		float mi = m[i] * beta1 + g * (1.0f - beta1);
		float vi = v[i] * beta2 + (g * g) * (1.0f - beta2);
		m[i] = mi;
		v[i] = vi;
		float mh = mi * beta1h;
		float vh = sqrtf(vi * beta2h) + eps;
		w[i] = w[i] * keep - (alpha * mh) / vh;
	}
}

double evo_sum_squares(const float *x, int64_t n) {
	// Fixed order (one thread): the same bytes on every run.
	int64_t i = 0;
	double total = 0;
#if defined(__AVX512F__)
	__m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
	for (; i + 16 <= n; i += 16) {
		__m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
		s0 = _mm512_fmadd_pd(lo, lo, s0);
		s1 = _mm512_fmadd_pd(hi, hi, s1);
	}
	total = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
#endif
	for (; i < n; i++) total += (double)x[i] * (double)x[i];
	return total;
}
