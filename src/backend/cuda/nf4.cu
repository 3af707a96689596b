/* NF4 dequantization on the GPU (QLoRA base weights): the layout and the
 * arithmetic of quant/nf4.h, bit for bit (products and sums rounded separately,
 * no fused multiply-add, as the CPU reference):
 *   a = code8[qabsmax[b]] * absmax2[b / 256] + offset     (block b = i / 64)
 *   w = nf4_code[nibble(i)] * a                           (first element: high nibble)
 * One thread per byte (two weights). The code tables come from the library at
 * plugin open (lma_cuda_nf4_set_tables) into constant memory. */
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

template <typename TO>
__global__ void k_nf4_dequant(TO *out, const uint8_t *codes, const uint8_t *qabsmax, const float *absmax2, float offset,
                              int64_t n) {
    int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, e = 2 * j;
    if (e >= n) return;
    int64_t b = e / LMA_NF4_BLOCK; /* both elements of a byte share the block (64 is even) */
    float a = __fadd_rn(__fmul_rn(c_code8[qabsmax[b]], absmax2[b / LMA_NF4_BLOCK2]), offset);
    uint8_t byte = codes[j];
    put(out + e, __fmul_rn(c_nf4[byte >> 4], a));
    if (e + 1 < n) put(out + e + 1, __fmul_rn(c_nf4[byte & 15], a));
}

cudaError_t lma_cuda_nf4_dequant(void *out, const lma_nf4_tensor *w, int bf16_out) {
    int64_t bytes = (w->n + 1) / 2;
    unsigned nb = (unsigned)((bytes + 255) / 256);
    if (bf16_out)
        k_nf4_dequant<__nv_bfloat16><<<nb, 256, 0, lma_cu_stream>>>((__nv_bfloat16 *)out, w->codes, w->qabsmax, w->absmax2, w->offset, w->n);
    else
        k_nf4_dequant<float><<<nb, 256, 0, lma_cu_stream>>>((float *)out, w->codes, w->qabsmax, w->absmax2, w->offset, w->n);
    return cudaGetLastError();
}
