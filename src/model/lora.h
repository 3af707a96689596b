/* LoRA adapters on the linear projections of a Llama-family model, with PEFT's
 * semantics (docs/formats.md "PEFT LoRA adapters"):
 *
 *   y = base(x) + s * (dropout(x) A^T) B^T      A (r, in), B (out, r)
 *   s = alpha / r, or alpha / sqrt(r) with rsLoRA
 *   init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_(a=sqrt(5))), B = 0
 *   merge: W = W0 + s * B A
 *
 * Any subset of q, k, v, o, gate, up, down is adapted in every layer. The A/B
 * tensors have their own parameter table (PEFT state-dict names, e.g.
 * base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight), carving one
 * allocation each for parameters, gradients and both AdamW moments, so the
 * optimizer, checkpoints and adapter files walk one list. Once attached, the
 * base model is frozen: it gets no gradient and no optimizer memory.
 *
 * Storage, as for the base model (llama.h): the parameters are fp32 masters
 * (`params`, with their fp32 gradients and moments); the forward reads their
 * compute copy `pact` in act storage (be->act_bytes per element; == params when
 * that is 4), which A and B point into. lma_model_sync_weights refreshes it after
 * a write to params; the scratch below is act storage too.
 *
 * Dropout (training forwards only) draws its mask from a counter-based stream:
 * (seed, forward count, layer, projection), made on the backend by its dropout op
 * (a hash of the stream's seed and the element index: no host mask, no upload) and
 * replayed in the backward, so saving `calls` in a checkpoint makes a resumed run
 * bitwise identical.
 *
 * The model calls the adapter only through its hooks (adapter_hooks.h: per-projection
 * forward and backward, scratch sizing, training state); attach and detach install
 * and remove it with lma_model_set_adapter.
 *
 * Ownership: the model owns its lma_lora (freed by lma_model_free). */
#ifndef LMA_MODEL_LORA_H
#define LMA_MODEL_LORA_H
#include "model/llama.h"

#define LMA_LORA_ATTN 0x0fu /* q, k, v, o */
#define LMA_LORA_MLP 0x70u  /* gate, up, down */
#define LMA_LORA_ALL 0x7fu

typedef struct {
    int r;              /* rank (>= 1) */
    float alpha;        /* scale numerator */
    float dropout;      /* in [0, 1) */
    int rslora;         /* s = alpha / sqrt(r) */
    unsigned targets;   /* bit (1 << lma_proj) per adapted projection */
} lma_lora_params;

/* PEFT's LoraConfig defaults: r 8, alpha 8, dropout 0, no rsLoRA; targets all. */
lma_lora_params lma_lora_default_params(void);
/* "all" | "attn" | "mlp" | a comma list of q,k,v,o,gate,up,down (or q_proj, ...). */
lma_status lma_lora_parse_targets(const char *spec, unsigned *mask);
const char *lma_proj_name(lma_proj p);   /* "q_proj" ... */
const char *lma_proj_module(lma_proj p); /* "self_attn" or "mlp" */
/* in/out features of projection p under config c */
void lma_proj_dims(const lma_config *c, lma_proj p, int *in, int *out);

struct lma_lora {
    lma_lora_params p;
    float scale;                /* s */
    int n_layers;
    lma_param_table table;      /* lora_A / lora_B of each adapted (layer, projection) */
    float *params, *grads, *adam_m, *adam_v; /* (table.total) each, fp32; grads and moments after training is enabled */
    void *pact;                 /* (table.total) act: compute copy of params (== params when act_bytes == 4) */
    void **A, **B;              /* (L * LMA_PROJ_COUNT) each, views of pact: A (r, in), B (out, r);
                                   NULL where not adapted */
    float **dA, **dB;           /* (L * LMA_PROJ_COUNT) each, views of grads (fp32) */
    uint64_t seed;              /* dropout stream */
    uint64_t calls;             /* training forwards run (dropout stream position) */
    /* scratch on the backend (act storage), sized for N rows (grown on demand) */
    int cap_N;
    void *xa;                   /* (L * PROJ, cap_N, r) s * dropout(x) A^T saved for the backward */
    void *xd, *tmp;             /* (cap_N, maxdim) each; xd only with dropout, tmp with dropout
                                 * or where the backend has no matmul_fwd_add */
    void *dxa;                  /* (cap_N, 4r): a group's (N, n r) side by side (q, k, v: n 3), then one (N, r) */
    int maxdim;
};

/* The adapter's parameter table for config c, as lma_lora_attach builds it (its total is
 * the element count of each of the four fp32 allocations); *maxdim: the widest adapted
 * projection dimension. Free with lma_params_free. */
lma_status lma_lora_table(const lma_config *c, const lma_lora_params *p, lma_param_table *t, int *maxdim);
/* Bytes of backend scratch the adapter holds for N rows (what a forward of N tokens
 * allocates; fwd_add: the backend has matmul_fwd_add); it holds no host memory. The
 * planner (advise/mem.c) and the allocator share it. */
size_t lma_lora_scratch_bytes(const lma_config *c, const lma_lora_params *p, int maxdim, int N, int act_bytes,
                              int fwd_add);
/* Attaches fresh adapters (PEFT init from seed) and freezes the base. The model
 * must not already have one; its fp32 or NF4 base is kept as is. */
lma_status lma_lora_attach(lma_model *m, const lma_lora_params *p, uint64_t seed);
/* Frees the adapter and unfreezes the base (after a merge, or to drop it). */
void lma_lora_detach(lma_model *m);
/* W += s B A for every adapted projection (on the fp32 masters, compute copy
 * refreshed), then detaches (fp32 base only). */
lma_status lma_lora_merge(lma_model *m);
/* PEFT's summary line counts: trainable = adapter parameters, all = base + adapter. */
void lma_lora_counts(const lma_model *m, size_t *trainable, size_t *all);

#endif
