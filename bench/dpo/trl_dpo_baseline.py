# TRL's DPOTrainer (+ PEFT for LoRA) on the same model folder and preference file as
# `lmadapt dpo` in bench/dpo/device_check.sh: tokens/s of the steady steps and peak GPU memory.
# Usage: python3 trl_dpo_baseline.py MODEL_DIR DATA.jsonl lora|full STEPS SEQ [ckpt] [precompute]
#   ckpt: gradient checkpointing; precompute: TRL's precompute_ref_log_probs (reference
#   log-probs once before training, as lmadapt does; without it TRL runs the reference forward
#   every step, adapter disabled for LoRA, a second model for full).
# Prints one JSON line. TRL comes from the wheels carried in .whl/ (fetch_wheels.sh).
import json, sys, time
import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerFast, TrainerCallback
from trl import DPOConfig, DPOTrainer
import trl

model_dir, data, mode, steps, seq = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ckpt, precompute = "ckpt" in sys.argv[6:], "precompute" in sys.argv[6:]
cuda = torch.cuda.is_available()  # CPU only to check the script itself
sync = torch.cuda.synchronize if cuda else (lambda: None)
tok = PreTrainedTokenizerFast.from_pretrained(model_dir)
if tok.pad_token is None:
    tok.pad_token = tok.eos_token
ds = Dataset.from_list([json.loads(l) for l in open(data)])
lora = mode == "lora"
args = DPOConfig(output_dir="/tmp/trl_dpo_out", per_device_train_batch_size=1, gradient_accumulation_steps=1,
                 max_steps=steps, learning_rate=5e-6 if lora else 1e-6, lr_scheduler_type="constant", warmup_steps=0,
                 beta=0.1, max_length=seq, bf16=cuda, use_cpu=not cuda, gradient_checkpointing=ckpt, logging_steps=1,
                 save_strategy="no", report_to=[], precompute_ref_log_probs=precompute, dataloader_num_workers=0,
                 model_init_kwargs={"dtype": torch.bfloat16 if lora else torch.float32, "attn_implementation": "sdpa"})
peft_config = None
if lora:
    from peft import LoraConfig
    peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


class Timer(TrainerCallback):
    def __init__(self):
        self.t = []

    def on_step_begin(self, a, s, c, **kw):
        sync()
        self.t0 = time.time()

    def on_step_end(self, a, s, c, **kw):
        sync()
        self.t.append(time.time() - self.t0)


timer = Timer()
if cuda:
    torch.cuda.reset_peak_memory_stats()
t_setup = time.time()
trainer = DPOTrainer(model=model_dir, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config,
                     callbacks=[timer])
setup_s = time.time() - t_setup
trainer.train()
steady = timer.t[2:] or timer.t
dt = sum(steady) / len(steady)
logs = [h for h in trainer.state.log_history if "loss" in h]
print(json.dumps(dict(side="trl", trl=trl.__version__, mode=mode, ckpt=ckpt, precompute_ref=precompute, seq=seq,
                      steps=len(timer.t), step_ms=round(dt * 1000, 1), tokens_per_s=round(2 * seq / dt),
                      setup_s=round(setup_s, 1), peak_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
                      first_loss=logs[0]["loss"] if logs else None,
                      reward_accuracy_last=logs[-1].get("rewards/accuracies") if logs else None)), flush=True)
