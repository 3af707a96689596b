/* GPU ops at the shapes of real models (label cuda), against the CPU backend, both tables, with
 * the kernels of the fifteenth session on (three are defaults; the thin products opt-in, which
 * this test turns on): rmsnorm's backward (one pass over slabs of rows), cross-entropy (rows in
 * registers), the thin products of LoRA (ops_thin.cuh), RoPE over groups of heads. The op-by-op
 * test at small shapes (default kernels): test_backend_cuda.c. */
#include <stdio.h>
#include <stdlib.h>
#include "backend/backend.h"
#include "backend/cuda/cuda_host.h"
#include "core/status.h"
#include "cuda_ops_test.h"

/* rmsnorm_bwd at shapes of real models against the CPU: many slabs of rows and a partial one
 * (N = 1001), rows of 768, 2048 and 4096 (vectorized), 1032 (a thread count off the powers of
 * two), 40 and 45 (not vectorized), 8192 (a 70B row: past the one-pass kernel's 512 threads, the
 * two-kernel path); the input gradient and the weight's added into (non-zero before), or either
 * left NULL (without dw: the row kernel) */
static void rmsnorm_shapes(void) {
    const int shapes[7][2] = {{1001, 768}, {1001, 2048}, {300, 4096}, {77, 1032}, {1001, 40}, {50, 45}, {50, 8192}};
    for (int si = 0; si < 7; si++) {
        int N = shapes[si][0], C = shapes[si][1];
        size_t n = (size_t)N * C;
        float *x = frand(n, 1.5f), *w = frand(C, 1), *g = frand(n, 1), *dx = frand(n, 1), *dw = frand32(C, 1);
        float *y = malloc(n * 4), *rs = malloc((size_t)N * 4);
        void *gx = dev_act(x, n), *gw = dev_act(w, C), *gg = dev_act(g, n), *gdx = dev_act(dx, n), *gy = alloc_act(n);
        float *grs = gpu->alloc((size_t)N * 4), *gdw = dev32(dw, (size_t)C * 4);
        cpu->rmsnorm_fwd(y, rs, x, w, N, C, 1e-5f);
        gpu->rmsnorm_fwd(gy, grs, gx, gw, N, C, 1e-5f);
        char what[96];
        for (int mode = 0; mode < 3; mode++) { /* both, dinp only, dw only */
            cpu->rmsnorm_bwd(mode == 2 ? NULL : dx, mode == 1 ? NULL : dw, g, x, w, rs, N, C);
            gpu->rmsnorm_bwd(mode == 2 ? NULL : gdx, mode == 1 ? NULL : gdw, gg, gx, gw, grs, N, C);
            snprintf(what, sizeof what, "rmsnorm_bwd %dx%d mode %d dinp", N, C, mode);
            cmp_act(what, dx, gdx, n, 1e-5);
            snprintf(what, sizeof what, "rmsnorm_bwd %dx%d mode %d dw", N, C, mode);
            cmp32(what, dw, gdw, C, 1e-5);
        }
        free(x); free(w); free(g); free(dx); free(dw); free(y); free(rs);
        gpu->free(gx); gpu->free(gw); gpu->free(gg); gpu->free(gdx); gpu->free(gy); gpu->free(grs); gpu->free(gdw);
    }
    CHECK(lma_backend_sync(gpu) == LMA_OK && !lma_error_pending(), "%s rmsnorm shapes: no CUDA error: %s", gpu->name,
          lma_last_error());
}

/* cross_entropy at vocabularies of real models against the CPU (rows of 32000, 32768 and 49152:
 * held in registers between the passes on the bf16 table, 8 or 12 chunks a thread; 1000: chunks
 * past the row's end; 65536: read twice), with an ignored row: into a separate buffer, in place,
 * and the loss alone */
static void cross_entropy_shapes(void) {
    const int Vs[5] = {32000, 32768, 1000, 49152, 65536};
    enum { N = 9 };
    for (int vi = 0; vi < 5; vi++) {
        int V = Vs[vi];
        size_t n = (size_t)N * V;
        float *lg = frand(n, 3), *d = malloc(n * 4), *loss = malloc(N * 4);
        int32_t tg[N];
        for (int i = 0; i < N; i++) tg[i] = i % 7 == 3 ? LMA_IGNORE_INDEX : (int32_t)lma_rng_below(&rng, V);
        tg[0] = V - 1; /* the last column: the target's -1 in the last chunk */
        void *glg = dev_act(lg, n), *gd = alloc_act(n);
        float *gloss = gpu->alloc(N * 4);
        int32_t *gtg = dev32(tg, sizeof tg);
        char what[80];
        cpu->cross_entropy(loss, d, lg, tg, N, V, 0.5f);
        for (int mode = 0; mode < 3; mode++) { /* apart, in place, the loss alone */
            if (mode == 1) gpu->cross_entropy(gloss, glg, glg, gtg, N, V, 0.5f);
            else gpu->cross_entropy(gloss, mode == 0 ? gd : NULL, glg, gtg, N, V, 0.5f);
            snprintf(what, sizeof what, "cross_entropy V %d mode %d loss", V, mode);
            cmp32(what, loss, gloss, N, 1e-6);
            if (mode < 2) {
                snprintf(what, sizeof what, "cross_entropy V %d mode %d dlogits", V, mode);
                cmp_act(what, d, mode == 0 ? gd : glg, n, 1e-5);
            }
            if (mode == 1) { /* the logits back for the loss alone */
                gpu->free(glg);
                glg = dev_act(lg, n);
            }
        }
        free(lg); free(d); free(loss);
        gpu->free(glg); gpu->free(gd); gpu->free(gloss); gpu->free(gtg);
    }
    CHECK(lma_backend_sync(gpu) == LMA_OK && !lma_error_pending(), "%s cross_entropy shapes: no CUDA error: %s",
          gpu->name, lma_last_error());
}

/* The thin products (ops_thin.cuh, bf16 table; cuBLASLt on cuda-fp32) at LoRA's shapes against
 * the CPU: inner dims 8 (padded to 16), 16, 48 (a group of three), 64, and 72 (past them:
 * cuBLASLt); N = 300 (a partial tile of rows), M = 1000 (a partial tile of columns): the forward
 * x W^T (output poisoned), adding a residual (apart and in place), and a backward's input
 * gradient dout W (LoRA's A side: dinp (N,M) += dxa (N,K) A (K,M)), added into and written
 * (zeroed before: the deferred zero makes the product write) */
static void thin_products(void) {
    const int Ks[5] = {8, 16, 48, 64, 72};
    enum { N = 300, M = 1000 };
    for (int ki = 0; ki < 5; ki++) {
        int K = Ks[ki];
        size_t nx = (size_t)N * K, no = (size_t)N * M, nw = (size_t)M * K;
        float *x = frand(nx, 1), *w = frand(nw, 1), *res = frand(no, 1), *o = malloc(no * 4);
        void *gx = dev_act(x, nx), *gw = dev_act(w, nw), *gres = dev_act(res, no), *go = alloc_act(no);
        char what[96];
        cpu->matmul_fwd(o, x, w, NULL, N, K, M); /* w as (M, K) */
        poison_act(go, no);
        gpu->matmul_fwd(go, gx, gw, NULL, N, K, M);
        snprintf(what, sizeof what, "thin K %d matmul_fwd", K);
        cmp_act(what, o, go, no, 1e-5);
        for (size_t i = 0; i < no; i++) o[i] += res[i];
        poison_act(go, no);
        gpu->matmul_fwd_add(go, gx, gw, gres, N, K, M);
        snprintf(what, sizeof what, "thin K %d matmul_fwd_add (res apart)", K);
        cmp_act(what, o, go, no, 1e-5);
        gpu->matmul_fwd_add(gres, gx, gw, gres, N, K, M);
        snprintf(what, sizeof what, "thin K %d matmul_fwd_add (in place)", K);
        cmp_act(what, o, gres, no, 1e-5);
        /* w as (K, M): dinp (N,M) += x (N,K) w (K,M) */
        gpu->free(gres);
        float *r0 = frand(no, 1);
        memcpy(o, r0, no * 4);
        gres = dev_act(r0, no);
        cpu->matmul_bwd(o, NULL, NULL, x, NULL, w, N, M, K);
        gpu->matmul_bwd(gres, NULL, NULL, gx, NULL, gw, N, M, K);
        snprintf(what, sizeof what, "thin K %d matmul_bwd dinp (added)", K);
        cmp_act(what, o, gres, no, 1e-5);
        memset(o, 0, no * 4);
        cpu->matmul_bwd(o, NULL, NULL, x, NULL, w, N, M, K);
        gpu->zero(gres, no * (size_t)gpu->act_bytes);
        gpu->matmul_bwd(gres, NULL, NULL, gx, NULL, gw, N, M, K);
        snprintf(what, sizeof what, "thin K %d matmul_bwd dinp (written)", K);
        cmp_act(what, o, gres, no, 1e-5);
        free(x); free(w); free(res); free(o); free(r0);
        gpu->free(gx); gpu->free(gw); gpu->free(gres); gpu->free(go);
    }
    CHECK(lma_backend_sync(gpu) == LMA_OK && !lma_error_pending(), "%s thin products: no CUDA error: %s", gpu->name,
          lma_last_error());
}

/* rope at head counts off the 4-head groups (6: a partial group; 32), head dims 64 (8 pairs a
 * thread), 16 and 12 (one pair a thread): forward apart and in place, backward added into and
 * written (zeroed before) */
static void rope_heads(void) {
    const int shapes[4][2] = {{6, 64}, {32, 64}, {6, 16}, {5, 12}};
    enum { N = 37 };
    int32_t pos[N];
    for (int i = 0; i < N; i++) pos[i] = 3 * i + 1;
    int32_t *gpos = dev32(pos, sizeof pos);
    for (int si = 0; si < 4; si++) {
        int NH = shapes[si][0], HD = shapes[si][1];
        size_t n = (size_t)N * NH * HD;
        float inv[64];
        for (int i = 0; i < HD / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / HD);
        float *x = frand(n, 1), *o = malloc(n * 4), *d = frand(n, 1);
        float *ginv = dev32(inv, (size_t)HD / 2 * 4);
        void *gx = dev_act(x, n), *go = alloc_act(n), *gd = dev_act(d, n);
        char what[80];
        cpu->rope_fwd(o, x, pos, inv, N, NH, HD);
        poison_act(go, n);
        gpu->rope_fwd(go, gx, gpos, ginv, N, NH, HD);
        snprintf(what, sizeof what, "rope_fwd %d heads of %d", NH, HD);
        cmp_act(what, o, go, n, 1e-6);
        gpu->rope_fwd(gx, gx, gpos, ginv, N, NH, HD);
        snprintf(what, sizeof what, "rope_fwd %d heads of %d (in place)", NH, HD);
        cmp_act(what, o, gx, n, 1e-6);
        cpu->rope_bwd(d, o, pos, inv, N, NH, HD); /* o as the upstream gradient */
        gpu->rope_bwd(gd, go, gpos, ginv, N, NH, HD);
        snprintf(what, sizeof what, "rope_bwd %d heads of %d (added)", NH, HD);
        cmp_act(what, d, gd, n, 1e-5);
        memset(d, 0, n * 4);
        cpu->rope_bwd(d, o, pos, inv, N, NH, HD);
        gpu->zero(gd, n * (size_t)gpu->act_bytes);
        gpu->rope_bwd(gd, go, gpos, ginv, N, NH, HD);
        snprintf(what, sizeof what, "rope_bwd %d heads of %d (written)", NH, HD);
        cmp_act(what, d, gd, n, 1e-5);
        free(x); free(o); free(d);
        gpu->free(ginv); gpu->free(gx); gpu->free(go); gpu->free(gd);
    }
    gpu->free(gpos);
    CHECK(lma_backend_sync(gpu) == LMA_OK && !lma_error_pending(), "%s rope: no CUDA error: %s", gpu->name,
          lma_last_error());
}

int main(void) {
    /* the kernels as the environment switches them (docs/cuda.md: rmsnorm's slabs, cross-entropy
     * in registers and RoPE over head groups are defaults, =0 checks the paths they replaced;
     * LMA_CUDA_NORM_SLAB_PF=1 the opt-in slab variant), and the thin products on unless
     * LMA_CUDA_THIN says otherwise; the switches are read at each op's first call */
    setenv("LMA_CUDA_THIN", "1", 0);
    cpu = lma_backend_cpu();
    const lma_backend *fp32, *bf16;
    if (!cuda_test_tables(&fp32, &bf16)) return 77;
    lma_rng_seed(&rng, 78);
    gpu = fp32;
    lma_cuda_set_tf32(0); /* exact fp32 GEMMs */
    rmsnorm_shapes();
    cross_entropy_shapes();
    thin_products();
    rope_heads();
    gpu = bf16; /* bf16 storage: every output rounded to bf16 (2^-9 relative) */
    tol_floor = 1e-2;
    rmsnorm_shapes();
    cross_entropy_shapes();
    thin_products();
    rope_heads();
    TEST_END();
}
