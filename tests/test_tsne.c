/* t-SNE and PCA against independent references written here:
 *  - PCA: a Jacobi eigen-solver in double on the covariance (components, variances, projections);
 *  - perplexity calibration: the entropy of each conditional distribution is log(perplexity);
 *  - P: symmetric, sorted rows, sums to 1, equal to a dense matrix built here from the same lists
 *    (neighbour lists, data under each metric, a dense distance matrix); the approximate k-NN;
 *  - forces: the exact repulsion and the attraction against plain double loops (and a 3-point case
 *    by hand); Barnes-Hut and FFT interpolation against exact on maps that are not at equilibrium
 *    (the relative error of the total gradient and of Z; see test_forces_approx_vs_exact for the
 *    Barnes-Hut bounds);
 *  - optimisation: KL falls, clusters stay apart (leave-one-out 5-NN accuracy in the map), the
 *    reported KL agrees with the exact one, byte-identical output for one thread and a fixed seed,
 *    identical rows at (nearly) identical positions; bad inputs refused with a message; transform.
 * The optimisation tests run on one thread (the machine's cores are shared); the force tests
 * compare 1 and 2 threads. EMBR_TEST_VERBOSE=1 prints the measured errors and KL values. */
#include "embr/tsne.h"
#include "viz/tsne_internal.h"
#include "harness.h"

#include <sys/wait.h>
#include <unistd.h>


/* ---- data ------------------------------------------------------------------------------------ */

/* Gaussian blobs: nc centres drawn from N(0, cstd^2) per coordinate (from seed_c), points
 * centre + N(0, 1) (from seed_p), labels in order of the centres, cluster sizes uneven. */
static float *make_blobs(int64_t n, int64_t dim, int nc, double cstd, uint64_t seed_c, uint64_t seed_p,
                         int *label) {
  embr_rng r;
  embr_rng_seed(&r, seed_c);
  double *c = malloc(sizeof(double) * (size_t)(nc * dim));
  for (int64_t i = 0; i < nc * dim; i++) c[i] = cstd * embr_rng_normal(&r);
  embr_rng_seed(&r, seed_p);
  float *x = malloc(sizeof(float) * (size_t)(n * dim));
  for (int64_t i = 0; i < n; i++) {
    /* weights 1, 2, 3, ... */
    int tot = nc * (nc + 1) / 2, u = (int)embr_rng_below(&r, (uint64_t)tot), l = 0;
    while (u >= l + 1) {
      u -= l + 1;
      l++;
    }
    label[i] = l;
    for (int64_t j = 0; j < dim; j++) x[i * dim + j] = (float)(c[l * dim + j] + embr_rng_normal(&r));
  }
  free(c);
  return x;
}

static double sqdist_f(const float *a, const float *b, int64_t dim) {
  double s = 0;
  for (int64_t j = 0; j < dim; j++) {
    double t = (double)a[j] - (double)b[j];
    s += t * t;
  }
  return s;
}

/* Leave-one-out k-NN label accuracy of a map (majority vote, ties to the nearest). */
static double knn_accuracy(const float *y, int64_t n, int d, const int *label, int k) {
  int64_t *best = malloc(sizeof(int64_t) * (size_t)k);
  double *bd = malloc(sizeof(double) * (size_t)k);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; i++) {
    int m = 0;
    for (int64_t j = 0; j < n; j++) {
      if (j == i) continue;
      double dd = sqdist_f(y + i * d, y + j * d, d);
      if (m < k || dd < bd[m - 1]) {
        int at = m < k ? m++ : m - 1;
        while (at > 0 && bd[at - 1] > dd) {
          bd[at] = bd[at - 1];
          best[at] = best[at - 1];
          at--;
        }
        bd[at] = dd;
        best[at] = j;
      }
    }
    int vote = -1, top = 0;
    for (int s = 0; s < m; s++) {
      int cnt = 0;
      for (int t = 0; t < m; t++) cnt += label[best[t]] == label[best[s]];
      if (cnt > top) {
        top = cnt;
        vote = label[best[s]];
      }
    }
    correct += vote == label[i];
  }
  free(best);
  free(bd);
  return (double)correct / (double)n;
}

/* ---- PCA ------------------------------------------------------------------------------------- */

/* Cyclic Jacobi on a symmetric n x n matrix a (destroyed): eigenvalues w, eigenvectors as the
 * columns of v. */
static void jacobi_eigen(double *a, int n, double *w, double *v) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) v[i * n + j] = i == j;
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0, diag = 0;
    for (int p = 0; p < n; p++) {
      diag += a[p * n + p] * a[p * n + p];
      for (int q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    }
    if (off <= 1e-30 * diag) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        if (apq == 0) continue;
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
        double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++) { /* columns p, q */
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) { /* rows p, q */
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
          double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  for (int i = 0; i < n; i++) w[i] = a[i * n + i];
}

static void test_pca_reference(void) {
  enum { N = 400, D = 12, LD = 13, K = 4 };
  embr_rng r;
  embr_rng_seed(&r, 101);
  double u[D], un = 0;
  for (int j = 0; j < D; j++) {
    u[j] = embr_rng_normal(&r);
    un += u[j] * u[j];
  }
  for (int j = 0; j < D; j++) u[j] /= sqrt(un);
  /* Offset 10 (centring matters), per-axis spreads 0.3 .. 1.95, a planted direction of std 4. */
  float *x = malloc(sizeof(float) * N * LD);
  for (int i = 0; i < N; i++) {
    double t = 4 * embr_rng_normal(&r);
    for (int j = 0; j < D; j++) x[i * LD + j] = (float)(10 + (0.3 + 0.15 * j) * embr_rng_normal(&r) + t * u[j]);
    x[i * LD + D] = NAN; /* padding must not be read */
  }
  /* Reference: covariance in double, Jacobi. */
  double mean[D] = {0}, cov[D * D] = {0}, w[D], v[D * D], cov2[D * D];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < D; j++) mean[j] += x[i * LD + j] / (double)N;
  for (int i = 0; i < N; i++)
    for (int a = 0; a < D; a++)
      for (int b = 0; b < D; b++) cov[a * D + b] += (x[i * LD + a] - mean[a]) * (x[i * LD + b] - mean[b]) / (N - 1);
  memcpy(cov2, cov, sizeof cov);
  jacobi_eigen(cov2, D, w, v);
  /* The reference itself: C v = w v. */
  for (int c = 0; c < D; c++)
    for (int a = 0; a < D; a++) {
      double s = 0;
      for (int b = 0; b < D; b++) s += cov[a * D + b] * v[b * D + c];
      CHECK_NEAR(s, w[c] * v[a * D + c], 1e-10);
    }
  /* Descending order, sign convention: largest-magnitude coefficient positive. */
  int order[D];
  for (int c = 0; c < D; c++) order[c] = c;
  for (int a = 0; a < D; a++)
    for (int b = a + 1; b < D; b++)
      if (w[order[b]] > w[order[a]]) {
        int t = order[a];
        order[a] = order[b];
        order[b] = t;
      }
  double comp[K][D], var[K];
  for (int c = 0; c < K; c++) {
    int src = order[c];
    double big = 0;
    for (int j = 0; j < D; j++)
      if (fabs(v[j * D + src]) > fabs(big)) big = v[j * D + src];
    for (int j = 0; j < D; j++) comp[c][j] = (big < 0 ? -1 : 1) * v[j * D + src];
    var[c] = w[src];
  }
  /* The planted direction dominates. */
  double dotu = 0;
  for (int j = 0; j < D; j++) dotu += comp[0][j] * u[j];
  CHECK(fabs(dotu) > 0.99);

  for (int threads = 1; threads <= 2; threads++) {
    float out[N * K];
    double got_var[K];
    int rc = embr_pca(x, N, LD, D, K, out, got_var, threads);
    REQUIRE(rc == 0);
    for (int c = 0; c < K; c++) CHECK_NEAR(got_var[c], var[c], 1e-4 * var[0]);
    /* Projections. */
    double maxerr = 0;
    for (int i = 0; i < N; i++)
      for (int c = 0; c < K; c++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += (x[i * LD + j] - mean[j]) * comp[c][j];
        maxerr = fmax(maxerr, fabs(out[i * K + c] - s));
      }
    CHECK_MSG(maxerr < 2e-3, "projection error %g", maxerr);
    /* Components, recovered from the projections: X_c^T out_c = (N-1) lambda_c v_c. */
    for (int c = 0; c < K; c++) {
      double err = 0, big = 0;
      int bigj = 0;
      for (int j = 0; j < D; j++) {
        double s = 0;
        for (int i = 0; i < N; i++) s += (x[i * LD + j] - mean[j]) * out[i * K + c];
        s /= (N - 1) * var[c];
        err = fmax(err, fabs(s - comp[c][j]));
        if (fabs(s) > fabs(big)) {
          big = s;
          bigj = j;
        }
      }
      CHECK_MSG(err < 1e-3, "component %d differs by %g", c, err);
      CHECK_MSG(big > 0, "component %d: largest coefficient (%d) is negative", c, bigj);
    }
  }
  /* k = dim, without variances. */
  float *all = malloc(sizeof(float) * N * D);
  CHECK(embr_pca(x, N, LD, D, D, all, NULL, 1) == 0);
  free(all);
  /* Bad arguments. */
  float out[N * K];
  CHECK(embr_pca(x, 1, LD, D, 1, out, NULL, 1) == EMBR_EINVAL);
  CHECK(embr_pca(x, N, LD, D, 0, out, NULL, 1) == EMBR_EINVAL);
  CHECK(embr_pca(x, N, LD, D, D + 1, out, NULL, 1) == EMBR_EINVAL);
  CHECK(embr_pca(x, N, D - 1, D, 2, out, NULL, 1) == EMBR_EINVAL);
  CHECK(embr_pca(x, N, LD, 0, 1, out, NULL, 1) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "pca") != NULL);
  free(x);
}

/* ---- perplexity calibration -------------------------------------------------------------------- */

static double entropy(const double *p, int k) {
  double h = 0;
  for (int t = 0; t < k; t++)
    if (p[t] > 0) h -= p[t] * log(p[t]);
  return h;
}

static void test_calibrate_row_entropy(void) {
  embr_rng r;
  embr_rng_seed(&r, 202);
  const double perps[] = {2, 5, 10, 30, 50};
  const double scales[] = {1e-3, 1, 1e3};
  int cases = 0;
  for (size_t a = 0; a < sizeof perps / sizeof perps[0]; a++)
    for (size_t b = 0; b < sizeof scales / sizeof scales[0]; b++)
      for (int rep = 0; rep < 4; rep++) {
        double perp = perps[a];
        int k = (int)(3 * perp) < 12 ? 12 : (int)(3 * perp);
        int64_t *nbr = malloc(sizeof(int64_t) * (size_t)k);
        float *d = malloc(sizeof(float) * (size_t)k);
        double *p = malloc(sizeof(double) * (size_t)k);
        for (int t = 0; t < k; t++) {
          nbr[t] = (t % 9 == 4) ? -1 : 1000 + t; /* some missing neighbours */
          /* squared distances: an offset (only differences matter) plus a spread; rep 3 has a
           * near-duplicate at distance 0 */
          double v = scales[b] * (rep == 3 && t == 0 ? 0 : 1 + 5 * embr_rng_double(&r) * embr_rng_double(&r));
          d[t] = (float)v;
          p[t] = NAN;
        }
        if (rep == 2) d[1] = INFINITY, nbr[1] = -1; /* a padded slot as the library writes it */
        embr__tsne_calibrate_row(nbr, d, k, perp, p);
        double sum = 0;
        int bad_missing = 0;
        for (int t = 0; t < k; t++) {
          if (nbr[t] < 0) bad_missing += p[t] != 0;
          else sum += p[t];
        }
        CHECK_MSG(bad_missing == 0, "perplexity %g: ids < 0 got non-zero p", perp);
        CHECK_NEAR(sum, 1.0, 1e-12);
        double h = entropy(p, k);
        CHECK_MSG(fabs(h - log(perp)) < 1e-4, "perplexity %g scale %g case %d: entropy %.7f, log(perp) %.7f", perp,
                  scales[b], rep, h, log(perp));
        /* monotone: nearer neighbours get more */
        for (int s = 0; s < k; s++)
          for (int t = 0; t < k; t++)
            if (nbr[s] >= 0 && nbr[t] >= 0 && d[s] < d[t]) CHECK(p[s] >= p[t]);
        cases++;
        free(nbr);
        free(d);
        free(p);
      }
  CHECK_EQ_INT(cases, 60);

  /* All distances equal: the uniform distribution over the valid neighbours. */
  {
    int64_t nbr[40];
    float d[40];
    double p[40];
    for (int t = 0; t < 40; t++) {
      nbr[t] = t == 7 ? -1 : t;
      d[t] = 2.5f;
    }
    embr__tsne_calibrate_row(nbr, d, 40, 10, p);
    for (int t = 0; t < 40; t++) CHECK_NEAR(p[t], t == 7 ? 0.0 : 1.0 / 39, 1e-12);
    /* exact duplicates (distance 0) */
    for (int t = 0; t < 40; t++) d[t] = 0;
    embr__tsne_calibrate_row(nbr, d, 40, 10, p);
    for (int t = 0; t < 40; t++) CHECK_NEAR(p[t], t == 7 ? 0.0 : 1.0 / 39, 1e-12);
  }
  /* A perplexity above the number of valid neighbours cannot be reached: uniform, still sums to 1. */
  {
    int64_t nbr[6] = {1, 2, 3, -1, 4, 5};
    float d[6] = {1, 2, 3, 4, 5, 6};
    double p[6];
    embr__tsne_calibrate_row(nbr, d, 6, 30, p);
    double s = 0;
    for (int t = 0; t < 6; t++) s += p[t];
    CHECK_NEAR(s, 1.0, 1e-12);
    CHECK(p[3] == 0);
    CHECK(entropy(p, 6) > log(5) - 1e-3);
  }
  /* No valid neighbour at all: the header promises 0 for ids < 0. */
  {
    int64_t nbr[4] = {-1, -1, -1, -1};
    float d[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    double p[4] = {NAN, NAN, NAN, NAN};
    embr__tsne_calibrate_row(nbr, d, 4, 2, p);
    CHECK_MSG(p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0,
              "a row without valid neighbours leaves p unwritten (got %g %g %g %g)", p[0], p[1], p[2], p[3]);
  }
}

/* ---- symmetrised P ----------------------------------------------------------------------------- */

/* Finds P_ij in CSR (0 when absent). */
static double csr_get(const embr_affinities *P, int64_t i, int64_t j) {
  int64_t lo = P->row[i], hi = P->row[i + 1];
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (P->col[mid] < j) lo = mid + 1;
    else hi = mid;
  }
  return lo < P->row[i + 1] && P->col[lo] == j ? P->val[lo] : 0.0;
}

/* Structural checks and comparison with a dense P built from (nbr, dist) with the (separately
 * tested) row calibration. Returns the max abs difference relative to max P. */
static double check_affinities(const embr_affinities *P, const int64_t *nbr, const float *dist, int64_t n, int k,
                               double perp) {
  CHECK_EQ_INT(P->n, n);
  CHECK_EQ_INT(P->row[0], 0);
  double sum = 0;
  int sorted = 1, self = 0, asym = 0, neg = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t s = P->row[i]; s < P->row[i + 1]; s++) {
      if (s > P->row[i] && P->col[s] <= P->col[s - 1]) sorted = 0;
      if (P->col[s] == i) self++;
      if (P->col[s] < 0 || P->col[s] >= n) {
        sorted = 0;
        continue;
      }
      if (!(P->val[s] > 0)) neg++;
      sum += P->val[s];
      /* exactly symmetric */
      if (csr_get(P, P->col[s], i) != P->val[s]) asym++;
    }
  }
  CHECK_MSG(sorted, "rows not strictly increasing (duplicates or unsorted)");
  CHECK_EQ_INT(self, 0);
  CHECK_EQ_INT(asym, 0);
  CHECK_EQ_INT(neg, 0);
  CHECK_NEAR(sum, 1.0, 1e-5);
  /* Dense reference. */
  double *dense = calloc((size_t)(n * n), sizeof(double));
  double *p = malloc(sizeof(double) * (size_t)k);
  for (int64_t i = 0; i < n; i++) {
    embr__tsne_calibrate_row(nbr + i * k, dist + i * k, k, perp, p);
    for (int t = 0; t < k; t++) {
      int64_t j = nbr[i * k + t];
      if (j < 0) continue;
      dense[i * n + j] += p[t] / (2.0 * n);
      dense[j * n + i] += p[t] / (2.0 * n);
    }
  }
  double maxp = 0, maxd = 0;
  int64_t nz = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      maxp = fmax(maxp, dense[i * n + j]);
      maxd = fmax(maxd, fabs(dense[i * n + j] - csr_get(P, i, j)));
      nz += dense[i * n + j] > 0;
    }
  CHECK_EQ_INT(nz, P->row[n]);
  free(dense);
  free(p);
  return maxd / maxp;
}

static void test_affinities_from_lists(void) {
  enum { N = 200, K = 15 };
  embr_rng r;
  embr_rng_seed(&r, 303);
  int64_t *nbr = malloc(sizeof(int64_t) * N * K);
  float *dist = malloc(sizeof(float) * N * K);
  for (int64_t i = 0; i < N; i++)
    for (int t = 0; t < K; t++) {
      int64_t j;
      int dup;
      do { /* distinct, not self */
        j = (int64_t)embr_rng_below(&r, N);
        dup = j == i;
        for (int s = 0; s < t; s++) dup |= nbr[i * K + s] == j;
      } while (dup);
      nbr[i * K + t] = (t == K - 1 && i % 10 == 0) ? -1 : j; /* some short lists */
      dist[i * K + t] = (float)(0.5 + 3 * embr_rng_double(&r));
    }
  for (int threads = 1; threads <= 2; threads++) {
    embr_affinities P;
    REQUIRE(embr__tsne_calibrate(nbr, dist, N, K, 5, threads, &P) == 0);
    double rel = check_affinities(&P, nbr, dist, N, K, 5);
    CHECK_MSG(rel < 1e-6, "P differs from the dense reference by %g (relative)", rel);
    embr_affinities_free(&P);
  }
  /* The public entry point gives the same. */
  embr_tsne_params prm = embr_tsne_params_default();
  prm.perplexity = 5;
  embr_affinities P;
  REQUIRE(embr_tsne_affinities_knn(nbr, dist, N, K, &prm, &P) == 0);
  CHECK(check_affinities(&P, nbr, dist, N, K, 5) < 1e-6);
  embr_affinities_free(&P);
  embr_affinities_free(&P); /* freeing twice (cleared) and NULL are harmless */
  embr_affinities_free(NULL);
  /* Out-of-range ids are refused. */
  int64_t keep = nbr[17];
  nbr[17] = N;
  CHECK(embr_tsne_affinities_knn(nbr, dist, N, K, &prm, &P) == EMBR_EINVAL);
  nbr[17] = keep;
  /* A point whose list is empty (it only appears in others' lists, as in a sparse precomputed
   * input): the header says P sums to 1. */
  for (int t = 0; t < K; t++) nbr[3 * K + t] = -1;
  REQUIRE(embr_tsne_affinities_knn(nbr, dist, N, K, &prm, &P) == 0);
  double sum = 0;
  for (int64_t s = 0; s < P.row[N]; s++) sum += P.val[s];
  CHECK_MSG(fabs(sum - 1) < 1e-5,
            "P sums to %.6f when one of %d points has no neighbours (expected 1)", sum, N);
  embr_affinities_free(&P);
  free(nbr);
  free(dist);
}

/* The input distance the Gaussian kernel takes (tsne_internal.h): squared Euclidean, 1 - cos,
 * -a.b, Manhattan. */
static double kernel_dist(embr_metric m, const float *a, const float *b, int64_t dim) {
  double s = 0, na = 0, nb = 0;
  for (int64_t j = 0; j < dim; j++) {
    double x = a[j], y = b[j];
    if (m == EMBR_METRIC_L2) s += (x - y) * (x - y);
    else if (m == EMBR_METRIC_L1) s += fabs(x - y);
    else {
      s += x * y;
      na += x * x;
      nb += y * y;
    }
  }
  if (m == EMBR_METRIC_COSINE) return 1 - s / sqrt(na * nb);
  if (m == EMBR_METRIC_IP) return -s;
  return s;
}

/* Each row's k nearest (self excluded) by brute force in double. */
static void ref_knn(const float *x, int64_t n, int64_t dim, embr_metric m, int k, int64_t *nbr, float *dist,
                    float *dm /* optional n x n */) {
  double *di = malloc(sizeof(double) * (size_t)n);
  char *used = malloc((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    for (int64_t j = 0; j < n; j++) {
      di[j] = kernel_dist(m, x + i * dim, x + j * dim, dim);
      if (dm) dm[i * n + j] = j == i ? 0.0f : (float)di[j];
      used[j] = j == i;
    }
    for (int t = 0; t < k; t++) {
      int64_t b = -1;
      for (int64_t j = 0; j < n; j++)
        if (!used[j] && (b < 0 || di[j] < di[b])) b = j;
      used[b] = 1;
      nbr[i * k + t] = b;
      dist[i * k + t] = (float)di[b];
    }
  }
  free(di);
  free(used);
}

/* P from data for every metric (and from the dense distance matrix of the same data) against
 * neighbours found here. */
static void test_affinities_from_data(void) {
  enum { N = 300, D = 10 };
  int *label = malloc(sizeof(int) * N);
  float *x = make_blobs(N, D, 3, 3.0, 404, 405, label);
  double perp = 10;
  int k = 30;
  int64_t *nbr = malloc(sizeof(int64_t) * N * (size_t)k);
  float *dist = malloc(sizeof(float) * N * (size_t)k);
  float *dm = malloc(sizeof(float) * N * N);
  embr_tsne_params prm = embr_tsne_params_default();
  prm.perplexity = perp;
  prm.n_threads = 1;
  embr_affinities P;
  for (int m = 0; m <= EMBR_METRIC_L1; m++) {
    ref_knn(x, N, D, (embr_metric)m, k, nbr, dist, m == EMBR_METRIC_L2 ? dm : NULL);
    prm.metric = (embr_metric)m;
    REQUIRE(embr_tsne_affinities(x, N, D, D, &prm, &P) == 0);
    double rel = check_affinities(&P, nbr, dist, N, k, perp);
    CHECK_MSG(rel < 1e-4, "metric %s: P from data differs from the reference by %g (relative)",
              embr_metric_name((embr_metric)m), rel);
    embr_affinities_free(&P);
  }
  /* The same from the dense (squared Euclidean) distance matrix, diagonal excluded. */
  ref_knn(x, N, D, EMBR_METRIC_L2, k, nbr, dist, dm);
  prm.metric = EMBR_METRIC_L2;
  REQUIRE(embr_tsne_affinities_dense(dm, N, N, &prm, &P) == 0);
  double rel = check_affinities(&P, nbr, dist, N, k, perp);
  CHECK_MSG(rel < 1e-4, "P from dense distances differs from the reference by %g (relative)", rel);
  embr_affinities_free(&P);
  /* Bad dense input: negative and NaN distances, non-square. */
  dm[5 * N + 9] = -0.5f;
  CHECK(embr_tsne_affinities_dense(dm, N, N, &prm, &P) == EMBR_EVALUE);
  CHECK(strstr(embr_last_error(), "negative") != NULL);
  CHECK(P.row == NULL);
  dm[5 * N + 9] = NAN;
  CHECK(embr_tsne_affinities_dense(dm, N, N, &prm, &P) == EMBR_EVALUE);
  dm[5 * N + 9] = 1;
  CHECK(embr_tsne_affinities_dense(dm, N, N - 1, &prm, &P) == EMBR_EINVAL);
  free(x);
  free(label);
  free(nbr);
  free(dist);
  free(dm);
}

/* The approximate neighbour search used above exact_knn_max points (k-means cells): neighbours
 * are real, sorted, without self or duplicates, their distances right, and most of the true ones. */
static void test_knn_approximate(void) {
  enum { N = 5000, D = 8, K = 15 };
  int *label = malloc(sizeof(int) * N);
  float *x = make_blobs(N, D, 6, 2.0, 451, 452, label);
  int64_t *nbr = malloc(sizeof(int64_t) * N * K), *ref = malloc(sizeof(int64_t) * N * K);
  float *dist = malloc(sizeof(float) * N * K), *rd = malloc(sizeof(float) * N * K);
  REQUIRE(embr__tsne_knn(x, N, D, D, K, EMBR_METRIC_L2, 100, 9, 1, nbr, dist) == 0);
  REQUIRE(embr__tsne_knn(x, N, D, D, K, EMBR_METRIC_L2, N, 9, 1, ref, rd) == 0); /* exact */
  int64_t found = 0, bad = 0;
  for (int64_t i = 0; i < N; i++)
    for (int t = 0; t < K; t++) {
      int64_t j = nbr[i * K + t];
      if (j < 0 || j >= N || j == i) {
        bad++;
        continue;
      }
      for (int s = 0; s < t; s++) bad += nbr[i * K + s] == j;
      if (t > 0) bad += dist[i * K + t] < dist[i * K + t - 1];
      bad += fabs(dist[i * K + t] - sqdist_f(x + i * D, x + j * D, D)) > 1e-4 * (1 + dist[i * K + t]);
      for (int s = 0; s < K; s++) found += ref[i * K + s] == j;
    }
  CHECK_EQ_INT(bad, 0);
  double recall = (double)found / (N * K);
  CHECK_MSG(recall > 0.9, "approximate neighbours: recall %.3f", recall);
  /* the exact search against brute force on a few rows */
  for (int64_t i = 0; i < N; i += 997) {
    double *di = malloc(sizeof(double) * N);
    for (int64_t j = 0; j < N; j++) di[j] = j == i ? INFINITY : sqdist_f(x + i * D, x + j * D, D);
    for (int t = 0; t < K; t++) {
      int64_t b = 0;
      for (int64_t j = 1; j < N; j++)
        if (di[j] < di[b]) b = j;
      CHECK_NEAR(rd[i * K + t], di[b], 1e-4 * (1 + di[b]));
      di[b] = INFINITY;
    }
    free(di);
  }
  free(x);
  free(label);
  free(nbr);
  free(ref);
  free(dist);
  free(rd);
}

/* ---- forces ------------------------------------------------------------------------------------ */

static double ref_rep(const double *y, int64_t n, int d, double *rep) {
  double z = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int c = 0; c < d; c++) rep[i * d + c] = 0;
    for (int64_t j = 0; j < n; j++) {
      if (j == i) continue;
      double d2 = 0;
      for (int c = 0; c < d; c++) d2 += (y[i * d + c] - y[j * d + c]) * (y[i * d + c] - y[j * d + c]);
      double w = 1 / (1 + d2);
      z += w;
      for (int c = 0; c < d; c++) rep[i * d + c] += w * w * (y[i * d + c] - y[j * d + c]);
    }
  }
  return z;
}

static double rel_diff(const double *a, const double *b, int64_t m) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < m; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return sqrt(num / den);
}

static void test_rep_exact_hand(void) {
  double y[6] = {0, 0, 1, 0, 0, 2}, rep[6];
  /* w01 = 1/2, w02 = 1/5, w12 = 1/6 */
  double z = embr__tsne_rep_exact(y, 3, 2, rep, 1);
  CHECK_NEAR(z, 2.0 * (1.0 / 2 + 1.0 / 5 + 1.0 / 6), 1e-15);
  const double want[6] = {-0.25, -0.08, 0.25 + 1.0 / 36, -2.0 / 36, -1.0 / 36, 0.08 + 2.0 / 36};
  for (int i = 0; i < 6; i++) CHECK_NEAR(rep[i], want[i], 1e-15);
  /* 3-D: the same triangle lifted, plus a fourth point on the z axis */
  double y3[12] = {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1}, r3[12], ref3[12];
  double z3 = embr__tsne_rep_exact(y3, 4, 3, r3, 2), zr = ref_rep(y3, 4, 3, ref3);
  CHECK_NEAR(z3, zr, 1e-14);
  for (int i = 0; i < 12; i++) CHECK_NEAR(r3[i], ref3[i], 1e-15);
  /* (0,0,1): from (0,0,0) w = 1/2, from (1,0,0) w = 1/3, from (0,2,0) w = 1/6 */
  CHECK_NEAR(r3[11], 0.25 + 1.0 / 9 + 1.0 / 36, 1e-15);
}

static void test_rep_exact_random(void) {
  embr_rng r;
  embr_rng_seed(&r, 505);
  for (int d = 2; d <= 3; d++) {
    int64_t n = 157;
    double *y = malloc(sizeof(double) * (size_t)(n * d)), *a = malloc(sizeof(double) * (size_t)(n * d)),
           *b = malloc(sizeof(double) * (size_t)(n * d));
    for (int64_t i = 0; i < n * d; i++) y[i] = 5 * embr_rng_normal(&r);
    for (int threads = 1; threads <= 2; threads++) {
      double z = embr__tsne_rep_exact(y, n, d, a, threads), zr = ref_rep(y, n, d, b);
      CHECK_NEAR(z / zr, 1, 1e-12);
      CHECK(rel_diff(a, b, n * d) < 1e-12);
    }
    free(y);
    free(a);
    free(b);
  }
}

/* A map of nc Gaussian clusters whose centres are uniform in a cube of side `span`. */
static double *make_map(int64_t n, int d, int nc, double span, double sd, uint64_t seed, int *label) {
  embr_rng r;
  embr_rng_seed(&r, seed);
  double c[16][3];
  for (int k = 0; k < nc; k++)
    for (int a = 0; a < d; a++) c[k][a] = span * (embr_rng_double(&r) - 0.5);
  double *y = malloc(sizeof(double) * (size_t)(n * d));
  for (int64_t i = 0; i < n; i++) {
    int k = (int)embr_rng_below(&r, (uint64_t)nc);
    label[i] = k;
    for (int a = 0; a < d; a++) y[i * d + a] = c[k][a] + sd * (1 + k % 3) * 0.5 * embr_rng_normal(&r);
  }
  return y;
}

/* P from random neighbour lists within each point's cluster (so the map is far from equilibrium
 * but P is like real data's). */
static void random_cluster_P(int64_t n, const int *label, int k, double perp, uint64_t seed, embr_affinities *P) {
  embr_rng r;
  embr_rng_seed(&r, seed);
  int64_t *nbr = malloc(sizeof(int64_t) * (size_t)(n * k));
  float *dist = malloc(sizeof(float) * (size_t)(n * k));
  for (int64_t i = 0; i < n; i++)
    for (int t = 0; t < k; t++) {
      int64_t j;
      do j = (int64_t)embr_rng_below(&r, (uint64_t)n);
      while (j == i || label[j] != label[i]);
      nbr[i * k + t] = j;
      dist[i * k + t] = (float)(0.2 + 4 * embr_rng_double(&r));
    }
  int rc = embr__tsne_calibrate(nbr, dist, n, k, perp, 1, P);
  CHECK(rc == 0);
  free(nbr);
  free(dist);
}

static void ref_attract(const embr_affinities *P, const double *y, int d, double *att, double *plogw) {
  int64_t n = P->n;
  /* dense P */
  double *dense = calloc((size_t)(n * n), sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t s = P->row[i]; s < P->row[i + 1]; s++) dense[i * n + P->col[s]] += P->val[s];
  *plogw = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int c = 0; c < d; c++) att[i * d + c] = 0;
    for (int64_t j = 0; j < n; j++) {
      if (dense[i * n + j] == 0) continue;
      double d2 = 0;
      for (int c = 0; c < d; c++) d2 += (y[i * d + c] - y[j * d + c]) * (y[i * d + c] - y[j * d + c]);
      double w = 1 / (1 + d2);
      for (int c = 0; c < d; c++) att[i * d + c] += dense[i * n + j] * w * (y[i * d + c] - y[j * d + c]);
      *plogw += dense[i * n + j] * log(w);
    }
  }
  free(dense);
}

static void test_attract_reference(void) {
  enum { N = 300 };
  int label[N];
  for (int d = 2; d <= 3; d++) {
    double *y = make_map(N, d, 4, 20, 1.5, 606 + d, label);
    embr_affinities P;
    random_cluster_P(N, label, 12, 4, 607, &P);
    double att[N * 3], ref[N * 3], plogw_ref;
    ref_attract(&P, y, d, ref, &plogw_ref);
    /* every kernel this CPU has: the scalar loop and (2-D) the AVX2 one */
    for (int level = EMBR_CPU_SCALAR; level <= (int)embr_cpu_detect(); level++)
      for (int want = 0; want <= 1; want++)
        for (int threads = 1; threads <= 2; threads++) {
          CHECK(embr_cpu_force((embr_cpu_level)level) == 0);
          double pl = embr__tsne_attract(&P, y, d, att, threads, want);
          CHECK_MSG(rel_diff(att, ref, N * d) < 1e-12, "d %d cpu %s want_plogw %d threads %d: %g", d,
                    embr_cpu_name((embr_cpu_level)level), want, threads, rel_diff(att, ref, N * d));
          if (want) CHECK_NEAR(pl / plogw_ref, 1, 1e-12);
        }
    CHECK(embr_cpu_force(embr_cpu_detect()) == 0);
    embr_affinities_free(&P);
    free(y);
  }
}

/* Total gradient (exaggeration x attraction - repulsion / Z) with a given repulsion. */
static void total_grad(const double *att, const double *rep, double z, double exag, int64_t m, double *g) {
  for (int64_t i = 0; i < m; i++) g[i] = exag * att[i] - rep[i] / z;
}

typedef struct approx_err {
  double grad, z, rep;
} approx_err;

/* The exact forces of one map. */
typedef struct exact_forces {
  double *att, *rep, z;
} exact_forces;

static exact_forces exact_of(const double *y, int64_t n, int d, const embr_affinities *P) {
  exact_forces e;
  e.att = malloc(sizeof(double) * (size_t)(n * d));
  e.rep = malloc(sizeof(double) * (size_t)(n * d));
  embr__tsne_attract(P, y, d, e.att, 1, 0);
  e.z = embr__tsne_rep_exact(y, n, d, e.rep, 1);
  return e;
}

/* Compares BH (theta) or FFT (theta -1: default, the near / far split; -2: the split off, one
 * grid with full zero padding) with exact on one map. */
static approx_err approx_vs_exact(const double *y, int64_t n, int d, const exact_forces *ex, double exag,
                                  double theta) {
  size_t m = (size_t)(n * d);
  double *ra = malloc(sizeof(double) * m), *ge = malloc(sizeof(double) * m), *ga = malloc(sizeof(double) * m);
  double za = NAN;
  if (theta >= 0) {
    za = embr__tsne_rep_bh(y, n, d, theta, ra, 1);
  } else {
    embr_tsne_params dp = embr_tsne_params_default();
    tsne_fft *f = NULL;
    const int no_split = theta < -1.5;
    CHECK(embr__tsne_fft_create(&f, dp.fft_points, dp.fft_min_boxes, dp.fft_box_size, 1) == 0);
    if (no_split) CHECK(embr__tsne_fft_split(f, 0, 0, 0, 0, 0) == 0);
    CHECK(embr__tsne_rep_fft(f, y, n, ra, &za) == 0);
    /* a second call on the same plan (the cached kernel spectrum) gives the same */
    double *ra2 = malloc(sizeof(double) * m), za2 = NAN;
    CHECK(embr__tsne_rep_fft(f, y, n, ra2, &za2) == 0);
    CHECK(za2 == za && memcmp(ra, ra2, sizeof(double) * m) == 0);
    embr__tsne_fft_free(f);
    /* 2, 3 and 6 threads split the spreading (6: more threads than spreading grids) and the
     * row / column passes: the same up to the order of float sums (the repulsion
     * y phi_1 - phi_y cancels digits: 2e-5 measured) */
    for (int nt = 2; nt <= 6; nt += nt == 3 ? 3 : 1) {
      CHECK(embr__tsne_fft_create(&f, dp.fft_points, dp.fft_min_boxes, dp.fft_box_size, nt) == 0);
      if (no_split) CHECK(embr__tsne_fft_split(f, 0, 0, 0, 0, 0) == 0);
      CHECK(embr__tsne_rep_fft(f, y, n, ra2, &za2) == 0);
      CHECK_MSG(rel_diff(ra2, ra, (int64_t)m) < 1e-4 && fabs(za2 / za - 1) < 1e-6,
                "FFT on %d threads: repulsion rel. diff %.3g, Z %.3g from one thread", nt,
                rel_diff(ra2, ra, (int64_t)m), fabs(za2 / za - 1));
      embr__tsne_fft_free(f);
    }
    free(ra2);
  }
  total_grad(ex->att, ex->rep, ex->z, exag, (int64_t)m, ge);
  total_grad(ex->att, ra, za, exag, (int64_t)m, ga);
  approx_err e = {rel_diff(ga, ge, (int64_t)m), fabs(za / ex->z - 1), rel_diff(ra, ex->rep, (int64_t)m)};
  free(ra);
  free(ge);
  free(ga);
  return e;
}

/* Non-equilibrium maps: clusters spread over 3-40 units with P from random lists within each
 * cluster. FFT (default parameters): total gradient within 1% of exact, Z within 1%. Barnes-Hut:
 * theta = 0 is exact; at theta = 0.5 the monopole approximation with this (sklearn/openTSNE-style:
 * cell side / distance to the centre of mass) opening criterion is off by 1-2.5% in the total
 * gradient on these maps (0.7-1.4% in the repulsion itself; the error falls as theta^2.5), so
 * the 1% bound is checked at theta = 0.25 and theta = 0.5 gets a 3% bound; Z within 1% at 0.5. */
static void test_forces_approx_vs_exact(void) {
  enum { N = 2000 };
  static int label[N];
  const struct {
    int d, nc;
    double span, sd, exag;
  } maps[] = {
      {2, 6, 30, 1.5, 1}, {2, 4, 12, 1.0, 1}, {2, 8, 40, 2.5, 1}, {2, 5, 3, 0.3, 12}, /* early-exaggeration sized */
      {2, 10, 120, 3.0, 1}, /* wider than the FFT's min_boxes unit boxes: the grid grows with the map */
      {2, 12, 300, 4.0, 1}, /* 15x the FFT's near radius: most of the repulsion is far field */
      {3, 6, 30, 1.5, 1}, {3, 4, 12, 1.0, 1}, {3, 5, 3, 0.3, 12},
  };
  int verbose = getenv("EMBR_TEST_VERBOSE") != NULL;
  for (size_t c = 0; c < sizeof maps / sizeof maps[0]; c++) {
    int d = maps[c].d;
    double *y = make_map(N, d, maps[c].nc, maps[c].span, maps[c].sd, 700 + c, label);
    embr_affinities P;
    random_cluster_P(N, label, 30, 10, 800 + c, &P);
    exact_forces ex = exact_of(y, N, d, &P);
    approx_err bh = approx_vs_exact(y, N, d, &ex, maps[c].exag, 0.5);
    CHECK_MSG(bh.grad < 3e-2 && bh.z < 1e-2, "BH theta 0.5 %d-D map %zu: gradient rel. error %.3g, Z %.3g", d, c,
              bh.grad, bh.z);
    approx_err bh25 = approx_vs_exact(y, N, d, &ex, maps[c].exag, 0.25);
    CHECK_MSG(bh25.grad < 1e-2 && bh25.z < 1e-2, "BH theta 0.25 %d-D map %zu: gradient rel. error %.3g, Z %.3g", d, c,
              bh25.grad, bh25.z);
    CHECK_MSG(bh25.rep < 0.5 * bh.rep, "BH %d-D map %zu: repulsion error %.3g at theta 0.25, %.3g at 0.5", d, c,
              bh25.rep, bh.rep);
    approx_err bh0 = approx_vs_exact(y, N, d, &ex, maps[c].exag, 0.0);
    CHECK_MSG(bh0.rep < 1e-9 && bh0.z < 1e-9, "BH theta 0 %d-D map %zu: repulsion rel. error %.3g, Z %.3g", d, c,
              bh0.rep, bh0.z);
    if (verbose)
      fprintf(stderr, "  map %zu (%d-D): BH 0.5 grad %.2e Z %.2e; 0.25 grad %.2e Z %.2e; 0: rep %.2e Z %.2e\n", c, d,
              bh.grad, bh.z, bh25.grad, bh25.z, bh0.rep, bh0.z);
    if (d == 2) {
      /* the near / far split (default) and the single fully padded grid: both within 1e-2; Z
       * within 1e-3 (measured <= 6e-5 either way) */
      approx_err ff = approx_vs_exact(y, N, d, &ex, maps[c].exag, -1);
      CHECK_MSG(ff.grad < 1e-2 && ff.z < 1e-3, "FFT map %zu: gradient rel. error %.3g, Z %.3g", c, ff.grad, ff.z);
      approx_err f1 = approx_vs_exact(y, N, d, &ex, maps[c].exag, -2);
      CHECK_MSG(f1.grad < 1e-2 && f1.z < 1e-3, "FFT without split, map %zu: gradient rel. error %.3g, Z %.3g", c,
                f1.grad, f1.z);
      if (verbose)
        fprintf(stderr, "  map %zu: FFT grad %.2e Z %.2e; without split grad %.2e Z %.2e\n", c, ff.grad, ff.z,
                f1.grad, f1.z);
    }
    free(ex.att);
    free(ex.rep);
    embr_affinities_free(&P);
    free(y);
  }
}

/* The FFT's far field: two clusters 100 units apart (5x the near kernels' reach), so the push of
 * one on the other comes from the coarse grid alone. Every point's repulsion within 1e-2 of exact
 * and Z within 1e-3; summed over one cluster, where the pairwise forces within it cancel, what is
 * left is the other cluster's push: within 3e-2 (the near field's interpolation errors do not
 * cancel exactly: 1.0e-2 measured, 0.4e-2 without the split; without the far field it would be
 * 100 %). Then with the near part cut at 6 units (a 24-node padding) and the coarse grid's
 * spacing 0.5: a wrap-around of the fine grid's circular convolution would show; and with the
 * split off. */
static void test_fft_far_field(void) {
  enum { N = 1200 };
  embr_rng r;
  embr_rng_seed(&r, 4242);
  double *y = malloc(sizeof(double) * 2 * N), re[2 * N], ra[2 * N];
  for (int i = 0; i < N; i++) {
    double cx = i < N / 2 ? 0 : 100, cy = i < N / 2 ? 0 : 30;
    y[2 * i] = cx + 3 * embr_rng_normal(&r);
    y[2 * i + 1] = cy + 3 * embr_rng_normal(&r);
  }
  double ze = embr__tsne_rep_exact(y, N, 2, re, 1);
  embr_tsne_params dp = embr_tsne_params_default();
  for (int variant = 0; variant < 3; variant++) {
    tsne_fft *f = NULL;
    CHECK(embr__tsne_fft_create(&f, dp.fft_points, dp.fft_min_boxes, dp.fft_box_size, 2) == 0);
    if (variant == 1) CHECK(embr__tsne_fft_split(f, 2, 3, 6, 2, 4) == 0);
    if (variant == 2) CHECK(embr__tsne_fft_split(f, 0, 0, 0, 0, 0) == 0);
    double za = NAN;
    CHECK(embr__tsne_rep_fft(f, y, N, ra, &za) == 0);
    double se[2] = {0, 0}, sa[2] = {0, 0};
    for (int i = 0; i < N / 2; i++)
      for (int a = 0; a < 2; a++) {
        se[a] += re[2 * i + a];
        sa[a] += ra[2 * i + a];
      }
    double net_err = hypot(sa[0] - se[0], sa[1] - se[1]) / hypot(se[0], se[1]);
    CHECK_MSG(net_err < 3e-2, "variant %d: net push on cluster A %g %g, exact %g %g", variant, sa[0], sa[1], se[0],
              se[1]);
    CHECK_MSG(rel_diff(ra, re, 2 * N) < 1e-2 && fabs(za / ze - 1) < 1e-3, "variant %d: repulsion %.3g, Z %.3g",
              variant, rel_diff(ra, re, 2 * N), fabs(za / ze - 1));
    embr__tsne_fft_free(f);
  }
  /* bad split parameters are refused */
  tsne_fft *f = NULL;
  CHECK(embr__tsne_fft_create(&f, dp.fft_points, dp.fft_min_boxes, dp.fft_box_size, 1) == 0);
  CHECK(embr__tsne_fft_split(f, 8, 20, 12, 8, 4) == EMBR_EINVAL);
  CHECK(embr__tsne_fft_split(f, 8, 12, 20, 8, 11) == EMBR_EINVAL);
  embr__tsne_fft_free(f);
  free(y);
}

/* Barnes-Hut with stacked identical points: a point does not count itself in Z. */
static void test_bh_duplicates(void) {
  enum { N = 300 };
  embr_rng r;
  embr_rng_seed(&r, 909);
  for (int d = 2; d <= 3; d++) {
    double y[N * 3], re[N * 3], rb[N * 3];
    for (int i = 0; i < N * d; i++) y[i] = 0.1 * (double)(int)embr_rng_below(&r, 200) + 0.1;
    /* groups of 2 and 3 identical points at coordinates like 0.3 (not sums of exact binary
     * fractions: the cell's centre of mass of three copies is not bit-equal to the copies) */
    for (int g = 0; g < 10; g++)
      for (int a = 0; a < d; a++) {
        y[(30 * g + 1) * d + a] = y[30 * g * d + a];
        if (g % 2) y[(30 * g + 2) * d + a] = y[30 * g * d + a];
      }
    double ze = embr__tsne_rep_exact(y, N, d, re, 1);
    double zb = embr__tsne_rep_bh(y, N, d, 0.0, rb, 1);
    CHECK(rel_diff(rb, re, N * d) < 1e-9);
    CHECK_MSG(fabs(zb / ze - 1) < 1e-9,
              "%d-D, 3 identical points: Barnes-Hut (theta 0) Z %.12g vs exact %.12g (diff %.3g: a point "
              "counts itself)",
              d, zb, ze, zb - ze);
    /* with only pairs (two copies average exactly) Barnes-Hut at theta 0 is exact */
    for (int g = 1; g < 10; g += 2)
      for (int a = 0; a < d; a++) y[(30 * g + 2) * d + a] += 0.05;
    ze = embr__tsne_rep_exact(y, N, d, re, 1);
    zb = embr__tsne_rep_bh(y, N, d, 0.0, rb, 1);
    CHECK_NEAR(zb / ze, 1, 1e-9);
  }
}

/* ---- optimisation ------------------------------------------------------------------------------ */

typedef struct kl_log {
  int count;
  uint64_t at[64];
  double kl[64];
  int every;
} kl_log;

static int kl_cb(void *user, uint64_t done, uint64_t total, double rate, const char *detail) {
  (void)total;
  (void)rate;
  kl_log *l = user;
  if (detail && l->every > 0 && done % (uint64_t)l->every == 0 && l->count < 64 &&
      (l->count == 0 || l->at[l->count - 1] != done)) {
    double v;
    if (sscanf(detail, "KL %lf", &v) == 1) {
      l->at[l->count] = done;
      l->kl[l->count++] = v;
    }
  }
  return 0;
}

static void test_optimize_methods(void) {
  enum { N = 400, D = 20 };
  int *label = malloc(sizeof(int) * N);
  float *x = make_blobs(N, D, 4, 4.0, 1001, 1002, label);
  const struct {
    embr_tsne_method m;
    int d;
    const char *name;
  } runs[] = {{EMBR_TSNE_EXACT, 2, "exact"}, {EMBR_TSNE_BH, 2, "bh"}, {EMBR_TSNE_FFT, 2, "fft"},
              {EMBR_TSNE_BH, 3, "bh-3d"}};
  for (size_t c = 0; c < sizeof runs / sizeof runs[0]; c++) {
    embr_tsne_params p = embr_tsne_params_default();
    p.method = runs[c].m;
    p.out_dim = runs[c].d;
    p.iters = 300;
    p.exaggeration_iters = 100;
    p.kl_every = 25;
    p.n_threads = 1;
    /* FFT: a coarser minimum grid than the default 50 boxes (which the force test covers) keeps
     * the run short under sanitizers; the map grows past 20 boxes of side 1 anyway */
    p.fft_min_boxes = 20;
    kl_log log;
    memset(&log, 0, sizeof log);
    log.every = p.kl_every;
    p.progress.fn = kl_cb;
    p.progress.user = &log;
    p.progress.min_interval = 1e9; /* only the forced calls (every kl_every iterations) */
    float *y = malloc(sizeof(float) * N * 3);
    embr_tsne_stats st;
    double t0 = embr_now();
    int rc = embr_tsne(x, N, D, D, &p, y, &st);
    double secs = embr_now() - t0;
    CHECK_MSG(rc == 0, "%s: %s", runs[c].name, embr_last_error());
    if (rc) {
      free(y);
      continue;
    }
    CHECK_EQ_INT(st.method, runs[c].m);
    CHECK(st.nnz > 0);
    CHECK_EQ_INT(log.count, p.iters / p.kl_every);
    /* KL after early exaggeration falls clearly. */
    int first = -1;
    for (int i = 0; i < log.count; i++)
      if (log.at[i] > (uint64_t)p.exaggeration_iters) {
        first = i;
        break;
      }
    REQUIRE(first >= 0);
    double k0 = log.kl[first], k1 = log.kl[log.count - 1];
    CHECK_MSG(k1 < k0 - 0.02 && k1 < 0.97 * k0, "%s: KL %.4f after exaggeration, %.4f at the end", runs[c].name, k0,
              k1);
    for (int i = 0; i < log.count; i++) CHECK(isfinite(log.kl[i]) && log.kl[i] > 0);
    /* Clusters separate. */
    double acc = knn_accuracy(y, N, runs[c].d, label, 5);
    CHECK_MSG(acc >= 0.95, "%s: 5-NN accuracy %.3f", runs[c].name, acc);
    /* Reported KL vs exact KL of the final map. */
    embr_affinities P;
    REQUIRE(embr_tsne_affinities(x, N, D, D, &p, &P) == 0);
    double kl = NAN;
    CHECK(embr_tsne_kl_exact(&P, y, runs[c].d, 1, &kl) == 0);
    CHECK_MSG(fabs(kl - st.kl) < 0.03 * kl, "%s: exact KL %.5f, reported %.5f", runs[c].name, kl, st.kl);
    CHECK_MSG(fabs(kl - k1) < 0.05 * kl, "%s: exact KL %.5f, last reported during the run %.5f", runs[c].name, kl, k1);
    embr_affinities_free(&P);
    /* Map is centred and finite. */
    double mean[3] = {0, 0, 0};
    int finite = 1;
    for (int i = 0; i < N; i++)
      for (int a = 0; a < runs[c].d; a++) {
        finite &= isfinite(y[i * runs[c].d + a]);
        mean[a] += y[i * runs[c].d + a] / N;
      }
    CHECK(finite);
    for (int a = 0; a < runs[c].d; a++) CHECK(fabs(mean[a]) < 1e-2);
    if (getenv("EMBR_TEST_VERBOSE"))
      fprintf(stderr, "  %s: KL %.4f -> %.4f (final %.4f, exact %.4f), acc %.3f, %.2f s\n", runs[c].name, k0, k1,
              st.kl, kl, acc, secs);
    free(y);
  }
  free(x);
  free(label);
}

/* One thread and a fixed seed: the same bytes twice; another seed (random start) differs. */
static void test_optimize_deterministic(void) {
  enum { N = 300, D = 20 };
  int *label = malloc(sizeof(int) * N);
  float *x = make_blobs(N, D, 3, 4.0, 1101, 1102, label);
  const embr_tsne_method ms[] = {EMBR_TSNE_EXACT, EMBR_TSNE_BH, EMBR_TSNE_FFT};
  for (int c = 0; c < 3; c++) {
    embr_tsne_params p = embr_tsne_params_default();
    p.method = ms[c];
    p.iters = 80;
    p.exaggeration_iters = 40;
    p.n_threads = 1;
    p.fft_min_boxes = 20;
    p.init = EMBR_TSNE_INIT_RANDOM;
    p.seed = 7;
    float *a = malloc(sizeof(float) * N * 2), *b = malloc(sizeof(float) * N * 2), *o = malloc(sizeof(float) * N * 2);
    CHECK(embr_tsne(x, N, D, D, &p, a, NULL) == 0);
    CHECK(embr_tsne(x, N, D, D, &p, b, NULL) == 0);
    CHECK_MSG(memcmp(a, b, sizeof(float) * N * 2) == 0, "method %d: two runs differ", (int)ms[c]);
    /* the trajectory does not depend on how often KL is evaluated */
    p.kl_every = 0;
    CHECK(embr_tsne(x, N, D, D, &p, b, NULL) == 0);
    CHECK_MSG(memcmp(a, b, sizeof(float) * N * 2) == 0, "method %d: KL every 50 and never give different maps",
              (int)ms[c]);
    p.kl_every = 7;
    CHECK(embr_tsne(x, N, D, D, &p, b, NULL) == 0);
    CHECK_MSG(memcmp(a, b, sizeof(float) * N * 2) == 0, "method %d: KL every 50 and every 7 give different maps",
              (int)ms[c]);
    p.kl_every = 50;
    p.seed = 8;
    CHECK(embr_tsne(x, N, D, D, &p, o, NULL) == 0);
    CHECK_MSG(memcmp(a, o, sizeof(float) * N * 2) != 0, "method %d: seeds 7 and 8 give the same map", (int)ms[c]);
    free(a);
    free(b);
    free(o);
  }
  free(x);
  free(label);
}

/* Rows a and b of P agree (as maps column -> value, the a-b entry aside). */
static int same_p_rows(const embr_affinities *P, int a, int b) {
  if (P->row[a + 1] - P->row[a] != P->row[b + 1] - P->row[b]) return 0;
  for (int64_t s = P->row[a]; s < P->row[a + 1]; s++) {
    int j = P->col[s];
    if (j == b) continue;
    if (csr_get(P, b, j) != P->val[s]) return 0;
  }
  return 1;
}

/* Identical input rows end up at identical positions (the header's promise): exactly when their
 * rows of P agree. They do not when a third point's k-NN list is cut between the copies (ties
 * go to the lower id, so the third point's P holds one copy and not the other). */
static void test_identical_rows(void) {
  enum { N = 400, D = 12 };
  int *label = malloc(sizeof(int) * N);
  float *x = make_blobs(N, D, 3, 4.0, 1201, 1202, label);
  /* rows 1, 2 copy row 0; row 101 copies 100; 250, 251, 252 copy 253 */
  memcpy(x + 1 * D, x, sizeof(float) * D);
  memcpy(x + 2 * D, x, sizeof(float) * D);
  memcpy(x + 101 * D, x + 100 * D, sizeof(float) * D);
  for (int i = 250; i < 253; i++) memcpy(x + i * D, x + 253 * D, sizeof(float) * D);
  const int pairs[][2] = {{0, 1}, {0, 2}, {100, 101}, {250, 253}, {251, 253}, {252, 253}};
  enum { NPAIRS = sizeof pairs / sizeof pairs[0] };
  const embr_tsne_method ms[] = {EMBR_TSNE_EXACT, EMBR_TSNE_BH, EMBR_TSNE_FFT};
  int checked_same = 0;
  for (int c = 0; c < 3; c++)
    for (int d = 2; d <= (ms[c] == EMBR_TSNE_BH ? 3 : 2); d++) {
      embr_tsne_params p = embr_tsne_params_default();
      p.method = ms[c];
      p.out_dim = d;
      p.iters = 100;
      p.exaggeration_iters = 50;
      p.perplexity = 20;
      p.n_threads = 1;
      p.fft_min_boxes = 20;
      embr_affinities P;
      REQUIRE(embr_tsne_affinities(x, N, D, D, &p, &P) == 0);
      float *y = malloc(sizeof(float) * N * 3);
      REQUIRE(embr_tsne(x, N, D, D, &p, y, NULL) == 0);
      double lo = INFINITY, hi = -INFINITY;
      for (int i = 0; i < N * d; i++) {
        lo = fmin(lo, y[i]);
        hi = fmax(hi, y[i]);
      }
      int split = 0;
      double split_max = 0;
      for (int q = 0; q < NPAIRS; q++) {
        int a = pairs[q][0], b = pairs[q][1], same = 1;
        for (int k = 0; k < d; k++) same &= y[a * d + k] == y[b * d + k];
        double dist = sqrt(sqdist_f(y + a * d, y + b * d, d));
        /* always: the copies end up close together */
        CHECK_MSG(dist < 1e-3 * (hi - lo), "method %d %d-D: identical rows %d and %d are %.3g apart", (int)ms[c], d,
                  a, b, dist);
        if (same_p_rows(&P, a, b)) {
          checked_same++;
          CHECK_MSG(same, "method %d %d-D: rows %d and %d are identical, and so are their rows of P, but they end "
                    "up at different positions", (int)ms[c], d, a, b);
        } else if (!same) {
          split++;
          split_max = fmax(split_max, dist);
        }
      }
      /* Documented: copies whose rows of P differ (a third point's neighbour list cut between them)
       * may end slightly apart, but close. */
      CHECK_MSG(split == 0 || split_max < 1e-2 * (hi - lo),
                "method %d %d-D: %d of %d pairs of identical rows end up %.3g apart (map span %.3g)", (int)ms[c], d,
                split, NPAIRS, split_max, hi - lo);
      embr_affinities_free(&P);
      free(y);
    }
  CHECK(checked_same > 0);
  free(x);
  free(label);
}

static int cancel_cb(void *u, uint64_t done, uint64_t total, double rate, const char *detail) {
  (void)u;
  (void)total;
  (void)rate;
  (void)detail;
  return done >= 20;
}

/* ---- bad inputs ------------------------------------------------------------------------------- */

static void test_bad_inputs(void) {
  enum { D = 5 };
  int label[200];
  float *x = make_blobs(200, D, 2, 3.0, 1301, 1302, label);
  float y[200 * 3];
  embr_tsne_params p = embr_tsne_params_default();
  p.iters = 20;
  p.exaggeration_iters = 10;
  embr_tsne_stats st;
  /* too few points for the perplexity: n = 30 < 3 x 10 + 1 */
  p.perplexity = 10;
  CHECK(embr_tsne(x, 30, D, D, &p, y, &st) == EMBR_EINVAL);
  CHECK_MSG(strstr(embr_last_error(), "perplexity 10") != NULL, "%s", embr_last_error());
  CHECK(embr_tsne(x, 31, D, D, &p, y, &st) == 0); /* just enough */
  p.perplexity = 30;
  CHECK(embr_tsne(x, 90, D, D, &p, y, &st) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "perplexity") != NULL);
  p.perplexity = 0.5;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  p.perplexity = 10;
  /* NaN / Inf in the data */
  float keep = x[7 * D + 3];
  x[7 * D + 3] = NAN;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EVALUE);
  CHECK_MSG(strstr(embr_last_error(), "row 7") && strstr(embr_last_error(), "column 3"), "%s", embr_last_error());
  x[7 * D + 3] = -INFINITY;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EVALUE);
  x[7 * D + 3] = keep;
  /* output dimension */
  p.out_dim = 4;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "2 or 3") != NULL);
  p.out_dim = 1;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  /* FFT in 3-D */
  p.out_dim = 3;
  p.method = EMBR_TSNE_FFT;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EUNSUPPORTED);
  CHECK(strstr(embr_last_error(), "FFT") != NULL);
  p.out_dim = 2;
  /* unknown method, bad dimension / stride */
  p.method = (embr_tsne_method)7;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  p.method = EMBR_TSNE_AUTO;
  CHECK(embr_tsne(x, 200, D - 1, D, &p, y, &st) == EMBR_EINVAL);
  CHECK(embr_tsne(x, 200, D, 0, &p, y, &st) == EMBR_EINVAL);
  /* the exact method above its limit: refused up front (no N^2 work, no big allocation) */
  {
    int64_t n = 60000;
    float *big = calloc((size_t)n * 2, sizeof(float));
    float *by = malloc(sizeof(float) * (size_t)n * 2);
    p.method = EMBR_TSNE_EXACT;
    double t0 = embr_now();
    int rc = embr_tsne(big, n, 2, 2, &p, by, &st);
    double dt = embr_now() - t0;
    CHECK(rc == EMBR_EINVAL || rc == EMBR_ENOMEM);
    CHECK_MSG(strstr(embr_last_error(), "exact") != NULL, "%s", embr_last_error());
    CHECK_MSG(dt < 0.5, "refusing took %.2f s", dt);
    /* the same through embr_tsne_optimize with a (empty) P of that size */
    embr_affinities P = {n, calloc((size_t)n + 1, sizeof(int64_t)), NULL, NULL};
    t0 = embr_now();
    CHECK(embr_tsne_optimize(&P, &p, by, 0, &st) == EMBR_EINVAL);
    CHECK(embr_now() - t0 < 0.5);
    free(P.row);
    free(big);
    free(by);
    p.method = EMBR_TSNE_AUTO;
  }
  /* other parameters */
  p.iters = 0;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  p.iters = 20;
  p.exaggeration = 0.5;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  p.exaggeration = 12;
  p.max_step = 0;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  p.max_step = 5;
  p.learning_rate = -1;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_EINVAL);
  p.learning_rate = 0;
  /* a progress callback cancels */
  p.iters = 200;
  p.progress.fn = cancel_cb;
  p.progress.min_interval = 1e-9;
  CHECK(embr_tsne(x, 200, D, D, &p, y, &st) == EMBR_ECANCELED);
  p.progress.fn = NULL;
  /* NULL params: the defaults (perplexity 30 needs 91 points) */
  CHECK(embr_tsne(x, 90, D, D, NULL, y, NULL) == EMBR_EINVAL);
  free(x);
}

/* embr_tsne_kl_exact with an output dimension other than 2 or 3 must be refused; run in a child
 * process because the defect is a stack buffer overflow. */
static void test_kl_exact_bad_dim(void) {
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    int64_t row[5] = {0, 0, 0, 0, 0};
    embr_affinities P = {4, row, NULL, NULL};
    float y[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    double kl = 0;
    int rc = embr_tsne_kl_exact(&P, y, 4, 1, &kl);
    _exit(rc == EMBR_EINVAL ? 0 : 3);
  }
  int status = 0;
  REQUIRE(pid > 0 && waitpid(pid, &status, 0) == pid);
  int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  CHECK_MSG(ok,
            "embr_tsne_kl_exact(P, y, out_dim = 4, ...) is not refused (child %s %d): rep_exact writes past its "
            "3-element stack arrays",
            WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* ---- transform -------------------------------------------------------------------------------- */

static void test_transform(void) {
  enum { NR = 600, NN = 150, D = 20 };
  int *lr = malloc(sizeof(int) * NR), *ln = malloc(sizeof(int) * NN);
  /* same centres (seed), different points */
  float *xr = make_blobs(NR, D, 4, 4.0, 1401, 1402, lr);
  float *xn = make_blobs(NN, D, 4, 4.0, 1401, 1403, ln);
  embr_tsne_params p = embr_tsne_params_default();
  p.iters = 400;
  p.exaggeration_iters = 125;
  p.method = EMBR_TSNE_BH;
  p.n_threads = 1;
  float *yr = malloc(sizeof(float) * NR * 2), *yn = malloc(sizeof(float) * NN * 2);
  REQUIRE(embr_tsne(xr, NR, D, D, &p, yr, NULL) == 0);
  p.n_threads = 2; /* the transform is parallel over the new points */
  REQUIRE(embr_tsne_transform(xr, NR, D, yr, xn, NN, D, D, &p, yn) == 0);
  /* each new point's 5 nearest reference points in the map: majority of its blob */
  int good = 0, nearest_good = 0;
  for (int i = 0; i < NN; i++) {
    int same = 0, used[5];
    double bd[5];
    for (int t = 0; t < 5; t++) {
      int b = -1;
      for (int j = 0; j < NR; j++) {
        int taken = 0;
        for (int s = 0; s < t; s++) taken |= used[s] == j;
        if (taken) continue;
        double dd = sqdist_f(yn + i * 2, yr + j * 2, 2);
        if (b < 0 || dd < bd[t]) {
          b = j;
          bd[t] = dd;
        }
      }
      used[t] = b;
      same += lr[b] == ln[i];
    }
    good += same >= 3;
    nearest_good += lr[used[0]] == ln[i];
  }
  CHECK_MSG(good >= 0.9 * NN, "%d of %d new points land among their blob", good, NN);
  CHECK_MSG(nearest_good >= 0.9 * NN, "%d of %d new points' nearest map neighbour is of their blob", nearest_good, NN);
  /* placed inside the map's extent */
  float lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
  for (int i = 0; i < NR; i++)
    for (int a = 0; a < 2; a++) {
      lo[a] = fminf(lo[a], yr[i * 2 + a]);
      hi[a] = fmaxf(hi[a], yr[i * 2 + a]);
    }
  /* within the reference map's bounding box, give or take 5% of its width */
  int inside = 0;
  double mx = 0.05 * (hi[0] - lo[0]), my = 0.05 * (hi[1] - lo[1]);
  for (int i = 0; i < NN; i++) {
    int in = yn[i * 2] >= lo[0] - mx && yn[i * 2] <= hi[0] + mx && yn[i * 2 + 1] >= lo[1] - my &&
             yn[i * 2 + 1] <= hi[1] + my;
    if (!in && getenv("EMBR_TEST_VERBOSE"))
      fprintf(stderr, "  new point %d at (%g, %g), map [%g, %g] x [%g, %g]\n", i, yn[2 * i], yn[2 * i + 1], lo[0],
              hi[0], lo[1], hi[1]);
    inside += in;
  }
  CHECK_MSG(inside == NN, "%d of %d new points outside the map", NN - inside, NN);
  /* a reference point placed again lands near its own position */
  float again[2 * 3];
  REQUIRE(embr_tsne_transform(xr, NR, D, yr, xr, 3, D, D, &p, again) == 0);
  for (int i = 0; i < 3; i++) {
    double d2 = sqdist_f(again + i * 2, yr + i * 2, 2);
    double spread = (hi[0] - lo[0]) * (hi[0] - lo[0]);
    CHECK_MSG(d2 < 0.01 * spread, "reference point %d re-placed %.3g away", i, sqrt(d2));
  }
  /* too few reference points for the perplexity */
  CHECK(embr_tsne_transform(xr, 50, D, yr, xn, NN, D, D, &p, yn) == EMBR_EINVAL);
  /* a NaN in a new point: embr_tsne refuses non-finite input; transform places it somewhere */
  xn[3 * D + 4] = NAN;
  float nan_y[2 * 4] = {0};
  int rc = embr_tsne_transform(xr, NR, D, yr, xn, 4, D, D, &p, nan_y);
  CHECK_MSG(rc == EMBR_EVALUE,
            "embr_tsne_transform with NaN in new point 3 returned %d and placed it at (%g, %g)", rc, nan_y[6],
            nan_y[7]);
  free(xr);
  free(xn);
  free(yr);
  free(yn);
  free(lr);
  free(ln);
}

/* Precomputed sparse distances ("i j d" rows in any order, self rows ignored) give the P of the
 * same neighbour lists, checked against the dense reference; hostile rows are refused. */
static void test_affinities_sparse(void) {
  enum { N = 150, K = 12 };
  embr_rng r;
  embr_rng_seed(&r, 404);
  int64_t *nbr = malloc(sizeof(int64_t) * N * K);
  float *dist = malloc(sizeof(float) * N * K);
  float *rows = malloc(sizeof(float) * 3 * (N * K + N));
  int64_t nr = 0;
  for (int64_t i = 0; i < N; i++)
    for (int t = 0; t < K; t++) {
      int64_t j;
      int dup;
      do {
        j = (int64_t)embr_rng_below(&r, N);
        dup = j == i;
        for (int s = 0; s < t; s++) dup |= nbr[i * K + s] == j;
      } while (dup);
      nbr[i * K + t] = (t >= K - 2 && i % 7 == 0) ? -1 : j; /* some shorter lists */
      dist[i * K + t] = (float)(0.5 + 3 * embr_rng_double(&r));
      if (nbr[i * K + t] < 0) continue;
      rows[3 * nr] = (float)i, rows[3 * nr + 1] = (float)j, rows[3 * nr + 2] = dist[i * K + t];
      nr++;
    }
  for (int64_t i = 0; i < N; i += 10, nr++) /* self rows carry nothing */
    rows[3 * nr] = rows[3 * nr + 1] = (float)i, rows[3 * nr + 2] = 0;
  for (int64_t a = nr - 1; a > 0; a--) { /* any order */
    int64_t b = (int64_t)embr_rng_below(&r, (uint64_t)a + 1);
    for (int c = 0; c < 3; c++) {
      float t = rows[3 * a + c];
      rows[3 * a + c] = rows[3 * b + c];
      rows[3 * b + c] = t;
    }
  }
  embr_tsne_params prm = embr_tsne_params_default();
  prm.perplexity = 4;
  embr_affinities P;
  REQUIRE(embr_tsne_affinities_sparse(rows, nr, 3, &prm, &P) == 0);
  CHECK(P.n == N);
  double rel = check_affinities(&P, nbr, dist, N, K, 4);
  CHECK_MSG(rel < 1e-6, "sparse P differs from the dense reference by %g", rel);
  embr_affinities_free(&P);
  /* refusals: a fractional or negative index, a negative distance, more points than rows can
   * name, one hub point holding most rows (a huge padded table from a small input) */
  static const float bad[][3] = {{0, 1.5f, 1}, {-1, 2, 1}, {0, 1, -0.5f}, {0, 1000, 1}};
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
    float t[6] = {bad[c][0], bad[c][1], bad[c][2], 1, 0, 1};
    CHECK_MSG(embr_tsne_affinities_sparse(t, 2, 3, &prm, &P) != 0, "case %zu accepted", c);
    CHECK(strstr(embr_last_error(), "precomputed sparse input") != NULL);
  }
  enum { HUB = 3000 };
  float *hub = malloc(sizeof(float) * 3 * 2 * HUB);
  for (int64_t i = 0; i < HUB; i++) {
    hub[6 * i] = 0, hub[6 * i + 1] = (float)(i + 1), hub[6 * i + 2] = 1; /* point 0: HUB neighbours */
    hub[6 * i + 3] = (float)(i + 1), hub[6 * i + 4] = 0, hub[6 * i + 5] = 1;
  }
  CHECK(embr_tsne_affinities_sparse(hub, 2 * HUB, 3, &prm, &P) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "neighbour rows") != NULL);
  free(hub);
  free(rows);
  free(nbr);
  free(dist);
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_kl_exact_bad_dim, test_pca_reference, test_calibrate_row_entropy,
                   test_affinities_from_lists, test_affinities_sparse, test_affinities_from_data, test_knn_approximate, test_rep_exact_hand,
                   test_rep_exact_random, test_attract_reference, test_forces_approx_vs_exact, test_fft_far_field, test_bh_duplicates,
                   test_optimize_methods,
                   test_optimize_deterministic, test_identical_rows, test_bad_inputs, test_transform);
}
