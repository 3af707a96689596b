#include "infer/generate.h"
#include <stdio.h>
#include <limits.h>
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

lma_status lma_generate(lma_model *m, const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                        const lma_gen_params *p, lma_gen_result *res) {
    memset(res, 0, sizeof *res);
    if (n_prompt < 1) return lma_error(LMA_ERR_ARG, "the prompt is empty");
    if (p->max_tokens < 0) return lma_error(LMA_ERR_ARG, "max_tokens must be >= 0");
    if (n_prompt > (size_t)(INT_MAX / 2) || p->max_tokens > INT_MAX / 2)
        return lma_error(LMA_ERR_ARG, "a prompt of %zu tokens (+ %d new) is too long", n_prompt, p->max_tokens);
    int V = m->cfg.vocab_size, cap = (int)n_prompt + p->max_tokens;
    if (m->cfg.max_position_embeddings > 0 && cap > m->cfg.max_position_embeddings)
        lma_warn("the prompt (%zu tokens) + max_tokens (%d) exceed the model's context of %d tokens "
                 "(max_position_embeddings): output past it degrades", n_prompt, p->max_tokens,
                 m->cfg.max_position_embeddings);
    lma_kv_cache *kv = NULL;
    lma_tok_stream *ts = NULL;
    float *logits = lma_malloc((size_t)V * sizeof(float), "logits");
    int32_t *hist = lma_malloc((size_t)cap * sizeof(int32_t), "token history");
    lma_buf text = {0};
    size_t streamed = 0;
    lma_status s = (!logits || !hist) ? LMA_ERR_NOMEM : lma_kv_create(m, cap, &kv);
    if (s == LMA_OK && tok) s = lma_tok_stream_new(tok, 1, &ts);
    if (s != LMA_OK) goto done;
    memcpy(hist, prompt, n_prompt * sizeof(int32_t));
    lma_rng rng;
    lma_rng_seed(&rng, p->seed);
    double t0 = lma_now();
    s = lma_model_forward_cached(m, kv, prompt, (int)n_prompt, logits, 0);
    res->prefill_s = lma_now() - t0;
    res->prompt_tokens = (int)n_prompt;
    t0 = lma_now();
    res->finish = LMA_FINISH_LENGTH;
    size_t n_hist = n_prompt;
    int json_done = 0;
    if (s == LMA_OK && p->constraint) {
        lma_json_constraint_reset(p->constraint);
        int need = lma_json_constraint_min_tokens(p->constraint);
        if (need > p->max_tokens)
            s = lma_error(LMA_ERR_ARG, "max_tokens %d is too small for a complete JSON output (at least %d tokens)",
                          p->max_tokens, need);
    }
    for (int step = 0; s == LMA_OK && step < p->max_tokens; step++) {
        if (p->constraint) {
            s = lma_json_constraint_mask(p->constraint, logits, V, p->max_tokens - step - 1, p->stop_ids, p->n_stop_ids);
            if (s != LMA_OK) break;
        }
        int32_t id = lma_sample(logits, V, &p->sample, hist, n_hist, &rng);
        const char *piece_at = NULL; /* the text released with this token */
        size_t piece_n = 0;
        hist[n_hist++] = id;
        int is_stop = 0;
        for (int i = 0; i < p->n_stop_ids; i++) is_stop |= id == p->stop_ids[i];
        if (is_stop) { res->finish = LMA_FINISH_STOP; break; }
        if (p->constraint && (s = lma_json_constraint_accept(p->constraint, id, &json_done)) != LMA_OK) break;
        if (ts) {
            char *piece = NULL;
            size_t plen = 0;
            s = lma_tok_stream_push(ts, id, &piece, &plen);
            if (s == LMA_OK && plen) s = lma_buf_append(&text, piece, plen);
            free(piece);
            if (s != LMA_OK) break;
            long at = find_stop(&text, text.len - plen, p);
            if (at >= 0) { text.len = (size_t)at; text.p[at] = 0; res->finish = LMA_FINISH_STOP; break; }
            size_t ready = text.len - stop_holdback(&text, p);
            if ((p->on_text || p->on_token) && ready > streamed) {
                if (p->on_text) p->on_text(p->ctx, text.p + streamed, ready - streamed);
                piece_at = text.p + streamed; piece_n = ready - streamed;
                streamed = ready;
            }
        }
        if (p->on_token && p->on_token(p->ctx, id, piece_at, piece_n)) { res->finish = LMA_FINISH_STOP; break; }
        if (json_done) { res->finish = LMA_FINISH_STOP; break; } /* the JSON value is complete */
        if (step + 1 < p->max_tokens) s = lma_model_forward_cached(m, kv, &id, 1, logits, 0);
    }
    res->decode_s = lma_now() - t0;
    if (s == LMA_OK && ts && (res->finish == LMA_FINISH_LENGTH || json_done)) {
        char *piece = NULL;
        size_t plen = 0;
        if (lma_tok_stream_flush(ts, &piece, &plen) == LMA_OK && plen) (void)lma_buf_append(&text, piece, plen);
        free(piece);
    }
    if (s == LMA_OK && (p->on_text || p->on_token) && text.len > streamed) {
        if (p->on_text) p->on_text(p->ctx, text.p + streamed, text.len - streamed);
        if (p->on_token) p->on_token(p->ctx, -1, text.p + streamed, text.len - streamed);
    }
    if (s == LMA_OK) {
        res->n_ids = n_hist - n_prompt;
        res->ids = lma_malloc((res->n_ids ? res->n_ids : 1) * sizeof(int32_t), "generated ids");
        if (!res->ids) s = LMA_ERR_NOMEM;
        else memcpy(res->ids, hist + n_prompt, res->n_ids * sizeof(int32_t));
        if (tok) {
            if (!text.p) (void)lma_buf_append(&text, "", 0);
            res->text = text.p; res->len = text.len; text.p = NULL;
        }
    }
done:
    free(text.p);
    free(logits);
    free(hist);
    lma_tok_stream_free(ts);
    lma_kv_free(m, kv);
    return s;
}
