/* Evaluation protocols: every figure against a slow, obviously-correct reference written here
 * (AUC by counting all positive/negative couples, thresholds by trying every candidate on every
 * fold, identification by ranking all similarities in double), hand-computed tiny cases, perfectly
 * separated data, the pairs-file reader on valid and broken files, and rejected arguments. */
#include "embr/evaluate.h"
#include "harness.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- scratch directory ------------------------------------------------------------------------ */

static const char *write_text(const char *name, const char *text, size_t len) {
  const char *path = th_path(name);
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(1);
  }
  fwrite(text, 1, len, f);
  fclose(f);
  return path;
}

/* ---- data ------------------------------------------------------------------------------------- */

/* n rows of dim floats (stride ld, padding set to NaN so reading it would show) around `classes`
 * random centres; labels i % classes, spread `noise`. */
static float *make_clusters(int64_t n, int64_t dim, int64_t ld, int classes, double noise,
                            uint64_t seed, int32_t *labels) {
  embr_rng rng;
  embr_rng_seed(&rng, seed);
  double *centre = malloc(sizeof *centre * (size_t)(classes * dim));
  for (int64_t i = 0; i < classes * dim; i++) centre[i] = embr_rng_normal(&rng);
  float *x = malloc(sizeof *x * (size_t)(n * ld));
  for (int64_t i = 0; i < n; i++) {
    labels[i] = (int32_t)(i % classes);
    for (int64_t j = 0; j < ld; j++)
      x[i * ld + j] = j < dim ? (float)(centre[labels[i] * dim + j] + noise * embr_rng_normal(&rng))
                              : NAN;
  }
  free(centre);
  return x;
}

/* The header's score: cosine, 0 for a zero row (dot times the inverse norms, as rows are
 * normalised, so exact ties of small-integer data stay exact ties). */
static double ref_score(const float *x, int64_t ld, int64_t dim, int64_t a, int64_t b) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t j = 0; j < dim; j++) {
    dot += (double)x[a * ld + j] * x[b * ld + j];
    na += (double)x[a * ld + j] * x[a * ld + j];
    nb += (double)x[b * ld + j] * x[b * ld + j];
  }
  if (na == 0 || nb == 0) return 0;
  return dot * (1.0 / sqrt(na)) * (1.0 / sqrt(nb));
}

/* ---- verification reference ------------------------------------------------------------------ */

/* Folds as documented in src/train/evaluate.c: contiguous labels, Fisher-Yates shuffled. */
static void ref_folds(int64_t P, int folds, uint64_t seed, int *fold) {
  int64_t i = 0;
  for (int f = 0; f < folds; f++)
    for (int64_t j = 0; j < P / folds + (f < P % folds); j++) fold[i++] = f;
  embr_rng rng;
  embr_rng_seed(&rng, seed);
  for (i = P - 1; i > 0; i--) {
    int64_t j = (int64_t)embr_rng_below(&rng, (uint64_t)i + 1);
    int t = fold[i];
    fold[i] = fold[j];
    fold[j] = t;
  }
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Pairs outside fold `f` classified right by "same iff score > t". */
static int64_t train_right(const double *s, const uint8_t *same, const int *fold, int64_t P, int f,
                           double t) {
  int64_t r = 0;
  for (int64_t i = 0; i < P; i++)
    if (fold[i] != f) r += (s[i] > t) == (same[i] != 0);
  return r;
}

/* Tries every candidate threshold: below all, midpoints of consecutive distinct training scores,
 * above all; keeps the first (lowest) that is best on the training pairs. */
static double ref_threshold(const double *s, const uint8_t *same, const int *fold, int64_t P, int f) {
  double *u = malloc(sizeof *u * (size_t)P);
  int64_t m = 0;
  for (int64_t i = 0; i < P; i++)
    if (fold[i] != f) u[m++] = s[i];
  qsort(u, (size_t)m, sizeof *u, cmp_double);
  double best_t = nextafter(u[0], -INFINITY);
  int64_t best = train_right(s, same, fold, P, f, best_t);
  for (int64_t i = 0; i < m; i++) {
    if (i + 1 < m && u[i + 1] == u[i]) continue;
    double t = i + 1 < m ? (u[i] + u[i + 1]) / 2 : nextafter(u[i], INFINITY);
    if (i + 1 < m && !(t < u[i + 1])) t = u[i];
    int64_t r = train_right(s, same, fold, P, f, t);
    if (r > best) {
      best = r;
      best_t = t;
    }
  }
  free(u);
  return best_t;
}

static double ref_auc(const double *s, const uint8_t *same, int64_t P) {
  double good = 0, couples = 0;
  for (int64_t i = 0; i < P; i++)
    for (int64_t j = 0; j < P; j++)
      if (same[i] && !same[j]) {
        couples++;
        good += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
      }
  return good / couples;
}

/* Every cut "accept score >= c" for each score c, and "reject all". */
static double ref_tar(const double *s, const uint8_t *same, int64_t P, double far) {
  int64_t pos = 0;
  for (int64_t i = 0; i < P; i++) pos += same[i];
  double best = 0;
  for (int64_t c = 0; c < P; c++) {
    int64_t tp = 0, fp = 0;
    for (int64_t i = 0; i < P; i++)
      if (s[i] >= s[c]) same[i] ? tp++ : fp++;
    if ((double)fp / (double)(P - pos) <= far && (double)tp / (double)pos > best)
      best = (double)tp / (double)pos;
  }
  return best;
}

static embr_verify_result ref_verify(const float *x, int64_t ld, int64_t dim, const embr_pairs *p,
                                     int folds, double far, uint64_t seed) {
  int64_t P = p->n;
  double *s = malloc(sizeof *s * (size_t)P);
  int *fold = malloc(sizeof *fold * (size_t)P);
  embr_verify_result r = {.pairs = P, .far = far};
  for (int64_t i = 0; i < P; i++) {
    s[i] = ref_score(x, ld, dim, p->a[i], p->b[i]);
    r.positives += p->same[i];
  }
  ref_folds(P, folds, seed, fold);
  double acc[4096];
  for (int f = 0; f < folds; f++) {
    double t = ref_threshold(s, p->same, fold, P, f);
    int64_t right = 0, size = 0;
    for (int64_t i = 0; i < P; i++)
      if (fold[i] == f) {
        size++;
        right += (s[i] > t) == (p->same[i] != 0);
      }
    acc[f] = (double)right / (double)size;
    r.accuracy += acc[f] / folds;
    r.threshold += t / folds;
  }
  for (int f = 0; f < folds; f++)
    r.accuracy_std += (acc[f] - r.accuracy) * (acc[f] - r.accuracy) / folds;
  r.accuracy_std = sqrt(r.accuracy_std);
  r.auc = ref_auc(s, p->same, P);
  r.tar = ref_tar(s, p->same, P, far);
  free(s);
  free(fold);
  return r;
}

static void check_verify(const embr_verify_result *got, const embr_verify_result *want) {
  CHECK_EQ_INT(got->pairs, want->pairs);
  CHECK_EQ_INT(got->positives, want->positives);
  CHECK_NEAR(got->accuracy, want->accuracy, 1e-12);
  CHECK_NEAR(got->accuracy_std, want->accuracy_std, 1e-12);
  CHECK_NEAR(got->threshold, want->threshold, 1e-12);
  CHECK_NEAR(got->auc, want->auc, 1e-12);
  CHECK_NEAR(got->far, want->far, 0);
  CHECK_NEAR(got->tar, want->tar, 1e-12);
}

/* ---- identification reference ------------------------------------------------------------------ */

typedef struct ref_id {
  int64_t gallery, probes, hits[EMBR_EVAL_MAX_K], hits1;
  int64_t uncertain; /* probes whose deciding similarities are within 1e-5 (float vs double) */
} ref_id;

static ref_id ref_identify(const float *x, int64_t n, int64_t dim, int64_t ld, const int32_t *lab,
                           int gpc, const int *ks, int nk) {
  ref_id r = {0};
  uint8_t *gal = malloc((size_t)n);
  double *sim = malloc(sizeof *sim * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    int64_t before = 0;
    for (int64_t h = 0; h < i; h++) before += lab[h] == lab[i];
    gal[i] = before < gpc;
    r.gallery += gal[i];
  }
  for (int64_t q = 0; q < n; q++) {
    if (gal[q]) continue;
    r.probes++;
    for (int64_t g = 0; g < n; g++)
      if (gal[g]) sim[g] = ref_score(x, ld, dim, q, g);
    /* Position of every same-class gallery row in the full ranking; the identity's rank is the
     * smallest. */
    int64_t rank = n, best = -1;
    for (int64_t g = 0; g < n; g++) {
      if (!gal[g] || lab[g] != lab[q]) continue;
      int64_t pos = 0;
      for (int64_t h = 0; h < n; h++)
        if (gal[h]) pos += sim[h] > sim[g] || (sim[h] == sim[g] && h < g);
      if (pos < rank) rank = pos, best = g;
    }
    int near = 0;
    for (int64_t h = 0; h < n; h++)
      if (gal[h] && lab[h] != lab[q] && fabs(sim[h] - sim[best]) < 1e-5) near = 1;
    r.uncertain += near;
    r.hits1 += rank < 1;
    for (int t = 0; t < nk; t++) r.hits[t] += rank < ks[t];
  }
  free(gal);
  free(sim);
  return r;
}

/* Library result vs reference; each uncertain probe may move a count by one. */
static void check_identify(const embr_identify_result *got, const ref_id *want, const int *ks,
                           int nk) {
  CHECK_EQ_INT(got->gallery, want->gallery);
  CHECK_EQ_INT(got->probes, want->probes);
  CHECK_EQ_INT(got->nk, nk);
  double q = (double)want->probes, tol = (double)want->uncertain / q + 1e-12;
  for (int t = 0; t < nk; t++) {
    CHECK_EQ_INT(got->k[t], ks[t]);
    CHECK_NEAR(got->recall[t], (double)want->hits[t] / q, tol);
  }
  CHECK_NEAR(got->rank1, (double)want->hits1 / q, tol);
  for (int t = nk; t < EMBR_EVAL_MAX_K; t++) CHECK(got->k[t] == 0 && got->recall[t] == 0);
}

/* ---- tests: verification ---------------------------------------------------------------------- */

/* Rows 0:(1,0) 1:(1,0) 2:(1,1) 3:(0,1) 4:(-1,0); pairs with row 0 score 1 (same), 0.7071
 * (different), 0 (same), -1 (different). Leave-one-out by hand: fold {1}: t=-0.5 from {.71 d, 0 s,
 * -1 d}, right; fold {.71}: t=-0.5, wrong; fold {0}: t=.8536, wrong; fold {-1}: t just below 0,
 * right. Accuracy 0.5, std 0.5; AUC 3/4; TAR 1/2 at FAR 0 and 1 at FAR 1/2. */
static void test_verify_hand_computed(void) {
  float x[] = {1, 0, 1, 0, 1, 1, 0, 1, -1, 0};
  int64_t a[] = {0, 0, 0, 0}, b[] = {1, 2, 3, 4};
  uint8_t same[] = {1, 0, 1, 0};
  embr_pairs p = {4, a, b, same};
  embr_verify_result r;
  for (uint64_t seed = 0; seed < 5; seed++) { /* leave-one-out: the shuffle cannot matter */
    REQUIRE(embr_eval_verify(x, 5, 2, 2, &p, 4, 0.0, seed, &r) == 0);
    CHECK_EQ_INT(r.pairs, 4);
    CHECK_EQ_INT(r.positives, 2);
    CHECK_NEAR(r.accuracy, 0.5, 1e-15);
    CHECK_NEAR(r.accuracy_std, 0.5, 1e-15);
    CHECK_NEAR(r.threshold, (-0.5 - 0.5 + (1 + sqrt(0.5)) / 2 + 0) / 4, 1e-12);
    CHECK_NEAR(r.auc, 0.75, 1e-15);
    CHECK_NEAR(r.tar, 0.5, 1e-15);
  }
  REQUIRE(embr_eval_verify(x, 5, 2, 2, &p, 4, 0.5, 1, &r) == 0);
  CHECK_NEAR(r.far, 0.5, 0);
  CHECK_NEAR(r.tar, 1.0, 1e-15);
  REQUIRE(embr_eval_verify(x, 5, 2, 2, &p, 4, 0.49, 1, &r) == 0);
  CHECK_NEAR(r.tar, 0.5, 1e-15);
}

/* A tie between a positive and a negative counts 1/2: scores same {1, 0}, different {0, -1}. */
static void test_verify_auc_ties(void) {
  float x[] = {1, 0, 1, 0, 0, 1, 0, 1, -1, 0};
  int64_t a[] = {0, 0, 0, 0}, b[] = {1, 2, 3, 4};
  uint8_t same[] = {1, 1, 0, 0};
  embr_pairs p = {4, a, b, same};
  embr_verify_result r;
  REQUIRE(embr_eval_verify(x, 5, 2, 2, &p, 2, 0.0, 7, &r) == 0);
  CHECK_NEAR(r.auc, 0.875, 1e-15);
  /* At FAR 0 only the run above every negative counts: the tied positive at 0 is out. */
  CHECK_NEAR(r.tar, 0.5, 1e-15);
  embr_verify_result want = ref_verify(x, 2, 2, &p, 2, 0.0, 7);
  check_verify(&r, &want);
}

/* All pairs of clustered random data (several seeds, strides, fold counts) against the brute
 * force reference. */
static void test_verify_vs_reference(void) {
  const struct {
    int64_t n, dim, ld;
    int classes, folds;
    double noise, far;
  } cases[] = {
      {60, 8, 8, 6, 10, 1.5, 1e-2},  {45, 5, 7, 9, 10, 2.0, 0.0},  {50, 16, 19, 3, 7, 3.0, 0.1},
      {30, 3, 3, 10, 2, 1.0, 1e-3},  {40, 4, 4, 4, 17, 1.5, 0.05}, {24, 6, 6, 5, 276, 1.0, 0.2},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (uint64_t seed = 1; seed <= 3; seed++) {
      int32_t labels[64];
      float *x = make_clusters(cases[c].n, cases[c].dim, cases[c].ld, cases[c].classes,
                               cases[c].noise, seed * 77 + c, labels);
      embr_pairs p;
      REQUIRE(embr_pairs_all(labels, cases[c].n, &p) == 0);
      embr_verify_result r, want = ref_verify(x, cases[c].ld, cases[c].dim, &p, cases[c].folds,
                                              cases[c].far, seed);
      int rc = embr_eval_verify(x, cases[c].n, cases[c].dim, cases[c].ld, &p, cases[c].folds,
                                cases[c].far, seed, &r);
      CHECK_MSG(rc == 0, "case %zu: %s", c, embr_last_error());
      check_verify(&r, &want);
      CHECK_MSG(r.accuracy > 0.5 && r.auc > 0.5, "case %zu seed %d: accuracy %g auc %g", c, (int)seed, r.accuracy, r.auc); /* the clusters carry signal */
      embr_pairs_free(&p);
      free(x);
    }
}

/* Small-integer rows: many exactly equal scores, so every sweep meets runs of ties. */
static void test_verify_ties_vs_reference(void) {
  for (uint64_t seed = 1; seed <= 4; seed++) {
    embr_rng rng;
    embr_rng_seed(&rng, seed);
    enum { N = 40, D = 3 };
    float x[N * D];
    int32_t labels[N];
    for (int i = 0; i < N; i++) {
      labels[i] = (int32_t)embr_rng_below(&rng, 4);
      for (int j = 0; j < D; j++) /* class-dependent sign on one axis gives some signal */
        x[i * D + j] = (float)((int)embr_rng_below(&rng, 3) - 1 + (j == labels[i] % D ? 2 : 0));
    }
    x[5 * D] = x[5 * D + 1] = x[5 * D + 2] = 0; /* a zero row scores 0 */
    embr_pairs p;
    REQUIRE(embr_pairs_all(labels, N, &p) == 0);
    for (int folds = 2; folds <= 10; folds += 4) {
      double far = folds == 2 ? 0.0 : 0.25;
      embr_verify_result r, want = ref_verify(x, D, D, &p, folds, far, seed);
      REQUIRE(embr_eval_verify(x, N, D, D, &p, folds, far, seed, &r) == 0);
      check_verify(&r, &want);
    }
    embr_pairs_free(&p);
  }
}

static void test_verify_perfect_separation(void) {
  enum { N = 40, D = 8 };
  float x[N * D];
  int32_t labels[N];
  embr_rng rng;
  embr_rng_seed(&rng, 3);
  for (int i = 0; i < N; i++) {
    labels[i] = i % 4;
    for (int j = 0; j < D; j++)
      x[i * D + j] = (float)((j == labels[i] ? 1.0 : 0.0) + 0.01 * embr_rng_normal(&rng));
  }
  embr_pairs p;
  REQUIRE(embr_pairs_all(labels, N, &p) == 0);
  embr_verify_result r;
  REQUIRE(embr_eval_verify(x, N, D, D, &p, 10, 0.0, 1, &r) == 0);
  CHECK_NEAR(r.accuracy, 1, 0);
  CHECK_NEAR(r.accuracy_std, 0, 0);
  CHECK_NEAR(r.auc, 1, 0);
  CHECK_NEAR(r.tar, 1, 0);
  CHECK(r.threshold > 0.1 && r.threshold < 0.9);
  int ks[] = {1, 3};
  embr_identify_result id;
  REQUIRE(embr_eval_identify(x, N, D, D, labels, 2, ks, 2, &id) == 0);
  CHECK_NEAR(id.rank1, 1, 0);
  CHECK_NEAR(id.recall[0], 1, 0);
  CHECK_NEAR(id.recall[1], 1, 0);
  embr_pairs_free(&p);
}

/* A fixed seed gives identical results; the folds follow the seed. */
static void test_verify_deterministic(void) {
  int32_t labels[200];
  float *x = make_clusters(200, 12, 12, 20, 2.5, 9, labels);
  embr_pairs p;
  REQUIRE(embr_pairs_all(labels, 200, &p) == 0);
  CHECK_EQ_INT(p.n, 200 * 199 / 2);
  embr_verify_result r1, r2, r3;
  REQUIRE(embr_eval_verify(x, 200, 12, 12, &p, 10, 1e-3, 42, &r1) == 0);
  REQUIRE(embr_eval_verify(x, 200, 12, 12, &p, 10, 1e-3, 42, &r2) == 0);
  REQUIRE(embr_eval_verify(x, 200, 12, 12, &p, 10, 1e-3, 43, &r3) == 0);
  CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
  CHECK(r1.auc == r3.auc && r1.tar == r3.tar); /* fold-free figures */
  CHECK(r1.accuracy_std != r3.accuracy_std || r1.threshold != r3.threshold);
  embr_pairs_free(&p);
  free(x);
}

/* 1000 rows give ~500k pairs: the sweeps must stay O(P log P) per fold (the brute force would
 * take hours). */
static void test_verify_many_pairs(void) {
  enum { N = 1000 };
  int32_t labels[N];
  float *x = make_clusters(N, 10, 10, 50, 0.5, 5, labels);
  embr_pairs p;
  REQUIRE(embr_pairs_all(labels, N, &p) == 0);
  embr_verify_result r;
  double t0 = embr_now();
  REQUIRE(embr_eval_verify(x, N, 10, 10, &p, 10, 1e-3, 1, &r) == 0);
  double dt = embr_now() - t0;
  CHECK_MSG(dt < 20, "%.1f s for %lld pairs", dt, (long long)p.n);
  CHECK_MSG(r.accuracy > 0.9 && r.accuracy <= 1 && r.auc > 0.9 && r.tar > 0 && r.tar <= 1, "%g %g %g", r.accuracy, r.auc, r.tar);
  embr_pairs_free(&p);
  free(x);
}

/* ---- tests: identification ---------------------------------------------------------------------- */

/* Exact scores (one-hot rows): ties go to the lower row. Gallery rows 0 (class 0), 1 (class 1)
 * and 5 (class 2, no probes: a distractor); rows 0 and 1 are identical. Probe 2 (class 0) finds
 * row 0 first: a hit. Probe 3 (class 1) finds row 0 first too: a miss at k = 1, a hit at k = 2.
 * Probe 4 is a zero row: all scores 0, so the order is by row: the same as probe 3. */
static void test_identify_hand_computed(void) {
  float x[] = {1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1};
  int32_t labels[] = {0, 1, 0, 1, 1, 2};
  int ks[] = {2, 3};
  embr_identify_result r;
  REQUIRE(embr_eval_identify(x, 6, 2, 2, labels, 1, ks, 2, &r) == 0);
  CHECK_EQ_INT(r.gallery, 3);
  CHECK_EQ_INT(r.probes, 3);
  CHECK_EQ_INT(r.nk, 2);
  CHECK_NEAR(r.rank1, 1.0 / 3, 1e-15); /* probes 2: hit; 3: miss; 4: miss (row 0 first) */
  CHECK_NEAR(r.recall[0], 1.0, 1e-15);
  CHECK_NEAR(r.recall[1], 1.0, 1e-15);
  int k1[] = {1};
  REQUIRE(embr_eval_identify(x, 6, 2, 2, labels, 1, k1, 1, &r) == 0);
  CHECK_NEAR(r.recall[0], 1.0 / 3, 1e-15);
  CHECK_NEAR(r.rank1, 1.0 / 3, 1e-15);
}

static void test_identify_vs_reference(void) {
  const struct {
    int64_t n, dim, ld;
    int classes, gpc;
    double noise;
  } cases[] = {
      {300, 16, 16, 30, 1, 2.0}, {300, 16, 20, 30, 2, 3.0}, {200, 5, 5, 10, 3, 1.5},
      {1500, 8, 8, 100, 1, 2.0}, /* probes span two sgemm blocks */
      {90, 7, 9, 40, 1, 1.0},    /* some classes have a single row: gallery only, distractors */
  };
  int ks[] = {1, 2, 5, 10, 100000};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (uint64_t seed = 1; seed <= 3; seed++) {
      int32_t *labels = malloc(sizeof *labels * (size_t)cases[c].n);
      float *x = make_clusters(cases[c].n, cases[c].dim, cases[c].ld, cases[c].classes,
                               cases[c].noise, seed * 31 + c, labels);
      embr_identify_result r;
      int rc = embr_eval_identify(x, cases[c].n, cases[c].dim, cases[c].ld, labels, cases[c].gpc,
                                  ks, 5, &r);
      CHECK_MSG(rc == 0, "case %zu: %s", c, embr_last_error());
      ref_id want = ref_identify(x, cases[c].n, cases[c].dim, cases[c].ld, labels, cases[c].gpc,
                                 ks, 5);
      check_identify(&r, &want, ks, 5);
      /* Near ties are rare, so the comparison stays sharp. */
      CHECK_MSG(want.uncertain * 50 <= want.probes, "case %zu: %lld", c, (long long)want.uncertain);
      CHECK(r.recall[4] == 1.0); /* every probe's class is in the gallery */
      free(labels);
      free(x);
    }
}

/* Rows from {+-e_j}: all scores are exactly 1, 0 or -1, so the ranking is all ties, broken by row. */
static void test_identify_ties_vs_reference(void) {
  enum { N = 120, D = 4 };
  for (uint64_t seed = 1; seed <= 4; seed++) {
    embr_rng rng;
    embr_rng_seed(&rng, seed);
    float x[N * D];
    int32_t labels[N];
    for (int i = 0; i < N; i++) {
      labels[i] = (int32_t)embr_rng_below(&rng, 12) * 3; /* sparse label values */
      memset(x + i * D, 0, sizeof(float) * D);
      x[i * D + embr_rng_below(&rng, D)] = embr_rng_below(&rng, 2) ? 1.0f : -1.0f;
    }
    int ks[] = {3, 1, 7};
    for (int gpc = 1; gpc <= 4; gpc++) {
      embr_identify_result r;
      REQUIRE(embr_eval_identify(x, N, D, D, labels, gpc, ks, 3, &r) == 0);
      ref_id want = ref_identify(x, N, D, D, labels, gpc, ks, 3);
      CHECK_EQ_INT(want.uncertain > 0, 1); /* ties everywhere, yet the counts must be exact */
      want.uncertain = 0;
      check_identify(&r, &want, ks, 3);
    }
  }
}

/* ---- tests: pairs ------------------------------------------------------------------------------- */

static void test_pairs_all(void) {
  int32_t labels[] = {3, 1, 3, 0};
  embr_pairs p;
  REQUIRE(embr_pairs_all(labels, 4, &p) == 0);
  CHECK_EQ_INT(p.n, 6);
  int64_t want_a[] = {0, 0, 0, 1, 1, 2}, want_b[] = {1, 2, 3, 2, 3, 3};
  uint8_t want_same[] = {0, 1, 0, 0, 0, 0};
  for (int i = 0; i < 6; i++) {
    CHECK_EQ_INT(p.a[i], want_a[i]);
    CHECK_EQ_INT(p.b[i], want_b[i]);
    CHECK_EQ_INT(p.same[i], want_same[i]);
  }
  embr_pairs_free(&p);
  embr_pairs_free(&p); /* freed pairs are empty: a second free is harmless */
  embr_pairs_free(NULL);
  REQUIRE(embr_pairs_all(labels, 1, &p) == 0);
  CHECK_EQ_INT(p.n, 0);
  embr_pairs_free(&p);
  labels[2] = -1;
  CHECK_EQ_INT(embr_pairs_all(labels, 4, &p), EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "row 2") != NULL);
  CHECK(p.n == 0 && !p.a);
  CHECK_EQ_INT(embr_pairs_all(NULL, 4, &p), EMBR_EINVAL);
  CHECK_EQ_INT(embr_pairs_all(labels, -1, &p), EMBR_EINVAL);
  CHECK_EQ_INT(embr_pairs_all(labels, 4, NULL), EMBR_EINVAL);
}

static char *const names[] = {"alice/1.jpg", "alice/2.jpg", "bob/1.jpg", "carol/1.jpg", "bob/2.jpg"};

static void test_pairs_read_valid(void) {
  const char text[] = "# name_a name_b same\n"
                      "alice/1.jpg alice/2.jpg 1\n"
                      "\n"
                      "   \t\n"
                      "alice/1.jpg\tbob/1.jpg 0   # different people\n"
                      "bob/1.jpg  bob/2.jpg true\r\n"
                      "carol/1.jpg bob/2.jpg False\r\n"
                      "  # indented comment\n"
                      "bob/2.jpg carol/1.jpg TRUE"; /* no final newline */
  const char *path = write_text("valid.txt", text, sizeof text - 1);
  embr_pairs p;
  REQUIRE(embr_pairs_read(path, names, 5, &p) == 0);
  CHECK_EQ_INT(p.n, 5);
  int64_t a[] = {0, 0, 2, 3, 4}, b[] = {1, 2, 4, 4, 3};
  uint8_t same[] = {1, 0, 1, 0, 1};
  for (int i = 0; i < 5 && i < p.n; i++) {
    CHECK_EQ_INT(p.a[i], a[i]);
    CHECK_EQ_INT(p.b[i], b[i]);
    CHECK_EQ_INT(p.same[i], same[i]);
  }
  /* The pairs feed the evaluation directly. */
  float x[] = {1, 0, 0.9f, 0.1f, 0, 1, 1, 1, 0.1f, 1};
  embr_verify_result r;
  REQUIRE(embr_eval_verify(x, 5, 2, 2, &p, 5, 0.0, 1, &r) == 0);
  embr_verify_result want = ref_verify(x, 2, 2, &p, 5, 0.0, 1);
  check_verify(&r, &want);
  embr_pairs_free(&p);
}

/* A broken file fails with `status`, a message naming the file and `where`, and empty pairs. */
static void expect_broken(const char *name, const char *text, size_t len, int status,
                          const char *where) {
  const char *path = write_text(name, text, len);
  embr_pairs p;
  int rc = embr_pairs_read(path, names, 5, &p);
  CHECK_MSG(rc == status, "%s: rc %d, expected %d (%s)", name, rc, status, embr_last_error());
  const char *msg = embr_last_error();
  CHECK_MSG(strstr(msg, path) && strstr(msg, where) && !strchr(msg, '\n'), "%s: '%s'", name, msg);
  CHECK(p.n == 0 && !p.a && !p.b && !p.same);
}

static void test_pairs_read_broken(void) {
#define BROKEN(name, text, status, where) expect_broken(name, text, sizeof text - 1, status, where)
  BROKEN("unknown.txt", "alice/1.jpg alice/2.jpg 1\nalice/1.jpg dave/1.jpg 0\n", EMBR_ENOTFOUND,
         "line 2: unknown name 'dave/1.jpg'");
  BROKEN("missing.txt", "# header\nalice/1.jpg alice/2.jpg\n", EMBR_EFORMAT, "line 2 has 2 fields");
  BROKEN("one.txt", "alice/1.jpg\n", EMBR_EFORMAT, "line 1 has 1 fields");
  BROKEN("extra.txt", "alice/1.jpg alice/2.jpg 1 1\n", EMBR_EFORMAT, "line 1 has more than 3");
  BROKEN("same.txt", "alice/1.jpg alice/2.jpg yes\n", EMBR_EFORMAT, "line 1: SAME must be");
  BROKEN("same2.txt", "alice/1.jpg alice/2.jpg 2\n", EMBR_EFORMAT, "got '2'");
  BROKEN("same3.txt", "alice/1.jpg alice/2.jpg 10\n", EMBR_EFORMAT, "line 1");
  BROKEN("empty.txt", "", EMBR_EFORMAT, "no pairs");
  BROKEN("comments.txt", "# only\n\n  # comments\n", EMBR_EFORMAT, "no pairs");
  BROKEN("nul.txt", "alice/1.jpg alice/2.jpg 1\nalice/1.jpg\0 bob/1.jpg 0\n", EMBR_EFORMAT,
         "line 2 contains a NUL");
  BROKEN("ctrl.txt", "alice/1.jpg \x01\x02 1\n", EMBR_ENOTFOUND, "unknown name '?\?'");
  /* A line beyond the limit is refused before any parsing. */
  size_t len = (1 << 16) + 100;
  char *lng = malloc(len);
  memset(lng, 'a', len);
  lng[len - 1] = '\n';
  const char *path = write_text("long.txt", lng, len);
  embr_pairs p;
  CHECK_EQ_INT(embr_pairs_read(path, names, 5, &p), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "line 1 is longer than") != NULL);
  /* A long unknown name is shown truncated. */
  memcpy(lng + 5000, " b 1\n", 5);
  path = write_text("longname.txt", lng, 5005);
  CHECK_EQ_INT(embr_pairs_read(path, names, 5, &p), EMBR_ENOTFOUND);
  CHECK(strlen(embr_last_error()) < 300);
  free(lng);
  /* A name on two rows is ambiguous, but only when a pair uses it. */
  char *const dup[] = {"x", "y", "x", "z"};
  path = write_text("dup.txt", "y z 0\nx y 1\n", 12);
  CHECK_EQ_INT(embr_pairs_read(path, dup, 4, &p), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "line 2: name 'x' belongs to more than one row") != NULL);
  path = write_text("dup2.txt", "y z 0\n", 6);
  CHECK_EQ_INT(embr_pairs_read(path, dup, 4, &p), 0);
  embr_pairs_free(&p);
  CHECK_EQ_INT(embr_pairs_read(th_path("does-not-exist.txt"), names, 5, &p), EMBR_ENOTFOUND);
  CHECK_EQ_INT(embr_pairs_read(NULL, names, 5, &p), EMBR_EINVAL);
  CHECK_EQ_INT(embr_pairs_read(path, NULL, 5, &p), EMBR_EINVAL);
  CHECK_EQ_INT(embr_pairs_read(path, names, -1, &p), EMBR_EINVAL);
  CHECK_EQ_INT(embr_pairs_read(path, names, 5, NULL), EMBR_EINVAL);
  char *const holes[] = {"y", NULL};
  CHECK_EQ_INT(embr_pairs_read(path, holes, 2, &p), EMBR_EINVAL);
#undef BROKEN
}

/* ---- tests: invalid arguments -------------------------------------------------------------------- */

#define EXPECT_EINVAL(call, text)                                                          \
  do {                                                                                     \
    int rc_ = (call);                                                                      \
    CHECK_MSG(rc_ == EMBR_EINVAL && strstr(embr_last_error(), text), "%s -> %d '%s'", #call, \
              rc_, embr_last_error());                                                     \
  } while (0)

static void test_verify_invalid(void) {
  float x[] = {1, 0, 1, 0, 1, 1, 0, 1, -1, 0};
  int64_t a[] = {0, 0, 0, 0}, b[] = {1, 2, 3, 4};
  uint8_t same[] = {1, 0, 1, 0};
  embr_pairs p = {4, a, b, same};
  embr_verify_result r;
  EXPECT_EINVAL(embr_eval_verify(NULL, 5, 2, 2, &p, 2, 0, 1, &r), "NULL");
  EXPECT_EINVAL(embr_eval_verify(x, 0, 2, 2, &p, 2, 0, 1, &r), "n = 0");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 0, 2, &p, 2, 0, 1, &r), "dim = 0");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 1, &p, 2, 0, 1, &r), "ld = 1");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, NULL, 2, 0, 1, &r), "pairs are NULL");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, NULL), "out is NULL");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 1, 0, 1, &r), "folds = 1");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 5, 0, 1, &r), "folds = 5");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, -0.1, 1, &r), "far");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, 1.5, 1, &r), "far");
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, NAN, 1, &r), "far");
  b[3] = 5;
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, &r), "pair 3 is (0, 5)");
  b[3] = 4;
  a[1] = -1;
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, &r), "pair 1");
  a[1] = 0;
  same[2] = 2;
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, &r), "same = 2");
  same[0] = same[2] = 0;
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, &r), "no positive");
  memset(same, 1, 4);
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, &r), "no negative");
  same[1] = same[3] = 0;
  embr_pairs empty = {0, NULL, NULL, NULL};
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &empty, 2, 0, 1, &r), "no pairs");
  embr_pairs holes = {4, a, NULL, same};
  EXPECT_EINVAL(embr_eval_verify(x, 5, 2, 2, &holes, 2, 0, 1, &r), "NULL");
  x[7] = NAN;
  CHECK_EQ_INT(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, &r), EMBR_EVALUE);
  CHECK(strstr(embr_last_error(), "row 3, column 1") != NULL);
  x[7] = 1;
  CHECK_EQ_INT(embr_eval_verify(x, 5, 2, 2, &p, 2, 0, 1, &r), 0);
}

static void test_identify_invalid(void) {
  float x[] = {1, 0, 1, 0, 1, 1, 0, 1};
  int32_t labels[] = {0, 0, 1, 1};
  int ks[] = {1, 2};
  int many[EMBR_EVAL_MAX_K + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  embr_identify_result r;
  CHECK_EQ_INT(embr_eval_identify(x, 4, 2, 2, labels, 1, ks, 2, &r), 0);
  CHECK_EQ_INT(embr_eval_identify(x, 4, 2, 2, labels, 1, many, EMBR_EVAL_MAX_K, &r), 0);
  EXPECT_EINVAL(embr_eval_identify(NULL, 4, 2, 2, labels, 1, ks, 2, &r), "NULL");
  EXPECT_EINVAL(embr_eval_identify(x, -3, 2, 2, labels, 1, ks, 2, &r), "n = -3");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 0, 2, labels, 1, ks, 2, &r), "dim = 0");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 1, labels, 1, ks, 2, &r), "ld = 1");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, NULL, 1, ks, 2, &r), "labels are NULL");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 0, ks, 2, &r), "gallery_per_class = 0");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 1, NULL, 2, &r), "ks is NULL");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 1, ks, 0, &r), "nk = 0");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 1, many, EMBR_EVAL_MAX_K + 1, &r), "nk = 9");
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 1, ks, 2, NULL), "out is NULL");
  ks[1] = 0;
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 1, ks, 2, &r), "ks[1] = 0");
  ks[1] = 2;
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 2, ks, 2, &r), "no probes");
  labels[3] = -2;
  EXPECT_EINVAL(embr_eval_identify(x, 4, 2, 2, labels, 1, ks, 2, &r), "label of row 3 is -2");
  labels[3] = 1;
  x[0] = INFINITY;
  CHECK_EQ_INT(embr_eval_identify(x, 4, 2, 2, labels, 1, ks, 2, &r), EMBR_EVALUE);
}

/* ---- cross-modal retrieval ------------------------------------------------------------------------ */

/* The hand-computed case (ties included): see the ranks worked out in the comments. */
static void test_retrieval_hand_computed(void) {
  /* images: i0 (1,0), i1 (0,1), i2 (1,0) (no caption), i3 (1,1), i4 (0,1) */
  float img[] = {1, 0, 0, 1, 1, 0, 1, 1, 0, 1};
  /* captions: t0 (1,0) -> 0, t1 (0,1) -> 1, t2 (1,1) -> 3, t3 (-1,0) -> 0, t4 (0,2) -> 4 */
  float txt[] = {1, 0, 0, 1, 1, 1, -1, 0, 0, 2};
  int64_t of[] = {0, 1, 3, 0, 4}, tr[5], ir[5];
  int ks[] = {1, 2, 5};
  embr_retrieval_result r;
  REQUIRE(embr_eval_retrieval(img, 5, 2, txt, 5, 2, 2, of, ks, 3, tr, ir, &r) == 0);
  /* t0: i2 ties i0 -> 2; t1: i4 ties i1 -> 2; t2: 1; t3: all four others >= -1 -> 5; t4: i1 ties -> 2 */
  int64_t want_t[] = {2, 2, 1, 5, 2}, want_i[] = {1, 2, -1, 1, 2};
  /* i0: t0 scores 1, nothing else reaches it -> 1; i1: t4 (another image's) ties t1 -> 2; i2: no
   * caption; i3: t2 -> 1; i4: t1 ties t4 -> 2 */
  for (int i = 0; i < 5; i++) {
    CHECK_EQ_INT(tr[i], want_t[i]);
    CHECK_EQ_INT(ir[i], want_i[i]);
  }
  CHECK_EQ_INT(r.texts, 5);
  CHECK_EQ_INT(r.images, 4);
  CHECK_EQ_INT(r.nk, 3);
  CHECK_NEAR(r.t2i_recall[0], 0.2, 1e-12);
  CHECK_NEAR(r.t2i_recall[1], 0.8, 1e-12);
  CHECK_NEAR(r.t2i_recall[2], 1.0, 1e-12);
  CHECK_NEAR(r.t2i_median_rank, 2, 1e-12);
  CHECK_NEAR(r.t2i_mean_rank, 2.4, 1e-12);
  CHECK_NEAR(r.i2t_recall[0], 0.5, 1e-12);
  CHECK_NEAR(r.i2t_recall[1], 1.0, 1e-12);
  CHECK_NEAR(r.i2t_median_rank, 1.5, 1e-12);
  CHECK_NEAR(r.i2t_mean_rank, 1.5, 1e-12);
  /* a collapsed model (all rows equal) gets the worst ranks, not index order's luck */
  float same[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  REQUIRE(embr_eval_retrieval(same, 5, 2, same, 5, 2, 2, of, ks, 3, tr, ir, &r) == 0);
  CHECK_EQ_INT(tr[0], 5);
  CHECK_NEAR(r.t2i_recall[0], 0, 0);
  /* refusals */
  int64_t badof[] = {0, 1, 5, 0, 4};
  CHECK_EQ_INT(embr_eval_retrieval(img, 5, 2, txt, 5, 2, 2, badof, ks, 3, NULL, NULL, &r), EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "caption 2 points at image 5") != NULL);
  CHECK_EQ_INT(embr_eval_retrieval(img, 5, 2, txt, 5, 2, 2, of, ks, 0, NULL, NULL, &r), EMBR_EINVAL);
  CHECK_EQ_INT(embr_eval_retrieval(img, 5, 1, txt, 5, 2, 2, of, ks, 3, NULL, NULL, &r), EMBR_EINVAL);
  txt[3] = NAN;
  CHECK_EQ_INT(embr_eval_retrieval(img, 5, 2, txt, 5, 2, 2, of, ks, 3, NULL, NULL, &r), EMBR_EVALUE);
}

/* Small-integer rows: every dot product and squared norm is exact, so the reference below computes
 * each cosine with the very operations embr_distance_matrix uses, and ties (many) agree exactly. */
static float exact_cos(const float *a, const float *b, int dim) {
  float dot = 0, na = 0, nb = 0;
  for (int j = 0; j < dim; j++) dot += a[j] * b[j], na += a[j] * a[j], nb += b[j] * b[j];
  return na > 0 && nb > 0 ? dot / (sqrtf(na) * sqrtf(nb)) : 0.0f;
}

static void retrieval_reference(const float *img, int64_t ni, const float *txt, int64_t nt, int dim, const int64_t *of,
                                int64_t *tr, int64_t *ir) {
  for (int64_t t = 0; t < nt; t++) {
    float right = exact_cos(txt + t * dim, img + of[t] * dim, dim);
    tr[t] = 1;
    for (int64_t i = 0; i < ni; i++) tr[t] += i != of[t] && exact_cos(txt + t * dim, img + i * dim, dim) >= right;
  }
  for (int64_t i = 0; i < ni; i++) {
    float best = -INFINITY;
    int any = 0;
    for (int64_t t = 0; t < nt; t++)
      if (of[t] == i) any = 1, best = fmaxf(best, exact_cos(img + i * dim, txt + t * dim, dim));
    ir[i] = any ? 1 : -1;
    for (int64_t t = 0; any && t < nt; t++) ir[i] += of[t] != i && exact_cos(img + i * dim, txt + t * dim, dim) >= best;
  }
}

static void test_retrieval_vs_reference(void) {
  enum { NI = 700, NT = 3000, DIM = 6 }; /* several score blocks each way */
  float *img = malloc(sizeof(float) * NI * DIM), *txt = malloc(sizeof(float) * NT * DIM);
  int64_t *of = malloc(sizeof(int64_t) * NT), *tr = malloc(sizeof(int64_t) * NT), *ir = malloc(sizeof(int64_t) * NI);
  int64_t *wt = malloc(sizeof(int64_t) * NT), *wi = malloc(sizeof(int64_t) * NI);
  embr_rng rng;
  embr_rng_seed(&rng, 9);
  for (int i = 0; i < NI * DIM; i++) img[i] = (float)((int)embr_rng_below(&rng, 5) - 2);
  for (int t = 0; t < NT; t++) {
    of[t] = (int64_t)embr_rng_below(&rng, NI - 20); /* the last 20 images have no caption */
    for (int j = 0; j < DIM; j++) txt[t * DIM + j] = img[of[t] * DIM + j] + (float)((int)embr_rng_below(&rng, 3) - 1);
  }
  int ks[] = {1, 5, 10};
  embr_retrieval_result r;
  REQUIRE(embr_eval_retrieval(img, NI, DIM, txt, NT, DIM, DIM, of, ks, 3, tr, ir, &r) == 0);
  retrieval_reference(img, NI, txt, NT, DIM, of, wt, wi);
  int64_t bad = 0, hits5 = 0, counted = 0;
  for (int t = 0; t < NT; t++) bad += tr[t] != wt[t], hits5 += wt[t] <= 5;
  for (int i = 0; i < NI; i++) bad += ir[i] != wi[i], counted += wi[i] > 0;
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(r.texts, NT);
  CHECK_EQ_INT(r.images, counted);
  CHECK_NEAR(r.t2i_recall[1], (double)hits5 / NT, 1e-12);
  free(img), free(txt), free(of), free(tr), free(ir), free(wt), free(wi);
}

/* ---- zero-shot classification ---------------------------------------------------------------------- */

static void test_zeroshot_hand_computed(void) {
  /* class 0: templates (2,0) and (0,1) -> (1,1)/sqrt2; class 1: (0,-3) and (0,0) (a zero row adds
   * nothing) -> (0,-1); class 2: (1,0) and (-1,0) cancel -> a zero row, scoring 0 */
  float txt[] = {2, 0, 0, 1, 0, -3, 0, 0, 1, 0, -1, 0}, w[6];
  REQUIRE(embr_zeroshot_weights(txt, 3, 2, 2, 2, w) == 0);
  float s = (float)(1 / sqrt(2));
  CHECK_NEAR(w[0], s, 1e-7);
  CHECK_NEAR(w[1], s, 1e-7);
  CHECK(w[2] == 0 && w[3] == -1 && w[4] == 0 && w[5] == 0);
  float img[] = {1, 0, 0, -5, -1, 0.5f};
  int32_t cls[12];
  float score[12];
  REQUIRE(embr_zeroshot_classify(img, 3, 2, w, 3, 2, 4, cls, score) == 0);
  /* (1,0): class 0 (0.707), then class 2 (0) ties class 1 (0): the lower first, then padding */
  CHECK(cls[0] == 0 && cls[1] == 1 && cls[2] == 2 && cls[3] == -1);
  CHECK_NEAR(score[0], s, 1e-6);
  CHECK(isinf(score[3]) && score[3] < 0);
  CHECK(cls[4] == 1 && cls[5] == 2 && cls[8] == 2); /* (0,-5): class 1; (-1,0.5): only class 2 scores >= 0 */
  CHECK_NEAR(score[4], 1, 1e-6);
  int32_t labels[] = {0, 2, 2};
  double acc;
  REQUIRE(embr_zeroshot_accuracy(cls, 3, 4, labels, 1, &acc) == 0);
  CHECK_NEAR(acc, 2.0 / 3, 1e-12);
  REQUIRE(embr_zeroshot_accuracy(cls, 3, 4, labels, 3, &acc) == 0);
  CHECK_NEAR(acc, 1.0, 1e-12);
  CHECK_EQ_INT(embr_zeroshot_accuracy(cls, 3, 4, labels, 5, &acc), EMBR_EINVAL);
  CHECK_EQ_INT(embr_zeroshot_weights(txt, 3, 0, 2, 2, w), EMBR_EINVAL);
  CHECK_EQ_INT(embr_zeroshot_classify(img, 3, 2, w, 3, 2, 0, cls, score), EMBR_EINVAL);
}

/* Random data against the recipe written out in double, and the best classes by a full sort. */
static void test_zeroshot_vs_reference(void) {
  enum { C = 37, T = 4, D = 24, N = 200, K = 5 };
  static float txt[C * T * D], img[N * D], w[C * D], score[N * K];
  static int32_t cls[N * K];
  embr_rng rng;
  embr_rng_seed(&rng, 4);
  for (int i = 0; i < C * T * D; i++) txt[i] = (float)embr_rng_normal(&rng);
  for (int i = 0; i < N * D; i++) img[i] = (float)embr_rng_normal(&rng);
  REQUIRE(embr_zeroshot_weights(txt, C, T, D, D, w) == 0);
  double worst = 0;
  for (int c = 0; c < C; c++) {
    double m[D] = {0}, ss = 0;
    for (int t = 0; t < T; t++) {
      const float *x = txt + (c * T + t) * D;
      double n = 0;
      for (int j = 0; j < D; j++) n += (double)x[j] * x[j];
      for (int j = 0; j < D; j++) m[j] += x[j] / sqrt(n) / T;
    }
    for (int j = 0; j < D; j++) ss += m[j] * m[j];
    for (int j = 0; j < D; j++) worst = fmax(worst, fabs(m[j] / sqrt(ss) - w[c * D + j]));
  }
  CHECK_MSG(worst < 1e-6, "classifier rows differ by %.2e", worst);
  REQUIRE(embr_zeroshot_classify(img, N, D, w, C, D, K, cls, score) == 0);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    double s[C];
    for (int c = 0; c < C; c++) {
      double dot = 0, n = 0;
      for (int j = 0; j < D; j++) dot += (double)img[i * D + j] * w[c * D + j], n += (double)img[i * D + j] * img[i * D + j];
      s[c] = dot / sqrt(n);
    }
    for (int r = 0; r < K; r++) { /* the r-th best by selection */
      int best = -1;
      for (int c = 0; c < C; c++) {
        int taken = 0;
        for (int q = 0; q < r; q++) taken |= cls[i * K + q] == c;
        if (!taken && (best < 0 || s[c] > s[best])) best = c;
      }
      bad += best != cls[i * K + r] || fabs(s[best] - score[i * K + r]) > 1e-5;
    }
  }
  CHECK_EQ_INT(bad, 0);
}

/* ---- weighted k-NN (DINO) ------------------------------------------------------------------------- */

/* By hand: train (1,0) label 5, (0.6,0.8) and (0.6,-0.8) label 9 (unit rows), (-1,0) label 2;
 * query (2,0) label 5 (normalised: (1,0)). Cosines 1, 0.6, 0.6, -1; k = 3 keeps the first three.
 *   T = 0.07: class 5 gets e^(1/0.07) = e^14.29 = 1.6e6, class 9 2 e^(0.6/0.07) = 2 e^8.57 = 10555:
 *             top-1 5 (the weighted vote beats the majority).
 *   T = 1:    class 5 e^1 = 2.718, class 9 2 e^0.6 = 3.644: top-1 9, top-5 {9, 5}.
 * A second query (0,-3) label 2: cosines 0, -0.8, 0.8, 0 -> neighbours (0.6,-0.8) (0.8), then the
 * two zeros, ties to the lower row: (1,0) and (-1,0). T = 1: class 9 e^0.8 = 2.23, class 5 e^0 = 1,
 * class 2 e^0 = 1: ranking 9, 2, 5 (5 and 2 tie: the lower label first). */
static void test_knn_hand_computed(void) {
  const float train[] = {1, 0, 0.6f, 0.8f, 0.6f, -0.8f, -1, 0};
  const int32_t tl[] = {5, 9, 9, 2};
  const float test[] = {2, 0, 0, -3};
  const int32_t ql[] = {5, 2};
  embr_knn_eval_result r;
  int32_t pred[10];
  REQUIRE(embr_eval_knn(train, 4, 2, tl, test, 2, 2, ql, 2, 3, 0.07, 1, pred, &r) == 0);
  CHECK(pred[0] == 5 && pred[1] == 9 && pred[2] == -1);
  CHECK(r.train == 4 && r.test == 2 && r.k == 3 && r.classes == 3);
  CHECK_NEAR(r.top1, 0.5, 1e-12); /* query 2: class 9 (e^11.4) beats 2 and 5 (e^0 each) */
  REQUIRE(embr_eval_knn(train, 4, 2, tl, test, 2, 2, ql, 2, 3, 1.0, 1, pred, &r) == 0);
  CHECK(pred[0] == 9 && pred[1] == 5 && pred[2] == -1);
  CHECK(pred[5] == 9 && pred[6] == 2 && pred[7] == 5 && pred[8] == -1);
  CHECK_NEAR(r.top1, 0.0, 1e-12);
  CHECK_NEAR(r.top5, 1.0, 1e-12);
  /* k larger than the memory: all four vote; query 1 at T = 1: 5: e^1, 9: 3.644, 2: e^-1 */
  REQUIRE(embr_eval_knn(train, 4, 2, tl, test, 1, 2, ql, 2, 50, 1.0, 1, pred, &r) == 0);
  CHECK(r.k == 4 && pred[0] == 9 && pred[1] == 5 && pred[2] == 2 && pred[3] == -1);
}

/* Slow reference: every similarity in double, neighbours by full sort (similarity descending,
 * lower row first), votes exp(s / T) in double, classes by vote (lower label first). */
static void ref_knn(const float *tr, int ntr, const int32_t *tl, const float *q, int dim, int k, double T, int32_t *top5,
                    double *gap) {
  double *s = malloc(sizeof(double) * ntr), nq = 0;
  int *idx = malloc(sizeof(int) * ntr);
  for (int j = 0; j < dim; j++) nq += (double)q[j] * q[j];
  for (int i = 0; i < ntr; i++) {
    double d = 0, nt = 0;
    for (int j = 0; j < dim; j++) d += (double)tr[i * dim + j] * q[j], nt += (double)tr[i * dim + j] * tr[i * dim + j];
    s[i] = nt > 0 && nq > 0 ? d / sqrt(nt * nq) : 0;
    idx[i] = i;
  }
  for (int a = 0; a < ntr; a++) /* selection sort: slow and obviously right */
    for (int b = a + 1; b < ntr; b++)
      if (s[idx[b]] > s[idx[a]] || (s[idx[b]] == s[idx[a]] && idx[b] < idx[a])) {
        int t = idx[a];
        idx[a] = idx[b], idx[b] = t;
      }
  if (k > ntr) k = ntr;
  *gap = k < ntr ? s[idx[k - 1]] - s[idx[k]] : 1;
  int32_t labs[64];
  double vs[64];
  int nl = 0;
  for (int j = 0; j < k; j++) {
    int32_t l = tl[idx[j]];
    int c = 0;
    while (c < nl && labs[c] != l) c++;
    if (c == nl) labs[nl] = l, vs[nl++] = 0;
    vs[c] += exp(s[idx[j]] / T);
  }
  for (int r = 0; r < 5; r++) {
    int best = -1;
    for (int c = 0; c < nl; c++)
      if (vs[c] >= 0 && (best < 0 || vs[c] > vs[best] || (vs[c] == vs[best] && labs[c] < labs[best]))) best = c;
    top5[r] = best >= 0 ? labs[best] : -1;
    if (best >= 0) vs[best] = -1;
  }
  free(s), free(idx);
}

static void test_knn_vs_reference(void) {
  enum { NTR = 300, NTE = 120, DIM = 13 };
  float *tr = malloc(sizeof(float) * NTR * (DIM + 3)), *te = malloc(sizeof(float) * NTE * DIM);
  int32_t tl[NTR], ql[NTE], pred[NTE * 5], want[5];
  embr_rng r;
  embr_rng_seed(&r, 77);
  /* 6 classes with sparse label values, centres apart, noisy rows; train rows with ld DIM + 3 */
  const int32_t labels[6] = {3, 17, 18, 40, 1000, 7};
  float centre[6][DIM];
  for (int c = 0; c < 6; c++)
    for (int j = 0; j < DIM; j++) centre[c][j] = (float)embr_rng_normal(&r);
  for (int i = 0; i < NTR; i++) {
    int c = (int)embr_rng_below(&r, 6);
    tl[i] = labels[c];
    for (int j = 0; j < DIM + 3; j++) tr[i * (DIM + 3) + j] = j < DIM ? centre[c][j] + 1.2f * (float)embr_rng_normal(&r) : 99.0f;
  }
  for (int j = 0; j < DIM; j++) tr[5 * (DIM + 3) + j] = 0; /* a zero row scores 0 */
  for (int i = 0; i < NTE; i++) {
    int c = (int)embr_rng_below(&r, 6);
    ql[i] = i == 7 ? 555 : labels[c]; /* a label no train row has: never found */
    for (int j = 0; j < DIM; j++) te[i * DIM + j] = centre[c][j] + 1.2f * (float)embr_rng_normal(&r);
  }
  float *trd = malloc(sizeof(float) * NTR * DIM); /* dense copy for the reference */
  for (int i = 0; i < NTR; i++) memcpy(trd + i * DIM, tr + i * (DIM + 3), sizeof(float) * DIM);
  const int ks[] = {1, 5, 20, 299, 400};
  const double ts[] = {0.07, 0.5, 10};
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 3; b++) {
      embr_knn_eval_result res;
      REQUIRE(embr_eval_knn(tr, NTR, DIM + 3, tl, te, NTE, DIM, ql, DIM, ks[a], ts[b], 0, pred, &res) == 0);
      int top1 = 0, top5 = 0, skipped = 0, bad = 0;
      for (int i = 0; i < NTE; i++) {
        double gap;
        ref_knn(trd, NTR, tl, te + i * DIM, DIM, ks[a], ts[b], want, &gap);
        top1 += want[0] == ql[i];
        for (int q = 0; q < 5; q++) top5 += want[q] == ql[i];
        if (gap < 1e-5) { /* float and double may order a near-tie at the k-th place differently */
          skipped++;
          continue;
        }
        bad += memcmp(want, pred + i * 5, sizeof want) != 0;
      }
      CHECK_MSG(bad == 0 && skipped <= 2, "k %d T %g: %d queries differ, %d near-ties", ks[a], ts[b], bad, skipped);
      if (skipped == 0) {
        CHECK_NEAR(res.top1, top1 / (double)NTE, 1e-12);
        CHECK_NEAR(res.top5, top5 / (double)NTE, 1e-12);
      }
      CHECK(res.classes == 6 && res.k == (ks[a] < NTR ? ks[a] : NTR));
      CHECK(res.top1 > 0.3); /* the classes are separable: not a degenerate case */
    }
  free(tr), free(te), free(trd);
}

static void test_knn_invalid(void) {
  const float x[] = {1, 0, 0, 1};
  const int32_t l[] = {0, 1}, neg[] = {0, -1};
  float nan_x[] = {1, 0, NAN, 1};
  embr_knn_eval_result r;
  CHECK(embr_eval_knn(x, 2, 2, l, x, 2, 2, l, 2, 0, 0.07, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 2, 2, l, x, 2, 2, l, 2, 1, 0.0, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 2, 2, l, x, 2, 2, l, 2, 1, NAN, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 2, 1, l, x, 2, 2, l, 2, 1, 0.07, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 0, 2, l, x, 2, 2, l, 2, 1, 0.07, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 2, 2, neg, x, 2, 2, l, 2, 1, 0.07, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 2, 2, l, x, 2, 2, neg, 2, 1, 0.07, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 2, 2, l, nan_x, 2, 2, l, 2, 1, 0.07, 1, NULL, &r) == EMBR_EVALUE);
  CHECK(embr_eval_knn(NULL, 2, 2, l, x, 2, 2, l, 2, 1, 0.07, 1, NULL, &r) == EMBR_EINVAL);
  CHECK(embr_eval_knn(x, 2, 2, l, x, 2, 2, l, 2, 1, 0.07, 1, NULL, NULL) == EMBR_EINVAL);
}

int main(int argc, char **argv) {
  int rc = RUN_TESTS(argc, argv, test_verify_hand_computed, test_verify_auc_ties,
                     test_verify_vs_reference, test_verify_ties_vs_reference,
                     test_verify_perfect_separation, test_verify_deterministic,
                     test_verify_many_pairs, test_identify_hand_computed, test_identify_vs_reference,
                     test_identify_ties_vs_reference, test_pairs_all, test_pairs_read_valid,
                     test_pairs_read_broken, test_verify_invalid, test_identify_invalid,
                     test_retrieval_hand_computed, test_retrieval_vs_reference, test_zeroshot_hand_computed,
                     test_zeroshot_vs_reference, test_knn_hand_computed, test_knn_vs_reference, test_knn_invalid);
  return rc;
}
