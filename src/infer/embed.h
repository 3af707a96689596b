/* Sentence embeddings: text -> one unit-length (when the model normalizes) vector.
 * An embedder is a tokenizer + an encoder (BERT family, sentence-transformers folder:
 * modules.json, 1_Pooling/config.json, Normalize) or a Llama-family decoder (last-token
 * or mean pooling, optional query instruction), on any backend. Implemented: the BERT
 * family (infer/embed.c, docs/embed.md); a decoder folder fails at load for now.
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
