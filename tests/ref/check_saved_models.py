"""Model dirs written by lmadapt load in transformers: makes tests/ref/saved/.

Runs `build/tests/test_model_save --write DIR` (lmadapt saves the qwen2 fixture
as f32, bf16 and sharded f32), loads each dir with transformers'
from_pretrained (float32, eager), and keeps for each variant:
  saved/<variant>.safetensors  input_ids (F32) and transformers' logits
  saved/<variant>.json         FNV-1a 64 of every file transformers read
The C test writes the same dirs again and checks both.
Usage: python3 tests/ref/check_saved_models.py [BUILD_DIR]
"""
import json, os, subprocess, sys, tempfile
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

root = os.path.dirname(os.path.abspath(__file__))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "..", "build")
out = os.path.join(root, "saved")
os.makedirs(out, exist_ok=True)

def fnv1a(path):
    h = 0xcbf29ce484222325
    with open(path, "rb") as f:
        for b in f.read():
            h ^= b
            h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([os.path.join(build, "tests", "test_model_save"), "--write", tmp], check=True)
    g = torch.Generator().manual_seed(3)
    for variant in ("f32", "bf16", "sharded"):
        d = os.path.join(tmp, variant)
        files = sorted(os.listdir(d))
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        if variant == "sharded":
            assert "model.safetensors.index.json" in files and len([f for f in files if f.startswith("model-")]) >= 2, files
        ids = torch.randint(0, model.config.vocab_size, (2, 10), generator=g)
        with torch.no_grad():
            logits = model(ids).logits
        save_file({"input_ids": ids.float().contiguous(), "logits": logits.contiguous()},
                  os.path.join(out, variant + ".safetensors"), metadata={"format": "pt"})
        with open(os.path.join(out, variant + ".json"), "w") as f:
            json.dump({"transformers_load": "ok", "fnv1a64": {n: fnv1a(os.path.join(d, n)) for n in files}}, f, indent=1)
        print(variant, files, "logits", tuple(logits.shape))
