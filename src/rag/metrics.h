/* Retrieval metrics from a ranked list of gains: gains[r] = 1 when rank r (0-based)
 * brings a relevant item not seen at an earlier rank, else 0; n_rel = the number of
 * relevant items (>= 1). With labelled doc ids an item is a document (each counted once);
 * with answer strings it is the first chunk containing an answer (n_rel = 1).
 *   recall@k = sum(gains[0..k)) / n_rel
 *   MRR@10   = 1 / (1 + first r < 10 with a gain), 0 when none
 *   nDCG@10  = sum_{r<10} gains[r] / log2(r + 2) / sum_{i < min(n_rel, 10)} 1 / log2(i + 2) */
#ifndef LMA_RAG_METRICS_H
#define LMA_RAG_METRICS_H
#include <stddef.h>

double lma_rag_recall_at(const int *gains, size_t n, size_t n_rel, size_t k);
double lma_rag_mrr10(const int *gains, size_t n);
double lma_rag_ndcg10(const int *gains, size_t n, size_t n_rel);
#endif
