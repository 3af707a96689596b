#include "infer/sample.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

int32_t lma_sample(float *logits, int V, const lma_sample_params *p, const int32_t *history, size_t n_hist,
                   lma_rng *rng) {
    if (p->repetition_penalty != 1.0f && history) {
        unsigned char *seen = calloc((size_t)V, 1);
        for (size_t i = 0; seen && i < n_hist; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= V || seen[t]) continue;
            seen[t] = 1;
            logits[t] = logits[t] < 0 ? logits[t] * p->repetition_penalty : logits[t] / p->repetition_penalty;
        }
        free(seen);
    }
    int best = 0;
    for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    if (p->temperature <= 0) return best;
    for (int i = 0; i < V; i++) logits[i] /= p->temperature;
    float *sorted = malloc((size_t)V * sizeof *sorted);
    if (!sorted) return best;
    if (p->top_k > 0 && p->top_k < V) {
        memcpy(sorted, logits, (size_t)V * sizeof *sorted);
        qsort(sorted, (size_t)V, sizeof *sorted, cmp_desc);
        float kth = sorted[p->top_k - 1];
        for (int i = 0; i < V; i++) if (logits[i] < kth) logits[i] = -INFINITY;
    }
    /* probabilities of what is left */
    float mx = logits[best];
    double sum = 0;
    for (int i = 0; i < V; i++) sum += isinf(logits[i]) ? 0 : exp((double)logits[i] - mx);
    if (p->top_p < 1.0f) {
        /* keep the most probable tokens until their mass exceeds top_p (HF removes the
         * tokens whose ascending cumulative mass stays <= 1 - top_p) */
        memcpy(sorted, logits, (size_t)V * sizeof *sorted);
        qsort(sorted, (size_t)V, sizeof *sorted, cmp_desc);
        double thresh = (1.0 - p->top_p) * sum, tail = 0;
        float cut = sorted[0];
        /* ascending from the least probable: drop while the tail mass stays <= thresh */
        for (int i = V - 1; i > 0; i--) {
            double pi = isinf(sorted[i]) ? 0 : exp((double)sorted[i] - mx);
            if (tail + pi > thresh) { cut = sorted[i]; break; }
            tail += pi;
        }
        for (int i = 0; i < V; i++) if (logits[i] < cut) logits[i] = -INFINITY;
    }
    if (p->min_p > 0) {
        /* max prob = exp(0) / sum; drop p_i < min_p * p_max */
        float lim = mx + logf(p->min_p);
        for (int i = 0; i < V; i++) if (logits[i] < lim) logits[i] = -INFINITY;
    }
    free(sorted);
    sum = 0;
    for (int i = 0; i < V; i++) sum += isinf(logits[i]) ? 0 : exp((double)logits[i] - mx);
    double u = lma_rng_uniform(rng) * sum, acc = 0;
    int last = best;
    for (int i = 0; i < V; i++) {
        if (isinf(logits[i])) continue;
        acc += exp((double)logits[i] - mx);
        last = i;
        if (acc > u) return i;
    }
    return last;
}
