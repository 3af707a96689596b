/* Model size presets in Llama proportions (MLP hidden ~ 8/3 dim rounded to a
 * multiple of 32, head dim 48-64, untied head), for pretraining from scratch:
 *   tiny dim 128,  4 layers,  4 heads            (demos and tests)
 *   15m  dim 288,  6 layers,  6 heads            (llama2.c stories15M)
 *   60m  dim 512,  8 layers,  8 heads
 *   125m dim 768,  12 layers, 12 heads
 *   350m dim 1024, 24 layers, 16 heads
 *   1b   dim 2048, 22 layers, 32 heads, 4 kv heads (TinyLlama-1.1B)
 *   7b   dim 4096, 32 layers, 32 heads, MLP 11008 (Llama-2-7B)
 * The names count the non-embedding parameters roughly; the vocabulary adds V*dim*2. */
#ifndef LMA_MODEL_PRESETS_H
#define LMA_MODEL_PRESETS_H
#include "model/config.h"
lma_status lma_config_preset(const char *name, int vocab_size, int max_seq, lma_config *c);
const char *lma_config_preset_names(void); /* "tiny|15m|60m|125m|350m|1b|7b" */
#endif
