/* Chunking by tokens: a document is cut into spans of at most chunk_tokens tokens (as the
 * encoder counts them, special tokens included), each starting and ending at a sentence
 * or line boundary where one exists, consecutive spans sharing up to overlap_tokens tokens
 * of whole sentences. A text that fits is one span (the document stays whole). A sentence
 * longer than a chunk is cut between words; a single word longer than a chunk stays whole
 * (the embedder truncates it). Spans are byte ranges [start, end) of the text with
 * surrounding whitespace trimmed; all-whitespace text gives no span.
 * Ownership: *spans is malloc'd, caller frees. */
#ifndef LMA_RAG_CHUNK_H
#define LMA_RAG_CHUNK_H
#include <stddef.h>
#include "rag/encoder.h"

typedef struct {
    size_t start, end;
    size_t tokens; /* counted as segments: the encoder's count of the span, near enough */
} lma_rag_span;

lma_status lma_rag_chunk(const lma_rag_encoder *enc, const char *text, size_t len, int chunk_tokens, int overlap_tokens,
                         lma_rag_span **spans, size_t *n);
#endif
