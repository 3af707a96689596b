/* The two encoders of encoder.h. */
#include "rag/encoder.h"

static lma_status emb_count(void *ctx, const char *text, size_t len, size_t *n) {
    return lma_embedder_count_tokens(ctx, text, len, n);
}
static lma_status emb_embed(void *ctx, const char *const *texts, size_t n, int is_query, float *out) {
    return lma_embed(ctx, texts, n, is_query, out);
}

lma_rag_encoder lma_rag_encoder_embedder(lma_embedder *e, const char *name) {
    lma_rag_encoder enc = {e, lma_embedder_dim(e), lma_embedder_max_tokens(e), name, emb_count, emb_embed};
    return enc;
}

/* words: maximal runs of non-space bytes */
static lma_status words_count(void *ctx, const char *text, size_t len, size_t *n) {
    (void)ctx;
    size_t w = 0;
    int in = 0;
    for (size_t i = 0; i < len; i++) {
        int sp = text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r';
        if (!sp && !in) w++;
        in = !sp;
    }
    *n = w;
    return LMA_OK;
}

lma_rag_encoder lma_rag_encoder_words(void) {
    lma_rag_encoder enc = {NULL, 0, 0, "words", words_count, NULL};
    return enc;
}
