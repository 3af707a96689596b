/* Internals the model's files share (src/model/ only): llama.c keeps the memory and the
 * compute, model_io.c reads and writes the weights through these. */
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
#endif
