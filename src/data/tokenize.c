#include "data/tokenize.h"
#include <stdlib.h>
#include "data/shard.h"

lma_status lma_tokenize_to_shard(const char *const *paths, size_t n, const lma_text_source_params *tp,
                                 const lma_tokenizer *tok, int add_bos, const char *out_path,
                                 lma_tokenize_stats *stats) {
    stats->docs = stats->tokens = stats->bytes = 0;
    int32_t eos = lma_tok_eos_id(tok), bos = lma_tok_bos_id(tok);
    if (eos < 0) return lma_error(LMA_ERR_ARG, "the tokenizer has no EOS token to separate documents");
    lma_text_source *src = NULL;
    lma_shard_writer *w = NULL;
    LMA_TRY(lma_text_source_open(paths, n, tp, &src));
    lma_status s = lma_shard_writer_open(out_path, lma_shard_width_for_vocab((size_t)lma_tok_vocab_size(tok)), eos, &w);
    int32_t *buf = NULL;
    size_t cap = 0;
    while (s == LMA_OK) {
        lma_text_doc d;
        int done = 0;
        s = lma_text_source_next(src, &d, &done);
        if (s != LMA_OK || done) break;
        int32_t *ids = NULL;
        size_t k = 0;
        s = lma_tok_encode(tok, d.text, d.len, 0, &ids, &k);
        if (s != LMA_OK) break;
        int lead = add_bos && bos >= 0;
        if (k + 1 > cap) {
            int32_t *nb = realloc(buf, (k + 1) * sizeof *nb);
            if (!nb) { free(ids); s = lma_error(LMA_ERR_NOMEM, "out of memory"); break; }
            buf = nb; cap = k + 1;
        }
        if (lead) buf[0] = bos;
        for (size_t i = 0; i < k; i++) buf[lead + i] = ids[i];
        free(ids);
        if (k + lead == 0) continue;
        s = lma_shard_writer_add(w, buf, k + lead);
        if (s != LMA_OK) w = NULL; /* a failed add frees the writer */
        stats->docs++;
        stats->bytes += d.len;
    }
    free(buf);
    lma_text_source_close(src);
    if (s == LMA_OK) {
        stats->tokens = lma_shard_writer_tokens(w);
        s = lma_shard_writer_commit(w);
    } else {
        lma_shard_writer_abort(w);
    }
    return s;
}
