/* Chunking (chunk.h): segments at sentence ends and newlines, packed greedily. */
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "rag/chunk.h"

typedef struct {
    size_t start, end, tokens;
} seg;

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static lma_status push_seg(seg **s, size_t *n, size_t *cap, size_t a, size_t b, size_t tokens) {
    LMA_TRY(lma_grow(s, cap, *n + 1, sizeof **s, 64, "chunk segments"));
    (*s)[(*n)++] = (seg){a, b, tokens};
    return LMA_OK;
}

/* tokens of text[a, b) without the encoder's fixed special tokens */
static lma_status count(const lma_rag_encoder *enc, const char *text, size_t a, size_t b, size_t base, size_t *n) {
    LMA_TRY(enc->count_tokens(enc->ctx, text + a, b - a, n));
    *n = *n > base ? *n - base : 0;
    return LMA_OK;
}

/* Cuts text into sentence / line segments (each keeps its trailing whitespace); a segment
 * over `budget` tokens is cut again between words. */
static lma_status segments(const lma_rag_encoder *enc, const char *t, size_t len, size_t base, size_t budget, seg **out,
                           size_t *n) {
    size_t cap = 0, a = 0;
    *out = NULL, *n = 0;
    while (a < len) {
        size_t b = a;
        while (b < len) {
            char c = t[b++];
            if (c == '\n') break;
            if ((c == '.' || c == '!' || c == '?') && (b == len || is_space(t[b]))) break;
        }
        while (b < len && is_space(t[b])) b++;
        size_t tok;
        LMA_TRY(count(enc, t, a, b, base, &tok));
        if (tok <= budget) {
            LMA_TRY(push_seg(out, n, &cap, a, b, tok));
        } else { /* between words: each word with its trailing space */
            size_t w = a;
            while (w < b) {
                size_t e = w;
                while (e < b && !is_space(t[e])) e++;
                while (e < b && is_space(t[e])) e++;
                LMA_TRY(count(enc, t, w, e, base, &tok));
                LMA_TRY(push_seg(out, n, &cap, w, e, tok));
                w = e;
            }
        }
        a = b;
    }
    return LMA_OK;
}

static lma_status emit(const char *t, size_t a, size_t b, size_t tokens, lma_rag_span **spans, size_t *n, size_t *cap) {
    while (a < b && is_space(t[a])) a++;
    while (b > a && is_space(t[b - 1])) b--;
    if (a == b) return LMA_OK;
    LMA_TRY(lma_grow(spans, cap, *n + 1, sizeof **spans, 16, "chunks"));
    (*spans)[(*n)++] = (lma_rag_span){a, b, tokens};
    return LMA_OK;
}

lma_status lma_rag_chunk(const lma_rag_encoder *enc, const char *text, size_t len, int chunk_tokens, int overlap_tokens,
                         lma_rag_span **spans, size_t *n) {
    *spans = NULL, *n = 0;
    if (chunk_tokens < 1 || overlap_tokens < 0 || overlap_tokens >= chunk_tokens)
        return lma_error(LMA_ERR_ARG, "chunk of %d tokens with an overlap of %d: need 0 <= overlap < chunk", chunk_tokens,
                         overlap_tokens);
    size_t base = 0, whole = 0, cap = 0;
    LMA_TRY(enc->count_tokens(enc->ctx, "", 0, &base));
    LMA_TRY(enc->count_tokens(enc->ctx, text, len, &whole));
    if (whole <= (size_t)chunk_tokens) return emit(text, 0, len, whole, spans, n, &cap);
    size_t budget = (size_t)chunk_tokens > base ? (size_t)chunk_tokens - base : 1;
    seg *s;
    size_t ns;
    lma_status r = segments(enc, text, len, base, budget, &s, &ns);
    for (size_t i = 0; !r && i < ns;) {
        size_t j = i, sum = 0;
        while (j < ns && (j == i || sum + s[j].tokens <= budget)) sum += s[j++].tokens;
        r = emit(text, s[i].start, s[j - 1].end, sum + base, spans, n, &cap);
        if (j == ns) break;
        /* the next chunk starts with the last whole segments of this one that fit the overlap */
        size_t k = j, ov = 0;
        while (k > i + 1 && ov + s[k - 1].tokens <= (size_t)overlap_tokens) ov += s[--k].tokens;
        i = k;
    }
    free(s);
    if (r) { free(*spans); *spans = NULL, *n = 0; }
    return r;
}
