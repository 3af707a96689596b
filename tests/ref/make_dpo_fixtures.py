"""DPO fixtures (tests/test_dpo.c): makes tests/ref/dpo/ (models in tests/ref/dpo/models/{policy,ref}: not
in tests/ref/models/, whose every folder test_model.c checks against transformers logits).

Two tiny random Llama models on the tests/ref/tok/bl tokenizer (Llama 3 chat template, BOS
added to plain text): the policy and a *different* reference model. A handful of preference
pairs in every accepted format (TRL conversational with and without an explicit prompt, TRL
plain text, OpenAI preference JSONL) are tokenized the way TRL 1.16's
DPOTrainer._prepare_dataset.tokenize_fn does (written out below from its source: the prompt
alone with the generation prompt, prompt + reply, the completion from their common prefix;
plain text: tokenizer(prompt), tokenizer(prompt + reply + eos)). Then, in float64:
  logps   = sum over the completion tokens of log softmax(logits)[next token]
  d       = (pi_c - ref_c) - (pi_r - ref_r)
  sigmoid = -(1-e) logsigmoid(beta d) - e logsigmoid(-beta d)   (TRL "sigmoid" at e = 0)
  ipo     = (d' - 1/(2 beta))^2, d' with each log-ratio divided by its completion length
  hinge   = relu(1 - beta d)
  loss    = mean over the pairs; gradients by autograd w.r.t. the policy's parameters.
(TRL 1.16 _compute_loss, dpo_trainer.py; the formulas are transcribed because the trainer
needs a full Trainer setup; trl is imported to take extract_prompt and is_conversational.)

Outputs: dpo/pairs.jsonl, dpo/expected.json (rows, completion starts, logps, losses),
dpo/grads.safetensors (float32: every non-embedding gradient per loss, and the embedding
gradient for sigmoid). Usage: /tmp/refenv/bin/python tests/ref/make_dpo_fixtures.py
"""
import json, os
import torch
import torch.nn.functional as F
import trl
from trl.data_utils import extract_prompt, is_conversational
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

root = os.path.dirname(os.path.abspath(__file__))
tok = PreTrainedTokenizerFast.from_pretrained(os.path.join(root, "tok", "bl"))

records = [
    {"prompt": [{"role": "user", "content": "What is the capital of France?"}],
     "chosen": [{"role": "assistant", "content": "Paris."}],
     "rejected": [{"role": "assistant", "content": "It is a city in France, I think Lyon."}]},
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."}],
     "chosen": [{"role": "assistant", "content": "Blue."}],
     "rejected": [{"role": "assistant", "content": "There are many colors; one of them is green."}]},
    {"chosen": [{"role": "user", "content": "Count to three."}, {"role": "assistant", "content": "1, 2, 3."}],
     "rejected": [{"role": "user", "content": "Count to three."}, {"role": "assistant", "content": "One."}]},
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " made of cheese and rain."},
    {"input": {"messages": [{"role": "user", "content": "2+2?"}]},
     "preferred_output": [{"role": "assistant", "content": "4"}],
     "non_preferred_output": [{"role": "assistant", "content": "Five, probably."}]},
]


def to_trl(r):
    if "input" in r:  # OpenAI preference fine-tuning record
        return {"prompt": r["input"]["messages"], "chosen": r["preferred_output"], "rejected": r["non_preferred_output"]}
    return extract_prompt(r) if "prompt" not in r else dict(r)


def common_prefix_length(a, b):
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return k


def tokenize(ex):  # TRL 1.16 DPOTrainer._prepare_dataset: add_eos (plain text) + tokenize_fn
    if is_conversational(ex):
        p = tok.apply_chat_template(ex["prompt"], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
        c = tok.apply_chat_template(ex["prompt"] + ex["chosen"], tokenize=True, return_dict=True)["input_ids"]
        r = tok.apply_chat_template(ex["prompt"] + ex["rejected"], tokenize=True, return_dict=True)["input_ids"]
    else:
        ch = ex["chosen"] if ex["chosen"].endswith(tok.eos_token) else ex["chosen"] + tok.eos_token
        rj = ex["rejected"] if ex["rejected"].endswith(tok.eos_token) else ex["rejected"] + tok.eos_token
        p = tok(text=ex["prompt"])["input_ids"]
        c = tok(text=ex["prompt"] + ch)["input_ids"]
        r = tok(text=ex["prompt"] + rj)["input_ids"]
    k = min(common_prefix_length(p, c), common_prefix_length(p, r))
    return c, r, k


def make_model(seed):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128, rms_norm_eps=1e-5,
                      rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=0, eos_token_id=tok.eos_token_id,
                      attn_implementation="eager")
    m = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(1 + 0.1 * torch.randn_like(p) if "norm" in n else 0.25 * torch.randn_like(p))
    return m


def logps(m, rows, ks):
    T = max(len(x) for x in rows)
    ids = torch.tensor([x + [0] * (T - len(x)) for x in rows])
    mask = torch.tensor([[1] * len(x) + [0] * (T - len(x)) for x in rows])
    lp = torch.log_softmax(m(input_ids=ids, attention_mask=mask).logits.double(), -1)
    out, n = [], []
    for i, (x, k) in enumerate(zip(rows, ks)):
        t = range(max(k, 1), len(x))  # completion tokens with a logit before them
        out.append(sum(lp[i, j - 1, x[j]] for j in t))
        n.append(len(t))
    return torch.stack(out), torch.tensor(n, dtype=torch.float64)


def dpo_loss(kind, beta, eps, pc, pr, rc, rr, nc, nr):
    d = (pc - rc) - (pr - rr)
    if kind == "sigmoid":
        l = -(1 - eps) * F.logsigmoid(beta * d) - eps * F.logsigmoid(-beta * d)
    elif kind == "hinge":
        l = torch.relu(1 - beta * d)
    else:
        dd = (pc - rc) / nc.clamp(min=1) - (pr - rr) / nr.clamp(min=1)
        l = (dd - 1 / (2 * beta)) ** 2
    return l.mean()


def main():
    pol, ref = make_model(1), make_model(2)
    for name, m in (("policy", pol), ("ref", ref)):
        d = os.path.join(root, "dpo", "models", name)
        m.save_pretrained(d, safe_serialization=True)
        if name == "policy":
            tok.save_pretrained(d)
    pol, ref = pol.double(), ref.double()
    os.makedirs(os.path.join(root, "dpo"), exist_ok=True)
    with open(os.path.join(root, "dpo", "pairs.jsonl"), "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    rows, ks = [], []
    for r in records:
        c, rj, k = tokenize(to_trl(r))
        rows += [c, rj]
        ks += [k, k]
    with torch.no_grad():
        ref_lp, n = logps(ref, rows, ks)
    cases = [("sigmoid", 0.1, 0.0), ("sigmoid_ls", 0.5, 0.2), ("ipo", 0.1, 0.0), ("hinge", 0.5, 0.0)]
    exp = {"trl": trl.__version__, "torch": torch.__version__, "rows": rows, "starts": ks,
           "ref_logps": ref_lp.tolist(), "ntok": n.tolist(), "losses": {}}
    grads = {}
    for name, beta, eps in cases:
        pol.zero_grad()
        lp, _ = logps(pol, rows, ks)
        kind = name.split("_")[0]
        loss = dpo_loss(kind, beta, eps, lp[0::2], lp[1::2], ref_lp[0::2], ref_lp[1::2], n[0::2], n[1::2])
        loss.backward()
        exp["policy_logps"] = lp.tolist()
        exp["losses"][name] = {"loss": loss.item(), "beta": beta, "label_smoothing": eps, "loss_type": kind}
        for pn, p in pol.named_parameters():
            if "embed" in pn and name != "sigmoid":
                continue
            grads[name + "/" + pn] = p.grad.float().contiguous()
        print(name, loss.item())
    with open(os.path.join(root, "dpo", "expected.json"), "w") as f:
        json.dump(exp, f)
    save_file(grads, os.path.join(root, "dpo", "grads.safetensors"))
    print("rows", [len(x) for x in rows], "starts", ks)


main()
