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
void mk_dots(const float *a, const float *b, int64_t n, double *res);
void mk_hist_high(const float *base, const float *x, uint32_t *h, int64_t n);
void mk_hist_low(const float *base, const float *x, uint32_t bin, uint32_t *h, int64_t n);
