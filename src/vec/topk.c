/* Top-k selection by a threshold-filtered buffer: candidates that beat the current threshold are
 * appended; when the buffer (2k) fills it is cut back to the best k by quickselect and the
 * threshold tightens to the k-th score. Amortised O(1) per accepted candidate, one compare per
 * rejected one, and no heap sift in the hot path, which matters for k in the hundreds. */
#include "vec/kernels.h"

#include <math.h>
#include <stdlib.h>

/* Strict order on (score, id): smaller score first, then lower id. */
static inline int before(float sa, int64_t ia, float sb, int64_t ib) {
  return sa < sb || (sa == sb && ia < ib);
}

static inline void swap_at(embr_topk *t, int a, int b) {
  float s = t->score[a];
  t->score[a] = t->score[b];
  t->score[b] = s;
  int64_t i = t->id[a];
  t->id[a] = t->id[b];
  t->id[b] = i;
}

/* Rearranges [lo, hi] so that position kth holds the element that would be there if sorted,
 * smaller before it, larger after (Hoare-style quickselect, median-of-three pivot). */
static void select_kth(embr_topk *t, int lo, int hi, int kth) {
  while (hi > lo) {
    int mid = lo + (hi - lo) / 2;
    if (before(t->score[mid], t->id[mid], t->score[lo], t->id[lo])) swap_at(t, mid, lo);
    if (before(t->score[hi], t->id[hi], t->score[lo], t->id[lo])) swap_at(t, hi, lo);
    if (before(t->score[hi], t->id[hi], t->score[mid], t->id[mid])) swap_at(t, hi, mid);
    float ps = t->score[mid];
    int64_t pi = t->id[mid];
    int i = lo, j = hi;
    while (i <= j) {
      while (before(t->score[i], t->id[i], ps, pi)) i++;
      while (before(ps, pi, t->score[j], t->id[j])) j--;
      if (i <= j) {
        swap_at(t, i, j);
        i++;
        j--;
      }
    }
    if (kth <= j)
      hi = j;
    else if (kth >= i)
      lo = i;
    else
      return;
  }
}

/* Cuts the buffer to the best k and sets the threshold to the k-th. */
static void compact(embr_topk *t) {
  select_kth(t, 0, t->size - 1, t->k - 1);
  t->size = t->k;
  int w = 0;
  for (int i = 1; i < t->k; i++)
    if (before(t->score[w], t->id[w], t->score[i], t->id[i])) w = i;
  t->thresh = t->score[w];
  t->thresh_id = t->id[w];
}

embr_status embr_topk_init(embr_topk *t, int k) {
  t->score = NULL;
  t->id = NULL;
  if (k < 1) return embr_error(EMBR_EINVAL, "k must be at least 1 (got %d)", k);
  if (k > (1 << 28)) return embr_error(EMBR_EINVAL, "k=%d is too large", k);
  t->k = k;
  t->cap = 2 * k < 16 ? 16 : 2 * k;
  t->score = embr_alloc(sizeof(float) * (size_t)t->cap);
  t->id = embr_alloc(sizeof(int64_t) * (size_t)t->cap);
  if (!t->score || !t->id) {
    embr_topk_free(t);
    return EMBR_ENOMEM;
  }
  embr_topk_reset(t);
  return 0;
}

void embr_topk_reset(embr_topk *t) {
  t->size = 0;
  t->thresh = INFINITY;
  t->thresh_id = INT64_MAX;
}

void embr_topk_free(embr_topk *t) {
  if (!t) return;
  embr_free(t->score);
  embr_free(t->id);
  t->score = NULL;
  t->id = NULL;
  t->size = t->cap = t->k = 0;
}

void embr__topk_insert(embr_topk *t, float score, int64_t id) {
  if (t->k == 1) {
    /* Nearest-centre searches (k-means, IVF assignment) run millions of k=1 selections: keeping
     * just the best and tightening the threshold at once spares filling and cutting a buffer
     * of 16 for every query. The caller already checked that (score, id) beats the threshold. */
    t->score[0] = score;
    t->id[0] = id;
    t->size = 1;
    t->thresh = score;
    t->thresh_id = id;
    return;
  }
  if (t->size == t->cap) {
    compact(t);
    if (!before(score, id, t->thresh, t->thresh_id)) return;
  }
  t->score[t->size] = score;
  t->id[t->size] = id;
  t->size++;
}

void embr_topk_push(embr_topk *t, float score, int64_t id) {
  if (before(score, id, t->thresh, t->thresh_id)) embr__topk_insert(t, score, id);
}

void embr_topk_push_array(embr_topk *t, const float *scores, int64_t n, int64_t id0) {
  for (int64_t i = 0; i < n; i++) {
    /* Ids ascend within the array, so equal-to-threshold scores can only lose the tie unless the
     * array starts below the threshold id; the full comparison handles both. */
    if (scores[i] <= t->thresh) embr_topk_push(t, scores[i], id0 + i);
  }
}

/* Shell sort (Ciura gaps) of the final <= k entries on (score, id): in place, no allocation, and
 * fast enough for k in the thousands next to the scan that produced them. */
static void sort_entries(embr_topk *t, int n) {
  int gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
  for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
    int gap = gaps[g];
    for (int i = gap; i < n; i++) {
      float s = t->score[i];
      int64_t id = t->id[i];
      int j = i;
      while (j >= gap && before(s, id, t->score[j - gap], t->id[j - gap])) {
        t->score[j] = t->score[j - gap];
        t->id[j] = t->id[j - gap];
        j -= gap;
      }
      t->score[j] = s;
      t->id[j] = id;
    }
  }
}

void embr_topk_result(embr_topk *t, float *score, int64_t *id, float pad) {
  if (t->size > t->k) compact(t);
  sort_entries(t, t->size);
  for (int i = 0; i < t->size; i++) {
    score[i] = t->score[i];
    id[i] = t->id[i];
  }
  for (int i = t->size; i < t->k; i++) {
    score[i] = pad;
    id[i] = -1;
  }
}
