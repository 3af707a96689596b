"""Do lmadapt and transformers give the same token ids on the MMLU requests?

    python3 bench/mmlu/check_tokenizer.py [--tok .mmlu/tok] [--data tests/data/mmlu]
        [--lmadapt build/lmadapt] [--items 1] [--shots 5]

For the first --items val rows of every subject, the request lm-eval builds (its own task
code, lm_eval_mmlu.build_tasks: fewshot_context + construct_requests) is encoded as
HFLM does (tokenizer default: BOS added) and as TemplateLM._encode_pair splits it
(context ids = encode(context), continuation = encode(context + continuation) minus them),
and each of those strings also with `lmadapt tokenizer encode --special`. Prints the count
of identical encodings; exits 1 on any difference (naming the subject and the first
differing position).
"""
import argparse, json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lm_eval_mmlu as L  # noqa: E402


def lma_encode(bin_, tok, text):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
    try:
        out = subprocess.check_output([bin_, "tokenizer", "encode", "--tokenizer", tok, "--file", f.name, "--special",
                                       "--json"])
    finally:
        os.unlink(f.name)
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tok", default=os.path.join(L.ROOT, ".mmlu/tok"))
    ap.add_argument("--data", default=os.path.join(L.ROOT, "tests/data/mmlu"))
    ap.add_argument("--lmadapt", default=os.environ.get("LMADAPT", os.path.join(L.ROOT, "build/lmadapt")))
    ap.add_argument("--items", type=int, default=1)
    ap.add_argument("--shots", type=int, default=5)
    a = ap.parse_args()
    from transformers import AutoTokenizer
    from lm_eval.tasks import TaskManager, get_task_dict
    tok = AutoTokenizer.from_pretrained(a.tok)
    data = os.path.abspath(a.data)
    split = "test" if os.path.isdir(os.path.join(data, "test")) else "val"
    subjects = L.subjects_of(data, split)
    tasks = get_task_dict(["lmatest_" + s for s in subjects],
                          TaskManager(include_path=L.build_tasks(data, split, subjects), include_defaults=False))
    same = n = 0
    bad = []
    for s in subjects:
        task = tasks["lmatest_" + s]
        docs = list(task.test_docs())
        for i in range(min(a.items, len(docs))):
            ctx = task.fewshot_context(docs[i], a.shots)
            reqs = task.construct_requests(docs[i], ctx, metadata=("x", i, 0))
            for text in [ctx] + [ctx + r.arguments[1] for r in reqs]:
                hf = tok.encode(text)
                lm = lma_encode(a.lmadapt, a.tok, text)
                n += 1
                if hf == lm:
                    same += 1
                else:
                    k = next((j for j in range(min(len(hf), len(lm))) if hf[j] != lm[j]), min(len(hf), len(lm)))
                    bad.append("%s item %d: %d vs %d ids, first difference at %d: hf %s lmadapt %s"
                               % (s, i, len(hf), len(lm), k, hf[k:k + 5], lm[k:k + 5]))
    print("tokenizer check: %d of %d encodings identical (%d subjects x %d items x (context + 4 context+choice), "
          "%d shots; %s vs transformers)" % (same, n, len(subjects), a.items, a.shots, a.lmadapt))
    for b in bad[:20]:
        print("  " + b)
    sys.exit(0 if same == n else 1)


if __name__ == "__main__":
    main()
