/* Matmul on OpenBLAS (row-major), split across the OpenMP threads by us:
 *   forward   out (N,OC)  = inp (N,C) @ w (OC,C)^T + bias     sgemm(N,T), beta 0
 *             out (N,OC) += inp (N,C) @ w (OC,C)^T            sgemm(N,T), beta 1 (fwd_add)
 *   backward  dinp (N,C) += dout (N,OC) @ w (OC,C)            sgemm(N,N), beta 1
 *             dw (OC,C)  += dout^T @ inp (N,C)                sgemm(T,N), beta 1
 *             dbias (OC) += column sums of dout
 *
 * Threading: every OpenMP thread runs a single-threaded sgemm on its slice of
 * rows (or of output columns when there are few rows). Debian's default
 * OpenBLAS is the pthreads build, whose worker threads busy-wait after each
 * call and then fight the OpenMP threads of the next op for the cores
 * (measured by bench/bench_ops.c: an OpenMP loop after an sgemm ran 10x slower
 * on 2 cores). So with a pthreads OpenBLAS the op sets OpenBLAS to one thread
 * for the duration of the call and restores the caller's setting after (a
 * process-wide setting: do not run ops from two host threads at once). The
 * OpenMP build of OpenBLAS runs single-threaded inside a parallel region by
 * itself; the serial build needs nothing.
 *
 * The "cpu-bf16" table (lma_backend_cpu_bf16) runs the same three products through
 * lma_cpu_gemm_bf16 (cpu_gemm_bf16.c: bf16 operands, fp32 sums) where every dimension is at
 * least BF16_MIN (LoRA's rank-r products and single-row decode stay in sgemm). */
#include "backend/cpu/cpu_ops.h"
#include <string.h>
#include "backend/cpu/cpu_sizes.h"
#include <cblas.h>
#include <omp.h>

enum { MIN_ROWS = 32, /* rows per thread below which we split columns */
       BF16_MIN = LMA_CPU_BF16_MIN };

int lma_cpu_blas_enter(void) {
    if (openblas_get_parallel() != 1) return 0;
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}

void lma_cpu_blas_leave(int prev) {
    if (prev > 1) openblas_set_num_threads(prev);
}

/* [lo, hi) of n for thread i of nt, in multiples of `align` */
static void slice(int n, int i, int nt, int align, int *lo, int *hi) {
    int units = (n + align - 1) / align;
    int a = (int)((long)units * i / nt), b = (int)((long)units * (i + 1) / nt);
    *lo = a * align < n ? a * align : n;
    *hi = b * align < n ? b * align : n;
}

/* out = inp @ w^T (+ bias) (+ out: beta 1) */
static void matmul_fwd(void *out_, const void *inp_, const void *w_, const void *bias_, float beta, int N, int C,
                       int OC) {
    float *out = out_;
    const float *inp = inp_, *w = w_, *bias = bias_;
    int prev = lma_cpu_blas_enter();
    int big = (double)N * C * OC > 1e6;
#pragma omp parallel if (big)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num(), lo, hi;
        if (N >= MIN_ROWS * nt) {
            slice(N, id, nt, 8, &lo, &hi);
            if (hi > lo)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, OC, C, 1.0f, inp + (size_t)lo * C, C,
                            w, C, beta, out + (size_t)lo * OC, OC);
        } else {
            slice(OC, id, nt, 16, &lo, &hi);
            if (hi > lo)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, hi - lo, C, 1.0f, inp, C, w + (size_t)lo * C,
                            C, beta, out + lo, OC);
        }
        if (bias) {
#pragma omp barrier /* every thread's sgemm slice is written before any row gets its bias */
#pragma omp for schedule(static)
            for (int n = 0; n < N; n++) {
                float *o = out + (size_t)n * OC;
#pragma omp simd
                for (int j = 0; j < OC; j++) o[j] += bias[j];
            }
        }
    }
    lma_cpu_blas_leave(prev);
}

void lma_cpu_matmul_fwd(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC) {
    matmul_fwd(out, inp, w, bias, 0.0f, N, C, OC);
}
void lma_cpu_matmul_fwd_add(void *out, const void *inp, const void *w, const void *res, int N, int C, int OC) {
    if (res != out) memcpy(out, res, (size_t)N * OC * sizeof(float));
    matmul_fwd(out, inp, w, NULL, 1.0f, N, C, OC);
}

static int bf16_shape(int N, int C, int OC) { return N >= BF16_MIN && C >= BF16_MIN && OC >= BF16_MIN; }

/* out (N,OC) = beta out + inp (N,C) w (OC,C)^T in bf16 products, then the bias */
static void matmul_fwd_bf16(void *out, const void *inp, const void *w, const void *bias, float beta, int N, int C,
                            int OC) {
    if (!bf16_shape(N, C, OC) || lma_cpu_gemm_bf16(N, OC, C, inp, C, 1, w, 1, C, out, OC, beta) != 0) {
        matmul_fwd(out, inp, w, bias, beta, N, C, OC);
        return;
    }
    if (!bias) return;
    float *o = out;
    const float *bs = bias;
#pragma omp parallel for schedule(static) if ((double)N * OC > 1e5)
    for (int n = 0; n < N; n++)
#pragma omp simd
        for (int j = 0; j < OC; j++) o[(size_t)n * OC + j] += bs[j];
}
void lma_cpu_matmul_fwd_bf16(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC) {
    matmul_fwd_bf16(out, inp, w, bias, 0.0f, N, C, OC);
}
void lma_cpu_matmul_fwd_add_bf16(void *out, const void *inp, const void *w, const void *res, int N, int C, int OC) {
    if (res != out) memcpy(out, res, (size_t)N * OC * sizeof(float));
    matmul_fwd_bf16(out, inp, w, NULL, 1.0f, N, C, OC);
}

/* dinp (N,C) += dout (N,OC) w (OC,C); dw (OC,C) += dout^T inp (N,C), bf16 products; dbias as
 * the fp32 op */
void lma_cpu_matmul_bwd_bf16(void *dinp, float *dw, float *dbias, const void *dout, const void *inp, const void *w,
                             int N, int C, int OC) {
    if (bf16_shape(N, C, OC)) {
        if (dinp && lma_cpu_gemm_bf16(N, C, OC, dout, OC, 1, w, C, 1, dinp, C, 1.0f) == 0) dinp = NULL;
        if (dw && lma_cpu_gemm_bf16(OC, C, N, dout, 1, OC, inp, C, 1, dw, C, 1.0f) == 0) dw = NULL;
    }
    lma_cpu_matmul_bwd(dinp, dw, dbias, dout, inp, w, N, C, OC); /* what is left (all of it if no scratch) */
}

void lma_cpu_matmul_bwd(void *dinp_, float *dw, float *dbias, const void *dout_, const void *inp_,
                        const void *w_, int N, int C, int OC) {
    float *dinp = dinp_;
    const float *dout = dout_, *inp = inp_, *w = w_;
    if (!dinp && !dw && !dbias) return;
    int prev = lma_cpu_blas_enter();
    int big = (double)N * C * OC > 1e6;
#pragma omp parallel if (big)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num(), lo, hi;
        if (dinp) {
            if (N >= MIN_ROWS * nt) {
                slice(N, id, nt, 8, &lo, &hi);
                if (hi > lo)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, C, OC, 1.0f,
                                dout + (size_t)lo * OC, OC, w, C, 1.0f, dinp + (size_t)lo * C, C);
            } else {
                slice(C, id, nt, 16, &lo, &hi);
                if (hi > lo)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hi - lo, OC, 1.0f, dout, OC, w + lo, C,
                                1.0f, dinp + lo, C);
            }
        }
        /* dw and dbias: each thread owns a range of output channels */
        slice(OC, id, nt, 16, &lo, &hi);
        if (dw && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, C, N, 1.0f, dout + lo, OC, inp, C, 1.0f,
                        dw + (size_t)lo * C, C);
        if (dbias) {
            enum { CH = 64 };
            for (int o0 = lo; o0 < hi; o0 += CH) {
                int o1 = o0 + CH < hi ? o0 + CH : hi;
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
    lma_cpu_blas_leave(prev);
}
