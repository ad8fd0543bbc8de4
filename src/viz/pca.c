/* PCA: covariance by BLAS (ssyrk on centred blocks), top eigenvectors by LAPACK (ssyevr), then one
 * sgemm projection. The covariance route costs O(n dim^2) and needs dim^2 memory, which suits the
 * uses here (dim up to a few thousand, n up to millions). */
#include "embr/tsne.h"
#include "core/threads.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PCA_BLOCK = 4096 };

/* Column means in double (float sums over millions of rows would drift). */
static void column_means(const float *x, int64_t n, int64_t ld, int64_t dim, float *mean) {
  double *acc = calloc((size_t)dim, sizeof(double));
  if (!acc) { /* fall back to float accumulation */
    memset(mean, 0, sizeof(float) * (size_t)dim);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < dim; j++) mean[j] += x[i * ld + j] / (float)n;
    return;
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < dim; j++) acc[j] += x[i * ld + j];
  for (int64_t j = 0; j < dim; j++) mean[j] = (float)(acc[j] / (double)n);
  free(acc);
}

embr_status embr_pca(const float *x, int64_t n, int64_t ld, int64_t dim, int k, float *out,
                     double *variance, int n_threads) {
  if (n < 2 || dim < 1 || ld < dim || k < 1 || k > dim)
    return embr_error(EMBR_EINVAL, "pca: need n >= 2 and 1 <= k <= dim (n=%lld dim=%lld k=%d)",
                      (long long)n, (long long)dim, k);
  if (dim > 20000) return embr_error(EMBR_EUNSUPPORTED, "pca: dimension %lld is too large for the covariance method", (long long)dim);
  size_t d = (size_t)dim;
  float *mean = malloc(sizeof(float) * d), *cov = calloc(d * d, sizeof(float));
  float *block = malloc(sizeof(float) * d * PCA_BLOCK), *w = malloc(sizeof(float) * d);
  float *z = malloc(sizeof(float) * d * (size_t)k);
  lapack_int *isuppz = malloc(sizeof(lapack_int) * 2 * (size_t)k);
  int rc = 0;
  if (!mean || !cov || !block || !w || !z || !isuppz) {
    rc = embr_error(EMBR_ENOMEM, "pca: out of memory (dim %lld)", (long long)dim);
    goto done;
  }
  /* The products and the eigen decomposition run on OpenBLAS's threads. */
  embr__blas_enter(embr_threads_resolve(n_threads));
  column_means(x, n, ld, dim, mean);
  /* cov = sum over blocks of (X_b - mean)^T (X_b - mean), upper triangle. */
  for (int64_t b0 = 0; b0 < n; b0 += PCA_BLOCK) {
    int64_t nb = n - b0 < PCA_BLOCK ? n - b0 : PCA_BLOCK;
    for (int64_t i = 0; i < nb; i++)
      for (int64_t j = 0; j < dim; j++) block[i * dim + j] = x[(b0 + i) * ld + j] - mean[j];
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, (int)nb, 1.0f, block, (int)dim,
                1.0f, cov, (int)dim);
  }
  lapack_int found = 0;
  /* Eigenvalues in ascending order: ask for the k largest (indices dim-k+1 .. dim). */
  lapack_int info = LAPACKE_ssyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)dim, cov,
                                   (lapack_int)dim, 0, 0, (lapack_int)(dim - k + 1),
                                   (lapack_int)dim, 0.0f, &found, w, z, (lapack_int)k, isuppz);
  if (info != 0 || found != k) {
    embr__blas_leave();
    rc = embr_error(EMBR_EINVAL, "pca: eigen decomposition failed (LAPACK info %d)", (int)info);
    goto done;
  }
  /* z columns are ascending; reorder to descending and fix signs. comp (k x dim) row-major. */
  float *comp = cov; /* reuse: dim*dim >= k*dim */
  for (int c = 0; c < k; c++) {
    int src = k - 1 - c;
    float big = 0;
    for (int64_t j = 0; j < dim; j++)
      if (fabsf(z[j * k + src]) > fabsf(big)) big = z[j * k + src];
    float sign = big < 0 ? -1.0f : 1.0f;
    for (int64_t j = 0; j < dim; j++) comp[c * dim + j] = sign * z[j * k + src];
    if (variance) variance[c] = (double)w[src] / (double)(n - 1);
  }
  /* out = (X - mean) comp^T, block by block. */
  for (int64_t b0 = 0; b0 < n; b0 += PCA_BLOCK) {
    int64_t nb = n - b0 < PCA_BLOCK ? n - b0 : PCA_BLOCK;
    for (int64_t i = 0; i < nb; i++)
      for (int64_t j = 0; j < dim; j++) block[i * dim + j] = x[(b0 + i) * ld + j] - mean[j];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, k, (int)dim, 1.0f, block,
                (int)dim, comp, (int)dim, 0.0f, out + b0 * k, k);
  }
  embr__blas_leave();
done:
  free(mean);
  free(cov);
  free(block);
  free(w);
  free(z);
  free(isuppz);
  return rc;
}
