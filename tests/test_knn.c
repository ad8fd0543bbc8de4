/* Exact k-NN against a double-precision brute-force reference: all four metrics, dims 1..1000,
 * k larger than n, duplicate vectors (ties by lower id), the sgemm path and the direct path, query
 * blocks and base slices, 1 and 2 threads. */
#include "embr/vec.h"
#include "harness.h"

typedef struct ref_item {
  double s; /* oriented: smaller is better */
  double d; /* the metric's value */
  int64_t id;
} ref_item;

static int cmp_ref(const void *a, const void *b) {
  const ref_item *x = a, *y = b;
  if (x->s != y->s) return x->s < y->s ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

static double ref_dist(embr_metric m, const float *a, const float *b, int64_t dim) {
  double s = 0, na = 0, nb = 0;
  for (int64_t i = 0; i < dim; i++) {
    double x = a[i], y = b[i];
    if (m == EMBR_METRIC_L2) s += (x - y) * (x - y);
    else if (m == EMBR_METRIC_L1) s += fabs(x - y);
    else { s += x * y; na += x * x; nb += y * y; }
  }
  if (m == EMBR_METRIC_COSINE) return (na > 0 && nb > 0) ? s / sqrt(na * nb) : 0.0;
  return s;
}

/* exact: the data make every distance exactly representable (small integers), so ids must match
 * the reference exactly, ties included. Otherwise a swap is accepted only between items whose
 * reference distances agree to 1e-5 (a tie within float precision). */
static void compare_case(embr_metric m, const float *base, int64_t nb, int64_t ldb, const float *q,
                         int64_t nq, int64_t dim, int k, int threads, int exact) {
  float *dist = malloc(sizeof(float) * (size_t)(nq * k));
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k));
  ref_item *ref = malloc(sizeof(ref_item) * (size_t)(nb ? nb : 1));
  embr_knn_params p = embr_knn_params_default();
  p.n_threads = threads;
  int rc = embr_knn(m, base, nb, ldb, q, nq, dim, dim, k, dist, ids, &p);
  CHECK_MSG(rc == 0, "embr_knn failed: %s", embr_last_error());
  int bad = 0;
  for (int64_t qi = 0; qi < nq && !bad; qi++) {
    int desc = embr_metric_descending(m);
    for (int64_t j = 0; j < nb; j++) {
      double d = ref_dist(m, q + qi * dim, base + j * ldb, dim);
      ref[j] = (ref_item){desc ? -d : d, d, j};
    }
    qsort(ref, (size_t)nb, sizeof *ref, cmp_ref);
    for (int r = 0; r < k; r++) {
      int64_t got = ids[qi * k + r];
      float gd = dist[qi * k + r];
      if (r >= nb) {
        CHECK(got == -1 && gd == embr_metric_worst(m));
        continue;
      }
      double want = ref[r].d;
      double tol = fabs(want) < 1 ? 1e-3 : 1e-3 * fabs(want);
      if (!(fabs(gd - want) <= tol)) bad = 1;
      if (got != ref[r].id) {
        if (exact || got < 0 || got >= nb)
          bad = 1;
        else if (fabs(ref_dist(m, q + qi * dim, base + got * ldb, dim) - want) > 1e-5 * fmax(1, fabs(want)))
          bad = 1;
      }
      if (bad) {
        fprintf(stderr, "  metric %s nb %lld dim %lld k %d threads %d: query %lld rank %d: got (%lld, %.7g) want (%lld, %.7g)\n",
                embr_metric_name(m), (long long)nb, (long long)dim, k, threads, (long long)qi, r,
                (long long)got, gd, (long long)ref[r].id, want);
        break;
      }
    }
  }
  CHECK(!bad);
  free(dist);
  free(ids);
  free(ref);
}

static float *make_data(int64_t n, int64_t ld, int integers, int dup_every, embr_rng *r) {
  float *x = malloc(sizeof(float) * (size_t)(n * ld + 1));
  for (int64_t i = 0; i < n * ld + 1; i++)
    x[i] = integers ? (float)((int)embr_rng_below(r, 9) - 4) : embr_rng_float(r) * 2.0f - 1.0f;
  /* Every dup_every-th row copies an earlier row: ties that must be broken by the lower id. */
  if (dup_every)
    for (int64_t i = dup_every; i < n; i += dup_every)
      memcpy(x + i * ld, x + embr_rng_below(r, (uint64_t)i) * ld, sizeof(float) * (size_t)ld);
  return x;
}

typedef struct kcase {
  int64_t nb, nq, dim;
  int k;
} kcase;

static const kcase cases[] = {
    {50, 3, 1, 10},    {200, 20, 3, 7},   {1000, 40, 17, 10}, {3000, 300, 128, 10},
    {500, 17, 1000, 5}, {5, 4, 3, 10},    {10, 20, 17, 64},   {5000, 3, 128, 10},
    {4500, 600, 33, 100}, {2100, 2, 9, 1000},
};

static void run_cases(int integers) {
  embr_rng r;
  embr_rng_seed(&r, integers ? 11 : 12);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const kcase *kc = &cases[c];
    int64_t ldb = kc->dim + (c % 2); /* strided base in every other case */
    float *base = make_data(kc->nb, ldb, integers, 7, &r);
    float *q = make_data(kc->nq, kc->dim, integers, 0, &r);
    /* A query equal to a base row: distance ~0 must come out exactly (no gemm cancellation). */
    memcpy(q, base + (kc->nb / 2) * ldb, sizeof(float) * (size_t)kc->dim);
    for (int m = 0; m <= EMBR_METRIC_L1; m++) {
      int exact = integers && m != EMBR_METRIC_COSINE;
      for (int threads = 1; threads <= 2; threads++)
        compare_case((embr_metric)m, base, kc->nb, ldb, q, kc->nq, kc->dim, kc->k, threads, exact);
    }
    free(base);
    free(q);
  }
}

static void test_knn_integer_data_exact_ties(void) { run_cases(1); }
static void test_knn_float_data(void) { run_cases(0); }

/* Self-match: a query equal to a base row finds it first at distance exactly 0 under L2. */
static void test_knn_self_distance_zero(void) {
  embr_rng r;
  embr_rng_seed(&r, 13);
  int64_t nb = 2000, dim = 64;
  float *base = make_data(nb, dim, 0, 0, &r);
  for (int64_t i = 0; i < nb * dim; i++) base[i] *= 300.0f; /* large norms: cancellation-prone */
  float dist[32 * 3];
  int64_t ids[32 * 3];
  REQUIRE(embr_knn(EMBR_METRIC_L2, base, nb, dim, base + 100 * dim, 32, dim, dim, 3, dist, ids, NULL) == 0);
  for (int i = 0; i < 32; i++) {
    CHECK_EQ_INT(ids[i * 3], 100 + i);
    CHECK(dist[i * 3] == 0.0f);
  }
  free(base);
}

static void test_knn_bad_args(void) {
  float x[4] = {0}, d[4];
  int64_t id[4];
  CHECK(embr_knn(EMBR_METRIC_L2, x, 1, 1, x, 1, 1, 1, 0, d, id, NULL) == EMBR_EINVAL);
  CHECK(embr_knn(EMBR_METRIC_L2, x, 1, 1, x, 1, 1, 0, 1, d, id, NULL) == EMBR_EINVAL);
  CHECK(embr_knn(EMBR_METRIC_L2, x, 2, 1, x, 1, 1, 2, 1, d, id, NULL) == EMBR_EINVAL);
  CHECK(embr_knn((embr_metric)9, x, 1, 1, x, 1, 1, 1, 1, d, id, NULL) == EMBR_EINVAL);
  CHECK(embr_knn(EMBR_METRIC_L2, NULL, 1, 1, x, 1, 1, 1, 1, d, id, NULL) == EMBR_EINVAL);
  /* Empty base: everything padded. */
  CHECK(embr_knn(EMBR_METRIC_IP, x, 0, 1, x, 2, 1, 1, 2, d, id, NULL) == 0);
  for (int i = 0; i < 4; i++) CHECK(id[i] == -1 && d[i] == -INFINITY);
}

static int cancel_cb(void *u, uint64_t done, uint64_t total, double rate, const char *detail) {
  (void)u; (void)total; (void)rate; (void)detail;
  return done > 0;
}

static void test_knn_cancel(void) {
  embr_rng r;
  embr_rng_seed(&r, 14);
  int64_t nb = 3000, nq = 1200, dim = 16;
  float *base = make_data(nb, dim, 0, 0, &r), *q = make_data(nq, dim, 0, 0, &r);
  float *d = malloc(sizeof(float) * (size_t)nq);
  int64_t *id = malloc(sizeof(int64_t) * (size_t)nq);
  embr_knn_params p = embr_knn_params_default();
  p.progress.fn = cancel_cb;
  p.progress.min_interval = 1e-9;
  p.n_threads = 1;
  CHECK(embr_knn(EMBR_METRIC_L2, base, nb, dim, q, nq, dim, dim, 1, d, id, &p) == EMBR_ECANCELED);
  free(base); free(q); free(d); free(id);
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_knn_integer_data_exact_ties, test_knn_float_data,
                   test_knn_self_distance_zero, test_knn_bad_args, test_knn_cancel);
}
