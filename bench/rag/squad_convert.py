"""SQuAD v1.1 JSON -> the corpus/qa JSONL that bench/rag/squad.sh and lmadapt rag read.
Paragraph ids: TITLE/INDEX; one question per paragraph (its first). Usage:
squad_convert.py dev-v1.1.json OUTDIR [MAX_PARAGRAPHS]"""
import json, os, sys

data = json.load(open(sys.argv[1]))["data"]
out, cap = sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
os.makedirs(out, exist_ok=True)
n = 0
with open(f"{out}/corpus.jsonl", "w") as c, open(f"{out}/qa.jsonl", "w") as q:
    for art in data:
        for i, p in enumerate(art["paragraphs"]):
            if n == cap or not p["qas"]:
                continue
            pid = f"{art['title']}/{i}"
            c.write(json.dumps({"id": pid, "title": art["title"], "text": p["context"]}) + "\n")
            qa = p["qas"][0]
            ans = list(dict.fromkeys(a["text"] for a in qa["answers"]))
            q.write(json.dumps({"id": qa["id"], "question": qa["question"], "doc_ids": [pid], "answers": ans}) + "\n")
            n += 1
