/* HNSW (src/rag/hnsw.c) against its oracle, the exact scan (lma_rag_exact_topk):
 * recall@10 >= 0.95 on random unit vectors, after removals too, built by several threads,
 * and through the store (incremental update, reload). */
#include <unistd.h>
#include "rag/hnsw.h"
#include "rag/search.h"
#include "test.h"

#define N 4000
#define D 96
#define NQ 100
#define K 10

static uint64_t st = 12345;
static float rnd(void) { /* standard normal (Box-Muller) */
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = ((st >> 11) + 0.5) / 9007199254740992.0;
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = ((st >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}
static void unit(float *v) {
    double n = 0;
    for (int i = 0; i < D; i++) v[i] = rnd(), n += v[i] * v[i];
    for (int i = 0; i < D; i++) v[i] /= (float)sqrt(n);
}

/* recall@K of the graph against the exact scan over the live rows (alive[i]) */
static double recall(lma_hnsw *h, const float *vecs, const int *alive, const float *qs, int ef) {
    float *live = malloc((size_t)N * D * sizeof *live), *norms = malloc(N * sizeof *norms);
    int64_t *map = malloc(N * sizeof *map);
    size_t n = 0;
    for (int i = 0; i < N; i++)
        if (alive[i]) memcpy(live + n * D, vecs + (size_t)i * D, D * sizeof *live), norms[n] = 1, map[n++] = i;
    int hit = 0;
    for (int q = 0; q < NQ; q++) {
        int64_t ei[K], gi[K];
        float es[K], gs[K];
        int ne, ng;
        lma_rag_exact_topk(live, norms, n, D, qs + q * D, K, ei, es, &ne);
        lma_hnsw_search(h, qs + q * D, K, ef, gi, gs, &ng);
        for (int a = 0; a < ne; a++)
            for (int b = 0; b < ng; b++) hit += map[ei[a]] == gi[b];
    }
    free(live), free(norms), free(map);
    return hit / (double)(NQ * K);
}

int main(void) {
    float *vecs = malloc((size_t)N * D * sizeof *vecs), *qs = malloc(NQ * D * sizeof *qs);
    int *alive = malloc(N * sizeof *alive);
    for (int i = 0; i < N; i++) unit(vecs + (size_t)i * D), alive[i] = 1;
    for (int q = 0; q < NQ; q++) unit(qs + q * D);

    /* the exact scan itself, against a plain loop */
    {
        float norms[N];
        for (int i = 0; i < N; i++) norms[i] = 1;
        int64_t idx[K];
        float sc[K];
        int nk;
        lma_rag_exact_topk(vecs, norms, N, D, qs, K, idx, sc, &nk);
        int best = 0;
        double bd = -2;
        for (int i = 0; i < N; i++) {
            double d = 0;
            for (int j = 0; j < D; j++) d += (double)vecs[(size_t)i * D + j] * qs[j];
            if (d > bd) bd = d, best = i;
        }
        CHECK(nk == K && idx[0] == best && fabs(sc[0] - bd) < 1e-5, "exact top-1: %lld vs %d", (long long)idx[0], best);
        for (int i = 1; i < nk; i++) CHECK(sc[i] <= sc[i - 1], "exact scores sorted");
    }

    lma_hnsw *h;
    CHECK_OK(lma_hnsw_new(D, lma_hnsw_defaults(), &h));
    for (int i = 0; i < N; i++) CHECK_OK(lma_hnsw_add(h, 1000 + i, vecs + (size_t)i * D));
    CHECK(lma_hnsw_size(h) == N, "size %zu", lma_hnsw_size(h));
    CHECK(lma_hnsw_add(h, 1000, vecs) == LMA_ERR_ARG, "duplicate id refused");
    lma_clear_error();
    lma_hnsw_free(h);

    /* the parallel build (4 threads, per-node locks): as good a graph; the batch search
     * gives what one query at a time gives; a duplicate id in the batch is refused */
    {
        int64_t *rows = malloc(N * sizeof *rows);
        for (int i = 0; i < N; i++) rows[i] = i;
        CHECK_OK(lma_hnsw_new(D, lma_hnsw_defaults(), &h));
        CHECK_OK(lma_hnsw_add_many(h, N / 2, rows, vecs, 4)); /* into an empty graph */
        CHECK_OK(lma_hnsw_add_many(h, N - N / 2, rows + N / 2, vecs + (size_t)(N / 2) * D, 4)); /* and a non-empty one */
        CHECK(lma_hnsw_size(h) == N, "parallel build: size %zu", lma_hnsw_size(h));
        double rp = recall(h, vecs, alive, qs, 128);
        printf("recall@10 of the parallel build (4 threads): %.4f\n", rp);
        CHECK(rp >= 0.95, "parallel build: recall@10 %.4f < 0.95", rp);
        int64_t *mi = malloc(NQ * K * sizeof *mi);
        float *ms = malloc(NQ * K * sizeof *ms);
        int *mn = malloc(NQ * sizeof *mn), same = 1;
        CHECK_OK(lma_hnsw_search_many(h, NQ, qs, K, 64, mi, ms, mn, 3));
        for (int q = 0; q < NQ; q++) {
            int64_t gi[K];
            float gs[K];
            int ng1;
            CHECK_OK(lma_hnsw_search(h, qs + q * D, K, 64, gi, gs, &ng1));
            same &= ng1 == mn[q];
            for (int i = 0; i < ng1 && same; i++) same &= gi[i] == mi[q * K + i] && gs[i] == ms[q * K + i];
        }
        CHECK(same, "lma_hnsw_search_many differs from lma_hnsw_search");
        int64_t dup[2] = {N + 1, N + 1};
        CHECK(lma_hnsw_add_many(h, 2, dup, vecs, 2) == LMA_ERR_ARG, "a duplicate id in the batch refused");
        lma_clear_error();
        free(rows), free(mi), free(ms), free(mn);
        lma_hnsw_free(h);
    }

    /* with ids = row numbers */
    CHECK_OK(lma_hnsw_new(D, lma_hnsw_defaults(), &h));
    for (int i = 0; i < N; i++) lma_hnsw_add(h, i, vecs + (size_t)i * D);
    double r = recall(h, vecs, alive, qs, 128);
    printf("recall@10 (n %d, d %d, M 16, efc 100, ef 128): %.4f\n", N, D, r);
    CHECK(r >= 0.95, "recall@10 %.4f < 0.95", r);
    /* remove a fifth (the graph repairs itself on the next search) */
    for (int i = 0; i < N; i += 5) { CHECK_OK(lma_hnsw_remove(h, i)); alive[i] = 0; }
    r = recall(h, vecs, alive, qs, 128);
    printf("recall@10 after removing 20%%: %.4f\n", r);
    CHECK(r >= 0.95, "recall@10 after removals %.4f < 0.95", r);
    int64_t ids[K];
    float sc[K];
    int ng;
    CHECK_OK(lma_hnsw_search(h, qs, K, 64, ids, sc, &ng));
    int dead = 0;
    for (int i = 0; i < ng; i++) dead += ids[i] % 5 == 0;
    CHECK(ng == K && dead == 0, "no removed id returned");
    lma_hnsw_free(h);

    /* through the store: graph written, updated incrementally after removing chunks, reloaded */
    char db[] = "/tmp/lma_test_hnsw_XXXXXX";
    int fd = mkstemp(db);
    close(fd);
    unlink(db);
    lma_rag_store *s;
    CHECK_OK(lma_rag_store_open_sqlite(db, 1, &s));
    CHECK_OK(s->ops->meta_set(s, "dim", "96"));
    CHECK_OK(s->ops->begin(s));
    int64_t key;
    CHECK_OK(s->ops->file_put(s, "f", "h", 0));
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        s->ops->doc_add(s, i % 2 ? "f" : "g", id, "{}", 1, &key);
        s->ops->chunk_add(s, key, 0, 0, 1, "x", vecs + (size_t)i * D, D, NULL);
    }
    CHECK_OK(s->ops->commit(s));
    size_t added, removed;
    CHECK_OK(lma_hnsw_update(s, D, lma_hnsw_defaults(), &added, &removed));
    CHECK(added == N && removed == 0, "update: +%zu -%zu", added, removed);
    /* chunk k has key k + 1; drop the documents of path "g" (even rows) */
    CHECK_OK(s->ops->begin(s));
    CHECK_OK(s->ops->file_delete(s, "g"));
    CHECK_OK(s->ops->commit(s));
    CHECK_OK(lma_hnsw_update(s, D, lma_hnsw_defaults(), &added, &removed));
    CHECK(added == 0 && removed == N / 2, "update after removal: +%zu -%zu", added, removed);
    CHECK_OK(lma_hnsw_load(s, D, &h));
    CHECK(h && lma_hnsw_size(h) == N / 2, "reloaded size %zu", h ? lma_hnsw_size(h) : 0);
    /* recall against the exact scan over the odd rows; graph ids are keys (row + 1) */
    int hit = 0;
    float *live = malloc((size_t)N / 2 * D * sizeof *live), norms[N / 2];
    for (int i = 1, n = 0; i < N; i += 2, n++) memcpy(live + (size_t)n * D, vecs + (size_t)i * D, D * sizeof *live), norms[n] = 1;
    for (int q = 0; h && q < NQ; q++) {
        int64_t ei[K], gi[K];
        float es[K], gs[K];
        int ne;
        lma_rag_exact_topk(live, norms, N / 2, D, qs + q * D, K, ei, es, &ne);
        lma_hnsw_search(h, qs + q * D, K, 128, gi, gs, &ng);
        for (int a = 0; a < ne; a++)
            for (int b = 0; b < ng; b++) hit += (2 * ei[a] + 1) + 1 == gi[b];
    }
    r = hit / (double)(NQ * K);
    printf("recall@10 through the store after removing half: %.4f\n", r);
    CHECK(r >= 0.95, "store graph recall %.4f < 0.95", r);
    free(live);
    lma_hnsw_free(h);
    lma_rag_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm", db, db, db);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    free(vecs), free(qs), free(alive);
    TEST_END();
}
