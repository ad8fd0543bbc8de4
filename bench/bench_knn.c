/* Times embr's exact k-NN on files, the way bench/run_knn.sh compares it with faiss and NumPy:
 * the search call only (files are loaded first), best of --repeat runs. Also measures the time to
 * stream the base once (the memory bound of a single query) with a plain vector sum.
 *
 *   bench_knn BASE QUERY --metric l2 -k 10 --threads 2 [--queries N] [--single] [--out-ids F]
 *
 * Prints one JSON object per line. */
#include "embr/embr.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((target("avx2"))) static float stream_sum(const float *x, int64_t n) {
  __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
    b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8));
    c = _mm256_add_ps(c, _mm256_loadu_ps(x + i + 16));
    d = _mm256_add_ps(d, _mm256_loadu_ps(x + i + 24));
  }
  float t[8];
  _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
  float s = 0;
  for (int j = 0; j < 8; j++) s += t[j];
  for (; i < n; i++) s += x[i];
  return s;
}

/* The arithmetic bound: a bare sgemm of the batch's shape (queries x base block x dim) on the
 * same threads, as GFLOP/s. */
static double sgemm_gflops(int64_t dim, int threads) {
  const int M = 4096, N = 4096;
  float *a = embr_alloc(sizeof(float) * (size_t)(M * dim)), *b = embr_alloc(sizeof(float) * (size_t)(N * dim));
  float *c = embr_alloc(sizeof(float) * (size_t)M * N);
  for (int64_t i = 0; i < M * dim; i++) a[i] = (float)(i % 7) * 1e-3f;
  for (int64_t i = 0; i < N * dim; i++) b[i] = (float)(i % 5) * 1e-3f;
  openblas_set_num_threads(embr_threads_resolve(threads));
  double best = 1e30;
  for (int r = 0; r < 6; r++) {
    double t0 = embr_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, (int)dim, 1.0f, a, (int)dim, b,
                (int)dim, 0.0f, c, N);
    double t = embr_now() - t0;
    if (t < best) best = t;
  }
  embr_free(a);
  embr_free(b);
  embr_free(c);
  return 2.0 * M * N * (double)dim / best / 1e9;
}

static void usage(void) {
  fprintf(stderr, "usage: bench_knn BASE QUERY [--metric M] [-k K] [--threads N] [--queries N] "
                  "[--repeat R] [--single] [--out-ids F.ivecs]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 3) usage();
  const char *metric_name = "l2", *out_ids = NULL;
  int k = 10, threads = 0, repeat = 1, single = 0;
  int64_t max_q = -1;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--metric") && i + 1 < argc) metric_name = argv[++i];
    else if (!strcmp(argv[i], "-k") && i + 1 < argc) k = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--queries") && i + 1 < argc) max_q = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--out-ids") && i + 1 < argc) out_ids = argv[++i];
    else if (!strcmp(argv[i], "--single")) single = 1;
    else usage();
  }
  embr_metric m;
  embr_matrix base = EMBR_MATRIX_INIT, q = EMBR_MATRIX_INIT;
  if (embr_metric_parse(metric_name, &m) || embr_matrix_read(argv[1], EMBR_FORMAT_AUTO, &base) ||
      embr_matrix_read(argv[2], EMBR_FORMAT_AUTO, &q)) {
    fprintf(stderr, "bench_knn: %s\n", embr_last_error());
    return 1;
  }
  int64_t nq = max_q >= 0 && max_q < q.n ? max_q : q.n;
  float *dist = malloc(sizeof(float) * (size_t)(nq * k));
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k));
  embr_knn_params p = embr_knn_params_default();
  p.n_threads = threads;
  const char *cpu = embr_cpu_name(embr_cpu_active());
  if (single) {
    /* One query at a time, one thread: the latency case, against the streaming bound. */
    p.n_threads = 1;
    double best = 1e30, best_stream = 1e30;
    volatile float sink = 0;
    for (int r = 0; r < repeat; r++) {
      for (int64_t i = 0; i < nq; i++) {
        double t0 = embr_now();
        embr_knn(m, base.data, base.n, base.ld, q.data + i * q.ld, 1, q.ld, base.dim, k, dist, ids, &p);
        double t1 = embr_now();
        sink += stream_sum(base.data, base.n * base.ld);
        double t2 = embr_now();
        if (t1 - t0 < best) best = t1 - t0;
        if (t2 - t1 < best_stream) best_stream = t2 - t1;
      }
    }
    printf("{\"tool\":\"embr\",\"mode\":\"single\",\"metric\":\"%s\",\"cpu\":\"%s\",\"query_ms\":%.3f,"
           "\"stream_ms\":%.3f,\"ratio_to_stream\":%.3f,\"stream_GBps\":%.2f}\n",
           metric_name, cpu, best * 1e3, best_stream * 1e3, best / best_stream,
           4.0 * (double)(base.n * base.ld) / best_stream / 1e9);
    (void)sink;
  } else {
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
      double t0 = embr_now();
      int rc = embr_knn(m, base.data, base.n, base.ld, q.data, nq, q.ld, base.dim, k, dist, ids, &p);
      double t = embr_now() - t0;
      if (rc) {
        fprintf(stderr, "bench_knn: %s\n", embr_last_error());
        return 1;
      }
      if (t < best) best = t;
    }
    printf("{\"tool\":\"embr\",\"mode\":\"batch\",\"metric\":\"%s\",\"cpu\":\"%s\",\"threads\":%d,"
           "\"nb\":%lld,\"nq\":%lld,\"dim\":%lld,\"k\":%d,\"seconds\":%.3f,\"qps\":%.1f,\"gflops\":%.1f,"
           "\"sgemm_gflops\":%.1f}\n",
           metric_name, cpu, embr_threads_resolve(threads), (long long)base.n, (long long)nq,
           (long long)base.dim, k, best, (double)nq / best,
           2.0 * (double)base.n * (double)nq * (double)base.dim / best / 1e9,
           sgemm_gflops(base.dim, threads));
    if (out_ids) {
      int32_t *i32 = malloc(sizeof(int32_t) * (size_t)(nq * k));
      for (int64_t i = 0; i < nq * k; i++) i32[i] = (int32_t)ids[i];
      if (embr_ivecs_write(out_ids, i32, nq, k)) fprintf(stderr, "bench_knn: %s\n", embr_last_error());
      free(i32);
    }
  }
  free(dist);
  free(ids);
  embr_matrix_free(&base);
  embr_matrix_free(&q);
  return 0;
}
