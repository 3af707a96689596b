/* The exact cosine scan: CPU BLAS (lma_rag_exact_topk) beside the backend GEMM scan
 * (src/rag/scan.c) on random vectors, per single query, with the top-k ids compared.
 *   bench_rag_scan N DIM NQ [DEVICE]   (DEVICE: cuda, cuda-fp32, cpu; default cuda)
 * One JSON line per side: ms per query p50/p99 (upload of the vectors apart), and for the
 * device the share of queries whose top-10 ids equal the CPU's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/progress.h"
#include "rag/scan.h"
#include "rag/search.h"

static uint64_t st = 3;
static float rnd(void) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((st >> 40) / 16777216.0) * 2 - 1;
}
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: bench_rag_scan N DIM NQ [DEVICE]\n"); return 2; }
    size_t n = (size_t)atol(argv[1]);
    int d = atoi(argv[2]), nq = atoi(argv[3]), K = 10;
    const lma_backend *be;
    if (lma_backend_select(argc > 4 ? argv[4] : "cuda", &be) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 77; }
    float *v = malloc(n * d * sizeof *v), *norms = malloc(n * sizeof *norms), *q = malloc((size_t)nq * d * sizeof *q);
    double *lc = malloc(nq * sizeof *lc), *lg = malloc(nq * sizeof *lg);
    if (!v || !norms || !q || !lc || !lg) return 1;
    for (size_t i = 0; i < n * d; i++) v[i] = rnd();
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)v[i * d + j] * v[i * d + j];
        norms[i] = (float)sqrt(s);
    }
    for (size_t i = 0; i < (size_t)nq * d; i++) q[i] = rnd();
    double t0 = lma_now();
    lma_rag_scan *sc;
    if (lma_rag_scan_new(be, v, norms, n, d, &sc) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    double up = lma_now() - t0;
    int same = 0;
    for (int i = 0; i < nq; i++) {
        int64_t ia[10], ib[10];
        float sa[10], sb[10];
        int na, nb;
        double a = lma_now();
        lma_rag_exact_topk(v, norms, n, d, q + (size_t)i * d, K, ia, sa, &na);
        lc[i] = (lma_now() - a) * 1e3, a = lma_now();
        if (lma_rag_scan_topk(sc, q + (size_t)i * d, K, ib, sb, &nb) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
        lg[i] = (lma_now() - a) * 1e3;
        same += na == nb && !memcmp(ia, ib, na * sizeof *ia);
    }
    qsort(lc, nq, sizeof *lc, cmpd), qsort(lg, nq, sizeof *lg, cmpd);
    printf("{\"impl\": \"cpu-blas\", \"n\": %zu, \"dim\": %d, \"p50_ms\": %.3f, \"p99_ms\": %.3f}\n", n, d, lc[nq / 2], lc[(int)(nq * 0.99)]);
    printf("{\"impl\": \"%s-gemm\", \"n\": %zu, \"dim\": %d, \"upload_s\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"same_top10_as_cpu\": %.4f}\n", be->name, n, d, up, lg[nq / 2], lg[(int)(nq * 0.99)], same / (double)nq);
    lma_rag_scan_free(sc);
    free(v), free(norms), free(q), free(lc), free(lg);
    return 0;
}
