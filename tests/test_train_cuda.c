/* cuda backends (label cuda), whole models: 20 AdamW training steps of each fixture model
 * on the GPU against the same steps on the CPU (fp32): full, LoRA and QLoRA, with and without
 * activation checkpointing; and generation with a KV cache (prefill, decode steps run, recorded as a graph and
 * replayed, batched decode) against the CPU's logits. (The ops one by one:
 * tests/test_backend_cuda.c.) Without a GPU the test exits 77 (skipped). */
#include <string.h>
#include "backend/backend.h"
#include "backend/cuda/cuda_host.h"
#include "model/llama.h"
#include "model/lora.h"
#include "model/nf4.h"
#include "model/safetensors.h"
#include "test.h"
#include "cuda_test.h"

static const lma_backend *cpu, *gpu; /* gpu: the table under test */

static void cmp_logits(const char *what, const float *cpu_out, const float *g, size_t n, double tol) {
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(g[i]);
    double e = test_rel_l2f(g, cpu_out, n);
    CHECK(finite && e <= tol, "%s %s: rel L2 %.3g (tol %.1g)%s", gpu->name, what, e, tol,
          finite ? "" : ", non-finite output");
}

/* 20 AdamW steps of a fixture model on the GPU track the CPU run (fp32). mode: 0 full,
 * 1 LoRA, 2 QLoRA (NF4 base on both sides); ckpt: activation checkpointing on the GPU. */
static void training(const char *name, float lr, double tol, int mode, int ckpt) {
    static const char *what[] = {"full", "LoRA", "QLoRA"};
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    lma_model *mc = NULL, *mg = NULL;
    lma_st_file *ex = NULL;
    if (mode == 2) {
        CHECK_OK(lma_model_load_nf4(dir, cpu, &mc));
        CHECK_OK(lma_model_load_nf4(dir, gpu, &mg));
    } else { /* the adapter's base on the GPU: frozen, bf16 only */
        CHECK_OK(lma_model_load_ex(dir, cpu, 0, &mc));
        CHECK_OK(lma_model_load_ex(dir, gpu, mode ? LMA_MODEL_FROZEN : 0, &mg));
    }
    if (mg) mg->grad_ckpt = ckpt;
    CHECK_OK(lma_st_open(path, &ex));
    if (!mc || !mg || !ex) return;
    const lma_st_tensor *ti = lma_st_find(ex, "input_ids"), *tt = lma_st_find(ex, "targets");
    int B = (int)ti->shape[0], T = (int)ti->shape[1], N = B * T;
    float *fi = malloc(N * 4), *ft = malloc(N * 4);
    int32_t *ids = malloc(N * 4), *tg = malloc(N * 4);
    CHECK_OK(lma_st_read_f32(ti, fi, N));
    CHECK_OK(lma_st_read_f32(tt, ft, N));
    for (int i = 0; i < N; i++) { ids[i] = (int32_t)fi[i]; tg[i] = (int32_t)ft[i]; }
    if (mode) { /* LoRA r 4 on every projection, dropout 0, same init on both sides */
        lma_lora_params lp = lma_lora_default_params();
        lp.r = 4; lp.alpha = 8;
        CHECK_OK(lma_lora_attach(mc, &lp, 5));
        CHECK_OK(lma_lora_attach(mg, &lp, 5));
    }
    CHECK_OK(lma_model_enable_training(mc));
    CHECK_OK(lma_model_enable_training(mg));
    lma_adamw_params ap = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .clip = 1.0f};
    double worst = 0;
    size_t held2 = 0, held = 0, peak2 = 0, peak = 0;
    for (int s = 1; s <= 20; s++) {
        float lc = 0, lg = 0, nc = 0, ng = 0;
        if (s == 3) lma_cuda_memory(&held2, &peak2, 0); /* after two steps every buffer exists */
        CHECK_OK(lma_model_forward(mc, ids, tg, NULL, B, T, 1, 1.0f, &lc));
        CHECK_OK(lma_model_backward(mc));
        CHECK_OK(lma_model_adamw_step(mc, &ap, s, &nc));
        lma_model_zero_grad(mc);
        CHECK_OK(lma_model_forward(mg, ids, tg, NULL, B, T, 1, 1.0f, &lg));
        CHECK_OK(lma_model_backward(mg));
        CHECK_OK(lma_model_adamw_step(mg, &ap, s, &ng));
        lma_model_zero_grad(mg);
        worst = fmax(worst, fabs(lg - lc) / fabs(lc));
    }
    lma_cuda_memory(&held, &peak, 0);
    CHECK(held == held2 && peak == peak2, "%s %s: no device allocation after the second step (%zu -> %zu bytes held)",
          gpu->name, name, held2, held);
    CHECK(worst <= tol, "%s %s %s%s: 20 GPU training steps at lr %g track the CPU (worst loss rel err %.3g, tol %g)",
          gpu->name, name, what[mode], ckpt ? " ckpt" : "", lr, worst, tol);
    printf("%-10s %-18s %-5s%s 20 steps vs cpu at lr %g: worst loss rel err %.3g\n", gpu->name, name, what[mode],
           ckpt ? " ckpt" : "", lr, worst);
    free(fi); free(ft); free(ids); free(tg);
    lma_st_close(ex);
    lma_model_free(mc);
    lma_model_free(mg);
}

/* Generation with a KV cache on the GPU against the same steps on the CPU (fp32), fixture
 * model `name`: one sequence (a 6-token prefill, then 5 decode steps: the first runs as
 * is, the second is recorded as a graph, the rest replay it) and a batched step of 3
 * sequences of different lengths (5 lma_model_decode_batch steps), every step's logits, the
 * tokens fed from the CPU's greedy choice so that both sides see the same ids. */
static void decoding(const char *name, double tol) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    lma_model *mc = NULL, *mg = NULL;
    CHECK_OK(lma_model_load_ex(dir, cpu, 0, &mc));
    CHECK_OK(lma_model_load_ex(dir, gpu, LMA_MODEL_FROZEN, &mg));
    if (!mc || !mg) { lma_model_free(mc); lma_model_free(mg); return; }
    enum { S = 3, P = 6, STEPS = 5 };
    int V = mc->cfg.vocab_size, lens[S] = {6, 3, 5};
    float *lc = malloc((size_t)S * V * 4), *lg = malloc((size_t)S * V * 4);
    lma_kv_cache *kc[S], *kg[S];
    for (int i = 0; i < S; i++) {
        CHECK_OK(lma_kv_create(mc, P + STEPS + 1, &kc[i]));
        CHECK_OK(lma_kv_create(mg, P + STEPS + 1, &kg[i]));
    }
    int32_t ids[S][P], tok[S];
    for (int i = 0; i < S; i++)
        for (int t = 0; t < P; t++) ids[i][t] = (int32_t)((7 + 13 * t + 31 * i) % V);
    char what[160];
    for (int batched = 0; batched < 2; batched++) {
        int ns = batched ? S : 1;
        for (int i = 0; i < ns; i++) { /* prefill */
            kc[i]->len = kg[i]->len = 0;
            CHECK_OK(lma_model_forward_cached(mc, kc[i], ids[i], lens[i], lc, 0));
            CHECK_OK(lma_model_forward_cached(mg, kg[i], ids[i], lens[i], lg, 0));
            snprintf(what, sizeof what, "%s decode: prefill of %d tokens, sequence %d", name, lens[i], i);
            cmp_logits(what, lc, lg, V, tol);
            tok[i] = 0;
            for (int j = 1; j < V; j++) if (lc[j] > lc[tok[i]]) tok[i] = j;
        }
        for (int s = 0; s < STEPS; s++) {
            if (batched) {
                CHECK_OK(lma_model_decode_batch(mc, kc, tok, S, lc));
                CHECK_OK(lma_model_decode_batch(mg, kg, tok, S, lg));
            } else {
                CHECK_OK(lma_model_forward_cached(mc, kc[0], tok, 1, lc, 0));
                CHECK_OK(lma_model_forward_cached(mg, kg[0], tok, 1, lg, 0));
            }
            snprintf(what, sizeof what, "%s decode: %s step %d (%s)", name, batched ? "batched (3 sequences)" : "one sequence",
                     s, s == 0 ? "as is" : s == 1 ? "recorded" : "replayed");
            cmp_logits(what, lc, lg, (size_t)ns * V, tol);
            for (int i = 0; i < ns; i++) {
                const float *r = lc + (size_t)i * V;
                tok[i] = 0;
                for (int j = 1; j < V; j++) if (r[j] > r[tok[i]]) tok[i] = j;
            }
        }
        for (int i = 0; i < ns; i++)
            CHECK(kg[i]->len == lens[i] + STEPS && kc[i]->len == kg[i]->len, "%s %s decode: sequence %d at %d tokens",
                  gpu->name, name, i, kg[i]->len);
    }
    for (int i = 0; i < S; i++) { lma_kv_free(mc, kc[i]); lma_kv_free(mg, kg[i]); }
    free(lc); free(lg);
    lma_model_free(mc);
    lma_model_free(mg);
}

int main(void) {
    cpu = lma_backend_cpu();
    const lma_backend *fp32, *bf16;
    if (!cuda_test_tables(&fp32, &bf16)) return 77;
    const char *models[] = {"llama_gqa", "llama3_tied", "llama_linear_bias", "qwen2", "qwen3", "mistral"};
    /* exact fp32 GEMMs and attention at the fixtures' aggressive lr 1e-2: the runs stay
     * within 1e-3; the fast paths (TF32, flash, bf16) at a fine-tuning lr 1e-3 within the
     * issue's 1e-2 (at lr 1e-2 the tiny models amplify rounding chaotically) */
    gpu = fp32;
    lma_cuda_set_tf32(0);
    for (int i = 0; i < 6; i++) decoding(models[i], 1e-5);
    gpu = bf16;
    for (int i = 0; i < 6; i++) decoding(models[i], 2e-2);
    gpu = fp32;
    lma_cuda_attention_naive = 2;
    for (int i = 0; i < 6; i++) training(models[i], 1e-2f, 1e-3, 0, 0);
    lma_cuda_attention_naive = 0;
    lma_cuda_set_tf32(1);
    for (int i = 0; i < 6; i++) training(models[i], 1e-3f, 1e-2, 0, 0);
    gpu = bf16;
    for (int mode = 0; mode < 3; mode++)
        for (int i = 0; i < 6; i++) training(models[i], 1e-3f, 1e-2, mode, 0);
    for (int mode = 0; mode < 3; mode++) /* activation checkpointing */
        for (int i = 0; i < 6; i += 2) training(models[i], 1e-3f, 1e-2, mode, 1);
    TEST_END();
}
