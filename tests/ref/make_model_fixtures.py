#!/usr/bin/env python3
"""Generate transformers parity fixtures for lmadapt's model tests.

Run from the repository root:   python3 tests/ref/make_model_fixtures.py
Writes tests/ref/models/<name>/{config.json, model.safetensors,
expected.safetensors, expected.json} for each tiny model below. See
tests/ref/README.md for what each tensor holds and the tolerances the C tests use.

Deterministic: fixed seeds, 1 CPU thread, float32, eager attention, eval mode.
Needs torch, transformers (5.x) and safetensors; CPU only, a few seconds.
"""
import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file, load_file
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
B, T = 2, 12
IGNORE = -100
N_IGNORED_B1 = 3                    # labels[1, :3] = -100
ADAMW = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
CLIP = 1.0
ADAMW_STEPS = 10
INIT_STD = 0.1

# Tolerances the C tests use (tests/ref/README.md), and the 10x tighter margins
# a float64 re-run of the same math must meet against the float32 fixture. The
# float64 check proves each fixture is well-conditioned: a correct float32
# implementation with different rounding lands well inside the C tolerances.
# (A gradient element within rounding noise of 0 makes AdamW's first update
# g/(|g|+eps) arbitrary in sign; seeds below were chosen so that none matter.)
TOL = dict(logits=1e-4, loss=1e-5, grad=1e-4, adamw_loss=1e-4, adamw_norm=1e-3)
F64_MARGIN = 10.0

COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=160,
              num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=128, bos_token_id=1, eos_token_id=2,
              dtype="float32")

# name -> (config class, model class, extra config kwargs, seed)
MODELS = {
    "llama_gqa": (LlamaConfig, LlamaForCausalLM, dict(
        num_key_value_heads=2, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), 1),
    # original_max_position_embeddings 64 (not 16): with theta 5e5, head_dim 16,
    # the wavelengths are 6.3, 32.4, 167, ... ; the bands are wl < 64/4 (kept),
    # wl > 64/1 (divided by factor) and the smooth band between, so all three
    # occur (asserted below). With 16 the "kept" band would be empty.
    "llama3_tied": (LlamaConfig, LlamaForCausalLM, dict(
        num_key_value_heads=4, rms_norm_eps=1e-5, tie_word_embeddings=True,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                         "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}), 20),
    "llama_linear_bias": (LlamaConfig, LlamaForCausalLM, dict(
        num_key_value_heads=2, rms_norm_eps=1e-5, tie_word_embeddings=False,
        attention_bias=True,
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                         "factor": 2.0}), 3),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, dict(
        num_key_value_heads=2, rms_norm_eps=1e-6, tie_word_embeddings=False,
        use_sliding_window=False, sliding_window=None,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), 4),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, dict(
        num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6,
        tie_word_embeddings=False, use_sliding_window=False, sliding_window=None,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), 5),
    "mistral": (MistralConfig, MistralForCausalLM, dict(
        num_key_value_heads=2, rms_norm_eps=1e-5, tie_word_embeddings=False,
        sliding_window=None,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), 6),
}


def init_weights(model, seed):
    """N(0, 0.1) on every weight and bias; norm weights 1 + 0.1*N(0,1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + INIT_STD * noise)
            else:
                p.copy_(INIT_STD * noise)


def make_batch(vocab, seed):
    g = torch.Generator().manual_seed(1000 + seed)
    ids = torch.randint(0, vocab, (B, T), generator=g, dtype=torch.long)
    labels = ids.clone()
    labels[1, :N_IGNORED_B1] = IGNORE
    targets = torch.full((B, T), IGNORE, dtype=torch.long)
    targets[:, :-1] = labels[:, 1:]
    return ids, labels, targets


def build(cfg_cls, model_cls, extra, seed):
    cfg = cfg_cls(**COMMON, **extra)
    torch.manual_seed(seed)
    model = model_cls._from_config(cfg, attn_implementation="eager",
                                   dtype=torch.float32)
    init_weights(model, seed)
    model.eval()
    return model


def rel(a, b):
    return (a - b).norm().item() / max(b.norm().item(), 1e-30)


def check_llama3_bands(model, rp, hd):
    """Independent llama3 inv_freq (meta-llama apply_scaling) vs the model's."""
    theta, factor = rp["rope_theta"], rp["factor"]
    lff, hff = rp["low_freq_factor"], rp["high_freq_factor"]
    L = rp["original_max_position_embeddings"]
    bands = set()
    want = []
    for i in range(hd // 2):
        f = theta ** (-2.0 * i / hd)
        wl = 2 * math.pi / f
        if wl < L / hff:
            bands.add("keep"); want.append(f)
        elif wl > L / lff:
            bands.add("scaled"); want.append(f / factor)
        else:
            bands.add("smooth")
            s = (L / wl - lff) / (hff - lff)
            want.append((1 - s) * f / factor + s * f)
    assert bands == {"keep", "scaled", "smooth"}, bands
    got = model.model.rotary_emb.inv_freq.double()
    want = torch.tensor(want, dtype=torch.float64)
    assert torch.allclose(got, want, rtol=1e-6, atol=0), (got, want)


def f64_rerun(model_cls, d, ids, labels):
    """The same forward/backward/AdamW run in float64 from the saved weights."""
    m = model_cls.from_pretrained(d, attn_implementation="eager",
                                  dtype=torch.float32).double()
    m.eval()
    out = m(input_ids=ids, labels=labels)
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
    m.train()
    opt = torch.optim.AdamW(m.parameters(), **ADAMW)
    losses, norms = [], []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad(set_to_none=True)
        loss = m(input_ids=ids, labels=labels).loss
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(m.parameters(), CLIP).item())
        opt.step()
        losses.append(loss.item())
    return out.logits.detach(), out.loss.item(), grads, losses, norms


def f64_agreement(model_cls, d, ids, labels, logits, loss, grads, losses, norms):
    lg, l, g, ls, ns = f64_rerun(model_cls, d, ids, labels)
    err = {
        "logits": (lg - logits.double()).abs().max().item() / lg.abs().max().item(),
        "loss": abs(l - loss) / abs(l),
        "grad": max(rel(g[n], grads["grad." + n].double()) for n in g),
        "adamw_loss": max(abs(a - b) / abs(a) for a, b in zip(ls, losses)),
        "adamw_norm": max(abs(a - b) / abs(a) for a, b in zip(ns, norms)),
    }
    for k, v in err.items():
        assert v <= TOL[k] / F64_MARGIN, (d, k, v, TOL[k] / F64_MARGIN)
    return err


def write_legacy_config(model_cls, d, ids, logits):
    """config.legacy.json: the same config in the transformers 4.x key form
    (top-level rope_theta + rope_scaling, torch_dtype), for the C parser's
    second form. Asserted: transformers loads it to bit-identical logits."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    rp = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = rp.pop("rope_theta")
    rtype = rp.pop("rope_type")
    if rtype == "default":
        cfg["rope_scaling"] = None
    elif rtype == "linear":
        cfg["rope_scaling"] = {"type": "linear", **rp}    # oldest spelling
    else:
        cfg["rope_scaling"] = {"rope_type": rtype, **rp}
    cfg["torch_dtype"] = cfg.pop("dtype")
    cfg.pop("transformers_version", None)
    path = os.path.join(d, "config.legacy.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    tmp = d + ".legacy_check"
    if os.path.isdir(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    try:
        shutil.copy(path, os.path.join(tmp, "config.json"))
        shutil.copy(os.path.join(d, "model.safetensors"), tmp)
        m = model_cls.from_pretrained(tmp, attn_implementation="eager",
                                      dtype=torch.float32)
        m.eval()
        with torch.no_grad():
            lg = m(input_ids=ids).logits
        assert torch.equal(lg, logits), (d, (lg - logits).abs().max())
    finally:
        shutil.rmtree(tmp)


def make_one(name, cfg_cls, model_cls, extra, seed):
    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model = build(cfg_cls, model_cls, extra, seed)
    cfg = model.config
    V = cfg.vocab_size
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if name == "llama3_tied":
        check_llama3_bands(model, extra["rope_parameters"], hd)
    model.save_pretrained(d, safe_serialization=True)

    ids, labels, targets = make_batch(V, seed)

    # ---- forward + loss + gradients (float32, exactly as transformers does) ----
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=labels)
    logits = out.logits.detach()
    assert logits.dtype == torch.float32 and logits.shape == (B, T, V)
    my_loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                              ignore_index=IGNORE, reduction="mean")
    assert abs(my_loss.item() - out.loss.item()) <= 1e-6 * abs(out.loss.item()), \
        (name, my_loss.item(), out.loss.item())
    # the same loss in float64 from the float32 logits: guards the f32 reduction
    l64 = F.cross_entropy(logits.double().reshape(-1, V), targets.reshape(-1),
                          ignore_index=IGNORE)
    assert abs(l64.item() - out.loss.item()) <= 1e-5 * l64.item()
    out.loss.backward()
    grads = {}
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().max().item() > 0, pname        # every grad is live
        grads["grad." + pname] = p.grad.detach().clone().contiguous()
    if cfg.tie_word_embeddings:
        assert "grad.lm_head.weight" not in grads
    else:
        assert "grad.lm_head.weight" in grads

    # logits are not degenerate (tests must be able to fail)
    assert logits.std().item() > 0.3, (name, logits.std().item())

    lp = torch.log_softmax(logits.double(), -1)
    logprobs = lp[:, :-1, :].gather(-1, ids[:, 1:, None])[..., 0].float()

    # ---- reload check: from_pretrained gives bit-identical logits ----
    re = model_cls.from_pretrained(d, attn_implementation="eager",
                                   dtype=torch.float32)
    re.eval()
    with torch.no_grad():
        relog = re(input_ids=ids).logits
    assert torch.equal(relog, logits), (name, (relog - logits).abs().max())
    sd = load_file(os.path.join(d, "model.safetensors"))
    assert all(v.dtype == torch.float32 for v in sd.values())
    assert ("lm_head.weight" in sd) == (not cfg.tie_word_embeddings), sorted(sd)
    assert set(sd) == {k[len("grad."):] for k in grads}, (set(sd), list(grads))

    # ---- 10 AdamW steps with clipping, same batch, from the saved weights ----
    tm = re                                    # fresh copy of the saved weights
    tm.train()                                 # dropout is 0 in every config
    opt = torch.optim.AdamW(tm.parameters(), **ADAMW)
    losses, norms = [], []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad(set_to_none=True)
        loss = tm(input_ids=ids, labels=labels).loss
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(tm.parameters(), CLIP)
        opt.step()
        losses.append(loss.item())
        norms.append(gn.item())
    assert losses[0] == out.loss.item(), (losses[0], out.loss.item())
    assert losses[-1] < losses[0], losses
    assert norms[0] > CLIP, norms                 # clipping is exercised

    write_legacy_config(model_cls, d, ids, logits)
    f64 = f64_agreement(model_cls, d, ids, labels, logits, out.loss.item(),
                        grads, losses, norms)

    exp = {
        "input_ids": ids.float(),
        "targets": targets.float(),
        "logits": logits.contiguous(),
        "loss": out.loss.detach().reshape(1),
        "logprobs": logprobs.contiguous(),
        "logprobs0": logprobs[0].clone().contiguous(),
        "rope_inv_freq": model.model.rotary_emb.inv_freq.float().contiguous(),
        "adamw_losses": torch.tensor(losses, dtype=torch.float32),
        "adamw_grad_norms": torch.tensor(norms, dtype=torch.float32),
    }
    exp.update(grads)
    save_file(exp, os.path.join(d, "expected.safetensors"),
              metadata={"format": "pt"})

    with open(os.path.join(d, "config.json")) as f:
        saved_cfg = json.load(f)
    rope_form = "rope_parameters" if "rope_parameters" in saved_cfg else "rope_theta/rope_scaling"
    meta = {
        "config_class": type(cfg).__name__,
        "model_class": model_cls.__name__,
        "B": B, "T": T, "ignore_index": IGNORE,
        "ignored_label_positions": {"1": list(range(N_IGNORED_B1))},
        "lr": ADAMW["lr"], "betas": list(ADAMW["betas"]), "eps": ADAMW["eps"],
        "weight_decay": ADAMW["weight_decay"], "clip_grad_norm": CLIP,
        "adamw_steps": ADAMW_STEPS,
        "init": "N(0,0.1) weights and biases; norm weights 1+0.1*N(0,1)",
        "seed": seed,
        "attn_implementation": "eager", "dtype": "float32",
        "head_dim": hd,
        "rope_key_form": rope_form,
        "tolerances": TOL,
        "f64_rerun_rel_error": {k: float(f"{v:.3g}") for k, v in f64.items()},
        "rope_attention_scaling": float(model.model.rotary_emb.attention_scaling),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")

    size = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
    assert size < 2 * 1024 * 1024, (name, size)
    print(f"{name:18s} {type(cfg).__name__:13s} params "
          f"{sum(p.numel() for p in model.parameters()):7d} loss {out.loss.item():.5f} "
          f"adamw {losses[0]:.4f}->{losses[-1]:.4f} "
          f"f64 adamw {f64['adamw_loss']:.1e} rope:{rope_form} {size/1024:.0f} KiB")
    return rope_form


def main():
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    forms = set()
    for name, (cc, mc, extra, seed) in MODELS.items():
        forms.add(make_one(name, cc, mc, extra, seed))
    print("config rope key form written by transformers",
          transformers.__version__, ":", ", ".join(sorted(forms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
