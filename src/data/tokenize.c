#include "data/tokenize.h"
#include <stdlib.h>
#include <string.h>
#include "data/shard.h"
#include "core/log.h"

typedef struct { const lma_tokenizer *tok; int32_t bos; uint64_t dropped; } enc_ctx;

static lma_status encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    enc_ctx *c = ctx;
    LMA_TRY(lma_tok_encode(c->tok, text, len, 0, ids, n));
    /* a special token written out in the text ("<|endoftext|>" in a document about
     * tokenizers) would become a control id inside a document, EOS even: drop it */
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!lma_tok_is_special(c->tok, (*ids)[i])) (*ids)[k++] = (*ids)[i];
    c->dropped += *n - k;
    *n = k;
    if (c->bos < 0 || *n == 0) return LMA_OK;
    int32_t *b = realloc(*ids, (*n + 1) * sizeof **ids);
    if (!b) return lma_error(LMA_ERR_NOMEM, "out of memory");
    memmove(b + 1, b, *n * sizeof *b);
    b[0] = c->bos;
    *ids = b;
    (*n)++;
    return LMA_OK;
}

lma_status lma_tokenize_to_shard(const char *const *paths, size_t n, const lma_text_source_params *tp,
                                 const lma_tokenizer *tok, int add_bos, const char *out_path,
                                 lma_text_shard_stats *stats) {
    int32_t eos = lma_tok_eos_id(tok);
    if (eos < 0) return lma_error(LMA_ERR_ARG, "the tokenizer has no EOS token to separate documents");
    enc_ctx c = {tok, add_bos ? lma_tok_bos_id(tok) : -1, 0};
    lma_status s = lma_text_to_shard(paths, n, tp, encode, &c, out_path,
                                     lma_shard_width_for_vocab((size_t)lma_tok_vocab_size(tok)), eos, stats);
    if (s == LMA_OK && c.dropped)
        lma_warn("%s: %llu special-token strings inside documents were dropped (control tokens are not text)",
                 out_path, (unsigned long long)c.dropped);
    return s;
}
