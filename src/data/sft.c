#include "data/sft.h"
#include "data/cursor.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "data/example.h"
#include "tok/chat_template.h"

struct lma_sft_set {
    int32_t *ids;   /* (tokens) all examples back to back */
    uint8_t *lab;   /* (tokens) 1 = loss on this token */
    size_t *off;    /* (n + 1) start of example i */
    size_t n, cap, tok_cap;
};

static lma_status push(lma_sft_set *s, const int32_t *ids, const uint8_t *lab, size_t n) {
    LMA_TRY(lma_grow(&s->off, &s->cap, s->n + 2, sizeof *s->off, 1024, "SFT example offsets"));
    size_t used = s->n ? s->off[s->n] : 0;
    if (used + n > s->tok_cap) { /* 2 arrays, one capacity */
        void *const arrs[] = {&s->ids, &s->lab};
        const size_t esz[] = {sizeof *s->ids, sizeof *s->lab};
        LMA_TRY(lma_grow_all(&s->tok_cap, used + n, 1 << 16, "SFT tokens", 2, arrs, esz));
    }
    if (s->n == 0) s->off[0] = 0;
    memcpy(s->ids + used, ids, n * sizeof *ids);
    memcpy(s->lab + used, lab, n);
    s->off[++s->n] = used + n;
    return LMA_OK;
}

static const char *role_str(lma_role r) {
    switch (r) {
    case LMA_ROLE_SYSTEM: return "system";
    case LMA_ROLE_USER: return "user";
    case LMA_ROLE_ASSISTANT: return "assistant";
    default: return NULL;
    }
}

/* One example: render, tokenize, label. */
static lma_status add_example(lma_sft_set *s, const lma_example *ex, const lma_tokenizer *tok, const lma_sft_params *p,
                              lma_sft_stats *st) {
    if (ex->format == LMA_EXF_PREFERENCE)
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: a preference record (chosen/rejected) in SFT data", ex->file,
                         (long long)ex->line);
    if (ex->format == LMA_EXF_TEXT)
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: a plain \"text\" record in SFT data (use pretrain or cpt)", ex->file,
                         (long long)ex->line);
    lma_chat_msg *msgs = lma_calloc(ex->n_msgs ? ex->n_msgs : 1, sizeof *msgs, "messages");
    int *weights = lma_calloc(ex->n_msgs ? ex->n_msgs : 1, sizeof *weights, "weights");
    if (!msgs || !weights) { free(msgs); free(weights); return LMA_ERR_NOMEM; }
    size_t n_asst = 0;
    lma_status st_ = LMA_OK;
    for (size_t i = 0; i < ex->n_msgs; i++) {
        const lma_ex_msg *m = &ex->msgs[i];
        msgs[i].role = role_str(m->role);
        msgs[i].content = m->text;
        if (!msgs[i].role) {
            st_ = lma_error(LMA_ERR_FORMAT, "%s:%lld: message %zu has role '%s', which chat templates do not take",
                            ex->file, (long long)ex->line, i + 1, m->role_name ? m->role_name : "(none)");
            break;
        }
        if (m->role == LMA_ROLE_ASSISTANT) weights[n_asst++] = m->weight;
    }
    if (st_ == LMA_OK && n_asst == 0)
        st_ = lma_error(LMA_ERR_FORMAT, "%s:%lld: no assistant message to learn from", ex->file, (long long)ex->line);
    int32_t *ids = NULL;
    size_t n = 0, *spans = NULL, n_spans = 0;
    uint8_t *lab = NULL;
    if (st_ == LMA_OK) {
        st_ = lma_chat_encode(tok, p->template_spec, msgs, ex->n_msgs, 0, &ids, &n, &spans, &n_spans);
        if (st_ != LMA_OK)
            st_ = lma_error_replace(st_, "%s:%lld: %s", ex->file, (long long)ex->line, lma_last_error());
    }
    if (st_ == LMA_OK) {
        lab = calloc(n ? n : 1, 1);
        if (!lab) st_ = lma_error(LMA_ERR_NOMEM, "out of memory");
    }
    if (st_ == LMA_OK) {
        if (p->all_tokens) memset(lab, 1, n);
        else
            for (size_t k = 0; k < n_spans && k < n_asst; k++) {
                if (weights[k] == 0) continue;
                for (size_t t = spans[2 * k]; t < spans[2 * k + 1] && t < n; t++) lab[t] = 1;
            }
        if (p->max_len > 0 && n > (size_t)p->max_len) { n = (size_t)p->max_len; st->truncated++; }
        size_t nl = 0;
        for (size_t t = 1; t < n; t++) nl += lab[t]; /* token 0 is never a target */
        if (nl == 0) st->skipped_no_label++;
        else {
            st_ = push(s, ids, lab, n);
            st->examples++;
            st->tokens += n;
            st->labelled += nl;
        }
    }
    free(ids); free(spans); free(lab); free(msgs); free(weights);
    return st_;
}

lma_status lma_sft_load(const char *path, const lma_tokenizer *tok, const lma_sft_params *p, lma_sft_set **out,
                        lma_sft_stats *stats) {
    *out = NULL;
    memset(stats, 0, sizeof *stats);
    lma_sft_set *s = lma_calloc(1, sizeof *s, "sft set");
    if (!s) return LMA_ERR_NOMEM;
    lma_ex_reader *r = NULL;
    lma_status st = lma_ex_open(path, &r);
    while (st == LMA_OK) {
        lma_example *ex = NULL;
        st = lma_ex_next(r, &ex);
        if (st != LMA_OK || !ex) break;
        if (ex->error_code) { st = lma_error(LMA_ERR_FORMAT, "%s", ex->error); break; }
        st = add_example(s, ex, tok, p, stats);
    }
    lma_ex_close(r);
    if (st == LMA_OK && s->n == 0) st = lma_error(LMA_ERR_FORMAT, "%s: no usable examples", path);
    if (st != LMA_OK) { lma_sft_free(s); return st; }
    *out = s;
    return LMA_OK;
}

void lma_sft_free(lma_sft_set *s) {
    if (!s) return;
    free(s->ids); free(s->lab); free(s->off); free(s);
}

size_t lma_sft_count(const lma_sft_set *s) { return s->n; }

void lma_sft_example(const lma_sft_set *s, size_t i, const int32_t **ids, const uint8_t **labels, size_t *n) {
    *ids = s->ids + s->off[i];
    *labels = s->lab + s->off[i];
    *n = s->off[i + 1] - s->off[i];
}

/* ---- batcher ------------------------------------------------------------------ */

struct lma_sft_batcher {
    const lma_sft_set *set;
    int B, T, pack, shuffle, single_pass;
    int32_t pad;
    size_t *order; /* (n) this epoch's example order */
    size_t epoch, pos;
    lma_rng rng;    /* state that shuffled this epoch */
    lma_rng next_rng;
    uint8_t *rowlab; /* (T) scratch */
};

static void make_order(lma_sft_batcher *b) {
    size_t n = b->set->n;
    for (size_t i = 0; i < n; i++) b->order[i] = i;
    lma_rng r = b->rng;
    if (b->shuffle)
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)lma_rng_below(&r, i);
            size_t t = b->order[i - 1]; b->order[i - 1] = b->order[j]; b->order[j] = t;
        }
    b->next_rng = r;
}

lma_status lma_sft_batcher_create(const lma_sft_set *s, int B, int T, int pack, int32_t pad_id, uint64_t seed,
                                  int shuffle, int single_pass, lma_sft_batcher **out) {
    *out = NULL;
    if (B < 1 || T < 2) return lma_error(LMA_ERR_ARG, "batch %d x %d: need B >= 1 and T >= 2", B, T);
    lma_sft_batcher *b = lma_calloc(1, sizeof *b, "sft batcher");
    if (!b) return LMA_ERR_NOMEM;
    b->set = s; b->B = B; b->T = T; b->pack = pack; b->pad = pad_id; b->shuffle = shuffle;
    b->single_pass = single_pass;
    b->order = lma_calloc(s->n ? s->n : 1, sizeof *b->order, "sft order");
    b->rowlab = lma_calloc((size_t)T, 1, "sft row");
    if (!b->order || !b->rowlab) { lma_sft_batcher_free(b); return LMA_ERR_NOMEM; }
    lma_rng_seed(&b->rng, seed);
    make_order(b);
    *out = b;
    return LMA_OK;
}

void lma_sft_batcher_free(lma_sft_batcher *b) {
    if (!b) return;
    free(b->order); free(b->rowlab); free(b);
}

void lma_sft_batcher_rewind(lma_sft_batcher *b) { b->pos = 0; }
size_t lma_sft_batcher_epoch(const lma_sft_batcher *b) { return b->epoch; }

lma_status lma_sft_batcher_next(lma_sft_batcher *b, int32_t *ids, int32_t *targets, int32_t *seg, int *rows) {
    const lma_sft_set *s = b->set;
    int T = b->T, filled = 0;
    for (int r = 0; r < b->B; r++) {
        int32_t *ri = ids + (size_t)r * T, *rt = targets + (size_t)r * T, *rs = seg + (size_t)r * T;
        int fill = 0, sid = 0;
        for (;;) {
            if (b->pos == s->n) {
                if (b->single_pass) break;
                b->epoch++;
                b->pos = 0;
                b->rng = b->next_rng;
                make_order(b);
            }
            size_t e = b->order[b->pos];
            size_t len = s->off[e + 1] - s->off[e];
            if (len > (size_t)T) len = (size_t)T;
            if (fill > 0 && fill + (int)len > T) break;
            memcpy(ri + fill, s->ids + s->off[e], len * sizeof(int32_t));
            memcpy(b->rowlab + fill, s->lab + s->off[e], len);
            for (size_t t = 0; t < len; t++) rs[fill + t] = sid;
            fill += (int)len;
            sid++;
            b->pos++;
            if (!b->pack) break;
        }
        if (fill > 0) filled++;
        for (int t = fill; t < T; t++) { ri[t] = b->pad; rs[t] = -1; b->rowlab[t] = 0; }
        for (int t = 0; t < T; t++)
            rt[t] = (t + 1 < fill && rs[t + 1] == rs[t] && b->rowlab[t + 1]) ? ri[t + 1] : -100;
    }
    *rows = filled;
    return LMA_OK;
}

lma_status lma_sft_batcher_save(const lma_sft_batcher *b, cJSON **out) {
    return lma_epoch_cursor_save(b->epoch, b->pos, "examples", b->set->n, &b->rng, out);
}

lma_status lma_sft_batcher_restore(lma_sft_batcher *b, const cJSON *j) {
    LMA_TRY(lma_epoch_cursor_restore(j, "SFT data", "examples", "examples", b->set->n, &b->epoch, &b->pos, &b->rng));
    make_order(b);
    return LMA_OK;
}
