/* The single-threaded GEMM of the convolution kernels (internal; src/nn/sgemm.c). */
#ifndef EMBR_NN_SGEMM_H
#define EMBR_NN_SGEMM_H

#include <cblas.h>

/* C (m x n) = alpha op(A) op(B) + beta C, row-major, on the calling thread only: oneDNN's
 * dnnl_sgemm when built with oneDNN and EMBR_DNNL is not 0, else OpenBLAS's cblas_sgemm (the
 * reference; the caller holds OpenBLAS single-threaded, embr__blas_enter(1)). Results of the two
 * differ by float rounding only. */
void embr__nn_sgemm1(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);

#endif
