/* Declarations shared by the .cu files of the CUDA plugin (not part of the op
 * table: cuda_backend.cu wraps these into it). */
#ifndef LMA_BACKEND_CUDA_INTERNAL_H
#define LMA_BACKEND_CUDA_INTERNAL_H
#include <cuda_runtime.h>
#include "backend/cuda/cuda_sizes.h"
#include <stdint.h>

/* The stream this thread's ops are queued on: the legacy default stream (0), or while a
 * graph is recorded the capture stream (ops_graph.cuh). Every launch names it. */
extern thread_local cudaStream_t lma_cu_stream;

/* Device memory of the plugin, counted (cuda_backend.cu): every allocation goes here. */
/* Bumped by every allocation, free, upload, copy and zeroing of the table (ops_memory.cuh):
 * what the host read off device data (the documents of segment ids, cudnn_sdpa.cu) stays
 * valid while it is unchanged. Segment ids reach the device by upload only. */
extern unsigned long lma_cuda_epoch;
void *lma_cuda_malloc(size_t bytes);
void lma_cuda_free(void *p);
/* The table's zero is deferred (ops_zero.cuh); code of the plugin outside the table that reads or
 * writes device memory (NCCL's collectives) first settles the allocation it touches: what is
 * pending there cleared, and the stream waited for. */
void lma_cuda_zero_settle(const void *p);
/* The current device's multiprocessors (read once; 1 if the query fails): grid sizes. */
static inline int lma_cuda_sms(void) {
    static int sms;
    if (!sms) {
        int dev = 0;
        cudaGetDevice(&dev);
        if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms <= 0) sms = 1;
    }
    return sms;
}
/* A scratch buffer grown on demand: at least `bytes` (contents not kept), NULL when out of memory. */
typedef struct { void *p; size_t bytes; } lma_cuda_buf;
static inline void *lma_cuda_grow(lma_cuda_buf *b, size_t bytes) {
    if (bytes > b->bytes) {
        lma_cuda_free(b->p);
        b->p = lma_cuda_malloc(bytes);
        b->bytes = b->p ? bytes : 0;
    }
    return b->p;
}

/* Per-op profile (profile.cu; LMA_CUDA_PROFILE=1): GPU time accumulated into named rows.
 * lma_cuda_prof_register gives a row (NULL when profiling is off; a name that starts with a
 * space is a part of another row's time, left out of the total); a scope times the work queued
 * while it lives. set_report: an extra table printed after the op table. */
typedef struct { double ms; long calls; } lma_cuda_prof_acc;
int lma_cuda_prof_on(void);
lma_cuda_prof_acc *lma_cuda_prof_register(const char *name);
void lma_cuda_prof_set_report(void (*extra)(void), void (*extra_reset)(void)); /* an extra table and its reset */
int lma_cuda_prof_begin(lma_cuda_prof_acc *acc); /* a slot, -1 for none */
void lma_cuda_prof_end(int slot);
struct lma_cuda_prof_scope {
    int slot;
    explicit lma_cuda_prof_scope(lma_cuda_prof_acc *acc) : slot(lma_cuda_prof_begin(acc)) {}
    ~lma_cuda_prof_scope() { lma_cuda_prof_end(slot); }
};

/* Flash attention (flash_fwd.cu, flash_bwd.cu). Shapes and masking as attention_fwd/bwd of
 * backend.h; lse (B, NH, T) is the log-sum-exp of each query row's scaled scores,
 * written by the forward and read by the backward. bf16_storage: q, k, v, out and
 * the gradients are bf16 (else fp32). The backward ACCUMULATES into dq, dk, dv (any
 * may be NULL). Returns the launch error; cudaErrorInvalidValue for a head dim that
 * lma_cuda_flash_supported rejects. */
int lma_cuda_flash_supported(int HD);
cudaError_t lma_cuda_flash_fwd(void *out, float *lse, const void *q, const void *k, const void *v, const int32_t *seg,
                               int B, int T, int NH, int NKV, int HD, float scale, int bf16_storage);
cudaError_t lma_cuda_flash_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *lse,
                               const void *q, const void *k, const void *v, const int32_t *seg, int B, int T, int NH,
                               int NKV, int HD, float scale, int bf16_storage);

/* cuDNN's fused flash attention (cudnn_sdpa.cu): the same contract as lma_cuda_flash_* (lse
 * included, so either backward reads either forward's) for bf16 storage; segment ids that
 * never decrease along a row as unsigned numbers (packed documents, then -1 padding) run as
 * ragged documents. usable: cuDNN is
 * built in, loads, and takes the head dim (a multiple of 8 up to 128). fwd/bwd return 0 when
 * done, -1 when they did nothing (no cuDNN, no engine for the shape, ids the ragged path does
 * not take: the caller runs the flash kernel); bwd's set: dq, dk, dv are written, not added
 * into (they hold nothing the caller keeps); note: the state or why not, in words; runs:
 * plan executions so far. */
int lma_cuda_sdpa_usable(int HD);
int lma_cuda_sdpa_fwd(void *out, float *lse, const void *q, const void *k, const void *v, const int32_t *seg, int B,
                      int T, int NH, int NKV, int HD, float scale);
int lma_cuda_sdpa_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *lse, const void *q,
                      const void *k, const void *v, const int32_t *seg, int B, int T, int NH, int NKV, int HD,
                      float scale, int set);
const char *lma_cuda_sdpa_note(void);
long lma_cuda_sdpa_runs(void);

/* NF4 (nf4.cu): the code tables of quant/nf4.h into constant memory (once, at open);
 * w (whose three arrays are device memory) dequantized whole into out: (w->n) fp32 or
 * bf16 values, bit-identical to lma_nf4_dequantize (before the bf16 rounding). */
struct lma_nf4_tensor;
cudaError_t lma_cuda_nf4_set_tables(const float *code16, const float *code256);
cudaError_t lma_cuda_nf4_dequant(void *out, const struct lma_nf4_tensor *w, int bf16_out);
#endif
