/* Encoder (BERT family) forward ops on the CPU: layernorm with bias, exact GELU and
 * bidirectional attention over padded rows (backend.h). fp32, OpenMP over rows (or over
 * (sequence, head) for attention), single-threaded sgemms inside the parallel region. */
#include "backend/cpu/cpu_ops.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#define PAR_MIN 32768 /* elements below which a loop stays on one thread */

int lma_cpu_attention_bidir_rowwise;

void lma_cpu_layernorm_fwd(void *out_, const void *inp_, const void *w_, const void *b_, int N, int C, float eps) {
    float *out = out_;
    const float *inp = inp_, *w = w_, *b = b_;
#pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        float mean = s / (float)C, ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += (x[c] - mean) * (x[c] - mean);
        float r = 1.0f / sqrtf(ss / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (x[c] - mean) * r * w[c] + b[c];
    }
}

/* erf(x) by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7): the formula of
 * PyTorch's vectorized CPU erf (Vectorized<float>::erf), which its GELU uses; vectorizes,
 * where libm's erff does not (erff took 11% of an embedding run). */
static inline float erf_as(float x) {
    /* a = min(|x|, 9) on the bits (a float select with NaN semantics keeps gcc from
     * vectorizing): erf is 1 in float from 3.9 on, exp(-81) is a normal float, and NaN
     * becomes 9 (the caller's x keeps the NaN) */
    float a = fabsf(x);
    int32_t ab;
    memcpy(&ab, &a, sizeof ab);
    ab = ab < 0x41100000 ? ab : 0x41100000; /* 9.0f */
    memcpy(&a, &ab, sizeof a);
    float t = 1.0f / (0.3275911f * a + 1.0f);
    float r = (((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f;
    /* exp(-a^2) in [exp(-81), 1]: Cephes' polynomial as lma_cpu_expf, without its NaN and
     * range branches */
    float z = -a * a;
    float k = (z * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float f = z - k * 0.693359375f;
    f = f - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * f + 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    p = p * (f * f) + f + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float sc;
    memcpy(&sc, &bits, sizeof sc); /* 2^k (a memcpy, not a union, so that the loop vectorizes) */
    float y = 1.0f - r * t * (p * sc);
    return x < 0 ? -y : y;
}

void lma_cpu_gelu_fwd(void *out_, const void *inp_, size_t n) {
    float *out = out_;
    const float *inp = inp_;
    enum { CH = 4096 };
    size_t nch = (n + CH - 1) / CH;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t ch = 0; ch < nch; ch++) {
        size_t i0 = ch * CH, i1 = i0 + CH < n ? i0 + CH : n;
#pragma omp simd
        for (size_t i = i0; i < i1; i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + erf_as(x * 0.70710678118654752f));
        }
    }
}

/* per (b, h): S = scale Q[:L] K[:L]^T (L, L) in a per-thread scratch, row softmax,
 * O[:L] = P V[:L]; rows [L, T) of O are zeroed. Without scratch: row by row, online softmax. */
void lma_cpu_attention_bidir_fwd(void *out_, const void *q_, const void *k_, const void *v_, const int32_t *lens,
                                 int B, int T, int NH, int HD, float scale) {
    float *out = out_;
    const float *q = q_, *k = k_, *v = v_;
    int rs = NH * HD; /* row stride over t */
    int prev = lma_cpu_blas_enter();
#pragma omp parallel
    {
        float *S = lma_cpu_attention_bidir_rowwise ? NULL : malloc((size_t)T * T * sizeof(float));
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int L = lens[b] < T ? lens[b] : T;
                size_t off = (size_t)b * T * rs + (size_t)h * HD;
                const float *qb = q + off, *kb = k + off, *vb = v + off;
                float *ob = out + off;
                for (int t = L; t < T; t++) memset(ob + (size_t)t * rs, 0, (size_t)HD * sizeof(float));
                if (L <= 0) continue;
                if (S) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, HD, scale, qb, rs, kb, rs, 0.0f, S, L);
                    for (int t = 0; t < L; t++) {
                        float *p = S + (size_t)t * L, mx = -INFINITY, sum = 0;
                        for (int s = 0; s < L; s++) mx = p[s] > mx ? p[s] : mx;
#pragma omp simd reduction(+ : sum)
                        for (int s = 0; s < L; s++) {
                            float e = lma_cpu_expf(p[s] - mx);
                            p[s] = e;
                            sum += e;
                        }
                        float inv = 1.0f / sum;
#pragma omp simd
                        for (int s = 0; s < L; s++) p[s] *= inv;
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, HD, L, 1.0f, S, L, vb, rs, 0.0f, ob, rs);
                    continue;
                }
                for (int t = 0; t < L; t++) { /* no scratch: online softmax, one key at a time */
                    const float *qt = qb + (size_t)t * rs;
                    float *o = ob + (size_t)t * rs, mx = -INFINITY, sum = 0;
                    memset(o, 0, (size_t)HD * sizeof(float));
                    for (int s = 0; s < L; s++) {
                        const float *ks = kb + (size_t)s * rs, *vs = vb + (size_t)s * rs;
                        float d = 0;
#pragma omp simd reduction(+ : d)
                        for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
                        d *= scale;
                        if (d > mx) {
                            float corr = lma_cpu_expf(mx - d);
                            sum *= corr;
                            for (int i = 0; i < HD; i++) o[i] *= corr;
                            mx = d;
                        }
                        float e = lma_cpu_expf(d - mx);
                        sum += e;
#pragma omp simd
                        for (int i = 0; i < HD; i++) o[i] += e * vs[i];
                    }
                    float inv = 1.0f / sum;
                    for (int i = 0; i < HD; i++) o[i] *= inv;
                }
            }
        free(S);
    }
    lma_cpu_blas_leave(prev);
}
