/* Passkey retrieval (Mohtashami & Jaggi 2023, "Landmark Attention"; the test of
 * LongLoRA, YaRN and PI): a 5-digit key hidden at a depth of repeated filler text, the
 * model asked for it at the end. Accuracy per context length x depth shows how far a
 * model's window really reaches (docs/eval.md, "Passkey").
 *
 * Prompt (the literature's text):
 *   PREFIX  "There is an important info hidden inside a lot of irrelevant text. Find it
 *            and memorize it. I will quiz you about the important information there."
 *   FILLER  " The grass is green. The sky is blue. The sun is yellow. Here we go. There
 *            and back again."   (k times in all)
 *   KEY     " The pass key is 12345. Remember it. 12345 is the pass key."  (after
 *            round(depth * k) fillers: depth 0 = right after the prefix, 1 = right
 *            before the question)
 *   SUFFIX  "\nWhat is the pass key? The pass key is"
 * k is the largest count whose tokenized prompt (with BOS when the tokenizer adds one)
 * plus max_new generated tokens fits in the context n_ctx. The answer is right when the
 * first 5-digit run of the greedy output is the key. */
#ifndef LMA_EVAL_PASSKEY_H
#define LMA_EVAL_PASSKEY_H
#include <stddef.h>
#include <stdint.h>
#include "tok/tokenizer.h"

typedef struct {
    int32_t *ids; size_t n;  /* the prompt tokens (caller frees ids) */
    int k, before;           /* fillers in all, fillers before the key */
    size_t key_token;        /* tokens before the key sentence (prefix, BOS, fillers) */
    size_t filler_tokens;    /* tokens of the k fillers (n - prefix, key and suffix) */
} lma_passkey_prompt;

/* key: 0..99999 (written with 5 digits); depth in [0, 1]. LMA_ERR_ARG when even k = 0
 * does not fit n_ctx - max_new. */
lma_status lma_passkey_build(const lma_tokenizer *tok, int n_ctx, double depth, int key, int max_new,
                             lma_passkey_prompt *out);
/* 1 when the first run of exactly 5 digits in text is key */
int lma_passkey_check(const char *text, size_t len, int key);
#endif
