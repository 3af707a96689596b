/* HNSW (Malkov & Yashunin 2016): a layered proximity graph for approximate nearest
 * neighbours by cosine, built in C, stored in the RAG store node by node (graph table:
 * level + links as chunk ids) so that indexing updates it incrementally: new chunks are
 * inserted, removed chunks are unlinked and their neighbours reconnected. The exact scan
 * (search.h lma_rag_exact_topk) is its oracle.
 * Vectors are normalized on insertion (cosine = dot). Ownership: the graph owns copies of
 * the vectors; free with lma_hnsw_free. */
#ifndef LMA_RAG_HNSW_H
#define LMA_RAG_HNSW_H
#include <stddef.h>
#include <stdint.h>
#include "rag/store.h"

typedef struct lma_hnsw lma_hnsw;

typedef struct {
    int M;               /* links per node above level 0 (2M at level 0); 16, at most 64 */
    int ef_construction; /* beam width while inserting; 100 */
    uint64_t seed;       /* level draws */
} lma_hnsw_params;

lma_hnsw_params lma_hnsw_defaults(void);
lma_status lma_hnsw_new(int dim, lma_hnsw_params p, lma_hnsw **out);
void lma_hnsw_free(lma_hnsw *h);
size_t lma_hnsw_size(const lma_hnsw *h); /* live nodes */
int lma_hnsw_contains(const lma_hnsw *h, int64_t id);
lma_status lma_hnsw_add(lma_hnsw *h, int64_t id, const float *vec);
/* n vectors (n, dim) with their ids, inserted by `threads` threads at once (per-node locks,
 * as hnswlib); the graph differs from n lma_hnsw_add calls (the order of insertion is not
 * fixed) and is as good. threads <= 1: lma_hnsw_add in order. */
lma_status lma_hnsw_add_many(lma_hnsw *h, size_t n, const int64_t *ids, const float *vecs, int threads);
lma_status lma_hnsw_remove(lma_hnsw *h, int64_t id);
/* k best by cosine (ids, scores best first, *n <= k); ef: beam width (>= k) */
lma_status lma_hnsw_search(lma_hnsw *h, const float *q, int k, int ef, int64_t *ids, float *scores, int *n);
/* nq queries (nq, dim) by `threads` threads at once: ids, scores (nq, k), n (nq) */
lma_status lma_hnsw_search_many(lma_hnsw *h, size_t nq, const float *q, int k, int ef, int64_t *ids, float *scores,
                                int *n, int threads);

/* The graph of the store (empty when it has none): nodes, links, parameters. */
lma_status lma_hnsw_load(lma_rag_store *s, int dim, lma_hnsw **out);
/* Brings the store's graph up to date with its vectors: removes nodes whose chunk is gone,
 * inserts chunks with an embedding and no node, writes what changed (one transaction). */
lma_status lma_hnsw_update(lma_rag_store *s, int dim, lma_hnsw_params p, size_t *added, size_t *removed);
#endif
