// Hot loops of the merge methods. Plain C that GCC/Clang auto-vectorise under
// -O3 -march=native; fp-contract is off (no fused multiply-add) so every result is the
// same IEEE float32 arithmetic, in the same order, as the Go reference kernels.
#pragma GCC optimize("fp-contract=off")
#pragma STDC FP_CONTRACT OFF
#include <stdint.h>
#include <string.h>
#include "kernels.h"

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

// 16 float32 lanes per product, flushed to double every 1024 elements.
void mk_dots(const float *a, const float *b, int64_t n, double *res) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t s = 0; s < n; s += 1024) {
        int64_t e = s + 1024 < n ? s + 1024 : n;
        float pab[16] = {0}, paa[16] = {0}, pbb[16] = {0};
        int64_t i = s;
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
        for (int k = 0; k < 16; k++) {
            ab += pab[k];
            aa += paa[k];
            bb += pbb[k];
        }
    }
    res[0] = ab;
    res[1] = aa;
    res[2] = bb;
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
