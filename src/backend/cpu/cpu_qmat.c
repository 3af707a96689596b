/* Inference matmul against quantized weights kept in their GGUF blocks (quant/qdot.h):
 *   out (N,OC) = inp (N,C) @ W^T + bias,  W an lma_qmat (OC, C).
 * Two ways, by the number of rows N:
 *   N <  lma_cpu_qgemm_rows  (decode, batches, prompts up to 1023 tokens): each input row is quantized to
 *        8-bit blocks once, then the threads split W's rows and each runs the int8 dot
 *        kernel of the CPU (lma_qdot_best: AVX-512 VNNI, AVX2 or scalar) for every input row
 *        against a weight row while it is in L1: W is read once per call, 4.5-8.5 bits a weight;
 *   N >= lma_cpu_qgemm_rows  (large prefills): each thread dequantizes its share of W's rows, TILE
 *        at a time, into its own fp32 buffer and multiplies them with sgemm (fp32 activations:
 *        no activation quantization); the fp32 W never exists whole.
 * bench/bench_qmat.c measured the crossover (bench/RESULTS.md). An F32 lma_qmat (a tensor of a
 * type without a kernel, dequantized when loaded) is the plain fp32 matmul. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include "backend/cpu/cpu_ops.h"
#include "quant/ggml_quant.h"
#include "quant/qdot.h"

enum { TILE = 64, CHUNK = 16 };

/* measured (bench/RESULTS.md, CPU time per prompt token, SmolLM2 Q4_1, 1 thread): int8 11.3 ms vs
 * tiles 12.8 ms at 128 rows, 14.6 vs 18.2 at 512; tiles only for larger batches */
int lma_cpu_qgemm_rows = 1024;

static const lma_qdot_kernel *kernel(void) {
    static const lma_qdot_kernel *k;
    if (!k) k = lma_qdot_best(); /* idempotent: a race stores the same pointer */
    return k;
}

static void add_bias(float *out, const float *bias, int N, int OC) {
    if (!bias) return;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < OC; j++) out[(size_t)n * OC + j] += bias[j];
}

/* Each thread takes its share of W's rows, TILE at a time: dequantizes them into its own
 * buffer and multiplies all N input rows with them (sgemm): no barrier between tiles. */
static void tiles_sgemm(float *out, const float *inp, const lma_qmat *w, const float *bias, int N) {
    int C = w->cols, OC = w->rows, ntiles = (OC + TILE - 1) / TILE;
    int prev = lma_cpu_blas_enter();
#pragma omp parallel
    {
        float *tile = malloc((size_t)TILE * C * sizeof(float));
        int rows_max = tile ? TILE : 1;
        float *t = tile ? tile : malloc((size_t)C * sizeof(float)); /* no tile: one row at a time */
#pragma omp for schedule(static)
        for (int k = 0; k < ntiles; k++) {
            for (int o0 = k * TILE; t && o0 < (k + 1) * TILE && o0 < OC; o0 += rows_max) {
                int rows = OC - o0 < rows_max ? OC - o0 : rows_max;
                for (int r = 0; r < rows; r++) lma_qmat_row_f32(w, o0 + r, t + (size_t)r * C);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, rows, C, 1.0f, inp, C, t, C, 0.0f, out + o0,
                            OC);
                if (bias)
                    for (int n = 0; n < N; n++)
                        for (int j = 0; j < rows; j++) out[(size_t)n * OC + o0 + j] += bias[o0 + j];
            }
        }
        free(t);
    }
    lma_cpu_blas_leave(prev);
}

void lma_cpu_matmul_q_fwd(void *out_, const void *inp_, const lma_qmat *w, const void *bias_, int N) {
    float *out = out_;
    const float *inp = inp_, *bias = bias_;
    int C = w->cols, OC = w->rows;
    if (w->type == LMA_GGML_F32) { lma_cpu_matmul_fwd(out, inp, w->data, bias, N, C, OC); return; }
    if (N >= lma_cpu_qgemm_rows) { tiles_sgemm(out, inp, w, bias, N); return; }
    lma_qdot_fn dot = lma_qdot_for(kernel(), w->type);
    int nb = C / LMA_Q8_BLOCK;
    lma_q8_block *a = malloc((size_t)N * nb * sizeof *a);
    if (!a) { tiles_sgemm(out, inp, w, bias, N); return; }
    for (int n = 0; n < N; n++) lma_q8_quantize(inp + (size_t)n * C, C, a + (size_t)n * nb);
    int nchunks = (OC + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if ((double)OC * C > 65536)
    for (int c = 0; c < nchunks; c++) {
        int o0 = c * CHUNK, cnt = OC - o0 < CHUNK ? OC - o0 : CHUNK;
        for (int n = 0; n < N; n++) dot(w, o0, cnt, a + (size_t)n * nb, out + (size_t)n * OC + o0);
    }
    free(a);
    add_bias(out, bias, N, OC);
}
