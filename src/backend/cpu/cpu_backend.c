/* lma_backend_cpu(): fp32 on the host, OpenMP + OpenBLAS (see cpu_ops.h).
 * lma_backend_cpu_bf16(): the same ops but the matmuls, whose products are bf16
 * (cpu_gemm_bf16.c): activations, gradients and weights stay fp32 in memory. */
#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/host.h"

#define CPU_COMMON_OPS \
    .act_bytes = 4, \
    .alloc = lma_backend_host_alloc, \
    .free = lma_backend_host_free, \
    .upload = lma_backend_host_copy, \
    .download = lma_backend_host_copy, \
    .zero = lma_backend_host_zero, \
    .copy = lma_backend_host_copy, \
    .copy2d = lma_backend_host_copy2d, \
    .cast_to_act = lma_cpu_cast_to_act, \
    .act_to_f32 = lma_cpu_act_to_f32, \
    .embedding_fwd = lma_cpu_embedding_fwd, \
    .embedding_bwd = lma_cpu_embedding_bwd, \
    .rmsnorm_fwd = lma_cpu_rmsnorm_fwd, \
    .rmsnorm_bwd = lma_cpu_rmsnorm_bwd, \
    .rope_fwd = lma_cpu_rope_fwd, \
    .rope_bwd = lma_cpu_rope_bwd, \
    .attention_saved_floats = lma_cpu_attention_saved_floats, \
    .attention_fwd = lma_cpu_attention_fwd, \
    .attention_bwd = lma_cpu_attention_bwd, \
    .attention_cached = lma_cpu_attention_cached, \
    .swiglu_fwd = lma_cpu_swiglu_fwd, \
    .swiglu_bwd = lma_cpu_swiglu_bwd, \
    .add = lma_cpu_add, \
    .cross_entropy = lma_cpu_cross_entropy, \
    .adamw = lma_cpu_adamw, \
    .sum_sq = lma_cpu_sum_sq, \
    .scale = lma_cpu_scale, \
    .dropout = lma_cpu_dropout, \
    .matmul_nf4_fwd = lma_cpu_matmul_nf4_fwd, \
    .matmul_nf4_bwd = lma_cpu_matmul_nf4_bwd, \
    .matmul_q_fwd = lma_cpu_matmul_q_fwd, \
    .layernorm_fwd = lma_cpu_layernorm_fwd, \
    .gelu_fwd = lma_cpu_gelu_fwd, \
    .attention_bidir_fwd = lma_cpu_attention_bidir_fwd

static const lma_backend cpu_backend = {
    .name = "cpu",
    CPU_COMMON_OPS,
    .matmul_fwd = lma_cpu_matmul_fwd,
    .matmul_fwd_add = lma_cpu_matmul_fwd_add,
    .matmul_bwd = lma_cpu_matmul_bwd,
};

static const lma_backend cpu_bf16_backend = {
    .name = "cpu-bf16",
    CPU_COMMON_OPS,
    .matmul_fwd = lma_cpu_matmul_fwd_bf16,
    .matmul_fwd_add = lma_cpu_matmul_fwd_add_bf16,
    .matmul_bwd = lma_cpu_matmul_bwd_bf16,
};

const lma_backend *lma_backend_cpu(void) { return &cpu_backend; }
const lma_backend *lma_backend_cpu_bf16(void) { return &cpu_bf16_backend; }
