/* Zero-shot classification as CLIP does it: each class's prompt embeddings ("a photo of a dog.",
 * "a drawing of a dog.", ...) are normalised, averaged and normalised again into one classifier
 * row; an image's classes are ranked by cosine similarity with those rows (exact k-NN). See
 * include/embr/evaluate.h for the contract. */
#include "embr/evaluate.h"
#include "embr/vec.h"
#include "train/evaluate_internal.h"

#include <math.h>
#include <string.h>

/* Adds x / |x| (nothing for a zero row) to acc, in double. */
static void add_unit(double *acc, const float *x, int64_t dim) {
  double ss = 0;
  for (int64_t j = 0; j < dim; j++) ss += (double)x[j] * x[j];
  if (ss <= 0) return;
  double inv = 1.0 / sqrt(ss);
  for (int64_t j = 0; j < dim; j++) acc[j] += x[j] * inv;
}

embr_status embr_zeroshot_weights(const float *txt, int64_t classes, int64_t templates, int64_t dim, int64_t ld,
                                  float *weights) {
  const char *fn = "embr_zeroshot_weights";
  if (classes < 1 || templates < 1)
    return embr_error(EMBR_EINVAL, "%s: %lld classes x %lld templates, expected >= 1 each", fn, (long long)classes,
                      (long long)templates);
  if (classes > INT64_MAX / templates) return embr_error(EMBR_EINVAL, "%s: too many rows", fn);
  int rc = embr__eval_check_matrix(fn, txt, classes * templates, dim, ld);
  if (rc) return rc;
  if (!weights) return embr_error(EMBR_EINVAL, "%s: weights is NULL", fn);
  double *acc = embr_alloc(sizeof(double) * (size_t)dim);
  if (!acc) return EMBR_ENOMEM;
  for (int64_t c = 0; c < classes; c++) {
    memset(acc, 0, sizeof(double) * (size_t)dim);
    for (int64_t t = 0; t < templates; t++) add_unit(acc, txt + (c * templates + t) * ld, dim);
    double ss = 0; /* the mean's length: dividing by the count first would not change the direction */
    for (int64_t j = 0; j < dim; j++) ss += acc[j] * acc[j];
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    for (int64_t j = 0; j < dim; j++) weights[c * dim + j] = (float)(acc[j] * inv);
  }
  embr_free(acc);
  return 0;
}

embr_status embr_zeroshot_classify(const float *img, int64_t n, int64_t ld, const float *weights, int64_t classes,
                                   int64_t dim, int k, int32_t *top_class, float *top_score) {
  const char *fn = "embr_zeroshot_classify";
  int rc = embr__eval_check_matrix(fn, img, n, dim, ld);
  if (!rc) rc = embr__eval_check_matrix(fn, weights, classes, dim, dim);
  if (rc) return rc;
  if (k < 1) return embr_error(EMBR_EINVAL, "%s: k = %d, expected >= 1", fn, k);
  if (!top_class || !top_score) return embr_error(EMBR_EINVAL, "%s: output is NULL", fn);
  if (classes > INT32_MAX) return embr_error(EMBR_EUNSUPPORTED, "%s: more than %d classes", fn, INT32_MAX);
  size_t count = 0;
  if (embr_size_mul((size_t)n, (size_t)k, &count)) return EMBR_ENOMEM;
  int64_t *ids = embr_alloc(sizeof(int64_t) * count);
  if (!ids) return EMBR_ENOMEM;
  rc = embr_knn(EMBR_METRIC_COSINE, weights, classes, dim, img, n, ld, dim, k, top_score, ids, NULL);
  for (size_t i = 0; !rc && i < count; i++) top_class[i] = (int32_t)ids[i];
  embr_free(ids);
  return rc;
}

embr_status embr_zeroshot_accuracy(const int32_t *top_class, int64_t n, int k, const int32_t *labels, int at,
                                   double *accuracy) {
  const char *fn = "embr_zeroshot_accuracy";
  if (!top_class || !labels || !accuracy) return embr_error(EMBR_EINVAL, "%s: an argument is NULL", fn);
  if (n < 1 || k < 1 || at < 1 || at > k)
    return embr_error(EMBR_EINVAL, "%s: n = %lld, k = %d, at = %d: expected n >= 1 and 1 <= at <= k", fn, (long long)n, k,
                      at);
  int64_t hits = 0;
  for (int64_t i = 0; i < n; i++) {
    if (labels[i] < 0)
      return embr_error(EMBR_EINVAL, "%s: label of row %lld is %d, expected >= 0", fn, (long long)i, (int)labels[i]);
    for (int j = 0; j < at; j++)
      if (top_class[i * k + j] == labels[i]) {
        hits++;
        break;
      }
  }
  *accuracy = (double)hits / (double)n;
  return 0;
}
