/* The top k of a stream of scores: a min-heap of (row, score) with the worst kept on top
 * (idx, sc: k slots; *n: how many hold a row). A score enters when the heap has room or it
 * beats the worst; ties keep the row already there (the smaller one in a scan in row order).
 * lma_topk_sort puts them in ranking order. Shared by the exact scans (search.c on the CPU,
 * scan.c on a backend); header-only. */
#ifndef LMA_RAG_TOPK_H
#define LMA_RAG_TOPK_H
#include <stdint.h>

static inline void lma_topk_push(int64_t *idx, float *sc, int *n, int k, int64_t id, float v) {
    if (*n == k && !(v > sc[0])) return;
    int i;
    if (*n < k) { /* append, sift up */
        i = (*n)++;
        while (i > 0 && sc[(i - 1) / 2] > v) { idx[i] = idx[(i - 1) / 2], sc[i] = sc[(i - 1) / 2]; i = (i - 1) / 2; }
    } else { /* replace the root, sift down */
        i = 0;
        for (;;) {
            int c = 2 * i + 1;
            if (c >= *n) break;
            if (c + 1 < *n && sc[c + 1] < sc[c]) c++;
            if (!(sc[c] < v)) break;
            idx[i] = idx[c], sc[i] = sc[c];
            i = c;
        }
    }
    idx[i] = id, sc[i] = v;
}

/* the heap's n rows in ranking order: score descending, then row ascending (in place;
 * insertion sort: n is a k, small) */
static inline void lma_topk_sort(int64_t *idx, float *sc, int n) {
    for (int i = 1; i < n; i++) {
        int64_t id = idx[i];
        float v = sc[i];
        int j = i;
        for (; j > 0 && (sc[j - 1] < v || (sc[j - 1] == v && idx[j - 1] > id)); j--) idx[j] = idx[j - 1], sc[j] = sc[j - 1];
        idx[j] = id, sc[j] = v;
    }
}
#endif
