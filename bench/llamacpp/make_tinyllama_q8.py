#!/usr/bin/env python3
"""A TinyLlama-1.1B-shaped GGUF with random Q8_0 weights, for speed comparisons only.

Shape of TinyLlama-1.1B: hidden 2048, 22 layers, 32 heads, 4 KV heads (head 64), FFN 5632,
untied output, context 2048, rope base 10000, rms eps 1e-5. The vocabulary and tokenizer are
SmolLM2-135M-Instruct's (49152 tokens, copied from its GGUF) so that llama.cpp and lmadapt
load it with a real tokenizer; TinyLlama's own has 32000 (the output and embedding matrices
here are 1.5x TinyLlama's). Weights: int8 uniform in [-127, 127], one fp16 scale 3e-4 a
block (std ~0.02), norms 1. The text it generates means nothing: tokens/s only.

Usage: make_tinyllama_q8.py SMOLLM2.gguf OUT.gguf     (python with gguf-py and numpy)
"""
import sys
import numpy as np
import gguf

src, out = sys.argv[1], sys.argv[2]
C, L, NH, NKV, FF, CTX = 2048, 22, 32, 4, 5632, 2048
HD = C // NH
r = gguf.GGUFReader(src)
f = {x.name: x for x in r.fields.values()}


def s(name):
    x = f[name]
    return bytes(x.parts[x.data[0]]).decode()


def strs(name):
    x = f[name]
    return [bytes(x.parts[i]).decode() for i in x.data]


def ints(name):
    x = f[name]
    return [int(x.parts[i][0]) for i in x.data]


def scalar(name):
    x = f[name]
    return x.parts[x.data[0]][0]


tokens = strs("tokenizer.ggml.tokens")
V = len(tokens)
w = gguf.GGUFWriter(out, "llama")
w.add_name("tinyllama-shaped-random-q8_0")
w.add_context_length(CTX)
w.add_embedding_length(C)
w.add_block_count(L)
w.add_feed_forward_length(FF)
w.add_head_count(NH)
w.add_head_count_kv(NKV)
w.add_rope_dimension_count(HD)
w.add_rope_freq_base(10000.0)
w.add_layer_norm_rms_eps(1e-5)
w.add_vocab_size(V)
w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
w.add_tokenizer_model(s("tokenizer.ggml.model"))
if "tokenizer.ggml.pre" in f:
    w.add_tokenizer_pre(s("tokenizer.ggml.pre"))
w.add_token_list(tokens)
w.add_token_types(ints("tokenizer.ggml.token_type"))
w.add_token_merges(strs("tokenizer.ggml.merges"))
for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("padding", w.add_pad_token_id)):
    k = f"tokenizer.ggml.{key}_token_id"
    if k in f:
        add(int(scalar(k)))
w.add_add_bos_token(False)

rng = np.random.default_rng(0)
scale = np.frombuffer(np.float16(3e-4).tobytes(), dtype=np.uint8)


def q8(rows, cols):
    nb = cols // 32
    blk = np.empty((rows, nb, 34), dtype=np.uint8)
    blk[:, :, :2] = scale
    blk[:, :, 2:] = rng.integers(-127, 128, size=(rows, nb, 32), dtype=np.int8).view(np.uint8)
    return blk.reshape(rows, nb * 34)


def add_q8(name, rows, cols):
    w.add_tensor(name, q8(rows, cols), raw_dtype=gguf.GGMLQuantizationType.Q8_0)


ones = np.ones(C, dtype=np.float32)
add_q8("token_embd.weight", V, C)
for l in range(L):
    w.add_tensor(f"blk.{l}.attn_norm.weight", ones)
    add_q8(f"blk.{l}.attn_q.weight", C, C)
    add_q8(f"blk.{l}.attn_k.weight", NKV * HD, C)
    add_q8(f"blk.{l}.attn_v.weight", NKV * HD, C)
    add_q8(f"blk.{l}.attn_output.weight", C, C)
    w.add_tensor(f"blk.{l}.ffn_norm.weight", ones)
    add_q8(f"blk.{l}.ffn_gate.weight", FF, C)
    add_q8(f"blk.{l}.ffn_up.weight", FF, C)
    add_q8(f"blk.{l}.ffn_down.weight", C, FF)
w.add_tensor("output_norm.weight", ones)
add_q8("output.weight", V, C)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"wrote {out}: TinyLlama-1.1B shape, vocab {V}, Q8_0")
