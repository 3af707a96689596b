/* The cuda backends beyond the op table (backend.h): the host-side switches and
 * counters that tests and benchmarks read, implemented in backend/backend.c (which
 * forwards to the plugin when it is loaded). */
#ifndef LMA_BACKEND_CUDA_HOST_H
#define LMA_BACKEND_CUDA_HOST_H
#include <stddef.h>

/* Test hook of the cuda backends' attention: 0 the fastest (cuDNN's fused flash attention
 * for bf16 without segment ids where cuDNN is built in, else the flash kernel for head dims
 * 16..128, else the fallback), 1 the naive kernels (the oracle), 2 batched GEMMs (cuda-fp32
 * only), 3 the flash kernel, never cuDNN. */
extern int lma_cuda_attention_naive;
/* Device bytes the cuda backends hold now and at most since the last reset (the
 * counterpart of torch.cuda.memory_allocated / max_memory_allocated); 0 without a GPU. */
void lma_cuda_memory(size_t *current, size_t *peak, int reset_peak);
/* cuDNN's fused attention in the cuda backend: NULL when it cannot run for head dim HD (not
 * built in, no GPU, LMA_CUDA_CUDNN=0), else its state in words ("cuDNN 91400", or why the last
 * plan failed); *runs: the cuDNN attention executions so far. */
const char *lma_cuda_cudnn_attention(int HD, long *runs);
/* cuda-fp32 GEMM precision: 0 = exact fp32 (the default, as PyTorch's), 1 = TF32 tensor cores
 * (LMA_CUDA_TF32=1). */
void lma_cuda_set_tf32(int on);
/* The profile (LMA_CUDA_PROFILE=1) drops what it counted so far (warm-up steps), so that its
 * report at exit covers what runs after; nothing without a GPU or with profiling off. */
void lma_cuda_profile_reset(void);
#endif
