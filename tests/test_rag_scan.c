/* The exact cosine scan on a backend (src/rag/scan.c) against the CPU BLAS scan
 * (lma_rag_exact_topk), its oracle: same top-k ids, scores within fp32 rounding, on
 * random vectors of uneven norms (and a zero row), n not a multiple of the upload block.
 * No argument: the cpu table's matmul; "cuda": the GPU (ctest label cuda; 77 without one),
 * both "cuda" (scanned by its fp32 twin) and "cuda-fp32". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rag/scan.h"
#include "rag/search.h"
#include "test.h"

static uint64_t st = 7;
static float rnd(void) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((st >> 40) / 16777216.0) * 2 - 1;
}

static void check(const lma_backend *be, size_t n, int dim, int nq, int k) {
    float *v = malloc(n * dim * sizeof *v), *norms = malloc(n * sizeof *norms), *q = malloc(dim * sizeof *q);
    int64_t *ia = malloc(k * sizeof *ia), *ib = malloc(k * sizeof *ib);
    float *sa = malloc(k * sizeof *sa), *sb = malloc(k * sizeof *sb);
    for (size_t i = 0; i < n; i++) {
        double s = 0, scale = 0.1 + 3.0 * (i % 7); /* norms from 0.1 to 18: the scan normalizes */
        for (int j = 0; j < dim; j++) v[i * dim + j] = (float)(rnd() * scale), s += (double)v[i * dim + j] * v[i * dim + j];
        if (i == 5) memset(v + i * dim, 0, dim * sizeof *v), s = 0; /* a zero row: cosine 0 */
        norms[i] = (float)sqrt(s);
    }
    lma_rag_scan *sc = NULL;
    CHECK_OK(lma_rag_scan_new(be, v, norms, n, dim, &sc));
    int same_ids = 1;
    double worst = 0;
    for (int t = 0; sc && t < nq; t++) {
        for (int j = 0; j < dim; j++) q[j] = rnd() * (t + 1);
        int na = 0, nb = 0;
        lma_rag_exact_topk(v, norms, n, dim, q, k, ia, sa, &na);
        CHECK_OK(lma_rag_scan_topk(sc, q, k, ib, sb, &nb));
        CHECK(na == nb && na == (k < (int)n ? k : (int)n), "%s: %d hits, the oracle %d", be->name, nb, na);
        for (int i = 0; i < na && i < nb; i++) {
            double d = fabs(sa[i] - sb[i]);
            if (d > worst) worst = d;
            /* a swap of two scores closer than the rounding is not a difference */
            if (ia[i] != ib[i] && fabs(sa[i] - sb[i]) > 1e-5) same_ids = 0;
        }
    }
    CHECK(same_ids, "%s: top-%d ids differ from the CPU scan (n %zu, dim %d)", be->name, k, n, dim);
    CHECK(worst < 1e-5, "%s: score differs from the CPU scan by %.3g", be->name, worst);
    printf("%s: n %zu dim %d k %d: same ids, worst score difference %.3g\n", be->name, n, dim, k, worst);
    lma_rag_scan_free(sc);
    free(v), free(norms), free(q), free(ia), free(ib), free(sa), free(sb);
}

int main(int argc, char **argv) {
    const char *names[2] = {"cpu", NULL};
    if (argc > 1) {
        const lma_backend *be;
        if (lma_backend_select(argv[1], &be) != LMA_OK) {
            printf("no %s backend here: skipped\n", argv[1]);
            return 77;
        }
        names[0] = "cuda", names[1] = "cuda-fp32";
    }
    for (int b = 0; b < 2 && names[b]; b++) {
        const lma_backend *be = lma_backend_by_name(names[b]);
        CHECK(be != NULL, "no backend %s", names[b]);
        if (!be) continue;
        check(be, 9001, 384, 20, 10); /* 9001: three upload blocks, the last partial */
        check(be, 3, 16, 3, 10);      /* k above n */
        check(be, 100000, 64, 5, 50);
    }
    /* the CPU table refuses nothing; ref has matmul_fwd too: the oracle's oracle */
    check(lma_backend_ref(), 500, 32, 3, 10);
    TEST_END();
}
