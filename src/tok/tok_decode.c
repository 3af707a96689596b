/* Decoding: ids -> token strings -> the decoder chain (HF decoders/) -> text,
 * and the streaming decoder. Output is always valid UTF-8 (invalid byte runs become
 * U+FFFD exactly as HF's String::from_utf8_lossy / ByteFallback do). */
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "tok/tok_internal.h"

typedef struct { char *s; size_t n; } tstr;
typedef struct { tstr *v; size_t n, cap; } tlist;

static lma_status tl_push(tlist *l, const char *s, size_t n) {
    LMA_TRY(lma_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, 16, "decode pieces"));
    char *d = malloc(n + 1);
    if (!d) return lma_error(LMA_ERR_NOMEM, "decode: out of memory");
    memcpy(d, s, n); d[n] = 0;
    l->v[l->n++] = (tstr){d, n};
    return LMA_OK;
}
static void tl_free(tlist *l) { for (size_t i = 0; i < l->n; i++) free(l->v[i].s); free(l->v); memset(l, 0, sizeof *l); }

static lma_status lossy(const char *s, size_t n, tlist *out) {
    char *clean; size_t cn;
    LMA_TRY(lma_tok_utf8_sanitize(s, n, &clean, &cn));
    lma_status st = tl_push(out, clean, cn);
    free(clean);
    return st;
}

static lma_status dec_bytelevel(tlist *in, tlist *out) {
    lma_buf b = {0};
    lma_status st = LMA_OK;
    for (size_t i = 0; i < in->n && st == LMA_OK; i++) {
        const unsigned char *s = (const unsigned char *)in->v[i].s;
        size_t n = in->v[i].n, j = 0, start = b.len;
        int ok = 1;
        while (j < n && st == LMA_OK) {
            int l = lma_tok_utf8_len(s + j, n - j);
            int byte = l ? lma_tok_char_to_byte(lma_tok_utf8_dec(s + j, l)) : -1;
            if (byte < 0) { ok = 0; break; }
            char c = (char)byte;
            st = lma_buf_append(&b, &c, 1);
            j += (size_t)l;
        }
        if (!ok && st == LMA_OK) { b.len = start; st = lma_buf_append(&b, s, n); }
    }
    if (st == LMA_OK) st = lossy(b.p ? b.p : "", b.len, out);
    free(b.p);
    return st;
}

static lma_status dec_metaspace(const tok_dec *d, tlist *in, tlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        lma_buf b = {0};
        const char *s = in->v[i].s; size_t n = in->v[i].n, j = 0;
        lma_status st = LMA_OK;
        while (j < n && st == LMA_OK) {
            if (j + (size_t)d->repl_len <= n && !memcmp(s + j, d->repl, (size_t)d->repl_len)) {
                if (!(i == 0 && d->scheme != PREPEND_NEVER)) st = lma_buf_append(&b, " ", 1);
                j += (size_t)d->repl_len;
            } else { st = lma_buf_append(&b, s + j, 1); j++; }
        }
        if (st == LMA_OK) st = tl_push(out, b.p ? b.p : "", b.len);
        free(b.p);
        if (st != LMA_OK) return st;
    }
    return LMA_OK;
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static lma_status bf_flush(lma_buf *bytes, tlist *out) {
    if (!bytes->len) return LMA_OK;
    char *clean; size_t cn;
    LMA_TRY(lma_tok_utf8_sanitize(bytes->p, bytes->len, &clean, &cn));
    lma_status st;
    if (cn == bytes->len && !memcmp(clean, bytes->p, cn)) st = tl_push(out, clean, cn);
    else { /* invalid: one U+FFFD per byte token */
        st = LMA_OK;
        for (size_t i = 0; i < bytes->len && st == LMA_OK; i++) st = tl_push(out, "\xEF\xBF\xBD", 3);
    }
    free(clean);
    bytes->len = 0;
    return st;
}

static lma_status dec_bytefallback(tlist *in, tlist *out) {
    lma_buf bytes = {0};
    lma_status st = LMA_OK;
    for (size_t i = 0; i < in->n && st == LMA_OK; i++) {
        const char *s = in->v[i].s;
        int hi, lo;
        if (in->v[i].n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && (hi = hexv(s[3])) >= 0 && (lo = hexv(s[4])) >= 0) {
            char c = (char)(hi * 16 + lo);
            st = lma_buf_append(&bytes, &c, 1);
            continue;
        }
        st = bf_flush(&bytes, out);
        if (st == LMA_OK) st = tl_push(out, s, in->v[i].n);
    }
    if (st == LMA_OK) st = bf_flush(&bytes, out);
    free(bytes.p);
    return st;
}

static lma_status dec_fuse(tlist *in, tlist *out) {
    lma_buf b = {0};
    lma_status st = LMA_OK;
    for (size_t i = 0; i < in->n && st == LMA_OK; i++) st = lma_buf_append(&b, in->v[i].s, in->v[i].n);
    if (st == LMA_OK) st = tl_push(out, b.p ? b.p : "", b.len);
    free(b.p);
    return st;
}

static lma_status dec_strip(const tok_dec *d, tlist *in, tlist *out) {
    char cs[4]; int cl = lma_tok_utf8_enc(d->strip_c, cs);
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->v[i].s; size_t a = 0, b = in->v[i].n;
        for (int k = 0; k < d->start && b - a >= (size_t)cl && !memcmp(s + a, cs, (size_t)cl); k++) a += (size_t)cl;
        for (int k = 0; k < d->stop && b - a >= (size_t)cl && !memcmp(s + b - cl, cs, (size_t)cl); k++) b -= (size_t)cl;
        LMA_TRY(tl_push(out, s + a, b - a));
    }
    return LMA_OK;
}

static lma_status dec_replace(const tok_dec *d, tlist *in, tlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        lma_buf b = {0};
        const char *s = in->v[i].s; size_t n = in->v[i].n, j = 0;
        lma_status st = LMA_OK;
        while (j < n && st == LMA_OK) {
            if (j + d->alen <= n && !memcmp(s + j, d->a, d->alen)) { st = lma_buf_append(&b, d->b, d->blen); j += d->alen; }
            else { st = lma_buf_append(&b, s + j, 1); j++; }
        }
        if (st == LMA_OK) st = tl_push(out, b.p ? b.p : "", b.len);
        free(b.p);
        if (st != LMA_OK) return st;
    }
    return LMA_OK;
}

/* WordPiece (HF decoders/wordpiece.rs): pieces after the first lose the prefix or gain a
 * leading space; cleanup joins punctuation and contractions as HF's cleanup() does. */
static lma_status wp_replace(lma_buf *b, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    if (b->len < fl) return LMA_OK;
    lma_buf o = {0};
    size_t i = 0;
    lma_status st = LMA_OK;
    while (i < b->len && st == LMA_OK) {
        if (i + fl <= b->len && !memcmp(b->p + i, from, fl)) { st = lma_buf_append(&o, to, tl); i += fl; }
        else st = lma_buf_append(&o, b->p + i++, 1);
    }
    if (st != LMA_OK) { free(o.p); return st; }
    free(b->p);
    *b = o;
    return LMA_OK;
}

static lma_status dec_wordpiece(const tok_dec *d, tlist *in, tlist *out) {
    static const char *const clean[][2] = {{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
                                           {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"},
                                           {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t i = 0; i < in->n; i++) {
        lma_buf b = {0};
        const char *s = in->v[i].s;
        size_t n = in->v[i].n;
        lma_status st = LMA_OK;
        if (i && n >= d->alen && !memcmp(s, d->a, d->alen)) st = lma_buf_append(&b, s + d->alen, n - d->alen);
        else {
            if (i) st = lma_buf_append(&b, " ", 1);
            if (st == LMA_OK) st = lma_buf_append(&b, s, n);
        }
        for (size_t k = 0; d->cleanup && st == LMA_OK && k < sizeof clean / sizeof clean[0]; k++)
            st = wp_replace(&b, clean[k][0], clean[k][1]);
        if (st == LMA_OK) st = tl_push(out, b.p ? b.p : "", b.len);
        free(b.p);
        if (st != LMA_OK) return st;
    }
    return LMA_OK;
}

lma_status lma_tok_decode_tokens(const lma_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                             size_t *len) {
    *text = NULL; *len = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_ids || !t->id_str[ids[i]])
            return lma_error(LMA_ERR_ARG, "decode: id %d at position %zu is not in the vocabulary (size %d)", ids[i], i, t->n_ids);
    lma_buf out = {0};
    lma_status st = LMA_OK;
    /* fast path: a lone ByteLevel decoder */
    if (t->n_decs == 1 && t->decs[0].type == DEC_BYTELEVEL) {
        for (size_t i = 0; i < n && st == LMA_OK; i++) {
            int32_t id = ids[i];
            if (skip_special && t->id_special[id]) continue;
            if (t->id_rawlen[id] >= 0) st = lma_buf_append(&out, t->id_raw[id], (size_t)t->id_rawlen[id]);
            else st = lma_buf_append(&out, t->id_str[id], t->id_len[id]);
        }
        if (st == LMA_OK) st = lma_tok_utf8_sanitize(out.p ? out.p : "", out.len, text, len);
        free(out.p);
        return st;
    }
    tlist cur = {0};
    for (size_t i = 0; i < n && st == LMA_OK; i++) {
        if (skip_special && t->id_special[ids[i]]) continue;
        st = tl_push(&cur, t->id_str[ids[i]], t->id_len[ids[i]]);
    }
    if (!t->has_decoder) {
        for (size_t i = 0; i < cur.n && st == LMA_OK; i++) {
            if (i) st = lma_buf_append(&out, " ", 1);
            if (st == LMA_OK) st = lma_buf_append(&out, cur.v[i].s, cur.v[i].n);
        }
    } else {
        for (size_t k = 0; k < t->n_decs && st == LMA_OK; k++) {
            tlist nx = {0};
            const tok_dec *d = &t->decs[k];
            switch (d->type) {
            case DEC_BYTELEVEL: st = dec_bytelevel(&cur, &nx); break;
            case DEC_METASPACE: st = dec_metaspace(d, &cur, &nx); break;
            case DEC_BYTEFALLBACK: st = dec_bytefallback(&cur, &nx); break;
            case DEC_FUSE: st = dec_fuse(&cur, &nx); break;
            case DEC_STRIP: st = dec_strip(d, &cur, &nx); break;
            case DEC_REPLACE: st = dec_replace(d, &cur, &nx); break;
            case DEC_WORDPIECE: st = dec_wordpiece(d, &cur, &nx); break;
            default: st = lma_error(LMA_ERR_INTERNAL, "decoder type %d", d->type);
            }
            tl_free(&cur);
            cur = nx;
        }
        for (size_t i = 0; i < cur.n && st == LMA_OK; i++) st = lma_buf_append(&out, cur.v[i].s, cur.v[i].n);
    }
    tl_free(&cur);
    if (st == LMA_OK) st = lma_tok_utf8_sanitize(out.p ? out.p : "", out.len, text, len);
    free(out.p);
    return st;
}

lma_status lma_tok_decode(const lma_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                          size_t *len) {
    if (!t || (!ids && n)) { *text = NULL; *len = 0; return lma_error(LMA_ERR_ARG, "lma_tok_decode: NULL argument"); }
    return lma_tok_decode_tokens(t, ids, n, skip_special, text, len);
}

/* ---------------- streaming ---------------- */
struct lma_tok_stream {
    const lma_tokenizer *t;
    int skip;
    int32_t *ids; size_t n, cap;
    size_t start, read;   /* ids[start..read): context already emitted; ids[read..n) pending */
    char *prefix; size_t prefix_len;
};

lma_status lma_tok_stream_new(const lma_tokenizer *t, int skip_special, lma_tok_stream **out) {
    *out = NULL;
    lma_tok_stream *s = lma_calloc(1, sizeof *s, "decode stream");
    if (!s) return LMA_ERR_NOMEM;
    s->t = t; s->skip = skip_special;
    *out = s;
    return LMA_OK;
}

static lma_status stream_emit(lma_tok_stream *s, int final, char **text, size_t *len) {
    *text = NULL; *len = 0;
    char *full; size_t fl;
    LMA_TRY(lma_tok_decode_tokens(s->t, s->ids ? s->ids + s->start : NULL, s->n - s->start, s->skip, &full, &fl));
    int incomplete = fl >= 3 && !memcmp(full + fl - 3, "\xEF\xBF\xBD", 3);
    if ((fl > s->prefix_len && !incomplete) || (final && fl > s->prefix_len)) {
        size_t common = s->prefix_len && s->prefix_len <= fl && !memcmp(full, s->prefix, s->prefix_len) ? s->prefix_len : 0;
        char *o = malloc(fl - common + 1);
        if (!o) { free(full); return lma_error(LMA_ERR_NOMEM, "decode stream: out of memory"); }
        memcpy(o, full + common, fl - common); o[fl - common] = 0;
        *text = o; *len = fl - common;
        /* the tokens just emitted (they decode cleanly together) are the context for the
         * next decode, so that leading-space rules and byte groups stay as in a full decode */
        s->start = s->read;
        s->read = s->n;
        free(full);
        free(s->prefix);
        LMA_TRY(lma_tok_decode_tokens(s->t, s->ids + s->start, s->read - s->start, s->skip, &s->prefix, &s->prefix_len));
        /* drop consumed ids */
        if (s->start > 0) {
            memmove(s->ids, s->ids + s->start, (s->n - s->start) * sizeof *s->ids);
            s->n -= s->start; s->read -= s->start; s->start = 0;
        }
        return LMA_OK;
    }
    free(full);
    *text = malloc(1);
    if (!*text) return lma_error(LMA_ERR_NOMEM, "decode stream: out of memory");
    (*text)[0] = 0;
    return LMA_OK;
}

lma_status lma_tok_stream_push(lma_tok_stream *s, int32_t id, char **text, size_t *len) {
    *text = NULL; *len = 0;
    if (id < 0 || id >= s->t->n_ids || !s->t->id_str[id])
        return lma_error(LMA_ERR_ARG, "decode stream: id %d is not in the vocabulary (size %d)", id, s->t->n_ids);
    LMA_TRY(lma_grow(&s->ids, &s->cap, s->n + 1, sizeof *s->ids, 16, "decode stream"));
    s->ids[s->n++] = id;
    return stream_emit(s, 0, text, len);
}

lma_status lma_tok_stream_flush(lma_tok_stream *s, char **text, size_t *len) { return stream_emit(s, 1, text, len); }

void lma_tok_stream_free(lma_tok_stream *s) {
    if (!s) return;
    free(s->ids); free(s->prefix); free(s);
}
