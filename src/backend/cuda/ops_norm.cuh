/* Embedding and RMSNorm, forward and backward.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
/* ---- embedding ------------------------------------------------------------------ */

template <typename TI>
__global__ void k_embedding_fwd(TI *out, const int32_t *ids, const TI *wte, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    out[i] = wte[(size_t)ids[n] * C + c];
}
template <typename TI>
__global__ void k_embedding_bwd(float *dwte, const TI *dout, const int32_t *ids, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    atomicAdd(&dwte[(size_t)ids[n] * C + c], ld(dout + i));
}
template <typename TI> static void cu_embedding_fwd(void *out, const int32_t *ids, const void *wte, int N, int C) {
    PROFILE("embedding_fwd");
    k_embedding_fwd<TI><<<blocks((size_t)N * C, 256), 256, 0, lma_cu_stream>>>((TI *)out, ids, (const TI *)wte, N, C);
    check_launch("embedding_fwd");
}
template <typename TI> static void cu_embedding_bwd(float *dwte, const void *dout, const int32_t *ids, int N, int C) {
    PROFILE("embedding_bwd");
    if (!dwte) return;
    k_embedding_bwd<TI><<<blocks((size_t)N * C, 256), 256, 0, lma_cu_stream>>>(dwte, (const TI *)dout, ids, N, C);
    check_launch("embedding_bwd");
}

/* ---- rmsnorm ---------------------------------------------------------------------- */

template <typename TI, int E>
__global__ void k_rmsnorm_fwd(TI *out, float *rstd, const TI *inp, const TI *w, int C, float eps) {
    const TI *x = inp + (size_t)blockIdx.x * C;
    TI *o = out + (size_t)blockIdx.x * C;
    float ss = 0, v[E], wv[E];
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, v);
#pragma unroll
        for (int k = 0; k < E; k++) ss += v[k] * v[k];
    }
    ss = block_sum(ss);
    float r = rsqrtf(ss / C + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, v);
        chunk<TI, E>::load(w + c, wv);
#pragma unroll
        for (int k = 0; k < E; k++) v[k] = wv[k] * (v[k] * r);
        chunk<TI, E>::store(o + c, v);
    }
}
/* dinp += r * (g w) - r^3 / C * x * sum(g w x) */
template <typename TI, int E>
__global__ void k_rmsnorm_bwd_inp(TI *dinp, const TI *dout, const TI *inp, const TI *w, const float *rstd, int C) {
    const TI *x = inp + (size_t)blockIdx.x * C, *g = dout + (size_t)blockIdx.x * C;
    TI *d = dinp + (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x], dot = 0, xv[E], gv[E], wv[E], dv[E];
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, xv);
        chunk<TI, E>::load(g + c, gv);
        chunk<TI, E>::load(w + c, wv);
#pragma unroll
        for (int k = 0; k < E; k++) dot += gv[k] * wv[k] * xv[k];
    }
    dot = block_sum(dot);
    float kk = r * r * r * dot / C;
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, xv);
        chunk<TI, E>::load(g + c, gv);
        chunk<TI, E>::load(w + c, wv);
        chunk<TI, E>::load(d + c, dv);
#pragma unroll
        for (int k = 0; k < E; k++) dv[k] += r * gv[k] * wv[k] - kk * xv[k];
        chunk<TI, E>::store(d + c, dv);
    }
}
/* dw[c] += sum_n dout[n,c] * inp[n,c] * rstd[n]: each block sums a slab of ROWS rows
 * for every column (coalesced) and adds it with one atomic per column. (A thread per
 * column over all N rows used only C threads: 25% of a 124M training step. 16-row slabs
 * with every thread busy were tried: 2.7x slower, the atomics contend.) */
enum { COLSUM_ROWS = 64 };
template <typename TI, int E>
__global__ void k_rmsnorm_bwd_w(float *dw, const TI *dout, const TI *inp, const float *rstd, int N, int C) {
    int n0 = blockIdx.x * COLSUM_ROWS, n1 = min(N, n0 + COLSUM_ROWS);
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        float acc[E] = {0}, gv[E], xv[E];
        for (int n = n0; n < n1; n++) {
            chunk<TI, E>::load(dout + (size_t)n * C + c, gv);
            chunk<TI, E>::load(inp + (size_t)n * C + c, xv);
            float r = rstd[n];
#pragma unroll
            for (int k = 0; k < E; k++) acc[k] += gv[k] * xv[k] * r;
        }
#pragma unroll
        for (int k = 0; k < E; k++) atomicAdd(&dw[c + k], acc[k]);
    }
}
/* The backward in one pass (the two kernels above read dout and inp twice: 201 MB a 1.1B layer
 * where 134 suffice): each block takes a slab of R rows with one E-chunk of a row a thread
 * (C <= blockDim.x * E, at most 512 threads: C <= 4096 vectorized), keeps w and its columns'
 * weight-gradient sums in registers, loads the next row's x and dout before the current row's
 * block sum, and writes its slab's sums to a partial row dwp[blockIdx.x, C] that k_colsum_add
 * adds into dw (no atomics: the same sum every run).
 * PF 1 (LMA_CUDA_NORM_SLAB_PF=1, opt-in until a GPU has measured it): the next row's dinp is
 * loaded with its x and dout too (PF 0 reads it in the row's own step: a memory latency a row in
 * series with the block sum, the likely reason the slabs gained half their prediction). */
template <typename TI, int E, int PF = 0>
__global__ void __launch_bounds__(512) k_rmsnorm_bwd_slab(TI *dinp, float *dwp, const TI *dout, const TI *inp, const TI *w,
                                   const float *rstd, int N, int C, int R) {
    int c = threadIdx.x * E, n0 = blockIdx.x * R, n1 = min(N, n0 + R);
    bool on = c < C;
    float wv[E], acc[E], xv[E], gv[E], xn[E], gn[E], dv[E], dn[PF ? E : 1];
#pragma unroll
    for (int k = 0; k < E; k++) wv[k] = acc[k] = xv[k] = gv[k] = xn[k] = gn[k] = dv[k] = 0;
#pragma unroll
    for (int k = 0; k < (PF ? E : 1); k++) dn[k] = 0;
    if (on) {
        chunk<TI, E>::load(w + c, wv);
        chunk<TI, E>::load(inp + (size_t)n0 * C + c, xv);
        chunk<TI, E>::load(dout + (size_t)n0 * C + c, gv);
        if (PF && dinp && n0 < n1) chunk<TI, E>::load(dinp + (size_t)n0 * C + c, dv);
    }
    float r = n0 < n1 ? rstd[n0] : 0;
    for (int n = n0; n < n1; n++) {
        size_t o = (size_t)n * C + c;
        float rn = n + 1 < n1 ? rstd[n + 1] : 0;
        if (!PF && on && dinp) chunk<TI, E>::load(dinp + o, dv);
        if (on && n + 1 < n1) {
            chunk<TI, E>::load(inp + o + C, xn);
            chunk<TI, E>::load(dout + o + C, gn);
            if (PF && dinp) chunk<TI, E>::load(dinp + o + C, dn);
        }
        float dot = 0;
#pragma unroll
        for (int k = 0; k < E; k++) dot += gv[k] * wv[k] * xv[k];
        dot = block_sum(dot);
        float kk = r * r * r * dot / C;
#pragma unroll
        for (int k = 0; k < E; k++) {
            dv[k] += r * gv[k] * wv[k] - kk * xv[k];
            acc[k] += gv[k] * xv[k] * r;
            xv[k] = xn[k];
            gv[k] = gn[k];
        }
        if (on && dinp) chunk<TI, E>::store(dinp + o, dv);
        if (PF)
#pragma unroll
            for (int k = 0; k < E; k++) dv[k] = dn[k];
        r = rn;
    }
    if (on && dwp) chunk<float, E>::store(dwp + (size_t)blockIdx.x * C + c, acc);
}
/* dw[c] += sum_g p[g, c]: 32 columns a block, its 32 rows of threads striding over g */
__global__ void k_colsum_add(float *dw, const float *p, int G, int C) {
    __shared__ float s[32][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    float v = 0;
    if (c < C)
        for (int g = threadIdx.y; g < G; g += 32) v += p[(size_t)g * C + c];
    s[threadIdx.y][threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int y = 1; y < 32; y++) v += s[y][threadIdx.x];
        dw[c] += v;
    }
}
static lma_cuda_buf g_norm_part; /* the slabs' partial weight gradients */
/* threads of a row block: about one per E-element chunk, a multiple of 32, at most 512 */
static unsigned row_threads(int C, int vec) {
    int n = vec ? C / 8 : C;
    return n >= 512 ? 512 : n >= 256 ? 256 : n >= 128 ? 128 : n >= 64 ? 64 : 32;
}
/* rows of C elements: vectorized when C is a multiple of 8 and the bases are aligned */
#define LAUNCH_ROWS(kernel, vec, grid, threads, ...)                                                                 \
    do {                                                                                                             \
        if (vec) kernel<TI, 8><<<grid, threads, 0, lma_cu_stream>>>(__VA_ARGS__);                                      \
        else kernel<TI, 1><<<grid, threads, 0, lma_cu_stream>>>(__VA_ARGS__);                                          \
    } while (0)
template <typename TI>
static void cu_rmsnorm_fwd(void *out, float *rstd, const void *inp, const void *w, int N, int C, float eps) {
    PROFILE("rmsnorm_fwd");
    int v = vec_ok((size_t)C, out, inp, w);
    LAUNCH_ROWS(k_rmsnorm_fwd, v, N, row_threads(C, v), (TI *)out, rstd, (const TI *)inp, (const TI *)w, C, eps);
    check_launch("rmsnorm_fwd");
}
template <typename TI>
static void cu_rmsnorm_bwd(void *dinp, float *dw, const void *dout, const void *inp, const void *w, const float *rstd,
                           int N, int C) {
    if (dw) lzb_need(dw, (size_t)C * sizeof(float)); /* added into: its zeros now (ops_zero.cuh) */
    lz_enter(dinp, dout, inp, w, rstd);
    PROFILE("rmsnorm_bwd");
    static int slab = -1; /* one pass; LMA_CUDA_NORM_SLAB=0: the two kernels (A/B runs) */
    if (slab < 0) slab = env_on("LMA_CUDA_NORM_SLAB");
    int v = vec_ok((size_t)C, dinp, dout, inp, w), E = v ? 8 : 1;
    unsigned T = (unsigned)((C / E + 31) / 32 * 32);
    /* the slabs save the second read of dout and inp that dw's kernel makes; without dw (LoRA's
     * frozen norms) the row kernel below, a block a row, keeps more rows in flight */
    if (slab && dw && N > 0 && T <= 512) { /* more threads of 79-88 registers would not launch */
        /* about 16 warps a multiprocessor; 8..64 rows a slab (the partials' traffic is 1/R of the rows') */
        int per_sm = T >= 512 ? 1 : 512 / (int)T, slabs = lma_cuda_sms() * per_sm, R = (N + slabs - 1) / slabs;
        R = R < 8 ? 8 : R > 64 ? 64 : R;
        int G = (N + R - 1) / R;
        float *part = (float *)lma_cuda_grow(&g_norm_part, (size_t)G * C * sizeof(float));
        if (!part) { fail(LMA_ERR_NOMEM, "cuda: out of memory for rmsnorm_bwd's partial sums (%d x %d)", G, C); return; }
        static int pf = -1; /* LMA_CUDA_NORM_SLAB_PF=1: the next row's dinp in flight too (opt-in) */
        if (pf < 0) pf = env_opt_in("LMA_CUDA_NORM_SLAB_PF");
        if (pf && v)
            k_rmsnorm_bwd_slab<TI, 8, 1><<<G, T, 0, lma_cu_stream>>>((TI *)dinp, part, (const TI *)dout,
                                                                     (const TI *)inp, (const TI *)w, rstd, N, C, R);
        else
            LAUNCH_ROWS(k_rmsnorm_bwd_slab, v, G, T, (TI *)dinp, part, (const TI *)dout, (const TI *)inp,
                        (const TI *)w, rstd, N, C, R);
        check_launch("rmsnorm_bwd");
        k_colsum_add<<<blocks(C, 32), dim3(32, 32), 0, lma_cu_stream>>>(dw, part, G, C);
        check_launch("rmsnorm_bwd_w");
        return;
    }
    if (dinp) {
        LAUNCH_ROWS(k_rmsnorm_bwd_inp, v, N, row_threads(C, v), (TI *)dinp, (const TI *)dout, (const TI *)inp,
                    (const TI *)w, rstd, C);
        check_launch("rmsnorm_bwd");
    }
    if (dw) {
        LAUNCH_ROWS(k_rmsnorm_bwd_w, vec_ok((size_t)C, dout, inp), blocks(N, COLSUM_ROWS), 256, dw, (const TI *)dout,
                    (const TI *)inp, rstd, N, C);
        check_launch("rmsnorm_bwd_w");
    }
}
