/* The weighted k-NN classifier of DINO (Caron et al. 2021, eval_knn.py), the standard measure of
 * self-supervised features: no training, just votes of the nearest labelled rows. See
 * include/embr/evaluate.h for the contract.
 *
 * The rows are normalised into copies once; the neighbours come from embr_knn (cosine, exact,
 * sgemm blocks, ties to the lower row), in blocks of queries so memory stays bounded; the votes
 * are summed in double per query over the dense class ids of the train labels. */
#include "embr/evaluate.h"
#include "embr/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_BLOCK 4096

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Dense class id of a label in the sorted distinct labels, or -1. */
static int dense_id(const int32_t *uniq, int n, int32_t label) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (uniq[mid] == label) return mid;
    if (uniq[mid] < label) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

static int check_args(const float *train, int64_t n_train, int64_t ld_train, const int32_t *train_labels,
                      const float *test, int64_t n_test, int64_t ld_test, const int32_t *test_labels, int64_t dim,
                      int k, double temperature, embr_knn_eval_result *out) {
  if (!train || !test || !train_labels || !test_labels || !out) return embr_error(EMBR_EINVAL, "eval_knn: NULL argument");
  if (n_train < 1 || n_test < 1 || dim < 1 || ld_train < dim || ld_test < dim)
    return embr_error(EMBR_EINVAL, "eval_knn: %lld train and %lld test rows of dim %lld (ld %lld, %lld): need >= 1 each",
                      (long long)n_train, (long long)n_test, (long long)dim, (long long)ld_train, (long long)ld_test);
  if (k < 1) return embr_error(EMBR_EINVAL, "eval_knn: k = %d, expected >= 1", k);
  if (!(temperature >= 0.01) || !isfinite(temperature))
    return embr_error(EMBR_EINVAL, "eval_knn: temperature %g, expected a finite value >= 0.01", temperature);
  for (int64_t i = 0; i < n_train; i++)
    if (train_labels[i] < 0) return embr_error(EMBR_EINVAL, "eval_knn: train label %lld is negative", (long long)i);
  for (int64_t i = 0; i < n_test; i++)
    if (test_labels[i] < 0) return embr_error(EMBR_EINVAL, "eval_knn: test label %lld is negative", (long long)i);
  const float *m[2] = {train, test};
  int64_t n[2] = {n_train, n_test}, ld[2] = {ld_train, ld_test};
  for (int s = 0; s < 2; s++)
    for (int64_t i = 0; i < n[s]; i++)
      for (int64_t j = 0; j < dim; j++)
        if (!isfinite(m[s][i * ld[s] + j]))
          return embr_error(EMBR_EVALUE, "eval_knn: %s row %lld, column %lld is not finite", s ? "test" : "train",
                            (long long)i, (long long)j);
  return 0;
}

/* A copy of the rows scaled to unit length (zero rows stay zero), leading dimension dim. */
static float *normalised(const float *x, int64_t n, int64_t ld, int64_t dim) {
  size_t bytes;
  if (embr_size_mul((size_t)n, (size_t)dim * sizeof(float), &bytes)) return NULL;
  float *y = embr_alloc(bytes);
  if (!y) return NULL;
  for (int64_t i = 0; i < n; i++) {
    const float *a = x + i * ld;
    float *b = y + i * dim;
    double ss = 0;
    for (int64_t j = 0; j < dim; j++) ss += (double)a[j] * a[j];
    float s = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int64_t j = 0; j < dim; j++) b[j] = a[j] * s;
  }
  return y;
}

/* The ranking of one query: votes[] summed over its neighbours, then the best five voted classes
 * (ties to the lower label: the dense ids are in label order). Only the <= k voted classes are
 * visited, so the cost does not grow with the number of classes; votes[] is left all zero. */
static void vote(const float *sim, const int64_t *ids, int k, const int *cls, double inv_t, double *votes,
                 int *voted, int best[5]) {
  int nv = 0;
  for (int j = 0; j < k; j++) {
    if (ids[j] < 0) continue;
    int c = cls[ids[j]];
    if (votes[c] == 0) voted[nv++] = c;
    votes[c] += exp((double)sim[j] * inv_t); /* > 0: exp(-1 / t) does not underflow for t >= 0.01 */
  }
  for (int r = 0; r < 5; r++) {
    best[r] = -1;
    for (int v = 0; v < nv; v++) {
      int c = voted[v], taken = 0;
      for (int q = 0; q < r; q++) taken |= best[q] == c;
      if (!taken && (best[r] < 0 || votes[c] > votes[best[r]] || (votes[c] == votes[best[r]] && c < best[r])))
        best[r] = c;
    }
  }
  for (int v = 0; v < nv; v++) votes[voted[v]] = 0;
}

embr_status embr_eval_knn(const float *train, int64_t n_train, int64_t ld_train, const int32_t *train_labels,
                          const float *test, int64_t n_test, int64_t ld_test, const int32_t *test_labels, int64_t dim,
                          int k, double temperature, int n_threads, int32_t *pred, embr_knn_eval_result *out) {
  int rc = check_args(train, n_train, ld_train, train_labels, test, n_test, ld_test, test_labels, dim, k, temperature,
                      out);
  if (rc) return rc;
  if (k > n_train) k = (int)n_train;
  int64_t block = n_test < QUERY_BLOCK ? n_test : QUERY_BLOCK;
  int32_t *uniq = embr_alloc((size_t)n_train * sizeof *uniq);
  int *cls = embr_alloc((size_t)n_train * sizeof *cls);
  float *a = normalised(train, n_train, ld_train, dim), *b = normalised(test, n_test, ld_test, dim);
  float *sim = embr_alloc((size_t)block * (size_t)k * sizeof *sim);
  int64_t *ids = embr_alloc((size_t)block * (size_t)k * sizeof *ids);
  double *votes = embr_calloc((size_t)n_train, sizeof *votes);
  int *voted = embr_alloc((size_t)k * sizeof *voted);
  if (!uniq || !cls || !a || !b || !sim || !ids || !votes || !voted) rc = embr_error(EMBR_ENOMEM, "eval_knn: out of memory");
  int nclass = 0;
  if (!rc) {
    memcpy(uniq, train_labels, (size_t)n_train * sizeof *uniq);
    qsort(uniq, (size_t)n_train, sizeof *uniq, cmp_i32);
    for (int64_t i = 0; i < n_train; i++)
      if (i == 0 || uniq[i] != uniq[i - 1]) uniq[nclass++] = uniq[i];
    for (int64_t i = 0; i < n_train; i++) cls[i] = dense_id(uniq, nclass, train_labels[i]);
  }
  int64_t top1 = 0, top5 = 0;
  embr_knn_params kp = embr_knn_params_default();
  kp.n_threads = n_threads;
  for (int64_t q0 = 0; !rc && q0 < n_test; q0 += block) {
    int64_t nq = n_test - q0 < block ? n_test - q0 : block;
    rc = embr_knn(EMBR_METRIC_COSINE, a, n_train, dim, b + q0 * dim, nq, dim, dim, k, sim, ids, &kp);
    for (int64_t i = 0; !rc && i < nq; i++) {
      int best[5];
      vote(sim + i * k, ids + i * k, k, cls, 1.0 / temperature, votes, voted, best);
      int want = dense_id(uniq, nclass, test_labels[q0 + i]);
      top1 += want >= 0 && best[0] == want;
      for (int r = 0; r < 5; r++) top5 += want >= 0 && best[r] == want;
      for (int r = 0; pred && r < 5; r++) pred[(q0 + i) * 5 + r] = best[r] >= 0 ? uniq[best[r]] : -1;
    }
  }
  if (!rc) {
    out->train = n_train, out->test = n_test, out->k = k, out->classes = nclass, out->temperature = temperature;
    out->top1 = (double)top1 / (double)n_test;
    out->top5 = (double)top5 / (double)n_test;
  }
  embr_free(uniq), embr_free(cls), embr_free(a), embr_free(b), embr_free(sim), embr_free(ids), embr_free(votes);
  embr_free(voted);
  return rc;
}
