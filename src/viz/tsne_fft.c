/* FFT-accelerated interpolation of the t-SNE repulsion in 2-D (Linderman et al. 2019):
 *  1. the map's bounding rectangle is cut into nbx x nby boxes with p equispaced interpolation
 *     nodes per box and axis, so all nodes form one uniform mx x my grid (mx = nbx p);
 *  2. each point spreads its charges (1, y_x, y_y) onto the p x p nodes of its box with Lagrange
 *     weights;
 *  3. the potentials at the nodes are the charges convolved with K^2, K = 1 / (1 + d^2): on a
 *     uniform grid that is a Toeplitz product, done as a zero-padded FFT convolution (FFTW, single
 *     precision, real-to-complex) on an m2x x m2y grid;
 *  4. each point reads the potentials back with the same weights.
 * Near / far split: K^2 = near + far, where near vanishes beyond r (kernel_near) and far is smooth
 * on a scale of several units (kernel_far). The fine grid convolves only near: a circular
 * convolution of length m2 >= mx + pad (pad = r / spacing nodes, m2 >= 2 pad) then equals the
 * linear one on the mx nodes, since an offset that wraps round is longer than pad either way; so
 * the padding is pad nodes per axis instead of mx. far goes to a coarse grid (the same rectangle,
 * nodes a few units apart) with full padding m2 >= 2 mx, small enough for one thread. Both
 * levels' potentials are added at each point; Z likewise (near by Parseval on the fine grid, far
 * on the coarse one). Without the split (r = 0) the fine grid has full padding and the whole
 * kernel.
 * Forces: sum_j K_ij^2 (y_i - y_j) = y_i phi_1 - (phi_x, phi_y). The normaliser
 * Z = sum_{i != j} K_ij needs no inverse transform: with q the spread unit charges,
 * sum_ij K_ij ~ q.(K * q) = (1 / (m2x m2y)) sum_k |Q(k)|^2 Khat(k) (Parseval), so three forward and
 * three inverse transforms per iteration (FIt-SNE's scheme has four of each).
 *
 * The 2-D transforms are done as row passes and column passes, each split between the threads
 * (FFTW's guru interface, one plan per thread and pass, all channels at once; the column passes
 * copy blocks of COLS columns out contiguously, where FFTW_ESTIMATE's plan is as fast as
 * FFTW_MEASURE's, and multiply by the kernel there). Rows my..m2y-1
 * of the padded input are zero, so the forward row pass skips them, and only rows 0..my-1 of the
 * result are read back, so the inverse row pass skips the others: half of the row work with full
 * padding, little with the split. Plans
 * are FFTW_ESTIMATE (deterministic, cheap) and made again only when a padded size changes.
 * Cost per iteration: O(N p^2 + m2x m2y log(m2x m2y)). */
#include "viz/tsne_internal.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* after fftw3.h: cblas.h brings complex.h, which would change fftwf_complex's type */
#include "core/threads.h"
#include "nn/sgemm.h"

/* At most this many private spreading grids (memory: CHANNELS x mx x my floats each), whatever
 * the thread count. */
enum { CHANNELS = 3, MAX_P = 10, MAX_SPREAD = 4, COLS = 8, NBUF = 5 };
#define LADDER 1.0905077326652577 /* 2^(1/8) */
/* The default near / far split (map units; chosen on the test maps of tests/test_tsne.c, see
 * docs/tsne.md): Ka = 1 / (1 + 8^2 + d^2), near kernels tapered from 12 to zero at 20, far field
 * on boxes of 8 with 4 nodes (2 units apart). */
#define SPLIT_A 8.0
#define SPLIT_R1 12.0
#define SPLIT_R 20.0
#define COARSE_BOX 8.0
#define COARSE_P 4

typedef struct pass_plans {
  fftwf_plan row_fwd, col_fwd, col_inv, row_inv;
  fftwf_complex *cbuf;  /* CHANNELS x COLS columns of m2y, contiguous: the column pass's block */
  double zpart; /* this share's part of the Parseval sum, added in a fixed order */
} pass_plans;

/* The far field: the smooth remainders of K^2 and K on a coarse grid of the same bounding
 * rectangle, fully padded (the far kernels do not vanish), transformed in one thread (it is small). */
typedef struct coarse_level {
  int p;                  /* nodes per box and axis */
  double box;             /* box side in map units */
  int mx, my, m2x, m2y, hc;
  float *grid, *out;      /* CHANNELS x m2y x m2x: charges (zero padding kept), potentials */
  float *priv;            /* per spreading thread (with more than one): CHANNELS x m2y x m2x */
  fftwf_complex *spec;    /* CHANNELS x m2y x hc */
  float *kr2, *kr1;       /* spectra of the far K^2 and K */
  fftwf_plan fwd, inv;
  int64_t cap_points;
  int32_t *box_of;        /* per point: box x, y */
  float *w;               /* per point: p weights x, then p weights y */
  double node[MAX_P], inv_denom[MAX_P];
  double zpart;
} coarse_level;

struct tsne_fft {
  int p, min_boxes, nt;
  double box_size;
  int mx, my;           /* node columns and rows the passes cover (m2x/2, m2y/2: every node grid
                         * these padded sizes serve fits) */
  int m2x, m2y, hc;     /* padded FFT sizes (row length, rows), complex columns m2x/2+1 */
  pass_plans *plans;    /* one set per thread, each over its share of rows / columns */
  float *kr2, *kr1;     /* spectra of K^2 and K (real: the kernels are even), hc columns of m2y */
  double kern_spacing;  /* the node spacing the spectra were computed for (0: none) */
  float *grid;          /* CHANNELS x m2y x m2x real */
  fftwf_complex *spec;  /* CHANNELS x m2y x hc */
  float *priv;          /* per thread: CHANNELS x my x mx, its points' charges */
  /* the memory behind kr2, kr1, grid, spec and priv, kept from one padded size to the next: the
   * map's growth changes the size 120-140 times a run, and fresh memory for each cost a page
   * fault per 4 KiB on first touch (tens of MB each time at 50k points) */
  struct reserved {
    void *p;
    size_t cap;
  } buf[NBUF];
  float *kbuf;          /* m2y x m2x real and m2y x hc complex: the kernel transform's buffers */
  fftwf_complex *kspec;
  fftwf_plan kplan;
  int64_t cap_points;
  int32_t *box;         /* per point: box index x, y */
  float *w;             /* per point: p weights x, then p weights y */
  double node[MAX_P], inv_denom[MAX_P]; /* node positions in a unit box, Lagrange denominators */
  double t_interp, t_spread, t_fft, t_gather, t_far; /* seconds per phase, summed over calls */
  /* Near / far split (split_r > 0): the fine grid convolves only the near kernels, zero beyond
   * split_r, so its padding is split_r / spacing nodes instead of the grid's own size; the far
   * kernels go to the coarse level below. */
  double split_a, split_r1, split_r;
  int pad;              /* the fine kernel's reach in nodes (0: full padding) */
  coarse_level far;
};

/* The p nodes x_k = (k + 0.5) / p of a unit box and 1 / prod_{j != k} (x_k - x_j). */
static void lagrange_setup(int p, double *node, double *inv_denom) {
  for (int k = 0; k < p; k++) node[k] = (k + 0.5) / p;
  for (int k = 0; k < p; k++) {
    double v = 1;
    for (int j = 0; j < p; j++)
      if (j != k) v *= node[k] - node[j];
    inv_denom[k] = 1.0 / v;
  }
}

/* The split of the kernels K^pw (pw = 1, 2; K = 1 / (1 + d^2)) at squared distance d2:
 * K^pw = near + far with far = Ka^pw + (K^pw - Ka^pw) s(d), Ka = 1 / (1 + a^2 + d^2) (analytic
 * within sqrt(1 + a^2) of every real point, so smooth on the coarse grid's scale), s a C3 step
 * from 0 at r1 to 1 at r; near = (K^pw - Ka^pw)(1 - s(d)) is zero from r on. */
static double split_step(const tsne_fft *f, double d2) {
  double t = (sqrt(d2) - f->split_r1) / (f->split_r - f->split_r1);
  if (t <= 0) return 0;
  if (t >= 1) return 1;
  return t * t * t * t * (35 + t * (-84 + t * (70 - 20 * t)));
}

static double kernel_near(const tsne_fft *f, int pw, double d2) {
  double k = 1.0 / (1.0 + d2), kp = pw == 2 ? k * k : k;
  if (f->split_r == 0) return kp;
  if (d2 >= f->split_r * f->split_r) return 0;
  double ka = 1.0 / (1.0 + f->split_a * f->split_a + d2), kap = pw == 2 ? ka * ka : ka;
  return (kp - kap) * (1 - split_step(f, d2));
}

static double kernel_far(const tsne_fft *f, int pw, double d2) {
  double k = 1.0 / (1.0 + d2), kp = pw == 2 ? k * k : k;
  double ka = 1.0 / (1.0 + f->split_a * f->split_a + d2), kap = pw == 2 ? ka * ka : ka;
  return kap + (kp - kap) * split_step(f, d2);
}

int embr__tsne_fft_create(tsne_fft **out, int points_per_box, int min_boxes, double box_size,
                          int n_threads) {
  if (points_per_box < 2 || points_per_box > MAX_P || min_boxes < 1 || !(box_size > 0))
    return embr_error(EMBR_EINVAL, "t-SNE FFT: need 2..10 points per box, >= 1 box, box size > 0");
  tsne_fft *f = calloc(1, sizeof *f);
  if (!f) return embr_error(EMBR_ENOMEM, "out of memory");
  f->p = points_per_box;
  f->min_boxes = min_boxes;
  f->box_size = box_size;
  f->nt = embr_threads_resolve(n_threads);
  lagrange_setup(f->p, f->node, f->inv_denom);
  embr__tsne_fft_split(f, SPLIT_A, SPLIT_R1, SPLIT_R, COARSE_BOX, COARSE_P);
  *out = f;
  return 0;
}

static void free_grids(tsne_fft *f);
static void free_coarse(coarse_level *c);

int embr__tsne_fft_split(tsne_fft *f, double a, double r1, double r, double coarse_box, int coarse_points) {
  /* grids and kernel spectra made for the previous split are dropped (remade on the next call) */
  free_grids(f);
  free_coarse(&f->far);
  if (r == 0) {
    f->split_r = 0;
    return 0;
  }
  if (!(a > 0) || !(r1 > 0) || !(r > r1) || !(coarse_box > 0) || coarse_points < 2 || coarse_points > MAX_P)
    return embr_error(EMBR_EINVAL, "t-SNE FFT: need a > 0, 0 < r1 < r, coarse box > 0, 2..10 coarse points");
  f->split_a = a;
  f->split_r1 = r1;
  f->split_r = r;
  f->far.box = coarse_box;
  f->far.p = coarse_points;
  lagrange_setup(coarse_points, f->far.node, f->far.inv_denom);
  return 0;
}

/* Drops the plans and the kernel spectra made for the current padded size; the buffers stay for
 * the next size (reserve). */
static void free_plans(tsne_fft *f) {
  if (f->plans) {
    for (int t = 0; t < f->nt; t++) {
      fftwf_plan *pl[4] = {&f->plans[t].row_fwd, &f->plans[t].col_fwd, &f->plans[t].col_inv, &f->plans[t].row_inv};
      for (int k = 0; k < 4; k++)
        if (*pl[k]) fftwf_destroy_plan(*pl[k]);
      fftwf_free(f->plans[t].cbuf);
    }
    free(f->plans);
  }
  f->plans = NULL;
  if (f->kplan) fftwf_destroy_plan(f->kplan);
  f->kplan = NULL;
  fftwf_free(f->kbuf);
  fftwf_free(f->kspec);
  f->kbuf = NULL;
  f->kspec = NULL;
  f->kern_spacing = 0;
  f->mx = f->my = f->m2x = f->m2y = f->hc = 0;
  f->pad = 0;
}

static void free_grids(tsne_fft *f) {
  free_plans(f);
  for (int b = 0; b < NBUF; b++) {
    fftwf_free(f->buf[b].p);
    f->buf[b].p = NULL;
    f->buf[b].cap = 0;
  }
  f->kr2 = f->kr1 = f->grid = NULL;
  f->spec = NULL;
  f->priv = NULL;
}

static void free_coarse(coarse_level *c) {
  if (c->fwd) fftwf_destroy_plan(c->fwd);
  if (c->inv) fftwf_destroy_plan(c->inv);
  c->fwd = c->inv = NULL;
  fftwf_free(c->grid);
  fftwf_free(c->out);
  fftwf_free(c->priv);
  c->priv = NULL;
  fftwf_free(c->spec);
  fftwf_free(c->kr2);
  fftwf_free(c->kr1);
  c->grid = c->out = c->kr2 = c->kr1 = NULL;
  c->spec = NULL;
  c->mx = c->my = c->m2x = c->m2y = c->hc = 0;
}

void embr__tsne_fft_free(tsne_fft *f) {
  if (!f) return;
  free_grids(f);
  free_coarse(&f->far);
  free(f->far.box_of);
  free(f->far.w);
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

/* Share t of n items among nt threads: [*lo, *hi). */
static void share(int n, int nt, int t, int *lo, int *hi) {
  *lo = (int)((int64_t)n * t / nt);
  *hi = (int)((int64_t)n * (t + 1) / nt);
}

/* The four passes of thread t: rows [r0, r1) of the my nonzero rows, columns [c0, c1) of hc. */
static int make_plans(tsne_fft *f, int t) {
  const int m2 = f->m2x, m2y = f->m2y, hc = f->hc;
  int r0, r1, c0, c1;
  share(f->my, f->nt, t, &r0, &r1);
  share(hc, f->nt, t, &c0, &c1);
  pass_plans *pl = &f->plans[t];
  const unsigned fl = FFTW_ESTIMATE;
  float *g = f->grid + (size_t)r0 * m2;
  fftwf_complex *s_rows = f->spec + (size_t)r0 * hc;
  /* row transforms along x: length m2, one per (channel, row) */
  fftwf_iodim rdim = {m2, 1, 1};
  fftwf_iodim rmany_r2c[2] = {{CHANNELS, m2y * m2, m2y * hc}, {r1 - r0, m2, hc}};
  fftwf_iodim rmany_c2r[2] = {{CHANNELS, m2y * hc, m2y * m2}, {r1 - r0, hc, m2}};
  if (r1 > r0) {
    pl->row_fwd = fftwf_plan_guru_dft_r2c(1, &rdim, 2, rmany_r2c, g, s_rows, fl);
    pl->row_inv = fftwf_plan_guru_dft_c2r(1, &rdim, 2, rmany_c2r, s_rows, g, fl);
    if (!pl->row_fwd || !pl->row_inv) return -1;
  }
  if (c1 > c0) {
    /* the column transforms run on blocks of COLS columns copied out contiguously: FFTW_ESTIMATE's
     * plan for the strided columns in place is 2-3x slower than a plan over contiguous ones */
    int len = m2y;
    pl->cbuf = fftwf_alloc_complex((size_t)CHANNELS * COLS * m2y);
    if (!pl->cbuf) return -1;
    pl->col_fwd = fftwf_plan_many_dft(1, &len, CHANNELS * COLS, pl->cbuf, NULL, 1, m2y, pl->cbuf, NULL, 1, m2y,
                                      FFTW_FORWARD, fl);
    pl->col_inv = fftwf_plan_many_dft(1, &len, CHANNELS * COLS, pl->cbuf, NULL, 1, m2y, pl->cbuf, NULL, 1, m2y,
                                      FFTW_BACKWARD, fl);
    if (!pl->col_fwd || !pl->col_inv) return -1;
  }
  return 0;
}

/* At least bytes of (FFTW-aligned) memory from r, which grows by a quarter more than asked when
 * it must grow, so a slowly growing map reallocates rarely; NULL when out of memory. */
static void *reserve(struct reserved *r, size_t bytes) {
  if (bytes > r->cap) {
    fftwf_free(r->p);
    size_t want = bytes + bytes / 4;
    r->p = fftwf_malloc(want);
    r->cap = r->p ? want : 0;
  }
  return r->p;
}

/* (Re)allocates the grids and plans for (at least) mx x my nodes; nothing is redone while the
 * padded sizes stay the same. */
static int ensure_grid(tsne_fft *f, int mx, int my, int pad) {
  /* A kernel that vanishes from pad nodes on needs pad nodes of zeros, not mx (see the file
   * comment); a grid of m2 serves every node count up to m2 - pad (m2 / 2 with full padding). */
  int m2 = smooth_size(mx + (pad > 0 && pad < mx ? pad : mx));
  int m2y = smooth_size(my + (pad > 0 && pad < my ? pad : my));
  if (m2 == f->m2x && m2y == f->m2y && pad == f->pad) return 0;
  free_plans(f);
  int hc = m2 / 2 + 1;
  size_t real = (size_t)m2 * (size_t)m2y, cplx = (size_t)m2y * (size_t)hc;
  f->pad = pad;
  f->mx = pad > 0 && m2 >= 2 * pad ? m2 - pad : m2 / 2;
  f->my = pad > 0 && m2y >= 2 * pad ? m2y - pad : m2y / 2;
  f->m2x = m2;
  f->m2y = m2y;
  f->hc = hc;
  f->kr2 = reserve(&f->buf[0], sizeof(float) * cplx);
  f->kr1 = reserve(&f->buf[1], sizeof(float) * cplx);
  f->grid = reserve(&f->buf[2], sizeof(float) * CHANNELS * real);
  f->spec = reserve(&f->buf[3], sizeof(fftwf_complex) * CHANNELS * cplx);
  size_t mm = (size_t)f->mx * (size_t)f->my;
  int ns = f->nt < MAX_SPREAD ? f->nt : MAX_SPREAD;
  f->priv = f->nt > 1 ? reserve(&f->buf[4], sizeof(float) * (size_t)ns * CHANNELS * mm) : NULL;
  f->plans = calloc((size_t)f->nt, sizeof *f->plans);
  int ok = f->kr2 && f->kr1 && f->grid && f->spec && f->plans && (f->nt == 1 || f->priv);
  if (ok && pad == 0) { /* the whole-grid kernel transform (fill_kernels_fft) */
    f->kbuf = fftwf_alloc_real(real);
    f->kspec = fftwf_alloc_complex(cplx);
    ok = f->kbuf && f->kspec && (f->kplan = fftwf_plan_dft_r2c_2d(m2y, m2, f->kbuf, f->kspec, FFTW_ESTIMATE)) != NULL;
  }
  for (int t = 0; t < f->nt && ok; t++) ok = make_plans(f, t) == 0;
  if (!ok) {
    free_grids(f);
    return embr_error(EMBR_ENOMEM, "t-SNE FFT: out of memory for a %d x %d grid", m2, m2y);
  }
  return 0;
}

/* Spectra of K^2 and K sampled on the padded grid with circular offsets (real and even, so the
 * spectra are real), by a 2-D FFT of the whole grid: for the unsplit kernels, which fill it. */
static void fill_kernels_fft(tsne_fft *f, double spacing) {
  const int m2 = f->m2x, m2y = f->m2y, hc = f->hc;
  for (int pw = 1; pw <= 2; pw++) {
    for (int a = 0; a < m2y; a++) {
      int da = a <= m2y / 2 ? a : a - m2y; /* circular offset */
      for (int b = 0; b < m2; b++) {
        int db = b <= m2 / 2 ? b : b - m2;
        double d2 = ((double)da * da + (double)db * db) * spacing * spacing;
        f->kbuf[(size_t)a * m2 + b] = (float)kernel_near(f, pw, d2);
      }
    }
    fftwf_execute(f->kplan);
    float *dst = pw == 2 ? f->kr2 : f->kr1;
    for (int a = 0; a < m2y; a++)
      for (int b = 0; b < hc; b++) dst[(size_t)b * m2y + a] = f->kspec[(size_t)a * hc + b][0];
  }
}

/* The cosine factors for one axis of a circular grid of length len: c[k * d1 + d] =
 * w_d cos(2 pi k d / len) for rows k < rows and offsets d < d1, with w_d = 2 for an offset that
 * stands for both +d and -d, 1 for d = 0 and the Nyquist offset len / 2; the phase k d mod len is
 * exact, so len cosines serve all entries (base: len floats of scratch). */
static void cos_table(float *c, int rows, int d1, int len, float *base) {
  for (int t = 0; t < len; t++) base[t] = (float)cos(2 * M_PI * (double)t / len);
  for (int k = 0; k < rows; k++) {
    int t = 0; /* k d mod len, stepped */
    for (int d = 0; d < d1; d++) {
      c[(size_t)k * d1 + d] = (d == 0 || 2 * d == len ? 1 : 2) * base[t];
      t += k;
      if (t >= len) t -= len;
    }
  }
}

/* The same spectra for the near kernels, which vanish beyond pad nodes: as the kernel is even in
 * each axis, Khat(ky, kx) = sum_{a, b >= 0} w_a w_b k(a, b) cos(2 pi ky a / m2y) cos(2 pi kx b / m2x)
 * over the offsets inside its reach, two matrix products (Cy Q Cx^T) of O(m2x m2y pad) split
 * between the threads. A 2-D FFT of the whole grid on one thread cost 4-7 ms here, and the map's
 * growth changes the padded size (so the spectra) 120-140 times in a run. */
static int fill_kernels_near(tsne_fft *f, double spacing) {
  const int m2 = f->m2x, m2y = f->m2y, hc = f->hc;
  const int a1 = (f->pad < m2y / 2 ? f->pad : m2y / 2) + 1, b1 = (f->pad < m2 / 2 ? f->pad : m2 / 2) + 1;
  float *q = malloc(sizeof(float) * 2 * (size_t)a1 * b1), *cx = malloc(sizeof(float) * (size_t)hc * b1);
  float *cy = malloc(sizeof(float) * (size_t)m2y * a1), *t = malloc(sizeof(float) * 2 * (size_t)a1 * hc);
  float *base = malloc(sizeof(float) * (size_t)(m2 > m2y ? m2 : m2y));
  if (!q || !cx || !cy || !t || !base) {
    free(q), free(cx), free(cy), free(t), free(base);
    return embr_error(EMBR_ENOMEM, "t-SNE FFT: out of memory for the kernel spectra");
  }
  for (int pw = 1; pw <= 2; pw++)
    for (int a = 0; a < a1; a++)
      for (int b = 0; b < b1; b++)
        q[((size_t)(pw - 1) * a1 + a) * b1 + b] =
            (float)kernel_near(f, pw, ((double)a * a + (double)b * b) * spacing * spacing);
  cos_table(cx, hc, b1, m2, base);
  cos_table(cy, m2y, a1, m2y, base);
  embr__blas_enter(1); /* each thread runs single-threaded GEMMs */
#pragma omp parallel num_threads(f->nt)
  {
    int c0, c1;
    share(hc, omp_get_num_threads(), omp_get_thread_num(), &c0, &c1);
    /* T_pw (a1 x hc) = Q_pw Cx^T, this thread's columns; then its rows of kr_pw (hc x m2y) =
     * T_pw^T Cy^T */
    for (int pw = 0; pw < 2 && c1 > c0; pw++)
      embr__nn_sgemm1(CblasNoTrans, CblasTrans, a1, c1 - c0, b1, 1, q + (size_t)pw * a1 * b1, b1, cx + (size_t)c0 * b1,
                      b1, 0, t + (size_t)pw * a1 * hc + c0, hc);
    for (int pw = 0; pw < 2 && c1 > c0; pw++)
      embr__nn_sgemm1(CblasTrans, CblasTrans, c1 - c0, m2y, a1, 1, t + (size_t)pw * a1 * hc + c0, hc, cy, a1, 0,
                      (pw ? f->kr2 : f->kr1) + (size_t)c0 * m2y, m2y);
  }
  embr__blas_leave();
  free(q), free(cx), free(cy), free(t), free(base);
  return 0;
}

static int fill_kernels(tsne_fft *f, double spacing) {
  if (f->pad > 0) {
    int rc = fill_kernels_near(f, spacing);
    if (rc) return rc;
  } else {
    fill_kernels_fft(f, spacing);
  }
  f->kern_spacing = spacing;
  return 0;
}

/* Lagrange weights of the p nodes of a unit box (lagrange_setup) at u in [0, 1]. */
static inline void lagrange_n(int p, const double *node, const double *inv_denom, double u, float *w) {
  double d[MAX_P], left[MAX_P + 1], right[MAX_P + 1];
  for (int j = 0; j < p; j++) d[j] = u - node[j];
  left[0] = right[p] = 1;
  for (int j = 0; j < p; j++) left[j + 1] = left[j] * d[j];
  for (int j = p - 1; j >= 0; j--) right[j] = right[j + 1] * d[j];
  for (int k = 0; k < p; k++) w[k] = (float)(left[k] * right[k + 1] * inv_denom[k]);
}

/* The same, with the defaults' node counts as constants so that the loops unroll (the weights of
 * every point are computed every iteration: 2 axes x 2 grids). */
static void lagrange(int p, const double *node, const double *inv_denom, double u, float *w) {
  switch (p) {
    case 4: lagrange_n(4, node, inv_denom, u, w); break;
    case 5: lagrange_n(5, node, inv_denom, u, w); break;
    default: lagrange_n(p, node, inv_denom, u, w);
  }
}

/* Adds the charges (1, y_x, y_y) of points [i0, i1) into g (CHANNELS x rows of stride ld). */
static inline void spread_n(int p, const int32_t *box, const float *w, const double *y, int64_t i0, int64_t i1,
                            float *g, size_t ld, size_t chan) {
  for (int64_t i = i0; i < i1; i++) {
    const float *wx = w + (i * 2) * p, *wy = wx + p;
    float q1 = (float)y[2 * i], q2 = (float)y[2 * i + 1];
    size_t at = (size_t)box[2 * i + 1] * p * ld + (size_t)box[2 * i] * p;
    for (int ky = 0; ky < p; ky++, at += ld) {
      float *g0 = g + at, *g1 = g0 + chan, *g2 = g1 + chan;
      for (int kx = 0; kx < p; kx++) {
        float v = wy[ky] * wx[kx];
        g0[kx] += v;
        g1[kx] += v * q1;
        g2[kx] += v * q2;
      }
    }
  }
}

/* The same, with the defaults' node counts as constants (unrolled, vectorised). */
static void spread(int p, const int32_t *box, const float *w, const double *y, int64_t i0, int64_t i1, float *g,
                   size_t ld, size_t chan) {
  switch (p) {
    case 4: spread_n(4, box, w, y, i0, i1, g, ld, chan); break;
    case 5: spread_n(5, box, w, y, i0, i1, g, ld, chan); break;
    default: spread_n(p, box, w, y, i0, i1, g, ld, chan);
  }
}

/* Thread t's part of the charge grid: its points into its own grid (the first MAX_SPREAD threads
 * only), then (after a barrier) its rows of the sum. With one thread the points go straight into
 * the padded grid. */
static void spread_phase(tsne_fft *f, const double *y, int64_t n, int t, int nt) {
  const int m = f->mx, m2 = f->m2x;
  const size_t chan = (size_t)m2 * f->m2y;
  if (nt == 1) {
    for (int c = 0; c < CHANNELS; c++)
      for (int r = 0; r < f->my; r++) memset(f->grid + c * chan + (size_t)r * m2, 0, sizeof(float) * (size_t)m2);
    spread(f->p, f->box, f->w, y, 0, n, f->grid, (size_t)m2, chan);
    return;
  }
  const size_t mm = (size_t)m * f->my;
  const int ns = nt < MAX_SPREAD ? nt : MAX_SPREAD;
  if (t < ns) {
    float *own = f->priv + (size_t)t * CHANNELS * mm;
    memset(own, 0, sizeof(float) * CHANNELS * mm);
    spread(f->p, f->box, f->w, y, n * t / ns, n * (t + 1) / ns, own, (size_t)m, mm);
  }
#pragma omp barrier
  int r0, r1;
  share(f->my, nt, t, &r0, &r1);
  for (int c = 0; c < CHANNELS; c++)
    for (int r = r0; r < r1; r++) {
      float *dst = f->grid + c * chan + (size_t)r * m2;
      memcpy(dst, f->priv + c * mm + (size_t)r * m, sizeof(float) * (size_t)m);
      for (int u = 1; u < ns; u++) {
        const float *src = f->priv + ((size_t)u * CHANNELS + c) * mm + (size_t)r * m;
        for (int x = 0; x < m; x++) dst[x] += src[x];
      }
      memset(dst + m, 0, sizeof(float) * (size_t)(m2 - m));
    }
}

/* Thread t's columns [c0, c1), COLS at a time: copied out contiguously, transformed, from
 * channel 0 its share of sum_k |Q(k)|^2 Khat(k) (columns 1..hc-1 stand for two conjugate columns
 * each, except the Nyquist one), every channel multiplied by K^2's spectrum, transformed back and
 * copied in. */
static double column_pass(tsne_fft *f, pass_plans *pl, int c0, int c1) {
  const int m2y = f->m2y, hc = f->hc;
  const size_t chan = (size_t)m2y * hc, blk = (size_t)COLS * m2y;
  double zsum = 0;
  for (int cs = c0; cs < c1; cs += COLS) {
    int w = c1 - cs < COLS ? c1 - cs : COLS;
    for (int ch = 0; ch < CHANNELS; ch++) {
      fftwf_complex *b = pl->cbuf + ch * blk;
      const fftwf_complex *src = f->spec + ch * chan + cs;
      for (int r = 0; r < m2y; r++)
        for (int k = 0; k < w; k++) {
          b[(size_t)k * m2y + r][0] = src[(size_t)r * hc + k][0];
          b[(size_t)k * m2y + r][1] = src[(size_t)r * hc + k][1];
        }
      if (w < COLS) memset(b + (size_t)w * m2y, 0, sizeof(fftwf_complex) * (size_t)(COLS - w) * m2y);
    }
    fftwf_execute(pl->col_fwd);
    for (int k = 0; k < w; k++) {
      int c = cs + k;
      const float *k2 = f->kr2 + (size_t)c * m2y, *k1 = f->kr1 + (size_t)c * m2y;
      const fftwf_complex *b0 = pl->cbuf + (size_t)k * m2y;
      double part = 0;
      for (int r = 0; r < m2y; r++) part += ((double)b0[r][0] * b0[r][0] + (double)b0[r][1] * b0[r][1]) * k1[r];
      zsum += (c == 0 || 2 * c == f->m2x ? 1 : 2) * part;
      for (int ch = 0; ch < CHANNELS; ch++) {
        fftwf_complex *b = pl->cbuf + ch * blk + (size_t)k * m2y;
        for (int r = 0; r < m2y; r++) {
          b[r][0] *= k2[r];
          b[r][1] *= k2[r];
        }
      }
    }
    fftwf_execute(pl->col_inv);
    for (int ch = 0; ch < CHANNELS; ch++) {
      const fftwf_complex *b = pl->cbuf + ch * blk;
      fftwf_complex *dst = f->spec + ch * chan + cs;
      for (int r = 0; r < m2y; r++)
        for (int k = 0; k < w; k++) {
          dst[(size_t)r * hc + k][0] = b[(size_t)k * m2y + r][0];
          dst[(size_t)r * hc + k][1] = b[(size_t)k * m2y + r][1];
        }
    }
  }
  return zsum;
}

/* (Re)allocates the coarse level for mx x my nodes (full padding) with the far kernels' spectra. */
static int coarse_ensure(tsne_fft *f, int mx, int my) {
  coarse_level *c = &f->far;
  int m2 = smooth_size(2 * mx), m2y = smooth_size(2 * my);
  if (m2 == c->m2x && m2y == c->m2y) return 0;
  free_coarse(c);
  int hc = m2 / 2 + 1;
  size_t real = (size_t)m2 * (size_t)m2y, cplx = (size_t)m2y * (size_t)hc;
  c->m2x = m2;
  c->m2y = m2y;
  c->hc = hc;
  c->mx = m2 / 2;
  c->my = m2y / 2;
  c->grid = fftwf_alloc_real(CHANNELS * real);
  c->out = fftwf_alloc_real(CHANNELS * real);
  c->spec = fftwf_alloc_complex(CHANNELS * cplx);
  c->kr2 = fftwf_alloc_real(cplx);
  c->kr1 = fftwf_alloc_real(cplx);
  int ns = f->nt < MAX_SPREAD ? f->nt : MAX_SPREAD;
  c->priv = ns > 1 ? fftwf_alloc_real((size_t)ns * CHANNELS * real) : NULL;
  int ok = c->grid && c->out && c->spec && c->kr2 && c->kr1 && (ns == 1 || c->priv);
  int dims[2] = {m2y, m2};
  if (ok) {
    c->fwd = fftwf_plan_many_dft_r2c(2, dims, CHANNELS, c->grid, NULL, 1, (int)real, c->spec, NULL, 1, (int)cplx,
                                     FFTW_ESTIMATE);
    c->inv = fftwf_plan_many_dft_c2r(2, dims, CHANNELS, c->spec, NULL, 1, (int)cplx, c->out, NULL, 1, (int)real,
                                     FFTW_ESTIMATE);
    ok = c->fwd && c->inv;
  }
  /* the far kernels' spectra, through channel 0's buffers and the forward plan */
  const double sp = c->box / c->p;
  for (int pw = 1; pw <= 2 && ok; pw++) {
    for (int a = 0; a < m2y; a++) {
      int da = a <= m2y / 2 ? a : a - m2y;
      for (int b = 0; b < m2; b++) {
        int db = b <= m2 / 2 ? b : b - m2;
        c->grid[(size_t)a * m2 + b] = (float)kernel_far(f, pw, ((double)da * da + (double)db * db) * sp * sp);
      }
    }
    memset(c->grid + real, 0, sizeof(float) * (CHANNELS - 1) * real);
    fftwf_execute(c->fwd);
    float *dst = pw == 2 ? c->kr2 : c->kr1;
    for (size_t s = 0; s < cplx; s++) dst[s] = c->spec[s][0];
  }
  if (!ok) {
    free_coarse(c);
    return embr_error(EMBR_ENOMEM, "t-SNE FFT: out of memory for a %d x %d coarse grid", m2, m2y);
  }
  memset(c->grid, 0, sizeof(float) * CHANNELS * real);
  return 0;
}

/* Zeroes the node region of a coarse charge grid (all of it: a map that shrinks leaves charges
 * beyond its current boxes). */
static void coarse_clear(const coarse_level *c, float *g) {
  const size_t real = (size_t)c->m2x * c->m2y;
  for (int ch = 0; ch < CHANNELS; ch++)
    for (int r = 0; r < c->my; r++) memset(g + ch * real + (size_t)r * c->m2x, 0, sizeof(float) * (size_t)c->mx);
}

/* Thread t of nt spreads its share of the points into its own coarse grid (the first MAX_SPREAD
 * threads; with one thread straight into the transform's input). */
static void coarse_spread(tsne_fft *f, const double *y, int64_t n, int t, int nt) {
  coarse_level *c = &f->far;
  const size_t real = (size_t)c->m2x * c->m2y;
  const int ns = nt < MAX_SPREAD ? nt : MAX_SPREAD;
  if (t >= ns) return;
  float *g = ns == 1 ? c->grid : c->priv + (size_t)t * CHANNELS * real;
  coarse_clear(c, g);
  spread(c->p, c->box_of, c->w, y, n * t / ns, n * (t + 1) / ns, g, (size_t)c->m2x, real);
}

/* The far field on the coarse grid (one thread, after coarse_spread): the threads' charges summed
 * in a fixed order, transform, Z's far part by Parseval, multiply by the far K^2's spectrum,
 * transform back into c->out. */
static void coarse_run(tsne_fft *f, int nt) {
  coarse_level *c = &f->far;
  const int m2 = c->m2x, hc = c->hc;
  const size_t real = (size_t)m2 * c->m2y, cplx = (size_t)c->m2y * hc;
  const int ns = nt < MAX_SPREAD ? nt : MAX_SPREAD, w = c->mx;
  if (ns > 1) {
    for (int ch = 0; ch < CHANNELS; ch++)
      for (int r = 0; r < c->my; r++) {
        size_t at = ch * real + (size_t)r * m2;
        float *dst = c->grid + at;
        memcpy(dst, c->priv + at, sizeof(float) * (size_t)w);
        for (int u = 1; u < ns; u++) {
          const float *src = c->priv + (size_t)u * CHANNELS * real + at;
          for (int x = 0; x < w; x++) dst[x] += src[x];
        }
      }
  }
  fftwf_execute(c->fwd);
  double z = 0;
  for (size_t r = 0; r < (size_t)c->m2y; r++) {
    const float *k2 = c->kr2 + r * hc, *k1 = c->kr1 + r * hc;
    fftwf_complex *s0 = c->spec + r * hc;
    for (int col = 0; col < hc; col++) {
      double mult = col == 0 || 2 * col == m2 ? 1 : 2;
      z += mult * ((double)s0[col][0] * s0[col][0] + (double)s0[col][1] * s0[col][1]) * k1[col];
      for (int ch = 0; ch < CHANNELS; ch++) {
        s0[ch * cplx + col][0] *= k2[col];
        s0[ch * cplx + col][1] *= k2[col];
      }
    }
  }
  c->zpart = z / (double)real;
  fftwf_execute(c->inv);
}

/* A point's potentials read back from a grid of potentials (CHANNELS x rows of stride ld) with
 * the weights it spread its charges with: box (x, y), then p weights x and p weights y. Each row
 * of nodes is summed on its own (in float, as the grid is) before its y weight: independent
 * chains instead of one long one through every node. */
static inline void gather_n(int p, const int32_t *box, const float *wx, const float *g, size_t ld, size_t chan,
                            double phi[CHANNELS]) {
  const float *wy = wx + p;
  size_t at = (size_t)box[1] * p * ld + (size_t)box[0] * p;
  double s0 = 0, s1 = 0, s2 = 0;
  for (int ky = 0; ky < p; ky++, at += ld) {
    const float *g0 = g + at, *g1 = g0 + chan, *g2 = g1 + chan;
    float r0 = 0, r1 = 0, r2 = 0;
    for (int kx = 0; kx < p; kx++) {
      r0 += wx[kx] * g0[kx];
      r1 += wx[kx] * g1[kx];
      r2 += wx[kx] * g2[kx];
    }
    s0 += (double)wy[ky] * r0;
    s1 += (double)wy[ky] * r1;
    s2 += (double)wy[ky] * r2;
  }
  phi[0] = s0;
  phi[1] = s1;
  phi[2] = s2;
}

/* The same, with the defaults' node counts as constants. */
static void gather(int p, const int32_t *box, const float *wx, const float *g, size_t ld, size_t chan,
                   double phi[CHANNELS]) {
  switch (p) {
    case 4: gather_n(4, box, wx, g, ld, chan, phi); break;
    case 5: gather_n(5, box, wx, g, ld, chan, phi); break;
    default: gather_n(p, box, wx, g, ld, chan, phi);
  }
}

int embr__tsne_rep_fft(tsne_fft *f, const double *y, int64_t n, double *rep, double *zout) {
  const int p = f->p;
  double t0 = embr_now();
  double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
  for (int64_t i = 0; i < n; i++)
    for (int a = 0; a < 2; a++) {
      lo[a] = fmin(lo[a], y[2 * i + a]);
      hi[a] = fmax(hi[a], y[2 * i + a]);
    }
  double span[2], smax = 0;
  for (int a = 0; a < 2; a++) {
    span[a] = (hi[a] - lo[a]) * (1 + 1e-9) + 1e-9;
    smax = fmax(smax, span[a]);
  }
  /* Boxes of exactly box_size (the grid may overhang the map) keep the kernel's spectrum valid
   * from one iteration to the next; each axis gets as many as its extent needs. A small map gets
   * a fixed number of smaller boxes on both axes, whose side steps down a ladder
   * box_size / 2^(k/8), so its spectrum is recomputed only when the map crosses a rung, not
   * every iteration. */
  double h = f->box_size;
  int nb[2];
  if (smax / h < f->min_boxes) {
    nb[0] = nb[1] = (int)ceil(f->min_boxes * LADDER);
    int k = (int)floor(log(f->box_size * nb[0] / smax) / log(LADDER));
    h = f->box_size * pow(LADDER, -k);
    if (h * nb[0] < smax) h = smax / nb[0]; /* rounding at a rung */
  } else {
    for (int a = 0; a < 2; a++) nb[a] = (int)ceil(span[a] / h);
  }
  const int split = f->split_r > 0;
  int pad = split ? (int)ceil(f->split_r / (h / p)) : 0;
  int rc = ensure_grid(f, nb[0] * p, nb[1] * p, pad);
  if (rc) return rc;
  coarse_level *cl = &f->far;
  int nbc[2] = {1, 1};
  if (split) {
    for (int a = 0; a < 2; a++) nbc[a] = (int)ceil(span[a] / cl->box);
    if ((rc = coarse_ensure(f, nbc[0] * cl->p, nbc[1] * cl->p))) return rc;
    if (n > cl->cap_points) {
      free(cl->box_of);
      free(cl->w);
      cl->box_of = malloc(sizeof(int32_t) * 2 * (size_t)n);
      cl->w = malloc(sizeof(float) * 2 * (size_t)cl->p * (size_t)n);
      if (!cl->box_of || !cl->w) {
        cl->cap_points = 0;
        return embr_error(EMBR_ENOMEM, "t-SNE FFT: out of memory");
      }
      cl->cap_points = n;
    }
  }
  if (n > f->cap_points) {
    free(f->box);
    free(f->w);
    f->box = malloc(sizeof(int32_t) * 2 * (size_t)n);
    f->w = malloc(sizeof(float) * 2 * (size_t)p * (size_t)n);
    if (!f->box || !f->w) {
      f->cap_points = 0;
      return embr_error(EMBR_ENOMEM, "t-SNE FFT: out of memory");
    }
    f->cap_points = n;
  }
  /* Kernel spectra: depend only on the grid size and spacing, which stay put once the map is
   * wider than min_boxes boxes. */
  if (f->kern_spacing != h / p) {
    double tk = embr_now();
    if ((rc = fill_kernels(f, h / p))) return rc;
    f->t_fft += embr_now() - tk;
    t0 += embr_now() - tk;
  }
  const int m2 = f->m2x, m2y = f->m2y, hc = f->hc, m = f->my, nt = f->nt;
  const size_t chan_r = (size_t)m2 * m2y, chan_c = (size_t)m2y * hc;
  double ph[4] = {0, 0, 0, 0}, t_far = 0;
  const int pc = cl->p;
  const size_t cld = (size_t)cl->m2x, creal = (size_t)cl->m2x * cl->m2y;
#pragma omp parallel num_threads(nt)
  {
    int team = omp_get_num_threads(), me = omp_get_thread_num();
    double ta = embr_now();
    /* box and weights of every point */
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++)
      for (int a = 0; a < 2; a++) {
        double u = (y[i * 2 + a] - lo[a]) / h;
        int b = (int)u;
        if (b >= nb[a]) b = nb[a] - 1;
        if (b < 0) b = 0;
        f->box[i * 2 + a] = b;
        lagrange(p, f->node, f->inv_denom, u - b, f->w + (i * 2 + a) * p);
        if (split) {
          double uc = (y[i * 2 + a] - lo[a]) / cl->box;
          int bc = (int)uc;
          if (bc >= nbc[a]) bc = nbc[a] - 1;
          if (bc < 0) bc = 0;
          cl->box_of[i * 2 + a] = bc;
          lagrange(pc, cl->node, cl->inv_denom, uc - bc, cl->w + (i * 2 + a) * pc);
        }
      }
    double tb = embr_now();
    /* the threads' plans are for nt shares; a smaller team takes several */
    if (team == nt) {
      spread_phase(f, y, n, me, nt);
    } else {
#pragma omp single
      spread_phase(f, y, n, 0, 1);
    }
#pragma omp barrier
    if (split) {
      double tf = embr_now();
      if (team == nt) {
        coarse_spread(f, y, n, me, nt);
#pragma omp barrier
      } else {
#pragma omp single
        coarse_spread(f, y, n, 0, 1);
      }
#pragma omp single
      {
        coarse_run(f, team == nt ? nt : 1);
        t_far = embr_now() - tf;
      }
    }
    double tc = embr_now();
    for (int t = me; t < nt; t += team) {
      int r0, r1;
      share(m, nt, t, &r0, &r1);
      if (r1 > r0) fftwf_execute(f->plans[t].row_fwd);
      /* rows my..m2y-1 of the spectrum: the transforms of zero rows */
      for (int c = 0; c < CHANNELS; c++) {
        int z0, z1;
        share(m2y - m, nt, t, &z0, &z1);
        if (z1 > z0)
          memset(f->spec + c * chan_c + (size_t)(m + z0) * hc, 0, sizeof(fftwf_complex) * (size_t)(z1 - z0) * hc);
      }
    }
#pragma omp barrier
    for (int t = me; t < nt; t += team) {
      int c0, c1;
      share(hc, nt, t, &c0, &c1);
      if (c1 > c0) {
        f->plans[t].zpart = column_pass(f, &f->plans[t], c0, c1);
      } else {
        f->plans[t].zpart = 0;
      }
    }
#pragma omp barrier
    for (int t = me; t < nt; t += team) {
      int r0, r1;
      share(m, nt, t, &r0, &r1);
      if (r1 > r0) fftwf_execute(f->plans[t].row_inv);
    }
#pragma omp barrier
    double td = embr_now();
    /* read back, then forces (the transforms are unnormalised: divide by m2x m2y) */
    const double scale = 1.0 / (double)chan_r;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      double phi[CHANNELS], cphi[CHANNELS];
      gather(p, f->box + 2 * i, f->w + (i * 2) * p, f->grid, (size_t)m2, chan_r, phi);
      for (int c = 0; c < CHANNELS; c++) phi[c] *= scale;
      if (split) {
        gather(pc, cl->box_of + 2 * i, cl->w + (i * 2) * pc, cl->out, cld, creal, cphi);
        for (int c = 0; c < CHANNELS; c++) phi[c] += cphi[c] / (double)creal;
      }
      double yx = y[2 * i], yy = y[2 * i + 1];
      rep[2 * i] = yx * phi[0] - phi[1];
      rep[2 * i + 1] = yy * phi[0] - phi[2];
    }
    if (me == 0) {
      ph[0] = tb - ta;
      ph[1] = tc - tb;
      ph[2] = td - tc;
      ph[3] = embr_now() - td;
    }
  }
  double zq = 0;
  for (int t = 0; t < nt; t++) zq += f->plans[t].zpart;
  f->t_interp += ph[0] + (embr_now() - t0 - ph[0] - ph[1] - ph[2] - ph[3]);
  f->t_spread += ph[1] - t_far;
  f->t_far += t_far;
  f->t_fft += ph[2];
  f->t_gather += ph[3];
  *zout = zq / (double)chan_r + (split ? cl->zpart : 0) - (double)n;
  return 0;
}

void embr__tsne_fft_times(const tsne_fft *f, double *interp, double *spread_s, double *fft, double *gather,
                          double *far, int *grid) {
  *far = f->t_far;
  *interp = f->t_interp;
  *spread_s = f->t_spread;
  *fft = f->t_fft;
  *gather = f->t_gather;
  grid[0] = f->m2x;
  grid[1] = f->m2y;
}
