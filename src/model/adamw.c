/* The optimizer step of a model (model/llama.h lma_model_adamw_step / _range): AdamW on the
 * trainable tensors (the adapter's when one is attached), clipped by the global gradient
 * norm, one backend call per run of adjacent tensors with the same weight decay. */
#include "model/llama.h"
#include <math.h>
#include "model/model_internal.h"

lma_adamw_params lma_adamw_default_params(void) {
    lma_adamw_params p = {.lr = 3e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                          .clip = 1.0f, .decay_all = 0};
    return p;
}

static float decay_of(const lma_adamw_params *p, const lma_param_info *pi) {
    return (p->decay_all || !pi->is_norm_or_bias) ? p->weight_decay : 0.0f;
}

lma_status lma_model_adamw_step(lma_model *m, const lma_adamw_params *p, int t, float *grad_norm) {
    lma_trainable tr = lma_model_trainable(m);
    if (!tr.grads) return lma_error(LMA_ERR_ARG, "training not enabled on this model");
    if (!grad_norm && p->clip <= 0) /* nothing needs the norm: no pass over the gradients for it */
        return lma_model_adamw_range(m, p, t, 0, tr.table->total, 0.0);
    double norm = sqrt(m->be->sum_sq(tr.grads, tr.table->total));
    LMA_TRY(lma_backend_sync(m->be)); /* a failed op, not a non-finite gradient */
    if (grad_norm) *grad_norm = (float)norm;
    return lma_model_adamw_range(m, p, t, 0, tr.table->total, norm);
}

lma_status lma_model_adamw_range(lma_model *m, const lma_adamw_params *p, int t, size_t lo, size_t hi, double norm) {
    const lma_backend *be = m->be;
    lma_trainable tr = lma_model_trainable(m);
    if (!tr.grads) return lma_error(LMA_ERR_ARG, "training not enabled on this model");
    if (t < 1) return lma_error(LMA_ERR_ARG, "optimizer step %d: steps count from 1", t);
    if (!isfinite(norm)) return lma_error(LMA_ERR_NUMERIC, "gradient norm is not finite (%g): update skipped", norm);
    float gs = 1.0f;
    if (p->clip > 0) {
        double coef = p->clip / (norm + 1e-6);
        if (coef < 1.0) gs = (float)coef;
    }
    /* one call per run of adjacent tensors with the same weight decay (the update is
     * elementwise: the whole family in one launch when every tensor decays alike), cut to [lo, hi) */
    for (int i = 0; i < tr.table->count;) {
        const lma_param_info *pi = &tr.table->info[i];
        float wd = decay_of(p, pi);
        size_t o = pi->offset, n = pi->numel;
        for (i++; i < tr.table->count; i++) {
            const lma_param_info *q = &tr.table->info[i];
            if (q->offset != o + n || decay_of(p, q) != wd) break;
            n += q->numel;
        }
        size_t a = o > lo ? o : lo, b = o + n < hi ? o + n : hi;
        if (a >= b) continue;
        be->adamw(tr.params + a, tr.grads + a, tr.m + a, tr.v + a, lma_at(tr.pact, a, (size_t)be->act_bytes), b - a,
                  p->lr, p->beta1, p->beta2, p->eps, wd, t, gs);
    }
    return lma_backend_sync(be);
}
