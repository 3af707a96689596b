/* The exact cosine scan on a backend (src/rag/scan.c) against the CPU BLAS scan
 * (lma_rag_exact_topk), its oracle: same top-k ids, scores within fp32 rounding, on
 * random vectors of uneven norms (and a zero row), n not a multiple of the upload block.
 * No argument: the cpu table's matmul; "cuda": the GPU (ctest label cuda; 77 without one),
 * both "cuda" (scanned by its fp32 twin) and "cuda-fp32". Also the searcher: a store's
 * vector search with the scan's backend set (ref here, the GPU with "cuda") returns the
 * hits of the searcher without one (the BLAS scan). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rag/index.h"
#include "rag/scan.h"
#include "rag/search.h"
#include "rag/store.h"
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

/* test encoder: hashed words with uneven weights (no score ties), 32-d */
#define EDIM 32
static lma_status e_count(void *ctx, const char *t, size_t len, size_t *n) {
    size_t w = 0;
    for (size_t i = 0; i < len; i++) w += t[i] != ' ' && (i == 0 || t[i - 1] == ' ');
    *n = w + 2;
    return LMA_OK;
}
static lma_status e_embed(void *ctx, const char *const *texts, size_t n, int q, float *out) {
    for (size_t k = 0; k < n; k++) {
        float *v = out + k * EDIM;
        memset(v, 0, EDIM * sizeof *v);
        for (const char *p = texts[k]; *p;) {
            if (*p == ' ' || *p == '.') { p++; continue; }
            uint32_t h = 2166136261u;
            while (*p && *p != ' ' && *p != '.') h = (h ^ (unsigned char)(*p++ | 32)) * 16777619u;
            v[h % EDIM] += 1.0f + (h >> 20) % 997 / 997.0f;
        }
        v[0] += 0.01f;
    }
    return LMA_OK;
}

static void check_searcher(const lma_backend *be) {
    char dir[] = "/tmp/lma_test_rag_scan.XXXXXX", path[512], db[512];
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    snprintf(path, sizeof path, "%s/docs.jsonl", dir);
    snprintf(db, sizeof db, "%s/s.sqlite", dir);
    FILE *f = test_fopen(path, "w");
    const char *words[] = {"river", "stone", "light", "north", "glass", "paper", "storm", "field", "metal", "cloud",
                           "sugar", "tiger", "ocean", "music", "plant", "chair", "green", "quiet", "smoke", "bread"};
    for (int d = 0; d < 300; d++) {
        fprintf(f, "{\"id\": \"d%d\", \"text\": \"", d);
        for (int w = 0; w < 6 + d % 5; w++) fprintf(f, "%s ", words[(d * 7 + w * (d % 3 + 1)) % 20]);
        fprintf(f, "\"}\n");
    }
    fclose(f);
    lma_rag_store *s = NULL;
    CHECK_OK(lma_rag_store_open_sqlite(db, 1, &s));
    lma_rag_encoder enc = {NULL, EDIM, 0, "test-hash32", e_count, e_embed};
    lma_rag_index_params ip = lma_rag_index_defaults();
    lma_rag_index_stats ist;
    const char *paths[] = {path};
    CHECK_OK(lma_rag_index(s, &enc, paths, 1, &ip, &ist));
    lma_rag_searcher *a = NULL, *b = NULL;
    CHECK_OK(lma_rag_searcher_open(s, &enc, &a));
    CHECK_OK(lma_rag_searcher_open(s, &enc, &b));
    if (!a || !b) { lma_rag_searcher_free(a), lma_rag_searcher_free(b), lma_rag_store_close(s); return; }
    lma_rag_searcher_set_backend(b, be);
    lma_rag_search_params sp = lma_rag_search_defaults();
    sp.mode = LMA_RAG_VECTOR, sp.k = 10;
    int same = 1;
    for (int t = 0; t < 20; t++) {
        char query[128];
        snprintf(query, sizeof query, "%s %s %s", words[t], words[(t * 3 + 1) % 20], words[(t * 11 + 5) % 20]);
        lma_rag_hit ha[10], hb[10];
        int na = 0, nb = 0;
        CHECK_OK(lma_rag_search(a, query, &sp, ha, &na));
        CHECK_OK(lma_rag_search(b, query, &sp, hb, &nb));
        same &= na == nb && na == 10;
        for (int i = 0; i < na && i < nb; i++)
            same &= fabs(ha[i].score - hb[i].score) < 1e-5 && (ha[i].id == hb[i].id || fabs(ha[i].score - hb[i].score) < 1e-6);
    }
    CHECK(same, "%s: the searcher's vector hits differ from the BLAS scan's", be->name);
    printf("%s: searcher over 300 documents: the BLAS scan's hits\n", be->name);
    lma_rag_searcher_free(a), lma_rag_searcher_free(b);
    lma_rag_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "rm %s", dir);
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
        if (argc > 1) check_searcher(be);
    }
    /* the CPU table refuses nothing; ref has matmul_fwd too: the oracle's oracle */
    check(lma_backend_ref(), 500, 32, 3, 10);
    if (argc == 1) check_searcher(lma_backend_ref()); /* ref goes through scan.c, cpu through BLAS */
    TEST_END();
}
