/* Writes tests/ref/hnsw_v1/: HNSW index files in the first on-disk layout (level-0 records padded
 * to 64 bytes), made by the library as it was before the compact layout (main at commit fa29e6f),
 * with the results that library gave for fixed queries. test_index loads them with today's code and
 * requires the same results, byte for byte.
 *
 *   cc -O2 -Iinclude scripts/make_hnsw_v1_ref.c BUILD/libembr.a -lopenblas -lz -lsqlite3 -lfftw3 -lfftw3f \
 *      -lpng -ljpeg -fopenmp -lm -lpthread -o /tmp/mk
 *   /tmp/mk tests/ref/hnsw_v1
 *
 * Per metric (l2, cosine): base vectors and queries from a fixed LCG (the queries are written, so
 * the test needs no generator), ids 1000 + 3i, 40 of them removed and 25 new ones added (reusing slots), M = 6,
 * efc = 40, built on one thread; results of k = 8 at ef = 30 as (distance, id) rows. */
#include "embr/embr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t lcg = 12345;
static float rnd(void) {
  lcg = lcg * 1664525u + 1013904223u;
  return (float)((lcg >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static void put(const char *dir, const char *name, const void *p, size_t len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, len, f) != len) exit(1);
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  enum { N = 240, NEW = 25, NQ = 20, D = 12, K = 8 };
  const char *metrics[2] = {"l2", "cosine"};
  for (int m = 0; m < 2; m++) {
    float base[(N + NEW) * D], q[NQ * D], dist[NQ * K];
    int64_t ids[N + NEW], out[NQ * K], gone[40];
    for (int i = 0; i < (N + NEW) * D; i++) base[i] = rnd();
    for (int i = 0; i < NQ * D; i++) q[i] = rnd();
    for (int i = 0; i < N + NEW; i++) ids[i] = 1000 + 3 * i;
    for (int i = 0; i < 40; i++) gone[i] = ids[5 * i + 2];
    embr_index *ix = NULL;
    int64_t removed = 0;
    embr_search_params p = embr_search_params_default();
    p.ef = 30;
    p.n_threads = 1;
    if (embr_index_create(&ix, "hnsw:M=6,efc=40", D, m ? EMBR_METRIC_COSINE : EMBR_METRIC_L2)) return 1;
    embr_index_set_threads(ix, 1);
    if (embr_index_add(ix, base, N, D, ids, NULL) || embr_index_remove(ix, gone, 40, &removed) ||
        embr_index_add(ix, base + N * D, NEW, D, ids + N, NULL) || embr_index_search(ix, q, NQ, D, K, dist, out, &p)) {
      fprintf(stderr, "%s\n", embr_last_error());
      return 1;
    }
    char name[64], path[512];
    snprintf(path, sizeof path, "%s/%s.idx", argv[1], metrics[m]);
    if (embr_index_save(ix, path)) return 1;
    snprintf(name, sizeof name, "%s.query.f32", metrics[m]);
    put(argv[1], name, q, sizeof q);
    snprintf(name, sizeof name, "%s.dist.f32", metrics[m]);
    put(argv[1], name, dist, sizeof dist);
    snprintf(name, sizeof name, "%s.ids.i64", metrics[m]);
    put(argv[1], name, out, sizeof out);
    embr_index_free(ix);
  }
  return 0;
}
