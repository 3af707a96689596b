/* The device scratch the cuda backend keeps beside the model's own allocations, as plain
 * arithmetic (no GPU needed): the plugin sizes its buffers with these functions and the
 * memory planner (advise/mem.c, `lmadapt mem`) predicts them with the same ones. Each buffer
 * is grown on demand and kept (lma_cuda_grow), so its largest request is what it holds.
 * Bytes throughout. */
#ifndef LMA_BACKEND_CUDA_SIZES_H
#define LMA_BACKEND_CUDA_SIZES_H
#include <stddef.h>

/* cuBLASLt's workspace, allocated once when the backend opens. */
#define LMA_CUDA_LT_WS_BYTES ((size_t)32 << 20)

/* cuDNN's fused attention backward (bf16): the fp32 dQ accumulator after the plan's own
 * workspace (plan_ws, known only once cuDNN has built the plan) ... */
static inline size_t lma_cuda_sdpa_ws_bytes(size_t plan_ws, int B, int T, int NH, int HD) {
    return (plan_ws + 255) / 256 * 256 + (size_t)B * NH * T * HD * 4;
}
/* ... and the bf16 gradients of q, k, v it writes before they are added into dq, dk, dv, where
 * those were not zeroed just before (never in the model's backward: ops_zero.cuh). */
static inline size_t lma_cuda_sdpa_grad_bytes(int B, int T, int NH, int NKV, int HD) {
    return ((size_t)B * T * NH * HD + 2 * (size_t)B * T * NKV * HD) * 2;
}
/* ... and, for packed rows, the documents' table: their starts and count (ints), lengths
 * (ints) and three offset arrays (int64) for n = B * T tokens (cudnn_sdpa.cu find_docs). */
static inline size_t lma_cuda_sdpa_docs_bytes(size_t n) {
    return 8 * ((n + 3) & ~(size_t)1) + 16 + 24 * (n + 2);
}
/* The flash kernel's backward scratch in floats: the row dots, the fp32 dQ accumulator for
 * bf16 storage, and per-head dK/dV accumulators under GQA when that path is taken (per_head). */
static inline size_t lma_cuda_flash_bwd_floats(int B, int T, int NH, int HD, int bf16, int per_head) {
    size_t nq = (size_t)B * T * NH * HD, nrow = (size_t)B * NH * T;
    return nrow + (bf16 ? nq : 0) + (per_head ? 2 * nq : 0);
}
/* Decode attention's key splits (attention_cached, ops_attention.cuh): up to 264 blocks'
 * partial sums (head dims up to 256, plus the max and sum) and a counter each, allocated at
 * the first split call and kept (recorded decode graphs keep its address). */
#define LMA_CUDA_ATTC_HD 256
#define LMA_CUDA_ATTC_SPLIT_BLOCKS 264
#define LMA_CUDA_ATTC_SPLIT_BYTES \
    ((size_t)LMA_CUDA_ATTC_SPLIT_BLOCKS * (LMA_CUDA_ATTC_HD + 2) * 4 + (size_t)LMA_CUDA_ATTC_SPLIT_BLOCKS * 4)
/* The NF4 (QLoRA) dequantization scratch: the largest projection (elements) in act storage. */
static inline size_t lma_cuda_nf4_deq_bytes(size_t max_quant, int act_bytes) { return max_quant * (size_t)act_bytes; }
#endif
