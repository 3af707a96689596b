/* MMLU in cloze form (eval --mmlu-form cloze) against transformers on SmolLM2-135M-Instruct
 * (tests/ref/eval/mmlu_cloze.json, made by tests/ref/make_mmlu_cloze_fixture.py): the
 * prompts byte for byte, each choice's log-likelihood, and the prediction after the
 * per-character normalization, for 2 subjects x 4 items x 0 and 2 shots; then the same
 * items through lma_eval_mmlu, whose correct count must equal the reference's.
 * The model comes from scripts/fetch-models.sh; without it the test exits 77 (skipped). */
#include <cjson/cJSON.h>
#include "core/json.h"
#include "core/model_path.h"
#include "eval/eval.h"
#include "eval/mmlu.h"
#include "eval/scorer.h"
#include "test.h"

int main(void) {
    char path[4096], fx[1024];
    if (lma_model_path_resolve("smollm2-135m-instruct", path, sizeof path) != LMA_OK) {
        printf("smollm2-135m-instruct not fetched (scripts/fetch-models.sh): skipped\n");
        return 77;
    }
    snprintf(fx, sizeof fx, "%s/tests/ref/eval/mmlu_cloze.json", LMA_SRC_DIR);
    cJSON *j = NULL;
    CHECK_OK(lma_json_load(fx, &j));
    lma_model *m = NULL;
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_model_load_ex(path, lma_backend_cpu(), 0, &m));
    CHECK_OK(lma_tok_load(path, &tok));
    lma_mmlu_set set;
    snprintf(fx, sizeof fx, "%s/tests/data/mmlu", LMA_SRC_DIR);
    CHECK_OK(lma_mmlu_load(fx, "val", &set));
    if (!j || !m || !tok) TEST_END();
    lma_eval_scorer *sc = NULL;
    CHECK_OK(lma_eval_scorer_model(m, LMA_EVAL_SCORE_FULL, &sc));
    cJSON *items = cJSON_GetObjectItem(j, "items"), *it;
    double worst = 0;
    int right[2] = {0, 0}; /* by shots 0, 2 */
    cJSON_ArrayForEach(it, items) {
        const char *subj = cJSON_GetObjectItem(it, "subject")->valuestring;
        int idx = cJSON_GetObjectItem(it, "index")->valueint, k = cJSON_GetObjectItem(it, "shots")->valueint;
        const lma_mmlu_subject *u = NULL;
        for (size_t s = 0; s < set.n; s++)
            if (!strcmp(set.subj[s].name, subj)) u = &set.subj[s];
        CHECK(u != NULL, "subject %s", subj);
        if (!u) continue;
        char *prompt = NULL;
        size_t len = 0;
        CHECK_OK(lma_mmlu_prompt_form(LMA_MMLU_CLOZE, u->name, u->shots, u->n_shots, 0, k, &u->items[idx], &prompt,
                                      &len));
        CHECK(prompt && !strcmp(prompt, cJSON_GetObjectItem(it, "prompt")->valuestring), "%s %d, %d shots: prompt",
              subj, idx, k);
        int32_t *ctx = NULL, *cids[4] = {0};
        size_t nctx = 0, nc[4];
        for (int c = 0; c < 4; c++) {
            char cont[2048];
            snprintf(cont, sizeof cont, " %s", u->items[idx].choices[c]);
            int32_t *x = NULL;
            size_t nx = 0;
            CHECK_OK(lma_eval_encode_pair(tok, prompt, len, cont, strlen(cont), c ? &x : &ctx, c ? &nx : &nctx,
                                          &cids[c], &nc[c]));
            free(x);
        }
        double ll[4], best = -1e300;
        int pred = 0;
        CHECK_OK(sc->loglik(sc, ctx, nctx, (const int32_t *const *)cids, nc, 4, ll));
        for (int c = 0; c < 4; c++) {
            double ref = cJSON_GetArrayItem(cJSON_GetObjectItem(it, "ll"), c)->valuedouble, e = fabs(ll[c] - ref);
            if (e > worst) worst = e;
            double norm = ll[c] / (double)lma_utf8_chars(u->items[idx].choices[c]);
            if (norm > best) { best = norm; pred = c; }
        }
        CHECK(pred == cJSON_GetObjectItem(it, "pred")->valueint, "%s %d, %d shots: prediction %d", subj, idx, k, pred);
        right[k ? 1 : 0] += cJSON_GetObjectItem(it, "pred")->valueint == cJSON_GetObjectItem(it, "answer")->valueint;
        free(prompt);
        free(ctx);
        for (int c = 0; c < 4; c++) free(cids[c]);
    }
    printf("cloze log-likelihoods: worst |lmadapt - transformers| = %.2e nats\n", worst);
    CHECK(worst < 2e-3, "log-likelihoods within 2e-3 nats of transformers (worst %.2e)", worst);
    /* the same items through lma_eval_mmlu (KV scoring): the reference's correct counts */
    for (int s = 0; s < 2; s++) {
        lma_mmlu_subject sub[2];
        int n = 0;
        for (size_t t = 0; t < set.n; t++)
            if (!strcmp(set.subj[t].name, "astronomy") || !strcmp(set.subj[t].name, "high_school_geography"))
                sub[n++] = set.subj[t];
        lma_mmlu_set two = {.subj = sub, .n = (size_t)n};
        lma_eval_params p = lma_eval_default_params();
        p.mmlu_form = LMA_MMLU_CLOZE;
        p.shots = s ? 2 : 0;
        p.limit = 4;
        lma_eval_scorer *kv = NULL;
        CHECK_OK(lma_eval_scorer_model(m, LMA_EVAL_SCORE_KV, &kv));
        lma_eval_result r;
        memset(&r, 0, sizeof r);
        CHECK_OK(lma_eval_mmlu(kv, tok, &two, &p, &r));
        CHECK(n == 2 && r.n == 8 && r.correct == right[s], "%d shots: lma_eval_mmlu %ld of %ld right, reference %d",
              p.shots, r.correct, r.n, right[s]);
        lma_eval_result_free(&r);
        lma_eval_scorer_free(kv);
    }
    lma_eval_scorer_free(sc);
    lma_mmlu_free(&set);
    lma_tok_free(tok);
    lma_model_free(m);
    cJSON_Delete(j);
    TEST_END();
}
