/* Tokenizer helpers: string hash map, UTF-8, the byte-level map, regexes and the
 * normalizers (with byte alignment to the original text). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "core/arena.h"
#include "core/buf.h"
#include "tok/tok_internal.h"

/* ---------------- hash map ---------------- */
uint64_t lma_tok_hash(const void *p, size_t n) { /* FNV-1a 64 with a final mix */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 1099511628211ULL; }
    h ^= h >> 29; h *= 0xbf58476d1ce4e5b9ULL; h ^= h >> 32;
    return h;
}

static lma_status strmap_grow(tok_strmap *m) {
    size_t ns = m->nslots ? m->nslots * 2 : 64;
    int32_t *sl = lma_malloc(ns * sizeof *sl, "token map");
    if (!sl) return LMA_ERR_NOMEM;
    for (size_t i = 0; i < ns; i++) sl[i] = -1;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = lma_tok_hash(m->pool + m->off[e], m->len[e]) & (ns - 1);
        while (sl[i] >= 0) i = (i + 1) & (ns - 1);
        sl[i] = (int32_t)e;
    }
    free(m->slots);
    m->slots = sl; m->nslots = ns;
    return LMA_OK;
}

int32_t lma_tok_strmap_get(const tok_strmap *m, const char *k, size_t n) {
    if (!m->nslots) return -1;
    size_t i = lma_tok_hash(k, n) & (m->nslots - 1);
    for (;;) {
        int32_t e = m->slots[i];
        if (e < 0) return -1;
        if (m->len[e] == n && !memcmp(m->pool + m->off[e], k, n)) return m->val[e];
        i = (i + 1) & (m->nslots - 1);
    }
}

lma_status lma_tok_strmap_put(tok_strmap *m, const char *k, size_t n, int32_t v) {
    if (n > UINT32_MAX) return lma_error(LMA_ERR_FORMAT, "token of %zu bytes is too long", n);
    if (m->nslots) {
        size_t i = lma_tok_hash(k, n) & (m->nslots - 1);
        for (;;) {
            int32_t e = m->slots[i];
            if (e < 0) break;
            if (m->len[e] == n && !memcmp(m->pool + m->off[e], k, n)) { m->val[e] = v; return LMA_OK; }
            i = (i + 1) & (m->nslots - 1);
        }
    }
    if ((m->n + 1) * 2 > m->nslots) LMA_TRY(strmap_grow(m));
    if (m->n == m->cap) { /* 3 arrays, one capacity */
        void *const arrs[] = {&m->off, &m->len, &m->val};
        const size_t esz[] = {sizeof *m->off, sizeof *m->len, sizeof *m->val};
        LMA_TRY(lma_grow_all(&m->cap, m->n + 1, 64, "token map", 3, arrs, esz));
    }
    LMA_TRY(lma_grow(&m->pool, &m->pool_cap, m->pool_len + n + 1, 1, 4096, "token map"));
    memcpy(m->pool + m->pool_len, k, n);
    m->pool[m->pool_len + n] = 0;
    m->off[m->n] = m->pool_len; m->len[m->n] = (uint32_t)n; m->val[m->n] = v;
    m->pool_len += n + 1;
    size_t i = lma_tok_hash(k, n) & (m->nslots - 1);
    while (m->slots[i] >= 0) i = (i + 1) & (m->nslots - 1);
    m->slots[i] = (int32_t)m->n++;
    return LMA_OK;
}

void lma_tok_strmap_free(tok_strmap *m) {
    free(m->pool); free(m->off); free(m->len); free(m->val); free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---------------- UTF-8 ---------------- */
int lma_tok_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 2) return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (s[1] < lo || s[1] > hi) return 0;
        return (n >= 3 && (s[2] & 0xC0) == 0x80) ? 3 : 0;
    }
    if (c < 0xF5) {
        if (n < 2) return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        if (s[1] < lo || s[1] > hi) return 0;
        if (n < 3 || (s[2] & 0xC0) != 0x80) return 0;
        return (n >= 4 && (s[3] & 0xC0) == 0x80) ? 4 : 0;
    }
    return 0;
}

/* Bytes of the maximal invalid subpart at s (the prefix of a valid sequence that is cut
 * short counts as one subpart; otherwise one byte). */
static int utf8_invalid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c < 0xE0) need = 2;
    else if (c >= 0xE0 && c < 0xF0) { need = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c < 0xF5) { need = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 1;
    int k = 1;
    if (k < need && (size_t)k < n && s[k] >= lo && s[k] <= hi) k++;
    else return 1;
    while (k < need && (size_t)k < n && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

uint32_t lma_tok_utf8_dec(const unsigned char *s, int len) {
    switch (len) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default: return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                    ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
}

int lma_tok_utf8_enc(uint32_t c, char *o) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F)); o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

lma_status lma_tok_utf8_sanitize(const char *in, size_t len, char **out, size_t *out_len) {
    *out = NULL; *out_len = 0;
    size_t cap;
    if (!lma_mul_ok(len, 3, &cap) || !lma_add_ok(cap, 1, &cap))
        return lma_error(LMA_ERR_ARG, "text of %zu bytes is too long", len);
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    char *buf = lma_malloc(cap, "utf8 text");
    if (!buf) return LMA_ERR_NOMEM;
    while (i < len) {
        if (s[i] < 0x80) { buf[o++] = (char)s[i++]; continue; }
        int l = lma_tok_utf8_len(s + i, len - i);
        if (l) { memcpy(buf + o, s + i, (size_t)l); o += (size_t)l; i += (size_t)l; }
        else { i += (size_t)utf8_invalid_len(s + i, len - i); memcpy(buf + o, "\xEF\xBF\xBD", 3); o += 3; }
    }
    buf[o] = 0;
    *out = buf; *out_len = o;
    return LMA_OK;
}

int lma_tok_is_whitespace(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int lma_tok_is_alnum(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    switch (k) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return 1;
    default: return 0;
    }
}

int lma_tok_is_punct(uint32_t c) {
    if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO:
        return 1;
    default: return 0;
    }
}

/* ---------------- byte-level map ---------------- */
const uint16_t lma_tok_byte_to_char[256] = {
    0x100,0x101,0x102,0x103,0x104,0x105,0x106,0x107,0x108,0x109,0x10A,0x10B,0x10C,0x10D,0x10E,0x10F,
    0x110,0x111,0x112,0x113,0x114,0x115,0x116,0x117,0x118,0x119,0x11A,0x11B,0x11C,0x11D,0x11E,0x11F,
    0x120,0x21,0x22,0x23,0x24,0x25,0x26,0x27,0x28,0x29,0x2A,0x2B,0x2C,0x2D,0x2E,0x2F,
    0x30,0x31,0x32,0x33,0x34,0x35,0x36,0x37,0x38,0x39,0x3A,0x3B,0x3C,0x3D,0x3E,0x3F,
    0x40,0x41,0x42,0x43,0x44,0x45,0x46,0x47,0x48,0x49,0x4A,0x4B,0x4C,0x4D,0x4E,0x4F,
    0x50,0x51,0x52,0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5A,0x5B,0x5C,0x5D,0x5E,0x5F,
    0x60,0x61,0x62,0x63,0x64,0x65,0x66,0x67,0x68,0x69,0x6A,0x6B,0x6C,0x6D,0x6E,0x6F,
    0x70,0x71,0x72,0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7A,0x7B,0x7C,0x7D,0x7E,0x121,
    0x122,0x123,0x124,0x125,0x126,0x127,0x128,0x129,0x12A,0x12B,0x12C,0x12D,0x12E,0x12F,0x130,0x131,
    0x132,0x133,0x134,0x135,0x136,0x137,0x138,0x139,0x13A,0x13B,0x13C,0x13D,0x13E,0x13F,0x140,0x141,
    0x142,0xA1,0xA2,0xA3,0xA4,0xA5,0xA6,0xA7,0xA8,0xA9,0xAA,0xAB,0xAC,0x143,0xAE,0xAF,
    0xB0,0xB1,0xB2,0xB3,0xB4,0xB5,0xB6,0xB7,0xB8,0xB9,0xBA,0xBB,0xBC,0xBD,0xBE,0xBF,
    0xC0,0xC1,0xC2,0xC3,0xC4,0xC5,0xC6,0xC7,0xC8,0xC9,0xCA,0xCB,0xCC,0xCD,0xCE,0xCF,
    0xD0,0xD1,0xD2,0xD3,0xD4,0xD5,0xD6,0xD7,0xD8,0xD9,0xDA,0xDB,0xDC,0xDD,0xDE,0xDF,
    0xE0,0xE1,0xE2,0xE3,0xE4,0xE5,0xE6,0xE7,0xE8,0xE9,0xEA,0xEB,0xEC,0xED,0xEE,0xEF,
    0xF0,0xF1,0xF2,0xF3,0xF4,0xF5,0xF6,0xF7,0xF8,0xF9,0xFA,0xFB,0xFC,0xFD,0xFE,0xFF,
};

int lma_tok_char_to_byte(uint32_t c) {
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) return (int)c;
    if (c >= 0x100 && c <= 0x143) {
        /* the 68 remaining bytes in ascending order */
        int k = (int)(c - 0x100), n = 0;
        for (int b = 0; b < 256; b++) {
            if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) continue;
            if (n++ == k) return b;
        }
    }
    return -1;
}

/* ---------------- regex ---------------- */
lma_status lma_tok_regex_compile(const char *pat, size_t len, const char *ctx, pcre2_code **out) {
    int err; PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: regex not supported by PCRE2 at offset %zu: %s", ctx, (size_t)off,
                         (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter on failure */
    *out = re;
    return LMA_OK;
}

/* ---------------- normalizers ---------------- */
typedef struct { char *s; int32_t *al; size_t n, cap; } nbuilder;

static lma_status nb_put(nbuilder *b, const char *s, size_t n, int32_t orig) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) return lma_error(LMA_ERR_NOMEM, "normalizer: out of memory");
        b->s = ns;
        int32_t *na = realloc(b->al, (nc + 1) * sizeof *na);
        if (!na) return lma_error(LMA_ERR_NOMEM, "normalizer: out of memory");
        b->al = na; b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    for (size_t i = 0; i < n; i++) b->al[b->n + i] = orig;
    b->n += n;
    return LMA_OK;
}

/* Unicode normalization form with alignment: the text is cut before each char of
 * canonical combining class 0 and each run is normalized alone; when that does not
 * reproduce the whole-text result (a composition across runs), the whole text is
 * aligned to its start. */
static lma_status norm_unicode(int type, const char *s, size_t n, const int32_t *al, nbuilder *b) {
    int opt = UTF8PROC_STABLE;
    if (type == NORM_NFC) opt |= UTF8PROC_COMPOSE;
    else if (type == NORM_NFD) opt |= UTF8PROC_DECOMPOSE;
    else if (type == NORM_NFKC) opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    else opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    utf8proc_uint8_t *whole = NULL;
    utf8proc_ssize_t wl = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &whole, (utf8proc_option_t)opt);
    if (wl < 0) return lma_error(LMA_ERR_INTERNAL, "normalizer: %s", utf8proc_errmsg(wl));
    size_t start_n = b->n;
    size_t i = 0;
    lma_status st = LMA_OK;
    while (i < n && st == LMA_OK) {
        size_t j = i + (size_t)lma_tok_utf8_len((const unsigned char *)s + i, n - i);
        while (j < n) {
            int l = lma_tok_utf8_len((const unsigned char *)s + j, n - j);
            uint32_t c = lma_tok_utf8_dec((const unsigned char *)s + j, l);
            if (utf8proc_get_property((utf8proc_int32_t)c)->combining_class == 0) break;
            j += (size_t)l;
        }
        utf8proc_uint8_t *part = NULL;
        utf8proc_ssize_t pl = utf8proc_map((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(j - i), &part,
                                           (utf8proc_option_t)opt);
        if (pl < 0) { free(whole); return lma_error(LMA_ERR_INTERNAL, "normalizer: %s", utf8proc_errmsg(pl)); }
        st = nb_put(b, (const char *)part, (size_t)pl, al[i]);
        free(part);
        i = j;
    }
    if (st == LMA_OK && (b->n - start_n != (size_t)wl || memcmp(b->s + start_n, whole, (size_t)wl))) {
        b->n = start_n;
        st = nb_put(b, (const char *)whole, (size_t)wl, n ? al[0] : al[0]);
    }
    free(whole);
    return st;
}

static lma_status norm_lower(const char *s, size_t n, const int32_t *al, nbuilder *b) {
    size_t i = 0;
    while (i < n) {
        int l = lma_tok_utf8_len((const unsigned char *)s + i, n - i);
        uint32_t c = lma_tok_utf8_dec((const unsigned char *)s + i, l);
        char tmp[8]; int tl;
        if (c == 0x130) { memcpy(tmp, "i\xCC\x87", 3); tl = 3; } /* the one multi-char lowercase mapping */
        else tl = lma_tok_utf8_enc((uint32_t)utf8proc_tolower((utf8proc_int32_t)c), tmp);
        LMA_TRY(nb_put(b, tmp, (size_t)tl, al[i]));
        i += (size_t)l;
    }
    return LMA_OK;
}

static lma_status norm_replace(const tok_norm *nm, const char *s, size_t n, const int32_t *al, nbuilder *b) {
    size_t i = 0;
    if (!nm->re) {
        if (nm->alen == 0) {
            for (; i < n; i++) LMA_TRY(nb_put(b, s + i, 1, al[i]));
            return LMA_OK;
        }
        while (i < n) {
            if (i + nm->alen <= n && !memcmp(s + i, nm->a, nm->alen)) {
                LMA_TRY(nb_put(b, nm->b, nm->blen, al[i]));
                i += nm->alen;
            } else {
                LMA_TRY(nb_put(b, s + i, 1, al[i]));
                i++;
            }
        }
        return LMA_OK;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(nm->re, NULL);
    if (!md) return lma_error(LMA_ERR_NOMEM, "normalizer Replace: out of memory");
    lma_status st = LMA_OK;
    while (i <= n && st == LMA_OK) {
        int rc = pcre2_match(nm->re, (PCRE2_SPTR)s, n, i, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], e = ov[1];
        for (size_t k = i; k < a && st == LMA_OK; k++) st = nb_put(b, s + k, 1, al[k]);
        if (st != LMA_OK) break;
        if (e > a) st = nb_put(b, nm->b, nm->blen, al[a]);
        if (e == a) { /* empty match: copy one char and go on */
            if (a >= n) { i = n + 1; break; }
            int l = lma_tok_utf8_len((const unsigned char *)s + a, n - a);
            for (int k = 0; k < l && st == LMA_OK; k++) st = nb_put(b, s + a + k, 1, al[a + k]);
            i = a + (size_t)l;
        } else i = e;
    }
    for (size_t k = i; k < n && st == LMA_OK; k++) st = nb_put(b, s + k, 1, al[k]);
    pcre2_match_data_free(md);
    return st;
}

/* BertNormalizer (HF normalizers/bert.rs), in its order: clean_text (drop NUL, U+FFFD and
 * control chars other than \t \n \r; whitespace -> ' '), CJK ideographs spaced (" c "),
 * strip accents (NFD, then drop Mn), lowercase. */
static int bert_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
static int bert_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
        return 1;
    default: return 0;
    }
}

static lma_status norm_bert_chars(const tok_norm *nm, const char *s, size_t n, const int32_t *al, nbuilder *b) {
    size_t i = 0;
    while (i < n) {
        int l = lma_tok_utf8_len((const unsigned char *)s + i, n - i);
        uint32_t c = lma_tok_utf8_dec((const unsigned char *)s + i, l);
        if (nm->clean_text && (c == 0 || c == 0xFFFD || bert_control(c))) { i += (size_t)l; continue; }
        if (nm->clean_text && lma_tok_is_whitespace(c)) LMA_TRY(nb_put(b, " ", 1, al[i]));
        else if (nm->cjk && bert_cjk(c)) {
            LMA_TRY(nb_put(b, " ", 1, al[i]));
            LMA_TRY(nb_put(b, s + i, (size_t)l, al[i]));
            LMA_TRY(nb_put(b, " ", 1, al[i]));
        } else LMA_TRY(nb_put(b, s + i, (size_t)l, al[i]));
        i += (size_t)l;
    }
    return LMA_OK;
}

static lma_status drop_mn(const char *s, size_t n, const int32_t *al, nbuilder *b) {
    size_t i = 0;
    while (i < n) {
        int l = lma_tok_utf8_len((const unsigned char *)s + i, n - i);
        uint32_t c = lma_tok_utf8_dec((const unsigned char *)s + i, l);
        if (utf8proc_category((utf8proc_int32_t)c) != UTF8PROC_CATEGORY_MN) LMA_TRY(nb_put(b, s + i, (size_t)l, al[i]));
        i += (size_t)l;
    }
    return LMA_OK;
}

static lma_status norm_bert(const tok_norm *nm, nbuilder *cur) {
    for (int pass = 0; pass < 4; pass++) {
        nbuilder nx = {0};
        lma_status st = LMA_OK;
        if (pass == 0) st = norm_bert_chars(nm, cur->s, cur->n, cur->al, &nx);
        else if (pass == 1 && nm->strip_accents) st = cur->n ? norm_unicode(NORM_NFD, cur->s, cur->n, cur->al, &nx) : LMA_OK;
        else if (pass == 2 && nm->strip_accents) st = drop_mn(cur->s, cur->n, cur->al, &nx);
        else if (pass == 3 && nm->lowercase) st = norm_lower(cur->s, cur->n, cur->al, &nx);
        else continue;
        if (st == LMA_OK && !nx.s) st = nb_put(&nx, "", 0, 0);
        if (st != LMA_OK) { free(nx.s); free(nx.al); return st; }
        free(cur->s); free(cur->al);
        *cur = nx;
    }
    return LMA_OK;
}

lma_status lma_tok_normalize(const lma_tokenizer *t, const char *s, size_t n, const int32_t *in_al, size_t base,
                         char **out, size_t *olen, int32_t **oal) {
    *out = NULL; *olen = 0; *oal = NULL;
    nbuilder cur = {0};
    /* start: a copy with explicit alignment */
    int32_t *al0 = lma_malloc((n + 1) * sizeof *al0, "normalizer");
    if (!al0) return LMA_ERR_NOMEM;
    for (size_t i = 0; i <= n; i++) al0[i] = in_al ? in_al[i] : (int32_t)(base + i);
    lma_status st = nb_put(&cur, s, n, 0);
    if (st != LMA_OK) { free(al0); return st; }
    memcpy(cur.al, al0, (n + 1) * sizeof *al0);
    int32_t end_orig = al0[n];
    free(al0);
    for (size_t k = 0; k < t->n_norms && st == LMA_OK; k++) {
        const tok_norm *nm = &t->norms[k];
        nbuilder nx = {0};
        switch (nm->type) {
        case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD:
            st = cur.n ? norm_unicode(nm->type, cur.s, cur.n, cur.al, &nx) : LMA_OK; break;
        case NORM_LOWER: st = norm_lower(cur.s, cur.n, cur.al, &nx); break;
        case NORM_PREPEND:
            if (cur.n) st = nb_put(&nx, nm->a, nm->alen, cur.al[0]);
            if (st == LMA_OK && cur.n) { st = nb_put(&nx, cur.s, cur.n, 0); if (st == LMA_OK) memcpy(nx.al + nm->alen, cur.al, cur.n * sizeof(int32_t)); }
            break;
        case NORM_REPLACE: st = norm_replace(nm, cur.s, cur.n, cur.al, &nx); break;
        case NORM_BERT: nx = cur; cur = (nbuilder){0}; st = norm_bert(nm, &nx); break;
        default: st = lma_error(LMA_ERR_INTERNAL, "normalizer type %d", nm->type);
        }
        free(cur.s); free(cur.al);
        cur = nx;
    }
    if (st == LMA_OK && !cur.s) st = nb_put(&cur, "", 0, 0);
    if (st != LMA_OK) { free(cur.s); free(cur.al); return st; }
    cur.al[cur.n] = end_orig;
    cur.s[cur.n] = 0;
    *out = cur.s; *olen = cur.n; *oal = cur.al;
    return LMA_OK;
}

/* ---------------- token pieces ---------------- */
int lma_tok_piece_bytes(const lma_tokenizer *t, int32_t id, unsigned char *buf, int cap) {
    if (id < 0 || id >= t->n_ids || !t->id_str[id] || t->id_special[id] || t->id_added[id]) return 0;
    if (t->id_raw && t->id_rawlen[id] >= 0) {
        if (t->id_rawlen[id] > cap) return -1;
        memcpy(buf, t->id_raw[id], (size_t)t->id_rawlen[id]);
        return t->id_rawlen[id];
    }
    const char *s = t->id_str[id];
    size_t n = t->id_len[id];
    if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') { /* byte fallback */
        unsigned v = 0;
        for (int i = 3; i < 5; i++) {
            char c = s[i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return 0;
            v = v * 16 + (unsigned)d;
        }
        if (cap < 1) return -1;
        buf[0] = (unsigned char)v;
        return 1;
    }
    int k = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) { if (k >= cap) return -1; buf[k++] = ' '; i += 3; }
        else { if (k >= cap) return -1; buf[k++] = (unsigned char)s[i++]; }
    }
    return k;
}
