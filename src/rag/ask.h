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
#include <cjson/cJSON.h>
#include "rag/search.h"
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

/* The user message of that prompt for sources src[0..n) (the last cut to last_len bytes):
 * the one text that rag ask / serve --rag render through the chat template and that rag
 * make-sft writes as the user turn of a training example (the same format at training and
 * at inference). n = 0: the question alone. *out malloc'd. */
lma_status lma_rag_user_message(const char *question, const lma_rag_source *src, size_t n, size_t last_len, char **out);

/* What a model trained by rag make-sft answers when the right source is not among them. */
#define LMA_RAG_REFUSAL "The sources do not contain the answer to this question."

/* Retrieval and packing in one step (rag ask, rag eval, serve --rag): searches question
 * with sp through sr (sr NULL: no retrieval, the question alone), reads the hits' chunks
 * into rows[0..*n_rows) (room for sp->k; the caller frees each with
 * lma_rag_chunk_row_free) with their scores, and renders the prompt (lma_rag_prompt) into
 * *ids (malloc'd); the first *n_used rows are the sources [1]..[n_used] of the prompt.
 * Not thread-safe for one searcher (the caller serializes). */
lma_status lma_rag_retrieve_prompt(lma_rag_store *s, lma_rag_searcher *sr, const lma_rag_search_params *sp,
                                   const lma_tokenizer *tok, const char *tmpl, const char *system, const char *question,
                                   size_t budget, lma_rag_chunk_row *rows, double *scores, int *n_rows, int32_t **ids,
                                   size_t *n_ids, size_t *n_used);

/* The sources of a prompt as the JSON array `rag ask --json` and `serve --rag` return:
 * [{"n", "doc_id", "chunk", "score", "path", "text"}] for rows[0..n). NULL: out of memory. */
cJSON *lma_rag_sources_json(const lma_rag_chunk_row *rows, const double *scores, size_t n);

/* SQuAD's answer normalization (lowercase; punctuation, articles a/an/the and extra
 * whitespace removed), exact match and token F1 of prediction against the best gold. */
double lma_rag_exact_match(const char *pred, const char *const *gold, size_t n_gold);
double lma_rag_f1(const char *pred, const char *const *gold, size_t n_gold);
/* The source numbers [n] cited in text: bit n-1 of the result (n <= 64). */
uint64_t lma_rag_citations(const char *text);
#endif
