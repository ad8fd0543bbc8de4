/* Vector kernels against a double-precision reference: every metric, odd dims, strides and
 * unaligned pointers, scalar vs AVX2 agreement, distance matrices, top-k selection. */
#include "embr/vec.h"
#include "harness.h"

static double ref_dist(embr_metric m, const float *a, const float *b, int64_t dim) {
  double s = 0, na = 0, nb = 0;
  for (int64_t i = 0; i < dim; i++) {
    double x = a[i], y = b[i];
    switch (m) {
      case EMBR_METRIC_L2: s += (x - y) * (x - y); break;
      case EMBR_METRIC_IP: s += x * y; break;
      case EMBR_METRIC_L1: s += fabs(x - y); break;
      case EMBR_METRIC_COSINE: s += x * y; na += x * x; nb += y * y; break;
    }
  }
  if (m == EMBR_METRIC_COSINE) return (na > 0 && nb > 0) ? s / sqrt(na * nb) : 0.0;
  return s;
}

/* Tolerance for float accumulation over dim terms of magnitude `scale`. */
static double tol_for(int64_t dim, double scale) { return 1e-5 * (double)dim * scale + 1e-6; }

static void fill(float *x, int64_t n, embr_rng *r) {
  for (int64_t i = 0; i < n; i++) x[i] = embr_rng_float(r) * 2.0f - 1.0f;
}

static const int64_t dims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 128, 1000};
enum { NDIMS = sizeof dims / sizeof dims[0] };

static void check_pairs_all_metrics(void) {
  embr_rng r;
  embr_rng_seed(&r, 1);
  for (int di = 0; di < NDIMS; di++) {
    int64_t dim = dims[di];
    float *buf = embr_alloc(sizeof(float) * (size_t)(2 * dim + 2));
    /* +1: deliberately unaligned starting addresses. */
    float *a = buf + 1, *b = buf + dim + 2;
    fill(a, dim, &r);
    fill(b, dim, &r);
    for (int m = 0; m <= EMBR_METRIC_L1; m++) {
      double ref = ref_dist((embr_metric)m, a, b, dim);
      double got = embr_distance((embr_metric)m, a, b, dim);
      CHECK_MSG(fabs(ref - got) <= tol_for(dim, 1.0), "metric %d dim %lld: %g vs %g", m,
                (long long)dim, got, ref);
    }
    CHECK_NEAR(embr_dot(a, b, dim), ref_dist(EMBR_METRIC_IP, a, b, dim), tol_for(dim, 1.0));
    CHECK_NEAR(embr_norm_sq(a, dim), ref_dist(EMBR_METRIC_IP, a, a, dim), tol_for(dim, 1.0));
    CHECK(embr_distance(EMBR_METRIC_L2, a, a, dim) == 0.0f);
    CHECK(embr_distance(EMBR_METRIC_L1, a, a, dim) == 0.0f);
    embr_free(buf);
  }
}

static void test_pairs(void) { check_pairs_all_metrics(); }

/* One query against strided rows; identical rows must get bit-identical results. */
static void test_one_vs_many_strided(void) {
  embr_rng r;
  embr_rng_seed(&r, 2);
  for (int di = 0; di < NDIMS; di++) {
    int64_t dim = dims[di], ld = dim + 3, n = 37;
    float *base = embr_alloc(sizeof(float) * (size_t)(n * ld + 1));
    float *q = embr_alloc(sizeof(float) * (size_t)(dim + 1));
    float *out = embr_alloc(sizeof(float) * (size_t)n);
    fill(base, n * ld + 1, &r);
    fill(q, dim + 1, &r);
    memcpy(base + 1 + 5 * ld, base + 1 + 2 * ld, sizeof(float) * (size_t)dim); /* row 5 = row 2 */
    for (int m = 0; m <= EMBR_METRIC_L1; m++) {
      embr_distances((embr_metric)m, q + 1, base + 1, n, ld, dim, out);
      for (int64_t i = 0; i < n; i++) {
        double ref = ref_dist((embr_metric)m, q + 1, base + 1 + i * ld, dim);
        CHECK_MSG(fabs(ref - out[i]) <= tol_for(dim, 1.0), "metric %d dim %lld row %lld", m,
                  (long long)dim, (long long)i);
        CHECK(out[i] == embr_distance((embr_metric)m, q + 1, base + 1 + i * ld, dim));
      }
      CHECK(out[5] == out[2]);
    }
    embr_free(base);
    embr_free(q);
    embr_free(out);
  }
}

static void test_scalar_vs_simd(void) {
  if (embr_cpu_detect() < EMBR_CPU_AVX2) SKIP("CPU has no AVX2+FMA");
  embr_rng r;
  embr_rng_seed(&r, 3);
  for (int di = 0; di < NDIMS; di++) {
    int64_t dim = dims[di];
    float *a = embr_alloc(sizeof(float) * (size_t)dim), *b = embr_alloc(sizeof(float) * (size_t)dim);
    fill(a, dim, &r);
    fill(b, dim, &r);
    for (int m = 0; m <= EMBR_METRIC_L1; m++) {
      embr_cpu_force(EMBR_CPU_SCALAR);
      float s = embr_distance((embr_metric)m, a, b, dim);
      embr_cpu_force(EMBR_CPU_AVX2);
      float v = embr_distance((embr_metric)m, a, b, dim);
      CHECK_MSG(fabsf(s - v) <= tol_for(dim, 1.0), "metric %d dim %lld", m, (long long)dim);
    }
    embr_free(a);
    embr_free(b);
  }
  embr_cpu_force(embr_cpu_detect());
}

static void test_zero_vector_cosine(void) {
  float z[5] = {0, 0, 0, 0, 0}, a[5] = {1, 2, 3, 4, 5};
  CHECK(embr_distance(EMBR_METRIC_COSINE, z, a, 5) == 0.0f);
  CHECK(embr_distance(EMBR_METRIC_COSINE, a, z, 5) == 0.0f);
  CHECK_NEAR(embr_distance(EMBR_METRIC_COSINE, a, a, 5), 1.0, 1e-6);
}

/* Hand-computed case. */
static void test_hand_values(void) {
  float a[3] = {1, 2, 3}, b[3] = {4, 0, -1};
  CHECK(embr_distance(EMBR_METRIC_L2, a, b, 3) == 9 + 4 + 16);
  CHECK(embr_distance(EMBR_METRIC_IP, a, b, 3) == 4 + 0 - 3);
  CHECK(embr_distance(EMBR_METRIC_L1, a, b, 3) == 3 + 2 + 4);
  CHECK_NEAR(embr_distance(EMBR_METRIC_COSINE, a, b, 3), 1.0 / (sqrt(14.0) * sqrt(17.0)), 1e-7);
}

static void test_distance_matrix(void) {
  embr_rng r;
  embr_rng_seed(&r, 4);
  const int64_t cases[][3] = {{1, 1, 1}, {5, 7, 3}, {33, 65, 17}, {40, 300, 128}, {3, 9, 1000}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t nq = cases[c][0], nb = cases[c][1], dim = cases[c][2];
    int64_t ldq = dim + 1, ldb = dim + 2, ldo = nb + 3;
    float *q = embr_alloc(sizeof(float) * (size_t)(nq * ldq));
    float *b = embr_alloc(sizeof(float) * (size_t)(nb * ldb));
    float *o = embr_alloc(sizeof(float) * (size_t)(nq * ldo));
    fill(q, nq * ldq, &r);
    fill(b, nb * ldb, &r);
    for (int m = 0; m <= EMBR_METRIC_L1; m++) {
      REQUIRE(embr_distance_matrix((embr_metric)m, q, nq, ldq, b, nb, ldb, dim, o, ldo, 2) == 0);
      for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nb; j++) {
          double ref = ref_dist((embr_metric)m, q + i * ldq, b + j * ldb, dim);
          CHECK_MSG(fabs(ref - o[i * ldo + j]) <= 1e-3 * fmax(1.0, fabs(ref)),
                    "metric %d case %zu (%lld,%lld)", m, c, (long long)i, (long long)j);
        }
    }
    embr_free(q);
    embr_free(b);
    embr_free(o);
  }
  float x = 1;
  CHECK(embr_distance_matrix(EMBR_METRIC_L2, &x, 1, 0, &x, 1, 1, 1, &x, 1, 1) == EMBR_EINVAL);
}

/* Top-k against a full sort, with many ties, for k from 1 to beyond n. */
static int cmp_pair(const void *a, const void *b) {
  const float *x = a, *y = b;
  if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
  return x[1] < y[1] ? -1 : x[1] > y[1];
}

static void test_topk_vs_sort(void) {
  embr_rng r;
  embr_rng_seed(&r, 5);
  const int n = 3000;
  float *scores = malloc(sizeof(float) * n);
  float *pairs = malloc(sizeof(float) * 2 * n);
  const int ks[] = {1, 2, 10, 64, 999, 1000, 2999, 3000, 5000};
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < n; i++) {
      /* round 0: distinct; 1: heavy ties; 2: descending input (worst case for the threshold). */
      scores[i] = round == 0 ? embr_rng_float(&r) : round == 1 ? (float)embr_rng_below(&r, 7)
                                                               : (float)(n - i);
      pairs[2 * i] = scores[i];
      pairs[2 * i + 1] = (float)i;
    }
    qsort(pairs, n, sizeof(float) * 2, cmp_pair);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
      int k = ks[ki];
      embr_topk t;
      REQUIRE(embr_topk_init(&t, k) == 0);
      float *os = malloc(sizeof(float) * (size_t)k);
      int64_t *oi = malloc(sizeof(int64_t) * (size_t)k);
      /* Half pushed one by one in a shuffled order, half as an ascending-id array. */
      for (int i = n / 2; i < n; i++) embr_topk_push(&t, scores[i], i);
      embr_topk_push_array(&t, scores, n / 2, 0);
      embr_topk_result(&t, os, oi, INFINITY);
      for (int i = 0; i < k; i++) {
        if (i < n) {
          CHECK_MSG(os[i] == pairs[2 * i] && oi[i] == (int64_t)pairs[2 * i + 1],
                    "round %d k %d rank %d: (%g,%lld) vs (%g,%g)", round, k, i, os[i],
                    (long long)oi[i], pairs[2 * i], pairs[2 * i + 1]);
        } else {
          CHECK(oi[i] == -1 && isinf(os[i]));
        }
      }
      embr_topk_free(&t);
      free(os);
      free(oi);
    }
  }
  free(scores);
  free(pairs);
  embr_topk t;
  CHECK(embr_topk_init(&t, 0) == EMBR_EINVAL);
}

static void test_metric_names(void) {
  embr_metric m;
  CHECK(embr_metric_parse("cosine", &m) == 0 && m == EMBR_METRIC_COSINE);
  CHECK(embr_metric_parse("manhattan", &m) == 0 && m == EMBR_METRIC_L1);
  CHECK(embr_metric_parse("l3", &m) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "l3") != NULL);
  CHECK(strcmp(embr_metric_name(EMBR_METRIC_IP), "ip") == 0);
  CHECK(embr_metric_descending(EMBR_METRIC_IP) && !embr_metric_descending(EMBR_METRIC_L1));
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_pairs, test_one_vs_many_strided, test_scalar_vs_simd,
                   test_zero_vector_cosine, test_hand_values, test_distance_matrix,
                   test_topk_vs_sort, test_metric_names);
}
