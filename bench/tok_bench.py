#!/usr/bin/env python3
"""Tokenizer encode benchmark: lmadapt vs HF tokenizers, single thread, same text and
tokenizer.json. Trains two 32k tokenizers with HF (Llama-3-style byte-level BPE and
SentencePiece-style BPE with byte fallback) on tinyshakespeare + GSM8K, then encodes
tinyshakespeare as one string, best of N runs (warm word cache) and first run.

Usage: python3 bench/tok_bench.py [--build build-C] [--data DIR | --fetch DIR] [--repeats 5]
Needs liblmadapt.a in the build dir; compiles bench/tok_bench.c against it.

Data: DIR/tinyshakespeare.txt and DIR/gsm8k_train.jsonl. The default DIR is tests/data,
which holds cut copies (512 KiB of tinyshakespeare, 1000 GSM8K lines; see
tests/data/MANIFEST.md). The numbers in bench/RESULTS.md were measured on the whole
files (1.1 MB and 7473 lines): --fetch DIR downloads them into DIR (once; sha256
checked) from karpathy/char-rnn data/tinyshakespeare/input.txt and
openai/grade-school-math grade_school_math/data/train.jsonl, and uses them.
"""
import argparse, hashlib, json, os, platform, subprocess, sys, tempfile, time, urllib.request

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer, Regex, decoders, models, pre_tokenizers, trainers, normalizers, processors  # noqa

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


FULL = {  # name: (url, sha256) of the whole public files
    "tinyshakespeare.txt": ("https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/"
                            "data/tinyshakespeare/input.txt",
                            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    "gsm8k_train.jsonl": ("https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/"
                          "grade_school_math/data/train.jsonl",
                          "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465"),
}


def fetch(d):
    os.makedirs(d, exist_ok=True)
    for name, (url, sha) in FULL.items():
        p = os.path.join(d, name)
        if not os.path.exists(p):
            print(f"downloading {url}", file=sys.stderr)
            urllib.request.urlretrieve(url, p + ".part")
            os.replace(p + ".part", p)
        with open(p, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != sha:
                sys.exit(f"{p}: sha256 differs from the published file's ({sha})")


def make_tokenizers(data, out):
    files = [os.path.join(data, "tinyshakespeare.txt"), os.path.join(data, "gsm8k_train.jsonl")]
    bl = Tokenizer(models.BPE(ignore_merges=True))
    bl.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_RE), "isolated"),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bl.decoder = decoders.ByteLevel()
    bl.train(files, trainers.BpeTrainer(vocab_size=32000, special_tokens=["<|begin_of_text|>"], show_progress=False,
                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    os.makedirs(os.path.join(out, "bl"), exist_ok=True)
    bl.save(os.path.join(out, "bl", "tokenizer.json"))
    sp = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    sp.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=True)
    sp.train(files, trainers.BpeTrainer(vocab_size=32000, special_tokens=["<unk>", "<s>", "</s>"] +
                                        [f"<0x{i:02X}>" for i in range(256)], show_progress=False))
    js = json.loads(sp.to_str())
    js["added_tokens"] = js["added_tokens"][:3]
    js["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    js["pre_tokenizer"] = None
    os.makedirs(os.path.join(out, "sp"), exist_ok=True)
    with open(os.path.join(out, "sp", "tokenizer.json"), "w") as f:
        json.dump(js, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-C"))
    ap.add_argument("--data", default=os.path.join(ROOT, "tests", "data"),
                    help="folder with tinyshakespeare.txt and gsm8k_train.jsonl (default: the cut copies in tests/data)")
    ap.add_argument("--fetch", metavar="DIR", help="download the whole files into DIR and use them")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if a.fetch:
        fetch(a.fetch)
        a.data = a.fetch
    tmp = tempfile.mkdtemp(prefix="lma_tok_bench_")
    exe = os.path.join(tmp, "tok_bench")
    libs = subprocess.check_output(["pkg-config", "--libs", "openblas", "libcjson", "libpcre2-8", "libutf8proc"]).decode().split()
    subprocess.check_call(["cc", "-O3", "-march=native", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE",
                           os.path.join(HERE, "tok_bench.c"), "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "src"),
                           os.path.join(a.build, "liblmadapt.a"), *libs, "-fopenmp", "-lm", "-lpthread", "-o", exe])
    make_tokenizers(a.data, tmp)
    text_path = os.path.join(a.data, "tinyshakespeare.txt")
    text = open(text_path, encoding="utf-8").read()
    mb = len(text.encode()) / 1e6
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; text {mb:.2f} MB; "
          f"HF tokenizers {__import__('tokenizers').__version__}")
    for name in ("bl", "sp"):
        d = os.path.join(tmp, name)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter(); ids = tok.encode(text, add_special_tokens=False).ids; times.append(time.perf_counter() - t0)
        out = subprocess.check_output([exe, d, text_path, str(a.repeats), os.path.join(tmp, "ids.txt")]).decode().split()
        cold, best = float(out[0]), float(out[1])
        mine = [int(x) for x in open(os.path.join(tmp, "ids.txt")).read().split()]
        same = mine == ids
        print(f"{name}: HF first {mb / times[0]:.2f} MB/s best {mb / min(times):.2f} MB/s | lmadapt first {mb / cold:.2f} MB/s "
              f"best {mb / best:.2f} MB/s | ratio best {min(times) / best:.2f}x first {times[0] / cold:.2f}x | "
              f"{len(ids)} ids, identical: {same}")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
