"""Fixtures for tests/test_eval*.c (run from the repo root; needs lm-eval, transformers):

    pip install lm-eval        # 0.4.x; made with 0.4.13
    python3 tests/ref/make_eval_fixtures.py [--data DIR] [--counts-only]

DIR is the data folder (default tests/data, see tests/data/MANIFEST.md);
--counts-only rewrites mmlu_rowcounts.txt and gsm8k_answers.txt only (plain Python,
no lm-eval or transformers needed).

Writes tests/ref/eval/:
  mmlu_prompts.json  MMLU requests built by lm-evaluation-harness's own code: a custom
                     task per subject (the installed mmlu/default/_default_template_yaml,
                     dataset_path csv on the Hendrycks files in tests/data/mmlu, dev as
                     the few-shot split, val as the test split; process_docs turns the
                     CSV row into the cais/mmlu record), task.fewshot_context() and
                     task.construct_requests() give (context, continuation); the token
                     ids come from lm_eval's TemplateLM._encode_pair with the bl
                     tokenizer (tests/ref/tok/bl) encoded as HFLM.tok_encode does.
                     Only the first 5 val rows of 7 subjects are used, so the prompts
                     are the same for the full Hendrycks files and the cut ones in
                     tests/data (every dev row is kept there).
  mmlu_rowcounts.txt "<split>/<file> <rows>" from Python's csv module, every file.
  gsm8k_answers.txt  one line per gsm8k_train.jsonl record: the text after '####' with
                     commas removed, as a Python float repr.
"""
import argparse, csv, glob, json, os, sys, tempfile

DATA = "tests/data"
OUT = "tests/ref/eval"
SUBJECTS = ["abstract_algebra", "college_mathematics", "formal_logic", "nutrition",
            "professional_law", "world_religions", "college_physics"]
N_ITEMS = 5
SHOTS = [0, 1, 5]

UTILS = '''
def raw(x):
    return x

def process_docs(ds):
    def f(doc):
        return {"question": doc["question"], "subject": "",
                "choices": [doc["A"], doc["B"], doc["C"], doc["D"]],
                "answer": "ABCD".index(doc["answer"])}
    import datasets
    feats = datasets.Features({"question": datasets.Value("string"), "subject": datasets.Value("string"),
                               "choices": datasets.Sequence(datasets.Value("string")),
                               "answer": datasets.Value("int64")})  # as cais/mmlu: answer is an index
    return ds.map(f, remove_columns=ds.column_names, features=feats)
'''


def write_tasks(tmp):
    import lm_eval
    tmpl = os.path.join(os.path.dirname(lm_eval.__file__), "tasks/mmlu/default/_default_template_yaml")
    with open(tmpl) as f, open(os.path.join(tmp, "_default_template_yaml"), "w") as g:
        g.write(f.read())
    with open(os.path.join(tmp, "utils.py"), "w") as f:
        f.write(UTILS)
    for s in SUBJECTS:
        dev = os.path.abspath(os.path.join(DATA, "mmlu/dev", s + "_dev.csv"))
        val = os.path.abspath(os.path.join(DATA, "mmlu/val", s + "_val.csv"))
        desc = "The following are multiple choice questions (with answers) about %s.\n\n" % s.replace("_", " ")
        with open(os.path.join(tmp, "lmatest_%s.yaml" % s), "w") as f:
            f.write('include: _default_template_yaml\n')
            f.write('task: lmatest_%s\n' % s)
            f.write('dataset_path: csv\n')
            f.write('dataset_name: null\n')
            f.write('dataset_kwargs:\n  data_files:\n    dev: %s\n    test: %s\n' % (json.dumps(dev), json.dumps(val)))
            f.write('  column_names: [question, A, B, C, D, answer]\n  header: null\n')
            # raw strings: no number/NA inference by pandas
            f.write('  keep_default_na: false\n  na_filter: false\n  converters:\n')
            for c in ["question", "A", "B", "C", "D", "answer"]:
                f.write('    %s: !function utils.raw\n' % c)
            f.write('process_docs: !function utils.process_docs\n')
            f.write('description: %s\n' % json.dumps(desc))


def counts():
    with open(os.path.join(OUT, "mmlu_rowcounts.txt"), "w") as f:
        for p in sorted(glob.glob(os.path.join(DATA, "mmlu/*/*.csv"))):
            rows = list(csv.reader(open(p, newline="", encoding="utf-8")))
            f.write("%s/%s %d\n" % (os.path.basename(os.path.dirname(p)), os.path.basename(p), len(rows)))
    with open(os.path.join(DATA, "gsm8k_train.jsonl")) as f, open(os.path.join(OUT, "gsm8k_answers.txt"), "w") as g:
        for line in f:
            ans = json.loads(line)["answer"]
            g.write(repr(float(ans.split("####")[-1].strip().replace(",", ""))) + "\n")


def main():
    global DATA
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--counts-only", action="store_true")
    a = ap.parse_args()
    DATA = a.data
    os.makedirs(OUT, exist_ok=True)
    if a.counts_only:
        counts()
        return
    from lm_eval.tasks import TaskManager, get_task_dict
    from lm_eval.api.model import TemplateLM
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained("tests/ref/tok/bl")

    class Enc:  # what HFLM._encode_pair sees: causal backend, tok_encode with the tokenizer default
        backend = "causal"

        def tok_encode(self, s, **kw):
            return tok.encode(s)

    items = []
    with tempfile.TemporaryDirectory() as tmp:
        write_tasks(tmp)
        tm = TaskManager(include_path=tmp, include_defaults=False)
        tasks = get_task_dict(["lmatest_" + s for s in SUBJECTS], tm)
        for s in SUBJECTS:
            task = tasks["lmatest_" + s]
            docs = list(task.test_docs())
            # one file row per doc, in file order (checked against the csv module)
            rows = list(csv.reader(open(os.path.join(DATA, "mmlu/val", s + "_val.csv"), newline="", encoding="utf-8")))
            assert len(docs) == len(rows), (s, len(docs), len(rows))
            for i in range(N_ITEMS):
                assert docs[i]["question"] == rows[i][0] and docs[i]["choices"] == rows[i][1:5], (s, i)
                assert docs[i]["answer"] == "ABCD".index(rows[i][5]), (s, i)
                for k in SHOTS:
                    ctx = task.fewshot_context(docs[i], k)
                    reqs = task.construct_requests(docs[i], ctx, metadata=("x", i, 0))
                    conts = [r.arguments[1] for r in reqs]
                    assert all(r.arguments[0] == ctx for r in reqs)
                    enc = [TemplateLM._encode_pair(Enc(), ctx, c) for c in conts]
                    items.append({"subject": s, "split": "val", "index": i, "shots": k, "answer": docs[i]["answer"],
                                  "context": ctx, "continuations": conts, "context_ids": enc[0][0],
                                  "continuation_ids": [e[1] for e in enc]})
                    assert all(e[0] == enc[0][0] for e in enc)
    with open(os.path.join(OUT, "mmlu_prompts.json"), "w") as f:
        json.dump({"lm_eval_version": __import__("lm_eval").__version__, "tokenizer": "tests/ref/tok/bl",
                   "items": items}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    counts()
    print("wrote %d prompts" % len(items))


if __name__ == "__main__":
    main()
