/* Hugging Face config.json for Llama-family causal LMs (docs/formats.md "config.json").
 * Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM.
 * Anything unsupported (architecture, hidden_act, rope type, sliding window in
 * use, mlp_bias, ...) fails with LMA_ERR_UNSUPPORTED naming the field and value;
 * malformed values fail with LMA_ERR_FORMAT naming the field. */
#ifndef LMA_MODEL_CONFIG_H
#define LMA_MODEL_CONFIG_H
#include "core/status.h"

typedef enum { LMA_ARCH_LLAMA = 0, LMA_ARCH_MISTRAL, LMA_ARCH_QWEN2, LMA_ARCH_QWEN3 } lma_arch;
typedef enum { LMA_ROPE_DEFAULT = 0, LMA_ROPE_LINEAR, LMA_ROPE_LLAMA3 } lma_rope_type;

#define LMA_MAX_EOS 8

typedef struct {
    lma_arch arch;
    int vocab_size, hidden_size, intermediate_size;
    int n_layers, n_heads, n_kv_heads, head_dim; /* head_dim defaults to hidden/heads */
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    lma_rope_type rope_type;
    double rope_factor;                      /* linear, llama3 */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int rope_original_max_pos;               /* llama3 original_max_position_embeddings */
    int tie_word_embeddings;
    int qkv_bias;   /* q/k/v projections have a bias (Qwen2 always; others: attention_bias) */
    int o_bias;     /* o_proj has a bias (attention_bias on Llama/Mistral/Qwen3) */
    int qk_norm;    /* Qwen3: RMSNorm over head_dim on q and k before RoPE */
    int sliding_window; /* 0 = none; a window shorter than the sequence is refused at run time */
    int bos_token_id;   /* -1 if absent */
    int eos_token_ids[LMA_MAX_EOS];
    int n_eos;
    char torch_dtype[16]; /* "float32", "bfloat16", ... or "" */
} lma_config;

lma_status lma_config_parse(const char *json, size_t len, const char *ctx, lma_config *c);
lma_status lma_config_load(const char *path, lma_config *c);
/* Writes config.json that transformers loads (classic rope_theta/rope_scaling form). */
lma_status lma_config_save(const char *path, const lma_config *c);
/* inv_freq (head_dim/2): theta^(-2i/hd) with the rope scaling applied. */
void lma_config_rope_inv_freq(const lma_config *c, float *inv_freq);
const char *lma_arch_name(lma_arch a);        /* "LlamaForCausalLM", ... */
const char *lma_arch_model_type(lma_arch a);  /* "llama", ... */
#endif
