/* The RAG engine at scale, without an embedding model: N documents of real text (random
 * windows of tests/data/tinyshakespeare.txt) indexed into a store with a stand-in encoder
 * (hashed bag of words, 384-d, normalized: costs ~nothing, so the numbers are the
 * store's, the chunker's and the graph's), then query latency per mode.
 *   bench_rag_store N NQ DB TEXT   (TEXT: tests/data/tinyshakespeare.txt)
 * Prints: index chunks/s (store + FTS5), HNSW build s, then per mode p50/p99 ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <unistd.h>
#include "core/io.h"
#include "rag/index.h"
#include "rag/search.h"

#define DIM 384
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static lma_status count(void *ctx, const char *t, size_t len, size_t *n) {
    (void)ctx;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) w += t[i] != ' ' && t[i] != '\n' && (i == 0 || t[i - 1] == ' ' || t[i - 1] == '\n');
    *n = w + 2;
    return LMA_OK;
}
static lma_status embed(void *ctx, const char *const *texts, size_t n, int q, float *out) {
    (void)ctx, (void)q;
    for (size_t k = 0; k < n; k++) {
        float *v = out + k * DIM, s = 0;
        memset(v, 0, DIM * sizeof *v);
        for (const char *p = texts[k]; *p;) {
            while (*p && !((*p | 32) >= 'a' && (*p | 32) <= 'z')) p++;
            uint32_t h = 2166136261u;
            int any = 0;
            while ((*p | 32) >= 'a' && (*p | 32) <= 'z') h = (h ^ (unsigned char)(*p++ | 32)) * 16777619u, any = 1;
            if (any) v[h % DIM] += 1, v[(h >> 9) % DIM] += 0.5f;
        }
        for (int i = 0; i < DIM; i++) s += v[i] * v[i];
        s = s > 0 ? 1 / sqrtf(s) : 1;
        for (int i = 0; i < DIM; i++) v[i] *= s;
    }
    return LMA_OK;
}
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

/* n words of the text from a random word start */
static void window(const char *t, size_t len, int n, uint64_t *st, char *out, size_t cap) {
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    size_t i = (*st >> 16) % (len - 4096);
    while (i < len && t[i] != ' ' && t[i] != '\n') i++;
    size_t o = 0;
    for (int w = 0; w < n && i < len && o + 64 < cap; w++) {
        while (i < len && (t[i] == ' ' || t[i] == '\n')) i++;
        while (i < len && t[i] != ' ' && t[i] != '\n' && o + 2 < cap) {
            char c = t[i++];
            out[o++] = c == '"' || c == '\\' ? '\'' : c;
        }
        out[o++] = ' ';
    }
    out[o ? o - 1 : 0] = 0;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: bench_rag_store N NQ DB TEXT\n"); return 2; }
    int n = atoi(argv[1]), nq = atoi(argv[2]);
    const char *db = argv[3];
    char *text;
    size_t len;
    if (lma_read_file(argv[4], &text, &len)) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    char jl[512];
    snprintf(jl, sizeof jl, "%s.docs.jsonl", db);
    FILE *f = fopen(jl, "w");
    uint64_t st = 1;
    static char buf[8192];
    for (int i = 0; i < n; i++) {
        window(text, len, 40 + (int)(st >> 40) % 80, &st, buf, sizeof buf);
        fprintf(f, "{\"id\": \"d%d\", \"text\": \"%s\", \"part\": \"p%d\"}\n", i, buf, i % 10);
    }
    fclose(f);
    unlink(db);
    lma_rag_store *s;
    if (lma_rag_store_open_sqlite(db, 1, &s)) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    lma_rag_encoder enc = {NULL, DIM, 0, "bench-bow384", count, embed};
    lma_rag_index_params ip = lma_rag_index_defaults();
    ip.graph = 0;
    lma_rag_index_stats ist;
    const char *paths[] = {jl};
    double t0 = now();
    if (lma_rag_index(s, &enc, paths, 1, &ip, &ist)) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    double t_index = now() - t0;
    t0 = now();
    size_t added, removed;
    if (lma_hnsw_update(s, DIM, lma_hnsw_defaults(), &added, &removed)) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    double t_graph = now() - t0;
    printf("{\"n_docs\": %d, \"chunks\": %zu, \"index_s\": %.2f, \"chunks_per_s\": %.0f, \"hnsw_build_s\": %.2f}\n", n, ist.chunks,
           t_index, ist.chunks / t_index, t_graph);
    fflush(stdout);
    lma_rag_searcher *q;
    lma_rag_searcher_open(s, &enc, &q);
    double *lat = malloc(nq * sizeof *lat);
    struct { const char *name; lma_rag_mode mode; int64_t hnsw_min; } modes[] = {
        {"bm25", LMA_RAG_BM25, 0}, {"vector-exact", LMA_RAG_VECTOR, 0}, {"vector-hnsw", LMA_RAG_VECTOR, 1},
        {"hybrid-hnsw", LMA_RAG_HYBRID, 1}};
    lma_rag_hit hits[10];
    for (int m = 0; m < 4; m++) {
        lma_rag_search_params sp = lma_rag_search_defaults();
        sp.mode = modes[m].mode, sp.k = 10, sp.hnsw_min = modes[m].hnsw_min;
        int found = 0;
        lma_rag_search(q, "warm up the caches", &sp, hits, &found); /* loads vectors / graph once */
        uint64_t qs = 99;
        for (int i = 0; i < nq; i++) {
            window(text, len, 8, &qs, buf, sizeof buf);
            double a = now();
            if (lma_rag_search(q, buf, &sp, hits, &found)) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
            lat[i] = (now() - a) * 1e3;
        }
        qsort(lat, nq, sizeof *lat, cmpd);
        printf("{\"mode\": \"%s\", \"k\": 10, \"p50_ms\": %.3f, \"p99_ms\": %.3f}\n", modes[m].name, lat[nq / 2], lat[(int)(nq * 0.99)]);
        fflush(stdout);
    }
    lma_rag_searcher_free(q);
    lma_rag_store_close(s);
    free(lat), free(text);
    return 0;
}
