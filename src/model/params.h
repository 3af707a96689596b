/* The parameter table: every tensor of a Llama-family model, with its HF name,
 * shape and offset into ONE flat allocation (llm.c's scheme). Parameters,
 * gradients and both AdamW moments are four fp32 allocations of the same size,
 * carved by the same table, so the optimizer, checkpoints and the loader walk
 * one list; the compute copy of the parameters (act storage, llama.h) has the
 * same offsets in elements of its own size. */
#ifndef LMA_MODEL_PARAMS_H
#define LMA_MODEL_PARAMS_H
#include <stddef.h>
#include <stdint.h>
#include "model/config.h"

typedef enum {
    LMA_P_EMBED, LMA_P_ATTN_NORM, LMA_P_WQ, LMA_P_BQ, LMA_P_WK, LMA_P_BK, LMA_P_WV, LMA_P_BV,
    LMA_P_WO, LMA_P_BO, LMA_P_QNORM, LMA_P_KNORM, LMA_P_MLP_NORM, LMA_P_WGATE, LMA_P_WUP,
    LMA_P_WDOWN, LMA_P_FINAL_NORM, LMA_P_LM_HEAD, LMA_P_KIND_COUNT
} lma_param_kind;

typedef struct {
    char name[96];       /* HF state-dict name */
    lma_param_kind kind;
    int layer;           /* -1 for embed / final norm / lm_head */
    int ndim;
    int64_t shape[2];
    size_t offset, numel; /* in elements */
    int is_norm_or_bias;  /* 1-D tensors: HF Trainer excludes them from weight decay */
} lma_param_info;

/* Per-layer pointers into a carved buffer: the weights' compute copy (act storage,
 * element size be->act_bytes) or the fp32 gradients, hence `void *`. Absent tensors are NULL. */
typedef struct {
    void *attn_norm;            /* (C) */
    void *wq, *bq;              /* (NH*HD, C), (NH*HD) */
    void *wk, *bk, *wv, *bv;    /* (NKV*HD, C), (NKV*HD) */
    void *wo, *bo;              /* (C, NH*HD), (C) */
    void *q_norm, *k_norm;      /* (HD) Qwen3 */
    void *mlp_norm;             /* (C) */
    void *wgate, *wup;          /* (I, C) */
    void *wdown;                /* (C, I) */
} lma_layer_tensors;

typedef struct {
    void *embed;       /* (V, C) */
    void *final_norm;  /* (C) */
    void *lm_head;     /* (V, C); == embed when tied */
    lma_layer_tensors *layers; /* (L) */
} lma_tensors;

typedef struct {
    lma_param_info *info;
    int count;
    size_t total; /* elements */
} lma_param_table;

lma_status lma_params_build(const lma_config *c, lma_param_table *t);
void lma_params_free(lma_param_table *t);
/* Moves the q,k,v,o,gate,up,down weights of t into q (allocated here) and recomputes the
 * offsets and total of the rest (an NF4 base keeps those out of the dense table). */
lma_status lma_params_split_quantized(lma_param_table *t, lma_param_table *q);
/* The same; with_embed also moves the embedding and an untied lm_head (GGUF blocks kept
 * quantized for inference, llama.h LMA_MODEL_GGUF_QUANT). */
lma_status lma_params_split(lma_param_table *t, lma_param_table *q, int with_embed);
const lma_param_info *lma_params_find(const lma_param_table *t, const char *name);
/* Points every member of out at element `offset` of base, whose elements are esz bytes
 * (layers array malloc'd; free with lma_tensors_free). */
lma_status lma_tensors_carve(const lma_config *c, const lma_param_table *t, void *base, size_t esz, lma_tensors *out);
void lma_tensors_free(lma_tensors *t);
/* Weights read from a file must be finite: a NaN or Inf (corrupt weights) would give
 * empty text, chance-level scores and skipped steps with exit 0. LMA_ERR_NUMERIC names
 * the file, the tensor and the first bad index. */
lma_status lma_params_check_finite(const float *x, size_t n, const char *file, const char *name);
#endif
