/* lma_backend_ref(): the float op table (act storage fp32, act_bytes 4) on top
 * of the double ref ops.
 * Every op converts its float inputs to double scratch, runs the ref op, and
 * rounds the results back (gradients: old value + increment, summed in double,
 * rounded once). Scratch is malloc'd per call; on allocation failure the op
 * records LMA_ERR_NOMEM and fills its outputs with NaN (see ref_ops.h). */
#include "backend/backend.h"
#include "backend/host.h"
#include "backend/ref/ref_ops.h"
#include "quant/nf4.h"
#include "quant/qdot.h"
#include "core/status.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCRATCH 12

typedef struct {
    double *p[MAX_SCRATCH];
    int n, failed;
} scratch;

static double *s_alloc(scratch *s, size_t n) {
    if (s->failed || s->n == MAX_SCRATCH) { s->failed = 1; return NULL; }
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) {
        s->failed = 1;
        lma_error(LMA_ERR_NOMEM, "ref backend: cannot allocate %zu doubles of scratch", n);
        return NULL;
    }
    s->p[s->n++] = p;
    return p;
}

/* double copy of x (NULL stays NULL) */
static double *s_in(scratch *s, const float *x, size_t n) {
    if (!x) return NULL;
    double *d = s_alloc(s, n);
    if (d) for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void s_free(scratch *s) {
    for (int i = 0; i < s->n; i++) free(s->p[i]);
    s->n = 0;
}

static void put(float *dst, const double *src, size_t n) {
    if (!dst) return;
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

static void poison(float *dst, size_t n) {
    if (!dst) return;
    for (size_t i = 0; i < n; i++) dst[i] = NAN;
}

#define SZ(a, b) ((size_t)(a) * (size_t)(b))

static void ref_embedding_fwd(void *out_, const int32_t *ids, const void *wte_, int N, int C) {
    float *out = out_;
    const float *wte = wte_;
    /* a pure gather: exact in float, no scratch needed */
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[SZ(n, C) + c] = wte[SZ(ids[n], C) + c];
}

static void ref_embedding_bwd(float *dwte, const void *dout_, const int32_t *ids, int N, int C) {
    const float *dout = dout_;
    if (!dwte) return;
    /* accumulate per row in double; rows may repeat, so sum the increments first */
    scratch s = {0};
    double *acc = s_alloc(&s, (size_t)C);
    if (!acc) { for (int n = 0; n < N; n++) poison(dwte + SZ(ids[n], C), C); s_free(&s); return; }
    for (int n = 0; n < N; n++) {
        int seen = 0;
        for (int j = 0; j < n; j++) if (ids[j] == ids[n]) { seen = 1; break; }
        if (seen) continue;
        float *row = dwte + SZ(ids[n], C);
        for (int c = 0; c < C; c++) acc[c] = row[c];
        for (int j = n; j < N; j++)
            if (ids[j] == ids[n])
                for (int c = 0; c < C; c++) acc[c] += dout[SZ(j, C) + c];
        put(row, acc, C);
    }
    s_free(&s);
}

static void ref_rmsnorm_fwd(void *out_, float *rstd, const void *inp_, const void *w_, int N, int C,
                            float eps) {
    float *out = out_;
    const float *inp = inp_, *w = w_;
    scratch s = {0};
    double *x = s_in(&s, inp, SZ(N, C)), *wd = s_in(&s, w, C);
    double *o = s_alloc(&s, SZ(N, C)), *r = s_alloc(&s, N);
    if (s.failed) { poison(out, SZ(N, C)); poison(rstd, N); s_free(&s); return; }
    lma_ref_rmsnorm_fwd(o, r, x, wd, N, C, eps);
    put(out, o, SZ(N, C));
    put(rstd, r, N);
    s_free(&s);
}

static void ref_rmsnorm_bwd(void *dinp_, float *dw, const void *dout_, const void *inp_, const void *w_,
                            const float *rstd, int N, int C) {
    float *dinp = dinp_;
    const float *dout = dout_, *inp = inp_, *w = w_;
    scratch s = {0};
    double *g = s_in(&s, dout, SZ(N, C)), *x = s_in(&s, inp, SZ(N, C)), *wd = s_in(&s, w, C);
    double *r = s_in(&s, rstd, N), *dx = s_in(&s, dinp, SZ(N, C)), *dwd = s_in(&s, dw, C);
    if (s.failed) { poison(dinp, SZ(N, C)); poison(dw, C); s_free(&s); return; }
    lma_ref_rmsnorm_bwd(dx, dwd, g, x, wd, r, N, C);
    put(dinp, dx, SZ(N, C));
    put(dw, dwd, C);
    s_free(&s);
}

static void ref_matmul_fwd(void *out_, const void *inp_, const void *w_, const void *bias_, int N, int C,
                           int OC) {
    float *out = out_;
    const float *inp = inp_, *w = w_, *bias = bias_;
    scratch s = {0};
    double *x = s_in(&s, inp, SZ(N, C)), *wd = s_in(&s, w, SZ(OC, C)), *bd = s_in(&s, bias, OC);
    double *o = s_alloc(&s, SZ(N, OC));
    if (s.failed) { poison(out, SZ(N, OC)); s_free(&s); return; }
    lma_ref_matmul_fwd(o, x, wd, bd, N, C, OC);
    put(out, o, SZ(N, OC));
    s_free(&s);
}

static void ref_matmul_bwd(void *dinp_, float *dw, float *dbias, const void *dout_, const void *inp_,
                           const void *w_, int N, int C, int OC) {
    float *dinp = dinp_;
    const float *dout = dout_, *inp = inp_, *w = w_;
    scratch s = {0};
    double *g = s_in(&s, dout, SZ(N, OC)), *x = s_in(&s, inp, SZ(N, C)), *wd = s_in(&s, w, SZ(OC, C));
    double *dx = s_in(&s, dinp, SZ(N, C)), *dwd = s_in(&s, dw, SZ(OC, C)), *db = s_in(&s, dbias, OC);
    if (s.failed) {
        poison(dinp, SZ(N, C)); poison(dw, SZ(OC, C)); poison(dbias, OC); s_free(&s); return;
    }
    lma_ref_matmul_bwd(dx, dwd, db, g, x, wd, N, C, OC);
    put(dinp, dx, SZ(N, C));
    put(dw, dwd, SZ(OC, C));
    put(dbias, db, OC);
    s_free(&s);
}

static void ref_rope_fwd(void *out_, const void *inp_, const int32_t *pos, const float *inv_freq, int N,
                         int NH, int HD) {
    float *out = out_;
    const float *inp = inp_;
    size_t n = SZ(N, NH) * (size_t)HD;
    scratch s = {0};
    double *x = s_in(&s, inp, n), *f = s_in(&s, inv_freq, HD / 2), *o = s_alloc(&s, n);
    if (s.failed) { poison(out, n); s_free(&s); return; }
    lma_ref_rope_fwd(o, x, pos, f, N, NH, HD);
    put(out, o, n);
    s_free(&s);
}

static void ref_rope_bwd(void *dinp_, const void *dout_, const int32_t *pos, const float *inv_freq, int N,
                         int NH, int HD) {
    float *dinp = dinp_;
    const float *dout = dout_;
    if (!dinp) return;
    size_t n = SZ(N, NH) * (size_t)HD;
    scratch s = {0};
    double *g = s_in(&s, dout, n), *f = s_in(&s, inv_freq, HD / 2), *dx = s_in(&s, dinp, n);
    if (s.failed) { poison(dinp, n); s_free(&s); return; }
    lma_ref_rope_bwd(dx, g, pos, f, N, NH, HD);
    put(dinp, dx, n);
    s_free(&s);
}

/* saved = the probabilities (B,NH,T,T) as float, for inspection; the backward
 * recomputes them in double from q and k. */
static size_t ref_attention_saved_floats(int B, int T, int NH, int HD) { return SZ(B, NH) * SZ(T, T); }

static void ref_attention_fwd(void *out_, float *saved, const void *q_, const void *k_, const void *v_,
                              const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale) {
    float *out = out_;
    const float *q = q_, *k = k_, *v = v_;
    size_t nq = SZ(B, T) * SZ(NH, HD), nk = SZ(B, T) * SZ(NKV, HD), na = SZ(B, NH) * SZ(T, T);
    scratch s = {0};
    double *qd = s_in(&s, q, nq), *kd = s_in(&s, k, nk), *vd = s_in(&s, v, nk);
    double *o = s_alloc(&s, nq), *att = s_alloc(&s, na);
    if (s.failed) { poison(out, nq); poison(saved, na); s_free(&s); return; }
    lma_ref_attention_fwd(o, att, qd, kd, vd, seg, B, T, NH, NKV, HD, scale);
    put(out, o, nq);
    put(saved, att, na);
    s_free(&s);
}

/* per sequence: the new rows into its cache, then the double oracle on the cache's rows */
static void ref_attention_cached(void *out_, const void *q_, const void *k_, const void *v_, const lma_kv_seq *seqs,
                                 int n_seq, int n, int layer, int NH, int NKV, int HD, float scale) {
    size_t KVD = SZ(NKV, HD), nq = SZ(n, NH) * (size_t)HD, rows = (size_t)n * KVD;
    for (int i = 0; i < n_seq; i++) {
        const lma_kv_seq *sq = &seqs[i];
        float *kc = (float *)sq->k + SZ(layer, sq->cap) * KVD, *vc = (float *)sq->v + SZ(layer, sq->cap) * KVD;
        float *out = (float *)out_ + (size_t)i * nq;
        memcpy(kc + (size_t)sq->len * KVD, (const float *)k_ + (size_t)i * rows, rows * sizeof(float));
        memcpy(vc + (size_t)sq->len * KVD, (const float *)v_ + (size_t)i * rows, rows * sizeof(float));
        size_t nk = (size_t)(sq->len + n) * KVD;
        scratch s = {0};
        double *qd = s_in(&s, (const float *)q_ + (size_t)i * nq, nq), *kd = s_in(&s, kc, nk), *vd = s_in(&s, vc, nk);
        double *o = s_alloc(&s, nq);
        if (s.failed) poison(out, nq);
        else {
            lma_ref_attention_cached(o, qd, kd, vd, sq->len, n, NH, NKV, HD, scale);
            put(out, o, nq);
        }
        s_free(&s);
    }
}

/* out (the forward's output) is not needed: the probabilities are recomputed */
static void ref_attention_bwd(void *dq_, void *dk_, void *dv_, const void *dout_, const void *out, const float *saved,
                              const void *q_, const void *k_, const void *v_, const int32_t *seg, int B,
                              int T, int NH, int NKV, int HD, float scale) {
    float *dq = dq_, *dk = dk_, *dv = dv_;
    const float *dout = dout_, *q = q_, *k = k_, *v = v_;
    size_t nq = SZ(B, T) * SZ(NH, HD), nk = SZ(B, T) * SZ(NKV, HD), na = SZ(B, NH) * SZ(T, T);
    scratch s = {0};
    double *qd = s_in(&s, q, nq), *kd = s_in(&s, k, nk), *vd = s_in(&s, v, nk), *g = s_in(&s, dout, nq);
    double *o = s_alloc(&s, nq), *att = s_alloc(&s, na);
    double *dqd = s_in(&s, dq, nq), *dkd = s_in(&s, dk, nk), *dvd = s_in(&s, dv, nk);
    if (s.failed) { poison(dq, nq); poison(dk, nk); poison(dv, nk); s_free(&s); return; }
    lma_ref_attention_fwd(o, att, qd, kd, vd, seg, B, T, NH, NKV, HD, scale);
    lma_ref_attention_bwd(dqd, dkd, dvd, g, att, qd, kd, vd, seg, B, T, NH, NKV, HD, scale);
    put(dq, dqd, nq);
    put(dk, dkd, nk);
    put(dv, dvd, nk);
    s_free(&s);
}

static void ref_swiglu_fwd(void *out_, const void *gate_, const void *up_, size_t n) {
    float *out = out_;
    const float *gate = gate_, *up = up_;
    scratch s = {0};
    double *g = s_in(&s, gate, n), *u = s_in(&s, up, n), *o = s_alloc(&s, n);
    if (s.failed) { poison(out, n); s_free(&s); return; }
    lma_ref_swiglu_fwd(o, g, u, n);
    put(out, o, n);
    s_free(&s);
}

static void ref_swiglu_bwd(void *dgate_, void *dup_, const void *dout_, const void *gate_, const void *up_,
                           size_t n) {
    float *dgate = dgate_, *dup = dup_;
    const float *dout = dout_, *gate = gate_, *up = up_;
    scratch s = {0};
    double *go = s_in(&s, dout, n), *g = s_in(&s, gate, n), *u = s_in(&s, up, n);
    double *dg = s_in(&s, dgate, n), *du = s_in(&s, dup, n);
    if (s.failed) { poison(dgate, n); poison(dup, n); s_free(&s); return; }
    lma_ref_swiglu_bwd(dg, du, go, g, u, n);
    put(dgate, dg, n);
    put(dup, du, n);
    s_free(&s);
}

static void ref_add(void *out_, const void *a_, const void *b_, size_t n) {
    float *out = out_;
    const float *a = a_, *b = b_;
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)a[i] + (double)b[i]);
}

static void ref_cross_entropy(float *losses, void *dlogits_, const void *logits_, const int32_t *targets,
                              int N, int V, float dscale) {
    float *dlogits = dlogits_;
    const float *logits = logits_;
    size_t n = SZ(N, V);
    scratch s = {0};
    double *x = s_in(&s, logits, n), *l = s_alloc(&s, N), *d = dlogits ? s_alloc(&s, n) : NULL;
    if (s.failed) { poison(losses, N); poison(dlogits, n); s_free(&s); return; }
    lma_ref_cross_entropy(l, d, x, targets, N, V, dscale);
    put(losses, l, N);
    put(dlogits, d, n);
    s_free(&s);
}

static void ref_adamw(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1,
                      float b2, float eps, float wd, int t, float grad_scale) {
    scratch s = {0};
    double *pd = s_in(&s, p, n), *gd = s_in(&s, g, n), *md = s_in(&s, m, n), *vd = s_in(&s, v, n);
    if (s.failed) { poison(p, n); s_free(&s); return; }
    lma_ref_adamw(pd, gd, md, vd, n, lr, b1, b2, eps, wd, t, grad_scale);
    put(p, pd, n);
    put(m, md, n);
    put(v, vd, n);
    s_free(&s);
    if (p_act && p_act != p) memcpy(p_act, p, n * sizeof(float)); /* act storage is fp32 */
}

/* act storage is fp32: the casts are copies */
static void ref_cast_to_act(void *dst, const float *src, size_t n) {
    if (dst != src && n) memcpy(dst, src, n * sizeof(float));
}

static void ref_act_to_f32(float *dst, const void *src, size_t n) {
    if (dst != src && n) memcpy(dst, src, n * sizeof(float));
}

static double ref_sum_sq(const float *x, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * (double)x[i];
    return sum;
}

static void ref_scale(void *x_, float s, size_t n) {
    float *x = x_;
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)x[i] * (double)s);
}

static void ref_dropout(void *out_, const void *x_, float p, uint64_t seed, size_t n) {
    float *out = out_;
    const float *x = x_;
    for (size_t i = 0; i < n; i++) { /* the mask from its definition: a uniform in [0, 1) against p */
        double u = lma_dropout_bits(seed, i) / 4294967296.0;
        out[i] = u >= (double)lma_dropout_threshold(p) / 4294967296.0 ? (float)((double)x[i] / (1.0 - (double)p)) : 0.0f;
    }
}

/* NF4 matmuls: the whole weight dequantized element by element (the oracle). */
static void ref_matmul_nf4_fwd(void *out_, const void *inp_, const struct lma_nf4_tensor *w, const void *bias_,
                               int N, int C, int OC) {
    float *out = out_;
    const float *inp = inp_, *bias = bias_;
    float *wd = malloc(SZ(OC, C) * sizeof(float));
    if (!wd) { poison(out, SZ(N, OC)); return; }
    lma_nf4_dequantize(w, 0, (int64_t)OC * C, wd);
    ref_matmul_fwd(out, inp, wd, bias, N, C, OC);
    free(wd);
}

static void ref_matmul_nf4_bwd(void *dinp_, const void *dout_, const struct lma_nf4_tensor *w, int N, int C,
                               int OC) {
    float *dinp = dinp_;
    const float *dout = dout_;
    float *wd = malloc(SZ(OC, C) * sizeof(float));
    if (!wd) { poison(dinp, SZ(N, C)); return; }
    lma_nf4_dequantize(w, 0, (int64_t)OC * C, wd);
    ref_matmul_bwd(dinp, NULL, NULL, dout, NULL, wd, N, C, OC);
    free(wd);
}

/* GGUF-block matmul: each weight row dequantized (exactly as lma_ggml_dequantize), then the
 * fp32 matmul in double: what the cpu's int8 kernels approximate (quant/qdot.h). */
static void ref_matmul_q_fwd(void *out_, const void *inp_, const struct lma_qmat *w, const void *bias_, int N) {
    float *out = out_;
    const float *inp = inp_, *bias = bias_;
    int C = w->cols, OC = w->rows;
    float *row = malloc((size_t)C * sizeof(float));
    if (!row) { poison(out, SZ(N, OC)); return; }
    for (int o = 0; o < OC; o++) {
        lma_qmat_row_f32(w, o, row);
        for (int n = 0; n < N; n++) {
            double acc = bias ? (double)bias[o] : 0.0;
            for (int c = 0; c < C; c++) acc += (double)inp[(size_t)n * C + c] * (double)row[c];
            out[(size_t)n * OC + o] = (float)acc;
        }
    }
    free(row);
}

/* ---- encoder ops ---- */
static void ref_layernorm_fwd(void *out_, const void *inp_, const void *w_, const void *b_, int N, int C,
                              float eps) {
    float *out = out_;
    scratch s = {0};
    double *x = s_in(&s, inp_, SZ(N, C)), *wd = s_in(&s, w_, C), *bd = s_in(&s, b_, C), *o = s_alloc(&s, SZ(N, C));
    if (s.failed) { poison(out, SZ(N, C)); s_free(&s); return; }
    lma_ref_layernorm_fwd(o, x, wd, bd, N, C, eps);
    put(out, o, SZ(N, C));
    s_free(&s);
}

static void ref_gelu_fwd(void *out_, const void *inp_, size_t n) {
    float *out = out_;
    scratch s = {0};
    double *x = s_in(&s, inp_, n), *o = s_alloc(&s, n);
    if (s.failed) { poison(out, n); s_free(&s); return; }
    lma_ref_gelu_fwd(o, x, n);
    put(out, o, n);
    s_free(&s);
}

static void ref_attention_bidir_fwd(void *out_, const void *q_, const void *k_, const void *v_, const int32_t *lens,
                                    int B, int T, int NH, int HD, float scale) {
    float *out = out_;
    size_t n = SZ(B, T) * SZ(NH, HD);
    scratch s = {0};
    double *qd = s_in(&s, q_, n), *kd = s_in(&s, k_, n), *vd = s_in(&s, v_, n), *o = s_alloc(&s, n);
    if (s.failed) { poison(out, n); s_free(&s); return; }
    lma_ref_attention_bidir_fwd(o, qd, kd, vd, lens, B, T, NH, HD, scale);
    put(out, o, n);
    s_free(&s);
}

static const lma_backend ref_backend = {
    .name = "ref",
    .act_bytes = 4,
    .alloc = lma_backend_host_alloc,
    .free = lma_backend_host_free,
    .upload = lma_backend_host_copy,
    .download = lma_backend_host_copy,
    .zero = lma_backend_host_zero,
    .copy = lma_backend_host_copy,
    .copy2d = lma_backend_host_copy2d,
    .cast_to_act = ref_cast_to_act,
    .act_to_f32 = ref_act_to_f32,
    .embedding_fwd = ref_embedding_fwd,
    .embedding_bwd = ref_embedding_bwd,
    .rmsnorm_fwd = ref_rmsnorm_fwd,
    .rmsnorm_bwd = ref_rmsnorm_bwd,
    .matmul_fwd = ref_matmul_fwd,
    .matmul_bwd = ref_matmul_bwd,
    .rope_fwd = ref_rope_fwd,
    .rope_bwd = ref_rope_bwd,
    .attention_saved_floats = ref_attention_saved_floats,
    .attention_fwd = ref_attention_fwd,
    .attention_bwd = ref_attention_bwd,
    .attention_cached = ref_attention_cached,
    .swiglu_fwd = ref_swiglu_fwd,
    .swiglu_bwd = ref_swiglu_bwd,
    .add = ref_add,
    .cross_entropy = ref_cross_entropy,
    .adamw = ref_adamw,
    .sum_sq = ref_sum_sq,
    .scale = ref_scale,
    .dropout = ref_dropout,
    .matmul_nf4_fwd = ref_matmul_nf4_fwd,
    .matmul_nf4_bwd = ref_matmul_nf4_bwd,
    .matmul_q_fwd = ref_matmul_q_fwd,
    .layernorm_fwd = ref_layernorm_fwd,
    .gelu_fwd = ref_gelu_fwd,
    .attention_bidir_fwd = ref_attention_bidir_fwd,
};

const lma_backend *lma_backend_ref(void) { return &ref_backend; }
