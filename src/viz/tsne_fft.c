/* FFT-accelerated interpolation of the t-SNE repulsion in 2-D (Linderman et al. 2019):
 *  1. the map's bounding square is cut into nb x nb boxes with p equispaced interpolation nodes
 *     per box and axis, so all nodes form one uniform (nb p) x (nb p) grid;
 *  2. each point spreads its charges (1, y_x, y_y, |y|^2) onto the p x p nodes of its box with
 *     Lagrange weights;
 *  3. the potentials at the nodes are the charges convolved with K^2, K = 1 / (1 + d^2): on a
 *     uniform grid that is a Toeplitz product, done as a zero-padded FFT convolution (FFTW);
 *  4. each point reads the potentials back with the same weights.
 * From the four potentials: sum_j K_ij^2 (y_i - y_j) = y_i phi_1 - (phi_x, phi_y), and
 * Z = sum_i [(1 + |y_i|^2) phi_1 - 2 y_i.(phi_x, phi_y) + phi_|y|^2] - N, since
 * K^2 (1 + d^2) = K. Cost per iteration: O(N p^2 + (nb p)^2 log(nb p)). */
#include "viz/tsne_internal.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CHANNELS = 4 };

struct tsne_fft {
  int p, min_boxes, nt;
  double box_size;
  int m, m2;            /* nodes per axis, padded FFT size (2m) */
  fftwf_plan fwd, inv;
  float *kern;          /* m2 x m2 real */
  fftwf_complex *khat;  /* m2 x (m2/2+1) */
  double kern_spacing;  /* the node spacing khat was computed for (0: none) */
  float *grid[CHANNELS];
  fftwf_complex *spec[CHANNELS];
  int64_t cap_points;
  int32_t *box;         /* per point: box index x, y */
  double *w;            /* per point: p weights x, then p weights y */
};

int embr__tsne_fft_create(tsne_fft **out, int points_per_box, int min_boxes, double box_size,
                          int n_threads) {
  if (points_per_box < 2 || points_per_box > 10 || min_boxes < 1 || !(box_size > 0))
    return embr_error(EMBR_EINVAL, "t-SNE FFT: need 2..10 points per box, >= 1 box, box size > 0");
  tsne_fft *f = calloc(1, sizeof *f);
  if (!f) return embr_error(EMBR_ENOMEM, "out of memory");
  f->p = points_per_box;
  f->min_boxes = min_boxes;
  f->box_size = box_size;
  f->nt = embr_threads_resolve(n_threads);
  *out = f;
  return 0;
}

static void free_grids(tsne_fft *f) {
  if (f->fwd) fftwf_destroy_plan(f->fwd);
  if (f->inv) fftwf_destroy_plan(f->inv);
  f->fwd = f->inv = NULL;
  fftwf_free(f->kern);
  fftwf_free(f->khat);
  f->kern_spacing = 0;
  f->kern = NULL;
  f->khat = NULL;
  for (int c = 0; c < CHANNELS; c++) {
    fftwf_free(f->grid[c]);
    fftwf_free(f->spec[c]);
    f->grid[c] = NULL;
    f->spec[c] = NULL;
  }
  f->m = f->m2 = 0;
}

void embr__tsne_fft_free(tsne_fft *f) {
  if (!f) return;
  free_grids(f);
  free(f->box);
  free(f->w);
  free(f);
}

/* FFTs are fastest on sizes with small prime factors: round the padded size up to one. */
static int smooth_size(int n) {
  for (;; n++) {
    int r = n;
    while (r % 2 == 0) r /= 2;
    while (r % 3 == 0) r /= 3;
    while (r % 5 == 0) r /= 5;
    if (r == 1) return n;
  }
}

/* (Re)allocates the grids and plans for m nodes per axis. Plans are FFTW_ESTIMATE: cheap to make
 * when the map grows, and deterministic (FFTW_MEASURE could pick different algorithms run to run). */
static int ensure_grid(tsne_fft *f, int m) {
  int m2 = smooth_size(2 * m);
  if (m2 == f->m2) {
    f->m = m;
    return 0;
  }
  free_grids(f);
  size_t real = (size_t)m2 * (size_t)m2, cplx = (size_t)m2 * (size_t)(m2 / 2 + 1);
  f->kern = fftwf_alloc_real(real);
  f->khat = fftwf_alloc_complex(cplx);
  int ok = f->kern && f->khat;
  for (int c = 0; c < CHANNELS && ok; c++) {
    f->grid[c] = fftwf_alloc_real(real);
    f->spec[c] = fftwf_alloc_complex(cplx);
    ok = f->grid[c] && f->spec[c];
  }
  if (ok) {
    f->fwd = fftwf_plan_dft_r2c_2d(m2, m2, f->kern, f->khat, FFTW_ESTIMATE);
    f->inv = fftwf_plan_dft_c2r_2d(m2, m2, f->spec[0], f->grid[0], FFTW_ESTIMATE);
    ok = f->fwd && f->inv;
  }
  if (!ok) {
    free_grids(f);
    return embr_error(EMBR_ENOMEM, "t-SNE FFT: out of memory for a %d x %d grid", m2, m2);
  }
  f->m = m;
  f->m2 = m2;
  return 0;
}

/* Lagrange weights of the p equispaced nodes at (k + 0.5) / p of a unit box, at t in [0, 1]. */
static void lagrange(int p, double t, double *w) {
  for (int k = 0; k < p; k++) {
    double xk = (k + 0.5) / p, v = 1;
    for (int j = 0; j < p; j++)
      if (j != k) v *= (t - (j + 0.5) / p) / (xk - (j + 0.5) / p);
    w[k] = v;
  }
}

static void fill_kernel(tsne_fft *f, double spacing) {
  int m2 = f->m2;
  for (int a = 0; a < m2; a++) {
    int da = a <= m2 / 2 ? a : a - m2; /* circular offset */
    for (int b = 0; b < m2; b++) {
      int db = b <= m2 / 2 ? b : b - m2;
      double d2 = ((double)da * da + (double)db * db) * spacing * spacing;
      double k = 1.0 / (1.0 + d2);
      f->kern[(size_t)a * m2 + b] = (float)(k * k);
    }
  }
}

int embr__tsne_rep_fft(tsne_fft *f, const double *y, int64_t n, double *rep, double *zout) {
  const int p = f->p;
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < 2 * n; i++) {
    lo = fmin(lo, y[i]);
    hi = fmax(hi, y[i]);
  }
  double span = (hi - lo) * (1 + 1e-9) + 1e-9;
  int nb = (int)ceil(span / f->box_size);
  /* Boxes of exactly box_size (the grid may overhang the map) keep the kernel's spectrum valid
   * from one iteration to the next; a small map is cut into min_boxes boxes instead. */
  double h = f->box_size;
  if (nb < f->min_boxes) {
    nb = f->min_boxes;
    h = span / nb;
  }
  int rc = ensure_grid(f, nb * p);
  if (rc) return rc;
  if (n > f->cap_points) {
    free(f->box);
    free(f->w);
    f->box = malloc(sizeof(int32_t) * 2 * (size_t)n);
    f->w = malloc(sizeof(double) * 2 * (size_t)p * (size_t)n);
    if (!f->box || !f->w) {
      f->cap_points = 0;
      return embr_error(EMBR_ENOMEM, "t-SNE FFT: out of memory");
    }
    f->cap_points = n;
  }
  const int m2 = f->m2;
  const size_t real = (size_t)m2 * m2;
  /* Box and weights of every point. */
#pragma omp parallel for num_threads(f->nt) schedule(static)
  for (int64_t i = 0; i < n; i++)
    for (int a = 0; a < 2; a++) {
      double u = (y[i * 2 + a] - lo) / h;
      int b = (int)u;
      if (b >= nb) b = nb - 1;
      if (b < 0) b = 0;
      f->box[i * 2 + a] = b;
      lagrange(p, u - b, f->w + (i * 2 + a) * p);
    }
  /* Kernel spectrum: depends only on the grid size and spacing, which stay put once the map is
   * wider than min_boxes boxes. */
  if (f->kern_spacing != h / p) {
    fill_kernel(f, h / p);
    fftwf_execute(f->fwd);
    f->kern_spacing = h / p;
  }
  /* Per channel: spread, forward FFT, multiply, inverse FFT. Channels run in parallel. */
#pragma omp parallel for num_threads(f->nt < CHANNELS ? f->nt : CHANNELS) schedule(dynamic, 1)
  for (int c = 0; c < CHANNELS; c++) {
    float *g = f->grid[c];
    memset(g, 0, sizeof(float) * real);
    for (int64_t i = 0; i < n; i++) {
      double q = c == 0 ? 1.0 : c == 1 ? y[2 * i] : c == 2 ? y[2 * i + 1]
                                                          : y[2 * i] * y[2 * i] + y[2 * i + 1] * y[2 * i + 1];
      const double *wx = f->w + (i * 2) * p, *wy = f->w + (i * 2 + 1) * p;
      size_t gx = (size_t)f->box[2 * i] * p, gy = (size_t)f->box[2 * i + 1] * p;
      for (int ky = 0; ky < p; ky++) {
        float *rowp = g + (gy + ky) * m2 + gx;
        double qy = q * wy[ky];
        for (int kx = 0; kx < p; kx++) rowp[kx] += (float)(qy * wx[kx]);
      }
    }
    fftwf_execute_dft_r2c(f->fwd, g, f->spec[c]);
    size_t nc = (size_t)m2 * (m2 / 2 + 1);
    float scale = 1.0f / (float)real;
    for (size_t s = 0; s < nc; s++) {
      float re = f->spec[c][s][0] * f->khat[s][0] - f->spec[c][s][1] * f->khat[s][1];
      float im = f->spec[c][s][0] * f->khat[s][1] + f->spec[c][s][1] * f->khat[s][0];
      f->spec[c][s][0] = re * scale;
      f->spec[c][s][1] = im * scale;
    }
    fftwf_execute_dft_c2r(f->inv, f->spec[c], g);
  }
  /* Read back, then forces and Z. */
  double z = 0;
#pragma omp parallel for num_threads(f->nt) schedule(static) reduction(+ : z)
  for (int64_t i = 0; i < n; i++) {
    const double *wx = f->w + (i * 2) * p, *wy = f->w + (i * 2 + 1) * p;
    size_t gx = (size_t)f->box[2 * i] * p, gy = (size_t)f->box[2 * i + 1] * p;
    double phi[CHANNELS] = {0, 0, 0, 0};
    for (int ky = 0; ky < p; ky++)
      for (int kx = 0; kx < p; kx++) {
        size_t at = (gy + ky) * m2 + gx + kx;
        double wgt = wy[ky] * wx[kx];
        for (int c = 0; c < CHANNELS; c++) phi[c] += wgt * f->grid[c][at];
      }
    double yx = y[2 * i], yy = y[2 * i + 1];
    rep[2 * i] = yx * phi[0] - phi[1];
    rep[2 * i + 1] = yy * phi[0] - phi[2];
    z += (1 + yx * yx + yy * yy) * phi[0] - 2 * (yx * phi[1] + yy * phi[2]) + phi[3];
  }
  *zout = z - (double)n;
  return 0;
}
