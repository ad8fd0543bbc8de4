/* Internal pieces of t-SNE: neighbour search, perplexity calibration, the three ways of computing
 * the repulsive forces, and the optimiser. */
#ifndef EMBR_TSNE_INTERNAL_H
#define EMBR_TSNE_INTERNAL_H

#include "embr/tsne.h"

/* Streams of the seed (embr_seed_split): the random start uses the seed itself. */
enum { EMBR__TSNE_STREAM_CELLS = 1 /* the approximate neighbour search's cells */ };

/* k nearest neighbours of every row among the rows themselves (self excluded): nbr and dist are
 * n x k. Distances are what the Gaussian kernel takes: squared Euclidean for L2, 1 - cos for
 * cosine, -q.b for IP (only differences within a row matter), Manhattan for L1. */
int embr__tsne_knn(const float *x, int64_t n, int64_t ld, int64_t dim, int k, embr_metric m,
                   int64_t exact_max, uint64_t seed, int n_threads, int64_t *nbr, float *dist);

/* One row: p[t] = p_{nbr[t]|i} at the perplexity (ids < 0 get 0). */
void embr__tsne_calibrate_row(const int64_t *nbr, const float *d, int k, double perplexity, double *p);

/* Calibrates each row's neighbour distances (n x k, -1 ids ignored) to the perplexity and
 * symmetrises into P. */
int embr__tsne_calibrate(const int64_t *nbr, const float *dist, int64_t n, int k,
                         double perplexity, int n_threads, embr_affinities *out);

/* Repulsion: rep[i] = sum_j w_ij^2 (y_i - y_j), w = 1 / (1 + |y_i - y_j|^2); returns
 * Z = sum_{i != j} w_ij. y and rep are n x d (d = 2 or 3), double. */
double embr__tsne_rep_exact(const double *y, int64_t n, int d, double *rep, int n_threads);
double embr__tsne_rep_bh(const double *y, int64_t n, int d, double theta, double *rep,
                         int n_threads);
/* A Barnes-Hut tree over fixed positions, queried point by point (the map of `transform`). */
typedef struct tsne_bh tsne_bh;
int embr__tsne_bh_build(tsne_bh **out, const double *y, int64_t n, int d);
void embr__tsne_bh_free(tsne_bh *t);
/* Adds the repulsion on pos to f and returns its sum of w; self = pos's index in the tree or -1. */
double embr__tsne_bh_point(const tsne_bh *t, const double *pos, int64_t self, double theta,
                           double *f);
/* 2-D only. */
typedef struct tsne_fft tsne_fft;
int embr__tsne_fft_create(tsne_fft **out, int points_per_box, int min_boxes, double box_size,
                          int n_threads);
/* The near / far split (see tsne_fft.c): Ka = 1 / (1 + a^2 + d^2), near kernels zero beyond r
 * (tapered from r1), far field on a coarse grid of boxes of coarse_box units with coarse_points
 * nodes per axis; r = 0 turns it off (full zero padding of the one grid). */
int embr__tsne_fft_split(tsne_fft *f, double a, double r1, double r, double coarse_box, int coarse_points);
void embr__tsne_fft_free(tsne_fft *f);
int embr__tsne_rep_fft(tsne_fft *f, const double *y, int64_t n, double *rep, double *z);
/* Seconds spent so far per phase (the EMBR_TSNE_PROFILE breakdown) and the padded grid (x, y). */
void embr__tsne_fft_times(const tsne_fft *f, double *interp, double *spread, double *fft, double *gather,
                          double *far, int *grid);

/* Attraction: att[i] = sum_j p_ij w_ij (y_i - y_j); with want_plogw, returns
 * sum_ij p_ij log w_ij (for KL; the logarithms cost more than the forces, so only when asked). */
double embr__tsne_attract(const embr_affinities *P, const double *y, int d, double *att,
                          int n_threads, int want_plogw);
/* The 2-D attraction of rows [i0, i1) with AVX2 + FMA (tsne_grad_avx2.c; only where the CPU has
 * them). */
void embr__tsne_attract_2d_avx2(const embr_affinities *P, const double *y, double *att, int64_t i0, int64_t i1);

#endif
