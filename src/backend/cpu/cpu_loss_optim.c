/* Fused softmax cross-entropy, AdamW, sum of squares, the fp32 <-> act casts (copies). */
#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include <math.h>

/* Per row (OpenMP over rows), while the row sits in cache: max; exp(x - max)
 * written into dlogits (or only summed); loss = max + log(sum) - x[target]
 * (x[target] read first: dlogits may alias logits); dlogits *= dscale / sum;
 * dlogits[target] -= dscale. Ignored rows: loss 0, dlogits 0. */
void lma_cpu_cross_entropy(float *losses, void *dlogits_, const void *logits_, const int32_t *targets, int N,
                           int V, float dscale) {
    float *dlogits = dlogits_;
    const float *logits = logits_;
#pragma omp parallel for schedule(static) if ((size_t)N * V > 32768)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *d = dlogits ? dlogits + (size_t)n * V : NULL;
        int tgt = targets[n];
        if (tgt == LMA_IGNORE_INDEX) {
            losses[n] = 0;
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        float xt = x[tgt];
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
        /* the sum in double: in fp32 the many terms below half an ulp of the running sum
         * (logits far below the max) are dropped, a bias of ~1e-4 in the log-sum at V = 49152 */
        double sum = 0;
        if (d) {
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < V; j++) {
                float e = lma_cpu_expf(x[j] - mx);
                d[j] = e;
                sum += e;
            }
            float k = (float)(dscale / sum);
#pragma omp simd
            for (int j = 0; j < V; j++) d[j] *= k;
            d[tgt] -= dscale;
        } else {
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < V; j++) sum += lma_cpu_expf(x[j] - mx);
        }
        losses[n] = (float)((double)mx + log(sum) - (double)xt);
    }
}

/* torch.optim.AdamW (single-tensor CPU path) with the same float operations,
 * including the fused multiply-adds of torch's vectorized kernels (lerp_,
 * addcmul_, addcdiv_), so the result is bit-identical to torch (checked
 * against a torch fixture in tests/test_backend_ops.c):
 *   g  = g * grad_scale
 *   p  = p * (1 - lr wd)
 *   m  = m.lerp_(g, 1 - b1)   = fma(w, g - m, m), or fma(w - 1, g - m, g) when w >= 0.5
 *   v  = v * b2 ; v = fma((1 - b2) g, g, v)
 *   d  = sqrt(v) / sqrt(bc2) + eps
 *   p  = fma(-lr / bc1, m / d, p)
 * Scalars are computed in double and rounded to float, as torch does. p_act (the
 * compute copy, fp32 here) gets a copy of p unless it is p. */
void lma_cpu_adamw(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1,
                   float b2, float eps, float wd, int t, float grad_scale) {
    double bc1 = 1.0 - pow((double)b1, t), bc2 = 1.0 - pow((double)b2, t);
    const float decay = (float)(1.0 - (double)lr * wd);
    const float w1 = (float)(1.0 - (double)b1), w2 = (float)(1.0 - (double)b2);
    const float neg_step = (float)(-(double)lr / bc1), bc2s = (float)sqrt(bc2);
    const int lerp_lo = fabsf(w1) < 0.5f;
    const float coeff = lerp_lo ? w1 : w1 - 1.0f;
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        float pi = p[i] * decay;
        float mi = m[i];
        mi = fmaf(coeff, gi - mi, lerp_lo ? mi : gi);
        float vi = v[i] * b2;
        vi = fmaf(w2 * gi, gi, vi);
        float den = sqrtf(vi) / bc2s + eps;
        p[i] = fmaf(neg_step, mi / den, pi);
        m[i] = mi;
        v[i] = vi;
    }
    if (p_act && p_act != p) memcpy(p_act, p, n * sizeof(float)); /* act storage is fp32 */
}

double lma_cpu_sum_sq(const float *x, size_t n) {
    double s = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : s) if (n > 32768)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

void lma_cpu_cast_to_act(void *dst, const float *src, size_t n) {
    if (dst != src && n) memcpy(dst, src, n * sizeof(float));
}

void lma_cpu_act_to_f32(float *dst, const void *src, size_t n) {
    if (dst != src && n) memcpy(dst, src, n * sizeof(float));
}
