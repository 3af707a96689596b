/* Reference ops in double precision (see ref_ops.h): plain loops, written to
 * be read, not to be fast. */
#include "backend/ref/ref_ops.h"
#include "backend/backend.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- embedding ---- */
void lma_ref_embedding_fwd(double *out, const int32_t *ids, const double *wte, int N, int C) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = wte[(size_t)ids[n] * C + c];
}

void lma_ref_embedding_bwd(double *dwte, const double *dout, const int32_t *ids, int N, int C) {
    if (!dwte) return;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dwte[(size_t)ids[n] * C + c] += dout[(size_t)n * C + c];
}

/* ---- rmsnorm ---- */
void lma_ref_rmsnorm_fwd(double *out, double *rstd, const double *inp, const double *w, int N, int C,
                         double eps) {
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        double r = 1.0 / sqrt(ss / C + eps);
        rstd[n] = r;
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = w[c] * x[c] * r;
    }
}

/* y_c = w_c x_c r, r = (mean(x^2)+eps)^-1/2, dr/dx_j = -r^3 x_j / C:
 * dx_j = r w_j g_j - r^3 x_j / C * sum_c g_c w_c x_c ; dw_c = sum_n g_c x_c r */
void lma_ref_rmsnorm_bwd(double *dinp, double *dw, const double *dout, const double *inp,
                         const double *w, const double *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        double r = rstd[n];
        double dot = 0;
        for (int c = 0; c < C; c++) dot += g[c] * w[c] * x[c];
        for (int c = 0; c < C; c++) {
            if (dinp) dinp[(size_t)n * C + c] += r * w[c] * g[c] - r * r * r * x[c] * dot / C;
            if (dw) dw[c] += g[c] * x[c] * r;
        }
    }
}

/* ---- matmul ---- */
void lma_ref_matmul_fwd(double *out, const double *inp, const double *w, const double *bias, int N,
                        int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += inp[(size_t)n * C + c] * w[(size_t)o * C + c];
            out[(size_t)n * OC + o] = s;
        }
}

void lma_ref_matmul_bwd(double *dinp, double *dw, double *dbias, const double *dout, const double *inp,
                        const double *w, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double g = dout[(size_t)n * OC + o];
            if (dbias) dbias[o] += g;
            for (int c = 0; c < C; c++) {
                if (dinp) dinp[(size_t)n * C + c] += g * w[(size_t)o * C + c];
                if (dw) dw[(size_t)o * C + c] += g * inp[(size_t)n * C + c];
            }
        }
}

/* ---- rope ---- */
void lma_ref_rope_fwd(double *out, const double *inp, const int32_t *pos, const double *inv_freq,
                      int N, int NH, int HD) {
    int half = HD / 2;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < NH; h++) {
            const double *x = inp + ((size_t)n * NH + h) * HD;
            double *y = out + ((size_t)n * NH + h) * HD;
            for (int i = 0; i < half; i++) {
                double a = (double)pos[n] * inv_freq[i], c = cos(a), s = sin(a);
                double x0 = x[i], x1 = x[i + half];
                y[i] = x0 * c - x1 * s;
                y[i + half] = x1 * c + x0 * s;
            }
        }
}

void lma_ref_rope_bwd(double *dinp, const double *dout, const int32_t *pos, const double *inv_freq,
                      int N, int NH, int HD) {
    if (!dinp) return;
    int half = HD / 2;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < NH; h++) {
            const double *g = dout + ((size_t)n * NH + h) * HD;
            double *dx = dinp + ((size_t)n * NH + h) * HD;
            for (int i = 0; i < half; i++) {
                double a = (double)pos[n] * inv_freq[i], c = cos(a), s = sin(a);
                dx[i] += g[i] * c + g[i + half] * s;
                dx[i + half] += -g[i] * s + g[i + half] * c;
            }
        }
}

/* ---- attention ---- */
static int ref_visible(const int32_t *seg, int b, int T, int t, int s) {
    return s <= t && (!seg || seg[(size_t)b * T + s] == seg[(size_t)b * T + t]);
}

void lma_ref_attention_fwd(double *out, double *att, const double *q, const double *k, const double *v,
                           const int32_t *seg, int B, int T, int NH, int NKV, int HD, double scale) {
    int group = NH / NKV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / group;
            for (int t = 0; t < T; t++) {
                const double *qt = q + (((size_t)b * T + t) * NH + h) * HD;
                double *p = att + (((size_t)b * NH + h) * T + t) * T;
                double mx = -INFINITY;
                for (int s = 0; s < T; s++) {
                    p[s] = 0;
                    if (!ref_visible(seg, b, T, t, s)) continue;
                    const double *ks = k + (((size_t)b * T + s) * NKV + kh) * HD;
                    double d = 0;
                    for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
                    p[s] = d * scale;
                    if (p[s] > mx) mx = p[s];
                }
                double sum = 0;
                for (int s = 0; s < T; s++)
                    if (ref_visible(seg, b, T, t, s)) { p[s] = exp(p[s] - mx); sum += p[s]; }
                for (int s = 0; s < T; s++) p[s] /= sum;
                double *ot = out + (((size_t)b * T + t) * NH + h) * HD;
                for (int i = 0; i < HD; i++) ot[i] = 0;
                for (int s = 0; s < T; s++) {
                    const double *vs = v + (((size_t)b * T + s) * NKV + kh) * HD;
                    for (int i = 0; i < HD; i++) ot[i] += p[s] * vs[i];
                }
            }
        }
}

void lma_ref_attention_cached(double *out, const double *q, const double *kc, const double *vc, int past, int n,
                              int NH, int NKV, int HD, double scale) {
    int group = NH / NKV, L = past + n;
    double *p = malloc((size_t)L * sizeof *p);
    if (!p) { for (size_t i = 0; i < (size_t)n * NH * HD; i++) out[i] = NAN; return; }
    for (int t = 0; t < n; t++)
        for (int h = 0; h < NH; h++) {
            int kh = h / group, last = past + t;
            const double *qt = q + ((size_t)t * NH + h) * HD;
            double mx = -INFINITY, sum = 0;
            for (int s = 0; s <= last; s++) {
                const double *ks = kc + ((size_t)s * NKV + kh) * HD;
                double d = 0;
                for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
                p[s] = d * scale;
                if (p[s] > mx) mx = p[s];
            }
            for (int s = 0; s <= last; s++) { p[s] = exp(p[s] - mx); sum += p[s]; }
            double *ot = out + ((size_t)t * NH + h) * HD;
            for (int i = 0; i < HD; i++) ot[i] = 0;
            for (int s = 0; s <= last; s++) {
                const double *vs = vc + ((size_t)s * NKV + kh) * HD;
                for (int i = 0; i < HD; i++) ot[i] += p[s] / sum * vs[i];
            }
        }
    free(p);
}

/* o_t = sum_s p_ts v_s ; p_ts = softmax_s(scale q_t.k_s):
 * dv_s += p_ts do_t ; dp_ts = do_t.v_s ; dz_ts = p_ts (dp_ts - sum_s' p_ts' dp_ts') ;
 * dq_t += scale sum_s dz_ts k_s ; dk_s += scale dz_ts q_t */
void lma_ref_attention_bwd(double *dq, double *dk, double *dv, const double *dout, const double *att,
                           const double *q, const double *k, const double *v, const int32_t *seg,
                           int B, int T, int NH, int NKV, int HD, double scale) {
    int group = NH / NKV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / group;
            for (int t = 0; t < T; t++) {
                const double *p = att + (((size_t)b * NH + h) * T + t) * T;
                const double *go = dout + (((size_t)b * T + t) * NH + h) * HD;
                const double *qt = q + (((size_t)b * T + t) * NH + h) * HD;
                double pdp = 0;
                for (int s = 0; s < T; s++) {
                    if (!ref_visible(seg, b, T, t, s)) continue;
                    const double *vs = v + (((size_t)b * T + s) * NKV + kh) * HD;
                    double dp = 0;
                    for (int i = 0; i < HD; i++) dp += go[i] * vs[i];
                    pdp += p[s] * dp;
                }
                for (int s = 0; s < T; s++) {
                    if (!ref_visible(seg, b, T, t, s)) continue;
                    size_t kvo = (((size_t)b * T + s) * NKV + kh) * HD;
                    double dp = 0;
                    for (int i = 0; i < HD; i++) dp += go[i] * v[kvo + i];
                    double dz = p[s] * (dp - pdp);
                    for (int i = 0; i < HD; i++) {
                        if (dv) dv[kvo + i] += p[s] * go[i];
                        if (dq) dq[(((size_t)b * T + t) * NH + h) * HD + i] += scale * dz * k[kvo + i];
                        if (dk) dk[kvo + i] += scale * dz * qt[i];
                    }
                }
            }
        }
}

/* ---- swiglu ---- */
void lma_ref_swiglu_fwd(double *out, const double *gate, const double *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] / (1.0 + exp(-gate[i])) * up[i];
}

void lma_ref_swiglu_bwd(double *dgate, double *dup, const double *dout, const double *gate,
                        const double *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double sg = 1.0 / (1.0 + exp(-gate[i]));
        if (dgate) dgate[i] += dout[i] * up[i] * sg * (1.0 + gate[i] * (1.0 - sg));
        if (dup) dup[i] += dout[i] * gate[i] * sg;
    }
}

/* ---- cross-entropy ---- */
void lma_ref_cross_entropy(double *losses, double *dlogits, const double *logits,
                           const int32_t *targets, int N, int V, double dscale) {
    for (int n = 0; n < N; n++) {
        const double *x = logits + (size_t)n * V;
        double *d = dlogits ? dlogits + (size_t)n * V : NULL;
        int tgt = targets[n];
        if (tgt == LMA_IGNORE_INDEX) {
            losses[n] = 0;
            if (d) for (int j = 0; j < V; j++) d[j] = 0;
            continue;
        }
        double mx = -INFINITY;
        for (int j = 0; j < V; j++) if (x[j] > mx) mx = x[j];
        double sum = 0;
        for (int j = 0; j < V; j++) sum += exp(x[j] - mx);
        double lse = mx + log(sum);
        losses[n] = lse - x[tgt];
        if (d)
            for (int j = 0; j < V; j++) d[j] = (exp(x[j] - lse) - (j == tgt ? 1.0 : 0.0)) * dscale;
    }
}

/* ---- optimizer, norms ---- */
void lma_ref_adamw(double *p, const double *g, double *m, double *v, size_t n, double lr, double b1,
                   double b2, double eps, double wd, int t, double grad_scale) {
    double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * grad_scale;
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        p[i] *= 1.0 - lr * wd;
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
    }
}


/* ---------------- encoder ops ---------------- */
void lma_ref_layernorm_fwd(double *out, const double *inp, const double *w, const double *b, int N, int C,
                           double eps) {
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
        var /= C;
        double r = 1.0 / sqrt(var + eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] - mean) * r * w[c] + b[c];
    }
}

void lma_ref_gelu_fwd(double *out, const double *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = 0.5 * inp[i] * (1.0 + erf(inp[i] / sqrt(2.0)));
}

void lma_ref_attention_bidir_fwd(double *out, const double *q, const double *k, const double *v,
                                 const int32_t *lens, int B, int T, int NH, int HD, double scale) {
    size_t rs = (size_t)NH * HD;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double *o = out + ((size_t)b * T + t) * rs + (size_t)h * HD;
                for (int i = 0; i < HD; i++) o[i] = 0;
                int L = lens[b];
                if (t >= L) continue;
                const double *qt = q + ((size_t)b * T + t) * rs + (size_t)h * HD;
                double mx = -INFINITY, sum = 0;
                for (int s = 0; s < L; s++) {
                    const double *ks = k + ((size_t)b * T + s) * rs + (size_t)h * HD;
                    double d = 0;
                    for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
                    if (d * scale > mx) mx = d * scale;
                }
                for (int s = 0; s < L; s++) {
                    const double *ks = k + ((size_t)b * T + s) * rs + (size_t)h * HD;
                    const double *vs = v + ((size_t)b * T + s) * rs + (size_t)h * HD;
                    double d = 0;
                    for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
                    double e = exp(d * scale - mx);
                    sum += e;
                    for (int i = 0; i < HD; i++) o[i] += e * vs[i];
                }
                for (int i = 0; i < HD; i++) o[i] /= sum;
            }
}
