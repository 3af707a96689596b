/* Scoring: log p(ids[i+1] | ids[0..i]) for every position, total NLL, perplexity. */
#ifndef LMA_INFER_SCORE_H
#define LMA_INFER_SCORE_H
#include "model/llama.h"

typedef struct {
    size_t n;          /* number of scored tokens = n_ids - 1 */
    float *logprobs;   /* (n) malloc'd: logprobs[i] = log p(ids[i+1] | ids[0..i]) */
    double nll;        /* -sum(logprobs) */
    double ppl;        /* exp(nll / n) */
} lma_score_result;

/* n_ids >= 2. The caller frees res->logprobs. */
lma_status lma_score(lma_model *m, const int32_t *ids, size_t n_ids, lma_score_result *res);
#endif
