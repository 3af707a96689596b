"""RoPE scaling fixtures (issue 21): one tiny random Llama (window 32; yarn and llama3 configs
state the extended window, 128, with original_max_position_embeddings 32) and,
for each rope_scaling type, transformers' log-probabilities of a 96-token sequence (3x the
window) in one forward, so positions beyond the original window are covered. The weights are
shared; each type has its own config_<type>.json (transformers' classic rope_scaling form).
Run: python tests/ref/make_rope_fixtures.py   (CPU torch + transformers)
Writes tests/ref/rope/{model.safetensors, config_<type>.json, expected.json}."""
import json, os
import torch
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "rope")
BASE = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=32, rms_norm_eps=1e-5, rope_theta=10000.0,
            tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
TYPES = {
    "linear": {"rope_type": "linear", "factor": 3.0},
    "dynamic": {"rope_type": "dynamic", "factor": 3.0},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32},
    "yarn_params": {"rope_type": "yarn", "factor": 3.0, "original_max_position_embeddings": 32, "beta_fast": 16.0,
                    "beta_slow": 2.0, "attention_factor": 1.3},
    "llama3": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32},
}
T = 96


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**BASE)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    model.save_pretrained(OUT, safe_serialization=True)
    os.remove(os.path.join(OUT, "config.json"))
    gen = os.path.join(OUT, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    sd = model.state_dict()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, BASE["vocab_size"], (1, T), generator=g)
    expected = {"ids": ids[0].tolist(), "logprobs": {}}
    for name, rs in TYPES.items():
        base = dict(BASE)
        if "original_max_position_embeddings" in rs:  # yarn, llama3: the config states the extended window
            base["max_position_embeddings"] = 128
        cfg = LlamaConfig(**base, rope_scaling=dict(rs))
        m = LlamaForCausalLM(cfg).eval()
        m.load_state_dict(sd)
        with torch.no_grad():
            logits = m(ids).logits[0].double()
        lp = torch.log_softmax(logits, -1)
        expected["logprobs"][name] = [float(lp[t, ids[0, t + 1]]) for t in range(T - 1)]
        d = dict(base, architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", rope_scaling=rs)
        with open(os.path.join(OUT, f"config_{name}.json"), "w") as f:
            json.dump(d, f, indent=1)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f)
    print("wrote", OUT, sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
