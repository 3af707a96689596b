#!/usr/bin/env python3
"""GGUF files of the tiny parity models, written as llama.cpp's converter writes them
(tests/test_gguf_arch.c).

For each fixture folder tests/ref/models/<name> this writes tests/ref/gguf_arch/<name>.gguf
with gguf-py's GGUFWriter, following llama.cpp's convert_hf_to_gguf.py (conversion/base.py
TextModel, conversion/llama.py LlamaModel, conversion/qwen.py Qwen2Model/Qwen3Model, as
vendored in llama-cpp-python 0.3.36) step by step:

  - general.architecture: "llama" for LlamaForCausalLM *and* MistralForCausalLM (llama.cpp
    registers both under LlamaModel), "qwen2", "qwen3";
  - general.type "model", general.name from gguf.Metadata.load on the model folder (the
    folder name, title-cased: "Mistral" for the mistral folder), general.size_label;
  - {arch}.block_count, context_length, embedding_length, feed_forward_length,
    attention.head_count, head_count_kv, rope.scaling.type + rope.scaling.factor (linear
    only), rope.freq_base, attention.layer_norm_rms_epsilon, attention.key_length and
    value_length (config.json has head_dim), general.file_type; llama adds vocab_size and
    rope.dimension_count; general.quantization_version;
  - tensor names from gguf.get_tensor_name_map(arch, n_layers), in the safetensors order;
    for llama (undo_permute) q_proj/k_proj weights AND biases go through LlamaModel.permute
    (k with the kv head count); qwen2/qwen3 are not permuted;
  - 1-D tensors and *_norm.weight in F32, the rest in the file type (F32 or F16).
The tokenizer (set_vocab) is minimal: the fixtures have none, but transformers takes the
vocabulary size of a qwen2/qwen3 file (llama.cpp writes {arch}.vocab_size only for llama)
from tokenizer.ggml.tokens, so each file has a gpt2-model tokenizer (pre "gpt-2") of the
256 byte-level tokens, no merges, and bos/eos ids from config.json (as SpecialVocab does).
It is enough for the model; transformers' GGUF *tokenizer* builder would want merges or
scores, which a vocabulary of single bytes cannot have (no merge result is a token).

File types: llama_linear_bias (the one with permuted q/k *biases* and linear RoPE) is F32,
so tests/ref/models/llama_linear_bias/expected.safetensors applies as it is and the weights
must equal the HF folder's bit for bit. The other four are F16 (keeps the folder ~1.3 MB);
for them <name>.logits.safetensors holds input_ids [B,T] and logits [B,T,V] from
transformers loading that GGUF (fp32, eager).

Checks (the script fails rather than write a doubtful fixture):
  - gguf-py reads every tensor back; un-permuted with an independent numpy inverse it
    equals the HF tensor rounded to the stored type, bit for bit;
  - transformers loads each GGUF (AutoModelForCausalLM.from_pretrained(dir, gguf_file=...),
    fp32, eager). Its GGUF config reader maps neither rope.scaling.* nor key_length for
    these architectures and guesses attention_bias = false, and reads a llama file as
    mistral only when general.name is exactly "mistral". Where the config it derives from
    the GGUF differs from the fixture's config.json in a way that changes the model
    (llama_linear_bias: no RoPE scaling, no biases; qwen3: head_dim 16 instead of 32),
    the GGUF's tensors are loaded with the fixture's config (config=...) instead; both
    outcomes are recorded in manifest.json.
  - every file: transformers' logits of the GGUF equal, bit for bit, those of the HF
    folder's model (F16 files: with its 2-D weights rounded to fp16);
  - F32 file: they are within 1e-6 (relative L2) of the fixture's expected logits (made by
    transformers 5.24; observed 3.8e-7);
    F16 files: they differ from the fp32 fixture by the fp16 rounding only (< 1e-2).

  - optional, --llama-cpp DIR (a llama.cpp checkout, e.g. llama-cpp-python 0.3.36's
    vendor/llama.cpp): runs llama.cpp's own convert_hf_to_gguf.py with its own gguf-py on
    every fixture folder (set_vocab stubbed out: the folders have no tokenizer) and asserts
    that every non-tokenizer key and every tensor (name, type, shape, bytes), in order,
    equals ours. Passed with 0.3.36's llama.cpp.

Run from the repository root:  python3 tests/ref/make_gguf_arch_fixtures.py [--llama-cpp DIR]
Deterministic (byte-identical output on rerun); CPU, ~15 s.
"""
import json
import os
import subprocess
import sys
import tempfile

# fixture folder -> (GGUF architecture, output type)
MODELS = {
    "llama_gqa": ("llama", "f16"),
    "llama_linear_bias": ("llama", "f32"),
    "mistral": ("llama", "f16"),
    "qwen2": ("qwen2", "f16"),
    "qwen3": ("qwen3", "f16"),
}


def xcheck_llama_cpp(lcpp):
    """Child process: llama.cpp's converter (and its gguf-py) vs the committed files."""
    sys.path[:0] = [lcpp, os.path.join(lcpp, "gguf-py")]
    import gguf as lgguf
    from conversion.llama import LlamaModel
    from conversion.qwen import Qwen2Model
    LlamaModel.set_vocab = Qwen2Model.set_vocab = lambda self: None
    import convert_hf_to_gguf as conv
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, outtype) in MODELS.items():
            out = os.path.join(tmp, name + ".gguf")
            sys.argv = ["convert_hf_to_gguf.py", os.path.join(here, "models", name), "--outtype", outtype,
                        "--outfile", out]
            conv.main()
            a, b = lgguf.GGUFReader(out), lgguf.GGUFReader(os.path.join(here, "gguf_arch", name + ".gguf"))

            def kv(r):
                return [(k, f.types, [bytes(f.parts[i]) for i in f.data]) for k, f in r.fields.items()
                        if not k.startswith(("GGUF.", "tokenizer."))]

            def ts(r):
                return [(t.name, t.tensor_type, tuple(t.shape), bytes(t.data)) for t in r.tensors]
            assert kv(a) == kv(b), f"{name}: metadata differs from llama.cpp's converter"
            assert ts(a) == ts(b), f"{name}: tensors differ from llama.cpp's converter"
            print(f"llama.cpp convert_hf_to_gguf.py: {name}: {len(kv(a))} keys and {len(ts(a))} tensors identical")


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--xcheck":
    sys.exit(xcheck_llama_cpp(sys.argv[2]))  # before the gguf 0.19 import below

import numpy as np
import torch
import transformers
import gguf
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as QT
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.convert_slow_tokenizer import bytes_to_unicode

BYTE_CHARS = bytes_to_unicode()

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "models")
OUT = os.path.join(HERE, "gguf_arch")
MAX_BYTES = 1_700_000

FTYPE = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16}
QTYPE = {"f32": QT.F32, "f16": QT.F16}


def permute(w, n_head, n_head_kv):
    """conversion/llama.py LlamaModel.permute, in numpy."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    """Independent inverse: llama.cpp's rows of a head are (hd/2, 2), HF's (2, hd/2)."""
    hd = w.shape[0] // n_head
    out = np.empty_like(w)
    for h in range(n_head):
        for i in range(hd // 2):
            for j in range(2):
                out[h * hd + j * (hd // 2) + i] = w[h * hd + 2 * i + j]
    return out


def hparams_of(d):
    with open(os.path.join(d, "config.json")) as f:
        return json.load(f)


def write_gguf(name, arch, outtype, path):
    d = os.path.join(SRC, name)
    hp = hparams_of(d)
    n_layers, n_head, n_kv = hp["num_hidden_layers"], hp["num_attention_heads"], hp["num_key_value_heads"]
    rope = hp.get("rope_parameters", hp.get("rope_scaling")) or {}
    if "rope_theta" not in rope and "rope_theta" in hp:
        rope["rope_theta"] = hp["rope_theta"]
    if "rope_type" not in rope and "type" in rope:
        rope["rope_type"] = rope["type"]

    w = GGUFWriter(path, arch)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], n_layers)
    undo_permute = arch == "llama"
    with safe_open(os.path.join(d, "model.safetensors"), "np") as st:
        for hf in st.keys():
            x = st.get_tensor(hf).astype(np.float32)
            if undo_permute and hf.endswith(("q_proj.weight", "q_proj.bias")):
                x = permute(x, n_head, n_head)
            if undo_permute and hf.endswith(("k_proj.weight", "k_proj.bias")):
                x = permute(x, n_head, n_kv)
            gname = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
            assert gname, hf
            qt = QT.F32 if x.ndim <= 1 or gname.endswith("_norm.weight") else QTYPE[outtype]
            w.add_tensor(gname, gguf.quants.quantize(x, qt), raw_dtype=qt)

    # ModelBase.prepare_metadata
    total, shared, expert, n_expert = w.get_total_parameter_count()
    meta = gguf.Metadata.load(None, __import__("pathlib").Path(d), None, total)
    if meta.name is None:
        meta.name = os.path.basename(d)
    if meta.size_label is None and total > 0:
        meta.size_label = gguf.size_label(total, shared, expert, n_expert)
    w.add_type(gguf.GGUFType.MODEL)
    meta.set_gguf_meta_model(w)
    # TextModel.set_gguf_parameters
    w.add_block_count(n_layers)
    w.add_context_length(hp["max_position_embeddings"])
    w.add_embedding_length(hp["hidden_size"])
    w.add_feed_forward_length(hp["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    if rope.get("rope_type") == "linear" and rope.get("factor") is not None:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope["factor"])
    else:
        assert rope.get("rope_type") in (None, "default"), rope
    if rope.get("rope_theta") is not None:
        w.add_rope_freq_base(rope["rope_theta"])
    w.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    if hp.get("head_dim") is not None:
        w.add_key_length(hp["head_dim"])
        w.add_value_length(hp["head_dim"])
    w.add_file_type(FTYPE[outtype])
    # LlamaModel.set_gguf_parameters
    if arch == "llama":
        w.add_vocab_size(hp["vocab_size"])
        w.add_rope_dimension_count(hp.get("head_dim") or hp["hidden_size"] // n_head)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # TextModel.prepare_metadata -> set_vocab (_set_vocab_gpt2 + SpecialVocab), minimal: the
    # 256 byte tokens of a byte-level BPE without merges; bos/eos from config.json
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list([BYTE_CHARS[b] for b in range(256)])
    w.add_token_types([gguf.TokenType.NORMAL] * 256)
    w.add_bos_token_id(hp["bos_token_id"])
    w.add_eos_token_id(hp["eos_token_id"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hp


def check_tensors(name, arch, outtype, path, hp):
    """gguf-py reads it back; un-permuted independently == HF tensor rounded to the type."""
    ref = load_file(os.path.join(SRC, name, "model.safetensors"))
    inv = {}
    for hf in ref:
        tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], hp["num_hidden_layers"])
        inv[tmap.get_name(hf, try_suffixes=(".weight", ".bias"))] = hf
    r = GGUFReader(path)
    assert len(r.tensors) == len(ref), (len(r.tensors), len(ref))
    for t in r.tensors:
        hf = inv[t.name]
        x = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ref[hf].shape)
        if arch == "llama" and (".attn_q." in t.name or ".attn_k." in t.name):
            x = unpermute(x, hp["num_attention_heads"] if ".attn_q." in t.name else hp["num_key_value_heads"])
        want = ref[hf].numpy()
        if t.tensor_type == QT.F16:
            want = want.astype(np.float16).astype(np.float32)
        else:
            assert t.tensor_type == QT.F32
            assert outtype == "f32" or want.ndim == 1 or t.name.endswith("_norm.weight"), t.name
        assert np.array_equal(x.view(np.uint32), want.view(np.uint32)), f"{name}: {t.name} differs"
    return r


def hf_model(d, rounded):
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    if rounded:
        with torch.no_grad():
            for n, p in m.named_parameters():
                if p.ndim == 2:
                    p.copy_(p.half().float())
    return m


def config_diffs(got, want):
    """config fields that change the model: transformers' config from the GGUF vs config.json"""
    out = {}
    for k in ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "attention_bias", "tie_word_embeddings", "vocab_size"):
        dflt = False if k == "attention_bias" else None  # MistralConfig has no attention_bias
        a, b = getattr(got, k, dflt), getattr(want, k, dflt)
        if a != b:
            out[k] = [a, b]
    ra, rb = dict(got.rope_parameters or {}), dict(want.rope_parameters or {})
    for k in set(ra) | set(rb):
        if k in ("rope_type", "factor", "rope_theta") and ra.get(k) != rb.get(k):
            out["rope." + k] = [ra.get(k), rb.get(k)]
    if abs(got.rms_norm_eps - want.rms_norm_eps) > 1e-6 * want.rms_norm_eps:
        out["rms_norm_eps"] = [got.rms_norm_eps, want.rms_norm_eps]
    return out


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    manifest = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                             "gguf": gguf.__version__ if hasattr(gguf, "__version__") else
                             __import__("importlib.metadata").metadata.version("gguf"),
                             "numpy": np.__version__},
                "llama_cpp_reference": "convert_hf_to_gguf.py + conversion/{base,llama,qwen}.py of llama-cpp-python "
                                       "0.3.36's vendored llama.cpp",
                "models": {}}
    total_bytes = 0
    for name, (arch, outtype) in MODELS.items():
        d = os.path.join(SRC, name)
        path = os.path.join(OUT, name + ".gguf")
        hp = write_gguf(name, arch, outtype, path)
        r = check_tensors(name, arch, outtype, path, hp)
        gname = str(bytes(r.fields["general.name"].parts[-1]), "utf-8")

        ex = load_file(os.path.join(d, "expected.safetensors"))
        ids = ex["input_ids"].long()
        want_cfg = AutoConfig.from_pretrained(d)
        # transformers alone, config from the GGUF metadata
        try:
            plain = AutoModelForCausalLM.from_pretrained(OUT, gguf_file=name + ".gguf", dtype=torch.float32,
                                                         attn_implementation="eager").eval()
            diffs = config_diffs(plain.config, want_cfg)
            plain_err = None
        except Exception as e:  # noqa: BLE001 - recorded, then loaded with the fixture's config
            plain, diffs, plain_err = None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        # model_type llama for the mistral file is expected (general.name "Mistral" != "mistral"):
        # a Mistral without sliding window is the same model
        real = {k: v for k, v in (diffs or {}).items() if not (name == "mistral" and k == "model_type")}
        if plain is not None and not real:
            m, how = plain, "gguf_file (config from the GGUF)"
        else:
            m = AutoModelForCausalLM.from_pretrained(OUT, gguf_file=name + ".gguf", config=want_cfg,
                                                     dtype=torch.float32, attn_implementation="eager").eval()
            how = "gguf_file with config=config.json"
        with torch.no_grad():
            logits = m(ids).logits.float()
            ref_logits = hf_model(d, outtype == "f16")(ids).logits.float()
        assert torch.equal(logits, ref_logits), f"{name}: transformers' GGUF logits != HF model's"
        fx = ex["logits"]
        rel_fx = float((logits - fx).norm() / fx.norm())
        if outtype == "f32":
            # bitwise equal to this transformers' HF-folder logits (asserted above); the fixture
            # was made by transformers 5.24, whose rounding differs by ~4e-7
            assert rel_fx < 1e-6, f"{name}: F32 GGUF logits differ from the fixture ({rel_fx:.3g})"
        else:
            assert 0 < rel_fx < 1e-2, f"{name}: fp16 rounding moved the logits by {rel_fx:.3g}"
            save_file({"input_ids": ex["input_ids"].contiguous(), "logits": logits.contiguous()},
                      os.path.join(OUT, name + ".logits.safetensors"),
                      # one key: safetensors orders several at random
                      metadata={"what": "transformers %s logits of %s.gguf (fp32, eager)"
                                % (transformers.__version__, name)})
        manifest["models"][name] = {
            "file": name + ".gguf", "architecture": arch, "general.name": gname, "file_type": outtype.upper(),
            "expected_logits": ("../models/%s/expected.safetensors" % name) if outtype == "f32"
                               else name + ".logits.safetensors",
            "transformers_load": how,
            "transformers_config_from_gguf_differs": diffs,
            "transformers_config_from_gguf_error": plain_err,
            "logits_rel_l2_vs_fp32_fixture": rel_fx,
        }
        print(f"{name:18s} {arch:6s} {outtype} name={gname!r:22s} load: {how}; rel L2 vs fixture {rel_fx:.3g}"
              f"{'; transformers config diffs ' + json.dumps(diffs) if diffs else ''}"
              f"{'; plain load failed: ' + plain_err if plain_err else ''}")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    for fn in sorted(os.listdir(OUT)):
        total_bytes += os.path.getsize(os.path.join(OUT, fn))
    print(f"total {total_bytes} bytes in {OUT}")
    assert total_bytes <= MAX_BYTES, total_bytes


if __name__ == "__main__":
    main()
    if len(sys.argv) == 3 and sys.argv[1] == "--llama-cpp":  # fresh process: its own gguf-py
        subprocess.run([sys.executable, os.path.abspath(__file__), "--xcheck", os.path.abspath(sys.argv[2])],
                       check=True)
