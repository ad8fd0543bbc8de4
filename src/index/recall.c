/* recall@k, the one definition every front end reports (ann-benchmarks' and faiss's): for each
 * query, how many of the k returned ids are among the true k nearest, each id counted once,
 * summed over queries and divided by k * nq. It lives here so `embr recall`, `embr index search`
 * and the server cannot drift apart (they once did: one counted a repeated id twice). */
#include "embr/index.h"

#include <stdlib.h>

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Hits of one query: distinct non-negative ids among ids[0..k) that occur in truth[0..k). Both
 * lists are sorted into scratch (2k entries) and merged, so a large k costs k log k, not k^2. */
static int64_t query_hits(const int64_t *ids, const int32_t *truth, int k, int64_t *scratch) {
  int64_t *r = scratch, *t = scratch + k;
  for (int i = 0; i < k; i++) {
    r[i] = ids[i];
    t[i] = truth[i];
  }
  qsort(r, (size_t)k, sizeof *r, cmp_i64);
  qsort(t, (size_t)k, sizeof *t, cmp_i64);
  int64_t hits = 0;
  for (int i = 0, j = 0; i < k && j < k;) {
    if (r[i] < 0 || (i > 0 && r[i] == r[i - 1])) i++; /* padding (-1) or a repeated id */
    else if (r[i] < t[j]) i++;
    else if (r[i] > t[j]) j++;
    else {
      hits++;
      i++;
    }
  }
  return hits;
}

embr_status embr_recall_at_k(const int64_t *ids, int64_t ids_ld, const int32_t *truth, int64_t truth_ld,
                             int64_t nq, int k, double *recall) {
  if (!recall) return embr_error(EMBR_EINVAL, "recall: no output given");
  *recall = 0;
  if (nq < 0 || k < 1 || ids_ld < k || truth_ld < k || (nq > 0 && (!ids || !truth)))
    return embr_error(EMBR_EINVAL, "recall: need k >= 1, nq >= 0 and rows of at least k ids (k=%d, %lld and %lld given)",
                      k, (long long)ids_ld, (long long)truth_ld);
  if (nq == 0) return EMBR_OK;
  int64_t *scratch = embr_alloc(sizeof(int64_t) * 2 * (size_t)k);
  if (!scratch) return embr_error(EMBR_ENOMEM, "recall: out of memory");
  int64_t hits = 0;
  for (int64_t q = 0; q < nq; q++) hits += query_hits(ids + q * ids_ld, truth + q * truth_ld, k, scratch);
  embr_free(scratch);
  *recall = (double)hits / ((double)nq * (double)k);
  return EMBR_OK;
}
