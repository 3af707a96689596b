/* Llama-family forward and backward on the backend op table.
 *
 * Per layer l (pre-norm), with N = B*T tokens:
 *   ln1  = rmsnorm(x, attn_norm)
 *   q,k,v = ln1 @ Wq,Wk,Wv (+bias)         Qwen3: q,k = rmsnorm_per_head(q,k)
 *   q,k  = rope(q,k, pos)                  pos restarts at each segment
 *   atty = attention(q,k,v, seg)           causal, GQA, segment-masked
 *   mid  = x + atty @ Wo (+bias)
 *   ln2  = rmsnorm(mid, mlp_norm)
 *   x'   = mid + (silu(ln2 @ Wgate) * (ln2 @ Wup)) @ Wdown
 * then logits = rmsnorm(x_L, final_norm) @ lm_head and fused cross-entropy.
 * The backward below walks the same steps in reverse.
 *
 * Storage: activations, their gradients and the weights the ops read (the compute
 * copy m->wact) are act storage, be->act_bytes per element, so they are `void *`
 * here and every offset into them goes through lma_at (backend.h); rstd, attention
 * state, losses, parameter gradients and the masters are fp32.
 * The inference forward with a KV cache is llama_infer.c, on the layer of this file
 * (lma_model_layer_forward, model_internal.h). */
#include "model/llama.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/rng.h"
#include "model/nf4.h"
#include "quant/qdot.h"
#include "model/safetensors.h"
#include "model/model_internal.h"

/* the projection of a parameter kind, or -1 */
static int kind_proj(lma_param_kind k) {
    switch (k) {
    case LMA_P_WQ: return LMA_PROJ_Q;
    case LMA_P_WK: return LMA_PROJ_K;
    case LMA_P_WV: return LMA_PROJ_V;
    case LMA_P_WO: return LMA_PROJ_O;
    case LMA_P_WGATE: return LMA_PROJ_GATE;
    case LMA_P_WUP: return LMA_PROJ_UP;
    case LMA_P_WDOWN: return LMA_PROJ_DOWN;
    default: return -1;
    }
}

/* Moves the projection weights out of the table into qtable (offsets of the rest
 * recomputed) and allocates the (L*7) NF4 slots. */
static lma_status split_quantized(lma_model *m) {
    LMA_TRY(lma_params_split_quantized(&m->table, &m->qtable));
    m->nf4 = lma_calloc((size_t)m->cfg.n_layers * LMA_PROJ_COUNT, sizeof *m->nf4, "NF4 weights");
    return m->nf4 ? LMA_OK : LMA_ERR_NOMEM;
}

/* LMA_ERR_UNSUPPORTED for a frozen base that keeps no fp32 copy (LMA_MODEL_FROZEN) */
lma_status lma_model_need_masters(const lma_model *m, const char *what) {
    if (m->params) return LMA_OK;
    return lma_error(LMA_ERR_UNSUPPORTED, "%s: this model was loaded frozen and keeps its weights only in %s "
                     "(no fp32 copy); load it again without LMA_MODEL_FROZEN", what, m->be->name);
}

static const lma_nf4_tensor *nf4_slot(const lma_model *m, int l, int p) {
    return m->nf4 ? &m->nf4[(size_t)l * LMA_PROJ_COUNT + p] : NULL;
}

lma_status lma_model_no_qm(const lma_model *m, const char *what) {
    if (!m->qm) return LMA_OK;
    return lma_error(LMA_ERR_UNSUPPORTED, "%s: %s keeps its GGUF weights quantized for inference; load it "
                     "dequantized (--dequantize, or without LMA_MODEL_GGUF_QUANT) for this", what,
                     m->path ? m->path : "the model");
}

/* GGUF blocks (LMA_MODEL_GGUF_QUANT): the slot of a projection, the embedding, the lm_head */
static const lma_qmat *q_slot(const lma_model *m, int l, int p) {
    return m->qm ? &m->qm[(size_t)l * LMA_PROJ_COUNT + p] : NULL;
}
static const lma_qmat *q_embed(const lma_model *m) {
    return m->qm ? &m->qm[(size_t)m->cfg.n_layers * LMA_PROJ_COUNT] : NULL;
}
static const lma_qmat *q_head(const lma_model *m) {
    return m->qm ? &m->qm[(size_t)m->cfg.n_layers * LMA_PROJ_COUNT + !m->cfg.tie_word_embeddings] : NULL;
}

/* out (N,C) = the embedding rows of ids (backend memory: host when the table is in blocks) */
void lma_model_embed_fwd(const lma_model *m, void *out, const int32_t *ids, int N) {
    const lma_qmat *e = q_embed(m);
    int C = m->cfg.hidden_size;
    if (!e) { m->be->embedding_fwd(out, ids, m->w.embed, N, C); return; }
    for (int n = 0; n < N; n++) lma_qmat_row_f32(e, ids[n], (float *)out + (size_t)n * C);
}

/* out (rows,V) = inp (rows,C) @ lm_head^T */
void lma_model_head_fwd(const lma_model *m, void *out, const void *inp, int rows) {
    const lma_qmat *h = q_head(m);
    if (h) m->be->matmul_q_fwd(out, inp, h, NULL, rows);
    else m->be->matmul_fwd(out, inp, m->w.lm_head, NULL, rows, m->cfg.hidden_size, m->cfg.vocab_size);
}

/* host fp32 values of tensor p (n elements from element `at` of it) into the model: the
 * masters, or without them (frozen base) straight into the compute copy, converted through
 * a backend staging buffer in chunks */
lma_status lma_model_put_weights(lma_model *m, const lma_param_info *p, size_t at, const float *x, size_t n) {
    const lma_backend *be = m->be;
    if (m->params) { be->upload(m->params + p->offset + at, x, n * sizeof(float)); return LMA_OK; }
    enum { CHUNK = 1 << 22 };
    float *st = be->alloc((n < CHUNK ? n : CHUNK) * sizeof(float));
    if (!st) return lma_error(LMA_ERR_NOMEM, "out of %s memory staging %s", be->name, p->name);
    for (size_t c0 = 0; c0 < n; c0 += CHUNK) {
        size_t k = n - c0 < CHUNK ? n - c0 : CHUNK;
        be->upload(st, x + c0, k * sizeof(float));
        be->cast_to_act(lma_at(m->wact, p->offset + at + c0, (size_t)be->act_bytes), st, k);
    }
    be->free(st);
    return LMA_OK;
}

/* The bytes of the fp32 masters and of the compute copy of `total` table elements, and
 * whether each is allocated: *alias (act storage is fp32: the masters are the compute copy,
 * one allocation), *masters (a frozen base, NF4 or asked for, keeps no fp32 copy where the
 * compute copy is separate). 0 on overflow. */
static int weight_bytes(size_t total, int act_bytes, unsigned flags, size_t *bytes, size_t *abytes, int *masters,
                        int *alias) {
    if (!lma_mul_ok(total, sizeof(float), bytes) || !lma_mul_ok(total, (size_t)act_bytes, abytes)) return 0;
    *alias = act_bytes == (int)sizeof(float);
    *masters = *alias || !(flags & (LMA_MODEL_NF4 | LMA_MODEL_FROZEN));
    return 1;
}

lma_status lma_model_weight_plan(const lma_config *c, int act_bytes, unsigned flags, lma_weight_plan *out) {
    memset(out, 0, sizeof *out);
    lma_param_table t, q = {0};
    LMA_TRY(lma_params_build(c, &t));
    lma_status s = (flags & LMA_MODEL_NF4) ? lma_params_split_quantized(&t, &q) : LMA_OK;
    size_t bytes = 0, abytes = 0;
    int masters = 0, alias = 0;
    if (s == LMA_OK && !weight_bytes(t.total, act_bytes, flags, &bytes, &abytes, &masters, &alias))
        s = lma_error(LMA_ERR_NOMEM, "parameter count overflows");
    if (s == LMA_OK) {
        out->table_elems = t.total;
        out->masters = masters ? bytes : 0;
        out->compute_copy = alias ? 0 : abytes;
        for (int i = 0; i < t.count; i++) {
            out->n_params += t.info[i].numel;
            if (t.info[i].numel > out->max_tensor) out->max_tensor = t.info[i].numel;
        }
        for (int i = 0; i < q.count; i++) {
            out->n_params += q.info[i].numel;
            out->nf4 += lma_nf4_bytes((int64_t)q.info[i].numel);
            if (q.info[i].numel > out->max_quant) out->max_quant = q.info[i].numel;
            if (q.info[i].numel > out->max_tensor) out->max_tensor = q.info[i].numel;
        }
        out->inv_freq = sizeof(float) * (size_t)(c->head_dim / 2 + 1);
    }
    lma_params_free(&t);
    lma_params_free(&q);
    return s;
}

static lma_status create_impl(const lma_config *cfg, const lma_backend *be, unsigned flags, lma_model **out) {
    int nf4 = (flags & LMA_MODEL_NF4) != 0;
    *out = NULL;
    if (nf4 && (!be->matmul_nf4_fwd || !be->matmul_nf4_bwd))
        return lma_error(LMA_ERR_UNSUPPORTED, "backend '%s' cannot hold an NF4 (QLoRA) model", be->name);
    lma_model *m = lma_calloc(1, sizeof *m, "model");
    if (!m) return LMA_ERR_NOMEM;
    m->cfg = *cfg;
    m->be = be;
    lma_status s = lma_params_build(cfg, &m->table);
    if (s == LMA_OK && nf4) s = split_quantized(m);
    if (s == LMA_OK && (flags & LMA_MODEL_GGUF_QUANT) && !nf4) {
        if (!be->matmul_q_fwd) s = lma_error(LMA_ERR_UNSUPPORTED, "backend '%s' cannot hold GGUF blocks", be->name);
        else s = lma_params_split(&m->table, &m->qtable, 1);
        if (s == LMA_OK)
            m->qm = lma_calloc((size_t)cfg->n_layers * LMA_PROJ_COUNT + 2, sizeof *m->qm, "quantized weights");
        if (s == LMA_OK && !m->qm) s = LMA_ERR_NOMEM;
    }
    if (s != LMA_OK) goto fail;
    size_t bytes, abytes; /* fp32 masters, compute copy */
    int masters, alias;
    if (!weight_bytes(m->table.total, be->act_bytes, flags, &bytes, &abytes, &masters, &alias)) {
        s = lma_error(LMA_ERR_NOMEM, "parameter count overflows");
        goto fail;
    }
    m->params = masters ? be->alloc(bytes) : NULL;
    m->wact = alias ? m->params : be->alloc(abytes);
    m->inv_freq = be->alloc(sizeof(float) * (size_t)(cfg->head_dim / 2 + 1)); /* as lma_model_weight_plan */
    if ((masters && !m->params) || !m->wact || !m->inv_freq) {
        s = lma_error(LMA_ERR_NOMEM, "out of %s memory for %zu parameters (%.1f MB)", be->name, m->table.total,
                      (double)((masters ? bytes : 0) + (alias ? 0 : abytes)) / 1e6);
        goto fail;
    }
    if (m->params) be->zero(m->params, bytes);
    if (!alias) be->zero(m->wact, abytes);
    s = lma_tensors_carve(cfg, &m->table, m->wact, (size_t)be->act_bytes, &m->w);
    if (s != LMA_OK) goto fail;
    float *inv = malloc(sizeof(float) * (size_t)(cfg->head_dim / 2 + 1));
    if (!inv) { s = lma_error(LMA_ERR_NOMEM, "out of memory"); goto fail; }
    lma_config_rope_inv_freq(cfg, inv);
    be->upload(m->inv_freq, inv, sizeof(float) * (size_t)(cfg->head_dim / 2));
    free(inv);
    *out = m;
    return LMA_OK;
fail:
    lma_model_free(m);
    return s;
}

lma_status lma_model_create(const lma_config *cfg, const lma_backend *be, lma_model **out) {
    return create_impl(cfg, be, 0, out);
}

lma_status lma_model_create_ex(const lma_config *cfg, const lma_backend *be, unsigned flags, lma_model **out) {
    return create_impl(cfg, be, flags, out);
}

/* Quantizes one projection weight (host fp32) into its NF4 slot. */
lma_status lma_model_set_quantized(lma_model *m, const lma_param_info *p, const float *x) {
    lma_nf4_tensor *q = &m->nf4[(size_t)p->layer * LMA_PROJ_COUNT + kind_proj(p->kind)];
    lma_nf4_free(q);
    lma_status s = lma_nf4_quantize(x, (int64_t)p->numel, q);
    if (s != LMA_OK) return lma_error(s, "%s: %s", p->name, lma_last_error());
    /* host-memory backends read the host arrays; a GPU gets its own copy */
    if (!lma_backend_on_host(m->be)) return lma_nf4_to_backend(q, m->be);
    return LMA_OK;
}

lma_status lma_model_to_nf4(const lma_model *src, lma_model **out) {
    *out = NULL;
    if (src->nf4) return lma_error(LMA_ERR_ARG, "model is already NF4");
    LMA_TRY(lma_model_need_masters(src, "NF4 conversion"));
    lma_model *m = NULL;
    LMA_TRY(create_impl(&src->cfg, src->be, LMA_MODEL_NF4, &m));
    float *h = lma_malloc(src->table.total * sizeof(float), "NF4 conversion staging");
    if (!h) { lma_model_free(m); return LMA_ERR_NOMEM; }
    src->be->download(h, src->params, src->table.total * sizeof(float));
    lma_status s = LMA_OK;
    for (int i = 0; i < src->table.count && s == LMA_OK; i++) {
        const lma_param_info *p = &src->table.info[i];
        const lma_param_info *d = lma_params_find(&m->table, p->name);
        if (d) s = lma_model_put_weights(m, d, 0, h + p->offset, p->numel);
        else s = lma_model_set_quantized(m, p, h + p->offset);
    }
    free(h);
    if (s != LMA_OK) { lma_model_free(m); return s; }
    lma_model_sync_weights(m);
    *out = m;
    return LMA_OK;
}

lma_trainable lma_model_trainable(const lma_model *m) {
    lma_trainable t;
    if (m->lora) return m->lora_hooks->trainable(m->lora);
    t.table = &m->table;
    t.params = m->params; t.grads = m->grads; t.m = m->adam_m; t.v = m->adam_v;
    t.pact = m->wact;
    return t;
}

void lma_model_set_adapter(lma_model *m, lma_lora *a, const lma_adapter_hooks *hooks) {
    if (m->lora && m->lora != a) m->lora_hooks->free(m->lora, m->be);
    m->lora = a;
    m->lora_hooks = a ? hooks : NULL;
    m->frozen = a != NULL;
}

void lma_model_sync_weights(lma_model *m) {
    const lma_backend *be = m->be;
    if (m->params && m->wact != m->params) be->cast_to_act(m->wact, m->params, m->table.total);
    if (m->lora) m->lora_hooks->sync(m->lora, be);
}

void lma_model_free(lma_model *m) {
    if (!m) return;
    const lma_backend *be = m->be;
    lma_model_free_acts(m);
    lma_model_drop_graphs(m);
    if (m->infer_buf) be->free(m->infer_buf);
    if (m->wact && m->wact != m->params) be->free(m->wact);
    if (m->params) be->free(m->params);
    if (m->grads) be->free(m->grads);
    if (m->adam_m) be->free(m->adam_m);
    if (m->adam_v) be->free(m->adam_v);
    if (m->inv_freq) be->free(m->inv_freq);
    lma_tensors_free(&m->w);
    lma_tensors_free(&m->g);
    lma_params_free(&m->table);
    if (m->lora) m->lora_hooks->free(m->lora, be);
    if (m->nf4)
        for (int i = 0; i < m->cfg.n_layers * LMA_PROJ_COUNT; i++) lma_nf4_free(&m->nf4[i]);
    free(m->nf4);
    if (m->qm)
        for (int i = 0; i < m->cfg.n_layers * LMA_PROJ_COUNT + 2; i++) lma_qmat_free(&m->qm[i]);
    free(m->qm);
    lma_params_free(&m->qtable);
    free(m->path);
    free(m);
}

size_t lma_model_num_params(const lma_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->table.count; i++) n += m->table.info[i].numel;
    for (int i = 0; i < m->qtable.count; i++) n += m->qtable.info[i].numel;
    return n;
}

lma_status lma_model_enable_training(lma_model *m) {
    if (m->lora) return m->lora_hooks->enable_training(m->lora, m->be);
    if (m->nf4) return lma_error(LMA_ERR_UNSUPPORTED, "an NF4 model trains only through a LoRA adapter (QLoRA)");
    if (m->qm) return lma_model_no_qm(m, "training");
    LMA_TRY(lma_model_need_masters(m, "full training"));
    if (m->grads) return LMA_OK;
    size_t bytes = m->table.total * sizeof(float);
    m->grads = m->be->alloc(bytes);
    m->adam_m = m->be->alloc(bytes);
    m->adam_v = m->be->alloc(bytes);
    if (!m->grads || !m->adam_m || !m->adam_v)
        return lma_error(LMA_ERR_NOMEM, "out of memory for gradients and optimizer state (3 x %.1f MB)", (double)bytes / 1e6);
    m->be->zero(m->grads, bytes);
    m->be->zero(m->adam_m, bytes);
    m->be->zero(m->adam_v, bytes);
    return lma_tensors_carve(&m->cfg, &m->table, m->grads, sizeof(float), &m->g);
}

void lma_model_zero_grad(lma_model *m) {
    lma_trainable t = lma_model_trainable(m);
    if (t.grads) m->be->zero(t.grads, t.table->total * sizeof(float));
}

/* 1 when the adapter's terms of the n projections p0.. go first, the base products then added
 * in their GEMMs' epilogue (C input): the output is then written once by the small product and
 * read once inside the compute-bound one, instead of written, then read and written again.
 * Every one adapted, plain weights without a bias, a backend that adds in its GEMM. */
static int adapter_first(const lma_model *m, int l, int p0, int n, const void *const *bias) {
    if (!m->lora || !m->be->matmul_fwd_add) return 0;
    for (int j = 0; j < n; j++)
        if (bias[j] || nf4_slot(m, l, p0 + j) || q_slot(m, l, p0 + j) || !m->lora_hooks->term_first(m->lora, l, p0 + j))
            return 0;
    return 1;
}

/* out[j] (N,oc[j]) = res[j] + inp (N,C) @ W[j]^T + bias[j] for the n projections p0 + j that
 * read inp (q, k, v; gate, up; or one) (res NULL: none; res[j] may be out[j]), W the compute
 * copy, NF4 or GGUF blocks; with an attached adapter's terms, in one call for the n (the LoRA
 * path, through its hooks: adapter_hooks.h). res without the backend's matmul_fwd_add: n = 1,
 * no bias, out != res. */
static void proj_fwd(const lma_model *m, int l, int p0, int n, void *const *out, const void *const *res,
                     const void *inp, const void *const *w, const void *const *bias, int N, int C, const int *oc) {
    const lma_backend *be = m->be;
    const void *none[3] = {NULL, NULL, NULL}, *own[3];
    if (!res) res = none;
    if (adapter_first(m, l, p0, n, bias)) {
        m->lora_hooks->fwd(m->lora, be, l, p0, n, m->lora_train, out, res, inp, N, C, oc);
        for (int j = 0; j < n; j++) be->matmul_fwd_add(out[j], inp, w[j], out[j], N, C, oc[j]);
        return;
    }
    for (int j = 0; j < n; j++) {
        const lma_nf4_tensor *q = nf4_slot(m, l, p0 + j);
        const lma_qmat *g = q_slot(m, l, p0 + j);
        int add = res[j] && be->matmul_fwd_add && !bias[j] && !q && !g; /* the residual in the epilogue */
        if (add) be->matmul_fwd_add(out[j], inp, w[j], res[j], N, C, oc[j]);
        else if (q) be->matmul_nf4_fwd(out[j], inp, q, bias[j], N, C, oc[j]);
        else if (g) be->matmul_q_fwd(out[j], inp, g, bias[j], N);
        else be->matmul_fwd(out[j], inp, w[j], bias[j], N, C, oc[j]);
        if (res[j] && !add) be->add(out[j], out[j], res[j], (size_t)N * oc[j]);
        own[j] = out[j];
    }
    if (m->lora) m->lora_hooks->fwd(m->lora, be, l, p0, n, m->lora_train, out, own, inp, N, C, oc);
}
/* one projection, added to res (N,OC) when given (the o and down projections onto the
 * residual stream; out may be res where the backend adds in its GEMM: inference adds into
 * the stream) */
static void proj1_fwd(const lma_model *m, int l, int p, void *out, const void *inp, const void *w, const void *bias,
                      const void *res, int N, int C, int OC) {
    proj_fwd(m, l, p, 1, &out, &res, inp, &w, &bias, N, C, &OC);
}

/* Backward of proj_fwd: dinp (N,C) = the sum of dout[j] @ W[j] (the frozen base: dw, dbias NULL)
 * and of the adapter's paths (its gradients too); dinp is written (callers need not zero it).
 * As in the forward, where the adapter takes every projection of the call its input gradient
 * writes dinp first and the base products add into it in their GEMMs' epilogue. */
static void proj_bwd(const lma_model *m, int l, int p0, int n, void *dinp, float *const *dw, float *const *dbias,
                     const void *const *dout, const void *inp, const void *const *w, int N, int C, const int *oc) {
    const lma_backend *be = m->be;
    int first = m->lora != NULL;
    for (int j = 0; j < n && first; j++) first = m->lora_hooks->term_first(m->lora, l, p0 + j);
    if (first) m->lora_hooks->bwd(m->lora, be, l, p0, n, dinp, 1, dout, inp, N, C, oc);
    else be->zero(dinp, (size_t)N * C * (size_t)be->act_bytes);
    for (int j = 0; j < n; j++) {
        const lma_nf4_tensor *q = nf4_slot(m, l, p0 + j);
        if (q) be->matmul_nf4_bwd(dinp, dout[j], q, N, C, oc[j]);
        else be->matmul_bwd(dinp, dw[j], dbias[j], dout[j], inp, w[j], N, C, oc[j]);
    }
    if (m->lora && !first) m->lora_hooks->bwd(m->lora, be, l, p0, n, dinp, 0, dout, inp, N, C, oc);
}
static void proj1_bwd(const lma_model *m, int l, int p, void *dinp, float *dw, float *dbias, const void *dout,
                      const void *inp, const void *w, int N, int C, int OC) {
    proj_bwd(m, l, p, 1, dinp, &dw, &dbias, &dout, inp, &w, N, C, &OC);
}

/* Inference on plain weights: the attention's rmsnorm, q, k, v projections and RoPE of q and k
 * as one backend call (backend.h norm_proj_fwd); 1 when it ran, 0 when the backend declined
 * (nothing done). */
static int fused_norm_qkv(const lma_model *m, const lma_layer_tensors *w, const lma_layer_io *io, int N,
                          const int32_t *pos) {
    const lma_config *c = &m->cfg;
    int QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    void *out[3] = {io->q, io->k, io->v};
    const void *ws[3] = {w->wq, w->wk, w->wv};
    int oc[3] = {QD, KVD, KVD};
    return !m->be->norm_proj_fwd(out, io->x, w->attn_norm, (float)c->rms_norm_eps, ws, oc, 3, 0, N, c->hidden_size, pos,
                                 m->inv_freq, c->head_dim);
}
/* ... and the MLP's rmsnorm of mid, gate, up and SwiGLU into io->swi */
static int fused_norm_swiglu(const lma_model *m, const lma_layer_tensors *w, const lma_layer_io *io, const void *mid,
                             int N) {
    const lma_config *c = &m->cfg;
    void *out[2] = {io->swi, NULL};
    const void *ws[2] = {w->wgate, w->wup};
    int oc[2] = {c->intermediate_size, c->intermediate_size};
    return !m->be->norm_proj_fwd(out, mid, w->mlp_norm, (float)c->rms_norm_eps, ws, oc, 2, 1, N, c->hidden_size, NULL,
                                 NULL, 0);
}

/* The q, k and v products as one (training, backend.h qkv_rope_*): on plain weights without
 * biases or q/k norms, where wq, wk, wv (and their gradients) lie one after another, so the
 * three are one (QD + 2 KVD, C) matrix: one GEMM each way instead of three, and the k and v
 * ones (KVD rows: 256 on TinyLlama) ran at a third of the GEMMs' rate. */
static int qkv_fused(const lma_model *m, const lma_layer_tensors *w, const lma_layer_tensors *g, const void *scratch) {
    const lma_config *c = &m->cfg;
    const lma_backend *be = m->be;
    size_t C = c->hidden_size, QD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    size_t es = (size_t)be->act_bytes;
    return scratch && be->qkv_rope_fwd && be->qkv_rope_bwd && !m->lora && !m->nf4 && !m->qm && !c->qk_norm && !w->bq &&
           !w->bk && !w->bv && w->wk == lma_at(w->wq, QD * C, es) && w->wv == lma_at(w->wk, KVD * C, es) &&
           (!g || !g->wq ||
            (g->wk == lma_at(g->wq, QD * C, sizeof(float)) && g->wv == lma_at(g->wk, KVD * C, sizeof(float))));
}

/* recompute (activation checkpointing, from the backward): everything the backward reads,
 * not the layer's output (the down projection and its residual add are skipped) */
void lma_model_layer_forward(const lma_model *m, int l, const lma_layer_io *io, int N, const int32_t *pos,
                             const lma_attn_ctx *ac, int recompute) {
    const lma_config *c = &m->cfg;
    const lma_backend *be = m->be;
    const lma_layer_tensors *w = &m->w.layers[l];
    int C = c->hidden_size, I = c->intermediate_size, NH = c->n_heads, NKV = c->n_kv_heads, HD = c->head_dim;
    int QD = NH * HD, KVD = NKV * HD;
    float eps = (float)c->rms_norm_eps, scale = lma_model_attn_scale(c);
    /* inference on plain weights (no adapter, NF4 or GGUF blocks): each rmsnorm and the
     * projections it feeds (and RoPE) as one backend call where the backend has one and takes
     * the shape (the decode rows on cuda: eight launches fewer a layer; q/k biases or q/k norms
     * keep the attention's unfused); training never */
    int fuse = ac->seqs && !recompute && be->norm_proj_fwd && !m->lora && !m->nf4 && !m->qm;
    int roped = fuse && !c->qk_norm && !w->bq && !w->bk && !w->bv && fused_norm_qkv(m, w, io, N, pos);
    if (!roped && !ac->seqs && qkv_fused(m, w, NULL, io->qkv)) {
        be->rmsnorm_fwd(io->ln1, io->rstd1, io->x, w->attn_norm, N, C, eps);
        be->matmul_fwd(io->qkv, io->ln1, w->wq, NULL, N, C, QD + 2 * KVD);
        be->qkv_rope_fwd(io->q, io->k, io->v, io->qkv, pos, m->inv_freq, N, NH, NKV, HD);
    } else if (!roped) {
        be->rmsnorm_fwd(io->ln1, io->rstd1, io->x, w->attn_norm, N, C, eps);
        void *out[3] = {c->qk_norm ? io->q_raw : io->q, c->qk_norm ? io->k_raw : io->k, io->v};
        const void *ws[3] = {w->wq, w->wk, w->wv}, *bs[3] = {w->bq, w->bk, w->bv};
        proj_fwd(m, l, LMA_PROJ_Q, 3, out, NULL, io->ln1, ws, bs, N, C, (const int[3]){QD, KVD, KVD});
        if (c->qk_norm) {
            be->rmsnorm_fwd(io->q, io->q_rstd, io->q_raw, w->q_norm, N * NH, HD, eps);
            be->rmsnorm_fwd(io->k, io->k_rstd, io->k_raw, w->k_norm, N * NKV, HD, eps);
        }
        be->rope_fwd(io->q, io->q, pos, m->inv_freq, N, NH, HD);
        be->rope_fwd(io->k, io->k, pos, m->inv_freq, N, NKV, HD);
    }
    if (ac->seqs) {
        be->attention_cached(io->atty, io->q, io->k, io->v, ac->seqs, ac->n_seq, N / ac->n_seq, l, NH, NKV, HD, scale);
    } else {
        be->attention_fwd(io->atty, io->att, io->q, io->k, io->v, ac->seg, ac->B, ac->T, NH, NKV, HD, scale);
    }
    /* the o and down products land on the residual stream: mid = x + atty Wo^T, xo = mid +
     * swi Wdown^T, each one GEMM on plain weights (proj1_fwd). Inference updates the stream
     * in place (x == xo) where that holds and no adapter is attached: mid is x itself */
    int in_place = io->x == io->xo && !recompute && be->matmul_fwd_add && !m->lora && !w->bo && !m->nf4 && !m->qm;
    void *mid = in_place ? io->x : io->mid;
    proj1_fwd(m, l, LMA_PROJ_O, mid, io->atty, w->wo, w->bo, io->x, N, QD, C);
    if (!(fuse && fused_norm_swiglu(m, w, io, mid, N))) {
        be->rmsnorm_fwd(io->ln2, io->rstd2, mid, w->mlp_norm, N, C, eps);
        void *out[2] = {io->gate, io->up};
        const void *ws[2] = {w->wgate, w->wup}, *bs[2] = {NULL, NULL};
        proj_fwd(m, l, LMA_PROJ_GATE, 2, out, NULL, io->ln2, ws, bs, N, C, (const int[2]){I, I});
        be->swiglu_fwd(io->swi, io->gate, io->up, (size_t)N * I);
    }
    if (recompute) return;
    proj1_fwd(m, l, LMA_PROJ_DOWN, io->xo, io->swi, w->wdown, NULL, mid, N, I, C);
}


/* The row ranges of the loss head (m->head_spans) for targets tg (N rows): a row without a
 * target has no loss and no gradient, so runs of them (prompt tokens in SFT, DPO) are
 * skipped; a range holds at most R rows and bridges gaps of up to 16 ignored rows (computed
 * like the others: their cross-entropy is zero) so that short answers share a GEMM. */
static void head_spans(lma_model *m, const int32_t *tg, int N, int R) {
    enum { GAP = 16 };
    int n = 0;
    for (int i = 0; i < N;) {
        while (i < N && tg[i] == LMA_IGNORE_INDEX) i++;
        if (i == N) break;
        int s = i, last = i;
        for (int j = i + 1; j < N && j - s < R && j - last <= GAP; j++)
            if (tg[j] != LMA_IGNORE_INDEX) last = j;
        m->head_spans[2 * n] = s, m->head_spans[2 * n + 1] = last + 1, n++;
        i = last + 1;
    }
    m->n_head_spans = n;
}

/* fuse_head: with want_grad, the loss head's backward runs inside the forward (mean
 * cross-entropy); 0 leaves it to lma_model_head_backward (sequence-level objectives) */
static lma_status forward(lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg, int B, int T,
                          int want_grad, int fuse_head, float grad_scale, float *mean_loss) {
    const lma_config *c = &m->cfg;
    const lma_backend *be = m->be;
    if (want_grad && !targets) return lma_error(LMA_ERR_ARG, "a forward for training needs targets");
    if (want_grad) LMA_TRY(lma_model_no_qm(m, "training"));
    if (want_grad && !lma_model_trainable(m).grads) return lma_error(LMA_ERR_ARG, "training not enabled on this model");
    if (c->sliding_window > 0 && T > c->sliding_window)
        return lma_error(LMA_ERR_UNSUPPORTED, "sequence of %d tokens exceeds sliding_window %d (not implemented)", T,
                         c->sliding_window);
    LMA_TRY(lma_model_ensure_acts(m, B, T));
    lma_model_rope_update(m, T);
    if (m->lora) LMA_TRY(m->lora_hooks->begin(m->lora, be, B * T, want_grad));
    m->lora_train = want_grad && m->lora;
    lma_acts *a = m->acts;
    int N = B * T, C = c->hidden_size, V = c->vocab_size;
    size_t es = (size_t)be->act_bytes;

    /* validate and stage the integer inputs: positions restart where the segment changes;
     * rows of one segment each need no segment mask (seg dropped: a backend may then take a
     * faster path, cuDNN's attention on cuda) */
    int32_t *h = malloc(2 * (size_t)N * sizeof(int32_t));
    if (!h) return lma_error(LMA_ERR_NOMEM, "out of memory");
    int32_t *pos = h, *tg = h + N;
    int n_valid = 0, several = 0;
    for (int b = 0; b < B; b++) {
        int start = 0;
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            if (ids[i] < 0 || ids[i] >= V) {
                free(h);
                return lma_error(LMA_ERR_ARG, "token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i, V);
            }
            if (seg && t > 0 && seg[i] != seg[i - 1]) start = t, several = 1;
            pos[i] = t - start;
            if (targets) {
                int y = targets[i];
                if (y != LMA_IGNORE_INDEX && (y < 0 || y >= V)) {
                    free(h);
                    return lma_error(LMA_ERR_ARG, "target %d at position %d is outside the vocabulary [0, %d)", y, i, V);
                }
                tg[i] = y;
                n_valid += y != LMA_IGNORE_INDEX;
            }
        }
    }
    if (!several) seg = NULL;
    if (targets) head_spans(m, tg, N, (int)a->head_rows);
    be->upload(m->d_ids, ids, (size_t)N * sizeof(int32_t));
    be->upload(m->d_pos, pos, (size_t)N * sizeof(int32_t));
    if (seg) be->upload(m->d_seg, seg, (size_t)N * sizeof(int32_t));
    if (targets) be->upload(m->d_targets, tg, (size_t)N * sizeof(int32_t));
    free(h);
    const int32_t *dseg = seg ? m->d_seg : NULL;

    lma_model_embed_fwd(m, a->resid, m->d_ids, N);
    lma_attn_ctx ac = {.seg = dseg, .B = B, .T = T};
    for (int l = 0; l < c->n_layers; l++) {
        lma_layer_io io = lma_model_layer_slots(m, l);
        lma_model_layer_forward(m, l, &io, N, m->d_pos, &ac, 0);
    }
    void *xl = lma_at(a->resid, (size_t)c->n_layers * N * C, es);
    be->rmsnorm_fwd(a->lnf, a->rstdf, xl, m->w.final_norm, N, C, (float)c->rms_norm_eps);

    m->has_targets = targets != NULL;
    m->has_seg = seg != NULL;
    m->n_valid = n_valid;
    m->head_pending = want_grad && !fuse_head;
    if (!fuse_head) want_grad = 0; /* from here on: the head's own gradient */
    double total = 0;
    if (!targets) {
        /* logits wanted (lma_model_logits): the whole (N, V) block, allocated on demand */
        size_t need = (size_t)N * V;
        if (need > m->full_logits_cap) {
            if (m->full_logits) be->free(m->full_logits);
            m->full_logits = be->alloc(need * es);
            m->full_logits_cap = m->full_logits ? need : 0;
            if (!m->full_logits) return lma_error(LMA_ERR_NOMEM, "out of memory for %zu logits", need);
        }
        lma_model_head_fwd(m, m->full_logits, a->lnf, N);
    } else {
        /* the loss head in row chunks: logits -> cross-entropy (dlogits in place) ->
         * with want_grad, at once the head's backward: dlnf (into a->dln) and d lm_head */
        const lma_tensors *G = m->frozen ? NULL : &m->g;
        int denom = m->loss_denom > 0 ? m->loss_denom : n_valid;
        float ds = denom > 0 ? grad_scale / (float)denom : 0.0f;
        m->head_rows = (int)a->head_rows;
        if (want_grad) be->zero(a->dln, (size_t)N * C * es);
        be->zero(a->losses, (size_t)N * sizeof(float)); /* the rows the spans skip */
        for (int sp = 0; sp < m->n_head_spans; sp++) {
            size_t r0 = (size_t)m->head_spans[2 * sp];
            int rows = m->head_spans[2 * sp + 1] - (int)r0;
            const void *lnf = lma_at(a->lnf, r0 * C, es);
            lma_model_head_fwd(m, a->logits, lnf, rows);
            be->cross_entropy(a->losses + r0, want_grad ? a->logits : NULL, a->logits, m->d_targets + r0, rows, V, ds);
            if (want_grad)
                be->matmul_bwd(lma_at(a->dln, r0 * C, es), G ? G->lm_head : NULL, NULL, a->logits, lnf, m->w.lm_head,
                               rows, C, V);
        }
        be->download(m->h_losses, a->losses, (size_t)N * sizeof(float));
        for (int i = 0; i < N; i++) total += m->h_losses[i];
    }
    LMA_TRY(lma_backend_sync(be)); /* a failed op is the forward's failure, not a non-finite loss */
    double mean = n_valid > 0 ? total / n_valid : 0.0;
    if (mean_loss) *mean_loss = (float)mean;
    if (targets && !isfinite(mean)) return lma_error(LMA_ERR_NUMERIC, "loss is not finite (%g)", mean);
    return LMA_OK;
}

lma_status lma_model_forward(lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg,
                             int B, int T, int want_grad, float grad_scale, float *mean_loss) {
    return forward(m, ids, targets, seg, B, T, want_grad, 1, grad_scale, mean_loss);
}

lma_status lma_model_forward_seq(lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg, int B,
                                 int T) {
    if (!targets) return lma_error(LMA_ERR_ARG, "a sequence-level forward needs targets");
    lma_status s = forward(m, ids, targets, seg, B, T, 1, 0, 1.0f, NULL);
    if (s == LMA_ERR_NUMERIC) lma_clear_error(); /* the objective judges the per-token losses */
    return s == LMA_ERR_NUMERIC ? LMA_OK : s;
}

lma_status lma_model_head_backward(lma_model *m, const float *row_scale) {
    if (!m->head_pending) return lma_error(LMA_ERR_ARG, "head backward without lma_model_forward_seq");
    const lma_backend *be = m->be;
    lma_acts *a = m->acts;
    const lma_tensors *G = m->frozen ? NULL : &m->g;
    size_t N = (size_t)m->B * m->T, T = (size_t)m->T, C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    size_t es = (size_t)be->act_bytes;
    be->zero(a->dln, N * C * es);
    be->zero(a->losses, N * sizeof(float));
    for (int sp = 0; sp < m->n_head_spans; sp++) {
        size_t r0 = (size_t)m->head_spans[2 * sp], rows = (size_t)m->head_spans[2 * sp + 1] - r0;
        const void *lnf = lma_at(a->lnf, r0 * C, es);
        be->matmul_fwd(a->logits, lnf, m->w.lm_head, NULL, (int)rows, (int)C, (int)V);
        for (size_t s0 = r0; s0 < r0 + rows;) { /* each sequence's part of the chunk, at its own scale */
            size_t b = s0 / T, e = (b + 1) * T < r0 + rows ? (b + 1) * T : r0 + rows;
            void *lg = lma_at(a->logits, (s0 - r0) * V, es);
            be->cross_entropy(a->losses + s0, lg, lg, m->d_targets + s0, (int)(e - s0), (int)V, row_scale[b]);
            s0 = e;
        }
        be->matmul_bwd(lma_at(a->dln, r0 * C, es), G ? G->lm_head : NULL, NULL, a->logits, lnf, m->w.lm_head, (int)rows,
                       (int)C, (int)V);
    }
    m->head_pending = 0;
    return lma_backend_sync(be);
}

lma_status lma_model_forward_base(lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg, int B,
                                  int T) {
    lma_lora *lo = m->lora;
    const lma_adapter_hooks *h = m->lora_hooks;
    m->lora = NULL; /* the base alone: the adapter is skipped, its state (dropout stream) untouched */
    m->lora_hooks = NULL;
    lma_status s = forward(m, ids, targets, seg, B, T, 0, 1, 1.0f, NULL);
    m->lora = lo;
    m->lora_hooks = h;
    if (s == LMA_ERR_NUMERIC) lma_clear_error();
    return s == LMA_ERR_NUMERIC ? LMA_OK : s;
}

lma_status lma_model_backward(lma_model *m) {
    const lma_config *c = &m->cfg;
    const lma_backend *be = m->be;
    if (!lma_model_trainable(m).grads || !m->acts || !m->has_targets || (m->lora && !m->lora_train))
        return lma_error(LMA_ERR_ARG, "backward without a training forward");
    if (m->head_pending) return lma_error(LMA_ERR_ARG, "backward before lma_model_head_backward");
    static const lma_layer_tensors no_grads; /* frozen base: every parameter gradient NULL */
    const lma_tensors *G = m->frozen ? NULL : &m->g;
    lma_acts *a = m->acts;
    int B = m->B, T = m->T, N = B * T, C = c->hidden_size, I = c->intermediate_size;
    int NH = c->n_heads, NKV = c->n_kv_heads, HD = c->head_dim, QD = NH * HD, KVD = NKV * HD;
    float scale = lma_model_attn_scale(c);
    const int32_t *seg = m->has_seg ? m->d_seg : NULL;
    size_t es = (size_t)be->act_bytes, NC = (size_t)N * C * es;

    /* head: the training forward already ran its backward (dlnf in a->dln, d lm_head) */
    be->zero(a->dresid, NC);
    void *xl = lma_at(a->resid, (size_t)c->n_layers * N * C, es);
    be->rmsnorm_bwd(a->dresid, G ? G->final_norm : NULL, a->dln, xl, m->w.final_norm, a->rstdf, N, C);

    lma_attn_ctx ac = {.seg = seg, .B = B, .T = T};
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const lma_layer_tensors *w = &m->w.layers[l], *g = G ? &G->layers[l] : &no_grads;
        lma_layer_io io = lma_model_layer_slots(m, l);
        if (m->grad_ckpt) lma_model_layer_forward(m, l, &io, N, m->d_pos, &ac, 1); /* same inputs, same dropout masks */
        void *x = io.x, *ln1 = io.ln1, *ln2 = io.ln2, *mid = io.mid, *q = io.q, *k = io.k, *v = io.v;
        void *atty = io.atty, *gate = io.gate, *up = io.up, *swi = io.swi;
        float *att = io.att;

        /* MLP: x' = mid + swi @ Wdown ; dresid flows to mid unchanged */
        proj1_bwd(m, l, LMA_PROJ_DOWN, a->dswi, g->wdown, NULL, a->dresid, swi, w->wdown, N, I, C);
        be->zero(a->dgate, (size_t)N * I * es);
        be->zero(a->dup, (size_t)N * I * es);
        be->swiglu_bwd(a->dgate, a->dup, a->dswi, gate, up, (size_t)N * I);
        {
            float *dw[2] = {g->wgate, g->wup}, *db[2] = {NULL, NULL};
            const void *dout[2] = {a->dgate, a->dup}, *ws[2] = {w->wgate, w->wup};
            proj_bwd(m, l, LMA_PROJ_GATE, 2, a->dln, dw, db, dout, ln2, ws, N, C, (const int[2]){I, I});
        }
        be->rmsnorm_bwd(a->dresid, g->mlp_norm, a->dln, mid, w->mlp_norm, io.rstd2, N, C);

        /* attention: mid = x + atty @ Wo */
        proj1_bwd(m, l, LMA_PROJ_O, a->datty, g->wo, g->bo, a->dresid, atty, w->wo, N, QD, C);
        be->zero(a->dq, (size_t)N * QD * es);
        be->zero(a->dk, (size_t)N * KVD * es);
        be->zero(a->dv, (size_t)N * KVD * es);
        be->attention_bwd(a->dq, a->dk, a->dv, a->datty, atty, att, q, k, v, seg, B, T, NH, NKV, HD, scale);
        if (qkv_fused(m, w, g, io.qkv)) { /* dqkv rows [dq | dk | dv] (rotated back), then one product */
            be->qkv_rope_bwd(io.qkv, a->dq, a->dk, a->dv, m->d_pos, m->inv_freq, N, NH, NKV, HD);
            be->zero(a->dln, NC);
            be->matmul_bwd(a->dln, g->wq, NULL, io.qkv, ln1, w->wq, N, C, QD + 2 * KVD);
        } else {
            be->zero(a->dqr, (size_t)N * QD * es);
            be->rope_bwd(a->dqr, a->dq, m->d_pos, m->inv_freq, N, NH, HD);
            be->zero(a->dkr, (size_t)N * KVD * es);
            be->rope_bwd(a->dkr, a->dk, m->d_pos, m->inv_freq, N, NKV, HD);
            void *dqp = a->dqr, *dkp = a->dkr; /* gradient w.r.t. the projections' outputs */
            if (c->qk_norm) {
                /* reuse dq/dk (no longer needed) as the gradients of q_raw/k_raw */
                be->zero(a->dq, (size_t)N * QD * es);
                be->rmsnorm_bwd(a->dq, g->q_norm, a->dqr, io.q_raw, w->q_norm, io.q_rstd, N * NH, HD);
                be->zero(a->dk, (size_t)N * KVD * es);
                be->rmsnorm_bwd(a->dk, g->k_norm, a->dkr, io.k_raw, w->k_norm, io.k_rstd, N * NKV, HD);
                dqp = a->dq; dkp = a->dk;
            }
            float *dw[3] = {g->wq, g->wk, g->wv}, *db[3] = {g->bq, g->bk, g->bv};
            const void *dout[3] = {dqp, dkp, a->dv}, *ws[3] = {w->wq, w->wk, w->wv};
            proj_bwd(m, l, LMA_PROJ_Q, 3, a->dln, dw, db, dout, ln1, ws, N, C, (const int[3]){QD, KVD, KVD});
        }
        be->rmsnorm_bwd(a->dresid, g->attn_norm, a->dln, x, w->attn_norm, io.rstd1, N, C);
    }
    if (G) be->embedding_bwd(G->embed, a->dresid, m->d_ids, N, C);
    return lma_backend_sync(be);
}

const float *lma_model_losses(const lma_model *m) { return m->has_targets ? m->h_losses : NULL; }

/* n act elements at src (backend) -> host fp32, through an fp32 backend buffer
 * (f32, n floats, or NULL to allocate one) unless act storage is fp32 */
lma_status lma_download_act(const lma_backend *be, float *host, const void *src, size_t n, float *f32) {
    if (be->act_bytes == (int)sizeof(float)) {
        be->download(host, src, n * sizeof(float));
        return LMA_OK;
    }
    float *tmp = f32 ? f32 : be->alloc(n * sizeof(float));
    if (!tmp) return lma_error(LMA_ERR_NOMEM, "out of memory for %zu fp32 logits", n);
    be->act_to_f32(tmp, src, n);
    be->download(host, tmp, n * sizeof(float));
    if (!f32) be->free(tmp);
    return LMA_OK;
}

lma_status lma_model_logits(const lma_model *m, float *host_out) {
    if (!m->acts) return lma_error(LMA_ERR_ARG, "no forward pass has run");
    if (!m->full_logits || m->has_targets)
        return lma_error(LMA_ERR_ARG, "logits are kept only by a forward without targets");
    return lma_download_act(m->be, host_out, m->full_logits, (size_t)m->B * m->T * m->cfg.vocab_size, NULL);
}
