/* LoRA / QLoRA training through the CLI:
 *  - sft --method lora|qlora prints PEFT's trainable-parameter line with the
 *    right counts, writes PEFT adapter dirs (checkpoints hold the adapter, not
 *    the base weights) and lowers the loss;
 *  - resuming from a checkpoint (dropout on) gives bitwise the same losses and
 *    the same final adapter bytes as the uninterrupted run;
 *  - lmadapt merge writes a model whose logits equal base + adapter;
 *  - score --adapter scores with the adapter (same NLL as the merged model). */
#include <sys/stat.h>
#include "core/io.h"
#include "model/adapter.h"
#include "model/presets.h"
#include "test.h"

static char tmp[64];

static int sh(const char *fmt, const char *a, const char *b, const char *c) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b, c);
    return system(cmd);
}

static char *slurp(const char *path) {
    char *d = NULL;
    size_t n = 0;
    if (lma_read_file(path, &d, &n) != LMA_OK) { lma_clear_error(); return NULL; }
    return d;
}

/* the "loss" values of metrics.jsonl, concatenated */
static char *losses(const char *run) {
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *d = slurp(path);
    if (!d) return NULL;
    char *out = calloc(strlen(d) + 1, 1);
    for (char *p = d; (p = strstr(p, "\"loss\": ")); p++) {
        char *e = strchr(p, ',');
        strncat(out, p, (size_t)(e - p));
        strcat(out, ";");
    }
    free(d);
    return out;
}

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int ok = lma_read_file(a, &x, &nx) == LMA_OK && lma_read_file(b, &y, &ny) == LMA_OK && nx == ny &&
             !memcmp(x, y, nx);
    lma_clear_error();
    free(x); free(y);
    return ok;
}

static void make_base(const char *dir) {
    lma_config c;
    CHECK_OK(lma_config_preset("tiny", 1200, 256, &c));
    c.n_kv_heads = 2; /* GQA */
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) return;
    CHECK_OK(lma_model_init_random(m, 11, 0.02f));
    CHECK_OK(lma_model_save(m, dir, 0, 0));
    lma_model_free(m);
    CHECK(sh("cp %s/tests/ref/tok/bl/tokenizer.json %s/tests/ref/tok/bl/tokenizer_config.json %s/", LMA_SRC_DIR,
             LMA_SRC_DIR, dir) == 0, "copy tokenizer");
}

static void train_and_resume(const char *base, const char *method) {
    char run[256], run2[256], cmd[4096], path[512], p2[512];
    snprintf(run, sizeof run, "%s/%s", tmp, method);
    snprintf(run2, sizeof run2, "%s/%s_resumed", tmp, method);
    const char *flags = "--steps 8 --save-every 4 --keep 5 --batch 2 --seq 64 --threads 2 --lr 5e-3 --warmup 1 "
                        "--lora-r 4 --lora-alpha 8 --lora-dropout 0.1 --lora-targets all --template llama3";
    snprintf(cmd, sizeof cmd, "%s sft --model %s --data %s/tests/ref/sft/bl.jsonl --method %s --out %s %s 2>/dev/null",
             LMA_CLI, base, LMA_SRC_DIR, method, run, flags);
    FILE *p = popen(cmd, "r");
    char out[4096] = {0};
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    CHECK(p && pclose(p) == 0, "%s: sft runs: %s", method, out);
    /* tiny preset, GQA 2 kv heads: per layer r*(in+out) over q,k,v,o,gate,up,down */
    lma_config c;
    lma_config_preset("tiny", 1200, 256, &c);
    long C = c.hidden_size, I = c.intermediate_size, KVD = 2 * c.head_dim, r = 4;
    long per = r * ((C + C) + (C + KVD) * 2 + (C + C) + 2 * (C + I) + (I + C));
    long tr = per * c.n_layers;
    lma_model *bm = NULL;
    CHECK_OK(lma_model_load_ex(base, lma_backend_cpu(), 0, &bm));
    long all = bm ? (long)lma_model_num_params(bm) + tr : 0;
    lma_model_free(bm);
    char want[256];
    snprintf(want, sizeof want, "trainable params: %ld,%03ld || all params: %ld,%03ld,%03ld || trainable%%: %.4f",
             tr / 1000, tr % 1000, all / 1000000, all / 1000 % 1000, all % 1000, 100.0 * tr / all);
    CHECK(strstr(out, want) != NULL, "%s: PEFT line '%s' in: %s", method, want, out);
    snprintf(path, sizeof path, "%s/final/adapter_model.safetensors", run);
    CHECK(lma_file_exists(path), "%s: final adapter written", method);
    snprintf(path, sizeof path, "%s/ckpt-000004/adapter_config.json", run);
    snprintf(p2, sizeof p2, "%s/ckpt-000004/model.safetensors", run);
    CHECK(lma_file_exists(path) && !lma_file_exists(p2), "%s: checkpoints hold the adapter, not the base", method);
    char *la = losses(run);
    double first = la ? atof(la + 8) : 0, last = 0;
    for (char *q = la; q && (q = strstr(q, "\"loss\": ")); q++) last = atof(q + 8);
    CHECK(la && last < first, "%s: loss goes down (%g -> %g)", method, first, last);

    /* resume from ckpt-4 of a copy */
    CHECK(sh("rm -rf %s && cp -r %s %s", run2, run, run2) == 0, "copy run");
    CHECK(sh("rm -rf %s/ckpt-000008 %s/final && printf 'ckpt-000004\\n' > %s/latest", run2, run2, run2) == 0,
          "roll back to ckpt-4");
    snprintf(cmd, sizeof cmd, "%s sft --model %s --data %s/tests/ref/sft/bl.jsonl --method %s --resume %s %s "
             ">/dev/null 2>&1", LMA_CLI, base, LMA_SRC_DIR, method, run2, flags);
    CHECK(system(cmd) == 0, "%s: resumed run finishes", method);
    char *lb = losses(run2);
    CHECK(la && lb && !strcmp(la, lb), "%s: resumed losses are bitwise identical:\n %s\n %s", method, la, lb);
    snprintf(path, sizeof path, "%s/final/adapter_model.safetensors", run);
    snprintf(p2, sizeof p2, "%s/final/adapter_model.safetensors", run2);
    CHECK(same_file(path, p2), "%s: resumed final adapter is byte-identical", method);
    free(la); free(lb);
}

static void logits(const char *model, const char *adapter, const int32_t *ids, int T, float *out) {
    lma_model *m = NULL;
    CHECK_OK(lma_model_load_ex(model, lma_backend_cpu(), 0, &m));
    if (!m) return;
    if (adapter) CHECK_OK(lma_adapter_load(m, adapter));
    CHECK_OK(lma_model_forward(m, ids, NULL, NULL, 1, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(m, out));
    lma_model_free(m);
}

static void test_merge(const char *base) {
    char adapter[256], merged[256], cmd[4096];
    snprintf(adapter, sizeof adapter, "%s/lora/final", tmp);
    snprintf(merged, sizeof merged, "%s/merged", tmp);
    snprintf(cmd, sizeof cmd, "%s merge --model %s --adapter %s --out %s >/dev/null", LMA_CLI, base, adapter, merged);
    CHECK(system(cmd) == 0, "merge runs");
    int T = 12, V = 1200;
    int32_t ids[12];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)(i * 97 % V);
    float *a = malloc((size_t)T * V * sizeof(float)), *b = malloc((size_t)T * V * sizeof(float)),
          *z = malloc((size_t)T * V * sizeof(float));
    logits(base, adapter, ids, T, a);
    logits(merged, NULL, ids, T, b);
    logits(base, NULL, ids, T, z);
    double e = 0, d = 0, mx = 0;
    for (int i = 0; i < T * V; i++) {
        e = fmax(e, fabs(a[i] - b[i]));
        d = fmax(d, fabs(a[i] - z[i]));
        mx = fmax(mx, fabs(a[i]));
    }
    CHECK(e <= 1e-5 * mx, "merged model logits == base + adapter (max abs %.3g, scale %.3g)", e, mx);
    CHECK(d > 1e-3 * mx, "the trained adapter changes the logits (%.3g)", d);
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", merged);
    CHECK(lma_file_exists(path), "merge copies the tokenizer");
    /* score --adapter == score on the merged model */
    char o1[4096] = {0}, o2[4096] = {0};
    snprintf(cmd, sizeof cmd, "%s score --model %s --adapter %s --ids 1,5,9,200,7,31", LMA_CLI, base, adapter);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(o1, 1, sizeof o1 - 1, p) : 0;
    o1[n] = 0;
    CHECK(p && pclose(p) == 0, "score --adapter exits 0");
    snprintf(cmd, sizeof cmd, "%s score --model %s --ids 1,5,9,200,7,31", LMA_CLI, merged);
    p = popen(cmd, "r");
    n = p ? fread(o2, 1, sizeof o2 - 1, p) : 0;
    o2[n] = 0;
    CHECK(p && pclose(p) == 0, "score on the merged model exits 0");
    const char *t1 = strstr(o1, "total NLL: "), *t2 = strstr(o2, "total NLL: ");
    double n1 = t1 ? atof(t1 + 11) : -1, n2 = t2 ? atof(t2 + 11) : -2;
    CHECK(t1 && t2 && fabs(n1 - n2) <= 1e-5 * fabs(n2), "score --adapter == score on the merged model: '%s' vs '%s'", o1, o2);
    free(a); free(b); free(z);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/lma_lora_train_XXXXXX");
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char base[256];
    snprintf(base, sizeof base, "%s/base", tmp);
    make_base(base);
    train_and_resume(base, "lora");
    train_and_resume(base, "qlora");
    test_merge(base);
    CHECK(sh("rm -rf %s%s%s", tmp, "", "") == 0, "cleanup");
    TEST_END();
}
