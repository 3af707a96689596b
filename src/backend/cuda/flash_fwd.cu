/* Flash attention, forward (the concept, tiles, masking and the helpers shared with the
 * backward: flash_common.cuh):
 *   grid: query tile, head, batch row;   for each key tile kt <= qt:
 *     S = Q K^T;  m' = max(m, rowmax(scale S));  P = exp(scale S - m')  (masked)
 *     l = l e^(m-m') + rowsum P;  O = O e^(m-m') + P V;   at the end O /= l, lse = m + log l
 * k_flash_fwd on WMMA with S, P and O in shared memory (LMA_CUDA_FLASH=wmma); k_flash_fwd_mma,
 * the default, on mma.sync with S, P and O in registers and the key tiles that cannot meet
 * the query tile's segments skipped. Also here: k_seg_ranges (each tile's segment id range,
 * also run before the backward), lma_cuda_flash_supported and lma_cuda_flash_fwd. */
#include "backend/cuda/flash_common.cuh"

/* Segment skipping (flash_common.cuh): rng (B, nT), each tile's range [lo, hi] of ids */
__global__ void k_seg_ranges(int2 *rng, const int32_t *seg, int B, int T) {
    int nT = (T + BR - 1) / BR, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * nT) return;
    const int32_t *sb = seg + (size_t)(i / nT) * T;
    int t0 = (i % nT) * BR, lo = 0x7fffffff, hi = -0x7fffffff - 1;
    for (int t = t0; t < min(T, t0 + BR); t++) {
        lo = min(lo, sb[t]);
        hi = max(hi, sb[t]);
    }
    rng[i] = make_int2(lo, hi);
}

/* ---- forward -------------------------------------------------------------------------- */

template <int HD>
struct fwd_smem {
    static constexpr int LDH = HD + 8, LDS = BR + 4, LDP = BR + 8, LDO = HD + 4;
    static constexpr size_t bytes = 3 * BR * LDH * 2 + BR * LDS * 4 + BR * LDP * 2 + BR * LDO * 4 + BR * 4;
};

template <int HD, typename TI>
__global__ void __launch_bounds__(NTHREADS) k_flash_fwd(TI *out, float *lse, const TI *q, const TI *k, const TI *v,
                                                        const int32_t *seg, int T, int NH, int NKV, float scale) {
    typedef fwd_smem<HD> L;
    constexpr int LDH = L::LDH, LDS = L::LDS, LDP = L::LDP, LDO = L::LDO;
    int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV); /* long rows first */
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem), *sK = sQ + BR * LDH, *sV = sK + BR * LDH;
    float *sS = reinterpret_cast<float *>(sV + BR * LDH);
    bf16 *sP = reinterpret_cast<bf16 *>(sS + BR * LDS);
    float *sO = reinterpret_cast<float *>(sP + BR * LDP);
    int32_t *sSeg = reinterpret_cast<int32_t *>(sO + BR * LDO);

    int t0 = qt * BR;
    load_tile<HD, TI>(sQ, q + (((size_t)b * T + t0) * NH + h) * HD, (size_t)NH * HD, min(BR, T - t0));
    for (int i = threadIdx.x; i < BR * LDO; i += NTHREADS) sO[i] = 0.0f;
    /* this lane's row of the warp's strip and its half of the columns */
    int row = warp * 16 + (lane >> 1), half = lane & 1, t = t0 + row;
    int segq = (seg && t < T) ? seg[(size_t)b * T + t] : 0;
    float m = -INFINITY, l = 0.0f;
    for (int kt = 0; kt <= qt; kt++) {
        int s0 = kt * BR, nk = min(BR, T - s0);
        __syncthreads(); /* every warp is done with the previous K, V */
        load_tile<HD, TI>(sK, k + (((size_t)b * T + s0) * NKV + kh) * HD, (size_t)NKV * HD, nk);
        load_tile<HD, TI>(sV, v + (((size_t)b * T + s0) * NKV + kh) * HD, (size_t)NKV * HD, nk);
        if (seg)
            for (int i = threadIdx.x; i < BR; i += NTHREADS) sSeg[i] = i < nk ? seg[(size_t)b * T + s0 + i] : -1;
        __syncthreads();
        strip_abt<HD>(sS + warp * 16 * LDS, LDS, sQ + warp * 16 * LDH, sK);
        __syncwarp();
        /* online softmax on (row, half) */
        const float *srow = sS + row * LDS + half * 32;
        float sv[32], mx = -INFINITY;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            int j = half * 32 + c;
            sv[c] = visible(t, s0 + j, T, seg ? sSeg + j : NULL, segq) && j < nk ? srow[c] * scale : -INFINITY;
            mx = fmaxf(mx, sv[c]);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        float mn = fmaxf(m, mx), alpha = mn == -INFINITY ? 1.0f : __expf(m - mn), sum = 0.0f;
        bf16 *prow = sP + row * LDP + half * 32;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            float p = sv[c] == -INFINITY ? 0.0f : __expf(sv[c] - mn);
            sum += p;
            prow[c] = __float2bfloat16(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = mn;
        float *orow = sO + row * LDO + half * (HD / 2);
        if (alpha != 1.0f)
            for (int c = 0; c < HD / 2; c++) orow[c] *= alpha;
        __syncwarp();
        /* O strip += P strip . V */
#pragma unroll
        for (int j = 0; j < HD / 16; j++) {
            frag_acc c;
            wmma::load_matrix_sync(c, sO + warp * 16 * LDO + j * 16, LDO, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < BR / 16; kk++) {
                frag_a fa;
                frag_b fb;
                wmma::load_matrix_sync(fa, sP + warp * 16 * LDP + kk * 16, LDP);
                wmma::load_matrix_sync(fb, sV + kk * 16 * LDH + j * 16, LDH);
                wmma::mma_sync(c, fa, fb, c);
            }
            wmma::store_matrix_sync(sO + warp * 16 * LDO + j * 16, c, LDO, wmma::mem_row_major);
        }
        __syncwarp();
    }
    if (t < T) {
        float inv = 1.0f / l;
        const float *orow = sO + row * LDO + half * (HD / 2);
        TI *o = out + (((size_t)b * T + t) * NH + h) * HD + half * (HD / 2);
        for (int c = 0; c < HD / 2; c++) io<TI>::put(o + c, orow[c] * inv);
        if (!half) lse[((size_t)b * NH + h) * T + t] = m + logf(l);
    }
}

/* ---- forward on mma.sync (FA2 register scheme; the default) ----------------------------------
 * The same tiles as k_flash_fwd, but S, P and O live in registers in the fragment layouts of
 * mma.sync.m16n8k16 (flash_common.cuh), so the C fragments of S become the A fragments of P
 * without moving (FA2's trick). */

template <int HD>
struct mfwd_smem {
    static constexpr int LDH = HD + 8;
    static constexpr size_t bytes = 5 * BR * LDH * 2 + 2 * BR * 4; /* Q, K and V twice, key segments twice */
};

template <int HD, typename TI>
__global__ void __launch_bounds__(NTHREADS) k_flash_fwd_mma(TI *out, float *lse, const TI *q, const TI *k, const TI *v,
                                                            const int32_t *seg, const int2 *rng, int T, int NH, int NKV,
                                                            float scale) {
    typedef mfwd_smem<HD> L;
    constexpr int LDH = L::LDH, NKC = HD / 16, NDT = HD / 8, NST = BR / 8;
    int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem), *sK0 = sQ + BR * LDH, *sV0 = sK0 + 2 * BR * LDH;
    int32_t *sSeg0 = reinterpret_cast<int32_t *>(sV0 + 2 * BR * LDH);
    /* K, V tile kt (and its key segments) into buffer bb */
    auto issue = [&](int kt, int bb) {
        int s0 = kt * BR, nk = min(BR, T - s0);
        load_tile_async<HD, TI>(sK0 + bb * BR * LDH, k + (((size_t)b * T + s0) * NKV + kh) * HD, (size_t)NKV * HD, nk);
        load_tile_async<HD, TI>(sV0 + bb * BR * LDH, v + (((size_t)b * T + s0) * NKV + kh) * HD, (size_t)NKV * HD, nk);
        if (seg)
            for (int i = threadIdx.x; i < BR; i += NTHREADS)
                sSeg0[bb * BR + i] = i < nk ? seg[(size_t)b * T + s0 + i] : -1;
        cp_commit();
    };

    int t0 = qt * BR;
    const int2 *rb = seg ? rng + (size_t)b * gridDim.x : NULL;
    int2 qr = seg ? rb[qt] : make_int2(0, 0);
    /* the first key tile from kt on that meets this query tile's segments (qt itself does) */
    auto next_kt = [&](int kt) { return seg ? first_meet(kt, qt, qr, rb, [](int j) { return j; }) : kt; };
    load_tile<HD, TI>(sQ, q + (((size_t)b * T + t0) * NH + h) * HD, (size_t)NH * HD, min(BR, T - t0));
    int kt = next_kt(0);
    issue(kt, 0);
    __syncthreads();
    uint32_t qa[NKC][4];
#pragma unroll
    for (int kc = 0; kc < NKC; kc++) frag_a_rows(qa[kc], sQ, LDH, warp * 16, kc * 16);
    int r0 = t0 + warp * 16 + g, r1 = r0 + 8; /* this thread's two query rows */
    int sg0 = (seg && r0 < T) ? seg[(size_t)b * T + r0] : 0, sg1 = (seg && r1 < T) ? seg[(size_t)b * T + r1] : 0;
    float o[NDT][4], m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
#pragma unroll
    for (int n = 0; n < NDT; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;

    for (int it = 0; kt <= qt; it++) {
        int s0 = kt * BR, nk = min(BR, T - s0), nxt = kt < qt ? next_kt(kt + 1) : qt + 1, bb = it & 1;
        /* the next tile loads into the other buffer (free: the barrier at the end of the
         * previous iteration) while this one is used */
        if (nxt <= qt) { issue(nxt, bb ^ 1); cp_wait<1>(); }
        else cp_wait<0>();
        __syncthreads(); /* tile kt is in shared memory for every thread */
        const bf16 *sK = sK0 + bb * BR * LDH, *sV = sV0 + bb * BR * LDH;
        const int32_t *sSeg = sSeg0 + bb * BR;
        float sc[NST][4];
#pragma unroll
        for (int j = 0; j < NST; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
#pragma unroll
        for (int kc = 0; kc < NKC; kc++)
#pragma unroll
            for (int j = 0; j < NST; j += 2) {
                uint32_t bk[4];
                frag_b_nk2(bk, sK, LDH, 8 * j, kc * 16);
                mma16816(sc[j], qa[kc], bk[0], bk[1]);
                mma16816(sc[j + 1], qa[kc], bk[2], bk[3]);
            }
        /* mask (only tiles on the diagonal, with segments or past T need one) + scale, row
         * maxima (rows r0, r1; the 4 threads of a row share it) */
        float mx0 = -INFINITY, mx1 = -INFINITY;
        if (kt < qt && (!seg || seg_same(qr, rb[kt]))) {
#pragma unroll
            for (int j = 0; j < NST; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) sc[j][e] *= scale;
        } else {
#pragma unroll
            for (int j = 0; j < NST; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int jj = 8 * j + 2 * c + e, s = s0 + jj;
                    bool ok = jj < nk;
                    int ks = seg ? sSeg[jj] : 0;
                    sc[j][e] = ok && visible(r0, s, T, seg ? &ks : NULL, sg0) ? sc[j][e] * scale : -INFINITY;
                    sc[j][2 + e] = ok && visible(r1, s, T, seg ? &ks : NULL, sg1) ? sc[j][2 + e] * scale : -INFINITY;
                }
        }
#pragma unroll
        for (int j = 0; j < NST; j++) {
            mx0 = fmaxf(mx0, fmaxf(sc[j][0], sc[j][1]));
            mx1 = fmaxf(mx1, fmaxf(sc[j][2], sc[j][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
        float a0 = n0 == -INFINITY ? 1.0f : __expf(m0 - n0), a1 = n1 == -INFINITY ? 1.0f : __expf(m1 - n1);
        m0 = n0;
        m1 = n1;
        float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
        for (int j = 0; j < NST; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                sc[j][e] = sc[j][e] == -INFINITY ? 0.0f : __expf(sc[j][e] - n0);
                sc[j][2 + e] = sc[j][2 + e] == -INFINITY ? 0.0f : __expf(sc[j][2 + e] - n1);
                ps0 += sc[j][e];
                ps1 += sc[j][2 + e];
            }
        l0 = l0 * a0 + ps0; /* per-thread partial sums: reduced over the row's 4 threads at the end */
        l1 = l1 * a1 + ps1;
#pragma unroll
        for (int n = 0; n < NDT; n++) { o[n][0] *= a0; o[n][1] *= a0; o[n][2] *= a1; o[n][3] *= a1; }
        /* O += P V: P's C fragments are the A fragments, 16 keys at a time */
#pragma unroll
        for (int kk = 0; kk < BR / 16; kk++) {
            uint32_t pa[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]), pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                              pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
            for (int n = 0; n < NDT; n += 2) {
                uint32_t bv[4];
                frag_b_kn2(bv, sV, LDH, kk * 16, 8 * n);
                mma16816(o[n], pa, bv[0], bv[1]);
                mma16816(o[n + 1], pa, bv[2], bv[3]);
            }
        }
        __syncthreads(); /* every warp is done with buffer bb before it is refilled */
        kt = nxt;
    }
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float i0 = 1.0f / l0, i1 = 1.0f / l1;
#pragma unroll
    for (int n = 0; n < NDT; n++) {
        int d = 8 * n + 2 * c;
        if (r0 < T) {
            TI *p = out + (((size_t)b * T + r0) * NH + h) * HD + d;
            io<TI>::put(p, o[n][0] * i0);
            io<TI>::put(p + 1, o[n][1] * i0);
        }
        if (r1 < T) {
            TI *p = out + (((size_t)b * T + r1) * NH + h) * HD + d;
            io<TI>::put(p, o[n][2] * i1);
            io<TI>::put(p + 1, o[n][3] * i1);
        }
    }
    if (c == 0) {
        if (r0 < T) lse[((size_t)b * NH + h) * T + r0] = m0 + logf(l0);
        if (r1 < T) lse[((size_t)b * NH + h) * T + r1] = m1 + logf(l1);
    }
}

/* ---- host side -------------------------------------------------------------------------- */

int lma_cuda_flash_supported(int HD) { return HD == 16 || HD == 32 || HD == 64 || HD == 128; }

template <int HD, typename TI>
static cudaError_t fwd_t(void *out, float *lse, const void *q, const void *k, const void *v, const int32_t *seg, int B,
                         int T, int NH, int NKV, float scale) {
    dim3 grid((T + BR - 1) / BR, NH, B);
    if (use_wmma()) {
        size_t shm = fwd_smem<HD>::bytes;
        cudaFuncSetAttribute(k_flash_fwd<HD, TI>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        k_flash_fwd<HD, TI><<<grid, NTHREADS, shm, lma_cu_stream>>>((TI *)out, lse, (const TI *)q, (const TI *)k, (const TI *)v, seg,
                                                     T, NH, NKV, scale);
    } else {
        size_t shm = mfwd_smem<HD>::bytes;
        cudaError_t err = cudaSuccess;
        const int2 *rng = seg_ranges(seg, B, T, &err);
        if (err != cudaSuccess) return err;
        cudaFuncSetAttribute(k_flash_fwd_mma<HD, TI>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        k_flash_fwd_mma<HD, TI><<<grid, NTHREADS, shm, lma_cu_stream>>>((TI *)out, lse, (const TI *)q, (const TI *)k, (const TI *)v,
                                                         seg, rng, T, NH, NKV, scale);
    }
    return cudaGetLastError();
}

cudaError_t lma_cuda_flash_fwd(void *out, float *lse, const void *q, const void *k, const void *v, const int32_t *seg,
                               int B, int T, int NH, int NKV, int HD, float scale, int bf16_storage) {
    LMA_FLASH_DISPATCH(fwd_t, bf16_storage, HD, out, lse, q, k, v, seg, B, T, NH, NKV, scale)
}
