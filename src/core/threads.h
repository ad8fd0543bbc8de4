/* Internal: the guard around OpenBLAS's process-wide thread count (see src/core/threads.c for
 * the design). Every BLAS call in the library sits between embr__blas_enter and
 * embr__blas_leave, on the same thread. */
#ifndef EMBR_CORE_THREADS_H
#define EMBR_CORE_THREADS_H

/* Enters a section that calls BLAS wanting `width` OpenBLAS threads: 1 around a parallel region
 * whose threads each call BLAS (inside a parallel region any width means 1), n_threads around a
 * lone large product. May wait for sections of another width to end, so a section holds BLAS
 * work only: no callbacks, no locks, no parallel region whose threads enter the guard. */
void embr__blas_enter(int width);
void embr__blas_leave(void);

#endif
