/* Text files -> token shard with a tokenizer: text_source.h's lma_text_to_shard
 * with lma_tok_encode as the encoder (BOS first when add_bos and the tokenizer
 * has one; the tokenizer's EOS after each document). Special tokens that the text
 * spells out (e.g. "<|endoftext|>" written in a document) are dropped from the
 * document, with a warning: control ids never appear inside a document. Atomic. */
#ifndef LMA_DATA_TOKENIZE_H
#define LMA_DATA_TOKENIZE_H
#include "data/text_source.h"
#include "tok/tokenizer.h"

lma_status lma_tokenize_to_shard(const char *const *paths, size_t n, const lma_text_source_params *tp,
                                 const lma_tokenizer *tok, int add_bos, const char *out_path,
                                 lma_text_shard_stats *stats);
#endif
