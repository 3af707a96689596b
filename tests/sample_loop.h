/* The sampling loop the constrained-decoding tests share (test_grammar.c,
 * test_json_constraint.c, test_yaml_constraint.c): a random-weight model, and generation
 * under a constraint over many seeds with every output judged by the test's own checker. */
#ifndef LMA_TEST_SAMPLE_LOOP_H
#define LMA_TEST_SAMPLE_LOOP_H
#include "infer/generate.h"
#include "infer/json_constraint.h"
#include "test.h"

/* The config of tests/ref/models/llama_gqa with `vocab` tokens on be, weights N(0, 0.5) from
 * seed; NULL (a failure recorded) when it cannot be made. */
static inline lma_model *test_random_model(const lma_backend *be, int vocab, uint64_t seed) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/ref/models/llama_gqa/config.json", LMA_SRC_DIR);
    lma_config c;
    lma_model *m = NULL;
    CHECK_OK(lma_config_load(path, &c));
    c.vocab_size = vocab;
    CHECK_OK(lma_model_create(&c, be, &m));
    if (m) CHECK_OK(lma_model_init_random(m, seed, 0.5f));
    return m;
}

/* One output of test_sample_loop: 1 when it has the property tested (the judge prints why
 * not); ctx is the caller's. The loop frees r afterwards. */
typedef int (*test_sample_judge)(void *ctx, const char *what, int seed, const lma_gen_result *r);

/* Samples `seeds` outputs of at most max_tokens tokens from the prompt {1, 2, 3} under jc at
 * temperature temp (seed i runs with rng seed i * seed_mul + seed_add), stopping at the
 * tokenizer's EOS; a failed generation is a failure named by `what` and the seed. Returns
 * how many outputs judge accepted; *stopped (may be NULL): how many ended before the budget
 * (the constraint complete or EOS). */
static inline int test_sample_loop(lma_model *m, const lma_tokenizer *tok, lma_json_constraint *jc, int max_tokens,
                                   int seeds, float temp, uint64_t seed_mul, uint64_t seed_add, const char *what,
                                   test_sample_judge judge, void *ctx, int *stopped) {
    int32_t prompt[3] = {1, 2, 3}, eos = lma_tok_eos_id(tok);
    int good = 0, stop = 0;
    for (int seed = 0; seed < seeds; seed++) {
        lma_gen_params p = {0};
        p.max_tokens = max_tokens;
        p.sample = lma_sample_default_params();
        p.sample.temperature = temp;
        p.seed = (uint64_t)seed * seed_mul + seed_add;
        p.stop_ids = &eos;
        p.n_stop_ids = eos >= 0;
        p.constraint = jc;
        lma_gen_result r;
        lma_status s = lma_generate(m, tok, prompt, 3, &p, &r);
        CHECK(s == LMA_OK, "%s seed %d: %s", what, seed, lma_last_error());
        lma_clear_error();
        if (s != LMA_OK) continue;
        good += judge(ctx, what, seed, &r) != 0;
        stop += r.finish == LMA_FINISH_STOP;
        free(r.ids);
        free(r.text);
    }
    if (stopped) *stopped = stop;
    return good;
}
#endif
