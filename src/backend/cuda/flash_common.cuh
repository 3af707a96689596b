/* Flash attention: causal attention in the flash-attention manner (FA2): fused, tiled, with an
 * online softmax, so the (T, T) probabilities never reach device memory. The forward
 * (flash_fwd.cu) keeps one float per query row (the log-sum-exp); the backward
 * (flash_bwd.cu) recomputes the probabilities tile by tile from it.
 *
 * Tiles: 64 query rows x 64 keys, 4 warps per block, each warp owning a strip of
 * 16 rows; the matrix products run on the tensor cores, through WMMA (the first kernels,
 * LMA_CUDA_FLASH=wmma) or mma.sync (the default) (bf16 inputs, fp32 accumulation), the
 * softmax in fp32. q, k, v, out and their gradients are in the backend's activation storage
 * (fp32 or bf16: template parameter TI) and are converted to bf16 as tiles are loaded into
 * shared memory.
 *
 * Masking: key s is visible to query t iff s <= t and seg[b,s] == seg[b,t]; the mma.sync
 * kernels skip the tile pairs whose segment ids cannot meet (k_seg_ranges), so packed documents
 * cost the attention of each document alone.
 * Head dims 16, 32, 64, 128 (lma_cuda_flash_supported); the batched-GEMM path of
 * cuda_backend.cu is the fallback and, with the naive kernels, the oracle.
 *
 * This header holds what both directions share: the tile constants, element access for the
 * two storage types, the tile loads (plain and cp.async), the WMMA and mma.sync fragment
 * helpers, masking and segment skipping, and the host-side switch, segment-range scratch and
 * head-dim dispatch. Private to flash_fwd.cu and flash_bwd.cu. Device helpers here are
 * inline (__forceinline__) or templates; host helpers are static, so each of the two files
 * has its own copy; k_seg_ranges is only declared here (defined once, in flash_fwd.cu). */
#ifndef LMA_BACKEND_CUDA_FLASH_COMMON_CUH
#define LMA_BACKEND_CUDA_FLASH_COMMON_CUH
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/mma.cuh"

using namespace nvcuda;

enum { BR = 64, NTHREADS = 128 };

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
__global__ void k_seg_ranges(int2 *rng, const int32_t *seg, int B, int T); /* flash_fwd.cu */
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

/* ---- mma.sync fragments (the default kernels): mma.cuh ----------------------------------------
 * The mma.sync kernels keep S, P and O (the backward: S^T, dP^T, dK, dV) in registers in the
 * fragment layouts of mma.cuh; where B must pair elements along the rows (P V, and the
 * backward's transposed products) ldmatrix .trans reads it. */

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

/* ---- host side -------------------------------------------------------------------------- */

/* LMA_CUDA_FLASH=wmma selects the first (WMMA, shared-memory) kernels; default: mma.sync */
static int use_wmma(void) {
    static int w = -1;
    if (w < 0) {
        const char *e = getenv("LMA_CUDA_FLASH");
        w = e && !strcmp(e, "wmma");
    }
    return w;
}

/* each tile's segment id range (k_seg_ranges) in a scratch kept between calls; NULL: seg is.
 * static: the forward and the backward each grow their own (a few bytes a tile; refilled
 * before every kernel that reads it, so nothing is carried from one direction to the other) */
static lma_cuda_buf g_seg_rng;
static const int2 *seg_ranges(const int32_t *seg, int B, int T, cudaError_t *err) {
    int n = B * ((T + BR - 1) / BR);
    int2 *r = seg ? (int2 *)lma_cuda_grow(&g_seg_rng, (size_t)n * sizeof(int2)) : NULL;
    if (seg && !r) *err = cudaErrorMemoryAllocation;
    if (r) k_seg_ranges<<<(n + 127) / 128, 128, 0, lma_cu_stream>>>(r, seg, B, T);
    return r;
}

#define LMA_FLASH_DISPATCH(fn, bf, HD, ...)                                                                            \
    switch (HD) {                                                                                                      \
    case 16: return bf ? fn<16, bf16>(__VA_ARGS__) : fn<16, float>(__VA_ARGS__);                                       \
    case 32: return bf ? fn<32, bf16>(__VA_ARGS__) : fn<32, float>(__VA_ARGS__);                                       \
    case 64: return bf ? fn<64, bf16>(__VA_ARGS__) : fn<64, float>(__VA_ARGS__);                                       \
    case 128: return bf ? fn<128, bf16>(__VA_ARGS__) : fn<128, float>(__VA_ARGS__);                                    \
    default: return cudaErrorInvalidValue;                                                                             \
    }

#endif
