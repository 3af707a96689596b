# Reference for tests/test_eval_cloze.c: MMLU in cloze form (lm-evaluation-harness's
# continuation variant: "The following are questions (with answers) about {subject}.\n\n",
# shots "Question: {q.strip()}\nAnswer: {gold text}\n\n", then "Question: {q.strip()}\nAnswer:",
# continuations " {choice}", prediction = argmax of log-likelihood / len(choice)), scored with
# transformers (fp32, CPU) on SmolLM2-135M-Instruct (the fetched Q4_1 GGUF, dequantized). Pairs are encoded as lm-eval's
# _encode_pair (context ids, then the ids of context + continuation past them).
# Run: /tmp/refenv/bin/python tests/ref/make_mmlu_cloze_fixture.py
# Writes tests/ref/eval/mmlu_cloze.json (small: strings and 4 numbers an item).
import csv, json, os, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
M = os.path.expanduser("~/.cache/lmadapt/models/smollm2-135m-instruct")
DATA = "tests/data/mmlu"
SUBJECTS, N_ITEMS, SHOTS = ["astronomy", "high_school_geography"], 4, [0, 2]
G = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the fetched file; transformers dequantizes it to fp32, as lmadapt does
tok = AutoTokenizer.from_pretrained(M, gguf_file=G)
model = AutoModelForCausalLM.from_pretrained(M, gguf_file=G, torch_dtype=torch.float32).eval()
def rows(split, s):
    with open(os.path.join(DATA, split, f"{s}_{split}.csv"), newline="") as f:
        return [{"question": r[0], "choices": r[1:5], "answer": "ABCD".index(r[5])} for r in csv.reader(f)]
def q(d): return "Question: " + d["question"].strip() + "\nAnswer:"
out = []
for s in SUBJECTS:
    dev, val = rows("dev", s), rows("val", s)
    for k in SHOTS:
        head = "The following are questions (with answers) about " + s.replace("_", " ") + ".\n\n"
        shots = "".join(q(d) + " " + d["choices"][d["answer"]] + "\n\n" for d in dev[:k])
        for i, d in enumerate(val[:N_ITEMS]):
            ctx = head + shots + q(d)
            ctx_ids = tok(ctx).input_ids
            lls = []
            for c in d["choices"]:
                whole = tok(ctx + " " + c).input_ids
                cont = whole[len(ctx_ids):]
                with torch.no_grad():
                    lp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
                n = len(whole)
                lls.append(float(sum(lp[n - len(cont) - 1 + j, t] for j, t in enumerate(cont))))
            norm = [l / len(c) for l, c in zip(lls, d["choices"])]
            out.append({"subject": s, "index": i, "shots": k, "prompt": ctx, "ll": lls,
                        "pred": max(range(4), key=lambda j: norm[j]), "answer": d["answer"]})
os.makedirs("tests/ref/eval", exist_ok=True)
with open("tests/ref/eval/mmlu_cloze.json", "w") as f:
    json.dump({"model": "smollm2-135m-instruct", "items": out}, f, indent=1)
print(sum(o["pred"] == o["answer"] for o in out), "of", len(out), "right")
