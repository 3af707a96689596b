/* mma.sync.m16n8k16 (bf16 inputs, fp32 accumulation) and its ldmatrix fragment loads: what the
 * flash kernels (flash_common.cuh) and the thin products (ops_thin.cuh) share.
 * The documented fragment layouts (PTX ISA "Matrix fragments for mma.m16n8k16"): with
 * g = lane / 4, c = lane % 4, a thread holds
 *   A (16x16, row major): a0 = (g, 2c..2c+1), a1 = (g+8, 2c..), a2 = (g, 2c+8..), a3 = (g+8, 2c+8..)
 *   B (16x8, k x n):      b0 = (k 2c..2c+1, n g), b1 = (k 2c+8..2c+9, n g)
 *   C (16x8, fp32):       c0, c1 = (g, 2c..2c+1), c2, c3 = (g+8, 2c..2c+1)
 * Tiles are row-major in shared memory with 8 elements of row padding (the 32-bit fragment reads
 * and ldmatrix's 16-byte rows are then free of bank conflicts). */
#ifndef LMA_BACKEND_CUDA_MMA_CUH
#define LMA_BACKEND_CUDA_MMA_CUH
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

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

#endif
