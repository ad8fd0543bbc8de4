/* embr vec: distance metrics, distance kernels (scalar + AVX2, chosen at run time), top-k selection
 * and exact k-nearest-neighbour search of many queries against many base vectors.
 *
 * Matrices are float32, row-major, with an explicit leading dimension `ld >= dim` (row i starts at
 * data + i*ld), so a strided view (a NumPy slice, the rows of an .fvecs file) needs no copy.
 * Kernels are pure functions: safe to call from any number of threads at once. */
#ifndef EMBR_VEC_H
#define EMBR_VEC_H

#include "embr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- metrics (same semantics as faiss) ----------------------------------------------------------
 *  metric          value returned                         better is   zero vector
 *  EMBR_METRIC_L2  squared Euclidean  sum (a-b)^2          smaller     -
 *  EMBR_METRIC_IP  inner product      sum a*b              larger      -
 *  EMBR_METRIC_COSINE  a.b / (|a| |b|)                     larger      similarity 0
 *  EMBR_METRIC_L1  Manhattan          sum |a-b|            smaller     -
 * Enum values only grow at the end. */
typedef enum embr_metric {
  EMBR_METRIC_L2 = 0,
  EMBR_METRIC_IP = 1,
  EMBR_METRIC_COSINE = 2,
  EMBR_METRIC_L1 = 3
} embr_metric;

EMBR_API const char *embr_metric_name(embr_metric m); /* "l2", "ip", "cosine", "l1" */
/* Accepts l2|euclidean|sqeuclidean, ip|dot|inner_product, cosine|cos, l1|manhattan|cityblock;
 * anything else is EMBR_EINVAL naming it (*out untouched). */
EMBR_API embr_status embr_metric_parse(const char *name, embr_metric *out);
/* 1 when larger values are better (IP, cosine). */
EMBR_API int embr_metric_descending(embr_metric m);
/* The value that pads results when fewer than k exist: +inf (ascending) or -inf (descending). */
EMBR_API float embr_metric_worst(embr_metric m);

/* ---- kernels ------------------------------------------------------------------------------------
 * The active implementation (scalar or AVX2+FMA) is picked once from embr_cpu_active(). Every
 * element of a result is computed by the same sequence of operations whatever its position in the
 * batch, so identical vectors give identical distances. */

/* One pair of dim-float vectors (dim >= 0; no checks: the caller passes valid pointers). */
EMBR_API float embr_distance(embr_metric m, const float *a, const float *b, int64_t dim);
EMBR_API float embr_dot(const float *a, const float *b, int64_t dim);
EMBR_API float embr_norm_sq(const float *a, int64_t dim);

/* One query against n rows of `base` (row i at base + i*ld, ld >= dim): out[i] =
 * distance(q, base_i); out holds n floats, caller-allocated. No checks, no errors. */
EMBR_API void embr_distances(embr_metric m, const float *q, const float *base, int64_t n,
                             int64_t ld, int64_t dim, float *out);

/* Squared norms of n rows (row i at x + i*ld): out[i] = |x_i|^2 (n floats, caller-allocated). */
EMBR_API void embr_norms_sq(const float *x, int64_t n, int64_t ld, int64_t dim, float *out);

/* Full distance matrix out[i*ldo + j] = distance(q_i, b_j), for nq queries and nb base rows.
 * L2/IP/cosine go through cblas_sgemm (with norms); L1 through a blocked SIMD kernel.
 * out (nq rows of nb, leading dimension ldo >= nb) is caller-allocated. n_threads: 0 = all
 * cores. Errors: EMBR_EINVAL (bad sizes or metric, NULL output, ldo < nb), EMBR_ENOMEM.
 * Thread-safe. */
EMBR_API embr_status embr_distance_matrix(embr_metric m, const float *q, int64_t nq, int64_t ldq,
                                          const float *base, int64_t nb, int64_t ldb, int64_t dim,
                                          float *out, int64_t ldo, int n_threads);

/* ---- top-k selection --------------------------------------------------------------------------
 * Keeps the k smallest (score, id) pairs seen, ties broken by the lower id. Scores are "smaller is
 * better"; callers negate similarities. Fast for k from 1 to several thousands: candidates are
 * appended to a buffer of 2k while they beat the current threshold, and the buffer is cut back to
 * k by selection when it fills, so a push costs one compare in the common case.
 * An embr_topk is caller-owned state for one thread; the buffers are freed by embr_topk_free. */
typedef struct embr_topk {
  int k;
  int size;      /* entries in the buffer */
  int cap;       /* 2k (at least 16) */
  float thresh;  /* a candidate must be < thresh (or == thresh with a lower id) to enter */
  int64_t thresh_id;
  float *score;
  int64_t *id;
} embr_topk;

/* Allocates the buffers for k (1 .. 2^28; EMBR_EINVAL otherwise, EMBR_ENOMEM). */
EMBR_API embr_status embr_topk_init(embr_topk *t, int k);
EMBR_API void embr_topk_reset(embr_topk *t); /* empties it, keeping k and the buffers */
EMBR_API void embr_topk_free(embr_topk *t);  /* frees the buffers; NULL is a no-op */
EMBR_API void embr_topk_push(embr_topk *t, float score, int64_t id);
/* Pushes scores[i] with id id0+i for i < n, skipping quickly those that cannot enter. */
EMBR_API void embr_topk_push_array(embr_topk *t, const float *scores, int64_t n, int64_t id0);
/* Writes the best min(k, seen) pairs in ascending (score, id) order to score[k] and id[k]
 * (caller-allocated), pads the rest of the k slots with (pad, -1). Leaves t holding the same set. */
EMBR_API void embr_topk_result(embr_topk *t, float *score, int64_t *id, float pad);

/* ---- exact k-NN -------------------------------------------------------------------------------
 * For each of nq queries, the k nearest of nb base rows under metric m: writes nq*k distances and
 * ids (row-major, best first, ties by lower id), padded with (embr_metric_worst(m), -1) when
 * nb < k. L2/IP/cosine use sgemm blocks with the selection fused into the pass over each block,
 * then recompute the k winners exactly with the direct kernel so reported distances do not carry
 * the cancellation error of |q|^2 + |b|^2 - 2 q.b.
 * Rows: base row i at base + i*ldb, query i at query + i*ldq (ld >= dim). dist and ids (nq*k
 * each) are caller-allocated. params may be NULL (defaults). Errors: EMBR_EINVAL (bad metric,
 * sizes or k < 1, NULL pointers), EMBR_ENOMEM, EMBR_ECANCELED (progress); outputs are unspecified
 * after an error. Thread-safe: concurrent calls do not share state. */
typedef struct embr_knn_params {
  int n_threads;              /* 0 = all cores */
  const float *base_norms_sq; /* optional precomputed |b|^2 (L2, cosine), length nb; NULL = compute */
  embr_progress progress;     /* reported in queries done */
} embr_knn_params;

EMBR_API embr_knn_params embr_knn_params_default(void); /* all cores, no norms, no progress */

EMBR_API embr_status embr_knn(embr_metric m, const float *base, int64_t nb, int64_t ldb,
                              const float *query, int64_t nq, int64_t ldq, int64_t dim, int k,
                              float *dist, int64_t *ids, const embr_knn_params *params);

#ifdef __cplusplus
}
#endif
#endif
