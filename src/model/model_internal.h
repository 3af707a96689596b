/* Internals the model's files share (src/model/ only): llama.c keeps the memory and the
 * compute (training), llama_infer.c runs the inference forward on it, model_io.c reads and
 * writes the weights through these. */
#ifndef LMA_MODEL_MODEL_INTERNAL_H
#define LMA_MODEL_MODEL_INTERNAL_H
#include "model/llama.h"

/* host fp32 values of tensor p (n elements from element `at` of it) into the model: the
 * masters, or without them (a frozen base) straight into the compute copy */
lma_status lma_model_put_weights(lma_model *m, const lma_param_info *p, size_t at, const float *x, size_t n);
/* a projection of an NF4 model: quantized from host fp32 into its slot */
lma_status lma_model_set_quantized(lma_model *m, const lma_param_info *p, const float *x);
/* LMA_ERR_UNSUPPORTED for a frozen base that keeps no fp32 copy (LMA_MODEL_FROZEN) */
lma_status lma_model_need_masters(const lma_model *m, const char *what);
/* LMA_ERR_UNSUPPORTED naming `what` for a model whose GGUF weights stay quantized
 * (LMA_MODEL_GGUF_QUANT: inference only); LMA_OK otherwise */
lma_status lma_model_no_qm(const lma_model *m, const char *what);

#define LMA_ALIGN64(n) (((size_t)(n) + 63) & ~(size_t)63) /* bytes: every buffer 64-byte aligned */

/* Buffers of one layer's forward (training: the saved activations of layer l;
 * inference: per-call scratch, with xo == x). q_raw..k_rstd are used with qk-norm only.
 * void *: act storage; float *: fp32. */
typedef struct {
    void *x, *xo;                  /* (N, C) in, out */
    void *ln1;                     /* (N, C) */
    float *rstd1;                  /* (N) */
    void *q_raw, *k_raw;           /* (N, QD), (N, KVD) */
    float *q_rstd, *k_rstd;        /* (N*NH), (N*NKV) */
    void *q, *k, *v;               /* (N, QD), (N, KVD), (N, KVD) after norm + rope */
    float *att;                    /* attention state */
    void *atty;                    /* (N, QD) */
    void *mid, *ln2;               /* (N, C), (N, C) */
    float *rstd2;                  /* (N) */
    void *gate, *up, *swi;         /* (N, I) */
    void *qkv;                     /* (N, QD + 2 KVD) scratch of the fused q|k|v product (training), or NULL */
} lma_layer_io;

/* Training: full causal attention over (B, T) with segments. Inference: the N rows are
 * n_seq sequences of N / n_seq new tokens each, appended to their caches (table seqs, backend
 * memory) by the attention, which then attends against the caches. */
typedef struct {
    const int32_t *seg;
    int B, T;
    const lma_kv_seq *seqs; /* inference: (n_seq) caches, or NULL for training */
    int n_seq;
} lma_attn_ctx;

/* void *: act storage; float *: fp32 */
struct lma_acts {
    void *resid;            /* (L+1, N, C) residual stream entering layer l; [L] = last */
    void *resid_mid;        /* (L, N, C) after the attention residual */
    void *ln1, *ln2;        /* (L, N, C) */
    float *rstd1, *rstd2;   /* (L, N) */
    void *q_raw, *k_raw;    /* (L, N, QD), (L, N, KVD): projections before qk-norm (Qwen3 only) */
    float *q_rstd, *k_rstd; /* (L, N*NH), (L, N*NKV) (Qwen3 only) */
    void *q, *k, *v;        /* (L, N, QD), (L, N, KVD), (L, N, KVD): after norm + rope */
    float *att;             /* (L, saved) what attention backward needs */
    void *atty;             /* (L, N, QD) */
    void *gate, *up, *swi;  /* (L, N, I) */
    void *lnf;              /* (N, C) */
    float *rstdf;           /* (N) */
    void *logits;           /* (head_rows, V): one row chunk of the loss head (logits, then dlogits);
                             * shares memory with the layer-backward scratch (dq .. dswi), unused then */
    size_t head_rows;
    float *losses;          /* (N) */
    /* backward scratch */
    void *dresid, *dln;     /* (N, C) */
    void *dq, *dqr, *datty; /* (N, QD) */
    void *dk, *dkr, *dv;    /* (N, KVD) */
    void *dgate, *dup, *dswi; /* (N, I) */
    size_t saved;           /* floats of attention state per layer */
};


/* llama_acts.c: the activation block of m sized for (B, T) (kept when it fits), freed, and the
 * slots of layer l in it for the current (B, T) */
lma_status lma_model_ensure_acts(lma_model *m, int B, int T);
void lma_model_free_acts(lma_model *m);
lma_layer_io lma_model_layer_slots(const lma_model *m, int l);

/* 1/sqrt(HD), times the square of the factor yarn applies to cos and sin (rope.c) */
float lma_model_attn_scale(const lma_config *c);

/* Frees the decode steps recorded as backend graphs (llama_infer.c). */
void lma_model_drop_graphs(lma_model *m);

/* layer l's forward on io, N rows at pos (recompute: what the backward reads, not the output) */
void lma_model_layer_forward(const lma_model *m, int l, const lma_layer_io *io, int N, const int32_t *pos,
                             const lma_attn_ctx *ac, int recompute);
/* dynamic rope: the inverse frequencies recomputed for sequences of L positions (else nothing) */
void lma_model_rope_update(lma_model *m, int L);
/* out (N,C) = the embedding rows of ids (N, on the backend) */
void lma_model_embed_fwd(const lma_model *m, void *out, const int32_t *ids, int N);
/* out (rows,V) = inp (rows,C) @ lm_head^T */
void lma_model_head_fwd(const lma_model *m, void *out, const void *inp, int rows);
/* n act elements at src (backend) -> host fp32, via backend buffer f32 (n floats; NULL: allocated) */
lma_status lma_download_act(const lma_backend *be, float *host, const void *src, size_t n, float *f32);
#endif
