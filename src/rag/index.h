/* Indexing files into a RAG store: walks paths (folders recursively, sorted, hidden
 * entries skipped; .txt .md .html .jsonl), re-reads only files whose content hash changed,
 * drops stored files that are gone (or no longer under a given folder), chunks and embeds
 * each document and writes each file in one transaction: a crash (kill -9) loses at most
 * the file in flight. Then brings the HNSW graph up to date. The store remembers the
 * encoder and the chunk sizes; indexing with others is refused (a new store is needed). */
#ifndef LMA_RAG_INDEX_H
#define LMA_RAG_INDEX_H
#include "rag/encoder.h"
#include "rag/hnsw.h"
#include "rag/store.h"

typedef struct {
    int chunk_tokens;   /* 200 */
    int overlap_tokens; /* 32 */
    int batch;          /* texts per embed call: 32 */
    int graph;          /* keep the HNSW graph (when the encoder has vectors): 1 */
    lma_hnsw_params hnsw;
    /* progress: after each file ("added", "changed", "unchanged", "removed") */
    void (*on_file)(void *ctx, const char *path, const char *what, size_t n_chunks);
    /* after each chunk is written (inside the file's transaction); non-zero stops */
    int (*on_chunk)(void *ctx, size_t n_written);
    void *ctx;
} lma_rag_index_params;

typedef struct {
    size_t added, changed, unchanged, removed; /* files */
    size_t docs, chunks;                       /* written by this run */
    size_t graph_added, graph_removed;
} lma_rag_index_stats;

lma_rag_index_params lma_rag_index_defaults(void);
lma_status lma_rag_index(lma_rag_store *s, const lma_rag_encoder *enc, const char *const *paths, int n_paths,
                         const lma_rag_index_params *p, lma_rag_index_stats *st);
/* The store's encoder settings: ok when enc matches (or the store is new: then recorded). */
lma_status lma_rag_check_encoder(lma_rag_store *s, const lma_rag_encoder *enc, int record);
#endif
