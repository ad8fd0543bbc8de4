/* Inverted-file indexes: "ivfflat" and "ivfpq" (one implementation, the PQ parts switched on).
 *
 * A k-means coarse quantizer cuts the space into nlist cells; each cell keeps an inverted list of
 * its items (ids, and the vectors themselves for IVF-Flat or the m-byte PQ codes of the residuals
 * x - centroid for IVF-PQ). A search visits the nprobe cells whose centroids are nearest to the
 * query (one batched embr_knn over all queries of a chunk), then scans their lists into a top-k.
 *
 * IVF-PQ scores a code from tables of m x 256 partial distances. For L2 the table of a probed cell
 * is |q - c|^2 + sum_j (|s_jb|^2 + 2 c_j.s_jb) - 2 q_j.s_jb: the middle term depends only on the
 * cell and is precomputed (when it fits EMBR__IVFPQ_TERM_MAX), the last only on the query,
 * so a probe costs m x 256 subtractions instead of a pass over the codebooks. For inner product
 * q.(c + r) = q.c + sum_j q_j.r_j: one table per query, one dot product per probe. Cosine indexes
 * hold unit vectors and score codes by L2 (see pq_metric). refine=R keeps the raw vectors and
 * re-ranks the best R*k codes exactly.
 *
 * Cells are Voronoi cells of L2 k-means for every metric; inner-product indexes probe the cells
 * with the largest q.c (the best items of a cell score q.c + q.r), the others the nearest in L2.
 * Items are located by an id map to (list, position); removal swaps the list's last item into
 * the hole. Files hold the lists concatenated; loading copies everything (nothing points into
 * the caller's buffer afterwards, mapped or not). */
#include "index/index_internal.h"

#include "index/kmeans.h"
#include "index/pq.h"
#include "vec/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOC(list, pos) (((int64_t)(list) << 32) | (int64_t)(pos))
#define LOC_LIST(loc) ((loc) >> 32)
#define LOC_POS(loc) ((loc) & 0xffffffff)

enum {
  MAX_NLIST = 1 << 20,
  MAX_REFINE = 1000,
  COARSE_ITERS = 20,    /* k-means iterations of the coarse quantizer */
  PQ_TRAIN_MAX = 65536, /* residuals the codebooks learn from */
  ADD_CHUNK = 65536,    /* vectors assigned and encoded per batch */
  QUERY_CHUNK = 1024,   /* queries probed per batch (bounds the probe lists) */
  SCAN_BLOCK = 256,     /* list items scored per kernel call */
  /* The precomputed L2 terms cost a full query table up front and save about a third of each
   * probe's table (which streams 1 KB per sub-quantizer from memory): below this many probes
   * building tables from the residual was faster (100k x 64, m=16: 64k vs 58k q/s at nprobe 4,
   * 37k vs 40k at 8; 1.6x faster with them at 64). */
  TERM_MIN_NPROBE = 6,
  FILE_VERSION = 1
};
static const uint64_t COARSE_SEED = 1234, PQ_SEED = 4321;

typedef struct ivf_list {
  int64_t n, cap;
  int64_t *ids;
  uint8_t *codes; /* n x m (IVF-PQ) */
  float *vecs;    /* n x dim (IVF-Flat, or IVF-PQ with refine) */
} ivf_list;

typedef struct ivf {
  int is_pq, nprobe, m, refine;
  int raw;          /* keeps the vectors */
  int trained;
  int64_t nlist, count;
  float *centroids; /* nlist x dim */
  float *cnorm;     /* nlist: |c|^2, spares embr_knn recomputing them per query batch */
  embr__pq pq;
  float *term;      /* IVF-PQ L2: nlist x m x 256 (|s|^2 + 2 c.s), or NULL */
  ivf_list *lists;  /* nlist */
  embr__idmap map;  /* id -> LOC(list, position), built on first need (see ensure_map) */
  int have_map;
  size_t term_max;  /* bytes the precomputed terms may take (EMBR__IVFPQ_TERM_MAX, or a test's) */
} ivf;

/* The id map costs more than an IVF-PQ code (16-byte entries at under 70% load), and a bulk
 * build into an empty index needs none of it: it is built on the first remove(), or the first
 * duplicate check against a non-empty index, and kept up to date from then on. */
static int ensure_map(ivf *v) {
  if (v->have_map) return 0;
  int rc = embr__idmap_init(&v->map, v->count);
  for (int64_t l = 0; l < v->nlist && !rc; l++)
    for (int64_t i = 0; i < v->lists[l].n && !rc; i++) rc = embr__idmap_put(&v->map, v->lists[l].ids[i], LOC(l, i));
  if (rc) {
    embr__idmap_free(&v->map);
    return rc;
  }
  v->have_map = 1;
  return 0;
}

/* ---- configuration ---------------------------------------------------------------------------- */

/* What is wrong with a configuration, or NULL: shared by create (EINVAL) and load (EFORMAT). */
static const char *config_problem(const embr_index *ix, const ivf *v) {
  if (v->nlist < 1 || v->nlist > MAX_NLIST || v->nprobe < 1 || v->nprobe > MAX_NLIST)
    return "nlist or nprobe out of range";
  if (!v->is_pq) return v->raw ? NULL : "IVF-Flat must keep its vectors";
  if (v->m < 1 || ix->dim % v->m) return "m must divide the dimension";
  if (v->refine < 0 || v->refine > MAX_REFINE || v->raw != (v->refine > 0)) return "bad refine setting";
  return NULL;
}

static int setup(embr_index *ix, ivf *v) {
  if (v->is_pq)
    snprintf(ix->spec, sizeof ix->spec, "ivfpq:nlist=%lld,m=%d,nbits=8,nprobe=%d,refine=%d", (long long)v->nlist,
             v->m, v->nprobe, v->refine);
  else
    snprintf(ix->spec, sizeof ix->spec, "ivfflat:nlist=%lld,nprobe=%d", (long long)v->nlist, v->nprobe);
  v->lists = embr_calloc((size_t)v->nlist, sizeof(ivf_list));
  if (!v->lists) return embr_error(EMBR_ENOMEM, "IVF: out of memory for %lld lists", (long long)v->nlist);
  return 0;
}

static int ivf_create(embr_index *ix, index_spec *spec) {
  ivf *v = embr_calloc(1, sizeof *v);
  if (!v) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->impl = v;
  v->term_max = EMBR__IVFPQ_TERM_MAX;
  v->is_pq = !strcmp(spec->kind, "ivfpq");
  int64_t nlist, nprobe, m = 0, nbits, refine = 0;
  int rc;
  if ((rc = embr__spec_int(spec, "nlist", 1024, 1, MAX_NLIST, &nlist)) ||
      (rc = embr__spec_int(spec, "nprobe", 16, 1, MAX_NLIST, &nprobe)))
    return rc;
  if (v->is_pq && ((rc = embr__spec_int(spec, "m", 16, 1, ix->dim, &m)) ||
                   (rc = embr__spec_int(spec, "nbits", 8, 8, 8, &nbits)) ||
                   (rc = embr__spec_int(spec, "refine", 0, 0, MAX_REFINE, &refine))))
    return rc;
  if (v->is_pq && ix->dim % m)
    return embr_error(EMBR_EINVAL, "ivfpq: m=%lld does not divide the dimension %lld", (long long)m,
                      (long long)ix->dim);
  if (v->is_pq && ix->metric == EMBR_METRIC_L1)
    return embr_error(EMBR_EUNSUPPORTED, "ivfpq does not support the l1 metric (PQ distance tables add up only for l2 "
                                         "and inner products); use ivfflat");
  v->nlist = nlist;
  v->nprobe = (int)nprobe;
  v->m = (int)m;
  v->refine = (int)refine;
  v->raw = !v->is_pq || refine > 0;
  return setup(ix, v);
}

static void drop_training(ivf *v) {
  embr_free(v->centroids);
  embr_free(v->cnorm);
  embr_free(v->term);
  embr__pq_free(&v->pq);
  v->centroids = v->cnorm = v->term = NULL;
  v->trained = 0;
}

static void ivf_destroy(embr_index *ix) {
  ivf *v = ix->impl;
  for (int64_t l = 0; v->lists && l < v->nlist; l++) {
    embr_free(v->lists[l].ids);
    embr_free(v->lists[l].codes);
    embr_free(v->lists[l].vecs);
  }
  embr_free(v->lists);
  drop_training(v);
  embr__idmap_free(&v->map);
  embr_free(v);
  ix->impl = NULL;
}

static int ivf_is_trained(const embr_index *ix) { return ((const ivf *)ix->impl)->trained; }
static int64_t ivf_size(const embr_index *ix) { return ((const ivf *)ix->impl)->count; }
static int ivf_contains(const embr_index *ix, int64_t id) {
  ivf *v = ix->impl;
  if (v->count == 0) return 0;
  if (ensure_map(v)) return 1; /* out of memory: refuse the add rather than risk a duplicate */
  return embr__idmap_get(&v->map, id) >= 0;
}

static int64_t item_bytes(const embr_index *ix, const ivf *v) {
  return 8 + (v->is_pq ? v->m : 0) + (v->raw ? 4 * ix->dim : 0);
}

static int64_t ivf_memory(const embr_index *ix) {
  const ivf *v = ix->impl;
  int64_t bytes = v->nlist * (int64_t)sizeof(ivf_list) + v->map.cap * 16;
  for (int64_t l = 0; l < v->nlist; l++) bytes += v->lists[l].cap * item_bytes(ix, v);
  if (v->centroids) bytes += v->nlist * (ix->dim + 1) * 4;
  if (v->pq.cb) bytes += (int64_t)EMBR_PQ_KSUB * (2 * ix->dim + v->m) * 4;
  if (v->term) bytes += v->nlist * v->m * EMBR_PQ_KSUB * 4;
  return bytes;
}

/* ---- training ------------------------------------------------------------------------------- */

/* How PQ codes are scored. Cosine indexes hold unit vectors, where L2 ranks exactly as cosine
 * does; L2 tables also keep the error of a reconstructed vector's norm out of the ranking
 * (|q - x^|^2 = 1 + |x^|^2 - 2 q.x^, whereas q.x^ alone rewards codes that came out too long),
 * which measured 0.45 -> 0.8 recall@10 on clustered unit vectors (m = dim / 4). */
static embr_metric pq_metric(const embr_index *ix) {
  return ix->metric == EMBR_METRIC_IP ? EMBR_METRIC_IP : EMBR_METRIC_L2;
}

/* Derived state: centroid norms and, for L2 IVF-PQ, the per-cell table terms |s|^2 + 2 c.s. */
static int derive(const embr_index *ix, ivf *v) {
  const embr__kernels *kr = embr__kernels_get();
  v->cnorm = embr_alloc(sizeof(float) * (size_t)v->nlist);
  if (!v->cnorm) return embr_error(EMBR_ENOMEM, "IVF: out of memory");
  for (int64_t l = 0; l < v->nlist; l++) {
    const float *c = v->centroids + l * ix->dim;
    v->cnorm[l] = kr->dot(c, c, ix->dim);
  }
  if (!v->is_pq) return 0;
  int rc = embr__pq_derive(&v->pq);
  size_t per = (size_t)v->m * EMBR_PQ_KSUB;
  if (rc || pq_metric(ix) != EMBR_METRIC_L2 || (size_t)v->nlist * per * 4 > v->term_max)
    return rc;
  v->term = embr_alloc(sizeof(float) * (size_t)v->nlist * per);
  if (!v->term) return 0; /* an optimisation only: search builds tables from residuals instead */
#pragma omp parallel for schedule(static) num_threads(embr_threads_resolve(0))
  for (int64_t l = 0; l < v->nlist; l++) {
    float *t = v->term + (size_t)l * per;
    embr__pq_dot_table(&v->pq, v->centroids + l * ix->dim, t);
    for (size_t i = 0; i < per; i++) t[i] = v->pq.cbn[i] + 2 * t[i];
  }
  return 0;
}

/* Codebooks from the residuals of a sample of at most PQ_TRAIN_MAX rows. */
static int train_pq(const embr_index *ix, ivf *v, const float *x, int64_t n, int64_t ld) {
  int64_t ns = n < PQ_TRAIN_MAX ? n : PQ_TRAIN_MAX, dim = ix->dim;
  float *r = embr_alloc(sizeof(float) * (size_t)ns * (size_t)dim);
  int64_t *a = embr_alloc(sizeof(int64_t) * (size_t)ns);
  int rc = r && a ? 0 : embr_error(EMBR_ENOMEM, "IVF-PQ: out of memory for %lld training vectors", (long long)ns);
  if (!rc) {
    embr__sample_rows(x, n, ld, dim, ns, PQ_SEED, r, dim);
    rc = embr__nearest(r, ns, dim, dim, v->centroids, v->nlist, 0, a, NULL);
  }
  for (int64_t i = 0; i < ns && !rc; i++)
    for (int64_t d = 0; d < dim; d++) r[i * dim + d] -= v->centroids[a[i] * dim + d];
  if (!rc) rc = embr__pq_train(&v->pq, dim, v->m, r, ns, dim, PQ_SEED, 0);
  embr_free(r);
  embr_free(a);
  return rc;
}

static int ivf_train(embr_index *ix, const float *x, int64_t n, int64_t ld, const embr_progress *pr) {
  ivf *v = ix->impl;
  if (v->count > 0)
    return embr_error(EMBR_EINVAL, "IVF index already holds %lld vectors: training again would move its cells "
                                   "(create a new index)", (long long)v->count);
  if (n < v->nlist)
    return embr_error(EMBR_EINVAL, "IVF training needs at least nlist=%lld vectors (got %lld)", (long long)v->nlist,
                      (long long)n);
  drop_training(v);
  v->centroids = embr_alloc(sizeof(float) * (size_t)v->nlist * (size_t)ix->dim);
  if (!v->centroids) return embr_error(EMBR_ENOMEM, "IVF: out of memory for %lld centroids", (long long)v->nlist);
  embr_kmeans_params kp = embr_kmeans_params_default();
  kp.iters = COARSE_ITERS;
  kp.seed = COARSE_SEED;
  if (pr) kp.progress = *pr;
  int rc = embr_kmeans(x, n, ld, ix->dim, v->nlist, &kp, v->centroids, NULL, NULL);
  if (!rc && v->is_pq) rc = train_pq(ix, v, x, n, ld);
  if (!rc) rc = derive(ix, v);
  if (rc) {
    drop_training(v);
    return rc;
  }
  v->trained = 1;
  return 0;
}

/* ---- adding and removing ---------------------------------------------------------------------- */

static int list_grow(const embr_index *ix, const ivf *v, ivf_list *L) {
  int64_t cap = L->cap ? 2 * L->cap : 8;
  if (L->n >= (int64_t)UINT32_MAX) return embr_error(EMBR_EUNSUPPORTED, "IVF: a list holds 2^32 items");
  int64_t *ids = embr_realloc(L->ids, sizeof(int64_t) * (size_t)L->cap, sizeof(int64_t) * (size_t)cap);
  if (ids) L->ids = ids;
  uint8_t *codes = v->is_pq ? embr_realloc(L->codes, (size_t)L->cap * (size_t)v->m, (size_t)cap * (size_t)v->m) : NULL;
  if (codes) L->codes = codes;
  float *vecs = v->raw ? embr_realloc(L->vecs, sizeof(float) * (size_t)L->cap * (size_t)ix->dim, sizeof(float) * (size_t)cap * (size_t)ix->dim) : NULL;
  if (vecs) L->vecs = vecs;
  if (!ids || (v->is_pq && !codes) || (v->raw && !vecs)) return embr_error(EMBR_ENOMEM, "IVF: out of memory");
  L->cap = cap;
  return 0;
}

static int list_push(const embr_index *ix, ivf *v, int64_t l, int64_t id, const uint8_t *code, const float *vec) {
  ivf_list *L = &v->lists[l];
  int rc = L->n == L->cap ? list_grow(ix, v, L) : 0;
  if (!rc && v->have_map) rc = embr__idmap_put(&v->map, id, LOC(l, L->n));
  if (rc) return rc;
  L->ids[L->n] = id;
  if (v->is_pq) memcpy(L->codes + L->n * v->m, code, (size_t)v->m);
  if (v->raw) memcpy(L->vecs + L->n * ix->dim, vec, sizeof(float) * (size_t)ix->dim);
  L->n++;
  v->count++;
  return 0;
}

typedef struct add_buf {
  int64_t *list;  /* ADD_CHUNK */
  uint8_t *codes; /* ADD_CHUNK x m */
  float *resid;   /* ADD_CHUNK x dim */
} add_buf;

static void add_buf_free(add_buf *b) {
  embr_free(b->list);
  embr_free(b->codes);
  embr_free(b->resid);
}

static int add_buf_init(add_buf *b, const embr_index *ix, const ivf *v, int64_t n) {
  int64_t c = n < ADD_CHUNK ? n : ADD_CHUNK;
  memset(b, 0, sizeof *b);
  b->list = embr_alloc(sizeof(int64_t) * (size_t)c);
  if (v->is_pq) {
    b->codes = embr_alloc((size_t)c * (size_t)v->m);
    b->resid = embr_alloc(sizeof(float) * (size_t)c * (size_t)ix->dim);
  }
  if (b->list && (!v->is_pq || (b->codes && b->resid))) return 0;
  add_buf_free(b);
  return embr_error(EMBR_ENOMEM, "IVF: out of memory");
}

/* Cells (and codes) of rows [0, cnt) of x, then appends them. */
static int add_chunk(embr_index *ix, ivf *v, const float *x, int64_t cnt, int64_t ld, const int64_t *ids, add_buf *b) {
  int64_t dim = ix->dim;
  int rc = embr__nearest(x, cnt, ld, dim, v->centroids, v->nlist, 0, b->list, NULL);
  if (!rc && v->is_pq) {
    for (int64_t i = 0; i < cnt; i++)
      for (int64_t d = 0; d < dim; d++) b->resid[i * dim + d] = x[i * ld + d] - v->centroids[b->list[i] * dim + d];
    rc = embr__pq_encode(&v->pq, b->resid, cnt, dim, b->codes, 0);
  }
  for (int64_t i = 0; i < cnt && !rc; i++)
    rc = list_push(ix, v, b->list[i], ids[i], v->is_pq ? b->codes + i * v->m : NULL, x + i * ld);
  return rc;
}

static int ivf_add(embr_index *ix, const float *x, int64_t n, int64_t ld, const int64_t *ids, const embr_progress *pr) {
  ivf *v = ix->impl;
  int rc;
  if (!v->trained) {
    if (n < v->nlist)
      return embr_error(EMBR_EINVAL, "IVF index is not trained: train it first (embr_index_train), or add at least "
                                     "nlist=%lld vectors at once (got %lld)", (long long)v->nlist, (long long)n);
    if ((rc = ivf_train(ix, x, n, ld, NULL))) return rc;
  }
  add_buf b;
  if ((rc = add_buf_init(&b, ix, v, n))) return rc;
  embr_progress_state ps;
  embr_progress_begin(&ps, pr, (uint64_t)n);
  for (int64_t i0 = 0; i0 < n && !rc; i0 += ADD_CHUNK) {
    int64_t cnt = n - i0 < ADD_CHUNK ? n - i0 : ADD_CHUNK;
    rc = add_chunk(ix, v, x + i0 * ld, cnt, ld, ids + i0, &b);
    if (!rc && embr_progress_update(&ps, (uint64_t)(i0 + cnt), NULL, i0 + cnt == n))
      rc = embr_error(EMBR_ECANCELED, "IVF add canceled after %lld vectors", (long long)(i0 + cnt));
  }
  add_buf_free(&b);
  return rc;
}

static int ivf_remove(embr_index *ix, const int64_t *ids, int64_t n, int64_t *removed) {
  ivf *v = ix->impl;
  int rc0 = ensure_map(v);
  if (rc0) return rc0;
  for (int64_t i = 0; i < n; i++) {
    int64_t loc = embr__idmap_get(&v->map, ids[i]);
    if (loc < 0) continue;
    embr__idmap_del(&v->map, ids[i]);
    ivf_list *L = &v->lists[LOC_LIST(loc)];
    int64_t pos = LOC_POS(loc), last = L->n - 1;
    if (pos != last) {
      L->ids[pos] = L->ids[last];
      if (v->is_pq) memcpy(L->codes + pos * v->m, L->codes + last * v->m, (size_t)v->m);
      if (v->raw) memcpy(L->vecs + pos * ix->dim, L->vecs + last * ix->dim, sizeof(float) * (size_t)ix->dim);
      int rc = embr__idmap_put(&v->map, L->ids[pos], LOC(LOC_LIST(loc), pos));
      if (rc) return rc;
    }
    L->n--;
    v->count--;
    (*removed)++;
  }
  return 0;
}

/* ---- search --------------------------------------------------------------------------------- */

typedef struct scan_ctx {
  const embr_index *ix;
  const ivf *v;
  const embr_search_params *p;
  const embr__kernels *kr;
  embr_metric m;   /* exact scores: L2, IP (cosine on unit vectors) or L1 */
  embr_metric pqm; /* PQ scores: L2, or IP for inner-product indexes */
  int k, nprobe, refine, filter;
  int use_term;    /* L2 IVF-PQ tables from v->term (see TERM_MIN_NPROBE) */
} scan_ctx;

typedef struct scratch {
  embr_topk top;   /* the k results */
  embr_topk cand;  /* refine: the best refine*k codes, by location */
  float *buf;      /* SCAN_BLOCK scores */
  float *qtab;     /* IVF-PQ: m x 256, per query */
  float *table;    /* IVF-PQ: m x 256, per probe */
  float *resid;    /* dim */
  float *cs;       /* refine: candidate scores and locations */
  int64_t *cl;
  int ok;
} scratch;

static void scratch_free(scratch *s) {
  embr_topk_free(&s->top);
  embr_topk_free(&s->cand);
  embr_free(s->buf);
  embr_free(s->qtab);
  embr_free(s->table);
  embr_free(s->resid);
  embr_free(s->cs);
  embr_free(s->cl);
}

static int scratch_init(scratch *s, const scan_ctx *c) {
  memset(s, 0, sizeof *s);
  size_t tab = (size_t)c->v->m * EMBR_PQ_KSUB, kk = (size_t)c->refine * (size_t)c->k;
  int rc = embr_topk_init(&s->top, c->k);
  if (!rc && c->refine) rc = embr_topk_init(&s->cand, (int)kk);
  s->buf = embr_alloc(sizeof(float) * SCAN_BLOCK);
  s->resid = embr_alloc(sizeof(float) * (size_t)c->ix->dim);
  if (c->v->is_pq) {
    s->qtab = embr_alloc(sizeof(float) * tab);
    s->table = embr_alloc(sizeof(float) * tab);
  }
  if (c->refine) {
    s->cs = embr_alloc(sizeof(float) * kk);
    s->cl = embr_alloc(sizeof(int64_t) * kk);
  }
  s->ok = !rc && s->buf && s->resid && (!c->v->is_pq || (s->qtab && s->table)) && (!c->refine || (s->cs && s->cl));
  return s->ok ? 0 : EMBR_ENOMEM;
}

/* Pushes a block of scores of list l, items [b0, b0+n), by id, or by location when refining (the
 * exact pass maps them back). */
static void push_block(const scan_ctx *c, embr_topk *t, const float *sc, int64_t n, int64_t l, int64_t b0) {
  const int64_t *ids = c->v->lists[l].ids;
  for (int64_t i = 0; i < n; i++)
    if (sc[i] <= t->thresh) embr_topk_push(t, sc[i], c->refine ? LOC(l, b0 + i) : ids[b0 + i]);
}

/* Scores of list items [b0, b0+n) against q into out (IVF-Flat). */
static void flat_scores(const scan_ctx *c, const float *q, const float *base, int64_t n, float *out) {
  int64_t dim = c->ix->dim;
  if (c->m == EMBR_METRIC_L2) {
    c->kr->l2sq_many(q, base, n, dim, dim, out);
  } else if (c->m == EMBR_METRIC_L1) {
    c->kr->l1_many(q, base, n, dim, dim, out);
  } else {
    c->kr->dot_many(q, base, n, dim, dim, out);
    for (int64_t i = 0; i < n; i++) out[i] = -out[i];
  }
}

/* A filtered scan tests the id first and scores only admitted items: with a selective filter
 * most of a list is skipped without touching its vectors or codes. */
static void scan_filtered(const scan_ctx *c, const float *q, int64_t l, const float *tab, float bias, embr_topk *t) {
  const ivf_list *L = &c->v->lists[l];
  for (int64_t i = 0; i < L->n; i++) {
    if (!embr__admit(c->p, L->ids[i])) continue;
    float sc;
    if (c->v->is_pq)
      embr__pq_scan(L->codes + i * c->v->m, 1, c->v->m, tab, bias, &sc);
    else
      flat_scores(c, q, L->vecs + i * c->ix->dim, 1, &sc);
    if (sc <= t->thresh) embr_topk_push(t, sc, c->refine ? LOC(l, i) : L->ids[i]);
  }
}

static void scan_flat(const scan_ctx *c, scratch *s, const float *q, int64_t l, embr_topk *t) {
  const ivf_list *L = &c->v->lists[l];
  if (c->filter) {
    scan_filtered(c, q, l, NULL, 0, t);
    return;
  }
  for (int64_t b0 = 0; b0 < L->n; b0 += SCAN_BLOCK) {
    int64_t n = L->n - b0 < SCAN_BLOCK ? L->n - b0 : SCAN_BLOCK;
    flat_scores(c, q, L->vecs + b0 * c->ix->dim, n, s->buf);
    push_block(c, t, s->buf, n, l, b0);
  }
}

/* The query's own table: q_j.s_jb, negated for inner product (smaller scores are better). */
static void query_table(const scan_ctx *c, scratch *s, const float *q) {
  size_t tab = (size_t)c->v->m * EMBR_PQ_KSUB;
  if (c->pqm == EMBR_METRIC_L2 && !c->use_term) return;
  embr__pq_dot_table(&c->v->pq, q, s->qtab);
  if (c->pqm != EMBR_METRIC_L2)
    for (size_t i = 0; i < tab; i++) s->qtab[i] = -s->qtab[i];
}

/* The table of probe l and the score every code of that list starts from. */
static const float *probe_table(const scan_ctx *c, scratch *s, const float *q, int64_t l, float *bias) {
  const ivf *v = c->v;
  int64_t dim = c->ix->dim;
  const float *cl = v->centroids + l * dim;
  if (c->pqm != EMBR_METRIC_L2) {
    *bias = -c->kr->dot(q, cl, dim);
    return s->qtab;
  }
  *bias = c->kr->l2sq(q, cl, dim);
  size_t tab = (size_t)v->m * EMBR_PQ_KSUB;
  if (c->use_term) {
    const float *term = v->term + (size_t)l * tab;
    for (size_t i = 0; i < tab; i++) s->table[i] = term[i] - 2 * s->qtab[i];
  } else {
    for (int64_t d = 0; d < dim; d++) s->resid[d] = q[d] - cl[d];
    embr__pq_l2_table(&v->pq, s->resid, s->table);
    *bias = 0;
  }
  return s->table;
}

static void scan_pq(const scan_ctx *c, scratch *s, const float *q, int64_t l, embr_topk *t) {
  const ivf_list *L = &c->v->lists[l];
  float bias;
  const float *tab = probe_table(c, s, q, l, &bias);
  if (c->filter) {
    scan_filtered(c, q, l, tab, bias, t);
    return;
  }
  for (int64_t b0 = 0; b0 < L->n; b0 += SCAN_BLOCK) {
    int64_t n = L->n - b0 < SCAN_BLOCK ? L->n - b0 : SCAN_BLOCK;
    embr__pq_scan(L->codes + b0 * c->v->m, n, c->v->m, tab, bias, s->buf);
    push_block(c, t, s->buf, n, l, b0);
  }
}

/* Exact scores of the refine*k best codes, into s->top by id. */
static void rerank(const scan_ctx *c, scratch *s, const float *q) {
  int64_t dim = c->ix->dim;
  embr_topk_result(&s->cand, s->cs, s->cl, INFINITY);
  embr_topk_reset(&s->top);
  for (int i = 0; i < s->cand.k && s->cl[i] >= 0; i++) {
    const ivf_list *L = &c->v->lists[LOC_LIST(s->cl[i])];
    const float *x = L->vecs + LOC_POS(s->cl[i]) * dim;
    float d = c->m == EMBR_METRIC_L2 ? c->kr->l2sq(q, x, dim) : -c->kr->dot(q, x, dim);
    embr_topk_push(&s->top, d, L->ids[LOC_POS(s->cl[i])]);
  }
}

/* Scores back to the metric's values: IP scores are negated similarities; a cosine index scored
 * by L2 on the unit sphere reports 1 - d/2, the cosine of unit vectors at squared distance d. */
static void write_results(const scan_ctx *c, embr_topk *t, embr_metric scored, float *dist, int64_t *ids) {
  embr_topk_result(t, dist, ids, INFINITY);
  float worst = embr_metric_worst(c->ix->metric);
  int unit_l2 = c->ix->metric == EMBR_METRIC_COSINE && scored == EMBR_METRIC_L2;
  for (int i = 0; i < c->k; i++) {
    if (ids[i] < 0) dist[i] = worst;
    else if (scored == EMBR_METRIC_IP) dist[i] = -dist[i];
    else if (unit_l2) dist[i] = 1.0f - 0.5f * dist[i];
  }
}

static void search_one(const scan_ctx *c, scratch *s, const float *q, const int64_t *probes, float *dist,
                       int64_t *ids) {
  embr_topk *t = c->refine ? &s->cand : &s->top;
  embr_topk_reset(t);
  if (c->v->is_pq) query_table(c, s, q);
  for (int j = 0; j < c->nprobe; j++) {
    int64_t l = probes[j];
    if (l < 0 || c->v->lists[l].n == 0) continue;
    if (c->v->is_pq)
      scan_pq(c, s, q, l, t);
    else
      scan_flat(c, s, q, l, t);
  }
  if (c->refine) rerank(c, s, q);
  write_results(c, &s->top, c->v->is_pq && !c->refine ? c->pqm : c->m, dist, ids);
}

/* The nprobe cells of each query of a chunk. */
static int probe_cells(const scan_ctx *c, const float *q, int64_t nq, int64_t ldq, float *pd, int64_t *pl) {
  const ivf *v = c->v;
  embr_knn_params kp = embr_knn_params_default();
  kp.n_threads = c->p->n_threads;
  embr_metric pm = c->ix->metric == EMBR_METRIC_IP ? EMBR_METRIC_IP : EMBR_METRIC_L2;
  if (pm == EMBR_METRIC_L2) kp.base_norms_sq = v->cnorm;
  return embr_knn(pm, v->centroids, v->nlist, c->ix->dim, q, nq, ldq, c->ix->dim, c->nprobe, pd, pl, &kp);
}

static int search_chunk(const scan_ctx *c, const float *q, int64_t nq, int64_t ldq, const int64_t *pl, float *dist,
                        int64_t *ids) {
  int nt = embr_threads_resolve(c->p->n_threads), failed = 0;
  if (nt > nq) nt = (int)nq;
#pragma omp parallel num_threads(nt) reduction(| : failed)
  {
    scratch s;
    failed |= scratch_init(&s, c) != 0;
#pragma omp for schedule(dynamic, 4)
    for (int64_t i = 0; i < nq; i++)
      if (s.ok) search_one(c, &s, q + i * ldq, pl + i * c->nprobe, dist + i * c->k, ids + i * c->k);
    scratch_free(&s);
  }
  return failed ? embr_error(EMBR_ENOMEM, "IVF search: out of memory") : 0;
}

/* Share of the items a filter admits, from a sample of at most 4096 spread over the lists. */
static double admitted_share(const ivf *v, const embr_search_params *p) {
  int64_t step = v->count > 4096 ? v->count / 4096 : 1, g = 0, seen = 0, ok = 0;
  for (int64_t l = 0; l < v->nlist; l++) {
    const ivf_list *L = &v->lists[l];
    for (int64_t i = (step - g % step) % step; i < L->n; i += step) {
      seen++;
      ok += embr__admit(p, L->ids[i]);
    }
    g += L->n;
  }
  return seen ? (double)ok / (double)seen : 0;
}

static void pad_all(const embr_index *ix, int64_t nq, int k, float *dist, int64_t *ids) {
  for (int64_t i = 0; i < nq * k; i++) {
    dist[i] = embr_metric_worst(ix->metric);
    ids[i] = -1;
  }
}

static int ivf_search(const embr_index *ix, const float *q, int64_t nq, int64_t ldq, int k, float *dist, int64_t *ids,
                      const embr_search_params *p) {
  const ivf *v = ix->impl;
  scan_ctx c = {ix, v, p, embr__kernels_get(), embr__index_inner_metric(ix), pq_metric(ix), k,
                p->nprobe > 0 ? p->nprobe : v->nprobe, v->is_pq ? (p->refine >= 0 ? p->refine : v->refine) : 0,
                embr__has_filter(p), 0};
  if (c.filter && v->count > 0) {
    /* Widen the probe so about as many admitted items are seen as without a filter (and visit
     * every cell when the sample saw none admitted): a selective filter would otherwise leave
     * the few admitted neighbours in cells the probe skipped. */
    double share = admitted_share(v, p);
    c.nprobe = share > 0 ? (int)fmin(ceil(c.nprobe / share), (double)v->nlist) : (int)v->nlist;
  }
  if (c.nprobe > v->nlist) c.nprobe = (int)v->nlist;
  c.use_term = v->term && c.nprobe >= TERM_MIN_NPROBE;
  if (c.refine > 0 && !v->raw)
    return embr_error(EMBR_EUNSUPPORTED, "this IVF-PQ index keeps no raw vectors to refine with "
                                         "(create it with refine=R)");
  if ((int64_t)c.refine * k > (1 << 28))
    return embr_error(EMBR_EINVAL, "refine x k = %lld is too large", (long long)c.refine * k);
  if (!v->trained || v->count == 0) {
    pad_all(ix, nq, k, dist, ids);
    return 0;
  }
  int64_t chunk = nq < QUERY_CHUNK ? nq : QUERY_CHUNK;
  float *pd = embr_alloc(sizeof(float) * (size_t)chunk * (size_t)c.nprobe);
  int64_t *pl = embr_alloc(sizeof(int64_t) * (size_t)chunk * (size_t)c.nprobe);
  int rc = pd && pl ? 0 : embr_error(EMBR_ENOMEM, "IVF search: out of memory");
  for (int64_t q0 = 0; q0 < nq && !rc; q0 += chunk) {
    int64_t cnt = nq - q0 < chunk ? nq - q0 : chunk;
    rc = probe_cells(&c, q + q0 * ldq, cnt, ldq, pd, pl);
    if (!rc) rc = search_chunk(&c, q + q0 * ldq, cnt, ldq, pl, dist + q0 * k, ids + q0 * k);
  }
  embr_free(pd);
  embr_free(pl);
  return rc;
}

/* ---- save / load ----------------------------------------------------------------------------
 * Payload (after the container header; little-endian, every section padded to 64 bytes):
 *   header      16 x int64: version (1), is_pq, nlist, nprobe, m, nbits, refine, raw, trained, count,
 *               6 x 0 (m, nbits and refine are 0 for IVF-Flat)
 *   centroids   nlist x dim float32 (trained only)
 *   codebooks   m x 256 x dsub float32 (IVF-PQ, trained only)
 *   list sizes  nlist x int64, summing to count
 *   ids         count x int64: list 0's items first, then list 1's...
 *   codes       count x m bytes, same order (IVF-PQ)
 *   vectors     count x dim float32, same order (IVF-Flat; IVF-PQ with refine)
 * Derived tables (centroid norms, PQ lookup terms) are rebuilt at load. */

typedef struct ivf_header {
  int64_t version, is_pq, nlist, nprobe, m, nbits, refine, raw, trained, count;
  int64_t pad[6];
} ivf_header;

static int write_pad(embr__wfile *w, uint64_t len) {
  static const unsigned char zeros[64] = {0};
  return len % 64 ? embr__wfile_write(w, zeros, 64 - (size_t)(len % 64)) : 0;
}

/* One section holding every list's part (ids, codes or vectors), list by list. */
static int write_lists(embr__wfile *w, const ivf *v, int part, size_t item) {
  uint64_t total = 0;
  int rc = 0;
  for (int64_t l = 0; l < v->nlist && !rc; l++) {
    const ivf_list *L = &v->lists[l];
    const void *src = part == 0 ? (const void *)&L->n : part == 1 ? (const void *)L->ids
                    : part == 2 ? (const void *)L->codes : (const void *)L->vecs;
    size_t bytes = part == 0 ? sizeof(int64_t) : (size_t)L->n * item;
    if (bytes) rc = embr__wfile_write(w, src, bytes);
    total += bytes;
  }
  return rc ? rc : write_pad(w, total);
}

static int ivf_save(const embr_index *ix, embr__wfile *w) {
  const ivf *v = ix->impl;
  ivf_header h = {FILE_VERSION, v->is_pq, v->nlist, v->nprobe, v->is_pq ? v->m : 0, v->is_pq ? 8 : 0, v->refine,
                  v->raw, v->trained, v->count, {0, 0, 0, 0, 0, 0}};
  int rc = embr__write_section(w, &h, sizeof h);
  if (!rc && v->trained) rc = embr__write_section(w, v->centroids, sizeof(float) * (size_t)v->nlist * (size_t)ix->dim);
  if (!rc && v->trained && v->is_pq)
    rc = embr__write_section(w, v->pq.cb, sizeof(float) * EMBR_PQ_KSUB * (size_t)ix->dim);
  if (!rc) rc = write_lists(w, v, 0, 0);
  if (!rc) rc = write_lists(w, v, 1, sizeof(int64_t));
  if (!rc && v->is_pq) rc = write_lists(w, v, 2, (size_t)v->m);
  if (!rc && v->raw) rc = write_lists(w, v, 3, sizeof(float) * (size_t)ix->dim);
  return rc;
}

/* Pointers into the payload, every one checked against its length. */
typedef struct ivf_sections {
  const unsigned char *cent, *cb, *sizes, *ids, *codes, *vecs;
} ivf_sections;

static int load_header(embr_index *ix, ivf *v, const unsigned char *buf, size_t len, size_t *off, const char *name) {
  const unsigned char *hp = embr__read_section(buf, len, off, sizeof(ivf_header), name, "IVF header");
  if (!hp) return EMBR_EFORMAT;
  ivf_header h;
  memcpy(&h, hp, sizeof h);
  if (h.version != FILE_VERSION)
    return embr_error(EMBR_EUNSUPPORTED, "%s: IVF payload version %lld, this embr reads %d", name,
                      (long long)h.version, FILE_VERSION);
  v->is_pq = (int)h.is_pq;
  v->nlist = h.nlist;
  v->trained = (int)h.trained;
  v->count = h.count;
  /* Narrow only values already known to fit an int. */
  v->nprobe = h.nprobe >= 1 && h.nprobe <= MAX_NLIST ? (int)h.nprobe : 0;
  v->m = h.m >= 1 && h.m <= ix->dim ? (int)h.m : 0;
  v->refine = h.refine >= 0 && h.refine <= MAX_REFINE ? (int)h.refine : -1;
  v->raw = (int)h.raw;
  const char *why = (h.is_pq != 0 && h.is_pq != 1) || (h.trained != 0 && h.trained != 1) || (h.raw != 0 && h.raw != 1)
                        ? "bad flags"
                        : config_problem(ix, v);
  if (!why && v->is_pq && (h.nbits != 8 || ix->metric == EMBR_METRIC_L1)) why = "bad PQ setting";
  if (!why && !v->is_pq && (h.m || h.nbits || h.refine)) why = "PQ settings in an IVF-Flat index";
  if (!why && (h.count < 0 || (!v->trained && h.count > 0))) why = "bad item count";
  if (!why && (uint64_t)h.count > len / (uint64_t)item_bytes(ix, v)) why = "more items than the file can hold";
  return why ? embr_error(EMBR_EFORMAT, "%s: IVF header is inconsistent (%s)", name, why) : 0;
}

static int load_sections(const embr_index *ix, const ivf *v, const unsigned char *buf, size_t len, size_t *off,
                         const char *name, ivf_sections *s) {
  size_t n = (size_t)v->count, dim = (size_t)ix->dim;
  memset(s, 0, sizeof *s);
  if (v->trained && !(s->cent = embr__read_section(buf, len, off, 4 * (size_t)v->nlist * dim, name, "centroids")))
    return EMBR_EFORMAT;
  if (v->trained && v->is_pq && !(s->cb = embr__read_section(buf, len, off, 4 * EMBR_PQ_KSUB * dim, name, "codebooks")))
    return EMBR_EFORMAT;
  if (!(s->sizes = embr__read_section(buf, len, off, 8 * (size_t)v->nlist, name, "list sizes")) ||
      !(s->ids = embr__read_section(buf, len, off, 8 * n, name, "ids")))
    return EMBR_EFORMAT;
  if (v->is_pq && !(s->codes = embr__read_section(buf, len, off, n * (size_t)v->m, name, "codes"))) return EMBR_EFORMAT;
  if (v->raw && !(s->vecs = embr__read_section(buf, len, off, 4 * n * dim, name, "vectors"))) return EMBR_EFORMAT;
  if (*off != len) return embr_error(EMBR_EFORMAT, "%s: %zu unexpected bytes after the IVF index", name, len - *off);
  return 0;
}

static int all_finite(const unsigned char *p, size_t count) {
  for (size_t i = 0; i < count; i++) {
    float f;
    memcpy(&f, p + 4 * i, 4);
    if (!isfinite(f)) return 0;
  }
  return 1;
}

static int check_sections(const embr_index *ix, const ivf *v, const ivf_sections *s, const char *name) {
  size_t dim = (size_t)ix->dim;
  uint64_t sum = 0;
  for (int64_t l = 0; l < v->nlist; l++) {
    int64_t n;
    memcpy(&n, s->sizes + 8 * l, 8);
    if (n < 0 || (uint64_t)n > (uint64_t)v->count - sum || n > (int64_t)UINT32_MAX)
      return embr_error(EMBR_EFORMAT, "%s: list %lld has a bad size %lld", name, (long long)l, (long long)n);
    sum += (uint64_t)n;
  }
  if (sum != (uint64_t)v->count)
    return embr_error(EMBR_EFORMAT, "%s: list sizes add up to %llu, the header says %lld", name,
                      (unsigned long long)sum, (long long)v->count);
  if ((s->cent && !all_finite(s->cent, (size_t)v->nlist * dim)) || (s->cb && !all_finite(s->cb, EMBR_PQ_KSUB * dim)) ||
      (s->vecs && !all_finite(s->vecs, (size_t)v->count * dim)))
    return embr_error(EMBR_EFORMAT, "%s: non-finite values in the IVF centroids, codebooks or vectors", name);
  return 0;
}

/* Copies the lists out of the payload and rebuilds the id map. */
static int fill_lists(embr_index *ix, ivf *v, const ivf_sections *s, const char *name) {
  size_t dim = (size_t)ix->dim, done = 0;
  int rc = embr__idmap_init(&v->map, v->count); /* needed here anyway to refuse repeated ids */
  v->have_map = rc == 0;
  for (int64_t l = 0; l < v->nlist && !rc; l++) {
    ivf_list *L = &v->lists[l];
    int64_t n;
    memcpy(&n, s->sizes + 8 * l, 8);
    while (L->cap < n && !rc) rc = list_grow(ix, v, L);
    for (int64_t i = 0; i < n && !rc; i++) {
      int64_t id;
      memcpy(&id, s->ids + 8 * (done + (size_t)i), 8);
      if (id < 0 || id >= ix->next_id || embr__idmap_get(&v->map, id) >= 0)
        return embr_error(EMBR_EFORMAT, "%s: id %lld is negative, repeated or beyond the next id", name, (long long)id);
      L->ids[i] = id;
      rc = embr__idmap_put(&v->map, id, LOC(l, i));
    }
    if (rc) break;
    if (n && v->is_pq) memcpy(L->codes, s->codes + done * (size_t)v->m, (size_t)n * (size_t)v->m);
    if (n && v->raw) {
      memcpy(L->vecs, s->vecs + 4 * done * dim, 4 * (size_t)n * dim);
      if ((rc = embr__check_finite(L->vecs, n, (int64_t)dim, (int64_t)dim, name, "vector"))) break;
    }
    L->n = n;
    done += (size_t)n;
  }
  return rc;
}

static int load_training(embr_index *ix, ivf *v, const ivf_sections *s) {
  size_t dim = (size_t)ix->dim;
  v->centroids = embr_alloc(4 * (size_t)v->nlist * dim);
  if (!v->centroids) return embr_error(EMBR_ENOMEM, "IVF: out of memory");
  memcpy(v->centroids, s->cent, 4 * (size_t)v->nlist * dim);
  if (v->is_pq) {
    v->pq.m = v->m;
    v->pq.dsub = (int)(ix->dim / v->m);
    v->pq.cb = embr_alloc(4 * EMBR_PQ_KSUB * dim);
    if (!v->pq.cb) return embr_error(EMBR_ENOMEM, "IVF: out of memory");
    memcpy(v->pq.cb, s->cb, 4 * EMBR_PQ_KSUB * dim);
  }
  return derive(ix, v);
}

static int ivf_load(embr_index *ix, const unsigned char *buf, size_t len, const char *name, int mapped) {
  (void)mapped; /* everything is copied, so the buffer may go away after loading */
  ivf *v = embr_calloc(1, sizeof *v);
  if (!v) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->impl = v;
  v->term_max = EMBR__IVFPQ_TERM_MAX;
  size_t off = 0;
  ivf_sections s;
  int rc = load_header(ix, v, buf, len, &off, name);
  if (!rc) rc = load_sections(ix, v, buf, len, &off, name, &s);
  if (!rc) rc = check_sections(ix, v, &s, name);
  if (!rc) rc = setup(ix, v);
  if (!rc) rc = fill_lists(ix, v, &s, name);
  if (!rc && v->trained) rc = load_training(ix, v, &s);
  return rc;
}

const embr_index_ops embr__ivf_ops = {
    "ivfflat",  ivf_create, ivf_is_trained, ivf_train,   ivf_add,  ivf_remove, ivf_contains,
    ivf_search, ivf_save,   ivf_load,       ivf_destroy, ivf_size, ivf_memory,
};

int embr__ivfpq_set_term_max(embr_index *ix, size_t bytes) {
  ivf *v = ix && ix->ops == &embr__ivf_ops ? ix->impl : NULL;
  if (!v || !v->is_pq || v->trained) return embr_error(EMBR_EINVAL, "not an untrained IVF-PQ index");
  v->term_max = bytes;
  return 0;
}
