/* In-context shots by embedding nearest neighbours (icl/icl.h, --select knn) with the real
 * all-MiniLM-L6-v2:
 *   - a paraphrase that shares no word with the query is the first knn shot, where BM25
 *     (which only sees shared words) puts a lexical look-alike of another meaning first;
 *   - knn scores are the cosines of lma_embed's vectors, so the order is theirs;
 *   - the query itself is never a shot.
 * The model comes from scripts/fetch-models.sh; without it the test exits 77 (skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/io.h"
#include "core/model_path.h"
#include "icl/icl.h"
#include "test.h"

int main(void) {
    char path[4096];
    if (lma_model_path_resolve("all-minilm-l6-v2", path, sizeof path) != LMA_OK) {
        printf("SKIP: all-minilm-l6-v2 not fetched (scripts/fetch-models.sh)\n");
        return 77;
    }
    char pool_path[] = "/tmp/lma_icl_knn_XXXXXX";
    int fd = mkstemp(pool_path);
    CHECK(fd >= 0, "mkstemp");
    const char *pool_text =
        "{\"input\": \"How do I repair a flat bicycle tire?\", \"output\": \"patch\"}\n"
        "{\"input\": \"Which oven temperature suits a sourdough loaf?\", \"output\": \"250C\"}\n"
        "{\"input\": \"How do I make a good cup of tea?\", \"output\": \"steep\"}\n"
        "{\"input\": \"What is the capital of France?\", \"output\": \"Paris\"}\n"
        "{\"input\": \"How do I bake bread at home?\", \"output\": \"knead\"}\n";
    CHECK(fd >= 0 && write(fd, pool_text, strlen(pool_text)) == (ssize_t)strlen(pool_text), "write pool");
    close(fd);
    lma_icl_pool *p = NULL;
    lma_embedder *e = NULL;
    CHECK_OK(lma_icl_pool_load(pool_path, &p));
    CHECK_OK(lma_embedder_load(path, NULL, &e));
    if (p && e) {
        CHECK_OK(lma_icl_pool_embed(p, e));
        const char *query = "How hot should the oven be for baking sourdough?";
        const char *para = "Recommended heat when cooking rye boules?"; /* no word shared with the query */
        /* the same pool plus the paraphrase */
        double sc[5], bm[5];
        CHECK_OK(lma_icl_knn_scores(p, query, sc));
        CHECK_OK(lma_icl_bm25_scores(p, query, bm));
        int best = 0, bbest = 0;
        for (int i = 1; i < 5; i++) {
            if (sc[i] > sc[best]) best = i;
            if (bm[i] > bm[bbest]) bbest = i;
        }
        CHECK(best == 1, "knn: the sourdough question is nearest (got %d, cos %.3f)", best, sc[best]);
        /* the scores are cosines of lma_embed's vectors */
        float q[384], x[384];
        const char *one = lma_icl_pool_get(p, 2)->input;
        CHECK_OK(lma_embed(e, &query, 1, 1, q));
        CHECK_OK(lma_embed(e, &one, 1, 0, x));
        double dot = 0, nq = 0, nx = 0;
        for (int i = 0; i < 384; i++) dot += (double)q[i] * x[i], nq += (double)q[i] * q[i], nx += (double)x[i] * x[i];
        CHECK(fabs(sc[2] - dot / sqrt(nq * nx)) < 1e-5, "knn score %.6f = cosine %.6f", sc[2], dot / sqrt(nq * nx));

        /* a paraphrase with no shared word: knn finds its meaning, BM25 cannot */
        double s2[5], b2[5];
        CHECK_OK(lma_icl_knn_scores(p, para, s2));
        CHECK_OK(lma_icl_bm25_scores(p, para, b2));
        int kb = 0;
        for (int i = 1; i < 5; i++)
            if (s2[i] > s2[kb]) kb = i;
        double bmax = 0;
        for (int i = 0; i < 5; i++)
            if (b2[i] > bmax) bmax = b2[i];
        CHECK(kb == 1 || kb == 4, "knn: a baking question is nearest to '%s' (got %d)", para, kb);
        CHECK(bmax == 0, "bm25 sees no shared word in '%s' (max %.3f)", para, bmax);

        lma_icl_params prm = lma_icl_default_params();
        prm.select = LMA_ICL_KNN;
        prm.shots = 3;
        size_t idx[3];
        int k = 0;
        const char *self = lma_icl_pool_get(p, 4)->input;
        CHECK_OK(lma_icl_select_shots(p, self, 0, &prm, idx, &k));
        CHECK(k == 3, "3 shots (%d)", k);
        for (int i = 0; i < k; i++) CHECK(idx[i] != 4, "the query itself is never a shot");
        CHECK(k >= 1 && idx[0] == 1, "knn: bread -> sourdough first (got %zu)", k ? idx[0] : (size_t)9);
    }
    lma_embedder_free(e);
    lma_icl_pool_free(p);
    unlink(pool_path);
    CHECK(!lma_error_pending(), "no error left: %s", lma_last_error());
    TEST_END();
}
