/* PEFT adapter interop (fixtures: tests/ref/make_peft_fixtures.py):
 *  - adapters made by PEFT on tests/ref/models/<name> load in lmadapt and give
 *    PEFT's logits;
 *  - adapters written by lmadapt (regenerated here deterministically) are
 *    byte-identical to the ones PEFT loaded, PEFT's logits on them equal
 *    lmadapt's, and lmadapt's trainable/all counts equal PEFT's;
 *  - unsupported or broken adapter dirs are refused with a message naming the
 *    key or tensor. */
#include "core/io.h"
#include "core/json.h"
#include "core/rng.h"
#include "model/adapter.h"
#include "model/safetensors.h"
#include "test.h"

static const struct { const char *model; int r; float alpha; int rslora; unsigned targets; } written[] = {
    {"llama_gqa", 4, 8.0f, 0, LMA_LORA_ALL},
    {"qwen2", 6, 12.0f, 1, (1u << LMA_PROJ_Q) | (1u << LMA_PROJ_K) | (1u << LMA_PROJ_GATE) | (1u << LMA_PROJ_DOWN)},
};

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

static lma_status load_base(const char *name, lma_model **m) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    return lma_model_load_ex(dir, lma_backend_cpu(), 0, m);
}

/* adapter i: PEFT init from a fixed seed, then B filled from a fixed stream */
static lma_status write_adapter(int i, const char *dir, lma_model **keep) {
    lma_model *m = NULL;
    LMA_TRY(load_base(written[i].model, &m));
    lma_lora_params p = lma_lora_default_params();
    p.r = written[i].r; p.alpha = written[i].alpha; p.rslora = written[i].rslora; p.targets = written[i].targets;
    lma_status s = lma_lora_attach(m, &p, 1000 + (uint64_t)i);
    if (s == LMA_OK) {
        lma_lora *lo = m->lora;
        lma_rng r;
        lma_rng_seed(&r, 77 + (uint64_t)i);
        /* the B matrices in PEFT's order (layer, projection), whatever the table's */
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int pj = 0; pj < LMA_PROJ_COUNT; pj++)
                for (int t = 0; t < lo->table.count; t++) {
                    const lma_param_info *pi = &lo->table.info[t];
                    if (pi->layer != l || (int)pi->kind != pj || !strstr(pi->name, ".lora_B.")) continue;
                    for (size_t j = 0; j < pi->numel; j++) lo->params[pi->offset + j] = (float)(0.05 * lma_rng_normal(&r));
                }
        lma_model_sync_weights(m);
        s = lma_adapter_save(m, dir, written[i].model);
    }
    if (s == LMA_OK && keep) *keep = m;
    else lma_model_free(m);
    return s;
}

static float *tensor(lma_st_file *f, const char *name, size_t *n) {
    const lma_st_tensor *t = lma_st_find(f, name);
    if (!t) return NULL;
    float *d = malloc(t->numel * sizeof(float));
    if (lma_st_read_f32(t, d, t->numel) != LMA_OK) { free(d); return NULL; }
    if (n) *n = t->numel;
    return d;
}

/* lmadapt's logits for the fixture's input_ids vs its logits */
static void compare_logits(lma_model *m, const char *expected, const char *what) {
    lma_st_file *f = NULL;
    CHECK_OK(lma_st_open(expected, &f));
    if (!f) return;
    const lma_st_tensor *ti = lma_st_find(f, "input_ids");
    int B = (int)ti->shape[0], T = (int)ti->shape[1], V = m->cfg.vocab_size;
    size_t n = 0;
    float *fid = tensor(f, "input_ids", NULL), *ref = tensor(f, "logits", &n);
    int32_t *ids = malloc((size_t)B * T * sizeof(int32_t));
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)fid[i];
    float *got = malloc((size_t)B * T * V * sizeof(float));
    CHECK_OK(lma_model_forward(m, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(m, got));
    double e = 0, mx = 0;
    for (size_t i = 0; i < n; i++) { e = fmax(e, fabs((double)got[i] - ref[i])); mx = fmax(mx, fabs(ref[i])); }
    CHECK(n == (size_t)B * T * V && e <= 1e-4 * mx, "%s: logits max abs err %.3g (scale %.3g)", what, e, mx);
    printf("%-28s logits max abs err %.2e (scale %.2e)\n", what, e, mx);
    free(fid); free(ref); free(ids); free(got);
    lma_st_close(f);
}

static void test_peft_made(void) {
    const char *names[] = {"llama_gqa", "qwen2", "qwen3"};
    for (int i = 0; i < 3; i++) {
        char dir[1024], ex[1200], what[64];
        snprintf(dir, sizeof dir, "%s/tests/ref/peft/peft_%s", LMA_SRC_DIR, names[i]);
        snprintf(ex, sizeof ex, "%s/expected.safetensors", dir);
        lma_model *m = NULL;
        CHECK_OK(load_base(names[i], &m));
        if (!m) continue;
        CHECK_OK(lma_adapter_load(m, dir));
        snprintf(what, sizeof what, "PEFT-made %s", names[i]);
        if (m->lora) compare_logits(m, ex, what);
        lma_model_free(m);
    }
}

static void test_lmadapt_made(const char *tmp) {
    for (int i = 0; i < (int)(sizeof written / sizeof written[0]); i++) {
        char dir[512], ref[1024], path[1200], what[64];
        snprintf(dir, sizeof dir, "%s/%s", tmp, written[i].model);
        lma_model *m = NULL;
        CHECK_OK(write_adapter(i, dir, &m));
        if (!m) continue;
        snprintf(ref, sizeof ref, "%s/tests/ref/peft/lmadapt_%s.json", LMA_SRC_DIR, written[i].model);
        cJSON *j = NULL;
        CHECK_OK(lma_json_load(ref, &j));
        const cJSON *files = j ? cJSON_GetObjectItemCaseSensitive(j, "files") : NULL, *it;
        int nf = 0;
        cJSON_ArrayForEach(it, files) {
            snprintf(path, sizeof path, "%s/%s", dir, it->string);
            char *d = NULL;
            size_t len = 0;
            CHECK_OK(lma_read_file(path, &d, &len));
            char hx[20];
            snprintf(hx, sizeof hx, "%016llx", (unsigned long long)fnv1a((unsigned char *)d, len));
            CHECK(cJSON_IsString(it) && !strcmp(hx, it->valuestring), "%s/%s: bytes are the ones PEFT loaded",
                  written[i].model, it->string);
            free(d);
            nf++;
        }
        CHECK(nf == 2, "%s: PEFT read adapter_config.json and adapter_model.safetensors (%d files)", written[i].model, nf);
        int64_t pt = -1, pa = -1;
        CHECK_OK(lma_json_int(j, "peft_trainable_params", 1, ref, &pt));
        CHECK_OK(lma_json_int(j, "peft_all_params", 1, ref, &pa));
        size_t tr, all;
        lma_lora_counts(m, &tr, &all);
        CHECK((int64_t)tr == pt && (int64_t)all == pa, "%s: counts %zu / %zu == PEFT's %lld / %lld", written[i].model,
              tr, all, (long long)pt, (long long)pa);
        snprintf(path, sizeof path, "%s/tests/ref/peft/lmadapt_%s.safetensors", LMA_SRC_DIR, written[i].model);
        snprintf(what, sizeof what, "lmadapt-made %s", written[i].model);
        compare_logits(m, path, what);
        /* and the reloaded dir gives the same */
        lma_model *r = NULL;
        CHECK_OK(load_base(written[i].model, &r));
        if (r) {
            CHECK_OK(lma_adapter_load(r, dir));
            CHECK(r->lora && r->lora->scale == m->lora->scale && r->lora->p.targets == m->lora->p.targets,
                  "%s: reloaded config matches", written[i].model);
            if (r->lora) compare_logits(r, path, "  reloaded");
        }
        lma_model_free(r);
        cJSON_Delete(j);
        lma_model_free(m);
    }
}

static void test_refusals(const char *tmp) {
    char dir[512], path[600], cmd[1400];
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    CHECK_OK(write_adapter(0, dir, NULL));
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    lma_model *m = NULL;
    CHECK_OK(load_base("llama_gqa", &m));
    if (!m) return;
    snprintf(cmd, sizeof cmd, "sed -i -E 's/\"use_dora\":[[:space:]]*false/\"use_dora\": true/' %s", path);
    CHECK(system(cmd) == 0, "edit config");
    CHECK(lma_adapter_load(m, dir) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "use_dora"), "DoRA refused: %s",
          lma_last_error());
    lma_clear_error();
    CHECK(m->lora == NULL && !m->frozen, "a refused adapter leaves the model as it was");
    CHECK_OK(write_adapter(0, dir, NULL));
    snprintf(cmd, sizeof cmd, "sed -i -E 's/\"r\":[[:space:]]*4/\"r\": 5/' %s", path);
    CHECK(system(cmd) == 0, "edit config");
    CHECK(lma_adapter_load(m, dir) == LMA_ERR_SHAPE && strstr(lma_last_error(), "lora_A"), "rank mismatch names the tensor: %s",
          lma_last_error());
    lma_clear_error();
    CHECK_OK(write_adapter(0, dir, NULL));
    snprintf(cmd, sizeof cmd, "sed -i -E 's/\"v_proj\",/\"v_proj\", \"lm_head\",/' %s", path);
    CHECK(system(cmd) == 0, "edit config");
    CHECK(lma_adapter_load(m, dir) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "lm_head"),
          "lm_head target refused: %s", lma_last_error());
    lma_clear_error();
    lma_model_free(m);
    /* an adapter for another model's shapes (qwen3: head_dim 32, so q/k/v/o differ) */
    CHECK_OK(load_base("qwen3", &m));
    CHECK_OK(write_adapter(0, dir, NULL));
    CHECK(m && lma_adapter_load(m, dir) == LMA_ERR_SHAPE && strstr(lma_last_error(), "_proj.lora_"), "a llama_gqa adapter does not load on qwen3: %s", lma_last_error());
    lma_clear_error();
    lma_model_free(m);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        lma_status s = LMA_OK;
        for (int i = 0; i < (int)(sizeof written / sizeof written[0]) && s == LMA_OK; i++) {
            char dir[2048];
            snprintf(dir, sizeof dir, "%s/%s", argv[2], written[i].model);
            s = write_adapter(i, dir, NULL);
        }
        if (s != LMA_OK) fprintf(stderr, "%s\n", lma_last_error());
        return s == LMA_OK ? 0 : 1;
    }
    char tmp[] = "/tmp/lma_adapter_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    test_peft_made();
    test_lmadapt_made(tmp);
    test_refusals(tmp);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
