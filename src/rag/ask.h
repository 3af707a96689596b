/* Answering from retrieved sources: the prompt. Sources are numbered [1], [2], ... in the
 * user message under an instruction to answer from them and cite them as [n]; the message
 * goes through the chat model's template. Sources are added best first while the whole
 * rendered prompt (template, system prompt, question included) stays within the token
 * budget; the first source that does not fit whole is cut at a word boundary to fill the
 * rest (when at least 16 tokens remain), and packing stops there. With n_src = 0 the
 * prompt is the question alone (the no-retrieval baseline).
 * Ownership: *ids is malloc'd (caller frees). A budget smaller than the question's own
 * prompt: LMA_ERR_ARG. */
#ifndef LMA_RAG_ASK_H
#define LMA_RAG_ASK_H
#include <stddef.h>
#include <stdint.h>
#include "tok/tokenizer.h"

typedef struct {
    const char *label; /* shown after the number: the doc id */
    const char *text;
} lma_rag_source;

/* tmpl: a chat format name, a template string, or NULL (the tokenizer's own).
 * *n_used: sources in the prompt; *last_len: bytes of source n_used-1 kept (its length
 * when whole). */
lma_status lma_rag_prompt(const lma_tokenizer *tok, const char *tmpl, const char *system, const char *question,
                          const lma_rag_source *src, size_t n_src, size_t budget, int32_t **ids, size_t *n_ids,
                          size_t *n_used, size_t *last_len);

/* SQuAD's answer normalization (lowercase; punctuation, articles a/an/the and extra
 * whitespace removed), exact match and token F1 of prediction against the best gold. */
double lma_rag_exact_match(const char *pred, const char *const *gold, size_t n_gold);
double lma_rag_f1(const char *pred, const char *const *gold, size_t n_gold);
/* The source numbers [n] cited in text: bit n-1 of the result (n <= 64). */
uint64_t lma_rag_citations(const char *text);
#endif
