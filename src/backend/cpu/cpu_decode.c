/* Inference attention against a KV cache (backend.h attention_cached):
 * q (n,NH,HD), kc/vc (past+n, NKV, HD), out (n,NH,HD). One (token, head) pair
 * per OpenMP iteration; scores in a per-thread row of past+n floats. */
#include <math.h>
#include <stdlib.h>
#include "backend/cpu/cpu_ops.h"

void lma_cpu_attention_cached(void *out_, const void *q_, const void *kc_, const void *vc_, int past, int n, int NH,
                              int NKV, int HD, float scale) {
    float *out = out_;
    const float *q = q_, *kc = kc_, *vc = vc_;
    int group = NH / NKV, L = past + n;
#pragma omp parallel
    {
        float *p = malloc((size_t)L * sizeof *p);
#pragma omp for schedule(static)
        for (int th = 0; th < n * NH; th++) {
            int t = th / NH, h = th % NH, kh = h / group, last = past + t;
            const float *qt = q + ((size_t)t * NH + h) * HD;
            float *ot = out + ((size_t)t * NH + h) * HD;
            if (!p) { for (int i = 0; i < HD; i++) ot[i] = NAN; continue; }
            float mx = -INFINITY;
            for (int s = 0; s <= last; s++) {
                const float *ks = kc + ((size_t)s * NKV + kh) * HD;
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
                const float *vs = vc + ((size_t)s * NKV + kh) * HD;
                float w = p[s] * inv;
                for (int i = 0; i < HD; i++) ot[i] += w * vs[i];
            }
        }
        free(p);
    }
}
