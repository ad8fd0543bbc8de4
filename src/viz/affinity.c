/* t-SNE input affinities: nearest neighbours, per-point Gaussian widths by bisection on the
 * entropy, symmetrisation into a sparse P. */
#include "viz/tsne_internal.h"

#include "embr/index.h"
#include "embr/matrix.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void embr_affinities_free(embr_affinities *a) {
  if (!a) return;
  embr_free(a->row);
  embr_free(a->col);
  embr_free(a->val);
  memset(a, 0, sizeof *a);
}

/* ---- neighbours --------------------------------------------------------------------------- */

/* Turns embr_knn's k+1 results per row (self usually first, but a duplicate with a lower id may
 * precede it) into k neighbours without self, and the metric's value into a distance. */
static void drop_self(int64_t i, const int64_t *ids1, const float *d1, int k, embr_metric m,
                      int64_t *nbr, float *dist) {
  int w = 0;
  for (int t = 0; t <= k && w < k; t++) {
    if (ids1[t] == i) continue;
    nbr[w] = ids1[t];
    float v = d1[t];
    dist[w++] = m == EMBR_METRIC_COSINE ? 1.0f - v : m == EMBR_METRIC_IP ? -v : v;
  }
  for (; w < k; w++) {
    nbr[w] = -1;
    dist[w] = INFINITY;
  }
}

static int knn_exact(const float *x, int64_t n, int64_t ld, int64_t dim, int k, embr_metric m,
                     int n_threads, int64_t *nbr, float *dist) {
  size_t cells = (size_t)n * (size_t)(k + 1);
  int64_t *ids1 = embr_alloc(sizeof(int64_t) * cells);
  float *d1 = embr_alloc(sizeof(float) * cells);
  int rc = ids1 && d1 ? 0 : EMBR_ENOMEM;
  if (!rc) {
    embr_knn_params kp = embr_knn_params_default();
    kp.n_threads = n_threads;
    rc = embr_knn(m, x, n, ld, x, n, ld, dim, k + 1, d1, ids1, &kp);
  }
  if (!rc)
    for (int64_t i = 0; i < n; i++)
      drop_self(i, ids1 + i * (k + 1), d1 + i * (k + 1), k, m, nbr + i * k, dist + i * k);
  embr_free(ids1);
  embr_free(d1);
  return rc;
}

/* Approximate neighbours for large n: k-means cells (sqrt(n) of them, a few Lloyd rounds of
 * embr_kmeans on a sample), then each cell's points are searched exactly among the points of the
 * `probe` cells whose centres are nearest to that cell's centre. Each cell is one batched exact search, so the
 * work runs at sgemm speed; points near a cell border still see the neighbouring cells. */
static int knn_cells(const float *x, int64_t n, int64_t ld, int64_t dim, int k, embr_metric m,
                     uint64_t seed, int n_threads, int64_t *nbr, float *dist) {
  int64_t nc = (int64_t)sqrt((double)n), probe = 12;
  if (probe > nc) probe = nc;
  embr_matrix cent = EMBR_MATRIX_INIT;
  int rc = embr_matrix_alloc(&cent, nc, dim);
  int64_t *assign = embr_alloc(sizeof(int64_t) * (size_t)n);
  int64_t *start = embr_calloc((size_t)nc + 1, sizeof(int64_t));
  int64_t *members = embr_alloc(sizeof(int64_t) * (size_t)n);
  int64_t *near = embr_alloc(sizeof(int64_t) * (size_t)(nc * probe));
  float *neard = embr_alloc(sizeof(float) * (size_t)(nc * probe));
  if (rc || !assign || !start || !members || !near || !neard) rc = EMBR_ENOMEM;
  /* The cells need only be roughly balanced: a few Lloyd rounds of the index layer's k-means. */
  embr_kmeans_params km = embr_kmeans_params_default();
  km.iters = 6;
  km.seed = embr_seed_split(seed, EMBR__TSNE_STREAM_CELLS);
  km.n_threads = n_threads;
  if (!rc) rc = embr_kmeans(x, n, ld, dim, nc, &km, cent.data, assign, NULL);
  embr_knn_params kp = embr_knn_params_default();
  kp.n_threads = n_threads;
  if (!rc) rc = embr_knn(EMBR_METRIC_L2, cent.data, nc, dim, cent.data, nc, dim, dim, (int)probe, neard, near, &kp);
  if (!rc) {
    for (int64_t i = 0; i < n; i++) start[assign[i] + 1]++;
    for (int64_t c = 0; c < nc; c++) start[c + 1] += start[c];
    int64_t *fill = embr_alloc(sizeof(int64_t) * (size_t)nc);
    if (!fill) rc = EMBR_ENOMEM;
    for (int64_t c = 0; c < nc && !rc; c++) fill[c] = start[c];
    for (int64_t i = 0; i < n && !rc; i++) members[fill[assign[i]]++] = i;
    embr_free(fill);
  }
  for (int64_t c = 0; c < nc && !rc; c++) {
    int64_t nq = start[c + 1] - start[c];
    if (nq == 0) continue;
    int64_t nb = 0;
    for (int64_t t = 0; t < probe; t++) if (near[c * probe + t] >= 0) nb += start[near[c * probe + t] + 1] - start[near[c * probe + t]];
    float *q = embr_alloc(sizeof(float) * (size_t)(nq * dim)), *b = embr_alloc(sizeof(float) * (size_t)(nb * dim));
    int64_t *bid = embr_alloc(sizeof(int64_t) * (size_t)nb), *ids1 = embr_alloc(sizeof(int64_t) * (size_t)(nq * (k + 1)));
    float *d1 = embr_alloc(sizeof(float) * (size_t)(nq * (k + 1)));
    if (!q || !b || !bid || !ids1 || !d1) rc = EMBR_ENOMEM;
    for (int64_t t = 0; t < nq && !rc; t++) memcpy(q + t * dim, x + members[start[c] + t] * ld, sizeof(float) * (size_t)dim);
    int64_t w = 0;
    for (int64_t t = 0; t < probe && !rc; t++) {
      int64_t cc = near[c * probe + t];
      if (cc < 0) continue;
      for (int64_t s = start[cc]; s < start[cc + 1]; s++, w++) {
        bid[w] = members[s];
        memcpy(b + w * dim, x + members[s] * ld, sizeof(float) * (size_t)dim);
      }
    }
    if (!rc) rc = embr_knn(m, b, nb, dim, q, nq, dim, dim, k + 1, d1, ids1, &kp);
    for (int64_t t = 0; t < nq && !rc; t++) {
      int64_t i = members[start[c] + t];
      for (int s = 0; s <= k; s++) ids1[t * (k + 1) + s] = ids1[t * (k + 1) + s] >= 0 ? bid[ids1[t * (k + 1) + s]] : -1;
      drop_self(i, ids1 + t * (k + 1), d1 + t * (k + 1), k, m, nbr + i * k, dist + i * k);
    }
    embr_free(q);
    embr_free(b);
    embr_free(bid);
    embr_free(ids1);
    embr_free(d1);
  }
  embr_matrix_free(&cent);
  embr_free(assign);
  embr_free(start);
  embr_free(members);
  embr_free(near);
  embr_free(neard);
  return rc == EMBR_ENOMEM ? embr_error(rc, "t-SNE neighbours: out of memory") : rc;
}

int embr__tsne_knn(const float *x, int64_t n, int64_t ld, int64_t dim, int k, embr_metric m,
                   int64_t exact_max, uint64_t seed, int n_threads, int64_t *nbr, float *dist) {
  if (n <= exact_max || n < 4096) return knn_exact(x, n, ld, dim, k, m, n_threads, nbr, dist);
  return knn_cells(x, n, ld, dim, k, m, seed, n_threads, nbr, dist);
}

/* ---- calibration -------------------------------------------------------------------------- */

/* Conditional probabilities of one row: bisection on the precision beta until the entropy of
 * exp(-beta (d - d_min)) is log(perplexity). Writes p (sums to 1 over valid neighbours). */
void embr__tsne_calibrate_row(const int64_t *nbr, const float *d, int k, double perplexity, double *p) {
  double target = log(perplexity), dmin = INFINITY;
  for (int t = 0; t < k; t++)
    if (nbr[t] >= 0 && d[t] < dmin) dmin = d[t];
  double beta = 1.0, lo = 0.0, hi = INFINITY;
  /* Scale the starting point to the distances so bisection starts in range. */
  double spread = 0;
  int valid = 0;
  for (int t = 0; t < k; t++)
    if (nbr[t] >= 0) {
      spread += d[t] - dmin;
      valid++;
    }
  if (valid == 0) {
    for (int t = 0; t < k; t++) p[t] = 0;
    return;
  }
  if (spread > 0) beta = (double)valid / spread;
  for (int it = 0; it < 200; it++) {
    double sum = 0, dot = 0;
    for (int t = 0; t < k; t++) {
      if (nbr[t] < 0) {
        p[t] = 0;
        continue;
      }
      double e = exp(-beta * (d[t] - dmin));
      p[t] = e;
      sum += e;
      dot += e * (d[t] - dmin);
    }
    double h = log(sum) + beta * dot / sum;
    for (int t = 0; t < k; t++) p[t] /= sum;
    if (fabs(h - target) < 1e-5) break;
    if (h > target) { /* too flat: sharpen */
      lo = beta;
      beta = isinf(hi) ? beta * 2 : 0.5 * (beta + hi);
    } else {
      hi = beta;
      beta = 0.5 * (beta + lo);
    }
  }
}

typedef struct entry {
  int32_t col;
  float val;
} entry;

static int cmp_col(const void *a, const void *b) {
  const entry *x = a, *y = b;
  return (x->col > y->col) - (x->col < y->col);
}

/* Row i of P before normalising: its own list (own, k entries, sorted here) merged with the
 * transposed entries (from, nf of them, already in column order), equal columns summed in double.
 * Writes the merged row to dst (room for k + nf) and returns its length; *sum gets its total. */
static int64_t merge_row(entry *own, int k, const entry *from, int64_t nf, entry *dst, double *sum) {
  int64_t m = 0;
  for (int t = 0; t < k; t++)
    if (own[t].col >= 0) own[m++] = own[t];
  qsort(own, (size_t)m, sizeof *own, cmp_col);
  int64_t a = 0, b = 0, w = 0;
  double total = 0, v = 0;
  int32_t c = -1;
  while (a < m || b < nf) {
    const entry *e = b >= nf || (a < m && own[a].col <= from[b].col) ? &own[a++] : &from[b++];
    if (e->col != c) {
      if (c >= 0) dst[w++] = (entry){c, (float)v}; /* the sum, rounded once */
      c = e->col;
      v = 0;
    }
    v += e->val;
    total += e->val;
  }
  if (c >= 0) dst[w++] = (entry){c, (float)v};
  *sum = total;
  return w;
}

int embr__tsne_calibrate(const int64_t *nbr, const float *dist, int64_t n, int k, double perplexity,
                         int n_threads, embr_affinities *out) {
  memset(out, 0, sizeof *out);
  if (n > INT32_MAX) return embr_error(EMBR_EUNSUPPORTED, "t-SNE: more than 2^31 points");
  float *pc = embr_alloc(sizeof(float) * (size_t)(n * k));
  int64_t *cnt = embr_calloc((size_t)n + 1, sizeof(int64_t));
  if (!pc || !cnt) {
    embr_free(pc);
    embr_free(cnt);
    return embr_error(EMBR_ENOMEM, "t-SNE affinities: out of memory");
  }
#pragma omp parallel num_threads(embr_threads_resolve(n_threads))
  {
    double *p = malloc(sizeof(double) * (size_t)k);
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < n; i++) {
      if (!p) continue;
      embr__tsne_calibrate_row(nbr + i * k, dist + i * k, k, perplexity, p);
      for (int t = 0; t < k; t++) pc[i * k + t] = (float)p[t];
    }
    free(p);
  }
  /* P_ij = (p_j|i + p_i|j) / total. Row i holds its own list and the entries (j, p_i|j) of the
   * lists naming i: those come from a transpose filled in row order, so each row's share is
   * already sorted by column; every row is then merged on its own (in parallel), into room for
   * both parts, and the rows are packed in order. */
  for (int64_t i = 0; i < n; i++)
    for (int t = 0; t < k; t++)
      if (nbr[i * k + t] >= 0) cnt[nbr[i * k + t] + 1]++;
  for (int64_t i = 0; i < n; i++) cnt[i + 1] += cnt[i];
  entry *tr = embr_alloc(sizeof(entry) * (size_t)(cnt[n] ? cnt[n] : 1));
  entry *merged = embr_alloc(sizeof(entry) * (size_t)(cnt[n] + n * k ? cnt[n] + n * k : 1));
  int64_t *len = embr_alloc(sizeof(int64_t) * (size_t)(n + 1));
  double *rsum = embr_alloc(sizeof(double) * (size_t)n);
  const int nt = embr_threads_resolve(n_threads);
  entry *ownbuf = embr_alloc(sizeof(entry) * (size_t)nt * (size_t)k); /* each thread's own list */
  int rc = tr && merged && len && rsum && ownbuf ? 0 : embr_error(EMBR_ENOMEM, "t-SNE affinities: out of memory");
  if (!rc) {
    memcpy(len, cnt, sizeof(int64_t) * (size_t)n); /* fill pointers for now */
    for (int64_t i = 0; i < n; i++)
      for (int t = 0; t < k; t++) {
        int64_t j = nbr[i * k + t];
        if (j >= 0) tr[len[j]++] = (entry){(int32_t)i, pc[i * k + t]};
      }
#pragma omp parallel num_threads(nt)
    {
      entry *own = ownbuf + (size_t)omp_get_thread_num() * k;
#pragma omp for schedule(dynamic, 256)
      for (int64_t i = 0; i < n; i++) {
        for (int t = 0; t < k; t++)
          own[t] = (entry){nbr[i * k + t] >= 0 ? (int32_t)nbr[i * k + t] : -1, pc[i * k + t]};
        len[i] = merge_row(own, k, tr + cnt[i], cnt[i + 1] - cnt[i], merged + cnt[i] + i * k, &rsum[i]);
      }
    }
  }
  if (!rc) {
    /* Normalise by the actual total, not 2n: a point without neighbours of its own (possible with
     * given neighbour lists) contributes no row mass. Summed in row order: the same whatever the
     * thread count. */
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += rsum[i];
    double scale = total > 0 ? 1.0 / total : 0;
    out->n = n;
    out->row = embr_alloc(sizeof(int64_t) * (size_t)(n + 1));
    if (out->row) out->row[0] = 0;
    for (int64_t i = 0; out->row && i < n; i++) out->row[i + 1] = out->row[i] + len[i];
    int64_t nnz = out->row ? out->row[n] : 0;
    out->col = embr_alloc(sizeof(int32_t) * (size_t)(nnz ? nnz : 1));
    out->val = embr_alloc(sizeof(float) * (size_t)(nnz ? nnz : 1));
    if (!out->row || !out->col || !out->val) rc = embr_error(EMBR_ENOMEM, "t-SNE affinities: out of memory");
    if (!rc) {
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; i++) {
        const entry *src = merged + cnt[i] + i * k;
        for (int64_t s = 0; s < len[i]; s++) {
          out->col[out->row[i] + s] = src[s].col;
          out->val[out->row[i] + s] = (float)((double)src[s].val * scale);
        }
      }
    }
  }
  if (rc) embr_affinities_free(out);
  embr_free(pc);
  embr_free(cnt);
  embr_free(tr);
  embr_free(merged);
  embr_free(len);
  embr_free(rsum);
  embr_free(ownbuf);
  return rc;
}
