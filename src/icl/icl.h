/* In-context learning: a pool of examples, the choice of k shots for a query, the prompt
 * built within a token budget, and the evaluation of a model prompted that way
 * (`lmadapt icl build|eval`, docs/icl.md).
 *
 * Pool and task files: JSONL, one {"input": S, "output": S, "reasoning": S?} per line.
 * Selection of the shots for a query:
 *   random  k examples drawn per query (seeded by --seed and the query's index)
 *   fixed   the first k of the pool, the same for every query (their KV cache is reused)
 *   bm25    the k with the highest Okapi BM25 score of the query against each input
 *           (k1 1.5, b 0.75, negative idf floored at 0.25 x the mean idf: rank_bm25's
 *           BM25Okapi), most relevant first
 *   mmr     maximal marginal relevance over TF-IDF cosine: each next shot maximizes
 *           lambda * sim(query, x) - (1 - lambda) * max sim(x, chosen), lambda 0.5
 *   knn     the k nearest by cosine of the inputs' sentence embeddings (infer/embed.h; the
 *           pool is embedded once by lma_icl_pool_embed), most similar first
 * An example whose input equals the query is never a shot (no leak of the answer).
 * Formats:
 *   plain   "Input: x\nOutput: y\n\n" per shot, then "Input: q\nOutput:"
 *   cot     "Input: x\nReasoning: r\nOutput: y\n\n" per shot, then "Input: q\nReasoning:";
 *           the answer is the text after "Output:" in the generation
 *   chat    each shot a user turn (x) and an assistant turn (y) of the model's chat
 *           template, then the query as the last user turn
 * Budget: the prompt never exceeds `budget` tokens: shots are dropped from the least
 * relevant (the last chosen) until it fits; a query that does not fit alone is an error.
 * Ownership: the pool owns its strings; outputs are malloc'd, the caller frees. */
#ifndef LMA_ICL_ICL_H
#define LMA_ICL_ICL_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "infer/embed.h"
#include "model/llama.h"
#include "tok/tokenizer.h"

typedef struct {
    char *input, *output, *reasoning; /* reasoning may be NULL */
} lma_icl_example;

typedef struct lma_icl_pool lma_icl_pool;

/* Reads a JSONL file of examples; a bad line fails naming file:line and the field. */
lma_status lma_icl_pool_load(const char *path, lma_icl_pool **out);
void lma_icl_pool_free(lma_icl_pool *p);
size_t lma_icl_pool_size(const lma_icl_pool *p);
const lma_icl_example *lma_icl_pool_get(const lma_icl_pool *p, size_t i);

typedef enum { LMA_ICL_RANDOM, LMA_ICL_FIXED, LMA_ICL_BM25, LMA_ICL_KNN, LMA_ICL_MMR } lma_icl_select;
typedef enum { LMA_ICL_PLAIN, LMA_ICL_CHAT, LMA_ICL_COT } lma_icl_format;
const char *lma_icl_select_name(lma_icl_select s);

typedef struct {
    int shots;              /* k */
    lma_icl_select select;
    lma_icl_format format;
    uint64_t seed;
    int budget;             /* max prompt tokens; 0: none */
    double mmr_lambda;
    const char *template_spec; /* chat: a format name or NULL for the tokenizer's template */
} lma_icl_params;
lma_icl_params lma_icl_default_params(void);

/* The pool indices of the shots for query (the qi-th of its set), in prompt order:
 * idx has room for prm->shots; *k the number chosen (fewer when the pool is small). */
lma_status lma_icl_select_shots(const lma_icl_pool *p, const char *query, size_t qi, const lma_icl_params *prm,
                                size_t *idx, int *k);
/* Embeds every input of the pool with e (kept, not owned, for the queries): --select knn. */
lma_status lma_icl_pool_embed(lma_icl_pool *p, lma_embedder *e);
/* BM25 / embedding-cosine scores of query against every example's input (n = pool size). */
lma_status lma_icl_bm25_scores(const lma_icl_pool *p, const char *query, double *scores);
lma_status lma_icl_knn_scores(const lma_icl_pool *p, const char *query, double *scores);

/* The prompt for query: shots chosen, formatted, tokenized, cut to the budget.
 * *ids (n_ids) the tokens; *text the rendered prompt (may be NULL); *shots the shots kept. */
lma_status lma_icl_build(const lma_icl_pool *p, const lma_tokenizer *tok, const char *query, size_t qi,
                         const lma_icl_params *prm, int32_t **ids, size_t *n_ids, char **text, int *shots);

/* Exact match: a and b equal after stripping leading and trailing whitespace. */
int lma_icl_exact(const char *a, const char *b);

typedef struct {
    double accuracy;
    double prompt_tokens_per_query;
    int n;
    int shots_used_min, shots_used_max; /* after the budget */
    long prefix_tokens_reused;          /* prompt tokens not recomputed (shared-prefix KV reuse) */
    long prompt_tokens_computed;
} lma_icl_eval_result;

typedef struct {
    int max_new_tokens;
    const char *const *stops; int n_stops; /* stop strings; none: the first newline (cot: a blank line) */
    const int32_t *eos; int n_eos;         /* stop tokens */
    /* each query's outcome (may be NULL): its index, the answer extracted, correct or not */
    void (*on_query)(void *ctx, size_t qi, const char *answer, int correct);
    void *ctx;
    int no_reuse;                          /* recompute every prompt whole (tests compare the two) */
} lma_icl_gen;

/* Greedy generation for every example of task (its inputs as queries, its outputs as
 * references) with prompts from pool; one KV cache, whose entries are kept for the prefix a
 * query shares with the previous prompt. */
lma_status lma_icl_eval(lma_model *m, const lma_tokenizer *tok, const lma_icl_pool *pool, const lma_icl_pool *task,
                        const lma_icl_params *prm, const lma_icl_gen *g, lma_icl_eval_result *res);
#endif
