/* The Llama-family transformer (Llama 2/3, Mistral, Qwen2, Qwen3), written once
 * as calls on the backend op table: forward, hand-written backward (mirroring
 * the forward in reverse), and the AdamW update.
 *
 * Memory (all on the model's backend, each one allocation):
 *   params, grads, adam_m, adam_v  — fp32, carved by the parameter table (params.h):
 *                                    the master weights, their gradients, AdamW moments;
 *   wact                           — the compute copy of params in act storage (element
 *                                    size be->act_bytes, backend.h) that the forward and
 *                                    backward read; the same memory as params when
 *                                    act_bytes == 4 (fp32: no copy, no extra memory);
 *   activations                    — act storage (losses, rstd, attention state fp32),
 *                                    one block sized from (B, T), reallocated only
 *                                    when (B, T) grows.
 * grads/adam_* exist only after lma_model_enable_training().
 * Whoever writes the masters (params, or an adapter's) calls lma_model_sync_weights
 * afterwards; AdamW refreshes the compute copy of what it updates by itself.
 *
 * Ownership: lma_model_* handles are freed by lma_model_free. Failures return a
 * status with the message naming the file/tensor/field. */
#ifndef LMA_MODEL_LLAMA_H
#define LMA_MODEL_LLAMA_H
#include "backend/backend.h"
#include "model/adapter_hooks.h"
#include "model/config.h"
#include "model/params.h"

typedef struct lma_acts lma_acts; /* activation pointers: model_internal.h, llama_acts.c */
struct lma_nf4_tensor;            /* NF4 weights (nf4.h) */

/* The public handle of include/lmadapt.h (typedef struct lma_model lma_model) is this struct. */
typedef struct lma_model lma_model;
struct lma_model {
    lma_config cfg;
    const lma_backend *be;
    char *path;          /* resolved source (HF folder or GGUF file) of lma_model_load_ex, else NULL */
    lma_param_table table;
    float *params, *grads, *adam_m, *adam_v; /* (table.total) each, fp32 */
    void *wact;                              /* (table.total) act: compute copy of params (== params
                                                when be->act_bytes == 4) */
    lma_tensors w, g;                        /* carved views of wact (act) / grads (fp32) */
    float *inv_freq;                         /* (HD/2) RoPE frequencies with scaling */
    int rope_len;                            /* dynamic rope: the length inv_freq was made for */
    /* activations for the current (B, T) */
    int B, T, cap_B, cap_T;
    void *act_mem;                            /* the activation block (bytes) */
    lma_acts *acts;
    int32_t *d_ids, *d_targets, *d_seg, *d_pos; /* (B, T) on the backend */
    int has_targets, has_seg, n_valid;
    float *h_losses;                          /* (B*T) host copy of per-token losses */
    int32_t *head_spans;                      /* (2*(B*T+1)) host, in h_losses' allocation: the row ranges
                                                 [start, end) the loss head computes in the last forward with
                                                 targets, n_head_spans of them: the rows with a target, at most
                                                 head_rows a range, runs of ignored rows skipped */
    int n_head_spans;
    void *full_logits;                        /* (B,T,V) act, of the last forward without targets */
    size_t full_logits_cap;
    int head_chunk_rows;                      /* rows of logits the loss head takes at a time; 0 = auto */
    int head_rows;                            /* the rows it took in the last forward with targets */
    int loss_denom;      /* > 0: the loss head's gradient divides by this count of targets instead of the
                            batch's own (data parallel: the global micro-batch's count, train/dist_step.h) */
    int head_pending;    /* the last forward (lma_model_forward_seq) awaits lma_model_head_backward */
    int grad_ckpt;       /* activation checkpointing: keep only each layer's input (the residual
                            stream) and recompute the layer in the backward; set before a forward */
    size_t act_cap_bytes;                     /* bytes of act_mem */
    int acts_ckpt;                            /* grad_ckpt of act_mem's layout (a change reallocates) */
    /* parameter-efficient fine-tuning (lora.h, nf4.h) */
    lma_lora *lora;      /* adapters on the projections, or NULL (opaque here: lora.h) */
    const lma_adapter_hooks *lora_hooks; /* how the model calls it (adapter_hooks.h) */
    int frozen;          /* 1 while an adapter is attached: the base gets no gradient */
    int lora_train;      /* the current forward trains the adapter (dropout on) */
    struct lma_nf4_tensor *nf4; /* (L * 7) NF4 q,k,v,o,gate,up,down weights (QLoRA base) in host
                                   memory, or NULL; then those tensors are absent from `table` */
    lma_param_table qtable;     /* the quantized tensors (names, shapes; offsets unused) */
    void *infer_buf;     /* the scratch of the inference forward, kept between calls (bytes) */
    size_t infer_cap;
    char infer_busy;     /* infer_buf in use (atomic test-and-set): a concurrent call allocates its own */
    struct {             /* decode steps recorded as backend graphs, by batch (llama_infer.c) */
        int n, calls;    /* sequences of one token each; calls seen (recorded at the second) */
        void *graph;     /* NULL until recorded */
    } graphs[16];
    struct lma_qmat *qm; /* LMA_MODEL_GGUF_QUANT: (L*7 + 2) q,k,v,o,gate,up,down of each layer, then
                            the embedding and an untied lm_head (tied: the embedding serves), in
                            their GGUF blocks (quant/qdot.h; F32 for a type without a kernel), host
                            memory; those tensors are absent from `table`. NULL otherwise. */
};

/* The tensors the optimizer updates (lma_trainable, adapter_hooks.h): the adapter's when
 * one is attached, else the model's. */
lma_trainable lma_model_trainable(const lma_model *m);
/* Installs adapter a, called through hooks, on m (freeing the one it had, if another) and
 * freezes the base while one is attached; (NULL, NULL) detaches. The model owns a. */
void lma_model_set_adapter(lma_model *m, lma_lora *a, const lma_adapter_hooks *hooks);

/* Allocates parameters for cfg (uninitialised). */
lma_status lma_model_create(const lma_config *cfg, const lma_backend *be, lma_model **out);
/* Creation flags of lma_model_create_ex / lma_model_load_ex:
 *   LMA_MODEL_NF4     q,k,v,o,gate,up,down stored as NF4 with double-quantized constants
 *                     (QLoRA base); embeddings, norms, biases and lm_head stay fp32;
 *   LMA_MODEL_FROZEN  a base that will only be read (adapter training, inference): where the
 *                     backend's compute copy is separate (bf16 "cuda") no fp32 copy is ever
 *                     allocated (m->params NULL: a 7B base costs 13 GB instead of 40);
 *                     saving, merging and full training of it then fail with
 *                     LMA_ERR_UNSUPPORTED. An NF4 model is always frozen. */
/*   LMA_MODEL_GGUF_QUANT  inference on a host backend (cpu, ref) from a GGUF file: the
 *                     projections, the embedding and the lm_head stay in their ggml blocks
 *                     where a kernel exists (Q8_0, Q4_0, Q4_1, Q4_K; others are dequantized into
 *                     the same slots), no fp32 copy of them; forward only (training, saving,
 *                     merging and export are refused). lma_model_load_ex ignores it for an HF
 *                     folder or a backend without matmul_q_fwd (cuda: dequantized as before). */
#define LMA_MODEL_NF4 1u
#define LMA_MODEL_FROZEN 2u
#define LMA_MODEL_GGUF_QUANT 4u
lma_status lma_model_create_ex(const lma_config *cfg, const lma_backend *be, unsigned flags, lma_model **out);
/* Loads an HF model folder (config.json + safetensors, single or sharded), a GGUF file or a
 * short name (core/model_path.h) onto be; flags 0 for a plain fp32 model. (The public
 * lma_model_load of lmadapt.h takes a device name instead of a backend.) */
lma_status lma_model_load_ex(const char *dir, const lma_backend *be, unsigned flags, lma_model **out);
/* lma_model_load_ex with the projection weights quantized to NF4 as they are read
 * (one tensor at a time: the fp32 model never exists whole). */
lma_status lma_model_load_nf4(const char *dir, const lma_backend *be, lma_model **out);
/* A copy of src (fp32) with its projections quantized to NF4. */
lma_status lma_model_to_nf4(const lma_model *src, lma_model **out);
/* Reads the tensors of an HF model dir (safetensors, single or sharded) into an
 * existing model of the same config; every tensor must be present with its shape. */
lma_status lma_model_load_weights(lma_model *m, const char *dir);
/* HF-style init: N(0, std) for matrices and embeddings, ones for norms, zeros for biases.
 * Fails (out of memory, a backend failure) with the first worker's message. */
lma_status lma_model_init_random(lma_model *m, uint64_t seed, float std);
/* Refreshes the compute copies (wact, and an attached adapter's) from the fp32 masters:
 * call after writing params (or the adapter's params) directly. The library's own
 * writers (load, load_weights, init_random, to_nf4, LoRA attach/merge, adapter load)
 * call it. Nothing to do when act_bytes == 4 (the copies are the masters). */
void lma_model_sync_weights(lma_model *m);
/* Writes config.json + model.safetensors (sharded above max_shard_bytes; 0 = never).
 * The base weights only (an attached adapter is saved with lma_adapter_save);
 * LMA_ERR_UNSUPPORTED for an NF4 model. */
lma_status lma_model_save(const lma_model *m, const char *dir, int bf16, size_t max_shard_bytes);
void lma_model_free(lma_model *m);
size_t lma_model_num_params(const lma_model *m); /* base model, true count (no padding) */

/* Allocates gradients and AdamW moments (zeroed): for the adapter only when one
 * is attached (the frozen base gets none). */
lma_status lma_model_enable_training(lma_model *m);

/* Forward pass on host arrays ids, targets, seg (B,T).
 *  targets: next-token targets per position (LMA_IGNORE_INDEX = no loss), or NULL
 *           for no loss (then logits (B,T,V) stay readable with lma_model_logits).
 *  seg:     segment id per token, or NULL; tokens of different segments never
 *           attend to each other and RoPE positions restart at each segment.
 *  want_grad: overwrite the logits with dloss/dlogits * grad_scale / n_valid,
 *           ready for lma_model_backward.
 * *mean_loss (may be NULL): mean over non-ignored targets (0 if none). */
lma_status lma_model_forward(lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg,
                             int B, int T, int want_grad, float grad_scale, float *mean_loss);
/* Sequence-level objectives (DPO, train/dpo.h), whose gradient per token depends on the
 * whole sequence's log-probability:
 *   lma_model_forward_seq    the training forward of lma_model_forward (dropout on,
 *                            activations kept) without the loss head's backward; the
 *                            per-token losses -log p (lma_model_losses) come back even when
 *                            not finite (the caller judges them);
 *   lma_model_head_backward  then sets the head's gradient to that of
 *                            sum_b row_scale[b] * sum_t loss[b,t] (row_scale (B), host; the
 *                            head's logits are recomputed chunk by chunk), after which
 *                            lma_model_backward runs as usual;
 *   lma_model_forward_base   a forward with targets (no gradient) of the base model alone,
 *                            the attached adapter switched off (no copy of any weights). */
lma_status lma_model_forward_seq(lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg, int B,
                                 int T);
lma_status lma_model_head_backward(lma_model *m, const float *row_scale);
lma_status lma_model_forward_base(lma_model *m, const int32_t *ids, const int32_t *targets, const int32_t *seg, int B,
                                  int T);
/* Backward of the last forward (which must have had want_grad): ACCUMULATES into grads. */
lma_status lma_model_backward(lma_model *m);
void lma_model_zero_grad(lma_model *m);
/* Per-token losses of the last forward (host, (B*T)); NULL if it had no targets. */
const float *lma_model_losses(const lma_model *m);
/* Copies the logits of the last forward without targets to host as fp32: (B,T,V). (With
 * targets the loss head works in row chunks and keeps no logits.) */
lma_status lma_model_logits(const lma_model *m, float *host_out);

/* ---- inference with a KV cache ----
 * The cache holds k and v (after RoPE) of every layer for up to cap tokens of one
 * sequence; lma_model_forward_cached runs n new tokens (prefill n > 1, decode
 * n = 1) at positions len..len+n-1 and appends them. Forward only; no activations
 * are kept. Reset with kv->len = 0 (or truncate to roll back). */
typedef struct {
    void *k, *v; /* (L, cap, NKV, HD) each, act storage on the model's backend */
    int len, cap;
} lma_kv_cache;

lma_status lma_kv_create(const lma_model *m, int cap, lma_kv_cache **out);
void lma_kv_free(const lma_model *m, lma_kv_cache *kv);
/* logits (host, fp32): (n, V) when all_logits, else (1, V) for the last token. */
lma_status lma_model_forward_cached(lma_model *m, lma_kv_cache *kv, const int32_t *ids, int n, float *logits,
                                    int all_logits);
/* The same forward, stopping before the head: the final hidden states after the final
 * norm (what transformers' AutoModel returns as last_hidden_state), (n, C) host fp32, for
 * every one of the n tokens (decoder embeddings, infer/embed.h). */
lma_status lma_model_hidden_cached(lma_model *m, lma_kv_cache *kv, const int32_t *ids, int n, float *hidden);
/* One decode step of n_seq sequences (continuous batching): ids[i] runs at position
 * kvs[i]->len of its own cache, which grows by one. The projections run once over the
 * n_seq rows, the attention per sequence. logits (host, fp32): (n_seq, V). Matches
 * lma_model_forward_cached of each sequence alone up to float rounding (the matmuls see
 * n_seq rows instead of 1; tests/test_generate.c). The caches must be distinct. */
lma_status lma_model_decode_batch(lma_model *m, lma_kv_cache *const *kvs, const int32_t *ids, int n_seq,
                                  float *logits);

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float clip;          /* max global grad norm; <= 0: no clipping */
    int decay_all;       /* 1: decay every tensor (torch default); 0: skip norms and biases (HF Trainer) */
} lma_adamw_params;
lma_adamw_params lma_adamw_default_params(void);
/* One AdamW step at step t (1-based) on all trainable parameters with clipping by the global
 * gradient norm (returned, before clipping, in *grad_norm): the fp32 masters move and
 * their compute copies follow. LMA_ERR_NUMERIC (and no update) if the norm is not finite.
 * Without clipping (clip <= 0) and with grad_norm NULL the norm is not computed (no pass over
 * the gradients, as torch's step without a clip): a non-finite gradient is then not caught. */
lma_status lma_model_adamw_step(lma_model *m, const lma_adamw_params *p, int t, float *grad_norm);
/* The same update on the elements [lo, hi) of the trainable buffer only (a ZeRO shard), with
 * the global gradient norm given (norm >= 0, already summed over the shards) instead of
 * computed: elementwise the very update of lma_model_adamw_step. LMA_ERR_NUMERIC if the norm
 * is not finite. The compute copy of [lo, hi) follows; the caller gathers the rest. */
lma_status lma_model_adamw_range(lma_model *m, const lma_adamw_params *p, int t, size_t lo, size_t hi, double norm);
/* Extends the context with RoPE scaling (a fine-tuning choice, written to config.json by
 * lma_model_save as transformers reads it): spec "TYPE:FACTOR", TYPE linear | dynamic | yarn |
 * llama3. linear and dynamic keep max_position_embeddings (transformers multiplies it by the
 * factor); yarn and llama3 keep it as original_max_position_embeddings and state
 * max_position_embeddings x FACTOR. LMA_ERR_ARG names what is wrong with spec. */
lma_status lma_model_set_rope_scaling(lma_model *m, const char *spec);
/* ---- the memory plan ----
 * The sizes the allocations above take, computed by the very functions that allocate
 * them, so that a run's peak can be predicted before any weight is read (advise/mem.c,
 * `lmadapt mem`). Bytes throughout. */
typedef struct {
    size_t n_params;     /* true parameter count (no padding), as lma_model_num_params */
    size_t table_elems;  /* elements of the dense table (padded; projections excluded for NF4) */
    size_t masters;      /* the fp32 masters (0: a frozen base where the compute copy is separate) */
    size_t compute_copy; /* wact when it is a separate allocation (act storage not fp32) */
    size_t nf4;          /* the NF4 projections (codes + block constants) */
    size_t max_quant;    /* elements of the largest NF4 projection (a backend's dequant scratch) */
    size_t inv_freq;     /* RoPE frequencies */
    size_t max_tensor;   /* elements of the largest tensor (the loader's fp32 staging) */
} lma_weight_plan;
/* What lma_model_create_ex(cfg, a backend of act_bytes, flags) allocates for weights. */
lma_status lma_model_weight_plan(const lma_config *c, int act_bytes, unsigned flags, lma_weight_plan *out);
/* The activation block of a forward on (B, T) (attn_saved: the backend's
 * attention_saved_floats(B, T, NH, HD); head_chunk: m->head_chunk_rows, 0 = auto; ckpt:
 * activation checkpointing); *head_rows (may be NULL): the loss head's row chunk. */
size_t lma_model_acts_bytes(const lma_config *c, int act_bytes, size_t attn_saved, int B, int T, int head_chunk,
                            int ckpt, size_t *head_rows);
/* The token ids, targets, segment ids and positions staged on the backend for (B, T). */
size_t lma_model_ids_bytes(int B, int T);
/* A KV cache of cap tokens (k and v together). */
size_t lma_kv_bytes(const lma_config *c, int cap, int act_bytes);
/* The scratch of one lma_model_forward_cached call on n tokens with n_out rows of logits. */
size_t lma_model_infer_scratch_bytes(const lma_config *c, int act_bytes, int n, int n_out);
#endif
