/* Passkey prompts: the filler count that fills the context, the key at its depth. */
#include "eval/passkey.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"

static const char PREFIX[] = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
                             "it. I will quiz you about the important information there.";
static const char FILLER[] = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
static const char SUFFIX[] = "\nWhat is the pass key? The pass key is";

/* prefix + before fillers [+ key + the rest + suffix when full]; tokenized */
static lma_status encode(const lma_tokenizer *tok, int k, int before, int key, int full, int32_t **ids, size_t *n) {
    lma_buf b = {0};
    lma_buf_str(&b, PREFIX);
    for (int i = 0; i < before; i++) lma_buf_str(&b, FILLER);
    if (full) {
        lma_buf_printf(&b, " The pass key is %05d. Remember it. %05d is the pass key.", key, key);
        for (int i = before; i < k; i++) lma_buf_str(&b, FILLER);
        lma_buf_str(&b, SUFFIX);
    }
    if (b.st != LMA_OK) { lma_buf_free(&b); return b.st; }
    lma_status st = lma_tok_encode(tok, b.p, b.len, 1, ids, n);
    lma_buf_free(&b);
    return st;
}

static int before_of(int k, double depth) { return (int)floor(depth * k + 0.5); }

lma_status lma_passkey_build(const lma_tokenizer *tok, int n_ctx, double depth, int key, int max_new,
                             lma_passkey_prompt *out) {
    memset(out, 0, sizeof *out);
    if (!(depth >= 0 && depth <= 1)) return lma_error(LMA_ERR_ARG, "passkey: depth %g is outside [0, 1]", depth);
    if (key < 0 || key > 99999) return lma_error(LMA_ERR_ARG, "passkey: key %d is not 5 digits", key);
    size_t budget = n_ctx > max_new ? (size_t)(n_ctx - max_new) : 0;
    int32_t *ids = NULL;
    size_t n0 = 0, n1 = 0;
    /* the cost of one filler, from 0 and 8 fillers; then search around the estimate */
    LMA_TRY(encode(tok, 0, 0, key, 1, &ids, &n0));
    free(ids); ids = NULL;
    if (n0 > budget)
        return lma_error(LMA_ERR_ARG, "passkey: a context of %d tokens cannot hold the question (%zu tokens) and %d "
                         "answer tokens", n_ctx, n0, max_new);
    LMA_TRY(encode(tok, 8, 0, key, 1, &ids, &n1));
    free(ids); ids = NULL;
    double unit = (double)(n1 - n0) / 8.0;
    int k = unit > 0 ? (int)((double)(budget - n0) / unit) : 0;
    size_t n = 0;
    /* down until it fits, then up while the next one fits */
    for (;;) {
        LMA_TRY(encode(tok, k, before_of(k, depth), key, 1, &ids, &n));
        if (n <= budget || k == 0) break;
        free(ids); ids = NULL;
        k--;
    }
    for (;;) {
        int32_t *ids2 = NULL;
        size_t n2 = 0;
        lma_status st = encode(tok, k + 1, before_of(k + 1, depth), key, 1, &ids2, &n2);
        if (st != LMA_OK) { free(ids); return st; }
        if (n2 > budget) { free(ids2); break; }
        free(ids);
        ids = ids2; n = n2; k++;
    }
    out->ids = ids;
    out->n = n;
    out->k = k;
    out->before = before_of(k, depth);
    int32_t *pre = NULL;
    size_t np = 0, nq = 0;
    lma_status st = encode(tok, k, out->before, key, 0, &pre, &np);
    free(pre);
    if (st == LMA_OK) st = encode(tok, 0, 0, key, 1, &pre, &nq);
    free(pre);
    if (st != LMA_OK) { free(out->ids); memset(out, 0, sizeof *out); return st; }
    out->key_token = np;
    out->filler_tokens = n > nq ? n - nq : 0;
    return LMA_OK;
}

int lma_passkey_check(const char *text, size_t len, int key) {
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') continue;
        size_t j = i;
        while (j < len && text[j] >= '0' && text[j] <= '9') j++;
        if (j - i == 5) {
            int v = 0;
            for (size_t q = i; q < j; q++) v = v * 10 + (text[q] - '0');
            return v == key;
        }
        i = j;
    }
    return 0;
}
