/* Hashing, harness-style word normalization, format and script classifiers. */
#include "data/curate/text.h"
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <utf8proc.h>
#include "core/arena.h"
#include "core/buf.h"

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t lma_hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed ^ (0x9E3779B97F4A7C15ULL * (n + 1));
    while (n >= 8) {
        uint64_t k; memcpy(&k, p, 8);
        k *= 0x87c37b91114253d5ULL; k = rotl64(k, 31); k *= 0x4cf5ad432745937fULL;
        h ^= k; h = rotl64(h, 27) * 5 + 0x52dce729;
        p += 8; n -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) k |= (uint64_t)p[i] << (8 * i);
    h ^= lma_mix64(k ^ 0x2545F4914F6CDD1DULL);
    return lma_mix64(h);
}

void lma_words_free(lma_words *w) {
    free(w->text); free(w->hash);
    memset(w, 0, sizeof *w);
}

/* Python's str.split() whitespace, restricted to what occurs in practice. */
static int is_space_cp(int32_t c) {
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

lma_status lma_words_norm(const char *s, size_t n, lma_words *w) {
    w->n = 0; w->text_len = 0;
    size_t need;
    if (!lma_add_ok(n, 2, &need)) return lma_error(LMA_ERR_NOMEM, "words: out of memory for %zu bytes", n);
    LMA_TRY(lma_grow(&w->text, &w->text_cap, need, 1, 64, "words"));
    /* Pass 1: normalized text (words separated by one space). */
    char *o = w->text;
    size_t on = 0;
    int in_word = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            i++;
            if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) { in_word = 0; continue; }
            if (strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) && c) continue; /* deleted */
            if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
            if (!in_word && on) o[on++] = ' ';
            in_word = 1;
            o[on++] = (char)c;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) k = 1, cp = -1;
        if (cp >= 0 && is_space_cp(cp)) { in_word = 0; i += (size_t)k; continue; }
        if (!in_word && on) o[on++] = ' ';
        in_word = 1;
        memcpy(o + on, s + i, (size_t)k);
        on += (size_t)k; i += (size_t)k;
    }
    o[on] = 0;
    w->text_len = on;
    /* Pass 2: word hashes. */
    size_t count = 0;
    for (size_t i = 0; i < on; i++) count += (i == 0 || o[i - 1] == ' ');
    LMA_TRY(lma_grow(&w->hash, &w->cap, count ? count : 1, sizeof *w->hash, 64, "words"));
    size_t st = 0;
    for (size_t i = 0; i <= on; i++) {
        if (i == on || o[i] == ' ') {
            if (i > st) w->hash[w->n++] = lma_hash64(o + st, i - st, 0x5157);
            st = i + 1;
        }
    }
    return LMA_OK;
}

/* ---- formats ------------------------------------------------------------ */

const char *lma_text_format_name(lma_text_format f) {
    static const char *n[LMA_TFMT_COUNT] = {"plain", "json", "yaml", "markdown", "code"};
    return (f >= 0 && f < LMA_TFMT_COUNT) ? n[f] : "plain";
}

static int starts(const char *s, size_t n, const char *p) {
    size_t k = strlen(p);
    return n >= k && !memcmp(s, p, k);
}

static int has(const char *s, size_t n, const char *p) {
    size_t k = strlen(p);
    if (k > n) return 0;
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == p[0] && !memcmp(s + i, p, k)) return 1;
    return 0;
}

static int is_yaml_key_line(const char *s, size_t n) {
    size_t i = 0;
    if (starts(s, n, "- ")) i = 2;
    size_t k0 = i;
    while (i < n && (s[i] == '_' || s[i] == '-' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                     (s[i] >= '0' && s[i] <= '9')))
        i++;
    if (i == k0 || i - k0 > 40 || i >= n || s[i] != ':') return 0;
    return i + 1 == n || s[i + 1] == ' ';
}

lma_text_format lma_text_format_of(const char *s, size_t n) {
    while (n && (unsigned char)s[0] <= ' ') s++, n--;
    while (n && (unsigned char)s[n - 1] <= ' ') n--;
    if (!n) return LMA_TFMT_PLAIN;
    if ((s[0] == '{' && s[n - 1] == '}') || (s[0] == '[' && s[n - 1] == ']')) {
        cJSON *j = cJSON_ParseWithLength(s, n);
        if (j) { cJSON_Delete(j); return LMA_TFMT_JSON; }
    }
    if (has(s, n, "```")) return LMA_TFMT_CODE;
    size_t lines = 0, code = 0, yaml_key = 0, yaml_ok = 0, md_head = 0, md_list = 0, md_table = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        const char *l = s + i; size_t ln = e - i;
        while (ln && (l[0] == ' ' || l[0] == '\t')) l++, ln--;
        while (ln && ((unsigned char)l[ln - 1] <= ' ')) ln--;
        i = e + 1;
        if (!ln) continue;
        lines++;
        char last = l[ln - 1];
        if (last == ';' || last == '{' || last == '}' || starts(l, ln, "def ") || starts(l, ln, "import ") ||
            starts(l, ln, "#include") || starts(l, ln, "return ") || starts(l, ln, "function ") ||
            starts(l, ln, "class ") || starts(l, ln, "for (") || starts(l, ln, "if (") || starts(l, ln, "print(") ||
            starts(l, ln, "SELECT ") || starts(l, ln, "public ") || starts(l, ln, "int ") || (starts(l, ln, "for ") && last == ':'))
            code++;
        int key = is_yaml_key_line(l, ln);
        yaml_key += key;
        yaml_ok += key || starts(l, ln, "- ");
        size_t h = 0;
        while (h < ln && h < 7 && l[h] == '#') h++;
        if (h >= 1 && h <= 6 && h < ln && l[h] == ' ') md_head++;
        if (starts(l, ln, "- ") || starts(l, ln, "* ") || starts(l, ln, "+ ")) md_list++;
        else {
            size_t d = 0;
            while (d < ln && l[d] >= '0' && l[d] <= '9') d++;
            if (d > 0 && d < ln - 1 && l[d] == '.' && l[d + 1] == ' ') md_list++;
        }
        if (ln >= 2 && l[0] == '|' && last == '|') md_table++;
    }
    if (lines >= 2 && code * 2 >= lines) return LMA_TFMT_CODE;
    if (lines >= 2 && yaml_ok == lines && yaml_key >= 1) return LMA_TFMT_YAML;
    if (md_head || md_list >= 2 || md_table >= 2 || has(s, n, "**") || has(s, n, "](")) return LMA_TFMT_MARKDOWN;
    return LMA_TFMT_PLAIN;
}

/* ---- scripts ------------------------------------------------------------ */

const char *lma_script_name(lma_script s) {
    static const char *n[LMA_SCRIPT_COUNT] = {"none", "latin", "cyrillic", "greek", "arabic", "hebrew",
                                               "devanagari", "thai", "han", "kana", "hangul", "other"};
    return (s >= 0 && s < LMA_SCRIPT_COUNT) ? n[s] : "other";
}

static lma_script script_of_cp(int32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return LMA_SCRIPT_LATIN;
    if (c < 0x80) return LMA_SCRIPT_NONE;
    if ((c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x1E00 && c <= 0x1EFF)) return LMA_SCRIPT_LATIN;
    if (c >= 0x370 && c <= 0x3FF) return LMA_SCRIPT_GREEK;
    if (c >= 0x400 && c <= 0x52F) return LMA_SCRIPT_CYRILLIC;
    if (c >= 0x590 && c <= 0x5FF) return LMA_SCRIPT_HEBREW;
    if ((c >= 0x600 && c <= 0x6FF) || (c >= 0x750 && c <= 0x77F)) return LMA_SCRIPT_ARABIC;
    if (c >= 0x900 && c <= 0x97F) return LMA_SCRIPT_DEVANAGARI;
    if (c >= 0xE00 && c <= 0xE7F) return LMA_SCRIPT_THAI;
    if ((c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF)) return LMA_SCRIPT_HAN;
    if (c >= 0x3040 && c <= 0x30FF) return LMA_SCRIPT_KANA;
    if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F)) return LMA_SCRIPT_HANGUL;
    utf8proc_category_t cat = utf8proc_category(c);
    if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) return LMA_SCRIPT_OTHER;
    return LMA_SCRIPT_NONE;
}

lma_script lma_script_of(const char *s, size_t n) {
    size_t count[LMA_SCRIPT_COUNT] = {0};
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) { count[script_of_cp(c)]++; i++; continue; }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { i++; continue; }
        count[script_of_cp(cp)]++;
        i += (size_t)k;
    }
    lma_script best = LMA_SCRIPT_NONE;
    for (int k = 1; k < LMA_SCRIPT_COUNT; k++)
        if (count[k] > count[best] || (best == LMA_SCRIPT_NONE && count[k])) best = (lma_script)k;
    if (best == LMA_SCRIPT_HAN && count[LMA_SCRIPT_KANA]) best = LMA_SCRIPT_KANA; /* Japanese mixes both */
    return best;
}
