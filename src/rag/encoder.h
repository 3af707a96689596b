/* What the RAG indexer and searcher need of an embedding model: a token counter (for
 * chunk sizes) and, when dim > 0, text -> vectors. lma_rag_encoder_embedder wraps an
 * infer/embed.h embedder; lma_rag_encoder_words counts words (index without vectors:
 * BM25 only); tests supply their own. The encoder does not own ctx. */
#ifndef LMA_RAG_ENCODER_H
#define LMA_RAG_ENCODER_H
#include <stddef.h>
#include "core/status.h"
#include "infer/embed.h"

typedef struct {
    void *ctx;
    int dim;        /* 0: no vectors */
    int max_tokens; /* the model's input limit (0: none); chunks are kept within it */
    const char *name;
    /* tokens text takes, special tokens included */
    lma_status (*count_tokens)(void *ctx, const char *text, size_t len, size_t *n);
    /* texts[n] -> out (n, dim) */
    lma_status (*embed)(void *ctx, const char *const *texts, size_t n, int is_query, float *out);
} lma_rag_encoder;

lma_rag_encoder lma_rag_encoder_embedder(lma_embedder *e, const char *name);
lma_rag_encoder lma_rag_encoder_words(void);
#endif
