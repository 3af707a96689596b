/* The answer prompt and answer metrics (ask.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "rag/ask.h"
#include "tok/chat_template.h"

static const char *instruction =
    "Answer the question using only the numbered sources below. Cite the sources you use as [n]. "
    "If the sources do not contain the answer, say so.";

/* the user message with sources 0..n-1 (the last cut to last_len bytes) */
static lma_status message(lma_buf *b, const char *question, const lma_rag_source *src, size_t n, size_t last_len) {
    b->len = 0;
    if (b->p) b->p[0] = 0;
    if (n) {
        lma_buf_printf(b, "%s\n\nSources:\n", instruction);
        for (size_t i = 0; i < n; i++) {
            size_t len = i + 1 == n ? last_len : strlen(src[i].text);
            lma_buf_printf(b, "[%zu] (%s) %.*s\n\n", i + 1, src[i].label ? src[i].label : "", (int)len, src[i].text);
        }
        lma_buf_printf(b, "Question: %s", question);
    } else {
        lma_buf_str(b, question);
    }
    return b->st;
}

lma_status lma_rag_user_message(const char *question, const lma_rag_source *src, size_t n, size_t last_len, char **out) {
    lma_buf b = {0};
    *out = NULL;
    lma_status r = message(&b, question, src, n, last_len);
    if (r) { lma_buf_free(&b); return r; }
    *out = b.p ? b.p : strdup("");
    return *out ? LMA_OK : lma_error(LMA_ERR_NOMEM, "rag: out of memory");
}

static lma_status render(const lma_tokenizer *tok, const char *tmpl, const char *system, lma_buf *user, int32_t **ids,
                         size_t *n_ids) {
    lma_chat_msg msgs[2];
    size_t nm = 0;
    if (system) msgs[nm++] = (lma_chat_msg){"system", system};
    msgs[nm++] = (lma_chat_msg){"user", user->p};
    size_t *spans = NULL, nsp = 0;
    lma_status r = lma_chat_encode(tok, tmpl, msgs, nm, 1, ids, n_ids, &spans, &nsp);
    free(spans);
    return r;
}

/* tokens of the prompt with sources 0..n-1, the last cut to last_len */
static lma_status try_len(const lma_tokenizer *tok, const char *tmpl, const char *system, const char *question,
                          const lma_rag_source *src, size_t n, size_t last_len, lma_buf *b, size_t *tokens) {
    int32_t *ids = NULL;
    LMA_TRY(message(b, question, src, n, last_len));
    LMA_TRY(render(tok, tmpl, system, b, &ids, tokens));
    free(ids);
    return LMA_OK;
}

lma_status lma_rag_prompt(const lma_tokenizer *tok, const char *tmpl, const char *system, const char *question,
                          const lma_rag_source *src, size_t n_src, size_t budget, int32_t **ids, size_t *n_ids,
                          size_t *n_used, size_t *last_len) {
    *ids = NULL, *n_ids = 0, *n_used = 0, *last_len = 0;
    lma_buf b = {0};
    size_t t = 0, used = 0, keep = 0;
    lma_status r = try_len(tok, tmpl, system, question, src, 0, 0, &b, &t);
    if (!r && t > budget)
        r = lma_error(LMA_ERR_ARG, "the question alone takes %zu tokens, over the prompt budget of %zu", t, budget);
    for (size_t i = 0; !r && i < n_src; i++) {
        size_t len = strlen(src[i].text);
        r = try_len(tok, tmpl, system, question, src, i + 1, len, &b, &t);
        if (r) break;
        if (t <= budget) { used = i + 1, keep = len; continue; }
        /* the longest word-boundary prefix that fits: binary search on bytes */
        size_t base;
        r = try_len(tok, tmpl, system, question, src, i + 1, 0, &b, &base);
        if (r || base + 16 > budget) break;
        size_t lo = 0, hi = len;
        while (!r && hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            while (mid > lo && !isspace((unsigned char)src[i].text[mid])) mid--; /* back to a space */
            if (mid == lo) break;
            r = try_len(tok, tmpl, system, question, src, i + 1, mid, &b, &t);
            if (!r && t <= budget) lo = mid;
            else hi = mid;
        }
        if (!r && lo > 0) used = i + 1, keep = lo;
        break;
    }
    if (!r) r = message(&b, question, src, used, keep);
    if (!r) r = render(tok, tmpl, system, &b, ids, n_ids);
    if (!r && *n_ids > budget) { /* cannot happen: every step was measured */
        free(*ids), *ids = NULL;
        r = lma_error(LMA_ERR_INTERNAL, "prompt of %zu tokens over its budget %zu", *n_ids, budget);
    }
    if (!r) *n_used = used, *last_len = keep;
    lma_buf_free(&b);
    return r;
}

lma_status lma_rag_retrieve_prompt(lma_rag_store *s, lma_rag_searcher *sr, const lma_rag_search_params *sp,
                                   const lma_tokenizer *tok, const char *tmpl, const char *system, const char *question,
                                   size_t budget, lma_rag_chunk_row *rows, double *scores, int *n_rows, int32_t **ids,
                                   size_t *n_ids, size_t *n_used) {
    *n_rows = 0, *ids = NULL, *n_ids = 0, *n_used = 0;
    lma_rag_hit *hits = malloc((size_t)sp->k * sizeof *hits);
    lma_rag_source *src = malloc((size_t)sp->k * sizeof *src);
    lma_status r = hits && src ? LMA_OK : lma_error(LMA_ERR_NOMEM, "rag: out of memory");
    int n = 0;
    if (!r && sr) r = lma_rag_search(sr, question, sp, hits, &n);
    for (int i = 0; !r && i < n; i++) {
        r = s->ops->chunk_get(s, hits[i].id, &rows[i]);
        if (!r) src[i] = (lma_rag_source){rows[i].doc_id, rows[i].text}, scores[i] = hits[i].score, (*n_rows)++;
    }
    size_t last = 0;
    if (!r) r = lma_rag_prompt(tok, tmpl, system, question, src, (size_t)*n_rows, budget, ids, n_ids, n_used, &last);
    free(hits), free(src);
    return r;
}

/* SQuAD normalize: lower, drop punctuation, drop articles, collapse spaces -> words */
static size_t words(const char *s, char ***out) {
    size_t n = strlen(s), nw = 0, cap = 0;
    char *t = malloc(n + 1), *w = t;
    *out = NULL;
    if (!t) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && ispunct(c)) continue;
        *w++ = (char)(c < 0x80 ? tolower(c) : c);
    }
    *w = 0;
    char **v = NULL;
    char *save = NULL;
    for (char *p = strtok_r(t, " \t\n\r", &save); p; p = strtok_r(NULL, " \t\n\r", &save)) {
        if (!strcmp(p, "a") || !strcmp(p, "an") || !strcmp(p, "the")) continue;
        if (lma_grow(&v, &cap, nw + 1, sizeof *v, 8, "words")) break;
        v[nw++] = strdup(p);
    }
    free(t);
    *out = v;
    return nw;
}
static void words_free(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

double lma_rag_exact_match(const char *pred, const char *const *gold, size_t n_gold) {
    char **p;
    size_t np = words(pred, &p);
    double best = 0;
    for (size_t g = 0; g < n_gold; g++) {
        char **q;
        size_t nq = words(gold[g], &q);
        int eq = np == nq;
        for (size_t i = 0; eq && i < np; i++) eq = !strcmp(p[i], q[i]);
        if (eq) best = 1;
        words_free(q, nq);
    }
    words_free(p, np);
    return best;
}

double lma_rag_f1(const char *pred, const char *const *gold, size_t n_gold) {
    char **p;
    size_t np = words(pred, &p);
    double best = 0;
    for (size_t g = 0; g < n_gold; g++) {
        char **q;
        size_t nq = words(gold[g], &q);
        char *used = calloc(nq ? nq : 1, 1);
        size_t common = 0;
        for (size_t i = 0; used && i < np; i++)
            for (size_t j = 0; j < nq; j++)
                if (!used[j] && !strcmp(p[i], q[j])) { used[j] = 1, common++; break; }
        if (common) {
            double pr = (double)common / np, rc = (double)common / nq, f = 2 * pr * rc / (pr + rc);
            if (f > best) best = f;
        }
        free(used);
        words_free(q, nq);
    }
    words_free(p, np);
    return best;
}

uint64_t lma_rag_citations(const char *s) {
    uint64_t m = 0;
    for (const char *p = strchr(s, '['); p; p = strchr(p + 1, '[')) {
        char *e;
        long n = strtol(p + 1, &e, 10);
        if (e != p + 1 && *e == ']' && n >= 1 && n <= 64) m |= 1ull << (n - 1);
    }
    return m;
}

cJSON *lma_rag_sources_json(const lma_rag_chunk_row *rows, const double *scores, size_t n) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", (double)i + 1);
        cJSON_AddStringToObject(o, "doc_id", rows[i].doc_id);
        cJSON_AddNumberToObject(o, "chunk", rows[i].seq);
        cJSON_AddNumberToObject(o, "score", scores[i]);
        cJSON_AddStringToObject(o, "path", rows[i].path);
        cJSON_AddStringToObject(o, "text", rows[i].text);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
