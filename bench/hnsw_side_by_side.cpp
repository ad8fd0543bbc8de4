// hnsw_side_by_side: embr's HNSW and hnswlib's in one process, on the same vectors and parameters,
// timed in alternation (bench/run_hnsw.sh runs it once per round and data set).
//
// hnswlib is Debian's libhnswlib-dev (its authors' header-only C++ source in /usr/include/hnswlib),
// compiled with this file by g++ -O3 -march=native: hnswlib as built for this CPU. embr is the
// library as it ships (libembr.so of the build folder, portable flags, its own CPU dispatch).
//
//   hnsw_side_by_side BASE.fvecs QUERY.fvecs TRUTH.ivecs l2|cosine M EFC EF1,EF2,... THREADS1,... PASSES ROUND
//
// Builds both on 2 threads (which goes first alternates with ROUND) and prints, per program, the
// build time and the resident memory the build added per vector (big blocks are forced to mmap, so
// what a program frees leaves the count; embr also reports embr_index_memory). Then for each mode,
// thread count and ef, PASSES passes over all queries alternating the two programs (which goes
// first alternates per pass), and per program the fastest pass with its recall@10:
//   batch:  embr: one embr_index_search call for all queries with n_threads = T;
//           hnswlib: T OpenMP threads calling searchKnn (its C++ API has no batch call);
//   single: T OpenMP threads each making one-query calls (embr with n_threads = 1), as a server would.
// One JSON line per result.
#include <hnswlib/hnswlib.h>

#include "embr/embr.h"

#include <malloc.h>
#include <omp.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static double now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double rss() {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (!f || fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
  if (f) fclose(f);
  return (double)res * (double)sysconf(_SC_PAGESIZE);
}

// .fvecs / .ivecs: each row is an int32 count d then d 4-byte values; all rows the same d.
static std::vector<float> read_vecs(const char *path, int *dim, size_t *rows) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "%s: cannot open\n", path); exit(1); }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  int32_t d = 0;
  if (len < 4 || fread(&d, 4, 1, f) != 1 || d <= 0 || d > 1 << 20 || len % (4L * (d + 1))) {
    fprintf(stderr, "%s: not a .fvecs/.ivecs file\n", path);
    exit(1);
  }
  size_t n = (size_t)len / (4 * ((size_t)d + 1));
  std::vector<float> out(n * (size_t)d);
  fseek(f, 0, SEEK_SET);
  for (size_t i = 0; i < n; i++) {
    int32_t di;
    if (fread(&di, 4, 1, f) != 1 || di != d || fread(&out[i * d], 4, (size_t)d, f) != (size_t)d) {
      fprintf(stderr, "%s: bad row %zu\n", path, i);
      exit(1);
    }
  }
  fclose(f);
  *dim = d;
  *rows = n;
  return out;
}

static std::vector<int> parse_list(const char *s) {
  std::vector<int> v;
  for (const char *p = s; *p;) {
    v.push_back(atoi(p));
    while (*p && *p != ',') p++;
    if (*p == ',') p++;
  }
  return v;
}

static void die(const char *what) {
  fprintf(stderr, "hnsw_side_by_side: %s: %s\n", what, embr_last_error());
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: %s BASE QUERY TRUTH l2|cosine M EFC EFS THREADS PASSES ROUND\n", argv[0]);
    return 2;
  }
  mallopt(M_MMAP_THRESHOLD, 128 * 1024); // freed big blocks go back to the system: RSS deltas stay honest
  int dim, qdim, tdim;
  size_t nb, nq, nt;
  std::vector<float> xb = read_vecs(argv[1], &dim, &nb);
  std::vector<float> xq = read_vecs(argv[2], &qdim, &nq);
  std::vector<float> tf = read_vecs(argv[3], &tdim, &nt);
  const int *truth = (const int *)tf.data();
  bool cosine = !strcmp(argv[4], "cosine");
  int M = atoi(argv[5]), efc = atoi(argv[6]), passes = atoi(argv[9]), round = atoi(argv[10]), k = 10;
  std::vector<int> efs = parse_list(argv[7]), threads = parse_list(argv[8]);
  if (qdim != dim || nt != nq || tdim < k || passes < 1) { fprintf(stderr, "inconsistent inputs\n"); return 2; }
  if (cosine) // unit vectors for both: hnswlib's inner product then ranks as cosine
    for (size_t i = 0; i < nb + nq; i++) {
      float *v = i < nb ? &xb[i * dim] : &xq[(i - nb) * dim];
      double s = 0;
      for (int j = 0; j < dim; j++) s += (double)v[j] * v[j];
      float inv = (float)(1.0 / (std::sqrt(s) + 1e-30));
      for (int j = 0; j < dim; j++) v[j] *= inv;
    }

  embr_index *ex = NULL;
  hnswlib::SpaceInterface<float> *space = nullptr;
  hnswlib::HierarchicalNSW<float> *hx = nullptr;
  for (int b = 0; b < 2; b++) {
    bool embr_turn = (b == 0) == (round % 2 == 1);
    double r0 = rss(), t0 = now();
    if (embr_turn) {
      char spec[64];
      snprintf(spec, sizeof spec, "hnsw:M=%d,efc=%d", M, efc);
      if (embr_index_create(&ex, spec, dim, cosine ? EMBR_METRIC_COSINE : EMBR_METRIC_L2)) die("create");
      embr_index_set_threads(ex, 2);
      if (embr_index_add(ex, xb.data(), (int64_t)nb, dim, NULL, NULL)) die("add");
      double t = now() - t0;
      printf("{\"tool\": \"embr\", \"round\": %d, \"build_s\": %.3f, \"n\": %zu, \"bytes_per_vec\": %.1f, \"memory_per_vec\": %.1f}\n",
             round, t, nb, (rss() - r0) / (double)nb, (double)embr_index_memory(ex) / (double)nb);
    } else {
      if (cosine) space = new hnswlib::InnerProductSpace(dim);
      else space = new hnswlib::L2Space(dim);
      hx = new hnswlib::HierarchicalNSW<float>(space, nb, M, efc, 100);
#pragma omp parallel for schedule(dynamic, 64) num_threads(2)
      for (size_t i = 0; i < nb; i++) hx->addPoint(&xb[i * dim], i);
      double t = now() - t0;
      printf("{\"tool\": \"hnswlib\", \"round\": %d, \"build_s\": %.3f, \"n\": %zu, \"bytes_per_vec\": %.1f}\n", round, t, nb,
             (rss() - r0) / (double)nb);
    }
    fflush(stdout);
  }

  std::vector<int64_t> got(nq * k);
  std::vector<float> dist(nq * k);
  auto recall = [&]() {
    size_t hit = 0;
    for (size_t i = 0; i < nq; i++)
      for (int j = 0; j < k; j++)
        for (int t = 0; t < k; t++) hit += got[i * k + j] == (int64_t)truth[i * tdim + t];
    return (double)hit / (double)(nq * k);
  };
  // One timed pass of one program over all queries; the ids land in `got`.
  auto pass = [&](bool embr_turn, bool single, int th, int ef) {
    double s = now();
    if (embr_turn) {
      embr_search_params p = embr_search_params_default();
      p.ef = std::max(ef, k);
      if (!single) {
        p.n_threads = th;
        if (embr_index_search(ex, xq.data(), (int64_t)nq, dim, k, dist.data(), got.data(), &p)) die("search");
      } else {
        p.n_threads = 1;
        int bad = 0;
#pragma omp parallel for schedule(dynamic, 16) num_threads(th) reduction(| : bad)
        for (size_t i = 0; i < nq; i++)
          bad |= embr_index_search(ex, &xq[i * dim], 1, dim, k, &dist[i * k], &got[i * k], &p) != 0;
        if (bad) die("search");
      }
    } else {
      hx->setEf(std::max(ef, k));
#pragma omp parallel for schedule(dynamic, 16) num_threads(th)
      for (size_t i = 0; i < nq; i++) {
        auto r = hx->searchKnn(&xq[i * dim], k);
        for (int j = k - 1; j >= 0; j--) {
          got[i * k + j] = r.empty() ? -1 : (int64_t)r.top().second;
          if (!r.empty()) r.pop();
        }
      }
    }
    return now() - s;
  };
  for (int mode = 0; mode < 2; mode++)
    for (int th : threads)
      for (int ef : efs) {
        double best[2] = {1e30, 1e30}, rec[2] = {0, 0};
        for (int p = 0; p < passes; p++)
          for (int o = 0; o < 2; o++) {
            int tool = (o == 0) == (p % 2 == 0) ? 0 : 1; // 0 embr, 1 hnswlib; order alternates per pass
            best[tool] = std::min(best[tool], pass(tool == 0, mode == 1, th, ef));
            rec[tool] = recall();
          }
        for (int tool = 0; tool < 2; tool++)
          printf("{\"tool\": \"%s\", \"round\": %d, \"mode\": \"%s\", \"threads\": %d, \"ef\": %d, \"recall\": %.5f, \"qps\": %.1f}\n",
                 tool ? "hnswlib" : "embr", round, mode ? "single" : "batch", th, ef, rec[tool], (double)nq / best[tool]);
        fflush(stdout);
      }
  embr_index_free(ex);
  delete hx;
  delete space;
  return 0;
}
