"""transformers + PEFT LoRA training steps on the CPU: the baseline of bench/cpu_bf16/run.sh.

    python3 bench/cpu_bf16/peft_step.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf [--threads 2]
        [--batch 4] [--seq 256] [--steps 8] [--dtype fp32|bf16] [--compile]

The model is the GGUF's, dequantized to fp32 by transformers (gguf_file=). LoRA as
`lmadapt sft --method lora` by default: r 16, alpha 32, dropout 0.05 on q,k,v,o,gate,up,down;
AdamW lr 2e-4. --dtype bf16 runs forward and backward under torch.autocast("cpu",
dtype=torch.bfloat16) (fp32 weights and optimizer; oneDNN's bf16 GEMMs where the CPU has
AVX512_BF16 / AMX); --compile wraps the model in torch.compile. Random tokens, batch x seq a
step, the loss on every token. Prints one line: RESULT ... tok_s X (the median of the timed
steps, after two untimed ones) and the losses.
"""
import argparse, json, os, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--gguf", required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--steps", type=int, default=8)
ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
ap.add_argument("--compile", action="store_true")
a = ap.parse_args()

import torch
torch.set_num_threads(a.threads)
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.gguf)), gguf_file=os.path.basename(a.gguf),
                                             torch_dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                         "down_proj"]))
model.train()
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.1)
fwd = torch.compile(model) if a.compile else model
V = model.config.vocab_size
x = torch.randint(0, V, (a.batch, a.seq))
losses, times = [], []
for i in range(a.steps + 2):
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
        loss = fwd(input_ids=x, labels=x).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    losses.append(round(float(loss), 4))
    if i >= 2:
        times.append(dt)
    print("step %d %.3f s loss %.4f" % (i + 1, dt, float(loss)), file=sys.stderr, flush=True)
tok_s = a.batch * a.seq / statistics.median(times)
print("RESULT transformers+peft dtype %s compile %d threads %d batch %d seq %d step_s %.3f tok_s %.1f torch %s losses %s" %
      (a.dtype, a.compile, a.threads, a.batch, a.seq, statistics.median(times), tok_s, torch.__version__,
       json.dumps(losses)))
