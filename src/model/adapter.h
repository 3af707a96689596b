/* PEFT LoRA adapter directories (docs/formats.md "PEFT LoRA adapters"): adapter_config.json +
 * adapter_model.safetensors, the layout peft's save_pretrained writes and
 * PeftModel.from_pretrained reads.
 *
 * Supported configs: peft_type LORA, target_modules a list (or one name, or
 * "all-linear") of q/k/v/o/gate/up/down projections, one r / lora_alpha for all
 * (empty rank_pattern / alpha_pattern), use_rslora, lora_dropout, bias "none",
 * no DoRA, no modules_to_save, no layers_to_transform, fan_in_fan_out false.
 * Anything else is refused with LMA_ERR_UNSUPPORTED naming the key.
 * Tensors: base_model.model.model.layers.N.<self_attn|mlp>.<proj>.lora_{A,B}.weight,
 * A [r, in], B [out, r]; F32, F16 or BF16 on reading, F32 on writing.
 *
 * A model with RoPE scaling (a run with --rope-scaling) also gets LMA_ADAPTER_ROPE_FILE
 * beside them (adapter_config.json has no field for it): lma_adapter_load applies it, so
 * merge, eval/generate --adapter and export see the positions the adapter was trained for.
 *
 * Writes are atomic per file. Failures name the file and key/tensor at fault. */
#ifndef LMA_MODEL_ADAPTER_H
#define LMA_MODEL_ADAPTER_H
#include "model/lora.h"

#define LMA_ADAPTER_ROPE_FILE "rope_scaling.json"

/* Writes m's attached adapter to dir (created). base_name goes to
 * base_model_name_or_path (may be NULL). */
lma_status lma_adapter_save(const lma_model *m, const char *dir, const char *base_name);
/* Reads and validates dir/adapter_config.json. */
lma_status lma_adapter_read_config(const char *dir, lma_lora_params *p);
/* Attaches the adapter in dir to m (which must have none) with its weights, and the rope
 * scaling of its LMA_ADAPTER_ROPE_FILE when there is one (lma_model_set_rope_scaling). */
lma_status lma_adapter_load(lma_model *m, const char *dir);
/* Reads dir/adapter_model.safetensors into m's attached adapter (same shapes). */
lma_status lma_adapter_load_weights(lma_model *m, const char *dir);
#endif
