/* embr synth: seeded synthetic data for demos, tests and benchmarks: a mixture of anisotropic
 * Gaussian clusters. The mixture (centres, spreads, weights) depends only on `seed`; the rows
 * depend on (seed, stream), so base vectors (stream 0) and queries (stream 1) come from the same
 * distribution without overlapping, and the output is identical for any thread count. */
#ifndef EMBR_SYNTH_H
#define EMBR_SYNTH_H

#include "embr/matrix.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embr_synth_params {
  int64_t clusters;   /* mixture components (>= 1) */
  double center_std;  /* spread of the centres around the origin */
  double spread_min;  /* per-cluster, per-axis standard deviation is log-uniform in */
  double spread_max;  /*   [spread_min, spread_max]: clusters are anisotropic */
  int normalize;      /* scale each row to unit length (for cosine / inner-product data) */
  uint64_t seed;
  int n_threads;      /* 0 = all cores */
} embr_synth_params;

/* 100 clusters, centre std 1, spreads in [0.05, 0.4], not normalised, seed 1, all cores. */
EMBR_API embr_synth_params embr_synth_params_default(void);

/* Draws n x dim rows into *out (overwritten; free with embr_matrix_free). When `labels` is not
 * NULL it receives each row's cluster index (n entries, caller-allocated). Errors: EMBR_EINVAL (n
 * or dim < 1, clusters out of 1 .. 2^31-1, bad spreads), EMBR_ENOMEM. Thread-safe. */
EMBR_API embr_status embr_synth_clusters(const embr_synth_params *p, int64_t n, int64_t dim,
                                         uint64_t stream, embr_matrix *out, int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif
