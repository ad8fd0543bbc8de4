/* embr index: one API over exact (flat), graph (HNSW) and inverted-file (IVF-Flat, IVF-PQ) vector
 * indexes, made from a factory string:
 *
 *   "flat"                                  exact search (brute force, sgemm-fused top-k)
 *   "hnsw:M=32,efc=200,ef=64"               hierarchical navigable small world graph
 *   "ivfflat:nlist=1024,nprobe=16"          k-means cells, vectors stored as they are
 *   "ivfpq:nlist=1024,m=16,nprobe=16,refine=0"
 *                                           k-means cells, residuals product-quantised to m
 *                                           bytes; refine=R re-ranks the best R*k exactly
 *                                           (keeps the raw vectors)
 *
 * Items carry int64 ids chosen by the caller (or 0, 1, 2... when none are given). Search results
 * are (distance, id) pairs with the metric semantics of embr/vec.h, best first, padded with
 * (worst, -1). Cosine indexes store normalised vectors and search by inner product.
 *
 * Thread-safety: concurrent searches on one index are safe; add, remove, train and save must not
 * run concurrently with each other or with searches. */
#ifndef EMBR_INDEX_H
#define EMBR_INDEX_H

#include "embr/vec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embr_index embr_index;

/* Parses the spec and creates an empty index of `dim`-dimensional vectors (dim >= 1) in *out,
 * which the caller frees with embr_index_free. Unknown kinds or keys, and out-of-range values,
 * are EMBR_EINVAL with a message naming them; EMBR_ENOMEM. *out is NULL on failure. */
EMBR_API embr_status embr_index_create(embr_index **out, const char *spec, int64_t dim, embr_metric metric);
EMBR_API void embr_index_free(embr_index *ix); /* NULL is a no-op */

/* IVF indexes learn their cells (and codebooks) from a sample; the others need no training
 * (is_trained is 1 for them, train a no-op). add() on an untrained IVF index trains on the first
 * batch when it has at least nlist vectors (39 x nlist or more give well-shaped cells), and is
 * EMBR_EINVAL otherwise. train reads n rows of x (dim floats each, row i at x + i*ld, ld >= dim;
 * x is not kept). Errors: EMBR_EINVAL (bad sizes, too few rows), EMBR_EVALUE (NaN/Inf, naming
 * the row and column), EMBR_EUNSUPPORTED (an index loaded with EMBR_LOAD_MMAP), EMBR_ENOMEM,
 * EMBR_ECANCELED (progress, reported in k-means iterations). Not concurrent with anything else
 * on the index. */
EMBR_API int embr_index_is_trained(const embr_index *ix);
EMBR_API embr_status embr_index_train(embr_index *ix, const float *x, int64_t n, int64_t ld,
                                      const embr_progress *progress);

/* Adds n vectors (row i at x + i*ld, ld >= dim; copied, x is not kept). ids: NULL (then they
 * continue from the largest id so far + 1) or n ids in [0, 2^62). An id repeated in the batch or
 * already present is EMBR_EINVAL and nothing of the batch is added; NaN/Inf is EMBR_EVALUE.
 * Other errors: EMBR_EUNSUPPORTED (memory-mapped index), EMBR_ENOMEM, EMBR_ECANCELED (progress,
 * reported in vectors added). After ENOMEM or ECANCELED part of the batch may be in the index.
 * Uses the threads set by embr_index_set_threads. Not concurrent with anything else on the index. */
EMBR_API embr_status embr_index_add(embr_index *ix, const float *x, int64_t n, int64_t ld,
                                    const int64_t *ids, const embr_progress *progress);

/* Threads used by train and add (0 or negative = all cores, the default). Not concurrent with
 * train or add. */
EMBR_API void embr_index_set_threads(embr_index *ix, int n_threads);

/* Removes items by id (n of them; unknown ids are skipped); *removed (optional) counts the ids
 * that were present. HNSW marks them deleted (they still route searches; later adds reuse their
 * slots). EMBR_EUNSUPPORTED on a memory-mapped index. Not concurrent with anything else. */
EMBR_API embr_status embr_index_remove(embr_index *ix, const int64_t *ids, int64_t n, int64_t *removed);

/* Which ids a search may return: a callback, a bitset over ids [0, bitset_bits), or both (an id
 * must pass both). Ids outside the bitset are refused. The callback returns non-zero to admit an
 * id; it may be called from several threads at once (one per query block) and must not call
 * back into the index. */
typedef int (*embr_id_filter_fn)(void *ctx, int64_t id);

typedef struct embr_search_params {
  int ef;                   /* HNSW: candidate list size (>= k; 0 = the index's default) */
  int nprobe;               /* IVF: cells visited (0 = the index's default) */
  int refine;               /* IVF-PQ: re-rank refine*k candidates exactly (-1 = index default) */
  int n_threads;            /* 0 = all cores (parallel over queries) */
  embr_id_filter_fn filter; /* NULL: no callback filter */
  void *filter_ctx;
  const uint8_t *bitset;    /* NULL: no bitset filter; bit i (LSB-first bytes) admits id i */
  int64_t bitset_bits;
} embr_search_params;

/* All zero (the index's defaults, all cores, no filter) except refine = -1. */
EMBR_API embr_search_params embr_search_params_default(void);

/* The k nearest items of each of nq queries (dim floats each, row i at q + i*ldq, ldq >= dim).
 * Writes nq*k distances to dist and ids to ids (row-major, caller-allocated), best first (ties by
 * lower id for flat), padded with (embr_metric_worst, -1) when fewer than k items are admitted.
 * p may be NULL (defaults). Flat is exact; HNSW and IVF are approximate (ef, nprobe, refine trade
 * speed for recall). Errors: EMBR_EINVAL (k < 1, bad sizes, NULL outputs, negative bitset size),
 * EMBR_EVALUE (a NaN/Inf query), EMBR_ENOMEM; outputs are unspecified after an error.
 * Thread-safe: any number of searches may run at once on one index, with nothing else. */
EMBR_API embr_status embr_index_search(const embr_index *ix, const float *q, int64_t nq, int64_t ldq,
                                       int k, float *dist, int64_t *ids, const embr_search_params *p);

/* Saves everything needed to search and to keep adding (parameters included): a little-endian
 * file with a magic, a version, 64-byte aligned sections and a CRC-32, written atomically
 * (temporary file, fsync, rename). EMBR_EIO when it cannot be written (no partial file is left).
 * May run concurrently with searches, not with add/remove/train. */
EMBR_API embr_status embr_index_save(const embr_index *ix, const char *path);

enum {
  EMBR_LOAD_MMAP = 1 /* map the file read-only and search in place (no copy); add/remove refused */
};
/* Loads an index into *out (free with embr_index_free; NULL on failure). A damaged or truncated
 * file is EMBR_EFORMAT with a message, never a crash; a newer major version EMBR_EUNSUPPORTED; a
 * missing file EMBR_ENOTFOUND, an unreadable one EMBR_EIO.
 * Without flags the file is read into memory, so a file truncated or replaced by another process
 * meanwhile is an error. With EMBR_LOAD_MMAP the index searches the mapped file itself: if
 * another process truncates the file while the index lives, touching the lost pages raises
 * SIGBUS and kills the process (the library installs no signal handler). Map only files nothing
 * rewrites in place; embr's own writers never do (they write a new file and rename it). */
EMBR_API embr_status embr_index_load(embr_index **out, const char *path, int flags);
/* The same from memory (fuzzing); the buffer must stay valid while the index lives when flags
 * has EMBR_LOAD_MMAP. */
EMBR_API embr_status embr_index_load_mem(embr_index **out, const void *buf, size_t len, const char *name,
                                         int flags);

/* Accessors: safe to call concurrently with searches. */
EMBR_API int64_t embr_index_size(const embr_index *ix);  /* live items */
EMBR_API int64_t embr_index_dim(const embr_index *ix);
EMBR_API embr_metric embr_index_metric(const embr_index *ix);
/* "hnsw:M=32,efc=200,ef=64" and the like: the canonical spec with every parameter. The string
 * belongs to the index and lives as long as it. */
EMBR_API const char *embr_index_spec(const embr_index *ix);
/* Bytes of memory the index holds (vectors, codes, links, ids). */
EMBR_API int64_t embr_index_memory(const embr_index *ix);

/* ---- k-means -------------------------------------------------------------------------------------
 * Squared-Euclidean k-means: k-means++ seeding (D^2 sampling), then Lloyd iterations whose
 * assignment step is a batched exact 1-NN search (embr_knn, sgemm speed). A cluster left empty is
 * re-seeded by splitting the largest one: it takes that cluster's member farthest from its centre
 * (which, unlike a perturbed copy of the centre, never raises the inertia). Rows of fewer than 8
 * dimensions are zero-padded to 8 so they still run through sgemm. When n > k *
 * max_points_per_centroid, seeding and iterations run on a seeded random sample of that many
 * points; the final assignment (and the inertia) cover all n points. With one thread a fixed seed
 * gives identical bytes. */
typedef struct embr_kmeans_params {
  int iters;                       /* Lloyd iterations (25); 0 keeps the k-means++ centres */
  uint64_t seed;                   /* seeding and sampling */
  int n_threads;                   /* 0 = all cores */
  int64_t max_points_per_centroid; /* 256; 0 = train on every point */
  embr_progress progress;          /* reported in iterations; may cancel */
} embr_kmeans_params;

/* iters 25, seed 1234, max_points_per_centroid 256, n_threads 0, no progress. */
EMBR_API embr_kmeans_params embr_kmeans_params_default(void);

/* Clusters n rows of x (leading dimension ld >= dim) into k centres written to `centroids`
 * (k x dim, row-major). `assign` (n entries, may be NULL) receives each row's nearest centre and
 * `inertia` (may be NULL) the sum of squared distances of the rows to their centres, both with
 * respect to the returned centres: for a fixed seed, inertia never grows with `iters` (without
 * sampling; up to float rounding). Errors: EMBR_EINVAL (k < 1, k > n, bad sizes), EMBR_EVALUE
 * (a non-finite value), EMBR_ENOMEM, EMBR_ECANCELED. Outputs are caller-allocated; x is only read.
 * Thread-safe (no shared state). */
EMBR_API embr_status embr_kmeans(const float *x, int64_t n, int64_t ld, int64_t dim, int64_t k,
                                 const embr_kmeans_params *p, float *centroids, int64_t *assign,
                                 double *inertia);

/* ---- recall ---------------------------------------------------------------------------------------
 * recall@k as ann-benchmarks and faiss report it: for each of nq queries, the number of distinct
 * ids among its first k returned ids (row q of `ids`, leading dimension ids_ld >= k, best first)
 * that occur among its true k nearest (the first k of row q of `truth`, leading dimension
 * truth_ld >= k), summed and divided by k * nq. A repeated id counts once and -1 padding (fewer
 * than k results) never counts, so a result list can score 1 only by holding all k true ids.
 * recall@1 with k = 1 is "1-recall@1": the fraction of queries whose first result is the true
 * nearest. Writes *recall in [0, 1] (0 when nq = 0). Pure function of its inputs, thread-safe.
 * Errors: EMBR_EINVAL (k < 1, nq < 0, a leading dimension below k, NULL pointers), EMBR_ENOMEM. */
EMBR_API embr_status embr_recall_at_k(const int64_t *ids, int64_t ids_ld, const int32_t *truth,
                                      int64_t truth_ld, int64_t nq, int k, double *recall);

#ifdef __cplusplus
}
#endif
#endif
