/* k-means (see include/embr/index.h): k-means++ seeding, then Lloyd iterations.
 *
 * The assignment step, n x k distances per iteration, is nearly all of the work; it is a batched
 * exact 1-NN search through embr_knn (sgemm tiles with a fused arg-min), so it runs at sgemm
 * speed. Everything else is linear in n and kept sequential where the order of floating-point
 * sums would otherwise depend on the thread count: centre updates accumulate in double in point
 * order, and the seeding's D^2 totals are summed per fixed block of points, then over blocks. A
 * fixed seed therefore gives the same centres for any thread count (embr_knn's per-point results
 * do not depend on threads either, save for exact ties split across base slices). */
#include "index/kmeans.h"

#include "vec/kernels.h"

#include <math.h>
#include <string.h>

enum {
  MIN_GEMM_DIM = 8,           /* embr_knn uses sgemm from this dimension up */
  NEAREST_CHUNK = 65536,      /* rows padded at a time by embr__nearest */
  SEED_BLOCK = 1024,          /* points per partial sum of D^2 in the seeding */
  SEED_PARALLEL_MIN = 1 << 18 /* floats per seeding pass worth a parallel region */
};

embr_kmeans_params embr_kmeans_params_default(void) {
  embr_kmeans_params p;
  memset(&p, 0, sizeof p);
  p.iters = 25;
  p.seed = 1234;
  p.max_points_per_centroid = 256;
  return p;
}

/* ---- assignment ------------------------------------------------------------------------------ */

static int nearest_direct(const float *x, int64_t n, int64_t ld, int64_t dim, const float *c, int64_t k,
                          int nt, int64_t *assign, float *dist) {
  float *own = dist ? NULL : embr_alloc(sizeof(float) * (size_t)(n ? n : 1));
  if (!dist && !own) return embr_error(EMBR_ENOMEM, "k-means: out of memory");
  embr_knn_params kp = embr_knn_params_default();
  kp.n_threads = nt;
  int rc = embr_knn(EMBR_METRIC_L2, c, k, dim, x, n, ld, dim, 1, dist ? dist : own, assign, &kp);
  embr_free(own);
  return rc;
}

int embr__nearest(const float *x, int64_t n, int64_t ld, int64_t dim, const float *c, int64_t k,
                  int n_threads, int64_t *assign, float *dist) {
  if (dim >= MIN_GEMM_DIM || n < 16) return nearest_direct(x, n, ld, dim, c, k, n_threads, assign, dist);
  /* Zero columns change no distance. */
  int64_t chunk = n < NEAREST_CHUNK ? n : NEAREST_CHUNK;
  float *pc = embr_calloc((size_t)k * MIN_GEMM_DIM, sizeof(float));
  float *px = embr_calloc((size_t)chunk * MIN_GEMM_DIM, sizeof(float));
  int rc = pc && px ? 0 : embr_error(EMBR_ENOMEM, "k-means: out of memory");
  for (int64_t j = 0; j < k && !rc; j++) memcpy(pc + j * MIN_GEMM_DIM, c + j * dim, sizeof(float) * (size_t)dim);
  for (int64_t i0 = 0; i0 < n && !rc; i0 += chunk) {
    int64_t m = n - i0 < chunk ? n - i0 : chunk;
    for (int64_t i = 0; i < m; i++) memcpy(px + i * MIN_GEMM_DIM, x + (i0 + i) * ld, sizeof(float) * (size_t)dim);
    rc = nearest_direct(px, m, MIN_GEMM_DIM, MIN_GEMM_DIM, pc, k, n_threads, assign + i0, dist ? dist + i0 : NULL);
  }
  embr_free(pc);
  embr_free(px);
  return rc;
}

/* ---- arguments and the training set ------------------------------------------------------------ */

static int check_args(const float *x, int64_t n, int64_t ld, int64_t dim, int64_t k, const float *centroids) {
  if (n < 1 || dim < 1 || ld < dim || !x || !centroids)
    return embr_error(EMBR_EINVAL, "k-means: bad matrix (n %lld, dim %lld, ld %lld)", (long long)n, (long long)dim,
                      (long long)ld);
  if (k < 1 || k > n)
    return embr_error(EMBR_EINVAL, "k-means: k=%lld must be in 1..n (n=%lld points)", (long long)k, (long long)n);
  if (dim > INT32_MAX || ld > INT32_MAX || k > INT32_MAX) return embr_error(EMBR_EINVAL, "k-means: sizes too large");
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < dim; j++)
      if (!isfinite(x[i * ld + j]))
        return embr_error(EMBR_EVALUE, "k-means: row %lld, column %lld is not finite", (long long)i, (long long)j);
  return 0;
}

/* The points k-means works on: x itself, or a seeded sample of `m` rows (embr__sample_rows),
 * zero-padded to MIN_GEMM_DIM columns when dim is smaller. */
typedef struct work {
  const float *x;
  int64_t n, ld, dim;
  float *own; /* NULL when x is the caller's matrix */
} work;

void embr__sample_rows(const float *x, int64_t n, int64_t ld, int64_t dim, int64_t m, uint64_t seed, float *out,
                       int64_t ldo) {
  embr_rng r;
  embr_rng_split(&r, seed, 1);
  int64_t got = 0;
  for (int64_t i = 0; i < n && got < m; i++)
    if (m >= n || (int64_t)embr_rng_below(&r, (uint64_t)(n - i)) < m - got)
      memcpy(out + (got++) * ldo, x + i * ld, sizeof(float) * (size_t)dim);
}

static int make_work(work *w, const float *x, int64_t n, int64_t ld, int64_t dim, int64_t m, uint64_t seed) {
  memset(w, 0, sizeof *w);
  int64_t wd = dim < MIN_GEMM_DIM ? MIN_GEMM_DIM : dim;
  if (m >= n && wd == dim) {
    *w = (work){x, n, ld, dim, NULL};
    return 0;
  }
  if (m > n) m = n;
  float *own = embr_calloc((size_t)m * (size_t)wd, sizeof(float));
  if (!own) return embr_error(EMBR_ENOMEM, "k-means: out of memory for %lld training points", (long long)m);
  embr__sample_rows(x, n, ld, dim, m, seed, own, wd);
  *w = (work){own, m, wd, wd, own};
  return 0;
}

/* ---- k-means++ seeding ----------------------------------------------------------------------- */

/* d2[i] = min(d2[i], |x_i - c|^2) (or = when first), and the per-block sums of d2. */
static void seed_update(const work *w, const float *c, float *d2, double *bsum, int first, int nt) {
  const embr__kernels *kr = embr__kernels_get();
  int64_t nblk = (w->n + SEED_BLOCK - 1) / SEED_BLOCK;
  /* One region per centre drawn: for small samples its start-up would cost more than the work. */
#pragma omp parallel num_threads(nt) if (w->n * w->dim >= SEED_PARALLEL_MIN)
  {
    float tmp[SEED_BLOCK];
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nblk; b++) {
      int64_t i0 = b * SEED_BLOCK, m = w->n - i0 < SEED_BLOCK ? w->n - i0 : SEED_BLOCK;
      kr->l2sq_many(c, w->x + i0 * w->ld, m, w->ld, w->dim, first ? d2 + i0 : tmp);
      double s = 0;
      for (int64_t i = 0; i < m; i++) {
        if (!first && tmp[i] < d2[i0 + i]) d2[i0 + i] = tmp[i];
        s += d2[i0 + i];
      }
      bsum[b] = s;
    }
  }
}

/* Draws a point with probability proportional to d2 (uniformly when every d2 is 0). */
static int64_t seed_draw(const work *w, const float *d2, const double *bsum, embr_rng *r) {
  int64_t nblk = (w->n + SEED_BLOCK - 1) / SEED_BLOCK, last = -1;
  double total = 0;
  for (int64_t b = 0; b < nblk; b++) total += bsum[b];
  if (!(total > 0)) return (int64_t)embr_rng_below(r, (uint64_t)w->n);
  double u = embr_rng_double(r) * total;
  for (int64_t b = 0; b < nblk; b++) {
    if (u >= bsum[b] && b + 1 < nblk) {
      u -= bsum[b];
      continue;
    }
    int64_t i0 = b * SEED_BLOCK, end = w->n - i0 < SEED_BLOCK ? w->n : i0 + SEED_BLOCK;
    for (int64_t i = i0; i < end; i++) {
      if (d2[i] > 0) last = i;
      if (u < d2[i]) return i;
      u -= d2[i];
    }
    if (last >= 0) return last; /* rounding ran past the block's end */
  }
  for (int64_t i = w->n - 1; i >= 0; i--)
    if (d2[i] > 0) return i;
  return 0;
}

static int seed_pp(const work *w, int64_t k, uint64_t seed, int nt, float *c) {
  int64_t nblk = (w->n + SEED_BLOCK - 1) / SEED_BLOCK;
  float *d2 = embr_alloc(sizeof(float) * (size_t)w->n);
  double *bsum = embr_alloc(sizeof(double) * (size_t)nblk);
  if (!d2 || !bsum) {
    embr_free(d2);
    embr_free(bsum);
    return embr_error(EMBR_ENOMEM, "k-means: out of memory");
  }
  embr_rng r;
  embr_rng_split(&r, seed, 2);
  int64_t pick = (int64_t)embr_rng_below(&r, (uint64_t)w->n);
  for (int64_t j = 0; j < k; j++) {
    if (j > 0) pick = seed_draw(w, d2, bsum, &r);
    memcpy(c + j * w->dim, w->x + pick * w->ld, sizeof(float) * (size_t)w->dim);
    if (j + 1 < k) seed_update(w, c + j * w->dim, d2, bsum, j == 0, nt);
  }
  embr_free(d2);
  embr_free(bsum);
  return 0;
}

/* ---- Lloyd iterations ---------------------------------------------------------------------- */

/* Centres := means of their points (double sums in point order); counts out. */
static void update_centres(const work *w, int64_t k, const int64_t *assign, double *sum, int64_t *count, float *c) {
  memset(sum, 0, sizeof(double) * (size_t)k * (size_t)w->dim);
  memset(count, 0, sizeof(int64_t) * (size_t)k);
  for (int64_t i = 0; i < w->n; i++) {
    const float *xi = w->x + i * w->ld;
    double *s = sum + assign[i] * w->dim;
    for (int64_t d = 0; d < w->dim; d++) s[d] += xi[d];
    count[assign[i]]++;
  }
  for (int64_t j = 0; j < k; j++) {
    if (!count[j]) continue;
    double inv = 1.0 / (double)count[j];
    for (int64_t d = 0; d < w->dim; d++) c[j * w->dim + d] = (float)(sum[j * w->dim + d] * inv);
  }
}

/* An empty cluster takes the member of the largest cluster farthest from that cluster's centre;
 * the next assignment splits the largest cluster between the two. Unlike a perturbed copy of
 * the big centre (faiss's split), this never raises the inertia: that point's cost drops to 0
 * and nobody else's changes, which keeps the documented "inertia never grows" promise. */
static void fix_empty(const work *w, int64_t k, int64_t *assign, int64_t *count, float *c) {
  const embr__kernels *kr = embr__kernels_get();
  for (int64_t e = 0; e < k; e++) {
    if (count[e]) continue;
    int64_t big = 0;
    for (int64_t j = 1; j < k; j++)
      if (count[j] > count[big]) big = j;
    int64_t far = -1;
    float fd = 0;
    for (int64_t i = 0; i < w->n; i++) {
      if (assign[i] != big) continue;
      float d = kr->l2sq(w->x + i * w->ld, c + big * w->dim, w->dim);
      if (d > fd) {
        fd = d;
        far = i;
      }
    }
    if (far < 0) { /* every member sits on the centre: nothing to split */
      memcpy(c + e * w->dim, c + big * w->dim, sizeof(float) * (size_t)w->dim);
      continue;
    }
    memcpy(c + e * w->dim, w->x + far * w->ld, sizeof(float) * (size_t)w->dim);
    assign[far] = e;
    count[big]--;
    count[e] = 1;
  }
}

typedef struct lloyd {
  int64_t *assign;
  float *dist;
  double *sum;
  int64_t *count;
} lloyd;

static void lloyd_free(lloyd *l) {
  embr_free(l->assign);
  embr_free(l->dist);
  embr_free(l->sum);
  embr_free(l->count);
  memset(l, 0, sizeof *l);
}

static int lloyd_init(lloyd *l, const work *w, int64_t k) {
  l->assign = embr_alloc(sizeof(int64_t) * (size_t)w->n);
  l->dist = embr_alloc(sizeof(float) * (size_t)w->n);
  l->sum = embr_alloc(sizeof(double) * (size_t)k * (size_t)w->dim);
  l->count = embr_alloc(sizeof(int64_t) * (size_t)k);
  if (l->assign && l->dist && l->sum && l->count) return 0;
  lloyd_free(l);
  return embr_error(EMBR_ENOMEM, "k-means: out of memory");
}

/* iters rounds of (assign, update); ends with an assignment to the final centres. */
static int run_lloyd(const work *w, int64_t k, const embr_kmeans_params *p, int nt, float *c, lloyd *l) {
  embr_progress_state ps;
  embr_progress_begin(&ps, &p->progress, (uint64_t)(p->iters > 0 ? p->iters : 0));
  for (int it = 0;; it++) {
    int rc = embr__nearest(w->x, w->n, w->ld, w->dim, c, k, nt, l->assign, l->dist);
    if (rc) return rc;
    if (it >= p->iters) break;
    update_centres(w, k, l->assign, l->sum, l->count, c);
    fix_empty(w, k, l->assign, l->count, c);
    if (embr_progress_update(&ps, (uint64_t)it + 1, NULL, it + 1 == p->iters))
      return embr_error(EMBR_ECANCELED, "k-means canceled after %d iterations", it + 1);
  }
  return 0;
}

static double sum_dist(const float *d, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += d[i];
  return s;
}

/* Assignment (and inertia) of all n points when k-means ran on a sample. */
static int assign_all(const float *x, int64_t n, int64_t ld, int64_t dim, int64_t k, int nt, const float *c,
                      int64_t *assign, double *inertia) {
  int64_t *a = assign ? assign : embr_alloc(sizeof(int64_t) * (size_t)n);
  float *d = embr_alloc(sizeof(float) * (size_t)n);
  int rc = a && d ? embr__nearest(x, n, ld, dim, c, k, nt, a, d) : embr_error(EMBR_ENOMEM, "k-means: out of memory");
  if (!rc && inertia) *inertia = sum_dist(d, n);
  if (a != assign) embr_free(a);
  embr_free(d);
  return rc;
}

embr_status embr_kmeans(const float *x, int64_t n, int64_t ld, int64_t dim, int64_t k, const embr_kmeans_params *params,
                        float *centroids, int64_t *assign, double *inertia) {
  embr_kmeans_params def = embr_kmeans_params_default();
  const embr_kmeans_params *p = params ? params : &def;
  int rc = check_args(x, n, ld, dim, k, centroids);
  if (rc) return rc;
  if (p->iters < 0 || p->max_points_per_centroid < 0)
    return embr_error(EMBR_EINVAL, "k-means: iters and max_points_per_centroid must be >= 0");
  int nt = embr_threads_resolve(p->n_threads);
  int64_t m = n;
  if (p->max_points_per_centroid > 0 && k <= n / p->max_points_per_centroid) m = k * p->max_points_per_centroid;
  work w;
  if ((rc = make_work(&w, x, n, ld, dim, m, p->seed))) return rc;
  lloyd l = {NULL, NULL, NULL, NULL};
  float *c = embr_alloc(sizeof(float) * (size_t)k * (size_t)w.dim);
  rc = c ? lloyd_init(&l, &w, k) : embr_error(EMBR_ENOMEM, "k-means: out of memory");
  if (!rc) rc = seed_pp(&w, k, p->seed, nt, c);
  if (!rc) rc = run_lloyd(&w, k, p, nt, c, &l);
  if (!rc) {
    for (int64_t j = 0; j < k; j++) memcpy(centroids + j * dim, c + j * w.dim, sizeof(float) * (size_t)dim);
    if (m < n) {
      if (assign || inertia) rc = assign_all(x, n, ld, dim, k, nt, centroids, assign, inertia);
    } else {
      if (assign) memcpy(assign, l.assign, sizeof(int64_t) * (size_t)n);
      if (inertia) *inertia = sum_dist(l.dist, n);
    }
  }
  lloyd_free(&l);
  embr_free(c);
  embr_free(w.own);
  return rc;
}
