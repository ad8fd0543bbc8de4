/* t-SNE affinities from precomputed sparse distances ("i j distance" rows): the rows are grouped
 * into padded per-point neighbour lists and calibrated like computed neighbours. Every size comes
 * from the rows, so each is checked before it sizes an allocation (a tiny hostile file must not
 * ask for gigabytes). */
#include "viz/tsne_internal.h"

#include <math.h>
#include <string.h>

/* Point number of a float cell: an exact non-negative integer (the reader's limit, 2^24 - 1). */
static int point_of(float v, int64_t *p) {
  if (!(v >= 0) || v > 16777215.0f || v != floorf(v)) return -1;
  *p = (int64_t)v;
  return 0;
}

/* Checks the rows and returns the point count and each point's number of neighbour rows. */
static int scan_rows(const float *t, int64_t nnz, int64_t ld, int64_t *n_out, int64_t **deg_out) {
  int64_t n = 0;
  for (int64_t r = 0; r < nnz; r++) {
    int64_t i, j;
    float d = t[r * ld + 2];
    if (point_of(t[r * ld], &i) || point_of(t[r * ld + 1], &j))
      return embr_error(EMBR_EVALUE, "precomputed sparse input: row %lld: %g, %g are not point numbers (integers 0..16777215)",
                        (long long)r, (double)t[r * ld], (double)t[r * ld + 1]);
    if (!isfinite(d) || d < 0)
      return embr_error(EMBR_EVALUE, "precomputed sparse input: row %lld: distance %g is negative or not finite", (long long)r,
                        (double)d);
    if (i + 1 > n) n = i + 1;
    if (j + 1 > n) n = j + 1;
  }
  /* Each row names at most two points, so a larger n means points in no row at all. */
  if (n > 2 * nnz)
    return embr_error(EMBR_EINVAL, "precomputed sparse input: point %lld is named but %lld rows cannot cover %lld points",
                      (long long)(n - 1), (long long)nnz, (long long)n);
  int64_t *deg = embr_calloc((size_t)n + 1, sizeof(int64_t)); /* +1: deg[n] counts rows touching nothing */
  if (!deg) return embr_error(EMBR_ENOMEM, "precomputed sparse input: out of memory");
  for (int64_t r = 0; r < nnz; r++) {
    int64_t i = (int64_t)t[r * ld], j = (int64_t)t[r * ld + 1];
    if (i != j) deg[i]++;
    else deg[n]++;
  }
  *n_out = n;
  *deg_out = deg;
  return 0;
}

int embr_tsne_affinities_sparse(const float *t, int64_t nnz, int64_t ld, const embr_tsne_params *p,
                                embr_affinities *out) {
  memset(out, 0, sizeof *out);
  if (!t || nnz < 1 || ld < 3)
    return embr_error(EMBR_EINVAL, "precomputed sparse input: need rows of (i, j, distance), got %lld rows of %lld", (long long)nnz,
                      (long long)ld);
  int64_t n = 0, *deg = NULL;
  int rc = scan_rows(t, nnz, ld, &n, &deg);
  if (rc) return rc;
  int64_t kk = 1;
  for (int64_t i = 0; i < n; i++)
    if (deg[i] > kk) kk = deg[i];
  /* Padded lists cost n x kk: fine for neighbour graphs (about nnz / n each), not for one hub
   * point with most of the rows, which would turn a small file into a huge allocation. */
  if (kk > INT32_MAX || (double)n * (double)kk > 16.0 * (double)nnz + (double)(1 << 22)) {
    embr_free(deg);
    return embr_error(EMBR_EINVAL,
                      "precomputed sparse input: one point has %lld neighbour rows among %lld points and %lld rows; "
                      "give each point its nearest few (about 3 x perplexity)",
                      (long long)kk, (long long)n, (long long)nnz);
  }
  int64_t *nbr = embr_alloc(sizeof(int64_t) * (size_t)(n * kk));
  float *d = embr_alloc(sizeof(float) * (size_t)(n * kk));
  rc = nbr && d ? 0 : embr_error(EMBR_ENOMEM, "precomputed sparse input: out of memory for %lld x %lld neighbours",
                                 (long long)n, (long long)kk);
  if (!rc) {
    for (int64_t i = 0; i < n * kk; i++) {
      nbr[i] = -1;
      d[i] = INFINITY;
    }
    memset(deg, 0, sizeof(int64_t) * (size_t)n);
    for (int64_t r = 0; r < nnz; r++) {
      int64_t i = (int64_t)t[r * ld], j = (int64_t)t[r * ld + 1];
      if (i == j) continue; /* a point is not its own neighbour */
      nbr[i * kk + deg[i]] = j;
      d[i * kk + deg[i]++] = t[r * ld + 2];
    }
    rc = embr_tsne_affinities_knn(nbr, d, n, (int)kk, p, out);
  }
  embr_free(deg);
  embr_free(nbr);
  embr_free(d);
  return rc;
}
