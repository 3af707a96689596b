/* The training activation block of a Llama-family model: its layout for (B, T) (one
 * allocation: the saved activations of every layer, or of one with activation checkpointing,
 * the loss head's row chunk over the layer-backward scratch, that scratch), its allocation as
 * the batch shape changes, and each layer's slots in it (lma_layer_io). llama.c runs the
 * forward and backward over it; the memory planner (advise/mem.c) sizes it with
 * lma_model_acts_bytes. */
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "model/llama.h"
#include "model/model_internal.h"

/* Rows of the (rows, V) logits block the loss head works on at a time: the logits of a
 * whole batch never exist during training. Auto: 16M elements (64 MB in fp32), or more, up
 * to HEAD_ROWS_GEMM rows, as far as the layer-backward scratch (`spare` bytes, free while
 * the loss head runs) holds them: the head's GEMMs run at full rate only on thousands of
 * rows (at 524 rows the lm_head's fp32 gradient is read and written 16 times a step). */
enum { HEAD_ROWS_GEMM = 4096 };
static size_t head_rows(const lma_config *c, size_t N, int override, size_t spare, size_t esz) {
    size_t V = (size_t)c->vocab_size, r = override > 0 ? (size_t)override : ((size_t)16 << 20) / V;
    size_t fit = spare / (V * esz);
    if (override <= 0 && r < HEAD_ROWS_GEMM && fit > r) r = fit < HEAD_ROWS_GEMM ? fit : HEAD_ROWS_GEMM;
    if (r < 1) r = 1;
    return r < N ? r : N;
}

/* Lays out the activation block for (B, T); returns its bytes; with base == NULL only counts. */
static size_t acts_layout(const lma_config *c, int act_bytes, size_t saved, int B, int T, int chunk, int ckpt,
                          char *base, lma_acts *a) {
    /* L: slots of the per-layer activations (one, shared, with activation checkpointing) */
    size_t N = (size_t)B * T, C = c->hidden_size, L = ckpt ? 1 : c->n_layers, I = c->intermediate_size;
    size_t V = c->vocab_size, LR = c->n_layers; /* the residual stream keeps every layer */
    size_t QD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim, off = 0;
    size_t ea = (size_t)act_bytes, ef = sizeof(float); /* act, fp32 */
    a->saved = saved; /* the backend's attention_saved_floats(B, T, NH, HD) */
#define TAKE(field, n, esz) do { a->field = base ? (void *)(base + off) : NULL; off += LMA_ALIGN64((n) * (esz)); } while (0)
    TAKE(resid, (LR + 1) * N * C, ea);
    TAKE(resid_mid, L * N * C, ea);
    TAKE(ln1, L * N * C, ea);
    TAKE(ln2, L * N * C, ea);
    TAKE(rstd1, L * N, ef);
    TAKE(rstd2, L * N, ef);
    if (c->qk_norm) {
        TAKE(q_raw, L * N * QD, ea);
        TAKE(k_raw, L * N * KVD, ea);
        TAKE(q_rstd, L * N * c->n_heads, ef);
        TAKE(k_rstd, L * N * c->n_kv_heads, ef);
    } else {
        a->q_raw = a->k_raw = NULL;
        a->q_rstd = a->k_rstd = NULL;
    }
    TAKE(q, L * N * QD, ea);
    TAKE(k, L * N * KVD, ea);
    TAKE(v, L * N * KVD, ea);
    TAKE(att, L * a->saved, ef);
    TAKE(atty, L * N * QD, ea);
    TAKE(gate, L * N * I, ea);
    TAKE(up, L * N * I, ea);
    TAKE(swi, L * N * I, ea);
    TAKE(lnf, N * C, ea);
    TAKE(rstdf, N, ef);
    TAKE(losses, N, ef);
    TAKE(dresid, N * C, ea);
    TAKE(dln, N * C, ea);
    size_t spare = off; /* the layer-backward scratch from here on; the logits chunk overlays it */
    TAKE(dq, N * QD, ea);
    TAKE(dqr, N * QD, ea);
    TAKE(datty, N * QD, ea);
    TAKE(dk, N * KVD, ea);
    TAKE(dkr, N * KVD, ea);
    TAKE(dv, N * KVD, ea);
    TAKE(dgate, N * I, ea);
    TAKE(dup, N * I, ea);
    TAKE(dswi, N * I, ea);
#undef TAKE
    a->head_rows = head_rows(c, N, chunk, off - spare, ea);
    a->logits = base ? (void *)(base + spare) : NULL;
    size_t lg = spare + LMA_ALIGN64(a->head_rows * V * ea);
    return lg > off ? lg : off;
}

size_t lma_model_acts_bytes(const lma_config *c, int act_bytes, size_t attn_saved, int B, int T, int head_chunk,
                            int ckpt, size_t *head_rows_out) {
    lma_acts a;
    size_t bytes = acts_layout(c, act_bytes, attn_saved, B, T, head_chunk, ckpt, NULL, &a);
    if (head_rows_out) *head_rows_out = a.head_rows;
    return bytes;
}

size_t lma_model_ids_bytes(int B, int T) { return 4 * (size_t)B * T * sizeof(int32_t); }

void lma_model_free_acts(lma_model *m) {
    const lma_backend *be = m->be;
    if (m->act_mem) be->free(m->act_mem);
    if (m->d_ids) be->free(m->d_ids);
    if (m->full_logits) be->free(m->full_logits);
    m->full_logits = NULL;
    m->full_logits_cap = 0;
    free(m->acts);
    free(m->h_losses);
    m->act_mem = NULL; m->acts = NULL; m->d_ids = NULL; m->h_losses = NULL; m->head_spans = NULL;
    m->d_targets = m->d_seg = m->d_pos = NULL;
    m->cap_B = m->cap_T = 0;
    m->act_cap_bytes = 0;
}

lma_status lma_model_ensure_acts(lma_model *m, int B, int T) {
    if (B <= 0 || T <= 0) return lma_error(LMA_ERR_ARG, "batch %d x %d tokens: both must be positive", B, T);
    int ck = m->grad_ckpt != 0, ea = m->be->act_bytes;
    size_t saved = m->be->attention_saved_floats(B, T, m->cfg.n_heads, m->cfg.head_dim);
    if (m->acts && m->acts_ckpt == ck && (size_t)B * T <= (size_t)m->cap_B * m->cap_T && B <= m->cap_B) {
        /* same or smaller: relayout over the existing block */
        size_t need = acts_layout(&m->cfg, ea, saved, B, T, m->head_chunk_rows, ck, NULL, m->acts);
        if (need <= m->act_cap_bytes) {
            acts_layout(&m->cfg, ea, saved, B, T, m->head_chunk_rows, ck, m->act_mem, m->acts);
            m->B = B; m->T = T;
            return LMA_OK;
        }
    }
    lma_model_free_acts(m);
    m->acts = lma_calloc(1, sizeof *m->acts, "activation table");
    if (!m->acts) return LMA_ERR_NOMEM;
    size_t bytes = acts_layout(&m->cfg, ea, saved, B, T, m->head_chunk_rows, ck, NULL, m->acts);
    m->act_mem = m->be->alloc(bytes);
    m->act_cap_bytes = bytes;
    m->acts_ckpt = ck;
    size_t N = (size_t)B * T;
    m->d_ids = m->be->alloc(lma_model_ids_bytes(B, T));
    m->h_losses = malloc(N * sizeof(float) + 2 * (N + 1) * sizeof(int32_t));
    m->head_spans = m->h_losses ? (int32_t *)(m->h_losses + N) : NULL;
    if (!m->act_mem || !m->d_ids || !m->h_losses) {
        lma_model_free_acts(m);
        return lma_error(LMA_ERR_NOMEM, "out of memory for activations of batch %d x %d (%.1f MB)", B, T,
                         (double)bytes / 1e6);
    }
    m->d_targets = m->d_ids + N;
    m->d_seg = m->d_ids + 2 * N;
    m->d_pos = m->d_ids + 3 * N;
    acts_layout(&m->cfg, ea, saved, B, T, m->head_chunk_rows, ck, m->act_mem, m->acts);
    m->B = m->cap_B = B;
    m->T = m->cap_T = T;
    return LMA_OK;
}


/* The buffers of layer l for the current (B, T): its input and output in the residual
 * stream and its slot of every saved activation (with activation checkpointing, the one
 * slot all layers share). */
lma_layer_io lma_model_layer_slots(const lma_model *m, int l) {
    const lma_config *c = &m->cfg;
    const lma_acts *a = m->acts;
    size_t N = (size_t)m->B * m->T, C = c->hidden_size, I = c->intermediate_size, NH = c->n_heads;
    size_t NKV = c->n_kv_heads, QD = NH * c->head_dim, KVD = NKV * c->head_dim, es = (size_t)m->be->act_bytes;
    size_t s = m->grad_ckpt ? 0 : (size_t)l;
    lma_layer_io io = {
        .x = lma_at(a->resid, (size_t)l * N * C, es), .xo = lma_at(a->resid, (size_t)(l + 1) * N * C, es),
        .ln1 = lma_at(a->ln1, s * N * C, es), .rstd1 = a->rstd1 + s * N,
        .q_raw = c->qk_norm ? lma_at(a->q_raw, s * N * QD, es) : NULL,
        .k_raw = c->qk_norm ? lma_at(a->k_raw, s * N * KVD, es) : NULL,
        .q_rstd = c->qk_norm ? a->q_rstd + s * N * NH : NULL, .k_rstd = c->qk_norm ? a->k_rstd + s * N * NKV : NULL,
        .q = lma_at(a->q, s * N * QD, es), .k = lma_at(a->k, s * N * KVD, es), .v = lma_at(a->v, s * N * KVD, es),
        .att = a->att + s * a->saved, .atty = lma_at(a->atty, s * N * QD, es),
        .mid = lma_at(a->resid_mid, s * N * C, es), .ln2 = lma_at(a->ln2, s * N * C, es), .rstd2 = a->rstd2 + s * N,
        .gate = lma_at(a->gate, s * N * I, es), .up = lma_at(a->up, s * N * I, es), .swi = lma_at(a->swi, s * N * I, es),
        /* the fused q|k|v rows over dgate and dup (adjacent): free in the forward, and in the
         * backward once the MLP's is done */
        .qkv = QD + 2 * KVD <= 2 * I ? a->dgate : NULL};
    return io;
}
