/* The exact cosine scan on a backend: the vectors uploaded once (normalized, fp32), each
 * query one GEMM through the backend's matmul_fwd (cuBLAS on cuda), the top k chosen on
 * the host. search.h lma_rag_exact_topk (CPU BLAS) is its oracle; on the CPU the searcher
 * uses that directly. A "cuda" (bf16) table scans with its "cuda-fp32" twin: the scan
 * stays exact (fp32). Ownership: the scan owns its device copy; the caller keeps vecs. */
#ifndef LMA_RAG_SCAN_H
#define LMA_RAG_SCAN_H
#include <stddef.h>
#include <stdint.h>
#include "backend/backend.h"
#include "core/status.h"

typedef struct lma_rag_scan lma_rag_scan;
/* vecs (n, dim), norms (n) as lma_rag_exact_topk takes them */
lma_status lma_rag_scan_new(const lma_backend *be, const float *vecs, const float *norms, size_t n, int dim,
                            lma_rag_scan **out);
void lma_rag_scan_free(lma_rag_scan *s);
/* as lma_rag_exact_topk: idx (row numbers) and score (cosine) best first, *nk = min(k, n) */
lma_status lma_rag_scan_topk(lma_rag_scan *s, const float *q, int k, int64_t *idx, float *score, int *nk);
#endif
