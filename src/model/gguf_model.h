/* Llama-family models in GGUF files (llama.cpp's names and conventions).
 *   - metadata -> lma_config (architectures llama, mistral, qwen2, qwen3);
 *   - tensor names: llama.cpp's (blk.N.attn_q.weight) <-> HF's (model.layers.N.self_attn.q_proj.weight);
 *   - llama.cpp stores the Q and K rows of llama/mistral models permuted for its interleaved
 *     RoPE (convert_hf_to_gguf.py `permute`); loading undoes it, writing applies it.
 * Qwen2/Qwen3 files use the HF row order (NEOX RoPE) and are not permuted. */
#ifndef LMA_MODEL_GGUF_MODEL_H
#define LMA_MODEL_GGUF_MODEL_H
#include <stddef.h>
#include "format/gguf.h"
#include "model/config.h"
#include "model/llama.h"
#include "model/weight_source.h"

lma_status lma_gguf_config(const lma_gguf *g, lma_config *c);
/* HF name of a GGUF tensor name (into hf, cap bytes); 0 when it has none. */
int lma_gguf_name_to_hf(const char *gguf, size_t len, char *hf, size_t cap);
/* GGUF name of an HF tensor name; 0 when it has none. */
int lma_gguf_name_from_hf(const char *hf, char *gguf, size_t cap);
/* 1 when rows of Q/K are stored permuted for this architecture (llama, mistral). */
int lma_gguf_arch_permutes(lma_arch a);
/* rows (n_head * hd, cols) of q (or k: n_head = kv heads) between HF order and llama.cpp's:
 * to_gguf = 1 applies llama.cpp's permute, 0 undoes it. dst and src must not overlap. */
void lma_gguf_permute_rows(float *dst, const float *src, int n_head, int hd, size_t cols, int to_gguf);
/* The weight source of a GGUF file (weight_source.h). */
lma_status lma_gguf_weight_source(const char *path, const lma_config *cfg, lma_weight_source *src);
/* Writes m (fp32 masters on any backend) to path through w, which may already hold other
 * metadata (tokenizer, general.name): llama.cpp's architecture keys and tensor names, Q/K
 * permuted for llama/mistral, 1-D tensors F32, matrices of `type` (a ggml type that
 * lma_ggml_type_quantizable accepts; a matrix whose rows do not fill its blocks stays F32).
 * Atomic; LMA_ERR_NUMERIC for a non-finite weight; LMA_ERR_UNSUPPORTED for an NF4 or frozen
 * model and llama3, yarn or dynamic rope scaling (only linear is written). */
lma_status lma_model_save_gguf(const lma_model *m, lma_gguf_writer *w, const char *path, uint32_t type);
/* Writes m's attached LoRA adapter as llama.cpp's --lora reads it: general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha (rsLoRA's scale folded in: llama.cpp divides by r),
 * blk.N.<tensor>.weight.lora_a (ne [in, r]) and .lora_b (ne [r, out]) in F32, B's rows of
 * q/k permuted as the base's. */
lma_status lma_adapter_save_gguf(const lma_model *m, lma_gguf_writer *w, const char *path);
#endif
