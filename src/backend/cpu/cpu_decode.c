/* Inference attention against KV caches (backend.h attention_cached): the new rows are
 * copied into each sequence's cache, then one (sequence, token, head) triple per OpenMP
 * iteration attends to the cache; scores in a per-thread row of the longest context. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cpu/cpu_ops.h"

void lma_cpu_attention_cached(void *out_, const void *q_, const void *k_, const void *v_, const lma_kv_seq *seqs,
                              int n_seq, int n, int layer, int NH, int NKV, int HD, float scale) {
    float *out = out_;
    const float *q = q_, *k = k_, *v = v_;
    size_t KVD = (size_t)NKV * HD;
    int group = NH / NKV, L = 0;
    for (int i = 0; i < n_seq; i++) {
        const lma_kv_seq *sq = &seqs[i];
        size_t at = ((size_t)layer * sq->cap + sq->len) * KVD, rows = (size_t)n * KVD;
        memcpy((float *)sq->k + at, k + (size_t)i * rows, rows * sizeof(float));
        memcpy((float *)sq->v + at, v + (size_t)i * rows, rows * sizeof(float));
        if (sq->len + n > L) L = sq->len + n;
    }
#pragma omp parallel
    {
        float *p = malloc((size_t)L * sizeof *p);
#pragma omp for schedule(static)
        for (int th = 0; th < n_seq * n * NH; th++) {
            int r = th / NH, h = th % NH, kh = h / group;
            const lma_kv_seq *sq = &seqs[r / n];
            int last = sq->len + r % n;
            size_t lay = (size_t)layer * sq->cap * KVD;
            const float *kc = (const float *)sq->k + lay, *vc = (const float *)sq->v + lay;
            const float *qt = q + ((size_t)r * NH + h) * HD;
            float *ot = out + ((size_t)r * NH + h) * HD;
            if (!p) { for (int i = 0; i < HD; i++) ot[i] = NAN; continue; }
            float mx = -INFINITY;
            for (int s = 0; s <= last; s++) {
                const float *ks = kc + (size_t)s * KVD + (size_t)kh * HD;
                float d = 0;
                for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
                p[s] = d * scale;
                mx = p[s] > mx ? p[s] : mx;
            }
            float sum = 0;
            for (int s = 0; s <= last; s++) { p[s] = lma_cpu_expf(p[s] - mx); sum += p[s]; }
            float inv = 1.0f / sum;
            for (int i = 0; i < HD; i++) ot[i] = 0;
            for (int s = 0; s <= last; s++) {
                const float *vs = vc + (size_t)s * KVD + (size_t)kh * HD;
                float w = p[s] * inv;
                for (int i = 0; i < HD; i++) ot[i] += w * vs[i];
            }
        }
        free(p);
    }
}
