# The transformers + PEFT + bitsandbytes QLoRA peak for `lmadapt mem --style hf`'s 7B QLoRA row
# (bench/mem/device_check.sh has no such baseline: hf_train_baseline.py builds models in
# memory, and bitsandbytes quantizes at from_pretrained). A random Llama-2-7B-shaped model is
# saved in bf16, then loaded as NF4 (double quantization, bf16 compute) onto the GPU, given
# LoRA r16 on every projection, gradient checkpointing, batch 1 x 2048, 3 AdamW steps.
# Prints {"peak_gb": torch.cuda.max_memory_allocated from before the load, GiB, ...}.
# Usage (device, bitsandbytes carried as a wheel in the gitignored .bnb/, carry [".bnb"]):
#   here:   pip download bitsandbytes==0.50.2 --no-deps --only-binary=:all: --platform manylinux_2_24_x86_64 -d .bnb
#   device: pip install --no-deps --target /tmp/bnbpkg .bnb/*.whl && PYTHONPATH=/tmp/bnbpkg python3 bench/mem/hf_qlora_peak.py [DIR]
# Measured 2026-12-06 on an H100 80GB HBM3 (bitsandbytes 0.50.2): peak_gb 6.66 (bench/RESULTS.md).
import json, sys, time, torch
from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/llama7b_bf16"
cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, attn_implementation="sdpa")
torch.manual_seed(0)
t0 = time.time()
with torch.device("cpu"):
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(d)
t_save = time.time() - t0
torch.cuda.reset_peak_memory_stats()
q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                       bnb_4bit_compute_dtype=torch.bfloat16)
model = LlamaForCausalLM.from_pretrained(d, quantization_config=q, dtype=torch.bfloat16, device_map={"": 0})
model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                        gradient_checkpointing_kwargs={"use_reentrant": False})
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=[
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
x = torch.randint(0, cfg.vocab_size, (1, 2048), device="cuda")
model.train()
for _ in range(3):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=x, labels=x).loss
    loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
torch.cuda.synchronize()
print(json.dumps(dict(model="llama2_7b", mode="qlora", seq=2048, batch=1, ckpt=True, save_s=round(t_save, 1),
                      peak_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2), loss=round(float(loss), 3))), flush=True)
