/* The backend op table: everything the model computes goes through it.
 *
 * A backend is a struct of function pointers (ggml's {iface}): the model is
 * written once against these ops; cpu/ implements them with OpenMP + OpenBLAS,
 * ref/ with naive double-precision loops (the test oracle), cuda/ later.
 * A NULL member means "not supported" and callers report it; nothing is
 * silently emulated.
 *
 * Conventions
 * - Pointers are backend memory (host memory for cpu/ref); fp32 storage.
 * - Shapes are in comments: N rows (tokens, = B*T), C channels, OC output
 *   channels, V vocab, NH query heads, NKV kv heads, HD head dim.
 * - Backward ops ACCUMULATE (+=) into every gradient they write (inputs and
 *   parameters alike); any gradient pointer may be NULL (not needed / frozen).
 * - Forward ops overwrite their outputs.
 * - Ops never fail: shapes are validated by the caller (the model).
 */
#ifndef LMA_BACKEND_H
#define LMA_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "lmadapt.h"

#define LMA_IGNORE_INDEX (-100)

struct lma_nf4_tensor; /* model/nf4.h: NF4 codes + double-quantized block constants */

typedef struct lma_backend lma_backend;
struct lma_backend {
    const char *name;

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes);                     /* NULL on failure; 64-byte aligned */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host, size_t bytes);
    void (*download)(void *host, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* backend to backend */

    /* ---- ops ---- */
    /* out (N,C) = wte[ids[n]] ; wte (V,C) */
    void (*embedding_fwd)(float *out, const int32_t *ids, const float *wte, int N, int C);
    /* dwte[ids[n]] += dout[n] */
    void (*embedding_bwd)(float *dwte, const float *dout, const int32_t *ids, int N, int C);

    /* out (N,C) = w (C) * x * rstd, rstd (N) = 1/sqrt(mean(x^2) + eps) */
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
    void (*rmsnorm_bwd)(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, int N, int C);

    /* out (N,OC) = inp (N,C) @ w (OC,C)^T + bias (OC); bias may be NULL */
    void (*matmul_fwd)(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
    /* dinp (N,C) += dout @ w ; dw (OC,C) += dout^T @ inp ; dbias (OC) += sum_n dout */
    void (*matmul_bwd)(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC);

    /* Rotary embedding, HF half-split pairing (x[i], x[i+HD/2]):
     * out (N,NH,HD) = rotate(inp, angle = pos[n] * inv_freq[i]); inv_freq (HD/2) carries any
     * scaling (linear, llama3). out may equal inp. */
    void (*rope_fwd)(float *out, const float *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD);
    /* dinp += rotate^T(dout); dinp must not alias dout */
    void (*rope_bwd)(float *dinp, const float *dout, const int32_t *pos, const float *inv_freq, int N, int NH, int HD);

    /* Causal self-attention with GQA and segment ids.
     * q (B,T,NH,HD), k v (B,T,NKV,HD), out (B,T,NH,HD); query head h reads kv head h/(NH/NKV).
     * Token t attends to s iff s <= t and seg[b,s] == seg[b,t] (seg (B,T) may be NULL: one segment).
     * saved: attention_saved_floats(B,T,NH) floats the backward reads (probabilities or lse). */
    size_t (*attention_saved_floats)(int B, int T, int NH);
    void (*attention_fwd)(float *out, float *saved, const float *q, const float *k, const float *v,
                          const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale);
    void (*attention_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *saved,
                          const float *q, const float *k, const float *v, const int32_t *seg,
                          int B, int T, int NH, int NKV, int HD, float scale);

    /* Inference attention of n new tokens of one sequence against its KV cache.
     * q (n,NH,HD); kc, vc (>= past+n, NKV, HD) hold the cached tokens [0, past) and the
     * new ones [past, past+n); new token i (position past+i) attends to cache rows
     * [0, past+i]. out (n,NH,HD). Forward only. */
    void (*attention_cached)(float *out, const float *q, const float *kc, const float *vc, int past, int n,
                             int NH, int NKV, int HD, float scale);

    /* out (n) = silu(gate) * up */
    void (*swiglu_fwd)(float *out, const float *gate, const float *up, size_t n);
    void (*swiglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);

    /* out (n) = a + b; out may alias a or b */
    void (*add)(float *out, const float *a, const float *b, size_t n);

    /* Fused softmax cross-entropy. logits (N,V), targets (N) with LMA_IGNORE_INDEX rows ignored.
     * losses (N) = -log softmax(logits)[target] (0 on ignored rows).
     * If dlogits != NULL: dlogits (N,V) = (softmax - onehot(target)) * dscale, 0 on ignored rows;
     * dlogits may alias logits (then logits are overwritten). This one op OVERWRITES its gradient. */
    void (*cross_entropy)(float *losses, float *dlogits, const float *logits, const int32_t *targets,
                          int N, int V, float dscale);

    /* AdamW exactly as torch.optim.AdamW (decoupled weight decay):
     * g' = g * grad_scale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
     * p *= (1 - lr wd); p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). t >= 1. */
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
                  float eps, float wd, int t, float grad_scale);
    /* sum of squares, accumulated in double (for the global gradient norm) */
    double (*sum_sq)(const float *x, size_t n);

    /* ---- LoRA / QLoRA (NULL on a backend without them) ---- */
    /* x (n) *= s */
    void (*scale)(float *x, float s, size_t n);
    /* out (n) = a * b; out may alias a or b */
    void (*mul)(float *out, const float *a, const float *b, size_t n);
    /* out (N,OC) = inp (N,C) @ dequant(w)^T + bias, w an NF4 tensor of OC*C elements
     * (row-major (OC,C)); dequantized a tile of rows at a time, never whole. */
    void (*matmul_nf4_fwd)(float *out, const float *inp, const struct lma_nf4_tensor *w, const float *bias, int N,
                           int C, int OC);
    /* dinp (N,C) += dout (N,OC) @ dequant(w); the frozen base gets no gradient */
    void (*matmul_nf4_bwd)(float *dinp, const float *dout, const struct lma_nf4_tensor *w, int N, int C, int OC);
};

const lma_backend *lma_backend_cpu(void);
/* Float interface, double-precision arithmetic inside: the oracle for tests. */
const lma_backend *lma_backend_ref(void);
/* fp32 on an NVIDIA GPU (cuda/); NULL when not built (no nvcc) or no GPU is present. */
const lma_backend *lma_backend_cuda(void);
/* Test hook of the cuda backend: 1 selects its naive attention kernels (the oracle)
 * instead of the batched-GEMM path. */
extern int lma_cuda_attention_naive;
/* cuda backend GEMM precision: 1 = TF32 tensor cores (the default), 0 = exact fp32. */
void lma_cuda_set_tf32(int on);
/* The fastest available: cuda when a GPU is present, else cpu. */
const lma_backend *lma_backend_default(void);
/* --device NAME: "cpu", "cuda", "ref", or NULL for lma_backend_default(). On failure
 * LMA_ERR_UNSUPPORTED with a message that says why (unknown name, no GPU). */
lma_status lma_backend_select(const char *device, const lma_backend **out);
/* By name ("cpu", "ref", "cuda"); NULL if unknown, not built or no device. */
const lma_backend *lma_backend_by_name(const char *name);
#endif
