/* Direct preference optimization (DPO) and its close variants (IPO, hinge) as an
 * objective of the one trainer (trainer.h): the batch source below feeds preference
 * pairs (data/prefs.h) and computes the loss and its gradient; the trainer does the
 * rest (steps, accumulation, schedule, guards, checkpoints, metrics).
 *
 * Definitions (TRL 1.16 DPOTrainer._compute_loss):
 *   log pi(y|x)  = sum of the completion tokens' log-probabilities under the policy,
 *   log ref(y|x) = the same under the reference (cached: lma_dpo_reference);
 *   d = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))
 *   sigmoid  loss = -(1 - e) log s(beta d) - e log s(-beta d)   (e = label smoothing:
 *            conservative DPO; e = 0 is TRL's "sigmoid")
 *   ipo      loss = (d' - 1/(2 beta))^2, d' the same difference with each log-ratio
 *            divided by its completion's token count (TRL's normalisation)
 *   hinge    loss = max(0, 1 - beta d)
 * The batch loss is the mean over its pairs. Rewards: beta (log pi - log ref) of the
 * chosen and the rejected reply; reward accuracy = share of pairs whose chosen reward is
 * above the rejected one.
 *
 * The gradient: d loss / d log pi(y) per sequence times d log pi(y) / d logits, set as
 * per-row scales of the model's cross-entropy head (lma_model_forward_seq +
 * lma_model_head_backward): one forward for chosen and rejected together (2B rows),
 * trimmed to the batch's longest row.
 * Ownership: the source borrows the batchers, sets and reference arrays. */
#ifndef LMA_TRAIN_DPO_H
#define LMA_TRAIN_DPO_H
#include "data/prefs.h"
#include "model/llama.h"
#include "train/trainer.h"

typedef enum { LMA_DPO_SIGMOID = 0, LMA_DPO_IPO, LMA_DPO_HINGE } lma_dpo_loss;

typedef struct {
    double beta;            /* > 0 */
    double label_smoothing; /* sigmoid only, in [0, 0.5) */
    lma_dpo_loss loss;
} lma_dpo_params;

/* One pair: log-probs of chosen (pc) and rejected (pr) under the policy and the
 * reference (rc, rr), completion token counts (nc, nr; IPO). *loss and the derivatives
 * d loss / d pc, d loss / d pr. */
void lma_dpo_pair(const lma_dpo_params *p, double pc, double pr, double rc, double rr, double nc, double nr,
                  double *loss, double *dpc, double *dpr);

/* Reference log-probs of every pair of s: out (2n) = chosen, rejected of pair i at 2i, 2i+1;
 * batches of B pairs x T tokens; base_only: the base with its adapter switched off. */
lma_status lma_dpo_reference(lma_model *m, const lma_pref_set *s, int B, int T, int base_only, double *out);

/* The reference cache of a run (JSON: the sets' fingerprints and every log-prob, exact to
 * the bit): loads it when it matches the sets (1 in *found), else *found = 0. */
lma_status lma_dpo_cache_load(const char *path, const lma_pref_set *train, const lma_pref_set *val, double *ref_train,
                              double *ref_val, int *found);
lma_status lma_dpo_cache_save(const char *path, const lma_pref_set *train, const lma_pref_set *val,
                              const double *ref_train, const double *ref_val, const char *reference);

typedef struct lma_dpo lma_dpo;
/* B pairs x T tokens per micro-batch (the trainer's batch is then 2B rows); val,
 * ref_val may be NULL. */
lma_status lma_dpo_create(const lma_dpo_params *p, int B, int T, lma_pref_batcher *train, const double *ref_train,
                          lma_pref_batcher *val, const double *ref_val, lma_dpo **out);
void lma_dpo_free(lma_dpo *d);
lma_batch_source lma_dpo_batch_source(lma_dpo *d);
#endif
