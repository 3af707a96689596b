/* Backend op table tests.
 * (a) every double-precision ref backward op against central finite
 *     differences (odd shapes, GQA, several segments, ignored targets);
 * (b) the CPU backend (and cpu-bf16's matmuls) against the ref backend on fresh random inputs: forward
 *     outputs poisoned with NaN beforehand (every element must be written),
 *     gradients pre-filled with random values (backward must accumulate),
 *     NULL gradients, aliasing (rope in place, add, cross-entropy in place);
 * (c) properties: attention over packed segments equals each segment run
 *     alone; a fully ignored batch has zero loss and gradient; AdamW against a
 *     hand-computed double loop; rope at position 0 is the identity. */
#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ref/ref_ops.h"
#include "core/rng.h"
#include "core/status.h"
#include "quant/half.h"
#include "test.h"
#include <stdint.h>

static lma_rng rng;

static double *dvec(size_t n) { double *p = calloc(n ? n : 1, sizeof *p); if (!p) abort(); return p; }
static float *fvec(size_t n) { float *p = calloc(n ? n : 1, sizeof *p); if (!p) abort(); return p; }
static double *drand(size_t n, double sd) {
    double *p = dvec(n);
    for (size_t i = 0; i < n; i++) p[i] = sd * lma_rng_normal(&rng);
    return p;
}
static float *frand(size_t n, double sd) {
    float *p = fvec(n);
    for (size_t i = 0; i < n; i++) p[i] = (float)(sd * lma_rng_normal(&rng));
    return p;
}
static float *fcopy(const float *x, size_t n) { float *p = fvec(n); memcpy(p, x, n * sizeof *p); return p; }
static void fnan(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = NAN; }
static double ddot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static double rel_l2_dd(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i]; }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
static void inv_freq_d(double *f, int HD, double theta) {
    for (int i = 0; i < HD / 2; i++) f[i] = 1.0 / pow(theta, 2.0 * i / HD);
}
static void inv_freq_f(float *f, int HD, double theta) {
    for (int i = 0; i < HD / 2; i++) f[i] = (float)(1.0 / pow(theta, 2.0 * i / HD));
}

/* ===================== (a) finite differences on the ref ops ===================== */
/* The scalar checked is L = sum(out * r) for a fixed random r (or the summed
 * loss for cross-entropy); its gradient is the backward with dout = r. */
typedef double (*loss_fn)(void *ctx);

/* central differences of L over every element of x, against the analytic
 * gradient g (the increment the backward added) */
static double fd_rel_err(double *x, size_t n, const double *g, loss_fn L, void *ctx) {
    double *fd = dvec(n);
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i], h = 1e-5 * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h; double lp = L(ctx);
        x[i] = x0 - h; double lm = L(ctx);
        x[i] = x0;
        fd[i] = (lp - lm) / (2 * h);
    }
    double e = rel_l2_dd(g, fd, n);
    free(fd);
    return e;
}

/* the increment a backward made: buffer after minus the random prefill */
static double *increment(const double *after, const double *before, size_t n) {
    double *d = dvec(n);
    for (size_t i = 0; i < n; i++) d[i] = after[i] - before[i];
    return d;
}
static double *dprefill(size_t n) { return drand(n, 0.3); }
static double *dclone(const double *x, size_t n) { double *p = dvec(n); memcpy(p, x, n * sizeof *p); return p; }

#define FD_TOL 1e-6
#define FD_CHECK(name, x, n, after, before, L, ctx) do { \
    double *inc_ = increment(after, before, n); \
    double e_ = fd_rel_err(x, n, inc_, L, ctx); \
    CHECK(e_ <= FD_TOL, "FD %s: rel err %.3g", name, e_); \
    free(inc_); } while (0)

typedef struct { int N, C, V; int32_t *ids; double *wte, *out, *r; } emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    lma_ref_embedding_fwd(c->out, c->ids, c->wte, c->N, c->C);
    return ddot(c->out, c->r, (size_t)c->N * c->C);
}

typedef struct { int N, C; double *inp, *w, *out, *rstd, *r; double eps; } rms_ctx;
static double rms_loss(void *p) {
    rms_ctx *c = p;
    lma_ref_rmsnorm_fwd(c->out, c->rstd, c->inp, c->w, c->N, c->C, c->eps);
    return ddot(c->out, c->r, (size_t)c->N * c->C);
}

typedef struct { int N, C, OC; double *inp, *w, *bias, *out, *r; } mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    lma_ref_matmul_fwd(c->out, c->inp, c->w, c->bias, c->N, c->C, c->OC);
    return ddot(c->out, c->r, (size_t)c->N * c->OC);
}

typedef struct { int N, NH, HD; int32_t *pos; double *inp, *f, *out, *r; } rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    lma_ref_rope_fwd(c->out, c->inp, c->pos, c->f, c->N, c->NH, c->HD);
    return ddot(c->out, c->r, (size_t)c->N * c->NH * c->HD);
}

typedef struct { int B, T, NH, NKV, HD; int32_t *seg; double *q, *k, *v, *out, *att, *r; double scale; } att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    lma_ref_attention_fwd(c->out, c->att, c->q, c->k, c->v, c->seg, c->B, c->T, c->NH, c->NKV, c->HD, c->scale);
    return ddot(c->out, c->r, (size_t)c->B * c->T * c->NH * c->HD);
}

typedef struct { size_t n; double *g, *u, *out, *r; } swi_ctx;
static double swi_loss(void *p) {
    swi_ctx *c = p;
    lma_ref_swiglu_fwd(c->out, c->g, c->u, c->n);
    return ddot(c->out, c->r, c->n);
}

typedef struct { int N, V; int32_t *tg; double *logits, *losses; double dscale; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    lma_ref_cross_entropy(c->losses, NULL, c->logits, c->tg, c->N, c->V, c->dscale);
    double s = 0;
    for (int i = 0; i < c->N; i++) s += c->losses[i] * c->dscale;
    return s;
}

static void test_fd(void) {
    { /* embedding, with a repeated id */
        emb_ctx c = {.N = 7, .C = 13, .V = 5};
        int32_t ids[7] = {3, 0, 4, 3, 1, 3, 2};
        c.ids = ids; c.wte = drand(65, 1); c.out = dvec(91); c.r = drand(91, 1);
        double *d0 = dprefill(65), *d = dclone(d0, 65);
        lma_ref_embedding_bwd(d, c.r, ids, c.N, c.C);
        FD_CHECK("embedding dwte", c.wte, 65, d, d0, emb_loss, &c);
        free(c.wte); free(c.out); free(c.r); free(d0); free(d);
    }
    { /* rmsnorm */
        rms_ctx c = {.N = 7, .C = 13, .eps = 1e-5};
        size_t n = 91;
        c.inp = drand(n, 1); c.w = drand(13, 1); c.out = dvec(n); c.rstd = dvec(7); c.r = drand(n, 1);
        rms_loss(&c);
        double *dx0 = dprefill(n), *dx = dclone(dx0, n), *dw0 = dprefill(13), *dw = dclone(dw0, 13);
        lma_ref_rmsnorm_bwd(dx, dw, c.r, c.inp, c.w, c.rstd, c.N, c.C);
        FD_CHECK("rmsnorm dinp", c.inp, n, dx, dx0, rms_loss, &c);
        FD_CHECK("rmsnorm dw", c.w, 13, dw, dw0, rms_loss, &c);
        free(c.inp); free(c.w); free(c.out); free(c.rstd); free(c.r); free(dx0); free(dx); free(dw0); free(dw);
    }
    { /* matmul with bias */
        mm_ctx c = {.N = 7, .C = 13, .OC = 11};
        c.inp = drand(91, 1); c.w = drand(143, 1); c.bias = drand(11, 1); c.out = dvec(77); c.r = drand(77, 1);
        double *dx0 = dprefill(91), *dx = dclone(dx0, 91), *dw0 = dprefill(143), *dw = dclone(dw0, 143);
        double *db0 = dprefill(11), *db = dclone(db0, 11);
        lma_ref_matmul_bwd(dx, dw, db, c.r, c.inp, c.w, c.N, c.C, c.OC);
        FD_CHECK("matmul dinp", c.inp, 91, dx, dx0, mm_loss, &c);
        FD_CHECK("matmul dw", c.w, 143, dw, dw0, mm_loss, &c);
        FD_CHECK("matmul dbias", c.bias, 11, db, db0, mm_loss, &c);
        free(c.inp); free(c.w); free(c.bias); free(c.out); free(c.r);
        free(dx0); free(dx); free(dw0); free(dw); free(db0); free(db);
    }
    { /* rope */
        rope_ctx c = {.N = 7, .NH = 4, .HD = 6};
        size_t n = 7 * 4 * 6;
        int32_t pos[7] = {0, 1, 2, 5, 0, 1, 9};
        double f[3];
        inv_freq_d(f, 6, 10000.0);
        c.pos = pos; c.f = f; c.inp = drand(n, 1); c.out = dvec(n); c.r = drand(n, 1);
        double *dx0 = dprefill(n), *dx = dclone(dx0, n);
        lma_ref_rope_bwd(dx, c.r, pos, f, c.N, c.NH, c.HD);
        FD_CHECK("rope dinp", c.inp, n, dx, dx0, rope_loss, &c);
        free(c.inp); free(c.out); free(c.r); free(dx0); free(dx);
    }
    { /* attention: GQA 4/2, odd T, three segments in b=0, one in b=1 */
        att_ctx c = {.B = 2, .T = 9, .NH = 4, .NKV = 2, .HD = 6};
        int32_t seg[18] = {0, 0, 0, 1, 1, 1, 1, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 5};
        size_t nq = 2 * 9 * 4 * 6, nk = 2 * 9 * 2 * 6;
        c.seg = seg; c.scale = 1.0 / sqrt(6.0);
        c.q = drand(nq, 1); c.k = drand(nk, 1); c.v = drand(nk, 1);
        c.out = dvec(nq); c.att = dvec(2 * 4 * 81); c.r = drand(nq, 1);
        att_loss(&c);
        double *dq0 = dprefill(nq), *dq = dclone(dq0, nq), *dk0 = dprefill(nk), *dk = dclone(dk0, nk);
        double *dv0 = dprefill(nk), *dv = dclone(dv0, nk);
        lma_ref_attention_bwd(dq, dk, dv, c.r, c.att, c.q, c.k, c.v, seg, c.B, c.T, c.NH, c.NKV, c.HD, c.scale);
        FD_CHECK("attention dq", c.q, nq, dq, dq0, att_loss, &c);
        FD_CHECK("attention dk", c.k, nk, dk, dk0, att_loss, &c);
        FD_CHECK("attention dv", c.v, nk, dv, dv0, att_loss, &c);
        free(c.q); free(c.k); free(c.v); free(c.out); free(c.att); free(c.r);
        free(dq0); free(dq); free(dk0); free(dk); free(dv0); free(dv);
    }
    { /* swiglu */
        swi_ctx c = {.n = 91};
        c.g = drand(91, 2); c.u = drand(91, 1); c.out = dvec(91); c.r = drand(91, 1);
        double *dg0 = dprefill(91), *dg = dclone(dg0, 91), *du0 = dprefill(91), *du = dclone(du0, 91);
        lma_ref_swiglu_bwd(dg, du, c.r, c.g, c.u, 91);
        FD_CHECK("swiglu dgate", c.g, 91, dg, dg0, swi_loss, &c);
        FD_CHECK("swiglu dup", c.u, 91, du, du0, swi_loss, &c);
        free(c.g); free(c.u); free(c.out); free(c.r); free(dg0); free(dg); free(du0); free(du);
    }
    { /* cross-entropy, two ignored rows; the op overwrites dlogits */
        ce_ctx c = {.N = 7, .V = 13, .dscale = 0.37};
        int32_t tg[7] = {3, LMA_IGNORE_INDEX, 12, 0, LMA_IGNORE_INDEX, 5, 3};
        c.tg = tg; c.logits = drand(91, 2); c.losses = dvec(7);
        double *d = drand(91, 1), *zero = dvec(91);
        lma_ref_cross_entropy(c.losses, d, c.logits, tg, c.N, c.V, c.dscale);
        CHECK(c.losses[1] == 0 && c.losses[4] == 0, "CE: ignored rows have loss 0");
        FD_CHECK("cross_entropy dlogits", c.logits, 91, d, zero, ce_loss, &c);
        free(c.logits); free(c.losses); free(d); free(zero);
    }
}

/* ===================== (b) CPU against ref ===================== */
static const lma_backend *cpu, *ref;
#define TOL 1e-5

/* checks the CPU result against the ref result (both float) */
#define CMP(what, a, b, n, tol) do { \
    double e_ = test_rel_l2f(a, b, n); \
    CHECK(e_ <= (tol), "cpu vs ref %s: rel L2 %.3g > %.1g", what, e_, (double)(tol)); } while (0)

static void cmp_embedding(int N, int C, int V) {
    int32_t *ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)lma_rng_below(&rng, V);
    size_t no = (size_t)N * C, nw = (size_t)V * C;
    float *wte = frand(nw, 1), *o1 = fvec(no), *o2 = fvec(no), *g = frand(no, 1);
    fnan(o1, no); fnan(o2, no);
    cpu->embedding_fwd(o1, ids, wte, N, C);
    ref->embedding_fwd(o2, ids, wte, N, C);
    CMP("embedding out", o1, o2, no, 0);
    float *d1 = frand(nw, 0.5), *d2 = fcopy(d1, nw);
    cpu->embedding_bwd(d1, g, ids, N, C);
    ref->embedding_bwd(d2, g, ids, N, C);
    CMP("embedding dwte", d1, d2, nw, TOL);
    cpu->embedding_bwd(NULL, g, ids, N, C); /* frozen table: must not crash */
    free(ids); free(wte); free(o1); free(o2); free(g); free(d1); free(d2);
}

static void cmp_rmsnorm(int N, int C) {
    size_t n = (size_t)N * C;
    float *x = frand(n, 1.5), *w = frand(C, 1), *o1 = fvec(n), *o2 = fvec(n), *r1 = fvec(N), *r2 = fvec(N);
    fnan(o1, n); fnan(r1, N);
    cpu->rmsnorm_fwd(o1, r1, x, w, N, C, 1e-5f);
    ref->rmsnorm_fwd(o2, r2, x, w, N, C, 1e-5f);
    CMP("rmsnorm out", o1, o2, n, TOL);
    CMP("rmsnorm rstd", r1, r2, N, TOL);
    float *g = frand(n, 1), *dx1 = frand(n, 0.5), *dx2 = fcopy(dx1, n), *dw1 = frand(C, 0.5), *dw2 = fcopy(dw1, C);
    cpu->rmsnorm_bwd(dx1, dw1, g, x, w, r2, N, C);
    ref->rmsnorm_bwd(dx2, dw2, g, x, w, r2, N, C);
    CMP("rmsnorm dinp", dx1, dx2, n, TOL);
    CMP("rmsnorm dw", dw1, dw2, C, TOL);
    /* one gradient at a time: the other NULL */
    float *dx3 = fcopy(dx1, n), *dw3 = fcopy(dw1, C);
    cpu->rmsnorm_bwd(dx3, NULL, g, x, w, r2, N, C);
    ref->rmsnorm_bwd(dx2, NULL, g, x, w, r2, N, C);
    cpu->rmsnorm_bwd(NULL, dw3, g, x, w, r2, N, C);
    ref->rmsnorm_bwd(NULL, dw2, g, x, w, r2, N, C);
    CMP("rmsnorm dinp (dw NULL)", dx3, dx2, n, TOL);
    CMP("rmsnorm dw (dinp NULL)", dw3, dw2, C, TOL);
    free(x); free(w); free(o1); free(o2); free(r1); free(r2); free(g);
    free(dx1); free(dx2); free(dw1); free(dw2); free(dx3); free(dw3);
}

/* be's matmuls against ref's on the operands be should see: as given, or rounded to bf16
 * (cpu-bf16, every dimension >= 64); the bias gradient always from the fp32 dout */
static float *bf16_round(const float *x, size_t n) {
    float *p = fvec(n);
    for (size_t i = 0; i < n; i++) p[i] = lma_q_bf16_to_f32(lma_q_f32_to_bf16(x[i]));
    return p;
}
static void cmp_matmul_on(const lma_backend *be, int bf16, int N, int C, int OC, int with_bias) {
    size_t ni = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
    int rounded = bf16 && N >= 64 && C >= 64 && OC >= 64;
    float *x = frand(ni, 1), *w = frand(nw, 0.3), *b = with_bias ? frand(OC, 1) : NULL, *g = frand(no, 1);
    float *xe = rounded ? bf16_round(x, ni) : fcopy(x, ni), *we = rounded ? bf16_round(w, nw) : fcopy(w, nw);
    float *ge = rounded ? bf16_round(g, no) : fcopy(g, no);
    float *o1 = fvec(no), *o2 = fvec(no), *o3 = fvec(no);
    fnan(o1, no);
    be->matmul_fwd(o1, x, w, b, N, C, OC);
    ref->matmul_fwd(o2, xe, we, b, N, C, OC);
    CMP("matmul out", o1, o2, no, TOL);
    if (bf16) { /* bf16 was used: away from the unrounded product by its rounding */
        ref->matmul_fwd(o3, x, w, b, N, C, OC);
        double e = test_rel_l2f(o1, o3, no);
        CHECK(rounded ? e > 1e-5 && e < 1e-2 : e <= TOL, "%s %dx%dx%d: out vs fp32 rel L2 %.3g", be->name, N, C, OC, e);
    }
    /* fwd_add: o1 += x w^T (the ref backend has none: ref's product added to its output) */
    be->matmul_fwd_add(o1, x, w, o1, N, C, OC);
    ref->matmul_fwd(o3, xe, we, NULL, N, C, OC);
    for (size_t i = 0; i < no; i++) o2[i] += o3[i];
    CMP("matmul_fwd_add out", o1, o2, no, TOL);
    /* ... and onto another matrix: o1 = o2 + x w^T, o2 untouched */
    float *o4 = fcopy(o2, no);
    be->matmul_fwd_add(o1, x, w, o4, N, C, OC);
    CHECK(!memcmp(o4, o2, no * sizeof *o4), "%s: matmul_fwd_add leaves res as it was", be->name);
    for (size_t i = 0; i < no; i++) o2[i] += o3[i];
    CMP("matmul_fwd_add out (res apart)", o1, o2, no, TOL);
    free(o4);
    float *dx1 = frand(ni, 0.5), *dx2 = fcopy(dx1, ni), *dw1 = frand(nw, 0.5), *dw2 = fcopy(dw1, nw);
    float *db1 = frand(OC, 0.5), *db2 = fcopy(db1, OC);
    be->matmul_bwd(dx1, dw1, with_bias ? db1 : NULL, g, x, w, N, C, OC);
    ref->matmul_bwd(dx2, dw2, NULL, ge, xe, we, N, C, OC);
    if (with_bias) ref->matmul_bwd(NULL, NULL, db2, g, x, w, N, C, OC);
    CMP("matmul dinp", dx1, dx2, ni, TOL);
    CMP("matmul dw", dw1, dw2, nw, TOL);
    CMP("matmul dbias", db1, db2, OC, TOL);
    /* frozen weight (LoRA-style): only dinp */
    be->matmul_bwd(dx1, NULL, NULL, g, x, w, N, C, OC);
    ref->matmul_bwd(dx2, NULL, NULL, ge, xe, we, N, C, OC);
    CMP("matmul dinp (dw NULL)", dx1, dx2, ni, TOL);
    free(x); free(w); free(b); free(g); free(xe); free(we); free(ge); free(o1); free(o2); free(o3);
    free(dx1); free(dx2); free(dw1); free(dw2); free(db1); free(db2);
}
static void cmp_matmul(int N, int C, int OC, int with_bias) { cmp_matmul_on(cpu, 0, N, C, OC, with_bias); }
/* cpu-bf16 (cpu_gemm_bf16.c) with micro-kernel isa (0 portable C, 1 AVX512_BF16): equal to the
 * double-precision product of the bf16-rounded operands up to fp32 summation (TOL) */
static void cmp_matmul_bf16(int isa, int N, int C, int OC, int with_bias) {
    lma_cpu_bf16_isa = isa;
    cmp_matmul_on(lma_backend_by_name("cpu-bf16"), 1, N, C, OC, with_bias);
    lma_cpu_bf16_isa = -1;
}

static void cmp_rope(int N, int NH, int HD) {
    size_t n = (size_t)N * NH * HD;
    int32_t *pos = malloc(N * sizeof *pos);
    for (int i = 0; i < N; i++) pos[i] = (int32_t)lma_rng_below(&rng, 40);
    float *f = fvec(HD / 2);
    inv_freq_f(f, HD, 10000.0);
    float *x = frand(n, 1), *o1 = fvec(n), *o2 = fvec(n);
    fnan(o1, n);
    cpu->rope_fwd(o1, x, pos, f, N, NH, HD);
    ref->rope_fwd(o2, x, pos, f, N, NH, HD);
    CMP("rope out", o1, o2, n, TOL);
    float *inplace = fcopy(x, n);
    cpu->rope_fwd(inplace, inplace, pos, f, N, NH, HD);
    CMP("rope in place", inplace, o1, n, 0);
    float *g = frand(n, 1), *d1 = frand(n, 0.5), *d2 = fcopy(d1, n);
    cpu->rope_bwd(d1, g, pos, f, N, NH, HD);
    ref->rope_bwd(d2, g, pos, f, N, NH, HD);
    CMP("rope dinp", d1, d2, n, TOL);
    free(pos); free(f); free(x); free(o1); free(o2); free(inplace); free(g); free(d1); free(d2);
}

/* seg_kind: 0 = NULL, 1 = contiguous packed segments, 2 = scattered ids */
static void cmp_attention(int B, int T, int NH, int NKV, int HD, int seg_kind) {
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    int32_t *seg = NULL;
    if (seg_kind) {
        seg = malloc((size_t)B * T * sizeof *seg);
        for (int b = 0; b < B; b++) {
            int id = 0;
            for (int t = 0; t < T; t++) {
                if (seg_kind == 1 && t > 0 && lma_rng_below(&rng, 6) == 0) id++;
                seg[(size_t)b * T + t] = seg_kind == 1 ? id : (int32_t)lma_rng_below(&rng, 3);
            }
        }
    }
    float scale = 1.0f / sqrtf((float)HD);
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1);
    float *o1 = fvec(nq), *o2 = fvec(nq);
    size_t ns1 = cpu->attention_saved_floats(B, T, NH, HD), ns2 = ref->attention_saved_floats(B, T, NH, HD);
    float *s1 = fvec(ns1), *s2 = fvec(ns2);
    fnan(o1, nq); fnan(s1, ns1);
    cpu->attention_fwd(o1, s1, q, k, v, seg, B, T, NH, NKV, HD, scale);
    ref->attention_fwd(o2, s2, q, k, v, seg, B, T, NH, NKV, HD, scale);
    CMP("attention out", o1, o2, nq, TOL);
    float *g = frand(nq, 1);
    float *dq1 = frand(nq, 0.5), *dq2 = fcopy(dq1, nq), *dk1 = frand(nk, 0.5), *dk2 = fcopy(dk1, nk);
    float *dv1 = frand(nk, 0.5), *dv2 = fcopy(dv1, nk);
    cpu->attention_bwd(dq1, dk1, dv1, g, o1, s1, q, k, v, seg, B, T, NH, NKV, HD, scale);
    ref->attention_bwd(dq2, dk2, dv2, g, o2, s2, q, k, v, seg, B, T, NH, NKV, HD, scale);
    CMP("attention dq", dq1, dq2, nq, TOL);
    CMP("attention dk", dk1, dk2, nk, TOL);
    CMP("attention dv", dv1, dv2, nk, TOL);
    /* only dq wanted (e.g. frozen k/v path) */
    cpu->attention_bwd(dq1, NULL, NULL, g, o1, s1, q, k, v, seg, B, T, NH, NKV, HD, scale);
    ref->attention_bwd(dq2, NULL, NULL, g, o2, s2, q, k, v, seg, B, T, NH, NKV, HD, scale);
    CMP("attention dq (dk dv NULL)", dq1, dq2, nq, TOL);
    free(seg); free(q); free(k); free(v); free(o1); free(o2); free(s1); free(s2); free(g);
    free(dq1); free(dq2); free(dk1); free(dk2); free(dv1); free(dv2);
}

static void cmp_swiglu_add(size_t n) {
    float *gt = frand(n, 3), *up = frand(n, 1), *o1 = fvec(n), *o2 = fvec(n);
    gt[0] = -100.0f; gt[n - 1] = 60.0f; /* saturated ends of the sigmoid */
    fnan(o1, n);
    cpu->swiglu_fwd(o1, gt, up, n);
    ref->swiglu_fwd(o2, gt, up, n);
    CMP("swiglu out", o1, o2, n, TOL);
    float *g = frand(n, 1), *dg1 = frand(n, 0.5), *dg2 = fcopy(dg1, n), *du1 = frand(n, 0.5), *du2 = fcopy(du1, n);
    cpu->swiglu_bwd(dg1, du1, g, gt, up, n);
    ref->swiglu_bwd(dg2, du2, g, gt, up, n);
    CMP("swiglu dgate", dg1, dg2, n, TOL);
    CMP("swiglu dup", du1, du2, n, TOL);
    cpu->swiglu_bwd(dg1, NULL, g, gt, up, n);
    ref->swiglu_bwd(dg2, NULL, g, gt, up, n);
    cpu->swiglu_bwd(NULL, du1, g, gt, up, n);
    ref->swiglu_bwd(NULL, du2, g, gt, up, n);
    CMP("swiglu dgate (dup NULL)", dg1, dg2, n, TOL);
    CMP("swiglu dup (dgate NULL)", du1, du2, n, TOL);
    /* add, including out aliasing a and b */
    float *a = frand(n, 1), *b = frand(n, 1);
    fnan(o1, n);
    cpu->add(o1, a, b, n);
    ref->add(o2, a, b, n);
    CMP("add", o1, o2, n, 0);
    float *a2 = fcopy(a, n), *b2 = fcopy(b, n);
    cpu->add(a2, a2, b, n);
    cpu->add(b2, a, b2, n);
    CMP("add out=a", a2, o2, n, 0);
    CMP("add out=b", b2, o2, n, 0);
    free(gt); free(up); free(o1); free(o2); free(g); free(dg1); free(dg2); free(du1); free(du2);
    free(a); free(b); free(a2); free(b2);
}

/* dropout: cpu == ref (the same mask: a hash of (seed, i)), in place too; the kept share is
 * 1 - p within 4 standard deviations; another seed, another mask; p 0 keeps everything */
static void cmp_dropout(size_t n, float p) {
    float *x = frand(n, 1), *o1 = fvec(n), *o2 = fvec(n), *o3 = fcopy(x, n);
    cpu->dropout(o1, x, p, 1234, n);
    ref->dropout(o2, x, p, 1234, n);
    CMP("dropout", o1, o2, n, 1e-6);
    cpu->dropout(o3, o3, p, 1234, n);
    CMP("dropout in place", o3, o1, n, 0);
    size_t kept = 0, same = 0;
    for (size_t i = 0; i < n; i++) kept += o1[i] != 0;
    cpu->dropout(o3, x, p, 1235, n);
    for (size_t i = 0; i < n; i++) same += (o3[i] != 0) == (o1[i] != 0);
    double sd = sqrt((double)n * p * (1 - p));
    CHECK(fabs((double)kept - (double)n * (1 - p)) <= 4 * sd + 1, "dropout %g keeps %zu of %zu", p, kept, n);
    CHECK(p == 0 || same < n, "another seed, another mask");
    cpu->dropout(o3, x, 0.0f, 7, n);
    CMP("dropout p 0", o3, x, n, 0);
    free(x); free(o1); free(o2); free(o3);
}

static void cmp_cross_entropy(int N, int V) {
    size_t n = (size_t)N * V;
    int32_t *tg = malloc(N * sizeof *tg);
    for (int i = 0; i < N; i++) tg[i] = (i % 4 == 2) ? LMA_IGNORE_INDEX : (int32_t)lma_rng_below(&rng, V);
    tg[0] = V - 1; /* the last column */
    float *x = frand(n, 3), *l1 = fvec(N), *l2 = fvec(N), *d1 = fvec(n), *d2 = fvec(n);
    float dscale = 1.0f / (float)N;
    fnan(l1, N); fnan(d1, n);
    cpu->cross_entropy(l1, d1, x, tg, N, V, dscale);
    ref->cross_entropy(l2, d2, x, tg, N, V, dscale);
    CMP("cross_entropy losses", l1, l2, N, TOL);
    CMP("cross_entropy dlogits", d1, d2, n, TOL);
    fnan(l1, N);
    cpu->cross_entropy(l1, NULL, x, tg, N, V, dscale);
    CMP("cross_entropy losses (no grad)", l1, l2, N, TOL);
    float *inplace = fcopy(x, n);
    fnan(l1, N);
    cpu->cross_entropy(l1, inplace, inplace, tg, N, V, dscale);
    CMP("cross_entropy losses (in place)", l1, l2, N, TOL);
    CMP("cross_entropy dlogits (in place)", inplace, d2, n, TOL);
    free(tg); free(x); free(l1); free(l2); free(d1); free(d2); free(inplace);
}

static void cmp_sum_sq(size_t n) {
    float *x = frand(n, 2);
    double want = 0;
    for (size_t i = 0; i < n; i++) want += (double)x[i] * x[i];
    double a = cpu->sum_sq(x, n), b = ref->sum_sq(x, n);
    CHECK(fabs(a - want) <= 1e-12 * want, "sum_sq cpu %.17g want %.17g", a, want);
    CHECK(fabs(b - want) <= 1e-12 * want, "sum_sq ref %.17g want %.17g", b, want);
    free(x);
}

/* encoder ops: layernorm (also in place), exact GELU (also hand values), bidirectional
 * attention over padded rows (row-wise fallback too; padded rows are 0; a row padded to T
 * equals the same row alone at its own length) */
static void cmp_layernorm_gelu(int N, int C) {
    size_t n = (size_t)N * C;
    float *x = frand(n, 1.5), *w = frand(C, 1), *b = frand(C, 1), *o1 = fvec(n), *o2 = fvec(n);
    for (int c = 0; c < C; c++) x[c] += 100.0f; /* a large mean: the variance must not cancel */
    fnan(o1, n);
    cpu->layernorm_fwd(o1, x, w, b, N, C, 1e-12f);
    ref->layernorm_fwd(o2, x, w, b, N, C, 1e-12f);
    CMP("layernorm out", o1, o2, n, TOL);
    float *xi = fcopy(x, n);
    cpu->layernorm_fwd(xi, xi, w, b, N, C, 1e-12f);
    CMP("layernorm in place", xi, o2, n, TOL);
    fnan(o1, n);
    cpu->gelu_fwd(o1, x, n);
    ref->gelu_fwd(o2, x, n);
    CMP("gelu", o1, o2, n, TOL);
    memcpy(xi, x, n * sizeof *xi);
    cpu->gelu_fwd(xi, xi, n);
    CMP("gelu in place", xi, o2, n, TOL);
    free(x); free(w); free(b); free(o1); free(o2); free(xi);
}

static void gelu_hand(const lma_backend *be) {
    /* x Phi(x), Phi the standard normal CDF (absolute 1e-6 near 0: 1 + erf cancels in float, as in torch) */
    float x[5] = {0.0f, 1.0f, -1.0f, 3.0f, -6.0f}, o[5];
    const double want[5] = {0.0, 0.8413447460685429, -0.15865525393145707, 2.99595030590511, -5.919525869479969e-09};
    be->gelu_fwd(o, x, 5);
    for (int i = 0; i < 5; i++)
        CHECK(fabs(o[i] - want[i]) <= 1e-6 * (fabs(want[i]) > 1 ? fabs(want[i]) : 1), "%s gelu(%g) = %.9g, want %.9g", be->name,
              (double)x[i], (double)o[i], want[i]);
}

static void cmp_attention_bidir(int B, int T, int NH, int HD) {
    size_t n = (size_t)B * T * NH * HD;
    int32_t *lens = malloc((size_t)B * sizeof *lens);
    for (int b = 0; b < B; b++) lens[b] = b == 0 ? T : b == 1 ? 1 : 1 + (int32_t)lma_rng_below(&rng, T);
    float scale = 1.0f / sqrtf((float)HD);
    float *q = frand(n, 1), *k = frand(n, 1), *v = frand(n, 1), *o1 = fvec(n), *o2 = fvec(n);
    fnan(o1, n);
    cpu->attention_bidir_fwd(o1, q, k, v, lens, B, T, NH, HD, scale);
    ref->attention_bidir_fwd(o2, q, k, v, lens, B, T, NH, HD, scale);
    CMP("attention_bidir out", o1, o2, n, TOL);
    lma_cpu_attention_bidir_rowwise = 1;
    fnan(o1, n);
    cpu->attention_bidir_fwd(o1, q, k, v, lens, B, T, NH, HD, scale);
    lma_cpu_attention_bidir_rowwise = 0;
    CMP("attention_bidir out (row-wise)", o1, o2, n, TOL);
    size_t rs = (size_t)NH * HD;
    int zero = 1;
    for (int b = 0; b < B; b++)
        for (int t = lens[b]; t < T; t++)
            for (size_t i = 0; i < rs; i++) zero &= o2[((size_t)b * T + t) * rs + i] == 0.0f;
    CHECK(zero, "attention_bidir: padded rows are 0");
    /* the last row alone, at its own length: same output rows */
    int b = B - 1, L = lens[b];
    float *o3 = fvec((size_t)L * rs);
    cpu->attention_bidir_fwd(o3, q + (size_t)b * T * rs, k + (size_t)b * T * rs, v + (size_t)b * T * rs, &lens[b], 1,
                             L, NH, HD, scale);
    CMP("attention_bidir padded vs alone", o3, o2 + (size_t)b * T * rs, (size_t)L * rs, TOL);
    free(lens); free(q); free(k); free(v); free(o1); free(o2); free(o3);
}

static void test_cpu_vs_ref(void) {
    cmp_embedding(37, 13, 11);
    cmp_embedding(64, 288, 500);
    cmp_rmsnorm(7, 13);
    cmp_rmsnorm(67, 288);
    cmp_matmul(7, 13, 11, 1);
    cmp_matmul(67, 45, 131, 1);
    cmp_matmul(130, 96, 70, 0);
    cmp_matmul(12, 384, 384, 1);  /* threaded, split by columns: the bias waits for every slice */
    cmp_matmul(200, 384, 160, 1); /* threaded, split by rows */
    for (int isa = 0; isa <= lma_cpu_has_avx512bf16(); isa++) {
        cmp_matmul_bf16(isa, 67, 131, 70, 1); /* odd K, edge tiles in both dimensions */
        cmp_matmul_bf16(isa, 130, 96, 64, 0);
        cmp_matmul_bf16(isa, 200, 384, 300, 1); /* threaded, several tasks and k-blocks */
        cmp_matmul_bf16(isa, 7, 13, 11, 1);     /* small: the fp32 op */
    }
    if (!lma_cpu_has_avx512bf16()) printf("note: this CPU has no AVX512_BF16: cpu-bf16 checked with its portable kernel only\n");
    cmp_rope(7, 4, 6);
    cmp_rope(37, 3, 64);
    cmp_attention(2, 9, 4, 2, 6, 1);
    cmp_attention(2, 67, 4, 2, 24, 1);
    cmp_attention(2, 33, 6, 6, 17, 0);
    cmp_attention(3, 41, 4, 1, 8, 2);
    cmp_attention(2, 150, 4, 2, 16, 1); /* several query blocks */
    cmp_attention(1, 131, 2, 1, 8, 2);
    lma_cpu_attention_rowwise = 1; /* the backward's fallback path */
    cmp_attention(2, 150, 4, 2, 16, 1);
    cmp_attention(3, 41, 4, 1, 8, 2);
    lma_cpu_attention_rowwise = 0;
    cmp_swiglu_add(7);
    cmp_swiglu_add(1031);
    cmp_swiglu_add(70001); /* above the OpenMP threshold */
    cmp_dropout(1031, 0.1f);
    cmp_dropout(70001, 0.5f); /* above the OpenMP threshold */
    cmp_cross_entropy(7, 13);
    cmp_cross_entropy(37, 1003);
    cmp_cross_entropy(9, 32000);
    cmp_sum_sq(7);
    cmp_sum_sq(100003);
    cmp_layernorm_gelu(7, 13);
    cmp_layernorm_gelu(131, 384); /* above the OpenMP threshold */
    cmp_attention_bidir(3, 9, 2, 6);
    cmp_attention_bidir(4, 67, 3, 32);
}

/* ===================== (c) properties ===================== */

/* packed segments in one row == each segment alone (outputs and gradients) */
static void attention_segments_vs_separate(const lma_backend *be) {
    enum { T = 23, NH = 4, NKV = 2, HD = 8 };
    int32_t seg[T];
    int starts[] = {0, 5, 6, 14, T}; /* segments of length 5, 1, 8, 9 */
    for (int s = 0; s < 4; s++) for (int t = starts[s]; t < starts[s + 1]; t++) seg[t] = 10 + s;
    size_t nq = (size_t)T * NH * HD, nk = (size_t)T * NKV * HD;
    float scale = 0.3f;
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1), *g = frand(nq, 1);
    float *o = fvec(nq), *sv = fvec(be->attention_saved_floats(1, T, NH, HD));
    float *dq = fvec(nq), *dk = fvec(nk), *dv = fvec(nk);
    be->attention_fwd(o, sv, q, k, v, seg, 1, T, NH, NKV, HD, scale);
    be->attention_bwd(dq, dk, dv, g, o, sv, q, k, v, seg, 1, T, NH, NKV, HD, scale);
    float *o_s = fvec(nq), *dq_s = fvec(nq), *dk_s = fvec(nk), *dv_s = fvec(nk);
    for (int s = 0; s < 4; s++) {
        int t0 = starts[s], L = starts[s + 1] - t0;
        size_t qo = (size_t)t0 * NH * HD, ko = (size_t)t0 * NKV * HD;
        float *sv1 = fvec(be->attention_saved_floats(1, L, NH, HD));
        be->attention_fwd(o_s + qo, sv1, q + qo, k + ko, v + ko, NULL, 1, L, NH, NKV, HD, scale);
        be->attention_bwd(dq_s + qo, dk_s + ko, dv_s + ko, g + qo, o_s + qo, sv1, q + qo, k + ko, v + ko, NULL, 1,
                          L, NH, NKV, HD, scale);
        free(sv1);
    }
    /* the same arithmetic on the same spans: equal up to summation order */
    CMP("segments: out", o, o_s, nq, 1e-6);
    CMP("segments: dq", dq, dq_s, nq, 1e-6);
    CMP("segments: dk", dk, dk_s, nk, 1e-6);
    CMP("segments: dv", dv, dv_s, nk, 1e-6);
    /* and a segment really is cut off: the first token of segment 2 is its own value */
    for (int h = 0; h < NH; h++) {
        int ok = 1;
        for (int i = 0; i < HD; i++)
            ok &= fabsf(o[(size_t)5 * NH * HD + h * HD + i] - v[(size_t)5 * NKV * HD + (h / 2) * HD + i]) < 1e-6f;
        CHECK(ok, "%s: a one-token segment attends only to itself (head %d)", be->name, h);
    }
    free(q); free(k); free(v); free(g); free(o); free(sv); free(dq); free(dk); free(dv);
    free(o_s); free(dq_s); free(dk_s); free(dv_s);
}

static void ce_all_ignored(const lma_backend *be) {
    enum { N = 5, V = 37 };
    int32_t tg[N];
    for (int i = 0; i < N; i++) tg[i] = LMA_IGNORE_INDEX;
    float *x = frand(N * V, 2), *l = fvec(N), *d = frand(N * V, 1);
    fnan(l, N);
    be->cross_entropy(l, d, x, tg, N, V, 0.25f);
    int zl = 1, zd = 1;
    for (int i = 0; i < N; i++) zl &= l[i] == 0.0f;
    for (int i = 0; i < N * V; i++) zd &= d[i] == 0.0f;
    CHECK(zl, "%s: all-ignored batch has zero losses", be->name);
    CHECK(zd, "%s: all-ignored batch has zero dlogits", be->name);
    /* uniform logits: loss = log V, gradient (1/V - onehot) * dscale */
    float u[V], lu, du[V];
    int32_t t1 = 7;
    for (int j = 0; j < V; j++) u[j] = 1.5f;
    be->cross_entropy(&lu, du, u, &t1, 1, V, 2.0f);
    CHECK(fabs(lu - log((double)V)) < 1e-6, "%s: uniform logits loss %.9g want log V", be->name, lu);
    CHECK(fabs(du[7] - 2.0 * (1.0 / V - 1)) < 1e-6 && fabs(du[0] - 2.0 / V) < 1e-6,
          "%s: uniform logits gradient", be->name);
    free(x); free(l); free(d);
}

/* AdamW: the update of backend.h written out by hand in double, 4 steps with
 * weight decay and a gradient scale (and lr 0 / wd 0 corner cases). */
static void adamw_hand(const lma_backend *be, double tol) {
    enum { n = 37, steps = 4 };
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, gs = 0.5f;
    float *p = frand(n, 1), *m = fvec(n), *v = fvec(n);
    double P[n], M[n] = {0}, Vv[n] = {0};
    for (int i = 0; i < n; i++) P[i] = p[i];
    for (int t = 1; t <= steps; t++) {
        float *g = frand(n, 1);
        g[3] = 0; /* a zero gradient: only decay moves it */
        be->adamw(p, g, m, v, NULL, n, lr, b1, b2, eps, wd, t, gs);
        for (int i = 0; i < n; i++) {
            double gi = (double)g[i] * gs;
            M[i] = (double)b1 * M[i] + (1 - (double)b1) * gi;
            Vv[i] = (double)b2 * Vv[i] + (1 - (double)b2) * gi * gi;
            P[i] = P[i] * (1 - (double)lr * wd);
            double mhat = M[i] / (1 - pow(b1, t)), vhat = Vv[i] / (1 - pow(b2, t));
            P[i] -= lr * mhat / (sqrt(vhat) + eps);
        }
        free(g);
    }
    double ep = test_rel_l2(p, P, n), em = test_rel_l2(m, M, n), ev = test_rel_l2(v, Vv, n);
    CHECK(ep <= tol && em <= tol && ev <= tol, "%s adamw vs hand: p %.3g m %.3g v %.3g", be->name, ep, em, ev);
    /* the first step moves every coordinate with a gradient by ~lr (Adam's sign-like step) */
    float q[1] = {2.0f}, gq[1] = {-3.0f}, mq[1] = {0}, vq[1] = {0};
    be->adamw(q, gq, mq, vq, q, 1, 0.1f, 0.9f, 0.999f, 0.0f, 0.0f, 1, 1.0f);
    CHECK(fabsf(q[0] - 2.1f) < 1e-6f, "%s adamw first step = lr * sign: %.9g", be->name, q[0]);
    /* p_act: the updated p in act storage (fp32 here), and the casts are copies */
    float r[3] = {1, -2, 3}, gr[3] = {0.5f, 0.25f, -1}, mr[3] = {0}, vr[3] = {0}, ra[3] = {NAN, NAN, NAN}, rb[3];
    be->adamw(r, gr, mr, vr, ra, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 1.0f);
    CHECK(!memcmp(r, ra, sizeof r), "%s adamw writes the act copy of p", be->name);
    be->cast_to_act(ra, gr, 3);
    be->act_to_f32(rb, ra, 3);
    CHECK(!memcmp(rb, gr, sizeof rb), "%s cast_to_act / act_to_f32 round trip", be->name);
    free(p); free(m); free(v);
}

/* AdamW against torch.optim.AdamW itself (fixture from tests/ref/backend/make_adamw_fixture.py):
 * the CPU op does torch's float operations (with its fused multiply-adds), so it must
 * agree bit for bit; the double ref agrees to float rounding (relative L2). */
static int read_floats(FILE *f, float *x, int n) {
    for (int i = 0; i < n; i++) if (fscanf(f, "%f", &x[i]) != 1) return 0;
    return 1;
}

static float max_ulps(const float *a, const float *b, int n) {
    float worst = 0;
    for (int i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]), u = nextafterf(fabsf(b[i]), INFINITY) - fabsf(b[i]);
        if (d / u > worst || isnan(d)) worst = isnan(d) ? INFINITY : d / u;
    }
    return worst;
}

static void adamw_torch(const lma_backend *be, int exact) {
    const char *path = LMA_SRC_DIR "/tests/ref/backend/adamw_torch.txt";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    int n = 0, steps = 0;
    float lr, b1, b2, eps, wd, gs;
    int ok = fscanf(f, "%d %d %f %f %f %f %f %f", &n, &steps, &lr, &b1, &b2, &eps, &wd, &gs) == 8 &&
             n > 0 && n < 100000 && steps > 0 && steps < 100;
    CHECK(ok, "%s: bad header", path);
    if (!ok) { fclose(f); return; }
    float *p = fvec(n), *m = fvec(n), *v = fvec(n), *g = fvec(n), *wp = fvec(n), *wm = fvec(n), *wv = fvec(n);
    ok = read_floats(f, p, n);
    float worst = 0;
    double worst_l2 = 0;
    for (int t = 1; ok && t <= steps; t++) {
        ok = read_floats(f, g, n) && read_floats(f, wp, n) && read_floats(f, wm, n) && read_floats(f, wv, n);
        if (!ok) break;
        be->adamw(p, g, m, v, NULL, (size_t)n, lr, b1, b2, eps, wd, t, gs);
        float e = fmaxf(max_ulps(p, wp, n), fmaxf(max_ulps(m, wm, n), max_ulps(v, wv, n)));
        worst = fmaxf(worst, e);
        worst_l2 = fmax(worst_l2, fmax(test_rel_l2f(p, wp, n), fmax(test_rel_l2f(m, wm, n), test_rel_l2f(v, wv, n))));
    }
    CHECK(ok, "%s: truncated", path);
    if (exact) CHECK(worst == 0, "%s adamw vs torch: differs by up to %.3g ulp", be->name, worst);
    else CHECK(worst_l2 <= 1e-6, "%s adamw vs torch: rel L2 %.3g", be->name, worst_l2);
    printf("%s adamw vs torch.optim.AdamW over %d steps: worst %.3g ulp, rel L2 %.3g\n", be->name, steps, worst,
           worst_l2);
    fclose(f);
    free(p); free(m); free(v); free(g); free(wp); free(wm); free(wv);
}

static void rope_identity(const lma_backend *be) {
    enum { N = 3, NH = 2, HD = 10 };
    int32_t pos[N] = {0, 0, 0};
    float f[HD / 2], *x = frand(N * NH * HD, 1), o[N * NH * HD];
    inv_freq_f(f, HD, 500000.0);
    be->rope_fwd(o, x, pos, f, N, NH, HD);
    CHECK(memcmp(o, x, sizeof o) == 0, "%s: rope at position 0 is the identity", be->name);
    free(x);
}

/* attention_cached: new tokens against a KV cache equal the matching rows of the full causal
 * attention, on both backends: one sequence prefilled in several splits (layer 1 of a 2-layer
 * cache); and a batched decode step of 3 sequences of different lengths (one new token each,
 * different capacities) equal to each sequence's last row alone. The new rows land in the
 * caches; the other layer is untouched. */
static void attention_cached_vs_full(const lma_backend *be) {
    enum { T = 13, NH = 4, NKV = 2, HD = 6, KVD = NKV * HD, CAP = 16 };
    size_t nq = (size_t)T * NH * HD, nk = (size_t)T * KVD;
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1), *full = fvec(nq), *out = fvec(nq);
    float *saved = fvec(be->attention_saved_floats(1, T, NH, HD));
    float *kc = fvec(2 * CAP * KVD), *vc = fvec(2 * CAP * KVD);
    float scale = 1.0f / sqrtf((float)HD);
    be->attention_fwd(full, saved, q, k, v, NULL, 1, T, NH, NKV, HD, scale);
    int splits[3] = {0, 5, 12};
    for (int i = 0; i < 3; i++) {
        int past = splits[i], n = T - past;
        fnan(kc, 2 * CAP * KVD); fnan(vc, 2 * CAP * KVD);
        memcpy(kc + CAP * KVD, k, (size_t)past * KVD * sizeof(float));
        memcpy(vc + CAP * KVD, v, (size_t)past * KVD * sizeof(float));
        lma_kv_seq sq = {.k = kc, .v = vc, .cap = CAP, .len = past};
        fnan(out, nq);
        be->attention_cached(out, q + (size_t)past * NH * HD, k + (size_t)past * KVD, v + (size_t)past * KVD, &sq,
                             1, n, 1, NH, NKV, HD, scale);
        double err = test_rel_l2f(out, full + (size_t)past * NH * HD, (size_t)n * NH * HD);
        CHECK(err < 1e-6, "%s: cached attention past=%d equals full attention rows (rel %.3g)", be->name, past, err);
        CHECK(!memcmp(kc + CAP * KVD, k, nk * sizeof(float)) && !memcmp(vc + CAP * KVD, v, nk * sizeof(float)),
              "%s: past=%d: the cache holds every row's k and v after the call", be->name, past);
        CHECK(isnan(kc[0]) && isnan(vc[CAP * KVD - 1]), "%s: layer 0 untouched", be->name);
    }
    /* batched decode: sequence j is the first lens[j] rows of (q, k, v) */
    int lens[3] = {1, 7, 13}, caps[3] = {3, 9, 16};
    float *kcs[3], *vcs[3], qb[3 * NH * HD], kb[3 * KVD], vb[3 * KVD], ob[3 * NH * HD];
    lma_kv_seq seqs[3];
    for (int j = 0; j < 3; j++) {
        int L = lens[j] - 1;
        kcs[j] = fvec(2 * (size_t)caps[j] * KVD); vcs[j] = fvec(2 * (size_t)caps[j] * KVD);
        memcpy(kcs[j] + caps[j] * KVD, k, (size_t)L * KVD * sizeof(float));
        memcpy(vcs[j] + caps[j] * KVD, v, (size_t)L * KVD * sizeof(float));
        memcpy(qb + j * NH * HD, q + (size_t)L * NH * HD, NH * HD * sizeof(float));
        memcpy(kb + j * KVD, k + (size_t)L * KVD, KVD * sizeof(float));
        memcpy(vb + j * KVD, v + (size_t)L * KVD, KVD * sizeof(float));
        seqs[j] = (lma_kv_seq){.k = kcs[j], .v = vcs[j], .cap = caps[j], .len = L};
    }
    fnan(ob, 3 * NH * HD);
    be->attention_cached(ob, qb, kb, vb, seqs, 3, 1, 1, NH, NKV, HD, scale);
    for (int j = 0; j < 3; j++) {
        int L = lens[j] - 1;
        /* the full attention of the first lens[j] rows: its last row is causal, so row L of the
         * T-row run is it */
        double err = test_rel_l2f(ob + j * NH * HD, full + (size_t)L * NH * HD, NH * HD);
        CHECK(err < 1e-6, "%s: batched decode, sequence %d (%d cached) equals its own attention (rel %.3g)", be->name,
              j, L, err);
        CHECK(!memcmp(kcs[j] + (caps[j] + L) * KVD, kb + j * KVD, KVD * sizeof(float)),
              "%s: batched decode, sequence %d: its new k is in its cache row %d", be->name, j, L);
        free(kcs[j]); free(vcs[j]);
    }
    free(q); free(k); free(v); free(full); free(out); free(saved); free(kc); free(vc);
}

int main(void) {
    lma_rng_seed(&rng, 20240601);
    cpu = lma_backend_by_name("cpu");
    ref = lma_backend_by_name("ref");
    CHECK(cpu && ref && !lma_backend_by_name("cuda-nope") && !lma_backend_by_name(NULL), "backend lookup");
    if (!cpu || !ref) TEST_END();
    const lma_backend *all[2] = {cpu, ref};
    for (int i = 0; i < 2; i++) {
        const lma_backend *be = all[i];
        int complete = be->alloc && be->free && be->upload && be->download && be->zero && be->embedding_fwd &&
                       be->embedding_bwd && be->rmsnorm_fwd && be->rmsnorm_bwd && be->matmul_fwd &&
                       be->matmul_bwd && be->rope_fwd && be->rope_bwd && be->attention_saved_floats &&
                       be->attention_fwd && be->attention_bwd && be->swiglu_fwd && be->swiglu_bwd && be->add &&
                       be->cross_entropy && be->adamw && be->sum_sq && be->copy && be->attention_cached &&
                       be->cast_to_act && be->act_to_f32 && be->layernorm_fwd && be->gelu_fwd &&
                       be->attention_bidir_fwd;
        CHECK(complete, "%s: every op implemented", be->name);
        CHECK(!be->norm_proj_fwd, "%s: no fused norm_proj_fwd (the model runs the unfused ops)", be->name);
        CHECK(be->act_bytes == 4, "%s: fp32 act storage (act_bytes %d)", be->name, be->act_bytes);
        float *blk = be->alloc(1000);
        CHECK(blk && ((uintptr_t)blk & 63) == 0, "%s: alloc is 64-byte aligned", be->name);
        float h[250], back[250];
        for (int j = 0; j < 250; j++) h[j] = (float)j;
        be->upload(blk, h, sizeof h);
        be->download(back, blk, sizeof back);
        CHECK(!memcmp(h, back, sizeof h), "%s: upload/download round trip", be->name);
        be->zero(blk, sizeof h);
        be->download(back, blk, sizeof back);
        CHECK(back[0] == 0 && back[249] == 0, "%s: zero", be->name);
        be->free(blk);
    }
    test_fd();
    test_cpu_vs_ref();
    for (int i = 0; i < 2; i++) {
        attention_segments_vs_separate(all[i]);
        ce_all_ignored(all[i]);
        adamw_hand(all[i], all[i] == ref ? 1e-7 : 1e-6);
        rope_identity(all[i]);
        attention_cached_vs_full(all[i]);
        gelu_hand(all[i]);
        adamw_torch(all[i], all[i] == cpu);
    }
    CHECK(!lma_error_pending(), "no error recorded: %s", lma_last_error());
    TEST_END();
}
