# A random Llama model folder (bf16 safetensors) of a named shape with the tests/ref/tok/bl
# tokenizer, for the DPO benchmark (bench/dpo/device_check.sh): both lmadapt and TRL load it.
# Usage: python3 make_model.py llama2_7b|tinyllama1b|small OUT_DIR
import os, sys
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SHAPES = {
    "llama2_7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32),
    "tinyllama1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                        num_key_value_heads=4),
    "small": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=1200),  # the CUDA-vs-CPU parity model
}
name, out = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.abspath(__file__))
tok = PreTrainedTokenizerFast.from_pretrained(os.path.join(root, "..", "..", "tests", "ref", "tok", "bl"))
cfg = LlamaConfig(**{"vocab_size": 32000, **SHAPES[name]}, max_position_embeddings=4096, rms_norm_eps=1e-5,
                  bos_token_id=0, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
torch.manual_seed(0)
with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
    m = LlamaForCausalLM(cfg).to(torch.bfloat16 if name != "small" else torch.float32)
m.save_pretrained(out, safe_serialization=True)
tok.save_pretrained(out)
print(f"{name}: {sum(p.numel() for p in m.parameters()) / 1e9:.2f}B parameters -> {out}")
