// Hot loops of the merge methods. Plain C that GCC/Clang auto-vectorise under
// -O3 -march=native; fp-contract is off (no fused multiply-add) so every result is the
// same IEEE float32 arithmetic, in the same order, as the Go reference kernels.
#pragma GCC optimize("fp-contract=off")
#pragma STDC FP_CONTRACT OFF
#include <stdint.h>
#include <string.h>
#include "kernels.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

int64_t mk_nonfinite(const float *x, int64_t n) {
    uint32_t any = 0;
    for (int64_t i = 0; i < n; i++) {
        any |= (f2u(x[i]) & 0x7f800000u) == 0x7f800000u;
    }
    if (!any) return -1;
    for (int64_t i = 0; i < n; i++) {
        if ((f2u(x[i]) & 0x7f800000u) == 0x7f800000u) return i;
    }
    return -1;
}

void mk_weighted2(const float *a, const float *b, float wa, float wb, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = wa * a[i] + wb * b[i];
}

void mk_scale(const float *a, float wa, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = wa * a[i];
}

void mk_axpy(const float *x, float w, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] += w * x[i];
}

static inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint32_t mask_bits(uint64_t key, int64_t i) {
    return (uint32_t)(splitmix64(key ^ ((uint64_t)i * 0xd1342543de82ef95ull)) >> 32);
}

// Weighted, sparsified task vector of one model: mode 0 keeps all, 1 keeps
// lo <= |d| bits <= hi, 2 keeps where the counter-based draw is below thr.
// accumulate != 0 adds into out, else stores.
void mk_delta(const float *x, const float *base, float w, int mode, uint32_t lo, uint32_t hi,
              uint64_t key, uint32_t thr, int64_t start, int accumulate, float *out, int64_t n) {
    if (mode == 0) {
        if (accumulate) for (int64_t i = 0; i < n; i++) out[i] += w * (x[i] - base[i]);
        else for (int64_t i = 0; i < n; i++) out[i] = w * (x[i] - base[i]);
    } else if (mode == 1) {
        for (int64_t i = 0; i < n; i++) {
            float d = x[i] - base[i];
            uint32_t b = f2u(d) & 0x7fffffffu;
            float v = (b >= lo && b <= hi) ? w * d : 0.0f;
            if (accumulate) out[i] += v; else out[i] = v;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float v = mask_bits(key, start + i) < thr ? w * (x[i] - base[i]) : 0.0f;
            if (accumulate) out[i] += v; else out[i] = v;
        }
    }
}

void mk_finish(const float *base, float f, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = base[i] + f * out[i];
}

// Sign consensus over m weighted deltas d[j*n + i]: elect the sign of the sum, keep
// the agreeing deltas, divide by their weights (normalize) and add λ·mix to base.
// Blocked and branch-free (keep is 0 or 1; adding 0·v leaves a sum unchanged) so
// every loop vectorises; the arithmetic is the Go reference's, value for value.
#define CBLOCK 1024
void mk_consensus(const float *base, const float *d, const float *weight, int m, float lambda,
                  int normalize, float *out, int64_t n) {
    float sg[CBLOCK], mix[CBLOCK], div[CBLOCK];
    for (int64_t s = 0; s < n; s += CBLOCK) {
        int64_t e = s + CBLOCK < n ? s + CBLOCK : n;
        int64_t len = e - s;
        const float *d0 = d + s;
        for (int64_t i = 0; i < len; i++) sg[i] = 0.0f + d0[i];
        for (int j = 1; j < m; j++) {
            const float *dj = d + (int64_t)j * n + s;
            for (int64_t i = 0; i < len; i++) sg[i] += dj[i];
        }
        for (int64_t i = 0; i < len; i++) {
            sg[i] = sg[i] >= 0.0f ? 1.0f : -1.0f;
            mix[i] = 0.0f;
            div[i] = 0.0f;
        }
        for (int j = 0; j < m; j++) {
            const float *dj = d + (int64_t)j * n + s;
            const float w = weight[j];
            for (int64_t i = 0; i < len; i++) {
                float v = dj[i];
                float keep = v * sg[i] > 0.0f ? 1.0f : 0.0f;
                mix[i] += keep * v;
                div[i] += keep * w;
            }
        }
        for (int64_t i = 0; i < len; i++) {
            float mx = mix[i];
            if (normalize) {
                float dv = div[i] == 0.0f ? 1.0f : div[i];
                mx = mx / dv;
            }
            out[s + i] = base[s + i] + lambda * mx;
        }
    }
}

// Dot products per 1024-element block (res[3*b .. 3*b+2] = a·b, a·a, b·b of block
// b): 16 float32 lanes per product, summed into double lane by lane. The caller adds
// the blocks in tensor order, so the totals do not depend on how the tensor was cut.
void mk_dots(const float *a, const float *b, int64_t n, double *res) {
    for (int64_t s = 0; s < n; s += MK_DOTBLOCK) {
        int64_t e = s + MK_DOTBLOCK < n ? s + MK_DOTBLOCK : n;
        float pab[16] = {0}, paa[16] = {0}, pbb[16] = {0};
        int64_t i = s;
#if defined(__AVX2__)
        {   // lanes 0-7 and 8-15 of pab/paa/pbb in two registers each: the scalar loop's sums exactly
            __m256 ab0 = _mm256_setzero_ps(), ab1 = ab0, aa0 = ab0, aa1 = ab0, bb0 = ab0, bb1 = ab0;
            for (; i + 16 <= e; i += 16) {
                __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
                __m256 y0 = _mm256_loadu_ps(b + i), y1 = _mm256_loadu_ps(b + i + 8);
                ab0 = _mm256_add_ps(ab0, _mm256_mul_ps(x0, y0));
                ab1 = _mm256_add_ps(ab1, _mm256_mul_ps(x1, y1));
                aa0 = _mm256_add_ps(aa0, _mm256_mul_ps(x0, x0));
                aa1 = _mm256_add_ps(aa1, _mm256_mul_ps(x1, x1));
                bb0 = _mm256_add_ps(bb0, _mm256_mul_ps(y0, y0));
                bb1 = _mm256_add_ps(bb1, _mm256_mul_ps(y1, y1));
            }
            _mm256_storeu_ps(pab, ab0); _mm256_storeu_ps(pab + 8, ab1);
            _mm256_storeu_ps(paa, aa0); _mm256_storeu_ps(paa + 8, aa1);
            _mm256_storeu_ps(pbb, bb0); _mm256_storeu_ps(pbb + 8, bb1);
        }
#endif
        for (; i + 16 <= e; i += 16) {
            for (int k = 0; k < 16; k++) {
                float x = a[i + k], y = b[i + k];
                pab[k] += x * y;
                paa[k] += x * x;
                pbb[k] += y * y;
            }
        }
        for (int k = 0; i < e; i++, k++) {
            float x = a[i], y = b[i];
            pab[k] += x * y;
            paa[k] += x * x;
            pbb[k] += y * y;
        }
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < 16; k++) {
            ab += pab[k];
            aa += paa[k];
            bb += pbb[k];
        }
        double *r = res + 3 * (s / MK_DOTBLOCK);
        r[0] = ab;
        r[1] = aa;
        r[2] = bb;
    }
}

void mk_hist_high(const float *base, const float *x, uint32_t *h, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[(f2u(x[i] - base[i]) & 0x7fffffffu) >> 16]++;
}

void mk_hist_low(const float *base, const float *x, uint32_t bin, uint32_t *h, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = f2u(x[i] - base[i]) & 0x7fffffffu;
        if ((b >> 16) == bin) h[b & 0xffffu]++;
    }
}

// ---- Fused per-chunk passes ----
// The kernels below read the sources' raw bytes (F32, F16 or BF16), decode one
// block at a time into L1-sized float buffers, run the kernels above on the block and
// encode the result straight into the output bytes: no chunk-sized float32 copies of
// the inputs or the output. Block arithmetic is element-wise (or, for the dot
// products, blocked exactly like mk_dots), so the bytes are those of the unfused
// path. Conversions use F16C where the compiler targets it and exact scalar code
// otherwise; both round to nearest even like safetensors.FloatToHalf/FloatToBF16.
#if defined(__AVX2__) && defined(__F16C__)
#define MK_SIMD 1
#endif


#define FBLOCK 1024

static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    if (exp == 0x1f) return u2f(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        float f = (float)man * (1.0f / 16777216.0f); // subnormal: man * 2^-24, exact
        return sign ? -f : f;
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t float_to_half(float f) {
    uint32_t b = f2u(f);
    uint16_t sign = (uint16_t)(b >> 16) & 0x8000;
    int32_t exp = (int32_t)(b >> 23) & 0xff;
    uint32_t man = b & 0x7fffffu;
    if (exp == 0xff) return sign | (man ? 0x7e00 : 0x7c00);
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) return sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return sign | (uint16_t)half;
}

static inline uint16_t float_to_bf16(float f) {
    uint32_t b = f2u(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(b >> 16) | 0x40;
    b += 0x7fffu + ((b >> 16) & 1);
    return (uint16_t)(b >> 16);
}

// load_block returns len floats of source p (type t) starting at element off:
// F32 in place, F16/BF16 decoded into buf.
static const float *load_block(const void *p, int t, int64_t off, float *buf, int64_t len) {
    if (t == MK_F32) return (const float *)p + off;
    const uint16_t *h = (const uint16_t *)p + off;
    int64_t i = 0;
    if (t == MK_F16) {
#ifdef MK_SIMD
        for (; i + 8 <= len; i += 8)
            _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
        for (; i < len; i++) buf[i] = half_to_float(h[i]);
    } else {
        for (; i < len; i++) buf[i] = u2f((uint32_t)h[i] << 16);
    }
    return buf;
}

static void store_block(void *p, int t, int64_t off, const float *x, int64_t len) {
    if (t == MK_F32) {
        memcpy((float *)p + off, x, (size_t)len * 4);
        return;
    }
    uint16_t *h = (uint16_t *)p + off;
    int64_t i = 0;
    if (t == MK_F16) {
#ifdef MK_SIMD
        for (; i + 8 <= len; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) break; // NaN: the scalar path keeps 0x7e00
            _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
#endif
        for (; i < len; i++) h[i] = float_to_half(x[i]);
    } else {
        for (; i < len; i++) h[i] = float_to_bf16(x[i]);
    }
}

// any_nonfinite: 1 when some element is NaN or Inf (the caller then reruns the
// chunk on the unfused path, which names the element).
static int any_nonfinite(const float *x, int64_t len) {
    uint32_t any = 0;
    for (int64_t i = 0; i < len; i++) any |= (f2u(x[i]) & 0x7f800000u) == 0x7f800000u;
    return any != 0;
}

int mk_fused_weighted(const void *const *src, const int *types, const float *w, int m,
                      void *out, int otype, int64_t n) {
    float ba[FBLOCK], bb[FBLOCK], o[FBLOCK];
    for (int64_t s = 0; s < n; s += FBLOCK) {
        int64_t len = n - s < FBLOCK ? n - s : FBLOCK;
        const float *x = load_block(src[0], types[0], s, ba, len);
        if (any_nonfinite(x, len)) return 1;
        if (m == 2) {
            const float *y = load_block(src[1], types[1], s, bb, len);
            if (any_nonfinite(y, len)) return 1;
            mk_weighted2(x, y, w[0], w[1], o, len);
        } else {
            mk_scale(x, w[0], o, len);
            for (int j = 1; j < m; j++) {
                x = load_block(src[j], types[j], s, ba, len);
                if (any_nonfinite(x, len)) return 1;
                mk_axpy(x, w[j], o, len);
            }
        }
        store_block(out, otype, s, o, len);
    }
    return 0;
}

int mk_fused_dots(const void *a, int ta, const void *b, int tb, int64_t n, double *res) {
    float ba[MK_DOTBLOCK], bb[MK_DOTBLOCK];
    for (int64_t s = 0; s < n; s += MK_DOTBLOCK) {
        int64_t len = n - s < MK_DOTBLOCK ? n - s : MK_DOTBLOCK;
        const float *x = load_block(a, ta, s, ba, len), *y = load_block(b, tb, s, bb, len);
        if (any_nonfinite(x, len) || any_nonfinite(y, len)) return 1;
        mk_dots(x, y, len, res + 3 * (s / MK_DOTBLOCK));
    }
    return 0;
}

int mk_fused_gta(const void *base, int tbase, const void *const *models, const int *types, int m,
                 const float *w, int mode, const uint32_t *lo, const uint32_t *hi, const uint64_t *key,
                 const uint32_t *thr, int64_t start, int consensus, const float *weight, float lambda,
                 int normalize, float finish, void *out, int otype, int64_t n) {
    enum { GB = 512 }; // any block size gives the same bytes: the arithmetic is per element
    float bbuf[GB], xbuf[GB], d[MK_MAXSRC * GB], o[GB];
    for (int64_t s = 0; s < n; s += GB) {
        int64_t len = n - s < GB ? n - s : GB;
        const float *b = load_block(base, tbase, s, bbuf, len);
        if (any_nonfinite(b, len)) return 1;
        for (int j = 0; j < m; j++) {
            const float *x = load_block(models[j], types[j], s, xbuf, len);
            if (any_nonfinite(x, len)) return 1;
            float *dst = consensus ? d + (int64_t)j * len : o;
            mk_delta(x, b, w[j], mode, lo[j], hi[j], key[j], thr[j], start + s, !consensus && j > 0, dst, len);
        }
        if (consensus) mk_consensus(b, d, weight, m, lambda, normalize, o, len);
        else mk_finish(b, finish, o, len);
        store_block(out, otype, s, o, len);
    }
    return 0;
}

// mk_fused_bracket is the exact pass of the sampled magnitude select: for each query
// q (model qmodel[q] of xs, queries of one model next to each other) it counts the
// |x - base| bits above hi[q] into above[q] and histograms those in [lo[q], hi[q]]
// into hist[q][bits - lo[q]]. Each source is decoded once per block; one vector loop
// per query forms the bits, counts those above and finds the few inside the bracket,
// which alone are scattered.
int mk_fused_bracket(const void *base, int tbase, const void *const *xs, const int *tx, int nq,
                     const int *qmodel, const uint32_t *lo, const uint32_t *hi, uint64_t *above,
                     uint32_t *const *hist, int64_t n) {
    float bbuf[FBLOCK], xbuf[FBLOCK];
    for (int64_t s = 0; s < n; s += FBLOCK) {
        int64_t len = n - s < FBLOCK ? n - s : FBLOCK;
        const float *b = load_block(base, tbase, s, bbuf, len);
        if (any_nonfinite(b, len)) return 1;
        for (int q0 = 0, q1; q0 < nq; q0 = q1) {
            const int cur = qmodel[q0];
            for (q1 = q0 + 1; q1 < nq && qmodel[q1] == cur; q1++) {}
            const float *v = load_block(xs[cur], tx[cur], s, xbuf, len);
            if (any_nonfinite(v, len)) return 1;
            int64_t i = 0;
#if defined(__AVX2__)
            // one tight loop per query (the count stays in a register); bits are |d|
            // (< 2^31) and lo <= hi < 2^31, so signed compares are exact
            const __m256i absm = _mm256_set1_epi32(0x7fffffff);
            const int64_t vend = len & ~(int64_t)7;
            for (int q = q0; q < q1; q++) {
                const __m256i vl = _mm256_set1_epi32((int32_t)lo[q] - 1), vh = _mm256_set1_epi32((int32_t)hi[q]);
                __m256i acc = _mm256_setzero_si256();
                uint32_t *hq = hist[q];
                const uint32_t l = lo[q];
                for (int64_t k = 0; k < vend; k += 8) {
                    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(v + k), _mm256_loadu_ps(b + k));
                    __m256i u = _mm256_and_si256(_mm256_castps_si256(d), absm);
                    __m256i gt = _mm256_cmpgt_epi32(u, vh);
                    acc = _mm256_sub_epi32(acc, gt); // gt lanes are -1
                    int mk = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_andnot_si256(gt, _mm256_cmpgt_epi32(u, vl))));
                    if (mk) { // a branch per vector: only the few inside are scattered
                        uint32_t t[8];
                        _mm256_storeu_si256((__m256i *)t, u);
                        do {
                            hq[t[__builtin_ctz(mk)] - l]++;
                            mk &= mk - 1;
                        } while (mk);
                    }
                }
                uint32_t t[8]; // lanes < FBLOCK each
                _mm256_storeu_si256((__m256i *)t, acc);
                above[q] += (uint64_t)t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
            }
            i = vend;
#endif
            for (; i < len; i++) {
                uint32_t u = f2u(v[i] - b[i]) & 0x7fffffffu;
                for (int q = q0; q < q1; q++) {
                    above[q] += u > hi[q];
                    if (u >= lo[q] && u <= hi[q]) hist[q][u - lo[q]]++;
                }
            }
        }
    }
    return 0;
}

// Whole-run conversions (tests compare them with the Go codecs).
void mk_to_float(const void *p, int t, float *dst, int64_t n) {
    for (int64_t s = 0; s < n; s += FBLOCK) {
        int64_t len = n - s < FBLOCK ? n - s : FBLOCK;
        const float *x = load_block(p, t, s, dst + s, len);
        if (x != dst + s) memcpy(dst + s, x, (size_t)len * 4);
    }
}

void mk_from_float(const float *x, void *p, int t, int64_t n) { store_block(p, t, 0, x, n); }

// mk_fused_hist is the radix select's histogram pass on raw chunks: low == 0 adds
// the high 16 bits of every |x - base| to h (mk_hist_high), low != 0 the low 16 bits
// of those whose high half is bin (mk_hist_low; a vector compare skips the rest).
int mk_fused_hist(const void *base, int tbase, const void *x, int tx, int64_t n, int low, uint32_t bin, uint32_t *h) {
    float bbuf[FBLOCK], xbuf[FBLOCK];
    for (int64_t s = 0; s < n; s += FBLOCK) {
        int64_t len = n - s < FBLOCK ? n - s : FBLOCK;
        const float *b = load_block(base, tbase, s, bbuf, len), *v = load_block(x, tx, s, xbuf, len);
        if (any_nonfinite(b, len) || any_nonfinite(v, len)) return 1;
        if (!low) {
            mk_hist_high(b, v, h, len);
            continue;
        }
        int64_t i = 0;
#if defined(__AVX2__)
        const __m256i absm = _mm256_set1_epi32(0x7fffffff), want = _mm256_set1_epi32((int)bin);
        for (; i + 8 <= len; i += 8) {
            __m256i u = _mm256_and_si256(_mm256_castps_si256(_mm256_sub_ps(_mm256_loadu_ps(v + i), _mm256_loadu_ps(b + i))), absm);
            int mk = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_srli_epi32(u, 16), want)));
            while (mk) {
                int l = __builtin_ctz(mk);
                mk &= mk - 1;
                h[f2u(v[i + l] - b[i + l]) & 0xffffu]++;
            }
        }
#endif
        mk_hist_low(b + i, v + i, bin, h, len - i);
    }
    return 0;
}
