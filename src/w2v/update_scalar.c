/* Portable word2vec update kernels: the reference for the AVX2 ones. See w2v_internal.h. */
#include "w2v/w2v_internal.h"

#include <math.h>
#include <string.h>

static float dot(const float *a, const float *b, int dim) {
  float s = 0;
  for (int i = 0; i < dim; i++) s += a[i] * b[i];
  return s;
}

static void axpy(float a, const float *x, float *y, int dim) {
  for (int i = 0; i < dim; i++) y[i] += a * x[i];
}

static void sg_update_s(float *const *in, int m, float *const *out, const float *label, int n,
                        int dim, float alpha, float *scratch) {
  float *g = scratch, *din = scratch + m * n;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) g[i * n + j] = embr__w2v_grad(dot(in[i], out[j], dim), label[j]) * alpha;
  /* din from the old outputs, then outputs from the old inputs, then the inputs (the order of
   * the AVX2 kernel, and what makes repeated rows well defined). */
  for (int i = 0; i < m; i++) {
    float *d = din + (size_t)i * dim;
    memset(d, 0, sizeof(float) * (size_t)dim);
    for (int j = 0; j < n; j++) axpy(g[i * n + j], out[j], d, dim);
  }
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) axpy(g[i * n + j], in[i], out[j], dim);
  for (int i = 0; i < m; i++) axpy(1.0f, din + (size_t)i * dim, in[i], dim);
}

static void cbow_update_s(float *const *in, int m, float *const *out, const float *label, int n,
                          int dim, float alpha, float *scratch) {
  float *h = scratch, *e = scratch + dim;
  memset(h, 0, sizeof(float) * (size_t)dim);
  memset(e, 0, sizeof(float) * (size_t)dim);
  for (int i = 0; i < m; i++) axpy(1.0f, in[i], h, dim);
  for (int k = 0; k < dim; k++) h[k] /= (float)m;
  /* All gradients and e from the rows as they were before the call (a negative drawn twice
   * must not see its own first update), then the updates. */
  float *g = scratch + 2 * dim;
  for (int j = 0; j < n; j++) g[j] = embr__w2v_grad(dot(h, out[j], dim), label[j]) * alpha;
  for (int j = 0; j < n; j++) axpy(g[j], out[j], e, dim);
  for (int j = 0; j < n; j++) axpy(g[j], h, out[j], dim);
  for (int i = 0; i < m; i++) axpy(1.0f, e, in[i], dim);
}

const w2v_kernels embr__w2v_kernels_scalar = {sg_update_s, cbow_update_s};

const w2v_kernels *embr__w2v_kernels_get(void) {
  return embr_cpu_active() == EMBR_CPU_AVX2 ? &embr__w2v_kernels_avx2 : &embr__w2v_kernels_scalar;
}
