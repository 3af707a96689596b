/* Supervised fine-tuning data: chat examples -> tokens + loss labels -> batches.
 *
 * Every record of a JSONL file (OpenAI messages, Alpaca, ShareGPT,
 * prompt/completion; see data/example.h) becomes a conversation rendered with
 * the model's chat template (tok/chat_template.h) and tokenized. A token carries
 * a label when it lies in the span of an assistant message (content + end of
 * turn) whose "weight" is not 0, or, with all_tokens, always. Examples longer
 * than max_len tokens are truncated (counted in the stats).
 *
 * Batches (B, T): with packing, examples in the epoch's shuffled order fill each
 * row back to back, each its own segment; an example that does not fit the rest
 * of a row starts the next row (rows end with padding: ids = pad, targets =
 * -100, seg = -1). Without packing, one example per row, padded. targets[t] =
 * ids[t+1] when token t+1 is labelled and in the same segment, else -100.
 *
 * Loading reads the whole file first and stops at the first malformed line with
 * "file:line: reason", before any training. The set lives in memory (4 bytes +
 * 1 byte per token). Cursor: epoch, position, rng state (resume is exact). */
#ifndef LMA_DATA_SFT_H
#define LMA_DATA_SFT_H
#include <cjson/cJSON.h>
#include "core/rng.h"
#include "tok/tokenizer.h"

typedef struct {
    const char *template_spec; /* chat format name or template; NULL: the tokenizer's */
    int all_tokens;            /* 1: loss on every token, not only assistant turns */
    int max_len;               /* truncate longer examples (tokens) */
} lma_sft_params;

typedef struct {
    size_t examples, truncated, tokens, labelled, skipped_no_label;
} lma_sft_stats;

typedef struct lma_sft_set lma_sft_set;

lma_status lma_sft_load(const char *path, const lma_tokenizer *tok, const lma_sft_params *p, lma_sft_set **out,
                        lma_sft_stats *stats);
void lma_sft_free(lma_sft_set *s);
size_t lma_sft_count(const lma_sft_set *s);
/* Tokens and labels (1 = loss on this token) of example i; valid until lma_sft_free. */
void lma_sft_example(const lma_sft_set *s, size_t i, const int32_t **ids, const uint8_t **labels, size_t *n);

typedef struct lma_sft_batcher lma_sft_batcher;
/* shuffle: new order every epoch (training). single_pass: stop at the end of the
 * set instead of starting the next epoch (validation): *rows < B on the last
 * batch, 0 after it; lma_sft_batcher_rewind starts over. */
lma_status lma_sft_batcher_create(const lma_sft_set *s, int B, int T, int pack, int32_t pad_id, uint64_t seed,
                                  int shuffle, int single_pass, lma_sft_batcher **out);
void lma_sft_batcher_free(lma_sft_batcher *b);
lma_status lma_sft_batcher_next(lma_sft_batcher *b, int32_t *ids, int32_t *targets, int32_t *seg, int *rows);
void lma_sft_batcher_rewind(lma_sft_batcher *b);
lma_status lma_sft_batcher_save(const lma_sft_batcher *b, cJSON **out);
lma_status lma_sft_batcher_restore(lma_sft_batcher *b, const cJSON *j);
size_t lma_sft_batcher_epoch(const lma_sft_batcher *b);
#endif
