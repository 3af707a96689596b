/* Matmul on OpenBLAS (row-major):
 *   forward   out (N,OC)  = inp (N,C) @ w (OC,C)^T + bias     sgemm(N,T), beta 0
 *   backward  dinp (N,C) += dout (N,OC) @ w (OC,C)            sgemm(N,N), beta 1
 *             dw (OC,C)  += dout^T @ inp (N,C)                sgemm(T,N), beta 1
 *             dbias (OC) += column sums of dout               OpenMP over OC chunks */
#include "backend/cpu/cpu_ops.h"
#include <cblas.h>

void lma_cpu_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static) if ((size_t)N * OC > 32768)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
#pragma omp simd
            for (int j = 0; j < OC; j++) o[j] += bias[j];
        }
    }
}

void lma_cpu_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) {
        enum { CH = 64 };
        int nch = (OC + CH - 1) / CH;
#pragma omp parallel for schedule(static) if ((size_t)N * OC > 32768)
        for (int ch = 0; ch < nch; ch++) {
            int o0 = ch * CH, o1 = o0 + CH < OC ? o0 + CH : OC;
            float acc[CH] = {0};
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * OC;
#pragma omp simd
                for (int o = o0; o < o1; o++) acc[o - o0] += g[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
        }
    }
}
