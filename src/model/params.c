#include "model/params.h"
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"

/* Walks the tensors of a config in state-dict order; add() is called once per tensor. */
typedef struct { lma_param_table *t; int cap; } builder;

static void add(builder *b, lma_param_kind kind, int layer, const char *name, int64_t d0, int64_t d1) {
    lma_param_info *p = &b->t->info[b->t->count++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->kind = kind; p->layer = layer;
    p->ndim = d1 ? 2 : 1;
    p->shape[0] = d0; p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    p->offset = b->t->total;
    p->is_norm_or_bias = d1 == 0;
    b->t->total += (p->numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
}

lma_status lma_params_build(const lma_config *c, lma_param_table *t) {
    memset(t, 0, sizeof *t);
    int64_t C = c->hidden_size, V = c->vocab_size, I = c->intermediate_size, HD = c->head_dim;
    int64_t QD = (int64_t)c->n_heads * HD, KVD = (int64_t)c->n_kv_heads * HD;
    int per_layer = 17;
    builder b = {t, 3 + per_layer * c->n_layers};
    t->info = lma_calloc((size_t)b.cap, sizeof *t->info, "parameter table");
    if (!t->info) return LMA_ERR_NOMEM;
    char n[96];
    add(&b, LMA_P_EMBED, -1, "model.embed_tokens.weight", V, C);
    for (int l = 0; l < c->n_layers; l++) {
#define P(kind, suffix, d0, d1) do { snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix); add(&b, kind, l, n, d0, d1); } while (0)
        P(LMA_P_ATTN_NORM, "input_layernorm.weight", C, 0);
        P(LMA_P_WQ, "self_attn.q_proj.weight", QD, C);
        if (c->qkv_bias) P(LMA_P_BQ, "self_attn.q_proj.bias", QD, 0);
        P(LMA_P_WK, "self_attn.k_proj.weight", KVD, C);
        if (c->qkv_bias) P(LMA_P_BK, "self_attn.k_proj.bias", KVD, 0);
        P(LMA_P_WV, "self_attn.v_proj.weight", KVD, C);
        if (c->qkv_bias) P(LMA_P_BV, "self_attn.v_proj.bias", KVD, 0);
        P(LMA_P_WO, "self_attn.o_proj.weight", C, QD);
        if (c->o_bias) P(LMA_P_BO, "self_attn.o_proj.bias", C, 0);
        if (c->qk_norm) {
            P(LMA_P_QNORM, "self_attn.q_norm.weight", HD, 0);
            P(LMA_P_KNORM, "self_attn.k_norm.weight", HD, 0);
        }
        P(LMA_P_MLP_NORM, "post_attention_layernorm.weight", C, 0);
        P(LMA_P_WGATE, "mlp.gate_proj.weight", I, C);
        P(LMA_P_WUP, "mlp.up_proj.weight", I, C);
        P(LMA_P_WDOWN, "mlp.down_proj.weight", C, I);
#undef P
    }
    add(&b, LMA_P_FINAL_NORM, -1, "model.norm.weight", C, 0);
    if (!c->tie_word_embeddings) add(&b, LMA_P_LM_HEAD, -1, "lm_head.weight", V, C);
    return LMA_OK;
}

void lma_params_free(lma_param_table *t) { free(t->info); memset(t, 0, sizeof *t); }

static int is_projection(lma_param_kind k) {
    return k == LMA_P_WQ || k == LMA_P_WK || k == LMA_P_WV || k == LMA_P_WO || k == LMA_P_WGATE || k == LMA_P_WUP ||
           k == LMA_P_WDOWN;
}

lma_status lma_params_split_quantized(lma_param_table *t, lma_param_table *q) { return lma_params_split(t, q, 0); }

lma_status lma_params_split(lma_param_table *t, lma_param_table *q, int with_embed) {
    memset(q, 0, sizeof *q);
    q->info = lma_calloc((size_t)t->count, sizeof *q->info, "quantized table");
    if (!q->info) return LMA_ERR_NOMEM;
    int k = 0;
    t->total = 0;
    for (int i = 0; i < t->count; i++) {
        lma_param_info p = t->info[i];
        if (is_projection(p.kind) || (with_embed && (p.kind == LMA_P_EMBED || p.kind == LMA_P_LM_HEAD))) {
            q->info[q->count++] = p;
            continue;
        }
        p.offset = t->total;
        t->total += (p.numel + 15) & ~(size_t)15;
        t->info[k++] = p;
    }
    t->count = k;
    return LMA_OK;
}

const lma_param_info *lma_params_find(const lma_param_table *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (!strcmp(t->info[i].name, name)) return &t->info[i];
    return NULL;
}

lma_status lma_tensors_carve(const lma_config *c, const lma_param_table *t, void *base, size_t esz, lma_tensors *out) {
    memset(out, 0, sizeof *out);
    out->layers = lma_calloc((size_t)c->n_layers, sizeof *out->layers, "layer pointers");
    if (!out->layers) return LMA_ERR_NOMEM;
    for (int i = 0; i < t->count; i++) {
        const lma_param_info *p = &t->info[i];
        void *ptr = (char *)base + p->offset * esz;
        lma_layer_tensors *L = p->layer >= 0 ? &out->layers[p->layer] : NULL;
        switch (p->kind) {
        case LMA_P_EMBED: out->embed = ptr; break;
        case LMA_P_FINAL_NORM: out->final_norm = ptr; break;
        case LMA_P_LM_HEAD: out->lm_head = ptr; break;
        case LMA_P_ATTN_NORM: L->attn_norm = ptr; break;
        case LMA_P_WQ: L->wq = ptr; break;
        case LMA_P_BQ: L->bq = ptr; break;
        case LMA_P_WK: L->wk = ptr; break;
        case LMA_P_BK: L->bk = ptr; break;
        case LMA_P_WV: L->wv = ptr; break;
        case LMA_P_BV: L->bv = ptr; break;
        case LMA_P_WO: L->wo = ptr; break;
        case LMA_P_BO: L->bo = ptr; break;
        case LMA_P_QNORM: L->q_norm = ptr; break;
        case LMA_P_KNORM: L->k_norm = ptr; break;
        case LMA_P_MLP_NORM: L->mlp_norm = ptr; break;
        case LMA_P_WGATE: L->wgate = ptr; break;
        case LMA_P_WUP: L->wup = ptr; break;
        case LMA_P_WDOWN: L->wdown = ptr; break;
        case LMA_P_KIND_COUNT: break;
        }
    }
    if (c->tie_word_embeddings) out->lm_head = out->embed;
    return LMA_OK;
}

void lma_tensors_free(lma_tensors *t) { free(t->layers); t->layers = NULL; }

lma_status lma_params_check_finite(const float *x, size_t n, const char *file, const char *name) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k]))
            return lma_error(LMA_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value (%g at index %zu): the weights "
                             "are corrupt", file, name, (double)x[k], k);
    return LMA_OK;
}
