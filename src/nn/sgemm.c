/* The convolutions' GEMMs on oneDNN's sgemm when it is built in.
 *
 * Why: OpenBLAS picks its kernels from the environment (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE),
 * and machines that pin it to an older core type (Haswell: AVX2) run it at half the rate of the
 * CPU's AVX-512; oneDNN's jit sgemm picks its kernel from the CPU itself. Measured on the
 * benchmark machine (AMD Zen, AVX-512, OPENBLAS_CORETYPE=Haswell), one thread, ResNet-18's
 * convolution GEMMs: 100-110 GFLOP/s OpenBLAS against 200-225 oneDNN; with OpenBLAS left to
 * choose, 170-210 against the same 200-225. The engine's im2col and Winograd kernels stay as
 * they are; only the product changes, so cblas_sgemm (EMBR_DNNL=0) remains the reference the
 * tests compare with.
 *
 * Threads. The convolutions call this from inside their own parallel regions, one GEMM per
 * thread. oneDNN (OpenMP build) sizes its GEMM team by omp_get_max_threads() unless it runs
 * inside an active parallel region, and a region of one thread is not active: so the call
 * holds the calling task's thread count at 1 and restores it (an ICV of the calling task only:
 * other threads and the caller's later regions never see it). */
#include "nn/sgemm.h"

#include <omp.h>

#include "nn/dnnl.h"

#ifdef EMBR_HAVE_DNNL
#include <dnnl.h>
#endif

void embr__nn_sgemm1(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
#ifdef EMBR_HAVE_DNNL
  if (embr__dnnl_enabled()) {
    int saved = omp_get_max_threads();
    if (saved != 1) omp_set_num_threads(1);
    /* It checks its arguments and allocates its packing space before writing C: on failure
     * C is as it was and the reference GEMM below computes it. */
    dnnl_status_t st = dnnl_sgemm(ta == CblasTrans ? 'T' : 'N', tb == CblasTrans ? 'T' : 'N', m, n, k, alpha, A, lda,
                                  B, ldb, beta, C, ldc);
    if (saved != 1) omp_set_num_threads(saved);
    if (st == dnnl_success) return;
  }
#endif
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
