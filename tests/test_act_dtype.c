/* Activation storage (backend.h act_bytes) vs the fp32 masters (llama.h):
 *  - cpu (act_bytes 4): the compute copy IS the masters (wact == params, no extra
 *    memory), for the model and a LoRA adapter; a host write to the masters +
 *    lma_model_sync_weights changes the loss;
 *  - a test backend that stores activations and the compute copy in bf16
 *    (act_bytes 2: the cpu ops behind conversions, as a GPU backend would do in its
 *    kernels) runs every model path with a separate compute copy: the forward reads
 *    the compute copy (a master write without sync changes nothing, with sync the
 *    loss follows the cpu model), AdamW moves fp32 masters and refreshes the copy
 *    (== bf16(master) exactly), logits come back as fp32, KV-cache decoding, LoRA
 *    with dropout, merge; results track the cpu backend within bf16 tolerances. */
#include <stdint.h>
#include <string.h>
#include "backend/host.h"
#include "core/rng.h"
#include "model/llama.h"
#include "model/lora.h"
#include "model/safetensors.h"
#include <unistd.h>
#include "test.h"
#include "test_models.h"

/* ---- the bf16-storage test backend ---------------------------------------------- */

static const lma_backend *cpu;

/* fp32 copy of n bf16 elements (NULL stays NULL) */
static float *in(const void *p, size_t n) {
    if (!p) return NULL;
    float *f = calloc(n ? n : 1, sizeof *f);
    if (!f) abort();
    const uint16_t *h = p;
    for (size_t i = 0; i < n; i++) f[i] = lma_bf16_to_f32(h[i]);
    return f;
}

/* fp32 scratch for an output the op overwrites */
static float *buf(size_t n) {
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (!f) abort();
    return f;
}

/* rounds f into p (bf16) and frees f; NULL p: only frees */
static void out(void *p, float *f, size_t n) {
    if (p) {
        uint16_t *h = p;
        for (size_t i = 0; i < n; i++) h[i] = lma_f32_to_bf16(f[i]);
    }
    free(f);
}

static void b_cast_to_act(void *dst, const float *src, size_t n) {
    uint16_t *h = dst;
    for (size_t i = 0; i < n; i++) h[i] = lma_f32_to_bf16(src[i]);
}
static void b_act_to_f32(float *dst, const void *src, size_t n) {
    const uint16_t *h = src;
    for (size_t i = 0; i < n; i++) dst[i] = lma_bf16_to_f32(h[i]);
}
static void b_embedding_fwd(void *o, const int32_t *ids, const void *wte, int N, int C) {
    for (int n = 0; n < N; n++)
        memcpy((uint16_t *)o + (size_t)n * C, (const uint16_t *)wte + (size_t)ids[n] * C, (size_t)C * 2);
}
static void b_embedding_bwd(float *dwte, const void *dout, const int32_t *ids, int N, int C) {
    float *g = in(dout, (size_t)N * C);
    cpu->embedding_bwd(dwte, g, ids, N, C);
    free(g);
}
static void b_rmsnorm_fwd(void *o, float *rstd, const void *inp, const void *w, int N, int C, float eps) {
    size_t n = (size_t)N * C;
    float *x = in(inp, n), *wf = in(w, C), *y = buf(n);
    cpu->rmsnorm_fwd(y, rstd, x, wf, N, C, eps);
    out(o, y, n); free(x); free(wf);
}
static void b_rmsnorm_bwd(void *dinp, float *dw, const void *dout, const void *inp, const void *w, const float *rstd,
                          int N, int C) {
    size_t n = (size_t)N * C;
    float *dx = in(dinp, n), *g = in(dout, n), *x = in(inp, n), *wf = in(w, C);
    cpu->rmsnorm_bwd(dx, dw, g, x, wf, rstd, N, C);
    out(dinp, dx, n); free(g); free(x); free(wf);
}
static void b_matmul_fwd(void *o, const void *inp, const void *w, const void *bias, int N, int C, int OC) {
    float *x = in(inp, (size_t)N * C), *wf = in(w, (size_t)OC * C), *b = in(bias, OC), *y = buf((size_t)N * OC);
    cpu->matmul_fwd(y, x, wf, b, N, C, OC);
    out(o, y, (size_t)N * OC); free(x); free(wf); free(b);
}
/* as the CUDA bf16 table: the sum in fp32, rounded once */
static void b_matmul_fwd_add(void *o, const void *inp, const void *w, const void *res, int N, int C, int OC) {
    float *x = in(inp, (size_t)N * C), *wf = in(w, (size_t)OC * C), *y = in(res, (size_t)N * OC);
    float *t = buf((size_t)N * OC);
    cpu->matmul_fwd(t, x, wf, NULL, N, C, OC);
    for (size_t i = 0; i < (size_t)N * OC; i++) y[i] += t[i];
    out(o, y, (size_t)N * OC); free(x); free(wf); free(t);
}
static void b_matmul_bwd(void *dinp, float *dw, float *dbias, const void *dout, const void *inp, const void *w, int N,
                         int C, int OC) {
    float *dx = in(dinp, (size_t)N * C), *g = in(dout, (size_t)N * OC), *x = in(inp, (size_t)N * C);
    float *wf = in(w, (size_t)OC * C);
    cpu->matmul_bwd(dx, dw, dbias, g, x, wf, N, C, OC);
    out(dinp, dx, (size_t)N * C); free(g); free(x); free(wf);
}
static void b_rope_fwd(void *o, const void *inp, const int32_t *pos, const float *f, int N, int NH, int HD) {
    size_t n = (size_t)N * NH * HD;
    float *x = in(inp, n);
    cpu->rope_fwd(x, x, pos, f, N, NH, HD);
    out(o, x, n);
}
static void b_rope_bwd(void *dinp, const void *dout, const int32_t *pos, const float *f, int N, int NH, int HD) {
    size_t n = (size_t)N * NH * HD;
    float *dx = in(dinp, n), *g = in(dout, n);
    cpu->rope_bwd(dx, g, pos, f, N, NH, HD);
    out(dinp, dx, n); free(g);
}
static size_t b_saved(int B, int T, int NH, int HD) { return cpu->attention_saved_floats(B, T, NH, HD); }
static void b_attention_fwd(void *o, float *saved, const void *q, const void *k, const void *v, const int32_t *seg,
                            int B, int T, int NH, int NKV, int HD, float scale) {
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    float *qf = in(q, nq), *kf = in(k, nk), *vf = in(v, nk), *y = buf(nq);
    cpu->attention_fwd(y, saved, qf, kf, vf, seg, B, T, NH, NKV, HD, scale);
    out(o, y, nq); free(qf); free(kf); free(vf);
}
static void b_attention_bwd(void *dq, void *dk, void *dv, const void *dout, const void *o, const float *saved,
                            const void *q, const void *k, const void *v, const int32_t *seg, int B, int T, int NH,
                            int NKV, int HD, float scale) {
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    float *dqf = in(dq, nq), *dkf = in(dk, nk), *dvf = in(dv, nk), *g = in(dout, nq), *of = in(o, nq);
    float *qf = in(q, nq), *kf = in(k, nk), *vf = in(v, nk);
    cpu->attention_bwd(dqf, dkf, dvf, g, of, saved, qf, kf, vf, seg, B, T, NH, NKV, HD, scale);
    out(dq, dqf, nq); out(dk, dkf, nk); out(dv, dvf, nk);
    free(g); free(of); free(qf); free(kf); free(vf);
}
/* each cache's layer in fp32 (its cached rows, then room for the new ones), the cpu op, and
 * the new rows rounded back into the bf16 caches */
static void b_attention_cached(void *o, const void *q, const void *k, const void *v, const lma_kv_seq *seqs,
                               int n_seq, int n, int layer, int NH, int NKV, int HD, float scale) {
    size_t KVD = (size_t)NKV * HD, nq = (size_t)n_seq * n * NH * HD, nk = (size_t)n_seq * n * KVD;
    float *qf = in(q, nq), *kf = in(k, nk), *vf = in(v, nk), *y = buf(nq);
    lma_kv_seq *fs = calloc((size_t)n_seq, sizeof *fs);
    if (!fs) abort();
    for (int i = 0; i < n_seq; i++) {
        size_t lay = (size_t)layer * seqs[i].cap * KVD, rows = (size_t)(seqs[i].len + n) * KVD;
        fs[i] = (lma_kv_seq){.k = in((const uint16_t *)seqs[i].k + lay, rows),
                             .v = in((const uint16_t *)seqs[i].v + lay, rows), .cap = seqs[i].len + n,
                             .len = seqs[i].len};
    }
    cpu->attention_cached(y, qf, kf, vf, fs, n_seq, n, 0, NH, NKV, HD, scale);
    for (int i = 0; i < n_seq; i++) {
        size_t at = ((size_t)layer * seqs[i].cap + seqs[i].len) * KVD, past = (size_t)seqs[i].len * KVD;
        b_cast_to_act((uint16_t *)seqs[i].k + at, (float *)fs[i].k + past, (size_t)n * KVD);
        b_cast_to_act((uint16_t *)seqs[i].v + at, (float *)fs[i].v + past, (size_t)n * KVD);
        free(fs[i].k); free(fs[i].v);
    }
    free(fs);
    out(o, y, nq); free(qf); free(kf); free(vf);
}
static void b_swiglu_fwd(void *o, const void *gate, const void *up, size_t n) {
    float *g = in(gate, n), *u = in(up, n), *y = buf(n);
    cpu->swiglu_fwd(y, g, u, n);
    out(o, y, n); free(g); free(u);
}
static void b_swiglu_bwd(void *dgate, void *dup, const void *dout, const void *gate, const void *up, size_t n) {
    float *dg = in(dgate, n), *du = in(dup, n), *d = in(dout, n), *g = in(gate, n), *u = in(up, n);
    cpu->swiglu_bwd(dg, du, d, g, u, n);
    out(dgate, dg, n); out(dup, du, n); free(d); free(g); free(u);
}
static void b_add(void *o, const void *a, const void *b, size_t n) {
    float *af = in(a, n), *bf = in(b, n);
    cpu->add(af, af, bf, n);
    out(o, af, n); free(bf);
}
static void b_scale(void *x, float s, size_t n) {
    float *f = in(x, n);
    cpu->scale(f, s, n);
    out(x, f, n);
}
static void b_dropout(void *o, const void *x, float p, uint64_t seed, size_t n) {
    float *xf = in(x, n);
    cpu->dropout(xf, xf, p, seed, n);
    out(o, xf, n);
}
static void b_cross_entropy(float *losses, void *dlogits, const void *logits, const int32_t *targets, int N, int V,
                            float dscale) {
    size_t n = (size_t)N * V;
    float *x = in(logits, n);
    cpu->cross_entropy(losses, dlogits ? x : NULL, x, targets, N, V, dscale);
    out(dlogits, x, n);
}
static void b_adamw(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1, float b2,
                    float eps, float wd, int t, float gs) {
    cpu->adamw(p, g, m, v, NULL, n, lr, b1, b2, eps, wd, t, gs);
    if (p_act) b_cast_to_act(p_act, p, n);
}
static double b_sum_sq(const float *x, size_t n) { return cpu->sum_sq(x, n); }

/* the fused q|k|v rows (backend.h qkv_rope_*), counted: the model must take them both ways */
static int qkv_calls[2];
static void b_qkv_rope_fwd(void *q, void *k, void *v, const void *qkv, const int32_t *pos, const float *f, int N,
                           int NH, int NKV, int HD) {
    size_t QD = (size_t)NH * HD, KVD = (size_t)NKV * HD, W = QD + 2 * KVD;
    float *x = in(qkv, (size_t)N * W), *fq = buf((size_t)N * QD), *fk = buf((size_t)N * KVD), *fv = buf((size_t)N * KVD);
    for (int n = 0; n < N; n++) {
        memcpy(fq + n * QD, x + n * W, QD * sizeof(float));
        memcpy(fk + n * KVD, x + n * W + QD, KVD * sizeof(float));
        memcpy(fv + n * KVD, x + n * W + QD + KVD, KVD * sizeof(float));
    }
    cpu->rope_fwd(fq, fq, pos, f, N, NH, HD);
    cpu->rope_fwd(fk, fk, pos, f, N, NKV, HD);
    out(q, fq, (size_t)N * QD); out(k, fk, (size_t)N * KVD); out(v, fv, (size_t)N * KVD); free(x);
    qkv_calls[0]++;
}
static void b_qkv_rope_bwd(void *dqkv, const void *dq, const void *dk, const void *dv, const int32_t *pos,
                           const float *f, int N, int NH, int NKV, int HD) {
    size_t QD = (size_t)NH * HD, KVD = (size_t)NKV * HD, W = QD + 2 * KVD;
    float *gq = in(dq, (size_t)N * QD), *gk = in(dk, (size_t)N * KVD), *gv = in(dv, (size_t)N * KVD);
    float *rq = calloc((size_t)N * QD, sizeof(float)), *rk = calloc((size_t)N * KVD, sizeof(float)), *o = buf((size_t)N * W);
    cpu->rope_bwd(rq, gq, pos, f, N, NH, HD);
    cpu->rope_bwd(rk, gk, pos, f, N, NKV, HD);
    for (int n = 0; n < N; n++) {
        memcpy(o + n * W, rq + n * QD, QD * sizeof(float));
        memcpy(o + n * W + QD, rk + n * KVD, KVD * sizeof(float));
        memcpy(o + n * W + QD + KVD, gv + n * KVD, KVD * sizeof(float));
    }
    out(dqkv, o, (size_t)N * W);
    free(gq); free(gk); free(gv); free(rq); free(rk);
    qkv_calls[1]++;
}

static const lma_backend bf16_backend = {
    .name = "cpu-bf16-test", .act_bytes = 2,
    .alloc = lma_backend_host_alloc, .free = lma_backend_host_free, .upload = lma_backend_host_copy,
    .download = lma_backend_host_copy, .zero = lma_backend_host_zero, .copy = lma_backend_host_copy,
    .cast_to_act = b_cast_to_act, .act_to_f32 = b_act_to_f32,
    .embedding_fwd = b_embedding_fwd, .embedding_bwd = b_embedding_bwd,
    .rmsnorm_fwd = b_rmsnorm_fwd, .rmsnorm_bwd = b_rmsnorm_bwd,
    .matmul_fwd = b_matmul_fwd, .matmul_bwd = b_matmul_bwd,
    .rope_fwd = b_rope_fwd, .rope_bwd = b_rope_bwd,
    .attention_saved_floats = b_saved, .attention_fwd = b_attention_fwd, .attention_bwd = b_attention_bwd,
    .attention_cached = b_attention_cached,
    .swiglu_fwd = b_swiglu_fwd, .swiglu_bwd = b_swiglu_bwd, .add = b_add,
    .cross_entropy = b_cross_entropy, .adamw = b_adamw, .sum_sq = b_sum_sq,
    .scale = b_scale, .dropout = b_dropout, .matmul_fwd_add = b_matmul_fwd_add,
};

/* ---- helpers ---------------------------------------------------------------------- */

static lma_rng rng;


static void make_batch(int N, int V, int32_t *ids, int32_t *tg) {
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)lma_rng_below(&rng, (uint64_t)V);
        tg[i] = (i % 7 == 3) ? LMA_IGNORE_INDEX : (int32_t)lma_rng_below(&rng, (uint64_t)V);
    }
}

static float loss_of(lma_model *m, const int32_t *ids, const int32_t *tg, int B, int T) {
    float l = NAN;
    CHECK_OK(lma_model_forward(m, ids, tg, NULL, B, T, 0, 1.0f, &l));
    return l;
}

/* host write to the masters: every final_norm weight times k (then sync or not) */
static void scale_final_norm(lma_model *m, float k) {
    const lma_param_info *p = lma_params_find(&m->table, "model.norm.weight");
    float *h = malloc(p->numel * sizeof *h);
    m->be->download(h, m->params + p->offset, p->numel * sizeof *h);
    for (size_t i = 0; i < p->numel; i++) h[i] *= k;
    m->be->upload(m->params + p->offset, h, p->numel * sizeof *h);
    free(h);
}

/* the compute copy is exactly bf16(masters), element by element (padding included) */
static int copy_is_rounded_masters(const float *params, const void *act, size_t n, int *masters_below_bf16) {
    const uint16_t *a = act;
    int ok = 1, finer = 0;
    for (size_t i = 0; i < n; i++) {
        ok &= a[i] == lma_f32_to_bf16(params[i]);
        finer |= lma_bf16_to_f32(lma_f32_to_bf16(params[i])) != params[i];
    }
    if (masters_below_bf16) *masters_below_bf16 = finer;
    return ok;
}

/* ---- tests -------------------------------------------------------------------------- */

/* cpu: fp32 act storage, the compute copy is the masters */
static void test_cpu_aliasing(void) {
    lma_model *m = test_fixture("llama_gqa", cpu);
    if (!m) return;
    CHECK(cpu->act_bytes == 4 && m->wact == m->params, "cpu: wact == params (no compute copy)");
    const lma_param_info *e = lma_params_find(&m->table, "model.embed_tokens.weight");
    const lma_param_info *q = lma_params_find(&m->table, "model.layers.1.self_attn.q_proj.weight");
    CHECK(m->w.embed == (void *)(m->params + e->offset) && m->w.layers[1].wq == (void *)(m->params + q->offset),
          "cpu: the weight views point into the masters");
    int B = 2, T = 6, V = m->cfg.vocab_size;
    int32_t ids[12], tg[12];
    make_batch(B * T, V, ids, tg);
    float l0 = loss_of(m, ids, tg, B, T);
    scale_final_norm(m, 3.0f);
    lma_model_sync_weights(m);
    float l1 = loss_of(m, ids, tg, B, T);
    CHECK(fabsf(l1 - l0) > 1e-3f * fabsf(l0), "cpu: the forward sees the written masters (%g -> %g)", l0, l1);
    lma_lora_params lp = lma_lora_default_params();
    lp.r = 2;
    CHECK_OK(lma_lora_attach(m, &lp, 1));
    CHECK(m->lora && m->lora->pact == m->lora->params && m->lora->A[0] == (void *)m->lora->params,
          "cpu: the adapter's compute copy is its masters");
    lma_model_free(m);
}

/* bf16 activations and compute copy vs the fp32 cpu run of the same model */
static void test_bf16_storage(const char *name) {
    const lma_backend *bb = &bf16_backend;
    lma_model *mc = test_fixture(name, cpu), *mb = test_fixture(name, bb);
    if (!mc || !mb) { lma_model_free(mc); lma_model_free(mb); return; }
    size_t P = mb->table.total;
    CHECK(mb->wact != (void *)mb->params, "%s bf16: a separate compute copy", name);
    float *h = malloc(P * sizeof *h);
    mb->be->download(h, mb->params, P * sizeof *h);
    int finer = 0;
    CHECK(copy_is_rounded_masters(h, mb->wact, P, &finer), "%s bf16: load fills the compute copy", name);
    int B = 2, T = 9, N = B * T, V = mc->cfg.vocab_size;
    int32_t ids[18], tg[18];
    make_batch(N, V, ids, tg);

    /* logits come back as fp32 and track the cpu run */
    float *lc = malloc((size_t)N * V * sizeof *lc), *lb = malloc((size_t)N * V * sizeof *lb);
    CHECK_OK(lma_model_forward(mc, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(mc, lc));
    CHECK_OK(lma_model_forward(mb, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(mb, lb));
    double e = test_rel_l2f(lb, lc, (size_t)N * V);
    CHECK(e < 3e-2, "%s bf16: logits vs cpu rel L2 %.3g", name, e);
    printf("%-18s bf16 storage vs cpu: logits rel L2 %.2e\n", name, e);

    /* the forward reads the compute copy: a master write shows only after sync */
    float c0 = loss_of(mc, ids, tg, B, T), b0 = loss_of(mb, ids, tg, B, T);
    CHECK(fabsf(b0 - c0) < 2e-2f * fabsf(c0), "%s bf16: loss %.6g vs cpu %.6g", name, b0, c0);
    scale_final_norm(mb, 3.0f);
    float b1 = loss_of(mb, ids, tg, B, T);
    CHECK(b1 == b0, "%s bf16: a master write without sync leaves the forward as it was (%.9g vs %.9g)", name, b1, b0);
    lma_model_sync_weights(mb);
    scale_final_norm(mc, 3.0f);
    lma_model_sync_weights(mc);
    float c2 = loss_of(mc, ids, tg, B, T), b2 = loss_of(mb, ids, tg, B, T);
    CHECK(fabsf(b2 - b0) > 1e-2f * fabsf(b0) && fabsf(b2 - c2) < 2e-2f * fabsf(c2),
          "%s bf16: after sync the loss follows the masters (%.6g -> %.6g; cpu %.6g)", name, b0, b2, c2);

    /* KV-cache decoding: fp32 logits of bf16 activations track the cpu */
    lma_kv_cache *kc = NULL, *kb = NULL;
    CHECK_OK(lma_kv_create(mc, T, &kc));
    CHECK_OK(lma_kv_create(mb, T, &kb));
    if (kc && kb) {
        CHECK_OK(lma_model_forward_cached(mc, kc, ids, 5, lc, 1));
        CHECK_OK(lma_model_forward_cached(mb, kb, ids, 5, lb, 1));
        for (int t = 5; t < T; t++) {
            CHECK_OK(lma_model_forward_cached(mc, kc, ids + t, 1, lc + (size_t)t * V, 0));
            CHECK_OK(lma_model_forward_cached(mb, kb, ids + t, 1, lb + (size_t)t * V, 0));
        }
        e = test_rel_l2f(lb, lc, (size_t)T * V);
        CHECK(e < 3e-2, "%s bf16: KV-cache logits vs cpu rel L2 %.3g", name, e);
        printf("%-18s bf16 storage vs cpu: KV-cache logits rel L2 %.2e\n", name, e);
    }
    lma_kv_free(mc, kc);
    lma_kv_free(mb, kb);

    /* training: fp32 masters move, the compute copy is refreshed by AdamW, losses track the cpu */
    CHECK_OK(lma_model_enable_training(mc));
    CHECK_OK(lma_model_enable_training(mb));
    lma_adamw_params ap = lma_adamw_default_params();
    ap.lr = 1e-3f; ap.weight_decay = 0.1f;
    double worst = test_track(mc, mb, ids, tg, B, T, &ap, 5);
    /* (the loss falls from ~8 to <1.5 over these steps on the fixed batch: a stale compute
     * copy would be off by several times the tolerance) */
    CHECK(worst < 5e-2, "%s bf16: 5 AdamW steps track the cpu (worst loss rel err %.3g)", name, worst);
    printf("%-18s bf16 storage vs cpu: loss %.6f vs %.6f, 5 AdamW steps worst loss rel err %.2e\n", name, b0, c0,
           worst);
    mb->be->download(h, mb->params, P * sizeof *h);
    CHECK(copy_is_rounded_masters(h, mb->wact, P, &finer) && finer,
          "%s bf16: after AdamW the compute copy is bf16(fp32 masters), masters finer than bf16", name);
    free(h); free(lc); free(lb);
    lma_model_free(mc);
    lma_model_free(mb);
}

/* LoRA (with or without dropout: without, the adapter keeps no scratch beside
 * matmul_fwd_add), then merge, on bf16 storage vs cpu */
static void test_bf16_lora(const char *name, float dropout) {
    lma_model *mc = test_fixture(name, cpu), *mb = test_fixture(name, &bf16_backend);
    if (!mc || !mb) { lma_model_free(mc); lma_model_free(mb); return; }
    lma_lora_params lp = lma_lora_default_params();
    lp.r = 4; lp.alpha = 8; lp.dropout = dropout;
    CHECK_OK(lma_lora_attach(mc, &lp, 5));
    CHECK_OK(lma_lora_attach(mb, &lp, 5));
    if (!mc->lora || !mb->lora) { lma_model_free(mc); lma_model_free(mb); return; }
    lma_lora *lo = mb->lora;
    size_t P = lo->table.total;
    CHECK(lo->pact != (void *)lo->params, "%s bf16 LoRA: a separate compute copy", name);
    /* a nonzero B on both (masters written on the host, then sync) */
    float *h = malloc(P * sizeof *h);
    mb->be->download(h, lo->params, P * sizeof *h);
    for (int i = 1; i < lo->table.count; i += 2) {
        const lma_param_info *p = &lo->table.info[i];
        for (size_t j = 0; j < p->numel; j++) h[p->offset + j] = (float)(0.1 * lma_rng_normal(&rng));
    }
    mb->be->upload(lo->params, h, P * sizeof *h);
    mc->be->upload(mc->lora->params, h, P * sizeof *h);
    lma_model_sync_weights(mb);
    lma_model_sync_weights(mc);
    CHECK(copy_is_rounded_masters(h, lo->pact, P, NULL), "%s bf16 LoRA: sync fills the adapter's compute copy", name);
    int B = 2, T = 8, N = B * T, V = mc->cfg.vocab_size;
    int32_t ids[16], tg[16];
    make_batch(N, V, ids, tg);
    CHECK_OK(lma_model_enable_training(mc));
    CHECK_OK(lma_model_enable_training(mb));
    lma_adamw_params ap = lma_adamw_default_params();
    ap.lr = 1e-3f;
    double worst = test_track(mc, mb, ids, tg, B, T, &ap, 3); /* dropout: the same masks on both */
    CHECK(worst < 2e-2, "%s bf16 LoRA (dropout %g): 3 AdamW steps track the cpu (worst loss rel err %.3g)", name,
          dropout, worst);
    CHECK(dropout > 0 || (!lo->tmp && !lo->xd), "%s bf16 LoRA without dropout: no N x dim scratch", name);
    mb->be->download(h, lo->params, P * sizeof *h);
    CHECK(copy_is_rounded_masters(h, lo->pact, P, NULL), "%s bf16 LoRA: AdamW refreshes the adapter's compute copy",
          name);
    /* merge on the masters: the merged model's logits == the adapted ones (bf16 tolerance) */
    float *a = malloc((size_t)N * V * sizeof *a), *b = malloc((size_t)N * V * sizeof *b);
    CHECK_OK(lma_model_forward(mb, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(mb, a));
    CHECK_OK(lma_lora_merge(mb));
    CHECK_OK(lma_model_forward(mb, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(mb, b));
    double e = test_rel_l2f(b, a, (size_t)N * V);
    CHECK(e < 3e-2, "%s bf16: merged logits vs adapted rel L2 %.3g", name, e);
    printf("%-18s bf16 LoRA (dropout %g): 3 steps worst loss rel err %.2e, merged vs adapted logits rel L2 %.2e\n",
           name, dropout, worst, e);
    float *w = malloc(mb->table.total * sizeof *w);
    mb->be->download(w, mb->params, mb->table.total * sizeof *w);
    CHECK(copy_is_rounded_masters(w, mb->wact, mb->table.total, NULL), "%s bf16: merge refreshes the compute copy",
          name);
    free(w); free(a); free(b); free(h);
    lma_model_free(mc);
    lma_model_free(mb);
}

/* A frozen base (LMA_MODEL_FROZEN, what adapter training and inference load) keeps no fp32
 * copy where the compute copy is separate: LoRA training gives the same losses as on a base
 * with masters (the forward reads only the compute copy), and whatever needs the masters
 * refuses clearly. On the cpu the compute copy is the masters: nothing changes. */
static void test_frozen(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    lma_model *ma = test_fixture(name, &bf16_backend), *mb = NULL, *mc = NULL;
    CHECK_OK(lma_model_load_ex(dir, &bf16_backend, LMA_MODEL_FROZEN, &mb));
    CHECK_OK(lma_model_load_ex(dir, cpu, LMA_MODEL_FROZEN, &mc));
    if (!ma || !mb || !mc) { lma_model_free(ma); lma_model_free(mb); lma_model_free(mc); return; }
    CHECK(ma->params != NULL && mb->params == NULL && mb->wact != NULL,
          "%s: a frozen bf16 base has no fp32 copy, an unfrozen one has", name);
    CHECK(mc->params != NULL && mc->params == mc->wact, "%s: on the cpu (compute copy == masters) nothing changes",
          name);
    CHECK(lma_model_enable_training(mb) == LMA_ERR_UNSUPPORTED, "%s: full training of a frozen base is refused", name);
    lma_clear_error();
    lma_lora_params lp = lma_lora_default_params();
    lp.r = 4; lp.alpha = 8; lp.dropout = 0.1f;
    CHECK_OK(lma_lora_attach(ma, &lp, 9));
    CHECK_OK(lma_lora_attach(mb, &lp, 9));
    CHECK_OK(lma_model_enable_training(ma));
    CHECK_OK(lma_model_enable_training(mb));
    int B = 2, T = 8, N = B * T, V = ma->cfg.vocab_size;
    int32_t ids[16], tg[16];
    make_batch(N, V, ids, tg);
    lma_adamw_params ap = lma_adamw_default_params();
    ap.lr = 1e-3f;
    double diff = test_track(ma, mb, ids, tg, B, T, &ap, 3);
    CHECK(diff == 0, "%s: LoRA training on the frozen base gives the same losses (rel diff %.3g)", name, diff);
    snprintf(dir, sizeof dir, "%s/lma_frozen_%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    CHECK(lma_model_save(mb, dir, 0, 0) == LMA_ERR_UNSUPPORTED, "%s: saving a base without masters is refused", name);
    CHECK(lma_lora_merge(mb) == LMA_ERR_UNSUPPORTED, "%s: merging into a base without masters is refused", name);
    lma_clear_error();
    lma_model_free(ma);
    lma_model_free(mb);
    lma_model_free(mc);
}

/* The fused q|k|v product (one GEMM each way over [q | k | v] rows) trains as the three
 * products do: both directions taken, the same losses on the same bf16 storage */
static void test_fused_qkv(const char *name) {
    lma_backend fused = bf16_backend;
    fused.name = "cpu-bf16-test-fused";
    fused.qkv_rope_fwd = b_qkv_rope_fwd;
    fused.qkv_rope_bwd = b_qkv_rope_bwd;
    lma_model *ma = test_fixture(name, &bf16_backend), *mb = test_fixture(name, &fused);
    if (!ma || !mb) { lma_model_free(ma); lma_model_free(mb); return; }
    CHECK_OK(lma_model_enable_training(ma));
    CHECK_OK(lma_model_enable_training(mb));
    int B = 2, T = 9;
    int32_t ids[18], tg[18];
    make_batch(B * T, ma->cfg.vocab_size, ids, tg);
    lma_adamw_params ap = lma_adamw_default_params();
    ap.lr = 1e-3f;
    qkv_calls[0] = qkv_calls[1] = 0;
    double diff = test_track(ma, mb, ids, tg, B, T, &ap, 3);
    int L = ma->cfg.n_layers;
    CHECK(qkv_calls[0] >= 3 * L && qkv_calls[1] == 3 * L, "%s fused q|k|v: %d forward, %d backward calls (%d layers, 3 steps)",
          name, qkv_calls[0], qkv_calls[1], L);
    CHECK(diff < 1e-3, "%s fused q|k|v: 3 AdamW steps track the three products (rel diff %.3g)", name, diff);
    lma_model_free(ma);
    lma_model_free(mb);
}

int main(void) {
    cpu = lma_backend_cpu();
    lma_rng_seed(&rng, 2718);
    test_cpu_aliasing();
    const char *models[] = {"llama_gqa", "qwen3", "llama_linear_bias"};
    for (int i = 0; i < 3; i++) test_bf16_storage(models[i]);
    test_bf16_lora("llama_gqa", 0.1f);
    test_bf16_lora("llama_gqa", 0.0f);
    test_frozen("qwen3");
    test_bf16_lora("qwen2", 0.1f);
    test_fused_qkv("llama_gqa");
    TEST_END();
}
