/* Portable distance kernels: the reference the SIMD versions are tested against. */
#include "vec/kernels.h"

#include <math.h>

static float dot_s(const float *a, const float *b, int64_t dim) {
  float s = 0;
  for (int64_t i = 0; i < dim; i++) s += a[i] * b[i];
  return s;
}

static float l2sq_s(const float *a, const float *b, int64_t dim) {
  float s = 0;
  for (int64_t i = 0; i < dim; i++) {
    float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

static float l1_s(const float *a, const float *b, int64_t dim) {
  float s = 0;
  for (int64_t i = 0; i < dim; i++) s += fabsf(a[i] - b[i]);
  return s;
}

static void dot_many_s(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim,
                       float *out) {
  for (int64_t i = 0; i < n; i++) out[i] = dot_s(q, base + i * ld, dim);
}

static void l2sq_many_s(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim,
                        float *out) {
  for (int64_t i = 0; i < n; i++) out[i] = l2sq_s(q, base + i * ld, dim);
}

static void l1_many_s(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim,
                      float *out) {
  for (int64_t i = 0; i < n; i++) out[i] = l1_s(q, base + i * ld, dim);
}

static void cos_many_s(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim,
                       float *out) {
  for (int64_t i = 0; i < n; i++) {
    const float *b = base + i * ld;
    float d = 0, nn = 0;
    for (int64_t j = 0; j < dim; j++) {
      d += q[j] * b[j];
      nn += b[j] * b[j];
    }
    out[i] = nn > 0 ? d / sqrtf(nn) : 0.0f;
  }
}

static void l1_block_s(const float *q, int64_t nq, int64_t ldq, const float *base, int64_t nb,
                       int64_t ldb, int64_t dim, float *out, int64_t ldo) {
  for (int64_t i = 0; i < nq; i++) l1_many_s(q + i * ldq, base, nb, ldb, dim, out + i * ldo);
}

static void scan_topk_s(const float *c, int64_t n, const float *add, const float *mul,
                        embr_topk *t, int64_t id0) {
  for (int64_t j = 0; j < n; j++) {
    float s = c[j];
    if (add) s += add[j];
    if (mul) s *= mul[j];
    if (s < t->thresh) embr__topk_insert(t, s, id0 + j);
  }
}

const embr__kernels embr__kernels_scalar = {
    "scalar",    dot_s,      l2sq_s,     l1_s,       dot_many_s,
    l2sq_many_s, l1_many_s,  cos_many_s, l1_block_s, scan_topk_s,
};
