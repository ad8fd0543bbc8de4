/* AVX2 + FMA word2vec update kernels (compiled alone with -mavx2 -mfma, entered through the
 * dispatch in update_scalar.c). Same arithmetic as the scalar kernels, vectorised along the
 * embedding dimension; the tail of a dimension that is not a multiple of 8 goes through masked
 * loads and stores so rows can be packed without padding. */
#include "w2v/w2v_internal.h"

#include <immintrin.h>
#include <string.h>

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* Dot products of one row against four others. */
static inline void dot4(const float *a, const float *b0, const float *b1, const float *b2,
                        const float *b3, int dim, __m256i tail, float *out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int k = 0;
  for (; k + 8 <= dim; k += 8) {
    __m256 x = _mm256_loadu_ps(a + k);
    s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b0 + k), s0);
    s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b1 + k), s1);
    s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b2 + k), s2);
    s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b3 + k), s3);
  }
  if (k < dim) {
    __m256 x = _mm256_maskload_ps(a + k, tail);
    s0 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b0 + k, tail), s0);
    s1 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b1 + k, tail), s1);
    s2 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b2 + k, tail), s2);
    s3 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b3 + k, tail), s3);
  }
  out[0] = hsum(s0);
  out[1] = hsum(s1);
  out[2] = hsum(s2);
  out[3] = hsum(s3);
}

static inline float dot1(const float *a, const float *b, int dim, __m256i tail) {
  __m256 s = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= dim; k += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s);
  if (k < dim) s = _mm256_fmadd_ps(_mm256_maskload_ps(a + k, tail), _mm256_maskload_ps(b + k, tail), s);
  return hsum(s);
}

/* y (+)= sum_t coef[t * stride] * x[t]  over t < cnt; `accumulate` keeps y's old value. */
static inline void combine(float *y, float *const *x, const float *coef, int stride, int cnt,
                           int dim, __m256i tail, int accumulate) {
  int k = 0;
  for (; k + 8 <= dim; k += 8) {
    __m256 acc = accumulate ? _mm256_loadu_ps(y + k) : _mm256_setzero_ps();
    for (int t = 0; t < cnt; t++)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(coef[t * stride]), _mm256_loadu_ps(x[t] + k), acc);
    _mm256_storeu_ps(y + k, acc);
  }
  if (k < dim) {
    __m256 acc = accumulate ? _mm256_maskload_ps(y + k, tail) : _mm256_setzero_ps();
    for (int t = 0; t < cnt; t++)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(coef[t * stride]), _mm256_maskload_ps(x[t] + k, tail), acc);
    _mm256_maskstore_ps(y + k, tail, acc);
  }
}

static inline void add_to(float *y, const float *x, int dim, __m256i tail) {
  int k = 0;
  for (; k + 8 <= dim; k += 8)
    _mm256_storeu_ps(y + k, _mm256_add_ps(_mm256_loadu_ps(y + k), _mm256_loadu_ps(x + k)));
  if (k < dim)
    _mm256_maskstore_ps(y + k, tail, _mm256_add_ps(_mm256_maskload_ps(y + k, tail), _mm256_maskload_ps(x + k, tail)));
}

static void sg_update_a(float *const *in, int m, float *const *out, const float *label, int n,
                        int dim, float alpha, float *scratch) {
  __m256i tail = _mm256_loadu_si256((const __m256i *)(mask_src + 8 - (dim & 7)));
  float *g = scratch, *din = scratch + m * n;
  /* Scores and gradients, four outputs at a time. */
  for (int i = 0; i < m; i++) {
    float *gi = g + i * n;
    int j = 0;
    for (; j + 4 <= n; j += 4) dot4(in[i], out[j], out[j + 1], out[j + 2], out[j + 3], dim, tail, gi + j);
    for (; j < n; j++) gi[j] = dot1(in[i], out[j], dim, tail);
    for (j = 0; j < n; j++) gi[j] = embr__w2v_grad(gi[j], label[j]) * alpha;
  }
  /* din_i = sum_j g_ij out_j from the old outputs; then the outputs move with the old inputs;
   * then the inputs take din. */
  for (int i = 0; i < m; i++) combine(din + (size_t)i * dim, out, g + i * n, 1, n, dim, tail, 0);
  for (int j = 0; j < n; j++) combine(out[j], in, g + j, n, m, dim, tail, 1);
  for (int i = 0; i < m; i++) add_to(in[i], din + (size_t)i * dim, dim, tail);
}

static void cbow_update_a(float *const *in, int m, float *const *out, const float *label, int n,
                          int dim, float alpha, float *scratch) {
  __m256i tail = _mm256_loadu_si256((const __m256i *)(mask_src + 8 - (dim & 7)));
  float *h = scratch, *e = scratch + dim, *g = scratch + 2 * dim;
  float inv = 1.0f / (float)m;
  for (int i = 0; i < m; i++) g[i] = inv;
  combine(h, in, g, 1, m, dim, tail, 0);
  for (int j = 0; j < n; j++) g[j] = embr__w2v_grad(dot1(h, out[j], dim, tail), label[j]) * alpha;
  combine(e, out, g, 1, n, dim, tail, 0);
  for (int j = 0; j < n; j++) {
    float *const hp[1] = {h};
    combine(out[j], hp, g + j, 1, 1, dim, tail, 1);
  }
  for (int i = 0; i < m; i++) add_to(in[i], e, dim, tail);
}

const w2v_kernels embr__w2v_kernels_avx2 = {sg_update_a, cbow_update_a};
