/* Reference ops in double precision: the test oracle.
 *
 * Each function is the naive, readable version of one op of the backend table
 * (backend.h), with the same argument order and semantics but double storage:
 * forward ops overwrite their outputs, backward ops ACCUMULATE (+=) into every
 * gradient they write, any gradient pointer may be NULL. These functions never
 * allocate and never fail; the caller owns every buffer.
 *
 * lma_backend_ref() (declared in backend.h) wraps them into the float table:
 * inputs are converted to double, the ref op runs, outputs are rounded back to
 * float and gradients are accumulated into the float buffers. The wrapper
 * allocates its double scratch per call; if that allocation fails it records
 * LMA_ERR_NOMEM (lma_last_error) and fills the op's outputs with NaN so the
 * failure cannot go unnoticed.
 *
 * Shape names: N rows, C channels, OC output channels, V vocab, B batch, T time,
 * NH query heads, NKV kv heads, HD head dim. */
#ifndef LMA_BACKEND_REF_OPS_H
#define LMA_BACKEND_REF_OPS_H
#include <stddef.h>
#include <stdint.h>

/* out (N,C) = wte (V,C) [ids (N)] */
void lma_ref_embedding_fwd(double *out, const int32_t *ids, const double *wte, int N, int C);
/* dwte (V,C) [ids[n]] += dout (N,C) [n] */
void lma_ref_embedding_bwd(double *dwte, const double *dout, const int32_t *ids, int N, int C);

/* out (N,C) = w (C) * inp (N,C) * rstd ; rstd (N) = 1/sqrt(mean(inp^2) + eps) */
void lma_ref_rmsnorm_fwd(double *out, double *rstd, const double *inp, const double *w, int N, int C,
                         double eps);
/* dinp (N,C) += ; dw (C) += ; rstd (N) from the forward */
void lma_ref_rmsnorm_bwd(double *dinp, double *dw, const double *dout, const double *inp,
                         const double *w, const double *rstd, int N, int C);

/* out (N,OC) = inp (N,C) @ w (OC,C)^T + bias (OC) ; bias may be NULL */
void lma_ref_matmul_fwd(double *out, const double *inp, const double *w, const double *bias, int N,
                        int C, int OC);
/* dinp (N,C) += dout @ w ; dw (OC,C) += dout^T @ inp ; dbias (OC) += sum_n dout */
void lma_ref_matmul_bwd(double *dinp, double *dw, double *dbias, const double *dout, const double *inp,
                        const double *w, int N, int C, int OC);

/* HF half-split rotary: pairs (x[i], x[i+HD/2]), angle = pos[n] * inv_freq[i].
 * inp/out (N,NH,HD), pos (N), inv_freq (HD/2). out may equal inp. */
void lma_ref_rope_fwd(double *out, const double *inp, const int32_t *pos, const double *inv_freq,
                      int N, int NH, int HD);
/* dinp (N,NH,HD) += rotate^T(dout); dinp must not alias dout */
void lma_ref_rope_bwd(double *dinp, const double *dout, const int32_t *pos, const double *inv_freq,
                      int N, int NH, int HD);

/* Causal GQA attention with segment ids (seg (B,T) or NULL).
 * q out (B,T,NH,HD), k v (B,T,NKV,HD); att (B,NH,T,T) = softmax probabilities
 * (0 where masked), written by the forward, read by the backward. */
void lma_ref_attention_fwd(double *out, double *att, const double *q, const double *k, const double *v,
                           const int32_t *seg, int B, int T, int NH, int NKV, int HD, double scale);
/* Attention of n new tokens (positions past..past+n-1) against one contiguous cache kc, vc
 * (past+n, NKV, HD) that already holds them (backend.h attention_cached, one sequence). */
void lma_ref_attention_cached(double *out, const double *q, const double *kc, const double *vc, int past, int n,
                              int NH, int NKV, int HD, double scale);
void lma_ref_attention_bwd(double *dq, double *dk, double *dv, const double *dout, const double *att,
                           const double *q, const double *k, const double *v, const int32_t *seg,
                           int B, int T, int NH, int NKV, int HD, double scale);

/* out (n) = silu(gate) * up */
void lma_ref_swiglu_fwd(double *out, const double *gate, const double *up, size_t n);
void lma_ref_swiglu_bwd(double *dgate, double *dup, const double *dout, const double *gate,
                        const double *up, size_t n);

/* losses (N); dlogits (N,V) OVERWRITTEN = (softmax - onehot) * dscale (0 on ignored rows);
 * dlogits may be NULL; targets == LMA_IGNORE_INDEX rows get loss 0. */
void lma_ref_cross_entropy(double *losses, double *dlogits, const double *logits,
                           const int32_t *targets, int N, int V, double dscale);

/* One AdamW step in double (formula of backend.h), t >= 1. */
void lma_ref_adamw(double *p, const double *g, double *m, double *v, size_t n, double lr, double b1,
                   double b2, double eps, double wd, int t, double grad_scale);

/* Encoder ops, forward only (backend.h): layernorm with bias (biased variance), the exact
 * GELU, bidirectional attention over padded rows (query t < lens[b] sees keys s < lens[b];
 * padded rows of out are 0). q k v out (B,T,NH,HD). */
void lma_ref_layernorm_fwd(double *out, const double *inp, const double *w, const double *b, int N, int C,
                           double eps);
void lma_ref_gelu_fwd(double *out, const double *inp, size_t n);
void lma_ref_attention_bidir_fwd(double *out, const double *q, const double *k, const double *v,
                                 const int32_t *lens, int B, int T, int NH, int HD, double scale);
#endif
