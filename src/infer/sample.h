/* Next-token sampling with transformers' semantics and order:
 * repetition penalty (every distinct token of the history: s < 0 ? s * p : s / p),
 * then greedy argmax when temperature == 0, else temperature, top-k (ties at
 * the k-th value kept), top-p (smallest set whose probability exceeds p, at
 * least one token), min-p (drop tokens below min_p * max probability), and a
 * draw from the remaining softmax with the caller's RNG. */
#ifndef LMA_INFER_SAMPLE_H
#define LMA_INFER_SAMPLE_H
#include <stddef.h>
#include <stdint.h>
#include "core/gen_params.h" /* lma_sample_params, lma_sample_default_params */
#include "core/rng.h"

/* logits (V) are modified in place; history may be NULL. */
int32_t lma_sample(float *logits, int V, const lma_sample_params *p, const int32_t *history, size_t n_hist,
                   lma_rng *rng);
#endif
