/* Adapts the token loader (data/loader.h) to the trainer's batch source. The
 * loader is borrowed; validation is offered only when it holds validation docs. */
#ifndef LMA_TRAIN_LOADER_SOURCE_H
#define LMA_TRAIN_LOADER_SOURCE_H
#include "data/loader.h"
#include "train/trainer.h"
lma_batch_source lma_loader_batch_source(lma_loader *L);
#endif
