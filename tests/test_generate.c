/* infer: KV-cache logits equal full-recompute logits; greedy continuations
 * (plain and with repetition penalty 1.3) equal transformers' generate on every
 * fixture model (tests/ref/make_generate_fixtures.py); sampler properties;
 * stop strings cut the text and streaming never splits it differently; the batched
 * decode step (continuous batching: sequences at different positions, each with its own
 * cache, joining and leaving) equals each sequence run alone, and lma_generate_batch's
 * requests each equal lma_generate alone. */
#include <dirent.h>
#include "core/json.h"
#include "infer/generate.h"
#include "infer/json_constraint.h"
#include "test.h"

static void kv_vs_full(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    lma_model *m = NULL;
    CHECK_OK(lma_model_load_ex(dir, lma_backend_cpu(), 0, &m));
    if (!m) return;
    enum { T = 12, P = 5 };
    int V = m->cfg.vocab_size;
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (i * 37 + 11) % V;
    float *full = malloc((size_t)T * V * sizeof(float)), *inc = malloc((size_t)T * V * sizeof(float));
    CHECK_OK(lma_model_forward(m, ids, NULL, NULL, 1, T, 0, 1, NULL));
    CHECK_OK(lma_model_logits(m, full));
    lma_kv_cache *kv = NULL;
    CHECK_OK(lma_kv_create(m, T, &kv));
    CHECK_OK(lma_model_forward_cached(m, kv, ids, P, inc, 1));
    for (int t = P; t < T; t++) CHECK_OK(lma_model_forward_cached(m, kv, ids + t, 1, inc + (size_t)t * V, 0));
    double err = 0, mx = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) { err = fmax(err, fabs(inc[i] - full[i])); mx = fmax(mx, fabs(full[i])); }
    CHECK(err <= 1e-5 * mx, "%s: KV-cache logits equal full recompute (max err %.3g)", name, err);
    CHECK(lma_model_forward_cached(m, kv, ids, 1, inc, 0) == LMA_ERR_ARG, "%s: a full cache refuses more", name);
    lma_clear_error();
    lma_kv_free(m, kv);
    free(full); free(inc);
    lma_model_free(m);
}

static void greedy_vs_transformers(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/ref/generate.json", LMA_SRC_DIR);
    cJSON *j = NULL;
    CHECK_OK(lma_json_load(path, &j));
    if (!j) return;
    const cJSON *it;
    int count = 0;
    cJSON_ArrayForEach(it, j) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, it->string);
        lma_model *m = NULL;
        CHECK_OK(lma_model_load_ex(dir, lma_backend_cpu(), 0, &m));
        if (!m) continue;
        const cJSON *pr = cJSON_GetObjectItem(it, "prompt");
        int32_t prompt[16];
        int np = cJSON_GetArraySize(pr);
        for (int i = 0; i < np; i++) prompt[i] = cJSON_GetArrayItem(pr, i)->valueint;
        for (int rep = 0; rep < 2; rep++) {
            const cJSON *want = cJSON_GetObjectItem(it, rep ? "generated_rep1.3" : "generated");
            lma_gen_params gp = {.max_tokens = cJSON_GetArraySize(want), .sample = lma_sample_default_params()};
            if (rep) gp.sample.repetition_penalty = 1.3f;
            lma_gen_result r;
            CHECK_OK(lma_generate(m, NULL, prompt, (size_t)np, &gp, &r));
            int same = r.n_ids == (size_t)cJSON_GetArraySize(want);
            for (size_t i = 0; same && i < r.n_ids; i++) same = r.ids[i] == cJSON_GetArrayItem(want, (int)i)->valueint;
            CHECK(same, "%s: greedy%s continuation equals transformers' generate", it->string, rep ? " (rep 1.3)" : "");
            free(r.ids);
        }
        lma_model_free(m);
        count++;
    }
    CHECK(count >= 6, "%d models", count);
    cJSON_Delete(j);
}

static void sampler_properties(void) {
    enum { V = 5 };
    float base[V] = {1.0f, 2.5f, 0.3f, 2.4f, -1.0f}, l[V];
    lma_rng r;
    lma_rng_seed(&r, 1);
    lma_sample_params p = lma_sample_default_params();
    memcpy(l, base, sizeof l);
    CHECK(lma_sample(l, V, &p, NULL, 0, &r) == 1, "greedy = argmax");
    p.temperature = 1.0f; p.top_k = 1;
    memcpy(l, base, sizeof l);
    CHECK(lma_sample(l, V, &p, NULL, 0, &r) == 1, "top-k 1 = argmax");
    /* temperature 1 frequencies follow the softmax */
    p.top_k = 0;
    int hist[V] = {0}, n = 40000;
    for (int i = 0; i < n; i++) { memcpy(l, base, sizeof l); hist[lma_sample(l, V, &p, NULL, 0, &r)]++; }
    double z = 0, worst = 0;
    for (int i = 0; i < V; i++) z += exp(base[i]);
    for (int i = 0; i < V; i++) worst = fmax(worst, fabs(hist[i] / (double)n - exp(base[i]) / z));
    CHECK(worst < 0.01, "sampling frequencies follow the softmax (worst %.4f)", worst);
    /* top-p 0.5: only tokens 1 and 3 carry the first 50%+ of the mass (p1 ~ .43, p3 ~ .39) */
    p.top_p = 0.5f;
    int other = 0;
    for (int i = 0; i < 2000; i++) { memcpy(l, base, sizeof l); int t = lma_sample(l, V, &p, NULL, 0, &r); other += t != 1 && t != 3; }
    CHECK(other == 0, "top-p keeps the smallest set above p (%d others)", other);
    /* min-p 0.95: only the top token (token 3 is exp(-0.1) = 0.905 of it) */
    p.top_p = 1.0f; p.min_p = 0.95f;
    other = 0;
    for (int i = 0; i < 500; i++) { memcpy(l, base, sizeof l); other += lma_sample(l, V, &p, NULL, 0, &r) != 1; }
    CHECK(other == 0, "min-p drops tokens below min_p * p_max");
    /* repetition penalty (HF rule): positive logits divided, negative multiplied */
    lma_sample_params g = lma_sample_default_params();
    g.repetition_penalty = 2.0f;
    int32_t h[3] = {1, 4, 1};
    memcpy(l, base, sizeof l);
    CHECK(lma_sample(l, V, &g, h, 3, &r) == 3 && l[1] == 1.25f && l[4] == -2.0f && l[3] == 2.4f,
          "repetition penalty: %g %g", l[1], l[4]);
}

typedef struct { char buf[4096]; size_t len; int calls; } sink;
static void on_text(void *ctx, const char *t, size_t n) {
    sink *s = ctx;
    if (s->len + n < sizeof s->buf) { memcpy(s->buf + s->len, t, n); s->len += n; }
    s->calls++;
}

/* a 1-layer random model over the byte-level BPE test tokenizer (text worth streaming) */
static lma_model *bl_model(lma_tokenizer **tok) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    *tok = NULL;
    CHECK_OK(lma_tok_load(dir, tok));
    if (!*tok) return NULL;
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = lma_tok_vocab_size(*tok); c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = 1; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = 256;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = -1;
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) { lma_tok_free(*tok); *tok = NULL; return NULL; }
    CHECK_OK(lma_model_init_random(m, 3, 0.5f));
    return m;
}

static void stop_strings(void) {
    lma_tokenizer *tok = NULL;
    lma_model *m = bl_model(&tok);
    if (!m) return;
    int32_t prompt[3] = {300, 301, 302};
    lma_gen_params gp = {.max_tokens = 40, .sample = lma_sample_default_params(), .seed = 5};
    gp.sample.temperature = 1.0f;
    lma_gen_result a, b;
    sink s1 = {0};
    gp.on_text = on_text; gp.ctx = &s1;
    CHECK_OK(lma_generate(m, tok, prompt, 3, &gp, &a));
    CHECK(a.text && a.len == s1.len && !memcmp(a.text, s1.buf, a.len), "streamed text equals the final text");
    if (a.text && a.len > 12) {
        char stop[8];
        memcpy(stop, a.text + a.len / 2, 4);
        stop[4] = 0;
        const char *stops[1] = {stop};
        const char *first = strstr(a.text, stop);
        sink s2 = {0};
        gp.ctx = &s2;
        gp.stop_strings = stops; gp.n_stop_strings = 1;
        CHECK_OK(lma_generate(m, tok, prompt, 3, &gp, &b));
        CHECK(b.finish == LMA_FINISH_STOP && b.len == (size_t)(first - a.text) && !memcmp(b.text, a.text, b.len),
              "stop string '%s' cuts the text (%zu vs %zu)", stop, b.len, (size_t)(first - a.text));
        CHECK(s2.len == b.len && !memcmp(s2.buf, b.text, b.len), "the stop string is never streamed");
        free(b.ids); free(b.text);
    }
    free(a.ids); free(a.text);
    lma_model_free(m);
    lma_tok_free(tok);
}

/* lma_model_decode_batch vs lma_model_forward_cached of each sequence alone: three
 * sequences with prompts of 3, 6 and 9 tokens decode together, the second leaves after
 * 3 steps; the tokens fed are the single path's greedy choices. */
static void decode_batch_vs_single(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    lma_model *m = NULL;
    CHECK_OK(lma_model_load_ex(dir, lma_backend_cpu(), 0, &m));
    if (!m) return;
    enum { S = 3, STEPS = 6 };
    int V = m->cfg.vocab_size, lens[S] = {3, 6, 9};
    lma_kv_cache *single[S] = {0}, *batch[S] = {0};
    float *ls = malloc((size_t)S * V * sizeof(float)), *lb = malloc((size_t)S * V * sizeof(float));
    int32_t next[S];
    for (int i = 0; i < S; i++) {
        int32_t ids[9];
        for (int t = 0; t < lens[i]; t++) ids[t] = (t * 31 + i * 7 + 5) % V;
        CHECK_OK(lma_kv_create(m, 9 + STEPS, &single[i]));
        CHECK_OK(lma_kv_create(m, 9 + STEPS, &batch[i]));
        CHECK_OK(lma_model_forward_cached(m, single[i], ids, lens[i], ls + (size_t)i * V, 0));
        CHECK_OK(lma_model_forward_cached(m, batch[i], ids, lens[i], lb, 0));
    }
    double err = 0, mx = 0;
    int worst_rows = 0;
    for (int step = 0; step < STEPS; step++) {
        lma_kv_cache *act[S];
        int32_t tok[S], which[S], n = 0;
        for (int i = 0; i < S; i++) {
            if (i == 1 && step >= 3) continue; /* the second sequence has left */
            int best = 0;
            for (int v = 1; v < V; v++) if (ls[(size_t)i * V + v] > ls[(size_t)i * V + best]) best = v;
            next[i] = best;
            act[n] = batch[i]; tok[n] = best; which[n++] = i;
        }
        CHECK_OK(lma_model_decode_batch(m, act, tok, n, lb));
        for (int k = 0; k < n; k++) {
            int i = which[k];
            CHECK_OK(lma_model_forward_cached(m, single[i], &next[i], 1, ls + (size_t)i * V, 0));
            for (int v = 0; v < V; v++) {
                err = fmax(err, fabs(lb[(size_t)k * V + v] - ls[(size_t)i * V + v]));
                mx = fmax(mx, fabs(ls[(size_t)i * V + v]));
            }
            CHECK(batch[i]->len == single[i]->len, "%s: the batched cache grows by one", name);
        }
        worst_rows = n > worst_rows ? n : worst_rows;
    }
    CHECK(worst_rows == S && err <= 1e-5 * mx, "%s: batched decode == single decode (max err %.3g of %.3g)", name, err, mx);
    lma_kv_cache *dup[2] = {batch[0], batch[0]};
    int32_t two[2] = {1, 2};
    CHECK(lma_model_decode_batch(m, dup, two, 2, lb) == LMA_ERR_ARG, "%s: a batch sharing a cache is refused", name);
    lma_clear_error();
    batch[2]->len = batch[2]->cap;
    CHECK(lma_model_decode_batch(m, batch, two, 2, lb) == LMA_OK, "%s: full cache not in the batch is fine", name);
    CHECK(lma_model_decode_batch(m, batch, next, 3, lb) == LMA_ERR_ARG, "%s: a full cache in the batch is refused", name);
    lma_clear_error();
    for (int i = 0; i < S; i++) { lma_kv_free(m, single[i]); lma_kv_free(m, batch[i]); }
    free(ls); free(lb);
    lma_model_free(m);
}

/* lma_generate_batch: 9 requests (prompts of 1 to 9 tokens; max_tokens 0 to 40; sampled and
 * greedy; stop strings; two sharing one JSON constraint, one with a grammar), 3 at a time,
 * give each request's tokens and text as lma_generate on it alone; a constrained output
 * is JSON; the template is left as it was (the runs alone come after the batch). */
static void batch_vs_alone(void) {
    lma_tokenizer *tok = NULL;
    lma_model *m = bl_model(&tok);
    if (!m) return;
    enum { N = 9 };
    lma_json_constraint *jc = NULL;
    CHECK_OK(lma_json_constraint_new(tok, NULL, &jc));
    static const char *stops[1] = {"e"};
    lma_gen_params gp[N];
    lma_gen_request rq[N];
    int32_t prompts[N][9];
    for (int i = 0; i < N; i++) {
        gp[i] = (lma_gen_params){.max_tokens = (int[]){20, 0, 5, 40, 1, 30, 30, 12, 25}[i],
                                 .sample = lma_sample_default_params(), .seed = 11u + (uint64_t)i};
        if (i % 3) gp[i].sample.temperature = 1.0f;
        for (int t = 0; t <= i; t++) prompts[i][t] = 300 + (t * 13 + i * 7) % 200;
        rq[i] = (lma_gen_request){prompts[i], (size_t)i + 1, &gp[i]};
    }
    gp[3].stop_strings = stops; gp[3].n_stop_strings = 1;
    gp[5].constraint = jc; gp[6].constraint = jc;
    gp[8].grammar = "root ::= \"yes\" | \"no\" | [a-z]+ \"!\"";
    lma_gen_result rb[N], ra;
    CHECK_OK(lma_generate_batch(m, tok, rq, N, 3, rb));
    for (int i = 0; i < N; i++) {
        CHECK_OK(lma_generate(m, tok, rq[i].prompt, rq[i].n_prompt, rq[i].p, &ra));
        CHECK(ra.n_ids == rb[i].n_ids && !memcmp(ra.ids, rb[i].ids, ra.n_ids * sizeof *ra.ids) && ra.len == rb[i].len &&
              !memcmp(ra.text, rb[i].text, ra.len) && ra.finish == rb[i].finish && ra.prompt_tokens == rb[i].prompt_tokens,
              "batched request %d == alone (%zu vs %zu tokens, finish %d vs %d)", i, rb[i].n_ids, ra.n_ids, rb[i].finish,
              ra.finish);
        if (gp[i].constraint) {
            cJSON *v = cJSON_ParseWithLength(rb[i].text, rb[i].len);
            CHECK(cJSON_IsObject(v), "request %d under the shared constraint is a JSON object: %.*s", i, (int)rb[i].len,
                  rb[i].text);
            cJSON_Delete(v);
        }
        free(ra.ids); free(ra.text);
    }
    CHECK(rb[1].n_ids == 0 && rb[4].n_ids == 1 && rb[3].finish == LMA_FINISH_STOP, "max_tokens 0 and 1, the stop string");
    for (int i = 0; i < N; i++) { free(rb[i].ids); free(rb[i].text); }
    gp[0].max_tokens = -1;
    CHECK(lma_generate_batch(m, tok, rq, N, 3, rb) == LMA_ERR_ARG && rb[5].ids == NULL, "a bad request fails the call");
    lma_clear_error();
    lma_json_constraint_free(jc);
    lma_model_free(m);
    lma_tok_free(tok);
}

int main(void) {
    batch_vs_alone();
    decode_batch_vs_single("qwen3");
    decode_batch_vs_single("llama_gqa");
    decode_batch_vs_single("llama_linear_bias");
    kv_vs_full("qwen3");
    kv_vs_full("llama3_tied");
    kv_vs_full("qwen2");
    greedy_vs_transformers();
    sampler_properties();
    stop_strings();
    TEST_END();
}
