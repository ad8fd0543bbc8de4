/* Evaluation protocols for embeddings with class labels: face-verification style pair accuracy
 * (10-fold, best threshold per fold, as in the LFW protocol), ROC AUC, TAR at a given FAR, and
 * identification (rank-1, recall@k) with a gallery/probe split.
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

#ifdef __cplusplus
}
#endif
#endif
