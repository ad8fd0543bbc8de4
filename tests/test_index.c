/* Indexes (flat, HNSW, IVF-Flat, IVF-PQ) and k-means: recall against embr_knn's exact results for
 * every metric a kind supports, caller ids, adds, duplicates, removal, filters, padding, save/load
 * round trips (copied and memory-mapped), damaged and truncated files, factory errors; k-means
 * recovering blob centres, never-growing inertia and determinism. */
#include "embr/index.h"
#include "embr/synth.h"
#include "harness.h"
#include "index/kmeans.h"
#include "index/pq.h"

#include <errno.h>
#include <stdint.h>
#include <zlib.h>

/* ---- helpers ---------------------------------------------------------------------------------- */

static unsigned char *read_whole(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

/* Seeded clustered data, n x dim, contiguous (malloc). */
static float *synth(int64_t n, int64_t dim, uint64_t seed, uint64_t stream) {
  embr_synth_params sp = embr_synth_params_default();
  sp.clusters = 40;
  sp.seed = seed;
  embr_matrix m = EMBR_MATRIX_INIT;
  if (embr_synth_clusters(&sp, n, dim, stream, &m, NULL)) return NULL;
  float *x = malloc(sizeof(float) * (size_t)(n * dim));
  for (int64_t i = 0; i < n; i++) memcpy(x + i * dim, m.data + i * m.ld, sizeof(float) * (size_t)dim);
  embr_matrix_free(&m);
  return x;
}

static int64_t *seq_ids(int64_t n, int64_t first, int64_t step) {
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++) ids[i] = first + step * i;
  return ids;
}

/* Exact k-NN through embr_knn, ids mapped through rowid. Cosine is computed as the indexes do:
 * inner product of normalised copies (same kernels, so ties and roundings agree). */
static void exact_knn(embr_metric m, const float *base, int64_t nb, const int64_t *rowid, const float *q, int64_t nq,
                      int64_t dim, int k, float *dist, int64_t *ids) {
  float *b = (float *)base, *qq = (float *)q;
  if (m == EMBR_METRIC_COSINE) {
    b = malloc(sizeof(float) * (size_t)((nb ? nb : 1) * dim));
    qq = malloc(sizeof(float) * (size_t)(nq * dim));
    for (int pass = 0; pass < 2; pass++) {
      const float *src = pass ? q : base;
      float *dst = pass ? qq : b;
      for (int64_t i = 0; i < (pass ? nq : nb); i++) {
        float nn = embr_norm_sq(src + i * dim, dim), inv = nn > 0 ? 1.0f / sqrtf(nn) : 0.0f;
        for (int64_t j = 0; j < dim; j++) dst[i * dim + j] = src[i * dim + j] * inv;
      }
    }
  }
  int rc = embr_knn(m == EMBR_METRIC_COSINE ? EMBR_METRIC_IP : m, b, nb, dim, qq, nq, dim, dim, k, dist, ids, NULL);
  CHECK(rc == 0);
  for (int64_t i = 0; i < nq * k; i++)
    if (ids[i] >= 0 && rowid) ids[i] = rowid[ids[i]];
  if (b != base) free(b);
  if (qq != q) free(qq);
}

/* Share of the exact ids (non-padding) found among the returned ones, per query. */
static double recall(const int64_t *got, const int64_t *want, int64_t nq, int k) {
  int64_t hit = 0, total = 0;
  for (int64_t i = 0; i < nq; i++)
    for (int a = 0; a < k; a++) {
      if (want[i * k + a] < 0) continue;
      total++;
      for (int b = 0; b < k; b++)
        if (got[i * k + b] == want[i * k + a]) {
          hit++;
          break;
        }
    }
  return total ? (double)hit / (double)total : 1.0;
}

static embr_index *build(const char *spec, int64_t dim, embr_metric m, const float *x, int64_t n, const int64_t *ids) {
  embr_index *ix = NULL;
  int rc = embr_index_create(&ix, spec, dim, m);
  CHECK_MSG(rc == 0, "create %s: %s", spec, embr_last_error());
  if (rc) return NULL;
  rc = embr_index_add(ix, x, n, dim, ids, NULL);
  CHECK_MSG(rc == 0, "add to %s: %s", spec, embr_last_error());
  return ix;
}

/* Results best first: distances ordered by the metric, padding only at the end. */
static int well_ordered(embr_metric m, const float *d, const int64_t *ids, int64_t nq, int k) {
  int desc = embr_metric_descending(m);
  for (int64_t i = 0; i < nq; i++)
    for (int j = 1; j < k; j++) {
      const float *r = d + i * k;
      if (ids[i * k + j] < 0) continue;
      if (ids[i * k + j - 1] < 0) return 0;
      if (desc ? r[j] > r[j - 1] : r[j] < r[j - 1]) return 0;
    }
  return 1;
}

typedef struct kind_case {
  const char *spec;
  int64_t dim;
  int nmetrics;  /* metrics 0..nmetrics-1 */
  int nprobe, ef, refine;
  double min_recall;
} kind_case;

static const kind_case kinds[] = {
    {"flat", 24, 4, 0, 0, -1, 1.0},
    {"hnsw:M=16,efc=100", 32, 4, 0, 64, -1, 0.95},
    {"ivfflat:nlist=64,nprobe=4", 16, 4, 64, 0, -1, 1.0}, /* nprobe = nlist: exhaustive */
    {"ivfpq:nlist=64,m=16,nprobe=16", 64, 3, 0, 0, -1, 0.5},
    {"ivfpq:nlist=64,m=8,nprobe=16,refine=8", 32, 3, 0, 0, -1, 0.9},
};
enum { NKINDS = sizeof kinds / sizeof kinds[0], NB = 4000, NQ = 100, K = 10 };

static embr_search_params kind_params(const kind_case *kc) {
  embr_search_params p = embr_search_params_default();
  p.nprobe = kc->nprobe;
  p.ef = kc->ef;
  p.refine = kc->refine;
  return p;
}

/* ---- recall ------------------------------------------------------------------------------------ */

static void check_recall(const kind_case *kc, embr_metric m) {
  int64_t dim = kc->dim;
  float *x = synth(NB, dim, 7, 0), *q = synth(NQ, dim, 7, 1);
  int64_t *ids = seq_ids(NB, 1000, 7);
  float *d = malloc(sizeof(float) * NQ * K), *ed = malloc(sizeof(float) * NQ * K);
  int64_t *got = malloc(sizeof(int64_t) * NQ * K), *want = malloc(sizeof(int64_t) * NQ * K);
  embr_index *ix = build(kc->spec, dim, m, x, NB, ids);
  embr_search_params p = kind_params(kc);
  if (ix && embr_index_search(ix, q, NQ, dim, K, d, got, &p) == 0) {
    exact_knn(m, x, NB, ids, q, NQ, dim, K, ed, want);
    double r = recall(got, want, NQ, K);
    fprintf(stderr, "  %-40s %-6s recall@10 %.3f\n", kc->spec, embr_metric_name(m), r);
    CHECK_MSG(r >= kc->min_recall, "%s %s: recall %.3f < %.3f", kc->spec, embr_metric_name(m), r, kc->min_recall);
    CHECK(well_ordered(m, d, got, NQ, K));
    CHECK_EQ_INT(embr_index_size(ix), NB);
    /* Reported distances are those of the returned ids (approximately, for PQ without refine). */
    double err = 0, scale = 0;
    for (int i = 0; i < NQ * K; i++) {
      if (got[i] < 0) continue;
      float e = embr_distance(m, q + (i / K) * dim, x + ((got[i] - 1000) / 7) * dim, dim);
      err += fabs(d[i] - e);
      scale += fabs(e);
    }
    CHECK_MSG(err <= (kc->min_recall > 0.5 ? 1e-4 : 0.1) * scale, "%s %s: distances off by %.3g of %.3g", kc->spec,
              embr_metric_name(m), err, scale);
    if (kc->min_recall == 1.0) { /* exact kinds: the very same ids, in order, and distances */
      int same = 1;
      for (int i = 0; i < NQ * K; i++)
        same &= got[i] == want[i] && fabsf(d[i] - ed[i]) <= 1e-5f * fmaxf(1, fabsf(ed[i]));
      CHECK_MSG(same, "%s %s: results differ from exact search", kc->spec, embr_metric_name(m));
    }
  } else {
    CHECK_MSG(0, "search %s: %s", kc->spec, embr_last_error());
  }
  embr_index_free(ix);
  free(x), free(q), free(ids), free(d), free(ed), free(got), free(want);
}

static void test_recall_every_kind_and_metric(void) {
  for (int c = 0; c < NKINDS; c++)
    for (int m = 0; m < kinds[c].nmetrics; m++) check_recall(&kinds[c], (embr_metric)m);
}

/* The default nprobe of IVF-Flat already finds most neighbours on clustered data. */
static void test_ivfflat_default_nprobe(void) {
  int64_t dim = 16;
  float *x = synth(NB, dim, 8, 0), *q = synth(NQ, dim, 8, 1);
  float d[NQ * K], ed[NQ * K];
  int64_t got[NQ * K], want[NQ * K];
  embr_index *ix = build("ivfflat:nlist=64,nprobe=8", dim, EMBR_METRIC_L2, x, NB, NULL);
  REQUIRE(ix);
  CHECK(embr_index_search(ix, q, NQ, dim, K, d, got, NULL) == 0);
  exact_knn(EMBR_METRIC_L2, x, NB, NULL, q, NQ, dim, K, ed, want);
  CHECK(recall(got, want, NQ, K) >= 0.9);
  embr_search_params p = embr_search_params_default();
  p.nprobe = 1;
  CHECK(embr_index_search(ix, q, NQ, dim, K, d, got, &p) == 0);
  CHECK(recall(got, want, NQ, K) < 1.0); /* one cell is not enough: nprobe is honoured */
  embr_index_free(ix);
  free(x), free(q);
}

/* Both ways of building L2 tables (precomputed cell terms, or from the residual) agree. */
static void test_ivfpq_table_paths_agree(void) {
  int64_t dim = 32;
  float *x = synth(2000, dim, 9, 0), *q = synth(50, dim, 9, 1);
  float d1[50 * K], d2[50 * K];
  int64_t i1[50 * K], i2[50 * K];
  embr_index *a = build("ivfpq:nlist=32,m=8,nprobe=8", dim, EMBR_METRIC_L2, x, 2000, NULL);
  embr_index *b = NULL; /* the same, without the precomputed terms */
  REQUIRE(embr_index_create(&b, "ivfpq:nlist=32,m=8,nprobe=8", dim, EMBR_METRIC_L2) == 0);
  CHECK(embr__ivfpq_set_term_max(b, 0) == 0);
  CHECK(embr_index_add(b, x, 2000, dim, NULL, NULL) == 0);
  REQUIRE(a);
  CHECK(embr_index_memory(a) > embr_index_memory(b)); /* a holds the tables */
  CHECK(embr_index_search(a, q, 50, dim, K, d1, i1, NULL) == 0);
  CHECK(embr_index_search(b, q, 50, dim, K, d2, i2, NULL) == 0);
  int same = 0, close = 1;
  for (int i = 0; i < 50 * K; i++) {
    same += i1[i] == i2[i];
    close &= fabsf(d1[i] - d2[i]) <= 1e-3f * fmaxf(1, fabsf(d2[i]));
  }
  CHECK(same >= 50 * K * 95 / 100);
  CHECK(close);
  embr_index_free(a);
  embr_index_free(b);
  free(x), free(q);
}

/* IVF-PQ keeps m bytes of code and an 8-byte id per vector in its lists (plus the id map). */
static void test_ivfpq_memory(void) {
  int64_t dim = 32, n = 3000;
  float *x = synth(n, dim, 10, 0);
  embr_index *ix = build("ivfpq:nlist=16,m=8,nprobe=4", dim, EMBR_METRIC_L2, x, n, NULL);
  REQUIRE(ix);
  int64_t fixed = 16 * (dim + 1) * 4 + 256 * (2 * dim + 8) * 4 + 16 * 8 * 256 * 4 + 16 * 64;
  int64_t per = (embr_index_memory(ix) - fixed) / n;
  fprintf(stderr, "  ivfpq m=8: %lld bytes per vector (lists + id map)\n", (long long)per);
  CHECK(per >= 16 && per <= 16 + 16 * 4 + 32); /* lists grow by doubling; the id map is ~2-4 slots of 16 */
  embr_index_free(ix);
  free(x);
}

/* ---- ids, adds, removal ------------------------------------------------------------------------ */

static const char *small_specs[] = {"flat", "hnsw:M=16,efc=100", "ivfflat:nlist=16,nprobe=16",
                                    "ivfpq:nlist=16,m=4,nprobe=16,refine=4"};
enum { NSMALL = 4 };

static void check_ids_and_adds(const char *spec) {
  int64_t dim = 16, n = 1000;
  float *x = synth(n + 10, dim, 11, 0);
  int64_t *ids = seq_ids(n, 1000, 7);
  embr_index *ix = build(spec, dim, EMBR_METRIC_L2, x, n, ids);
  REQUIRE(ix);
  /* Every vector finds itself (or an identical twin) with its own id. */
  float d[5];
  int64_t got[5];
  int self = 0;
  for (int64_t i = 0; i < n; i += 50) {
    CHECK(embr_index_search(ix, x + i * dim, 1, dim, 5, d, got, NULL) == 0);
    self += got[0] == ids[i];
  }
  CHECK_MSG(self >= 19, "%s: %d of 20 vectors found themselves", spec, self);
  /* Without ids: continue after the largest. */
  CHECK(embr_index_add(ix, x + n * dim, 2, dim, NULL, NULL) == 0);
  CHECK(embr_index_search(ix, x + (n + 1) * dim, 1, dim, 1, d, got, NULL) == 0);
  CHECK_EQ_INT(got[0], 1000 + 7 * (n - 1) + 2);
  /* Duplicates in the batch, an id already present, a negative id: refused, nothing added. */
  int64_t dup_batch[3] = {1, 2, 1}, present[3] = {3, 1000 + 7 * 5, 4}, neg[1] = {-5};
  CHECK(embr_index_add(ix, x, 3, dim, dup_batch, NULL) == EMBR_EINVAL);
  CHECK(embr_index_add(ix, x, 3, dim, present, NULL) == EMBR_EINVAL);
  CHECK(embr_index_add(ix, x, 1, dim, neg, NULL) == EMBR_EINVAL);
  CHECK_EQ_INT(embr_index_size(ix), n + 2);
  float bad[16];
  memcpy(bad, x, sizeof bad);
  bad[3] = NAN;
  CHECK(embr_index_add(ix, bad, 1, dim, NULL, NULL) == EMBR_EVALUE);
  CHECK_EQ_INT(embr_index_size(ix), n + 2);
  embr_index_free(ix);
  free(x), free(ids);
}

static void test_ids_and_adds(void) {
  for (int s = 0; s < NSMALL; s++) check_ids_and_adds(small_specs[s]);
}

static int never_returned(const int64_t *got, int64_t cnt, const int64_t *gone, int64_t ngone) {
  for (int64_t i = 0; i < cnt; i++)
    for (int64_t j = 0; j < ngone; j++)
      if (got[i] == gone[j]) return 0;
  return 1;
}

/* Exact neighbours among the items still present (live[i] != 0). */
static void exact_live(embr_metric m, const float *x, const int64_t *ids, const char *live, int64_t n, const float *q,
                       int64_t nq, int64_t dim, int k, int64_t *want) {
  float *sub = malloc(sizeof(float) * (size_t)(n * dim)), *d = malloc(sizeof(float) * (size_t)(nq * k));
  int64_t *sid = malloc(sizeof(int64_t) * (size_t)n), cnt = 0;
  for (int64_t i = 0; i < n; i++)
    if (live[i]) {
      memcpy(sub + cnt * dim, x + i * dim, sizeof(float) * (size_t)dim);
      sid[cnt++] = ids[i];
    }
  exact_knn(m, sub, cnt, sid, q, nq, dim, k, d, want);
  free(sub), free(d), free(sid);
}

static void check_remove(const char *spec, double min_recall) {
  int64_t dim = 16, n = 2000, nq = 50;
  float *x = synth(n + 500, dim, 12, 0), *q = synth(nq, dim, 12, 1);
  int64_t *ids = seq_ids(n + 500, 5, 3), gone[667], ngone = 0, removed = -1;
  char *live = calloc((size_t)(n + 500), 1);
  embr_index *ix = build(spec, dim, EMBR_METRIC_L2, x, n, ids);
  REQUIRE(ix);
  for (int64_t i = 0; i < n; i++) live[i] = 1;
  for (int64_t i = 0; i < n; i += 3) {
    gone[ngone++] = ids[i];
    live[i] = 0;
  }
  CHECK(embr_index_remove(ix, gone, ngone, &removed) == 0);
  CHECK_EQ_INT(removed, ngone);
  CHECK_EQ_INT(embr_index_size(ix), n - ngone);
  int64_t absent[2] = {ids[0], 999999};
  CHECK(embr_index_remove(ix, absent, 2, &removed) == 0);
  CHECK_EQ_INT(removed, 0);
  float *d = malloc(sizeof(float) * (size_t)nq * K);
  int64_t *got = malloc(sizeof(int64_t) * (size_t)nq * K), *want = malloc(sizeof(int64_t) * (size_t)nq * K);
  CHECK(embr_index_search(ix, q, nq, dim, K, d, got, NULL) == 0);
  CHECK(never_returned(got, nq * K, gone, ngone));
  exact_live(EMBR_METRIC_L2, x, ids, live, n + 500, q, nq, dim, K, want);
  double r1 = recall(got, want, nq, K);
  CHECK_MSG(r1 >= min_recall, "%s after removal: recall %.3f", spec, r1);
  /* New items (HNSW reuses the freed slots) keep recall up. */
  CHECK(embr_index_add(ix, x + n * dim, 500, dim, ids + n, NULL) == 0);
  for (int64_t i = n; i < n + 500; i++) live[i] = 1;
  CHECK_EQ_INT(embr_index_size(ix), n - ngone + 500);
  CHECK(embr_index_search(ix, q, nq, dim, K, d, got, NULL) == 0);
  CHECK(never_returned(got, nq * K, gone, ngone));
  exact_live(EMBR_METRIC_L2, x, ids, live, n + 500, q, nq, dim, K, want);
  double r2 = recall(got, want, nq, K);
  fprintf(stderr, "  %-40s recall after removal %.3f, after re-adding %.3f\n", spec, r1, r2);
  CHECK_MSG(r2 >= min_recall, "%s after re-adding: recall %.3f", spec, r2);
  embr_index_free(ix);
  free(x), free(q), free(ids), free(live), free(d), free(got), free(want);
}

/* Many rounds of deletes and adds (HNSW reuses freed slots, moving them to new vectors): every
 * live item used as the query must still find itself. Before the hole repair, slot reuse cut
 * parts of the graph off and a few live items became unreachable after ~1000 rounds. */
static void test_churn_keeps_items_reachable(void) {
  enum { DIM = 8, CAP = 4000 };
  float *x = malloc(sizeof(float) * CAP * DIM);
  char *live = calloc(CAP, 1);
  REQUIRE(x && live);
  for (uint64_t seed = 1; seed <= 8; seed++) {
    embr_rng r;
    embr_rng_seed(&r, seed);
    embr_index *ix = NULL;
    REQUIRE(embr_index_create(&ix, "hnsw:M=8,efc=40", DIM, EMBR_METRIC_L2) == 0);
    embr_index_set_threads(ix, 1);
    int64_t n = 0, unreachable = 0;
    memset(live, 0, CAP);
    for (int round = 0; round < 2400 && n + 3 <= CAP; round++) {
      if (embr_rng_below(&r, 10) < 6) {
        int64_t ids[3] = {n, n + 1, n + 2};
        for (int64_t i = n * DIM; i < (n + 3) * DIM; i++) x[i] = (float)(2 * embr_rng_double(&r) - 1);
        CHECK(embr_index_add(ix, x + n * DIM, 3, DIM, ids, NULL) == 0);
        memset(live + n, 1, 3);
        n += 3;
      } else if (n) {
        int64_t id = (int64_t)embr_rng_below(&r, (uint64_t)n);
        CHECK(embr_index_remove(ix, &id, 1, NULL) == 0);
        live[id] = 0;
      }
    }
    embr_search_params p = embr_search_params_default();
    p.ef = 64;
    for (int64_t i = 0; i < n; i++) {
      float d;
      int64_t got;
      if (!live[i]) continue;
      CHECK(embr_index_search(ix, x + i * DIM, 1, DIM, 1, &d, &got, &p) == 0);
      unreachable += got != i && d > 0;
    }
    CHECK_MSG(unreachable == 0, "seed %llu: %lld of %lld live items do not find themselves", (unsigned long long)seed,
              (long long)unreachable, (long long)embr_index_size(ix));
    embr_index_free(ix);
  }
  free(x), free(live);
}

/* Every item of a small HNSW graph is reachable: a search with k = n and a huge ef returns all
 * of them, whether the graph grew in small adds or in one parallel bulk add. Before, the
 * neighbour heuristic dropped far nodes' last in-links (half of these graphs at M=4 lost items),
 * and parallel insertion overwrote links other threads had just made (40 of 50 bulk builds). */
static int reachable_count(const float *x, const int64_t *ids, int n, int dim, int batch, int threads, float *d,
                           int64_t *got) {
  embr_index *ix = NULL;
  if (embr_index_create(&ix, "hnsw:M=4,efc=40", dim, EMBR_METRIC_L2)) return -1;
  embr_index_set_threads(ix, threads);
  for (int b = 0; b < n; b += batch) CHECK(embr_index_add(ix, x + b * dim, n - b < batch ? n - b : batch, dim, ids + b, NULL) == 0);
  embr_search_params p = embr_search_params_default();
  p.ef = 4 * n;
  int found = 0;
  if (embr_index_search(ix, x, 1, dim, n, d, got, &p) == 0)
    for (int i = 0; i < n; i++) found += got[i] >= 0;
  embr_index_free(ix);
  return found;
}

static void test_every_item_reachable(void) {
  enum { DIM = 8, N = 400, TRIALS = 20 };
  float *x = malloc(sizeof(float) * N * DIM), *d = malloc(sizeof(float) * N);
  int64_t ids[N], got[N];
  REQUIRE(x && d);
  for (int i = 0; i < N; i++) ids[i] = i;
  for (int t = 0; t < TRIALS; t++) {
    embr_rng r;
    embr_rng_seed(&r, (uint64_t)t + 1);
    for (int i = 0; i < N * DIM; i++) x[i] = (float)embr_rng_normal(&r);
    int small = reachable_count(x, ids, N, DIM, 3, 1, d, got), bulk = reachable_count(x, ids, N, DIM, N, 2, d, got);
    CHECK_MSG(small == N, "trial %d, adds of 3: %d of %d items reachable", t, small, N);
    CHECK_MSG(bulk == N, "trial %d, one add on 2 threads: %d of %d items reachable", t, bulk, N);
  }
  free(x), free(d);
}

static void test_remove(void) {
  double min[NSMALL] = {1.0, 0.95, 1.0, 0.9};
  for (int s = 0; s < NSMALL; s++) check_remove(small_specs[s], min[s]);
}

/* ---- HNSW: the first file layout, search states, ids without a map ------------------------------ */

static void *read_ref(const char *name, size_t want) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/ref/hnsw_v1/%s", EMBR_SOURCE_DIR, name);
  size_t len = 0;
  unsigned char *b = read_whole(path, &len);
  CHECK_MSG(b && len == want, "%s: %zu bytes, expected %zu", path, len, want);
  if (b && len != want) {
    free(b);
    b = NULL;
  }
  return b;
}

/* Files written by embr before the compact layout (tests/ref/hnsw_v1, made by
 * scripts/make_hnsw_v1_ref.c with main's writer: padded records, removed and reused slots, caller
 * ids) load copied and mapped and answer byte for byte what the old code answered, on 1 and 2
 * threads; a copy keeps taking adds and saves in its own layout. */
static void test_hnsw_first_layout_files(void) {
  enum { NQ1 = 20, D = 12, KK = 8 };
  const char *names[2] = {"l2", "cosine"};
  for (int m = 0; m < 2; m++) {
    char f[64], path[1024];
    snprintf(f, sizeof f, "%s.query.f32", names[m]);
    float *q = read_ref(f, sizeof(float) * NQ1 * D);
    snprintf(f, sizeof f, "%s.dist.f32", names[m]);
    float *want_d = read_ref(f, sizeof(float) * NQ1 * KK);
    snprintf(f, sizeof f, "%s.ids.i64", names[m]);
    int64_t *want_i = read_ref(f, sizeof(int64_t) * NQ1 * KK);
    snprintf(path, sizeof path, "%s/tests/ref/hnsw_v1/%s.idx", EMBR_SOURCE_DIR, names[m]);
    if (!q || !want_d || !want_i) goto next;
    for (int mapped = 0; mapped < 2; mapped++) {
      embr_index *ix = NULL;
      int rc = embr_index_load(&ix, path, mapped ? EMBR_LOAD_MMAP : 0);
      CHECK_MSG(rc == 0, "%s: %s", path, embr_last_error());
      if (rc) continue;
      CHECK(embr_index_size(ix) == 240 - 40 + 25);
      for (int th = 1; th <= 2; th++) {
        float d[NQ1 * KK];
        int64_t ids[NQ1 * KK];
        embr_search_params p = embr_search_params_default();
        p.ef = 30;
        p.n_threads = th;
        CHECK(embr_index_search(ix, q, NQ1, D, KK, d, ids, &p) == 0);
        /* The files were made on the AVX2 path; the portable kernels round differently in the
         * last bits (same ids, distances within 1e-5). */
        int close = 1;
        for (int i = 0; i < NQ1 * KK; i++) close &= fabsf(d[i] - want_d[i]) <= 1e-5f * (1 + fabsf(want_d[i]));
        if (embr_cpu_active() == EMBR_CPU_AVX2)
          CHECK_MSG(!memcmp(d, want_d, sizeof d) && !memcmp(ids, want_i, sizeof ids), "%s %s, %d threads: other results",
                    names[m], mapped ? "mapped" : "copied", th);
        else
          CHECK_MSG(close && !memcmp(ids, want_i, sizeof ids), "%s %s, %d threads, portable kernels: other results",
                    names[m], mapped ? "mapped" : "copied", th);
      }
      if (!mapped) { /* adds go on in the old layout, and it saves and reloads */
        float x[3 * D];
        int64_t nid[3] = {7, 8, 9}, got;
        float dd;
        for (int i = 0; i < 3 * D; i++) x[i] = q[i] + 0.25f;
        CHECK(embr_index_add(ix, x, 3, D, nid, NULL) == 0);
        const char *again = th_path("v1_again.idx");
        CHECK(embr_index_save(ix, again) == 0);
        embr_index *back = NULL;
        CHECK(embr_index_load(&back, again, 0) == 0);
        embr_search_params p = embr_search_params_default();
        p.ef = 64;
        for (int i = 0; i < 3 && back; i++) {
          CHECK(embr_index_search(back, x + i * D, 1, D, 1, &dd, &got, &p) == 0);
          CHECK_MSG(got == nid[i], "%s: added item %d found as %lld", names[m], i, (long long)got);
        }
        CHECK(back && embr_index_size(back) == 228);
        embr_index_free(back);
      }
      embr_index_free(ix);
    }
  next:
    free(q), free(want_d), free(want_i);
  }
}

/* Batch calls on 1 and 2 threads and one-query calls give the same bytes (each query's walk
 * depends on nothing else); a one-query call after an add that grew the index (its pooled search
 * state sized for fewer items) answers as a freshly loaded copy does. */
static void test_hnsw_calls_agree(void) {
  enum { DIM = 24, N0 = 1500, N1 = 2500, NQ1 = 120, KK = 10 };
  float *x = synth(N0 + N1, DIM, 41, 0), *q = synth(NQ1, DIM, 41, 1);
  float *d1 = malloc(sizeof(float) * NQ1 * KK), *d2 = malloc(sizeof(float) * NQ1 * KK), *d3 = malloc(sizeof(float) * NQ1 * KK);
  int64_t *i1 = malloc(sizeof(int64_t) * NQ1 * KK), *i2 = malloc(sizeof(int64_t) * NQ1 * KK), *i3 = malloc(sizeof(int64_t) * NQ1 * KK);
  REQUIRE(x && q && d1 && d2 && d3 && i1 && i2 && i3);
  embr_index *ix = NULL, *back = NULL;
  REQUIRE(embr_index_create(&ix, "hnsw:M=8,efc=60", DIM, EMBR_METRIC_L2) == 0);
  embr_index_set_threads(ix, 2);
  CHECK(embr_index_add(ix, x, N0, DIM, NULL, NULL) == 0);
  for (int round = 0; round < 2; round++) {
    embr_search_params p = embr_search_params_default();
    p.ef = 40;
    p.n_threads = 1;
    CHECK(embr_index_search(ix, q, NQ1, DIM, KK, d1, i1, &p) == 0);
    p.n_threads = 2;
    CHECK(embr_index_search(ix, q, NQ1, DIM, KK, d2, i2, &p) == 0);
    p.n_threads = 1;
    for (int i = 0; i < NQ1; i++) CHECK(embr_index_search(ix, q + i * DIM, 1, DIM, KK, d3 + i * KK, i3 + i * KK, &p) == 0);
    CHECK_MSG(!memcmp(d1, d2, sizeof(float) * NQ1 * KK) && !memcmp(i1, i2, sizeof(int64_t) * NQ1 * KK), "round %d: 1 and 2 threads differ", round);
    CHECK_MSG(!memcmp(d1, d3, sizeof(float) * NQ1 * KK) && !memcmp(i1, i3, sizeof(int64_t) * NQ1 * KK), "round %d: one-query calls differ", round);
    if (round == 0) CHECK(embr_index_add(ix, x + N0 * DIM, N1, DIM, NULL, NULL) == 0);
  }
  /* the grown index against a fresh copy of itself (no pooled state) */
  CHECK(embr_index_save(ix, th_path("grown.idx")) == 0);
  CHECK(embr_index_load(&back, th_path("grown.idx"), 0) == 0);
  if (back) {
    embr_search_params p = embr_search_params_default();
    p.ef = 40;
    CHECK(embr_index_search(back, q, NQ1, DIM, KK, d2, i2, &p) == 0);
    CHECK(!memcmp(d1, d2, sizeof(float) * NQ1 * KK) && !memcmp(i1, i2, sizeof(int64_t) * NQ1 * KK));
  }
  embr_index_free(ix);
  embr_index_free(back);
  free(x), free(q), free(d1), free(d2), free(d3), free(i1), free(i2), free(i3);
}

static int only_id(void *ctx, int64_t id) { return id == *(const int64_t *)ctx; }

/* Whether `id` is live: a search admitting only it (an exact scan of the admitted) returns it. */
static int has_id(const embr_index *ix, int64_t id, const float *q) {
  embr_search_params p = embr_search_params_default();
  p.filter = only_id;
  p.filter_ctx = &id;
  float d;
  int64_t got = -1;
  CHECK(embr_index_search(ix, q, 1, embr_index_dim(ix), 1, &d, &got, &p) == 0);
  return got == id;
}

/* Ids left to the index (0, 1, 2, ...) need no id map; removal, re-adding with other ids (which
 * reuses slots and brings the map in), save and load keep membership and search answers right,
 * checked against a plain record of which ids are live. */
static void test_hnsw_ids_with_and_without_map(void) {
  enum { DIM = 8, N = 600, GONE = 50, NEW = 30 };
  float *x = synth(N + NEW, DIM, 43, 0);
  REQUIRE(x);
  static int64_t live_ids[N + NEW];
  static char is_live[N + NEW];
  for (int variant = 0; variant < 2; variant++) { /* 0: NULL ids; 1: the same ids given explicitly */
    embr_index *ix = NULL, *back = NULL;
    REQUIRE(embr_index_create(&ix, "hnsw:M=8,efc=40", DIM, EMBR_METRIC_L2) == 0);
    int64_t *given = variant ? seq_ids(N, 0, 1) : NULL;
    CHECK(embr_index_add(ix, x, N, DIM, given, NULL) == 0);
    free(given);
    for (int i = 0; i < N; i++) live_ids[i] = i, is_live[i] = 1;
    int64_t gone[GONE], removed = 0;
    for (int i = 0; i < GONE; i++) gone[i] = 7 + 11 * i, is_live[7 + 11 * i] = 0;
    CHECK(embr_index_remove(ix, gone, GONE, &removed) == 0 && removed == GONE);
    CHECK(!has_id(ix, gone[3], x) && has_id(ix, 8, x) && !has_id(ix, N, x));
    int64_t again = gone[0];
    CHECK(embr_index_remove(ix, &again, 1, &removed) == 0 && removed == 0); /* already gone */
    int64_t nid[NEW];
    for (int i = 0; i < NEW; i++) nid[i] = 1000000 + 5 * i, live_ids[N + i] = nid[i], is_live[N + i] = 1;
    CHECK(embr_index_add(ix, x + N * DIM, NEW, DIM, nid, NULL) == 0);
    CHECK(embr_index_add(ix, x, 1, DIM, nid + 2, NULL) == EMBR_EINVAL); /* still known after the map came in */
    CHECK(embr_index_save(ix, th_path("ids.idx")) == 0);
    CHECK(embr_index_load(&back, th_path("ids.idx"), 0) == 0);
    embr_index *both[2] = {ix, back};
    for (int b = 0; b < 2 && back; b++) {
      int wrong = 0;
      for (int i = 0; i < N + NEW; i += 3) wrong += has_id(both[b], live_ids[i], x) != is_live[i];
      for (int g = 0; g < GONE; g++) wrong += has_id(both[b], gone[g], x);
      CHECK_MSG(wrong == 0, "variant %d %s: %d ids wrongly live or gone", variant, b ? "loaded" : "built", wrong);
      CHECK(embr_index_size(both[b]) == N - GONE + NEW);
      embr_search_params p = embr_search_params_default();
      p.ef = 64;
      int missed = 0;
      for (int i = 0; i < N + NEW; i++) {
        float d;
        int64_t got;
        if (!is_live[i]) continue;
        CHECK(embr_index_search(both[b], x + i * DIM, 1, DIM, 1, &d, &got, &p) == 0);
        missed += !(got == live_ids[i] || d == 0); /* an exact duplicate vector may win the tie */
        CHECK(never_returned(&got, 1, gone, GONE));
      }
      CHECK_MSG(missed <= 3, "variant %d %s: %d live items not found as themselves", variant, b ? "loaded" : "built", missed);
    }
    embr_index_free(ix);
    embr_index_free(back);
  }
  free(x);
}

/* What a compact index costs: per item its record (link count, 2M links, the vector), id, level,
 * flags, in-degree and lock, and the upper levels; no id map while ids are the slots. */
static void test_hnsw_memory(void) {
  enum { DIM = 100, N = 3000, M = 16 };
  float *x = synth(N, DIM, 47, 0);
  REQUIRE(x);
  embr_index *ix = build("hnsw:M=16,efc=40", DIM, EMBR_METRIC_COSINE, x, N, NULL);
  REQUIRE(ix);
  double per = (double)embr_index_memory(ix) / N, floor = 4.0 * DIM + 4.0 * (2 * M + 1) + 8;
  fprintf(stderr, "  HNSW memory per item: %.1f bytes (record and id %.0f)\n", per, floor);
  CHECK_MSG(per >= floor && per <= floor + 40, "%.1f bytes per item", per);
  embr_index_free(ix);
  free(x);
}

/* ---- filters --------------------------------------------------------------------------------- */

static int mod3(void *ctx, int64_t id) {
  (void)ctx;
  return id % 3 == 0;
}

static void check_filter(const kind_case *kc, int use_bitset) {
  int64_t dim = kc->dim, maxid = 1000 + 7 * NB;
  float *x = synth(NB, dim, 13, 0), *q = synth(NQ, dim, 13, 1);
  int64_t *ids = seq_ids(NB, 1000, 7);
  char *live = calloc(NB, 1);
  uint8_t *bits = calloc((size_t)(maxid / 8 + 1), 1);
  embr_rng r;
  embr_rng_seed(&r, 14);
  for (int64_t i = 0; i < NB; i++) {
    live[i] = use_bitset ? embr_rng_below(&r, 100) == 0 : ids[i] % 3 == 0;
    if (live[i]) bits[ids[i] >> 3] |= (uint8_t)(1u << (ids[i] & 7));
  }
  embr_index *ix = build(kc->spec, dim, EMBR_METRIC_L2, x, NB, ids);
  embr_search_params p = kind_params(kc);
  if (kc->nprobe) p.nprobe = 0; /* the index's default: the filter must widen it by itself */
  if (use_bitset) {
    p.bitset = bits;
    p.bitset_bits = maxid + 1;
  } else {
    p.filter = mod3;
  }
  float *d = malloc(sizeof(float) * NQ * K);
  int64_t *got = malloc(sizeof(int64_t) * NQ * K), *want = malloc(sizeof(int64_t) * NQ * K);
  if (ix) {
    CHECK(embr_index_search(ix, q, NQ, dim, K, d, got, &p) == 0);
    int admitted = 1;
    for (int i = 0; i < NQ * K; i++)
      if (got[i] >= 0) admitted &= (use_bitset ? (bits[got[i] >> 3] >> (got[i] & 7)) & 1 : got[i] % 3 == 0);
    CHECK_MSG(admitted, "%s returned an id the filter refuses", kc->spec);
    exact_live(EMBR_METRIC_L2, x, ids, live, NB, q, NQ, dim, K, want);
    double rc = recall(got, want, NQ, K), min = kc->min_recall >= 1.0 ? 1.0 : 0.9;
    fprintf(stderr, "  %-40s %s filter: recall@10 %.3f\n", kc->spec, use_bitset ? "1% bitset" : "id%3 callback", rc);
    CHECK_MSG(rc >= min, "%s filtered recall %.3f < %.2f", kc->spec, rc, min);
  }
  embr_index_free(ix);
  free(x), free(q), free(ids), free(live), free(bits), free(d), free(got), free(want);
}

static void test_filters(void) {
  for (int c = 0; c < NKINDS; c++) {
    if (strstr(kinds[c].spec, "ivfpq") && !strstr(kinds[c].spec, "refine")) continue; /* PQ ranks approximately */
    check_filter(&kinds[c], 1);
    check_filter(&kinds[c], 0);
  }
}

/* ---- padding ----------------------------------------------------------------------------------- */

static void test_padding(void) {
  const char *specs[] = {"flat", "hnsw:M=16,efc=100", "ivfflat:nlist=4,nprobe=4", "ivfpq:nlist=4,m=4,nprobe=4"};
  int64_t dim = 8;
  float *x = synth(6, dim, 15, 0);
  for (int s = 0; s < 4; s++)
    for (int m = 0; m < 3; m++) {
      embr_index *ix = NULL;
      REQUIRE(embr_index_create(&ix, specs[s], dim, (embr_metric)m) == 0);
      float d[2 * 20];
      int64_t got[2 * 20];
      float worst = embr_metric_worst((embr_metric)m);
      CHECK(embr_index_search(ix, x, 2, dim, 20, d, got, NULL) == 0); /* empty (IVF: untrained) */
      for (int i = 0; i < 40; i++) CHECK(got[i] == -1 && d[i] == worst);
      CHECK(embr_index_add(ix, x, 6, dim, NULL, NULL) == 0);
      CHECK(embr_index_search(ix, x, 2, dim, 20, d, got, NULL) == 0);
      for (int qi = 0; qi < 2; qi++)
        for (int i = 0; i < 20; i++) {
          if (i < 6) CHECK(got[qi * 20 + i] >= 0 && got[qi * 20 + i] < 6);
          else CHECK(got[qi * 20 + i] == -1 && d[qi * 20 + i] == worst);
        }
      embr_index_free(ix);
    }
  free(x);
}

/* ---- training ------------------------------------------------------------------------------ */

static void test_ivf_training(void) {
  int64_t dim = 16;
  float *x = synth(600, dim, 16, 0);
  embr_index *ix = NULL;
  REQUIRE(embr_index_create(&ix, "ivfpq:nlist=32,m=4", dim, EMBR_METRIC_L2) == 0);
  CHECK(!embr_index_is_trained(ix));
  CHECK(embr_index_add(ix, x, 10, dim, NULL, NULL) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "train it first") != NULL);
  CHECK(embr_index_train(ix, x, 31, dim, NULL) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "nlist=32") != NULL);
  CHECK(embr_index_train(ix, x, 600, dim, NULL) == 0);
  CHECK(embr_index_is_trained(ix));
  CHECK(embr_index_add(ix, x, 10, dim, NULL, NULL) == 0);
  CHECK(embr_index_train(ix, x, 600, dim, NULL) == EMBR_EINVAL); /* it holds vectors now */
  embr_index_free(ix);
  /* An untrained index trains on a first batch of at least nlist vectors. */
  REQUIRE(embr_index_create(&ix, "ivfflat:nlist=32", dim, EMBR_METRIC_COSINE) == 0);
  CHECK(embr_index_add(ix, x, 32, dim, NULL, NULL) == 0);
  CHECK(embr_index_is_trained(ix));
  CHECK_EQ_INT(embr_index_size(ix), 32);
  embr_index_free(ix);
  /* Fewer training vectors than PQ codebook entries still train (k-means with k = n). */
  REQUIRE(embr_index_create(&ix, "ivfpq:nlist=2,m=2,nprobe=2", 4, EMBR_METRIC_IP) == 0);
  CHECK(embr_index_add(ix, x, 20, 4, NULL, NULL) == 0);
  float d[3];
  int64_t got[3];
  CHECK(embr_index_search(ix, x, 1, 4, 3, d, got, NULL) == 0);
  CHECK(got[0] >= 0 && got[2] >= 0);
  embr_index_free(ix);
  free(x);
}

/* ---- factory ----------------------------------------------------------------------------------- */

static void test_factory(void) {
  embr_index *ix = NULL;
  CHECK(embr_index_create(&ix, "annoy", 16, EMBR_METRIC_L2) == EMBR_EINVAL && !ix);
  CHECK(embr_index_create(&ix, "ivfflat:nlist=16,bogus=1", 16, EMBR_METRIC_L2) == EMBR_EINVAL && !ix);
  CHECK(strstr(embr_last_error(), "bogus") != NULL);
  CHECK(embr_index_create(&ix, "ivfflat:m=4", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(embr_index_create(&ix, "ivfflat:nlist=0", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(embr_index_create(&ix, "ivfpq:nprobe=-1", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(embr_index_create(&ix, "ivfpq:nlist=16,refine=100000", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(embr_index_create(&ix, "ivfpq:nlist=16,m=5", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "divide") != NULL);
  CHECK(embr_index_create(&ix, "ivfpq:nlist=16,m=4,nbits=4", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(embr_index_create(&ix, "ivfpq:nlist=16,m=4", 16, EMBR_METRIC_L1) == EMBR_EUNSUPPORTED);
  CHECK(embr_index_create(&ix, "hnsw:M=1", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(embr_index_create(&ix, "hnsw:M=16,nlist=4", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(embr_index_create(&ix, "flat:x=1", 16, EMBR_METRIC_L2) == EMBR_EINVAL);
  CHECK(ix == NULL);
  /* Canonical specs name every parameter. */
  REQUIRE(embr_index_create(&ix, "IVFPQ:nlist=16,m=4", 16, EMBR_METRIC_L2) == 0);
  CHECK(!strcmp(embr_index_spec(ix), "ivfpq:nlist=16,m=4,nbits=8,nprobe=16,refine=0"));
  embr_index_free(ix);
  REQUIRE(embr_index_create(&ix, "ivfflat", 16, EMBR_METRIC_L1) == 0);
  CHECK(!strcmp(embr_index_spec(ix), "ivfflat:nlist=1024,nprobe=16"));
  CHECK(embr_index_dim(ix) == 16 && embr_index_metric(ix) == EMBR_METRIC_L1);
  embr_index_free(ix);
  embr_index_free(NULL);
}

/* ---- save / load ----------------------------------------------------------------------------- */

static void check_roundtrip(const kind_case *kc, embr_metric m) {
  int64_t dim = kc->dim, n = 1500, nq = 40;
  float *x = synth(n + 100, dim, 17, 0), *q = synth(nq, dim, 17, 1);
  int64_t *ids = seq_ids(n, 3, 11), gone[3] = {3, 3 + 11 * 7, 3 + 11 * 500}, removed;
  embr_index *ix = build(kc->spec, dim, m, x, n, ids), *cp = NULL, *mp = NULL;
  REQUIRE(ix);
  CHECK(embr_index_remove(ix, gone, 3, &removed) == 0 && removed == 3); /* saved with holes */
  const char *path = th_path("rt.idx");
  CHECK_MSG(embr_index_save(ix, path) == 0, "save %s: %s", kc->spec, embr_last_error());
  CHECK_MSG(embr_index_load(&cp, path, 0) == 0, "load %s: %s", kc->spec, embr_last_error());
  CHECK_MSG(embr_index_load(&mp, path, EMBR_LOAD_MMAP) == 0, "mmap %s: %s", kc->spec, embr_last_error());
  if (!cp || !mp) goto out;
  float *d0 = malloc(sizeof(float) * (size_t)nq * K), *d1 = malloc(sizeof(float) * (size_t)nq * K),
        *d2 = malloc(sizeof(float) * (size_t)nq * K);
  int64_t *i0 = malloc(sizeof(int64_t) * (size_t)nq * K), *i1 = malloc(sizeof(int64_t) * (size_t)nq * K),
          *i2 = malloc(sizeof(int64_t) * (size_t)nq * K);
  embr_search_params p = kind_params(kc);
  CHECK(embr_index_search(ix, q, nq, dim, K, d0, i0, &p) == 0);
  CHECK(embr_index_search(cp, q, nq, dim, K, d1, i1, &p) == 0);
  CHECK(embr_index_search(mp, q, nq, dim, K, d2, i2, &p) == 0);
  CHECK_MSG(!memcmp(i0, i1, sizeof(int64_t) * (size_t)nq * K) && !memcmp(d0, d1, sizeof(float) * (size_t)nq * K),
            "%s %s: loaded index answers differently", kc->spec, embr_metric_name(m));
  CHECK_MSG(!memcmp(i0, i2, sizeof(int64_t) * (size_t)nq * K) && !memcmp(d0, d2, sizeof(float) * (size_t)nq * K),
            "%s %s: mapped index answers differently", kc->spec, embr_metric_name(m));
  CHECK(!strcmp(embr_index_spec(ix), embr_index_spec(cp)) && !strcmp(embr_index_spec(ix), embr_index_spec(mp)));
  CHECK(embr_index_size(cp) == n - 3 && embr_index_size(mp) == n - 3);
  CHECK(embr_index_dim(cp) == dim && embr_index_metric(cp) == m);
  /* A loaded index keeps adding (ids continue after the largest); a mapped one is read-only. */
  CHECK(embr_index_add(cp, x + n * dim, 100, dim, NULL, NULL) == 0);
  CHECK(embr_index_size(cp) == n - 3 + 100);
  CHECK(embr_index_search(cp, x + (n + 50) * dim, 1, dim, 1, d1, i1, &p) == 0);
  CHECK_MSG(i1[0] == 3 + 11 * (n - 1) + 51 || kc->min_recall < 1.0, "%s: got id %lld", kc->spec, (long long)i1[0]);
  CHECK(embr_index_add(mp, x, 1, dim, NULL, NULL) == EMBR_EUNSUPPORTED);
  CHECK(embr_index_remove(mp, ids + 5, 1, NULL) == EMBR_EUNSUPPORTED);
  free(d0), free(d1), free(d2), free(i0), free(i1), free(i2);
out:
  embr_index_free(ix);
  embr_index_free(cp);
  embr_index_free(mp);
  free(x), free(q), free(ids);
}

static void test_save_load(void) {
  for (int c = 0; c < NKINDS; c++) {
    check_roundtrip(&kinds[c], EMBR_METRIC_L2);
    check_roundtrip(&kinds[c], EMBR_METRIC_COSINE);
  }
  /* An untrained IVF index round-trips too. */
  embr_index *ix = NULL, *back = NULL;
  REQUIRE(embr_index_create(&ix, "ivfpq:nlist=8,m=2,refine=3", 8, EMBR_METRIC_IP) == 0);
  CHECK(embr_index_save(ix, th_path("untrained.idx")) == 0);
  CHECK(embr_index_load(&back, th_path("untrained.idx"), 0) == 0);
  if (back) {
    CHECK(!embr_index_is_trained(back));
    CHECK(!strcmp(embr_index_spec(back), "ivfpq:nlist=8,m=2,nbits=8,nprobe=16,refine=3"));
  }
  embr_index_free(ix);
  embr_index_free(back);
}

/* ---- damaged files ---------------------------------------------------------------------------- */

/* Rewrites the container's length and both checksums so a damaged payload reaches the kind's
 * parser (layout: docs in src/index/index.c). */
static void fix_container(unsigned char *b, size_t len) {
  if (len < 80) return;
  uint64_t plen = len - 80;
  for (int i = 0; i < 8; i++) b[40 + i] = (unsigned char)(plen >> (8 * i));
  uint32_t h = (uint32_t)crc32(0L, b, 56), p = (uint32_t)crc32(0L, b + 64, (uInt)plen);
  for (int i = 0; i < 4; i++) {
    b[56 + i] = (unsigned char)(h >> (8 * i));
    b[len - 16 + i] = (unsigned char)(p >> (8 * i));
  }
}

/* A loaded damaged index must answer a search without misbehaving (ASan watches). */
static void poke(const unsigned char *b, size_t len) {
  embr_index *ix = NULL;
  if (embr_index_load_mem(&ix, b, len, "damaged", 0) != 0) return;
  int64_t dim = embr_index_dim(ix);
  float *q = calloc((size_t)dim, sizeof(float)), d[4];
  int64_t got[4];
  for (int64_t i = 0; i < dim; i++) q[i] = 0.25f * (float)(i % 5);
  CHECK(embr_index_search(ix, q, 1, dim, 4, d, got, NULL) == 0);
  int64_t more = 123456789;
  if (embr_index_add(ix, q, 1, dim, &more, NULL) == 0) CHECK(embr_index_size(ix) >= 1);
  free(q);
  embr_index_free(ix);
}

static void check_damage(const char *spec, embr_metric m) {
  int64_t dim = 8, n = 40;
  float *x = synth(n, dim, 18, 0);
  embr_index *ix = build(spec, dim, m, x, n, NULL);
  REQUIRE(ix);
  const char *path = th_path("small.idx");
  REQUIRE(embr_index_save(ix, path) == 0);
  embr_index_free(ix);
  size_t len = 0;
  unsigned char *good = read_whole(path, &len), *b = malloc(len);
  REQUIRE(good);
  embr_index *back = NULL;
  CHECK(embr_index_load_mem(&back, good, len, "good", 0) == 0);
  embr_index_free(back);
  int accepted = 0, loaded_fixed = 0;
  size_t step = len / 400 + 1;
  for (size_t pos = 0; pos < len; pos += step) {
    /* The container checks neither the 4 bytes after the header checksum nor the trailer's
     * reserved word (src/index/index.c); flips there are harmless and load. */
    if ((pos >= 60 && pos < 64) || (pos >= len - 12 && pos < len - 8)) continue;
    static const unsigned char flips[] = {0x01, 0x80, 0xff};
    for (int f = 0; f < 3; f++) {
      memcpy(b, good, len);
      b[pos] ^= flips[f];
      back = NULL;
      int rc = embr_index_load_mem(&back, b, len, "flipped", 0);
      accepted += rc == 0;
      CHECK(rc == 0 || rc == EMBR_EFORMAT || rc == EMBR_EUNSUPPORTED);
      embr_index_free(back);
      if (pos >= 64 && pos < len - 16) { /* payload damage the checksum would hide */
        fix_container(b, len);
        back = NULL;
        loaded_fixed += embr_index_load_mem(&back, b, len, "fixed", 0) == 0;
        embr_index_free(back);
        poke(b, len);
      }
    }
  }
  CHECK_MSG(accepted == 0, "%s: %d damaged files loaded", spec, accepted);
  for (size_t cut = 0; cut < len; cut += step) {
    back = NULL;
    int rc = embr_index_load_mem(&back, good, cut, "truncated", 0);
    CHECK(rc == EMBR_EFORMAT || rc == EMBR_EUNSUPPORTED);
    embr_index_free(back);
    memcpy(b, good, cut);
    fix_container(b, cut);
    poke(b, cut);
  }
  fprintf(stderr, "  %-40s %zu bytes; %d of the checksum-fixed damaged files still loaded\n", spec, len, loaded_fixed);
  free(good), free(b), free(x);
}

static void test_damaged_files(void) {
  check_damage("flat", EMBR_METRIC_L2);
  check_damage("hnsw:M=4,efc=20", EMBR_METRIC_L2);
  check_damage("ivfflat:nlist=4,nprobe=2", EMBR_METRIC_L1);
  check_damage("ivfpq:nlist=4,m=2,nprobe=2", EMBR_METRIC_L2);
  check_damage("ivfpq:nlist=4,m=4,nprobe=2,refine=2", EMBR_METRIC_IP);
}

/* Hostile IVF headers (checksums fixed): huge counts and list sizes that do not add up. */
static void test_hostile_ivf_header(void) {
  int64_t dim = 8;
  float *x = synth(64, dim, 19, 0);
  embr_index *ix = build("ivfpq:nlist=4,m=2,nprobe=2", dim, EMBR_METRIC_L2, x, 64, NULL);
  REQUIRE(ix);
  REQUIRE(embr_index_save(ix, th_path("h.idx")) == 0);
  embr_index_free(ix);
  size_t len = 0;
  unsigned char *good = read_whole(th_path("h.idx"), &len), *b = malloc(len);
  /* payload header: version, is_pq, nlist, nprobe, m, nbits, refine, raw, trained, count */
  struct { int field; int64_t value; } cases[] = {{9, INT64_C(1) << 60}, {9, 65}, {9, -1}, {2, INT64_C(1) << 40},
                                                 {2, 3}, {4, 3}, {5, 4}, {8, 0}, {7, 1}, {1, 0}, {0, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(b, good, len);
    memcpy(b + 64 + 8 * cases[c].field, &cases[c].value, 8);
    fix_container(b, len);
    embr_index *back = NULL;
    int rc = embr_index_load_mem(&back, b, len, "hostile", 0);
    CHECK_MSG(rc == EMBR_EFORMAT || rc == EMBR_EUNSUPPORTED, "field %d = %lld loaded (rc %d)", cases[c].field,
              (long long)cases[c].value, rc);
    embr_index_free(back);
  }
  free(good), free(b), free(x);
}

/* ---- k-means --------------------------------------------------------------------------------- */

static float *blobs(int64_t n, int64_t dim, int64_t k, float spread, uint64_t seed, float *centres) {
  embr_rng r;
  embr_rng_seed(&r, seed);
  for (int64_t j = 0; j < k * dim; j++) centres[j] = (float)(embr_rng_normal(&r) * 10.0);
  float *x = malloc(sizeof(float) * (size_t)(n * dim));
  for (int64_t i = 0; i < n; i++)
    for (int64_t d = 0; d < dim; d++)
      x[i * dim + d] = centres[(i % k) * dim + d] + (float)(embr_rng_normal(&r) * spread);
  return x;
}

static void check_blobs(int64_t dim) {
  int64_t n = 2000, k = 8;
  float *centres = malloc(sizeof(float) * (size_t)(k * dim)), *found = malloc(sizeof(float) * (size_t)(k * dim));
  float *x = blobs(n, dim, k, 0.1f, 20 + (uint64_t)dim, centres);
  int64_t *assign = malloc(sizeof(int64_t) * (size_t)n);
  double inertia;
  embr_kmeans_params p = embr_kmeans_params_default();
  REQUIRE(embr_kmeans(x, n, dim, dim, k, &p, found, assign, &inertia) == 0);
  int used[8] = {0}, ok = 1;
  for (int64_t c = 0; c < k; c++) { /* each true centre has its own found centre, close by */
    int64_t best = -1;
    float bd = INFINITY;
    for (int64_t j = 0; j < k; j++) {
      float d = embr_distance(EMBR_METRIC_L2, centres + c * dim, found + j * dim, dim);
      if (d < bd) bd = d, best = j;
    }
    ok &= bd < 0.01f * (float)dim && !used[best];
    used[best] = 1;
  }
  CHECK_MSG(ok, "dim %lld: blob centres not recovered", (long long)dim);
  for (int64_t i = 1; i < n; i++) ok &= (assign[i] == assign[i % k]); /* same blob, same cluster */
  CHECK(ok);
  CHECK(inertia > 0 && inertia < (double)n * dim * 0.1 * 0.1 * 1.5);
  free(centres), free(found), free(x), free(assign);
}

static void test_kmeans_recovers_blobs(void) {
  check_blobs(2); /* padded to 8 dimensions inside */
  check_blobs(16);
}

static void test_kmeans_inertia_never_grows(void) {
  int64_t n = 3000, dim = 16, k = 30;
  float *x = synth(n, dim, 21, 0), *c = malloc(sizeof(float) * (size_t)(k * dim));
  int64_t *assign = malloc(sizeof(int64_t) * (size_t)n), nn[1];
  embr_kmeans_params p = embr_kmeans_params_default();
  double prev = INFINITY;
  int grew = 0;
  for (int it = 0; it <= 12; it++) {
    double inertia;
    p.iters = it;
    REQUIRE(embr_kmeans(x, n, dim, dim, k, &p, c, assign, &inertia) == 0);
    grew += inertia > prev * (1 + 1e-6);
    prev = inertia;
    if (it == 12) { /* assign and inertia describe the returned centres */
      double sum = 0;
      int consistent = 1;
      for (int64_t i = 0; i < n; i++) {
        float d;
        embr_knn(EMBR_METRIC_L2, c, k, dim, x + i * dim, 1, dim, dim, 1, &d, nn, NULL);
        consistent &= nn[0] == assign[i];
        sum += d;
      }
      CHECK(consistent);
      CHECK_NEAR(sum, inertia, 1e-4 * inertia);
    }
  }
  CHECK_EQ_INT(grew, 0);
  free(x), free(c), free(assign);
}

static void test_kmeans_deterministic(void) {
  int64_t n = 5000, dim = 12, k = 16;
  float *x = synth(n, dim, 22, 0);
  float *a = malloc(sizeof(float) * (size_t)(k * dim)), *b = malloc(sizeof(float) * (size_t)(k * dim));
  embr_kmeans_params p = embr_kmeans_params_default();
  p.n_threads = 1;
  p.max_points_per_centroid = 100; /* trains on a sample of 1600 */
  CHECK(embr_kmeans(x, n, dim, dim, k, &p, a, NULL, NULL) == 0);
  CHECK(embr_kmeans(x, n, dim, dim, k, &p, b, NULL, NULL) == 0);
  CHECK(!memcmp(a, b, sizeof(float) * (size_t)(k * dim)));
  p.seed = 99;
  CHECK(embr_kmeans(x, n, dim, dim, k, &p, b, NULL, NULL) == 0);
  CHECK(memcmp(a, b, sizeof(float) * (size_t)(k * dim)) != 0);
  free(x), free(a), free(b);
}

static int cancel_now(void *user, uint64_t done, uint64_t total, double rate, const char *detail) {
  (void)user, (void)done, (void)total, (void)rate, (void)detail;
  return 1;
}

static void test_kmeans_errors_and_edges(void) {
  float x[12] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}, c[12];
  int64_t assign[10];
  double inertia;
  CHECK(embr_kmeans(x, 6, 2, 2, 7, NULL, c, NULL, NULL) == EMBR_EINVAL);
  CHECK(embr_kmeans(x, 6, 2, 2, 0, NULL, c, NULL, NULL) == EMBR_EINVAL);
  CHECK(embr_kmeans(x, 6, 1, 2, 2, NULL, c, NULL, NULL) == EMBR_EINVAL);
  x[5] = NAN;
  CHECK(embr_kmeans(x, 6, 2, 2, 2, NULL, c, NULL, NULL) == EMBR_EVALUE);
  x[5] = INFINITY;
  CHECK(embr_kmeans(x, 6, 2, 2, 2, NULL, c, NULL, NULL) == EMBR_EVALUE);
  x[5] = 2;
  /* k = n: every point its own centre. */
  CHECK(embr_kmeans(x, 6, 2, 2, 6, NULL, c, assign, &inertia) == 0);
  CHECK(inertia == 0);
  /* Identical points: empty clusters cannot split; still no failure. */
  float same[20];
  for (int i = 0; i < 20; i++) same[i] = 1.5f;
  CHECK(embr_kmeans(same, 10, 2, 2, 3, NULL, c, assign, &inertia) == 0);
  CHECK(inertia == 0 && c[0] == 1.5f && c[5] == 1.5f);
  embr_kmeans_params p = embr_kmeans_params_default();
  p.progress.fn = cancel_now;
  p.progress.min_interval = 1e-9;
  float *y = synth(500, 8, 23, 0), cc[8 * 8];
  CHECK(embr_kmeans(y, 500, 8, 8, 8, &p, cc, NULL, NULL) == EMBR_ECANCELED);
  free(y);
}

/* The nearest-centre step (embr_knn with k = 1, sub-8 dimensions zero-padded) against a plain
 * loop, with duplicated centres whose ties must go to the lower index. */
static void test_nearest_centre(void) {
  int64_t dims[] = {3, 20}, n = 3000, k = 70;
  embr_rng r;
  embr_rng_seed(&r, 24);
  for (int di = 0; di < 2; di++) {
    int64_t dim = dims[di];
    float *x = malloc(sizeof(float) * (size_t)(n * dim)), *c = malloc(sizeof(float) * (size_t)(k * dim)),
          *d = malloc(sizeof(float) * (size_t)n);
    int64_t *a = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n * dim; i++) x[i] = (float)((int)embr_rng_below(&r, 7) - 3);
    for (int64_t i = 0; i < k * dim; i++) c[i] = (float)((int)embr_rng_below(&r, 7) - 3);
    memcpy(c + 50 * dim, c + 10 * dim, sizeof(float) * (size_t)dim); /* a tie: 10 must win */
    memcpy(x + 7 * dim, c + 10 * dim, sizeof(float) * (size_t)dim);
    REQUIRE(embr__nearest(x, n, dim, dim, c, k, 0, a, d) == 0);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t best = 0;
      float bd = INFINITY;
      for (int64_t j = 0; j < k; j++) {
        float e = embr_distance(EMBR_METRIC_L2, x + i * dim, c + j * dim, dim);
        if (e < bd) bd = e, best = j;
      }
      bad += a[i] != best || d[i] != bd;
    }
    CHECK_MSG(bad == 0, "dim %lld: %d rows differ from the plain loop", (long long)dim, bad);
    CHECK(a[7] == 10 && d[7] == 0);
    free(x), free(c), free(d), free(a);
  }
}

/* recall@k against a plain reference: per query, distinct returned ids found in the first k truth ids. */
static double ref_recall(const int64_t *ids, int64_t ild, const int32_t *truth, int64_t tld, int64_t nq, int k) {
  double hits = 0;
  for (int64_t q = 0; q < nq; q++)
    for (int i = 0; i < k; i++) {
      int64_t id = ids[q * ild + i];
      int seen = id < 0;
      for (int j = 0; j < i; j++) seen |= ids[q * ild + j] == id;
      int in_truth = 0;
      for (int j = 0; j < k; j++) in_truth |= truth[q * tld + j] == id;
      hits += !seen && in_truth;
    }
  return hits / ((double)nq * k);
}

static void test_recall_at_k(void) {
  /* by hand: query 0 finds 2 of 3 (one repeated true id counts once), query 1 all 3 with padding
   * absent, query 2 none (only padding) */
  const int64_t ids[3 * 4] = {5, 5, 7, 99, 1, 2, 3, 0, -1, -1, -1, -1};
  const int32_t truth[3 * 3] = {5, 7, 8, 3, 2, 1, 4, 5, 6};
  double r = -1;
  CHECK(embr_recall_at_k(ids, 4, truth, 3, 3, 3, &r) == 0);
  CHECK_NEAR(r, 5.0 / 9.0, 1e-12);
  CHECK(embr_recall_at_k(ids, 4, truth, 3, 3, 1, &r) == 0); /* 1-recall@1 */
  CHECK_NEAR(r, 1.0 / 3.0, 1e-12);
  CHECK(embr_recall_at_k(ids, 4, truth, 3, 0, 3, &r) == 0 && r == 0);
  CHECK(embr_recall_at_k(ids, 4, truth, 3, 3, 4, &r) == EMBR_EINVAL); /* truth rows shorter than k */
  CHECK(embr_recall_at_k(ids, 4, truth, 3, 3, 0, &r) == EMBR_EINVAL);
  CHECK(embr_recall_at_k(NULL, 4, truth, 3, 3, 3, &r) == EMBR_EINVAL);
  /* random lists with repeats and padding, small and large k, against the reference */
  embr_rng g;
  embr_rng_seed(&g, 77);
  const int ks[] = {1, 3, 10, 300};
  for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
    int k = ks[c];
    int64_t nq = 20, ild = k + 2, tld = k + 1;
    int64_t *ri = malloc(sizeof(int64_t) * (size_t)(nq * ild));
    int32_t *rt = malloc(sizeof(int32_t) * (size_t)(nq * tld));
    for (int64_t i = 0; i < nq * ild; i++) ri[i] = (int64_t)embr_rng_below(&g, (uint64_t)(2 * k + 2)) - 1;
    for (int64_t i = 0; i < nq * tld; i++) rt[i] = (int32_t)embr_rng_below(&g, (uint64_t)(2 * k + 1));
    CHECK(embr_recall_at_k(ri, ild, rt, tld, nq, k, &r) == 0);
    CHECK_NEAR(r, ref_recall(ri, ild, rt, tld, nq, k), 1e-12);
    free(ri);
    free(rt);
  }
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_nearest_centre, test_kmeans_recovers_blobs, test_kmeans_inertia_never_grows, test_kmeans_deterministic,
                   test_kmeans_errors_and_edges, test_factory, test_recall_every_kind_and_metric,
                   test_ivfflat_default_nprobe, test_ivfpq_table_paths_agree, test_ivfpq_memory, test_ids_and_adds,
                   test_remove, test_churn_keeps_items_reachable, test_every_item_reachable, test_filters, test_padding, test_ivf_training, test_save_load, test_damaged_files,
                   test_hostile_ivf_header, test_recall_at_k, test_hnsw_first_layout_files, test_hnsw_calls_agree,
                   test_hnsw_ids_with_and_without_map, test_hnsw_memory);
}
