/* Causal GQA self-attention with segment ids, fp32.
 *
 * q out (B,T,NH,HD); k v (B,T,NKV,HD); seg (B,T) or NULL. Token t sees s iff
 * s <= t and seg[b,s] == seg[b,t]. saved (B,NH,T,T) holds the softmax
 * probabilities: row (b,h,t) is written only on [lo(t), t], where lo(t) is
 * the first s with seg[b,s] == seg[b,t] (inside it masked entries are 0); the
 * backward reads the same span, so keys before a token's segment are skipped
 * entirely in both directions.
 *
 * forward:  parallel over (b,h); per query row: scores (dot over HD), max,
 *           exp, normalize, out = P @ V (axpy over HD).
 * backward: parallel over (b, kv head), so dk/dv rows of a kv head have one
 *           writer; per query head of its group and query row:
 *           dp_s = dout.v_s ; dz_s = p_s (dp_s - sum p dp) ;
 *           dq_t += scale dz_s k_s ; dk_s += scale dz_s q_t ; dv_s += p_s dout_t */
#include "backend/cpu/cpu_ops.h"
#include <math.h>
#include <stdlib.h>

size_t lma_cpu_attention_saved_floats(int B, int T, int NH) { return (size_t)B * NH * (size_t)T * T; }

/* lo for row t given lo of row t-1 (segment ids are usually contiguous runs) */
static int seg_lo(const int32_t *sg, int t, int prev_lo) {
    if (!sg) return 0;
    if (t > 0 && sg[t] == sg[t - 1]) return prev_lo;
    int lo = 0;
    while (sg[lo] != sg[t]) lo++;
    return lo;
}

static inline float dot(const float *a, const float *b, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void lma_cpu_attention_fwd(float *out, float *saved, const float *q, const float *k, const float *v,
                           const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale) {
    int group = NH / NKV;
    size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD; /* row strides over t */
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
            const float *kb = k + (size_t)b * T * ks + (size_t)(h / group) * HD;
            const float *vb = v + (size_t)b * T * ks + (size_t)(h / group) * HD;
            int lo = 0;
            for (int t = 0; t < T; t++) {
                lo = seg_lo(sg, t, lo);
                const float *qt = q + ((size_t)b * T + t) * qs + (size_t)h * HD;
                float *p = saved + (((size_t)b * NH + h) * T + t) * T;
                float mx = -INFINITY;
                for (int s = lo; s <= t; s++) {
                    float z = (!sg || sg[s] == sg[t]) ? dot(qt, kb + s * ks, HD) * scale : -INFINITY;
                    p[s] = z;
                    mx = z > mx ? z : mx;
                }
                float sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int s = lo; s <= t; s++) {
                    float e = lma_cpu_expf(p[s] - mx);
                    p[s] = e;
                    sum += e;
                }
                float inv = 1.0f / sum;
                float *ot = out + ((size_t)b * T + t) * qs + (size_t)h * HD;
#pragma omp simd
                for (int i = 0; i < HD; i++) ot[i] = 0;
                for (int s = lo; s <= t; s++) {
                    float ps = p[s] * inv;
                    p[s] = ps;
                    if (ps == 0.0f) continue;
                    const float *vs = vb + s * ks;
#pragma omp simd
                    for (int i = 0; i < HD; i++) ot[i] += ps * vs[i];
                }
            }
        }
}

void lma_cpu_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *saved,
                           const float *q, const float *k, const float *v, const int32_t *seg, int B, int T,
                           int NH, int NKV, int HD, float scale) {
    if (!dq && !dk && !dv) return;
    int group = NH / NKV;
    size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
#pragma omp parallel
    {
        /* dp for one query row; without it, dp is computed twice */
        float *dpbuf = malloc((size_t)T * sizeof(float));
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int kh = 0; kh < NKV; kh++) {
                const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
                size_t kvoff = (size_t)b * T * ks + (size_t)kh * HD;
                const float *kb = k + kvoff, *vb = v + kvoff;
                float *dkb = dk ? dk + kvoff : NULL, *dvb = dv ? dv + kvoff : NULL;
                for (int h = kh * group; h < (kh + 1) * group; h++) {
                    int lo = 0;
                    for (int t = 0; t < T; t++) {
                        lo = seg_lo(sg, t, lo);
                        size_t qo = ((size_t)b * T + t) * qs + (size_t)h * HD;
                        const float *p = saved + (((size_t)b * NH + h) * T + t) * T;
                        const float *go = dout + qo, *qt = q + qo;
                        float pdp = 0;
                        for (int s = lo; s <= t; s++) {
                            if (p[s] == 0.0f) { if (dpbuf) dpbuf[s] = 0; continue; }
                            float dp = dot(go, vb + s * ks, HD);
                            if (dpbuf) dpbuf[s] = dp;
                            pdp += p[s] * dp;
                        }
                        float *dqt = dq ? dq + qo : NULL;
                        for (int s = lo; s <= t; s++) {
                            float ps = p[s];
                            if (ps == 0.0f) continue;
                            float dp = dpbuf ? dpbuf[s] : dot(go, vb + s * ks, HD);
                            float dz = scale * ps * (dp - pdp);
                            const float *ksr = kb + s * ks;
                            if (dqt) {
#pragma omp simd
                                for (int i = 0; i < HD; i++) dqt[i] += dz * ksr[i];
                            }
                            if (dkb) {
                                float *d = dkb + s * ks;
#pragma omp simd
                                for (int i = 0; i < HD; i++) d[i] += dz * qt[i];
                            }
                            if (dvb) {
                                float *d = dvb + s * ks;
#pragma omp simd
                                for (int i = 0; i < HD; i++) d[i] += ps * go[i];
                            }
                        }
                    }
                }
            }
        free(dpbuf);
    }
}
