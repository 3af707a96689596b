# The transformers + PEFT training baseline behind the GPU comparison numbers in bench/RESULTS.md (taken over unchanged from the project's first performance goal).
# Usage: python3 hf_train_baseline.py NAME full|lora SEQ BATCH STEPS [ckpt] [compile]   (NAME: llama124m, tinyllama1b, llama2_7b)
import sys, time, json, torch
from transformers import LlamaConfig, LlamaForCausalLM
CFGS = {
  "llama124m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12, vocab_size=32000),
  "tinyllama1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4, vocab_size=32000),
  "llama2_7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
}
name, mode, seq, bs, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ckpt = "ckpt" in sys.argv[6:]
compile_ = "compile" in sys.argv[6:]
torch.manual_seed(0)
cfg = LlamaConfig(**CFGS[name], max_position_embeddings=4096, attn_implementation="sdpa", torch_dtype=torch.bfloat16)
dev = "cuda"
torch.cuda.reset_peak_memory_stats()
if mode == "full":
    model = LlamaForCausalLM(cfg).to(dev)           # fp32 master weights, bf16 autocast
    params = [p for p in model.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    ac = True
else:
    model = LlamaForCausalLM(cfg).to(dev, dtype=torch.bfloat16)
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
        target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]))
    for n,p in model.named_parameters():
        if p.requires_grad: p.data = p.data.float()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    ac = True
if ckpt:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if mode != "full": model.enable_input_require_grads()
model.train()
if compile_: model = torch.compile(model)
nparam = sum(p.numel() for p in model.parameters())
ntrain = sum(p.numel() for p in params)
x = torch.randint(0, cfg.vocab_size, (bs, seq), device=dev)
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=ac):
        out = model(input_ids=x, labels=x)
    out.loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
    return out.loss
for _ in range(3): step()
torch.cuda.synchronize()
t0 = time.time()
for _ in range(steps): l = step()
torch.cuda.synchronize()
dt = (time.time() - t0) / steps
tok = bs * seq / dt
# model flops per token: 6N for full (2N fwd + 4N bwd), LoRA: 2N fwd + 2N (input grads) = 4N (+ attention)
nonemb = nparam - cfg.vocab_size*cfg.hidden_size  # embedding lookup has no flops; lm_head counted
attn = 12 * cfg.num_hidden_layers * cfg.hidden_size * seq  # approx attention flops/token for fwd+bwd (6*2*L*d*T/...)
fpt = (6 if mode == "full" else 4) * nonemb + attn
mfu = tok * fpt / 989e12
print(json.dumps(dict(model=name, mode=mode, compiled=compile_, seq=seq, batch=bs, ckpt=ckpt, params=nparam, trainable=ntrain,
  step_ms=round(dt*1000,1), tok_s=round(tok), mfu_vs_989T=round(mfu,3), peak_gb=round(torch.cuda.max_memory_allocated()/2**30,2),
  loss=round(float(l),3))), flush=True)
