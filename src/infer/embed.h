/* Sentence embeddings: text -> one unit-length (when the model normalizes) vector.
 * An embedder is a tokenizer + an encoder (BERT family, sentence-transformers folder:
 * modules.json, 1_Pooling/config.json, Normalize) or a Llama-family decoder (last-token
 * or mean pooling of the final hidden states after the final norm, optional Normalize,
 * optional query instruction as Qwen3-Embedding's "Instruct: {task}\nQuery:{q}"), on any
 * backend (infer/embed.c, docs/embed.md).
 * Ownership: lma_embedder_load returns a handle the caller frees with lma_embedder_free;
 * lma_embed writes into the caller's array. On failure a status and lma_last_error(). */
#ifndef LMA_INFER_EMBED_H
#define LMA_INFER_EMBED_H
#include <stddef.h>
#include <stdint.h>
#include "backend/backend.h"

typedef struct lma_embedder lma_embedder;

/* path: a sentence-transformers folder (or a short name such as all-minilm-l6-v2, resolved
 * by the caller with lma_model_path_resolve; lma_embedder_load resolves it too). be: the
 * backend (NULL = cpu). */
lma_status lma_embedder_load(const char *path, const lma_backend *be, lma_embedder **out);

/* What a folder's own files would otherwise decide (lma_embedder_load_ex):
 *   pool               "last" | "mean" | "cls" replaces the Pooling module (a Llama-family
 *                      folder without modules.json needs it); NULL: the folder's
 *   normalize          -1: the folder's Normalize module; 0 / 1: off / on
 *   query_instruction  a task: queries (lma_embed is_query) become
 *                      "Instruct: {task}\nQuery:{text}"; NULL: the folder's query prompt
 *                      (config_sentence_transformers.json prompts.query), else none.
 * Documents are embedded as they are. */
typedef struct {
    const char *pool;
    int normalize;
    const char *query_instruction;
} lma_embed_options;
lma_status lma_embedder_load_ex(const char *path, const lma_backend *be, const lma_embed_options *o,
                                lma_embedder **out);
void lma_embedder_free(lma_embedder *e);
int lma_embedder_dim(const lma_embedder *e);        /* output width, e.g. 384 */
int lma_embedder_max_tokens(const lma_embedder *e); /* max_seq_length (inputs are truncated) */
/* Number of tokens text takes (special tokens included, before truncation): for chunking. */
lma_status lma_embedder_count_tokens(lma_embedder *e, const char *text, size_t len, size_t *n_tokens);
/* texts[n] (NUL-terminated UTF-8) -> out (n, dim) row-major fp32. Batches internally
 * (sorted by length to limit padding); is_query selects the query instruction of models
 * that have one (decoder embedders), ignored otherwise. */
lma_status lma_embed(lma_embedder *e, const char *const *texts, size_t n, int is_query, float *out);
/* Rows per forward pass (default 32; <= 0 restores it). */
void lma_embedder_set_batch(lma_embedder *e, int batch);
#endif
