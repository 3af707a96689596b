# Compares two lmadapt metrics.jsonl files step by step (the DPO keys); exit 1 when a value
# differs by more than ATOL + RTOL * |reference|. Usage: compare.py REF.jsonl OTHER.jsonl ATOL RTOL LABEL
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
atol, rtol, label = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
keys = ["loss", "reward_chosen", "reward_rejected", "reward_margin", "logps_chosen", "logps_rejected"]
ok = len(a) == len(b) and len(a) > 0
worst = {k: 0.0 for k in keys}
for x, y in zip(a, b):
    for k in keys:
        d = abs(x[k] - y[k])
        worst[k] = max(worst[k], d / (atol + rtol * abs(x[k])))
ok = ok and all(v <= 1 for v in worst.values())
print(f"{label}: {len(a)} vs {len(b)} steps; worst |diff| / (atol {atol} + rtol {rtol} |ref|): " +
      ", ".join(f"{k} {v:.3f}" for k, v in worst.items()) + (" PASS" if ok else " FAIL"))
print(f"  loss cpu {a[0]['loss']:.5f} -> {a[-1]['loss']:.5f}, other {b[0]['loss']:.5f} -> {b[-1]['loss']:.5f}; "
      f"reward accuracy at the end {a[-1]['reward_accuracy']} vs {b[-1]['reward_accuracy']}")
sys.exit(0 if ok else 1)
