/* The narrow interface between the model (llama.c) and an adapter on its linear
 * projections (LoRA, lora.c): the model calls these hooks around each projection
 * and never sees the adapter's fields; the adapter gets what it needs as arguments
 * and never writes the model's fields (lma_model_set_adapter installs it).
 *
 * Projection p of layer l is the pair (l, p); an adapter may adapt any subset. */
#ifndef LMA_MODEL_ADAPTER_HOOKS_H
#define LMA_MODEL_ADAPTER_HOOKS_H
#include "backend/backend.h"
#include "model/params.h"

typedef enum {
    LMA_PROJ_Q, LMA_PROJ_K, LMA_PROJ_V, LMA_PROJ_O, LMA_PROJ_GATE, LMA_PROJ_UP, LMA_PROJ_DOWN, LMA_PROJ_COUNT
} lma_proj;

typedef struct lma_lora lma_lora; /* the adapter (lora.h); opaque to the model */

/* The tensors the optimizer updates: the adapter's when one is attached, else the model's. */
typedef struct {
    const lma_param_table *table;
    float *params, *grads, *m, *v; /* (table->total) each, fp32; grads/m/v NULL before enable_training */
    void *pact;                    /* (table->total) act: the compute copy of params (may be params) */
} lma_trainable;

typedef struct {
    /* Before a forward of N rows: sizes the scratch; train = the forward trains the
     * adapter (advances its dropout stream). */
    lma_status (*begin)(lma_lora *a, const lma_backend *be, int N, int train);
    /* out[j] (N, oc[j]) = res[j] + the adapter's term for (l, p0 + j), j < n, on inp (N, C):
     * res[j] == out[j] adds the term into out, res[j] NULL writes it alone (the model then
     * adds the base product in its GEMM's epilogue), only for a projection it adapts. The n
     * projections that read one input (q, k, v; gate, up) in one call, so that an adapter
     * may multiply by their down projections as one matrix; train: dropout on. */
    void (*fwd)(lma_lora *a, const lma_backend *be, int l, int p0, int n, int train, void *const *out,
                const void *const *res, const void *inp, int N, int C, const int *oc);
    /* 1 when the adapter's term for projection p of layer l may be written alone first (it
     * adapts that projection): the model then adds the base product in its GEMM */
    int (*term_first)(const lma_lora *a, int l, int p);
    /* Backward of fwd (after a training forward): the adapter's gradients, and
     * dinp (N, C) += the input gradient of its paths (dout[j] (N, oc[j])); fresh: dinp holds
     * nothing yet, the adapter writes it (zeroes it just before its first write; the model
     * adds the base products after: term_first). */
    void (*bwd)(lma_lora *a, const lma_backend *be, int l, int p0, int n, void *dinp, int fresh,
                const void *const *dout, const void *inp, int N, int C, const int *oc);
    lma_status (*enable_training)(lma_lora *a, const lma_backend *be);
    lma_trainable (*trainable)(const lma_lora *a);
    void (*sync)(lma_lora *a, const lma_backend *be); /* refresh the compute copy from the masters */
    void (*free)(lma_lora *a, const lma_backend *be);
} lma_adapter_hooks;
#endif
