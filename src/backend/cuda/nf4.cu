/* NF4 dequantization on the GPU (QLoRA base weights): the layout and the
 * arithmetic of quant/nf4.h, bit for bit (products and sums rounded separately,
 * no fused multiply-add, as the CPU reference):
 *   a = code8[qabsmax[b]] * absmax2[b / 256] + offset     (block b = i / 64)
 *   w = nf4_code[nibble(i)] * a                           (first element: high nibble)
 * 32 weights a thread (k_nf4_dequant32), the one-thread-per-byte kernel for a tail or
 * unaligned arrays. The code tables come from the library at plugin open
 * (lma_cuda_nf4_set_tables) into constant memory. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include "backend/cuda/cuda_internal.h"
#include "quant/nf4.h"

__constant__ float c_nf4[16];
__constant__ float c_code8[256];

cudaError_t lma_cuda_nf4_set_tables(const float *code16, const float *code256) {
    cudaError_t e = cudaMemcpyToSymbol(c_nf4, code16, 16 * sizeof(float));
    return e != cudaSuccess ? e : cudaMemcpyToSymbol(c_code8, code256, 256 * sizeof(float));
}

__device__ __forceinline__ void put(float *p, float x) { *p = x; }
__device__ __forceinline__ void put(__nv_bfloat16 *p, float x) { *p = __float2bfloat16(x); }

/* the oracle's kernel: one thread per byte (two weights), from byte j0 on */
template <typename TO>
__global__ void k_nf4_dequant(TO *out, const uint8_t *codes, const uint8_t *qabsmax, const float *absmax2, float offset,
                              int64_t n, int64_t j0) {
    int64_t j = j0 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x, e = 2 * j;
    if (e >= n) return;
    int64_t b = e / LMA_NF4_BLOCK; /* both elements of a byte share the block (64 is even) */
    float a = __fadd_rn(__fmul_rn(c_code8[qabsmax[b]], absmax2[b / LMA_NF4_BLOCK2]), offset);
    uint8_t byte = codes[j];
    put(out + e, __fmul_rn(c_nf4[byte >> 4], a));
    if (e + 1 < n) put(out + e + 1, __fmul_rn(c_nf4[byte & 15], a));
}

/* The fast kernel, the same arithmetic: 32 weights (16 code bytes, one 16-byte load) a thread,
 * all of one 64-weight block (one scale), written as 16-byte stores; the code tables in shared
 * memory (a warp's lookups differ, which constant memory would serialize); a grid-stride loop
 * over the chunks. Per pass over a 7B model's weights: 3.2 GB read, 13 GB written (bf16). */
__device__ __forceinline__ void store8(__nv_bfloat16 *o, const float *v) {
    __nv_bfloat162 h[4];
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4 *>(o) = *reinterpret_cast<const uint4 *>(h);
}
__device__ __forceinline__ void store8(float *o, const float *v) {
    reinterpret_cast<float4 *>(o)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4 *>(o)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
template <typename TO>
__global__ void __launch_bounds__(256) k_nf4_dequant32(TO *out, const uint4 *codes, const uint8_t *qabsmax,
                                                       const float *absmax2, float offset, int64_t chunks) {
    __shared__ float nf4[16], code8[256];
    if (threadIdx.x < 16) nf4[threadIdx.x] = c_nf4[threadIdx.x];
    code8[threadIdx.x] = c_code8[threadIdx.x]; /* blockDim.x == 256 */
    __syncthreads();
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < chunks; c += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = c / 2; /* 32 weights a chunk, 64 a block */
        float a = __fadd_rn(__fmul_rn(code8[qabsmax[b]], absmax2[b / LMA_NF4_BLOCK2]), offset);
        uint4 q = __ldg(codes + c);
        const uint8_t *by = reinterpret_cast<const uint8_t *>(&q);
        TO *o = out + c * 32;
#pragma unroll
        for (int s = 0; s < 4; s++) {
            float v[8];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                uint8_t x = by[4 * s + i];
                v[2 * i] = __fmul_rn(nf4[x >> 4], a), v[2 * i + 1] = __fmul_rn(nf4[x & 15], a);
            }
            store8(o + 8 * s, v);
        }
    }
}

template <typename TO> static cudaError_t dequant(TO *out, const lma_nf4_tensor *w) {
    int64_t bytes = (w->n + 1) / 2, chunks = 0;
    if (((uintptr_t)out | (uintptr_t)w->codes) % 16 == 0) { /* whole chunks through the fast kernel */
        chunks = w->n / 32;
        int64_t nb = (chunks + 255) / 256;
        if (nb > 132 * 16) nb = 132 * 16;
        if (chunks)
            k_nf4_dequant32<TO><<<(unsigned)nb, 256, 0, lma_cu_stream>>>(out, (const uint4 *)w->codes, w->qabsmax,
                                                                        w->absmax2, w->offset, chunks);
    }
    int64_t j0 = chunks * 16, rest = bytes - j0; /* the tail (or all of it, unaligned) */
    if (rest > 0)
        k_nf4_dequant<TO><<<(unsigned)((rest + 255) / 256), 256, 0, lma_cu_stream>>>(out, w->codes, w->qabsmax,
                                                                                   w->absmax2, w->offset, w->n, j0);
    return cudaGetLastError();
}

cudaError_t lma_cuda_nf4_dequant(void *out, const lma_nf4_tensor *w, int bf16_out) {
    return bf16_out ? dequant((__nv_bfloat16 *)out, w) : dequant((float *)out, w);
}
