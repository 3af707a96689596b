#!/usr/bin/env python3
"""Fixtures for tests/test_safetensors.c and tests/test_config.c.

    python3 tests/ref/make_st_fixtures.py              # (re)write tests/ref/st/ and tests/ref/configs/
    python3 tests/ref/make_st_fixtures.py --check-saved # verify lmadapt's saved configs load in transformers

safetensors (tests/ref/st/), written by the reference writers:
  ref_f32.safetensors, ref_bf16.safetensors  safetensors.torch.save_file(TENSORS, metadata={"format":"pt"});
                                             lmadapt's lma_st_save of the same tensors must be byte-identical.
  ref_bf16_values.json                       the bf16 file's values as torch reads them (f32).
  mixed.safetensors + mixed.json             F32/F16/BF16/I32/U8/scalar/empty tensors and extra __metadata__.
  sharded/                                   huggingface_hub.save_torch_state_dict(TENSORS, max_shard_size=SHARD);
                                             lma_st_save_dir with the same limit must write identical shards.
The tensor values come from a formula both sides compute exactly (value(k, i) below).

configs (tests/ref/configs/): <name>.json written by transformers 5 (save_pretrained), plus hand-written
classic-form configs like real hub files; expected.json holds what transformers makes of each one (after
loading the file back): sizes, rope parameters, biases and q/k norms of the instantiated model, and the
model's rotary inv_freq, plus a float64 inv_freq computed here from the formulas in docs/formats.md "RoPE conventions".
--check-saved loads tests/ref/configs/saved/<name>.json (written by lma_config_save; test_config compares
its output to these files byte for byte) and asserts transformers reads the same values as from the original.
"""
import json, math, os, shutil, struct, sys, tempfile

import numpy as np
import torch
from safetensors.torch import save_file
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
ST = os.path.join(HERE, "st")
CFG = os.path.join(HERE, "configs")

# name, shape, in model order (the order matters for sharding).
SHAPES = [
    ("model.embed_tokens.weight", [16, 8]),
    ("model.layers.0.self_attn.q_proj.weight", [8, 8]),
    ("model.layers.0.self_attn.q_proj.bias", [8]),
    ("big.conv", [2, 3, 5, 7]),
    ("model.layers.10.mlp.up_proj.weight", [12, 8]),
    ("model.layers.2.mlp.up_proj.weight", [12, 8]),
    ("model.norm.weight", [8]),
    ("scalar", []),
    ("empty", [0, 4]),
    ("caf\u00e9 \"quoted\" back\\slash\ttab", [3]),
    ("A_upper", [2, 1, 3]),
    ("special", [8]),
    ("lm_head.weight", [16, 8]),
]
SHARD = 600  # bytes; big.conv (840 bytes in f32) exceeds it and gets a shard of its own
# Rounding cases (ties to even, overflow to inf, subnormal, -0). No NaN: torch's vectorized
# CPU cast writes NaN as 0xFFFF and its scalar cast as 0x7FC0, so NaN bytes are not a
# stable reference; test_safetensors checks NaN stays NaN on its own.
SPECIAL_BITS = [0x3F808001, 0x7F800000, 0xFF800000, 0x80000000, 0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x000116C2]


def value(k, i):
    # exact in float64 on both sides; then rounded once to float32
    return (((i * 7919 + k * 104729) % 10007) / 10007.0 - 0.5) * 3.0


def tensors(dtype=torch.float32):
    out = {}
    for k, (name, shape) in enumerate(SHAPES):
        n = int(np.prod(shape)) if shape else 1
        if name == "special":
            a = np.array(SPECIAL_BITS, dtype=np.uint32).view(np.float32)
        else:
            a = np.array([value(k, i) for i in range(n)], dtype=np.float64).astype(np.float32)
        out[name] = torch.from_numpy(a.copy()).reshape(shape).to(dtype)
    return out


def make_st():
    os.makedirs(ST, exist_ok=True)
    save_file(tensors(), os.path.join(ST, "ref_f32.safetensors"), metadata={"format": "pt"})
    tb = tensors(torch.bfloat16)
    save_file(tb, os.path.join(ST, "ref_bf16.safetensors"), metadata={"format": "pt"})
    vals = {k: v.float().flatten().numpy().view(np.uint32).tolist() for k, v in tb.items()}
    with open(os.path.join(ST, "ref_bf16_values.json"), "w") as f:
        json.dump({"f32_bits": vals}, f, indent=1)

    mixed = {
        "f32": torch.tensor([[1.5, -2.25, 3.0], [0.1, 1e-30, -7.0]], dtype=torch.float32),
        "f16": torch.tensor([1.0, -0.5, 65504.0, 6.1035156e-05, 5.96e-08, 0.0, -0.0, 0.3333], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.140625, 1e-38, 3.0e38], dtype=torch.bfloat16),
        "i32": torch.tensor([1, -2, 2147483647], dtype=torch.int32),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float16),
    }
    save_file(mixed, os.path.join(ST, "mixed.safetensors"), metadata={"format": "pt", "note": "mixed dtypes"})
    exp = {}
    for k, v in mixed.items():
        e = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
        if v.dtype.is_floating_point:
            e["f32_bits"] = v.float().flatten().numpy().view(np.uint32).tolist()
        else:
            e["ints"] = v.flatten().tolist()
        exp[k] = e
    with open(os.path.join(ST, "mixed.json"), "w") as f:
        json.dump(exp, f, indent=1)

    from huggingface_hub import save_torch_state_dict
    sd = os.path.join(ST, "sharded")
    shutil.rmtree(sd, ignore_errors=True)
    os.makedirs(sd)
    save_torch_state_dict(tensors(), sd, max_shard_size=SHARD)
    print("sharded:", sorted(os.listdir(sd)))


# ---- configs -----------------------------------------------------------------------------

SMALL = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4)

# Classic-form configs in the shape of real hub files (tiny sizes).
CLASSIC = {
    "llama32_classic": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 16,
        "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 256},
    "tinyllama_classic": {
        "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 160, "max_position_embeddings": 2048,
        "model_type": "llama", "num_attention_heads": 8, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.35.0", "use_cache": True, "vocab_size": 320},
    "linear_oldtype": {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 128, "model_type": "llama",
        "rope_scaling": {"type": "linear", "factor": 2.0}, "rope_theta": 10000.0},
    "qwen25_classic": {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
        "intermediate_size": 128, "max_position_embeddings": 32768, "max_window_layers": 21,
        "model_type": "qwen2", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 200},
    "mistral_v01_classic": {
        "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 224, "max_position_embeddings": 32768,
        "model_type": "mistral", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 1,
        "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 100},
}


def v5_configs():
    from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config
    return {
        "llama_gqa": LlamaConfig(**SMALL, num_key_value_heads=2),
        "llama3_tied": LlamaConfig(**SMALL, num_key_value_heads=1, rope_theta=500000.0, tie_word_embeddings=True,
                                   max_position_embeddings=131072, bos_token_id=128000, eos_token_id=[128001, 128009],
                                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
        "llama_linear": LlamaConfig(**SMALL, rope_scaling={"rope_type": "linear", "factor": 4.0}),
        "llama_bias": LlamaConfig(**SMALL, attention_bias=True),
        "qwen2": Qwen2Config(**SMALL, num_key_value_heads=2, rope_theta=1000000.0),
        "qwen3": Qwen3Config(**SMALL, num_key_value_heads=2, head_dim=32, rope_theta=1000000.0,
                             tie_word_embeddings=True),
        "mistral": MistralConfig(**SMALL, num_key_value_heads=2, sliding_window=4096),
    }


def inv_freq_f64(rp, hd):
    theta = rp["rope_theta"]
    f = [1.0 / theta ** (2.0 * i / hd) for i in range(hd // 2)]
    t = rp.get("rope_type", "default")
    if t == "linear":
        f = [x / rp["factor"] for x in f]
    elif t == "llama3":
        L, lff, hff, fac = rp["original_max_position_embeddings"], rp["low_freq_factor"], rp["high_freq_factor"], rp["factor"]
        g = []
        for x in f:
            wl = 2 * math.pi / x
            if wl < L / hff:
                g.append(x)
            elif wl > L / lff:
                g.append(x / fac)
            else:
                s = (L / wl - lff) / (hff - lff)
                g.append((1 - s) * x / fac + s * x)
        f = g
    return f


def describe(path):
    """What transformers makes of the config.json at path."""
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(path, os.path.join(d, "config.json"))
        cfg = AutoConfig.from_pretrained(d)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    attn = model.model.layers[0].self_attn
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    rp = dict(cfg.rope_parameters)
    eos = cfg.eos_token_id
    eos = [] if eos is None else (list(eos) if isinstance(eos, (list, tuple)) else [eos])
    sw = getattr(cfg, "sliding_window", None) if cfg.model_type == "mistral" else None
    return {
        "arch": type(model).__name__, "model_type": cfg.model_type,
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
        "n_layers": cfg.num_hidden_layers, "n_heads": cfg.num_attention_heads,
        "n_kv_heads": cfg.num_key_value_heads, "head_dim": hd,
        "max_position_embeddings": cfg.max_position_embeddings, "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": rp["rope_theta"], "rope_type": rp.get("rope_type", "default"),
        "rope_factor": rp.get("factor", 0.0), "rope_low_freq_factor": rp.get("low_freq_factor", 0.0),
        "rope_high_freq_factor": rp.get("high_freq_factor", 0.0),
        "rope_original_max_pos": rp.get("original_max_position_embeddings", 0) if rp.get("rope_type") == "llama3" else 0,
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "qkv_bias": attn.q_proj.bias is not None and attn.k_proj.bias is not None and attn.v_proj.bias is not None,
        "o_bias": attn.o_proj.bias is not None,
        "qk_norm": hasattr(attn, "q_norm"),
        "lm_head_tied": model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(),
        "sliding_window": sw or 0,
        "bos_token_id": -1 if cfg.bos_token_id is None else cfg.bos_token_id, "eos_token_ids": eos,
        "inv_freq_hf": model.model.rotary_emb.inv_freq.float().tolist(),
        "inv_freq_f64": inv_freq_f64(rp, hd),
    }


def make_configs():
    os.makedirs(CFG, exist_ok=True)
    for name, cfg in v5_configs().items():
        with tempfile.TemporaryDirectory() as d:
            cfg.save_pretrained(d)
            shutil.copy(os.path.join(d, "config.json"), os.path.join(CFG, name + ".json"))
    for name, obj in CLASSIC.items():
        with open(os.path.join(CFG, name + ".json"), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    names = list(v5_configs()) + list(CLASSIC)
    exp = {n: describe(os.path.join(CFG, n + ".json")) for n in names}
    with open(os.path.join(CFG, "expected.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "configs": exp}, f, indent=1)
        f.write("\n")
    print("configs:", names)


def check_saved():
    exp = json.load(open(os.path.join(CFG, "expected.json")))["configs"]
    bad = 0
    for n, e in exp.items():
        p = os.path.join(CFG, "saved", n + ".json")
        got = describe(p)
        for k, v in e.items():
            g = got[k]
            same = (len(g) == len(v) and np.array_equal(g, v)) if k.startswith("inv_freq") else g == v
            if not same:
                bad += 1
                print(f"{n}: {k}: transformers reads {g!r} from the saved config, {v!r} from the original")
    print("check-saved:", "OK" if not bad else f"{bad} mismatches", f"({len(exp)} configs)")
    return 1 if bad else 0


if __name__ == "__main__":
    if "--check-saved" in sys.argv:
        sys.exit(check_saved())
    make_st()
    make_configs()
