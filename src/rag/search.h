/* Retrieval over a RAG store: BM25 (the store's full-text index), vector (exact cosine
 * with BLAS, or the HNSW graph above a size threshold with the exact scan as its oracle),
 * hybrid (reciprocal rank fusion of the two, k = 60), optionally filtered by path glob or a
 * metadata field. A searcher holds what repeated queries share (the vectors, the graph);
 * it borrows the store and the encoder. */
#ifndef LMA_RAG_SEARCH_H
#define LMA_RAG_SEARCH_H
#include <stddef.h>
#include <stdint.h>
#include "backend/backend.h"
#include "rag/encoder.h"
#include "rag/store.h"

typedef enum { LMA_RAG_BM25, LMA_RAG_VECTOR, LMA_RAG_HYBRID } lma_rag_mode;
#define LMA_RAG_MODE_NAMES {"bm25", "vector", "hybrid", NULL}

typedef struct {
    int64_t id;   /* chunk key */
    double score; /* bm25: BM25; vector: cosine; hybrid: RRF sum */
} lma_rag_hit;

typedef struct {
    lma_rag_mode mode;
    int k;
    const lma_rag_filter *filter; /* NULL: none */
    int rrf_k;                    /* 60 */
    int depth;                    /* hybrid: candidates taken from each list (0: max(k, 50)) */
    int64_t hnsw_min;             /* use the graph at or above this many vectors (0: never) */
    int ef_search;                /* HNSW beam width (0: max(64, 2k)) */
} lma_rag_search_params;

lma_rag_search_params lma_rag_search_defaults(void);

typedef struct lma_rag_searcher lma_rag_searcher;
lma_status lma_rag_searcher_open(lma_rag_store *s, const lma_rag_encoder *enc, lma_rag_searcher **out);
void lma_rag_searcher_free(lma_rag_searcher *q);
/* hits: room for p->k; *n the number found (<= k), best first */
lma_status lma_rag_search(lma_rag_searcher *q, const char *query, const lma_rag_search_params *p, lma_rag_hit *hits,
                          int *n);
/* The device of the exact scan (unfiltered vector search below hnsw_min): a GPU backend
 * scans with one GEMM per query there (rag/scan.h; the vectors uploaded on first use);
 * NULL or cpu: BLAS on the host (the default); ref: scan.c on the host (tests). */
void lma_rag_searcher_set_backend(lma_rag_searcher *q, const lma_backend *be);
/* 1 when the last vector search of q went through the HNSW graph */
int lma_rag_searcher_used_hnsw(const lma_rag_searcher *q);

/* Exact top-k by cosine of q (dim) against vecs (n, dim) with row norms norms (n):
 * idx/score best first; *nk = min(k, n). The oracle of the HNSW search. */
void lma_rag_exact_topk(const float *vecs, const float *norms, size_t n, int dim, const float *q, int k, int64_t *idx,
                        float *score, int *nk);
/* Reciprocal rank fusion: score(d) = sum over lists of 1 / (rrf_k + rank), rank from 1;
 * ties broken by the smaller id. lists[i] has lens[i] ids, best first. */
lma_status lma_rag_rrf(const int64_t *const *lists, const int *lens, int n_lists, int rrf_k, int k, lma_rag_hit *out,
                       int *n);
#endif
