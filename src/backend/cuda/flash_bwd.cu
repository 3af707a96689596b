/* Causal attention in the flash-attention manner (FA2): fused, tiled, with an
 * online softmax, so the (T, T) probabilities never reach device memory. The
 * forward keeps one float per query row (the log-sum-exp); the backward recomputes
 * the probabilities tile by tile from it.
 *
 * Tiles: 64 query rows x 64 keys, 4 warps per block, each warp owning a strip of
 * 16 rows; the matrix products run on the tensor cores through WMMA (bf16 inputs,
 * fp32 accumulation), the softmax in fp32. q, k, v, out and their gradients are in
 * the backend's activation storage (fp32 or bf16: template parameter TI) and are
 * converted to bf16 as tiles are loaded into shared memory.
 *
 *   forward  (grid: query tile, head, batch row):   for each key tile kt <= qt:
 *     S = Q K^T;  m' = max(m, rowmax(scale S));  P = exp(scale S - m')  (masked)
 *     l = l e^(m-m') + rowsum P;  O = O e^(m-m') + P V;   at the end O /= l, lse = m + log l
 *   backward (grid: key tile, head group, batch row; loops over the query heads of the
 *   group and the query tiles qt >= kt, so dK, dV of a tile have one owner. A group is
 *   all G query heads of a kv head (dK, dV added into the gradients), or, when that
 *   leaves too few blocks to fill the GPU (GQA: TinyLlama has 4 kv heads), one query
 *   head, written to an fp32 scratch that a second kernel sums over each group):
 *     P = exp(scale Q K^T - lse);  dV += P^T dO;  dP = dO V^T;  dS = P (dP - D) scale
 *     dK += dS^T Q;  dQ += dS K (fp32 atomics)      with D = rowsum(dO . O)
 *
 * Masking: key s is visible to query t iff s <= t and seg[b,s] == seg[b,t]; the mma.sync
 * kernels skip the tile pairs whose segment ids cannot meet (k_seg_ranges), so packed documents
 * cost the attention of each document alone.
 * Head dims 16, 32, 64, 128 (lma_cuda_flash_supported); the batched-GEMM path of
 * cuda_backend.cu is the fallback and, with the naive kernels, the oracle. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_internal.h"

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

enum { BR = 64, NTHREADS = 128 };
/* blocks an SM the mma.sync backward asks registers for at head dims <= 64 (3: at most 168
 * registers, a few spilled; 1: ~190, two blocks an SM); -D to compare */
#ifndef LMA_FLASH_BWD_MINB
#define LMA_FLASH_BWD_MINB 3
#endif

/* ---- element access for the two storage types ------------------------------------ */

template <typename TI> struct io;
template <> struct io<float> {
    static __device__ __forceinline__ void load8(bf16 *dst, const float *src) {
        float4 a = reinterpret_cast<const float4 *>(src)[0], b = reinterpret_cast<const float4 *>(src)[1];
        __nv_bfloat162 *d = reinterpret_cast<__nv_bfloat162 *>(dst);
        d[0] = __floats2bfloat162_rn(a.x, a.y);
        d[1] = __floats2bfloat162_rn(a.z, a.w);
        d[2] = __floats2bfloat162_rn(b.x, b.y);
        d[3] = __floats2bfloat162_rn(b.z, b.w);
    }
    static __device__ __forceinline__ float get(const float *p) { return *p; }
    static __device__ __forceinline__ void put(float *p, float x) { *p = x; }
};
template <> struct io<bf16> {
    static __device__ __forceinline__ void load8(bf16 *dst, const bf16 *src) {
        *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
    }
    static __device__ __forceinline__ float get(const bf16 *p) { return __bfloat162float(*p); }
    static __device__ __forceinline__ void put(bf16 *p, float x) { *p = __float2bfloat16(x); }
};

/* rows [0, valid) of a (BR, HD) tile from global rows `stride` elements apart into
 * shared memory (row pitch HD + 8), zeros below */
template <int HD, typename TI>
__device__ __forceinline__ void load_tile(bf16 *s, const TI *g, size_t stride, int valid) {
    constexpr int CH = HD / 8, LDH = HD + 8;
    for (int i = threadIdx.x; i < BR * CH; i += NTHREADS) {
        int r = i / CH, c = (i % CH) * 8;
        bf16 *d = s + r * LDH + c;
        if (r < valid) io<TI>::load8(d, g + (size_t)r * stride + c);
        else *reinterpret_cast<uint4 *>(d) = make_uint4(0, 0, 0, 0);
    }
}

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_acc;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> frag_at;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_bt;

/* out (16, BR) row-major at ld LDS = A (16, HD) . B^T where B is (BR, HD) row-major */
template <int HD>
__device__ __forceinline__ void strip_abt(float *out, int lds, const bf16 *a, const bf16 *b) {
    constexpr int LDH = HD + 8;
#pragma unroll
    for (int j = 0; j < BR / 16; j++) {
        frag_acc c;
        wmma::fill_fragment(c, 0.0f);
#pragma unroll
        for (int kk = 0; kk < HD / 16; kk++) {
            frag_a fa;
            frag_bt fb;
            wmma::load_matrix_sync(fa, a + kk * 16, LDH);
            wmma::load_matrix_sync(fb, b + j * 16 * LDH + kk * 16, LDH);
            wmma::mma_sync(c, fa, fb, c);
        }
        wmma::store_matrix_sync(out + j * 16, c, lds, wmma::mem_row_major);
    }
}

__device__ __forceinline__ bool visible(int t, int s, int T, const int32_t *seg_k, int segq) {
    return t < T && s <= t && (!seg_k || seg_k[0] == segq);
}

/* Segment skipping (the mma.sync kernels): a query tile and a key tile whose segment ids'
 * ranges [lo, hi] do not meet hold no visible pair (visibility needs equal ids), so the loops
 * skip them, and a pair of tiles of one id each, the same, below the diagonal needs no mask.
 * Exact for any ids; for packed documents (ids nondecreasing along a row) only the tiles of
 * the query's own documents remain. rng (B, nT): each tile's range, k_seg_ranges before the
 * kernels; first_meet finds the next tile to run 32 candidates a round. */
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
__device__ __forceinline__ bool seg_meet(int2 a, int2 b) { return a.x <= b.y && b.x <= a.y; }
__device__ __forceinline__ bool seg_same(int2 a, int2 b) { return a.x == a.y && b.x == a.x && b.y == a.x; }
/* the first j in [from, to) whose tile (tile_of(j)) meets range r, else to; the same answer
 * in every lane of the warp */
template <typename F>
__device__ __forceinline__ int first_meet(int from, int to, int2 r, const int2 *rb, F tile_of) {
    for (int base = from; base < to; base += 32) {
        int j = base + (threadIdx.x & 31);
        unsigned m = __ballot_sync(0xffffffffu, j < to && seg_meet(r, rb[tile_of(j)]));
        if (m) return base + __ffs(m) - 1;
    }
    return to;
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
 * The same tiles as k_flash_fwd, but S, P and O live in registers in the documented
 * fragment layouts of mma.sync.m16n8k16 (PTX ISA "Matrix fragments for mma.m16n8k16"):
 * with g = lane / 4, c = lane % 4, a thread holds
 *   A (16x16, row major): a0 = (g, 2c..2c+1), a1 = (g+8, 2c..), a2 = (g, 2c+8..), a3 = (g+8, 2c+8..)
 *   B (16x8, k x n):      b0 = (k 2c..2c+1, n g), b1 = (k 2c+8..2c+9, n g)
 *   C (16x8, fp32):       c0, c1 = (g, 2c..2c+1), c2, c3 = (g+8, 2c..2c+1)
 * so the C fragments of S become the A fragments of P without moving (FA2's trick).
 * Every tile is row-major in shared memory (8 elements of row padding: the 32-bit
 * fragment reads are free of bank conflicts); where B must pair elements along the rows
 * (P V, and the backward's transposed products) ldmatrix .trans reads it. */

__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t ld32(const bf16 *p) { return *reinterpret_cast<const uint32_t *>(p); }
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}
__device__ __forceinline__ void ldsm_x4(uint32_t *r, const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
}
/* A fragment (16 rows from `row0`, columns k0..k0+15) of a row-major bf16 tile of pitch ld,
 * with ldmatrix: lane t gives the address of row row0 + t%8 (+8 for lanes 8-15, 24-31),
 * columns k0 (+8 for lanes 16-31). Rows must be 16-byte aligned. */
__device__ __forceinline__ void frag_a_rows(uint32_t *a, const bf16 *s, int ld, int row0, int k0) {
    int t = threadIdx.x & 31;
    ldsm_x4(a, s + (row0 + (t & 7) + ((t >> 3) & 1) * 8) * ld + k0 + (t >> 4) * 8);
}
/* B fragments of two n-tiles (n0 and n0 + 8) for k0..k0+15 of a row-major [n][k] tile (B^T,
 * as K in Q K^T), with ldmatrix: lane t gives row n0 + t%8 (+8 for lanes 16-31), columns
 * k0 (+8 for lanes 8-15, 24-31): r = {b0(n0), b1(n0), b0(n0 + 8), b1(n0 + 8)}. */
__device__ __forceinline__ void frag_b_nk2(uint32_t *r, const bf16 *s, int ld, int n0, int k0) {
    int t = threadIdx.x & 31;
    ldsm_x4(r, s + (n0 + (t & 7) + (t >> 4) * 8) * ld + k0 + ((t >> 3) & 1) * 8);
}
/* B fragments of two n-tiles (n0 and n0 + 8) for the k rows k0..k0+15 of a row-major
 * [k][n] bf16 tile of pitch ld, with ldmatrix .trans (lane t gives the address of row
 * k0 + t%8 (+8 for lanes 8-15, 24-31), columns n0 (+8 for lanes 16-31)):
 * r = {b0(n0), b1(n0), b0(n0 + 8), b1(n0 + 8)}. Rows must be 16-byte aligned. */
__device__ __forceinline__ void frag_b_kn2(uint32_t *r, const bf16 *s, int ld, int k0, int n0) {
    int t = threadIdx.x & 31;
    const bf16 *p = s + (k0 + (t & 7) + ((t >> 3) & 1) * 8) * ld + n0 + (t >> 4) * 8;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"((uint32_t)__cvta_generic_to_shared(p)));
}

/* Tiles of bf16 storage are copied with cp.async (16 bytes a thread, no registers), so the
 * next K, V tile loads while the current one is used; fp32 storage converts on the way
 * (load_tile) and gets no overlap. Rows past `valid` are zeroed. */
template <int HD, typename TI>
__device__ __forceinline__ void load_tile_async(bf16 *s, const TI *g, size_t stride, int valid) {
    if constexpr (sizeof(TI) == 2) {
        constexpr int CH = HD / 8, LDH = HD + 8;
        for (int i = threadIdx.x; i < BR * CH; i += NTHREADS) {
            int r = i / CH, c = (i % CH) * 8;
            bf16 *d = s + r * LDH + c;
            if (r < valid)
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((uint32_t)__cvta_generic_to_shared(d)),
                             "l"(g + (size_t)r * stride + c));
            else
                *reinterpret_cast<uint4 *>(d) = make_uint4(0, 0, 0, 0);
        }
    } else {
        load_tile<HD, TI>(s, g, stride, valid);
    }
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

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

int lma_cuda_flash_supported(int HD) { return HD == 16 || HD == 32 || HD == 64 || HD == 128; }

static lma_cuda_buf g_fl_scratch;
static float *fl_scratch(size_t n) { return (float *)lma_cuda_grow(&g_fl_scratch, n * sizeof(float)); }

/* LMA_CUDA_FLASH=wmma selects the first (WMMA, shared-memory) kernels; default: mma.sync */
static int use_wmma(void) {
    static int w = -1;
    if (w < 0) {
        const char *e = getenv("LMA_CUDA_FLASH");
        w = e && !strcmp(e, "wmma");
    }
    return w;
}

/* each tile's segment id range (k_seg_ranges) in a scratch kept between calls; NULL: seg is */
static lma_cuda_buf g_seg_rng;
static const int2 *seg_ranges(const int32_t *seg, int B, int T, cudaError_t *err) {
    int n = B * ((T + BR - 1) / BR);
    int2 *r = seg ? (int2 *)lma_cuda_grow(&g_seg_rng, (size_t)n * sizeof(int2)) : NULL;
    if (seg && !r) *err = cudaErrorMemoryAllocation;
    if (r) k_seg_ranges<<<(n + 127) / 128, 128, 0, lma_cu_stream>>>(r, seg, B, T);
    return r;
}

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

/* one block per kv head when that fills the GPU (about 2 waves), else one per query head */
static int per_head(int B, int T, int NH, int NKV) {
    static int mode = -1, sms = 132;
    if (mode < 0) {
        const char *e = getenv("LMA_CUDA_FLASH_BWD"); /* "kv" | "heads": force a grid (A/B runs) */
        mode = e && !strcmp(e, "kv") ? 1 : e && !strcmp(e, "heads") ? 2 : 0;
        int dev = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    }
    if (NH == NKV || mode == 1) return 0;
    if (mode == 2) return 1;
    return (long)B * NKV * ((T + BR - 1) / BR) < 4L * sms;
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

#define LMA_FLASH_DISPATCH(fn, bf, HD, ...)                                                                            \
    switch (HD) {                                                                                                      \
    case 16: return bf ? fn<16, bf16>(__VA_ARGS__) : fn<16, float>(__VA_ARGS__);                                       \
    case 32: return bf ? fn<32, bf16>(__VA_ARGS__) : fn<32, float>(__VA_ARGS__);                                       \
    case 64: return bf ? fn<64, bf16>(__VA_ARGS__) : fn<64, float>(__VA_ARGS__);                                       \
    case 128: return bf ? fn<128, bf16>(__VA_ARGS__) : fn<128, float>(__VA_ARGS__);                                    \
    default: return cudaErrorInvalidValue;                                                                             \
    }

cudaError_t lma_cuda_flash_fwd(void *out, float *lse, const void *q, const void *k, const void *v, const int32_t *seg,
                               int B, int T, int NH, int NKV, int HD, float scale, int bf16_storage) {
    LMA_FLASH_DISPATCH(fwd_t, bf16_storage, HD, out, lse, q, k, v, seg, B, T, NH, NKV, scale)
}

cudaError_t lma_cuda_flash_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *lse,
                               const void *q, const void *k, const void *v, const int32_t *seg, int B, int T, int NH,
                               int NKV, int HD, float scale, int bf16_storage) {
    LMA_FLASH_DISPATCH(bwd_t, bf16_storage, HD, dq, dk, dv, dout, out, lse, q, k, v, seg, B, T, NH, NKV, scale)
}
