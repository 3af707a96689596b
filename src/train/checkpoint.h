/* Training checkpoints: ckpt-<step>/ folders in the run directory, each written to a
 * temporary sibling and renamed when complete, holding the weights (or the adapter), the
 * AdamW state and trainer_state.json (step, guard state, data cursor, checksums of every
 * array so a corrupt file is detected at resume). Internal to src/train/. */
#ifndef LMA_TRAIN_CHECKPOINT_H
#define LMA_TRAIN_CHECKPOINT_H
#include "train/trainer.h"

/* The trainer's guard state, saved with a checkpoint. */
typedef struct {
    int opt_t;        /* AdamW updates applied */
    int nan_streak;
    int hist_n;       /* losses in the spike window (ring) */
    int hist_pos;
    float *hist;      /* (spike_window) */
} lma_guard_state;

/* Writes ckpt-<step> (and prunes to p->keep_last complete checkpoints). */
lma_status lma_ckpt_save(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                         const lma_guard_state *g);
/* Restores ckpt-<step>: weights or adapter, optimizer state, data cursor, guard state. */
lma_status lma_ckpt_load(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                         lma_guard_state *g);
/* Steps of the complete checkpoints in out_dir, newest first (at most cap). */
int lma_ckpt_list(const char *out_dir, int *steps, int cap);
#endif
