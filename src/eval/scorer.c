#include "eval/scorer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "eval/mmlu.h"

typedef struct {
    lma_model *m;
    lma_eval_score_mode mode;
    int max_len, V;
    lma_kv_cache *kv;
    int32_t *hist;    /* (kv cap) tokens held in the KV cache */
    float *logits;    /* (cap_logits, V) */
    size_t cap_logits;
    int32_t *ids, *tg; size_t cap_ids; /* full mode (B*T) */
} model_scorer;

static double log_softmax_at(const float *row, int V, int32_t id) {
    float mx = row[0];
    for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)row[v] - mx);
    return (double)row[id] - mx - log(s);
}

static lma_status need_logits(model_scorer *ms, size_t rows) {
    if (rows <= ms->cap_logits) return LMA_OK;
    size_t bytes;
    if (!lma_mul_ok(rows, (size_t)ms->V * sizeof(float), &bytes)) return lma_error(LMA_ERR_NOMEM, "logits too large");
    free(ms->logits);
    ms->logits = lma_malloc(bytes, "eval logits");
    ms->cap_logits = ms->logits ? rows : 0;
    return ms->logits ? LMA_OK : LMA_ERR_NOMEM;
}

static lma_status check_ids(const model_scorer *ms, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= ms->V)
            return lma_error(LMA_ERR_ARG, "token id %d is outside the model's vocabulary [0, %d)", ids[i], ms->V);
    return LMA_OK;
}

static lma_status loglik_kv(lma_eval_scorer *s, const int32_t *ctx, size_t n_ctx, const int32_t *const *conts,
                            const size_t *n_conts, int n, double *out) {
    model_scorer *ms = s->impl;
    size_t maxc = 0;
    for (int i = 0; i < n; i++) maxc = n_conts[i] > maxc ? n_conts[i] : maxc;
    if (maxc > (size_t)ms->max_len)
        return lma_error(LMA_ERR_ARG, "a continuation of %zu tokens exceeds the model context %d", maxc, ms->max_len);
    /* left-truncate the context: keep at most max_len + 1 - maxc tokens */
    size_t keep = (size_t)ms->max_len + 1 - maxc, drop = n_ctx > keep ? n_ctx - keep : 0;
    ctx += drop; n_ctx -= drop;
    LMA_TRY(check_ids(ms, ctx, n_ctx));
    for (int i = 0; i < n; i++) LMA_TRY(check_ids(ms, conts[i], n_conts[i]));
    int need = (int)(n_ctx + maxc - 1);
    if (!ms->kv || ms->kv->cap < need) {
        int cap = need < 256 ? 256 : need;
        if (ms->kv && cap < 2 * ms->kv->cap) cap = 2 * ms->kv->cap;
        if (cap > ms->max_len) cap = ms->max_len;
        if (cap < need) cap = need;
        lma_kv_free(ms->m, ms->kv); ms->kv = NULL;
        free(ms->hist);
        ms->hist = lma_malloc((size_t)cap * sizeof(int32_t), "kv history");
        if (!ms->hist) return LMA_ERR_NOMEM;
        LMA_TRY(lma_kv_create(ms->m, cap, &ms->kv));
    }
    /* reuse the cached prefix shared with the previous context (at least one token is run) */
    size_t lcp = 0, held = (size_t)ms->kv->len;
    while (lcp < held && lcp + 1 < n_ctx && ms->hist[lcp] == ctx[lcp]) lcp++;
    ms->kv->len = (int)lcp;
    LMA_TRY(need_logits(ms, maxc > 1 ? maxc - 1 : 1));
    float *last = lma_malloc((size_t)ms->V * sizeof(float), "eval logits");
    if (!last) return LMA_ERR_NOMEM;
    lma_status st = lma_model_forward_cached(ms->m, ms->kv, ctx + lcp, (int)(n_ctx - lcp), last, 0);
    if (st == LMA_OK) {
        memcpy(ms->hist + lcp, ctx + lcp, (n_ctx - lcp) * sizeof(int32_t));
        s->tokens_run += (long)(n_ctx - lcp);
    }
    for (int i = 0; st == LMA_OK && i < n; i++) {
        double lp = log_softmax_at(last, ms->V, conts[i][0]);
        if (n_conts[i] > 1) {
            st = lma_model_forward_cached(ms->m, ms->kv, conts[i], (int)n_conts[i] - 1, ms->logits, 1);
            ms->kv->len = (int)n_ctx;
            s->tokens_run += (long)n_conts[i] - 1;
            for (size_t j = 1; st == LMA_OK && j < n_conts[i]; j++)
                lp += log_softmax_at(ms->logits + (j - 1) * (size_t)ms->V, ms->V, conts[i][j]);
        }
        out[i] = lp;
    }
    if (st != LMA_OK) ms->kv->len = 0;
    free(last);
    return st;
}

static lma_status loglik_full(lma_eval_scorer *s, const int32_t *ctx, size_t n_ctx, const int32_t *const *conts,
                              const size_t *n_conts, int n, double *out) {
    model_scorer *ms = s->impl;
    LMA_TRY(check_ids(ms, ctx, n_ctx));
    /* one batch when every continuation has the same length, else one forward each */
    int batched = 1;
    for (int i = 1; i < n; i++) batched &= n_conts[i] == n_conts[0];
    for (int i0 = 0; i0 < n;) {
        int B = batched ? n : 1;
        size_t nc = n_conts[i0], tot = n_ctx + nc;
        LMA_TRY(check_ids(ms, conts[i0], nc));
        if (nc > (size_t)ms->max_len)
            return lma_error(LMA_ERR_ARG, "a continuation of %zu tokens exceeds the model context %d", nc, ms->max_len);
        size_t drop = tot > (size_t)ms->max_len + 1 ? tot - ((size_t)ms->max_len + 1) : 0;
        size_t T = tot - drop - 1, bt = (size_t)B * T;
        if (bt > ms->cap_ids) {
            free(ms->ids); free(ms->tg);
            ms->ids = lma_malloc(bt * sizeof(int32_t), "eval ids");
            ms->tg = lma_malloc(bt * sizeof(int32_t), "eval targets");
            ms->cap_ids = ms->ids && ms->tg ? bt : 0;
            if (!ms->cap_ids) return LMA_ERR_NOMEM;
        }
        for (int b = 0; b < B; b++) {
            const int32_t *c = conts[i0 + b];
            if (b) LMA_TRY(check_ids(ms, c, nc));
            for (size_t t = 0; t <= T; t++) {
                size_t k = t + drop; /* index into ctx ++ cont */
                int32_t id = k < n_ctx ? ctx[k] : c[k - n_ctx];
                if (t < T) ms->ids[b * T + t] = id;
                if (t > 0) ms->tg[b * T + t - 1] = t - 1 >= T - nc ? id : LMA_IGNORE_INDEX;
            }
        }
        LMA_TRY(lma_model_forward(ms->m, ms->ids, ms->tg, NULL, B, (int)T, 0, 1.0f, NULL));
        s->tokens_run += (long)bt;
        const float *losses = lma_model_losses(ms->m);
        for (int b = 0; b < B; b++) {
            double lp = 0;
            for (size_t t = T - nc; t < T; t++) lp -= losses[b * T + t];
            out[i0 + b] = lp;
        }
        i0 += B;
    }
    return LMA_OK;
}

static void destroy_model(lma_eval_scorer *s) {
    model_scorer *ms = s->impl;
    if (!ms) return;
    lma_kv_free(ms->m, ms->kv);
    free(ms->hist); free(ms->logits); free(ms->ids); free(ms->tg);
    free(ms);
}

lma_status lma_eval_scorer_model(lma_model *m, lma_eval_score_mode mode, lma_eval_scorer **out) {
    *out = NULL;
    lma_eval_scorer *s = lma_calloc(1, sizeof *s, "scorer");
    model_scorer *ms = lma_calloc(1, sizeof *ms, "scorer");
    if (!s || !ms) { free(s); free(ms); return LMA_ERR_NOMEM; }
    ms->m = m; ms->mode = mode; ms->V = m->cfg.vocab_size;
    ms->max_len = m->cfg.max_position_embeddings > 0 ? m->cfg.max_position_embeddings : 2048;
    if (m->cfg.sliding_window > 0 && m->cfg.sliding_window < ms->max_len) ms->max_len = m->cfg.sliding_window;
    s->impl = ms;
    s->loglik = mode == LMA_EVAL_SCORE_FULL ? loglik_full : loglik_kv;
    s->destroy = destroy_model;
    *out = s;
    return LMA_OK;
}

void lma_eval_scorer_free(lma_eval_scorer *s) {
    if (!s) return;
    if (s->destroy) s->destroy(s);
    free(s);
}

lma_status lma_eval_encode_pair(const lma_tokenizer *t, const char *ctx, size_t ctx_len, const char *cont,
                                size_t cont_len, int32_t **ctx_ids, size_t *n_ctx, int32_t **cont_ids,
                                size_t *n_cont) {
    *ctx_ids = NULL; *cont_ids = NULL; *n_ctx = *n_cont = 0;
    if (ctx_len == 0) return lma_error(LMA_ERR_ARG, "empty context");
    size_t b, e, whole_len;
    lma_py_strip(ctx, ctx_len, &b, &e);
    size_t keep = b == ctx_len ? 0 : e; /* rstrip: the context is ctx[0..e), "" when all whitespace */
    if (keep == 0) return lma_error(LMA_ERR_ARG, "the context is empty or only whitespace");
    if (!lma_add_ok(ctx_len, cont_len, &whole_len)) return lma_error(LMA_ERR_ARG, "text too long");
    char *whole = lma_malloc(whole_len + 1, "encode pair");
    if (!whole) return LMA_ERR_NOMEM;
    memcpy(whole, ctx, ctx_len);
    memcpy(whole + ctx_len, cont, cont_len);
    whole[whole_len] = 0;
    int32_t *w = NULL, *c = NULL;
    size_t nw = 0, nc = 0;
    lma_status st = lma_tok_encode(t, whole, whole_len, 1, &w, &nw);
    if (st == LMA_OK) st = lma_tok_encode(t, ctx, keep, 1, &c, &nc);
    free(whole);
    if (st != LMA_OK) { free(w); free(c); return st; }
    size_t ncont = nw > nc ? nw - nc : 0;
    int32_t *k = lma_malloc((ncont ? ncont : 1) * sizeof(int32_t), "continuation ids");
    if (!k) { free(w); free(c); return LMA_ERR_NOMEM; }
    if (ncont) memcpy(k, w + nc, ncont * sizeof(int32_t));
    free(w);
    *ctx_ids = c; *n_ctx = nc; *cont_ids = k; *n_cont = ncont;
    return LMA_OK;
}
