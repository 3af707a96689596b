/* Preference data (DPO): pairs of a prompt with a chosen and a rejected completion,
 * tokenized as TRL's DPOTrainer tokenizes them, and their batches.
 *
 * Records (data/example.h reads them; JSONL or a JSON array):
 *   TRL conversational  {"prompt": [messages], "chosen": [assistant messages],
 *                        "rejected": [assistant messages]} (no "prompt": the common
 *                        leading messages of chosen and rejected are the prompt)
 *   TRL plain text      {"prompt": "...", "chosen": "...", "rejected": "..."}
 *   OpenAI preference   {"input": {"messages": [...]}, "preferred_output": [...],
 *                        "non_preferred_output": [...]}
 * Tokens of a pair (TRL 1.16 DPOTrainer._prepare_dataset):
 *   conversational  P = encode(chat(prompt, add_generation_prompt)),
 *                   X = encode(chat(prompt + chosen)), Y likewise for rejected; the
 *                   completion starts at k = min(common prefix(P, X), common prefix(P, Y))
 *                   (= len(P) for every template lmadapt renders): the span SFT trains on;
 *   plain text      P = tok(prompt) (the tokenizer's special tokens added, BOS for Llama),
 *                   X = tok(prompt + chosen + eos) (eos appended unless chosen ends with it).
 * Rows (prompt + completion) longer than max_len keep their start (TRL's "keep_start");
 * a pair whose completion is cut away entirely is skipped (counted).
 *
 * Batches: B pairs as 2B rows of T tokens, row 2i the chosen and 2i+1 the rejected
 * completion of pair i (one forward for both); targets[t] = ids[t+1] where token t+1
 * is a completion token, else -100; padding rows/tokens: ids pad, seg -1. Each epoch
 * shuffles the pairs (training), then sorts windows of 64 B pairs by length, so a
 * batch holds pairs of similar length (the objective trims the batch to its longest
 * row). Validation (single pass, no shuffle) is sorted by length as a whole.
 * Cursor: epoch, position, rng state (resume is exact).
 * Ownership: the set owns its tokens; the batcher borrows the set. */
#ifndef LMA_DATA_PREFS_H
#define LMA_DATA_PREFS_H
#include <cjson/cJSON.h>
#include "core/rng.h"
#include "data/example.h"
#include "tok/tokenizer.h"


typedef enum { LMA_PREF_CONVERSATIONAL = 0, LMA_PREF_PLAIN, LMA_PREF_OPENAI, LMA_PREF_KIND_COUNT } lma_pref_kind;
/* The kind of a preference record (ex->format LMA_EXF_PREFERENCE); *implicit = 1 when its
 * prompt is the replies' common start: no prompt, or one of the other kind than the replies
 * (TRL maybe_extract_prompt). */
lma_pref_kind lma_pref_classify(const lma_example *ex, int *implicit);
const char *lma_pref_kind_name(lma_pref_kind k); /* "trl_conversational", "trl_plain_text", "openai" */

typedef struct {
    const char *template_spec; /* chat format name or template; NULL: the tokenizer's */
    int max_len;               /* tokens per row (prompt + completion), >= 2 */
} lma_pref_params;

typedef struct {
    size_t pairs, conversational, plain, truncated, skipped, tokens;
} lma_pref_stats;

typedef struct lma_pref_set lma_pref_set;

lma_status lma_pref_load(const char *path, const lma_tokenizer *tok, const lma_pref_params *p, lma_pref_set **out,
                         lma_pref_stats *stats);
void lma_pref_free(lma_pref_set *s);
size_t lma_pref_count(const lma_pref_set *s);
/* Row which (0 chosen, 1 rejected) of pair i: tokens ids[0..n), the completion from start. */
void lma_pref_row(const lma_pref_set *s, size_t i, int which, const int32_t **ids, size_t *n, size_t *start);
/* FNV-1a over every row and completion start: names the tokenized set (reference caches). */
uint64_t lma_pref_fingerprint(const lma_pref_set *s);

typedef struct lma_pref_batcher lma_pref_batcher;
lma_status lma_pref_batcher_create(const lma_pref_set *s, int B, int T, int32_t pad_id, uint64_t seed, int shuffle,
                                   int single_pass, lma_pref_batcher **out);
void lma_pref_batcher_free(lma_pref_batcher *b);
/* ids, targets, seg (2B, T); pair[i] (B) = the pair in rows 2i, 2i+1, or -1 (padding);
 * *pairs = pairs filled (< B only at the end of a single pass; 0 after it);
 * *width = the longest row of the batch (columns beyond it are padding). */
lma_status lma_pref_batcher_next(lma_pref_batcher *b, int32_t *ids, int32_t *targets, int32_t *seg, int64_t *pair,
                                 int *pairs, int *width);
void lma_pref_batcher_rewind(lma_pref_batcher *b);
lma_status lma_pref_batcher_save(const lma_pref_batcher *b, cJSON **out);
lma_status lma_pref_batcher_restore(lma_pref_batcher *b, const cJSON *j);
#endif
