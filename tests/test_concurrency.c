/* Library calls from many threads at once: the promise of include/embr/index.h ("concurrent
 * searches are safe") and the rule that the library leaves the process's thread settings alone.
 *
 * Eight threads search at the same time (flat, HNSW, IVF-Flat, IVF-PQ, embr_knn, a distance
 * matrix; one and two threads each) while another embeds images with a small ResNet; every result
 * must equal, byte for byte, the one the same call gave when run alone before. The process starts
 * with unusual settings (OpenMP 1 on the main thread, OpenBLAS 3, each worker its own OpenMP
 * count), which must all be as they were afterwards. Equality holds for any interleaving: each
 * call's numbers are fixed by its arguments, since the library's BLAS guard runs every product
 * at the OpenBLAS width its call asked for. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "core/threads.h"
#include "embr/embr.h"
#include "harness.h"

enum { DIM = 32, NB = 3000, NQ = 60, K = 10, ROUNDS = 3, SEARCHERS = 8 };
enum { SIDE = 16, IMAGES = 24, BATCH = 8 };
enum { OMP_MAIN = 1, BLAS_MAIN = 3 };

typedef enum { JOB_FLAT, JOB_HNSW, JOB_IVFFLAT, JOB_IVFPQ, JOB_KNN, JOB_MATRIX, NJOBS } job_kind;

static embr_matrix data[3]; /* base, queries, images: rows from the library's generator */
static float *base, *queries, *images;
static embr_index *indexes[4]; /* flat, HNSW, IVF-Flat, IVF-PQ */
static const char *const specs[4] = {"flat", "hnsw:M=12,efc=60,ef=40", "ivfflat:nlist=24,nprobe=6",
                                     "ivfpq:nlist=24,m=8,nprobe=6"};
static const embr_metric metrics[4] = {EMBR_METRIC_L2, EMBR_METRIC_COSINE, EMBR_METRIC_L2, EMBR_METRIC_IP};

/* n x dim rows (ld = dim) into data[i]; NULL on failure. */
static float *rows(int i, int64_t n, int64_t dim) {
  embr_synth_params sp = embr_synth_params_default();
  sp.clusters = 8;
  sp.seed = 11;
  if (embr_synth_clusters(&sp, n, dim, (uint64_t)i, &data[i], NULL) || data[i].ld != dim) return NULL;
  return data[i].data;
}

/* One call's outputs: distances and ids (a distance matrix fills `dist` only). */
typedef struct result {
  float *dist;
  int64_t *ids;
  size_t nd, ni;
} result;

static int result_alloc(result *r, job_kind kind) {
  r->nd = kind == JOB_MATRIX ? (size_t)NQ * NB : (size_t)NQ * K;
  r->ni = kind == JOB_MATRIX ? 0 : (size_t)NQ * K;
  r->dist = calloc(r->nd, sizeof(float));
  r->ids = calloc(r->ni + 1, sizeof(int64_t));
  return r->dist && r->ids;
}

static void result_free(result *r) {
  free(r->dist);
  free(r->ids);
}

static int same(const result *a, const result *b) {
  return !memcmp(a->dist, b->dist, a->nd * sizeof(float)) && !memcmp(a->ids, b->ids, a->ni * sizeof(int64_t));
}

static int run_job(job_kind kind, int threads, result *r) {
  if (kind <= JOB_IVFPQ) {
    embr_search_params p = embr_search_params_default();
    p.n_threads = threads;
    return embr_index_search(indexes[kind], queries, NQ, DIM, K, r->dist, r->ids, &p);
  }
  if (kind == JOB_KNN) {
    embr_knn_params p = embr_knn_params_default();
    p.n_threads = threads;
    return embr_knn(EMBR_METRIC_IP, base, NB, DIM, queries, NQ, DIM, DIM, K, r->dist, r->ids, &p);
  }
  return embr_distance_matrix(EMBR_METRIC_L2, queries, NQ, DIM, base, NB, DIM, DIM, r->dist, NB, threads);
}

/* The serial answers, per job kind and thread count (1 or 2). */
static result want[NJOBS][2];

static embr_model *model;
static float *want_emb;

typedef struct worker {
  int id, omp_before, omp_after, mismatches, failures;
} worker;

static void *searcher(void *arg) {
  worker *w = arg;
  omp_set_num_threads(2 + w->id); /* this thread's own setting, which must survive */
  w->omp_before = omp_get_max_threads();
  for (int round = 0; round < ROUNDS; round++)
    for (int j = 0; j < NJOBS; j++) {
      job_kind kind = (job_kind)((j + w->id) % NJOBS);
      int threads = 1 + (w->id + round) % 2;
      result r;
      if (!result_alloc(&r, kind) || run_job(kind, threads, &r))
        w->failures++;
      else if (!same(&r, &want[kind][threads - 1]))
        w->mismatches++;
      result_free(&r);
    }
  w->omp_after = omp_get_max_threads();
  return NULL;
}

static void *embedder(void *arg) {
  worker *w = arg;
  omp_set_num_threads(7);
  w->omp_before = omp_get_max_threads();
  int dim = embr_model_dim(model);
  float *emb = malloc(sizeof(float) * IMAGES * (size_t)dim);
  for (int round = 0; round < 2 * ROUNDS; round++) {
    if (!emb || embr_model_embed(model, images, IMAGES, BATCH, emb))
      w->failures++;
    else if (memcmp(emb, want_emb, sizeof(float) * IMAGES * (size_t)dim))
      w->mismatches++;
  }
  free(emb);
  w->omp_after = omp_get_max_threads();
  return NULL;
}

static int setup(void) {
  if (!(base = rows(0, NB, DIM)) || !(queries = rows(1, NQ, DIM))) return 0;
  for (int i = 0; i < 4; i++) {
    if (embr_index_create(&indexes[i], specs[i], DIM, metrics[i]) ||
        embr_index_add(indexes[i], base, NB, DIM, NULL, NULL)) {
      fprintf(stderr, "  %s: %s\n", specs[i], embr_last_error());
      return 0;
    }
  }
  for (int k = 0; k < NJOBS; k++) {
    for (int t = 0; t < 2; t++)
      if (!result_alloc(&want[k][t], (job_kind)k) || run_job((job_kind)k, t + 1, &want[k][t])) return 0;
    /* A search's answer does not depend on its thread count (the tiles' GEMMs run on one thread
     * each). A distance matrix's last bits do, through OpenBLAS's threads: why the guard makes a
     * call wait for its width rather than run at another (src/core/threads.c). */
    if (k != JOB_MATRIX) CHECK_MSG(same(&want[k][0], &want[k][1]), "job %d: 1 and 2 threads differ", k);
  }
  embr_model_params mp = embr_model_params_default();
  mp.arch = "resnet18";
  mp.width = 4; /* channels 4..32: both convolution paths (GEMM, Winograd) and a linear layer */
  mp.embedding_dim = 16;
  mp.input.channels = 1;
  mp.input.height = mp.input.width = SIDE;
  if (embr_model_create(&mp, 5, &model)) return 0;
  embr_model_set_threads(model, 2);
  images = rows(2, IMAGES, SIDE * SIDE);
  want_emb = malloc(sizeof(float) * IMAGES * 16);
  return images && want_emb && !embr_model_embed(model, images, IMAGES, BATCH, want_emb);
}

static void teardown(void) {
  for (int i = 0; i < 4; i++) embr_index_free(indexes[i]);
  for (int k = 0; k < NJOBS; k++)
    for (int t = 0; t < 2; t++) result_free(&want[k][t]);
  embr_model_free(model);
  for (int i = 0; i < 3; i++) embr_matrix_free(&data[i]);
  free(want_emb);
}

static void test_concurrent_calls_match_serial(void) {
  omp_set_num_threads(OMP_MAIN);
  openblas_set_num_threads(BLAS_MAIN);
  REQUIRE(omp_get_max_threads() == OMP_MAIN && openblas_get_num_threads() == BLAS_MAIN);
  int ok = setup();
  CHECK_MSG(ok, "setup: %s", embr_last_error());
  if (ok) {
    CHECK(openblas_get_num_threads() == BLAS_MAIN); /* serial calls restore it too */
    pthread_t th[SEARCHERS + 1];
    worker w[SEARCHERS + 1];
    memset(w, 0, sizeof w);
    for (int i = 0; i <= SEARCHERS; i++) {
      w[i].id = i;
      CHECK(pthread_create(&th[i], NULL, i < SEARCHERS ? searcher : embedder, &w[i]) == 0);
    }
    for (int i = 0; i <= SEARCHERS; i++) {
      pthread_join(th[i], NULL);
      CHECK_MSG(w[i].failures == 0, "thread %d: %d calls failed", i, w[i].failures);
      CHECK_MSG(w[i].mismatches == 0, "thread %d: %d results differ from the serial ones", i, w[i].mismatches);
      CHECK_MSG(w[i].omp_after == w[i].omp_before, "thread %d: OpenMP threads %d became %d", i, w[i].omp_before,
                w[i].omp_after);
    }
  }
  teardown();
  CHECK_EQ_INT(omp_get_max_threads(), OMP_MAIN);
  CHECK_EQ_INT(openblas_get_num_threads(), BLAS_MAIN);
}

/* The guard itself: nested sections run at the outer width, and the count comes back. */
static void test_blas_guard_nests_and_restores(void) {
  openblas_set_num_threads(BLAS_MAIN);
  embr__blas_enter(1);
  CHECK_EQ_INT(openblas_get_num_threads(), 1);
  embr__blas_enter(2); /* nested on this thread: joins the outer section, no wait, no change */
  CHECK_EQ_INT(openblas_get_num_threads(), 1);
  embr__blas_leave();
  CHECK_EQ_INT(openblas_get_num_threads(), 1);
  embr__blas_leave();
  CHECK_EQ_INT(openblas_get_num_threads(), BLAS_MAIN);
  embr__blas_enter(2);
  CHECK_EQ_INT(openblas_get_num_threads(), 2);
  embr__blas_leave();
  CHECK_EQ_INT(openblas_get_num_threads(), BLAS_MAIN);
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_blas_guard_nests_and_restores, test_concurrent_calls_match_serial);
}
