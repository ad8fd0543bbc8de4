/* Thread counts: 0 means every core the process may use. */
#include "embr/core.h"

#include <omp.h>

int embr_threads_available(void) {
  int n = omp_get_num_procs();
  int lim = omp_get_thread_limit();
  if (lim > 0 && lim < n) n = lim;
  return n > 0 ? n : 1;
}

int embr_threads_resolve(int n_threads) {
  if (n_threads <= 0) return embr_threads_available();
  return n_threads;
}
