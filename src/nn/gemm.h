/* The row-split GEMM of the nn ops (internal; defined in tokens.c beside the dense layer). */
#ifndef EMBR_NN_GEMM_H
#define EMBR_NN_GEMM_H

#include <cblas.h>

#include "nn/nn.h"

/* C (m x n) = op(A) op(B) + beta C (row-major), the m rows of C split over ctx's threads, each a
 * single-threaded GEMM: OpenBLAS's own pool and the ops' OpenMP threads would spin against each
 * other on the same cores. */
void embr__nn_gemm_rows(const nn_ctx *ctx, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float *A,
                        int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
