#!/usr/bin/env python3
"""Generate tokenizer parity fixtures for lmadapt (tests/ref/tok/).

Everything here is made locally with Hugging Face `tokenizers` and `transformers`
(no Hub access): tokenizers are trained on public text from tests/data (the first
3000 lines of tinyshakespeare.txt, alpaca_first200.json; tests/data/MANIFEST.md), then the
ids of a test text set, their decodings and chat-template renders are dumped as JSON.

Usage:
  python3 tests/ref/make_tok_fixtures.py [--data tests/data]
      writes tests/ref/tok/{bl,sp,spm,g2,train}/ and cases.json, chat.json
  python3 tests/ref/make_tok_fixtures.py --check-lmadapt DIR
      loads DIR/tokenizer.json (written by `lmadapt tokenizer train`) with HF tokenizers,
      encodes the test text set and writes tests/ref/tok/train/lmadapt_check.json

Invalid UTF-8: HF's Python API takes `str`, so a byte string that is not valid UTF-8
cannot be passed as is. We represent it the way `bytes.decode('utf-8', 'replace')`
does: each maximal invalid subpart (Unicode "substitution of maximal subparts", the
same rule Rust's String::from_utf8_lossy uses) becomes U+FFFD. lmadapt applies that
same replacement to raw input bytes before tokenizing, so the fixture stores the raw
bytes (hex) and the ids HF gives for their replaced decoding.

Tokenizers made here:
  bl   byte-level BPE, Llama 3 layout: Split(Llama-3 regex, Isolated) + ByteLevel
       (use_regex=false), ignore_merges=true, TemplateProcessing BOS, Llama 3 and
       ChatML special tokens. Merges serialized as pairs.
  sp   SentencePiece-converted BPE (Llama 2 legacy layout): normalizer
       Prepend("▁")+Replace(" ","▁"), no pre-tokenizer, byte_fallback, fuse_unk,
       unk <unk>, ids 0/1/2 = <unk>/<s>/</s> then <0x00>..<0xFF>; decoder
       Replace+ByteFallback+Fuse+Strip; TemplateProcessing "<s> $A". Merges as
       legacy "a b" strings. Limited alphabet so CJK/emoji go through byte fallback.
  spm  the same model in the non-legacy layout: Metaspace(prepend_scheme=first,
       split=false) pre-tokenizer and Metaspace decoder.
  g2   GPT-2 layout: NFKC+Lowercase normalizer, Sequence[Digits(individual),
       ByteLevel(use_regex=true)], added tokens with lstrip/rstrip/single_word and a
       normalized (non-special) one, BOS+EOS post-processor.
"""
import argparse, json, os, random, sys

from tokenizers import (Tokenizer, AddedToken, Regex, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tok")

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---- chat templates, verbatim from the models' tokenizer_config.json ----------------
# meta-llama/Llama-2-7b-chat-hf
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
# meta-llama/Meta-Llama-3-8B-Instruct
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
# ChatML as in the transformers chat-templating docs / teknium OpenHermes
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# Qwen/Qwen2-7B-Instruct (ChatML with a default system prompt)
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# TinyLlama/TinyLlama-1.1B-Chat-v1.0 (Zephyr format)
ZEPHYR_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")
# mistralai/Mistral-7B-Instruct-v0.2
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")


def test_texts():
    """(name, raw bytes) pairs: the parity text set."""
    t = [
        ("prose", "The quick brown fox jumps over the lazy dog. It's what they'd say, isn't it? We'll see."),
        ("prose2", "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"),
        ("code", "def f(x):\n    return x**2 + 1  # square\n\nfor i in range(10):\n\tprint(f'{i}: {f(i)}')\n"),
        ("code2", "int main(void) { int a[3] = {1,2,3}; return a[0]+a[1]; }\r\n"),
        ("ws", "a  b   c    d\t\te\n\n\nf \n \n  g     "),
        ("ws2", "   leading and trailing   "),
        ("ws3", "\n"),
        ("digits", "1 12 123 1234 12345 3.14159 2024-01-01 1,000,000 ١٢٣ ５６"),
        ("cjk", "日本語のテキストです。中文文本测试。한국어 텍스트"),
        ("emoji", "I ❤️ emoji 😀🎉👍🏽 and 👨‍👩‍👧‍👦 families 🇫🇷"),
        ("combining", "e\u0301 cafe\u0301 café Ångström n\u0303 \u0041\u030A ﬁne ℌ ①"),
        ("mixed_case", "HELLO World hElLo ÉCOLE İstanbul"),
        ("special_in_text", "Hi<|eot_id|>there <|begin_of_text|> <s>x</s> <unk> <|im_start|>user\nyo<|im_end|>"),
        ("added_flags", "a <mask> b [END]   c foo food foo. <extra>x"),
        ("apostrophes", "I'M HE'S they'RE you've we'll I'd 's"),
        ("punct", "!!! ??? ... --- ((( ))) \"quoted\" 'single' `back` ~~~"),
        ("long_word", "supercalifragilisticexpialidocious" * 3),
        ("empty", ""),
        ("space", " "),
        ("meta", "▁ ▁▁ x▁y"),
        ("bytes_like", "<0x41> <0xE6>"),
    ]
    out = [(n, s.encode("utf-8")) for n, s in t]
    out += [
        ("invalid1", b"abc\xff def"),
        ("invalid2", b"\xe6\x97 trunc \xf0\x9f\x98"),
        ("invalid3", b"\xc0\xaf overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80 big"),
        ("invalid4", b"\x80\x80\x80 cont only \xfe\xff"),
        ("nul", b"a\x00b"),
    ]
    return out


def read_corpus(data):
    lines = []
    with open(os.path.join(data, "tinyshakespeare.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)[:3000]
    with open(os.path.join(data, "alpaca_first200.json"), encoding="utf-8") as f:
        recs = json.load(f)
    for r in recs:
        for k in ("instruction", "input", "output"):
            if r[k]:
                lines.append(r[k] + "\n")
    extra = ["日本語のテキストです。東京は日本の首都です。\n", "中文文本测试，你好世界。\n",
             "Emoji 😀 are fun 🎉\n", "café naïve résumé Ångström\n", "x = [1, 2, 3]\n"]
    return lines + extra * 3


def specials_template(bos, eos=None):
    single = f"{bos} $A" + (f" {eos}" if eos else "")
    st = [(bos, None)] + ([(eos, None)] if eos else [])
    return single, st


def make_bl(corpus):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eot_id|>", "<|im_start|>", "<|im_end|>"]
    tr = trainers.BpeTrainer(vocab_size=1200, special_tokens=specials, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, tr)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])
    return tok, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE,
                 "tokenizer_class": "PreTrainedTokenizerFast"}


def make_sp(corpus):
    byte_toks = [f"<0x{i:02X}>" for i in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # trained with a Metaspace splitter so merges stay inside words, as SentencePiece does
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tr = trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>", "<s>", "</s>"] + byte_toks,
                             limit_alphabet=70, show_progress=False)
    tok.train_from_iterator(corpus, tr)
    js = json.loads(tok.to_str())
    # byte tokens are ordinary vocab entries in a converted SentencePiece model
    js["added_tokens"] = [a for a in js["added_tokens"] if a["content"] in ("<unk>", "<s>", "</s>")]
    js["post_processor"] = {"type": "TemplateProcessing",
                            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    legacy = dict(js)
    legacy["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    legacy["pre_tokenizer"] = None
    legacy["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    nonleg = dict(js)
    nonleg["normalizer"] = None
    nonleg["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    nonleg["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        {"type": "ByteFallback"}, {"type": "Fuse"}]}
    cfg = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "chat_template": LLAMA2_TEMPLATE,
           "tokenizer_class": "LlamaTokenizerFast", "legacy": True, "add_bos_token": True, "add_eos_token": False}
    return (Tokenizer.from_str(json.dumps(legacy)), cfg), (Tokenizer.from_str(json.dumps(nonleg)), dict(cfg, legacy=False))


def make_g2(corpus):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=800, special_tokens=["<bos>", "<eos>"], show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, tr)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False),
                            AddedToken("[END]", lstrip=False, rstrip=True, special=True, normalized=False)])
    tok.add_tokens([AddedToken("foo", single_word=True, normalized=True, special=False),
                    AddedToken("<extra>", normalized=False, special=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", tok.token_to_id("<bos>")), ("<eos>", tok.token_to_id("<eos>"))])
    return tok, {"bos_token": "<bos>", "eos_token": "<eos>", "chat_template": CHATML_TEMPLATE,
                 "tokenizer_class": "PreTrainedTokenizerFast"}


def save(tok, cfg, name):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    if name == "sp":  # keep the legacy "a b" merge strings (tokenizers re-serializes as pairs)
        with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
            js = json.load(f)
        js["model"]["merges"] = [" ".join(m) for m in js["model"]["merges"]]
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(js, f, ensure_ascii=False, indent=2)
        assert Tokenizer.from_file(os.path.join(d, "tokenizer.json")).to_str() == tok.to_str()
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)


def encode_cases(tok, texts, rng):
    out = []
    V = tok.get_vocab_size(with_added_tokens=True)
    for name, raw in texts:
        s = raw.decode("utf-8", "replace")
        e = tok.encode(s, add_special_tokens=False)
        es = tok.encode(s, add_special_tokens=True)
        out.append({"name": name, "hex": raw.hex(), "ids": e.ids, "ids_special": es.ids,
                    "decoded_hex": tok.decode(es.ids, skip_special_tokens=False).encode().hex(),
                    "decoded_skip_hex": tok.decode(es.ids, skip_special_tokens=True).encode().hex()})
    rand = []
    for _ in range(40):
        ids = [rng.randrange(V) for _ in range(rng.randrange(1, 12))]
        rand.append({"ids": ids, "decoded_hex": tok.decode(ids, skip_special_tokens=False).encode().hex(),
                     "decoded_skip_hex": tok.decode(ids, skip_special_tokens=True).encode().hex()})
    return {"cases": out, "random_decode": rand}


def long_text(data):
    with open(os.path.join(data, "tinyshakespeare.txt"), encoding="utf-8") as f:
        a = f.read()[200000:216000]
    with open(os.path.join(data, "gsm8k_train.jsonl"), encoding="utf-8") as f:
        b = "".join(json.loads(l)["question"] + "\n" + json.loads(l)["answer"] + "\n\n" for l in f.readlines()[:25])
    return a + b


# ---- chat renders ---------------------------------------------------------------
CONVS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": " What is 2+2? "},
     {"role": "assistant", "content": " 4 "}, {"role": "user", "content": "And 3+3?"}],
    [{"role": "user", "content": "Write a haiku about the sea."},
     {"role": "assistant", "content": "Waves fold into foam,\nsalt wind carries gull voices—\nthe tide keeps its time."},
     {"role": "user", "content": "日本語で？"}, {"role": "assistant", "content": "波が寄せ 😀"}],
    [{"role": "system", "content": "Be\nkind."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello\n"}],
]


def chat_fixtures(toks):
    from transformers import PreTrainedTokenizerFast
    fmts = [("llama2", LLAMA2_TEMPLATE, "sp"), ("llama3", LLAMA3_TEMPLATE, "bl"), ("chatml", CHATML_TEMPLATE, "bl"),
            ("chatml", QWEN2_TEMPLATE, "bl"), ("zephyr", ZEPHYR_TEMPLATE, "sp"), ("mistral", MISTRAL_TEMPLATE, "sp")]
    eot = {"llama2": None, "llama3": "<|eot_id|>", "chatml": "<|im_end|>", "zephyr": None, "mistral": None}
    out = []
    for fmt, tmpl, tk in fmts:
        tok, cfg = toks[tk]
        hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=cfg["bos_token"], eos_token=cfg["eos_token"])
        eos = eot[fmt] or cfg["eos_token"]
        for ci, conv in enumerate(CONVS):
            if fmt in ("llama2", "mistral") and conv[0]["role"] == "system" and fmt == "mistral":
                continue
            for gen in (False, True):
                text = hf.apply_chat_template(conv, chat_template=tmpl, tokenize=False, add_generation_prompt=gen)
                enc = tok.encode(text, add_special_tokens=False)
                # assistant spans: each assistant content as rendered plus its end-of-turn token
                spans, cur = [], 0
                for m in conv:
                    c = m["content"]
                    if m["role"] != "assistant":
                        cur = text.index(c.strip(), cur) if c.strip() else cur
                        continue
                    c = c.strip() if fmt in ("llama2", "llama3") else c
                    a = text.index(c, cur)
                    b = text.index(eos, a + len(c)) + len(eos)
                    cur = b
                    toks_in = [i for i, (s, e) in enumerate(enc.offsets) if s < b and e > a]
                    spans.append([toks_in[0], toks_in[-1] + 1])
                out.append({"format": fmt, "template": tmpl, "tokenizer": tk, "conv": ci, "generation_prompt": gen,
                            "text": text, "ids": enc.ids, "assistant_spans": spans})
    return {"conversations": CONVS, "renders": out}


def train_fixture(corpus_lines):
    d = os.path.join(OUT, "train")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "corpus.txt")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(corpus_lines))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>", "<|pad|>"], show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([path], tr)
    js = json.loads(tok.to_str())
    with open(os.path.join(d, "hf_trained.json"), "w", encoding="utf-8") as f:
        json.dump({"vocab_size": 700, "special": ["<|endoftext|>", "<|pad|>"],
                   "vocab": js["model"]["vocab"], "merges": js["model"]["merges"]}, f, ensure_ascii=False)


def check_lmadapt(dirpath):
    tok = Tokenizer.from_file(os.path.join(dirpath, "tokenizer.json"))
    texts = test_texts()
    res = []
    for name, raw in texts:
        s = raw.decode("utf-8", "replace")
        res.append({"name": name, "hex": raw.hex(), "ids": tok.encode(s, add_special_tokens=False).ids})
    os.makedirs(os.path.join(OUT, "train"), exist_ok=True)
    with open(os.path.join(OUT, "train", "lmadapt_check.json"), "w") as f:
        json.dump({"note": "ids from HF tokenizers loading the tokenizer.json written by `lmadapt tokenizer train`",
                   "cases": res}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "..", "data"))
    ap.add_argument("--check-lmadapt")
    a = ap.parse_args()
    if a.check_lmadapt:
        check_lmadapt(a.check_lmadapt)
        return
    corpus = read_corpus(a.data)
    rng = random.Random(1234)
    bl = make_bl(corpus)
    (sp, spcfg), (spm, spmcfg) = make_sp(corpus)
    g2 = make_g2(corpus)
    toks = {"bl": bl, "sp": (sp, spcfg), "spm": (spm, spmcfg), "g2": g2}
    texts = test_texts()
    lt = long_text(a.data).encode()
    cases = {}
    for name, (tok, cfg) in toks.items():
        save(tok, cfg, name)
        c = encode_cases(tok, texts, rng)
        c["long_hex"] = lt.hex() if name == "bl" else None
        c["long_ids"] = tok.encode(lt.decode(), add_special_tokens=False).ids
        cases[name] = c
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"note": "texts as raw bytes (hex); HF encodes bytes.decode('utf-8','replace')",
                   "long_text_in": "bl", "tokenizers": cases}, f)
    with open(os.path.join(OUT, "chat.json"), "w") as f:
        json.dump(chat_fixtures(toks), f, ensure_ascii=False)
    train_fixture(read_corpus(a.data)[:1500])


if __name__ == "__main__":
    main()
