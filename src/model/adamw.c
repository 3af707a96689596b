/* The optimizer step of a model (model/llama.h lma_model_adamw_step / _range /
 * backward_adamw): AdamW on the trainable tensors (the adapter's when one is attached),
 * clipped by the global gradient norm, one backend call per run of adjacent tensors with the
 * same weight decay; without clipping, part by part during the backward (on the backend's
 * side queue) as each part's gradients become final. */
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
    double norm = sqrt(m->be->sum_sq(tr.grads, tr.table->total));
    LMA_TRY(lma_backend_sync(m->be)); /* a failed op, not a non-finite gradient */
    if (grad_norm) *grad_norm = (float)norm;
    return lma_model_adamw_range(m, p, t, 0, tr.table->total, norm);
}

/* 1 when tensor pi belongs to `part` (model_internal.h lma_model_update_part) */
static int in_part(const lma_model *m, const lma_param_info *pi, int part) {
    if (part == LMA_UPD_ALL) return 1;
    if (part >= 0) return pi->layer == part;
    /* an adapter's kinds are projections, not the model's (lora.c) */
    int head = !m->lora && (pi->kind == LMA_P_FINAL_NORM || pi->kind == LMA_P_LM_HEAD);
    return pi->layer < 0 && (part == LMA_UPD_HEAD ? head : !head);
}

/* the update of the tensors of `part` cut to [lo, hi), gradients scaled by gs: one call per run
 * of adjacent tensors with the same weight decay (the update is elementwise: the whole family
 * in one launch when every tensor decays alike) */
static void adamw_run(lma_model *m, const lma_adamw_params *p, int t, int part, size_t lo, size_t hi, float gs) {
    const lma_backend *be = m->be;
    lma_trainable tr = lma_model_trainable(m);
    for (int i = 0; i < tr.table->count;) {
        const lma_param_info *pi = &tr.table->info[i];
        if (!in_part(m, pi, part)) { i++; continue; }
        float wd = decay_of(p, pi);
        size_t o = pi->offset, n = pi->numel;
        for (i++; i < tr.table->count; i++) {
            const lma_param_info *q = &tr.table->info[i];
            if (q->offset != o + n || decay_of(p, q) != wd || !in_part(m, q, part)) break;
            n += q->numel;
        }
        size_t a = o > lo ? o : lo, b = o + n < hi ? o + n : hi;
        if (a >= b) continue;
        be->adamw(tr.params + a, tr.grads + a, tr.m + a, tr.v + a, lma_at(tr.pact, a, (size_t)be->act_bytes), b - a,
                  p->lr, p->beta1, p->beta2, p->eps, wd, t, gs);
    }
}

static lma_status check_step(lma_trainable tr, int t) {
    if (!tr.grads) return lma_error(LMA_ERR_ARG, "training not enabled on this model");
    if (t < 1) return lma_error(LMA_ERR_ARG, "optimizer step %d: steps count from 1", t);
    return LMA_OK;
}

lma_status lma_model_adamw_range(lma_model *m, const lma_adamw_params *p, int t, size_t lo, size_t hi, double norm) {
    LMA_TRY(check_step(lma_model_trainable(m), t));
    if (!isfinite(norm)) return lma_error(LMA_ERR_NUMERIC, "gradient norm is not finite (%g): update skipped", norm);
    float gs = 1.0f;
    if (p->clip > 0) {
        double coef = p->clip / (norm + 1e-6);
        if (coef < 1.0) gs = (float)coef;
    }
    adamw_run(m, p, t, LMA_UPD_ALL, lo, hi, gs);
    return lma_backend_sync(m->be);
}

void lma_model_update_part(lma_model *m, int part) {
    if (!m->upd) return;
    const lma_backend *be = m->be;
    int side = be->side && be->side(LMA_SIDE_FORK);
    adamw_run(m, m->upd, m->upd_t, part, 0, lma_model_trainable(m).table->total, 1.0f);
    if (side) be->side(LMA_SIDE_BACK);
    if (part == LMA_UPD_REST && be->side) be->side(LMA_SIDE_JOIN);
}

lma_status lma_model_backward_adamw(lma_model *m, const lma_adamw_params *p, int t, float *grad_norm) {
    if (p->clip > 0) {
        LMA_TRY(lma_model_backward(m));
        return lma_model_adamw_step(m, p, t, grad_norm);
    }
    lma_trainable tr = lma_model_trainable(m);
    LMA_TRY(check_step(tr, t));
    m->upd = p;
    m->upd_t = t;
    lma_status s = lma_model_backward(m); /* calls lma_model_update_part as each part's gradients are final */
    m->upd = NULL;
    LMA_TRY(s);
    if (!grad_norm) return LMA_OK; /* nothing needs the norm: no pass over the gradients for it */
    double norm = sqrt(m->be->sum_sq(tr.grads, tr.table->total));
    LMA_TRY(lma_backend_sync(m->be));
    *grad_norm = (float)norm;
    if (!isfinite(norm))
        return lma_error(LMA_ERR_NUMERIC, "gradient norm is not finite (%g): the update ran with the backward "
                         "(no clipping) and was applied", norm);
    return LMA_OK;
}
