/* Cross-modal retrieval evaluation (image -> text and text -> image recall@k, median and mean
 * rank), the standard benchmark of CLIP-style models (Flickr30k, MS-COCO). See
 * include/embr/evaluate.h for the contract.
 *
 * Exact: each block of queries is scored against every candidate through embr_distance_matrix
 * (cosine, sgemm), and a query's rank is one count over its row, so no top-k cut-off can hide the
 * right item. Ties are pessimistic (documented in the header). */
#include "embr/evaluate.h"
#include "embr/vec.h"
#include "core/threads.h"
#include "train/evaluate_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* One direction: queries q against candidates b; rank of each query into rank[]. */
typedef struct ret_dir {
  const float *q, *b;
  int64_t nq, ldq, nb, ldb, dim;
  const int64_t *txt_image;
  int t2i;       /* 1: queries are captions, candidates images; 0: the reverse */
  int64_t *rank; /* nq ranks (1-based; -1 for an image without captions) */
} ret_dir;

/* Text -> image: 1 + the images other than the caption's own scoring at least as high. */
static int64_t rank_t2i(const float *s, int64_t nb, int64_t right) {
  int64_t r = 1;
  for (int64_t i = 0; i < nb; i++) r += i != right && s[i] >= s[right];
  return r;
}

/* Image -> text: the best of the image's captions, then 1 + the other captions scoring at least
 * as high; -1 when the image has no caption. */
static int64_t rank_i2t(const float *s, int64_t nb, const int64_t *txt_image, int64_t img) {
  int64_t best = -1;
  for (int64_t c = 0; c < nb; c++)
    if (txt_image[c] == img && (best < 0 || s[c] > s[best])) best = c;
  if (best < 0) return -1;
  int64_t r = 1;
  for (int64_t c = 0; c < nb; c++) r += txt_image[c] != img && s[c] >= s[best];
  return r;
}

static int rank_direction(const ret_dir *d) {
  int64_t block = ((int64_t)1 << 22) / d->nb; /* score block near 16 MB */
  block = block < 1 ? 1 : block > 1024 ? 1024 : block > d->nq ? d->nq : block;
  size_t bytes = 0;
  if (embr_size_mul((size_t)block, (size_t)d->nb * sizeof(float), &bytes)) return EMBR_ENOMEM;
  float *scores = embr_alloc(bytes);
  if (!scores) return EMBR_ENOMEM;
  int nt = embr_threads_resolve(0), rc = 0;
  for (int64_t q0 = 0; q0 < d->nq && !rc; q0 += block) {
    int64_t b = d->nq - q0 < block ? d->nq - q0 : block;
    rc = embr_distance_matrix(EMBR_METRIC_COSINE, d->q + q0 * d->ldq, b, d->ldq, d->b, d->nb, d->ldb, d->dim, scores,
                              d->nb, nt);
#pragma omp parallel for num_threads(nt) schedule(static) if (b * d->nb >= 65536)
    for (int64_t i = 0; i < (rc ? 0 : b); i++) {
      const float *s = scores + i * d->nb;
      d->rank[q0 + i] = d->t2i ? rank_t2i(s, d->nb, d->txt_image[q0 + i]) : rank_i2t(s, d->nb, d->txt_image, q0 + i);
    }
  }
  embr_free(scores);
  return rc;
}

static int cmp_i64(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return (a > b) - (a < b);
}

/* Recall at each k, mean and median of the ranks >= 1 (the -1 of caption-less images skipped);
 * returns the number of ranks counted, or a negative status. */
static int64_t summarise(const int64_t *rank, int64_t n, const int *ks, int nk, double *recall, double *mean,
                         double *median) {
  int64_t *sorted = embr_alloc(sizeof(int64_t) * (size_t)n), m = 0;
  if (!sorted) return EMBR_ENOMEM;
  double sum = 0;
  for (int64_t i = 0; i < n; i++)
    if (rank[i] >= 1) sorted[m++] = rank[i], sum += (double)rank[i];
  qsort(sorted, (size_t)m, sizeof(int64_t), cmp_i64);
  for (int t = 0; t < nk; t++) {
    int64_t hits = 0;
    for (int64_t i = 0; i < m; i++) hits += sorted[i] <= ks[t];
    recall[t] = m ? (double)hits / (double)m : 0;
  }
  *mean = m ? sum / (double)m : 0;
  *median = m == 0 ? 0 : m % 2 ? (double)sorted[m / 2] : ((double)sorted[m / 2 - 1] + (double)sorted[m / 2]) / 2;
  embr_free(sorted);
  return m;
}

static int check_retrieval_args(const float *img, int64_t n_img, int64_t ld_img, const float *txt, int64_t n_txt,
                                int64_t ld_txt, int64_t dim, const int64_t *txt_image, const int *ks, int nk) {
  const char *fn = "embr_eval_retrieval";
  int rc = embr__eval_check_matrix(fn, img, n_img, dim, ld_img);
  if (!rc) rc = embr__eval_check_matrix(fn, txt, n_txt, dim, ld_txt);
  if (rc) return rc;
  if (!txt_image) return embr_error(EMBR_EINVAL, "%s: txt_image is NULL", fn);
  for (int64_t t = 0; t < n_txt; t++)
    if (txt_image[t] < 0 || txt_image[t] >= n_img)
      return embr_error(EMBR_EINVAL, "%s: caption %lld points at image %lld, expected 0..%lld", fn, (long long)t,
                        (long long)txt_image[t], (long long)n_img - 1);
  if (!ks || nk < 1 || nk > EMBR_EVAL_MAX_K)
    return embr_error(EMBR_EINVAL, "%s: %d cut-offs k, expected 1..%d", fn, ks ? nk : 0, EMBR_EVAL_MAX_K);
  for (int i = 0; i < nk; i++)
    if (ks[i] < 1) return embr_error(EMBR_EINVAL, "%s: ks[%d] = %d, expected >= 1", fn, i, ks[i]);
  if (dim > INT_MAX || n_img > INT_MAX || n_txt > INT_MAX)
    return embr_error(EMBR_EUNSUPPORTED, "%s: more than %d rows or dimensions (the BLAS limit)", fn, INT_MAX);
  return 0;
}

embr_status embr_eval_retrieval(const float *img, int64_t n_img, int64_t ld_img, const float *txt, int64_t n_txt,
                                int64_t ld_txt, int64_t dim, const int64_t *txt_image, const int *ks, int nk,
                                int64_t *t2i_rank, int64_t *i2t_rank, embr_retrieval_result *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_eval_retrieval: out is NULL");
  memset(out, 0, sizeof *out);
  int rc = check_retrieval_args(img, n_img, ld_img, txt, n_txt, ld_txt, dim, txt_image, ks, nk);
  if (rc) return rc;
  int64_t *tr = t2i_rank ? t2i_rank : embr_alloc(sizeof(int64_t) * (size_t)n_txt);
  int64_t *ir = i2t_rank ? i2t_rank : embr_alloc(sizeof(int64_t) * (size_t)n_img);
  rc = tr && ir ? 0 : EMBR_ENOMEM;
  ret_dir t2i = {txt, img, n_txt, ld_txt, n_img, ld_img, dim, txt_image, 1, tr};
  ret_dir i2t = {img, txt, n_img, ld_img, n_txt, ld_txt, dim, txt_image, 0, ir};
  if (!rc) rc = rank_direction(&t2i);
  if (!rc) rc = rank_direction(&i2t);
  int64_t nt = 0, ni = 0;
  if (!rc) nt = summarise(tr, n_txt, ks, nk, out->t2i_recall, &out->t2i_mean_rank, &out->t2i_median_rank);
  if (!rc && nt >= 0) ni = summarise(ir, n_img, ks, nk, out->i2t_recall, &out->i2t_mean_rank, &out->i2t_median_rank);
  if (!rc && (nt < 0 || ni < 0)) rc = EMBR_ENOMEM;
  if (!rc) {
    out->texts = nt;
    out->images = ni;
    out->nk = nk;
    for (int i = 0; i < nk; i++) out->k[i] = ks[i];
  }
  if (tr != t2i_rank) embr_free(tr);
  if (ir != i2t_rank) embr_free(ir);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}
