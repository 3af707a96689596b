/* lma_backend_cuda(): the op table on an NVIDIA GPU.
 *
 * Two tables share every kernel (templates on the activation storage type TI):
 *   "cuda"      bf16 activations and bf16 compute copy of the weights (act_bytes 2),
 *               fp32 master weights, fp32 parameter gradients and AdamW moments:
 *               the fast path and the default;
 *   "cuda-fp32" fp32 everywhere (act_bytes 4): exact fp32 GEMMs by default (PyTorch's
 *               default; matches the CPU backend at fp32 tolerances), TF32 tensor
 *               cores with LMA_CUDA_TF32=1 or lma_cuda_set_tf32(1).
 * GEMMs go through cuBLASLt (bf16 or fp32 inputs, fp32 accumulation; weight
 * gradients accumulate into fp32; bias fused as an epilogue), with the plans cached
 * by shape and alignment. Attention is flash attention (flash_*.cu) for head dims
 * 16..128, through cuDNN's fused flash attention (cudnn_sdpa.cu) where it applies (bf16, no
 * segment ids, cuDNN built in); the batched-GEMM path (fp32 table) and the naive kernels stay
 * as the fallback and the oracle (lma_cuda_attention_naive: 1 naive, 2 batched GEMMs, 3 the
 * flash kernel of flash_*.cu without cuDNN).
 * Everything else: one block per row for reductions (rmsnorm, cross-entropy), one
 * thread per element otherwise, fp32 arithmetic on every storage type.
 *
 * Built as a plugin (liblmadapt_cuda.so) that backend.c loads with dlopen only
 * when the NVIDIA driver is present, so CPU-only runs never map cuBLAS.
 *
 * Errors: ops cannot return a status; the first CUDA or cuBLAS error or failed scratch
 * allocation is recorded (ops_common.cuh) and reported by the table's sync (backend.h),
 * which the model calls at the end of each forward, backward, optimizer and generation
 * step; the table's alloc returns NULL as backend.h says.
 *
 * Encoders (BERT): layernorm with bias, exact GELU, bidirectional attention with a padding
 * mask (ops_encoder.cuh; one block per query row, forward only).
 * Files: this one holds the two tables and the plugin entry; the ops live in ops_*.cuh,
 * one family each, included below into this one translation unit. */
extern "C" {
#include "backend/backend.h"
#include "lmadapt.h"
}
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_internal.h"


/* the op families, one file each (each a part of this translation unit) */
#include "backend/cuda/ops_common.cuh"
#include "backend/cuda/ops_memory.cuh"
#include "backend/cuda/ops_zero.cuh"
#include "backend/cuda/ops_norm.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/ops_thin.cuh"
#include "backend/cuda/ops_gemm.cuh"
#include "backend/cuda/ops_rope.cuh"
#include "backend/cuda/ops_attention.cuh"
#include "backend/cuda/ops_elementwise.cuh"
#include "backend/cuda/ops_loss_optim.cuh"
#include "backend/cuda/ops_encoder.cuh"
#include "backend/cuda/ops_graph.cuh"

/* ---- the tables ---------------------------------------------------------------------------- */

static lma_backend g_tables[2]; /* [0] fp32, [1] bf16 */
static char g_open_fail[160];     /* why the plugin could not start, when it was not "no GPU" */

/* LZ: the entry clears the deferred zeros its arguments need first (ops_zero.cuh); the entries
 * without it call lz_enter themselves: zero, the backward ops that may take a zeroed output
 * (matmul_bwd, swiglu_bwd, rope_bwd, attention_bwd, matmul_nf4_bwd through matmul_bwd),
 * rmsnorm_bwd (its weight gradient clears only its own piece) and norm_proj_fwd (pointers in
 * arrays) */
#define LZ(f) lz_flushed<f>::call
template <typename TI> static void fill(lma_backend *b, const char *name) {
    b->name = name;
    b->act_bytes = (int)sizeof(TI);
    b->sync = LZ(cu_sync);
    b->alloc = LZ(cu_alloc); b->free = LZ(cu_free); b->upload = LZ(cu_upload); b->download = LZ(cu_download);
    b->zero = cu_zero; b->copy = LZ(cu_copy); b->copy2d = env_on("LMA_CUDA_COPY2D") ? LZ(cu_copy2d) : NULL; /* 0: LoRA ungrouped (A/B runs) */
    b->cast_to_act = LZ(cu_cast_to_act<TI>); b->act_to_f32 = LZ(cu_act_to_f32<TI>);
    b->embedding_fwd = LZ(cu_embedding_fwd<TI>); b->embedding_bwd = LZ(cu_embedding_bwd<TI>);
    b->rmsnorm_fwd = LZ(cu_rmsnorm_fwd<TI>); b->rmsnorm_bwd = cu_rmsnorm_bwd<TI>;
    b->matmul_fwd = LZ(cu_matmul_fwd<TI>); b->matmul_bwd = cu_matmul_bwd<TI>;
    b->rope_fwd = LZ(cu_rope_fwd<TI>); b->rope_bwd = cu_rope_bwd<TI>;
    b->qkv_rope_fwd = qkv_fuse_on() ? LZ(cu_qkv_rope_fwd<TI>) : NULL;
    b->qkv_rope_bwd = qkv_fuse_on() ? LZ(cu_qkv_rope_bwd<TI>) : NULL;
    b->attention_saved_floats = cu_attention_saved_floats<TI>; /* sizes only */
    b->attention_fwd = LZ(cu_attention_fwd<TI>); b->attention_bwd = cu_attention_bwd<TI>;
    b->attention_cached = LZ(cu_attention_cached<TI>);
    b->swiglu_fwd = LZ(cu_swiglu_fwd<TI>); b->swiglu_bwd = cu_swiglu_bwd<TI>; b->add = LZ(cu_add<TI>);
    b->cross_entropy = LZ(cu_cross_entropy<TI>); b->adamw = LZ(cu_adamw<TI>); b->sum_sq = LZ(cu_sum_sq);
    b->scale = LZ(cu_scale<TI>); b->dropout = LZ(cu_dropout<TI>); b->matmul_fwd_add = LZ(cu_matmul_fwd_add<TI>); /* LoRA */
    b->matmul_nf4_fwd = LZ(cu_matmul_nf4_fwd<TI>); b->matmul_nf4_bwd = cu_matmul_nf4_bwd<TI>; /* QLoRA */
    b->norm_proj_fwd = sizeof(TI) == 2 ? cu_norm_proj_fwd : NULL; /* decode: rmsnorm + GEMVs, bf16 only */
    b->layernorm_fwd = LZ(cu_layernorm_fwd<TI>); b->gelu_fwd = LZ(cu_gelu_fwd<TI>); /* encoders */
    b->attention_bidir_fwd = LZ(cu_attention_bidir_fwd<TI>);
    b->graph_begin = LZ(cu_graph_begin); b->graph_end = LZ(cu_graph_end); b->graph_run = LZ(cu_graph_run);
    b->graph_free = LZ(cu_graph_free);
}

/* The table for `want_bf16` (1: "cuda", bf16 activations; 0: "cuda-fp32"), NULL without a GPU.
 * nf4_code (16), nf4_code8 (256): the NF4 code tables of quant/nf4.h. */
extern "C" __attribute__((visibility("default"))) const lma_backend *
lma_cuda_plugin_open(lma_status (*err)(lma_status, const char *, ...), const int *naive_flag, int want_bf16,
                     const float *nf4_code, const float *nf4_code8) {
    static int tried = 0, ok = 0;
    g_err = err;
    g_naive = naive_flag;
    if (!tried) {
        tried = 1;
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) { cudaGetLastError(); return NULL; }
        if (cublasCreate(&g_blas) != CUBLAS_STATUS_SUCCESS) return NULL;
        if (cublasLtCreate(&g_lt) != CUBLAS_STATUS_SUCCESS) return NULL;
        if (!(g_lt_ws = lma_cuda_malloc(LT_WS_BYTES))) {
            snprintf(g_open_fail, sizeof g_open_fail, "cuda: out of memory for the cuBLASLt workspace (%d MiB)",
                     (int)(LT_WS_BYTES >> 20));
            lma_error(LMA_ERR_NOMEM, "%s", g_open_fail);
            return NULL;
        }
        if (lma_cuda_nf4_set_tables(nf4_code, nf4_code8) != cudaSuccess) { cudaGetLastError(); return NULL; }
        np_grant(); /* the fused decode kernel's shared memory (ops_gemm.cuh) */
        const char *e = getenv("LMA_CUDA_TF32"); /* exact fp32 unless LMA_CUDA_TF32=1 */
        lma_cuda_plugin_set_tf32(e && !strcmp(e, "1"));
        fill<float>(&g_tables[0], "cuda-fp32");
        fill<bf16>(&g_tables[1], "cuda");
        if (lma_cuda_prof_on()) lma_cuda_prof_set_report(prof_gemm_report, prof_gemm_reset);
        ok = 1;
    }
    if (!ok && g_open_fail[0]) lma_error(LMA_ERR_NOMEM, "%s", g_open_fail); /* each caller hears why */
    return ok ? &g_tables[want_bf16 ? 1 : 0] : NULL;
}
