/* word2vec (include/embr/w2v.h, src/w2v/): the Huffman tree against an O(n^2) reference Huffman
 * construction, the alias sampler against count^0.75 (exact table probabilities and a million
 * draws), the update kernels against a double-precision reference of the documented semantics
 * (repeated rows included) and AVX2 against scalar, training on a synthetic two-topic corpus
 * (topics separate; determinism; refused inputs), and the queries (similar, analogies, the
 * analogy benchmark counters, Spearman) on hand-built vectors. */
#include "w2v/w2v_internal.h"
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>


/* ---- temporary files ---------------------------------------------------------------------------- */

static void write_str(const char *path, const char *s) { th_write_file(path, s, strlen(s)); }

/* A finalized vocabulary "w0".."w<n-1>" with the given counts. */
static embr_vocab *vocab_of(const int64_t *counts, int n) {
  embr_vocab *v;
  if (embr_vocab_create(&v)) return NULL;
  char w[32];
  for (int i = 0; i < n; i++) {
    snprintf(w, sizeof w, "w%d", i);
    if (embr_vocab_add(v, w, counts[i])) {
      embr_vocab_free(v);
      return NULL;
    }
  }
  if (embr_vocab_finalize(v, 1, 0)) {
    embr_vocab_free(v);
    return NULL;
  }
  return v;
}

/* ---- (a) Huffman tree ------------------------------------------------------------------------- */

/* Cost sum(count * depth) of an optimal prefix code: the sum of all merged weights of Huffman's
 * algorithm, done the slow way (two linear minimum searches per merge). */
static int64_t ref_huffman_cost(const int64_t *counts, int n) {
  int64_t *w = malloc(sizeof(int64_t) * (size_t)n);
  memcpy(w, counts, sizeof(int64_t) * (size_t)n);
  int64_t cost = 0;
  for (int left = n; left > 1; left--) {
    int a = 0;
    for (int i = 1; i < left; i++)
      if (w[i] < w[a]) a = i;
    int64_t wa = w[a];
    w[a] = w[left - 1];
    int b = 0;
    for (int i = 1; i < left - 1; i++)
      if (w[i] < w[b]) b = i;
    int64_t merged = wa + w[b];
    cost += merged;
    w[b] = merged;
  }
  free(w);
  return cost;
}

static void check_huffman(const int64_t *counts_in, int n, const char *what) {
  embr_vocab *v = vocab_of(counts_in, n);
  if (!v) {
    CHECK_MSG(0, "%s: vocabulary", what);
    return;
  }
  int64_t *counts = malloc(sizeof(int64_t) * (size_t)n);
  for (int i = 0; i < n; i++) counts[i] = embr_vocab_count(v, i);
  w2v_huffman h;
  int rc = embr__w2v_huffman_build(&h, v);
  CHECK_MSG(rc == 0, "%s: %s", what, embr_last_error());
  if (rc) {
    free(counts);
    embr_vocab_free(v);
    return;
  }
  int bad_len = 0, bad_point = 0, bad_root = 0, bad_prefix = 0, bad_tree = 0;
  double kraft = 0;
  int64_t cost = 0;
  for (int w = 0; w < n; w++) {
    int len = (int)(h.offset[w + 1] - h.offset[w]);
    if (len < 1 || len > W2V_MAX_CODE) {
      bad_len++;
      continue;
    }
    kraft += ldexp(1.0, -len);
    cost += counts[w] * len;
    if (h.point[h.offset[w]] != n - 2) bad_root++;
    for (int d = 0; d < len; d++) {
      int32_t p = h.point[h.offset[w] + d];
      if (p < 0 || p > n - 2) bad_point++;
      if (h.code[h.offset[w] + d] > 1) bad_prefix++;
    }
  }
  /* Prefix-free, and the points describe one tree: for words u, w whose codes agree on their
   * first l bits, point_u[i] == point_w[j] exactly when i == j <= l (one node per depth on the
   * shared path, disjoint subtrees after it). Full check for small trees. */
  for (int u = 0; u < n && !bad_len; u++)
    for (int w = u + 1; w < n; w++) {
      int lu = (int)(h.offset[u + 1] - h.offset[u]), lw = (int)(h.offset[w + 1] - h.offset[w]), l = 0;
      const uint8_t *cu = h.code + h.offset[u], *cw = h.code + h.offset[w];
      while (l < lu && l < lw && cu[l] == cw[l]) l++;
      if (l == lu || l == lw) bad_prefix++;
      if (n <= 300) {
        const int32_t *pu = h.point + h.offset[u], *pw = h.point + h.offset[w];
        for (int i = 0; i < lu; i++)
          for (int j = 0; j < lw; j++)
            if ((pu[i] == pw[j]) != (i == j && i <= l)) bad_tree++;
      }
    }
  if (n <= 300 && !bad_len) {
    /* every inner node is on some path */
    char *used = calloc((size_t)n, 1);
    for (int w = 0; w < n; w++)
      for (int64_t d = 0; d < h.offset[w + 1] - h.offset[w]; d++) {
        int32_t p = h.point[h.offset[w] + d];
        if (p >= 0 && p < n) used[p] = 1;
      }
    for (int i = 0; i < n - 1; i++)
      if (!used[i]) bad_tree++;
    free(used);
  }
  CHECK_MSG(bad_len == 0, "%s: %d code lengths out of 1..%d", what, bad_len, W2V_MAX_CODE);
  CHECK_MSG(bad_root == 0, "%s: %d paths do not start at the root %d", what, bad_root, n - 2);
  CHECK_MSG(bad_point == 0, "%s: %d points outside [0, %d]", what, bad_point, n - 2);
  CHECK_MSG(bad_prefix == 0, "%s: %d code pairs where one is a prefix of the other", what, bad_prefix);
  CHECK_MSG(bad_tree == 0, "%s: %d inconsistencies between points and codes", what, bad_tree);
  CHECK_MSG(kraft == 1.0, "%s: sum 2^-len = %.17g, want 1", what, kraft);
  int64_t want = ref_huffman_cost(counts, n);
  CHECK_MSG(cost == want, "%s: sum count*len = %lld, optimal %lld", what, (long long)cost, (long long)want);
  embr__w2v_huffman_free(&h);
  free(counts);
  embr_vocab_free(v);
}

static void test_huffman(void) {
  embr_rng r;
  embr_rng_seed(&r, 1);
  int64_t c[3000];
  const int sizes[] = {2, 3, 4, 5, 6, 17, 64, 100, 257, 1000, 3000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int n = sizes[s];
    char what[64];
    for (int kind = 0; kind < 4; kind++) {
      for (int i = 0; i < n; i++) {
        if (kind == 0) c[i] = 1 + (int64_t)embr_rng_below(&r, 1000);      /* random, ties */
        else if (kind == 1) c[i] = 7;                                      /* all equal */
        else if (kind == 2) c[i] = 1 + 100000 / (i + 1);                   /* Zipf-like */
        else c[i] = (int64_t)1 << (i % 30);                                /* powers of two */
      }
      snprintf(what, sizeof what, "n=%d kind=%d", n, kind);
      check_huffman(c, n, what);
    }
  }
  /* Fibonacci counts give the deepest tree for n words: depth n-1 (= 30 here, within the limit). */
  c[0] = 1;
  c[1] = 1;
  for (int i = 2; i < 31; i++) c[i] = c[i - 1] + c[i - 2];
  check_huffman(c, 31, "fibonacci 31");
  /* One word: no tree. */
  int64_t one = 5;
  embr_vocab *v = vocab_of(&one, 1);
  w2v_huffman h;
  CHECK(embr__w2v_huffman_build(&h, v) == EMBR_EINVAL);
  embr_vocab_free(v);
}

/* Fibonacci counts over 45 words need depth 44 (word2vec.c's limit is 40): the build must give
 * valid codes reaching the root, not cut paths short. */
static void test_huffman_too_deep(void) {
  int64_t c[45];
  c[0] = 1;
  c[1] = 1;
  for (int i = 2; i < 45; i++) c[i] = c[i - 1] + c[i - 2];
  embr_vocab *v = vocab_of(c, 45);
  REQUIRE(v != NULL);
  w2v_huffman h;
  int rc = embr__w2v_huffman_build(&h, v);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  if (rc == 0) {
    int bad = 0, deepest = 0;
    for (int w = 0; w < 45; w++) {
      if (h.point[h.offset[w]] != 45 - 2) bad++;
      if (h.offset[w + 1] - h.offset[w] > deepest) deepest = (int)(h.offset[w + 1] - h.offset[w]);
    }
    CHECK(bad == 0);
    CHECK_EQ_INT(deepest, 44);
    embr__w2v_huffman_free(&h);
  }
  check_huffman(c, 45, "fibonacci 45");
  embr_vocab_free(v);
}

/* ---- (b) sampler ----------------------------------------------------------------------------- */

static void test_sampler(void) {
  const int64_t counts[] = {1000, 300, 50, 20, 7, 1, 1};
  const int n = 7;
  embr_vocab *v = vocab_of(counts, n);
  REQUIRE(v != NULL);
  w2v_sampler s;
  REQUIRE(embr__w2v_sampler_build(&s, v, 0.75) == 0);
  REQUIRE(s.n == n);
  double p[7], sum = 0;
  for (int i = 0; i < n; i++) sum += (p[i] = pow((double)embr_vocab_count(v, i), 0.75));
  for (int i = 0; i < n; i++) p[i] /= sum;
  /* The table itself: P(i) = (prob[i] + sum over j aliasing to i of (1 - prob[j])) / n. */
  double table[7] = {0};
  for (int j = 0; j < n; j++) {
    CHECK(s.prob[j] >= 0 && s.prob[j] <= 1);
    CHECK(s.alias[j] >= 0 && s.alias[j] < n);
    table[j] += s.prob[j] / n;
    if (s.alias[j] >= 0 && s.alias[j] < n) table[s.alias[j]] += (1.0 - s.prob[j]) / n;
  }
  for (int i = 0; i < n; i++) CHECK_NEAR(table[i], p[i], 1e-6);
  /* A million draws: each frequency within 5 standard errors. */
  embr_rng r;
  embr_rng_seed(&r, 77);
  int64_t hist[7] = {0};
  const int64_t N = 1000000;
  for (int64_t t = 0; t < N; t++) {
    int32_t k = embr__w2v_sample(&s, &r);
    if (k >= 0 && k < n) hist[k]++;
  }
  int64_t got = 0;
  for (int i = 0; i < n; i++) {
    got += hist[i];
    double f = (double)hist[i] / (double)N, se = sqrt(p[i] * (1 - p[i]) / (double)N);
    CHECK_MSG(fabs(f - p[i]) <= 5 * se + 1e-6, "word %d: frequency %.6f, want %.6f (se %.2g)", i, f, p[i], se);
  }
  CHECK_EQ_INT(got, N);
  embr__w2v_sampler_free(&s);
  embr_vocab_free(v);

  /* A Zipf vocabulary of 1000 words: exact table, and a chi-square over 1e6 draws. */
  int64_t zc[1000];
  for (int i = 0; i < 1000; i++) zc[i] = 1 + 50000 / (i + 1);
  v = vocab_of(zc, 1000);
  REQUIRE(v != NULL);
  REQUIRE(embr__w2v_sampler_build(&s, v, 0.75) == 0);
  double *pz = calloc(1000, sizeof(double)), *tz = calloc(1000, sizeof(double));
  int64_t *hz = calloc(1000, sizeof(int64_t));
  sum = 0;
  for (int i = 0; i < 1000; i++) sum += (pz[i] = pow((double)embr_vocab_count(v, i), 0.75));
  for (int i = 0; i < 1000; i++) pz[i] /= sum;
  int bad = 0;
  for (int j = 0; j < 1000; j++) {
    if (s.alias[j] < 0 || s.alias[j] >= 1000) {
      bad++;
      continue;
    }
    tz[j] += s.prob[j] / 1000.0;
    tz[s.alias[j]] += (1.0 - s.prob[j]) / 1000.0;
  }
  CHECK_EQ_INT(bad, 0);
  double maxrel = 0;
  for (int i = 0; i < 1000; i++) maxrel = fmax(maxrel, fabs(tz[i] - pz[i]) / pz[i]);
  CHECK_MSG(maxrel < 1e-5, "alias table probabilities off by %.3g (relative)", maxrel);
  for (int64_t t = 0; t < N; t++) {
    int32_t k = embr__w2v_sample(&s, &r);
    if (k >= 0 && k < 1000) hz[k]++;
  }
  double chi2 = 0;
  for (int i = 0; i < 1000; i++) {
    double e = pz[i] * (double)N;
    chi2 += ((double)hz[i] - e) * ((double)hz[i] - e) / e;
  }
  /* 999 degrees of freedom: mean 999, sd 44.7; 6 sd above. */
  CHECK_MSG(chi2 < 999 + 6 * 44.7, "chi-square %.1f over 999 degrees of freedom", chi2);
  free(pz);
  free(tz);
  free(hz);
  embr__w2v_sampler_free(&s);
  embr_vocab_free(v);
}

/* ---- (c) kernels ------------------------------------------------------------------------------- */

typedef struct kcase {
  int m, n, dim;
  int nin, nout;         /* distinct rows in the pools */
  int in_idx[10], out_idx[12];
  float label[12];
  float alpha;
  int stride;            /* floats between rows: dim + 1 (a guard value after each row) */
  float *in_pool, *out_pool;     /* row r at pool + 1 + r * stride (unaligned) */
  float *in0, *out0;             /* copies before the call */
} kcase;

static const float GUARD = 12345.0f;

static float *krow(float *pool, const kcase *k, int r) { return pool + 1 + (size_t)r * (size_t)k->stride; }

static double ref_grad(double f, double label) {
  if (f > 6.0) return label - 1.0;
  if (f < -6.0) return label;
  return label - 1.0 / (1.0 + exp(-f));
}

/* Random case. dup_in / dup_out: allow repeated pointers among inputs / outputs. Values are scaled
 * so that some scores fall beyond +-6 (the clipped region); a case with a score within 1e-3 of
 * +-6 (where float and double could fall on different sides) is redrawn. */
static void kcase_make(kcase *k, int m, int n, int dim, int dup_in, int dup_out, embr_rng *r) {
  memset(k, 0, sizeof *k);
  k->m = m;
  k->n = n;
  k->dim = dim;
  k->stride = dim + 1;
  k->alpha = 0.05f + 0.5f * embr_rng_float(r);
  for (;;) {
    k->nin = dup_in ? 1 + (int)embr_rng_below(r, (uint64_t)m) : m;
    k->nout = dup_out ? 1 + (int)embr_rng_below(r, (uint64_t)n) : n;
    for (int i = 0; i < m; i++) k->in_idx[i] = dup_in ? (int)embr_rng_below(r, (uint64_t)k->nin) : i;
    for (int j = 0; j < n; j++) k->out_idx[j] = dup_out ? (int)embr_rng_below(r, (uint64_t)k->nout) : j;
    if (dup_in && m >= 2) k->in_idx[m - 1] = k->in_idx[0]; /* at least one repeat */
    if (dup_out && n >= 2) k->out_idx[n - 1] = k->out_idx[0];
    for (int j = 0; j < n; j++) k->label[j] = embr_rng_below(r, 3) == 0 ? 1.0f : 0.0f;
    size_t nin_f = (size_t)k->nin * (size_t)k->stride + 2, nout_f = (size_t)k->nout * (size_t)k->stride + 2;
    free(k->in_pool);
    free(k->out_pool);
    k->in_pool = malloc(sizeof(float) * nin_f);
    k->out_pool = malloc(sizeof(float) * nout_f);
    for (size_t i = 0; i < nin_f; i++) k->in_pool[i] = GUARD;
    for (size_t i = 0; i < nout_f; i++) k->out_pool[i] = GUARD;
    float scale = 4.0f / sqrtf((float)dim);
    for (int a = 0; a < k->nin; a++)
      for (int d = 0; d < dim; d++) krow(k->in_pool, k, a)[d] = (2 * embr_rng_float(r) - 1) * scale;
    for (int a = 0; a < k->nout; a++)
      for (int d = 0; d < dim; d++) krow(k->out_pool, k, a)[d] = (2 * embr_rng_float(r) - 1) * scale;
    /* Scores near the clip boundary? */
    int near = 0;
    double *h = calloc((size_t)dim, sizeof(double));
    for (int i = 0; i < m; i++)
      for (int d = 0; d < dim; d++) h[d] += krow(k->in_pool, k, k->in_idx[i])[d] / (double)m;
    for (int i = 0; i < m + 1 && !near; i++)
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int d = 0; d < dim; d++)
          s += (i < m ? krow(k->in_pool, k, k->in_idx[i])[d] : h[d]) * (double)krow(k->out_pool, k, k->out_idx[j])[d];
        if (fabs(fabs(s) - 6.0) < 1e-3) near = 1;
      }
    free(h);
    if (!near) break;
  }
  size_t nin_f = (size_t)k->nin * (size_t)k->stride + 2, nout_f = (size_t)k->nout * (size_t)k->stride + 2;
  k->in0 = malloc(sizeof(float) * nin_f);
  k->out0 = malloc(sizeof(float) * nout_f);
  memcpy(k->in0, k->in_pool, sizeof(float) * nin_f);
  memcpy(k->out0, k->out_pool, sizeof(float) * nout_f);
}

static void kcase_reset(kcase *k) {
  memcpy(k->in_pool, k->in0, sizeof(float) * ((size_t)k->nin * (size_t)k->stride + 2));
  memcpy(k->out_pool, k->out0, sizeof(float) * ((size_t)k->nout * (size_t)k->stride + 2));
}

static void kcase_free(kcase *k) {
  free(k->in_pool);
  free(k->out_pool);
  free(k->in0);
  free(k->out0);
}

/* Expected rows after the call, in double, and a per-value scale (|old| + sum of |terms| added)
 * for the tolerance. sequential_out: CBOW with word2vec.c's order (each output's score sees the
 * updates of earlier copies of the same row) instead of the documented all-from-before. */
static void kref(const kcase *k, int cbow, int sequential_out, double *in_new, double *in_scale,
                 double *out_new, double *out_scale) {
  int m = k->m, n = k->n, dim = k->dim;
  for (int a = 0; a < k->nin; a++)
    for (int d = 0; d < dim; d++) {
      in_new[a * dim + d] = krow(k->in0, k, a)[d];
      in_scale[a * dim + d] = fabs(in_new[a * dim + d]);
    }
  for (int a = 0; a < k->nout; a++)
    for (int d = 0; d < dim; d++) {
      out_new[a * dim + d] = krow(k->out0, k, a)[d];
      out_scale[a * dim + d] = fabs(out_new[a * dim + d]);
    }
  if (!cbow) {
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        const float *x = krow(k->in0, k, k->in_idx[i]), *y = krow(k->out0, k, k->out_idx[j]);
        double s = 0;
        for (int d = 0; d < dim; d++) s += (double)x[d] * y[d];
        double g = ref_grad(s, k->label[j]) * k->alpha;
        for (int d = 0; d < dim; d++) {
          in_new[k->in_idx[i] * dim + d] += g * y[d];
          in_scale[k->in_idx[i] * dim + d] += fabs(g * y[d]);
          out_new[k->out_idx[j] * dim + d] += g * x[d];
          out_scale[k->out_idx[j] * dim + d] += fabs(g * x[d]);
        }
      }
    return;
  }
  double *h = calloc((size_t)dim, sizeof(double)), *e = calloc((size_t)dim, sizeof(double));
  double *es = calloc((size_t)dim, sizeof(double));
  double *cur = malloc(sizeof(double) * (size_t)(k->nout * dim)); /* for the sequential variant */
  for (int a = 0; a < k->nout; a++)
    for (int d = 0; d < dim; d++) cur[a * dim + d] = krow(k->out0, k, a)[d];
  for (int i = 0; i < m; i++)
    for (int d = 0; d < dim; d++) h[d] += krow(k->in0, k, k->in_idx[i])[d];
  for (int d = 0; d < dim; d++) h[d] /= m;
  for (int j = 0; j < n; j++) {
    const double *y = cur + k->out_idx[j] * dim;
    double s = 0;
    for (int d = 0; d < dim; d++) s += h[d] * (sequential_out ? y[d] : (double)krow(k->out0, k, k->out_idx[j])[d]);
    double g = ref_grad(s, k->label[j]) * k->alpha;
    for (int d = 0; d < dim; d++) {
      double yd = sequential_out ? y[d] : (double)krow(k->out0, k, k->out_idx[j])[d];
      e[d] += g * yd;
      es[d] += fabs(g * yd);
      out_new[k->out_idx[j] * dim + d] += g * h[d];
      out_scale[k->out_idx[j] * dim + d] += fabs(g * h[d]);
    }
    if (sequential_out)
      for (int d = 0; d < dim; d++) cur[k->out_idx[j] * dim + d] += g * h[d];
  }
  for (int i = 0; i < m; i++)
    for (int d = 0; d < dim; d++) {
      in_new[k->in_idx[i] * dim + d] += e[d];
      in_scale[k->in_idx[i] * dim + d] += es[d];
    }
  free(h);
  free(e);
  free(es);
  free(cur);
}

/* Runs one kernel on the case (from its initial values) with a scratch of exactly the documented
 * size followed by a canary zone; returns 1 when the canary zone was left untouched. */
static int krun(kcase *k, const w2v_kernels *kern, int cbow) {
  kcase_reset(k);
  float *in[10], *out[12];
  for (int i = 0; i < k->m; i++) in[i] = krow(k->in_pool, k, k->in_idx[i]);
  for (int j = 0; j < k->n; j++) out[j] = krow(k->out_pool, k, k->out_idx[j]);
  size_t doc = embr__w2v_scratch_floats(k->m, k->n, k->dim), canary = (size_t)(k->m * k->dim + 64);
  float *scratch = malloc(sizeof(float) * (doc + canary));
  for (size_t i = 0; i < doc + canary; i++) scratch[i] = -777.0f;
  if (cbow) kern->cbow_update(in, k->m, out, k->label, k->n, k->dim, k->alpha, scratch);
  else kern->sg_update(in, k->m, out, k->label, k->n, k->dim, k->alpha, scratch);
  int ok = 1;
  for (size_t i = doc; i < doc + canary; i++) ok &= scratch[i] == -777.0f;
  free(scratch);
  return ok;
}

/* Compares the pools after a run with the reference; returns the number of bad values (prints
 * the first). Guards must be untouched. */
static int kcompare(const kcase *k, const double *in_new, const double *in_scale, const double *out_new,
                    const double *out_scale, double rel, const char *what) {
  int bad = 0, dim = k->dim, verbose = what != NULL;
  for (int pass = 0; pass < 2; pass++) {
    const float *pool = pass ? k->out_pool : k->in_pool;
    const double *want = pass ? out_new : in_new, *sc = pass ? out_scale : in_scale;
    int rows = pass ? k->nout : k->nin;
    if (pool[0] != GUARD) bad++;
    for (int a = 0; a < rows; a++) {
      const float *row = pool + 1 + (size_t)a * (size_t)k->stride;
      if (row[dim] != GUARD) {
        if (!bad && verbose) fprintf(stderr, "  %s: guard after %s row %d overwritten\n", what, pass ? "out" : "in", a);
        bad++;
      }
      for (int d = 0; d < dim; d++) {
        double w = want[a * dim + d], tol = rel * sc[a * dim + d] + 1e-7;
        if (!(fabs(row[d] - w) <= tol)) {
          if (!bad && verbose)
            fprintf(stderr, "  %s (m %d n %d dim %d): %s row %d [%d] = %.9g, want %.9g (tol %.3g)\n", what, k->m,
                    k->n, dim, pass ? "out" : "in", a, d, (double)row[d], w, tol);
          bad++;
        }
      }
    }
  }
  return bad;
}

static const int kdims[] = {1, 7, 8, 100, 301};

/* Kernels against the double reference. dup_mode 0: distinct rows; 1: repeated input rows;
 * 2: repeated output rows; 3: both. */
static void kernel_vs_reference(const w2v_kernels *kern, const char *name, int cbow, int dup_mode,
                                int *scratch_overruns) {
  embr_rng r;
  embr_rng_seed(&r, 500 + (uint64_t)(cbow * 10 + dup_mode));
  char what[96];
  for (int t = 0; t < 60; t++) {
    int dim = kdims[t % 5];
    int m = 1 + (int)embr_rng_below(&r, 10), n = 1 + (int)embr_rng_below(&r, 12);
    if (t < 5) m = 10, n = 1;  /* many inputs, one output */
    if (t >= 5 && t < 10) m = 1, n = 12;
    kcase k;
    kcase_make(&k, m, n, dim, dup_mode & 1, (dup_mode >> 1) & 1, &r);
    size_t nin = (size_t)(k.nin * dim), nout = (size_t)(k.nout * dim);
    double *in_new = malloc(sizeof(double) * nin), *in_sc = malloc(sizeof(double) * nin);
    double *out_new = malloc(sizeof(double) * nout), *out_sc = malloc(sizeof(double) * nout);
    int canary_ok = krun(&k, kern, cbow);
    if (!canary_ok) ++*scratch_overruns;
    kref(&k, cbow, 0, in_new, in_sc, out_new, out_sc);
    snprintf(what, sizeof what, "%s %s dup %d case %d", name, cbow ? "cbow" : "sg", dup_mode, t);
    /* Documented semantics: every delta from the values before the call, repeats included. */
    CHECK_MSG(kcompare(&k, in_new, in_sc, out_new, out_sc, 2e-5, what) == 0, "%s", what);
    free(in_new);
    free(in_sc);
    free(out_new);
    free(out_sc);
    kcase_free(&k);
  }
}

static void run_kernel_reference(const w2v_kernels *kern, const char *name) {
  int overruns = 0;
  for (int cbow = 0; cbow < 2; cbow++)
    for (int dup = 0; dup < 4; dup++) kernel_vs_reference(kern, name, cbow, dup, &overruns);
  CHECK_MSG(overruns == 0, "%s: %d calls wrote past embr__w2v_scratch_floats()", name, overruns);
}

static void test_kernels_scalar(void) { run_kernel_reference(&embr__w2v_kernels_scalar, "scalar"); }

static void test_kernels_avx2(void) {
  if (embr_cpu_detect() < EMBR_CPU_AVX2) SKIP("this CPU has no AVX2+FMA");
  run_kernel_reference(&embr__w2v_kernels_avx2, "avx2");
  /* AVX2 against scalar on the same inputs (distinct output rows for CBOW; see above). */
  embr_rng r;
  embr_rng_seed(&r, 900);
  int bad = 0;
  for (int t = 0; t < 120; t++) {
    int cbow = t & 1, dim = kdims[(t / 2) % 5];
    int m = 1 + (int)embr_rng_below(&r, 10), n = 1 + (int)embr_rng_below(&r, 12);
    kcase k;
    kcase_make(&k, m, n, dim, t % 3 == 0, !cbow && t % 4 == 0, &r);
    size_t nin_f = (size_t)k.nin * (size_t)k.stride + 2, nout_f = (size_t)k.nout * (size_t)k.stride + 2;
    krun(&k, &embr__w2v_kernels_scalar, cbow);
    float *sin = malloc(sizeof(float) * nin_f), *sout = malloc(sizeof(float) * nout_f);
    memcpy(sin, k.in_pool, sizeof(float) * nin_f);
    memcpy(sout, k.out_pool, sizeof(float) * nout_f);
    krun(&k, &embr__w2v_kernels_avx2, cbow);
    /* tolerance relative to the size of the change plus the old value */
    for (size_t i = 0; i < nin_f; i++) {
      double tol = 2e-5 * (fabs(k.in0[i]) + fabs(sin[i] - k.in0[i])) + 1e-6;
      if (!(fabs(k.in_pool[i] - sin[i]) <= tol) && bad++ == 0)
        fprintf(stderr, "  avx2 vs scalar %s m %d n %d dim %d: in[%zu] %.9g vs %.9g\n", cbow ? "cbow" : "sg", m, n,
                dim, i, (double)k.in_pool[i], (double)sin[i]);
    }
    for (size_t i = 0; i < nout_f; i++) {
      double tol = 2e-5 * (fabs(k.out0[i]) + fabs(sout[i] - k.out0[i])) + 1e-6;
      if (!(fabs(k.out_pool[i] - sout[i]) <= tol) && bad++ == 0)
        fprintf(stderr, "  avx2 vs scalar %s m %d n %d dim %d: out[%zu] %.9g vs %.9g\n", cbow ? "cbow" : "sg", m,
                n, dim, i, (double)k.out_pool[i], (double)sout[i]);
    }
    free(sin);
    free(sout);
    kcase_free(&k);
  }
  CHECK_EQ_INT(bad, 0);
}

/* The clipped gradient at and beyond +-6, and its sign convention. */
static void test_grad_clip(void) {
  CHECK(embr__w2v_grad(7.0f, 1.0f) == 0.0f);
  CHECK(embr__w2v_grad(7.0f, 0.0f) == -1.0f);
  CHECK(embr__w2v_grad(-7.0f, 1.0f) == 1.0f);
  CHECK(embr__w2v_grad(-7.0f, 0.0f) == 0.0f);
  CHECK_NEAR(embr__w2v_grad(0.0f, 1.0f), 0.5, 1e-7);
  CHECK_NEAR(embr__w2v_grad(2.0f, 0.0f), -1.0 / (1.0 + exp(-2.0)), 1e-7);
  CHECK_NEAR(embr__w2v_grad(-5.9f, 1.0f), 1.0 - 1.0 / (1.0 + exp(5.9)), 1e-7);
}

/* ---- (d) training ----------------------------------------------------------------------------- */

enum { TOPIC_WORDS = 30 };

/* Two disjoint topics: every line is 8..20 words of one topic ("a<i>" or "b<i>"). */
static const char *topic_corpus(void) {
  static char path[512];
  if (path[0]) return path;
  snprintf(path, sizeof path, "%s", th_path("topics.txt"));
  embr_rng r;
  embr_rng_seed(&r, 4242);
  size_t cap = 2u << 20, len = 0;
  char *t = malloc(cap);
  int64_t words = 0;
  while (words < 150000) {
    char topic = embr_rng_below(&r, 2) ? 'b' : 'a';
    int n = 8 + (int)embr_rng_below(&r, 13);
    for (int i = 0; i < n; i++)
      len += (size_t)snprintf(t + len, cap - len, "%c%d%c", topic, (int)embr_rng_below(&r, TOPIC_WORDS), i + 1 < n ? ' ' : '\n');
    words += n;
  }
  th_write_file(path, t, len);
  free(t);
  return path;
}

static int64_t corpus_word_count(const char *path) {
  embr_corpus *c;
  if (embr_corpus_open(&c, path, 0, -1)) return -1;
  char w[EMBR_MAX_WORD_BYTES + 1];
  int nl;
  int64_t n = 0;
  while (embr_corpus_next(c, w, &nl) == 1) n++;
  embr_corpus_close(c);
  return n;
}

static double cosine(const float *a, const float *b, int64_t dim) {
  double s = 0, na = 0, nb = 0;
  for (int64_t i = 0; i < dim; i++) {
    s += (double)a[i] * b[i];
    na += (double)a[i] * a[i];
    nb += (double)b[i] * b[i];
  }
  return na > 0 && nb > 0 ? s / sqrt(na * nb) : 0;
}

/* Mean cosine of word pairs within a topic minus across topics. */
static double topic_separation(const embr_matrix *m, double *within_out, double *across_out) {
  double within = 0, across = 0;
  int64_t nw = 0, na = 0;
  for (int64_t i = 0; i < m->n; i++)
    for (int64_t j = i + 1; j < m->n; j++) {
      double c = cosine(m->data + i * m->ld, m->data + j * m->ld, m->dim);
      if (m->labels[i][0] == m->labels[j][0]) within += c, nw++;
      else across += c, na++;
    }
  within /= (double)(nw ? nw : 1);
  across /= (double)(na ? na : 1);
  *within_out = within;
  *across_out = across;
  return within - across;
}

static embr_w2v_params small_params(void) {
  embr_w2v_params p = embr_w2v_params_default();
  p.dim = 20;
  p.window = 4;
  p.min_count = 1;
  p.epochs = 2;
  p.n_threads = 1;
  p.seed = 3;
  return p;
}

static void train_and_check_topics(const embr_w2v_params *p, const char *what) {
  const char *path = topic_corpus();
  embr_matrix m = EMBR_MATRIX_INIT;
  embr_w2v_stats st;
  memset(&st, 0xff, sizeof st);
  double t0 = embr_now();
  int rc = embr_w2v_train(path, NULL, p, &m, &st);
  double secs = embr_now() - t0;
  CHECK_MSG(rc == 0, "%s: %s", what, embr_last_error());
  if (rc) return;
  CHECK_EQ_INT(m.n, 2 * TOPIC_WORDS);
  CHECK_EQ_INT(m.dim, p->dim);
  CHECK(m.labels != NULL);
  CHECK_EQ_INT(st.vocab_size, 2 * TOPIC_WORDS);
  int64_t words = corpus_word_count(path);
  CHECK_EQ_INT(st.corpus_words, words);
  CHECK_EQ_INT(st.words_done, words * p->epochs);
  /* Rows follow the vocabulary order: most frequent first. */
  embr_vocab *v;
  REQUIRE(embr_vocab_build(&v, path, 1, 0, NULL) == 0);
  int bad = 0;
  for (int64_t i = 0; i < m.n && i < embr_vocab_size(v); i++) bad += strcmp(m.labels[i], embr_vocab_word(v, i)) != 0;
  CHECK_EQ_INT(bad, 0);
  embr_vocab_free(v);
  int64_t row, col;
  CHECK(embr_matrix_find_nonfinite(&m, &row, &col) == -1);
  double within, across, sep = topic_separation(&m, &within, &across);
  fprintf(stderr, "  %s: within %.3f across %.3f (%.2f s)\n", what, within, across, secs);
  CHECK_MSG(sep > 0.3, "%s: within-topic cosine %.3f, across %.3f", what, within, across);
  embr_matrix_free(&m);
}

static void test_train_skipgram_negative(void) {
  embr_w2v_params p = small_params();
  train_and_check_topics(&p, "skip-gram negative");
}

static void test_train_skipgram_hs(void) {
  embr_w2v_params p = small_params();
  p.negative = 0;
  p.hs = 1;
  train_and_check_topics(&p, "skip-gram hs");
}

static void test_train_cbow(void) {
  embr_w2v_params p = small_params();
  p.cbow = 1;
  train_and_check_topics(&p, "cbow negative");
  p.hs = 1;
  p.negative = 3;
  p.epochs = 1;
  train_and_check_topics(&p, "cbow hs + negative");
}

static void test_train_classic(void) {
  embr_w2v_params p = small_params();
  p.classic = 1;
  train_and_check_topics(&p, "classic skip-gram negative");
}

/* Two threads over a corpus of more than 2 MiB (each thread gets a byte range of its own): every
 * word is trained once per epoch, and the topics still separate. */
static void test_train_two_threads(void) {
  if (embr_threads_available() < 2) SKIP("one core only");
  const char *path = th_path("topics-big.txt");
  embr_rng r;
  embr_rng_seed(&r, 99);
  size_t cap = 4u << 20, len = 0;
  char *t = malloc(cap);
  int64_t words = 0;
  while (len < (5u << 20) / 2) {
    char topic = embr_rng_below(&r, 2) ? 'b' : 'a';
    int n = 8 + (int)embr_rng_below(&r, 13);
    for (int i = 0; i < n; i++)
      len += (size_t)snprintf(t + len, cap - len, "%c%d%c", topic, (int)embr_rng_below(&r, TOPIC_WORDS), i + 1 < n ? ' ' : '\n');
    words += n;
  }
  th_write_file(path, t, len);
  free(t);
  embr_w2v_params p = small_params();
  p.epochs = 1;
  p.n_threads = 2;
  p.sample = 1e-2; /* keep it short: most of these frequent words are subsampled away */
  embr_matrix m = EMBR_MATRIX_INIT;
  embr_w2v_stats st;
  int rc = embr_w2v_train(path, NULL, &p, &m, &st);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  if (rc) return;
  CHECK_EQ_INT(st.corpus_words, words);
  CHECK_EQ_INT(st.words_done, words);
  double within, across;
  double sep = topic_separation(&m, &within, &across);
  CHECK_MSG(sep > 0.3, "within-topic cosine %.3f, across %.3f", within, across);
  embr_matrix_free(&m);
}

static int same_matrix(const embr_matrix *a, const embr_matrix *b) {
  if (a->n != b->n || a->dim != b->dim) return 0;
  for (int64_t i = 0; i < a->n; i++) {
    if (memcmp(a->data + i * a->ld, b->data + i * b->ld, sizeof(float) * (size_t)a->dim) != 0) return 0;
    if (strcmp(a->labels[i], b->labels[i]) != 0) return 0;
  }
  return 1;
}

static void test_train_deterministic(void) {
  const char *path = topic_corpus();
  embr_w2v_params p = small_params();
  p.epochs = 1;
  embr_matrix a = EMBR_MATRIX_INIT, b = EMBR_MATRIX_INIT, c = EMBR_MATRIX_INIT;
  for (int mode = 0; mode < 3; mode++) {
    p.cbow = mode == 1;
    p.hs = mode == 2;
    p.seed = 11;
    REQUIRE(embr_w2v_train(path, NULL, &p, &a, NULL) == 0);
    REQUIRE(embr_w2v_train(path, NULL, &p, &b, NULL) == 0);
    p.seed = 12;
    REQUIRE(embr_w2v_train(path, NULL, &p, &c, NULL) == 0);
    CHECK_MSG(same_matrix(&a, &b), "mode %d: two runs with the same seed differ", mode);
    CHECK_MSG(!same_matrix(&a, &c), "mode %d: a different seed gave the same vectors", mode);
    embr_matrix_free(&a);
    embr_matrix_free(&b);
    embr_matrix_free(&c);
  }
}

/* A vocabulary given by the caller: only its words get rows (in its order); others are skipped. */
static void test_train_given_vocab(void) {
  const char *path = topic_corpus();
  embr_vocab *full, *v;
  REQUIRE(embr_vocab_build(&full, path, 1, 0, NULL) == 0);
  REQUIRE(embr_vocab_create(&v) == 0);
  for (int64_t i = 0; i < embr_vocab_size(full); i++)
    if (embr_vocab_word(full, i)[0] == 'a') CHECK(embr_vocab_add(v, embr_vocab_word(full, i), embr_vocab_count(full, i)) == 0);
  REQUIRE(embr_vocab_finalize(v, 1, 0) == 0);
  embr_w2v_params p = small_params();
  p.epochs = 1;
  embr_matrix m = EMBR_MATRIX_INIT;
  embr_w2v_stats st;
  REQUIRE(embr_w2v_train(path, v, &p, &m, &st) == 0);
  CHECK_EQ_INT(m.n, TOPIC_WORDS);
  CHECK_EQ_INT(st.corpus_words, embr_vocab_total(v));
  CHECK_EQ_INT(st.words_done, embr_vocab_total(v));
  for (int64_t i = 0; i < m.n; i++) CHECK(strcmp(m.labels[i], embr_vocab_word(v, i)) == 0);
  embr_matrix_free(&m);
  embr_vocab_free(v);
  embr_vocab_free(full);
}

static void check_train_refused(const char *path, const embr_w2v_params *p, int want_rc, const char *what) {
  embr_matrix m = EMBR_MATRIX_INIT;
  int rc = embr_w2v_train(path, NULL, p, &m, NULL);
  if (want_rc) CHECK_MSG(rc == want_rc, "%s: rc %d, want %d (%s)", what, rc, want_rc, embr_last_error());
  else CHECK_MSG(rc < 0, "%s: rc %d", what, rc);
  CHECK_MSG(m.data == NULL && m.labels == NULL && m.n == 0, "%s: output not left empty", what);
  if (path && want_rc != EMBR_EINVAL)
    CHECK_MSG(strstr(embr_last_error(), path) != NULL, "%s: message does not name the file: %s", what,
              embr_last_error());
  embr_matrix_free(&m);
}

static void test_train_bad_inputs(void) {
  embr_w2v_params p = small_params();
  p.epochs = 1;
  const char *empty = th_path("empty.txt");
  write_str(empty, "");
  check_train_refused(empty, &p, 0, "empty corpus");
  const char *blank = th_path("blank.txt");
  write_str(blank, "\n \n\t\n");
  check_train_refused(blank, &p, 0, "white-space corpus");
  const char *bin = th_path("binary.dat");
  unsigned char b[3000];
  for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(i * 37 + 11);
  th_write_file(bin, b, sizeof b);
  check_train_refused(bin, &p, EMBR_EFORMAT, "binary corpus");
  const char *three = th_path("three.txt");
  char t[4000];
  size_t len = 0;
  for (int i = 0; i < 300; i++) len += (size_t)snprintf(t + len, sizeof t - len, "%s ", i % 3 == 0 ? "x" : i % 3 == 1 ? "y" : "z");
  th_write_file(three, t, len);
  p.window = 5;
  check_train_refused(three, &p, 0, "3 words, window 5");
  p.window = 3;
  check_train_refused(three, &p, 0, "3 words, window 3");
  p.window = 2; /* 3 words > window 2: trains */
  embr_matrix m = EMBR_MATRIX_INIT;
  CHECK_MSG(embr_w2v_train(three, NULL, &p, &m, NULL) == 0, "3 words, window 2: %s", embr_last_error());
  CHECK_EQ_INT(m.n, 3);
  embr_matrix_free(&m);
  p.window = 4;
  /* min_count dropping everything */
  p.min_count = 1000000;
  check_train_refused(topic_corpus(), &p, 0, "min-count above every count");
  p.min_count = 1;
  const char *missing = th_path("missing.txt");
  check_train_refused(missing, &p, 0, "missing corpus");
  check_train_refused(th_scratch(), &p, 0, "a directory");

  /* Invalid parameters. */
  const char *ok = topic_corpus();
  embr_w2v_params q = p;
  q.dim = 0;
  check_train_refused(ok, &q, EMBR_EINVAL, "dim 0");
  q = p;
  q.negative = 0;
  q.hs = 0;
  check_train_refused(ok, &q, EMBR_EINVAL, "negative 0 without hs");
  q = p;
  q.window = 0;
  check_train_refused(ok, &q, EMBR_EINVAL, "window 0");
  q = p;
  q.epochs = 0;
  check_train_refused(ok, &q, EMBR_EINVAL, "epochs 0");
  q = p;
  q.negative = -1;
  check_train_refused(ok, &q, EMBR_EINVAL, "negative -1");
  q = p;
  q.sample = 1.0;
  check_train_refused(ok, &q, EMBR_EINVAL, "sample 1");
  q = p;
  q.sample = NAN;
  check_train_refused(ok, &q, EMBR_EINVAL, "sample NaN");
  q = p;
  q.alpha = -0.1;
  check_train_refused(ok, &q, EMBR_EINVAL, "alpha < 0");
  q = p;
  q.min_count = 0;
  check_train_refused(ok, &q, EMBR_EINVAL, "min_count 0");
}

/* A progress callback that cancels: EMBR_ECANCELED, no output. */
static int cancel_cb(void *user, uint64_t done, uint64_t total, double rate, const char *detail) {
  (void)done, (void)total, (void)rate, (void)detail;
  return ++*(int *)user >= 2;
}

static void test_train_cancel(void) {
  embr_w2v_params p = small_params();
  int calls = 0;
  p.progress.fn = cancel_cb;
  p.progress.user = &calls;
  p.progress.min_interval = 1e-9;
  embr_matrix m = EMBR_MATRIX_INIT;
  int rc = embr_w2v_train(topic_corpus(), NULL, &p, &m, NULL);
  CHECK_MSG(rc == EMBR_ECANCELED, "rc %d", rc);
  CHECK(m.data == NULL);
  embr_matrix_free(&m);
}

/* ---- (e) queries ---------------------------------------------------------------------------------- */

/* Hand-built 4-D vectors: queen = king - man + woman exactly (all unit except queen); prince is
 * king scaled; pear is apple scaled; row 8 repeats the word "man". */
static const char *const qwords[] = {"man", "woman", "king", "queen", "prince", "apple",
                                     "pear", "Royal", "man", "fig", "plum"};
static const float qvecs[][4] = {
    {1, 0, 0, 0},  {0, 1, 0, 0},   {0, 0, 1, 0},     {-1, 1, 1, 0},        {0, 0, 2, 0},         {0, 0, 0, 1},
    {0, 0, 0, 3},  {0, 0.5f, 1, 1}, {0.3f, 0.2f, 0.1f, -0.4f}, {0.2f, -0.7f, 0.1f, 0.5f}, {-0.5f, -0.5f, 0.5f, -0.5f}};
enum { QN = 11, QD = 4 };

static void make_query_matrix(embr_matrix *m, int64_t ld) {
  memset(m, 0, sizeof *m);
  m->n = QN;
  m->dim = QD;
  m->ld = ld;
  m->data = calloc((size_t)(QN * ld), sizeof(float));
  m->labels = calloc(QN, sizeof(char *));
  for (int i = 0; i < QN; i++) {
    memcpy(m->data + i * ld, qvecs[i], sizeof qvecs[i]);
    for (int64_t k = QD; k < ld; k++) m->data[i * ld + k] = 99.0f; /* padding must be ignored */
    m->labels[i] = strdup(qwords[i]);
  }
}

static void free_query_matrix(embr_matrix *m) {
  for (int i = 0; i < QN; i++) free(m->labels[i]);
  free(m->labels);
  free(m->data);
}

static double qcos(int a, const double *t) {
  double s = 0, na = 0, nt = 0;
  for (int k = 0; k < QD; k++) {
    s += qvecs[a][k] * t[k];
    na += (double)qvecs[a][k] * qvecs[a][k];
    nt += t[k] * t[k];
  }
  return s / sqrt(na * nt);
}

static void qunit(int a, double *u) {
  double n = 0;
  for (int k = 0; k < QD; k++) n += (double)qvecs[a][k] * qvecs[a][k];
  for (int k = 0; k < QD; k++) u[k] = qvecs[a][k] / sqrt(n);
}

typedef struct scored {
  double s;
  int64_t row;
} scored;

static int cmp_scored(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->s != y->s) return x->s > y->s ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

/* Compares k results with reference scores ref[row] (NAN = excluded row). Rows must match the
 * reference order exactly (ties by lower row) unless two reference scores differ by < 1e-6
 * without being equal. score_factor multiplies the reference scores before comparing them. */
static int check_ranked(const int64_t *rows, const float *scores, int k, const double *ref, int n,
                        double score_factor, const char *what) {
  int verbose = what != NULL;
  scored s[QN];
  int ns = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(ref[i])) s[ns++] = (scored){ref[i], i};
  qsort(s, (size_t)ns, sizeof s[0], cmp_scored);
  int ok = 1;
  for (int r = 0; r < k; r++) {
    if (r >= ns) {
      if (rows[r] != -1) {
        if (verbose) fprintf(stderr, "  %s: rank %d: row %lld, want padding -1\n", what, r, (long long)rows[r]);
        ok = 0;
      }
      continue;
    }
    int same = rows[r] == s[r].row;
    if (!same && rows[r] >= 0 && rows[r] < n && !isnan(ref[rows[r]]) && ref[rows[r]] != s[r].s &&
        fabs(ref[rows[r]] - s[r].s) < 1e-6)
      same = 1;
    if (!same || !(fabs(scores[r] - s[r].s * score_factor) <= 1e-5 * fmax(1.0, fabs(s[r].s * score_factor)))) {
      if (verbose) fprintf(stderr, "  %s: rank %d: got row %lld score %.7g, want row %lld score %.7g\n", what, r,
              (long long)rows[r], (double)scores[r], (long long)s[r].row, s[r].s * score_factor);
      ok = 0;
    }
  }
  return ok;
}

static void test_wordvecs_lookup(void) {
  embr_matrix m;
  make_query_matrix(&m, QD + 3);
  embr_wordvecs *w;
  REQUIRE(embr_wordvecs_create(&w, &m, 0, 0) == 0);
  CHECK_EQ_INT(embr_wordvecs_size(w), QN);
  for (int i = 0; i < QN; i++) {
    CHECK(strcmp(embr_wordvecs_word(w, i), qwords[i]) == 0);
    if (i != 8) CHECK_EQ_INT(embr_wordvecs_find(w, qwords[i]), i);
  }
  CHECK_EQ_INT(embr_wordvecs_find(w, "man"), 0); /* first occurrence wins */
  CHECK_EQ_INT(embr_wordvecs_find(w, "KING"), -1);
  CHECK_EQ_INT(embr_wordvecs_find(w, "royal"), -1);
  CHECK_EQ_INT(embr_wordvecs_find(w, "unicorn"), -1);
  embr_wordvecs_free(w);
  /* case-insensitive (ASCII folding) */
  REQUIRE(embr_wordvecs_create(&w, &m, 0, 1) == 0);
  CHECK_EQ_INT(embr_wordvecs_find(w, "KING"), 2);
  CHECK_EQ_INT(embr_wordvecs_find(w, "royal"), 7);
  CHECK_EQ_INT(embr_wordvecs_find(w, "ROYAL"), 7);
  CHECK_EQ_INT(embr_wordvecs_find(w, "Man"), 0);
  CHECK(strcmp(embr_wordvecs_word(w, 7), "Royal") == 0); /* words keep their spelling */
  embr_wordvecs_free(w);
  /* restrict: the first rows only */
  REQUIRE(embr_wordvecs_create(&w, &m, 4, 0) == 0);
  CHECK_EQ_INT(embr_wordvecs_size(w), 4);
  CHECK_EQ_INT(embr_wordvecs_find(w, "queen"), 3);
  CHECK_EQ_INT(embr_wordvecs_find(w, "prince"), -1);
  CHECK_EQ_INT(embr_wordvecs_find(w, "plum"), -1);
  int64_t rows[5];
  float sims[5];
  REQUIRE(embr_w2v_similar(w, "king", 5, rows, sims) == 0);
  /* cos(king, .) among man, woman, queen: 0, 0, 1/sqrt(3) */
  CHECK(rows[0] == 3 && rows[1] == 0 && rows[2] == 1 && rows[3] == -1 && rows[4] == -1);
  CHECK_NEAR(sims[0], 1 / sqrt(3.0), 1e-6);
  CHECK(sims[1] == 0 && sims[2] == 0);
  CHECK(embr_w2v_similar(w, "prince", 5, rows, sims) == EMBR_ENOTFOUND);
  embr_wordvecs_free(w);
  REQUIRE(embr_wordvecs_create(&w, &m, 1000, 0) == 0); /* more than there are */
  CHECK_EQ_INT(embr_wordvecs_size(w), QN);
  embr_wordvecs_free(w);
  embr_wordvecs_free(NULL);
  /* no labels */
  char **labels = m.labels;
  m.labels = NULL;
  CHECK(embr_wordvecs_create(&w, &m, 0, 0) == EMBR_EINVAL);
  m.labels = labels;
  free_query_matrix(&m);
}

static void test_similar(void) {
  embr_matrix m;
  make_query_matrix(&m, QD);
  embr_wordvecs *w;
  REQUIRE(embr_wordvecs_create(&w, &m, 0, 0) == 0);
  int64_t rows[16];
  float sims[16];
  double ref[QN], u[QD];
  for (int q = 0; q < QN; q++) {
    if (q == 8) continue; /* "man" is row 0 */
    qunit(q, u);
    for (int i = 0; i < QN; i++) ref[i] = i == q ? NAN : qcos(i, u);
    for (int k = 1; k <= 13; k += 4) {
      char what[64];
      snprintf(what, sizeof what, "similar(%s, k=%d)", qwords[q], k);
      int rc = embr_w2v_similar(w, qwords[q], k, rows, sims);
      CHECK_MSG(rc == 0, "%s: %s", what, embr_last_error());
      if (rc == 0) CHECK(check_ranked(rows, sims, k, ref, QN, 1.0, what));
    }
  }
  /* Hand-checked: king's neighbours are prince (1), Royal (2/3), queen (1/sqrt 3), plum (1/2), row 8
   * "man" (0.1/sqrt 0.3), fig, then the exact zeros man, woman, apple, pear by row. */
  REQUIRE(embr_w2v_similar(w, "king", 12, rows, sims) == 0);
  const int64_t want[12] = {4, 7, 3, 10, 8, 9, 0, 1, 5, 6, -1, -1};
  for (int i = 0; i < 12; i++) CHECK_MSG(rows[i] == want[i], "rank %d: %lld, want %lld", i, (long long)rows[i], (long long)want[i]);
  CHECK_NEAR(sims[0], 1.0, 1e-6);
  CHECK_NEAR(sims[1], 2.0 / 3.0, 1e-6);
  CHECK_NEAR(sims[4], 0.1 / sqrt(0.3), 1e-6);
  CHECK(sims[6] == 0 && sims[9] == 0);
  /* Unknown word: ENOTFOUND naming it. */
  CHECK(embr_w2v_similar(w, "unicorn", 3, rows, sims) == EMBR_ENOTFOUND);
  CHECK_MSG(strstr(embr_last_error(), "unicorn") != NULL, "message: %s", embr_last_error());
  CHECK(embr_w2v_similar(w, "king", 0, rows, sims) == EMBR_EINVAL);
  embr_wordvecs_free(w);
  free_query_matrix(&m);
}

static void analogy_ref(int a, int b, int c, embr_analogy_method method, double *ref, double *tnorm) {
  double ua[QD], ub[QD], uc[QD], t[QD], nt = 0;
  qunit(a, ua);
  qunit(b, ub);
  qunit(c, uc);
  for (int k = 0; k < QD; k++) {
    t[k] = ub[k] - ua[k] + uc[k];
    nt += t[k] * t[k];
  }
  *tnorm = sqrt(nt);
  for (int i = 0; i < QN; i++) {
    if (i == a || i == b || i == c) {
      ref[i] = NAN;
      continue;
    }
    if (method == EMBR_ANALOGY_3COSADD) {
      ref[i] = qcos(i, t);
    } else {
      double cb = (qcos(i, ub) + 1) / 2, cc = (qcos(i, uc) + 1) / 2, ca = (qcos(i, ua) + 1) / 2;
      ref[i] = cb * cc / (ca + 0.001);
    }
  }
}

static void test_analogy(void) {
  embr_matrix m;
  make_query_matrix(&m, QD + 1);
  embr_wordvecs *w;
  REQUIRE(embr_wordvecs_create(&w, &m, 0, 0) == 0);
  int64_t rows[12];
  float sc[12];
  /* man : king :: woman : queen, exactly: cos 1. */
  REQUIRE(embr_w2v_analogy(w, "man", "king", "woman", EMBR_ANALOGY_3COSADD, 3, rows, sc) == 0);
  CHECK_EQ_INT(rows[0], 3);
  REQUIRE(embr_w2v_analogy(w, "man", "king", "woman", EMBR_ANALOGY_3COSMUL, 3, rows, sc) == 0);
  CHECK_EQ_INT(rows[0], 3);
  const int triples[][3] = {{0, 2, 1}, {1, 3, 0}, {5, 6, 1}, {2, 4, 3}, {9, 10, 7}, {7, 5, 9}, {3, 1, 10}, {6, 5, 2}};
  int score_not_cosine = 0;
  for (size_t t = 0; t < sizeof triples / sizeof triples[0]; t++) {
    int a = triples[t][0], b = triples[t][1], c = triples[t][2];
    for (int method = 0; method < 2; method++) {
      double ref[QN], tn;
      analogy_ref(a, b, c, (embr_analogy_method)method, ref, &tn);
      char what[96];
      snprintf(what, sizeof what, "%s %s:%s::%s:?", method ? "3cosmul" : "3cosadd", qwords[a], qwords[b], qwords[c]);
      int rc = embr_w2v_analogy(w, qwords[a], qwords[b], qwords[c], (embr_analogy_method)method, 10, rows, sc);
      CHECK_MSG(rc == 0, "%s: %s", what, embr_last_error());
      if (rc) continue;
      for (int i = 0; i < 10; i++) CHECK(rows[i] != a && rows[i] != b && rows[i] != c);
      if (method == EMBR_ANALOGY_3COSMUL) {
        CHECK(check_ranked(rows, sc, 10, ref, QN, 1.0, what));
      } else if (!check_ranked(rows, sc, 10, ref, QN, 1.0, NULL)) {
        /* The documented score is cos(x, b - a + c). Accept (and report) the same ranking with
         * scores scaled by |b - a + c| (a dot product with the unnormalised target). */
        score_not_cosine++;
        CHECK_MSG(check_ranked(rows, sc, 10, ref, QN, tn, what), "%s: neither cosine nor scaled cosine", what);
      }
    }
  }
  CHECK(score_not_cosine == 0);
  /* Unknown words, in each position: ENOTFOUND naming the word. */
  const char *bad[3][3] = {{"unicorn", "king", "woman"}, {"man", "dragon", "woman"}, {"man", "king", "griffin"}};
  for (int i = 0; i < 3; i++) {
    CHECK(embr_w2v_analogy(w, bad[i][0], bad[i][1], bad[i][2], EMBR_ANALOGY_3COSADD, 3, rows, sc) == EMBR_ENOTFOUND);
    CHECK_MSG(strstr(embr_last_error(), bad[i][i]) != NULL, "message: %s", embr_last_error());
  }
  CHECK(embr_w2v_analogy(w, "man", "king", "woman", EMBR_ANALOGY_3COSADD, 0, rows, sc) == EMBR_EINVAL);
  /* k beyond the candidates: padding */
  REQUIRE(embr_w2v_analogy(w, "man", "king", "woman", EMBR_ANALOGY_3COSMUL, 12, rows, sc) == 0);
  CHECK(rows[7] >= 0 && rows[8] == -1 && rows[11] == -1);
  embr_wordvecs_free(w);
  free_query_matrix(&m);
}

/* The analogy benchmark: counters by hand (3CosAdd), in three configurations. */
static const char questions[] =
    ": capital-common-countries\n"
    "man king woman queen\n"      /* correct: queen is exactly king - man + woman */
    "man king woman prince\n"     /* wrong (answer queen) */
    "man king woman unicorn\n"    /* not seen */
    ":family\n"                   /* no space after the colon */
    "woman queen man king\n"      /* correct: king and prince tie, the lower row wins */
    "woman queen man prince\n"    /* wrong, by that tie */
    ": currency\n"
    "foo bar baz qux\n"           /* not seen */
    ": city-in-state\n"
    "MAN KING WOMAN QUEEN\r\n"    /* seen only when folding case; then correct */
    ": empty-semantic\n"
    "\n"
    ": gram1-adjective-to-adverb\n"
    "apple pear woman queen\n"    /* target = woman: queen (1/sqrt 3) beats row 8 (0.365), Royal (1/3) */
    "apple pear woman Royal\n"    /* wrong */
    "apple pear woman unicorn\n"  /* not seen */
    ": gram2-opposite\n"
    "pear apple king prince\n"    /* correct (cos 1) */
    "pear apple king queen\n";    /* wrong */

typedef struct sec_want {
  int64_t correct, seen, total;
} sec_want;

static void check_eval(const embr_wordvecs *w, const char *path, embr_analogy_method method, int threads,
                       const sec_want *want, const char *what) {
  embr_analogy_eval e;
  int rc = embr_w2v_eval_analogies(w, path, method, threads, &e);
  CHECK_MSG(rc == 0, "%s: %s", what, embr_last_error());
  if (rc) return;
  static const char *names[] = {"capital-common-countries", "family", "currency", "city-in-state",
                                "empty-semantic", "gram1-adjective-to-adverb", "gram2-opposite"};
  CHECK_EQ_INT(e.nsections, 7);
  int64_t c = 0, s = 0, t = 0, sc = 0, ss = 0, yc = 0, ys = 0;
  for (int i = 0; i < 7 && i < e.nsections; i++) {
    CHECK_MSG(strcmp(e.sections[i].name, names[i]) == 0, "%s: section %d is '%s'", what, i, e.sections[i].name);
    CHECK_MSG(e.sections[i].correct == want[i].correct && e.sections[i].seen == want[i].seen &&
                  e.sections[i].total == want[i].total,
              "%s: section %s: %lld/%lld/%lld, want %lld/%lld/%lld", what, names[i], (long long)e.sections[i].correct,
              (long long)e.sections[i].seen, (long long)e.sections[i].total, (long long)want[i].correct,
              (long long)want[i].seen, (long long)want[i].total);
    c += want[i].correct, s += want[i].seen, t += want[i].total;
    if (i < 5) sc += want[i].correct, ss += want[i].seen;
    else yc += want[i].correct, ys += want[i].seen;
  }
  CHECK_MSG(e.correct == c && e.seen == s && e.total == t, "%s: totals %lld/%lld/%lld, want %lld/%lld/%lld", what,
            (long long)e.correct, (long long)e.seen, (long long)e.total, (long long)c, (long long)s, (long long)t);
  CHECK_MSG(e.sem_correct == sc && e.sem_seen == ss, "%s: semantic %lld/%lld, want %lld/%lld", what,
            (long long)e.sem_correct, (long long)e.sem_seen, (long long)sc, (long long)ss);
  CHECK_MSG(e.syn_correct == yc && e.syn_seen == ys, "%s: syntactic %lld/%lld, want %lld/%lld", what,
            (long long)e.syn_correct, (long long)e.syn_seen, (long long)yc, (long long)ys);
  /* Every question, in file order, with its words, section and an outcome that adds up to the
   * section's counts; a question is seen exactly when its four words are found. */
  CHECK_EQ_INT(e.nquestions, t);
  int64_t qc[7] = {0}, qs[7] = {0}, qt[7] = {0};
  char *copy = strdup(questions), *save = NULL;
  int64_t i = 0;
  int sec = -1;
  for (char *line = strtok_r(copy, "\r\n", &save); line && i < e.nquestions; line = strtok_r(NULL, "\r\n", &save)) {
    if (line[0] == ':') {
      sec++;
      continue;
    }
    const embr_analogy_question *qq = &e.questions[i++];
    char want_line[512];
    snprintf(want_line, sizeof want_line, "%s %s %s %s", qq->word[0], qq->word[1], qq->word[2], qq->word[3]);
    CHECK_MSG(strcmp(want_line, line) == 0 && qq->section == sec, "%s: question %lld is '%s' (section %d)", what,
              (long long)i, want_line, qq->section);
    int seen = 1;
    for (int k = 0; k < 4; k++) seen &= embr_wordvecs_find(w, qq->word[k]) >= 0;
    CHECK_MSG((qq->outcome >= 0) == seen && qq->outcome <= 1, "%s: '%s' outcome %d", what, line, qq->outcome);
    if (qq->section >= 0 && qq->section < 7) {
      qt[qq->section]++;
      qs[qq->section] += qq->outcome >= 0;
      qc[qq->section] += qq->outcome == 1;
    }
  }
  free(copy);
  for (int k = 0; k < 7; k++)
    CHECK_MSG(qc[k] == want[k].correct && qs[k] == want[k].seen && qt[k] == want[k].total,
              "%s: section %d from the questions: %lld/%lld/%lld", what, k, (long long)qc[k], (long long)qs[k],
              (long long)qt[k]);
  embr_analogy_eval_free(&e);
}

/* For 3CosMul: the expected answers by the double reference (the same file). */
static void eval_ref_mul(const embr_wordvecs *w, sec_want *want) {
  memset(want, 0, sizeof(sec_want) * 7);
  char *copy = strdup(questions), *save = NULL;
  int sec = -1;
  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == ':') {
      sec++;
      continue;
    }
    char q[4][32];
    if (sscanf(line, "%31s %31s %31s %31s", q[0], q[1], q[2], q[3]) != 4) continue;
    want[sec].total++;
    int64_t r[4];
    int seen = 1;
    for (int k = 0; k < 4; k++) seen &= (r[k] = embr_wordvecs_find(w, q[k])) >= 0;
    if (!seen) continue;
    want[sec].seen++;
    double ref[QN], tn;
    analogy_ref((int)r[0], (int)r[1], (int)r[2], EMBR_ANALOGY_3COSMUL, ref, &tn);
    int best = -1;
    for (int i = 0; i < QN; i++)
      if (!isnan(ref[i]) && i < embr_wordvecs_size(w) && (best < 0 || ref[i] > ref[best])) best = i;
    want[sec].correct += best == r[3];
  }
  free(copy);
}

static void test_eval_analogies(void) {
  const char *path = th_path("questions.txt");
  write_str(path, questions);
  embr_matrix m;
  make_query_matrix(&m, QD);
  embr_wordvecs *w;
  REQUIRE(embr_wordvecs_create(&w, &m, 0, 1) == 0);
  const sec_want folded[7] = {{1, 2, 3}, {1, 2, 2}, {0, 0, 1}, {1, 1, 1}, {0, 0, 0}, {1, 2, 3}, {1, 2, 2}};
  check_eval(w, path, EMBR_ANALOGY_3COSADD, 1, folded, "3cosadd, folded");
  check_eval(w, path, EMBR_ANALOGY_3COSADD, 2, folded, "3cosadd, folded, 2 threads");
  sec_want mul[7];
  eval_ref_mul(w, mul);
  check_eval(w, path, EMBR_ANALOGY_3COSMUL, 0, mul, "3cosmul, folded");
  embr_wordvecs_free(w);
  REQUIRE(embr_wordvecs_create(&w, &m, 0, 0) == 0);
  const sec_want exact[7] = {{1, 2, 3}, {1, 2, 2}, {0, 0, 1}, {0, 0, 1}, {0, 0, 0}, {1, 2, 3}, {1, 2, 2}};
  check_eval(w, path, EMBR_ANALOGY_3COSADD, 1, exact, "3cosadd, case-sensitive");
  embr_wordvecs_free(w);
  /* Restricted to man, woman, king, queen: only questions within them are seen. */
  REQUIRE(embr_wordvecs_create(&w, &m, 4, 1) == 0);
  const sec_want restricted[7] = {{1, 1, 3}, {1, 1, 2}, {0, 0, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 3}, {0, 0, 2}};
  check_eval(w, path, EMBR_ANALOGY_3COSADD, 1, restricted, "3cosadd, restrict 4");
  /* Malformed files: refused naming the file (and the line). */
  embr_analogy_eval e;
  const char *bad = th_path("bad-questions.txt");
  write_str(bad, ": s\nman king woman\n");
  CHECK(embr_w2v_eval_analogies(w, bad, EMBR_ANALOGY_3COSADD, 1, &e) == EMBR_EFORMAT);
  CHECK_MSG(strstr(embr_last_error(), bad) && strstr(embr_last_error(), "line 2"), "message: %s", embr_last_error());
  write_str(bad, "man king woman queen\n");
  CHECK(embr_w2v_eval_analogies(w, bad, EMBR_ANALOGY_3COSADD, 1, &e) == EMBR_EFORMAT);
  write_str(bad, "");
  CHECK(embr_w2v_eval_analogies(w, bad, EMBR_ANALOGY_3COSADD, 1, &e) == EMBR_EFORMAT);
  CHECK(embr_w2v_eval_analogies(w, th_path("no-such-questions.txt"), EMBR_ANALOGY_3COSADD, 1, &e) < 0);
  embr_wordvecs_free(w);
  free_query_matrix(&m);
}

/* Spearman's rho: ranks with ties averaged (counted, not sorted), then Pearson. */
static void ref_ranks(const double *v, int n, double *rank) {
  for (int i = 0; i < n; i++) {
    int less = 0, equal = 0;
    for (int j = 0; j < n; j++) {
      less += v[j] < v[i];
      equal += v[j] == v[i];
    }
    rank[i] = 1 + less + (equal - 1) / 2.0;
  }
}

static double ref_spearman(const double *x, const double *y, int n) {
  double rx[32], ry[32], mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
  ref_ranks(x, n, rx);
  ref_ranks(y, n, ry);
  for (int i = 0; i < n; i++) mx += rx[i] / n, my += ry[i] / n;
  for (int i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  return sxy / sqrt(sxx * syy);
}

static void test_eval_similarity(void) {
  const char *path = th_path("pairs.txt");
  write_str(path,
            "# a comment line, skipped\n"
            "word1\tword2\tscore\n"  /* a header: no number */
            "man woman 5.0\n"
            "king queen 7.5\n"
            "apple pear 7.5\n"
            "man king 2\n"
            "woman\tqueen\t3\r\n"
            "king prince 9 extra-field\n"
            "apple unicorn 4\n"      /* unknown word */
            "pear apple 6.1\n"
            "plum fig 1.0\n"
            "Royal,king,8\n"         /* comma-separated */
            "\n");
  embr_matrix m;
  make_query_matrix(&m, QD);
  embr_wordvecs *w;
  REQUIRE(embr_wordvecs_create(&w, &m, 0, 0) == 0);
  /* Known pairs in order, with human scores; model = cosine in double. Ties on both sides:
   * human 7.5 twice; model 0 (man-woman, man-king), 1/sqrt(3) (king-queen, woman-queen) and 1
   * (apple-pear, king-prince, pear-apple). */
  const int pa[] = {0, 2, 5, 0, 1, 2, 6, 10, 7}, pb[] = {1, 3, 6, 2, 3, 4, 5, 9, 2};
  const double human[] = {5.0, 7.5, 7.5, 2, 3, 9, 6.1, 1.0, 8};
  double model[9], u[QD];
  for (int i = 0; i < 9; i++) {
    qunit(pb[i], u);
    model[i] = qcos(pa[i], u);
  }
  double want = ref_spearman(human, model, 9);
  embr_similarity_eval e;
  REQUIRE(embr_w2v_eval_similarity(w, path, &e) == 0);
  CHECK_EQ_INT(e.pairs, 9);
  CHECK_EQ_INT(e.oov, 1);
  CHECK_NEAR(e.spearman, want, 1e-9);
  /* A tiny case by hand: scores 1 2 3 vs model 0 (man-woman), 1 (king-prince), 1/3 (Royal-woman):
   * ranks 1 2 3 vs 1 3 2 -> rho = 1 - 6*2/(3*8) = 0.5. */
  write_str(path, "man woman 1\nking prince 2\nRoyal woman 3\n");
  REQUIRE(embr_w2v_eval_similarity(w, path, &e) == 0);
  CHECK_EQ_INT(e.pairs, 3);
  CHECK_EQ_INT(e.oov, 0);
  CHECK_NEAR(e.spearman, 0.5, 1e-12);
  /* Too few known pairs, missing file: errors naming the file. */
  write_str(path, "man woman 1\nman unicorn 2\n");
  CHECK(embr_w2v_eval_similarity(w, path, &e) == EMBR_EFORMAT);
  CHECK_MSG(strstr(embr_last_error(), path) != NULL, "message: %s", embr_last_error());
  const char *missing = th_path("no-pairs.txt");
  CHECK(embr_w2v_eval_similarity(w, missing, &e) < 0);
  CHECK_MSG(strstr(embr_last_error(), missing) != NULL, "message: %s", embr_last_error());
  embr_wordvecs_free(w);
  free_query_matrix(&m);
}

int main(int argc, char **argv) {
  int rc = RUN_TESTS(argc, argv, test_huffman, test_huffman_too_deep, test_sampler, test_grad_clip,
                     test_kernels_scalar, test_kernels_avx2, test_train_skipgram_negative,
                     test_train_skipgram_hs, test_train_cbow, test_train_classic,
                     test_train_deterministic, test_train_two_threads, test_train_given_vocab, test_train_bad_inputs,
                     test_train_cancel, test_wordvecs_lookup, test_similar, test_analogy,
                     test_eval_analogies, test_eval_similarity);
  return rc;
}
