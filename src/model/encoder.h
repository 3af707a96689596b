/* BERT-family encoders (BertModel: absolute position and token-type embeddings,
 * post-LayerNorm with bias, GELU (erf), biased linear layers, bidirectional attention
 * with a padding mask), forward only, written once on the backend op table.
 *
 * Weights come from an HF folder (config.json + model.safetensors, names with or without
 * a "bert." prefix) and live on the backend in the act storage type, one allocation per
 * family: the embedding tables, the matrices of all layers, the vectors (biases and
 * LayerNorm parameters) of all layers. The forward runs every token-wise op on the packed
 * tokens (no compute on padding; the attention alone sees the padded layout) and reuses
 * one backend scratch block and one host block sized for the largest batch seen.
 *
 * Ownership: lma_encoder_load returns a handle freed by lma_encoder_free; the forward
 * writes into the caller's host array. A handle is used by one thread at a time. */
#ifndef LMA_MODEL_ENCODER_H
#define LMA_MODEL_ENCODER_H
#include <stddef.h>
#include <stdint.h>
#include "backend/backend.h"

typedef struct {
    int vocab, C, n_layers, NH, I, max_pos, type_vocab;
    float eps;
} lma_encoder_config;

typedef struct lma_encoder lma_encoder;

/* dir: a BertModel folder (config.json, model.safetensors). be NULL = cpu. Failures name
 * the file and the field or tensor (LMA_ERR_UNSUPPORTED for another hidden_act or
 * position_embedding_type). */
lma_status lma_encoder_load(const char *dir, const lma_backend *be, lma_encoder **out);
void lma_encoder_free(lma_encoder *e);
const lma_encoder_config *lma_encoder_cfg(const lma_encoder *e);

/* Last hidden states of B padded rows: ids (B,T) host, row b valid on [0, lens[b]) with
 * 1 <= lens[b] <= T <= max_pos (token type 0, positions 0..T-1); hidden (B,T,C) host fp32,
 * rows past lens[b] are unspecified. */
lma_status lma_encoder_forward(lma_encoder *e, const int32_t *ids, const int32_t *lens, int B, int T, float *hidden);
#endif
