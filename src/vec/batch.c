/* Exact k-NN of many queries against many base rows, and full distance matrices.
 *
 * The work is cut into tiles of (query block) x (base block). A tile of scores is produced either
 * by cblas_sgemm (L2, IP, cosine: the dot products, turned into scores by a per-row add/multiply
 * during the scan) or by the direct kernels (L1, tiny dims, few queries), and is consumed at once by
 * the fused top-k scan while it is still in cache. Threads take whole query blocks (each with its
 * own single-threaded sgemm), or, when there are too few query blocks to share, slices of the base
 * whose partial results are merged at the end. The k winners of each query are finally recomputed
 * with the direct kernel, which removes the cancellation error of |q|^2 + |b|^2 - 2 q.b from the
 * reported distances and orders them exactly, ties by lower id. */
#include "vec/kernels.h"
#include "core/threads.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Tile shape: a 256 x 1024 float tile is 1 MiB, the L2 of the cores this was tuned on, and is
 * large enough that sgemm's packing of the base block is amortised over many queries. */
enum { KNN_QB = 256, KNN_BB = 1024 };
/* Below this many queries, or below this dimension, sgemm's packing costs more than it saves. */
enum { GEMM_MIN_NQ = 16, GEMM_MIN_DIM = 8 };

typedef struct knn_ctx {
  embr_metric m;
  const float *base;
  int64_t nb, ldb;
  const float *q;
  int64_t nq, ldq, dim;
  int k;
  int use_gemm;
  float alpha;      /* sgemm scale of q.b */
  int negate;       /* direct path: score = -kernel value */
  const float *add; /* per base row, added to the tile value (L2: |b|^2) */
  const float *mul; /* per base row, multiplies (cosine: -1/|b|) */
} knn_ctx;

embr_knn_params embr_knn_params_default(void) {
  embr_knn_params p;
  memset(&p, 0, sizeof p);
  return p;
}

static void fill_tile(const knn_ctx *c, const embr__kernels *kr, int64_t q0, int64_t nqb,
                      int64_t b0, int64_t nbb, float *tile) {
  const float *qp = c->q + q0 * c->ldq;
  const float *bp = c->base + b0 * c->ldb;
  if (c->use_gemm) {
    /* L2: start the tile at |b|^2 and let sgemm accumulate onto it (beta = 1). OpenBLAS makes a
     * zeroing pass over C when beta = 0 anyway, so this costs nothing and spares the scan an add. */
    float beta = 0.0f;
    if (c->add) {
      for (int64_t i = 0; i < nqb; i++) memcpy(tile + i * KNN_BB, c->add + b0, sizeof(float) * (size_t)nbb);
      beta = 1.0f;
    }
    /* Each worker runs its own single-threaded sgemm (OpenBLAS's pool would oversubscribe). The
     * guard spans one tile, not the search, so the progress callback runs outside it. */
    embr__blas_enter(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nqb, (int)nbb, (int)c->dim, c->alpha,
                qp, (int)c->ldq, bp, (int)c->ldb, beta, tile, KNN_BB);
    embr__blas_leave();
    return;
  }
  if (c->m == EMBR_METRIC_L1) {
    kr->l1_block(qp, nqb, c->ldq, bp, nbb, c->ldb, c->dim, tile, KNN_BB);
    return;
  }
  for (int64_t i = 0; i < nqb; i++) {
    float *row = tile + i * KNN_BB;
    if (c->m == EMBR_METRIC_L2)
      kr->l2sq_many(qp + i * c->ldq, bp, nbb, c->ldb, c->dim, row);
    else if (c->m == EMBR_METRIC_COSINE && !c->mul)
      kr->cos_many(qp + i * c->ldq, bp, nbb, c->ldb, c->dim, row);
    else
      kr->dot_many(qp + i * c->ldq, bp, nbb, c->ldb, c->dim, row);
    if (c->negate)
      for (int64_t j = 0; j < nbb; j++) row[j] = -row[j];
  }
}

/* Runs queries [q0, q0+nqb) over base rows [b_lo, b_hi), feeding tk[0..nqb). */
static void run_block(const knn_ctx *c, const embr__kernels *kr, int64_t q0, int64_t nqb,
                      int64_t b_lo, int64_t b_hi, float *tile, embr_topk *tk) {
  for (int64_t b0 = b_lo; b0 < b_hi; b0 += KNN_BB) {
    int64_t nbb = b_hi - b0 < KNN_BB ? b_hi - b0 : KNN_BB;
    fill_tile(c, kr, q0, nqb, b0, nbb, tile);
    const float *add = c->add && !c->use_gemm ? c->add + b0 : NULL; /* gemm folded it in */
    const float *mul = c->mul ? c->mul + b0 : NULL;
    for (int64_t i = 0; i < nqb; i++)
      kr->scan_topk(tile + i * KNN_BB, nbb, add, mul, &tk[i], b0);
  }
}

/* Recomputes the winners of query qi exactly and orders them by (score, id). */
static void rerank(const knn_ctx *c, int64_t qi, float *dist, int64_t *ids) {
  const float *q = c->q + qi * c->ldq;
  int desc = embr_metric_descending(c->m);
  int n = 0;
  while (n < c->k && ids[n] >= 0) n++;
  for (int i = 0; i < n; i++) dist[i] = embr_distance(c->m, q, c->base + ids[i] * c->ldb, c->dim);
  /* Insertion sort: the approximate order is nearly right, so this is close to linear. */
  for (int i = 1; i < n; i++) {
    float d = dist[i];
    int64_t id = ids[i];
    float s = desc ? -d : d;
    int j = i;
    while (j > 0) {
      float sp = desc ? -dist[j - 1] : dist[j - 1];
      if (sp < s || (sp == s && ids[j - 1] < id)) break;
      dist[j] = dist[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    dist[j] = d;
    ids[j] = id;
  }
  float worst = embr_metric_worst(c->m);
  for (int i = n; i < c->k; i++) dist[i] = worst;
}

static int check_args(embr_metric m, const float *base, int64_t nb, int64_t ldb,
                      const float *query, int64_t nq, int64_t ldq, int64_t dim, int k,
                      const float *dist, const int64_t *ids) {
  if ((unsigned)m > EMBR_METRIC_L1) return embr_error(EMBR_EINVAL, "unknown metric %d", (int)m);
  if (dim < 1) return embr_error(EMBR_EINVAL, "dimension must be at least 1 (got %lld)", (long long)dim);
  /* BLAS takes int sizes. */
  if (dim > INT32_MAX || ldb > INT32_MAX || ldq > INT32_MAX || nq > INT32_MAX)
    return embr_error(EMBR_EINVAL, "dimension or leading dimension too large");
  if (k < 1) return embr_error(EMBR_EINVAL, "k must be at least 1 (got %d)", k);
  if (nb < 0 || nq < 0) return embr_error(EMBR_EINVAL, "negative row count");
  if (ldb < dim || ldq < dim)
    return embr_error(EMBR_EINVAL, "leading dimension smaller than the dimension");
  if ((nb > 0 && !base) || (nq > 0 && (!query || !dist || !ids)))
    return embr_error(EMBR_EINVAL, "NULL matrix or output");
  return 0;
}

/* Per-row terms of the scores: |b|^2 for L2 via sgemm, -1/|b| for cosine via sgemm or when the
 * caller cached the norms (0 for a zero row). The direct cosine path without cached norms folds
 * the norm into its single pass instead. */
static int prepare_row_terms(knn_ctx *c, const embr_knn_params *p, int nt, float **owned) {
  *owned = NULL;
  int need = c->m == EMBR_METRIC_L2 ? c->use_gemm
             : c->m == EMBR_METRIC_COSINE ? (c->use_gemm || p->base_norms_sq != NULL)
                                          : 0;
  if (!need) return 0;
  float *v = embr_alloc(sizeof(float) * (size_t)(c->nb ? c->nb : 1));
  if (!v) return EMBR_ENOMEM;
  if (p->base_norms_sq) {
    memcpy(v, p->base_norms_sq, sizeof(float) * (size_t)c->nb);
  } else {
    const embr__kernels *kr = embr__kernels_get();
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < c->nb; i++) v[i] = kr->dot(c->base + i * c->ldb, c->base + i * c->ldb, c->dim);
  }
  if (c->m == EMBR_METRIC_COSINE) {
    for (int64_t i = 0; i < c->nb; i++) v[i] = v[i] > 0 ? -1.0f / sqrtf(v[i]) : 0.0f;
    c->mul = v;
  } else {
    c->add = v;
  }
  *owned = v;
  return 0;
}

static void setup_ctx(knn_ctx *c, embr_metric m, int64_t nq, int64_t dim) {
  c->use_gemm = m != EMBR_METRIC_L1 && nq >= GEMM_MIN_NQ && dim >= GEMM_MIN_DIM;
  c->alpha = m == EMBR_METRIC_L2 ? -2.0f : m == EMBR_METRIC_IP ? -1.0f : 1.0f;
  c->add = c->mul = NULL;
}

typedef struct knn_shared {
  int failed;           /* first error status, 0 while all is well */
  int canceled;
  int64_t done;         /* query-slices finished */
  embr_progress_state prog;
  int slices;
} knn_shared;

/* One worker's scratch: a score tile and one top-k per query of a block. */
typedef struct knn_scratch {
  float *tile;
  embr_topk tk[KNN_QB];
  int ntk;
} knn_scratch;

static void scratch_free(knn_scratch *s) {
  embr_free(s->tile);
  for (int i = 0; i < s->ntk; i++) embr_topk_free(&s->tk[i]);
  s->ntk = 0;
  s->tile = NULL;
}

static int scratch_init(knn_scratch *s, int k, int64_t qb) {
  s->ntk = 0;
  s->tile = embr_alloc(sizeof(float) * KNN_QB * KNN_BB);
  if (!s->tile) return EMBR_ENOMEM;
  for (int64_t i = 0; i < qb; i++) {
    if (embr_topk_init(&s->tk[i], k)) {
      scratch_free(s);
      return EMBR_ENOMEM;
    }
    s->ntk++;
  }
  return 0;
}

static void note_progress(knn_shared *sh, int64_t units) {
#pragma omp critical(embr_knn_progress)
  {
    sh->done += units;
    if (embr_progress_update(&sh->prog, (uint64_t)(sh->done / sh->slices), NULL, 0)) {
#pragma omp atomic write
      sh->canceled = 1;
    }
  }
}

embr_status embr_knn(embr_metric m, const float *base, int64_t nb, int64_t ldb, const float *query,
                     int64_t nq, int64_t ldq, int64_t dim, int k, float *dist, int64_t *ids,
                     const embr_knn_params *params) {
  int rc = check_args(m, base, nb, ldb, query, nq, ldq, dim, k, dist, ids);
  if (rc) return rc;
  embr_knn_params defaults = embr_knn_params_default();
  const embr_knn_params *p = params ? params : &defaults;
  if (nq == 0) return 0;

  knn_ctx c = {m, base, nb, ldb, query, nq, ldq, dim, k, 0, 0, 0, NULL, NULL};
  setup_ctx(&c, m, nq, dim);
  int nt = embr_threads_resolve(p->n_threads);
  float *owned = NULL;
  if ((rc = prepare_row_terms(&c, p, nt, &owned))) return rc;
  /* Direct path: L2 and L1 are already "smaller is better"; IP and the fused cosine score are
   * negated (with cached norms, cosine instead multiplies q.b by -1/|b| in the scan). */
  c.negate = !c.use_gemm && (m == EMBR_METRIC_IP || (m == EMBR_METRIC_COSINE && !c.mul));

  int64_t qb = nq < KNN_QB ? nq : KNN_QB;
  int64_t nqb = (nq + qb - 1) / qb;
  /* Too few query blocks to keep every thread busy: split the base instead. */
  int slices = (nqb >= 2 * (int64_t)nt || nt == 1 || nb < 2 * KNN_BB) ? 1 : nt;
  float *part_s = NULL;
  int64_t *part_i = NULL;
  if (slices > 1) {
    size_t cnt;
    if ((rc = embr_size_mul((size_t)nq * (size_t)slices, (size_t)k, &cnt))) goto done;
    part_s = embr_alloc(cnt * sizeof(float));
    part_i = embr_alloc(cnt * sizeof(int64_t));
    if (!part_s || !part_i) {
      rc = EMBR_ENOMEM;
      goto done;
    }
  }

  knn_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.slices = slices;
  embr_progress_begin(&sh.prog, &p->progress, (uint64_t)nq);
  const embr__kernels *kr = embr__kernels_get();
  int64_t ntasks = nqb * slices;

#pragma omp parallel num_threads(nt)
  {
    knn_scratch scr;
    int mine = scratch_init(&scr, k, qb);
    if (mine) {
#pragma omp atomic write
      sh.failed = mine;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntasks; t++) {
      int failed, canceled;
#pragma omp atomic read
      failed = sh.failed;
#pragma omp atomic read
      canceled = sh.canceled;
      if (failed || canceled || mine) continue;
      int64_t blk = t / slices, s = t % slices;
      int64_t q0 = blk * qb, nqh = nq - q0 < qb ? nq - q0 : qb;
      int64_t b_lo = nb * s / slices, b_hi = nb * (s + 1) / slices;
      for (int64_t i = 0; i < nqh; i++) embr_topk_reset(&scr.tk[i]);
      run_block(&c, kr, q0, nqh, b_lo, b_hi, scr.tile, scr.tk);
      for (int64_t i = 0; i < nqh; i++) {
        int64_t qi = q0 + i;
        if (slices == 1) {
          embr_topk_result(&scr.tk[i], dist + qi * k, ids + qi * k, 0.0f);
          rerank(&c, qi, dist + qi * k, ids + qi * k);
        } else {
          size_t off = ((size_t)qi * (size_t)slices + (size_t)s) * (size_t)k;
          embr_topk_result(&scr.tk[i], part_s + off, part_i + off, INFINITY);
        }
      }
      note_progress(&sh, nqh);
    }
    /* Merge the slices' partial lists (the scores are comparable: same formula per row). */
    if (slices > 1) {
#pragma omp for schedule(static)
      for (int64_t qi = 0; qi < nq; qi++) {
        int failed, canceled;
#pragma omp atomic read
        failed = sh.failed;
#pragma omp atomic read
        canceled = sh.canceled;
        if (failed || canceled || mine) continue;
        embr_topk *t = &scr.tk[0];
        embr_topk_reset(t);
        size_t off = (size_t)qi * (size_t)slices * (size_t)k;
        for (size_t j = 0; j < (size_t)slices * (size_t)k; j++)
          if (part_i[off + j] >= 0) embr_topk_push(t, part_s[off + j], part_i[off + j]);
        embr_topk_result(t, dist + qi * k, ids + qi * k, 0.0f);
        rerank(&c, qi, dist + qi * k, ids + qi * k);
      }
    }
    if (!mine) scratch_free(&scr);
  }
  if (sh.failed)
    rc = sh.failed;
  else if (sh.canceled)
    rc = embr_error(EMBR_ECANCELED, "search canceled");
  else
    embr_progress_update(&sh.prog, (uint64_t)nq, NULL, 1);

done:
  embr_free(part_s);
  embr_free(part_i);
  embr_free(owned);
  return rc;
}

/* ---- full distance matrices ---------------------------------------------------------------- */

static void finish_gemm_rows(embr_metric m, const float *qn, const float *bn, int64_t nq,
                             int64_t nb, float *out, int64_t ldo) {
  for (int64_t i = 0; i < nq; i++) {
    float *row = out + i * ldo;
    if (m == EMBR_METRIC_L2) {
      for (int64_t j = 0; j < nb; j++) {
        float d = qn[i] + bn[j] + row[j];
        row[j] = d > 0 ? d : 0.0f; /* cancellation can dip below zero */
      }
    } else if (m == EMBR_METRIC_COSINE) {
      for (int64_t j = 0; j < nb; j++)
        row[j] = (qn[i] > 0 && bn[j] > 0) ? row[j] / (sqrtf(qn[i]) * sqrtf(bn[j])) : 0.0f;
    }
  }
}

embr_status embr_distance_matrix(embr_metric m, const float *q, int64_t nq, int64_t ldq, const float *base,
                                 int64_t nb, int64_t ldb, int64_t dim, float *out, int64_t ldo,
                                 int n_threads) {
  float dummy_d = 0;
  int64_t dummy_i = 0;
  int rc = check_args(m, base, nb, ldb, q, nq, ldq, dim, 1, &dummy_d, &dummy_i);
  if (rc) return rc;
  if (nq > 0 && nb > 0 && (!out || ldo < nb))
    return embr_error(EMBR_EINVAL, "output NULL or its leading dimension is smaller than nb");
  if (nq == 0 || nb == 0) return 0;
  int nt = embr_threads_resolve(n_threads);
  if (m == EMBR_METRIC_L1) {
    const embr__kernels *kr = embr__kernels_get();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t i = 0; i < nq; i += 4) {
      int64_t n = nq - i < 4 ? nq - i : 4;
      kr->l1_block(q + i * ldq, n, ldq, base, nb, ldb, dim, out + i * ldo, ldo);
    }
    return 0;
  }
  float *qn = NULL, *bn = NULL;
  if (m != EMBR_METRIC_IP) {
    qn = embr_alloc(sizeof(float) * (size_t)nq);
    bn = embr_alloc(sizeof(float) * (size_t)nb);
    if (!qn || !bn) {
      embr_free(qn);
      embr_free(bn);
      return EMBR_ENOMEM;
    }
    embr_norms_sq(q, nq, ldq, dim, qn);
    embr_norms_sq(base, nb, ldb, dim, bn);
  }
  embr__blas_enter(nt);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nb, (int)dim,
              m == EMBR_METRIC_L2 ? -2.0f : 1.0f, q, (int)ldq, base, (int)ldb, 0.0f, out, (int)ldo);
  embr__blas_leave();
  finish_gemm_rows(m, qn, bn, nq, nb, out, ldo);
  embr_free(qn);
  embr_free(bn);
  return 0;
}
