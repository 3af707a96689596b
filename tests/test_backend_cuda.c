/* cuda backends (label cuda): every op against the CPU backend on fresh random
 * inputs, outputs poisoned with NaN first and gradients pre-filled (+=), for both
 * tables: "cuda-fp32" at fp32 tolerances (exact GEMMs; attention through batched
 * GEMMs, the naive kernels and flash attention) and with TF32, then "cuda" (bf16
 * activations) at bf16 tolerances, with the act inputs rounded to bf16 on both
 * sides. (Whole models, training and decoding: tests/test_train_cuda.c.) Without a GPU
 * (or a build without nvcc) the test says so and exits 77, which ctest reports as skipped. */
#include <pthread.h>
#include <string.h>
#include "backend/backend.h"
#include "backend/cuda/cuda_host.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/llama.h"
#include "model/nf4.h"
#include "model/presets.h"
#include "test.h"
#include "cuda_ops_test.h"

/* cuDNN's fused attention (bf16 table, no segment ids) against the CPU backend at a shape its
 * engines take (head dim 64, GQA, T not a multiple of the tiles); where the build has cuDNN
 * (LMA_EXPECT_CUDNN) it must have run, else the flash kernel answers the same checks. */
static void cudnn_attention(void) {
    enum { B = 2, T = 130, NH = 4, NKV = 2, HD = 64 };
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    long runs0 = 0, runs1 = 0;
    const char *state = lma_cuda_cudnn_attention(HD, &runs0);
#ifdef LMA_EXPECT_CUDNN
    CHECK(state != NULL, "cuDNN attention is built in but cannot run (LMA_CUDA_CUDNN=0?)");
#endif
    printf("cuDNN attention: %s\n", state ? state : "off");
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1), *dout = frand(nq, 1), scale = 0.125f;
    float *dq = frand(nq, 1), *dk = frand(nk, 1), *dv = frand(nk, 1); /* the backward accumulates */
    float *dq0 = malloc(nq * 4), *dk0 = malloc(nk * 4), *dv0 = malloc(nk * 4); /* their start */
    memcpy(dq0, dq, nq * 4), memcpy(dk0, dk, nk * 4), memcpy(dv0, dv, nk * 4);
    void *gq = dev_act(q, nq), *gk = dev_act(k, nk), *gv = dev_act(v, nk), *gdo = dev_act(dout, nq);
    void *go = alloc_act(nq);
    float *o = malloc(nq * 4), *att = malloc(cpu->attention_saved_floats(B, T, NH, HD) * 4);
    float *gatt = gpu->alloc(gpu->attention_saved_floats(B, T, NH, HD) * 4);
    cpu->attention_fwd(o, att, q, k, v, NULL, B, T, NH, NKV, HD, scale);
    cpu->attention_bwd(dq, dk, dv, dout, o, att, q, k, v, NULL, B, T, NH, NKV, HD, scale);
    /* the first forward of a shape runs the flash kernel (no plan is built for a forward shape
     * seen once), the backward and the second forward cuDNN: all answer the same checks */
    for (int call = 0; call < 2; call++) {
        lma_cuda_cudnn_attention(HD, &runs0);
        void *gdq = dev_act(dq0, nq), *gdk = dev_act(dk0, nk), *gdv = dev_act(dv0, nk);
        poison_act(go, nq);
        gpu->attention_fwd(go, gatt, gq, gk, gv, NULL, B, T, NH, NKV, HD, scale);
        cmp_act("cudnn attention_fwd", o, go, nq, 1e-2);
        gpu->attention_bwd(gdq, gdk, gdv, gdo, go, gatt, gq, gk, gv, NULL, B, T, NH, NKV, HD, scale);
        cmp_act("cudnn attention_bwd dq", dq, gdq, nq, 1e-2);
        cmp_act("cudnn attention_bwd dk", dk, gdk, nk, 1e-2);
        cmp_act("cudnn attention_bwd dv", dv, gdv, nk, 1e-2);
        gpu->free(gdq), gpu->free(gdk), gpu->free(gdv);
        state = lma_cuda_cudnn_attention(HD, &runs1);
#ifdef LMA_EXPECT_CUDNN
        CHECK(runs1 - runs0 == 1 + call, "call %d: cuDNN attention ran %ld times, not %d (%s)", call + 1,
              runs1 - runs0, 1 + call, state ? state : "off");
#endif
    }
    void *dev[] = {gq, gk, gv, gdo, go, gatt};
    for (int i = 0; i < 6; i++) gpu->free(dev[i]);
    float *host[] = {q, k, v, dout, dq, dk, dv, dq0, dk0, dv0, o, att};
    for (int i = 0; i < 12; i++) free(host[i]);
}

static void casts(void) {
    size_t n = 4099;
    float *x = frand32(n, 3), *y;
    void *d = dev_act(x, n);
    y = back_act(d, n);
    int same = 1;
    for (size_t i = 0; i < n; i++) same &= y[i] == (act2() ? bf16_round(x[i]) : x[i]);
    CHECK(same, "%s: cast_to_act then act_to_f32 gives the %s values exactly", gpu->name, act2() ? "bf16-rounded" : "same");
    /* copy2d: columns [5, 12) of a (33, 40) matrix into columns [3, 10) of a (33, 16) one */
    size_t es = (size_t)gpu->act_bytes, R = 33;
    float *h = frand32(R * 16, 1), *z;
    void *dst = dev_act(h, R * 16);
    gpu->copy2d(lma_at(dst, 3, es), 16 * es, lma_at(d, 5, es), 40 * es, 7 * es, R);
    z = back_act(dst, R * 16);
    same = 1;
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < 16; j++) {
            float want = j >= 3 && j < 10 ? y[i * 40 + 5 + j - 3] : (act2() ? bf16_round(h[i * 16 + j]) : h[i * 16 + j]);
            same &= z[i * 16 + j] == want;
        }
    CHECK(same, "%s: copy2d moves a block of columns between row pitches, nothing else", gpu->name);
    free(x); free(y); free(h); free(z);
    gpu->free(d);
    gpu->free(dst);
}

/* Attention over segments that span tiles, where the flash kernels skip the tile pairs whose
 * ids cannot meet: packed documents of 90, 37 and 150 rows (ids nondecreasing; on the bf16
 * table cuDNN's ragged documents where built in), documents of 64 rows then -1 padding (as the
 * loaders pad) uploaded into the same buffer (the documents found for the first layout must not
 * be reused), then ids reused apart
 * ((t / 70) % 3: skipping must not drop a distant tile of the same id; cuDNN declines). */
static void packed_attention(void) {
    enum { B = 2, T = 300, NH = 4, NKV = 2, HD = 64 };
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    static const int len[3] = {90, 37, 150};
    int32_t seg[B * T];
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1), *dout = frand(nq, 1), scale = 0.125f;
    void *gq = dev_act(q, nq), *gk = dev_act(k, nk), *gv = dev_act(v, nk), *gdo = dev_act(dout, nq);
    void *go = alloc_act(nq);
    float *o = malloc(nq * 4), *att = malloc(cpu->attention_saved_floats(B, T, NH, HD) * 4);
    float *gatt = gpu->alloc(gpu->attention_saved_floats(B, T, NH, HD) * 4);
    int32_t *gseg = gpu->alloc(sizeof seg);
    static const char *names[3] = {"packed documents", "64-row documents and -1 padding, same buffer", "reused ids"};
    for (int kind = 0; kind < 3; kind++) {
        for (int b = 0; b < B; b++)
            for (int t = 0, id = 0, end = len[0]; t < T; t++) {
                if (t == end) end += len[++id % 3];
                seg[b * T + t] = kind == 0 ? id : kind == 1 ? (t < 256 ? t / 64 : -1) : (t / 70) % 3;
            }
        gpu->upload(gseg, seg, sizeof seg);
        for (int zeroed = 0; zeroed < 2; zeroed++) { /* gradients pre-filled (+=), then zeroed just before */
        long runs0 = 0, runs1 = 0;
        lma_cuda_cudnn_attention(HD, &runs0);
        float *dq = frand(nq, 1), *dk = frand(nk, 1), *dv = frand(nk, 1); /* the backward accumulates */
        void *gdq = dev_act(dq, nq), *gdk = dev_act(dk, nk), *gdv = dev_act(dv, nk);
        if (zeroed) { /* the model's case: cuDNN writes straight into them (ops_zero.cuh) */
            memset(dq, 0, nq * 4), memset(dk, 0, nk * 4), memset(dv, 0, nk * 4);
            gpu->zero(gdq, nq * (size_t)gpu->act_bytes), gpu->zero(gdk, nk * (size_t)gpu->act_bytes);
            gpu->zero(gdv, nk * (size_t)gpu->act_bytes);
        }
        cpu->attention_fwd(o, att, q, k, v, seg, B, T, NH, NKV, HD, scale);
        cpu->attention_bwd(dq, dk, dv, dout, o, att, q, k, v, seg, B, T, NH, NKV, HD, scale);
        poison_act(go, nq);
        gpu->attention_fwd(go, gatt, gq, gk, gv, gseg, B, T, NH, NKV, HD, scale);
        char what[96];
        snprintf(what, sizeof what, "attention_fwd (%s)", names[kind]);
        cmp_act(what, o, go, nq, 1e-2);
        gpu->attention_bwd(gdq, gdk, gdv, gdo, go, gatt, gq, gk, gv, gseg, B, T, NH, NKV, HD, scale);
        const char *into = zeroed ? "zeroed" : "added";
        snprintf(what, sizeof what, "attention_bwd dq (%s, %s)", names[kind], into);
        cmp_act(what, dq, gdq, nq, 1e-2);
        snprintf(what, sizeof what, "attention_bwd dk (%s, %s)", names[kind], into);
        cmp_act(what, dk, gdk, nk, 1e-2);
        snprintf(what, sizeof what, "attention_bwd dv (%s, %s)", names[kind], into);
        cmp_act(what, dv, gdv, nk, 1e-2);
        const char *state = lma_cuda_cudnn_attention(HD, &runs1);
#ifdef LMA_EXPECT_CUDNN
        if (act2()) /* bf16: both directions as ragged documents, or neither (reused ids) */
            CHECK(runs1 - runs0 == (kind < 2 ? 2 : 0), "%s: cuDNN attention ran %ld times, not %d (%s)", names[kind],
                  runs1 - runs0, kind < 2 ? 2 : 0, state ? state : "off");
#else
        (void)state;
#endif
        gpu->free(gdq), gpu->free(gdk), gpu->free(gdv);
        free(dq), free(dk), free(dv);
        }
    }
    gpu->free(gseg);
    void *dev[] = {gq, gk, gv, gdo, go, gatt};
    for (int i = 0; i < 6; i++) gpu->free(dev[i]);
    float *host[] = {q, k, v, dout, o, att};
    for (int i = 0; i < 6; i++) free(host[i]);
}

/* attention_cached on n_seq sequences of n new rows each (lens: rows already cached, caps:
 * capacities; layer 1 of 2-layer caches) against the CPU's: the output, and every cache
 * after the call (the new rows written at [len, len+n), nothing else changed). */
static void cached_vs_cpu(const char *what, int n_seq, const int *lens, const int *caps, int n, int NH, int NKV,
                          int HD, float scale, double tol) {
    size_t KVD = (size_t)NKV * HD, nq = (size_t)n_seq * n * NH * HD, nk = (size_t)n_seq * n * KVD;
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1), *o = malloc(nq * 4);
    void *gq = dev_act(q, nq), *gk = dev_act(k, nk), *gv = dev_act(v, nk), *go = alloc_act(nq);
    lma_kv_seq *hs = malloc((size_t)n_seq * sizeof *hs), *ds = malloc((size_t)n_seq * sizeof *ds);
    for (int i = 0; i < n_seq; i++) {
        size_t cn = 2 * (size_t)caps[i] * KVD;
        hs[i] = (lma_kv_seq){.k = frand(cn, 1), .v = frand(cn, 1), .cap = caps[i], .len = lens[i]};
        ds[i] = (lma_kv_seq){.k = dev_act(hs[i].k, cn), .v = dev_act(hs[i].v, cn), .cap = caps[i], .len = lens[i]};
    }
    lma_kv_seq *gs = dev32(ds, (size_t)n_seq * sizeof *ds);
    cpu->attention_cached(o, q, k, v, hs, n_seq, n, 1, NH, NKV, HD, scale);
    poison_act(go, nq);
    gpu->attention_cached(go, gq, gk, gv, gs, n_seq, n, 1, NH, NKV, HD, scale);
    char name[160];
    snprintf(name, sizeof name, "attention_cached %s", what);
    cmp_act(name, o, go, nq, tol);
    for (int i = 0; i < n_seq; i++) {
        size_t cn = 2 * (size_t)caps[i] * KVD;
        snprintf(name, sizeof name, "attention_cached %s: sequence %d's caches after the call", what, i);
        float *bk = back_act(ds[i].k, cn), *bv = back_act(ds[i].v, cn);
        CHECK(!memcmp(bk, hs[i].k, cn * 4) && !memcmp(bv, hs[i].v, cn * 4), "%s %s", gpu->name, name);
        free(bk); free(bv);
        gpu->free(ds[i].k); gpu->free(ds[i].v); free(hs[i].k); free(hs[i].v);
    }
    gpu->free(gs); gpu->free(gq); gpu->free(gk); gpu->free(gv); gpu->free(go);
    free(hs); free(ds); free(q); free(k); free(v); free(o);
}

/* Cached attention at the shapes inference runs: a prefill into an empty cache (300 rows,
 * GQA, yarn:2's attention scale (0.1 ln 2 + 1)^2 / sqrt(HD)) and the next token after it; a
 * batched decode step of 5 sequences of different lengths and capacities (TinyLlama's heads,
 * HD 64) and of 3 at HD 128 (7B's). Then RoPE past the original window. */
static void cached_shapes(void) {
    enum { n = 300, NH = 4, NKV = 2, HD = 64 };
    size_t nq = (size_t)n * NH * HD;
    float scale = (float)((0.1 * log(2.0) + 1) * (0.1 * log(2.0) + 1) / 8.0);
    int l0[1] = {0}, c0[1] = {n + 1}, l1[1] = {n};
    cached_vs_cpu("prefill (1 sequence, 300 rows into an empty cache)", 1, l0, c0, n, NH, NKV, HD, scale, 1e-5);
    cached_vs_cpu("decode after a prefill (past 300)", 1, l1, c0, 1, NH, NKV, HD, scale, 1e-5);
    int lb[5] = {0, 1, 17, 300, 64}, cb[5] = {1, 2, 40, 301, 65};
    cached_vs_cpu("batched decode (5 sequences, 32/4 heads, HD 64)", 5, lb, cb, 1, 32, 4, 64, 0.125f, 1e-5);
    int lc[3] = {5, 129, 2}, cc[3] = {6, 200, 3};
    cached_vs_cpu("batched decode (3 sequences, 32/32 heads, HD 128)", 3, lc, cc, 1, 32, 32, 128, 0.088f, 1e-5);
    int ld_[2] = {1100, 3}, cd_[2] = {1102, 5}; /* past one chunk of keys; HD 20: the scalar loads */
    cached_vs_cpu("2 rows on 2 sequences, one past 1024 keys, HD 20", 2, ld_, cd_, 2, 6, 3, 20, 0.22f, 1e-5);
    cached_vs_cpu("batched decode, HD 256", 2, ld_, cd_, 1, 4, 2, 256, 0.0625f, 1e-5);
    /* RoPE past the original window with yarn:2's frequencies (SmolLM2's theta 1e5, window
     * 8192): positions up to 16383, where the angles reach ~1.6e4 rad */
    lma_config c;
    memset(&c, 0, sizeof c);
    c.head_dim = HD; c.rope_theta = 1e5; c.max_position_embeddings = 16384; c.rope_type = LMA_ROPE_YARN;
    c.rope_factor = 2; c.rope_original_max_pos = 8192; c.rope_beta_fast = 32; c.rope_beta_slow = 1; c.rope_truncate = 1;
    float inv[HD / 2], *x = frand(nq, 1), *dx = frand(nq, 1);
    lma_config_rope_inv_freq(&c, inv);
    int32_t pos[n];
    for (int i = 0; i < n; i++) pos[i] = 16383 - 55 * i; /* 16383 down to 1938 */
    void *gx = dev_act(x, nq), *gdx = dev_act(dx, nq);
    float *ginv = dev32(inv, sizeof inv);
    int32_t *gpos = dev32(pos, sizeof pos);
    cpu->rope_fwd(x, x, pos, inv, n, NH, HD);
    gpu->rope_fwd(gx, gx, gpos, ginv, n, NH, HD);
    cmp_act("rope_fwd, yarn:2 frequencies, positions to 16383", x, gx, nq, 1e-6);
    float *dq = frand(nq, 1);
    void *gdq = dev_act(dq, nq);
    cpu->rope_bwd(dx, dq, pos, inv, n, NH, HD);
    gpu->rope_bwd(gdx, gdq, gpos, ginv, n, NH, HD);
    cmp_act("rope_bwd, yarn:2 frequencies, positions to 16383", dx, gdx, nq, 1e-6);
    gpu->free(gx); gpu->free(gdx); gpu->free(ginv); gpu->free(gpos); gpu->free(gdq);
    free(x); free(dx); free(dq);
}

/* matmul_fwd, then matmul_fwd_add into its output, at the few rows of a decode step, where
 * the bf16 table runs its own kernel (N <= 3, C a multiple of 8; a row tail past 128-element
 * strides, bias or none), and at shapes it leaves to cuBLASLt (C 44, N 4, 5), against the CPU */
static void few_rows(void) {
    static const int shapes[][4] = {{1, 4096, 300, 1}, {2, 264, 1000, 0}, {3, 512, 77, 1}, {4, 2048, 33, 1},
                                    {1, 44, 50, 1}, {5, 64, 64, 0}};
    for (int si = 0; si < 6; si++) {
        int N = shapes[si][0], C = shapes[si][1], OC = shapes[si][2], with_bias = shapes[si][3];
        float *x = frand((size_t)N * C, 1), *w = frand((size_t)OC * C, 0.05f), *bias = frand(OC, 1);
        float *out = malloc((size_t)N * OC * 4);
        void *gx = dev_act(x, (size_t)N * C), *gw = dev_act(w, (size_t)OC * C), *gb = dev_act(bias, OC);
        void *gout = alloc_act((size_t)N * OC);
        cpu->matmul_fwd(out, x, w, with_bias ? bias : NULL, N, C, OC);
        poison_act(gout, (size_t)N * OC);
        gpu->matmul_fwd(gout, gx, gw, with_bias ? gb : NULL, N, C, OC);
        char what[64];
        snprintf(what, sizeof what, "matmul_fwd N %d C %d OC %d", N, C, OC);
        cmp_act(what, out, gout, (size_t)N * OC, act2() ? 1e-2 : 1e-5);
        /* matmul_fwd_add into that output (the decode step's residual adds) */
        float *xw = malloc((size_t)N * OC * 4);
        cpu->matmul_fwd(xw, x, w, NULL, N, C, OC);
        for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = (act2() ? bf16_round(out[i]) : out[i]) + xw[i];
        gpu->matmul_fwd_add(gout, gx, gw, gout, N, C, OC);
        snprintf(what, sizeof what, "matmul_fwd_add N %d C %d OC %d", N, C, OC);
        cmp_act(what, out, gout, (size_t)N * OC, act2() ? 1e-2 : 1e-5);
        gpu->free(gx), gpu->free(gw), gpu->free(gb), gpu->free(gout);
        free(x), free(w), free(bias), free(out), free(xw);
    }
}

/* norm_proj_fwd (bf16 table): rmsnorm, then q|k|v (three segments of unequal rows, GQA-like, a
 * block of rows straddling two of them at 40/12/12) or gate|up -> SwiGLU, in one launch, at the
 * rows of a decode step and C from 64 to 8192 (136, 200: not a multiple of 128; 8192: past 48 KB
 * of shared memory). Against the CPU's rmsnorm_fwd, matmul_fwd (and swiglu_fwd) with the rounding
 * to bf16 between them, and bit for bit against the GPU's own unfused ops (rmsnorm_fwd, the GEMV,
 * swiglu_fwd: the kernel keeps their order of sums); and q|k|v with RoPE of q and k folded in
 * (head dim 4, positions 5, 300, 7; against the same chains followed by rope_fwd). Then shapes it
 * declines (N 4, C 44, gate and up of unequal rows, four weights, RoPE of partial heads), which
 * must leave the output untouched. */
static void fused_norm_proj(void) {
    const char *ef = getenv("LMA_CUDA_FUSE"), *eg = getenv("LMA_CUDA_GEMV");
    int on = !(ef && !strcmp(ef, "0")) && !(eg && !strcmp(eg, "0"));
    static const int shapes[][5] = {{1, 64, 64, 16, 16}, {2, 136, 40, 12, 12}, {3, 200, 64, 16, 16},
                                    {1, 1024, 40, 12, 12}, {2, 4096, 64, 16, 16}, {3, 4096, 64, 16, 16},
                                    {3, 8192, 40, 12, 12}};
    float eps = 1e-5f, inv[2] = {1.0f, 0.01f};
    int32_t pos[3] = {5, 300, 7};
    enum { HD = 4 };
    int32_t *gpos = dev32(pos, sizeof pos);
    float *ginv = dev32(inv, sizeof inv);
    for (int si = 0; si < 7; si++) {
        int N = shapes[si][0], C = shapes[si][1];
        for (int mode = 0; mode < 3; mode++) { /* q|k|v, gate|up SwiGLU, q|k|v with RoPE */
            int glu = mode == 1, rope = mode == 2;
            int n_w = glu ? 2 : 3, oc[3] = {shapes[si][2], shapes[si][3], shapes[si][4]};
            if (glu) oc[0] = oc[1] = 100; /* gate and up: 100 rows, a block of them partial */
            float *x = frand((size_t)N * C, 1), *g = frand(C, 1), *y = malloc((size_t)N * C * 4), *rs = malloc(N * 4);
            void *gx = dev_act(x, (size_t)N * C), *gg = dev_act(g, C), *gln = alloc_act((size_t)N * C);
            float *grs = gpu->alloc(N * 4);
            cpu->rmsnorm_fwd(y, rs, x, g, N, C, eps);
            for (size_t i = 0; i < (size_t)N * C; i++) y[i] = bf16_round(y[i]); /* as the GPU stores ln */
            gpu->rmsnorm_fwd(gln, grs, gx, gg, N, C, eps);
            float *w[3], *ref[3];
            void *gw[3], *gout[3], *gun[3];
            for (int j = 0; j < n_w; j++) {
                size_t no = (size_t)N * oc[j];
                w[j] = frand((size_t)oc[j] * C, 0.05f);
                gw[j] = dev_act(w[j], (size_t)oc[j] * C);
                ref[j] = malloc(no * 4);
                cpu->matmul_fwd(ref[j], y, w[j], NULL, N, C, oc[j]);
                gun[j] = alloc_act(no);
                gpu->matmul_fwd(gun[j], gln, gw[j], NULL, N, C, oc[j]);
                gout[j] = alloc_act(no);
                poison_act(gout[j], no);
            }
            size_t no = (size_t)N * oc[0];
            if (glu) { /* the products rounded as matmul_fwd stores them, then swiglu_fwd */
                for (size_t i = 0; i < no; i++) ref[0][i] = bf16_round(ref[0][i]), ref[1][i] = bf16_round(ref[1][i]);
                cpu->swiglu_fwd(ref[0], ref[0], ref[1], no);
                gpu->swiglu_fwd(gun[0], gun[0], gun[1], no);
            }
            for (int j = 0; rope && j < 2; j++) { /* the products rounded as stored, then rope_fwd */
                for (size_t i = 0; i < (size_t)N * oc[j]; i++) ref[j][i] = bf16_round(ref[j][i]);
                cpu->rope_fwd(ref[j], ref[j], pos, inv, N, oc[j] / HD, HD);
                gpu->rope_fwd(gun[j], gun[j], gpos, ginv, N, oc[j] / HD, HD);
            }
            int rc = gpu->norm_proj_fwd(gout, gx, gg, eps, (const void *const *)gw, oc, n_w, glu, N, C,
                                        rope ? gpos : NULL, rope ? ginv : NULL, HD);
            char what[160];
            snprintf(what, sizeof what, "norm_proj_fwd %s N %d C %d (%d|%d|%d rows)",
                     glu ? "SwiGLU" : rope ? "q|k|v RoPE" : "q|k|v", N, C, oc[0], oc[1], glu ? 0 : oc[2]);
            CHECK(on ? rc == 0 : rc != 0, "%s %s: returned %d (%s)", gpu->name, what, rc,
                  on ? "should run" : "LMA_CUDA_FUSE=0 or LMA_CUDA_GEMV=0: should decline");
            for (int j = 0; rc == 0 && j < (glu ? 1 : n_w); j++) {
                size_t nj = (size_t)N * oc[j];
                float *a = back_act(gout[j], nj), *b = back_act(gun[j], nj);
                size_t diff = 0;
                for (size_t i = 0; i < nj; i++) diff += memcmp(&a[i], &b[i], 4) != 0;
                CHECK(diff == 0, "%s %s, output %d: %zu of %zu values differ from rmsnorm_fwd + matmul_fwd%s on the GPU",
                      gpu->name, what, j, diff, nj, glu ? " + swiglu_fwd" : rope && j < 2 ? " + rope_fwd" : "");
                free(b);
                char wj[200];
                snprintf(wj, sizeof wj, "%s, output %d vs cpu", what, j);
                cmp_host(wj, ref[j], a, nj, 1e-2);
            }
            for (int j = 0; j < n_w; j++) {
                gpu->free(gw[j]), gpu->free(gout[j]), gpu->free(gun[j]);
                free(w[j]), free(ref[j]);
            }
            gpu->free(gx), gpu->free(gg), gpu->free(gln), gpu->free(grs);
            free(x), free(g), free(y), free(rs);
        }
    }
    /* declined: nothing written */
    static const int decl[][4] = {{4, 64, 3, 0}, {1, 44, 3, 0}, {1, 64, 2, 1}, {2, 64, 4, 0}, {1, 64, 3, 2}};
    for (int di = 0; di < 5; di++) {
        int N = decl[di][0], C = decl[di][1], n_w = decl[di][2], glu = decl[di][3] == 1, rope = decl[di][3] == 2;
        int oc[4] = {16, glu ? 24 : 16, 16, 16}; /* glu: gate and up of unequal rows */
        float *x = frand((size_t)N * C, 1), *g = frand(C, 1), *w = frand((size_t)24 * C, 0.05f);
        void *gx = dev_act(x, (size_t)N * C), *gg = dev_act(g, C), *gw = dev_act(w, (size_t)24 * C);
        void *go = alloc_act((size_t)N * 16);
        poison_act(go, (size_t)N * 16);
        void *outs[4] = {go, go, go, go};
        const void *ws[4] = {gw, gw, gw, gw};
        /* rope: head dim 32 does not divide the 16-row segments */
        int rc = gpu->norm_proj_fwd(outs, gx, gg, 1e-5f, ws, oc, n_w, glu, N, C, rope ? gpos : NULL, rope ? ginv : NULL, 32);
        float *o = back_act(go, (size_t)N * 16);
        int untouched = 1;
        for (int i = 0; i < N * 16; i++) untouched &= isnan(o[i]) != 0;
        CHECK(rc != 0 && untouched, "%s norm_proj_fwd declines N %d C %d n_w %d glu %d rope %d (returned %d, output %s)",
              gpu->name, N, C, n_w, glu, rope, rc, untouched ? "untouched" : "written");
        gpu->free(gx), gpu->free(gg), gpu->free(gw), gpu->free(go);
        free(x), free(g), free(w), free(o);
    }
    CHECK(lma_backend_sync(gpu) == LMA_OK && !lma_error_pending(), "%s norm_proj_fwd: no CUDA error: %s", gpu->name,
          lma_last_error());
    gpu->free(gpos), gpu->free(ginv);
}

/* The deferred zeroing (backend/cuda/ops_zero.cuh) against the CPU, which zeroes at once: a
 * whole allocation (filled with 1000s first) zeroed, then one piece written by matmul_bwd's dw
 * (taken: written with beta 0), one written twice (the second adds), one added into by
 * rmsnorm_bwd's weight gradient (cleared on demand), the rest never written (cleared when
 * sum_sq reads it); zeroed again with one piece written; activation pieces zeroed just before
 * swiglu_bwd (one of its two outputs), rope_bwd and matmul_bwd's dinp (taken), and before an
 * op that only reads (cleared). */
static void deferred_zero(void) {
    enum { N = 24, C = 32, OC = 40, HD = 8 };
    size_t nw = (size_t)OC * C, total = 3 * nw + C + 100, nc = (size_t)N * C;
    float *junk = malloc(total * 4), *hg = calloc(total, 4);
    for (size_t i = 0; i < total; i++) junk[i] = 1000.0f;
    float *x = frand(nc, 1), *w = frand(nw, 0.3f), *dout = frand((size_t)N * OC, 1), *dy = frand(nc, 1);
    float *nw_ = frand(C, 1), *y = malloc(nc * 4), *rs = malloc(N * 4);
    void *gx = dev_act(x, nc), *gw = dev_act(w, nw), *gdout = dev_act(dout, (size_t)N * OC), *gdy = dev_act(dy, nc);
    void *gnw = dev_act(nw_, C), *gy = alloc_act(nc);
    float *grs = gpu->alloc(N * 4), *G = gpu->alloc(total * 4);
    cpu->rmsnorm_fwd(y, rs, x, nw_, N, C, 1e-5f);
    gpu->rmsnorm_fwd(gy, grs, gx, gnw, N, C, 1e-5f);
    for (int round = 0; round < 2; round++) {
        gpu->upload(G, junk, total * 4);
        gpu->zero(G, total * 4);
        memset(hg, 0, total * 4);
        cpu->matmul_bwd(NULL, hg + nw, NULL, dout, x, w, N, C, OC);
        gpu->matmul_bwd(NULL, G + nw, NULL, gdout, gx, gw, N, C, OC);
        if (!round) {
            cpu->matmul_bwd(NULL, hg, NULL, dout, x, w, N, C, OC);
            gpu->matmul_bwd(NULL, G, NULL, gdout, gx, gw, N, C, OC);
            cpu->matmul_bwd(NULL, hg + nw, NULL, dout, x, w, N, C, OC);
            gpu->matmul_bwd(NULL, G + nw, NULL, gdout, gx, gw, N, C, OC);
            cpu->rmsnorm_bwd(NULL, hg + 3 * nw, dy, x, nw_, rs, N, C);
            gpu->rmsnorm_bwd(NULL, G + 3 * nw, gdy, gx, gnw, grs, N, C);
            double a = cpu->sum_sq(hg, total), b = gpu->sum_sq(G, total);
            CHECK(fabs(a - b) <= 1e-4 * a, "%s deferred zero: sum_sq of the gradients %.9g vs %.9g", gpu->name, b, a);
        }
        cmp32(round ? "deferred zero: zeroed again, one piece written" : "deferred zero: pieces of a whole allocation",
              hg, G, total, 1e-5);
    }
    /* activation pieces (one buffer, pieces of it: the list of ops_zero.cuh) */
    float *a = frand(4 * nc, 1), *h = malloc(4 * nc * 4);
    memcpy(h, a, 4 * nc * 4);
    void *ga = dev_act(a, 4 * nc);
    int32_t pos[N];
    float inv[HD / 2];
    for (int i = 0; i < N; i++) pos[i] = 3 * i;
    for (int i = 0; i < HD / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / HD);
    void *gpos = dev32(pos, sizeof pos), *ginv = dev32(inv, sizeof inv);
    size_t es = (size_t)gpu->act_bytes;
    memset(h, 0, nc * 4); /* piece 0 zeroed for swiglu_bwd's dgate; piece 1 (dup) keeps its values */
    gpu->zero(ga, nc * es);
    cpu->swiglu_bwd(h, h + nc, dy, x, y, nc);
    gpu->swiglu_bwd(ga, lma_at(ga, nc, es), gdy, gx, gy, nc);
    memset(h + 2 * nc, 0, nc * 4); /* piece 2 zeroed for rope_bwd */
    gpu->zero(lma_at(ga, 2 * nc, es), nc * es);
    cpu->rope_bwd(h + 2 * nc, dy, pos, inv, N, C / HD, HD);
    gpu->rope_bwd(lma_at(ga, 2 * nc, es), gdy, gpos, ginv, N, C / HD, HD);
    memset(h + 3 * nc, 0, nc * 4); /* piece 3 zeroed, written by matmul_bwd's dinp, then added to */
    gpu->zero(lma_at(ga, 3 * nc, es), nc * es);
    for (int k = 0; k < 2; k++) {
        cpu->matmul_bwd(h + 3 * nc, NULL, NULL, dout, x, w, N, C, OC);
        gpu->matmul_bwd(lma_at(ga, 3 * nc, es), NULL, NULL, gdout, gx, gw, N, C, OC);
    }
    cmp_act("deferred zero: swiglu_bwd, rope_bwd, matmul_bwd into zeroed pieces", h, ga, 4 * nc, 1e-5);
    memset(h, 0, nc * 4); /* zeroed, then only read: add(piece 1, piece 0, piece 1) = piece 1 */
    gpu->zero(ga, nc * es);
    cpu->add(h + nc, h, h + nc, nc);
    gpu->add(lma_at(ga, nc, es), ga, lma_at(ga, nc, es), nc);
    cmp_act("deferred zero: a zeroed piece read by an op that takes nothing", h, ga, 2 * nc, 1e-6);
    CHECK(lma_backend_sync(gpu) == LMA_OK && !lma_error_pending(), "%s deferred zero: no CUDA error: %s", gpu->name,
          lma_last_error());
    void *dev[] = {gx, gw, gdout, gdy, gnw, gy, grs, G, ga, gpos, ginv};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) gpu->free(dev[i]);
    free(junk); free(hg); free(x); free(w); free(dout); free(dy); free(nw_); free(y); free(rs); free(a); free(h);
}

/* A whole allocation zeroed by this thread, a piece of it then written by another (the model's
 * random initialisation uploads from OpenMP workers): the zero is pending for every thread, so
 * the worker's upload clears it first and this thread's read finds the piece, the rest zero. */
struct upload_job { void *d; const float *h; size_t n; };
static void *upload_thread(void *arg) {
    struct upload_job *j = arg;
    gpu->upload(j->d, j->h, j->n * 4);
    return NULL;
}
static void deferred_zero_threads(void) {
    enum { N = 4096 };
    float *h = frand32(N, 1), *want = calloc(N, 4);
    memcpy(want, h, N / 2 * 4);
    float *G = gpu->alloc(N * 4);
    gpu->upload(G, h, N * 4);
    gpu->zero(G, N * 4);
    struct upload_job j = {G, h, N / 2};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, upload_thread, &j) == 0, "deferred zero across threads: thread started");
    pthread_join(t, NULL);
    cmp32("deferred zero: a piece written by another thread, the rest zero", want, G, N, 0);
    gpu->free(G);
    free(h); free(want);
}

/* The random initialisation (OpenMP workers upload the tensors) on the GPU equals the CPU's: the
 * same losses of one forward on exact fp32 GEMMs. */
static void init_random_threads(void) {
    lma_config c;
    CHECK(lma_config_preset("tiny", 512, 64, &c) == LMA_OK, "init_random: the tiny preset");
    c.vocab_size = 512;
    int ids[2 * 64], tg[2 * 64];
    for (int i = 0; i < 2 * 64; i++) { ids[i] = (i * 37 + 11) % 512; tg[i] = (i * 91 + 5) % 512; }
    float loss[2] = {0, 0};
    const lma_backend *bes[2] = {cpu, gpu};
    int th = lma_threads_get();
    lma_threads_set(4);
    for (int b = 0; b < 2; b++) {
        lma_model *m = NULL;
        CHECK(lma_model_create_ex(&c, bes[b], 0, &m) == LMA_OK && lma_model_init_random(m, 5, 0.2f) == LMA_OK &&
                  lma_model_forward(m, ids, tg, NULL, 2, 64, 0, 1.0f, &loss[b]) == LMA_OK,
              "init_random on %s: %s", bes[b]->name, lma_last_error());
        lma_model_free(m);
    }
    lma_threads_set(th);
    CHECK(fabs(loss[0] - loss[1]) <= 1e-4 * fabs(loss[0]), "%s init_random (4 threads): loss %.7g vs the CPU's %.7g",
          gpu->name, loss[1], loss[0]);
}

/* The fused q|k|v rows (backend.h qkv_rope_*) against the CPU's rope_fwd / rope_bwd of each
 * part (GQA: 4 query heads, 2 kv heads, HD 16; odd token count) */
static void fused_qkv_rope(void) {
    enum { N = 37, NH = 4, NKV = 2, HD = 16, QD = NH * HD, KVD = NKV * HD, W = QD + 2 * KVD };
    CHECK(gpu->qkv_rope_fwd && gpu->qkv_rope_bwd, "%s: qkv_rope_fwd/bwd present", gpu->name);
    if (!gpu->qkv_rope_fwd || !gpu->qkv_rope_bwd) return;
    float *qkv = frand((size_t)N * W, 1), *q = malloc(N * QD * 4), *k = malloc(N * KVD * 4), *v = malloc(N * KVD * 4);
    float *dq = frand(N * QD, 1), *dk = frand(N * KVD, 1), *dv = frand(N * KVD, 1), *dqkv = calloc((size_t)N * W, 4);
    float *rq = malloc(N * QD * 4), *rk = malloc(N * KVD * 4), inv[HD / 2];
    int32_t pos[N];
    for (int i = 0; i < N; i++) pos[i] = 5 * i + 1;
    for (int i = 0; i < HD / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / HD);
    for (int n = 0; n < N; n++) { /* the parts of each row, packed */
        memcpy(q + n * QD, qkv + (size_t)n * W, QD * 4);
        memcpy(k + n * KVD, qkv + (size_t)n * W + QD, KVD * 4);
        memcpy(v + n * KVD, qkv + (size_t)n * W + QD + KVD, KVD * 4);
    }
    cpu->rope_fwd(q, q, pos, inv, N, NH, HD);
    cpu->rope_fwd(k, k, pos, inv, N, NKV, HD);
    memset(rq, 0, N * QD * 4), memset(rk, 0, N * KVD * 4);
    cpu->rope_bwd(rq, dq, pos, inv, N, NH, HD);
    cpu->rope_bwd(rk, dk, pos, inv, N, NKV, HD);
    for (int n = 0; n < N; n++) {
        memcpy(dqkv + (size_t)n * W, rq + n * QD, QD * 4);
        memcpy(dqkv + (size_t)n * W + QD, rk + n * KVD, KVD * 4);
        memcpy(dqkv + (size_t)n * W + QD + KVD, dv + n * KVD, KVD * 4);
    }
    void *gqkv = dev_act(qkv, (size_t)N * W), *gq = alloc_act(N * QD), *gk = alloc_act(N * KVD), *gv = alloc_act(N * KVD);
    void *gdq = dev_act(dq, N * QD), *gdk = dev_act(dk, N * KVD), *gdv = dev_act(dv, N * KVD);
    void *gpos = dev32(pos, sizeof pos), *ginv = dev32(inv, sizeof inv);
    poison_act(gq, N * QD), poison_act(gk, N * KVD), poison_act(gv, N * KVD);
    gpu->qkv_rope_fwd(gq, gk, gv, gqkv, gpos, ginv, N, NH, NKV, HD);
    cmp_act("qkv_rope_fwd q", q, gq, N * QD, 1e-6);
    cmp_act("qkv_rope_fwd k", k, gk, N * KVD, 1e-6);
    cmp_act("qkv_rope_fwd v", v, gv, N * KVD, 1e-6);
    poison_act(gqkv, (size_t)N * W); /* written, not added into */
    gpu->qkv_rope_bwd(gqkv, gdq, gdk, gdv, gpos, ginv, N, NH, NKV, HD);
    cmp_act("qkv_rope_bwd", dqkv, gqkv, (size_t)N * W, 1e-6);
    void *dev[] = {gqkv, gq, gk, gv, gdq, gdk, gdv, gpos, ginv};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) gpu->free(dev[i]);
    free(qkv), free(q), free(k), free(v), free(dq), free(dk), free(dv), free(dqkv), free(rq), free(rk);
}

static void ops(void) {
    enum { B = 2, T = 37, NH = 4, NKV = 2, HD = 16, C = 48, OC = 80, V = 301 };
    int N = B * T;
    size_t nq = (size_t)N * NH * HD, nk = (size_t)N * NKV * HD;
    /* matmul */
    float *x = frand((size_t)N * C, 1), *w = frand((size_t)OC * C, 0.3f), *bias = frand(OC, 1);
    float *out = malloc((size_t)N * OC * 4), *dout = frand((size_t)N * OC, 1);
    float *dx = frand((size_t)N * C, 1), *dw = frand32((size_t)OC * C, 1), *db = frand32(OC, 1);
    void *gx = dev_act(x, (size_t)N * C), *gw = dev_act(w, (size_t)OC * C), *gb = dev_act(bias, OC);
    void *gout = alloc_act((size_t)N * OC), *gdout = dev_act(dout, (size_t)N * OC);
    void *gdx = dev_act(dx, (size_t)N * C), *gdw = dev32(dw, (size_t)OC * C * 4), *gdb = dev32(db, OC * 4);
    cpu->matmul_fwd(out, x, w, bias, N, C, OC);
    poison_act(gout, (size_t)N * OC);
    gpu->matmul_fwd(gout, gx, gw, gb, N, C, OC);
    cmp_act("matmul_fwd", out, gout, (size_t)N * OC, 1e-5);
    { /* matmul_fwd_add (LoRA's up projection into the base output) = matmul_fwd, then add */
        float *o2 = malloc((size_t)N * OC * 4);
        cpu->matmul_fwd(o2, x, w, NULL, N, C, OC);
        cpu->add(o2, o2, out, (size_t)N * OC);
        void *g2 = alloc_act((size_t)N * OC); /* onto the residual: into another matrix, gout read only */
        poison_act(g2, (size_t)N * OC);
        gpu->matmul_fwd_add(g2, gx, gw, gout, N, C, OC);
        cmp_act("matmul_fwd_add (res apart)", o2, g2, (size_t)N * OC, 1e-5);
        cmp_act("matmul_fwd_add leaves res", out, gout, (size_t)N * OC, 1e-5);
        gpu->free(g2);
        gpu->matmul_fwd_add(gout, gx, gw, gout, N, C, OC);
        cmp_act("matmul_fwd_add", o2, gout, (size_t)N * OC, 1e-5);
        gpu->matmul_fwd(gout, gx, gw, gb, N, C, OC); /* back to matmul_fwd's result */
        free(o2);
    }
    cpu->matmul_bwd(dx, dw, db, dout, x, w, N, C, OC);
    gpu->matmul_bwd(gdx, gdw, gdb, gdout, gx, gw, N, C, OC);
    cmp_act("matmul_bwd dinp", dx, gdx, (size_t)N * C, 1e-5);
    cmp32("matmul_bwd dw", dw, gdw, (size_t)OC * C, 1e-5);
    cmp32("matmul_bwd dbias", db, gdb, OC, 1e-5);
    /* NF4 matmuls (QLoRA): the same quantized weight on both sides; OC rows (whole 32-weight
     * chunks of the dequantization), then OC - 1 (a tail of 16 weights for the byte kernel) */
    for (int oc = OC; oc >= OC - 1; oc--) {
        lma_nf4_tensor qc, qg;
        CHECK_OK(lma_nf4_quantize(w, (int64_t)oc * C, &qc));
        CHECK_OK(lma_nf4_quantize(w, (int64_t)oc * C, &qg));
        CHECK_OK(lma_nf4_to_backend(&qg, gpu));
        float *o2 = malloc((size_t)N * oc * 4), *dx2 = frand((size_t)N * C, 1);
        void *gdx2 = dev_act(dx2, (size_t)N * C);
        cpu->matmul_nf4_fwd(o2, x, &qc, bias, N, C, oc);
        poison_act(gout, (size_t)N * OC);
        gpu->matmul_nf4_fwd(gout, gx, &qg, gb, N, C, oc);
        cmp_act(oc == OC ? "matmul_nf4_fwd" : "matmul_nf4_fwd (a tail)", o2, gout, (size_t)N * oc, 1e-5);
        cpu->matmul_nf4_bwd(dx2, dout, &qc, N, C, oc);
        gpu->matmul_nf4_bwd(gdx2, gdout, &qg, N, C, oc);
        cmp_act(oc == OC ? "matmul_nf4_bwd dinp" : "matmul_nf4_bwd dinp (a tail)", dx2, gdx2, (size_t)N * C, 1e-5);
        lma_nf4_free(&qc);
        lma_nf4_free(&qg);
        free(o2); free(dx2);
        gpu->free(gdx2);
    }
    /* rmsnorm */
    float *rn = malloc((size_t)N * C * 4), *rs = malloc(N * 4), *nw = frand(C, 1), *dn = frand32(C, 1);
    void *grn = alloc_act((size_t)N * C), *gnw = dev_act(nw, C);
    float *grs = gpu->alloc(N * 4), *gdn = dev32(dn, C * 4);
    cpu->rmsnorm_fwd(rn, rs, x, nw, N, C, 1e-5f);
    poison_act(grn, (size_t)N * C);
    gpu->rmsnorm_fwd(grn, grs, gx, gnw, N, C, 1e-5f);
    cmp_act("rmsnorm_fwd", rn, grn, (size_t)N * C, 1e-6);
    cmp32("rmsnorm rstd", rs, grs, N, 1e-6);
    cpu->rmsnorm_bwd(dx, dn, dout, x, nw, rs, N, C); /* dout as an arbitrary upstream gradient (N, C<=OC) */
    gpu->rmsnorm_bwd(gdx, gdn, gdout, gx, gnw, grs, N, C);
    cmp_act("rmsnorm_bwd dinp", dx, gdx, (size_t)N * C, 1e-5);
    cmp32("rmsnorm_bwd dw", dn, gdn, C, 1e-5);
    /* rope + attention (segments) */
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1), inv[HD / 2];
    int32_t pos[B * T], seg[B * T];
    for (int i = 0; i < HD / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / HD);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) { seg[b * T + t] = t < 15 ? 0 : t < 30 ? 1 : 2; pos[b * T + t] = t; }
    void *gq = dev_act(q, nq), *gk = dev_act(k, nk), *gv = dev_act(v, nk);
    float *ginv = dev32(inv, sizeof inv);
    int32_t *gpos = dev32(pos, sizeof pos), *gseg = dev32(seg, sizeof seg);
    cpu->rope_fwd(q, q, pos, inv, N, NH, HD);
    gpu->rope_fwd(gq, gq, gpos, ginv, N, NH, HD);
    cmp_act("rope_fwd", q, gq, nq, 1e-6);
    float *dq = frand(nq, 1), *dq2 = frand(nq, 1);
    void *gdq = dev_act(dq, nq), *gdq2 = dev_act(dq2, nq);
    cpu->rope_bwd(dq2, dq, pos, inv, N, NH, HD);
    gpu->rope_bwd(gdq2, gdq, gpos, ginv, N, NH, HD);
    cmp_act("rope_bwd", dq2, gdq2, nq, 1e-6);
    float scale = 0.25f, *ao = malloc(nq * 4), *att = malloc(cpu->attention_saved_floats(B, T, NH, HD) * 4);
    void *gao = alloc_act(nq);
    float *gatt = gpu->alloc(gpu->attention_saved_floats(B, T, NH, HD) * 4);
    /* flash attention rounds P and dS to bf16 for the tensor cores: ~3e-3 */
    double atol = lma_cuda_attention_naive == 0 ? 1e-2 : 1e-5;
    /* with segment ids, then without (where cuDNN's fused attention runs, mode 0 on bf16) */
    for (int with_seg = 1; with_seg >= 0; with_seg--) {
        const int32_t *cseg = with_seg ? seg : NULL, *gs = with_seg ? gseg : NULL;
        cpu->attention_fwd(ao, att, q, k, v, cseg, B, T, NH, NKV, HD, scale);
        poison_act(gao, nq);
        gpu->attention_fwd(gao, gatt, gq, gk, gv, gs, B, T, NH, NKV, HD, scale);
        cmp_act("attention_fwd", ao, gao, nq, atol);
        float *ddq = frand(nq, 1), *ddk = frand(nk, 1), *ddv = frand(nk, 1);
        void *gdo = dev_act(dq, nq), *gddq = dev_act(ddq, nq), *gddk = dev_act(ddk, nk), *gddv = dev_act(ddv, nk);
        cpu->attention_bwd(ddq, ddk, ddv, dq, ao, att, q, k, v, cseg, B, T, NH, NKV, HD, scale);
        gpu->attention_bwd(gddq, gddk, gddv, gdo, gao, gatt, gq, gk, gv, gs, B, T, NH, NKV, HD, scale);
        cmp_act("attention_bwd dq", ddq, gddq, nq, atol);
        cmp_act("attention_bwd dk", ddk, gddk, nk, atol);
        cmp_act("attention_bwd dv", ddv, gddv, nk, atol);
    }
    /* cached attention: one sequence, 5 past + 4 new */
    {
        int l5[1] = {5}, c9[1] = {9};
        cached_vs_cpu("(5 past + 4 new)", 1, l5, c9, 4, NH, NKV, HD, scale, 1e-5);
    }
    cached_shapes();
    /* swiglu, add, scale, mul */
    size_t n = (size_t)N * C;
    float *sw = malloc(n * 4);
    void *gsw = alloc_act(n);
    cpu->swiglu_fwd(sw, x, rn, n);
    gpu->swiglu_fwd(gsw, gx, grn, n);
    cmp_act("swiglu_fwd", sw, gsw, n, 1e-6);
    float *g1 = frand(n, 1), *g2 = frand(n, 1);
    void *gg1 = dev_act(g1, n), *gg2 = dev_act(g2, n);
    cpu->swiglu_bwd(g1, g2, sw, x, rn, n);
    gpu->swiglu_bwd(gg1, gg2, gsw, gx, grn, n);
    cmp_act("swiglu_bwd dgate", g1, gg1, n, 1e-6);
    cmp_act("swiglu_bwd dup", g2, gg2, n, 1e-6);
    cpu->add(sw, sw, x, n);
    gpu->add(gsw, gsw, gx, n);
    cmp_act("add", sw, gsw, n, 1e-6);
    cpu->scale(sw, 0.37f, n);
    gpu->scale(gsw, 0.37f, n);
    cmp_act("scale", sw, gsw, n, 1e-6);
    cpu->dropout(sw, sw, 0.3f, 77, n); /* the same mask on both: it is a hash of (seed, i) */
    gpu->dropout(gsw, gsw, 0.3f, 77, n);
    cmp_act("dropout", sw, gsw, n, 1e-6);
    /* cross-entropy with ignored rows */
    float *lg = frand((size_t)N * V, 2), *loss = malloc(N * 4);
    void *glg = dev_act(lg, (size_t)N * V);
    float *gloss = gpu->alloc(N * 4);
    int32_t tg[B * T];
    for (int i = 0; i < N; i++) tg[i] = i % 7 == 3 ? LMA_IGNORE_INDEX : (int32_t)lma_rng_below(&rng, V);
    int32_t *gtg = dev32(tg, sizeof tg);
    cpu->cross_entropy(loss, lg, lg, tg, N, V, 0.01f);
    gpu->cross_entropy(gloss, glg, glg, gtg, N, V, 0.01f);
    cmp32("cross_entropy loss", loss, gloss, N, 1e-6);
    cmp_act("cross_entropy dlogits", lg, glg, (size_t)N * V, 1e-5);
    /* adamw (+ the compute copy) + sum_sq */
    size_t np = 1000;
    float *p = frand32(np, 1), *gr = frand32(np, 1), *m = frand32(np, 0.1f), *vv = malloc(np * 4);
    for (size_t i = 0; i < np; i++) vv[i] = 0.01f * (float)(i % 13 + 1);
    float *gp = dev32(p, np * 4), *ggr = dev32(gr, np * 4), *gm = dev32(m, np * 4), *gvv = dev32(vv, np * 4);
    void *gpa = alloc_act(np);
    for (int t = 1; t <= 3; t++) {
        cpu->adamw(p, gr, m, vv, NULL, np, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, t, 0.7f);
        gpu->adamw(gp, ggr, gm, gvv, gpa, np, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, t, 0.7f);
    }
    double keep = tol_floor;
    tol_floor = 0; /* the masters and moments are fp32 on every table */
    cmp32("adamw params", p, gp, np, 1e-6);
    tol_floor = keep;
    float *pa = back_act(gpa, np), *pm = back32(gp, np);
    int same = 1;
    for (size_t i = 0; i < np; i++) same &= pa[i] == (act2() ? bf16_round(pm[i]) : pm[i]);
    CHECK(same, "%s adamw: the compute copy is the (rounded) updated master", gpu->name);
    free(pa); free(pm);
    float *x32 = frand32(n, 1);
    float *gx32 = dev32(x32, n * 4);
    double a = cpu->sum_sq(x32, n), b = gpu->sum_sq(gx32, n);
    CHECK(fabs(a - b) <= 1e-6 * a, "%s sum_sq %.9g vs %.9g", gpu->name, b, a);
    CHECK(!lma_error_pending(), "%s: no CUDA error recorded: %s", gpu->name, lma_last_error());
    /* (device buffers are freed with the process) */
    free(x); free(w); free(bias); free(out); free(dout); free(dx); free(dw); free(db); free(x32);
}

/* encoder ops against the CPU backend: layernorm with bias (rows of 48, vectorized, and 45,
 * not; in place), GELU, bidirectional attention with padded rows (lengths T, 1 and random;
 * head dims 16 and 32) */
static void encoder_ops(void) {
    const int Cs[2] = {48, 45};
    for (int ci = 0; ci < 2; ci++) {
        int N = 37, C = Cs[ci];
        size_t n = (size_t)N * C;
        float *x = frand(n, 1.5f), *w = frand(C, 1), *b = frand(C, 1), *o = malloc(n * 4), *o2 = malloc(n * 4);
        for (int c = 0; c < C; c++) x[c] = act2() ? bf16_round(x[c] + 20.0f) : x[c] + 20.0f; /* a large mean */
        void *gx = dev_act(x, n), *gw = dev_act(w, C), *gb = dev_act(b, C), *go = alloc_act(n);
        cpu->layernorm_fwd(o, x, w, b, N, C, 1e-12f);
        poison_act(go, n);
        gpu->layernorm_fwd(go, gx, gw, gb, N, C, 1e-12f);
        cmp_act("layernorm_fwd", o, go, n, 1e-5);
        gpu->layernorm_fwd(gx, gx, gw, gb, N, C, 1e-12f);
        cmp_act("layernorm_fwd in place", o, gx, n, 1e-5);
        cpu->gelu_fwd(o2, o, n);
        gpu->gelu_fwd(go, gx, n);
        cmp_act("gelu_fwd", o2, go, n, 1e-5);
        gpu->gelu_fwd(gx, gx, n);
        cmp_act("gelu_fwd in place", o2, gx, n, 1e-5);
        free(x); free(w); free(b); free(o); free(o2);
        gpu->free(gx); gpu->free(gw); gpu->free(gb); gpu->free(go);
    }
    const int shapes[2][4] = {{3, 37, 4, 16}, {4, 130, 3, 32}};
    for (int si = 0; si < 2; si++) {
        int B = shapes[si][0], T = shapes[si][1], NH = shapes[si][2], HD = shapes[si][3];
        size_t n = (size_t)B * T * NH * HD;
        int32_t lens[4];
        for (int b = 0; b < B; b++) lens[b] = b == 0 ? T : b == 1 ? 1 : 1 + (int32_t)lma_rng_below(&rng, T);
        float *q = frand(n, 1), *k = frand(n, 1), *v = frand(n, 1), *o = malloc(n * 4);
        void *gq = dev_act(q, n), *gk = dev_act(k, n), *gv = dev_act(v, n), *go = alloc_act(n);
        int32_t *gl = dev32(lens, (size_t)B * sizeof *lens);
        float scale = 1.0f / sqrtf((float)HD);
        cpu->attention_bidir_fwd(o, q, k, v, lens, B, T, NH, HD, scale);
        poison_act(go, n);
        gpu->attention_bidir_fwd(go, gq, gk, gv, gl, B, T, NH, HD, scale);
        cmp_act("attention_bidir_fwd", o, go, n, 1e-5);
        free(q); free(k); free(v); free(o);
        gpu->free(gq); gpu->free(gk); gpu->free(gv); gpu->free(go); gpu->free(gl);
    }
    CHECK(lma_backend_sync(gpu) == LMA_OK && !lma_error_pending(), "%s encoder ops: no CUDA error: %s", gpu->name,
          lma_last_error());
}

int main(void) {
    cpu = lma_backend_cpu();
    const lma_backend *fp32, *bf16;
    if (!cuda_test_tables(&fp32, &bf16)) return 77;
    lma_rng_seed(&rng, 77);
    /* the fused decode op is the bf16 table's only (the model falls back elsewhere) */
    CHECK(bf16->norm_proj_fwd && !fp32->norm_proj_fwd && !cpu->norm_proj_fwd,
          "norm_proj_fwd on cuda only, NULL on cuda-fp32 and cpu");
    /* cuda-fp32 */
    gpu = fp32;
    casts();
    lma_cuda_set_tf32(0);           /* exact fp32 GEMMs: fp32 tolerances */
    deferred_zero();
    deferred_zero_threads();
    init_random_threads();
    fused_qkv_rope();
    few_rows();
    encoder_ops();
    lma_cuda_attention_naive = 2;   /* attention through batched GEMMs */
    ops();
    lma_cuda_attention_naive = 1;   /* the naive kernels, the oracle */
    ops();
    lma_cuda_attention_naive = 0;   /* flash attention (bf16 tensor cores inside) */
    ops();
    packed_attention();
    lma_cuda_set_tf32(1);           /* TF32 tensor cores (10-bit mantissa products): */
    tol_floor = 5e-3;               /* relative L2 of a K-term dot product stays ~1e-3 */
    ops();
    /* cuda: bf16 storage; every output is rounded to bf16 (2^-9 relative) */
    gpu = bf16;
    tol_floor = 1e-2;
    casts();
    deferred_zero();
    fused_qkv_rope();
    encoder_ops();
    ops();
    lma_cuda_attention_naive = 1;
    ops();
    lma_cuda_attention_naive = 0;
    tol_floor = 0;
    cudnn_attention();
    few_rows();
    fused_norm_proj();
    packed_attention();
    TEST_END();
}
