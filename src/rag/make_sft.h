/* Training examples for answering from sources (rag make-sft; RAFT-style, Zhang et al.
 * 2024): a labelled question becomes one chat example whose user turn is exactly the RAG
 * prompt's user message (rag/ask.h lma_rag_user_message: the same format at training
 * and at inference) and whose assistant turn answers from the sources, citing the one that
 * holds the answer as [n], or refuses (LMA_RAG_REFUSAL) when none does.
 *
 * Per question, with its own random stream (seed split by the question's index, so one
 * question's example does not depend on the others):
 *   1. retrieve k chunks (p->search);
 *   2. the oracle chunk: the first retrieved chunk that contains an answer
 *      (case-insensitive) and, when the question names doc_ids, belongs to one of them; if
 *      none was retrieved, the best such chunk of a BM25 search for the answer text; none
 *      at all: the question is skipped (*skipped = 1);
 *   3. with probability oracle_share the oracle chunk is kept (put in place of the last
 *      retrieved chunk when it was not retrieved); otherwise every chunk containing an
 *      answer is removed and the answer is the refusal;
 *   4. `distractors` random chunks of the store that contain no answer and are not already
 *      there are added (fewer when the store has too few);
 *   5. the sources are shuffled (the answer's source is not always [1]) and numbered.
 * Ownership: the example's strings and arrays are malloc'd; lma_rag_sft_example_free. */
#ifndef LMA_RAG_MAKE_SFT_H
#define LMA_RAG_MAKE_SFT_H
#include <stddef.h>
#include <stdint.h>
#include "rag/search.h"

typedef struct {
    lma_rag_search_params search; /* mode and k of the retrieval */
    int distractors;              /* random chunks without the answer added */
    double oracle_share;          /* share of questions whose answer passage is kept */
    uint64_t seed;
} lma_rag_sft_params;

typedef struct {
    char *user;         /* the user message: lma_rag_user_message over the sources */
    char *answer;       /* "<answer> [n]", or LMA_RAG_REFUSAL */
    int oracle;         /* 1: the passage with the answer is among the sources */
    int gold;           /* its number (1-based); 0 when absent */
    size_t n_sources;
    int64_t *chunk_ids; /* (n_sources) the chunk of each source, in prompt order */
    int *distractor;    /* (n_sources) 1 for a random distractor */
} lma_rag_sft_example;

/* 1 when text contains needle, ASCII case-insensitively (an empty needle: 0). */
int lma_rag_contains(const char *text, const char *needle);

/* sr: a searcher over s. all_ids (n_all): every chunk id of s (store op chunk_ids).
 * index: the question's number (its random stream). answers (na >= 1), doc_ids (nd,
 * may be 0). */
lma_status lma_rag_sft_example_make(lma_rag_store *s, lma_rag_searcher *sr, const lma_rag_sft_params *p,
                                    const int64_t *all_ids, size_t n_all, uint64_t index, const char *question,
                                    const char *const *answers, size_t na, const char *const *doc_ids, size_t nd,
                                    lma_rag_sft_example *out, int *skipped);
void lma_rag_sft_example_free(lma_rag_sft_example *e);
#endif
