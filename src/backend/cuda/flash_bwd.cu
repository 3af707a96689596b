/* Flash attention, backward (the concept, tiles, masking and the helpers shared with the
 * forward: flash_common.cuh). It recomputes the probabilities tile by tile from the
 * forward's log-sum-exp:
 *   grid: key tile, head group, batch row; loops over the query heads of the
 *   group and the query tiles qt >= kt, so dK, dV of a tile have one owner. A group is
 *   all G query heads of a kv head (dK, dV added into the gradients), or, when that
 *   leaves too few blocks to fill the GPU (GQA: TinyLlama has 4 kv heads), one query
 *   head, written to an fp32 scratch that a second kernel sums over each group):
 *     P = exp(scale Q K^T - lse);  dV += P^T dO;  dP = dO V^T;  dS = P (dP - D) scale
 *     dK += dS^T Q;  dQ += dS K (fp32 atomics)      with D = rowsum(dO . O)
 * k_flash_bwd on WMMA (LMA_CUDA_FLASH=wmma); k_flash_bwd_mma, the default, on mma.sync with
 * the query tiles that cannot meet the key tile's segments skipped. Also here: the row dot D,
 * the group sum, the bf16 dQ fold, the grid choice (per_head) and lma_cuda_flash_bwd. */
#include "backend/cuda/flash_common.cuh"

/* blocks an SM the mma.sync backward asks registers for at head dims <= 64 (3: at most 168
 * registers, a few spilled; 1: ~190, two blocks an SM); -D to compare */
#ifndef LMA_FLASH_BWD_MINB
#define LMA_FLASH_BWD_MINB 3
#endif

/* ---- backward ------------------------------------------------------------------------- */

/* D (B, NH, T) = rowsum(dO . O): one warp per (b, t, h) row */
template <typename TI>
__global__ void k_flash_rowdot(float *D, const TI *dout, const TI *out, int B, int T, int NH, int HD) {
    size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (w >= (size_t)B * T * NH) return;
    const TI *g = dout + w * HD, *o = out + w * HD;
    float acc = 0.0f;
    for (int i = lane; i < HD; i += 32) acc += io<TI>::get(g + i) * io<TI>::get(o + i);
    for (int s = 16; s > 0; s >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, s);
    if (lane == 0) {
        size_t h = w % NH, bt = w / NH, b = bt / T, t = bt % T;
        D[(b * NH + h) * T + t] = acc;
    }
}

template <int HD>
struct bwd_smem {
    static constexpr int LDH = HD + 8, LDS = BR + 4, LDP = BR + 8, LDT = 20;
    static constexpr size_t bytes = 4 * BR * LDH * 2 + 2 * BR * LDS * 4 + 2 * BR * LDP * 2 +
                                    (NTHREADS / 32) * 16 * LDT * 4 + 3 * BR * 4;
};

/* a 16x16 accumulator into global rows (row0 + r) of `stride` elements (only rows < T):
 * dst += frag (add) or dst = frag, through the warp's shared temp tile */
template <typename TO>
__device__ __forceinline__ void frag_out_global(TO *dst, size_t stride, int row0, int T, const frag_acc &f, float *tmp,
                                                int add) {
    int lane = threadIdx.x & 31;
    wmma::store_matrix_sync(tmp, f, 20, wmma::mem_row_major);
    __syncwarp();
    for (int i = lane; i < 256; i += 32) {
        int r = i >> 4, c = i & 15;
        if (row0 + r < T) {
            TO *p = dst + (size_t)(row0 + r) * stride + c;
            io<TO>::put(p, (add ? io<TO>::get(p) : 0.0f) + tmp[r * 20 + c]);
        }
    }
    __syncwarp();
}

/* grid (key tile, group, b); a group is GL consecutive query heads (GL = G: one kv head,
 * or 1); dK, dV of the group go to dk, dv (TO elements, heads gridDim.y apart), added
 * (add = 1) or stored */
template <int HD, typename TI, typename TO>
__global__ void __launch_bounds__(NTHREADS)
    k_flash_bwd(float *dqacc, TO *dk, TO *dv, int add, int GL, const TI *dout, const float *lse, const float *D,
                const TI *q, const TI *k, const TI *v, const int32_t *seg, int T, int NH, int NKV, float scale) {
    typedef bwd_smem<HD> L;
    constexpr int LDH = L::LDH, LDS = L::LDS, LDP = L::LDP, LDT = L::LDT;
    int kt = blockIdx.x, b = blockIdx.z, h0 = blockIdx.y * GL, kh = h0 / (NH / NKV), nqt = (T + BR - 1) / BR;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sK = reinterpret_cast<bf16 *>(smem), *sV = sK + BR * LDH, *sQ = sV + BR * LDH, *sdO = sQ + BR * LDH;
    float *sS = reinterpret_cast<float *>(sdO + BR * LDH), *sdP = sS + BR * LDS;
    bf16 *sP = reinterpret_cast<bf16 *>(sdP + BR * LDS), *sdS = sP + BR * LDP;
    float *sT = reinterpret_cast<float *>(sdS + BR * LDP) + warp * 16 * LDT;
    float *sLse = reinterpret_cast<float *>(sdS + BR * LDP) + (NTHREADS / 32) * 16 * LDT, *sD = sLse + BR;
    int32_t *sSeg = reinterpret_cast<int32_t *>(sD + BR);

    int s0 = kt * BR, nk = min(BR, T - s0);
    load_tile<HD, TI>(sK, k + (((size_t)b * T + s0) * NKV + kh) * HD, (size_t)NKV * HD, nk);
    load_tile<HD, TI>(sV, v + (((size_t)b * T + s0) * NKV + kh) * HD, (size_t)NKV * HD, nk);
    if (seg)
        for (int i = threadIdx.x; i < BR; i += NTHREADS) sSeg[i] = i < nk ? seg[(size_t)b * T + s0 + i] : -1;
    frag_acc dK[HD / 16], dV[HD / 16];
#pragma unroll
    for (int j = 0; j < HD / 16; j++) { wmma::fill_fragment(dK[j], 0.0f); wmma::fill_fragment(dV[j], 0.0f); }
    int rrow = warp * 16 + (lane >> 1), half = lane & 1;

    for (int g = 0; g < GL; g++) {
        int h = h0 + g;
        for (int qt = kt; qt < nqt; qt++) {
            int t0 = qt * BR, nq = min(BR, T - t0), t = t0 + rrow;
            __syncthreads(); /* previous tile's Q, dO, P, dS are consumed */
            load_tile<HD, TI>(sQ, q + (((size_t)b * T + t0) * NH + h) * HD, (size_t)NH * HD, nq);
            load_tile<HD, TI>(sdO, dout + (((size_t)b * T + t0) * NH + h) * HD, (size_t)NH * HD, nq);
            for (int i = threadIdx.x; i < BR; i += NTHREADS) {
                size_t o = ((size_t)b * NH + h) * T + t0 + i;
                sLse[i] = i < nq ? lse[o] : 0.0f;
                sD[i] = i < nq ? D[o] : 0.0f;
            }
            __syncthreads();
            strip_abt<HD>(sS + warp * 16 * LDS, LDS, sQ + warp * 16 * LDH, sK);   /* S = Q K^T */
            strip_abt<HD>(sdP + warp * 16 * LDS, LDS, sdO + warp * 16 * LDH, sV); /* dP = dO V^T */
            __syncwarp();
            {
                int segq = (seg && t < T) ? seg[(size_t)b * T + t] : 0;
                float ls = sLse[rrow], dd = sD[rrow];
                const float *srow = sS + rrow * LDS + half * 32, *dprow = sdP + rrow * LDS + half * 32;
                bf16 *prow = sP + rrow * LDP + half * 32, *dsrow = sdS + rrow * LDP + half * 32;
#pragma unroll 8
                for (int c = 0; c < 32; c++) {
                    int j = half * 32 + c;
                    bool vis = j < nk && visible(t, s0 + j, T, seg ? sSeg + j : NULL, segq);
                    float p = vis ? __expf(srow[c] * scale - ls) : 0.0f;
                    prow[c] = __float2bfloat16(p);
                    dsrow[c] = __float2bfloat16(p * (dprow[c] - dd) * scale);
                }
            }
            __syncthreads(); /* dV, dK read every strip of P and dS */
            /* dV (key strip of this warp) += P^T dO ; dK += dS^T Q */
#pragma unroll
            for (int kk = 0; kk < BR / 16; kk++) {
                frag_at pa, sa;
                wmma::load_matrix_sync(pa, sP + kk * 16 * LDP + warp * 16, LDP);
                wmma::load_matrix_sync(sa, sdS + kk * 16 * LDP + warp * 16, LDP);
#pragma unroll
                for (int j = 0; j < HD / 16; j++) {
                    frag_b fo, fq;
                    wmma::load_matrix_sync(fo, sdO + kk * 16 * LDH + j * 16, LDH);
                    wmma::mma_sync(dV[j], pa, fo, dV[j]);
                    wmma::load_matrix_sync(fq, sQ + kk * 16 * LDH + j * 16, LDH);
                    wmma::mma_sync(dK[j], sa, fq, dK[j]);
                }
            }
            /* dQ (query strip of this warp) += dS K, fp32 atomics */
            if (dqacc) {
#pragma unroll
                for (int j = 0; j < HD / 16; j++) {
                    frag_acc c;
                    wmma::fill_fragment(c, 0.0f);
#pragma unroll
                    for (int kk = 0; kk < BR / 16; kk++) {
                        frag_a fa;
                        frag_b fb;
                        wmma::load_matrix_sync(fa, sdS + warp * 16 * LDP + kk * 16, LDP);
                        wmma::load_matrix_sync(fb, sK + kk * 16 * LDH + j * 16, LDH);
                        wmma::mma_sync(c, fa, fb, c);
                    }
                    wmma::store_matrix_sync(sT, c, LDT, wmma::mem_row_major);
                    __syncwarp();
                    for (int i = lane; i < 256; i += 32) {
                        int r = i >> 4, cc = i & 15, tt = t0 + warp * 16 + r;
                        if (tt < T) atomicAdd(dqacc + (((size_t)b * T + tt) * NH + h) * HD + j * 16 + cc, sT[r * LDT + cc]);
                    }
                    __syncwarp();
                }
            }
        }
    }
    /* this block owns rows [s0, s0 + 64) of its group: plain read-modify-write */
    size_t NO = gridDim.y, base = (((size_t)b * T) * NO + blockIdx.y) * HD, stride = NO * HD;
#pragma unroll
    for (int j = 0; j < HD / 16; j++) {
        if (dk) frag_out_global<TO>(dk + base + j * 16, stride, s0 + warp * 16, T, dK[j], sT, add);
        if (dv) frag_out_global<TO>(dv + base + j * 16, stride, s0 + warp * 16, T, dV[j], sT, add);
    }
}

/* d (B,T,NKV,HD) += sum over the G query heads of each kv head of acc (B,T,NH,HD) */
template <typename TI>
__global__ void k_group_sum(TI *d, const float *acc, size_t n, int G, int HD) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    size_t row = i / HD, c = i % HD; /* row = (b*T + t)*NKV + kh */
    const float *a = acc + row * G * HD + c;
    float s = 0.0f;
    for (int g = 0; g < G; g++) s += a[(size_t)g * HD];
    io<TI>::put(d + i, io<TI>::get(d + i) + s);
}

/* ---- backward on mma.sync (the default) -----------------------------------------------------
 * Same grid and ownership as k_flash_bwd; each warp owns 16 keys of the tile and works on
 * transposed products so that its accumulators stay in registers:
 *   S^T = K Q^T, dP^T = V dO^T  (16 keys x 64 queries: A from K, V rows, B pairs along d)
 *   P^T = exp(scale S^T - lse), dS^T = P^T (dP^T - D) scale          (in registers)
 *   dV += P^T dO, dK += dS^T Q  (C fragments of P^T, dS^T reused as A; B from dO, Q
 *                                through ldmatrix .trans)
 *   dQ += dS K                  (dS^T through shared memory as [query][key]; warp w takes
 *                                queries 16w..16w+15; fp32 atomics) */
/* NB buffers of the query-side tiles (Q, dO, lse, D, segments): two (the next tile loads
 * with cp.async during this one) up to head dim 64; one at 128, where two would leave
 * room for a single block per SM */
template <int HD>
struct mbwd_smem {
    static constexpr int LDH = HD + 8, LDT = BR + 8, NB = HD <= 64 ? 2 : 1;
    static constexpr size_t bytes = (2 + 2 * NB) * BR * LDH * 2 + BR * LDT * 2 + 3 * NB * BR * 4;
};

__device__ __forceinline__ void atomic_add2(float *p, float a, float b) {
#if __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2 *>(p), make_float2(a, b));
#else
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
#endif
}

template <int HD, typename TI, typename TO>
__global__ void __launch_bounds__(NTHREADS, HD <= 64 ? LMA_FLASH_BWD_MINB : 1)
    k_flash_bwd_mma(float *dqacc, TO *dk, TO *dv, int add, int GL, const TI *dout, const float *lse, const float *D,
                    const TI *q, const TI *k, const TI *v, const int32_t *seg, const int2 *rng, int T, int NH, int NKV,
                    float scale) {
    typedef mbwd_smem<HD> L;
    constexpr int LDH = L::LDH, LDT = L::LDT, NB = L::NB, NKC = HD / 16, NDT = HD / 8, NST = BR / 8;
    int kt = blockIdx.x, b = blockIdx.z, h0 = blockIdx.y * GL, kh = h0 / (NH / NKV), nqt = (T + BR - 1) / BR;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sK = reinterpret_cast<bf16 *>(smem), *sV = sK + BR * LDH, *sQ0 = sV + BR * LDH, *sdO0 = sQ0 + NB * BR * LDH;
    bf16 *sdS = sdO0 + NB * BR * LDH;
    float *sLse0 = reinterpret_cast<float *>(sdS + BR * LDT), *sD0 = sLse0 + NB * BR;
    int32_t *sSegQ0 = reinterpret_cast<int32_t *>(sD0 + NB * BR);
    /* iteration it: query head h0 + it / nq_tiles, query tile kt + it % nq_tiles */
    int nqk = nqt - kt, nit = GL * nqk;
    auto issue = [&](int it, int bb) { /* the query-side tiles of iteration it into buffer bb */
        int h = h0 + it / nqk, t0 = (kt + it % nqk) * BR, nq = min(BR, T - t0);
        load_tile_async<HD, TI>(sQ0 + bb * BR * LDH, q + (((size_t)b * T + t0) * NH + h) * HD, (size_t)NH * HD, nq);
        load_tile_async<HD, TI>(sdO0 + bb * BR * LDH, dout + (((size_t)b * T + t0) * NH + h) * HD, (size_t)NH * HD,
                                nq);
        for (int i = threadIdx.x; i < BR; i += NTHREADS) {
            size_t o = ((size_t)b * NH + h) * T + t0 + i;
            sLse0[bb * BR + i] = i < nq ? lse[o] : 0.0f;
            sD0[bb * BR + i] = i < nq ? D[o] : 0.0f;
            sSegQ0[bb * BR + i] = seg && i < nq ? seg[(size_t)b * T + t0 + i] : 0;
        }
        cp_commit();
    };

    int s0 = kt * BR, nk = min(BR, T - s0);
    const TI *kg = k + (((size_t)b * T + s0) * NKV + kh) * HD, *vg = v + (((size_t)b * T + s0) * NKV + kh) * HD;
    load_tile<HD, TI>(sK, kg, (size_t)NKV * HD, nk);
    load_tile<HD, TI>(sV, vg, (size_t)NKV * HD, nk);
    int k0 = s0 + warp * 16 + g, k1 = k0 + 8; /* this thread's two keys */
    int sk0 = (seg && k0 < T) ? seg[(size_t)b * T + k0] : -1, sk1 = (seg && k1 < T) ? seg[(size_t)b * T + k1] : -1;
    float dK[NDT][4], dV[NDT][4];
#pragma unroll
    for (int n = 0; n < NDT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dK[n][e] = dV[n][e] = 0.0f;

    const int2 *rb = seg ? rng + (size_t)b * nqt : NULL;
    int2 kr = seg ? rb[kt] : make_int2(0, 0);
    /* the first iteration from it on whose query tile meets this key tile's segments */
    auto next_it = [&](int it) {
        return seg ? first_meet(it, nit, kr, rb, [&](int j) { return kt + j % nqk; }) : it;
    };
    int it = next_it(0);
    if (NB == 2 && it < nit) issue(it, 0);
    {
        for (int n = 0; it < nit; n++) {
            int h = h0 + it / nqk, t0 = (kt + it % nqk) * BR, nq = min(BR, T - t0), bb = n % NB, nxt = next_it(it + 1);
            if (NB == 1) { issue(it, 0); cp_wait<0>(); }
            else if (nxt < nit) { issue(nxt, bb ^ 1); cp_wait<1>(); } /* the next tile loads meanwhile */
            else cp_wait<0>();
            __syncthreads(); /* this iteration's tiles (and sK, sV) are in shared memory */
            const bf16 *sQ = sQ0 + bb * BR * LDH, *sdO = sdO0 + bb * BR * LDH;
            const float *sLse = sLse0 + bb * BR, *sD = sD0 + bb * BR;
            const int32_t *sSegQ = sSegQ0 + bb * BR;
            float st[NST][4], dp[NST][4];
#pragma unroll
            for (int j = 0; j < NST; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) st[j][e] = dp[j][e] = 0.0f;
#pragma unroll
            for (int kc = 0; kc < NKC; kc++) {
                uint32_t ak[4], av[4];
                frag_a_rows(ak, sK, LDH, warp * 16, kc * 16);
                frag_a_rows(av, sV, LDH, warp * 16, kc * 16);
#pragma unroll
                for (int j = 0; j < NST; j += 2) {
                    uint32_t bf[4];
                    frag_b_nk2(bf, sQ, LDH, 8 * j, kc * 16);
                    mma16816(st[j], ak, bf[0], bf[1]);
                    mma16816(st[j + 1], ak, bf[2], bf[3]);
                    frag_b_nk2(bf, sdO, LDH, 8 * j, kc * 16);
                    mma16816(dp[j], av, bf[0], bf[1]);
                    mma16816(dp[j + 1], av, bf[2], bf[3]);
                }
            }
            /* P^T and dS^T in place (st, dp); dS^T also to shared memory as [query][key].
             * Below the diagonal, without segments or in one segment, every pair is visible. */
            bool full = t0 >= s0 + BR && nq == BR && (!seg || seg_same(kr, rb[t0 / BR]));
#pragma unroll
            for (int j = 0; j < NST; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int qi = 8 * j + 2 * c + (e & 1), tq = t0 + qi, key = e < 2 ? k0 : k1;
                    int segk = e < 2 ? sk0 : sk1;
                    bool vis = full || (qi < nq && key < T && key <= tq && (!seg || segk == sSegQ[qi]));
                    float pv = vis ? __expf(st[j][e] * scale - sLse[qi]) : 0.0f;
                    float ds = pv * (dp[j][e] - sD[qi]) * scale;
                    st[j][e] = pv;
                    dp[j][e] = ds;
                    sdS[qi * LDT + warp * 16 + g + (e < 2 ? 0 : 8)] = __float2bfloat16(ds);
                }
            /* dV += P^T dO, dK += dS^T Q: 16 queries at a time */
#pragma unroll
            for (int kq = 0; kq < BR / 16; kq++) {
                uint32_t pa[4] = {pack_bf16(st[2 * kq][0], st[2 * kq][1]), pack_bf16(st[2 * kq][2], st[2 * kq][3]),
                                  pack_bf16(st[2 * kq + 1][0], st[2 * kq + 1][1]),
                                  pack_bf16(st[2 * kq + 1][2], st[2 * kq + 1][3])};
                uint32_t sa[4] = {pack_bf16(dp[2 * kq][0], dp[2 * kq][1]), pack_bf16(dp[2 * kq][2], dp[2 * kq][3]),
                                  pack_bf16(dp[2 * kq + 1][0], dp[2 * kq + 1][1]),
                                  pack_bf16(dp[2 * kq + 1][2], dp[2 * kq + 1][3])};
#pragma unroll
                for (int n = 0; n < NDT; n += 2) {
                    uint32_t bo[4], bq[4];
                    frag_b_kn2(bo, sdO, LDH, kq * 16, 8 * n);
                    frag_b_kn2(bq, sQ, LDH, kq * 16, 8 * n);
                    mma16816(dV[n], pa, bo[0], bo[1]);
                    mma16816(dV[n + 1], pa, bo[2], bo[3]);
                    mma16816(dK[n], sa, bq[0], bq[1]);
                    mma16816(dK[n + 1], sa, bq[2], bq[3]);
                }
            }
            if (dqacc) {
            __syncthreads(); /* every warp's dS^T is in sdS */
            /* dQ (queries 16w..16w+15 of the tile) += dS K over the 64 keys */
            float dq[NDT][4];
#pragma unroll
            for (int n = 0; n < NDT; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < BR / 16; kk++) {
                uint32_t a[4];
                frag_a_rows(a, sdS, LDT, warp * 16, kk * 16);
#pragma unroll
                for (int n = 0; n < NDT; n += 2) {
                    uint32_t bk[4];
                    frag_b_kn2(bk, sK, LDH, kk * 16, 8 * n);
                    mma16816(dq[n], a, bk[0], bk[1]);
                    mma16816(dq[n + 1], a, bk[2], bk[3]);
                }
            }
            int q0 = t0 + warp * 16 + g, q1 = q0 + 8;
#pragma unroll
            for (int n = 0; n < NDT; n++) {
                int d = 8 * n + 2 * c;
                if (q0 < T) atomic_add2(dqacc + (((size_t)b * T + q0) * NH + h) * HD + d, dq[n][0], dq[n][1]);
                if (q1 < T) atomic_add2(dqacc + (((size_t)b * T + q1) * NH + h) * HD + d, dq[n][2], dq[n][3]);
            }
            }
            __syncthreads(); /* buffer bb and sdS are free for the next iteration */
            it = nxt;
        }
    }
    /* this block owns keys [s0, s0 + 64) of its group */
    size_t NO = gridDim.y;
#pragma unroll
    for (int n = 0; n < NDT; n++) {
        int d = 8 * n + 2 * c;
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            int key = hf ? k1 : k0;
            if (key >= T) continue;
            size_t o = (((size_t)b * T + key) * NO + blockIdx.y) * HD + d;
            for (int e = 0; e < 2; e++) {
                if (dk) io<TO>::put(dk + o + e, (add ? io<TO>::get(dk + o + e) : 0.0f) + dK[n][2 * hf + e]);
                if (dv) io<TO>::put(dv + o + e, (add ? io<TO>::get(dv + o + e) : 0.0f) + dV[n][2 * hf + e]);
            }
        }
    }
}

/* dst (bf16) += src (fp32) */
__global__ void k_add_f32_to_bf16(bf16 *dst, const float *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16(__bfloat162float(dst[i]) + src[i]);
}

/* ---- host side -------------------------------------------------------------------------- */

/* the backward's fp32 scratch (D and the dQ, dK, dV accumulators: lma_cuda_flash_bwd_floats), kept
 * between calls */
static lma_cuda_buf g_fl_scratch;
static float *fl_scratch(size_t n) { return (float *)lma_cuda_grow(&g_fl_scratch, n * sizeof(float)); }

/* one block per kv head when that fills the GPU (about 2 waves), else one per query head */
static int per_head(int B, int T, int NH, int NKV) {
    static int mode = -1;
    if (mode < 0) {
        const char *e = getenv("LMA_CUDA_FLASH_BWD"); /* "kv" | "heads": force a grid (A/B runs) */
        mode = e && !strcmp(e, "kv") ? 1 : e && !strcmp(e, "heads") ? 2 : 0;
    }
    if (NH == NKV || mode == 1) return 0;
    if (mode == 2) return 1;
    return (long)B * NKV * ((T + BR - 1) / BR) < 4L * lma_cuda_sms();
}

template <int HD, typename TI>
static cudaError_t bwd_t(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *lse,
                         const void *q, const void *k, const void *v, const int32_t *seg, int B, int T, int NH, int NKV,
                         float scale) {
    size_t nq = (size_t)B * T * NH * HD, nrow = (size_t)B * NH * T, nk = (size_t)B * T * NKV * HD;
    int bf = sizeof(TI) == 2, ph = per_head(B, T, NH, NKV);
    float *scr = fl_scratch(lma_cuda_flash_bwd_floats(B, T, NH, HD, bf && dq, ph)); /* cuda_sizes.h */
    if (!scr) return cudaErrorMemoryAllocation;
    float *D = scr, *dqacc = dq ? (bf ? scr + nrow : (float *)dq) : NULL;
    float *dkacc = scr + nrow + (bf && dq ? nq : 0), *dvacc = dkacc + nq;
    k_flash_rowdot<TI><<<(unsigned)((nrow * 32 + 255) / 256), 256, 0, lma_cu_stream>>>(D, (const TI *)dout, (const TI *)out, B, T, NH, HD);
    if (bf && dq) cudaMemsetAsync(dqacc, 0, nq * sizeof(float));
    if (!use_wmma()) {
        size_t shm = mbwd_smem<HD>::bytes;
        cudaError_t err = cudaSuccess;
        const int2 *rng = seg_ranges(seg, B, T, &err);
        if (err != cudaSuccess) return err;
        unsigned nb = (unsigned)((nk + 255) / 256);
        if (ph) {
            cudaFuncSetAttribute(k_flash_bwd_mma<HD, TI, float>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
            dim3 grid((T + BR - 1) / BR, NH, B);
            k_flash_bwd_mma<HD, TI, float><<<grid, NTHREADS, shm, lma_cu_stream>>>(
                dqacc, dk ? dkacc : NULL, dv ? dvacc : NULL, 0, 1, (const TI *)dout, lse, D, (const TI *)q,
                (const TI *)k, (const TI *)v, seg, rng, T, NH, NKV, scale);
            if (dk) k_group_sum<TI><<<nb, 256, 0, lma_cu_stream>>>((TI *)dk, dkacc, nk, NH / NKV, HD);
            if (dv) k_group_sum<TI><<<nb, 256, 0, lma_cu_stream>>>((TI *)dv, dvacc, nk, NH / NKV, HD);
        } else {
            cudaFuncSetAttribute(k_flash_bwd_mma<HD, TI, TI>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
            dim3 grid((T + BR - 1) / BR, NKV, B);
            k_flash_bwd_mma<HD, TI, TI><<<grid, NTHREADS, shm, lma_cu_stream>>>(dqacc, (TI *)dk, (TI *)dv, 1, NH / NKV,
                                                                 (const TI *)dout, lse, D, (const TI *)q,
                                                                 (const TI *)k, (const TI *)v, seg, rng, T, NH, NKV, scale);
        }
        if (bf && dq) k_add_f32_to_bf16<<<(unsigned)((nq + 255) / 256), 256, 0, lma_cu_stream>>>((bf16 *)dq, dqacc, nq);
        return cudaGetLastError();
    }
    size_t shm = bwd_smem<HD>::bytes;
    if (ph) {
        cudaFuncSetAttribute(k_flash_bwd<HD, TI, float>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        dim3 grid((T + BR - 1) / BR, NH, B);
        k_flash_bwd<HD, TI, float><<<grid, NTHREADS, shm, lma_cu_stream>>>(dqacc, dk ? dkacc : NULL, dv ? dvacc : NULL, 0, 1,
                                                            (const TI *)dout, lse, D, (const TI *)q, (const TI *)k,
                                                            (const TI *)v, seg, T, NH, NKV, scale);
        unsigned nb = (unsigned)((nk + 255) / 256);
        if (dk) k_group_sum<TI><<<nb, 256, 0, lma_cu_stream>>>((TI *)dk, dkacc, nk, NH / NKV, HD);
        if (dv) k_group_sum<TI><<<nb, 256, 0, lma_cu_stream>>>((TI *)dv, dvacc, nk, NH / NKV, HD);
    } else {
        cudaFuncSetAttribute(k_flash_bwd<HD, TI, TI>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        dim3 grid((T + BR - 1) / BR, NKV, B);
        k_flash_bwd<HD, TI, TI><<<grid, NTHREADS, shm, lma_cu_stream>>>(dqacc, (TI *)dk, (TI *)dv, 1, NH / NKV, (const TI *)dout, lse,
                                                         D, (const TI *)q, (const TI *)k, (const TI *)v, seg, T, NH,
                                                         NKV, scale);
    }
    if (bf && dq) k_add_f32_to_bf16<<<(unsigned)((nq + 255) / 256), 256, 0, lma_cu_stream>>>((bf16 *)dq, dqacc, nq);
    return cudaGetLastError();
}

cudaError_t lma_cuda_flash_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *lse,
                               const void *q, const void *k, const void *v, const int32_t *seg, int B, int T, int NH,
                               int NKV, int HD, float scale, int bf16_storage) {
    LMA_FLASH_DISPATCH(bwd_t, bf16_storage, HD, dq, dk, dv, dout, out, lse, q, k, v, seg, B, T, NH, NKV, scale)
}
