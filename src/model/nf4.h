/* NF4 weights on a backend: the codec (block format, quantize, dequantize, the
 * lma_nf4_tensor type) is quant/nf4.h; this moves a quantized tensor into a
 * backend's memory for the model (QLoRA bases on a GPU). */
#ifndef LMA_MODEL_NF4_H
#define LMA_MODEL_NF4_H
#include "backend/backend.h"
#include "quant/nf4.h"

/* Moves the arrays of a host tensor into be's memory (a GPU backend's NF4 matmuls read
 * them there; lma_nf4_free then releases them with be->free); LMA_ERR_NOMEM leaves q on
 * the host. lma_nf4_absmax/dequantize need host arrays. */
lma_status lma_nf4_to_backend(lma_nf4_tensor *q, const lma_backend *be);
#endif
