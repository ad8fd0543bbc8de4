/* Gaussian-mixture data; see include/embr/synth.h. */
#include "embr/synth.h"

#include "embr/vec.h"

#include <math.h>
#include <string.h>

enum { SYNTH_BLOCK = 4096 }; /* rows per RNG stream: fixes the output whatever the thread count */

embr_synth_params embr_synth_params_default(void) {
  embr_synth_params p;
  memset(&p, 0, sizeof p);
  p.clusters = 100;
  p.center_std = 1.0;
  p.spread_min = 0.05;
  p.spread_max = 0.4;
  p.seed = 1;
  return p;
}

typedef struct mixture {
  int64_t k, dim;
  float *center;  /* k x dim */
  float *spread;  /* k x dim */
  double *cdf;    /* k, cumulative weights */
} mixture;

static void mixture_free(mixture *m) {
  embr_free(m->center);
  embr_free(m->spread);
  embr_free(m->cdf);
}

static int mixture_make(mixture *m, const embr_synth_params *p, int64_t dim) {
  memset(m, 0, sizeof *m);
  m->k = p->clusters;
  m->dim = dim;
  size_t cells;
  if (embr_size_mul((size_t)m->k, (size_t)dim, &cells)) return EMBR_ENOMEM;
  m->center = embr_alloc(cells * sizeof(float));
  m->spread = embr_alloc(cells * sizeof(float));
  m->cdf = embr_alloc((size_t)m->k * sizeof(double));
  if (!m->center || !m->spread || !m->cdf) {
    mixture_free(m);
    return EMBR_ENOMEM;
  }
  embr_rng r;
  embr_rng_split(&r, p->seed, UINT64_MAX); /* the mixture's own stream */
  double lo = log(p->spread_min), hi = log(p->spread_max), total = 0;
  for (size_t i = 0; i < cells; i++) {
    m->center[i] = (float)(embr_rng_normal(&r) * p->center_std);
    m->spread[i] = (float)exp(lo + (hi - lo) * embr_rng_double(&r));
  }
  /* Unequal cluster sizes (weights 1..4), as real collections have. */
  for (int64_t c = 0; c < m->k; c++) {
    total += 1.0 + 3.0 * embr_rng_double(&r);
    m->cdf[c] = total;
  }
  for (int64_t c = 0; c < m->k; c++) m->cdf[c] /= total;
  return 0;
}

static int64_t pick_cluster(const mixture *m, double u) {
  int64_t lo = 0, hi = m->k - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (m->cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void draw_block(const mixture *m, const embr_synth_params *p, uint64_t stream,
                       int64_t block, int64_t n, embr_matrix *out, int32_t *labels) {
  embr_rng r;
  embr_rng_split(&r, embr_seed_split(p->seed, stream), (uint64_t)block);
  int64_t r0 = block * SYNTH_BLOCK, r1 = r0 + SYNTH_BLOCK < n ? r0 + SYNTH_BLOCK : n;
  for (int64_t i = r0; i < r1; i++) {
    int64_t c = pick_cluster(m, embr_rng_double(&r));
    float *row = out->data + i * out->ld;
    const float *mu = m->center + c * m->dim, *sd = m->spread + c * m->dim;
    for (int64_t j = 0; j < m->dim; j++) row[j] = mu[j] + sd[j] * (float)embr_rng_normal(&r);
    if (p->normalize) {
      float nn = embr_norm_sq(row, m->dim);
      if (nn > 0) {
        float inv = 1.0f / sqrtf(nn);
        for (int64_t j = 0; j < m->dim; j++) row[j] *= inv;
      }
    }
    if (labels) labels[i] = (int32_t)c;
  }
}

embr_status embr_synth_clusters(const embr_synth_params *p, int64_t n, int64_t dim, uint64_t stream,
                                embr_matrix *out, int32_t *labels) {
  memset(out, 0, sizeof *out);
  if (n < 1 || dim < 1) return embr_error(EMBR_EINVAL, "synth: n and dim must be at least 1");
  if (p->clusters < 1 || p->clusters > INT32_MAX)
    return embr_error(EMBR_EINVAL, "synth: clusters must be between 1 and 2^31-1");
  if (!(p->spread_min > 0) || !(p->spread_max >= p->spread_min) || !(p->center_std >= 0))
    return embr_error(EMBR_EINVAL, "synth: need 0 < spread_min <= spread_max and center_std >= 0");
  mixture m;
  int rc = mixture_make(&m, p, dim);
  if (rc) return rc;
  if ((rc = embr_matrix_alloc(out, n, dim))) {
    mixture_free(&m);
    return rc;
  }
  int64_t blocks = (n + SYNTH_BLOCK - 1) / SYNTH_BLOCK;
#pragma omp parallel for num_threads(embr_threads_resolve(p->n_threads)) schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; b++) draw_block(&m, p, stream, b, n, out, labels);
  mixture_free(&m);
  return 0;
}
