/* Adapts the data feeders to the trainer's batch source: the token loader
 * (data/loader.h; validation offered only when it holds validation docs) and the SFT
 * batchers (data/sft.h; validation when a validation batcher is given). Both are borrowed. */
#ifndef LMA_TRAIN_LOADER_SOURCE_H
#define LMA_TRAIN_LOADER_SOURCE_H
#include "data/loader.h"
#include "data/sft.h"
#include "train/trainer.h"
lma_batch_source lma_loader_batch_source(lma_loader *L);
/* The pair lives as long as the source: the caller's storage. val may be NULL. */
typedef struct { lma_sft_batcher *train, *val; } lma_sft_pair;
lma_batch_source lma_sft_batch_source(lma_sft_pair *pair);
#endif
