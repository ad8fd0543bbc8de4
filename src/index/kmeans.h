/* Internal: nearest-centre assignment shared by k-means, the IVF coarse quantizer and the product
 * quantizer's encoder. */
#ifndef EMBR_INDEX_KMEANS_H
#define EMBR_INDEX_KMEANS_H

#include "embr/index.h"

/* For each of n rows of x (leading dimension ld), the nearest of k centres (k x dim, contiguous)
 * in squared L2: assign[i] and, when dist is not NULL, dist[i]. Batched through embr_knn; rows of
 * fewer than 8 dimensions are zero-padded to 8 first so the batch still runs through sgemm
 * (embr_knn falls back to per-pair kernels below that, many times slower for PQ sub-vectors).
 * Ties go to the lower centre index. */
int embr__nearest(const float *x, int64_t n, int64_t ld, int64_t dim, const float *c, int64_t k,
                  int n_threads, int64_t *assign, float *dist);

/* Copies a seeded uniform sample of m of the n rows (all of them when m >= n) to out (leading
 * dimension ldo), in their original order. Selection sampling (Knuth's algorithm S): one pass,
 * no index array of n. */
void embr__sample_rows(const float *x, int64_t n, int64_t ld, int64_t dim, int64_t m, uint64_t seed, float *out,
                       int64_t ldo);

#endif
