/* Evaluation protocols: verification over pairs (k-fold accuracy, ROC AUC, TAR at FAR) and
 * identification (gallery/probe recall@k). See include/embr/evaluate.h for the contract.
 *
 * Verification sorts the pair scores once; every figure is then one walk over the sorted scores:
 * a fold's threshold search skips the fold's own pairs, so k folds cost O(P log P + k P), never
 * O(P^2). Scores are computed in double so that thresholds and ties do not depend on the order of
 * float accumulation. */
#include "embr/evaluate.h"
#include "core/threads.h"
#include "train/evaluate_internal.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- input checks ----------------------------------------------------------------------------- */

int embr__eval_check_matrix(const char *fn, const float *emb, int64_t n, int64_t dim, int64_t ld) {
  if (!emb) return embr_error(EMBR_EINVAL, "%s: embeddings are NULL", fn);
  if (n < 1) return embr_error(EMBR_EINVAL, "%s: n = %lld, expected >= 1", fn, (long long)n);
  if (dim < 1) return embr_error(EMBR_EINVAL, "%s: dim = %lld, expected >= 1", fn, (long long)dim);
  if (ld < dim)
    return embr_error(EMBR_EINVAL, "%s: ld = %lld is smaller than dim = %lld", fn, (long long)ld,
                      (long long)dim);
  size_t last = 0;
  if (embr_size_muladd((size_t)(n - 1), (size_t)ld, (size_t)dim, &last) != 0) return EMBR_ENOMEM;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < dim; j++)
      if (!isfinite(emb[i * ld + j]))
        return embr_error(EMBR_EVALUE, "%s: embedding row %lld, column %lld is not finite", fn,
                          (long long)i, (long long)j);
  return 0;
}

static int check_labels(const char *fn, const int32_t *labels, int64_t n) {
  if (!labels) return embr_error(EMBR_EINVAL, "%s: labels are NULL", fn);
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0)
      return embr_error(EMBR_EINVAL, "%s: label of row %lld is %d, expected >= 0", fn, (long long)i,
                        (int)labels[i]);
  return 0;
}

/* Checks the pairs against n rows and counts the positives; both classes must occur. */
static int check_pairs(const embr_pairs *p, int64_t n, int64_t *positives) {
  const char *fn = "embr_eval_verify";
  if (!p) return embr_error(EMBR_EINVAL, "%s: pairs are NULL", fn);
  if (p->n < 1) return embr_error(EMBR_EINVAL, "%s: no pairs (n = %lld)", fn, (long long)p->n);
  if (!p->a || !p->b || !p->same) return embr_error(EMBR_EINVAL, "%s: pairs have a NULL array", fn);
  int64_t pos = 0;
  for (int64_t i = 0; i < p->n; i++) {
    if (p->a[i] < 0 || p->a[i] >= n || p->b[i] < 0 || p->b[i] >= n)
      return embr_error(EMBR_EINVAL, "%s: pair %lld is (%lld, %lld), rows must be in [0, %lld)", fn,
                        (long long)i, (long long)p->a[i], (long long)p->b[i], (long long)n);
    if (p->same[i] > 1)
      return embr_error(EMBR_EINVAL, "%s: pair %lld has same = %d, expected 0 or 1", fn,
                        (long long)i, (int)p->same[i]);
    pos += p->same[i];
  }
  if (pos == 0) return embr_error(EMBR_EINVAL, "%s: no positive (same) pairs", fn);
  if (pos == p->n) return embr_error(EMBR_EINVAL, "%s: no negative (different) pairs", fn);
  *positives = pos;
  return 0;
}

/* ---- cosine scores ----------------------------------------------------------------------------- */

/* 1/|row| for every row; 0 for a zero row, which then scores 0 against everything. */
static double *inverse_norms(const float *emb, int64_t n, int64_t dim, int64_t ld) {
  double *inv = embr_alloc(sizeof *inv * (size_t)n);
  if (!inv) return NULL;
  for (int64_t i = 0; i < n; i++) {
    double ss = 0;
    for (int64_t j = 0; j < dim; j++) ss += (double)emb[i * ld + j] * emb[i * ld + j];
    inv[i] = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
  }
  return inv;
}

/* Double-precision dot product; four accumulators so the additions pipeline. */
static double dot_d(const float *x, const float *y, int64_t dim) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4) {
    s0 += (double)x[j] * y[j];
    s1 += (double)x[j + 1] * y[j + 1];
    s2 += (double)x[j + 2] * y[j + 2];
    s3 += (double)x[j + 3] * y[j + 3];
  }
  for (; j < dim; j++) s0 += (double)x[j] * y[j];
  return (s0 + s1) + (s2 + s3);
}

/* One pair as the sweeps see it: its score, label and fold. */
typedef struct scored {
  double s;
  int32_t fold;
  uint8_t same;
} scored;

static void score_pairs(scored *v, const float *emb, int64_t dim, int64_t ld, const double *inv,
                        const embr_pairs *p) {
  /* Each score is independent, so the result does not depend on the thread count. */
#pragma omp parallel for num_threads(embr_threads_resolve(0)) schedule(static) if (p->n >= 4096)
  for (int64_t i = 0; i < p->n; i++) {
    int64_t a = p->a[i], b = p->b[i];
    v[i].s = dot_d(emb + a * ld, emb + b * ld, dim) * inv[a] * inv[b];
    v[i].same = p->same[i];
  }
}

/* Pair i joins fold g[i]: g starts as the contiguous fold labels 0..0 1..1 ... (sizes P/folds, the
 * first P%folds folds one larger) and is Fisher-Yates shuffled (i = P-1 down to 1, swap with
 * embr_rng_below(i+1)) from embr_rng_seed(seed). This equals contiguous folds of shuffled pairs. */
static void assign_folds(scored *v, int64_t P, int folds, uint64_t seed) {
  int64_t i = 0;
  for (int f = 0; f < folds; f++) {
    int64_t size = P / folds + (f < P % folds);
    for (int64_t j = 0; j < size; j++) v[i++].fold = f;
  }
  embr_rng rng;
  embr_rng_seed(&rng, seed);
  for (i = P - 1; i > 0; i--) {
    int64_t j = (int64_t)embr_rng_below(&rng, (uint64_t)i + 1);
    int32_t t = v[i].fold;
    v[i].fold = v[j].fold;
    v[j].fold = t;
  }
}

/* ---- sorting by score (introsort: in place, O(P log P) worst case; order among equal scores is
 * irrelevant because every sweep treats a run of equal scores as one group) -------------------- */

static void swap_sc(scored *a, scored *b) {
  scored t = *a;
  *a = *b;
  *b = t;
}

static void insertion_sort(scored *v, int64_t n) {
  for (int64_t i = 1; i < n; i++) {
    scored x = v[i];
    int64_t j = i;
    for (; j > 0 && v[j - 1].s > x.s; j--) v[j] = v[j - 1];
    v[j] = x;
  }
}

static void sift_down(scored *v, int64_t root, int64_t n) {
  for (int64_t c; (c = 2 * root + 1) < n; root = c) {
    if (c + 1 < n && v[c + 1].s > v[c].s) c++;
    if (!(v[c].s > v[root].s)) return;
    swap_sc(&v[root], &v[c]);
  }
}

static void heap_sort(scored *v, int64_t n) {
  for (int64_t i = n / 2; i-- > 0;) sift_down(v, i, n);
  for (int64_t i = n - 1; i > 0; i--) {
    swap_sc(&v[0], &v[i]);
    sift_down(v, 0, i);
  }
}

/* Hoare partition around the median of first, middle and last: returns j with v[0..j] <= pivot
 * <= v[j+1..n), both sides non-empty (n >= 3). */
static int64_t partition(scored *v, int64_t n) {
  int64_t m = n / 2;
  if (v[m].s < v[0].s) swap_sc(&v[m], &v[0]);
  if (v[n - 1].s < v[0].s) swap_sc(&v[n - 1], &v[0]);
  if (v[n - 1].s < v[m].s) swap_sc(&v[n - 1], &v[m]);
  double pivot = v[m].s;
  int64_t i = -1, j = n;
  for (;;) {
    do i++; while (v[i].s < pivot);
    do j--; while (v[j].s > pivot);
    if (i >= j) return j;
    swap_sc(&v[i], &v[j]);
  }
}

static void intro_sort(scored *v, int64_t n, int depth) {
  while (n > 16) {
    if (depth-- == 0) {
      heap_sort(v, n);
      return;
    }
    int64_t j = partition(v, n) + 1;
    /* Recurse into the smaller side, loop on the larger: stack depth O(log n). */
    if (j < n - j) {
      intro_sort(v, j, depth);
      v += j;
      n -= j;
    } else {
      intro_sort(v + j, n - j, depth);
      n = j;
    }
  }
  insertion_sort(v, n);
}

static void sort_scores(scored *v, int64_t n) {
  int depth = 0;
  for (int64_t m = n; m > 1; m >>= 1) depth += 2;
  intro_sort(v, n, depth);
}

/* ---- verification figures on the sorted scores ----------------------------------------------- */

/* ROC AUC as the rank statistic: the share of (positive, negative) pairs ordered correctly, a tie
 * counting 1/2. Counted doubled in integers, so it is exact until the final division. */
static double auc_sorted(const scored *v, int64_t P, int64_t pos) {
  uint64_t twice = 0, neg_below = 0;
  for (int64_t i = 0; i < P;) {
    uint64_t gp = 0, gn = 0;
    int64_t j = i;
    for (; j < P && v[j].s == v[i].s; j++) {
      gp += v[j].same;
      gn += !v[j].same;
    }
    twice += gp * (2 * neg_below + gn);
    neg_below += gn;
    i = j;
  }
  return (double)twice / (2.0 * (double)pos * (double)(P - pos));
}

/* Largest share of positives accepted while the share of negatives accepted stays <= far. The
 * accepted set grows from the top score down one run of equal scores at a time (a threshold can
 * not split a run), so FAR only grows and the walk stops at the first run that exceeds it. */
static double tar_sorted(const scored *v, int64_t P, int64_t pos, double far) {
  int64_t neg = P - pos, acc_pos = 0, acc_neg = 0;
  double tar = 0;
  for (int64_t i = P - 1; i >= 0;) {
    int64_t j = i;
    for (; j >= 0 && v[j].s == v[i].s; j--) {
      acc_pos += v[j].same;
      acc_neg += !v[j].same;
    }
    if ((double)acc_neg / (double)neg > far) break;
    tar = (double)acc_pos / (double)pos;
    i = j;
  }
  return tar;
}

static int64_t next_train(const scored *v, int64_t P, int64_t i, int32_t fold) {
  while (i < P && v[i].fold == fold) i++;
  return i;
}

/* A threshold t with lo <= t < hi, so that "score > t" accepts exactly the scores >= hi: the
 * midpoint, or lo itself when the midpoint rounds up to hi (adjacent doubles). */
static double midpoint(double lo, double hi) {
  double t = lo + (hi - lo) / 2;
  return t < hi ? t : lo;
}

/* The threshold maximising accuracy on the pairs outside `fold` ("same" means score > t), the
 * lowest one on ties. Candidates: below every training score, the midpoints between consecutive
 * distinct training scores, above every training score. pos_train: positives outside the fold. */
static double fold_threshold(const scored *v, int64_t P, int32_t fold, int64_t pos_train) {
  int64_t i = next_train(v, P, 0, fold); /* < P: with >= 2 folds every fold leaves pairs out */
  double best_t = nextafter(v[i].s, -INFINITY);
  int64_t correct = pos_train, best = correct; /* accepting all: the positives are right */
  while (i < P) {
    double s = v[i].s;
    int64_t j = i;
    for (; j < P && v[j].s == s; j++)
      if (v[j].fold != fold) correct += v[j].same ? -1 : 1; /* this run is now rejected */
    i = next_train(v, P, j, fold);
    double t = i < P ? midpoint(s, v[i].s) : nextafter(s, INFINITY);
    if (correct > best) {
      best = correct;
      best_t = t;
    }
  }
  return best_t;
}

static double fold_accuracy(const scored *v, int64_t P, int32_t fold, double t) {
  int64_t right = 0, size = 0;
  for (int64_t i = 0; i < P; i++)
    if (v[i].fold == fold) {
      size++;
      right += (v[i].s > t) == (v[i].same != 0);
    }
  return (double)right / (double)size;
}

/* Per fold: threshold from the other folds, accuracy on this one; mean, population standard
 * deviation (as the LFW protocol reports it) and mean threshold into out. */
static int cross_validate(const scored *v, int64_t P, int folds, int64_t pos,
                          embr_verify_result *out) {
  int64_t *fold_pos = embr_calloc((size_t)folds, sizeof *fold_pos);
  double *acc = embr_calloc((size_t)folds, sizeof *acc);
  if (!fold_pos || !acc) {
    embr_free(fold_pos);
    embr_free(acc);
    return EMBR_ENOMEM;
  }
  for (int64_t i = 0; i < P; i++) fold_pos[v[i].fold] += v[i].same;
  double sum = 0, sum_t = 0, var = 0;
  for (int f = 0; f < folds; f++) {
    double t = fold_threshold(v, P, f, pos - fold_pos[f]);
    acc[f] = fold_accuracy(v, P, f, t);
    sum += acc[f];
    sum_t += t;
  }
  double mean = sum / folds;
  for (int f = 0; f < folds; f++) var += (acc[f] - mean) * (acc[f] - mean);
  out->accuracy = mean;
  out->accuracy_std = sqrt(var / folds);
  out->threshold = sum_t / folds;
  embr_free(fold_pos);
  embr_free(acc);
  return 0;
}

static int check_verify_args(const float *emb, int64_t n, int64_t dim, int64_t ld,
                             const embr_pairs *pairs, int folds, double far, int64_t *pos) {
  const char *fn = "embr_eval_verify";
  int rc = embr__eval_check_matrix(fn, emb, n, dim, ld);
  if (!rc) rc = check_pairs(pairs, n, pos);
  if (rc) return rc;
  if (folds < 2 || folds > pairs->n)
    return embr_error(EMBR_EINVAL, "%s: folds = %d, expected 2..%lld (the number of pairs)", fn,
                      folds, (long long)pairs->n);
  if (!(far >= 0 && far <= 1))
    return embr_error(EMBR_EINVAL, "%s: far = %g, expected a rate in [0, 1]", fn, far);
  return 0;
}

embr_status embr_eval_verify(const float *emb, int64_t n, int64_t dim, int64_t ld, const embr_pairs *pairs,
                             int folds, double far, uint64_t seed, embr_verify_result *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_eval_verify: out is NULL");
  memset(out, 0, sizeof *out);
  int64_t pos = 0;
  int rc = check_verify_args(emb, n, dim, ld, pairs, folds, far, &pos);
  if (rc) return rc;
  int64_t P = pairs->n;
  size_t bytes = 0;
  if (embr_size_mul((size_t)P, sizeof(scored), &bytes) != 0) return EMBR_ENOMEM;
  scored *v = embr_alloc(bytes);
  double *inv = inverse_norms(emb, n, dim, ld);
  if (!v || !inv) {
    embr_free(v);
    embr_free(inv);
    return EMBR_ENOMEM;
  }
  score_pairs(v, emb, dim, ld, inv, pairs);
  embr_free(inv);
  assign_folds(v, P, folds, seed);
  sort_scores(v, P);
  out->pairs = P;
  out->positives = pos;
  out->auc = auc_sorted(v, P, pos);
  out->far = far;
  out->tar = tar_sorted(v, P, pos, far);
  rc = cross_validate(v, P, folds, pos, out);
  embr_free(v);
  return rc;
}

/* ---- identification ------------------------------------------------------------------------------ */

typedef struct row_label {
  int32_t label;
  int64_t row;
} row_label;

static int by_label_then_row(const void *x, const void *y) {
  const row_label *a = x, *b = y;
  if (a->label != b->label) return a->label < b->label ? -1 : 1;
  return (a->row > b->row) - (a->row < b->row);
}

/* Marks the first `per_class` rows (in row order) of every class as gallery; returns their count
 * or a negative status. */
static int64_t mark_gallery(const int32_t *labels, int64_t n, int per_class, uint8_t *gallery) {
  row_label *rl = embr_alloc(sizeof *rl * (size_t)n);
  if (!rl) return EMBR_ENOMEM;
  for (int64_t i = 0; i < n; i++) rl[i] = (row_label){labels[i], i};
  qsort(rl, (size_t)n, sizeof *rl, by_label_then_row);
  int64_t count = 0, in_class = 0;
  for (int64_t i = 0; i < n; i++) {
    in_class = i > 0 && rl[i].label == rl[i - 1].label ? in_class + 1 : 0;
    gallery[rl[i].row] = in_class < per_class;
    count += gallery[rl[i].row];
  }
  embr_free(rl);
  return count;
}

/* Row i of emb scaled to unit length into dst (zeros for a zero row). */
static void normalise_row(const float *x, int64_t dim, float *dst) {
  double ss = 0;
  for (int64_t j = 0; j < dim; j++) ss += (double)x[j] * x[j];
  double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
  for (int64_t j = 0; j < dim; j++) dst[j] = (float)(x[j] * inv);
}

/* Where the probe's identity first appears in its ranking of the gallery (descending score, ties
 * to the lower row): the number of gallery rows ranked above its best same-class row. Gallery
 * rows are in row order, so a lower index is a lower row. Every probe's class has gallery rows. */
static int64_t probe_rank(const float *s, const int32_t *glabel, int64_t G, int32_t label) {
  int64_t best = -1;
  for (int64_t g = 0; g < G; g++)
    if (glabel[g] == label && (best < 0 || s[g] > s[best])) best = g;
  int64_t rank = 0;
  for (int64_t g = 0; g < G; g++) rank += s[g] > s[best] || (s[g] == s[best] && g < best);
  return rank;
}

typedef struct id_job {
  const float *emb;
  int64_t n, dim, ld;
  const int32_t *labels;
  const uint8_t *is_gallery;
  int64_t G, Q;
  float *gallery;   /* G x dim, unit rows */
  int32_t *glabel;  /* G */
  float *probes;    /* block x dim */
  int64_t *pidx;    /* row of every probe, Q */
  float *scores;    /* block x G */
  int64_t *rank;    /* block */
  int64_t block;
} id_job;

static void id_job_free(id_job *j) {
  embr_free(j->gallery);
  embr_free(j->glabel);
  embr_free(j->probes);
  embr_free(j->pidx);
  embr_free(j->scores);
  embr_free(j->rank);
}

/* Probe rows per sgemm: the score block stays near 16 MB whatever the gallery size. */
static int64_t block_rows(int64_t G, int64_t Q) {
  int64_t b = ((int64_t)1 << 22) / G;
  if (b > 1024) b = 1024;
  if (b > Q) b = Q;
  return b < 1 ? 1 : b;
}

static int id_job_alloc(id_job *j) {
  size_t gbytes = 0, pbytes = 0, sbytes = 0;
  j->block = block_rows(j->G, j->Q);
  if (embr_size_mul((size_t)j->G, (size_t)j->dim * sizeof(float), &gbytes) ||
      embr_size_mul((size_t)j->block, (size_t)j->dim * sizeof(float), &pbytes) ||
      embr_size_mul((size_t)j->block, (size_t)j->G * sizeof(float), &sbytes))
    return EMBR_ENOMEM;
  j->gallery = embr_alloc(gbytes);
  j->glabel = embr_alloc(sizeof *j->glabel * (size_t)j->G);
  j->probes = embr_alloc(pbytes);
  j->pidx = embr_alloc(sizeof *j->pidx * (size_t)j->Q);
  j->scores = embr_alloc(sbytes);
  j->rank = embr_alloc(sizeof *j->rank * (size_t)j->block);
  if (!j->gallery || !j->glabel || !j->probes || !j->pidx || !j->scores || !j->rank)
    return EMBR_ENOMEM;
  int64_t g = 0, q = 0;
  for (int64_t i = 0; i < j->n; i++) {
    if (j->is_gallery[i]) {
      normalise_row(j->emb + i * j->ld, j->dim, j->gallery + g * j->dim);
      j->glabel[g++] = j->labels[i];
    } else {
      j->pidx[q++] = i;
    }
  }
  return 0;
}

/* Ranks of probes [q0, q0 + b) into j->rank, through one probe x gallery sgemm. */
static void rank_block(id_job *j, int64_t q0, int64_t b) {
  for (int64_t i = 0; i < b; i++)
    normalise_row(j->emb + j->pidx[q0 + i] * j->ld, j->dim, j->probes + i * j->dim);
  int nt = embr_threads_resolve(0); /* the protocols take no thread count: all cores */
  embr__blas_enter(nt);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)j->G, (int)j->dim, 1.0f,
              j->probes, (int)j->dim, j->gallery, (int)j->dim, 0.0f, j->scores, (int)j->G);
  embr__blas_leave();
#pragma omp parallel for num_threads(nt) schedule(static) if (b * j->G >= 65536)
  for (int64_t i = 0; i < b; i++)
    j->rank[i] = probe_rank(j->scores + i * j->G, j->glabel, j->G, j->labels[j->pidx[q0 + i]]);
}

static int check_identify_args(const float *emb, int64_t n, int64_t dim, int64_t ld,
                               const int32_t *labels, int gallery_per_class, const int *ks, int nk) {
  const char *fn = "embr_eval_identify";
  int rc = embr__eval_check_matrix(fn, emb, n, dim, ld);
  if (!rc) rc = check_labels(fn, labels, n);
  if (rc) return rc;
  if (gallery_per_class < 1)
    return embr_error(EMBR_EINVAL, "%s: gallery_per_class = %d, expected >= 1", fn,
                      gallery_per_class);
  if (!ks) return embr_error(EMBR_EINVAL, "%s: ks is NULL", fn);
  if (nk < 1 || nk > EMBR_EVAL_MAX_K)
    return embr_error(EMBR_EINVAL, "%s: nk = %d, expected 1..%d", fn, nk, EMBR_EVAL_MAX_K);
  for (int i = 0; i < nk; i++)
    if (ks[i] < 1) return embr_error(EMBR_EINVAL, "%s: ks[%d] = %d, expected >= 1", fn, i, ks[i]);
  if (dim > INT_MAX)
    return embr_error(EMBR_EUNSUPPORTED, "%s: dim = %lld exceeds the BLAS limit %d", fn,
                      (long long)dim, INT_MAX);
  return 0;
}

/* Splits rows into gallery and probes; fails when there is nothing to evaluate. */
static int split_rows(id_job *j, int per_class) {
  const char *fn = "embr_eval_identify";
  uint8_t *is_gallery = embr_alloc((size_t)j->n);
  if (!is_gallery) return EMBR_ENOMEM;
  j->is_gallery = is_gallery;
  int64_t G = mark_gallery(j->labels, j->n, per_class, is_gallery);
  if (G < 0) return (int)G;
  j->G = G;
  j->Q = j->n - G;
  if (j->Q == 0)
    return embr_error(EMBR_EINVAL, "%s: no probes: no class has more than %d rows", fn, per_class);
  if (G > INT_MAX)
    return embr_error(EMBR_EUNSUPPORTED, "%s: a gallery of %lld rows exceeds the BLAS limit %d",
                      fn, (long long)G, INT_MAX);
  return 0;
}

static void identify_fill(const int64_t *hits, int64_t hits1, const int *ks, int nk, const id_job *j,
                          embr_identify_result *out) {
  out->gallery = j->G;
  out->probes = j->Q;
  out->nk = nk;
  for (int i = 0; i < nk; i++) {
    out->k[i] = ks[i];
    out->recall[i] = (double)hits[i] / (double)j->Q;
  }
  out->rank1 = (double)hits1 / (double)j->Q;
}

embr_status embr_eval_identify(const float *emb, int64_t n, int64_t dim, int64_t ld, const int32_t *labels,
                               int gallery_per_class, const int *ks, int nk, embr_identify_result *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_eval_identify: out is NULL");
  memset(out, 0, sizeof *out);
  int rc = check_identify_args(emb, n, dim, ld, labels, gallery_per_class, ks, nk);
  if (rc) return rc;
  id_job j = {.emb = emb, .n = n, .dim = dim, .ld = ld, .labels = labels};
  rc = split_rows(&j, gallery_per_class);
  if (!rc) rc = id_job_alloc(&j);
  if (!rc) {
    int64_t hits[EMBR_EVAL_MAX_K] = {0}, hits1 = 0;
    for (int64_t q0 = 0; q0 < j.Q; q0 += j.block) {
      int64_t b = j.Q - q0 < j.block ? j.Q - q0 : j.block;
      rank_block(&j, q0, b);
      for (int64_t i = 0; i < b; i++) {
        hits1 += j.rank[i] < 1;
        for (int t = 0; t < nk; t++) hits[t] += j.rank[i] < ks[t];
      }
    }
    identify_fill(hits, hits1, ks, nk, &j, out);
  }
  id_job_free(&j);
  embr_free((void *)j.is_gallery);
  return rc;
}
