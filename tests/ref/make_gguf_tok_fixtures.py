#!/usr/bin/env python3
"""Fixtures for the tokenizer read from GGUF metadata (tests/test_tok_gguf.c).

The reference is transformers' GGUF tokenizer, AutoTokenizer.from_pretrained(dir,
gguf_file=F) (CPU, no torch needed), which builds the tokenizer from the
tokenizer.ggml.* metadata (transformers/integrations/gguf/gguf_tokenizer_mapping.py).

Writes into tests/ref/gguf/:
  tok_smollm2.json  ids of TEXTS from the real SmolLM2-135M-Instruct Q4_1 GGUF (gpt2 model,
                    pre "smollm", ChatML template); the model itself is not committed
                    (scripts/fetch-models.sh fetches it), only its ids.
  tok_spm.gguf      a vocab-only llama-type (SentencePiece BPE) GGUF: a SentencePiece BPE
                    model of 800 pieces trained here on docs/*.md (byte fallback, two
                    user-defined pieces <think> </think>), no merges in the file (they are
                    derived from the scores, as for real llama GGUFs), add_bos, add_space_prefix
  tok_spm.json      its ids
  tok_bl_<pre>.gguf vocab-only gpt2-type GGUFs: one byte-level BPE (600 merges, trained here
                    on docs/*.md with `tokenizers`) stored with tokenizer.ggml.pre = llama-bpe,
                    qwen2, tekken, gpt-2, smollm, mistral; llama-bpe also sets add_bos
  tok_bl.json       their ids (one list per pre name)

Usage: python3 tests/ref/make_gguf_tok_fixtures.py [--model PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse, glob, io, json, os, re

import gguf
import sentencepiece as spm
import tokenizers
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(HERE, "gguf")

TEXTS = [
    # prose
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning a language model on a laptop is slow, but it works.",
    " leading space",
    "Multiple sentences. Another one! And a question?",
    # apostrophes
    "don't", "I'LL", "we're they've she'd it's", "DON'T 'quoted' rock'n'roll",
    # code
    "def f(x):\n    return x * 2\n\nprint(f(21))\n",
    "class A:\n\tdef __init__(self):\n\t\tself.v = [1, 2, 3]  # list\n",
    "#include <stdio.h>\nint main(void) {\n    printf(\"%d\\n\", 42);\n    return 0;\n}\n",
    "for (int i = 0; i < n; i++) { a[i] += b[i]; }",
    # whitespace runs
    "a  b   c    d", "tab\tseparated\tvalues", "\t\tindented", "line1\nline2\r\nline3",
    "\n\n\n", "para one\n\n\npara two", "trailing spaces   ", "   ", " ", "\n", "x \n y",
    # digits
    "12345678901234567890", "3.14159 and 2.71828", "2024-12-06", "v1.2.3 costs $1,299.99", "0x1F 007 1e-5",
    # CJK, emoji, mixed scripts
    "你好，世界！这是一个测试。", "日本語のテキストとカタカナ", "한국어 문장입니다",
    "emoji 😀 and family 👨‍👩‍👧‍👦 and flag 🇫🇷", "thumbs 👍🏽 heart ❤️",
    "Ελληνικά και русский текст, עברית, العربية", "naïve café résumé Ångström",
    "mixed: English, 中文, русский, 123, 😀!",
    # special tokens inside the text
    "<|im_start|>user\nHi<|im_end|>", "text <|endoftext|> more", "<think>reasoning</think> answer",
    "<s> literal </s> and <unk>",
    "",
]

CHAT = [
    {"role": "user", "content": "What is LoRA?"},
    {"role": "assistant", "content": "Low-rank adaptation: small trainable matrices added to frozen weights."},
    {"role": "user", "content": "And QLoRA?\n  (in one line)"},
]

DECODE_TEXTS = {"Hello world", "def f(x):\n    return x * 2\n\nprint(f(21))\n", "emoji 😀 and family 👨‍👩‍👧‍👦 and flag 🇫🇷",
                "你好，世界！这是一个测试。", " leading space", "<|im_start|>user\nHi<|im_end|>", "trailing spaces   ",
                "<think>reasoning</think> answer"}


def dump(doc, name):
    """Indented JSON with each id list on one line."""
    s = json.dumps(doc, ensure_ascii=False, indent=1)
    s = re.sub(r"\[\s+([-\d,\s]+?)\s+\]", lambda m: "[" + ",".join(x.strip() for x in m.group(1).split(",")) + "]", s)
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        f.write(s + "\n")


def load(path):
    return AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path))


def cases(tok):
    out = []
    for text in TEXTS:
        for add in (True, False):
            ids = tok(text, add_special_tokens=add)["input_ids"]
            c = {"text": text, "add_special": add, "ids": ids}
            if text in DECODE_TEXTS:
                c["decoded"] = tok.decode(ids, skip_special_tokens=False)
                c["decoded_skip"] = tok.decode(ids, skip_special_tokens=True)
            out.append(c)
    return out


def info(tok):
    return {"bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id, "vocab_size": len(tok),
            "add_bos": bool(getattr(tok, "add_bos_token", False))}


def versions():
    return {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "gguf": gguf.__version__
            if hasattr(gguf, "__version__") else "?", "sentencepiece": spm.__version__}


def docs_text():
    return "".join(open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))))


def llama_kv(w, n_vocab):
    # the minimal llama.* keys transformers' GGUF config reader needs for a vocab-only file
    w.add_context_length(128); w.add_embedding_length(64); w.add_block_count(1); w.add_feed_forward_length(128)
    w.add_head_count(4); w.add_head_count_kv(4); w.add_layer_norm_rms_eps(1e-5); w.add_rope_dimension_count(16)
    w.add_vocab_size(n_vocab)


def finish(w):
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def make_spm(path):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(docs_text().splitlines()), model_writer=buf, model_type="bpe", vocab_size=800,
        byte_fallback=True, user_defined_symbols=["<think>", "</think>"], character_coverage=1.0, num_threads=1,
        add_dummy_prefix=True, split_digits=True, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    toks, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        p = sp.id_to_piece(i)
        toks.append(p); scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 4 if p in ("<think>", "</think>") else 1)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("lmadapt SentencePiece tokenizer fixture")
    llama_kv(w, len(toks))
    w.add_tokenizer_model("llama"); w.add_tokenizer_pre("default")
    w.add_token_list(toks); w.add_token_scores(scores); w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id()); w.add_eos_token_id(sp.eos_id()); w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True); w.add_add_eos_token(False); w.add_add_space_prefix(True)
    w.add_chat_template("{% for m in messages %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}")
    finish(w)


BL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def make_bl_vocab():
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tr = trainers.BpeTrainer(vocab_size=256 + 600 + len(BL_SPECIALS), special_tokens=BL_SPECIALS,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t.train_from_iterator(docs_text().splitlines(), tr)
    j = json.loads(t.to_str())
    vocab = j["model"]["vocab"]
    toks = [None] * len(vocab)
    for k, v in vocab.items():
        toks[v] = k
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    toks.append("<think>")  # user-defined
    types = [3 if t in BL_SPECIALS else 4 if t == "<think>" else 1 for t in toks]
    return toks, types, merges


def make_bl(path, pre, toks, types, merges):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("lmadapt byte-level tokenizer fixture")
    llama_kv(w, len(toks))
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre(pre)
    w.add_token_list(toks); w.add_token_types(types); w.add_token_merges(merges)
    w.add_bos_token_id(toks.index("<|im_start|>")); w.add_eos_token_id(toks.index("<|im_end|>"))
    w.add_pad_token_id(toks.index("<|endoftext|>"))
    if pre == "llama-bpe":
        w.add_add_bos_token(True)
    finish(w)


BL_PRES = ["llama-bpe", "qwen2", "tekken", "gpt-2", "smollm", "mistral"]


def main():
    ap = argparse.ArgumentParser()
    home = os.environ.get("LMA_HOME", os.path.join(os.path.expanduser("~"), ".cache", "lmadapt"))
    ap.add_argument("--model", default=os.path.join(home, "models", "smollm2-135m-instruct",
                                                    "SmolLM2-135M-Instruct.Q4_1.gguf"))
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    tok = load(a.model)
    chat_text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    chat_text0 = tok.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=False)
    extra = [{"text": t, "add_special": add, "ids": tok(t, add_special_tokens=add)["input_ids"],
              "decoded": tok.decode(tok(t, add_special_tokens=add)["input_ids"], skip_special_tokens=False),
              "decoded_skip": tok.decode(tok(t, add_special_tokens=add)["input_ids"], skip_special_tokens=True)}
             for t in (chat_text, chat_text0) for add in (True, False)]
    doc = {"source": os.path.basename(a.model), "versions": versions(), **info(tok),
           "chat": [{"messages": CHAT, "add_generation_prompt": True, "text": chat_text},
                    {"messages": CHAT[:2], "add_generation_prompt": False, "text": chat_text0}],
           "cases": cases(tok) + extra}
    dump(doc, "tok_smollm2.json")

    spm_path = os.path.join(OUT, "tok_spm.gguf")
    make_spm(spm_path)
    tok = load(spm_path)
    doc = {"source": "tok_spm.gguf", "versions": versions(), **info(tok), "cases": cases(tok)}
    dump(doc, "tok_spm.json")

    toks, types, merges = make_bl_vocab()
    doc = {"versions": versions(), "pres": {}}
    for pre in BL_PRES:
        p = os.path.join(OUT, f"tok_bl_{pre}.gguf")
        make_bl(p, pre, toks, types, merges)
        tok = load(p)
        doc["pres"][pre] = {"source": os.path.basename(p), **info(tok), "cases": cases(tok)}
    dump(doc, "tok_bl.json")
    for p in sorted(glob.glob(os.path.join(OUT, "*"))):
        print(f"{os.path.getsize(p):8d} {os.path.relpath(p, ROOT)}")


if __name__ == "__main__":
    main()
