/* Inference with a KV cache (model/llama.h "inference with a KV cache"): the caches, the
 * scratch of the inference forward (kept on the model between calls), the cached forward
 * (prefill and decode), the final hidden states, and batched decode. Forward only: the
 * layers run through lma_model_layer_forward of llama.c (model_internal.h), whose attention
 * appends each layer's k and v to the cache and attends against it; nothing is kept for a
 * backward. */
#include "model/llama.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "model/model_internal.h"

size_t lma_kv_bytes(const lma_config *c, int cap, int act_bytes) {
    return 2 * (size_t)c->n_layers * (size_t)cap * (size_t)c->n_kv_heads * (size_t)c->head_dim * (size_t)act_bytes;
}

lma_status lma_kv_create(const lma_model *m, int cap, lma_kv_cache **out) {
    *out = NULL;
    if (cap < 1) return lma_error(LMA_ERR_ARG, "KV cache capacity %d must be >= 1", cap);
    const lma_config *c = &m->cfg;
    lma_kv_cache *kv = lma_calloc(1, sizeof *kv, "kv cache");
    if (!kv) return LMA_ERR_NOMEM;
    size_t per = lma_kv_bytes(c, cap, m->be->act_bytes) / 2; /* bytes of k, and of v */
    kv->k = m->be->alloc(per);
    kv->v = m->be->alloc(per);
    kv->cap = cap;
    if (!kv->k || !kv->v) {
        lma_kv_free(m, kv);
        return lma_error(LMA_ERR_NOMEM, "out of memory for a KV cache of %d tokens (%.1f MB)", cap,
                         2.0 * (double)per / 1e6);
    }
    *out = kv;
    return LMA_OK;
}

void lma_kv_free(const lma_model *m, lma_kv_cache *kv) {
    if (!kv) return;
    if (kv->k) m->be->free(kv->k);
    if (kv->v) m->be->free(kv->v);
    free(kv);
}

/* The scratch of an inference forward of n tokens, n_out of them with logits (bytes; offsets
 * of each buffer into o): act x, ln, mid (n,C) x3; q, atty (n,QD) x2 (+ q_raw); k, v (n,KVD)
 * (+ k_raw); gate, up, swi (n,I) x3; fp32 rstd (n) x2 + qk rstd; act logits (n_out, V); ids +
 * pos and the caches' table (up to n sequences), uploaded together; fp32 logits (n_out, V)
 * when act storage is not fp32. */
enum { INFER_SLOTS = 20 };
static size_t infer_layout(const lma_config *c, int act_bytes, int n_, int n_out_, size_t o[INFER_SLOTS]) {
    size_t n = (size_t)n_, n_out = (size_t)n_out_, C = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    size_t NH = c->n_heads, NKV = c->n_kv_heads, QD = NH * c->head_dim, KVD = NKV * c->head_dim;
    size_t ea = (size_t)act_bytes, ef = sizeof(float), f = 0;
    int k_ = 0;
#define NEXT(cnt, esz) (o[k_++] = f, f += LMA_ALIGN64((cnt) * (esz)))
    NEXT(n * C, ea); NEXT(n * C, ea); NEXT(n * C, ea);
    NEXT(n * QD, ea); NEXT(n * QD, ea); NEXT(n * QD, ea);
    NEXT(n * KVD, ea); NEXT(n * KVD, ea); NEXT(n * KVD, ea);
    NEXT(n * I, ea); NEXT(n * I, ea); NEXT(n * I, ea);
    NEXT(n, ef); NEXT(n, ef); NEXT(n * NH, ef); NEXT(n * NKV, ef);
    NEXT(n_out * V, ea); NEXT(2 * n, sizeof(int32_t)); NEXT(n, sizeof(lma_kv_seq));
    NEXT(ea == ef ? 0 : n_out * V, ef);
#undef NEXT
    return f;
}

size_t lma_model_infer_scratch_bytes(const lma_config *c, int act_bytes, int n, int n_out) {
    size_t o[INFER_SLOTS];
    return infer_layout(c, act_bytes, n, n_out, o);
}

/* The graph slot of a decode step of n sequences, or NULL where it is not recorded: a backend
 * without graphs, an attached adapter (its hooks run on the host), NF4 weights (dequantized
 * into the backend's shared scratch, which another model may grow and move),
 * LMA_DECODE_GRAPHS=0, or a first call (it runs as usual and counts). The graphs read the kept scratch, the weights and
 * the RoPE table, whose addresses they keep: a new scratch drops them (llama_infer.c), as
 * does lma_model_free. */
static void **infer_graph_slot(lma_model *m, int n) {
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("LMA_DECODE_GRAPHS");
        off = e && !strcmp(e, "0");
    }
    if (off || !m->be->graph_begin || m->lora || m->nf4) return NULL;
    enum { NG = sizeof m->graphs / sizeof m->graphs[0] };
    int free_at = -1, fewest = 0;
    for (int i = 0; i < NG; i++) {
        if (m->graphs[i].n == n) return m->graphs[i].calls++ ? &m->graphs[i].graph : NULL;
        if (m->graphs[i].calls < m->graphs[fewest].calls) fewest = i;
        if (free_at < 0 && !m->graphs[i].n) free_at = i;
    }
    int at = free_at >= 0 ? free_at : fewest; /* full: the least used batch size gives way */
    if (m->graphs[at].graph) m->be->graph_free(m->graphs[at].graph);
    m->graphs[at].n = n;
    m->graphs[at].calls = 1;
    m->graphs[at].graph = NULL;
    return NULL;
}

/* Drops every recorded graph (the scratch they read moved, or the model goes). */
void lma_model_drop_graphs(lma_model *m) {
    for (size_t i = 0; i < sizeof m->graphs / sizeof m->graphs[0]; i++) {
        if (m->graphs[i].graph) m->be->graph_free(m->graphs[i].graph);
        m->graphs[i].n = m->graphs[i].calls = 0;
        m->graphs[i].graph = NULL;
    }
}

/* Inference forward. Single (batched 0): n tokens of the sequence of kvs[0] at positions
 * len..len+n-1. Batched: n sequences, one token each, ids[i] at position kvs[i]->len of its
 * own cache (every row's logits). Every op runs once over the n rows either way: the
 * attention reads the caches through a table of them (backend.h attention_cached). */
static lma_status infer_forward(lma_model *m, lma_kv_cache *const *kvs, int batched, const int32_t *ids, int n,
                                float *logits, int all_logits, float *hidden) {
    const lma_config *c = &m->cfg;
    const lma_backend *be = m->be;
    if (n < 1) return lma_error(LMA_ERR_ARG, "no tokens to run");
    int rope_to = 0;
    for (int i = 0; i < (batched ? n : 1); i++) {
        const lma_kv_cache *kv = kvs[i];
        int add = batched ? 1 : n;
        if (kv->len + add > kv->cap)
            return lma_error(LMA_ERR_ARG, "KV cache full: %d + %d tokens exceed its %d", kv->len, add, kv->cap);
        if (c->sliding_window > 0 && kv->len + add > c->sliding_window)
            return lma_error(LMA_ERR_UNSUPPORTED, "context of %d tokens exceeds sliding_window %d (not implemented)",
                             kv->len + add, c->sliding_window);
        if (kv->len + add > rope_to) rope_to = kv->len + add;
    }
    lma_model_rope_update(m, rope_to);
    lma_kv_cache *kv = kvs[0];
    int C = c->hidden_size, V = c->vocab_size, n_out = all_logits || batched || hidden ? n : 1;
    lma_config hc = *c; /* hidden states out: the output slots hold (n, C), not (n, V) */
    if (hidden) hc.vocab_size = C;
    if (m->lora) LMA_TRY(m->lora_hooks->begin(m->lora, be, n, 0));
    m->lora_train = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return lma_error(LMA_ERR_ARG, "token id %d is outside the vocabulary [0, %d)", ids[i], V);
    size_t o[INFER_SLOTS], ea = (size_t)be->act_bytes, f = infer_layout(&hc, be->act_bytes, n, n_out, o);
    /* a scratch up to 64 MB is kept between calls (a decode step allocates nothing); a
     * larger one (long prompts with every row's logits) is the call's own */
    enum { KEEP_SCRATCH = 64 << 20 };
    /* the kept scratch serves one call at a time: a call on another thread meanwhile (two
     * generations on one model) takes its own */
    int kept = f <= KEEP_SCRATCH && !__atomic_test_and_set(&m->infer_busy, __ATOMIC_ACQUIRE);
    if (kept && f > m->infer_cap) {
        lma_model_drop_graphs(m);
        if (m->infer_buf) be->free(m->infer_buf);
        m->infer_buf = be->alloc(f);
        m->infer_cap = m->infer_buf ? f : 0;
    }
    char *buf = kept ? m->infer_buf : be->alloc(f);
    if (!buf && kept) __atomic_clear(&m->infer_busy, __ATOMIC_RELEASE);
    if (!buf) return lma_error(LMA_ERR_NOMEM, "out of memory for %d tokens of inference scratch", n);
    void *x = buf + o[0], *ln = buf + o[1], *mid = buf + o[2], *q = buf + o[3], *atty = buf + o[4];
    void *q_raw = buf + o[5], *k = buf + o[6], *v = buf + o[7], *k_raw = buf + o[8];
    void *gate = buf + o[9], *up = buf + o[10], *swi = buf + o[11];
    float *rstd1 = (float *)(buf + o[12]), *rstd2 = (float *)(buf + o[13]);
    float *q_rstd = (float *)(buf + o[14]), *k_rstd = (float *)(buf + o[15]);
    void *lg = buf + o[16];
    int32_t *d_ids = (int32_t *)(buf + o[17]), *d_pos = d_ids + n;
    lma_kv_seq *d_seqs = (lma_kv_seq *)(buf + o[18]);
    float *lg32 = (float *)(buf + o[19]);
    int n_seq = batched ? n : 1;
    /* ids, positions and the caches' table: one upload, laid out as in the scratch */
    size_t nb = o[18] - o[17] + (size_t)n_seq * sizeof(lma_kv_seq);
    char *stage = malloc(nb);
    if (!stage) {
        if (kept) __atomic_clear(&m->infer_busy, __ATOMIC_RELEASE);
        else be->free(buf);
        return lma_error(LMA_ERR_NOMEM, "out of memory");
    }
    int32_t *pos = (int32_t *)stage + n;
    lma_kv_seq *seqs = (lma_kv_seq *)(stage + (o[18] - o[17]));
    memcpy(stage, ids, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) pos[i] = batched ? kvs[i]->len : kv->len + i;
    for (int i = 0; i < n_seq; i++)
        seqs[i] = (lma_kv_seq){.k = kvs[i]->k, .v = kvs[i]->v, .cap = kvs[i]->cap, .len = kvs[i]->len};
    be->upload(d_ids, stage, nb);
    free(stage);

    /* a decode step (one token for each of n_seq sequences) replays its recorded graph, or
     * is recorded at its second call (the first warms up plans and scratch) */
    void **graph = kept && n == n_seq && !hidden ? infer_graph_slot(m, n) : NULL;
    if (graph && *graph) {
        be->graph_run(*graph);
    } else {
        int rec = graph && be->graph_begin();
        lma_model_embed_fwd(m, x, d_ids, n);
        lma_attn_ctx ac = {.seqs = d_seqs, .n_seq = n_seq};
        for (int l = 0; l < c->n_layers; l++) {
            lma_layer_io io = {.x = x, .xo = x, .ln1 = ln, .rstd1 = rstd1, .q_raw = q_raw, .k_raw = k_raw,
                               .q_rstd = q_rstd, .k_rstd = k_rstd, .q = q, .k = k, .v = v, .att = NULL,
                               .atty = atty, .mid = mid, .ln2 = ln, .rstd2 = rstd2, .gate = gate, .up = up,
                               .swi = swi};
            lma_model_layer_forward(m, l, &io, n, d_pos, &ac, 0);
        }
        const void *xl = lma_at(x, (size_t)(n - n_out) * C, ea);
        be->rmsnorm_fwd(ln, rstd1, xl, m->w.final_norm, n_out, C, (float)c->rms_norm_eps);
        if (!hidden) lma_model_head_fwd(m, lg, ln, n_out);
        if (rec && (*graph = be->graph_end())) be->graph_run(*graph);
    }
    int W = hidden ? C : V; /* output row width */
    float *outp = hidden ? hidden : logits;
    lma_status s = lma_download_act(be, outp, hidden ? ln : lg, (size_t)n_out * W, lg32);
    if (kept) __atomic_clear(&m->infer_busy, __ATOMIC_RELEASE);
    else be->free(buf);
    if (s == LMA_OK) s = lma_backend_sync(be);
    if (s != LMA_OK) return s;
    for (size_t i = 0, nl = (size_t)n_out * (size_t)W; i < nl; i++)
        if (!isfinite(outp[i])) /* sampling or ranking NaNs would answer with exit 0 */
            return lma_error(LMA_ERR_NUMERIC, "non-finite %s (row %zu; the activations overflowed or the weights "
                             "are corrupt)", hidden ? "hidden states" : "logits", i / (size_t)W);
    if (batched)
        for (int i = 0; i < n; i++) kvs[i]->len++;
    else
        kv->len += n;
    return LMA_OK;
}

lma_status lma_model_forward_cached(lma_model *m, lma_kv_cache *kv, const int32_t *ids, int n, float *logits,
                                    int all_logits) {
    return infer_forward(m, &kv, 0, ids, n, logits, all_logits, NULL);
}

lma_status lma_model_hidden_cached(lma_model *m, lma_kv_cache *kv, const int32_t *ids, int n, float *hidden) {
    if (!hidden) return lma_error(LMA_ERR_ARG, "lma_model_hidden_cached: NULL output");
    return infer_forward(m, &kv, 0, ids, n, NULL, 1, hidden);
}

lma_status lma_model_decode_batch(lma_model *m, lma_kv_cache *const *kvs, const int32_t *ids, int n_seq,
                                  float *logits) {
    for (int i = 0; i < n_seq; i++)
        for (int j = 0; j < i; j++)
            if (kvs[i] == kvs[j]) return lma_error(LMA_ERR_ARG, "decode batch: sequences %d and %d share a cache", j, i);
    return infer_forward(m, kvs, 1, ids, n_seq, logits, 1, NULL);
}
