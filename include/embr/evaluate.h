/* Evaluation protocols for embeddings with class labels: face-verification style pair accuracy
 * (10-fold, best threshold per fold, as in the LFW protocol), ROC AUC, TAR at a given FAR, and
 * identification (rank-1, recall@k) with a gallery/probe split; for image-text models, cross-modal
 * retrieval (recall@k and ranks both ways) and zero-shot classification; the weighted k-NN
 * classifier DINO is evaluated with.
 *
 * Embeddings are n x dim float32 rows (ld >= dim); scores are cosine similarities (rows are
 * normalised internally; a zero row scores 0 against everything). All functions are pure and
 * thread-safe; errors return an embr status with the detail in embr_last_error(): EMBR_EINVAL for
 * bad sizes or arguments, EMBR_ENOMEM. Inputs are only read; result structs are caller-owned. */
#ifndef EMBR_EVALUATE_H
#define EMBR_EVALUATE_H

#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embr_pairs {
  int64_t n;
  int64_t *a, *b;   /* row indices */
  uint8_t *same;    /* 1: same identity */
} embr_pairs;

/* All pairs i < j of the n rows (n*(n-1)/2 of them); *out allocated, free with embr_pairs_free. */
EMBR_API embr_status embr_pairs_all(const int32_t *labels, int64_t n, embr_pairs *out);
/* Reads a pairs file: one pair per line, "NAME_A NAME_B SAME" (whitespace separated, SAME 1/0 or
 * true/false in any case), names matched exactly against `names` (n of them, e.g. dataset item
 * names); a field starting with '#' comments out the rest of its line; blank lines skipped. Errors
 * name the file and line: EMBR_ENOTFOUND for an unknown name, EMBR_EFORMAT for a wrong field
 * count, a bad SAME, a name shared by several rows, a line over 64 KiB, or a file without pairs.
 * On failure *out is left empty. */
EMBR_API embr_status embr_pairs_read(const char *path, char *const *names, int64_t n, embr_pairs *out);
EMBR_API void embr_pairs_free(embr_pairs *p); /* frees the arrays, zeroes *p; NULL is a no-op */

typedef struct embr_verify_result {
  int64_t pairs, positives;
  double accuracy, accuracy_std; /* mean and population standard deviation over the folds */
  double threshold;              /* mean of the folds' chosen thresholds ("same" = score > t) */
  double auc;                    /* ROC AUC over all pairs (ties count 1/2) */
  double far, tar;               /* far as requested; tar: the largest share of positives accepted
                                    by a threshold whose false-accept rate is <= far */
} embr_verify_result;

/* Scores the pairs; `folds` (>= 2, <= pairs) contiguous folds after a seeded shuffle of the pairs
 * (fold sizes differ by at most one; the exact shuffle is documented in src/train/evaluate.c, so a
 * seed gives the same folds everywhere); in each, the threshold maximising accuracy on the other
 * folds (candidates: midpoints between consecutive distinct scores and one beyond each end; the
 * lowest on ties) is applied to it. Needs at least one positive and one negative pair. `far`: in
 * [0, 1], e.g. 1e-3. Cost O(P log P + folds * P); memory 16 bytes per pair. */
EMBR_API embr_status embr_eval_verify(const float *emb, int64_t n, int64_t dim, int64_t ld, const embr_pairs *pairs,
                                      int folds, double far, uint64_t seed, embr_verify_result *out);

#define EMBR_EVAL_MAX_K 8
typedef struct embr_identify_result {
  int64_t gallery, probes;
  int nk;
  int k[EMBR_EVAL_MAX_K];
  double recall[EMBR_EVAL_MAX_K]; /* share of probes whose identity is among the k nearest gallery rows */
  double rank1;                   /* = recall at k 1 */
} embr_identify_result;

/* Gallery/probe split: for every class, its first `gallery_per_class` rows (in row order) form the
 * gallery, the rest are probes (classes with no probes or no gallery rows contribute no probes;
 * their gallery rows still compete as distractors). Each probe ranks the gallery by cosine
 * similarity, ties to the lower row. ks: nk (1..EMBR_EVAL_MAX_K) values of k >= 1; rank1 is
 * filled whether or not 1 is among them. Fails when there are no probes. */
EMBR_API embr_status embr_eval_identify(const float *emb, int64_t n, int64_t dim, int64_t ld, const int32_t *labels,
                                        int gallery_per_class, const int *ks, int nk, embr_identify_result *out);

/* ---- cross-modal retrieval (image <-> text) ------------------------------------------------------
 * n_img image rows and n_txt caption rows of one embedding space; caption t describes image
 * txt_image[t] (as embr_captions gives it; an image may have several captions, or none). Scores
 * are cosine similarities through embr_distance_matrix (a zero row scores 0 against everything).
 *   text -> image: a caption ranks all images; its rank is the 1-based position of its image.
 *   image -> text: an image ranks all captions; its rank is the position of the best-placed of its
 *                  own captions (images without captions are left out).
 * Ties are pessimistic: a wrong item scoring exactly as high as the right one is ranked before
 * it (rank = 1 + the number of wrong items scoring >= the right one), so a collapsed model (all
 * rows equal) gets the worst ranks, never a perfect score by index order. Recall@k: share of
 * queries with rank <= k. Median: of the 1-based ranks (the mean of the two middle ones for an
 * even count, as numpy.median). Exact (brute force): O(n_img n_txt dim) time, scores computed in
 * blocks of at most ~16 MB. */
typedef struct embr_retrieval_result {
  int64_t images, texts; /* queries of each direction: images with >= 1 caption; all captions */
  int nk;
  int k[EMBR_EVAL_MAX_K];
  double t2i_recall[EMBR_EVAL_MAX_K], i2t_recall[EMBR_EVAL_MAX_K];
  double t2i_median_rank, t2i_mean_rank, i2t_median_rank, i2t_mean_rank;
} embr_retrieval_result;

/* img: n_img x dim (ld_img >= dim), txt: n_txt x dim (ld_txt >= dim), both finite; txt_image:
 * n_txt image indices in [0, n_img). ks: nk (1..EMBR_EVAL_MAX_K) cut-offs >= 1, e.g. {1, 5, 10}.
 * t2i_rank (n_txt) and i2t_rank (n_img; -1 for an image without captions) receive each query's
 * rank when not NULL (caller-owned). Errors: EMBR_EINVAL (sizes, NULLs, an index out of range,
 * bad ks), EMBR_EVALUE (a non-finite value), EMBR_ENOMEM. Thread-safe; uses all cores. */
EMBR_API embr_status embr_eval_retrieval(const float *img, int64_t n_img, int64_t ld_img, const float *txt,
                                         int64_t n_txt, int64_t ld_txt, int64_t dim, const int64_t *txt_image,
                                         const int *ks, int nk, int64_t *t2i_rank, int64_t *i2t_rank,
                                         embr_retrieval_result *out);

/* ---- zero-shot classification (CLIP's recipe) ----------------------------------------------------
 * Class c's text rows are rows c*templates .. c*templates + templates-1 of txt (one per prompt
 * template, "a photo of a {c}."...). Its classifier row is the mean of those rows after each is
 * L2-normalised, normalised again (a zero row stays zero and scores 0). */

/* Writes the classes x dim classifier (unit rows, leading dimension dim) into `weights`
 * (caller-owned, classes*dim floats). txt: classes*templates rows of dim floats (ld >= dim).
 * Errors: EMBR_EINVAL, EMBR_EVALUE (non-finite), EMBR_ENOMEM. Thread-safe. */
EMBR_API embr_status embr_zeroshot_weights(const float *txt, int64_t classes, int64_t templates, int64_t dim,
                                           int64_t ld, float *weights);
/* For each of n image rows (ld >= dim), the k best classes by cosine similarity with the
 * classifier rows (classes x dim, leading dimension dim, e.g. from embr_zeroshot_weights): writes
 * n*k class indices and scores, best first, ties to the lower class, padded with (-1, -inf) when
 * k > classes. The scores are cosines; CLIP's logits are 100 times them (same order). Errors:
 * EMBR_EINVAL (sizes, k < 1), EMBR_EVALUE, EMBR_ENOMEM. Thread-safe; uses all cores. */
EMBR_API embr_status embr_zeroshot_classify(const float *img, int64_t n, int64_t ld, const float *weights,
                                            int64_t classes, int64_t dim, int k, int32_t *top_class,
                                            float *top_score);
/* Top-`at` accuracy of n predictions of k classes each (as embr_zeroshot_classify writes them):
 * the share of rows whose label is among their first `at` classes (1 <= at <= k). Labels < 0 are
 * EMBR_EINVAL. */
EMBR_API embr_status embr_zeroshot_accuracy(const int32_t *top_class, int64_t n, int k, const int32_t *labels,
                                            int at, double *accuracy);

/* ---- weighted k-NN classification (DINO's evaluation) --------------------------------------------
 * The classifier of DINO's eval_knn.py: rows are L2-normalised (a zero row stays zero and scores 0);
 * each test row takes its k most similar train rows by cosine similarity (ties to the lower row, as
 * embr_knn), each neighbour votes for its label with weight exp(similarity / temperature), and the
 * classes are ranked by their vote sums (ties to the lower label). top-1: the best class is the
 * test row's label; top-5: the label is among the first five. Only classes with a vote are
 * ranked: a label no neighbour carries never counts as found (DINO's torch.sort would put such
 * classes, with sum 0, in an unspecified order behind the voted ones). DINO: k = 20,
 * temperature = 0.07. Exact: embr_knn (sgemm blocks), O(n_train n_test dim). */
typedef struct embr_knn_eval_result {
  int64_t train, test; /* memory rows, queries */
  int k;               /* neighbours used: min(k, train) */
  int classes;         /* distinct train labels */
  double temperature;
  double top1, top5;   /* fractions of the test rows, 0..1 */
} embr_knn_eval_result;

/* train: n_train x dim (ld_train >= dim) with labels train_labels; test: n_test x dim (ld_test >=
 * dim) with test_labels; labels >= 0 (any values: they are only compared). k >= 1, temperature
 * finite and >= 0.01 (so exp(-1 / t) cannot underflow and silence a vote). pred, when not NULL, receives n_test x 5 labels, the ranking's first five per
 * test row (-1 past the voted classes). n_threads: 0 = all cores. Errors: EMBR_EINVAL (sizes,
 * NULLs, k, temperature, a negative label), EMBR_EVALUE (a non-finite value), EMBR_ENOMEM.
 * Thread-safe. */
EMBR_API embr_status embr_eval_knn(const float *train, int64_t n_train, int64_t ld_train, const int32_t *train_labels,
                                   const float *test, int64_t n_test, int64_t ld_test, const int32_t *test_labels,
                                   int64_t dim, int k, double temperature, int n_threads, int32_t *pred,
                                   embr_knn_eval_result *out);

#ifdef __cplusplus
}
#endif
#endif
