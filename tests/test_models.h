/* Test helpers shared by the CLI and curation tests:
 *  - test_tok_model: a tiny random Llama with the vocabulary of the tests/ref/tok/bl
 *    tokenizer (Llama 3 chat template), saved as an HF dir with that tokenizer;
 *  - test_fixture: a fixture model of tests/ref/models; test_track: AdamW steps of two
 *    models side by side, the worst relative loss difference;
 *  - test_run: runs a shell command, captures its stdout, returns its exit status. */
#ifndef LMA_TEST_MODELS_H
#define LMA_TEST_MODELS_H
#include <sys/wait.h>
#include "core/io.h"
#include "model/llama.h"
#include "test.h"
#include "tok/tokenizer.h"

typedef struct {
    int n_layers, max_pos;
    uint64_t seed;
    int with_eos; /* config.json lists the tokenizer's EOS */
} test_tok_model_params;

/* Writes the model dir; returns the model (caller frees) and the tokenizer when asked. */
static inline lma_model *test_tok_model(const char *mdir, test_tok_model_params p, lma_tokenizer **tok_out) {
    char tdir[1024], src[1200], dst[1200];
    snprintf(tdir, sizeof tdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(tdir, &tok));
    if (!tok) return NULL;
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = lma_tok_vocab_size(tok); c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = p.n_layers; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = p.max_pos;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = lma_tok_bos_id(tok);
    if (p.with_eos) { c.eos_token_ids[0] = lma_tok_eos_id(tok); c.n_eos = 1; }
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (m) {
        lma_model_init_random(m, p.seed, 0.3f);
        CHECK_OK(lma_mkdir_p(mdir));
        CHECK_OK(lma_model_save(m, mdir, 0, 0));
        const char *files[2] = {"tokenizer.json", "tokenizer_config.json"};
        for (int i = 0; i < 2; i++) {
            snprintf(src, sizeof src, "%s/%s", tdir, files[i]);
            snprintf(dst, sizeof dst, "%s/%s", mdir, files[i]);
            CHECK_OK(lma_copy_file(src, dst));
        }
    }
    if (tok_out) *tok_out = tok;
    else lma_tok_free(tok);
    return m;
}

/* The fixture model tests/ref/models/NAME on be (NULL, and a failed check, if it cannot load). */
static inline lma_model *test_fixture(const char *name, const lma_backend *be) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    lma_model *m = NULL;
    CHECK_OK(lma_model_load_ex(dir, be, 0, &m));
    return m;
}

/* `steps` AdamW steps (t = 1, 2, ...) of models a and b (training enabled) on one batch;
 * returns the worst relative difference of b's loss from a's. */
static inline double test_track(lma_model *a, lma_model *b, const int32_t *ids, const int32_t *tg, int B, int T,
                                const lma_adamw_params *ap, int steps) {
    double worst = 0;
    for (int s = 1; s <= steps; s++) {
        float la = 0, lb = 0;
        lma_model *m[2] = {a, b};
        float *l[2] = {&la, &lb};
        for (int k = 0; k < 2; k++) {
            CHECK_OK(lma_model_forward(m[k], ids, tg, NULL, B, T, 1, 1.0f, l[k]));
            CHECK_OK(lma_model_backward(m[k]));
            CHECK_OK(lma_model_adamw_step(m[k], ap, s, NULL));
            lma_model_zero_grad(m[k]);
        }
        worst = fmax(worst, fabs(lb - la) / fabs(la));
    }
    return worst;
}

static inline int test_run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#endif
