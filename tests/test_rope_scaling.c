/* RoPE scaling (linear, dynamic NTK, yarn with its attention factor, llama3): the
 * log-probabilities of a 96-token sequence, 3x the original 32-position window, equal
 * transformers' with the same rope_scaling (tests/ref/make_rope_fixtures.py), at every
 * position and in particular past the window; the config round-trips through
 * lma_config_save; KV-cached decoding equals the full forward (the static types). A LoRA
 * adapter trained with --rope-scaling carries it: lmadapt merge writes it to config.json
 * and lma_adapter_load (eval/generate --adapter) applies it to the unscaled base. */
#include <unistd.h>
#include "core/io.h"
#include "core/json.h"
#include "infer/score.h"
#include "core/rng.h"
#include "format/gguf.h"
#include "model/adapter.h"
#include "model/gguf_model.h"
#include "quant/ggml_quant.h"
#include "model/llama.h"
#include "model/lora.h"
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
    /* a LoRA adapter trained with yarn:4 on the unscaled model (tmp's config now) */
    char ad[1200], merged[1200], mcfg[1300], rfile[1300], cmd[4000], tmp2[] = "/tmp/lma_rope_ad_XXXXXX";
    CHECK(mkdtemp(tmp2) != NULL, "mkdtemp"); /* merge writes outside its input folders */
    snprintf(ad, sizeof ad, "%s/adapter", tmp2);
    snprintf(merged, sizeof merged, "%s/merged", tmp2);
    snprintf(mcfg, sizeof mcfg, "%s/config.json", merged);
    for (int scaled = 1; scaled >= 0; scaled--) {
        lma_model *m = NULL, *mm = NULL, *b = NULL;
        CHECK_OK(lma_model_load_ex(tmp, lma_backend_cpu(), 0, &m));
        if (!m) break;
        int W = m->cfg.max_position_embeddings;
        if (scaled) CHECK_OK(lma_model_set_rope_scaling(m, "yarn:4"));
        lma_lora_params lp = lma_lora_default_params();
        lp.r = 4; lp.alpha = 8;
        CHECK_OK(lma_lora_attach(m, &lp, 3));
        if (!m->lora) { lma_model_free(m); break; }
        lma_rng rg;
        lma_rng_seed(&rg, 5);
        for (size_t i = 0; i < m->lora->table.total; i++) m->lora->params[i] = (float)(0.3 * lma_rng_normal(&rg));
        lma_model_sync_weights(m);
        CHECK_OK(lma_adapter_save(m, ad, NULL));
        snprintf(rfile, sizeof rfile, "%s/" LMA_ADAPTER_ROPE_FILE, ad);
        CHECK(lma_file_exists(rfile) == scaled, "rope_scaling.json is written exactly when the run scaled the rope (%d)", scaled);
        lma_score_result want = {0}, got = {0}, got2 = {0};
        CHECK_OK(lma_score(m, ids, (size_t)T, &want));
        snprintf(cmd, sizeof cmd, "rm -rf %s && %s merge --model %s --adapter %s --out %s >/dev/null 2>&1", merged, LMA_CLI,
                 tmp, ad, merged);
        CHECK(system(cmd) == 0, "merge runs");
        lma_config mc;
        memset(&mc, 0, sizeof mc);
        CHECK_OK(lma_config_load(mcfg, &mc));
        if (scaled)
            CHECK(mc.rope_type == LMA_ROPE_YARN && mc.rope_factor == 4 && mc.rope_original_max_pos == W &&
                      mc.max_position_embeddings == 4 * W && fabs(mc.rope_attention_factor - (0.1 * log(4.0) + 1)) < 1e-12,
                  "merge writes the adapter's yarn:4 to config.json (type %d factor %g original %d max %d; window %d)",
                  mc.rope_type, mc.rope_factor, mc.rope_original_max_pos, mc.max_position_embeddings, W);
        else
            CHECK(mc.rope_type == LMA_ROPE_DEFAULT && mc.max_position_embeddings == W, "an unscaled adapter merges unscaled");
        /* the merged model and base + --adapter score as the trained model did, past the window too */
        CHECK_OK(lma_model_load_ex(merged, lma_backend_cpu(), 0, &mm));
        if (mm) CHECK_OK(lma_score(mm, ids, (size_t)T, &got));
        CHECK_OK(lma_model_load_ex(tmp, lma_backend_cpu(), 0, &b));
        if (b) CHECK_OK(lma_adapter_load(b, ad));
        if (b) CHECK_OK(lma_score(b, ids, (size_t)T, &got2));
        double e1 = 0, e2 = 0;
        for (int t = 0; t < T - 1 && want.logprobs && got.logprobs && got2.logprobs; t++) {
            e1 = fmax(e1, fabs(got.logprobs[t] - want.logprobs[t]));
            e2 = fmax(e2, fabs(got2.logprobs[t] - want.logprobs[t]));
        }
        CHECK(got.logprobs && e1 < 1e-4, "scaled %d: the merged model's log-probs equal the trained model's (max err %.2e)", scaled, e1);
        CHECK(got2.logprobs && e2 < 1e-6, "scaled %d: base + the adapter's log-probs equal the trained model's (max err %.2e)",
              scaled, e2);
        /* GGUF export writes linear scaling only: a yarn model is refused, not written unscaled */
        lma_gguf_writer *w = NULL;
        snprintf(path, sizeof path, "%s/m.gguf", tmp2);
        if (mm && lma_gguf_writer_new(&w) == LMA_OK) {
            lma_status es = lma_model_save_gguf(mm, w, path, LMA_GGML_F32);
            if (scaled)
                CHECK(es == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "yarn"), "GGUF export of a yarn model is "
                      "refused: %s", lma_last_error());
            else
                CHECK(es == LMA_OK, "the unscaled merged model exports: %s", lma_last_error());
            lma_clear_error();
            lma_gguf_writer_free(w);
        }
        free(want.logprobs); free(got.logprobs); free(got2.logprobs);
        lma_model_free(m); lma_model_free(mm); lma_model_free(b);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp2);
    CHECK(system(cmd) == 0, "clean up");
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
