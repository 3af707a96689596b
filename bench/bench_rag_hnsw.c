/* HNSW recall and latency on random unit vectors (src/rag/hnsw.c), the data written to
 * files so that bench/rag/hnsw_faiss.py runs faiss-cpu's HNSW on exactly the same vectors.
 *   bench_rag_hnsw N DIM NQ OUTDIR [M EFC EF1,EF2,... | auto:R [THREADS]]
 * Writes OUTDIR/base.f32 (N, DIM), queries.f32 (NQ, DIM), truth.i64 (NQ, 10: exact top-10
 * by cosine from lma_rag_exact_topk), then one JSON line per ef on stdout: build seconds,
 * recall@10 against the exact scan, single-query latency p50/p99 (one thread).
 * auto:R (e.g. auto:0.95) tunes ef instead of sweeping a list: ef doubles from 16 until
 * recall@10 >= R, then bisects between the last two values to the smallest such ef (within
 * 5%); every ef tried is printed, the chosen one last with "chosen": true.
 * THREADS (default 1) > 1: the graph is built by that many threads (lma_hnsw_add_many) and
 * the recall of each ef is measured with lma_hnsw_search_many on as many; latency is then
 * measured one query at a time on one thread, for the chosen ef only under auto:R (for
 * every ef of a list), so p50/p99 stay single-query, single-thread numbers.
 * EFS "none": only the files (for hnsw_faiss.py alone). The vectors are drawn row by row from
 * per-row seeds (in parallel), so every run of the same N DIM NQ writes the same files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rag/hnsw.h"
#include "rag/search.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static _Thread_local uint64_t st = 42;
static float gauss(void) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = ((st >> 11) + 0.5) / 9007199254740992.0;
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = ((st >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}
static void unit(float *v, int d) {
    double n = 0;
    for (int i = 0; i < d; i++) v[i] = gauss(), n += (double)v[i] * v[i];
    for (int i = 0; i < d; i++) v[i] /= (float)sqrt(n);
}
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static void save(const char *dir, const char *name, const void *p, size_t bytes) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fclose(f);
}

typedef struct {
    lma_hnsw *h;
    const float *q;
    const int64_t *truth;
    double *lat;
    float *sc;
    size_t n;
    int d, nq, K, threads, sweep; /* sweep: auto:R (untimed recall passes) */
    lma_hnsw_params p;
    double build, exact_ms;
} run_ctx;

/* one pass of the queries at beam width ef: prints a JSON line, returns recall@10 */
static double run_ef(run_ctx *c, int ef, int chosen) {
    int hit = 0, K = c->K, nq = c->nq, d = c->d, timed = c->threads <= 1 || chosen || !c->sweep;
    if (ef < K) ef = K;
    int64_t *ids = malloc((size_t)nq * K * sizeof *ids);
    float *sc = malloc((size_t)nq * K * sizeof *sc);
    int *ng = malloc(nq * sizeof *ng);
    if (!ids || !sc || !ng) { fprintf(stderr, "out of memory\n"); exit(1); }
    if (timed) { /* one query at a time, one thread: the latency */
        for (int i = 0; i < nq; i++) {
            double a = now();
            lma_hnsw_search(c->h, c->q + (size_t)i * d, K, ef, ids + (size_t)i * K, sc + (size_t)i * K, &ng[i]);
            c->lat[i] = (now() - a) * 1e3;
        }
        qsort(c->lat, nq, sizeof *c->lat, cmpd);
    } else if (lma_hnsw_search_many(c->h, nq, c->q, K, ef, ids, sc, ng, c->threads)) {
        fprintf(stderr, "search failed\n");
        exit(1);
    }
    for (int i = 0; i < nq; i++)
        for (int x = 0; x < ng[i]; x++)
            for (int y = 0; y < K; y++) hit += ids[(size_t)i * K + x] == c->truth[(size_t)i * K + y];
    free(ids), free(sc), free(ng);
    double rec = hit / (double)(nq * K);
    char lat[96] = "";
    if (timed) snprintf(lat, sizeof lat, ", \"p50_ms\": %.4f, \"p99_ms\": %.4f", c->lat[nq / 2], c->lat[(int)(nq * 0.99)]);
    printf("{\"impl\": \"lmadapt\", \"n\": %zu, \"dim\": %d, \"M\": %d, \"efc\": %d, \"ef\": %d, \"threads\": %d, "
           "\"build_s\": %.2f, \"recall10\": %.4f%s, \"exact_ms\": %.3f%s}\n",
           c->n, d, c->p.M, c->p.ef_construction, ef, c->threads, c->build, rec, lat, c->exact_ms,
           chosen ? ", \"chosen\": true" : "");
    fflush(stdout);
    return rec;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: bench_rag_hnsw N DIM NQ OUTDIR [M EFC EF1,EF2,...]\n"); return 2; }
    size_t n = (size_t)atol(argv[1]);
    int d = atoi(argv[2]), nq = atoi(argv[3]), K = 10;
    const char *dir = argv[4];
    lma_hnsw_params p = lma_hnsw_defaults();
    if (argc > 5) p.M = atoi(argv[5]);
    if (argc > 6) p.ef_construction = atoi(argv[6]);
    const char *efs = argc > 7 ? argv[7] : "16,32,64,128,256";
    int threads = argc > 8 ? atoi(argv[8]) : 1;
    float *base = malloc(n * d * sizeof *base), *q = malloc((size_t)nq * d * sizeof *q), *norms = malloc(n * sizeof *norms);
    int64_t *truth = malloc((size_t)nq * K * sizeof *truth);
    if (!base || !q || !norms || !truth) return 1;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        st = 42 + 0x9E3779B97F4A7C15ull * (i + 1);
        unit(base + i * d, d), norms[i] = 1;
    }
    for (int i = 0; i < nq; i++) {
        st = 7 + 0xD1B54A32D192ED03ull * (i + 1);
        unit(q + (size_t)i * d, d);
    }
    double t0 = now();
    float sc[64];
    for (int i = 0; i < nq; i++) {
        int nk;
        lma_rag_exact_topk(base, norms, n, d, q + (size_t)i * d, K, truth + (size_t)i * K, sc, &nk);
    }
    double exact_ms = (now() - t0) * 1e3 / nq;
    save(dir, "base.f32", base, n * d * sizeof *base);
    save(dir, "queries.f32", q, (size_t)nq * d * sizeof *q);
    save(dir, "truth.i64", truth, (size_t)nq * K * sizeof *truth);
    fprintf(stderr, "# data + exact truth written (exact scan %.1f ms/query)\n", exact_ms);
    if (!strcmp(efs, "none")) return 0;
    lma_hnsw *h;
    if (lma_hnsw_new(d, p, &h)) return 1;
    int64_t *ids = malloc(n * sizeof *ids);
    if (!ids) return 1;
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i;
    t0 = now();
    if (lma_hnsw_add_many(h, n, ids, base, threads)) { fprintf(stderr, "add failed\n"); return 1; }
    double build = now() - t0;
    free(ids);
    fprintf(stderr, "# lmadapt build: %.1f s (%d threads)\n", build, threads);
    double *lat = malloc(nq * sizeof *lat);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", efs);
    run_ctx c = {h, q, truth, lat, sc, n, d, nq, K, threads, !strncmp(efs, "auto:", 5), p, build, exact_ms};
    if (!strncmp(buf, "auto:", 5)) {
        double target = atof(buf + 5);
        int lo = 0, hi = 16;
        while (hi < (1 << 20) && run_ef(&c, hi, 0) < target) lo = hi, hi *= 2;
        while (lo && hi - lo > hi / 20) { /* smallest ef >= target, within 5% */
            int mid = lo + (hi - lo) / 2;
            if (run_ef(&c, mid, 0) >= target) hi = mid;
            else lo = mid;
        }
        run_ef(&c, hi, 1);
    } else {
        for (char *e = strtok(buf, ","); e; e = strtok(NULL, ",")) run_ef(&c, atoi(e), 0);
    }
    lma_hnsw_free(h);
    free(base), free(q), free(norms), free(truth), free(lat);
    return 0;
}
