# Synthetic preference pairs whose rows (prompt + reply) are at least SEQ tokens with the
# tests/ref/tok/bl tokenizer, so that every row is cut to exactly SEQ: plain text, prompt
# ~SEQ/4 tokens. Usage: python3 make_pairs.py SEQ N OUT.jsonl
import json, random, sys
seq, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(0)
words = "the of and to in is was for on that with as by at from it an be this which or are not".split() + \
        "river mountain garden letter window engine market summer silver yellow quiet bright".split()
def text(k): return " ".join(rnd.choice(words) for _ in range(k))
with open(out, "w") as f:
    for i in range(n):  # ~1.3 tokens per word: 1.2 * seq words per reply are plenty
        f.write(json.dumps({"prompt": text(seq // 4), "chosen": " " + text(seq), "rejected": " " + text(seq)}) + "\n")
