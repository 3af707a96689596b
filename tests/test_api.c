/* The public API as a program outside the tree sees it: only <lmadapt.h>, linked
 * against liblmadapt.so (tests/CMakeLists.txt), so a function that is not exported
 * fails the link. Checks:
 *  - version macros = lma_version(); errors: a bad path, an unknown device, bad
 *    arguments each return their status with a message in lma_last_error();
 *  - lma_score_ids on tests/ref/models/llama_gqa equals transformers' log-probs
 *    (expected.safetensors logprobs0, within 1e-5);
 *  - lma_generate_text, greedy, equals transformers' generate (tests/ref/generate.json),
 *    and lma_generate_batch_text equals it prompt by prompt,
 *    the per-token callback sees every token and can stop the generation;
 *  - tokenizer encode/decode round trip and chat render (tests/ref/tok/bl);
 *  - lma_train: chat SFT with LoRA and text training of all weights on a tiny model
 *    written here, progress callback, stop from the callback, the run folder. */
#include <lmadapt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *d = malloc((size_t)sz + 1);
    if (d && fread(d, 1, (size_t)sz, f) != (size_t)sz) { free(d); d = NULL; }
    fclose(f);
    if (d) { d[sz] = 0; if (n) *n = (size_t)sz; }
    return d;
}

/* The F32 tensor `name` of a safetensors file (a few lines of parsing: enough for the
 * fixture, whose header the test trusts). Returns a malloc'd array, *n values. */
static float *st_tensor(const char *file, size_t len, const char *name, size_t *n) {
    uint64_t hl;
    memcpy(&hl, file, 8);
    char key[128];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *h = file + 8, *k = strstr(h, key);
    if (!k || k > h + hl) return NULL;
    const char *o = strstr(k, "\"data_offsets\"");
    unsigned long long a, b;
    if (!o || sscanf(strchr(o, '[') + 1, "%llu , %llu", &a, &b) != 2 || 8 + hl + b > len) return NULL;
    *n = (size_t)(b - a) / 4;
    float *v = malloc(b - a);
    memcpy(v, h + hl + a, b - a);
    return v;
}

/* The ints of the JSON array after `"key": [` that follows `after` in s. */
static int json_ints(const char *s, const char *after, const char *key, int32_t *out, int cap) {
    const char *p = strstr(s, after);
    char k[64];
    snprintf(k, sizeof k, "\"%s\"", key);
    if (!p || !(p = strstr(p, k)) || !(p = strchr(p, '['))) return 0;
    int n = 0;
    for (p++; *p && *p != ']' && n < cap;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p) { p++; continue; }
        out[n++] = (int32_t)x;
        p = end;
    }
    return n;
}

typedef struct { int calls, stop_after, last_id_minus1; size_t text_len; } tok_counter;

static int count_tokens(void *ud, int32_t id, const char *text, size_t len) {
    tok_counter *c = ud;
    if (id < 0) c->last_id_minus1++;
    else c->calls++;
    c->text_len += len;
    (void)text;
    return c->stop_after > 0 && c->calls >= c->stop_after;
}

typedef struct { int calls, stop_at; float first, last; int steps; } step_counter;

static int count_steps(void *ud, const lma_train_progress *p) {
    step_counter *c = ud;
    if (!c->calls) c->first = p->loss;
    c->calls++;
    c->last = p->loss;
    c->steps = p->steps;
    return c->stop_at > 0 && p->step >= c->stop_at;
}

/* A tiny random Llama (vocab V, one layer, tied embeddings) in an HF folder. */
static int write_tiny_model(const char *dir, int V) {
    static const struct { const char *name; int r, c; } t[] = {
        {"model.embed_tokens.weight", -1, 32},
        {"model.layers.0.input_layernorm.weight", 0, 32},
        {"model.layers.0.self_attn.q_proj.weight", 32, 32},
        {"model.layers.0.self_attn.k_proj.weight", 16, 32},
        {"model.layers.0.self_attn.v_proj.weight", 16, 32},
        {"model.layers.0.self_attn.o_proj.weight", 32, 32},
        {"model.layers.0.post_attention_layernorm.weight", 0, 32},
        {"model.layers.0.mlp.gate_proj.weight", 64, 32},
        {"model.layers.0.mlp.up_proj.weight", 64, 32},
        {"model.layers.0.mlp.down_proj.weight", 32, 64},
        {"model.norm.weight", 0, 32},
    };
    enum { NT = sizeof t / sizeof t[0] };
    char path[512], hdr[4096];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 32, "
               "\"intermediate_size\": 64, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
               "\"num_key_value_heads\": 1, \"head_dim\": 16, \"max_position_embeddings\": 128, "
               "\"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, \"vocab_size\": %d, "
               "\"tie_word_embeddings\": true, \"hidden_act\": \"silu\", \"bos_token_id\": 0, \"eos_token_id\": 1}\n", V);
    fclose(f);
    size_t off = 0, k = (size_t)snprintf(hdr, sizeof hdr, "{");
    for (int i = 0; i < NT; i++) {
        size_t rows = t[i].r < 0 ? (size_t)V : (size_t)t[i].r, n = (t[i].r ? rows : 1) * (size_t)t[i].c;
        if (t[i].r) k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s\"%s\": {\"dtype\": \"F32\", \"shape\": [%zu, %d], "
                                          "\"data_offsets\": [%zu, %zu]}", i ? ", " : "", t[i].name, rows, t[i].c, off, off + 4 * n);
        else k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s\"%s\": {\"dtype\": \"F32\", \"shape\": [%d], "
                                   "\"data_offsets\": [%zu, %zu]}", i ? ", " : "", t[i].name, t[i].c, off, off + 4 * n);
        off += 4 * n;
    }
    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "}");
    while (k % 8) hdr[k++] = ' ';
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!(f = fopen(path, "wb"))) return 0;
    uint64_t hl = k;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, k, f);
    uint32_t x = 12345;
    for (int i = 0; i < NT; i++) {
        size_t n = (t[i].r ? (t[i].r < 0 ? (size_t)V : (size_t)t[i].r) : 1) * (size_t)t[i].c;
        for (size_t j = 0; j < n; j++) {
            x = x * 1664525u + 1013904223u;
            float v = t[i].r ? ((float)(x >> 8) / 16777216.0f - 0.5f) * 0.1f : 1.0f;
            fwrite(&v, 4, 1, f);
        }
    }
    fclose(f);
    return 1;
}

/* The fixture's first row of ids and transformers' log-probs for it. */
static int fixture(int *ids, float *lp) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/ref/models/llama_gqa/expected.safetensors", LMA_SRC_DIR);
    size_t flen = 0, nid = 0, nlp = 0;
    char *fx = slurp(path, &flen);
    float *fid = fx ? st_tensor(fx, flen, "input_ids", &nid) : NULL, *flp = fx ? st_tensor(fx, flen, "logprobs0", &nlp) : NULL;
    int ok = fid && flp && nid == 24 && nlp == 11;
    for (int i = 0; ok && i < 12; i++) ids[i] = (int)fid[i];
    for (int i = 0; ok && i < 11; i++) lp[i] = flp[i];
    free(fid); free(flp); free(fx);
    return ok;
}

/* tests/api_install.sh: --fixture-ids prints the ids ("a,b,..."); --score-output FILE
 * checks the lines "i<TAB>id<TAB>logprob" of examples/score against the fixture. */
static int tool(int argc, char **argv) {
    int ids[12];
    float lp[11];
    if (!fixture(ids, lp)) { fprintf(stderr, "test_api: fixture unreadable\n"); return 1; }
    if (!strcmp(argv[1], "--fixture-ids")) {
        for (int i = 0; i < 12; i++) printf("%s%d", i ? "," : "", ids[i]);
        printf("\n");
        return 0;
    }
    if (strcmp(argv[1], "--score-output") || argc != 3) { fprintf(stderr, "test_api: bad arguments\n"); return 2; }
    FILE *f = fopen(argv[2], "r");
    char line[512];
    int n = 0;
    double worst = 0;
    while (f && fgets(line, sizeof line, f)) {
        int i, id;
        double x;
        if (sscanf(line, "%d\t%d\t%lf", &i, &id, &x) != 3) continue;
        if (i != n + 1 || i > 11 || id != ids[i]) { fprintf(stderr, "test_api: line %d: index %d id %d\n", n + 1, i, id); return 1; }
        worst = fmax(worst, fabs(x - lp[i - 1]));
        n++;
    }
    if (f) fclose(f);
    printf("%d log-probs, max |diff| vs transformers %.3g\n", n, worst);
    return n == 11 && worst < 1e-5 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1) return tool(argc, argv);
    char dir[1024], path[1200];
    lma_set_threads(2);

    /* ---- version and errors ---- */
    char v[64];
    snprintf(v, sizeof v, "%d.%d.%d", LMA_VERSION_MAJOR, LMA_VERSION_MINOR, LMA_VERSION_PATCH);
    CHECK(!strcmp(v, LMA_VERSION_STRING) && !strcmp(lma_version(), LMA_VERSION_STRING), "version %s / %s / %s", v,
          LMA_VERSION_STRING, lma_version());
    lma_model *m = (lma_model *)&m; /* must come back NULL */
    lma_status s = lma_model_load("/nonexistent/lmadapt-model", "cpu", &m);
    CHECK(s == LMA_ERR_IO && m == NULL, "bad path -> %s", lma_status_name(s));
    CHECK(strstr(lma_last_error(), "/nonexistent/lmadapt-model") != NULL, "the message names the path: '%s'",
          lma_last_error());
    lma_clear_error();
    CHECK(!strcmp(lma_last_error(), ""), "cleared: '%s'", lma_last_error());
    snprintf(dir, sizeof dir, "%s/tests/ref/models/llama_gqa", LMA_SRC_DIR);
    s = lma_model_load(dir, "tpu", &m);
    CHECK(s == LMA_ERR_UNSUPPORTED && m == NULL && strstr(lma_last_error(), "tpu"), "unknown device -> %s: %s",
          lma_status_name(s), lma_last_error());
    lma_clear_error();
    lma_model_free(NULL);
    lma_tok_free(NULL);

    /* ---- scoring = transformers ---- */
    CHECK_OK(lma_model_load(dir, "cpu", &m));
    if (!m) TEST_END();
    CHECK(lma_model_n_vocab(m) == 256 && lma_model_n_ctx(m) == 128 && lma_model_n_params(m) > 0 &&
          !strcmp(lma_model_device(m), "cpu"), "model info %d %d %zu %s", lma_model_n_vocab(m), lma_model_n_ctx(m),
          lma_model_n_params(m), lma_model_device(m));
    int ids0[12];
    float flp[11];
    int have = fixture(ids0, flp);
    CHECK(have, "fixture input_ids and logprobs0");
    if (have) {
        int ids[12];
        float lp[11];
        memcpy(ids, ids0, sizeof ids);
        CHECK_OK(lma_score_ids(m, ids, 12, lp));
        double worst = 0;
        for (int i = 0; i < 11; i++) worst = fmax(worst, fabs((double)lp[i] - flp[i]));
        CHECK(worst < 1e-5, "lma_score_ids vs transformers: max |diff| %.3g", worst);
        double nll = 0;
        for (int i = 0; i < 11; i++) nll -= flp[i];
        CHECK(fabs(lma_perplexity(lp, 11) - exp(nll / 11)) < 1e-3 * exp(nll / 11), "perplexity %g", lma_perplexity(lp, 11));
        s = lma_score_ids(m, ids, 1, lp);
        CHECK(s == LMA_ERR_ARG && *lma_last_error(), "one token -> %s: %s", lma_status_name(s), lma_last_error());
        lma_clear_error();
        ids[3] = 256;
        s = lma_score_ids(m, ids, 12, lp);
        CHECK(s == LMA_ERR_ARG && strstr(lma_last_error(), "ids[3]"), "id out of range -> %s: %s", lma_status_name(s),
              lma_last_error());
        lma_clear_error();
    }

    /* ---- greedy generation = transformers ---- */
    snprintf(path, sizeof path, "%s/tests/ref/generate.json", LMA_SRC_DIR);
    char *gj = slurp(path, NULL);
    int32_t prompt[64], want[64];
    int np = gj ? json_ints(gj, "\"llama_gqa\"", "prompt", prompt, 64) : 0;
    int nw = gj ? json_ints(gj, "\"llama_gqa\"", "generated", want, 64) : 0;
    CHECK(np > 0 && nw > 0, "generate.json has llama_gqa (%d, %d)", np, nw);
    free(gj);
    if (np > 0 && nw > 0) {
        lma_generate_params gp = lma_generate_default_params();
        CHECK(gp.max_tokens == 256 && gp.temperature == 0 && gp.top_p == 1 && gp.repetition_penalty == 1, "defaults");
        static const int32_t none[1] = {0};
        gp.max_tokens = nw;
        gp.stop_ids = none; /* no stop token: transformers' fixture ran min_new_tokens = max */
        gp.n_stop_ids = 0;
        tok_counter tc = {0};
        gp.on_token = count_tokens;
        gp.user_data = &tc;
        int32_t *got = NULL;
        size_t ng = 0;
        char *text = (char *)1;
        CHECK_OK(lma_generate_text(m, NULL, prompt, (size_t)np, &gp, &text, NULL, &got, &ng));
        CHECK(ng == (size_t)nw && got && !memcmp(got, want, ng * sizeof *got), "greedy ids = transformers (%zu)", ng);
        CHECK(text == NULL && tc.calls == nw && tc.text_len == 0, "no tokenizer: no text, %d calls", tc.calls);
        lma_free(got);
        tc = (tok_counter){.stop_after = 3};
        CHECK_OK(lma_generate_text(m, NULL, prompt, (size_t)np, &gp, NULL, NULL, &got, &ng));
        CHECK(ng == 3 && tc.calls == 3 && !memcmp(got, want, 3 * sizeof *got), "the callback stops after 3: %zu", ng);
        lma_free(got);
        s = lma_generate_text(m, NULL, prompt, 0, &gp, NULL, NULL, NULL, NULL);
        CHECK(s == LMA_ERR_ARG, "empty prompt -> %s", lma_status_name(s));
        lma_clear_error();
        /* batched: 4 prompts (the fixture's, and three others of other lengths), 2 at a time,
         * each = lma_generate_text alone, the first = transformers */
        int32_t others[3][8] = {{5, 9, 2}, {7, 7, 1, 3, 11, 2}, {4}};
        const int32_t *ps[4] = {prompt, others[0], others[1], others[2]};
        size_t nps[4] = {(size_t)np, 3, 6, 1}, nb[4];
        int32_t *bids[4];
        gp.on_token = NULL;
        CHECK_OK(lma_generate_batch_text(m, NULL, ps, nps, 4, 2, &gp, NULL, NULL, bids, nb));
        int same = nb[0] == (size_t)nw && bids[0] && !memcmp(bids[0], want, nb[0] * sizeof *bids[0]);
        for (int i = 0; i < 4; i++) {
            CHECK_OK(lma_generate_text(m, NULL, ps[i], nps[i], &gp, NULL, NULL, &got, &ng));
            same &= ng == nb[i] && got && bids[i] && !memcmp(got, bids[i], ng * sizeof *got);
            lma_free(got);
            lma_free(bids[i]);
        }
        CHECK(same, "lma_generate_batch_text: each prompt's ids = alone, the first = transformers");
        nps[2] = 0;
        s = lma_generate_batch_text(m, NULL, ps, nps, 4, 2, &gp, NULL, NULL, bids, nb);
        CHECK(s == LMA_ERR_ARG && bids[0] == NULL, "an empty prompt fails the batch -> %s", lma_status_name(s));
        lma_clear_error();
    }
    lma_model_free(m);

    /* ---- tokenizer and chat template ---- */
    lma_tokenizer *tok = NULL;
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    CHECK_OK(lma_tok_load(dir, &tok));
    if (!tok) TEST_END();
    const char *hello = "Hello, world! Grüße.";
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *back = NULL;
    CHECK_OK(lma_tok_encode(tok, hello, strlen(hello), 0, &ids, &n));
    CHECK_OK(lma_tok_decode(tok, ids, n, 0, &back, &len));
    CHECK(n > 2 && back && len == strlen(hello) && !strcmp(back, hello), "round trip '%s'", back ? back : "(null)");
    lma_free(ids); lma_free(back);
    int V = lma_tok_vocab_size(tok);
    CHECK(V > 1000 && lma_tok_eos_id(tok) >= 0 && lma_tok_bos_id(tok) >= 0 && lma_tok_chat_template(tok) &&
          lma_tok_token_to_id(tok, "<|eot_id|>") == lma_tok_eos_id(tok) && lma_tok_is_special(tok, lma_tok_eos_id(tok)),
          "tokenizer info V %d", V);
    const char *eot = lma_tok_id_to_token(tok, lma_tok_eos_id(tok));
    CHECK(eot && !strcmp(eot, "<|eot_id|>"), "id_to_token %s", eot ? eot : "(null)");
    lma_chat_msg msgs[2] = {{"user", "Hi"}, {"assistant", "Hello."}};
    char *chat = NULL;
    size_t *spans = NULL, nsp = 0;
    CHECK_OK(lma_chat_render(tok, NULL, msgs, 2, 0, &chat, &len, &spans, &nsp));
    CHECK(chat && strstr(chat, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>") && nsp == 1 && spans &&
          !strncmp(chat + spans[0], "Hello.<|eot_id|>", spans[1] - spans[0]), "llama3 render: %s", chat ? chat : "");
    lma_free(chat); lma_free(spans);
    s = lma_chat_render(tok, "nosuchformat", msgs, 2, 0, &chat, &len, NULL, NULL);
    CHECK(s == LMA_ERR_ARG && chat == NULL && strstr(lma_last_error(), "nosuchformat"), "unknown format -> %s", lma_status_name(s));
    lma_clear_error();

    /* ---- training ---- */
    char tmp[] = "/tmp/lma_api_XXXXXX", mdir[256], run[256];
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(mdir, sizeof mdir, "%s/model", tmp);
    CHECK(write_tiny_model(mdir, V), "tiny model written");
    CHECK_OK(lma_model_load(mdir, "cpu", &m));
    if (!m) TEST_END();
    /* chat SFT with a LoRA adapter */
    lma_train_params tp = lma_train_default_params();
    CHECK(tp.steps == 100 && tp.batch == 8 && tp.seq == 256 && tp.quiet == 1 && tp.lora_r == 0, "train defaults");
    snprintf(path, sizeof path, "%s/tests/ref/sft/bl.jsonl", LMA_SRC_DIR);
    snprintf(run, sizeof run, "%s/sft", tmp);
    tp.kind = LMA_TRAIN_CHAT;
    tp.data = path;
    tp.out_dir = run;
    tp.steps = 6; tp.batch = 2; tp.seq = 64; tp.lr = 1e-2f; tp.warmup_steps = 0;
    tp.lora_r = 4;
    step_counter sc = {0};
    tp.on_step = count_steps;
    tp.user_data = &sc;
    float final = 0;
    CHECK_OK(lma_train(m, tok, &tp, &final));
    CHECK(sc.calls == 6 && sc.steps == 6 && final == sc.last && sc.last < sc.first, "sft lora: %d steps, loss %g -> %g",
          sc.calls, sc.first, sc.last);
    snprintf(path, sizeof path, "%s/final/adapter_config.json", run);
    CHECK(access(path, F_OK) == 0, "%s", path);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    CHECK(access(path, F_OK) == 0, "%s", path);
    s = lma_train(m, tok, &tp, NULL); /* a second adapter on top */
    CHECK(s == LMA_ERR_ARG, "lora_r with an adapter attached -> %s", lma_status_name(s));
    lma_clear_error();
    CHECK_OK(lma_adapter_merge(m));
    lma_model_free(m);
    m = NULL;
    /* text, all weights; the callback stops at step 2 */
    CHECK_OK(lma_model_load(mdir, NULL, &m));
    if (!m) TEST_END();
    snprintf(path, sizeof path, "%s/text.txt", tmp);
    FILE *f = fopen(path, "w");
    for (int i = 0; f && i < 40; i++) fprintf(f, "Paragraph %d: the quick brown fox jumps over the lazy dog.\n\n", i);
    if (f) fclose(f);
    snprintf(run, sizeof run, "%s/text", tmp);
    tp = lma_train_default_params();
    tp.data = path;
    tp.out_dir = run;
    tp.steps = 5; tp.batch = 2; tp.seq = 32;
    sc = (step_counter){.stop_at = 2};
    tp.on_step = count_steps;
    tp.user_data = &sc;
    s = lma_train(m, tok, &tp, NULL);
    CHECK(s == LMA_ERR_INTERRUPTED && sc.calls == 2, "stopped by the callback -> %s after %d steps", lma_status_name(s),
          sc.calls);
    lma_clear_error();
    snprintf(path, sizeof path, "%s/ckpt-000002/model.safetensors", run);
    CHECK(access(path, F_OK) == 0, "checkpoint at the stop: %s", path);
    tp.resume = 1;
    sc = (step_counter){0};
    CHECK_OK(lma_train(m, tok, &tp, &final));
    CHECK(sc.calls == 3 && isfinite(final), "resumed: %d more steps, final loss %g", sc.calls, final);
    snprintf(path, sizeof path, "%s/final/model.safetensors", run);
    CHECK(access(path, F_OK) == 0, "%s", path);
    lma_model_free(m);
    lma_tok_free(tok);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    TEST_END();
}
