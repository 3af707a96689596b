/* RoPE scaling (linear, dynamic NTK, yarn with its attention factor, llama3): the
 * log-probabilities of a 96-token sequence, 3x the original 32-position window, equal
 * transformers' with the same rope_scaling (tests/ref/make_rope_fixtures.py), at every
 * position and in particular past the window; the config round-trips through
 * lma_config_save; KV-cached decoding equals the full forward (the static types). */
#include <unistd.h>
#include "core/io.h"
#include "core/json.h"
#include "infer/score.h"
#include "model/llama.h"
#include "test.h"

static const char *types[] = {"linear", "dynamic", "yarn", "yarn_params", "llama3"};

int main(void) {
    char path[1024], tmp[] = "/tmp/lma_rope_XXXXXX";
    if (!mkdtemp(tmp)) { printf("0 passed, 1 failed\n"); return 1; }
    snprintf(path, sizeof path, "%s/tests/ref/rope/expected.json", LMA_SRC_DIR);
    cJSON *exp = NULL;
    CHECK_OK(lma_json_load(path, &exp));
    if (!exp) TEST_END();
    const cJSON *jids = cJSON_GetObjectItem(exp, "ids");
    int T = cJSON_GetArraySize(jids);
    int32_t ids[128];
    for (int i = 0; i < T && i < 128; i++) ids[i] = cJSON_GetArrayItem(jids, i)->valueint;
    char link[1100], cfg[1100], src[1100];
    snprintf(link, sizeof link, "%s/model.safetensors", tmp);
    snprintf(src, sizeof src, "%s/tests/ref/rope/model.safetensors", LMA_SRC_DIR);
    CHECK(symlink(src, link) == 0, "symlink the shared weights");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        snprintf(src, sizeof src, "%s/tests/ref/rope/config_%s.json", LMA_SRC_DIR, types[k]);
        snprintf(cfg, sizeof cfg, "%s/config.json", tmp);
        CHECK_OK(lma_copy_file(src, cfg));
        lma_model *m = NULL;
        CHECK_OK(lma_model_load_ex(tmp, lma_backend_cpu(), 0, &m));
        if (!m) continue;
        lma_score_result r;
        CHECK_OK(lma_score(m, ids, (size_t)T, &r));
        const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(exp, "logprobs"), types[k]);
        double err = 0, err_past = 0;
        for (int t = 0; t < T - 1 && r.logprobs; t++) {
            double e = fabs(r.logprobs[t] - cJSON_GetArrayItem(want, t)->valuedouble);
            if (e > err) err = e;
            if (t + 1 >= 32 && e > err_past) err_past = e;
        }
        CHECK(err < 2e-4, "%s: log-probs equal transformers' (max err %.2e; past the window %.2e)", types[k], err, err_past);
        free(r.logprobs);
        /* the config as lmadapt writes it loads back to the same log-probs */
        lma_config back;
        snprintf(path, sizeof path, "%s/saved.json", tmp);
        CHECK_OK(lma_config_save(path, &m->cfg));
        CHECK_OK(lma_config_load(path, &back));
        CHECK(back.rope_type == m->cfg.rope_type && back.rope_factor == m->cfg.rope_factor &&
              back.rope_attention_factor == m->cfg.rope_attention_factor, "%s: the saved config round-trips", types[k]);
        if (strcmp(types[k], "dynamic")) { /* transformers' dynamic rope changes as the cache grows */
            lma_kv_cache *kv = NULL;
            int V = m->cfg.vocab_size;
            float *inc = malloc(sizeof(float) * (size_t)V), *full = malloc(sizeof(float) * (size_t)T * V);
            CHECK_OK(lma_model_forward(m, ids, NULL, NULL, 1, T, 0, 1, NULL));
            CHECK_OK(lma_model_logits(m, full));
            CHECK_OK(lma_kv_create(m, T, &kv));
            double kerr = 0;
            for (int t = 0; t < T && kv; t++) {
                CHECK_OK(lma_model_forward_cached(m, kv, ids + t, 1, inc, 0));
                for (int v = 0; v < V; v++) kerr = fmax(kerr, fabs(inc[v] - full[(size_t)t * V + v]));
            }
            CHECK(kerr < 1e-4, "%s: KV-cached decoding equals the full forward past the window (max err %.2e)",
                  types[k], kerr);
            lma_kv_free(m, kv);
            free(inc);
            free(full);
        }
        lma_model_free(m);
    }
    /* the same scalings chosen at fine-tune time (sft/cpt --rope-scaling) on the unscaled model */
    static const char *specs[][2] = {{"linear:3", "linear"}, {"dynamic:3", "dynamic"}, {"yarn:4", "yarn"}, {"llama3:4", "llama3"}};
    snprintf(src, sizeof src, "%s/tests/ref/rope/config_linear.json", LMA_SRC_DIR);
    cJSON *plain = NULL;
    CHECK_OK(lma_json_load(src, &plain));
    if (plain) {
        cJSON_ReplaceItemInObject(plain, "rope_scaling", cJSON_CreateNull());
        CHECK_OK(lma_json_save(cfg, plain));
        cJSON_Delete(plain);
    }
    for (int k = 0; k < 4; k++) {
        lma_model *m = NULL;
        CHECK_OK(lma_model_load_ex(tmp, lma_backend_cpu(), 0, &m));
        if (!m) continue;
        CHECK_OK(lma_model_set_rope_scaling(m, specs[k][0]));
        lma_score_result r;
        CHECK_OK(lma_score(m, ids, (size_t)T, &r));
        const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(exp, "logprobs"), specs[k][1]);
        double err = 0;
        for (int t = 0; t < T - 1 && r.logprobs; t++) err = fmax(err, fabs(r.logprobs[t] - cJSON_GetArrayItem(want, t)->valuedouble));
        CHECK(err < 2e-4, "--rope-scaling %s: log-probs equal transformers' with that config (max err %.2e)", specs[k][0], err);
        free(r.logprobs);
        CHECK(lma_model_set_rope_scaling(m, specs[k][0]) == LMA_OK, "the same scaling again is a no-op (a resumed run)");
        CHECK(lma_model_set_rope_scaling(m, "linear:7") == LMA_ERR_UNSUPPORTED, "scaling a scaled model is refused");
        lma_clear_error();
        lma_model_free(m);
    }
    lma_model *m = NULL;
    CHECK_OK(lma_model_load_ex(tmp, lma_backend_cpu(), 0, &m));
    const char *badspec[] = {"yarn", "yarn:1", "ntk:2", "linear:x", "linear:2x", "linear:1e9"};
    for (int i = 0; m && i < 6; i++) {
        CHECK(lma_model_set_rope_scaling(m, badspec[i]) == LMA_ERR_ARG, "'%s' refused: %s", badspec[i], lma_last_error());
        lma_clear_error();
    }
    lma_model_free(m);
    unlink(cfg);
    unlink(link);
    unlink(path);
    rmdir(tmp);
    cJSON_Delete(exp);
    TEST_END();
}
