/* Per-op throughput of the CPU backend at the shapes of the CPU benchmark
 * model (stories15M: dim 288, 6 heads of 48, MLP 768, vocab 32000; batch 8 x 256).
 * Usage: bench_ops [--threads N] [--reps R]
 * Prints one line per op: ms per call, calls per training step, ms per step,
 * and GFLOP/s (matmuls, attention) or GB/s (memory-bound ops); then the
 * OpenBLAS build (threading model) and a check of OpenBLAS/OpenMP interplay:
 * an sgemm followed by an OpenMP loop, repeated, against each alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <omp.h>
#include "backend/backend.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/threads.h"

char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_parallel(void);

static float *rnd(size_t n, lma_rng *r, float sd) {
    float *p = lma_backend_cpu()->alloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "bench_ops: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = sd * (float)lma_rng_normal(r);
    return p;
}

static int reps = 5;
static double step_total;

/* times `stmt` (after one warm-up), prints a row */
#define BENCH(name, per_step, flops, bytes, stmt) do { \
    stmt; \
    double t0_ = lma_now(); \
    for (int r_ = 0; r_ < reps; r_++) { stmt; } \
    double ms_ = (lma_now() - t0_) / reps * 1000; \
    step_total += ms_ * (per_step); \
    printf("%-34s %9.3f ms %5d/step %9.1f ms/step", name, ms_, per_step, ms_ * (per_step)); \
    if (flops > 0) printf(" %8.1f GFLOP/s", (flops) / ms_ / 1e6); \
    if (bytes > 0) printf(" %8.1f GB/s", (bytes) / ms_ / 1e6); \
    printf("\n"); } while (0)

int main(int argc, char **argv) {
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: bench_ops [--threads N] [--reps R]\n"); return 2; }
    }
    lma_threads_set(threads);
    const lma_backend *be = lma_backend_cpu();
    const int B = 8, T = 256, N = B * T, C = 288, H = 768, V = 32000, NH = 6, HD = 48, L = 6;
    lma_rng r;
    lma_rng_seed(&r, 1);
    printf("OpenBLAS: %s (core %s, parallel %d = %s); threads %d\n", openblas_get_config(),
           openblas_get_corename(), openblas_get_parallel(),
           openblas_get_parallel() == 0 ? "serial" : openblas_get_parallel() == 1 ? "pthreads" : "OpenMP",
           lma_threads_get());

    float *x = rnd((size_t)N * H, &r, 1), *y = rnd((size_t)N * H, &r, 1), *z = rnd((size_t)N * H, &r, 1);
    float *wbig = rnd((size_t)V * C, &r, 0.02f), *dwbig = rnd((size_t)V * C, &r, 0.0f);
    float *w = rnd((size_t)H * C, &r, 0.05f), *dw = rnd((size_t)H * C, &r, 0);
    float *logits = rnd((size_t)N * V, &r, 1), *losses = rnd(N, &r, 0);
    float *rstd = rnd(N, &r, 0), *nw = rnd(C, &r, 1);
    int32_t *ids = malloc(N * sizeof *ids), *pos = malloc(N * sizeof *pos);
    for (int i = 0; i < N; i++) { ids[i] = (int32_t)lma_rng_below(&r, V); pos[i] = i % T; }
    float invf[24];
    for (int i = 0; i < HD / 2; i++) invf[i] = (float)(1.0 / pow(10000.0, 2.0 * i / HD));
    float *saved = be->alloc(be->attention_saved_floats(B, T, NH, HD) * sizeof(float));
    double f;

    f = 2.0 * N * C * C;
    BENCH("matmul_fwd N C->C (q,k,v,o)", 4 * L, f, 0, be->matmul_fwd(y, x, w, NULL, N, C, C));
    BENCH("matmul_bwd N C->C", 4 * L, 2 * f, 0, be->matmul_bwd(z, dw, NULL, y, x, w, N, C, C));
    f = 2.0 * N * C * H;
    BENCH("matmul_fwd N C->H (gate,up)", 2 * L, f, 0, be->matmul_fwd(y, x, w, NULL, N, C, H));
    BENCH("matmul_bwd N C->H", 2 * L, 2 * f, 0, be->matmul_bwd(z, dw, NULL, y, x, w, N, C, H));
    BENCH("matmul_fwd N H->C (down)", L, f, 0, be->matmul_fwd(y, x, w, NULL, N, H, C));
    BENCH("matmul_bwd N H->C", L, 2 * f, 0, be->matmul_bwd(z, dw, NULL, y, x, w, N, H, C));
    f = 2.0 * N * C * V;
    BENCH("matmul_fwd N C->V (lm head)", 1, f, 0, be->matmul_fwd(logits, x, wbig, NULL, N, C, V));
    BENCH("cross_entropy N V (+grad in place)", 1, 0, 2.0 * N * V * 4,
          be->cross_entropy(losses, logits, logits, ids, N, V, 1.0f / N));
    BENCH("matmul_bwd N C->V", 1, 2 * f, 0, be->matmul_bwd(z, dwbig, NULL, logits, x, wbig, N, C, V));
    f = 2.0 * B * NH * (T * (T + 1) / 2.0) * HD * 2;
    BENCH("attention_fwd", L, f, 0, be->attention_fwd(y, saved, x, y, z, NULL, B, T, NH, NH, HD, 0.144f));
    BENCH("attention_bwd", L, 2 * f, 0,
          be->attention_bwd(x, y, z, z, y, saved, x, y, z, NULL, B, T, NH, NH, HD, 0.144f));
    BENCH("rmsnorm_fwd", 2 * L + 1, 0, 2.0 * N * C * 4, be->rmsnorm_fwd(y, rstd, x, nw, N, C, 1e-5f));
    BENCH("rmsnorm_bwd", 2 * L + 1, 0, 3.0 * N * C * 4, be->rmsnorm_bwd(z, dw, y, x, nw, rstd, N, C));
    BENCH("rope_fwd (q and k)", 2 * L, 0, 2.0 * N * C * 4, be->rope_fwd(y, x, pos, invf, N, NH, HD));
    BENCH("rope_bwd", 2 * L, 0, 3.0 * N * C * 4, be->rope_bwd(y, x, pos, invf, N, NH, HD));
    BENCH("swiglu_fwd", L, 0, 3.0 * N * H * 4, be->swiglu_fwd(z, x, y, (size_t)N * H));
    BENCH("swiglu_bwd", L, 0, 7.0 * N * H * 4, be->swiglu_bwd(x, y, z, x, y, (size_t)N * H));
    BENCH("add (residual)", 2 * L, 0, 3.0 * N * C * 4, be->add(y, y, x, (size_t)N * C));
    BENCH("embedding_fwd", 1, 0, 2.0 * N * C * 4, be->embedding_fwd(y, ids, wbig, N, C));
    BENCH("embedding_bwd", 1, 0, 3.0 * N * C * 4, be->embedding_bwd(dwbig, y, ids, N, C));
    float *m = rnd((size_t)V * C, &r, 0), *v2 = rnd((size_t)V * C, &r, 0);
    for (size_t i = 0; i < (size_t)V * C; i++) v2[i] = fabsf(v2[i]);
    size_t np = 24400000, chunk = (size_t)V * C;
    BENCH("adamw (24.4M params)", 1, 0, 7.0 * np * 4, for (size_t o = 0; o < np; o += chunk)
          be->adamw(wbig, dwbig, m, v2, NULL, np - o < chunk ? np - o : chunk, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 3,
                    1.0f));
    BENCH("sum_sq (24.4M)", 1, 0, 1.0 * np * 4, for (size_t o = 0; o < np; o += chunk)
          (void)be->sum_sq(dwbig, np - o < chunk ? np - o : chunk));
    printf("%-34s %9s    %5s      %9.1f ms/step (ops only; model glue not included)\n", "TOTAL", "", "", step_total);

    /* OpenBLAS's own threads vs OpenMP's: an sgemm then an OpenMP loop, back to back */
    printf("\ninterplay (sgemm N C->H, then swiglu over N*H), per pair:\n");
    double t_mm, t_sw, t_pair;
    step_total = 0;
    {
        double t0 = lma_now();
        for (int i = 0; i < 20; i++) be->matmul_fwd(y, x, w, NULL, N, C, H);
        t_mm = (lma_now() - t0) / 20;
        t0 = lma_now();
        for (int i = 0; i < 20; i++) be->swiglu_fwd(z, x, y, (size_t)N * H);
        t_sw = (lma_now() - t0) / 20;
        t0 = lma_now();
        for (int i = 0; i < 20; i++) { be->matmul_fwd(y, x, w, NULL, N, C, H); be->swiglu_fwd(z, x, y, (size_t)N * H); }
        t_pair = (lma_now() - t0) / 20;
    }
    printf("  sgemm alone %.3f ms + loop alone %.3f ms = %.3f ms; interleaved %.3f ms (%.2fx)\n", t_mm * 1e3,
           t_sw * 1e3, (t_mm + t_sw) * 1e3, t_pair * 1e3, t_pair / (t_mm + t_sw));
    return 0;
}
