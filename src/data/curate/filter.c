/* filter: Gopher quality and repetition rules (Rae et al. 2021, as implemented by
 * datatrove's GopherQualityFilter / GopherRepetitionFilter) and C4-style
 * boilerplate phrases. Each rule has its threshold in lma_filter_params. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "core/arena.h"
#include "data/curate/internal.h"

static const char *const default_boilerplate[] = {
    "lorem ipsum", "enable javascript", "javascript is disabled", "javascript must be enabled",
    "enable cookies", "uses cookies", "use of cookies", "cookie policy", "privacy policy",
    "terms of use", "terms of service", "all rights reserved", "click here to",
    "sign up for our newsletter", "as an ai language model", NULL};


void lma_filter_default_params(lma_filter_params *p) {
    memset(p, 0, sizeof *p);
    p->part = LMA_EX_ALL;
    p->min_words = 3; p->max_words = 100000;
    p->min_mean_word_len = 2; p->max_mean_word_len = 10;
    p->max_symbol_ratio = 0.1;
    p->max_bullet_lines = 0.9; p->max_ellipsis_lines = 0.3;
    p->min_alpha_words = 0.8;
    p->min_stop_words = 2;
    p->max_dup_line_frac = 0.3; p->max_dup_para_frac = 0.3;
    p->max_dup_line_chars = 0.2; p->max_dup_para_chars = 0.2;
    p->ngram_min_words = 50;
    p->max_top_ngram[0] = 0.20; p->max_top_ngram[1] = 0.18; p->max_top_ngram[2] = 0.16;
    const double dup[6] = {0.15, 0.14, 0.13, 0.12, 0.11, 0.10};
    memcpy(p->max_dup_ngram, dup, sizeof dup);
    p->boilerplate = NULL;
}

/* A small open-addressing set of 64-bit hashes (0 is remapped), per call. */
typedef struct { uint64_t *k; size_t cap, n; } hset;

static int hset_init(hset *s, size_t expect) {
    size_t cap = 16;
    while (cap < expect * 2 + 2) cap *= 2;
    s->k = calloc(cap, sizeof *s->k); s->cap = cap; s->n = 0;
    return s->k != NULL;
}
/* Returns 1 when h was already there, else inserts it and returns 0. */
static int hset_seen(hset *s, uint64_t h) {
    if (!h) h = 1;
    size_t i = (size_t)(lma_mix64(h) & (s->cap - 1));
    while (s->k[i]) {
        if (s->k[i] == h) return 1;
        i = (i + 1) & (s->cap - 1);
    }
    s->k[i] = h; s->n++;
    return 0;
}

typedef struct { const char *p; size_t n; } span;

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int has_letter(const char *w, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)w[i];
        if (c < 0x80) { if ((c | 32) >= 'a' && (c | 32) <= 'z') return 1; i++; continue; }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)w + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { i++; continue; }
        utf8proc_category_t cat = utf8proc_category(cp);
        if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) return 1;
        i += (size_t)k;
    }
    return 0;
}

static size_t n_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static int stop_word(const char *w, size_t n) {
    static const char *const sw[] = {"the", "be", "to", "of", "and", "that", "have", "with", NULL};
    char low[8];
    if (n > 4 || n < 2) return 0;
    for (size_t i = 0; i < n; i++) low[i] = (char)((w[i] >= 'A' && w[i] <= 'Z') ? w[i] + 32 : w[i]);
    for (int i = 0; sw[i]; i++)
        if (strlen(sw[i]) == n && !memcmp(sw[i], low, n)) return 1;
    return 0;
}

static int fail(lma_filter_verdict *v, const char *rule, double value, double thr) {
    v->rule = rule; v->value = value; v->threshold = thr;
    return 1;
}

/* Duplicate segments separated by `sep` (one or more): lines ("\n") or paragraphs ("\n\n"). */
static int dup_segments(const char *t, size_t n, int para, double *frac, double *chars) {
    hset s;
    if (!hset_init(&s, n / 16 + 8)) return -1;
    size_t segs = 0, dups = 0, dup_chars = 0, i = 0;
    while (i < n) {
        size_t e = i;
        if (para) { while (e < n && !(t[e] == '\n' && e + 1 < n && t[e + 1] == '\n')) e++; }
        else { while (e < n && t[e] != '\n') e++; }
        size_t a = i, b = e;
        while (a < b && is_ws((unsigned char)t[a])) a++;
        while (b > a && is_ws((unsigned char)t[b - 1])) b--;
        if (b > a) {
            segs++;
            if (hset_seen(&s, lma_hash64(t + a, b - a, 3))) { dups++; dup_chars += b - a; }
        }
        i = e;
        while (i < n && t[i] == '\n') i++;
    }
    free(s.k);
    *frac = segs ? (double)dups / (double)segs : 0;
    *chars = n ? (double)dup_chars / (double)n : 0;
    return 0;
}

typedef struct { uint64_t h; uint32_t len; } gram;
static int cmp_gram(const void *a, const void *b) {
    uint64_t x = ((const gram *)a)->h, y = ((const gram *)b)->h;
    return x < y ? -1 : x > y;
}

/* ---- the rules, in the order lma_filter_check applies them ----------------------
 * Each check_* fills the verdict (through fail) when the text breaks its rule; the
 * pure ones return 1 then, the ones that allocate return a status and leave v->rule
 * set. */

/* The whitespace-separated words of a text and the per-word counts the rules use. */
typedef struct {
    span *w; size_t nw;
    size_t chars;    /* characters (UTF-8 code points) in words */
    size_t hashes;   /* '#' characters */
    size_t ellipses; /* "..." and U+2026 inside words */
    size_t alpha;    /* words with a letter */
    size_t stops;    /* stop words */
} word_list;

static lma_status split_words(const char *t, size_t n, word_list *ws) {
    memset(ws, 0, sizeof *ws);
    size_t cap = n / 2 + 1;
    ws->w = lma_malloc(cap * sizeof *ws->w, "filter words");
    if (!ws->w) return LMA_ERR_NOMEM;
    for (size_t i = 0; i < n;) {
        while (i < n && is_ws((unsigned char)t[i])) i++;
        if (i >= n) break;
        size_t s = i;
        while (i < n && !is_ws((unsigned char)t[i])) i++;
        ws->w[ws->nw].p = t + s; ws->w[ws->nw].n = i - s;
        ws->chars += n_chars(t + s, i - s);
        for (size_t j = s; j < i; j++) {
            ws->hashes += t[j] == '#';
            if (j + 3 <= i && !memcmp(t + j, "...", 3)) { ws->ellipses++; j += 2; }
            else if (j + 3 <= i && !memcmp(t + j, "\xE2\x80\xA6", 3)) { ws->ellipses++; j += 2; }
        }
        ws->alpha += has_letter(t + s, i - s);
        ws->stops += stop_word(t + s, i - s);
        ws->nw++;
    }
    return LMA_OK;
}

/* Rejects a text containing a boilerplate phrase (case-insensitive substring). */
static lma_status check_boilerplate(const lma_filter_params *p, const char *t, size_t n, lma_filter_verdict *v) {
    const char *const *bp = p->boilerplate ? p->boilerplate : default_boilerplate;
    if (!bp[0]) return LMA_OK;
    char *low = lma_malloc(n + 1, "filter text");
    if (!low) return LMA_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) low[i] = (char)((t[i] >= 'A' && t[i] <= 'Z') ? t[i] + 32 : t[i]);
    low[n] = 0;
    for (int i = 0; bp[i]; i++) {
        size_t k = strlen(bp[i]);
        if (k && k <= n && memmem(low, n, bp[i], k)) {
            fail(v, "boilerplate", 1, 0);
            snprintf(v->detail, sizeof v->detail, "%s", bp[i]);
            break;
        }
    }
    free(low);
    return LMA_OK;
}

/* Rejects too few or too many words. */
static int check_word_count(const lma_filter_params *p, const word_list *ws, lma_filter_verdict *v) {
    if ((int)ws->nw < p->min_words) return fail(v, "min_words", (double)ws->nw, p->min_words);
    if ((int)ws->nw > p->max_words) return fail(v, "max_words", (double)ws->nw, p->max_words);
    return 0;
}

/* Rejects a mean word length (in characters) outside [min, max]. */
static int check_mean_word_len(const lma_filter_params *p, const word_list *ws, lma_filter_verdict *v) {
    double mean = ws->nw ? (double)ws->chars / (double)ws->nw : 0;
    if (mean < p->min_mean_word_len) return fail(v, "min_mean_word_len", mean, p->min_mean_word_len);
    if (mean > p->max_mean_word_len) return fail(v, "max_mean_word_len", mean, p->max_mean_word_len);
    return 0;
}

/* Rejects too many '#' or ellipses per word. */
static int check_symbol_ratios(const lma_filter_params *p, const word_list *ws, lma_filter_verdict *v) {
    if ((double)ws->hashes / (double)ws->nw > p->max_symbol_ratio)
        return fail(v, "hash_symbol_ratio", (double)ws->hashes / (double)ws->nw, p->max_symbol_ratio);
    if ((double)ws->ellipses / (double)ws->nw > p->max_symbol_ratio)
        return fail(v, "ellipsis_ratio", (double)ws->ellipses / (double)ws->nw, p->max_symbol_ratio);
    return 0;
}

/* Rejects too many non-blank lines that start with a bullet or end in an ellipsis. */
static int check_line_shapes(const lma_filter_params *p, const char *t, size_t n, lma_filter_verdict *v) {
    size_t lines = 0, bullets = 0, ell_lines = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && t[e] != '\n') e++;
        size_t a = i, b = e;
        while (a < b && is_ws((unsigned char)t[a])) a++;
        while (b > a && is_ws((unsigned char)t[b - 1])) b--;
        if (b > a) {
            lines++;
            const char *l = t + a; size_t ln = b - a;
            if (l[0] == '-' || l[0] == '*' || (ln >= 3 && (!memcmp(l, "\xE2\x80\xA2", 3) || !memcmp(l, "\xE2\x80\xA3", 3) ||
                                                          !memcmp(l, "\xE2\x96\xAA", 3))) || (ln >= 2 && !memcmp(l, "\xC2\xB7", 2)))
                bullets++;
            if ((ln >= 3 && !memcmp(l + ln - 3, "...", 3)) || (ln >= 3 && !memcmp(l + ln - 3, "\xE2\x80\xA6", 3))) ell_lines++;
        }
        i = e + 1;
    }
    if (lines && (double)bullets / (double)lines > p->max_bullet_lines)
        return fail(v, "bullet_lines", (double)bullets / (double)lines, p->max_bullet_lines);
    if (lines && (double)ell_lines / (double)lines > p->max_ellipsis_lines)
        return fail(v, "ellipsis_lines", (double)ell_lines / (double)lines, p->max_ellipsis_lines);
    return 0;
}

/* Rejects too small a share of words containing a letter. */
static int check_alpha_words(const lma_filter_params *p, const word_list *ws, lma_filter_verdict *v) {
    double alpha_frac = (double)ws->alpha / (double)ws->nw;
    return alpha_frac < p->min_alpha_words ? fail(v, "alpha_words", alpha_frac, p->min_alpha_words) : 0;
}

/* Rejects too few stop words (the be to of and that have with). */
static int check_stop_words(const lma_filter_params *p, const word_list *ws, lma_filter_verdict *v) {
    return (int)ws->stops < p->min_stop_words ? fail(v, "stop_words", (double)ws->stops, p->min_stop_words) : 0;
}

/* Rejects too many duplicated lines, by count and then by characters. */
static lma_status check_dup_lines(const lma_filter_params *p, const char *t, size_t n, lma_filter_verdict *v) {
    double f, c;
    if (dup_segments(t, n, 0, &f, &c)) return lma_error(LMA_ERR_NOMEM, "filter: out of memory");
    if (f > p->max_dup_line_frac) fail(v, "dup_line_frac", f, p->max_dup_line_frac);
    else if (c > p->max_dup_line_chars) fail(v, "dup_line_chars", c, p->max_dup_line_chars);
    return LMA_OK;
}

/* Rejects too many duplicated paragraphs, by count and then by characters. */
static lma_status check_dup_paras(const lma_filter_params *p, const char *t, size_t n, lma_filter_verdict *v) {
    double f, c;
    if (dup_segments(t, n, 1, &f, &c)) return lma_error(LMA_ERR_NOMEM, "filter: out of memory");
    if (f > p->max_dup_para_frac) fail(v, "dup_para_frac", f, p->max_dup_para_frac);
    else if (c > p->max_dup_para_chars) fail(v, "dup_para_chars", c, p->max_dup_para_chars);
    return LMA_OK;
}

/* Rejects a most frequent 2-, 3- or 4-gram covering too large a share of the characters
 * (characters of the n-gram, words joined by spaces, times its count). wh: word hashes;
 * g: room for nw n-grams. */
static int check_top_ngrams(const lma_filter_params *p, size_t n, const word_list *ws, const uint64_t *wh, gram *g,
                            lma_filter_verdict *v) {
    static const char *names[3] = {"top_2gram_chars", "top_3gram_chars", "top_4gram_chars"};
    const span *w = ws->w;
    size_t nw = ws->nw;
    for (int k = 2; k <= 4; k++) {
        if (nw < (size_t)k) break;
        size_t m = nw - (size_t)k + 1;
        for (size_t i = 0; i < m; i++) {
            g[i].h = lma_ngram_hash(wh + i, (size_t)k);
            size_t len = (size_t)k - 1;
            for (int j = 0; j < k; j++) len += w[i + (size_t)j].n;
            g[i].len = (uint32_t)len;
        }
        qsort(g, m, sizeof *g, cmp_gram);
        size_t best = 0;
        for (size_t i = 0; i < m;) {
            size_t j = i;
            while (j < m && g[j].h == g[i].h) j++;
            size_t cnt = j - i;
            if (cnt > 1 && cnt * g[i].len > best) best = cnt * g[i].len;
            i = j;
        }
        double frac = (double)best / (double)n;
        if (frac > p->max_top_ngram[k - 2]) return fail(v, names[k - 2], frac, p->max_top_ngram[k - 2]);
    }
    return 0;
}

/* Rejects repeated 5..10-grams covering too large a share of the characters (words
 * concatenated, each repeat counted once, scanning on past it). s: a set of nw slots. */
static int check_dup_ngrams(const lma_filter_params *p, size_t n, const word_list *ws, const uint64_t *wh, hset *s,
                            lma_filter_verdict *v) {
    static const char *names[6] = {"dup_5gram_chars", "dup_6gram_chars", "dup_7gram_chars",
                                   "dup_8gram_chars", "dup_9gram_chars", "dup_10gram_chars"};
    const span *w = ws->w;
    size_t nw = ws->nw;
    for (int k = 5; k <= 10 && nw >= (size_t)k; k++) {
        memset(s->k, 0, s->cap * sizeof *s->k); s->n = 0;
        size_t rep = 0, i = 0;
        while (i + (size_t)k <= nw) {
            if (hset_seen(s, lma_ngram_hash(wh + i, (size_t)k))) {
                for (int j = 0; j < k; j++) rep += w[i + (size_t)j].n;
                i += (size_t)k;
            } else i++;
        }
        double frac = (double)rep / (double)n;
        if (frac > p->max_dup_ngram[k - 5]) return fail(v, names[k - 5], frac, p->max_dup_ngram[k - 5]);
    }
    return 0;
}

/* The n-gram rules (texts of at least ngram_min_words words): the top 2/3/4-gram
 * rules, then the duplicated 5..10-gram rules, over one set of word hashes. */
static lma_status check_ngrams(const lma_filter_params *p, size_t n, const word_list *ws, lma_filter_verdict *v) {
    size_t nw = ws->nw;
    if (nw < 2 || (int)nw < p->ngram_min_words) return LMA_OK;
    uint64_t *wh = lma_malloc(nw * sizeof *wh, "filter word hashes");
    gram *g = lma_malloc(nw * sizeof *g, "filter n-grams");
    hset s = {0};
    lma_status st = LMA_OK;
    if (!wh || !g || !hset_init(&s, nw)) { st = LMA_ERR_NOMEM; lma_error(st, "filter: out of memory"); goto done; }
    for (size_t i = 0; i < nw; i++) wh[i] = lma_hash64(ws->w[i].p, ws->w[i].n, 11);
    if (!check_top_ngrams(p, n, ws, wh, g, v)) check_dup_ngrams(p, n, ws, wh, &s, v);
done:
    free(wh); free(g); free(s.k);
    return st;
}

/* Applies the rules in order; the first one broken is the verdict (v->rule NULL: kept). */
lma_status lma_filter_check(const lma_filter_params *p, const char *t, size_t n, lma_filter_verdict *v) {
    memset(v, 0, sizeof *v);
    LMA_TRY(check_boilerplate(p, t, n, v));
    if (v->rule) return LMA_OK;
    word_list ws;
    LMA_TRY(split_words(t, n, &ws));
    lma_status st = LMA_OK;
    if (check_word_count(p, &ws, v) || check_mean_word_len(p, &ws, v) || check_symbol_ratios(p, &ws, v) ||
        check_line_shapes(p, t, n, v) || check_alpha_words(p, &ws, v) || check_stop_words(p, &ws, v))
        goto done;
    if ((st = check_dup_lines(p, t, n, v)) || v->rule) goto done;
    if ((st = check_dup_paras(p, t, n, v)) || v->rule) goto done;
    st = check_ngrams(p, n, &ws, v);
done:
    free(ws.w);
    return st;
}

/* ---- file driver ------------------------------------------------------------ */


lma_status lma_data_filter(const char *in, const lma_filter_file_params *p, cJSON **out) {
    *out = NULL;
    lma_curate_sieve sv;
    LMA_TRY(lma_curate_sieve_open(&sv, "filter", in, p->out_path, p->removed_path, p->report_path));
    lma_ex_reader *r = NULL;
    lma_curate_batch *batch = calloc(1, sizeof *batch);
    lma_filter_verdict *vs = calloc(LMA_CURATE_BATCH, sizeof *vs);
    cJSON *reasons = cJSON_CreateObject();
    lma_status st = (batch && vs && reasons) ? LMA_OK : lma_error(LMA_ERR_NOMEM, "filter: out of memory");
    if (!st) st = lma_ex_open(in, &r);
    while (!st) {
        if ((st = lma_curate_batch_read(r, p->filter.part ? p->filter.part : LMA_EX_ALL, batch, lma_curate_on_bad, &sv.bad)) || !batch->n) break;
        lma_status ps = LMA_OK;
        #pragma omp parallel for schedule(dynamic, 16)
        for (size_t i = 0; i < batch->n; i++) {
            lma_status s1 = lma_filter_check(&p->filter, batch->text[i].p, batch->text[i].len, &vs[i]);
            if (s1) {
                #pragma omp critical
                ps = s1;
            }
        }
        if ((st = ps)) break;
        for (size_t i = 0; i < batch->n && !st; i++) {
            if (!vs[i].rule) { st = lma_curate_sieve_keep(&sv, &batch->line[i]); continue; }
            lma_curate_count(reasons, vs[i].rule, 1);
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddNumberToObject(o, "line", (double)batch->lineno[i]);
                cJSON_AddStringToObject(o, "reason", vs[i].rule);
                cJSON_AddNumberToObject(o, "value", vs[i].value);
                cJSON_AddNumberToObject(o, "threshold", vs[i].threshold);
                if (vs[i].detail[0]) cJSON_AddStringToObject(o, "detail", vs[i].detail);
            }
            st = lma_curate_sieve_drop(&sv, o, &batch->line[i]);
        }
    }
    cJSON *summary = NULL;
    if (!st && !(summary = cJSON_CreateObject())) st = lma_error(LMA_ERR_NOMEM, "filter: out of memory");
    if (!st) {
        cJSON_AddItemToObject(summary, "reasons", reasons);
        reasons = NULL;
        st = lma_curate_sieve_close(&sv, summary);
    }
    cJSON_Delete(reasons);
    lma_curate_sieve_abort(&sv);
    lma_ex_close(r);
    free(vs);
    if (batch) { lma_curate_batch_free(batch); free(batch); }
    if (st) { cJSON_Delete(summary); return st; }
    *out = summary;
    return LMA_OK;
}
