#include "infer/generate.h"
#include <stdio.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "infer/json_constraint.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"
#include "core/progress.h"

int lma_generation_eos(const char *model_dir, const lma_config *c, int32_t *ids, int cap) {
    int n = 0;
    char path[4200];
    cJSON *j = NULL;
    snprintf(path, sizeof path, "%s/generation_config.json", model_dir);
    if (lma_file_exists(path) && lma_json_load(path, &j) == LMA_OK) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id"), *it;
        if (cJSON_IsNumber(e) && n < cap) ids[n++] = e->valueint;
        else if (cJSON_IsArray(e))
            cJSON_ArrayForEach(it, e) if (cJSON_IsNumber(it) && n < cap) ids[n++] = it->valueint;
    }
    lma_clear_error();
    cJSON_Delete(j);
    for (int i = 0; n == 0 && i < c->n_eos && n < cap; i++) ids[n++] = c->eos_token_ids[i];
    return n;
}

int lma_chat_stop_ids(const char *model_dir, const lma_config *c, const lma_tokenizer *tok, int32_t *ids, int cap) {
    int32_t cand[24];
    int nc = lma_generation_eos(model_dir, c, cand, 16), n = 0;
    if (lma_tok_eos_id(tok) >= 0) cand[nc++] = lma_tok_eos_id(tok);
    static const char *eot[] = {"<|eot_id|>", "<|im_end|>", "</s>", "<|end_of_text|>"};
    for (size_t i = 0; i < sizeof eot / sizeof eot[0]; i++) {
        int32_t id = lma_tok_token_to_id(tok, eot[i]);
        if (id >= 0) cand[nc++] = id;
    }
    for (int i = 0; i < nc; i++) {
        int seen = 0;
        for (int k = 0; k < n; k++) seen |= ids[k] == cand[i];
        if (!seen && n < cap) ids[n++] = cand[i];
    }
    return n;
}

/* Earliest stop-string match at or after `from`; returns its offset or -1. */
static long find_stop(const lma_buf *b, size_t from, const lma_gen_params *p) {
    long best = -1;
    for (int i = 0; i < p->n_stop_strings; i++) {
        size_t k = strlen(p->stop_strings[i]);
        if (!k) continue;
        size_t start = from > k ? from - k + 1 : 0;
        for (size_t o = start; o + k <= b->len; o++)
            if (!memcmp(b->p + o, p->stop_strings[i], k)) { if (best < 0 || (long)o < best) best = (long)o; break; }
    }
    return best;
}

/* Bytes at the end of b that could still start a stop string (held back from streaming). */
static size_t stop_holdback(const lma_buf *b, const lma_gen_params *p) {
    size_t hold = 0;
    for (int i = 0; i < p->n_stop_strings; i++) {
        size_t k = strlen(p->stop_strings[i]);
        for (size_t h = k > 1 ? k - 1 : 0; h > hold; h--)
            if (h <= b->len && !memcmp(b->p + b->len - h, p->stop_strings[i], h)) { hold = h; break; }
    }
    return hold;
}

struct lma_gen_seq {
    const lma_gen_params *p;
    int V, step, done, flushed;
    int json_done;                /* the constraint's value is complete */
    lma_json_constraint *con;     /* own (NULL: unconstrained) */
    lma_json_constraint *own;     /* a clone of p->constraint or compiled from p->grammar */
    lma_finish_reason finish;
    int32_t *hist; size_t n_hist, n_prompt; /* (n_prompt + max_tokens) */
    lma_tok_stream *ts;
    lma_buf text;
    size_t streamed;
    lma_rng rng;
};

lma_status lma_gen_seq_new(const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt, int vocab_size,
                           const lma_gen_params *p, lma_gen_seq **out) {
    *out = NULL;
    if (n_prompt < 1) return lma_error(LMA_ERR_ARG, "the prompt is empty");
    if (p->max_tokens < 0) return lma_error(LMA_ERR_ARG, "max_tokens must be >= 0");
    lma_gen_seq *g = lma_calloc(1, sizeof *g, "generation state");
    if (!g) return LMA_ERR_NOMEM;
    g->p = p;
    g->V = vocab_size;
    g->finish = LMA_FINISH_LENGTH;
    g->done = p->max_tokens == 0;
    g->hist = lma_malloc((n_prompt + (size_t)p->max_tokens) * sizeof(int32_t), "token history");
    lma_status s = g->hist ? LMA_OK : LMA_ERR_NOMEM;
    if (s == LMA_OK && tok) s = lma_tok_stream_new(tok, 1, &g->ts);
    if (s != LMA_OK) { lma_gen_seq_free(g); return s; }
    if (s == LMA_OK && p->constraint) { /* a sequence's own copy: it holds the sequence's state */
        s = lma_json_constraint_clone(p->constraint, &g->own);
    } else if (s == LMA_OK && p->grammar) {
        if (!tok) s = lma_error(LMA_ERR_ARG, "a grammar needs the tokenizer");
        else s = lma_grammar_constraint_new(tok, p->grammar, strlen(p->grammar), "grammar", &g->own);
    }
    g->con = g->own;
    if (s == LMA_OK && g->con) {
        int need = lma_json_constraint_min_tokens(g->con);
        if (need > p->max_tokens)
            s = lma_error(LMA_ERR_ARG, "max_tokens %d is too small for a complete constrained output (at least %d tokens)",
                          p->max_tokens, need);
    }
    if (s != LMA_OK) { lma_gen_seq_free(g); return s; }
    memcpy(g->hist, prompt, n_prompt * sizeof(int32_t));
    g->n_hist = g->n_prompt = n_prompt;
    lma_rng_seed(&g->rng, p->seed);
    *out = g;
    return LMA_OK;
}

void lma_gen_seq_free(lma_gen_seq *g) {
    if (!g) return;
    lma_tok_stream_free(g->ts);
    lma_json_constraint_free(g->own);
    free(g->text.p);
    free(g->hist);
    free(g);
}

int lma_gen_seq_done(const lma_gen_seq *g) { return g->done; }
int lma_gen_seq_n_generated(const lma_gen_seq *g) { return (int)(g->n_hist - g->n_prompt); }

lma_status lma_gen_seq_step(lma_gen_seq *g, float *logits, int32_t *next, int *done) {
    const lma_gen_params *p = g->p;
    lma_status s = LMA_OK;
    *done = 1;
    if (g->done) return LMA_OK;
    if (g->con) {
        s = lma_json_constraint_mask(g->con, logits, g->V, p->max_tokens - g->step - 1, p->stop_ids, p->n_stop_ids);
        if (s != LMA_OK) { g->done = 1; return s; }
    }
    int32_t id = lma_sample(logits, g->V, &p->sample, g->hist, g->n_hist, &g->rng);
    const char *piece_at = NULL; /* the text released with this token */
    size_t piece_n = 0;
    g->hist[g->n_hist++] = id;
    g->step++;
    int is_stop = 0;
    for (int i = 0; i < p->n_stop_ids; i++) is_stop |= id == p->stop_ids[i];
    if (is_stop) { g->finish = LMA_FINISH_STOP; g->done = 1; return LMA_OK; }
    if (g->con && (s = lma_json_constraint_accept(g->con, id, &g->json_done)) != LMA_OK) {
        g->done = 1;
        return s;
    }
    if (g->ts) {
        char *piece = NULL;
        size_t plen = 0;
        lma_buf *text = &g->text;
        s = lma_tok_stream_push(g->ts, id, &piece, &plen);
        if (s == LMA_OK && plen) s = lma_buf_append(text, piece, plen);
        free(piece);
        if (s != LMA_OK) { g->done = 1; return s; }
        long at = find_stop(text, text->len - plen, p);
        if (at >= 0) {
            text->len = (size_t)at; text->p[at] = 0;
            g->finish = LMA_FINISH_STOP; g->done = 1;
            return LMA_OK;
        }
        size_t ready = text->len - stop_holdback(text, p);
        if ((p->on_text || p->on_token) && ready > g->streamed) {
            if (p->on_text) p->on_text(p->ctx, text->p + g->streamed, ready - g->streamed);
            piece_at = text->p + g->streamed; piece_n = ready - g->streamed;
            g->streamed = ready;
        }
    }
    if (p->on_token && p->on_token(p->ctx, id, piece_at, piece_n)) { g->finish = LMA_FINISH_STOP; g->done = 1; return LMA_OK; }
    if (g->json_done) { g->finish = LMA_FINISH_STOP; g->done = 1; return LMA_OK; } /* the JSON value is complete */
    if (g->step >= p->max_tokens) { g->done = 1; return LMA_OK; }
    *next = id;
    *done = 0;
    return LMA_OK;
}

lma_status lma_gen_seq_finish(lma_gen_seq *g, lma_gen_result *res) {
    const lma_gen_params *p = g->p;
    lma_status s = LMA_OK;
    memset(res, 0, sizeof *res);
    res->finish = g->finish;
    res->prompt_tokens = (int)g->n_prompt;
    if (g->ts && (g->finish == LMA_FINISH_LENGTH || g->json_done) && !g->flushed) {
        char *piece = NULL;
        size_t plen = 0;
        if (lma_tok_stream_flush(g->ts, &piece, &plen) == LMA_OK && plen) (void)lma_buf_append(&g->text, piece, plen);
        free(piece);
    }
    g->flushed = 1;
    if ((p->on_text || p->on_token) && g->text.len > g->streamed) {
        if (p->on_text) p->on_text(p->ctx, g->text.p + g->streamed, g->text.len - g->streamed);
        if (p->on_token) p->on_token(p->ctx, -1, g->text.p + g->streamed, g->text.len - g->streamed);
        g->streamed = g->text.len;
    }
    res->n_ids = g->n_hist - g->n_prompt;
    res->ids = lma_malloc((res->n_ids ? res->n_ids : 1) * sizeof(int32_t), "generated ids");
    if (!res->ids) return LMA_ERR_NOMEM;
    memcpy(res->ids, g->hist + g->n_prompt, res->n_ids * sizeof(int32_t));
    if (g->ts) {
        if (!g->text.p) s = lma_buf_append(&g->text, "", 0);
        res->text = g->text.p; res->len = g->text.len;
        g->text = (lma_buf){0};
    }
    return s;
}

/* lma_generate_batch's slot: one sequence and its cache (kept for the next request when large enough) */
typedef struct {
    lma_kv_cache *kv;
    lma_gen_seq *g;
    size_t req;
    int32_t next;
    double t_decode;
} gen_slot;

static lma_status check_request(const lma_model *m, const lma_gen_request *r) {
    /* once a process: an evaluation past the window would print it for every prompt */
    static atomic_int warned;
    if (r->n_prompt < 1) return lma_error(LMA_ERR_ARG, "the prompt is empty");
    if (r->p->max_tokens < 0) return lma_error(LMA_ERR_ARG, "max_tokens must be >= 0");
    if (r->n_prompt > (size_t)(INT_MAX / 2) || r->p->max_tokens > INT_MAX / 2)
        return lma_error(LMA_ERR_ARG, "a prompt of %zu tokens (+ %d new) is too long", r->n_prompt, r->p->max_tokens);
    int cap = (int)r->n_prompt + r->p->max_tokens;
    if (m->cfg.max_position_embeddings > 0 && cap > lma_config_context(&m->cfg) && !atomic_exchange(&warned, 1))
        lma_warn("the prompt (%zu tokens) + max_tokens (%d) exceed the model's context of %d tokens "
                 "(max_position_embeddings, with rope scaling): output past it degrades (said once)", r->n_prompt,
                 r->p->max_tokens, lma_config_context(&m->cfg));
    return LMA_OK;
}

/* Ends slot s's sequence into its request's result and frees the slot. */
static lma_status slot_finish(gen_slot *sl, lma_gen_result *res) {
    lma_gen_result *r = &res[sl->req];
    double prefill_s = r->prefill_s;
    lma_status s = lma_gen_seq_finish(sl->g, r);
    r->prefill_s = prefill_s;
    r->decode_s = lma_now() - sl->t_decode;
    lma_gen_seq_free(sl->g);
    sl->g = NULL;
    return s;
}

/* Takes request i into free slot sl: its cache, its sequence, the prefill and the first
 * token (a request done at once is finished here and leaves the slot free). */
static lma_status slot_admit(lma_model *m, const lma_tokenizer *tok, gen_slot *sl, const lma_gen_request *rq, size_t i,
                             float *logits, lma_gen_result *res) {
    const lma_gen_request *r = &rq[i];
    int cap = (int)r->n_prompt + r->p->max_tokens;
    if (sl->kv && sl->kv->cap < cap) { lma_kv_free(m, sl->kv); sl->kv = NULL; }
    if (!sl->kv) LMA_TRY(lma_kv_create(m, cap, &sl->kv));
    sl->kv->len = 0;
    sl->req = i;
    LMA_TRY(lma_gen_seq_new(tok, r->prompt, r->n_prompt, m->cfg.vocab_size, r->p, &sl->g));
    double t0 = lma_now();
    lma_status s = lma_model_forward_cached(m, sl->kv, r->prompt, (int)r->n_prompt, logits, 0);
    sl->t_decode = lma_now();
    res[i].prefill_s = sl->t_decode - t0;
    int fin = lma_gen_seq_done(sl->g);
    if (s == LMA_OK && !fin) s = lma_gen_seq_step(sl->g, logits, &sl->next, &fin);
    if (s == LMA_OK && fin) s = slot_finish(sl, res);
    return s;
}

lma_status lma_generate_batch(lma_model *m, const lma_tokenizer *tok, const lma_gen_request *rq, size_t n,
                              int max_batch, lma_gen_result *res) {
    memset(res, 0, n * sizeof *res);
    for (size_t i = 0; i < n; i++) LMA_TRY(check_request(m, &rq[i]));
    int B = max_batch < 1 ? 1 : (size_t)max_batch > n ? (int)n : max_batch, V = m->cfg.vocab_size;
    if (B < 1) return LMA_OK;
    gen_slot *sl = lma_calloc((size_t)B, sizeof *sl, "generation slots");
    float *logits = lma_malloc((size_t)B * (size_t)V * sizeof(float), "logits");
    lma_kv_cache **kvs = lma_malloc((size_t)B * sizeof *kvs, "generation slots");
    int32_t *ids = lma_malloc((size_t)B * sizeof *ids, "generation slots");
    int *act = lma_malloc((size_t)B * sizeof *act, "generation slots");
    lma_status s = sl && logits && kvs && ids && act ? LMA_OK : LMA_ERR_NOMEM;
    size_t next = 0;
    while (s == LMA_OK) {
        for (int k = 0; s == LMA_OK && k < B; k++) /* free slots take the next requests */
            while (s == LMA_OK && !sl[k].g && next < n) s = slot_admit(m, tok, &sl[k], rq, next++, logits, res);
        int na = 0;
        for (int k = 0; k < B; k++)
            if (sl[k].g) { act[na] = k; kvs[na] = sl[k].kv; ids[na] = sl[k].next; na++; }
        if (s != LMA_OK || !na) break;
        s = lma_model_decode_batch(m, kvs, ids, na, logits); /* one step, every running sequence */
        for (int a = 0; s == LMA_OK && a < na; a++) {
            gen_slot *x = &sl[act[a]];
            int fin;
            s = lma_gen_seq_step(x->g, logits + (size_t)a * V, &x->next, &fin);
            if (s == LMA_OK && fin) s = slot_finish(x, res);
        }
    }
    for (int k = 0; sl && k < B; k++) { lma_gen_seq_free(sl[k].g); lma_kv_free(m, sl[k].kv); }
    free(sl); free(logits); free(kvs); free(ids); free(act);
    if (s != LMA_OK)
        for (size_t i = 0; i < n; i++) { free(res[i].ids); free(res[i].text); memset(&res[i], 0, sizeof res[i]); }
    return s;
}

lma_status lma_generate(lma_model *m, const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                        const lma_gen_params *p, lma_gen_result *res) {
    lma_gen_request r = {prompt, n_prompt, p};
    return lma_generate_batch(m, tok, &r, 1, 1, res);
}
