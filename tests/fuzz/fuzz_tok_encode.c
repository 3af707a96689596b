/* libFuzzer: arbitrary bytes through encode/decode of the fixture tokenizers
 * (tests/ref/tok/{bl,sp,spm,g2}). The first byte picks the tokenizer and the mode.
 * Properties: encode never fails on any bytes; every id is in the vocab; offsets are
 * ordered; decode of the ids and of arbitrary ids succeeds with valid UTF-8; the
 * streaming decoder yields valid UTF-8. */
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tok/tokenizer.h"

static lma_tokenizer *toks[4];

static void load_all(void) {
    static int done;
    if (done) return;
    done = 1;
    char src[4096];
    snprintf(src, sizeof src, "%s", __FILE__);
    const char *fuzzdir = dirname(src);
    const char *names[4] = {"bl", "sp", "spm", "g2"};
    for (int i = 0; i < 4; i++) {
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/../ref/tok/%s", fuzzdir, names[i]);
        if (lma_tok_load(dir, &toks[i]) != LMA_OK) { fprintf(stderr, "fuzz_tok_encode: %s\n", lma_last_error()); abort(); }
    }
}

static int valid_utf8(const char *s, size_t n) {
    char *c; size_t cn;
    if (lma_tok_utf8_sanitize(s, n, &c, &cn) != LMA_OK) return 0;
    int ok = cn == n && !memcmp(c, s, n);
    free(c);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_all();
    if (size < 1) return 0;
    const lma_tokenizer *t = toks[data[0] & 3];
    int special = (data[0] >> 2) & 1, skip = (data[0] >> 3) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = NULL; size_t n = 0, *st = NULL, *en = NULL;
    if (lma_tok_encode_offsets(t, text, len, special, &ids, &st, &en, &n) != LMA_OK) abort();
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= lma_tok_vocab_size(t)) abort();
        if (st[i] > en[i] || en[i] > 3 * len + 3) abort();
    }
    char *s = NULL; size_t l = 0;
    if (lma_tok_decode(t, ids, n, skip, &s, &l) != LMA_OK || !valid_utf8(s, l)) abort();
    free(s);
    /* arbitrary ids from the bytes */
    size_t m = len / 2;
    int32_t *rid = malloc((m + 1) * sizeof *rid);
    for (size_t i = 0; i < m; i++) rid[i] = (int32_t)(((unsigned)data[1 + 2 * i] << 8 | data[2 + 2 * i]) % (unsigned)lma_tok_vocab_size(t));
    if (lma_tok_decode(t, rid, m, skip, &s, &l) != LMA_OK || !valid_utf8(s, l)) abort();
    free(s);
    lma_tok_stream *ds = NULL;
    if (lma_tok_stream_new(t, skip, &ds) != LMA_OK) abort();
    for (size_t i = 0; i <= m; i++) {
        if ((i < m ? lma_tok_stream_push(ds, rid[i], &s, &l) : lma_tok_stream_flush(ds, &s, &l)) != LMA_OK) abort();
        if (!valid_utf8(s, l)) abort();
        free(s);
    }
    lma_tok_stream_free(ds);
    free(rid); free(ids); free(st); free(en);
    lma_clear_error();
    return 0;
}
