#!/usr/bin/env python3
"""Decoder-model embedding fixture (tests/ref/embed_decoder/): a tiny random Qwen3 saved as
Qwen3-Embedding is (a base-model checkpoint: AutoModel's tensor names, no "model." prefix,
tied embeddings; bf16 to stay small), with the byte-level BPE tokenizer of tests/ref/tok/bl,
a sentence-transformers modules.json (Transformer, Pooling lasttoken, Normalize) and a query
prompt in config_sentence_transformers.json. The references come from transformers alone:
AutoModel(...).last_hidden_state (after the final norm), pooled by hand.

Writes:
  tests/ref/embed_decoder/model/        the folder lmadapt loads (lma_embedder_load)
  tests/ref/embed_decoder/expected.json {"texts", "query_prompt", "task", "cases": [{"text",
      "ids", "query_ids", "last_norm", "last_norm_query", "mean", "last_task_query"}]}
      last_norm: last token, L2-normalized (the folder's own config);
      last_norm_query: the same with the query prompt in front;
      mean: mean over tokens, not normalized (embed --pool mean with no Normalize module:
            computed on a copy of the folder without modules.json);
      last_task_query: last token, normalized, query "Instruct: {task}\\nQuery:{text}".

Usage: /tmp/refenv/bin/python tests/ref/make_decoder_embed_fixtures.py
"""
import json
import os
import shutil

import torch
from transformers import AutoModel, AutoTokenizer, Qwen3Config, Qwen3Model

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "embed_decoder")
MODEL = os.path.join(OUT, "model")
QUERY_PROMPT = "Instruct: Given a question, retrieve passages that answer it\nQuery:"
TASK = "Find the sentence that answers the question"
TEXTS = [
    "The Nile is the longest river in Africa.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "a",
    "Café, naïve, résumé: accents and UTF-8.",
    "Retrieval-augmented generation answers from retrieved passages and cites them. " * 3,
]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(MODEL)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(HERE, "tok", "bl", f), MODEL)
    tok = AutoTokenizer.from_pretrained(MODEL)
    vocab = (len(tok) + 63) // 64 * 64
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                      rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, initializer_range=0.2)
    model = Qwen3Model(cfg).eval()
    with torch.no_grad():  # norms away from 1 so that a missing final norm shows
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.3 * torch.randn_like(p))
    model.to(torch.bfloat16).save_pretrained(MODEL)
    # sentence-transformers files (as Qwen3-Embedding ships them)
    json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
              open(os.path.join(MODEL, "modules.json"), "w"), indent=1)
    os.makedirs(os.path.join(MODEL, "1_Pooling"))
    os.makedirs(os.path.join(MODEL, "2_Normalize"))
    json.dump({"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
               "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True, "include_prompt": True},
              open(os.path.join(MODEL, "1_Pooling", "config.json"), "w"), indent=1)
    json.dump({"prompts": {"query": QUERY_PROMPT, "document": ""}, "default_prompt_name": None},
              open(os.path.join(MODEL, "config_sentence_transformers.json"), "w"), indent=1)
    json.dump({"max_seq_length": 256, "do_lower_case": False},
              open(os.path.join(MODEL, "sentence_bert_config.json"), "w"), indent=1)

    ref = AutoModel.from_pretrained(MODEL, dtype=torch.float32).eval()

    def hidden(text):
        ids = tok(text)["input_ids"]
        with torch.no_grad():
            h = ref(input_ids=torch.tensor([ids])).last_hidden_state[0].double()
        return ids, h

    def norm(v):
        return (v / v.norm().clamp_min(1e-12)).tolist()

    cases = []
    for t in TEXTS:
        ids, h = hidden(t)
        qids, hq = hidden(QUERY_PROMPT + t)
        _, ht = hidden(f"Instruct: {TASK}\nQuery:" + t)
        cases.append({"text": t, "ids": ids, "query_ids": qids, "last_norm": norm(h[-1]),
                      "last_norm_query": norm(hq[-1]), "mean": h.mean(0).tolist(), "last_task_query": norm(ht[-1])})
    json.dump({"query_prompt": QUERY_PROMPT, "task": TASK, "cases": cases}, open(os.path.join(OUT, "expected.json"), "w"))
    print("wrote", OUT, "vocab", vocab, "tensors", list(ref.state_dict())[:3])


if __name__ == "__main__":
    main()
