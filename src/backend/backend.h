/* The backend op table: everything the model computes goes through it.
 *
 * A backend is a struct of function pointers (ggml's {iface}): the model is
 * written once against these ops; cpu/ implements them with OpenMP + OpenBLAS,
 * ref/ with naive double-precision loops (the test oracle), cuda/ later.
 * A NULL member means "not supported" and callers report it; nothing is
 * silently emulated.
 *
 * Conventions
 * - Pointers are backend memory (host memory for cpu/ref).
 * - Two kinds of storage:
 *   act  (`void *` / `const void *`): activations, activation gradients and the
 *        "compute copy" of the weights the forward reads. Element type given by
 *        act_bytes (4 = fp32 on cpu/ref/cuda for now; a backend may store bf16,
 *        act_bytes 2). Callers step through act arrays in bytes (lma_at).
 *   fp32 (`float *`), always: parameter gradients (dw, dbias, dwte and the other
 *        weight gradients), AdamW p/g/m/v (the fp32 master weights and moments),
 *        rstd, losses, attention `saved`, inv_freq, the input of sum_sq.
 *   cast_to_act / act_to_f32 convert between the two; adamw refreshes the compute
 *   copy of what it updates.
 * - Shapes are in comments: N rows (tokens, = B*T), C channels, OC output
 *   channels, V vocab, NH query heads, NKV kv heads, HD head dim.
 * - Backward ops ACCUMULATE (+=) into every gradient they write (inputs and
 *   parameters alike); any gradient pointer may be NULL (not needed / frozen).
 * - Forward ops overwrite their outputs.
 * - Ops return nothing: shapes are validated by the caller (the model). A backend whose
 *   ops can fail (cuda: out of memory, a failed launch or copy) records the first failure
 *   and reports it through sync (ggml's graph compute returns a status the same way); the
 *   model calls lma_backend_sync at the end of every forward, backward, optimizer step and
 *   generation step, so each failure becomes the failing call's status and message.
 */
#ifndef LMA_BACKEND_H
#define LMA_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "core/targets.h" /* LMA_IGNORE_INDEX */
#include "lmadapt.h"

/* dropout's mask bits: element i of stream seed (splitmix64 of seed + (i + 1) * golden
 * ratio, the high 32 bits); host and device code alike */
#ifdef __CUDACC__
#define LMA_HOST_DEVICE __host__ __device__
#else
#define LMA_HOST_DEVICE
#endif
static inline LMA_HOST_DEVICE uint32_t lma_dropout_bits(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}
/* the keep threshold of rate p: keep when bits >= it */
static inline LMA_HOST_DEVICE uint32_t lma_dropout_threshold(float p) {
    return p <= 0 ? 0u : (uint32_t)((double)p * 4294967296.0);
}

struct lma_nf4_tensor; /* quant/nf4.h: NF4 codes + double-quantized block constants */
struct lma_qmat;       /* quant/qdot.h: a weight matrix kept in GGUF blocks (Q8_0, Q4_0, Q4_1, Q4_K) */

/* One sequence's KV cache as the inference attention sees it (model/llama.h lma_kv_cache):
 * k, v (L, cap, NKV, HD) act storage each; len rows already cached. Host and device agree on
 * the layout, so a table of them is uploaded as bytes. */
typedef struct {
    void *k, *v;
    int32_t cap, len;
} lma_kv_seq;

typedef struct lma_backend lma_backend;
struct lma_backend {
    const char *name;
    int act_bytes; /* bytes per element of act storage (4 = fp32, 2 = bf16) */

    /* Waits for the queued work and returns the first failure since the last sync, with its
     * message set in lma_last_error (even if the caller cleared errors meanwhile); NULL for a
     * backend whose ops cannot fail (cpu, ref). */
    lma_status (*sync)(void);

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes);                     /* NULL on failure; 64-byte aligned */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host, size_t bytes);
    void (*download)(void *host, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* backend to backend */
    /* rows rows of width bytes each, the rows pitch bytes apart at dst and at src (as
     * cudaMemcpy2D); backend memory, no overlap. Optional (NULL: the caller copies no columns
     * out of a matrix; LoRA then multiplies projection by projection). */
    void (*copy2d)(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows);
    /* n elements fp32 -> act and act -> fp32, backend memory both; nothing when dst == src */
    void (*cast_to_act)(void *dst, const float *src, size_t n);
    void (*act_to_f32)(float *dst, const void *src, size_t n);

    /* ---- ops ---- */
    /* out (N,C) = wte[ids[n]] ; wte (V,C) */
    void (*embedding_fwd)(void *out, const int32_t *ids, const void *wte, int N, int C);
    /* dwte[ids[n]] += dout[n] */
    void (*embedding_bwd)(float *dwte, const void *dout, const int32_t *ids, int N, int C);

    /* out (N,C) = w (C) * x * rstd, rstd (N) = 1/sqrt(mean(x^2) + eps) */
    void (*rmsnorm_fwd)(void *out, float *rstd, const void *inp, const void *w, int N, int C, float eps);
    void (*rmsnorm_bwd)(void *dinp, float *dw, const void *dout, const void *inp, const void *w,
                        const float *rstd, int N, int C);

    /* out (N,OC) = inp (N,C) @ w (OC,C)^T + bias (OC); bias may be NULL */
    void (*matmul_fwd)(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC);
    /* dinp (N,C) += dout @ w ; dw (OC,C) += dout^T @ inp ; dbias (OC) += sum_n dout */
    void (*matmul_bwd)(void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                       const void *w, int N, int C, int OC);

    /* Rotary embedding, HF half-split pairing (x[i], x[i+HD/2]):
     * out (N,NH,HD) = rotate(inp, angle = pos[n] * inv_freq[i]); inv_freq (HD/2) carries any
     * scaling (linear, llama3). out may equal inp. */
    void (*rope_fwd)(void *out, const void *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD);
    /* dinp += rotate^T(dout); dinp must not alias dout */
    void (*rope_bwd)(void *dinp, const void *dout, const int32_t *pos, const float *inv_freq, int N, int NH, int HD);

    /* The fused q|k|v projection (optional: NULL, the model runs three products). The model
     * multiplies by wq, wk, wv as one (QD + 2 KVD, C) weight where the three lie one after
     * another, into qkv (N, QD + 2 KVD), rows [q | k | v]:
     * qkv_rope_fwd: q (N,NH,HD), k (N,NKV,HD) = rope_fwd of their parts of qkv; v (N,NKV,HD) = its part.
     * qkv_rope_bwd: dqkv (N, QD + 2 KVD) = [rope_bwd(dq) | rope_bwd(dk) | dv], WRITTEN, not added
     * (the model's scratch; the one backward op besides cross_entropy that overwrites). */
    void (*qkv_rope_fwd)(void *q, void *k, void *v, const void *qkv, const int32_t *pos, const float *inv_freq, int N,
                         int NH, int NKV, int HD);
    void (*qkv_rope_bwd)(void *dqkv, const void *dq, const void *dk, const void *dv, const int32_t *pos,
                         const float *inv_freq, int N, int NH, int NKV, int HD);

    /* Causal self-attention with GQA and segment ids.
     * q (B,T,NH,HD), k v (B,T,NKV,HD), out (B,T,NH,HD); query head h reads kv head h/(NH/NKV).
     * Token t attends to s iff s <= t and seg[b,s] == seg[b,t] (seg (B,T) may be NULL: one segment).
     * saved: attention_saved_floats(B,T,NH,HD) floats the backward reads (probabilities or lse).
     * The backward also gets `out`, the attention_fwd output of the same inputs (a backend
     * may ignore it). */
    size_t (*attention_saved_floats)(int B, int T, int NH, int HD);
    void (*attention_fwd)(void *out, float *saved, const void *q, const void *k, const void *v,
                          const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale);
    void (*attention_bwd)(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *saved,
                          const void *q, const void *k, const void *v, const int32_t *seg,
                          int B, int T, int NH, int NKV, int HD, float scale);

    /* Inference attention against KV caches: n_seq sequences of n new tokens each (a prefill:
     * one sequence of n tokens; a batched decode step: n_seq sequences of one token), seqs
     * (n_seq entries, backend memory). For sequence i: writes its new rows k, v [i*n, i*n+n)
     * (NKV, HD) into rows [len, len+n) of layer `layer` of its cache, then its new token t
     * (position len+t) attends to cache rows [0, len+t]. q, out (n_seq*n, NH, HD); k, v
     * (n_seq*n, NKV, HD). Forward only; seqs[i].len is not advanced (the caller does it). */
    void (*attention_cached)(void *out, const void *q, const void *k, const void *v, const lma_kv_seq *seqs,
                             int n_seq, int n, int layer, int NH, int NKV, int HD, float scale);

    /* Recorded graphs (NULL where unsupported: cpu, ref). graph_begin (0: cannot record
     * now) makes the ops this thread issues next be recorded instead of run, until
     * graph_end, which returns them as a replayable graph (NULL, the failure recorded for
     * sync, if recording failed). graph_run queues a graph: its ops run on the buffers they
     * were recorded with, reading what those hold at run time. The model records a decode
     * step once per shape and replays it (model/llama_infer.c). */
    int (*graph_begin)(void);
    void *(*graph_end)(void);
    void (*graph_run)(void *graph);
    void (*graph_free)(void *graph);

    /* out (n) = silu(gate) * up */
    void (*swiglu_fwd)(void *out, const void *gate, const void *up, size_t n);
    void (*swiglu_bwd)(void *dgate, void *dup, const void *dout, const void *gate, const void *up, size_t n);

    /* out (n) = a + b; out may alias a or b */
    void (*add)(void *out, const void *a, const void *b, size_t n);

    /* Fused softmax cross-entropy. logits (N,V), targets (N) with LMA_IGNORE_INDEX rows ignored.
     * losses (N) = -log softmax(logits)[target] (0 on ignored rows).
     * If dlogits != NULL: dlogits (N,V) = (softmax - onehot(target)) * dscale, 0 on ignored rows;
     * dlogits may alias logits (then logits are overwritten). This one op OVERWRITES its gradient. */
    void (*cross_entropy)(float *losses, void *dlogits, const void *logits, const int32_t *targets,
                          int N, int V, float dscale);

    /* AdamW exactly as torch.optim.AdamW (decoupled weight decay), on the fp32 masters:
     * g' = g * grad_scale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
     * p *= (1 - lr wd); p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). t >= 1.
     * p_act (n, act storage; may be NULL) receives the updated p converted to act: the
     * compute copy; nothing extra when p_act == p. */
    void (*adamw)(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1, float b2,
                  float eps, float wd, int t, float grad_scale);
    /* sum of squares, accumulated in double (for the global gradient norm) */
    double (*sum_sq)(const float *x, size_t n);

    /* ---- LoRA / QLoRA (NULL on a backend without them) ---- */
    /* x (n) *= s */
    void (*scale)(void *x, float s, size_t n);
    /* out (N,OC) = res (N,OC) + inp (N,C) @ w (OC,C)^T, res may be out: the adapter's up
     * projection added into the base output in one GEMM, and the o and down projections
     * added to the residual stream (into it at inference, res == out). Optional even here:
     * NULL, the model runs matmul_fwd into a scratch and adds. */
    void (*matmul_fwd_add)(void *out, const void *inp, const void *w, const void *res, int N, int C, int OC);
    /* out (n) = x * mask: element i kept, times 1 / (1 - p), when lma_dropout_bits(seed, i) >=
     * p * 2^32, else 0. The mask is a hash of (seed, i), the same on every backend, made where
     * the data is (no host mask, no upload), so the backward replays it from the seed alone.
     * out may alias x; 0 <= p < 1. */
    void (*dropout)(void *out, const void *x, float p, uint64_t seed, size_t n);
    /* out (N,OC) = inp (N,C) @ dequant(w)^T + bias, w an NF4 tensor of OC*C elements
     * (row-major (OC,C)); dequantized a tile of rows at a time, never whole. */
    void (*matmul_nf4_fwd)(void *out, const void *inp, const struct lma_nf4_tensor *w, const void *bias, int N,
                           int C, int OC);
    /* dinp (N,C) += dout (N,OC) @ dequant(w); the frozen base gets no gradient */
    void (*matmul_nf4_bwd)(void *dinp, const void *dout, const struct lma_nf4_tensor *w, int N, int C, int OC);
    /* Inference only (NULL on a backend without it; host memory): out (N,OC) = inp (N,C) @ W^T + bias,
     * W an lma_qmat (OC = w->rows, C = w->cols) in GGUF blocks. cpu: int8 dot kernels on
     * activations quantized per 32 (error bound: quant/qdot.h); ref: fp32 activations
     * against the dequantized rows in double (the oracle). */
    void (*matmul_q_fwd)(void *out, const void *inp, const struct lma_qmat *w, const void *bias, int N);

    /* ---- fused inference ops (NULL on a backend without them: the model runs the unfused ops) ---- */
    /* RMSNorm, then n_w (1..3) products of its output, in one call: y (N,C) = rmsnorm_fwd(x (N,C),
     * g (C), eps) (rounded as rmsnorm_fwd stores its output; no rstd out); glu 0: out[j] (N,oc[j]) =
     * y @ w[j] (oc[j],C)^T for each j (q, k and v in one launch); glu 1 (n_w 2, oc[0] == oc[1]):
     * out[0] (N,oc[0]) = silu(y @ w[0]^T) * (y @ w[1]^T), each product rounded to act storage first
     * (= matmul_fwd, matmul_fwd, swiglu_fwd). pos (N, backend memory) non-NULL (glu 0, every
     * oc[j] whole heads of HD): out[0] and out[1] (q, k) then rotated as rope_fwd(pos, inv_freq
     * (HD/2), HD) does. No bias; out must not alias x. Returns 0 when it ran, nonzero (nothing
     * done) when the backend does not take the call (cuda: bf16 table only, N <= 3, C a multiple
     * of 8 up to 16384, 16-byte aligned x, g, w; LMA_CUDA_FUSE=0 or LMA_CUDA_GEMV=0): then the
     * caller runs rmsnorm_fwd, matmul_fwd (and swiglu_fwd, rope_fwd). */
    int (*norm_proj_fwd)(void *const *out, const void *x, const void *g, float eps, const void *const *w,
                         const int *oc, int n_w, int glu, int N, int C, const int32_t *pos, const float *inv_freq,
                         int HD);

    /* ---- encoders (BERT family), forward only (NULL on a backend without them) ---- */
    /* out (N,C) = (inp - mean) * rstd * w (C) + b (C), mean and the biased variance over C,
     * rstd = 1/sqrt(var + eps). out may equal inp. */
    void (*layernorm_fwd)(void *out, const void *inp, const void *w, const void *b, int N, int C, float eps);
    /* out (n) = x * (1 + erf(x / sqrt(2))) / 2 (the exact GELU, torch's default); out may equal inp */
    void (*gelu_fwd)(void *out, const void *inp, size_t n);
    /* Bidirectional attention over padded rows: q k v out (B,T,NH,HD); lens (B, backend
     * memory) the valid length of each row, 1 <= lens[b] <= T. Query t < lens[b] attends to
     * keys s < lens[b]; the padded rows t >= lens[b] of out are set to 0. */
    void (*attention_bidir_fwd)(void *out, const void *q, const void *k, const void *v, const int32_t *lens,
                                int B, int T, int NH, int HD, float scale);
};

/* Address of element i of an array of esz-byte elements (act storage: esz = act_bytes). */
static inline void *lma_at(const void *p, size_t i, size_t esz) { return (char *)p + i * esz; }
static inline lma_status lma_backend_sync(const lma_backend *be) { return be->sync ? be->sync() : LMA_OK; }

const lma_backend *lma_backend_cpu(void);
/* "cpu-bf16": lma_backend_cpu with bf16 products in the matmuls (fp32 sums, fp32 storage):
 * AVX512_BF16's dot product where the CPU has it, else portable C (slow: the exactness of
 * the choice, not speed). */
const lma_backend *lma_backend_cpu_bf16(void);
/* fp32 interface (act_bytes 4), double-precision arithmetic inside: the oracle for tests. */
const lma_backend *lma_backend_ref(void);
/* An NVIDIA GPU (cuda/): "cuda" stores activations and the compute copy of the weights
 * in bf16 (act_bytes 2; fp32 masters, gradients, moments); "cuda-fp32" in fp32. NULL when
 * not built (no nvcc) or no GPU is present. */
const lma_backend *lma_backend_cuda(void);
const lma_backend *lma_backend_cuda_fp32(void);
/* The cuda backends' test hook and counters: backend/cuda/cuda_host.h. */
/* The fastest available: cuda when a GPU is present, else cpu. */
const lma_backend *lma_backend_default(void);
/* --device NAME: "cpu", "cpu-bf16", "cuda", "cuda-fp32", "ref", or NULL for lma_backend_default(). On failure
 * LMA_ERR_UNSUPPORTED with a message that says why (unknown name, no GPU). */
lma_status lma_backend_select(const char *device, const lma_backend **out);
/* By name ("cpu", "ref", "cuda"); NULL if unknown, not built or no device. */
const lma_backend *lma_backend_by_name(const char *name);
/* 1 for the backends whose memory is host memory (cpu, cpu-bf16, ref) */
int lma_backend_on_host(const lma_backend *be);
/* The peak memory measured so far (bytes): on a cuda backend the plugin's allocator
 * high-water mark (lma_cuda_memory), else the process's peak RSS (getrusage). The
 * counterpart of the prediction of advise/mem.h. */
double lma_backend_peak_bytes(const lma_backend *be);
#endif
