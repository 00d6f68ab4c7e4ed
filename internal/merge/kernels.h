#include <stdint.h>
int64_t mk_nonfinite(const float *x, int64_t n);
void mk_weighted2(const float *a, const float *b, float wa, float wb, float *out, int64_t n);
void mk_scale(const float *a, float wa, float *out, int64_t n);
void mk_axpy(const float *x, float w, float *out, int64_t n);
void mk_delta(const float *x, const float *base, float w, int mode, uint32_t lo, uint32_t hi,
              uint64_t key, uint32_t thr, int64_t start, int accumulate, float *out, int64_t n);
void mk_finish(const float *base, float f, float *out, int64_t n);
void mk_consensus(const float *base, const float *d, const float *weight, int m, float lambda,
                  int normalize, float *out, int64_t n);
#define MK_DOTBLOCK 1024 // slerp's dot products: one (a·b, a·a, b·b) per block of this many elements
void mk_dots(const float *a, const float *b, int64_t n, double *res);
void mk_hist_high(const float *base, const float *x, uint32_t *h, int64_t n);
void mk_hist_low(const float *base, const float *x, uint32_t bin, uint32_t *h, int64_t n);
#define MK_MAXSRC 8 // most sources a fused kernel takes (more: the unfused path)
enum { MK_F32 = 0, MK_F16 = 1, MK_BF16 = 2 }; // raw element types of the fused kernels
int mk_fused_weighted(const void *const *src, const int *types, const float *w, int m, void *out, int otype, int64_t n);
int mk_fused_dots(const void *a, int ta, const void *b, int tb, int64_t n, double *res);
int mk_fused_gta(const void *base, int tbase, const void *const *models, const int *types, int m,
                 const float *w, int mode, const uint32_t *lo, const uint32_t *hi, const uint64_t *key,
                 const uint32_t *thr, int64_t start, int consensus, const float *weight, float lambda,
                 int normalize, float finish, void *out, int otype, int64_t n);
int mk_fused_bracket(const void *base, int tbase, const void *const *xs, const int *tx, int nq,
                     const int *qmodel, const uint32_t *lo, const uint32_t *hi, uint64_t *above,
                     uint32_t *const *hist, int64_t n);
void mk_to_float(const void *p, int t, float *dst, int64_t n);
void mk_from_float(const float *x, void *p, int t, int64_t n);
int mk_fused_hist(const void *base, int tbase, const void *x, int tx, int64_t n, int low, uint32_t bin, uint32_t *h);
