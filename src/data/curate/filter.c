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

lma_status lma_filter_check(const lma_filter_params *p, const char *t, size_t n, lma_filter_verdict *v) {
    memset(v, 0, sizeof *v);
    /* boilerplate (case-insensitive substring, on a lower-cased copy) */
    const char *const *bp = p->boilerplate ? p->boilerplate : default_boilerplate;
    if (bp[0]) {
        char *low = lma_malloc(n + 1, "filter text");
        if (!low) return LMA_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) low[i] = (char)((t[i] >= 'A' && t[i] <= 'Z') ? t[i] + 32 : t[i]);
        low[n] = 0;
        for (int i = 0; bp[i]; i++) {
            size_t k = strlen(bp[i]);
            if (k && k <= n && memmem(low, n, bp[i], k)) {
                fail(v, "boilerplate", 1, 0);
                snprintf(v->detail, sizeof v->detail, "%s", bp[i]);
                free(low);
                return LMA_OK;
            }
        }
        free(low);
    }
    /* words */
    size_t nw = 0, cap = n / 2 + 1;
    span *w = lma_malloc(cap * sizeof *w, "filter words");
    if (!w) return LMA_ERR_NOMEM;
    size_t chars = 0, hashes = 0, ellipses = 0, alpha = 0, stops = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_ws((unsigned char)t[i])) i++;
        if (i >= n) break;
        size_t s = i;
        while (i < n && !is_ws((unsigned char)t[i])) i++;
        w[nw].p = t + s; w[nw].n = i - s;
        chars += n_chars(t + s, i - s);
        for (size_t j = s; j < i; j++) {
            hashes += t[j] == '#';
            if (j + 3 <= i && !memcmp(t + j, "...", 3)) { ellipses++; j += 2; }
            else if (j + 3 <= i && !memcmp(t + j, "\xE2\x80\xA6", 3)) { ellipses++; j += 2; }
        }
        alpha += has_letter(t + s, i - s);
        stops += stop_word(t + s, i - s);
        nw++;
    }
    int failed = 0;
    double mean = nw ? (double)chars / (double)nw : 0;
    if ((int)nw < p->min_words) failed = fail(v, "min_words", (double)nw, p->min_words);
    else if ((int)nw > p->max_words) failed = fail(v, "max_words", (double)nw, p->max_words);
    else if (mean < p->min_mean_word_len) failed = fail(v, "min_mean_word_len", mean, p->min_mean_word_len);
    else if (mean > p->max_mean_word_len) failed = fail(v, "max_mean_word_len", mean, p->max_mean_word_len);
    else if ((double)hashes / (double)nw > p->max_symbol_ratio) failed = fail(v, "hash_symbol_ratio", (double)hashes / (double)nw, p->max_symbol_ratio);
    else if ((double)ellipses / (double)nw > p->max_symbol_ratio) failed = fail(v, "ellipsis_ratio", (double)ellipses / (double)nw, p->max_symbol_ratio);
    if (!failed) {
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
        double alpha_frac = (double)alpha / (double)nw;
        if (lines && (double)bullets / (double)lines > p->max_bullet_lines) failed = fail(v, "bullet_lines", (double)bullets / (double)lines, p->max_bullet_lines);
        else if (lines && (double)ell_lines / (double)lines > p->max_ellipsis_lines) failed = fail(v, "ellipsis_lines", (double)ell_lines / (double)lines, p->max_ellipsis_lines);
        else if (alpha_frac < p->min_alpha_words) failed = fail(v, "alpha_words", alpha_frac, p->min_alpha_words);
        else if ((int)stops < p->min_stop_words) failed = fail(v, "stop_words", (double)stops, p->min_stop_words);
    }
    lma_status st = LMA_OK;
    if (!failed) {
        double f, c;
        if (dup_segments(t, n, 0, &f, &c)) { st = lma_error(LMA_ERR_NOMEM, "filter: out of memory"); goto done; }
        if (f > p->max_dup_line_frac) failed = fail(v, "dup_line_frac", f, p->max_dup_line_frac);
        else if (c > p->max_dup_line_chars) failed = fail(v, "dup_line_chars", c, p->max_dup_line_chars);
        if (!failed) {
            if (dup_segments(t, n, 1, &f, &c)) { st = lma_error(LMA_ERR_NOMEM, "filter: out of memory"); goto done; }
            if (f > p->max_dup_para_frac) failed = fail(v, "dup_para_frac", f, p->max_dup_para_frac);
            else if (c > p->max_dup_para_chars) failed = fail(v, "dup_para_chars", c, p->max_dup_para_chars);
        }
    }
    if (!failed && nw >= 2 && (int)nw >= p->ngram_min_words) {
        uint64_t *wh = lma_malloc(nw * sizeof *wh, "filter word hashes");
        gram *g = lma_malloc(nw * sizeof *g, "filter n-grams");
        hset s = {0};
        if (!wh || !g || !hset_init(&s, nw)) { free(wh); free(g); free(s.k); st = LMA_ERR_NOMEM; lma_error(st, "filter: out of memory"); goto done; }
        for (size_t i = 0; i < nw; i++) wh[i] = lma_hash64(w[i].p, w[i].n, 11);
        /* top 2/3/4-gram: characters of the n-gram (words joined by spaces) x count */
        for (int k = 2; k <= 4 && !failed; k++) {
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
            if (frac > p->max_top_ngram[k - 2]) {
                static const char *names[3] = {"top_2gram_chars", "top_3gram_chars", "top_4gram_chars"};
                failed = fail(v, names[k - 2], frac, p->max_top_ngram[k - 2]);
            }
        }
        /* duplicated 5..10-grams: characters (words concatenated) of repeats */
        for (int k = 5; k <= 10 && !failed && nw >= (size_t)k; k++) {
            memset(s.k, 0, s.cap * sizeof *s.k); s.n = 0;
            size_t rep = 0, i = 0;
            while (i + (size_t)k <= nw) {
                if (hset_seen(&s, lma_ngram_hash(wh + i, (size_t)k))) {
                    for (int j = 0; j < k; j++) rep += w[i + (size_t)j].n;
                    i += (size_t)k;
                } else i++;
            }
            double frac = (double)rep / (double)n;
            if (frac > p->max_dup_ngram[k - 5]) {
                static const char *names[6] = {"dup_5gram_chars", "dup_6gram_chars", "dup_7gram_chars",
                                               "dup_8gram_chars", "dup_9gram_chars", "dup_10gram_chars"};
                failed = fail(v, names[k - 5], frac, p->max_dup_ngram[k - 5]);
            }
        }
        free(wh); free(g); free(s.k);
    }
done:
    free(w);
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
