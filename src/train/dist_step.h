/* Data-parallel training on a comm (dist/comm.h): what the trainer does differently when
 * the world has more than one rank.
 *
 * Batches: every rank reads the same global micro-batch (B rows) from the same source and
 * trains on its contiguous slice of rows [B*r/W, B*(r+1)/W); the loss head divides by the
 * global micro-batch's target count (m->loss_denom), so the summed gradient is the one of
 * one process on B rows and N ranks see the samples of 1 process in the same order.
 *
 * After the accumulation of a step the gradients move in buckets, in a fixed order:
 *   zero 0  all-reduce of all gradients; AdamW on everything, on every rank (the plain DP);
 *   zero 1  all-reduce; AdamW on this rank's shard only; the parameters all-gathered;
 *   zero 2  reduce-scatter (each rank receives the sum of its shard only); the gradient norm
 *           summed over the shards; AdamW on the shard; the parameters all-gathered.
 * The shard of rank r is the contiguous range [lo, hi) of the flat trainable buffer (the
 * adapter's with LoRA/QLoRA: only adapter gradients move), S = ceil(total / W) rounded up
 * to 16 elements each. Buckets hold `bucket` elements of every rank's shard (staged in one
 * buffer of W * bucket on the backend).
 * Not yet: the reduction overlapped with the backward (it runs after it), and the memory of
 * the moments outside the shard (still allocated on every rank; only their use is sharded).
 *
 * Ownership: lma_dp_free frees the staging; the comm is the caller's. */
#ifndef LMA_TRAIN_DIST_STEP_H
#define LMA_TRAIN_DIST_STEP_H
#include "dist/comm.h"
#include "model/llama.h"

typedef struct {
    lma_comm *comm;       /* borrowed */
    int zero, rank, world;
    size_t total;         /* elements of the trainable buffer */
    size_t shard;         /* S: elements per rank's shard (the last may be shorter) */
    size_t lo, hi;        /* this rank's shard */
    size_t bucket;        /* elements of each shard per bucket */
    float *stage, *recv;  /* (world * bucket), (bucket) backend memory; NULL for zero 0 */
    const lma_backend *be;
} lma_dp;

/* bucket_elems 0: 4M floats (16 MB) a rank. */
lma_status lma_dp_init(lma_dp *d, lma_comm *comm, int zero, lma_model *m, size_t bucket_elems);
void lma_dp_free(lma_dp *d);
/* The shard [lo, hi) of rank r of world w for a buffer of total elements (also used by the
 * checkpoint's re-sharding). */
void lma_dp_shard_range(size_t total, int world, int r, size_t *lo, size_t *hi);
/* This rank's rows of a global micro-batch of B rows. */
void lma_dp_rows(const lma_dp *d, int B, int *row0, int *rows);
/* The gradients summed over the ranks (all of them for zero 0/1, this shard's for zero 2). */
lma_status lma_dp_reduce_grads(lma_dp *d, lma_model *m);
/* AdamW at step t with clipping by the global norm (*grad_norm); for zero 1/2 on the shard,
 * then the parameters all-gathered and the compute copies refreshed. */
lma_status lma_dp_adamw(lma_dp *d, lma_model *m, const lma_adamw_params *p, int t, float *grad_norm);
#endif
