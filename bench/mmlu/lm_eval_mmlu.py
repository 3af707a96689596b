"""MMLU (letter form, k-shot) with lm-evaluation-harness's HF backend, timed; JSON out.

    python3 bench/mmlu/lm_eval_mmlu.py --model DIR [--data tests/data/mmlu] [--dtype bfloat16]
        [--device cuda] [--batch-size auto] [--shots 5] [--limit N] [--subjects a,b] --out FILE

The tasks are the ones tests/ref/make_eval_fixtures.py builds for tests/test_eval.c (its
write_tasks, imported, not copied): one custom task per subject on the installed
tasks/mmlu/default/_default_template_yaml, the Hendrycks CSVs read by `datasets`' csv
builder, dev as the few-shot split, val (or test) as the evaluated split. DATA is a
folder with dev/ and val/ (or test/) like lmadapt's mmlu:PATH; every subject that has
both files is evaluated (or --subjects).

Timing: the model is loaded first (HFLM(...), "seconds_load"), then
lm_eval.simple_evaluate runs on it ("seconds_eval": task building, few-shot contexts,
tokenization, the forwards, metrics); "seconds" is their sum, the wall clock of the run
after `import lm_eval`.

JSON: tool, versions, settings, n, correct, micro_acc, macro_acc, seconds*, subjects
[{name, n, correct, acc}] (file order of the names, sorted), items {subject: [{doc, gold,
pred, ll[4]}]} with pred the argmax of the four log-likelihoods (the first on a tie, as
lm-eval's acc), doc the row index in the evaluated CSV.
"""
import argparse, glob, json, os, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def subjects_of(data, split):
    return sorted(os.path.basename(p)[:-len("_%s.csv" % split)]
                  for p in glob.glob(os.path.join(data, split, "*_%s.csv" % split))
                  if os.path.exists(os.path.join(data, "dev", os.path.basename(p).replace("_%s.csv" % split, "_dev.csv"))))


def build_tasks(data, split, subjects):
    """The lm-eval task folder (one lmatest_{subject} task each), by make_eval_fixtures.write_tasks."""
    sys.path.insert(0, os.path.join(ROOT, "tests/ref"))
    import make_eval_fixtures as mef  # write_tasks(tmp) reads mef.SUBJECTS and mef.DATA
    tmp = tempfile.mkdtemp(prefix="lmeval-mmlu-")
    # write_tasks reads DATA/mmlu/dev/{s}_dev.csv and DATA/mmlu/val/{s}_val.csv: DATA = a folder
    # whose mmlu/dev links to the data's dev and mmlu/val to the evaluated split
    layout = os.path.join(tmp, "layout")
    os.makedirs(os.path.join(layout, "mmlu"))
    os.symlink(os.path.join(data, "dev"), os.path.join(layout, "mmlu", "dev"))
    os.symlink(os.path.join(data, split), os.path.join(layout, "mmlu", "val"))
    taskdir = os.path.join(tmp, "tasks")
    os.makedirs(taskdir)
    mef.SUBJECTS = list(subjects)
    mef.DATA = layout
    mef.write_tasks(taskdir)
    if split != "val":  # the csv file names are {s}_{split}.csv
        for s in subjects:
            p = os.path.join(taskdir, "lmatest_%s.yaml" % s)
            t = open(p).read().replace("/mmlu/val/%s_val.csv" % s, "/mmlu/val/%s_%s.csv" % (s, split))
            open(p, "w").write(t)
    return taskdir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default=os.path.join(ROOT, "tests/data/mmlu"))
    ap.add_argument("--split", help="evaluated split: default test if DATA/test exists, else val")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-size", default="auto")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="at most N items per subject (0: all)")
    ap.add_argument("--subjects", help="comma-separated subset")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    data = os.path.abspath(a.data)
    split = a.split or ("test" if os.path.isdir(os.path.join(data, "test")) else "val")
    subjects = a.subjects.split(",") if a.subjects else subjects_of(data, split)
    if not subjects:
        sys.exit("no {subject}_%s.csv with a matching dev file under %s" % (split, data))

    import lm_eval, torch, transformers, datasets
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    bs = a.batch_size if a.batch_size == "auto" or a.batch_size.startswith("auto") else int(a.batch_size)
    taskdir = build_tasks(data, split, subjects)

    t0 = time.perf_counter()
    lm = HFLM(pretrained=a.model, dtype=a.dtype, device=a.device, batch_size=bs)
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    tm = TaskManager(include_path=taskdir, include_defaults=False)
    res = lm_eval.simple_evaluate(model=lm, tasks=["lmatest_" + s for s in subjects], num_fewshot=a.shots,
                                  log_samples=True, task_manager=tm, limit=a.limit or None,
                                  batch_size=bs, device=a.device)
    t2 = time.perf_counter()

    subj, items = [], {}
    for s in subjects:
        samples = sorted(res["samples"]["lmatest_" + s], key=lambda x: x["doc_id"])
        rows = []
        for x in samples:
            ll = [float(r[0]) for r in x["filtered_resps"]]
            pred = max(range(len(ll)), key=lambda k: (ll[k], -k))  # first max
            rows.append({"doc": x["doc_id"], "gold": int(x["target"]), "pred": pred, "ll": ll})
            assert (pred == int(x["target"])) == bool(x["acc"]), (s, x["doc_id"], ll, x["target"], x["acc"])
        correct = sum(r["pred"] == r["gold"] for r in rows)
        acc = res["results"]["lmatest_" + s]["acc,none"]
        assert abs(acc - correct / len(rows)) < 1e-12, (s, acc, correct, len(rows))
        subj.append({"name": s, "n": len(rows), "correct": correct, "acc": correct / len(rows)})
        items[s] = rows
    n = sum(x["n"] for x in subj)
    correct = sum(x["correct"] for x in subj)
    out = {
        "tool": "lm-eval",
        "versions": {"lm_eval": getattr(lm_eval, "__version__", None) or __import__("importlib.metadata").metadata.version("lm_eval"),
                     "torch": torch.__version__, "transformers": transformers.__version__,
                     "datasets": datasets.__version__, "python": sys.version.split()[0],
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "settings": {"model": os.path.abspath(a.model), "data": data, "split": split, "dtype": a.dtype,
                     "device": a.device, "batch_size": a.batch_size,
                     "batch_size_used": getattr(lm, "batch_size_per_gpu", None),
                     "shots": a.shots, "limit": a.limit},
        "n": n, "correct": correct, "micro_acc": correct / n,
        "macro_acc": sum(x["acc"] for x in subj) / len(subj),
        "seconds": t2 - t0, "seconds_load": t1 - t0, "seconds_eval": t2 - t1,
        "subjects": subj, "items": items,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print("lm-eval: %d items, micro %.4f macro %.4f, load %.1f s + eval %.1f s = %.1f s (%s, %s, batch %s)"
          % (n, out["micro_acc"], out["macro_acc"], t1 - t0, t2 - t1, t2 - t0, a.device, a.dtype,
             out["settings"]["batch_size_used"]))


if __name__ == "__main__":
    main()
