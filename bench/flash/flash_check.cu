/* Standalone check and timing of the flash-attention kernels (src/backend/cuda/flash_fwd.cu and
 * flash_bwd.cu) against a double-precision CPU reference, fp32 and bf16 storage, several head dims,
 * GQA and segment ids (packed documents and reused ids: the skipped tiles), T not a multiple
 * of the tile. Run on the device machine:
 *   nvcc -std=c++17 -O3 -arch=sm_90 -Isrc -Iinclude bench/flash/flash_check.cu src/backend/cuda/flash_fwd.cu \
 *     src/backend/cuda/flash_bwd.cu -o /tmp/fc && /tmp/fc
 * (the op-level test in tests/test_backend_cuda.c covers the same through the op table).
 * LMA_CUDA_FLASH_BWD=kv|heads forces the backward's grid (per kv head / per query head);
 * LMA_CUDA_FLASH=wmma the first (WMMA) kernels instead of the mma.sync ones. Argument
 * "check": no timings. Built with cuDNN (add src/backend/cuda/cudnn_sdpa.cu -DLMA_HAVE_CUDNN
 * -lcudnn), it also checks and times cuDNN's fused attention (bf16) the same way: unsegmented
 * rows, packed documents as ragged sequences (ids that never decrease along a row; reused ids
 * must fall back), and each direction with the other one's flash kernel (the shared lse). */
#include <cuda_bf16.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#include "backend/cuda/cuda_internal.h"

/* the plugin's counted allocator and stream (cuda_backend.cu), plain here */
unsigned long lma_cuda_epoch; /* bumped where device data changes under the same pointer */
void *lma_cuda_malloc(size_t bytes) { void *p = NULL; lma_cuda_epoch++; return cudaMalloc(&p, bytes) == cudaSuccess ? p : NULL; }
void lma_cuda_free(void *p) { lma_cuda_epoch++; cudaFree(p); }
thread_local cudaStream_t lma_cu_stream = 0;

static double urand(unsigned long long *s) { *s = *s * 6364136223846793005ULL + 1442695040888963407ULL; return ((*s >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1; }

static void ref(int B, int T, int NH, int NKV, int HD, float scale, const std::vector<float> &q, const std::vector<float> &k,
                const std::vector<float> &v, const std::vector<int> &seg, const std::vector<float> &dout, std::vector<double> &out,
                std::vector<double> &dq, std::vector<double> &dk, std::vector<double> &dv) {
    int G = NH / NKV;
    out.assign(q.size(), 0); dq.assign(q.size(), 0); dk.assign(k.size(), 0); dv.assign(v.size(), 0);
    std::vector<double> p(T), dp(T);
    for (int b = 0; b < B; b++) for (int h = 0; h < NH; h++) for (int t = 0; t < T; t++) {
        int kh = h / G; double mx = -1e300;
        const float *qt = &q[(((size_t)b * T + t) * NH + h) * HD];
        for (int s = 0; s <= t; s++) {
            if (!seg.empty() && seg[b * T + s] != seg[b * T + t]) { p[s] = -1e300; continue; }
            const float *ks = &k[(((size_t)b * T + s) * NKV + kh) * HD]; double d = 0;
            for (int i = 0; i < HD; i++) d += (double)qt[i] * ks[i];
            p[s] = d * scale; if (p[s] > mx) mx = p[s];
        }
        double sum = 0;
        for (int s = 0; s <= t; s++) { p[s] = p[s] <= -1e299 ? 0 : exp(p[s] - mx); sum += p[s]; }
        for (int s = 0; s <= t; s++) p[s] /= sum;
        double *o = &out[(((size_t)b * T + t) * NH + h) * HD];
        for (int s = 0; s <= t; s++) for (int i = 0; i < HD; i++) o[i] += p[s] * v[(((size_t)b * T + s) * NKV + kh) * HD + i];
        const float *g = &dout[(((size_t)b * T + t) * NH + h) * HD]; double dot = 0;
        for (int s = 0; s <= t; s++) { double d = 0; for (int i = 0; i < HD; i++) d += g[i] * (double)v[(((size_t)b * T + s) * NKV + kh) * HD + i]; dp[s] = d; dot += p[s] * d; }
        for (int s = 0; s <= t; s++) {
            double dz = p[s] * (dp[s] - dot) * scale; size_t ko = (((size_t)b * T + s) * NKV + kh) * HD;
            for (int i = 0; i < HD; i++) {
                dq[(((size_t)b * T + t) * NH + h) * HD + i] += dz * k[ko + i];
                dk[ko + i] += dz * qt[i];
                dv[ko + i] += p[s] * g[i];
            }
        }
    }
}

static double rel(const std::vector<double> &r, const std::vector<float> &x) {
    double n = 0, d = 0;
    for (size_t i = 0; i < r.size(); i++) { if (!isfinite(x[i])) return INFINITY; n += (r[i] - x[i]) * (r[i] - x[i]); d += r[i] * r[i]; }
    return sqrt(n / (d > 0 ? d : 1));
}

template <typename TI> static void up(void *d, const std::vector<float> &h) {
    std::vector<TI> t(h.size()); for (size_t i = 0; i < h.size(); i++) t[i] = (TI)h[i];
    cudaMemcpy(d, t.data(), t.size() * sizeof(TI), cudaMemcpyHostToDevice);
}
template <typename TI> static std::vector<float> down(const void *d, size_t n) {
    std::vector<TI> t(n); std::vector<float> h(n); cudaMemcpy(t.data(), d, n * sizeof(TI), cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < n; i++) h[i] = (float)t[i]; return h;
}

/* use_sdpa: cuDNN's attention (cudnn_sdpa.cu) instead of the flash kernel, 1 forward, 2 backward, 3 both */
static int fails = 0, use_sdpa = 0;
static cudaError_t fwd(void *o, float *lse, const void *q, const void *k, const void *v, const int *seg, int B, int T,
                       int NH, int NKV, int HD, float scale, int bf) {
    if (use_sdpa & 1)
        return lma_cuda_sdpa_fwd(o, lse, q, k, v, seg, B, T, NH, NKV, HD, scale) ? cudaErrorNotSupported : cudaSuccess;
    return lma_cuda_flash_fwd(o, lse, q, k, v, seg, B, T, NH, NKV, HD, scale, bf);
}
static cudaError_t bwd(void *dq, void *dk, void *dv, const void *g, const void *o, const float *lse, const void *q,
                       const void *k, const void *v, const int *seg, int B, int T, int NH, int NKV, int HD, float scale,
                       int bf) {
    if (use_sdpa & 2)
        return lma_cuda_sdpa_bwd(dq, dk, dv, g, o, lse, q, k, v, seg, B, T, NH, NKV, HD, scale) ? cudaErrorNotSupported
                                                                                                 : cudaSuccess;
    return lma_cuda_flash_bwd(dq, dk, dv, g, o, lse, q, k, v, seg, B, T, NH, NKV, HD, scale, bf);
}
template <typename TI> static void check(int B, int T, int NH, int NKV, int HD, int use_seg) {
    unsigned long long s = 1234 + T * 7 + HD;
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    std::vector<float> q(nq), k(nk), v(nk), dout(nq), init(nq); std::vector<int> seg;
    for (auto &x : q) x = urand(&s); for (auto &x : k) x = urand(&s); for (auto &x : v) x = urand(&s); for (auto &x : dout) x = urand(&s);
    for (auto &x : init) x = 0.5 * urand(&s);
    /* segment ids: 1 three segments; 2 packed documents of 90, 37, 150, ... rows (nondecreasing
     * ids across tiles); 3 ids reused apart ((t / 70) % 3: the skipping must stay exact); 4
     * documents of 100 rows, then 50 rows of -1 (a loader's padding) */
    static const int doc_len[3] = {90, 37, 150};
    if (use_seg) seg.resize(B * T);
    for (int b = 0; use_seg && b < B; b++)
        for (int t = 0, id = 0, end = doc_len[0]; t < T; t++) {
            if (t == end) end += doc_len[++id % 3];
            seg[b * T + t] = use_seg == 1 ? (t < T / 3 ? 0 : (t < T / 2 + b ? 1 : 2)) : use_seg == 2 ? id : use_seg == 3 ? (t / 70) % 3 : t < T - 50 ? t / 100 : -1;
        }
    float scale = 1.0f / sqrtf((float)HD);
    std::vector<double> ro, rdq, rdk, rdv;
    ref(B, T, NH, NKV, HD, scale, q, k, v, seg, dout, ro, rdq, rdk, rdv);
    /* the kernels accumulate into the gradients: start them at `init`, compare grad - init */
    void *dq_, *dk_, *dv_, *dd, *dqq, *dkk, *dvv, *ddo; float *lse; int *dseg = NULL;
    size_t e = sizeof(TI);
    cudaMalloc(&dq_, nq * e); cudaMalloc(&dk_, nk * e); cudaMalloc(&dv_, nk * e); cudaMalloc(&dd, nq * e);
    cudaMalloc(&dqq, nq * e); cudaMalloc(&dkk, nk * e); cudaMalloc(&dvv, nk * e); cudaMalloc(&ddo, nq * e);
    cudaMalloc(&lse, (size_t)B * NH * T * 4);
    up<TI>(dq_, q); up<TI>(dk_, k); up<TI>(dv_, v); up<TI>(ddo, dout);
    std::vector<float> ik(init.begin(), init.begin() + nk);
    up<TI>(dqq, init); up<TI>(dkk, ik); up<TI>(dvv, ik);
    if (use_seg) { cudaMalloc(&dseg, B * T * 4); cudaMemcpy(dseg, seg.data(), B * T * 4, cudaMemcpyHostToDevice); lma_cuda_epoch++; }
    int bf = sizeof(TI) == 2;
    cudaError_t r1 = fwd(dd, lse, dq_, dk_, dv_, dseg, B, T, NH, NKV, HD, scale, bf);
    cudaError_t r2 = bwd(dqq, dkk, dvv, ddo, dd, lse, dq_, dk_, dv_, dseg, B, T, NH, NKV, HD, scale, bf);
    cudaError_t r3 = cudaDeviceSynchronize();
    std::vector<float> o = down<TI>(dd, nq), gq = down<TI>(dqq, nq), gk = down<TI>(dkk, nk), gv = down<TI>(dvv, nk);
    for (size_t i = 0; i < nq; i++) gq[i] -= (float)(TI)init[i];
    for (size_t i = 0; i < nk; i++) { gk[i] -= (float)(TI)init[i]; gv[i] -= (float)(TI)init[i]; }
    double eo = rel(ro, o), eq = rel(rdq, gq), ek = rel(rdk, gk), ev = rel(rdv, gv), tol = bf ? 3e-2 : 1.5e-2;
    if (use_sdpa && (r1 == cudaErrorNotSupported || r2 == cudaErrorNotSupported)) { /* the backend falls back */
        int expected = use_seg == 3; /* reused ids are not packed documents: cuDNN must decline them */
        printf("%s bf16 cudnn%d B=%d T=%d NH=%d NKV=%d HD=%d seg=%d: %s\n", expected ? "ok   (declined)" : "skip", use_sdpa, B,
               T, NH, NKV, HD, use_seg, lma_cuda_sdpa_note());
        if (!expected && use_seg) fails++; /* packed documents must take the ragged path */
        cudaFree(dq_); cudaFree(dk_); cudaFree(dv_); cudaFree(dd); cudaFree(dqq); cudaFree(dkk); cudaFree(dvv); cudaFree(ddo); cudaFree(lse);
        return;
    }
    int ok = r1 == cudaSuccess && r2 == cudaSuccess && r3 == cudaSuccess && eo < tol && eq < tol && ek < tol && ev < tol;
    if (use_sdpa && use_seg == 3) ok = 0; /* taken where it must decline */
    printf("%s %s%s B=%d T=%d NH=%d NKV=%d HD=%d seg=%d: rel L2 out %.2e dq %.2e dk %.2e dv %.2e (tol %.0e) %s\n", ok ? "ok  " : "FAIL",
           bf ? "bf16" : "fp32", use_sdpa == 3 ? " cudnn" : use_sdpa == 1 ? " cudnn-fwd" : use_sdpa ? " cudnn-bwd" : "", B, T, NH, NKV, HD, use_seg, eo, eq, ek, ev, tol, r3 != cudaSuccess ? cudaGetErrorString(r3) : "");
    if (!ok) fails++;
    cudaFree(dq_); cudaFree(dk_); cudaFree(dv_); cudaFree(dd); cudaFree(dqq); cudaFree(dkk); cudaFree(dvv); cudaFree(ddo); cudaFree(lse); cudaFree(dseg);
}

/* doc > 0: packed documents of doc rows (segment ids t / doc) */
template <typename TI> static void timing(int B, int T, int NH, int NKV, int HD, int doc = 0) {
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD, e = sizeof(TI);
    void *q, *k, *v, *o, *dq, *dk, *dv, *g; float *lse;
    cudaMalloc(&q, nq * e); cudaMalloc(&k, nk * e); cudaMalloc(&v, nk * e); cudaMalloc(&o, nq * e); cudaMalloc(&g, nq * e);
    cudaMalloc(&dq, nq * e); cudaMalloc(&dk, nk * e); cudaMalloc(&dv, nk * e); cudaMalloc(&lse, (size_t)B * NH * T * 4);
    cudaMemset(q, 0, nq * e); cudaMemset(k, 0, nk * e); cudaMemset(v, 0, nk * e); cudaMemset(g, 0, nq * e);
    int bf = e == 2; float scale = 0.125f, *seg = NULL;
    if (doc) {
        std::vector<int> h((size_t)B * T);
        for (size_t i = 0; i < h.size(); i++) h[i] = (int)(i % T) / doc;
        cudaMalloc(&seg, h.size() * 4);
        cudaMemcpy(seg, h.data(), h.size() * 4, cudaMemcpyHostToDevice);
        lma_cuda_epoch++;
    }
    int *sg = (int *)seg;
    cudaEvent_t a, b, c; cudaEventCreate(&a); cudaEventCreate(&b); cudaEventCreate(&c);
    for (int w = 0; w < 2; w++) { fwd(o, lse, q, k, v, sg, B, T, NH, NKV, HD, scale, bf); bwd(dq, dk, dv, g, o, lse, q, k, v, sg, B, T, NH, NKV, HD, scale, bf); }
    const int R = 5;
    cudaEventRecord(a);
    for (int r = 0; r < R; r++) fwd(o, lse, q, k, v, sg, B, T, NH, NKV, HD, scale, bf);
    cudaEventRecord(b);
    for (int r = 0; r < R; r++) bwd(dq, dk, dv, g, o, lse, q, k, v, sg, B, T, NH, NKV, HD, scale, bf);
    cudaEventRecord(c); cudaEventSynchronize(c);
    float f, bw; cudaEventElapsedTime(&f, a, b); cudaEventElapsedTime(&bw, b, c); f /= R; bw /= R;
    int L = doc ? doc : T; /* causal: half of QK^T and PV, over each document */
    double flop = 4.0 * B * NH * (double)(T / L) * L * L / 2 * HD;
    printf("time %s%s B=%d T=%d NH=%d NKV=%d HD=%d docs=%d: fwd %.3f ms (%.0f TFLOP/s) bwd %.3f ms (%.0f TFLOP/s)\n", bf ? "bf16" : "fp32", use_sdpa ? " cudnn" : "", B, T, NH, NKV,
           HD, doc, f, flop / f / 1e9, bw, 2.5 * flop / bw / 1e9);
    cudaFree(seg); cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(o); cudaFree(g); cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(lse);
}

int main(int argc, char **argv) {
    /* "check": correctness only (for compute-sanitizer); "time": timings only (for ncu) */
    int timings = !(argc > 1 && !strcmp(argv[1], "check")), checks = !(argc > 1 && !strcmp(argv[1], "time"));
    setenv("LMA_CUDA_CUDNN_MIN_CALLS", "1", 0); /* cuDNN plans from the first call of a shape */
    int hds[] = {16, 32, 64, 128};
    for (int i = 0; checks && i < 4; i++) {
        check<float>(2, 200, 4, 2, hds[i], 1);
        check<__nv_bfloat16>(2, 200, 4, 2, hds[i], 1);
    }
    if (checks) {
        check<float>(1, 128, 2, 2, 64, 0);
        check<__nv_bfloat16>(3, 77, 6, 2, 64, 0);
        check<float>(1, 300, 8, 8, 128, 0);
        check<__nv_bfloat16>(2, 300, 8, 2, 128, 1); /* GQA at head dim 128, segments, 5 tiles */
        for (int kind = 2; kind <= 3; kind++) { /* tiles skipped: packed documents, reused ids */
            check<float>(2, 450, 4, 2, 64, kind);
            check<__nv_bfloat16>(2, 450, 4, 2, 64, kind);
            check<__nv_bfloat16>(1, 450, 8, 2, 128, kind);
        }
    }
#ifdef LMA_HAVE_CUDNN
    use_sdpa = 3; /* cuDNN: bf16, the same references */
    for (int i = 0; checks && i < 4; i++) check<__nv_bfloat16>(2, 200, 4, 2, hds[i], 0);
    if (checks) {
        check<__nv_bfloat16>(3, 77, 6, 2, 64, 0);
        check<__nv_bfloat16>(2, 300, 8, 8, 128, 0);
        /* packed rows as ragged documents: three segments, documents of 90/37/150 rows (padded
         * to a power of two of documents), GQA and MHA, head dims 64 and 128; reused ids decline */
        for (int kind = 1; kind <= 3; kind++) check<__nv_bfloat16>(2, 450, 4, 2, 64, kind);
        check<__nv_bfloat16>(1, 450, 8, 2, 128, 2);
        check<__nv_bfloat16>(2, 300, 8, 8, 128, 2);
        check<__nv_bfloat16>(3, 200, 4, 4, 64, 1);
        check<__nv_bfloat16>(2, 450, 4, 2, 64, 4);
        for (use_sdpa = 1; use_sdpa <= 2; use_sdpa++) { /* one direction each: the lse is shared */
            check<__nv_bfloat16>(2, 450, 4, 2, 64, 2);
            check<__nv_bfloat16>(2, 200, 4, 2, 64, 0);
        }
    }
    use_sdpa = 0;
#endif
    if (!timings) { printf("%s\n", fails ? "FLASH CHECK FAILED" : "flash check passed"); return fails != 0; }
    for (use_sdpa = 0; use_sdpa < 4; use_sdpa += 3) {
        if (!use_sdpa) timing<float>(16, 1024, 12, 12, 64); /* 124M row */
        timing<__nv_bfloat16>(16, 1024, 12, 12, 64);
        timing<__nv_bfloat16>(4, 2048, 32, 4, 64);   /* TinyLlama row */
        timing<__nv_bfloat16>(4, 2048, 32, 4, 64, 512); /* its packed 512-row documents */
        timing<__nv_bfloat16>(4, 2048, 32, 4, 64, 128);
        timing<__nv_bfloat16>(1, 2048, 32, 32, 128); /* Llama-2-7B row */
#ifndef LMA_HAVE_CUDNN
        break;
#endif
    }
    printf("%s\n", fails ? "FLASH CHECK FAILED" : "flash check passed");
    return fails != 0;
}
