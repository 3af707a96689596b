/* Causal GQA self-attention with segment ids, fp32, on single-threaded sgemms.
 *
 * q out (B,T,NH,HD); k v (B,T,NKV,HD); seg (B,T) or NULL. Token t sees s iff
 * s <= t and seg[b,s] == seg[b,t]. saved (B,NH,T,T) holds the softmax
 * probabilities P.
 *
 * Queries go in blocks of QB rows [t0, t1); a block only meets keys
 * [klo, t1), klo = the first key any of its rows can see (lo(t) = the first s
 * with seg[s] == seg[t]), so keys before a block's segments and after its last
 * row are skipped (causal and packed-segment masking at block granularity);
 * inside the span masked entries get P = 0. Row t of saved is written on its
 * block's span only; the backward uses the same blocks.
 *
 * forward  (OpenMP over (b,h)):  S = scale Q_blk K_span^T  (into saved),
 *          row softmax with the mask, O_blk = P V_span.
 * backward (OpenMP over (b, kv head): dk/dv of a kv head have one writer):
 *          dP = dO_blk V_span^T ; dS = scale P (dP - rowsum(P dP)) ;
 *          dQ_blk += dS K_span ; dK_span += dS^T Q_blk ; dV_span += P^T dO_blk.
 * The backward needs QB*T floats of scratch per thread; if malloc fails it
 * falls back to a row-wise loop (same results, slower). */
#include "backend/cpu/cpu_ops.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

enum { QB = 64 };
int lma_cpu_attention_rowwise;

size_t lma_cpu_attention_saved_floats(int B, int T, int NH, int HD) { return (size_t)B * NH * (size_t)T * T; }

/* lo for row t given lo of row t-1 (segment ids are usually contiguous runs) */
static int seg_lo(const int32_t *sg, int t, int prev_lo) {
    if (!sg) return 0;
    if (t > 0 && sg[t] == sg[t - 1]) return prev_lo;
    int lo = 0;
    while (sg[lo] != sg[t]) lo++;
    return lo;
}

/* lo(t) from scratch */
static int row_lo(const int32_t *sg, int t) {
    int lo = 0;
    if (sg) while (sg[lo] != sg[t]) lo++;
    return lo;
}

/* first key any row of [t0, t1) sees */
static int block_klo(const int32_t *sg, int t0, int t1) {
    int lo = row_lo(sg, t0), klo = lo;
    for (int t = t0 + 1; t < t1; t++) {
        lo = seg_lo(sg, t, lo);
        if (lo < klo) klo = lo;
    }
    return klo;
}

static inline float dot(const float *a, const float *b, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void lma_cpu_attention_fwd(void *out_, float *saved, const void *q_, const void *k_, const void *v_,
                           const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale) {
    float *out = out_;
    const float *q = q_, *k = k_, *v = v_;
    int group = NH / NKV, nqb = (T + QB - 1) / QB;
    int qs = NH * HD, ks = NKV * HD; /* row strides over t */
    int prev = lma_cpu_blas_enter();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
            const float *kb = k + (size_t)b * T * ks + (size_t)(h / group) * HD;
            const float *vb = v + (size_t)b * T * ks + (size_t)(h / group) * HD;
            const float *qb = q + (size_t)b * T * qs + (size_t)h * HD;
            float *ob = out + (size_t)b * T * qs + (size_t)h * HD;
            float *P = saved + ((size_t)b * NH + h) * T * T;
            for (int blk = 0; blk < nqb; blk++) {
                int t0 = blk * QB, t1 = t0 + QB < T ? t0 + QB : T, klo = block_klo(sg, t0, t1), kn = t1 - klo;
                float *Pb = P + (size_t)t0 * T + klo;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t1 - t0, kn, HD, scale, qb + (size_t)t0 * qs, qs,
                            kb + (size_t)klo * ks, ks, 0.0f, Pb, T);
                int lo = 0;
                for (int t = t0; t < t1; t++) {
                    lo = t == t0 ? row_lo(sg, t) : seg_lo(sg, t, lo);
                    float *p = P + (size_t)t * T;
                    float mx = -INFINITY;
                    for (int s = klo; s < t1; s++) {
                        int vis = s >= lo && s <= t && (!sg || sg[s] == sg[t]);
                        if (!vis) p[s] = -INFINITY;
                        mx = p[s] > mx ? p[s] : mx;
                    }
                    float sum = 0;
#pragma omp simd reduction(+ : sum)
                    for (int s = klo; s < t1; s++) {
                        float e = lma_cpu_expf(p[s] - mx);
                        p[s] = e;
                        sum += e;
                    }
                    float inv = 1.0f / sum;
#pragma omp simd
                    for (int s = klo; s < t1; s++) p[s] *= inv;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t1 - t0, HD, kn, 1.0f, Pb, T,
                            vb + (size_t)klo * ks, ks, 0.0f, ob + (size_t)t0 * qs, qs);
            }
        }
    lma_cpu_blas_leave(prev);
}

/* row-wise backward over the saved P (fallback without scratch) */
static void bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *saved, const float *q,
                     const float *k, const float *v, int b, int kh, int T, int NH, int NKV, int HD, float scale,
                     const int32_t *seg) {
    int group = NH / NKV, qs = NH * HD, ks = NKV * HD, nqb = (T + QB - 1) / QB;
    const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
    size_t kvoff = (size_t)b * T * ks + (size_t)kh * HD;
    const float *kb = k + kvoff, *vb = v + kvoff;
    float *dkb = dk ? dk + kvoff : NULL, *dvb = dv ? dv + kvoff : NULL;
    for (int h = kh * group; h < (kh + 1) * group; h++)
        for (int blk = 0; blk < nqb; blk++) {
            int t0 = blk * QB, t1 = t0 + QB < T ? t0 + QB : T, klo = block_klo(sg, t0, t1);
            for (int t = t0; t < t1; t++) {
                size_t qo = ((size_t)b * T + t) * qs + (size_t)h * HD;
                const float *p = saved + (((size_t)b * NH + h) * T + t) * T;
                const float *go = dout + qo, *qt = q + qo;
                float pdp = 0;
                for (int s = klo; s <= t; s++)
                    if (p[s] != 0.0f) pdp += p[s] * dot(go, vb + (size_t)s * ks, HD);
                for (int s = klo; s <= t; s++) {
                    float ps = p[s];
                    if (ps == 0.0f) continue;
                    float dz = scale * ps * (dot(go, vb + (size_t)s * ks, HD) - pdp);
                    const float *ksr = kb + (size_t)s * ks;
                    if (dq) {
                        float *d = dq + qo;
#pragma omp simd
                        for (int i = 0; i < HD; i++) d[i] += dz * ksr[i];
                    }
                    if (dkb) {
                        float *d = dkb + (size_t)s * ks;
#pragma omp simd
                        for (int i = 0; i < HD; i++) d[i] += dz * qt[i];
                    }
                    if (dvb) {
                        float *d = dvb + (size_t)s * ks;
#pragma omp simd
                        for (int i = 0; i < HD; i++) d[i] += ps * go[i];
                    }
                }
            }
        }
}

/* out (the forward's output) is not needed: P is saved */
void lma_cpu_attention_bwd(void *dq_, void *dk_, void *dv_, const void *dout_, const void *out, const float *saved,
                           const void *q_, const void *k_, const void *v_, const int32_t *seg, int B, int T,
                           int NH, int NKV, int HD, float scale) {
    float *dq = dq_, *dk = dk_, *dv = dv_;
    const float *dout = dout_, *q = q_, *k = k_, *v = v_;
    if (!dq && !dk && !dv) return;
    int group = NH / NKV, nqb = (T + QB - 1) / QB;
    int qs = NH * HD, ks = NKV * HD;
    int prev = lma_cpu_blas_enter();
#pragma omp parallel
    {
        float *dS = lma_cpu_attention_rowwise ? NULL : malloc((size_t)QB * T * sizeof(float));
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int kh = 0; kh < NKV; kh++) {
                if (!dS) {
                    bwd_rows(dq, dk, dv, dout, saved, q, k, v, b, kh, T, NH, NKV, HD, scale, seg);
                    continue;
                }
                const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
                size_t kvoff = (size_t)b * T * ks + (size_t)kh * HD;
                const float *kb = k + kvoff, *vb = v + kvoff;
                for (int h = kh * group; h < (kh + 1) * group; h++) {
                    size_t qoff = (size_t)b * T * qs + (size_t)h * HD;
                    const float *P = saved + ((size_t)b * NH + h) * T * T;
                    for (int blk = 0; blk < nqb; blk++) {
                        int t0 = blk * QB, t1 = t0 + QB < T ? t0 + QB : T, klo = block_klo(sg, t0, t1);
                        int kn = t1 - klo, qn = t1 - t0;
                        const float *Pb = P + (size_t)t0 * T + klo;
                        const float *dOb = dout + qoff + (size_t)t0 * qs;
                        if (dv)
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kn, HD, qn, 1.0f, Pb, T, dOb, qs,
                                        1.0f, dv + kvoff + (size_t)klo * ks, ks);
                        if (!dq && !dk) continue;
                        /* dS (qn, kn) = dP = dO V^T, then the softmax backward in place */
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qn, kn, HD, 1.0f, dOb, qs,
                                    vb + (size_t)klo * ks, ks, 0.0f, dS, kn);
                        for (int r = 0; r < qn; r++) {
                            const float *p = Pb + (size_t)r * T;
                            float *d = dS + (size_t)r * kn, pdp = 0;
#pragma omp simd reduction(+ : pdp)
                            for (int s = 0; s < kn; s++) pdp += p[s] * d[s];
#pragma omp simd
                            for (int s = 0; s < kn; s++) d[s] = scale * p[s] * (d[s] - pdp);
                        }
                        if (dq)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qn, HD, kn, 1.0f, dS, kn,
                                        kb + (size_t)klo * ks, ks, 1.0f, dq + qoff + (size_t)t0 * qs, qs);
                        if (dk)
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kn, HD, qn, 1.0f, dS, kn,
                                        q + qoff + (size_t)t0 * qs, qs, 1.0f, dk + kvoff + (size_t)klo * ks, ks);
                    }
                }
            }
        free(dS);
    }
    lma_cpu_blas_leave(prev);
}
