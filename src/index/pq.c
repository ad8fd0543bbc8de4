/* Product quantizer with 8-bit codes; see pq.h. */
#include "index/pq.h"

#include "index/kmeans.h"

#include <string.h>

enum { ENCODE_CHUNK = 65536 }; /* rows encoded per batch (bounds the scratch to 0.5 MB of ids) */

void embr__pq_free(embr__pq *pq) {
  embr_free(pq->cb);
  embr_free(pq->cbt);
  embr_free(pq->cbn);
  memset(pq, 0, sizeof *pq);
}

int embr__pq_derive(embr__pq *pq) {
  int m = pq->m, ds = pq->dsub;
  embr_free(pq->cbt);
  embr_free(pq->cbn);
  pq->cbt = embr_alloc(sizeof(float) * (size_t)m * (size_t)ds * EMBR_PQ_KSUB);
  pq->cbn = embr_alloc(sizeof(float) * (size_t)m * EMBR_PQ_KSUB);
  if (!pq->cbt || !pq->cbn) return embr_error(EMBR_ENOMEM, "PQ: out of memory");
  for (int j = 0; j < m; j++)
    for (int b = 0; b < EMBR_PQ_KSUB; b++) {
      const float *s = pq->cb + ((size_t)j * EMBR_PQ_KSUB + (size_t)b) * (size_t)ds;
      float nn = 0;
      for (int d = 0; d < ds; d++) {
        pq->cbt[((size_t)j * (size_t)ds + (size_t)d) * EMBR_PQ_KSUB + (size_t)b] = s[d];
        nn += s[d] * s[d];
      }
      pq->cbn[(size_t)j * EMBR_PQ_KSUB + (size_t)b] = nn;
    }
  return 0;
}

int embr__pq_train(embr__pq *pq, int64_t dim, int m, const float *x, int64_t n, int64_t ld, uint64_t seed,
                   int n_threads) {
  embr__pq_free(pq);
  pq->m = m;
  pq->dsub = (int)(dim / m);
  int ds = pq->dsub;
  pq->cb = embr_alloc(sizeof(float) * (size_t)dim * EMBR_PQ_KSUB);
  if (!pq->cb) return embr_error(EMBR_ENOMEM, "PQ: out of memory");
  int64_t ksub = n < EMBR_PQ_KSUB ? n : EMBR_PQ_KSUB;
  embr_kmeans_params kp = embr_kmeans_params_default();
  kp.n_threads = n_threads;
  int rc = 0;
  for (int j = 0; j < m && !rc; j++) {
    float *cb = pq->cb + (size_t)j * EMBR_PQ_KSUB * (size_t)ds;
    kp.seed = embr_seed_split(seed, (uint64_t)j);
    rc = embr_kmeans(x + (size_t)j * (size_t)ds, n, ld, ds, ksub, &kp, cb, NULL, NULL);
    for (int64_t b = ksub; b < EMBR_PQ_KSUB && !rc; b++)
      memcpy(cb + b * ds, cb + (b % ksub) * ds, sizeof(float) * (size_t)ds);
  }
  if (!rc) rc = embr__pq_derive(pq);
  return rc;
}

int embr__pq_encode(const embr__pq *pq, const float *x, int64_t n, int64_t ld, uint8_t *codes, int n_threads) {
  int64_t chunk = n < ENCODE_CHUNK ? n : ENCODE_CHUNK;
  int64_t *a = embr_alloc(sizeof(int64_t) * (size_t)(chunk ? chunk : 1));
  if (!a) return embr_error(EMBR_ENOMEM, "PQ: out of memory");
  int rc = 0;
  for (int64_t i0 = 0; i0 < n && !rc; i0 += chunk) {
    int64_t cnt = n - i0 < chunk ? n - i0 : chunk;
    for (int j = 0; j < pq->m && !rc; j++) {
      const float *cb = pq->cb + (size_t)j * EMBR_PQ_KSUB * (size_t)pq->dsub;
      rc = embr__nearest(x + i0 * ld + (int64_t)j * pq->dsub, cnt, ld, pq->dsub, cb, EMBR_PQ_KSUB, n_threads, a, NULL);
      for (int64_t i = 0; i < cnt && !rc; i++) codes[(i0 + i) * pq->m + j] = (uint8_t)a[i];
    }
  }
  embr_free(a);
  return rc;
}

/* Both tables loop over the 256 entries innermost, on the transposed codebook: contiguous,
 * branch-free, and vectorised by the compiler at any instruction set. */
void embr__pq_dot_table(const embr__pq *pq, const float *q, float *t) {
  for (int j = 0; j < pq->m; j++) {
    float *tj = t + (size_t)j * EMBR_PQ_KSUB;
    memset(tj, 0, sizeof(float) * EMBR_PQ_KSUB);
    for (int d = 0; d < pq->dsub; d++) {
      float v = q[j * pq->dsub + d];
      const float *row = pq->cbt + ((size_t)j * (size_t)pq->dsub + (size_t)d) * EMBR_PQ_KSUB;
      for (int b = 0; b < EMBR_PQ_KSUB; b++) tj[b] += v * row[b];
    }
  }
}

void embr__pq_l2_table(const embr__pq *pq, const float *r, float *t) {
  for (int j = 0; j < pq->m; j++) {
    float *tj = t + (size_t)j * EMBR_PQ_KSUB;
    memset(tj, 0, sizeof(float) * EMBR_PQ_KSUB);
    for (int d = 0; d < pq->dsub; d++) {
      float v = r[j * pq->dsub + d];
      const float *row = pq->cbt + ((size_t)j * (size_t)pq->dsub + (size_t)d) * EMBR_PQ_KSUB;
      for (int b = 0; b < EMBR_PQ_KSUB; b++) {
        float e = v - row[b];
        tj[b] += e * e;
      }
    }
  }
}

/* The sum of m lookups for one code. Four partial sums break the add dependency chain; called
 * with a constant m (below) the loop is fully unrolled, so every lookup is one load with a
 * constant table offset. */
static inline float code_sum(const uint8_t *c, const float *t, int m) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int j = 0;
  for (; j + 4 <= m; j += 4, t += 4 * EMBR_PQ_KSUB) {
    s0 += t[0 * EMBR_PQ_KSUB + c[j + 0]];
    s1 += t[1 * EMBR_PQ_KSUB + c[j + 1]];
    s2 += t[2 * EMBR_PQ_KSUB + c[j + 2]];
    s3 += t[3 * EMBR_PQ_KSUB + c[j + 3]];
  }
  for (; j < m; j++, t += EMBR_PQ_KSUB) s0 += t[c[j]];
  return (s0 + s1) + (s2 + s3);
}

#define SCAN_FIXED(M)                                                        \
  for (int64_t i = 0; i < n; i++) out[i] = bias + code_sum(codes + i * (M), t, (M)); \
  return

void embr__pq_scan(const uint8_t *codes, int64_t n, int m, const float *t, float bias, float *out) {
  switch (m) {
  case 4: SCAN_FIXED(4);
  case 8: SCAN_FIXED(8);
  case 16: SCAN_FIXED(16);
  case 32: SCAN_FIXED(32);
  case 64: SCAN_FIXED(64);
  default:
    for (int64_t i = 0; i < n; i++) out[i] = bias + code_sum(codes + i * m, t, m);
  }
}
