"""PEFT interop fixtures: makes tests/ref/peft/.

1. PEFT-made adapters (lmadapt must load them): for some tests/ref/models/*,
   peft.get_peft_model with a LoraConfig, lora_B filled with seeded random
   values (PEFT's init has B = 0, which would test nothing), save_pretrained to
   peft/peft_<model>/ (adapter_config.json + adapter_model.safetensors) and
   peft/peft_<model>/expected.safetensors: input_ids (F32) and PEFT's logits.
2. lmadapt-made adapters (PEFT must load them): runs
   `BUILD/tests/test_adapter_peft --write DIR`, which writes adapters
   deterministically; loads each with PeftModel.from_pretrained on the
   transformers base, keeps peft/lmadapt_<model>.safetensors (input_ids, logits)
   and peft/lmadapt_<model>.json (FNV-1a 64 of the adapter files PEFT read and
   PEFT's trainable/all parameter counts). The C test writes the same adapters
   again, checks the bytes and compares logits.
Usage: python3 tests/ref/make_peft_fixtures.py [BUILD_DIR]   (peft 0.21, transformers 5)
"""
import json, os, subprocess, sys, tempfile
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model

root = os.path.dirname(os.path.abspath(__file__))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "..", "build")
out = os.path.join(root, "peft")
os.makedirs(out, exist_ok=True)

def fnv1a(path):
    h = 0xcbf29ce484222325
    with open(path, "rb") as f:
        for b in f.read():
            h ^= b
            h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h

def base(name):
    return AutoModelForCausalLM.from_pretrained(os.path.join(root, "models", name), dtype=torch.float32,
                                                attn_implementation="eager").eval()

g = torch.Generator().manual_seed(5)
peft_made = {
    "llama_gqa": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    "qwen2": dict(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"]),
    "qwen3": dict(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "o_proj", "down_proj", "up_proj"]),
}
for name, kw in peft_made.items():
    m = get_peft_model(base(name), LoraConfig(task_type="CAUSAL_LM", **kw))
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    d = os.path.join(out, "peft_" + name)
    m.save_pretrained(d)
    # PEFT records the absolute path the base was loaded from; keep the repository-relative one
    with open(os.path.join(d, "adapter_config.json")) as f:
        acfg = json.load(f)
    acfg["base_model_name_or_path"] = "tests/ref/models/" + name
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)  # as PEFT writes it
    m.eval()
    ids = torch.randint(0, m.config.vocab_size, (2, 10), generator=g)
    with torch.no_grad():
        logits = m(ids).logits
    save_file({"input_ids": ids.float().contiguous(), "logits": logits.contiguous()},
              os.path.join(d, "expected.safetensors"))
    print("peft-made", name, sorted(os.listdir(d)))

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([os.path.join(build, "tests", "test_adapter_peft"), "--write", tmp], check=True)
    for name in sorted(os.listdir(tmp)):
        d = os.path.join(tmp, name)
        files = sorted(os.listdir(d))
        m = PeftModel.from_pretrained(base(name), d).eval()
        trainable, total = PeftModel.from_pretrained(base(name), d, is_trainable=True).get_nb_trainable_parameters()
        ids = torch.randint(0, m.config.vocab_size, (2, 10), generator=g)
        with torch.no_grad():
            logits = m(ids).logits
        save_file({"input_ids": ids.float().contiguous(), "logits": logits.contiguous()},
                  os.path.join(out, "lmadapt_%s.safetensors" % name))
        with open(os.path.join(out, "lmadapt_%s.json" % name), "w") as f:
            json.dump({"files": {fn: fnv1a(os.path.join(d, fn)) for fn in files},
                       "peft_trainable_params": trainable, "peft_all_params": total}, f, indent=1)
        print("lmadapt-made", name, files, trainable, total)
