/* Hugging Face config.json for Llama-family causal LMs (docs/formats.md "config.json").
 * Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM.
 * Anything unsupported (architecture, hidden_act, rope type, sliding window in
 * use, mlp_bias, ...) fails with LMA_ERR_UNSUPPORTED naming the field and value;
 * malformed values fail with LMA_ERR_FORMAT naming the field. */
#ifndef LMA_MODEL_CONFIG_H
#define LMA_MODEL_CONFIG_H
#include "core/status.h"

typedef enum { LMA_ARCH_LLAMA = 0, LMA_ARCH_MISTRAL, LMA_ARCH_QWEN2, LMA_ARCH_QWEN3 } lma_arch;
typedef enum { LMA_ROPE_DEFAULT = 0, LMA_ROPE_LINEAR, LMA_ROPE_LLAMA3, LMA_ROPE_DYNAMIC, LMA_ROPE_YARN } lma_rope_type;

#define LMA_MAX_EOS 8

typedef struct {
    lma_arch arch;
    int vocab_size, hidden_size, intermediate_size;
    int n_layers, n_heads, n_kv_heads, head_dim; /* head_dim defaults to hidden/heads */
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    lma_rope_type rope_type;
    double rope_factor;                      /* linear, llama3, dynamic, yarn */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int rope_original_max_pos;               /* llama3, yarn: original_max_position_embeddings */
    double rope_beta_fast, rope_beta_slow;   /* yarn (32, 1) */
    double rope_attention_factor;            /* yarn: cos/sin scale (0.1 ln(factor) + 1 unless given) */
    int rope_truncate;                       /* yarn: floor/ceil the correction range (default 1) */
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
/* config.json's "rope_scaling" value as lma_config_save writes it: a new cJSON object in
 * transformers' classic form, or JSON null without scaling (the caller owns it). */
struct cJSON *lma_config_rope_json(const lma_config *c);
/* transformers' rope_type string of an LMA_ROPE_* value ("default", "linear", "llama3", "dynamic", "yarn") */
const char *lma_rope_type_name(int rope_type);
/* inv_freq (head_dim/2): theta^(-2i/hd) with the rope scaling applied, as transformers'
 * modeling_rope_utils computes it. seq_len matters for "dynamic" only (NTK scaling of the
 * base once seq_len exceeds max_position_embeddings; transformers' dynamic_rope_update). */
void lma_config_rope_inv_freq(const lma_config *c, float *inv_freq);
void lma_config_rope_inv_freq_len(const lma_config *c, int seq_len, float *inv_freq);
/* The positions the model is meant for: max_position_embeddings, times the factor of a
 * linear or dynamic rope scaling (yarn and llama3 configs state the extended window). */
int lma_config_context(const lma_config *c);
/* The factor transformers applies to cos and sin (yarn; 1 otherwise): q.k scales by its square. */
double lma_config_rope_attention_factor(const lma_config *c);
const char *lma_arch_name(lma_arch a);        /* "LlamaForCausalLM", ... */
const char *lma_arch_model_type(lma_arch a);  /* "llama", ... */
#endif
