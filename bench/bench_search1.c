/* bench_search1: the per-call time of a 1-query embr_index_search from C, the baseline of
 * bench/python_overhead.py (the Python bindings' overhead is their time minus this one).
 * Usage: bench_search1 INDEX QUERIES.npy K EF REPEATS
 * Loads the index, searches up to 500 queries untimed (warm-up), then for REPEATS rounds searches
 * every query once, one call per query, with one thread; prints one JSON line: the median over
 * rounds of the mean ns per call. python_overhead.py runs it with REPEATS 1 once per round, in
 * turn with the Python calls it is compared with. */
#include "embr/embr.h"

#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s INDEX QUERIES.npy K EF REPEATS\n", argv[0]);
    return 2;
  }
  int k = atoi(argv[3]), ef = atoi(argv[4]), rounds = atoi(argv[5]);
  if (k < 1 || ef < 0 || rounds < 1) {
    fprintf(stderr, "%s: bad K, EF or REPEATS\n", argv[0]);
    return 2;
  }
  embr_index *ix = NULL;
  embr_matrix q = EMBR_MATRIX_INIT;
  if (embr_index_load(&ix, argv[1], 0) || embr_matrix_read(argv[2], EMBR_FORMAT_AUTO, &q)) {
    fprintf(stderr, "%s: %s\n", argv[0], embr_last_error());
    return 1;
  }
  float *dist = malloc(sizeof(float) * (size_t)k);
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)k);
  double *per_round = malloc(sizeof(double) * (size_t)rounds);
  if (!dist || !ids || !per_round) return 1;
  embr_search_params p = embr_search_params_default();
  p.ef = ef;
  p.n_threads = 1;
  /* Warm-up (untimed): the index and the queries into the caches, as a running program has them. */
  for (int64_t i = 0; i < q.n && i < 500; i++)
    if (embr_index_search(ix, q.data + i * q.ld, 1, q.ld, k, dist, ids, &p)) {
      fprintf(stderr, "%s: %s\n", argv[0], embr_last_error());
      return 1;
    }
  for (int r = 0; r < rounds; r++) {
    double t0 = embr_now();
    for (int64_t i = 0; i < q.n; i++)
      if (embr_index_search(ix, q.data + i * q.ld, 1, q.ld, k, dist, ids, &p)) {
        fprintf(stderr, "%s: %s\n", argv[0], embr_last_error());
        return 1;
      }
    per_round[r] = (embr_now() - t0) * 1e9 / (double)q.n;
  }
  qsort(per_round, (size_t)rounds, sizeof(double), cmp_double);
  printf("{\"impl\": \"embr-c\", \"ns_per_call\": %.1f, \"queries\": %lld, \"rounds\": %d}\n", per_round[rounds / 2],
         (long long)q.n, rounds);
  free(dist);
  free(ids);
  free(per_round);
  embr_matrix_free(&q);
  embr_index_free(ix);
  return 0;
}
