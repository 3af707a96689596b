/* LoRA / QLoRA ops on the CPU:
 *   scale        x *= s
 *   mul          out = a * b
 *   matmul_nf4   out (N,OC) = inp (N,C) @ dequant(w)^T + bias
 *                dinp (N,C) += dout (N,OC) @ dequant(w)
 * The NF4 weight (OC,C) is dequantized TILE rows at a time into one shared
 * buffer (TILE x C floats; the threads dequantize its rows in parallel), then
 * each thread runs a single-threaded sgemm on its slice of the N rows against
 * the tile. The whole fp32 weight never exists. If the tile buffer cannot be
 * allocated, single rows are dequantized on the stack-sized fallback path. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include "backend/cpu/cpu_ops.h"
#include "quant/nf4.h"

enum { TILE = 128 };

void lma_cpu_scale(void *x_, float s, size_t n) {
    float *x = x_;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void lma_cpu_dropout(void *out_, const void *x_, float p, uint64_t seed, size_t n) {
    float *out = out_;
    const float *x = x_;
    uint32_t thr = lma_dropout_threshold(p);
    float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = lma_dropout_bits(seed, i) >= thr ? x[i] * keep : 0.0f;
}

static void rows_of(int N, int id, int nt, int *lo, int *hi) {
    *lo = (int)((long)N * id / nt);
    *hi = (int)((long)N * (id + 1) / nt);
}

/* fwd != 0: out[:, o0:o0+rows] = inp @ tile^T (+ bias); else dinp += dout[:, o0:o0+rows] @ tile */
static void tile_gemm(int fwd, float *y, const float *x, const float *tile, const float *bias, int o0, int rows,
                      int lo, int hi, int C, int OC) {
    if (hi <= lo) return;
    if (fwd) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, rows, C, 1.0f, x + (size_t)lo * C, C, tile, C,
                    0.0f, y + (size_t)lo * OC + o0, OC);
        if (bias)
            for (int n = lo; n < hi; n++)
                for (int o = 0; o < rows; o++) y[(size_t)n * OC + o0 + o] += bias[o0 + o];
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, C, rows, 1.0f, x + (size_t)lo * OC + o0, OC,
                    tile, C, 1.0f, y + (size_t)lo * C, C);
    }
}

static void nf4_matmul(int fwd, float *y, const float *x, const struct lma_nf4_tensor *w, const float *bias, int N,
                       int C, int OC) {
    float *tile = malloc((size_t)TILE * C * sizeof(float));
    int prev = lma_cpu_blas_enter();
    if (!tile) { /* fallback: one row at a time, serial */
        float *row = malloc((size_t)C * sizeof(float));
        if (row) {
            for (int o = 0; o < OC; o++) {
                lma_nf4_dequantize(w, (int64_t)o * C, C, row);
                tile_gemm(fwd, y, x, row, bias, o, 1, 0, N, C, OC);
            }
        }
        free(row);
        lma_cpu_blas_leave(prev);
        return;
    }
    int big = (double)N * C * OC > 1e6;
#pragma omp parallel if (big)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num(), lo, hi;
        rows_of(N, id, nt, &lo, &hi);
        for (int o0 = 0; o0 < OC; o0 += TILE) {
            int rows = OC - o0 < TILE ? OC - o0 : TILE;
#pragma omp for schedule(static)
            for (int r = 0; r < rows; r++) lma_nf4_dequantize(w, (int64_t)(o0 + r) * C, C, tile + (size_t)r * C);
            tile_gemm(fwd, y, x, tile, bias, o0, rows, lo, hi, C, OC);
#pragma omp barrier
        }
    }
    lma_cpu_blas_leave(prev);
    free(tile);
}

void lma_cpu_matmul_nf4_fwd(void *out_, const void *inp_, const struct lma_nf4_tensor *w, const void *bias_, int N,
                            int C, int OC) {
    float *out = out_;
    const float *inp = inp_, *bias = bias_;
    nf4_matmul(1, out, inp, w, bias, N, C, OC);
}

void lma_cpu_matmul_nf4_bwd(void *dinp_, const void *dout_, const struct lma_nf4_tensor *w, int N, int C, int OC) {
    float *dinp = dinp_;
    const float *dout = dout_;
    if (dinp) nf4_matmul(0, dinp, dout, w, NULL, N, C, OC);
}
