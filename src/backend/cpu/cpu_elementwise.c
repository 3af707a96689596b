/* Row-wise and element-wise ops: embedding, rmsnorm, rope, swiglu, add.
 * OpenMP over rows (or over channel chunks where rows would race on a
 * shared gradient); inner loops are `omp simd` so they vectorize without
 * -ffast-math. */
#include "backend/cpu/cpu_ops.h"
#include <math.h>

#define PAR_MIN 32768 /* elements below which a loop stays on one thread */

/* ---- embedding: out (N,C) = wte (V,C) [ids] ---- */
void lma_cpu_embedding_fwd(void *out_, const int32_t *ids, const void *wte_, int N, int C) {
    float *out = out_;
    const float *wte = wte_;
#pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, wte + (size_t)ids[n] * C, (size_t)C * sizeof(float));
}

/* dwte[ids[n]] += dout[n]; ids repeat, so threads split the channels, not the rows */
void lma_cpu_embedding_bwd(float *dwte, const void *dout_, const int32_t *ids, int N, int C) {
    const float *dout = dout_;
    if (!dwte) return;
    enum { CH = 64 };
    int nch = (C + CH - 1) / CH;
#pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
    for (int ch = 0; ch < nch; ch++) {
        int c0 = ch * CH, c1 = c0 + CH < C ? c0 + CH : C;
        for (int n = 0; n < N; n++) {
            float *d = dwte + (size_t)ids[n] * C;
            const float *g = dout + (size_t)n * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

/* ---- rmsnorm ---- */
void lma_cpu_rmsnorm_fwd(void *out_, float *rstd, const void *inp_, const void *w_, int N, int C, float eps) {
    float *out = out_;
    const float *inp = inp_, *w = w_;
#pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[n] = r;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = w[c] * (x[c] * r);
    }
}

/* dx_j += r w_j g_j - r^3 x_j / C * sum_c g_c w_c x_c ; dw_c += sum_n g_c x_c r */
void lma_cpu_rmsnorm_bwd(void *dinp_, float *dw, const void *dout_, const void *inp_, const void *w_,
                         const float *rstd, int N, int C) {
    float *dinp = dinp_;
    const float *dout = dout_, *inp = inp_, *w = w_;
    enum { CH = 64 };
    int nch = (C + CH - 1) / CH;
#pragma omp parallel if ((size_t)N * C > PAR_MIN)
    {
        if (dinp) {
#pragma omp for schedule(static) nowait
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
                float *dx = dinp + (size_t)n * C;
                float r = rstd[n], dot = 0;
#pragma omp simd reduction(+ : dot)
                for (int c = 0; c < C; c++) dot += g[c] * w[c] * x[c];
                float k = r * r * r * dot / (float)C;
#pragma omp simd
                for (int c = 0; c < C; c++) dx[c] += r * w[c] * g[c] - k * x[c];
            }
        }
        if (dw) {
#pragma omp for schedule(static)
            for (int ch = 0; ch < nch; ch++) {
                int c0 = ch * CH, c1 = c0 + CH < C ? c0 + CH : C;
                float acc[CH] = {0};
                for (int n = 0; n < N; n++) {
                    const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
                    float r = rstd[n];
#pragma omp simd
                    for (int c = c0; c < c1; c++) acc[c - c0] += g[c] * x[c] * r;
                }
                for (int c = c0; c < c1; c++) dw[c] += acc[c - c0];
            }
        }
    }
}

/* ---- rope (HF half-split). The angle is pos * inv_freq in float, as
 * transformers computes it (fp32 matmul of inv_freq and positions). ---- */
enum { ROPE_CH = 128 }; /* half-dims per chunk of the cos/sin table */

static void rope_apply(float *out, const float *inp, const int32_t *pos, const float *inv_freq, int N, int NH,
                       int HD, float sign, int accumulate) {
    int half = HD / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * NH * HD > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float cs[ROPE_CH], sn[ROPE_CH];
        for (int i0 = 0; i0 < half; i0 += ROPE_CH) {
            int m = half - i0 < ROPE_CH ? half - i0 : ROPE_CH;
            for (int i = 0; i < m; i++) {
                float a = (float)pos[n] * inv_freq[i0 + i];
                cs[i] = cosf(a);
                sn[i] = sign * sinf(a);
            }
            for (int h = 0; h < NH; h++) {
                const float *x = inp + ((size_t)n * NH + h) * HD + i0;
                float *y = out + ((size_t)n * NH + h) * HD + i0;
                if (accumulate) {
#pragma omp simd
                    for (int i = 0; i < m; i++) {
                        float x0 = x[i], x1 = x[i + half];
                        y[i] += x0 * cs[i] - x1 * sn[i];
                        y[i + half] += x1 * cs[i] + x0 * sn[i];
                    }
                } else {
#pragma omp simd
                    for (int i = 0; i < m; i++) {
                        float x0 = x[i], x1 = x[i + half]; /* read both before writing: out may be inp */
                        y[i] = x0 * cs[i] - x1 * sn[i];
                        y[i + half] = x1 * cs[i] + x0 * sn[i];
                    }
                }
            }
        }
    }
}

void lma_cpu_rope_fwd(void *out_, const void *inp_, const int32_t *pos, const float *inv_freq, int N, int NH,
                      int HD) {
    float *out = out_;
    const float *inp = inp_;
    rope_apply(out, inp, pos, inv_freq, N, NH, HD, 1.0f, 0);
}

/* the transpose of a rotation is the rotation by -angle */
void lma_cpu_rope_bwd(void *dinp_, const void *dout_, const int32_t *pos, const float *inv_freq, int N, int NH,
                      int HD) {
    float *dinp = dinp_;
    const float *dout = dout_;
    if (dinp) rope_apply(dinp, dout, pos, inv_freq, N, NH, HD, -1.0f, 1);
}

/* ---- swiglu: out = silu(g) * u = g * sigmoid(g) * u ---- */
void lma_cpu_swiglu_fwd(void *out_, const void *gate_, const void *up_, size_t n) {
    float *out = out_;
    const float *gate = gate_, *up = up_;
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + lma_cpu_expf(-g)) * up[i];
    }
}

/* dgate += dout * u * s (1 + g (1 - s)) ; dup += dout * g * s ; s = sigmoid(g) */
void lma_cpu_swiglu_bwd(void *dgate_, void *dup_, const void *dout_, const void *gate_, const void *up_,
                        size_t n) {
    float *dgate = dgate_, *dup = dup_;
    const float *dout = dout_, *gate = gate_, *up = up_;
    if (dgate && dup) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = gate[i], s = 1.0f / (1.0f + lma_cpu_expf(-g));
            dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
            dup[i] += dout[i] * g * s;
        }
    } else if (dgate) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = gate[i], s = 1.0f / (1.0f + lma_cpu_expf(-g));
            dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        }
    } else if (dup) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = gate[i], s = 1.0f / (1.0f + lma_cpu_expf(-g));
            dup[i] += dout[i] * g * s;
        }
    }
}

/* out may alias a or b: each element is read before it is written */
void lma_cpu_add(void *out_, const void *a_, const void *b_, size_t n) {
    float *out = out_;
    const float *a = a_, *b = b_;
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
