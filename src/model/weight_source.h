/* Where a model's weights come from, as one interface: an HF folder (safetensors,
 * single or sharded) or a GGUF file (dequantized, llama.cpp's Q/K row order undone).
 * The loader (llama.c) walks the tensors by index and asks each for its HF name,
 * HF shape and fp32 values; it never knows which format it reads.
 *
 * Ownership: lma_weight_source_open fills *src; lma_weight_source_close frees it. */
#ifndef LMA_MODEL_WEIGHT_SOURCE_H
#define LMA_MODEL_WEIGHT_SOURCE_H
#include <stddef.h>
#include <stdint.h>
#include "model/config.h"

typedef struct {
    void *ctx;
    const char *where; /* the file or folder, for messages */
    int n;             /* tensors */
    /* HF name and shape of tensor i; *name NULL: a tensor the model does not use (skipped) */
    lma_status (*info)(void *ctx, int i, const char **name, int *ndim, int64_t shape[2]);
    /* its values as fp32; n equals the element count */
    lma_status (*read_f32)(void *ctx, int i, float *dst, size_t n);
    /* Optional (GGUF; NULL for HF folders): the ggml type of tensor i's stored blocks, and
     * those blocks themselves: `rows` rows of row_bytes each into dst, in HF row order (the
     * Q/K permutation undone as read_f32 does, whole rows being whole blocks). */
    uint32_t (*block_type)(void *ctx, int i);
    lma_status (*read_blocks)(void *ctx, int i, void *dst, size_t row_bytes, int64_t rows);
    void (*close)(void *ctx);
} lma_weight_source;

/* path: an HF model folder or a .gguf file. cfg is the model's config (GGUF needs the head
 * counts to undo the Q/K permutation). */
lma_status lma_weight_source_open(const char *path, const lma_config *cfg, lma_weight_source *src);
void lma_weight_source_close(lma_weight_source *src);

/* The config of an HF folder (config.json) or a GGUF file (its metadata). */
lma_status lma_model_config_load(const char *path, lma_config *cfg);
#endif
