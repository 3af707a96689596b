/* Retrieval metrics (metrics.h). */
#include <math.h>
#include "rag/metrics.h"

double lma_rag_recall_at(const int *gains, size_t n, size_t n_rel, size_t k) {
    size_t s = 0;
    for (size_t r = 0; r < n && r < k; r++) s += gains[r] != 0;
    return n_rel ? (double)s / (double)n_rel : 0;
}

double lma_rag_mrr10(const int *gains, size_t n) {
    for (size_t r = 0; r < n && r < 10; r++)
        if (gains[r]) return 1.0 / (double)(r + 1);
    return 0;
}

double lma_rag_ndcg10(const int *gains, size_t n, size_t n_rel) {
    double dcg = 0, idcg = 0;
    for (size_t r = 0; r < n && r < 10; r++)
        if (gains[r]) dcg += 1.0 / log2((double)r + 2);
    for (size_t i = 0; i < n_rel && i < 10; i++) idcg += 1.0 / log2((double)i + 2);
    return idcg > 0 ? dcg / idcg : 0;
}
