/* In-context learning evaluation: greedy generation per query, exact match, prompt cost,
 * and the KV cache kept for the prefix a prompt shares with the previous one (icl.h). */
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "icl/icl.h"

/* the answer in a generation: up to the first stop (default: newline; cot: the text after
 * "Output:" up to its line's end) */
static void extract(char *gen, const lma_icl_params *prm, const lma_icl_gen *g, char **answer) {
    char *a = gen;
    if (prm->format == LMA_ICL_COT) {
        char *o = strstr(a, "Output:");
        a = o ? o + 7 : a + strlen(a);
        char *nl = strchr(a, '\n');
        if (nl) *nl = 0;
    }
    *answer = a;
    (void)g;
}

/* 1 when the text holds a stop: a given stop string, else (plain, chat) a newline after some
 * text, (cot) a blank line or a line of Output: that ended */
static int stopped(char *t, const lma_icl_params *prm, const lma_icl_gen *g) {
    if (g->n_stops > 0) {
        for (int i = 0; i < g->n_stops; i++) {
            char *at = strstr(t, g->stops[i]);
            if (at) { *at = 0; return 1; }
        }
        return 0;
    }
    if (prm->format == LMA_ICL_COT) {
        char *o = strstr(t, "Output:");
        char *nl = o ? strchr(o, '\n') : NULL;
        if (nl) { *nl = 0; return 1; }
        char *bl = strstr(t, "\n\n");
        if (bl) { *bl = 0; return 1; }
        return 0;
    }
    char *s = t;
    while (*s == ' ' || *s == '\n') s++; /* a newline before any text does not end the answer */
    char *nl = strchr(s, '\n');
    if (nl) { *nl = 0; return 1; }
    return 0;
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

lma_status lma_icl_eval(lma_model *m, const lma_tokenizer *tok, const lma_icl_pool *pool, const lma_icl_pool *task,
                        const lma_icl_params *prm, const lma_icl_gen *g, lma_icl_eval_result *res) {
    memset(res, 0, sizeof *res);
    size_t nq = lma_icl_pool_size(task);
    int V = m->cfg.vocab_size, maxnew = g->max_new_tokens > 0 ? g->max_new_tokens : 32;
    int32_t **prompts = lma_calloc(nq, sizeof *prompts, "ICL prompts");
    size_t *lens = lma_calloc(nq, sizeof *lens, "ICL prompts");
    float *logits = lma_malloc((size_t)V * sizeof(float), "logits");
    int32_t *gen = lma_malloc((size_t)maxnew * sizeof(int32_t), "generated ids");
    lma_status s = (!prompts || !lens || !logits || !gen) ? LMA_ERR_NOMEM : LMA_OK;
    size_t cap = 0;
    double total_tokens = 0;
    res->shots_used_min = prm->shots;
    /* every prompt first (the budget is checked before any model time is spent) */
    for (size_t q = 0; s == LMA_OK && q < nq; q++) {
        int k = 0;
        s = lma_icl_build(pool, tok, lma_icl_pool_get(task, q)->input, q, prm, &prompts[q], &lens[q], NULL, &k);
        if (s != LMA_OK) break;
        if (lens[q] + (size_t)maxnew > cap) cap = lens[q] + (size_t)maxnew;
        total_tokens += (double)lens[q];
        if (k < res->shots_used_min) res->shots_used_min = k;
        if (k > res->shots_used_max) res->shots_used_max = k;
    }
    lma_kv_cache *kv = NULL;
    if (s == LMA_OK && nq > 0) s = lma_kv_create(m, (int)cap, &kv);
    int correct = 0;
    const int32_t *prev = NULL;
    size_t nprev = 0;
    for (size_t q = 0; s == LMA_OK && q < nq; q++) {
        /* reuse the cache of the shared prefix (at least the last prompt token is run: its logits) */
        size_t keep = prev && !g->no_reuse ? common_prefix(prev, nprev, prompts[q], lens[q]) : 0;
        if (keep >= lens[q]) keep = lens[q] - 1;
        kv->len = (int)keep;
        res->prefix_tokens_reused += (long)keep;
        res->prompt_tokens_computed += (long)(lens[q] - keep);
        s = lma_model_forward_cached(m, kv, prompts[q] + keep, (int)(lens[q] - keep), logits, 0);
        prev = prompts[q];
        nprev = lens[q];
        int n = 0;
        char *text = NULL;
        size_t tl = 0;
        while (s == LMA_OK && n < maxnew) {
            int32_t id = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[id]) id = v;
            int eos = 0;
            for (int i = 0; i < g->n_eos; i++) eos |= id == g->eos[i];
            if (eos) break;
            gen[n++] = id;
            free(text);
            text = NULL;
            s = lma_tok_decode(tok, gen, (size_t)n, 1, &text, &tl);
            if (s != LMA_OK || stopped(text, prm, g)) break;
            if (n < maxnew) s = lma_model_forward_cached(m, kv, &id, 1, logits, 0);
        }
        if (s == LMA_OK) {
            char *answer = NULL;
            if (!text) text = strdup("");
            if (!text) { s = lma_error(LMA_ERR_NOMEM, "out of memory"); break; }
            extract(text, prm, g, &answer);
            int ok = lma_icl_exact(answer, lma_icl_pool_get(task, q)->output);
            correct += ok;
            if (g->on_query) g->on_query(g->ctx, q, answer, ok);
        }
        free(text);
    }
    if (s == LMA_OK) {
        res->n = (int)nq;
        res->accuracy = nq ? (double)correct / (double)nq : 0;
        res->prompt_tokens_per_query = nq ? total_tokens / (double)nq : 0;
    }
    lma_kv_free(m, kv);
    for (size_t q = 0; prompts && q < nq; q++) free(prompts[q]);
    free(prompts);
    free(lens);
    free(logits);
    free(gen);
    return s;
}
