/* Data-parallel step: gradient reduction in buckets, the sharded AdamW, the parameter
 * all-gather (dist_step.h). */
#include "train/dist_step.h"
#include <math.h>
#include <string.h>
#include "core/arena.h"

#define DEFAULT_BUCKET ((size_t)4 << 20)

void lma_dp_shard_range(size_t total, int world, int r, size_t *lo, size_t *hi) {
    size_t S = (total + (size_t)world - 1) / (size_t)world;
    S = (S + 15) / 16 * 16;
    size_t a = S * (size_t)r, b = a + S;
    *lo = a < total ? a : total;
    *hi = b < total ? b : total;
}

lma_status lma_dp_init(lma_dp *d, lma_comm *comm, int zero, lma_model *m, size_t bucket_elems) {
    memset(d, 0, sizeof *d);
    if (zero < 0 || zero > 2) return lma_error(LMA_ERR_ARG, "--zero %d: 0, 1 or 2", zero);
    d->comm = comm;
    d->zero = zero;
    d->rank = lma_comm_rank(comm);
    d->world = lma_comm_world(comm);
    d->be = m->be;
    lma_trainable tr = lma_model_trainable(m);
    d->total = tr.table->total;
    if (zero == 0) { d->lo = 0; d->hi = d->total; return LMA_OK; }
    lma_dp_shard_range(d->total, d->world, d->rank, &d->lo, &d->hi);
    d->shard = (d->total + (size_t)d->world - 1) / (size_t)d->world;
    d->shard = (d->shard + 15) / 16 * 16;
    d->bucket = bucket_elems ? bucket_elems : DEFAULT_BUCKET;
    if (d->bucket > d->shard) d->bucket = d->shard;
    if (d->bucket == 0) d->bucket = 16;
    d->stage = m->be->alloc((size_t)d->world * d->bucket * sizeof(float));
    d->recv = m->be->alloc(d->bucket * sizeof(float));
    if (!d->stage || !d->recv) {
        lma_dp_free(d);
        return lma_error(LMA_ERR_NOMEM, "out of memory for the gradient buckets (%d x %zu floats)", d->world, d->bucket);
    }
    return LMA_OK;
}

void lma_dp_free(lma_dp *d) {
    if (d->stage) d->be->free(d->stage);
    if (d->recv) d->be->free(d->recv);
    d->stage = d->recv = NULL;
}

void lma_dp_rows(const lma_dp *d, int B, int *row0, int *rows) {
    int a = (int)((long long)B * d->rank / d->world), b = (int)((long long)B * (d->rank + 1) / d->world);
    *row0 = a;
    *rows = b - a;
}

/* elements of rank q's shard in bucket j (starting j elements into the shard) */
static size_t piece(const lma_dp *d, int q, size_t j, size_t *start) {
    size_t lo, hi;
    lma_dp_shard_range(d->total, d->world, q, &lo, &hi);
    *start = lo + j;
    if (lo + j >= hi) return 0;
    size_t n = hi - (lo + j);
    return n < d->bucket ? n : d->bucket;
}

lma_status lma_dp_reduce_grads(lma_dp *d, lma_model *m) {
    lma_trainable tr = lma_model_trainable(m);
    LMA_TRY(lma_backend_sync(d->be)); /* the backward's work is done before the buffers move */
    if (d->zero < 2) { /* all-reduce, in buckets of 4M floats from the start (a fixed order) */
        for (size_t o = 0; o < d->total; o += DEFAULT_BUCKET) {
            size_t n = d->total - o < DEFAULT_BUCKET ? d->total - o : DEFAULT_BUCKET;
            LMA_TRY(lma_comm_allreduce(d->comm, tr.grads + o, n));
        }
        return LMA_OK;
    }
    for (size_t j = 0; j < d->shard; j += d->bucket) { /* pack every shard's piece j, reduce-scatter, unpack mine */
        for (int q = 0; q < d->world; q++) {
            size_t start, n = piece(d, q, j, &start);
            float *dst = d->stage + (size_t)q * d->bucket;
            if (n) d->be->copy(dst, tr.grads + start, n * sizeof(float));
            if (n < d->bucket) d->be->zero(dst + n, (d->bucket - n) * sizeof(float));
        }
        LMA_TRY(lma_backend_sync(d->be)); /* the packing is done before the comm's own stream reads it */
        LMA_TRY(lma_comm_reduce_scatter(d->comm, d->stage, d->recv, d->bucket));
        size_t start, n = piece(d, d->rank, j, &start);
        if (n) d->be->copy(tr.grads + start, d->recv, n * sizeof(float));
    }
    return lma_backend_sync(d->be);
}

static lma_status gather_params(lma_dp *d, lma_model *m) {
    lma_trainable tr = lma_model_trainable(m);
    for (size_t j = 0; j < d->shard; j += d->bucket) {
        size_t start, n = piece(d, d->rank, j, &start);
        float *mine = d->stage + (size_t)d->rank * d->bucket;
        if (n) d->be->copy(mine, tr.params + start, n * sizeof(float));
        if (n < d->bucket) d->be->zero(mine + n, (d->bucket - n) * sizeof(float));
        LMA_TRY(lma_backend_sync(d->be));
        LMA_TRY(lma_comm_allgather(d->comm, mine, d->stage, d->bucket));
        for (int q = 0; q < d->world; q++) {
            if (q == d->rank) continue;
            size_t s, k = piece(d, q, j, &s);
            if (k) d->be->copy(tr.params + s, d->stage + (size_t)q * d->bucket, k * sizeof(float));
        }
    }
    lma_model_sync_weights(m); /* the compute copies of what the other ranks updated */
    return lma_backend_sync(d->be);
}

lma_status lma_dp_adamw(lma_dp *d, lma_model *m, const lma_adamw_params *p, int t, float *grad_norm) {
    if (d->zero == 0) return lma_model_adamw_step(m, p, t, grad_norm);
    lma_trainable tr = lma_model_trainable(m);
    double sq;
    if (d->zero == 1) {
        sq = d->be->sum_sq(tr.grads, d->total); /* every rank holds the whole summed gradient */
    } else {
        sq = d->be->sum_sq(tr.grads + d->lo, d->hi - d->lo);
        LMA_TRY(lma_backend_sync(d->be));
        LMA_TRY(lma_comm_allreduce_f64(d->comm, &sq, 1));
    }
    LMA_TRY(lma_backend_sync(d->be));
    double norm = sqrt(sq);
    if (grad_norm) *grad_norm = (float)norm;
    LMA_TRY(lma_model_adamw_range(m, p, t, d->lo, d->hi, norm)); /* NUMERIC on every rank alike: same norm */
    return gather_params(d, m);
}
