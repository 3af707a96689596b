"""Compares lmadapt eval's MMLU JSON with bench/mmlu/lm_eval_mmlu.py's; prints a table.

    python3 bench/mmlu/compare.py --lmadapt OUT/lmadapt.json --lmeval OUT/lm_eval.json
        [--lmadapt-wall S] [--json OUT/compare.json]

--lmadapt-wall: the wall-clock seconds of the whole `lmadapt eval` process (load included),
as device_run.sh measured it; lmadapt's own JSON "seconds" is the MMLU task alone.
Per item: the letter lmadapt chose (its JSON's subjects[].pred) against lm-eval's.
Always exits 0 (a report); a missing or broken input is printed as such.
"""
import argparse, json, sys


def load(p):
    try:
        return json.load(open(p))
    except Exception as e:  # noqa: BLE001 (report, never fail)
        print("cannot read %s: %s" % (p, e))
        return None


def lmadapt_subjects(d):
    r = [x for x in d.get("results", []) if x.get("kind") == "mmlu"]
    if not r:
        return None, None
    r = r[0]
    return r, {s["name"]: s for s in r["subjects"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmadapt", required=True)
    ap.add_argument("--lmeval", required=True)
    ap.add_argument("--lmadapt-wall", type=float)
    ap.add_argument("--lmeval-wall", type=float)
    ap.add_argument("--json")
    a = ap.parse_args()
    A, B = load(a.lmadapt), load(a.lmeval)
    summary = {}
    ra, sa = lmadapt_subjects(A) if A else (None, None)
    if A and ra is None:
        print("%s: no mmlu result" % a.lmadapt)
    rows = []
    if ra:
        wall = a.lmadapt_wall
        rows.append(("lmadapt eval", ra["n"], ra["seconds"], wall, ra["micro_acc"], ra["macro_acc"]))
    if B:
        rows.append(("lm-eval (HF)", B["n"], B["seconds_eval"], a.lmeval_wall or B["seconds"], B["micro_acc"],
                     B["macro_acc"]))
    print("\n%-14s %6s %10s %9s %10s %9s %8s %8s" % ("", "items", "eval s", "items/s", "wall s", "items/s", "micro",
                                                   "macro"))
    for name, n, s, w, mi, ma in rows:
        print("%-14s %6d %10.2f %9.1f %10s %9s %8.4f %8.4f" % (
            name, n, s, n / s if s else 0, "%.2f" % w if w else "-", "%.1f" % (n / w) if w else "-", mi, ma))
    if B:
        print("lm-eval: model load %.2f s (in its wall), eval %.2f s; settings %s" % (
            B["seconds_load"], B["seconds_eval"], json.dumps(B.get("settings", {}))))
        print("versions: %s" % json.dumps(B.get("versions", {})))
    if ra and B:
        ratio_eval = B["seconds_eval"] / ra["seconds"] if ra["seconds"] else float("nan")
        print("\ntime ratio lm-eval / lmadapt: eval %.2fx" % ratio_eval, end="")
        summary["ratio_eval"] = ratio_eval
        if a.lmadapt_wall:
            w = a.lmeval_wall or B["seconds"]
            summary["ratio_wall"] = w / a.lmadapt_wall
            print(", wall %.2fx (lm-eval %s, lmadapt process)" % (
                summary["ratio_wall"], "process" if a.lmeval_wall else "load + eval"), end="")
        print()
        sb = {s["name"]: s for s in B["subjects"]}
        common = [s for s in sb if s in sa]
        only = sorted(set(sb) ^ set(sa))
        if only:
            print("subjects in one result only: %s" % ", ".join(only))
        diff = []
        for s in common:
            if sa[s]["n"] != sb[s]["n"]:
                print("  %s: item counts differ: lmadapt %d, lm-eval %d" % (s, sa[s]["n"], sb[s]["n"]))
            d = sa[s]["acc"] - sb[s]["acc"]
            if sa[s]["correct"] != sb[s]["correct"] or sa[s]["n"] != sb[s]["n"]:
                diff.append((abs(d), s, d))
        diff.sort(reverse=True)
        print("\nper subject: %d of %d subjects differ in correct count" % (len(diff), len(common)), end="")
        if diff:
            print("; largest |acc difference| %.4f (%s)" % (diff[0][0], diff[0][1]))
            print("  %-42s %12s %12s %8s" % ("subject", "lmadapt", "lm-eval", "diff"))
            for _, s, d in diff[:15]:
                print("  %-42s %5d/%-6d %5d/%-6d %+8.4f" % (s, sa[s]["correct"], sa[s]["n"], sb[s]["correct"],
                                                           sb[s]["n"], d))
            if len(diff) > 15:
                print("  ... %d more" % (len(diff) - 15))
            tot = sum(abs(sa[s]["correct"] - sb[s]["correct"]) for s in common)
            print("  sum over subjects of |correct difference|: %d items (a lower bound on items that differ)" % tot)
        else:
            print(" (every subject: identical correct counts)")
        summary.update({"subjects": len(common), "subjects_differ": len(diff),
                        "max_abs_acc_diff": diff[0][0] if diff else 0.0,
                        "micro_diff": ra["micro_acc"] - B["micro_acc"], "macro_diff": ra["macro_acc"] - B["macro_acc"]})
        print("micro difference (lmadapt - lm-eval) %+.4f, macro %+.4f" % (summary["micro_diff"], summary["macro_diff"]))
        # per item: the letters lmadapt chose (its JSON's "pred", one an item)
        letters = {s: sa[s]["pred"] for s in sa if sa[s].get("pred") is not None}
        if letters:
            agree = n = 0
            for s, pred in letters.items():
                for r in B["items"].get(s, []):
                    if r["doc"] < len(pred):
                        n += 1
                        agree += pred[r["doc"]] == "ABCD"[r["pred"]]
            print("per item (the letter chosen): %d of %d agree" % (agree, n))
            summary["items_agree"], summary["items_compared"] = agree, n
        else:
            print("per item: not available (no \"pred\" in lmadapt's JSON: an older lmadapt)")
    if B:  # lm-eval's own spread: how close to ties the choices are
        gaps = sorted(sorted(r["ll"], reverse=True)[0] - sorted(r["ll"], reverse=True)[1]
                      for rows in B["items"].values() for r in rows)
        if gaps:
            q = lambda f: gaps[min(len(gaps) - 1, int(f * len(gaps)))]
            preds = {}
            for rows in B["items"].values():
                for r in rows:
                    preds["ABCD"[r["pred"]]] = preds.get("ABCD"[r["pred"]], 0) + 1
            print("lm-eval top-2 log-likelihood gap: p1 %.4f p10 %.4f p50 %.4f; items with gap < 0.01: %d, < 0.1: %d;"
                  " predicted letters %s" % (q(0.01), q(0.1), q(0.5), sum(g < 0.01 for g in gaps),
                                              sum(g < 0.1 for g in gaps), json.dumps(preds, sort_keys=True)))
            summary["gap_p10"], summary["preds"] = q(0.1), preds
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print("compare.py: failed: %s" % e)
    sys.exit(0)
