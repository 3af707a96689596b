/* Text files -> token shard: every document of a text source (files,
 * directories, JSONL "text" lines; see text_source.h) is encoded with the
 * tokenizer (BOS when add_bos and the tokenizer has one) and appended to one
 * shard with the tokenizer's EOS after each document. Atomic: on any error no
 * shard file is left behind. Memory is bounded by the largest document. */
#ifndef LMA_DATA_TOKENIZE_H
#define LMA_DATA_TOKENIZE_H
#include "data/text_source.h"
#include "tok/tokenizer.h"

typedef struct {
    uint64_t docs, tokens, bytes;
} lma_tokenize_stats;

lma_status lma_tokenize_to_shard(const char *const *paths, size_t n, const lma_text_source_params *tp,
                                 const lma_tokenizer *tok, int add_bos, const char *out_path,
                                 lma_tokenize_stats *stats);
#endif
