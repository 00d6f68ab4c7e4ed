// A cache-blocked, packed F32 matrix product for the training graph's large 2-D products (forward W·x and
// both backward products), written for this project. It computes
//
//	C[n·ldc + m] = Σ_k A(m, k) · B(n, k)
//
// where A and B are read through arbitrary element strides, so ggml's MUL_MAT (both operands contiguous in
// k) and OUT_PROD (operands contiguous in m and n, or transpose views) are the same routine and no
// transposed copy is ever made. Structure: the k range is cut into KC blocks; per block a KC×NC panel of B and
// an MC×KC block of A are packed into micro-panels (NR columns, resp. MR rows, interleaved by k) and a
// register-blocked MR×NR micro-kernel accumulates each tile over the block, then adds it to C (the first block
// stores). Every element is summed in the same order whatever the thread split, so results do not depend on
// the thread count.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gemm.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define MR 32
#define NR 12
#else
#define MR 16
#define NR 6
typedef float evo_v8 __attribute__((vector_size(32)));
#endif

#define KC 256
#define MC 256
#define NC 3072

// Per-thread packing buffers, kept between calls (ggml's worker threads persist): a fresh allocation per
// product would page-fault its memory in every step.
static __thread float *evo_pack_a, *evo_pack_b;

static float *evo_buffer(float **p, size_t n) {
	if (*p == NULL) {
		*p = aligned_alloc(64, n * sizeof(float));
	}
	return *p;
}

// pack_transposed copies rows×kc values src[i·ld + k] to dst[k·ldd + i]: the packing of an operand stored
// with k contiguous. 8×8 blocks are transposed in registers where AVX is available.
static void pack_transposed(const float *src, int64_t ld, int64_t rows, int64_t kc, float *dst, int64_t ldd) {
	int64_t i = 0;
#if defined(__AVX__)
	for (; i + 8 <= rows; i += 8) {
		int64_t k = 0;
		for (; k + 8 <= kc; k += 8) {
			const float *s = src + i * ld + k;
			__m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld), r2 = _mm256_loadu_ps(s + 2 * ld);
			__m256 r3 = _mm256_loadu_ps(s + 3 * ld), r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld);
			__m256 r6 = _mm256_loadu_ps(s + 6 * ld), r7 = _mm256_loadu_ps(s + 7 * ld);
			__m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
			__m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
			__m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
			__m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
			__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
			__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
			__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
			__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
			float *d = dst + k * ldd + i;
			_mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
			_mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
			_mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
			_mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
			_mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
			_mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
			_mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
			_mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
		}
		for (; k < kc; k++)
			for (int64_t j = i; j < i + 8; j++) dst[k * ldd + j] = src[j * ld + k];
	}
#endif
	for (; i < rows; i++) {
		const float *row = src + i * ld;
		for (int64_t k = 0; k < kc; k++) dst[k * ldd + i] = row[k];
	}
}

// pack_a writes rows m0..m0+mc of A over k0..k0+kc as micro-panels of MR rows: panel p holds, for each k,
// the MR values A(m0+p·MR+i, k), zero past M.
static void pack_a(const float *a, int64_t sm, int64_t sk, int64_t M, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float *dst) {
	for (int64_t p = 0; p < mc; p += MR) {
		int64_t rows = M - (m0 + p);
		if (rows > MR) rows = MR;
		const float *base = a + (m0 + p) * sm + k0 * sk;
		if (sm == 1 && rows == MR) {
			for (int64_t k = 0; k < kc; k++) memcpy(dst + k * MR, base + k * sk, MR * sizeof(float));
		} else if (sk == 1) {
			pack_transposed(base, sm, rows, kc, dst, MR);
			for (int64_t i = rows; i < MR; i++)
				for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = 0;
		} else {
			for (int64_t k = 0; k < kc; k++) {
				for (int64_t i = 0; i < rows; i++) dst[k * MR + i] = base[i * sm + k * sk];
				for (int64_t i = rows; i < MR; i++) dst[k * MR + i] = 0;
			}
		}
		dst += kc * MR;
	}
}

// pack_b is pack_a for B with NR columns per micro-panel.
static void pack_b(const float *b, int64_t sn, int64_t sk, int64_t N, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float *dst) {
	for (int64_t p = 0; p < nc; p += NR) {
		int64_t cols = N - (n0 + p);
		if (cols > NR) cols = NR;
		const float *base = b + (n0 + p) * sn + k0 * sk;
		if (sn == 1 && cols == NR) {
			for (int64_t k = 0; k < kc; k++) memcpy(dst + k * NR, base + k * sk, NR * sizeof(float));
		} else if (sk == 1) {
			pack_transposed(base, sn, cols, kc, dst, NR);
			for (int64_t j = cols; j < NR; j++)
				for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = 0;
		} else {
			for (int64_t k = 0; k < kc; k++) {
				for (int64_t j = 0; j < cols; j++) dst[k * NR + j] = base[j * sn + k * sk];
				for (int64_t j = cols; j < NR; j++) dst[k * NR + j] = 0;
			}
		}
		dst += kc * NR;
	}
}

#if defined(__AVX512F__)
// kernel accumulates one MR×NR tile over kc and stores it (first block) or adds it to C; mv×nv of the tile
// are inside the matrix.
static void kernel(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, int add, int mv, int nv) {
#define EVO_DECL(j) __m512 c##j##0 = _mm512_setzero_ps(), c##j##1 = _mm512_setzero_ps();
	EVO_DECL(0) EVO_DECL(1) EVO_DECL(2) EVO_DECL(3) EVO_DECL(4) EVO_DECL(5)
	EVO_DECL(6) EVO_DECL(7) EVO_DECL(8) EVO_DECL(9) EVO_DECL(10) EVO_DECL(11)
	for (int64_t k = 0; k < kc; k++) {
		__m512 a0 = _mm512_load_ps(A), a1 = _mm512_load_ps(A + 16);
#define EVO_FMA(j) { __m512 b = _mm512_set1_ps(B[j]); c##j##0 = _mm512_fmadd_ps(a0, b, c##j##0); c##j##1 = _mm512_fmadd_ps(a1, b, c##j##1); }
		EVO_FMA(0) EVO_FMA(1) EVO_FMA(2) EVO_FMA(3) EVO_FMA(4) EVO_FMA(5)
		EVO_FMA(6) EVO_FMA(7) EVO_FMA(8) EVO_FMA(9) EVO_FMA(10) EVO_FMA(11)
		A += MR;
		B += NR;
	}
	__m512 acc[NR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
		{c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {c100, c101}, {c110, c111}};
	if (mv == MR) {
		for (int j = 0; j < nv; j++) {
			float *p = C + j * ldc;
			if (add) {
				acc[j][0] = _mm512_add_ps(_mm512_loadu_ps(p), acc[j][0]);
				acc[j][1] = _mm512_add_ps(_mm512_loadu_ps(p + 16), acc[j][1]);
			}
			_mm512_storeu_ps(p, acc[j][0]);
			_mm512_storeu_ps(p + 16, acc[j][1]);
		}
		return;
	}
	__mmask16 m0 = mv >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << mv) - 1);
	__mmask16 m1 = mv <= 16 ? (__mmask16)0 : (__mmask16)((1u << (mv - 16)) - 1);
	for (int j = 0; j < nv; j++) {
		float *p = C + j * ldc;
		if (add) {
			acc[j][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, p), acc[j][0]);
			acc[j][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, p + 16), acc[j][1]);
		}
		_mm512_mask_storeu_ps(p, m0, acc[j][0]);
		_mm512_mask_storeu_ps(p + 16, m1, acc[j][1]);
	}
}
#else
// Portable kernel (AVX2 with -march, NEON, SSE): the same blocking with GCC vector types.
static void kernel(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, int add, int mv, int nv) {
	evo_v8 acc[NR][2];
	memset(acc, 0, sizeof(acc));
	for (int64_t k = 0; k < kc; k++) {
		evo_v8 a0, a1;
		memcpy(&a0, A, sizeof(a0));
		memcpy(&a1, A + 8, sizeof(a1));
		for (int j = 0; j < NR; j++) {
			evo_v8 b = {B[j], B[j], B[j], B[j], B[j], B[j], B[j], B[j]};
			acc[j][0] += a0 * b;
			acc[j][1] += a1 * b;
		}
		A += MR;
		B += NR;
	}
	for (int j = 0; j < nv; j++) {
		float *p = C + j * ldc;
		const float *v = (const float *)acc[j];
		for (int i = 0; i < mv; i++) p[i] = add ? p[i] + v[i] : v[i];
	}
}
#endif

void evo_gemm(const float *a, int64_t sam, int64_t sak, const float *b, int64_t sbn, int64_t sbk, float *c, int64_t ldc,
	int64_t M, int64_t N, int64_t K, int ith, int nth) {
	// Split the larger of M and N between the threads, in whole micro-panels.
	int64_t m_lo = 0, m_hi = M, n_lo = 0, n_hi = N;
	if (N >= M) {
		int64_t panels = (N + NR - 1) / NR;
		n_lo = panels * ith / nth * NR;
		n_hi = panels * (ith + 1) / nth * NR;
		if (n_hi > N) n_hi = N;
	} else {
		int64_t panels = (M + MR - 1) / MR;
		m_lo = panels * ith / nth * MR;
		m_hi = panels * (ith + 1) / nth * MR;
		if (m_hi > M) m_hi = M;
	}
	if (m_lo >= m_hi || n_lo >= n_hi) {
		return;
	}
	if (K == 0) {
		for (int64_t n = n_lo; n < n_hi; n++) memset(c + n * ldc + m_lo, 0, (m_hi - m_lo) * sizeof(float));
		return;
	}
	float *pa = evo_buffer(&evo_pack_a, (size_t)MC * KC);
	float *pb = evo_buffer(&evo_pack_b, (size_t)NC * KC + NR * KC);
	if (pa == NULL || pb == NULL) {
		abort(); // out of memory for 3 MiB: nothing sensible is left to do inside a graph compute
	}
	for (int64_t jc = n_lo; jc < n_hi; jc += NC) {
		int64_t nc = n_hi - jc < NC ? n_hi - jc : NC;
		for (int64_t pc = 0; pc < K; pc += KC) {
			int64_t kc = K - pc < KC ? K - pc : KC;
			pack_b(b, sbn, sbk, N, jc, nc, pc, kc, pb);
			for (int64_t ic = m_lo; ic < m_hi; ic += MC) {
				int64_t mc = m_hi - ic < MC ? m_hi - ic : MC;
				pack_a(a, sam, sak, M, ic, mc, pc, kc, pa);
				for (int64_t jr = 0; jr < nc; jr += NR) {
					int nv = nc - jr < NR ? (int)(nc - jr) : NR;
					for (int64_t ir = 0; ir < mc; ir += MR) {
						int mv = mc - ir < MR ? (int)(mc - ir) : MR;
						kernel(kc, pa + ir * kc, pb + jr * kc, c + (jc + jr) * ldc + ic + ir, ldc, pc > 0, mv, nv);
					}
				}
			}
		}
	}
}
