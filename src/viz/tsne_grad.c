/* t-SNE forces that need no tree or grid: the sparse attraction and the exact O(N^2) repulsion
 * (the reference the approximations are tested against). */
#include "viz/tsne_internal.h"

#include <math.h>

/* The 2-D case gets its own loop: it is the common one and the compiler keeps it in registers. */
static void attract_2d_rows(const embr_affinities *P, const double *y, double *att, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i++) {
    double yx = y[2 * i], yy = y[2 * i + 1], fx = 0, fy = 0;
    for (int64_t s = P->row[i]; s < P->row[i + 1]; s++) {
      int64_t j = P->col[s];
      double dx = yx - y[2 * j], dy = yy - y[2 * j + 1];
      double pw = P->val[s] / (1.0 + dx * dx + dy * dy);
      fx += pw * dx;
      fy += pw * dy;
    }
    att[2 * i] = fx;
    att[2 * i + 1] = fy;
  }
}

/* Rows in blocks of 1024, taken dynamically (rows differ in length); the AVX2 kernel where the
 * CPU has it (EMBR_CPU=scalar or embr_cpu_force selects the loop above). */
static void attract_2d(const embr_affinities *P, const double *y, double *att, int nt) {
  enum { BLOCK = 1024 };
  const int avx2 = embr_cpu_active() == EMBR_CPU_AVX2;
  const int64_t blocks = (P->n + BLOCK - 1) / BLOCK;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; b++) {
    int64_t i0 = b * BLOCK, i1 = i0 + BLOCK < P->n ? i0 + BLOCK : P->n;
    if (avx2)
      embr__tsne_attract_2d_avx2(P, y, att, i0, i1);
    else
      attract_2d_rows(P, y, att, i0, i1);
  }
}

/* sum_ij p_ij log w_ij, a pass of its own so that the forces are computed the same way whether
 * or not KL is asked for (the map must not depend on how often KL is reported). */
static double plogw_of(const embr_affinities *P, const double *y, int d, int nt) {
  double plogw = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : plogw)
  for (int64_t i = 0; i < P->n; i++) {
    const double *yi = y + i * d;
    for (int64_t s = P->row[i]; s < P->row[i + 1]; s++) {
      const double *yj = y + (int64_t)P->col[s] * d;
      double d2 = 0;
      for (int c = 0; c < d; c++) d2 += (yi[c] - yj[c]) * (yi[c] - yj[c]);
      plogw -= P->val[s] * log1p(d2);
    }
  }
  return plogw;
}

double embr__tsne_attract(const embr_affinities *P, const double *y, int d, double *att,
                          int n_threads, int want_plogw) {
  int nt = embr_threads_resolve(n_threads);
  if (d == 2) {
    attract_2d(P, y, att, nt);
  } else {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 512)
    for (int64_t i = 0; i < P->n; i++) {
      const double *yi = y + i * d;
      double f[3] = {0, 0, 0};
      for (int64_t s = P->row[i]; s < P->row[i + 1]; s++) {
        const double *yj = y + (int64_t)P->col[s] * d;
        double diff[3], d2 = 0;
        for (int c = 0; c < d; c++) {
          diff[c] = yi[c] - yj[c];
          d2 += diff[c] * diff[c];
        }
        double pw = P->val[s] / (1.0 + d2);
        for (int c = 0; c < d; c++) f[c] += pw * diff[c];
      }
      for (int c = 0; c < d; c++) att[i * d + c] = f[c];
    }
  }
  return want_plogw ? plogw_of(P, y, d, nt) : 0;
}

double embr__tsne_rep_exact(const double *y, int64_t n, int d, double *rep, int n_threads) {
  double z = 0;
#pragma omp parallel for num_threads(embr_threads_resolve(n_threads)) schedule(dynamic, 64) reduction(+ : z)
  for (int64_t i = 0; i < n; i++) {
    const double *yi = y + i * d;
    double f[3] = {0, 0, 0};
    for (int64_t j = 0; j < n; j++) {
      if (j == i) continue;
      const double *yj = y + j * d;
      double diff[3], d2 = 0;
      for (int c = 0; c < d; c++) {
        diff[c] = yi[c] - yj[c];
        d2 += diff[c] * diff[c];
      }
      double w = 1.0 / (1.0 + d2);
      z += w;
      for (int c = 0; c < d; c++) f[c] += w * w * diff[c];
    }
    for (int c = 0; c < d; c++) rep[i * d + c] = f[c];
  }
  return z;
}
