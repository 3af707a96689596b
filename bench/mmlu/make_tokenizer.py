"""Writes .mmlu/tok/: the Llama 2 (= TinyLlama) tokenizer as a Hugging Face folder.

Runs where PyPI is reachable, in a Python with transformers, tokenizers, gguf,
sentencepiece and protobuf (e.g. /tmp/mmlu-env, see bench/mmlu/README.md):

    python bench/mmlu/make_tokenizer.py [--out .mmlu/tok] [--gguf FILE]

Source: llama.cpp's `models/ggml-vocab-llama-spm.gguf` (the Llama SentencePiece vocab,
32000 pieces, no weights), taken from the llama-cpp-python sdist on PyPI, which vendors
llama.cpp (MIT). Without --gguf the sdist is fetched with
`pip download llama-cpp-python --no-binary :all: --no-deps` and only that file is read.
transformers converts it (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`), then
`save_pretrained` writes tokenizer.json, tokenizer_config.json (and
special_tokens_map.json where transformers still writes one).
Checks: vocab 32000, BOS added, ids 1/2/0 for <s>/</s>/<unk>, the "▁" prefix, and the
ids of a few strings as Llama 2 encodes them (known values).
"""
import argparse, glob, json, os, shutil, subprocess, sys, tarfile, tempfile

MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"

# Llama 2's own ids for these strings (meta-llama/Llama-2-7b-hf, TinyLlama-1.1B: same vocab)
KNOWN = {
    "Hello world": [1, 15043, 3186],
    " Hello": [1, 29871, 15043],
    "Answer: A": [1, 673, 29901, 319],
}


def fetch_gguf(tmp):
    subprocess.check_call([sys.executable, "-m", "pip", "download", "llama-cpp-python", "--no-binary", ":all:",
                           "--no-deps", "-d", tmp])
    sdist = glob.glob(os.path.join(tmp, "llama_cpp_python-*.tar.gz"))[0]
    with tarfile.open(sdist) as t:
        for m in t.getmembers():
            if m.name.endswith("/" + MEMBER):
                out = os.path.join(tmp, "ggml-vocab-llama-spm.gguf")
                with t.extractfile(m) as f, open(out, "wb") as g:
                    shutil.copyfileobj(f, g)
                print("from %s: %s" % (os.path.basename(sdist), m.name))
                return out
    raise SystemExit("no %s in %s" % (MEMBER, sdist))


# tokenizer_config.json of Llama 2 / TinyLlama-1.1B (the fields that matter to encoding)
CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": None,
    "clean_up_tokenization_spaces": False,
    "legacy": False,
    "model_max_length": 2048,
    "padding_side": "right",
    "sp_model_kwargs": {},
    # not "LlamaTokenizer": transformers 5's LlamaTokenizer rebuilds the normalizer and
    # pre-tokenizer itself (Metaspace, prepend "first": " Hello" -> [1, 15043]) instead of
    # Llama 2's tokenizer.json pipeline (Prepend + Replace: " Hello" -> [1, 29871, 15043]).
    # PreTrainedTokenizerFast runs tokenizer.json as written, as lmadapt does.
    "tokenizer_class": "PreTrainedTokenizerFast",
}


def llama2_files(out):
    """The GGUF conversion of transformers 5.x leaves the vocab and the normalizer right
    but the BOS out of the post-processor and eos_token = <s> (the vocab-only GGUF has
    no eos id). Put back Llama 2's: "<s> $A" (pair "<s> $A <s> $B"), eos </s>."""
    p = os.path.join(out, "tokenizer.json")
    tj = json.load(open(p, encoding="utf-8"))
    assert tj["model"]["type"] == "BPE" and tj["model"]["vocab"]["<s>"] == 1 and tj["model"]["vocab"]["</s>"] == 2
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    tj["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
    }
    with open(p, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=2)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    with open(os.path.join(out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".mmlu/tok")
    ap.add_argument("--gguf", help="ggml-vocab-llama-spm.gguf already at hand (else fetched from PyPI)")
    a = ap.parse_args()
    from transformers import AutoTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        path = a.gguf or fetch_gguf(tmp)
        d, f = os.path.split(os.path.abspath(path))
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        os.makedirs(a.out, exist_ok=True)
        tok.save_pretrained(a.out)
    llama2_files(a.out)
    tok = AutoTokenizer.from_pretrained(a.out)
    assert len(tok) == 32000, len(tok)
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (1, 2, 0)
    for s, ids in KNOWN.items():
        got = tok.encode(s)
        assert got == ids, (s, got, ids)
    print(tok.convert_ids_to_tokens(tok.encode("The following are multiple choice questions")))
    tj = json.load(open(os.path.join(a.out, "tokenizer.json")))
    print("wrote %s: %s, vocab %d, %s" % (a.out, type(tok).__name__, len(tok), sorted(os.listdir(a.out))))
    print("model", tj["model"]["type"], "normalizer", json.dumps(tj.get("normalizer"))[:200],
          "pre_tokenizer", json.dumps(tj.get("pre_tokenizer"))[:200])


if __name__ == "__main__":
    main()
