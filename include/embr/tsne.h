/* embr tsne: t-distributed stochastic neighbour embedding (van der Maaten & Hinton 2008) of any
 * set of vectors into 2-D or 3-D, and PCA.
 *
 * Input affinities: each point's k = 3 x perplexity nearest neighbours (exact, or approximate for
 * large N), a Gaussian kernel whose width is found per point by bisection so that the conditional
 * distribution has the requested perplexity, then symmetrised: P = (P_j|i + P_i|j) / 2N, sparse.
 * Gradient: exact O(N^2), Barnes-Hut (van der Maaten 2014) or FFT-accelerated interpolation
 * (Linderman et al. 2019, "FIt-SNE"). Optimisation: PCA initialisation scaled to std 1e-4, early
 * exaggeration, momentum, per-coordinate gains, step clipping; learning rate N/12 by default
 * (for the gradient written without the factor 4, as bhtsne, FIt-SNE and openTSNE write it).
 *
 * Inputs are only read (row i of x at x + i*ld, ld >= dim); outputs are caller-allocated unless
 * said otherwise. Every function is thread-safe (no shared state) and uses n_threads threads.
 * A bad parameter is EMBR_EINVAL naming it (EMBR_EUNSUPPORTED for FFT in 3-D), a NaN/Inf input
 * EMBR_EVALUE naming the row, a problem too large for memory EMBR_ENOMEM; a progress callback
 * that asks to stop gives EMBR_ECANCELED. */
#ifndef EMBR_TSNE_H
#define EMBR_TSNE_H

#include "embr/vec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- PCA ------------------------------------------------------------------------------------
 * Projects n rows of dimension dim onto their first k principal components (centred data, the
 * eigenvectors of the covariance by LAPACK's ssyevr). out: n x k, row-major. Each component's
 * sign is fixed so that its largest-magnitude coefficient is positive (deterministic output).
 * variance (optional, k entries) receives the variance along each component. Needs n >= 2 and
 * 1 <= k <= dim (EMBR_EINVAL); dim above 20000 is EMBR_EUNSUPPORTED (covariance method). */
EMBR_API embr_status embr_pca(const float *x, int64_t n, int64_t ld, int64_t dim, int k, float *out,
                              double *variance, int n_threads);

/* ---- t-SNE ------------------------------------------------------------------------------------ */
typedef enum embr_tsne_method {
  EMBR_TSNE_AUTO = 0,  /* exact up to 1,000 points; Barnes-Hut up to 2,000 (and in 3-D); FFT
                          above (2-D) */
  EMBR_TSNE_EXACT = 1,
  EMBR_TSNE_BH = 2,
  EMBR_TSNE_FFT = 3    /* 2-D only */
} embr_tsne_method;

typedef enum embr_tsne_init {
  EMBR_TSNE_INIT_PCA = 0,    /* first principal components, scaled to std 1e-4 */
  EMBR_TSNE_INIT_RANDOM = 1  /* N(0, 1e-4^2) */
} embr_tsne_init;

typedef struct embr_tsne_params {
  int out_dim;               /* 2 or 3 [2] */
  double perplexity;         /* [30] */
  int iters;                 /* total iterations, including early exaggeration [1000] */
  double exaggeration;       /* early exaggeration factor [12] */
  int exaggeration_iters;    /* [250] */
  double learning_rate;      /* 0 = auto: max(N / 12, 50) [0] */
  double momentum;           /* during early exaggeration [0.5] */
  double final_momentum;     /* afterwards [0.8] */
  double max_step;           /* a point moves at most this far per iteration [5] */
  embr_tsne_method method;   /* [AUTO] */
  double theta;              /* Barnes-Hut opening angle [0.5] */
  int fft_points;            /* FFT: interpolation points per box and axis [5] */
  int fft_min_boxes;         /* FFT: at least this many boxes per axis [8] */
  double fft_box_size;       /* FFT: box side in map units [1.125] */
  embr_tsne_init init;       /* [PCA] */
  int pca_dims;              /* reduce the input to this many dims first; 0 = never,
                                -1 = auto (50 when dim > 100) [-1] */
  embr_metric metric;        /* input distances: l2 (Euclidean), cosine, ip, l1 [L2] */
  int exact_knn_max;         /* exact neighbours up to this many points, approximate above
                                [200000] */
  uint64_t seed;             /* [1] */
  int n_threads;             /* 0 = all cores [0] */
  int kl_every;              /* report KL every this many iterations (0 = never) [50] */
  embr_progress progress;    /* iterations; detail carries the KL divergence when computed */
} embr_tsne_params;

EMBR_API embr_tsne_params embr_tsne_params_default(void); /* the [defaults] above */

typedef struct embr_tsne_stats {
  double kl;              /* KL(P || Q) of the final map (Q's normaliser as the gradient method
                             approximates it) */
  double seconds_affinities, seconds_optimize;
  int method;             /* the embr_tsne_method that ran */
  int64_t nnz;            /* non-zeros of P */
} embr_tsne_stats;

/* Embeds n rows of x (dim columns, leading dimension ld) into y (n x out_dim, row-major).
 * Refuses up front (EMBR_EINVAL / EMBR_ENOMEM with a message) what cannot work: n <= 3 x
 * perplexity, non-finite values, the exact method on a problem whose N^2 work or memory is out of
 * reach. Identical input rows get identical affinities and start together, so they end together
 * unless a third point's neighbour list is cut between them (ties at the k-th neighbour go to
 * the lower id), which can leave them a tiny distance apart. With n_threads = 1 and a fixed seed
 * the output is the same bytes from run to run. */
EMBR_API embr_status embr_tsne(const float *x, int64_t n, int64_t ld, int64_t dim,
                               const embr_tsne_params *p, float *y, embr_tsne_stats *stats);

/* Sparse symmetric affinities in CSR form (row i: col[row[i] .. row[i+1]), values sum to 1). */
typedef struct embr_affinities {
  int64_t n;
  int64_t *row; /* n + 1 */
  int32_t *col;
  float *val;
} embr_affinities;

/* Frees the three arrays (allocated by the embr_tsne_affinities* functions) and zeroes *a; NULL
 * is a no-op. */
EMBR_API void embr_affinities_free(embr_affinities *a);

/* P from data (the first stage of embr_tsne; PCA as in params) into *out (overwritten; free with
 * embr_affinities_free). More than 2^31 points is EMBR_EUNSUPPORTED. */
EMBR_API embr_status embr_tsne_affinities(const float *x, int64_t n, int64_t ld, int64_t dim,
                                          const embr_tsne_params *p, embr_affinities *out);

/* P from a precomputed dissimilarity matrix: dense (n x n, ld) distances, of which each row's
 * k = 3 x perplexity smallest (excluding the diagonal) are calibrated as usual. ld >= n; a
 * negative or non-finite distance is EMBR_EVALUE. *out as above. */
EMBR_API embr_status embr_tsne_affinities_dense(const float *dist, int64_t n, int64_t ld,
                                                const embr_tsne_params *p, embr_affinities *out);

/* P from sparse neighbour lists: for each point i, kk neighbours nbr[i*kk + t] (-1 = none) at
 * distances d[i*kk + t]; calibrated to the perplexity (at most kk - 1 effective neighbours). An
 * id out of range or a non-finite distance is EMBR_EINVAL naming the entry. *out as above. */
EMBR_API embr_status embr_tsne_affinities_knn(const int64_t *nbr, const float *d, int64_t n, int kk,
                                              const embr_tsne_params *p, embr_affinities *out);

/* P from precomputed sparse distances: nnz rows of (i, j, distance) (leading dimension ld >= 3,
 * as embr_triplets_read returns them). i and j are point numbers (exact integers 0..2^24-1), the
 * points are 0..max+1, and row (i, j, d) makes j a neighbour of i at distance d (give both
 * directions, or rely on the symmetrisation of P); rows with i == j are ignored. Calibrated as
 * embr_tsne_affinities_knn (at most deg(i) - 1 effective neighbours). Refused with a message:
 * non-integer or negative indices, negative or non-finite distances, more points than the rows
 * could name, and degrees so uneven (one point with most rows) that the padded lists would exceed
 * 16 x nnz entries. out->n is the number of points. Thread-safe. */
EMBR_API embr_status embr_tsne_affinities_sparse(const float *rows, int64_t nnz, int64_t ld,
                                                 const embr_tsne_params *p, embr_affinities *out);

/* Optimises a map for given affinities. y's contents are the start when init_given; otherwise the
 * start is random (N(0, 1e-4^2)) whatever params->init says, since a PCA start needs the data:
 * embr_tsne makes one. y holds P->n x out_dim floats. stats may be NULL. */
EMBR_API embr_status embr_tsne_optimize(const embr_affinities *P, const embr_tsne_params *p, float *y,
                                        int init_given, embr_tsne_stats *stats);

/* Exact KL(P || Q) of a map (P->n x out_dim, out_dim 2 or 3, finite), Q computed over all pairs
 * in O(N^2) (for evaluation), into *kl. */
EMBR_API embr_status embr_tsne_kl_exact(const embr_affinities *P, const float *y, int out_dim,
                                        int n_threads, double *kl);

/* Places new points into an existing map: each new point's neighbours among the reference
 * points (in input space, metric and perplexity from params), initialised at the median of its
 * neighbours' map positions, then optimised with the reference map held fixed. ref_y holds
 * n_ref x out_dim floats, new_y receives n_new x out_dim. */
EMBR_API embr_status embr_tsne_transform(const float *ref_x, int64_t n_ref, int64_t ref_ld,
                                         const float *ref_y, const float *new_x, int64_t n_new,
                                         int64_t new_ld, int64_t dim, const embr_tsne_params *p,
                                         float *new_y);

#ifdef __cplusplus
}
#endif
#endif
