#include "eval/gencheck.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eval/mmlu.h"

static const char *const check_names[LMA_CHECK_COUNT] = {"exact", "number", "json", "yaml"};

const char *lma_gen_check_name(lma_gen_check c) { return (unsigned)c < LMA_CHECK_COUNT ? check_names[c] : "?"; }

int lma_gen_check_from_name(const char *name) {
    for (int i = 0; i < LMA_CHECK_COUNT; i++) if (!strcmp(name, check_names[i])) return i;
    return -1;
}

static int isdig(char c) { return c >= '0' && c <= '9'; }

/* parses a number starting at s[i] (a digit, or '-'/'.' followed by a digit); returns end */
static size_t scan_number(const char *s, size_t len, size_t i, double *out) {
    char buf[128];
    size_t k = 0, j = i;
    if (s[j] == '-') buf[k++] = s[j++];
    int seen_dot = 0;
    while (j < len && k < sizeof buf - 1) {
        char c = s[j];
        if (isdig(c)) buf[k++] = c;
        else if (c == ',' && j + 1 < len && isdig(s[j + 1]) && k > 0 && isdig(buf[k - 1])) { /* thousands */ }
        else if (c == '.' && !seen_dot && j + 1 < len && isdig(s[j + 1])) { seen_dot = 1; buf[k++] = c; }
        else break;
        j++;
    }
    buf[k] = 0;
    *out = strtod(buf, NULL);
    return j;
}

static int number_starts(const char *s, size_t len, size_t i) {
    if (isdig(s[i])) return 1;
    if ((s[i] == '-' || s[i] == '.') && i + 1 < len && isdig(s[i + 1])) return 1;
    if (s[i] == '-' && i + 2 < len && s[i + 1] == '.' && isdig(s[i + 2])) return 1;
    return 0;
}

int lma_extract_number(const char *text, size_t len, double *out) {
    size_t from = 0;
    for (size_t i = 0; i + 4 <= len; i++)
        if (!memcmp(text + i, "####", 4)) from = i + 4;
    int after_marker = from > 0, found = 0;
    for (size_t i = from; i < len;) {
        if (number_starts(text, len, i)) {
            /* a '-' glued to a word ("x-3") is a hyphen, not a sign */
            size_t st = i;
            if (text[i] == '-' && i > from && isalnum((unsigned char)text[i - 1])) st = i + 1;
            double v;
            i = scan_number(text, len, st, &v);
            *out = v; found = 1;
            if (after_marker) return 1; /* the first number after "####" */
        } else {
            i++;
        }
    }
    return found;
}

int lma_gen_check_exact(const char *out, size_t len, const char *answer) {
    size_t b, e, ab, ae;
    lma_py_strip(out, len, &b, &e);
    lma_py_strip(answer, strlen(answer), &ab, &ae);
    return e - b == ae - ab && !memcmp(out + b, answer + ab, e - b);
}

int lma_gen_check_number(const char *out, size_t len, const char *answer) {
    double a, r;
    if (!lma_extract_number(answer, strlen(answer), &r) || !lma_extract_number(out, len, &a)) return 0;
    return fabs(a - r) <= 1e-9 * fmax(1.0, fabs(r));
}

/* strip + remove a ``` fence (with an optional language word) */
void lma_gen_unfence(const char *s, size_t len, size_t *b, size_t *e) {
    lma_py_strip(s, len, b, e);
    if (*e - *b >= 6 && !memcmp(s + *b, "```", 3) && !memcmp(s + *e - 3, "```", 3)) {
        size_t i = *b + 3;
        while (i < *e - 3 && s[i] != '\n') i++;
        size_t nb = i, ne = *e - 3;
        if (nb >= ne) return;
        size_t sb, se;
        lma_py_strip(s + nb, ne - nb, &sb, &se);
        *e = nb + se; *b = nb + sb;
    }
}

int lma_gen_check_json(const char *out, size_t len, const char *const *keys, size_t n_keys, int *valid) {
    size_t b, e;
    lma_gen_unfence(out, len, &b, &e);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(out + b, e - b, &end, 0);
    *valid = j && end == out + e;
    int ok = *valid;
    for (size_t k = 0; ok && k < n_keys; k++)
        ok = cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, keys[k]) != NULL;
    cJSON_Delete(j);
    return ok;
}

int lma_gen_check_json_fields(const char *out, size_t len, const char *want, int *valid) {
    cJSON *w = cJSON_Parse(want);
    *valid = -1;
    if (!cJSON_IsObject(w)) { cJSON_Delete(w); return 0; }
    const char *keys[64];
    size_t nk = 0;
    for (const cJSON *f = w->child; f && nk < 64; f = f->next) keys[nk++] = f->string;
    int v = 0;
    lma_gen_check_json(out, len, keys, nk, &v);
    *valid = v && lma_gen_check_json(out, len, keys, nk, &v);
    const char *brace = memchr(out, '{', len);
    cJSON *first = brace ? cJSON_ParseWithLengthOpts(brace, len - (size_t)(brace - out), NULL, 0) : NULL;
    int ok = cJSON_IsObject(first);
    for (const cJSON *f = w->child; ok && f; f = f->next) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(first, f->string);
        ok = g && cJSON_Compare(g, f, 1);
    }
    cJSON_Delete(first);
    cJSON_Delete(w);
    return ok;
}

/* brackets of a flow collection balance on one line (quotes respected) */
static int flow_balanced(const char *s, size_t n) {
    int depth = 0;
    char q = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (q) { if (c == q) q = 0; continue; }
        if (c == '"' || c == '\'') q = c;
        else if (c == '[' || c == '{') depth++;
        else if (c == ']' || c == '}') { if (--depth < 0) return 0; }
        else if (c == '#' && i > 0 && s[i - 1] == ' ') break;
    }
    return depth == 0 && !q;
}

int lma_gen_check_yaml(const char *out, size_t len, const char *const *keys, size_t n_keys, int *valid) {
    size_t b, e;
    lma_gen_unfence(out, len, &b, &e);
    const char *s = out + b;
    size_t n = e - b;
    char found[64] = {0};
    int n_top = 0, ok = 1;
    for (size_t i = 0; ok && i < n;) {
        size_t j = i;
        while (j < n && s[j] != '\n') j++;
        size_t le = j;
        if (le > i && s[le - 1] == '\r') le--;
        const char *l = s + i;
        size_t ll = le - i, ind = 0;
        while (ind < ll && l[ind] == ' ') ind++;
        if (ind < ll && l[ind] == '\t') ok = 0;                    /* tabs may not indent */
        else if (ind == ll || l[ind] == '#') { /* blank or comment */ }
        else if (ind == 0 && ll >= 3 && !memcmp(l, "---", 3) && n_top == 0) { /* document start */ }
        else if (ind > 0) { if (n_top == 0) ok = 0; }              /* nested under a key */
        else {
            /* key: value */
            size_t k = 0, ks, ke;
            if (l[0] == '"' || l[0] == '\'') {
                char q = l[0];
                k = 1;
                while (k < ll && l[k] != q) k++;
                if (k >= ll) { ok = 0; break; }
                ks = 1; ke = k; k++;
                if (k >= ll || l[k] != ':') { ok = 0; break; }
            } else {
                if (strchr("-?[]{},&*!|>%@`", l[0])) { ok = 0; break; }
                while (k < ll && !(l[k] == ':' && (k + 1 == ll || l[k + 1] == ' '))) k++;
                if (k >= ll) { ok = 0; break; }
                ks = 0; ke = k;
                while (ke > ks && l[ke - 1] == ' ') ke--;
                if (ke == ks) { ok = 0; break; }
            }
            size_t v = k + 1;
            while (v < ll && l[v] == ' ') v++;
            if (v < ll && (l[v] == '[' || l[v] == '{') && !flow_balanced(l + v, ll - v)) { ok = 0; break; }
            if (v < ll && (l[v] == '"' || l[v] == '\'')) {
                size_t w = v + 1;
                while (w < ll && l[w] != l[v]) w++;
                if (w >= ll) { ok = 0; break; }
            }
            n_top++;
            for (size_t q = 0; q < n_keys && q < 64; q++)
                if (strlen(keys[q]) == ke - ks && !memcmp(keys[q], l + ks, ke - ks)) found[q] = 1;
        }
        i = j + 1;
    }
    *valid = ok && n_top > 0;
    int all = *valid;
    for (size_t q = 0; all && q < n_keys; q++) all = q < 64 && found[q];
    return all;
}
