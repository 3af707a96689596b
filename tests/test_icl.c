/* In-context learning (icl/icl.h):
 *  - BM25 scores equal rank_bm25's BM25Okapi (fixture: tests/ref/make_icl_fixtures.py);
 *  - selection: fixed / random (seeded, per query) / bm25 order / mmr (lambda 1 = relevance
 *    order; a duplicate is passed over), never the query itself, knn refused on a pool
 *    without embeddings (test_embed checks knn with the real embedder);
 *  - the prompt-token budget is never exceeded, over 200 budgets x selections x formats, and
 *    shots are dropped only as needed (one more shot would not fit);
 *  - shared-prefix KV reuse gives the same answers as recomputing every prompt (a random
 *    tiny model, greedy), and reuses tokens;
 *  - exact match strips whitespace; a bad pool line names file:line. */
#include <cjson/cJSON.h>
#include "core/json.h"
#include "icl/icl.h"
#include "model/presets.h"
#include "test.h"

static char path_[512];
static const char *ref(const char *rel) {
    snprintf(path_, sizeof path_, "%s/tests/ref/%s", LMA_SRC_DIR, rel);
    return path_;
}

static void bm25(const lma_icl_pool *p) {
    cJSON *j = NULL;
    CHECK_OK(lma_json_load(ref("icl/bm25.json"), &j));
    if (!j) return;
    cJSON *qs = cJSON_GetObjectItem(j, "queries"), *ss = cJSON_GetObjectItem(j, "scores");
    size_t n = lma_icl_pool_size(p);
    double sc[64];
    for (int q = 0; q < cJSON_GetArraySize(qs); q++) {
        CHECK_OK(lma_icl_bm25_scores(p, cJSON_GetArrayItem(qs, q)->valuestring, sc));
        double worst = 0;
        for (size_t d = 0; d < n; d++) {
            double e = fabs(sc[d] - cJSON_GetArrayItem(cJSON_GetArrayItem(ss, q), (int)d)->valuedouble);
            if (e > worst) worst = e;
        }
        CHECK(worst < 1e-9, "query %d: BM25 within 1e-9 of rank_bm25 (worst %g)", q, worst);
    }
    /* bm25 selection: the highest scores in order */
    lma_icl_params prm = lma_icl_default_params();
    prm.select = LMA_ICL_BM25;
    prm.shots = 3;
    size_t idx[8];
    int k = 0;
    const char *q = "how many legs does a dog have";
    CHECK_OK(lma_icl_bm25_scores(p, q, sc));
    CHECK_OK(lma_icl_select_shots(p, q, 0, &prm, idx, &k));
    CHECK(k == 3 && sc[idx[0]] >= sc[idx[1]] && sc[idx[1]] >= sc[idx[2]], "bm25: shots in score order");
    for (size_t d = 0; d < n; d++)
        if (d != idx[0] && d != idx[1] && d != idx[2]) CHECK(sc[d] <= sc[idx[2]], "bm25: no better example left out");
    cJSON_Delete(j);
}

static void selection(const lma_icl_pool *p) {
    lma_icl_params prm = lma_icl_default_params();
    size_t a[16], b[16];
    int ka, kb;
    /* fixed: the pool's first, skipping the query itself */
    prm.select = LMA_ICL_FIXED;
    prm.shots = 3;
    CHECK_OK(lma_icl_select_shots(p, lma_icl_pool_get(p, 1)->input, 0, &prm, a, &ka));
    CHECK(ka == 3 && a[0] == 0 && a[1] == 2 && a[2] == 3, "fixed: 0, 2, 3 (1 is the query)");
    /* random: same seed and query index -> same shots; another index -> others; never the query */
    prm.select = LMA_ICL_RANDOM;
    prm.shots = 5;
    CHECK_OK(lma_icl_select_shots(p, "q", 7, &prm, a, &ka));
    CHECK_OK(lma_icl_select_shots(p, "q", 7, &prm, b, &kb));
    CHECK(ka == 5 && kb == 5 && !memcmp(a, b, sizeof(size_t) * 5), "random: reproducible");
    int differ = 0;
    for (int qi = 0; qi < 8; qi++) {
        CHECK_OK(lma_icl_select_shots(p, "q", (size_t)qi + 100, &prm, b, &kb));
        differ |= memcmp(a, b, sizeof(size_t) * 5) != 0;
        for (int i = 0; i < kb; i++)
            for (int j = i + 1; j < kb; j++) CHECK(b[i] != b[j], "random: no example twice");
    }
    CHECK(differ, "random: other queries get other shots");
    const char *self = lma_icl_pool_get(p, 4)->input;
    prm.shots = 12;
    for (int s = 0; s < 4; s++) {
        prm.select = s == 0 ? LMA_ICL_RANDOM : s == 1 ? LMA_ICL_FIXED : s == 2 ? LMA_ICL_BM25 : LMA_ICL_MMR;
        CHECK_OK(lma_icl_select_shots(p, self, 0, &prm, a, &ka));
        CHECK(ka == 11, "%s: 11 of 12 (the query is left out), got %d", lma_icl_select_name(prm.select), ka);
        for (int i = 0; i < ka; i++) CHECK(a[i] != 4, "%s: never the query itself", lma_icl_select_name(prm.select));
    }
    /* mmr with lambda 1 is the relevance order; with 0.5 a near-duplicate of a chosen shot waits */
    prm.select = LMA_ICL_MMR;
    prm.shots = 2;
    prm.mmr_lambda = 0.5;
    CHECK_OK(lma_icl_select_shots(p, "what is the capital", 0, &prm, a, &ka));
    CHECK(ka == 2 && (a[0] == 0 || a[0] == 1) && a[1] != 0 && a[1] != 1,
          "mmr 0.5: one 'capital of X?' then something else (%zu, %zu)", a[0], a[1]);
    prm.mmr_lambda = 1.0;
    CHECK_OK(lma_icl_select_shots(p, "what is the capital", 0, &prm, a, &ka));
    CHECK(ka == 2 && (a[0] == 0 || a[0] == 1) && (a[1] == 0 || a[1] == 1), "mmr 1.0: both near-duplicates (%zu, %zu)",
          a[0], a[1]);
    prm.select = LMA_ICL_KNN;
    CHECK(lma_icl_select_shots(p, "x", 0, &prm, a, &ka) == LMA_ERR_ARG, "knn refused on a pool not embedded");
    lma_clear_error();
}

static void budget(const lma_icl_pool *p, const lma_tokenizer *tok) {
    lma_icl_params prm = lma_icl_default_params();
    prm.shots = 6;
    int checked = 0, refused = 0, partial = 0;
    for (int f = 0; f < 3; f++)
        for (int s = 0; s < 4; s++)
            for (int b = 5; b <= 205; b++) {
                prm.format = f == 0 ? LMA_ICL_PLAIN : f == 1 ? LMA_ICL_COT : LMA_ICL_CHAT;
                prm.select = s == 0 ? LMA_ICL_RANDOM : s == 1 ? LMA_ICL_FIXED : s == 2 ? LMA_ICL_BM25 : LMA_ICL_MMR;
                prm.template_spec = "chatml";
                prm.budget = b;
                int32_t *ids = NULL;
                size_t n = 0;
                int k = 0;
                const char *q = "How many legs does a bird have?";
                lma_status st = lma_icl_build(p, tok, q, 3, &prm, &ids, &n, NULL, &k);
                if (st != LMA_OK) {
                    /* only when the query alone is over the budget */
                    prm.shots = 0;
                    int32_t *i0 = NULL;
                    size_t n0 = 0;
                    lma_clear_error();
                    lma_icl_params p0 = prm;
                    p0.budget = 0;
                    CHECK_OK(lma_icl_build(p, tok, q, 3, &p0, &i0, &n0, NULL, NULL));
                    CHECK(n0 > (size_t)b, "refused at budget %d though the query alone takes %zu", b, n0);
                    free(i0);
                    prm.shots = 6;
                    refused++;
                    continue;
                }
                CHECK(n <= (size_t)b, "budget %d exceeded: %zu tokens", b, n);
                checked++;
                if (k < 6) {
                    partial++;
                    /* one more shot would not have fitted */
                    lma_icl_params p1 = prm;
                    p1.budget = 0;
                    p1.shots = k + 1;
                    int32_t *i1 = NULL;
                    size_t n1 = 0;
                    int k1 = 0;
                    CHECK_OK(lma_icl_build(p, tok, q, 3, &p1, &i1, &n1, NULL, &k1));
                    CHECK(k1 == k + 1 && n1 > (size_t)b, "budget %d: %d shots kept, %d would take %zu", b, k, k1, n1);
                    free(i1);
                }
                free(ids);
            }
    printf("budget: %d prompts within budget (%d with shots dropped), %d refused (query alone over)\n", checked, partial,
           refused);
    CHECK(checked > 1000 && partial > 300 && refused > 0, "the sweep covers all cases");
}

typedef struct {
    char answers[64][64];
} answers;

static void record(void *ctx, size_t qi, const char *answer, int correct) {
    answers *a = ctx;
    if (qi < 64) snprintf(a->answers[qi], sizeof a->answers[qi], "%s", answer);
    (void)correct;
}

static void kv_reuse(const lma_icl_pool *p, const lma_tokenizer *tok) {
    lma_config c;
    CHECK_OK(lma_config_preset("tiny", lma_tok_vocab_size(tok), 512, &c));
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) return;
    CHECK_OK(lma_model_init_random(m, 5, 0.3f));
    lma_icl_params prm = lma_icl_default_params();
    prm.select = LMA_ICL_FIXED;
    prm.shots = 3;
    static answers with, without;
    lma_icl_gen g = {.max_new_tokens = 6, .on_query = record, .ctx = &with};
    lma_icl_eval_result r1, r2;
    CHECK_OK(lma_icl_eval(m, tok, p, p, &prm, &g, &r1));
    g.ctx = &without;
    g.no_reuse = 1;
    CHECK_OK(lma_icl_eval(m, tok, p, p, &prm, &g, &r2));
    CHECK(r1.n == 12 && r1.accuracy == r2.accuracy, "same accuracy with and without reuse");
    CHECK(r1.prefix_tokens_reused > 0 && r2.prefix_tokens_reused == 0, "reuse: %ld tokens not recomputed",
          r1.prefix_tokens_reused);
    CHECK(r1.prompt_tokens_computed + r1.prefix_tokens_reused == r2.prompt_tokens_computed, "token accounting");
    for (int q = 0; q < 12; q++)
        CHECK(!strcmp(with.answers[q], without.answers[q]), "query %d: '%s' with reuse, '%s' without", q,
              with.answers[q], without.answers[q]);
    CHECK(fabs(r1.prompt_tokens_per_query - r2.prompt_tokens_per_query) < 1e-12, "prompt tokens per query");
    lma_model_free(m);
}

int main(void) {
    lma_icl_pool *p = NULL;
    CHECK_OK(lma_icl_pool_load(ref("icl/pool.jsonl"), &p));
    if (!p) TEST_END();
    CHECK(lma_icl_pool_size(p) == 12, "12 examples");
    bm25(p);
    selection(p);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(ref("tok/bl"), &tok));
    if (tok) {
        budget(p, tok);
        kv_reuse(p, tok);
    }
    lma_tok_free(tok);
    lma_icl_pool_free(p);
    /* exact match */
    CHECK(lma_icl_exact("  2021-03-05\n", "2021-03-05") && !lma_icl_exact("2021-03-5", "2021-03-05"), "exact match");
    /* a bad line names the file and line */
    const char *bad = "/tmp/lma_icl_bad.jsonl";
    FILE *f = test_fopen(bad, "w");
    fputs("{\"input\": \"a\", \"output\": \"b\"}\n\n{\"input\": \"c\"}\n", f);
    fclose(f);
    lma_icl_pool *q = NULL;
    CHECK(lma_icl_pool_load(bad, &q) == LMA_ERR_FORMAT && strstr(lma_last_error(), "lma_icl_bad.jsonl:3") &&
              strstr(lma_last_error(), "output"),
          "bad line: %s", lma_last_error());
    lma_clear_error();
    remove(bad);
    TEST_END();
}
