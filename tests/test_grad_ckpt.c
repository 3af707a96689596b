/* Activation checkpointing (m->grad_ckpt): the backward recomputes each layer from
 * its saved input, so every gradient equals the one of the run that kept all
 * activations (same ops on the same inputs: bitwise on the CPU), for full training,
 * LoRA with dropout (the masks are regenerated) and QLoRA, on every fixture model;
 * and the activation block shrinks. */
#include <string.h>
#include "backend/backend.h"
#include "core/rng.h"
#include "model/llama.h"
#include "model/lora.h"
#include "test.h"

static lma_rng rng;

/* the trainable gradients after one forward + backward, host copy */
static float *grads_of(lma_model *m, const int32_t *ids, const int32_t *tg, const int32_t *seg, int B, int T,
                       float *loss) {
    CHECK_OK(lma_model_forward(m, ids, tg, seg, B, T, 1, 1.0f, loss));
    CHECK_OK(lma_model_backward(m));
    lma_trainable t = lma_model_trainable(m);
    float *g = malloc(t.table->total * sizeof *g);
    m->be->download(g, t.grads, t.table->total * sizeof *g);
    lma_model_zero_grad(m);
    return g;
}

static void one(const char *name, int mode) {
    static const char *what[] = {"full", "LoRA", "QLoRA"};
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    lma_model *m = NULL;
    if (mode == 2) CHECK_OK(lma_model_load_nf4(dir, lma_backend_cpu(), &m));
    else CHECK_OK(lma_model_load_ex(dir, lma_backend_cpu(), 0, &m));
    if (!m) return;
    if (mode) {
        lma_lora_params lp = lma_lora_default_params();
        lp.r = 4; lp.alpha = 8; lp.dropout = 0.2f;
        CHECK_OK(lma_lora_attach(m, &lp, 3));
    }
    CHECK_OK(lma_model_enable_training(m));
    enum { B = 2, T = 24 };
    int32_t ids[B * T], tg[B * T], seg[B * T];
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)lma_rng_below(&rng, (uint64_t)m->cfg.vocab_size);
        tg[i] = i % 5 == 2 ? LMA_IGNORE_INDEX : (int32_t)lma_rng_below(&rng, (uint64_t)m->cfg.vocab_size);
        seg[i] = (i % T) < 10 ? 0 : 1;
    }
    size_t n = lma_model_trainable(m).table->total;
    float l0 = 0, l1 = 0;
    if (m->lora) m->lora->calls = 6; /* the dropout stream position of both runs */
    float *g0 = grads_of(m, ids, tg, seg, B, T, &l0);
    size_t full_bytes = m->act_cap_bytes;
    m->grad_ckpt = 1; /* the next forward lays the activations out again */
    if (m->lora) m->lora->calls = 6;
    float *g1 = grads_of(m, ids, tg, seg, B, T, &l1);
    size_t ck_bytes = m->act_cap_bytes;
    CHECK(l0 == l1, "%s %s: the same loss with checkpointing (%.9g vs %.9g)", name, what[mode], l1, l0);
    CHECK(!memcmp(g0, g1, n * sizeof *g0), "%s %s: checkpointing gives the same gradients (rel L2 %.3g)", name,
          what[mode], test_rel_l2f(g1, g0, n));
    CHECK(ck_bytes < full_bytes, "%s %s: checkpointing shrinks the activation block (%zu -> %zu bytes)", name,
          what[mode], full_bytes, ck_bytes);
    if (mode == 0)
        printf("%-18s activations %zu -> %zu bytes with checkpointing (%d layers)\n", name, full_bytes, ck_bytes,
               m->cfg.n_layers);
    free(g0); free(g1);
    lma_model_free(m);
}

int main(void) {
    lma_rng_seed(&rng, 31);
    const char *models[] = {"llama_gqa", "llama3_tied", "llama_linear_bias", "qwen2", "qwen3", "mistral"};
    for (int i = 0; i < 6; i++)
        for (int mode = 0; mode < 3; mode++) one(models[i], mode);
    TEST_END();
}
