/* The trainer: one loop for pretraining, continued pretraining and fine-tuning.
 *
 * Each optimizer step takes `accum` micro-batches (B, T) from the batch source,
 * accumulates their gradients (each scaled 1/accum), clips by the global norm,
 * and applies AdamW at the scheduled learning rate. Guards: a step whose loss or
 * gradient norm is not finite is skipped and logged (abort after
 * nan_abort_after in a row); a loss more than spike_z standard deviations above
 * the mean of the last spike_window losses skips the update too.
 *
 * Run directory (p->out_dir):
 *   metrics.jsonl       one JSON object per step: step, loss, lr, grad_norm,
 *                       tokens_per_s, rss_mb, skipped; val_loss on eval steps;
 *                       mem_pred_gib, mem_peak_gib when a prediction was given
 *   ckpt-<step>/        config.json + model.safetensors (weights),
 *                       optimizer.safetensors (AdamW moments),
 *                       trainer_state.json (step, data cursor, guard state,
 *                       checksums of the three tensor files' contents)
 *   latest              name of the newest complete checkpoint, written last
 *   final/              the trained model (HF layout) at the end, written as a whole;
 *                       a run whose every step was skipped (non-finite or spike) fails
 *                       with LMA_ERR_NUMERIC and writes no final/
 * With a LoRA adapter attached (lora.h) the checkpoints and final/ hold the
 * adapter (PEFT layout: adapter_config.json + adapter_model.safetensors) and
 * the optimizer state of the adapter tensors only; trainer_state.json also
 * keeps the dropout stream position, so resume stays bitwise identical.
 * A checkpoint directory is written as ckpt-<step>.tmp and renamed when
 * complete; `latest` is replaced atomically after. Only the last keep_last
 * checkpoints are kept. On resume the newest checkpoint whose files and
 * checksums verify is used (a corrupt one is reported and skipped), and
 * metrics.jsonl is cut back to its step, so on CPU the losses of a resumed run
 * are bitwise identical to an uninterrupted one.
 *
 * SIGINT/SIGTERM (or on_step returning non-zero): the current step finishes, a
 * checkpoint is saved and lma_train_run returns LMA_ERR_INTERRUPTED. */
#ifndef LMA_TRAIN_TRAINER_H
#define LMA_TRAIN_TRAINER_H
#include <cjson/cJSON.h>
#include "dist/comm.h"
#include "model/llama.h"
#include "train/schedule.h"

/* Where batches come from (the token loader, SFT examples, ...). */
typedef struct {
    void *ctx;
    lma_status (*next)(void *ctx, int32_t *ids, int32_t *targets, int32_t *seg);  /* (B,T) each */
    /* validation pass: *rows == 0 ends it; NULL when there is no validation data */
    lma_status (*val_next)(void *ctx, int32_t *ids, int32_t *targets, int32_t *seg, int *rows);
    void (*val_reset)(void *ctx);
    lma_status (*save)(void *ctx, cJSON **state);          /* data cursor as JSON */
    lma_status (*restore)(void *ctx, const cJSON *state);
    /* ---- optional: an objective other than next-token cross-entropy (DPO: train/dpo.h) ----
     * objective: the forward of the batch next()/val_next() just wrote; with want_grad it
     * leaves the gradient (times grad_scale) ready for lma_model_backward. *loss: the batch's
     * loss (NaN/Inf: the guards skip the step), *weight: its weight in a validation mean.
     * NULL: lma_model_forward's mean cross-entropy over the targets, weighted by their count. */
    lma_status (*objective)(void *ctx, lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg,
                            int B, int T, int want_grad, float grad_scale, float *loss, double *weight);
    /* step_metrics: after each optimizer step, the statistics of its training micro-batches as
     * extra metrics.jsonl members (json: each one ", \"key\": value") and progress-line text;
     * resets them for the next step. NULL: none. */
    void (*step_metrics)(void *ctx, char *json, size_t json_cap, char *line, size_t line_cap);
} lma_batch_source;

typedef struct {
    const char *out_dir;
    int steps;            /* optimizer steps in total */
    int B, T, accum;      /* micro-batch shape, micro-batches per step */
    lma_schedule sched;
    lma_adamw_params opt;
    int save_every;       /* checkpoint every N steps (0: only at the end) */
    int eval_every;       /* validation every N steps (0: only at the end) */
    int eval_batches;     /* batches per validation (0: the whole validation set) */
    int keep_last;        /* checkpoints kept (>= 1) */
    int nan_abort_after;  /* consecutive non-finite steps before giving up */
    double spike_z;       /* loss-spike threshold in standard deviations (0: off) */
    int spike_window;     /* losses in the spike window */
    int resume;           /* continue from out_dir's latest good checkpoint */
    int save_final;       /* write out_dir/final at the end, as a whole (core/outdir.h): built in
                             final.tmp.<pid> and swapped in when complete */
    /* adds files to the final folder before it is swapped in (the tokenizer), or NULL */
    lma_status (*final_files)(void *ctx, const char *dir);
    void *final_files_ctx;
    int quiet;            /* no progress bar */
    lma_train_callback on_step; /* after each step (lmadapt.h's lma_train_progress), or NULL;
                                   non-zero stops the run as SIGINT does */
    void *on_step_ctx;
    /* data parallel (train/dist_step.h): comm NULL or of world size 1 trains alone. With more
     * ranks B is the global micro-batch (each rank trains on its slice of rows), rank 0 alone
     * writes metrics.jsonl, the model and final/, and zero (0, 1, 2) picks how gradients and
     * optimizer state are split. */
    lma_comm *comm;
    int zero;
    double mem_pred_gib;  /* the memory planner's predicted peak (advise/mem.h), kept in metrics.jsonl beside
                             the measured one (mem_pred_gib, mem_peak_gib); 0: not predicted */
} lma_trainer_params;

lma_trainer_params lma_trainer_default_params(void);

typedef struct {
    int steps_done, skipped;
    float last_loss, last_val_loss; /* val NaN if never evaluated */
    double tokens_per_s;
} lma_trainer_result;

lma_status lma_train_run(lma_model *m, lma_batch_source *src, const lma_trainer_params *p, lma_trainer_result *res);

/* Mean loss over the validation set (or max_batches of it). */
lma_status lma_train_evaluate(lma_model *m, lma_batch_source *src, int B, int T, int max_batches, float *val_loss);
#endif
