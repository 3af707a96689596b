/* The fp32 CPU ops behind lma_backend_cpu() (OpenMP + OpenBLAS). Same
 * signatures and semantics as the members of lma_backend (backend.h): act
 * storage is fp32 here (act_bytes 4), so each op reads its `void *` act
 * arguments as float arrays; these
 * declarations only connect the files of cpu/. Ops never fail: where an op
 * wants scratch it falls back to a slower path if malloc fails. */
#ifndef LMA_BACKEND_CPU_OPS_H
#define LMA_BACKEND_CPU_OPS_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "backend/backend.h" /* lma_kv_seq */

/* vectorizable exp(x) for float (Cephes polynomial, ~1-2 ulp); exp(x) = 0 for
 * x < -87.3 (incl. -inf), NaN stays NaN. Used inside `omp simd` loops. */
static inline float lma_cpu_expf(float x) {
    const float lo = -87.3f, hi = 88.0f;
    float xc = x > lo ? x : lo; /* NaN compares false: clamped too, so the int conversion below is defined */
    xc = xc < hi ? xc : hi;
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x/ln2) */
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    union { int32_t i; float f; } sc;
    sc.i = ((int32_t)n + 127) << 23;
    float e = y * sc.f;
    return x != x ? x : x < lo ? 0.0f : e; /* NaN stays NaN */
}

/* Around OpenMP regions whose threads each call a single-threaded sgemm: with
 * a pthreads OpenBLAS, enter sets it to 1 thread and returns the previous
 * count, leave restores it (see cpu_matmul.c). */
int lma_cpu_blas_enter(void);
void lma_cpu_blas_leave(int prev);
/* Test hook: nonzero makes attention_bwd take its row-wise path (the one used
 * when its per-thread scratch cannot be allocated). Not thread-safe. */
extern int lma_cpu_attention_rowwise;

void lma_cpu_embedding_fwd(void *out, const int32_t *ids, const void *wte, int N, int C);
void lma_cpu_embedding_bwd(float *dwte, const void *dout, const int32_t *ids, int N, int C);
void lma_cpu_rmsnorm_fwd(void *out, float *rstd, const void *inp, const void *w, int N, int C, float eps);
void lma_cpu_rmsnorm_bwd(void *dinp, float *dw, const void *dout, const void *inp, const void *w,
                         const float *rstd, int N, int C);
void lma_cpu_matmul_fwd(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC);
void lma_cpu_matmul_fwd_add(void *out, const void *inp, const void *w, const void *res, int N, int C, int OC);
/* the same with bf16 products (cpu_gemm_bf16.c), the matmuls of lma_backend_cpu_bf16 */
void lma_cpu_matmul_fwd_bf16(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC);
void lma_cpu_matmul_fwd_add_bf16(void *out, const void *inp, const void *w, const void *res, int N, int C, int OC);
void lma_cpu_matmul_bwd_bf16(void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                             const void *w, int N, int C, int OC);
/* C (M,N) = beta C + sum_k bf16(A(m,k)) bf16(B(k,n)) in fp32, A(m,k) = a[m*a_sm + k*a_sk],
 * B(k,n) = b[k*b_sk + n*b_sn], C row-major with ldc. 0, or -1 when its packing scratch
 * cannot be allocated (C untouched). lma_cpu_bf16_isa: -1 choose by the CPU (the default),
 * 0 the portable micro-kernel, 1 AVX512_BF16 (test hook; not thread-safe). */
int lma_cpu_gemm_bf16(int M, int N, int K, const float *a, long a_sm, long a_sk, const float *b, long b_sk, long b_sn,
                      float *c, long ldc, float beta);
extern int lma_cpu_bf16_isa;
int lma_cpu_has_avx512bf16(void);
void lma_cpu_matmul_bwd(void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                        const void *w, int N, int C, int OC);
void lma_cpu_rope_fwd(void *out, const void *inp, const int32_t *pos, const float *inv_freq, int N, int NH,
                      int HD);
void lma_cpu_rope_bwd(void *dinp, const void *dout, const int32_t *pos, const float *inv_freq, int N, int NH,
                      int HD);
size_t lma_cpu_attention_saved_floats(int B, int T, int NH, int HD);
void lma_cpu_attention_fwd(void *out, float *saved, const void *q, const void *k, const void *v,
                           const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale);
void lma_cpu_attention_cached(void *out, const void *q, const void *k, const void *v, const lma_kv_seq *seqs,
                              int n_seq, int n, int layer, int NH, int NKV, int HD, float scale);
void lma_cpu_attention_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *saved,
                           const void *q, const void *k, const void *v, const int32_t *seg, int B, int T,
                           int NH, int NKV, int HD, float scale);
void lma_cpu_swiglu_fwd(void *out, const void *gate, const void *up, size_t n);
void lma_cpu_swiglu_bwd(void *dgate, void *dup, const void *dout, const void *gate, const void *up,
                        size_t n);
void lma_cpu_add(void *out, const void *a, const void *b, size_t n);
void lma_cpu_cross_entropy(float *losses, void *dlogits, const void *logits, const int32_t *targets, int N,
                           int V, float dscale);
void lma_cpu_adamw(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1,
                   float b2, float eps, float wd, int t, float grad_scale);
double lma_cpu_sum_sq(const float *x, size_t n);
/* act storage is fp32: both casts are copies (nothing when dst == src) */
void lma_cpu_cast_to_act(void *dst, const float *src, size_t n);
void lma_cpu_act_to_f32(float *dst, const void *src, size_t n);
/* LoRA / QLoRA ops (cpu_nf4.c) */
struct lma_nf4_tensor;
void lma_cpu_scale(void *x, float s, size_t n);
void lma_cpu_dropout(void *out, const void *x, float p, uint64_t seed, size_t n);
void lma_cpu_matmul_nf4_fwd(void *out, const void *inp, const struct lma_nf4_tensor *w, const void *bias, int N,
                            int C, int OC);
/* inference matmul against GGUF blocks kept quantized (cpu_qmat.c); lma_cpu_qgemm_rows: from
 * this many input rows on, dequantized tiles + sgemm instead of the int8 dot kernels */
struct lma_qmat;
void lma_cpu_matmul_q_fwd(void *out, const void *inp, const struct lma_qmat *w, const void *bias, int N);
extern int lma_cpu_qgemm_rows;
void lma_cpu_matmul_nf4_bwd(void *dinp, const void *dout, const struct lma_nf4_tensor *w, int N, int C, int OC);
/* encoder ops (cpu_encoder.c) */
void lma_cpu_layernorm_fwd(void *out, const void *inp, const void *w, const void *b, int N, int C, float eps);
void lma_cpu_gelu_fwd(void *out, const void *inp, size_t n);
void lma_cpu_attention_bidir_fwd(void *out, const void *q, const void *k, const void *v, const int32_t *lens,
                                 int B, int T, int NH, int HD, float scale);
/* Test hook: nonzero makes attention_bidir_fwd take its row-wise path (the one used when
 * its scratch cannot be allocated). Not thread-safe. */
extern int lma_cpu_attention_bidir_rowwise;
#endif
