#include "data/prefs.h"
#include "data/cursor.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "data/example.h"
#include "tok/chat_template.h"

struct lma_pref_set {
    int32_t *ids;  /* (tokens) rows back to back: pair i's chosen row 2i, rejected 2i+1 */
    size_t *off;   /* (2n + 1) start of row r */
    size_t *start; /* (2n) first completion token of row r */
    size_t n, cap, tok_cap;
};

/* Appends pair (x: chosen row, y: rejected row), each with its completion start. */
static lma_status push_pair(lma_pref_set *s, const int32_t *x, size_t nx, size_t kx, const int32_t *y, size_t ny,
                            size_t ky) {
    size_t rows = 2 * s->n;
    if (rows + 3 > s->cap) {
        void *const arrs[] = {&s->off, &s->start};
        const size_t esz[] = {sizeof *s->off, sizeof *s->start};
        LMA_TRY(lma_grow_all(&s->cap, rows + 3, 1024, "preference rows", 2, arrs, esz));
    }
    size_t used = rows ? s->off[rows] : 0;
    LMA_TRY(lma_grow(&s->ids, &s->tok_cap, used + nx + ny, sizeof *s->ids, 1 << 16, "preference tokens"));
    s->off[0] = 0;
    memcpy(s->ids + used, x, nx * sizeof *x);
    memcpy(s->ids + used + nx, y, ny * sizeof *y);
    s->start[rows] = kx;
    s->start[rows + 1] = ky;
    s->off[rows + 1] = used + nx;
    s->off[rows + 2] = used + nx + ny;
    s->n++;
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

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

static int same_msg(const lma_ex_msg *a, const lma_ex_msg *b) {
    return a->role == b->role && a->len == b->len && !memcmp(a->text, b->text, a->len);
}

/* conversational: chat(prompt + reply) for reply in {chosen, rejected}, and chat(prompt) with the
 * generation prompt */
static lma_status encode_conv(const lma_example *ex, const lma_tokenizer *tok, const char *tmpl, const lma_ex_msg *pm,
                              size_t np, const lma_ex_msg *cm, size_t nc, const lma_ex_msg *rm, size_t nr,
                              int32_t *out_ids[3], size_t out_n[3]) {
    size_t cap = np + (nc > nr ? nc : nr) + 1;
    lma_chat_msg *msgs = lma_calloc(cap, sizeof *msgs, "messages");
    if (!msgs) return LMA_ERR_NOMEM;
    lma_status st = LMA_OK;
    for (int which = 0; which < 3 && st == LMA_OK; which++) {
        const lma_ex_msg *tail = which == 1 ? cm : which == 2 ? rm : NULL;
        size_t nt = which == 1 ? nc : which == 2 ? nr : 0, k = 0;
        for (size_t i = 0; i < np + nt && st == LMA_OK; i++) {
            const lma_ex_msg *m = i < np ? &pm[i] : &tail[i - np];
            msgs[k].role = role_str(m->role);
            msgs[k++].content = m->text;
            if (!msgs[k - 1].role)
                st = lma_error(LMA_ERR_FORMAT, "%s:%lld: %s message has role '%s', which chat templates do not take",
                               ex->file, (long long)ex->line, i < np ? "a prompt" : which == 1 ? "a chosen" : "a rejected",
                               m->role_name ? m->role_name : "(none)");
        }
        if (st != LMA_OK) break;
        size_t *spans = NULL, n_spans = 0;
        st = lma_chat_encode(tok, tmpl, msgs, k, which == 0, &out_ids[which], &out_n[which], &spans, &n_spans);
        free(spans);
        if (st != LMA_OK) st = lma_error_replace(st, "%s:%lld: %s", ex->file, (long long)ex->line, lma_last_error());
    }
    free(msgs);
    return st;
}

/* plain text: tok(prompt), tok(prompt + reply + eos) with the tokenizer's special tokens */
static lma_status encode_plain(const lma_tokenizer *tok, const char *p, size_t np, const char *c, size_t nc,
                               const char *r, size_t nr, int32_t *out_ids[3], size_t out_n[3]) {
    const char *eos = lma_tok_eos_token(tok);
    size_t ne = eos ? strlen(eos) : 0;
    LMA_TRY(lma_tok_encode(tok, p, np, 1, &out_ids[0], &out_n[0]));
    for (int which = 1; which < 3; which++) {
        const char *x = which == 1 ? c : r;
        size_t nx = which == 1 ? nc : nr;
        lma_buf b = {0};
        lma_status st = lma_buf_append(&b, p, np);
        if (st == LMA_OK) st = lma_buf_append(&b, x, nx);
        if (st == LMA_OK && ne && !(nx >= ne && !memcmp(x + nx - ne, eos, ne))) st = lma_buf_append(&b, eos, ne);
        if (st == LMA_OK) st = lma_tok_encode(tok, b.p ? b.p : "", b.len, 1, &out_ids[which], &out_n[which]);
        lma_buf_free(&b);
        if (st != LMA_OK) return st;
    }
    return LMA_OK;
}

static int is_list(const lma_ex_msg *m, size_t n) { return n > 0 && m[0].json != NULL; }

lma_pref_kind lma_pref_classify(const lma_example *ex, int *implicit) {
    int openai = ex->json && cJSON_GetObjectItemCaseSensitive(ex->json, "input") != NULL;
    int conv = openai || is_list(ex->chosen, ex->n_chosen);
    *implicit = !openai && (ex->n_msgs == 0 || is_list(ex->msgs, ex->n_msgs) != conv);
    return openai ? LMA_PREF_OPENAI : conv ? LMA_PREF_CONVERSATIONAL : LMA_PREF_PLAIN;
}

const char *lma_pref_kind_name(lma_pref_kind k) {
    static const char *const n[] = {"trl_conversational", "trl_plain_text", "openai"};
    return k < LMA_PREF_KIND_COUNT ? n[k] : "?";
}

static lma_status add_pair(lma_pref_set *s, const lma_example *ex, const lma_tokenizer *tok, const lma_pref_params *p,
                           lma_pref_stats *st) {
    if (ex->format != LMA_EXF_PREFERENCE)
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: not a preference record (needs \"chosen\" and \"rejected\", or "
                         "\"preferred_output\" and \"non_preferred_output\")", ex->file, (long long)ex->line);
    if (!ex->n_chosen || !ex->n_rejected)
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: empty chosen or rejected reply", ex->file, (long long)ex->line);
    const lma_ex_msg *pm = ex->msgs, *cm = ex->chosen, *rm = ex->rejected;
    size_t np = ex->n_msgs, nc = ex->n_chosen, nr = ex->n_rejected;
    int implicit = 0, conv = lma_pref_classify(ex, &implicit) != LMA_PREF_PLAIN;
    int32_t *ids[3] = {0};
    size_t n[3] = {0};
    lma_status r;
    if (conv) {
        if (implicit) { /* the common leading messages are the prompt (TRL extract_prompt) */
            size_t k = 0;
            while (k < nc && k < nr && same_msg(&cm[k], &rm[k])) k++;
            pm = cm; np = k; cm += k; nc -= k; rm += k; nr -= k;
        }
        if (!nc || !nr)
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: chosen and rejected do not differ after the prompt", ex->file,
                             (long long)ex->line);
        r = encode_conv(ex, tok, p->template_spec, pm, np, cm, nc, rm, nr, ids, n);
        st->conversational++;
    } else {
        const char *pt = np ? pm[0].text : "", *ct = cm[0].text, *rt = rm[0].text;
        size_t pl = np ? pm[0].len : 0, cl = cm[0].len, rl = rm[0].len;
        if (implicit) { /* the common leading characters, less a trailing space, are the prompt */
            size_t k = 0;
            while (k < cl && k < rl && ct[k] == rt[k]) k++;
            if (k > 0 && k < cl && k < rl && ct[k - 1] == ' ') k--;
            pt = ct; pl = k; ct += k; cl -= k; rt += k; rl -= k;
        }
        r = encode_plain(tok, pt, pl, ct, cl, rt, rl, ids, n);
        if (r != LMA_OK) r = lma_error_replace(r, "%s:%lld: %s", ex->file, (long long)ex->line, lma_last_error());
        st->plain++;
    }
    if (r == LMA_OK) {
        size_t k = common_prefix(ids[0], n[0], ids[1], n[1]), k2 = common_prefix(ids[0], n[0], ids[2], n[2]);
        if (k2 < k) k = k2;
        size_t nx = n[1], ny = n[2], lim = (size_t)p->max_len;
        if (nx > lim || ny > lim) st->truncated++;
        if (nx > lim) nx = lim;
        if (ny > lim) ny = lim;
        if (k >= nx || k >= ny || nx < 2 || ny < 2) st->skipped++; /* no completion token left to score */
        else {
            r = push_pair(s, ids[1], nx, k, ids[2], ny, k);
            st->pairs++;
            st->tokens += nx + ny;
        }
    }
    for (int i = 0; i < 3; i++) free(ids[i]);
    return r;
}

lma_status lma_pref_load(const char *path, const lma_tokenizer *tok, const lma_pref_params *p, lma_pref_set **out,
                         lma_pref_stats *stats) {
    *out = NULL;
    memset(stats, 0, sizeof *stats);
    if (p->max_len < 2) return lma_error(LMA_ERR_ARG, "preference rows need max_len >= 2");
    lma_pref_set *s = lma_calloc(1, sizeof *s, "preference set");
    if (!s) return LMA_ERR_NOMEM;
    lma_ex_reader *r = NULL;
    lma_status st = lma_ex_open(path, &r);
    while (st == LMA_OK) {
        lma_example *ex = NULL;
        st = lma_ex_next(r, &ex);
        if (st != LMA_OK || !ex) break;
        if (ex->error_code) { st = lma_error(LMA_ERR_FORMAT, "%s", ex->error); break; }
        st = add_pair(s, ex, tok, p, stats);
    }
    lma_ex_close(r);
    if (st == LMA_OK && s->n == 0) st = lma_error(LMA_ERR_FORMAT, "%s: no usable preference pairs", path);
    if (st != LMA_OK) { lma_pref_free(s); return st; }
    *out = s;
    return LMA_OK;
}

void lma_pref_free(lma_pref_set *s) {
    if (!s) return;
    free(s->ids); free(s->off); free(s->start); free(s);
}

size_t lma_pref_count(const lma_pref_set *s) { return s->n; }

void lma_pref_row(const lma_pref_set *s, size_t i, int which, const int32_t **ids, size_t *n, size_t *start) {
    size_t r = 2 * i + (which ? 1 : 0);
    *ids = s->ids + s->off[r];
    *n = s->off[r + 1] - s->off[r];
    *start = s->start[r];
}

uint64_t lma_pref_fingerprint(const lma_pref_set *s) {
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *bytes[2] = {(const unsigned char *)s->ids, (const unsigned char *)s->start};
    size_t lens[2] = {(s->n ? s->off[2 * s->n] : 0) * sizeof *s->ids, 2 * s->n * sizeof *s->start};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < lens[k]; i++) { h ^= bytes[k][i]; h *= 1099511628211ULL; }
    h ^= s->n; h *= 1099511628211ULL;
    return h;
}

/* ---- batcher ------------------------------------------------------------------ */

typedef struct { size_t len, pos, id; } len_key;

struct lma_pref_batcher {
    const lma_pref_set *set;
    int B, T, shuffle, single_pass;
    int32_t pad;
    size_t *order; /* (n) this epoch's pair order */
    len_key *key;  /* (n) sorting scratch */
    size_t epoch, pos;
    lma_rng rng;   /* state that ordered this epoch */
    lma_rng next_rng;
};

static size_t pair_len(const lma_pref_set *s, size_t i) {
    size_t a = s->off[2 * i + 1] - s->off[2 * i], b = s->off[2 * i + 2] - s->off[2 * i + 1];
    return a > b ? a : b;
}

static int by_len_desc(const void *a, const void *b) { /* longest first; ties keep their order */
    const len_key *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* o[0..n) sorted by pair length, longest first (stable); key: n scratch entries */
static void sort_window(const lma_pref_set *s, size_t *o, size_t n, len_key *key) {
    for (size_t i = 0; i < n; i++) key[i] = (len_key){pair_len(s, o[i]), i, o[i]};
    qsort(key, n, sizeof *key, by_len_desc);
    for (size_t i = 0; i < n; i++) o[i] = key[i].id;
}

static void make_order(lma_pref_batcher *b) {
    size_t n = b->set->n;
    for (size_t i = 0; i < n; i++) b->order[i] = i;
    lma_rng r = b->rng;
    if (b->shuffle)
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)lma_rng_below(&r, i);
            size_t t = b->order[i - 1]; b->order[i - 1] = b->order[j]; b->order[j] = t;
        }
    size_t w = b->shuffle ? (size_t)64 * b->B : n;
    for (size_t i = 0; i < n; i += w) sort_window(b->set, b->order + i, n - i < w ? n - i : w, b->key);
    b->next_rng = r;
}

lma_status lma_pref_batcher_create(const lma_pref_set *s, int B, int T, int32_t pad_id, uint64_t seed, int shuffle,
                                   int single_pass, lma_pref_batcher **out) {
    *out = NULL;
    if (B < 1 || T < 2) return lma_error(LMA_ERR_ARG, "batch %d pairs x %d: need B >= 1 and T >= 2", B, T);
    lma_pref_batcher *b = lma_calloc(1, sizeof *b, "preference batcher");
    if (!b) return LMA_ERR_NOMEM;
    b->set = s; b->B = B; b->T = T; b->pad = pad_id; b->shuffle = shuffle; b->single_pass = single_pass;
    b->order = lma_calloc(s->n ? s->n : 1, sizeof *b->order, "preference order");
    b->key = lma_calloc(s->n ? s->n : 1, sizeof *b->key, "preference order");
    if (!b->order || !b->key) { lma_pref_batcher_free(b); return LMA_ERR_NOMEM; }
    lma_rng_seed(&b->rng, seed);
    make_order(b);
    *out = b;
    return LMA_OK;
}

void lma_pref_batcher_free(lma_pref_batcher *b) {
    if (!b) return;
    free(b->order); free(b->key); free(b);
}

void lma_pref_batcher_rewind(lma_pref_batcher *b) { b->pos = 0; }

lma_status lma_pref_batcher_next(lma_pref_batcher *b, int32_t *ids, int32_t *targets, int32_t *seg, int64_t *pair,
                                 int *pairs, int *width) {
    const lma_pref_set *s = b->set;
    int T = b->T, filled = 0, wmax = 0;
    for (int i = 0; i < b->B; i++) {
        pair[i] = -1;
        if (b->pos == s->n && !b->single_pass) {
            b->epoch++;
            b->pos = 0;
            b->rng = b->next_rng;
            make_order(b);
        }
        if (b->pos < s->n) { pair[i] = (int64_t)b->order[b->pos++]; filled++; }
        for (int which = 0; which < 2; which++) {
            size_t r = (size_t)2 * i + which, n = 0, k = 0;
            int32_t *ri = ids + r * T, *rt = targets + r * T, *rs = seg ? seg + r * T : NULL;
            const int32_t *src = NULL;
            if (pair[i] >= 0) lma_pref_row(s, (size_t)pair[i], which, &src, &n, &k);
            if (n > (size_t)T) n = (size_t)T;
            if ((int)n > wmax) wmax = (int)n;
            for (size_t t = 0; t < (size_t)T; t++) {
                ri[t] = t < n ? src[t] : b->pad;
                rt[t] = t + 1 < n && t + 1 >= k ? src[t + 1] : -100;
                if (rs) rs[t] = t < n ? 0 : -1;
            }
        }
    }
    *pairs = filled;
    *width = wmax;
    return LMA_OK;
}

lma_status lma_pref_batcher_save(const lma_pref_batcher *b, cJSON **out) {
    return lma_epoch_cursor_save(b->epoch, b->pos, "pairs", b->set->n, &b->rng, out);
}

lma_status lma_pref_batcher_restore(lma_pref_batcher *b, const cJSON *j) {
    LMA_TRY(lma_epoch_cursor_restore(j, "preference data", "pairs", "pairs", b->set->n, &b->epoch, &b->pos, &b->rng));
    make_order(b);
    return LMA_OK;
}
