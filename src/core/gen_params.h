/* What a text-generation request asks for: sampling settings, length, seed, stops and
 * a streaming callback. Plain data, shared by infer/ (which runs a request: sample.h,
 * generate.h) and the rooms above it that only pass requests along to a model behind an
 * interface (data/curate's lma_curate_llm), so they need not include infer/. */
#ifndef LMA_CORE_GEN_PARAMS_H
#define LMA_CORE_GEN_PARAMS_H
#include <stddef.h>
#include <stdint.h>

/* Sampling (infer/sample.h has the rules and their order). */
typedef struct {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off */
} lma_sample_params;

/* greedy, everything off */
static inline lma_sample_params lma_sample_default_params(void) {
    lma_sample_params p = {0.0f, 0, 1.0f, 0.0f, 1.0f};
    return p;
}

/* One generation (infer/generate.h). */
typedef struct {
    int max_tokens;
    lma_sample_params sample;
    uint64_t seed;
    const int32_t *stop_ids; int n_stop_ids;         /* e.g. generation_config.json eos_token_id */
    const char *const *stop_strings; int n_stop_strings;
    void (*on_text)(void *ctx, const char *text, size_t len);
    /* per token (lmadapt.h's lma_token_callback): the text released with it (NULL/0 without
     * tokenizer), then id -1 with what was held back at the end; non-zero stops after it
     * (finish LMA_FINISH_STOP). Not called for a stop token. */
    int (*on_token)(void *ctx, int32_t id, const char *text, size_t len);
    void *ctx;
    /* constrained decoding (infer/json_constraint.h), or NULL: the output is a complete JSON
     * value (valid against its schema) and generation stops when it is complete. A template:
     * each generation decodes with its own clone, so one serves any number of requests */
    struct lma_json_constraint *constraint;
    /* a GBNF grammar (infer/grammar.h) for a request made where no tokenizer is at hand
     * (data/curate through lma_curate_llm): when constraint is NULL, the generation compiles
     * it for its tokenizer and owns that constraint; NULL: none */
    const char *grammar;
} lma_gen_params;
#endif
