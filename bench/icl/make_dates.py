# The ICL benchmark task of bench/RESULTS.md: dates written out in English -> ISO 8601
# (YYYY-MM-DD). The answer's format is what the shots teach: a small model knows dates but
# not which format is wanted. Deterministic (seed 7); writes data/icl/dates_pool.jsonl
# (64 examples, with a reasoning trace for the cot format) and data/icl/dates_task.jsonl
# (60 queries, none of them in the pool).
import json, random, os
random.seed(7)
months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
seen = set()
def one():
    while True:
        y, m = random.randint(1950, 2030), random.randint(1, 12)
        d = random.randint(1, days[m - 1])
        if (y, m, d) in seen: continue
        seen.add((y, m, d))
        style = random.randint(0, 2)
        text = (f"{months[m-1]} {d}, {y}" if style == 0 else f"{d} {months[m-1]} {y}" if style == 1
                else f"{months[m-1][:3]}. {d}, {y}")
        return {"input": text, "output": f"{y:04d}-{m:02d}-{d:02d}",
                "reasoning": f"The year is {y}, {months[m-1]} is month {m}, the day is {d}."}
root = os.path.join(os.path.dirname(__file__), "..", "..", "data", "icl")
os.makedirs(root, exist_ok=True)
with open(os.path.join(root, "dates_pool.jsonl"), "w") as f:
    for _ in range(64): f.write(json.dumps(one()) + "\n")
with open(os.path.join(root, "dates_task.jsonl"), "w") as f:
    for _ in range(60):
        e = one(); del e["reasoning"]; f.write(json.dumps(e) + "\n")
