/* Sizes of cpu-bf16's packing scratch (cpu_gemm_bf16.c), shared with the memory planner
 * (advise/mem.c) so that the plan follows the allocator. */
#ifndef LMA_BACKEND_CPU_SIZES_H
#define LMA_BACKEND_CPU_SIZES_H
#include <stddef.h>

enum {
    LMA_CPU_BF16_MR = 12, /* micro-tile rows of C */
    LMA_CPU_BF16_NR = 32, /* micro-tile columns of C (2 x 16 fp32 lanes) */
    LMA_CPU_BF16_MIN = 64 /* a matmul with a dimension below this stays in fp32 sgemm */
};

/* bytes of the packed bf16 k-pairs of C (M,N) = A (M,K) B (K,N): both operands, rows and
 * columns padded to whole panels; 0 for a product left to sgemm */
static inline size_t lma_cpu_gemm_bf16_bytes(long M, long N, long K) {
    if (M < LMA_CPU_BF16_MIN || N < LMA_CPU_BF16_MIN || K < LMA_CPU_BF16_MIN) return 0;
    size_t mp = (size_t)(M + LMA_CPU_BF16_MR - 1) / LMA_CPU_BF16_MR * LMA_CPU_BF16_MR;
    size_t np = (size_t)(N + LMA_CPU_BF16_NR - 1) / LMA_CPU_BF16_NR * LMA_CPU_BF16_NR;
    return (mp + np) * (size_t)((K + 1) / 2) * 4;
}
#endif
