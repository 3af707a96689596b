/* Training checkpoints: ckpt-<step>/ folders in the run directory, each written to a
 * temporary sibling and renamed when complete, holding the weights (or the adapter), the
 * AdamW state and trainer_state.json (step, guard state, data cursor, checksums of every
 * array so a corrupt file is detected at resume). Internal to src/train/. */
#ifndef LMA_TRAIN_CHECKPOINT_H
#define LMA_TRAIN_CHECKPOINT_H
#include "train/dist_step.h"
#include "train/trainer.h"

/* The trainer's guard state, saved with a checkpoint. */
typedef struct {
    int opt_t;        /* AdamW updates applied */
    int nan_streak;
    int hist_n;       /* losses in the spike window (ring) */
    int hist_pos;
    float *hist;      /* (spike_window) */
} lma_guard_state;

/* Writes ckpt-<step> (and prunes to p->keep_last complete checkpoints).
 * dp (NULL: one process): with zero 0 rank 0 alone writes (every rank holds the same
 * state); with zero 1/2 on several ranks every rank calls it: rank 0 writes the model and
 * trainer_state.json ("zero_world": W), each rank its optimizer shard
 * optimizer-rank<r>.safetensors (1-D exp_avg, exp_avg_sq of [lo, hi) of the flat trainable
 * buffer) with optimizer-rank<r>.json (lo, hi, total, checksums); the ranks agree on
 * success at each stage (a failure on one fails all). */
lma_status lma_ckpt_save(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                         const lma_guard_state *g, lma_dp *dp);
/* Restores ckpt-<step>: weights or adapter, optimizer state, data cursor, guard state.
 * The optimizer state comes from optimizer.safetensors (whole) or from the shards of any
 * world size: each rank reads the shards that overlap its own range (re-sharding N -> M;
 * all of them for one process or zero 0). */
lma_status lma_ckpt_load(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                         lma_guard_state *g, lma_dp *dp);
/* Steps of the complete checkpoints in out_dir, newest first (at most cap). */
int lma_ckpt_list(const char *out_dir, int *steps, int cap);
#endif
