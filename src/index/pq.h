/* Internal: a product quantizer with 8-bit codes (Jegou et al. 2011): a vector of dim floats is
 * cut into m sub-vectors of dsub = dim / m floats, each replaced by the index of the nearest of
 * 256 sub-centroids learnt by k-means in its sub-space. Distances to a query are read from
 * tables of m x 256 partial distances ("asymmetric distance computation"). */
#ifndef EMBR_INDEX_PQ_H
#define EMBR_INDEX_PQ_H

#include "embr/index.h"

#define EMBR_PQ_KSUB 256

typedef struct embr__pq {
  int m, dsub;
  float *cb;  /* m x 256 x dsub: the codebooks */
  float *cbt; /* m x dsub x 256: the same, transposed so table building runs over the 256 entries */
  float *cbn; /* m x 256: squared norms of the sub-centroids */
} embr__pq;

void embr__pq_free(embr__pq *pq);
/* Learns the codebooks from n rows of x (usually residuals). With fewer than 256 rows the
 * k-means runs with k = n and the remaining entries repeat those (never chosen: ties go to the
 * lower index). */
int embr__pq_train(embr__pq *pq, int64_t dim, int m, const float *x, int64_t n, int64_t ld, uint64_t seed,
                   int n_threads);
/* Allocates and fills cbt and cbn from cb (after training or loading cb). */
int embr__pq_derive(embr__pq *pq);
/* codes[i*m + j] = nearest sub-centroid of sub-vector j of row i. */
int embr__pq_encode(const embr__pq *pq, const float *x, int64_t n, int64_t ld, uint8_t *codes, int n_threads);
/* Tables of m x 256 floats: t[j*256 + b] = q_j . s_jb, or |r_j - s_jb|^2. */
void embr__pq_dot_table(const embr__pq *pq, const float *q, float *t);
void embr__pq_l2_table(const embr__pq *pq, const float *r, float *t);
/* out[i] = bias + sum_j t[j*256 + codes[i*m + j]]: the approximate distance of n codes. */
void embr__pq_scan(const uint8_t *codes, int64_t n, int m, const float *t, float bias, float *out);

/* IVF-PQ with L2 precomputes, per coarse cell, the query-independent part of its distance tables
 * (nlist x m x 256 floats) when they fit in this many bytes; otherwise tables are built from the
 * query residual at every probe. */
#define EMBR__IVFPQ_TERM_MAX ((size_t)256 << 20)
/* Sets that limit for one IVF-PQ index before it is trained (tests force either path with it);
 * EMBR_EINVAL for another kind of index or a trained one. */
int embr__ivfpq_set_term_max(embr_index *ix, size_t bytes);

#endif
