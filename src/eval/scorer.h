/* Log-likelihood of continuations given a context: what multiple-choice evaluation
 * asks of a model (lm-evaluation-harness's loglikelihood requests).
 *
 * A scorer is an interface so that the task code can be tested with a hand-built
 * source of log-probabilities; lma_eval_scorer_model() makes the real one.
 *
 * Truncation (as lm-eval's HFLM): when context + continuation exceed max_len + 1
 * tokens, the oldest context tokens are dropped. With LMA_EVAL_SCORE_KV the
 * continuations share one prefill, so the context is cut for the longest of them
 * (identical to lm-eval whenever the continuations have the same length, as MMLU's
 * " A".." D" do).
 *
 * Ownership: the scorer borrows the model (which must outlive it); free it with
 * lma_eval_scorer_free. Token arrays from lma_eval_encode_pair are malloc'd for the
 * caller. */
#ifndef LMA_EVAL_SCORER_H
#define LMA_EVAL_SCORER_H
#include <stddef.h>
#include <stdint.h>
#include "model/llama.h"
#include "tok/tokenizer.h"

typedef enum {
    LMA_EVAL_SCORE_KV = 0,   /* prefill the context once into the KV cache (reusing the prefix
                                shared with the previous call), then run each continuation */
    LMA_EVAL_SCORE_FULL      /* one full forward of context + continuation per continuation */
} lma_eval_score_mode;

typedef struct lma_eval_scorer lma_eval_scorer;
struct lma_eval_scorer {
    /* out[i] = sum_j log p(conts[i][j] | ctx, conts[i][0..j-1]), i < n; n_ctx >= 1, n_conts[i] >= 1 */
    lma_status (*loglik)(lma_eval_scorer *s, const int32_t *ctx, size_t n_ctx, const int32_t *const *conts,
                         const size_t *n_conts, int n, double *out);
    void (*destroy)(lma_eval_scorer *s);
    void *impl;
    long tokens_run; /* tokens sent through the model so far (for reports) */
};

lma_status lma_eval_scorer_model(lma_model *m, lma_eval_score_mode mode, lma_eval_scorer **out);
void lma_eval_scorer_free(lma_eval_scorer *s);

/* lm-eval's _encode_pair for a causal model: trailing whitespace of the context moves
 * to the front of the continuation; ctx_ids = encode(context), cont_ids =
 * encode(context + continuation)[len(ctx_ids):], both encoded with the tokenizer's
 * special tokens (BOS when its post-processor adds one), as HFLM.tok_encode does. */
lma_status lma_eval_encode_pair(const lma_tokenizer *t, const char *ctx, size_t ctx_len, const char *cont,
                                size_t cont_len, int32_t **ctx_ids, size_t *n_ctx, int32_t **cont_ids,
                                size_t *n_cont);
#endif
