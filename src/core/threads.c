/* The library's one thread scope.
 *
 * OpenMP: every parallel region names its team size with a num_threads(nt) clause, nt coming
 * from the call's n_threads through embr_threads_resolve. Nothing calls omp_set_num_threads, so
 * the process's OpenMP settings (OMP_NUM_THREADS, the caller's own omp_set_num_threads) are never
 * touched.
 *
 * OpenBLAS: Debian's OpenBLAS 0.3.21 (pthreads variant by default) has only one, process-wide
 * thread count (openblas_set_num_threads; no per-call or thread-local form exists in that
 * version). embr needs two settings of it: 1 while its own threads each run a GEMM (a search tile,
 * a convolution chunk: OpenBLAS's pool would oversubscribe the cores, and concurrent threaded
 * GEMMs serialise on OpenBLAS's level-3 lock), and n_threads for a lone large product called from
 * one thread (PCA, a linear layer, a distance matrix). This file is the only place that reads or
 * writes that count, through a "width" guard:
 *   - embr__blas_enter(w) / embr__blas_leave() bracket code that calls BLAS; w is the OpenBLAS
 *     thread count it wants (forced to 1 inside a parallel region: no nested parallelism).
 *   - Callers that want the same width share the guard (a count of holders); the first one in
 *     saves OpenBLAS's count and sets w (only if it differs), the last one out restores the saved
 *     count. A caller that wants another width waits until the holders have left; while it
 *     waits, new callers wait too, so a stream of searches cannot starve it.
 *   - Why wait rather than run at the width in force: OpenBLAS's results depend on its thread
 *     count (a 60 x 3000 x 32 product differs in the last bits between 1 and 2 threads), and a
 *     call's numbers must not depend on what else the process is doing.
 *   - Why it cannot deadlock: a guarded section holds BLAS work only, one tile or one product
 *     (no callbacks, no locks, no parallel region whose threads enter the guard), so every holder
 *     leaves without waiting for anyone. Nested use on one thread joins the outer section at its
 *     width without waiting, so a thread never waits for itself.
 * So concurrent library calls never race on the count, and once no library call is inside BLAS
 * the process's count is what it was before. While calls run, other BLAS users in the process see
 * the width the library set (a process-wide count cannot be scoped more narrowly), and a caller
 * that changes the count itself during a library call has that change undone when the call ends. */
#include "core/threads.h"

#include <omp.h>
#include <pthread.h>

#include "embr/core.h"

/* OpenBLAS's own functions (not in cblas.h). */
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

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

static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t blas_cv = PTHREAD_COND_INITIALIZER;
/* Guarded by blas_mu. */
static int holders;     /* threads inside a guarded section */
static int width;       /* OpenBLAS's count while holders > 0 */
static int saved;       /* OpenBLAS's count before the first holder came in */
static int switching;   /* callers waiting for a different width */
/* Per thread: guarded sections entered and not yet left. */
static _Thread_local int depth;

void embr__blas_enter(int w) {
  if (depth++ > 0) return; /* nested: run at the outer section's width */
  if (w < 1 || omp_in_parallel()) w = 1;
  pthread_mutex_lock(&blas_mu);
  int counted = 0;
  while (holders > 0 && (width != w || (switching > 0 && !counted))) {
    if (width != w && !counted) counted = 1, switching++;
    pthread_cond_wait(&blas_cv, &blas_mu);
  }
  if (counted) switching--;
  if (holders++ == 0) {
    saved = openblas_get_num_threads();
    width = w;
    if (saved != w) openblas_set_num_threads(w);
  }
  pthread_mutex_unlock(&blas_mu);
}

void embr__blas_leave(void) {
  if (--depth > 0) return;
  pthread_mutex_lock(&blas_mu);
  if (--holders == 0) {
    if (saved != width) openblas_set_num_threads(saved);
    pthread_cond_broadcast(&blas_cv);
  }
  pthread_mutex_unlock(&blas_mu);
}
