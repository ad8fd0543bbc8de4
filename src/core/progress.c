/* Throttled progress reporting for long operations. */
#include "embr/core.h"

#include <time.h>

double embr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void embr_progress_begin(embr_progress_state *st, const embr_progress *p, uint64_t total) {
  st->p = (p && p->fn) ? p : NULL;
  st->total = total;
  st->t_start = st->t_last = embr_now();
  st->canceled = 0;
}

int embr_progress_update(embr_progress_state *st, uint64_t done, const char *detail, int force) {
  if (!st->p || st->canceled) return st->canceled;
  double now = embr_now();
  double interval = st->p->min_interval > 0 ? st->p->min_interval : 0.2;
  if (!force && now - st->t_last < interval) return 0;
  st->t_last = now;
  double elapsed = now - st->t_start;
  double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
  if (st->p->fn(st->p->user, done, st->total, rate, detail)) st->canceled = 1;
  return st->canceled;
}
