/* t-SNE: parameters and validation, the optimisation loop, KL, transform. See
 * include/embr/tsne.h; forces are in tsne_grad.c, tsne_bh.c and tsne_fft.c, affinities in
 * affinity.c. */
#include "viz/tsne_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Beyond this many points the exact O(N^2) gradient is refused: 1000 iterations would take hours. */
#define EXACT_MAX_N 50000
/* AUTO picks the exact gradient up to this many points, Barnes-Hut up to AUTO_FFT_N (and in
 * 3-D) and the FFT interpolation above (2-D). Measured on MNIST subsets (docs/benchmarks.md,
 * 2 threads): the two cost the same at 2,000 points, FFT is 1.2x faster at 2,500, 1.8x at 5,000
 * and 2.6x at 10,000, at an exact KL within 0.3 % of Barnes-Hut's. */
#define AUTO_EXACT_N 1000
#define AUTO_FFT_N 2000

embr_tsne_params embr_tsne_params_default(void) {
  embr_tsne_params p;
  memset(&p, 0, sizeof p);
  p.out_dim = 2;
  p.perplexity = 30;
  p.iters = 1000;
  p.exaggeration = 12;
  p.exaggeration_iters = 250;
  p.momentum = 0.5;
  p.final_momentum = 0.8;
  p.max_step = 5;
  p.theta = 0.5;
  p.fft_points = 5;
  p.fft_min_boxes = 8;
  p.fft_box_size = 1.125;
  p.pca_dims = -1;
  p.metric = EMBR_METRIC_L2;
  p.exact_knn_max = 200000;
  p.seed = 1;
  p.kl_every = 50;
  return p;
}

static int check_params(const embr_tsne_params *p, int64_t n) {
  if (p->out_dim != 2 && p->out_dim != 3) return embr_error(EMBR_EINVAL, "t-SNE: output dimension must be 2 or 3");
  if (!(p->perplexity >= 1) || p->perplexity > 1e4) return embr_error(EMBR_EINVAL, "t-SNE: perplexity must be in [1, 10000]");
  if (n < 3 * p->perplexity + 1)
    return embr_error(EMBR_EINVAL,
                      "t-SNE: %lld points are too few for perplexity %g (needs at least 3 x perplexity + 1 = "
                      "%.0f); lower --perplexity",
                      (long long)n, p->perplexity, ceil(3 * p->perplexity + 1));
  if (p->iters < 1 || p->exaggeration_iters < 0 || !(p->exaggeration >= 1))
    return embr_error(EMBR_EINVAL, "t-SNE: need iters >= 1, exaggeration >= 1");
  if (!(p->learning_rate >= 0) || !(p->theta >= 0) || !(p->max_step > 0))
    return embr_error(EMBR_EINVAL, "t-SNE: learning rate and theta must be >= 0, max step > 0");
  if (p->method == EMBR_TSNE_FFT && p->out_dim != 2)
    return embr_error(EMBR_EUNSUPPORTED, "t-SNE: the FFT method is 2-D only; use Barnes-Hut for 3-D");
  if (p->method == EMBR_TSNE_EXACT && n > EXACT_MAX_N)
    return embr_error(EMBR_EINVAL,
                      "t-SNE: the exact gradient on %lld points needs %.2g pair evaluations per iteration; "
                      "it is limited to %d points (use --method fft or bh)",
                      (long long)n, (double)n * (double)n, EXACT_MAX_N);
  if ((unsigned)p->method > EMBR_TSNE_FFT) return embr_error(EMBR_EINVAL, "t-SNE: unknown method");
  return 0;
}

static embr_tsne_method pick_method(const embr_tsne_params *p, int64_t n) {
  if (p->method != EMBR_TSNE_AUTO) return p->method;
  if (n <= AUTO_EXACT_N) return EMBR_TSNE_EXACT;
  return p->out_dim == 2 && n > AUTO_FFT_N ? EMBR_TSNE_FFT : EMBR_TSNE_BH;
}

/* Refuses work that would not fit in memory, before allocating it. */
static int check_memory(int64_t n, int k, int64_t dim) {
  double need = (double)n * k * (8 + 4) * 3 /* neighbours, then P (both directions) */
                + (double)n * (double)dim * 4 /* a reduced copy of the input */
                + (double)n * 8 * 3 * 6;      /* map, gradient, gains, updates... */
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
  double ram = pages > 0 && psize > 0 ? (double)pages * (double)psize : 0;
  if (ram > 0 && need > 0.8 * ram)
    return embr_error(EMBR_ENOMEM, "t-SNE: %lld points need about %.1f GiB, more than this machine has (%.1f GiB)",
                      (long long)n, need / 1073741824.0, ram / 1073741824.0);
  return 0;
}

/* ---- affinities from data ------------------------------------------------------------------- */

static int knn_count(const embr_tsne_params *p, int64_t n) {
  int64_t k = (int64_t)floor(3 * p->perplexity);
  if (k > n - 1) k = n - 1;
  return (int)k;
}

embr_status embr_tsne_affinities(const float *x, int64_t n, int64_t ld, int64_t dim,
                                 const embr_tsne_params *params, embr_affinities *out) {
  memset(out, 0, sizeof *out);
  embr_tsne_params defaults = embr_tsne_params_default();
  const embr_tsne_params *p = params ? params : &defaults;
  int rc = check_params(p, n);
  if (rc) return rc;
  if (dim < 1 || ld < dim) return embr_error(EMBR_EINVAL, "t-SNE: bad dimension");
  int k = knn_count(p, n);
  if ((rc = check_memory(n, k, dim))) return rc;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < dim; j++)
      if (!isfinite(x[i * ld + j]))
        return embr_error(EMBR_EVALUE, "t-SNE: row %lld, column %lld is %s", (long long)i, (long long)j,
                          isnan(x[i * ld + j]) ? "NaN" : "infinite");
  /* PCA first when asked (or automatically for wide inputs): neighbours in 50 dims are faster to
   * find and, for image-like data, cleaner. Only for Euclidean distances, which PCA preserves best. */
  int pca = p->pca_dims > 0 ? p->pca_dims : (p->pca_dims < 0 && dim > 100 ? 50 : 0);
  const float *src = x;
  int64_t sld = ld, sdim = dim;
  float *reduced = NULL;
  if (pca > 0 && pca < dim && p->metric == EMBR_METRIC_L2) {
    reduced = embr_alloc(sizeof(float) * (size_t)n * (size_t)pca);
    if (!reduced) return embr_error(EMBR_ENOMEM, "t-SNE: out of memory for PCA");
    if ((rc = embr_pca(x, n, ld, dim, pca, reduced, NULL, p->n_threads))) {
      embr_free(reduced);
      return rc;
    }
    src = reduced;
    sld = sdim = pca;
  }
  int64_t *nbr = embr_alloc(sizeof(int64_t) * (size_t)n * (size_t)k);
  float *dist = embr_alloc(sizeof(float) * (size_t)n * (size_t)k);
  rc = nbr && dist ? 0 : embr_error(EMBR_ENOMEM, "t-SNE: out of memory for neighbours");
  double t0 = embr_now();
  if (!rc) rc = embr__tsne_knn(src, n, sld, sdim, k, p->metric, p->exact_knn_max, p->seed, p->n_threads, nbr, dist);
  double t1 = embr_now();
  if (!rc) rc = embr__tsne_calibrate(nbr, dist, n, k, p->perplexity, p->n_threads, out);
  const char *prof = getenv("EMBR_TSNE_PROFILE");
  if (!rc && prof && *prof && *prof != '0')
    fprintf(stderr, "t-SNE profile: neighbours %.3f s, perplexity calibration and P %.3f s\n", t1 - t0,
            embr_now() - t1);
  embr_free(reduced);
  embr_free(nbr);
  embr_free(dist);
  return rc;
}

embr_status embr_tsne_affinities_knn(const int64_t *nbr, const float *d, int64_t n, int kk,
                                     const embr_tsne_params *params, embr_affinities *out) {
  memset(out, 0, sizeof *out);
  embr_tsne_params defaults = embr_tsne_params_default();
  const embr_tsne_params *p = params ? params : &defaults;
  int rc = check_params(p, n);
  if (rc) return rc;
  if (kk < 1) return embr_error(EMBR_EINVAL, "t-SNE: need at least one neighbour per point");
  for (int64_t i = 0; i < n * kk; i++) {
    if (nbr[i] >= n || (nbr[i] >= 0 && !isfinite(d[i])))
      return embr_error(EMBR_EINVAL, "t-SNE: neighbour entry %lld is out of range or not finite", (long long)i);
  }
  /* A point listed as its own neighbour would put mass on P's diagonal: drop such entries. */
  int64_t *own = embr_alloc(sizeof(int64_t) * (size_t)(n * kk));
  if (!own) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n * kk; i++) own[i] = nbr[i] == i / kk ? -1 : nbr[i];
  int rc2 = embr__tsne_calibrate(own, d, n, kk, p->perplexity, p->n_threads, out);
  embr_free(own);
  return rc2;
}

embr_status embr_tsne_affinities_dense(const float *dist, int64_t n, int64_t ld, const embr_tsne_params *params,
                                       embr_affinities *out) {
  memset(out, 0, sizeof *out);
  embr_tsne_params defaults = embr_tsne_params_default();
  const embr_tsne_params *p = params ? params : &defaults;
  int rc = check_params(p, n);
  if (rc) return rc;
  if (ld < n) return embr_error(EMBR_EINVAL, "t-SNE: distance matrix must be square (n x n)");
  int k = knn_count(p, n);
  int64_t *nbr = embr_alloc(sizeof(int64_t) * (size_t)n * (size_t)k);
  float *d = embr_alloc(sizeof(float) * (size_t)n * (size_t)k);
  embr_topk t;
  rc = nbr && d ? embr_topk_init(&t, k) : embr_error(EMBR_ENOMEM, "t-SNE: out of memory");
  for (int64_t i = 0; i < n && !rc; i++) {
    embr_topk_reset(&t);
    for (int64_t j = 0; j < n; j++) {
      float v = dist[i * ld + j];
      if (!isfinite(v) || v < 0) {
        rc = embr_error(EMBR_EVALUE, "t-SNE: distance (%lld, %lld) is negative or not finite", (long long)i, (long long)j);
        break;
      }
      if (j != i) embr_topk_push(&t, v, j);
    }
    if (!rc) embr_topk_result(&t, d + i * k, nbr + i * k, INFINITY);
  }
  if (nbr && d) embr_topk_free(&t);
  if (!rc) rc = embr__tsne_calibrate(nbr, d, n, k, p->perplexity, p->n_threads, out);
  embr_free(nbr);
  embr_free(d);
  return rc;
}

/* ---- optimisation ------------------------------------------------------------------------------ */

static void center(double *y, int64_t n, int d) {
  double m[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; i++)
    for (int c = 0; c < d; c++) m[c] += y[i * d + c];
  for (int c = 0; c < d; c++) m[c] /= (double)n;
  for (int64_t i = 0; i < n; i++)
    for (int c = 0; c < d; c++) y[i * d + c] -= m[c];
}

/* Random start: N(0, 1e-4^2) per coordinate. (PCA starts are made by the caller, which has the
 * data.) */
static void init_random(double *y, int64_t n, int d, uint64_t seed) {
  embr_rng r;
  embr_rng_seed(&r, seed);
  for (int64_t i = 0; i < n * d; i++) y[i] = 1e-4 * embr_rng_normal(&r);
}

/* Scales a start so its first coordinate has standard deviation 1e-4 (as openTSNE does): small
 * enough that early exaggeration, not the start's scale, sets the layout. */
static void scale_start(double *y, int64_t n, int d) {
  center(y, n, d);
  double ss = 0;
  for (int64_t i = 0; i < n; i++) ss += y[i * d] * y[i * d];
  double sd = sqrt(ss / (double)n);
  if (sd > 0)
    for (int64_t i = 0; i < n * d; i++) y[i] *= 1e-4 / sd;
}

typedef struct optimizer {
  const embr_affinities *P;
  const embr_tsne_params *p;
  embr_tsne_method method;
  int64_t n;
  int d;
  double *y, *grad, *att, *rep, *upd, *gains;
  double plogp; /* sum p log p, for KL */
  tsne_fft *fft;
  double t_att, t_rep, t_step; /* seconds per phase (EMBR_TSNE_PROFILE) */
} optimizer;

/* One gradient evaluation; returns Z (NaN on failure) and, when plogw is not NULL, sets it. */
static double gradient(optimizer *o, double exag, double *plogw) {
  int nt = o->p->n_threads;
  double t0 = embr_now();
  double z, pl = embr__tsne_attract(o->P, o->y, o->d, o->att, nt, plogw != NULL);
  if (plogw) *plogw = pl;
  double t1 = embr_now();
  o->t_att += t1 - t0;
  switch (o->method) {
    case EMBR_TSNE_EXACT: z = embr__tsne_rep_exact(o->y, o->n, o->d, o->rep, nt); break;
    case EMBR_TSNE_BH: z = embr__tsne_rep_bh(o->y, o->n, o->d, o->p->theta, o->rep, nt); break;
    default:
      if (embr__tsne_rep_fft(o->fft, o->y, o->n, o->rep, &z)) return NAN;
  }
  double t2 = embr_now();
  o->t_rep += t2 - t1;
  if (!(z > 0)) return NAN;
  /* Without the factor 4 of the exact derivative, as bhtsne, FIt-SNE and openTSNE write it: their
   * learning rate N/12 is for this scale. */
  const int64_t m = o->n * o->d;
#pragma omp parallel for num_threads(embr_threads_resolve(nt)) schedule(static)
  for (int64_t i = 0; i < m; i++) o->grad[i] = exag * o->att[i] - o->rep[i] / z;
  o->t_step += embr_now() - t2;
  return z;
}

/* Momentum step with per-coordinate gains (Jacobs 1988, as in the reference implementation) and
 * a cap on how far one point moves per iteration. */
static void step(optimizer *o, double lr, double momentum) {
  const int d = o->d;
  /* each point on its own: the same result whatever the thread count */
#pragma omp parallel for num_threads(embr_threads_resolve(o->p->n_threads)) schedule(static)
  for (int64_t i = 0; i < o->n; i++) {
    double len2 = 0;
    for (int c = 0; c < d; c++) {
      int64_t at = i * d + c;
      double g = o->grad[at];
      double gain = (g > 0) != (o->upd[at] > 0) ? o->gains[at] + 0.2 : o->gains[at] * 0.8;
      o->gains[at] = gain < 0.01 ? 0.01 : gain;
      o->upd[at] = momentum * o->upd[at] - lr * o->gains[at] * g;
      len2 += o->upd[at] * o->upd[at];
    }
    if (len2 > o->p->max_step * o->p->max_step) {
      double s = o->p->max_step / sqrt(len2);
      for (int c = 0; c < d; c++) o->upd[i * d + c] *= s;
    }
    for (int c = 0; c < d; c++) o->y[i * d + c] += o->upd[i * d + c];
  }
  center(o->y, o->n, d);
}

static double kl_of(const optimizer *o, double plogw, double z) { return o->plogp - plogw + log(z); }

static int run(optimizer *o, embr_tsne_stats *st) {
  const embr_tsne_params *p = o->p;
  double lr = p->learning_rate > 0 ? p->learning_rate : fmax((double)o->n / 12.0, 50.0);
  embr_progress_state ps;
  embr_progress_begin(&ps, &p->progress, (uint64_t)p->iters);
  double kl = NAN;
  for (int it = 0; it < p->iters; it++) {
    int early = it < p->exaggeration_iters;
    int report = p->kl_every > 0 && ((it + 1) % p->kl_every == 0);
    double plogw = 0, z = gradient(o, early ? p->exaggeration : 1.0, report ? &plogw : NULL);
    if (isnan(z)) return embr_error(EMBR_ENOMEM, "t-SNE: gradient computation failed (out of memory or a degenerate map)");
    if (report) kl = kl_of(o, plogw, z);
    double ts = embr_now();
    step(o, lr, early ? p->momentum : p->final_momentum);
    o->t_step += embr_now() - ts;
    char detail[64];
    snprintf(detail, sizeof detail, "KL %.4f", kl);
    if (embr_progress_update(&ps, (uint64_t)(it + 1), isnan(kl) ? NULL : detail, report))
      return embr_error(EMBR_ECANCELED, "t-SNE canceled");
  }
  /* The last KL was measured before the last step; measure the final map. */
  double plogw, z = gradient(o, 1.0, &plogw);
  if (!isnan(z)) kl = kl_of(o, plogw, z);
  if (st) st->kl = kl;
  embr_progress_update(&ps, (uint64_t)p->iters, NULL, 1);
  return 0;
}

/* EMBR_TSNE_PROFILE=1: where the optimisation's time went, on stderr (a diagnostic for
 * docs/tsne.md; reading the variable changes nothing). */
static void report_profile(const optimizer *o, double total) {
  const char *e = getenv("EMBR_TSNE_PROFILE");
  if (!e || !*e || *e == '0') return;
  fprintf(stderr, "t-SNE profile: %lld points, %d iterations, %s, %.3f s optimising\n", (long long)o->n,
          o->p->iters, o->method == EMBR_TSNE_FFT ? "fft" : o->method == EMBR_TSNE_BH ? "bh" : "exact", total);
  fprintf(stderr, "  attraction %.3f s, repulsion %.3f s, update %.3f s\n", o->t_att, o->t_rep, o->t_step);
  if (o->fft) {
    double a, b, c, d, ff;
    int g[2];
    embr__tsne_fft_times(o->fft, &a, &b, &c, &d, &ff, g);
    fprintf(stderr, "  repulsion: interpolation weights %.3f s, spreading %.3f s, FFT %.3f s, far field %.3f s, "
                    "gather %.3f s; final padded grid %d x %d\n", a, b, c, ff, d, g[0], g[1]);
  }
}

static void optimizer_free(optimizer *o) {
  embr_free(o->y);
  embr_free(o->grad);
  embr_free(o->att);
  embr_free(o->rep);
  embr_free(o->upd);
  embr_free(o->gains);
  embr__tsne_fft_free(o->fft);
}

embr_status embr_tsne_optimize(const embr_affinities *P, const embr_tsne_params *params, float *yout,
                               int init_given, embr_tsne_stats *stats) {
  embr_tsne_params defaults = embr_tsne_params_default();
  const embr_tsne_params *p = params ? params : &defaults;
  int rc = check_params(p, P->n);
  if (rc) return rc;
  optimizer o;
  memset(&o, 0, sizeof o);
  o.P = P;
  o.p = p;
  o.n = P->n;
  o.d = p->out_dim;
  o.method = pick_method(p, P->n);
  size_t cells = (size_t)o.n * (size_t)o.d;
  o.y = embr_alloc(sizeof(double) * cells);
  o.grad = embr_alloc(sizeof(double) * cells);
  o.att = embr_alloc(sizeof(double) * cells);
  o.rep = embr_alloc(sizeof(double) * cells);
  o.upd = embr_calloc(cells, sizeof(double));
  o.gains = embr_alloc(sizeof(double) * cells);
  if (!o.y || !o.grad || !o.att || !o.rep || !o.upd || !o.gains) rc = embr_error(EMBR_ENOMEM, "t-SNE: out of memory");
  if (!rc && o.method == EMBR_TSNE_FFT)
    rc = embr__tsne_fft_create(&o.fft, p->fft_points, p->fft_min_boxes, p->fft_box_size, p->n_threads);
  if (!rc) {
    for (size_t i = 0; i < cells; i++) o.gains[i] = 1.0;
    if (init_given) {
      for (size_t i = 0; i < cells; i++) o.y[i] = yout[i];
    } else {
      init_random(o.y, o.n, o.d, p->seed);
    }
    for (int64_t s = 0; s < P->row[P->n]; s++)
      if (P->val[s] > 0) o.plogp += P->val[s] * log(P->val[s]);
    double t0 = embr_now();
    rc = run(&o, stats);
    report_profile(&o, embr_now() - t0);
    if (stats) {
      stats->seconds_optimize = embr_now() - t0;
      stats->method = o.method;
      stats->nnz = P->row[P->n];
    }
    if (!rc)
      for (size_t i = 0; i < cells; i++) yout[i] = (float)o.y[i];
  }
  optimizer_free(&o);
  return rc;
}

/* PCA start from the (possibly reduced) data, scaled to std 1e-4. */
static int pca_start(const float *x, int64_t n, int64_t ld, int64_t dim, int d, int nt, float *y) {
  if (dim < d) return embr_error(EMBR_EINVAL, "t-SNE: PCA start needs at least %d input dims", d);
  int rc = embr_pca(x, n, ld, dim, d, y, NULL, nt);
  if (rc) return rc;
  double *tmp = embr_alloc(sizeof(double) * (size_t)n * (size_t)d);
  if (!tmp) return embr_error(EMBR_ENOMEM, "t-SNE: out of memory");
  for (int64_t i = 0; i < n * d; i++) tmp[i] = y[i];
  scale_start(tmp, n, d);
  for (int64_t i = 0; i < n * d; i++) y[i] = (float)tmp[i];
  embr_free(tmp);
  return 0;
}

embr_status embr_tsne(const float *x, int64_t n, int64_t ld, int64_t dim, const embr_tsne_params *params,
                      float *y, embr_tsne_stats *stats) {
  embr_tsne_params defaults = embr_tsne_params_default();
  const embr_tsne_params *p = params ? params : &defaults;
  if (stats) memset(stats, 0, sizeof *stats);
  embr_affinities P;
  double t0 = embr_now();
  int rc = embr_tsne_affinities(x, n, ld, dim, p, &P);
  if (rc) return rc;
  if (stats) stats->seconds_affinities = embr_now() - t0;
  int given = 0;
  if (p->init == EMBR_TSNE_INIT_PCA && dim >= p->out_dim) {
    if ((rc = pca_start(x, n, ld, dim, p->out_dim, p->n_threads, y))) {
      embr_affinities_free(&P);
      return rc;
    }
    given = 1;
  }
  double keep = stats ? stats->seconds_affinities : 0;
  rc = embr_tsne_optimize(&P, p, y, given, stats);
  if (stats) stats->seconds_affinities = keep;
  embr_affinities_free(&P);
  return rc;
}

/* ---- evaluation ----------------------------------------------------------------------------- */

embr_status embr_tsne_kl_exact(const embr_affinities *P, const float *yf, int d, int n_threads, double *kl) {
  if (d != 2 && d != 3) return embr_error(EMBR_EINVAL, "t-SNE KL: map dimension must be 2 or 3 (got %d)", d);
  int64_t n = P->n;
  for (int64_t i = 0; i < n * d; i++)
    if (!isfinite(yf[i])) return embr_error(EMBR_EVALUE, "t-SNE KL: map coordinate %lld is not finite", (long long)i);
  double *y = embr_alloc(sizeof(double) * (size_t)n * (size_t)d);
  double *rep = embr_alloc(sizeof(double) * (size_t)n * (size_t)d);
  double *att = embr_alloc(sizeof(double) * (size_t)n * (size_t)d);
  if (!y || !rep || !att) {
    embr_free(y);
    embr_free(rep);
    embr_free(att);
    return embr_error(EMBR_ENOMEM, "t-SNE KL: out of memory");
  }
  for (int64_t i = 0; i < n * d; i++) y[i] = yf[i];
  double z = embr__tsne_rep_exact(y, n, d, rep, n_threads);
  double plogw = embr__tsne_attract(P, y, d, att, n_threads, 1), plogp = 0;
  for (int64_t s = 0; s < P->row[n]; s++)
    if (P->val[s] > 0) plogp += P->val[s] * log(P->val[s]);
  *kl = plogp - plogw + log(z);
  embr_free(y);
  embr_free(rep);
  embr_free(att);
  return 0;
}

/* ---- transform ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

embr_status embr_tsne_transform(const float *ref_x, int64_t n_ref, int64_t ref_ld, const float *ref_y,
                                const float *new_x, int64_t n_new, int64_t new_ld, int64_t dim,
                                const embr_tsne_params *params, float *new_y) {
  embr_tsne_params defaults = embr_tsne_params_default();
  const embr_tsne_params *p = params ? params : &defaults;
  int rc = check_params(p, n_ref);
  if (rc) return rc;
  if (n_new < 1) return 0;
  int d = p->out_dim, k = knn_count(p, n_ref);
  if (dim < 1 || ref_ld < dim || new_ld < dim) return embr_error(EMBR_EINVAL, "t-SNE transform: bad dimension");
  struct { const float *x; int64_t n, ld, cols; const char *what; } in[3] = {
      {ref_x, n_ref, ref_ld, dim, "reference vectors"}, {new_x, n_new, new_ld, dim, "new vectors"}, {ref_y, n_ref, d, d, "reference map"}};
  for (int t = 0; t < 3; t++)
    for (int64_t i = 0; i < in[t].n; i++)
      for (int64_t j = 0; j < in[t].cols; j++)
        if (!isfinite(in[t].x[i * in[t].ld + j]))
          return embr_error(EMBR_EVALUE, "t-SNE transform: %s: row %lld, column %lld is not finite", in[t].what,
                            (long long)i, (long long)j);
  int64_t *nbr = embr_alloc(sizeof(int64_t) * (size_t)n_new * (size_t)k);
  float *dd = embr_alloc(sizeof(float) * (size_t)n_new * (size_t)k);
  double *pc = embr_alloc(sizeof(double) * (size_t)n_new * (size_t)k);
  double *refy = embr_alloc(sizeof(double) * (size_t)n_ref * (size_t)d);
  tsne_bh *tree = NULL;
  rc = nbr && dd && pc && refy ? 0 : embr_error(EMBR_ENOMEM, "t-SNE transform: out of memory");
  if (!rc) {
    embr_knn_params kp = embr_knn_params_default();
    kp.n_threads = p->n_threads;
    rc = embr_knn(p->metric, ref_x, n_ref, ref_ld, new_x, n_new, new_ld, dim, k, dd, nbr, &kp);
  }
  if (!rc) {
    for (int64_t i = 0; i < n_ref * d; i++) refy[i] = ref_y[i];
    rc = embr__tsne_bh_build(&tree, refy, n_ref, d);
  }
  if (!rc) {
#pragma omp parallel for num_threads(embr_threads_resolve(p->n_threads)) schedule(dynamic, 16)
    for (int64_t i = 0; i < n_new; i++) {
      int64_t *nb = nbr + i * k;
      float *di = dd + i * k;
      for (int t = 0; t < k; t++)
        if (p->metric == EMBR_METRIC_COSINE) di[t] = 1.0f - di[t];
        else if (p->metric == EMBR_METRIC_IP) di[t] = -di[t];
      /* conditional p_j|i over the reference neighbours */
      double *pi = pc + i * k;
      embr__tsne_calibrate_row(nb, di, k, p->perplexity, pi);
      /* start at the median of the neighbours' positions (robust to a stray neighbour) */
      double pos[3], tmp[512];
      int kk = k < 512 ? k : 512;
      for (int c = 0; c < d; c++) {
        int m = 0;
        for (int t = 0; t < kk; t++)
          if (nb[t] >= 0) tmp[m++] = refy[nb[t] * d + c];
        qsort(tmp, (size_t)m, sizeof(double), cmp_double);
        pos[c] = m ? tmp[m / 2] : 0;
      }
      /* gradient descent of this point alone against the fixed map (per-point normaliser) */
      double upd[3] = {0, 0, 0}, gain[3] = {1, 1, 1};
      for (int it = 0; it < 250; it++) {
        double att[3] = {0, 0, 0}, rep[3] = {0, 0, 0};
        for (int t = 0; t < k; t++) {
          if (nb[t] < 0) continue;
          double diff[3], d2 = 0;
          for (int c = 0; c < d; c++) {
            diff[c] = pos[c] - refy[nb[t] * d + c];
            d2 += diff[c] * diff[c];
          }
          double w = 1.0 / (1.0 + d2);
          for (int c = 0; c < d; c++) att[c] += pi[t] * w * diff[c];
        }
        double z = embr__tsne_bh_point(tree, pos, -1, p->theta, rep);
        double mom = it < 100 ? 0.5 : 0.8;
        for (int c = 0; c < d; c++) {
          double g = 4 * (att[c] - rep[c] / z);
          gain[c] = (g > 0) != (upd[c] > 0) ? gain[c] + 0.2 : fmax(gain[c] * 0.8, 0.01);
          upd[c] = mom * upd[c] - 1.0 * gain[c] * g;
          if (upd[c] > p->max_step) upd[c] = p->max_step;
          if (upd[c] < -p->max_step) upd[c] = -p->max_step;
          pos[c] += upd[c];
        }
      }
      for (int c = 0; c < d; c++) new_y[i * d + c] = (float)pos[c];
    }
  }
  embr__tsne_bh_free(tree);
  embr_free(nbr);
  embr_free(dd);
  embr_free(pc);
  embr_free(refy);
  return rc;
}
