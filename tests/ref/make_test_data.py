#!/usr/bin/env python3
"""Make tests/data/ (the public data the tests read) from the original files.

    python3 tests/ref/make_test_data.py SRC [OUT]

SRC holds the original files under the names below (download them from the
sources listed in tests/data/MANIFEST.md); OUT defaults to tests/data. The cuts
are deterministic byte prefixes, so rerunning gives the same sha256 sums:

  tinyshakespeare.txt   the first 524,052 bytes: everything before the last blank
                        line that starts before byte 524,288 (512 KiB), so the file
                        still ends with one newline after a whole paragraph
  gsm8k_train.jsonl     the first 1000 lines
  alpaca_first200.json  whole
  alpaca_small_2k.json  whole
  mmlu/dev/*.csv        whole (5 rows per subject)
  mmlu/val/*.csv        the first 10 records of each file (all of a shorter file),
                        cut at the end of the 10th record as Python's csv module
                        reads it (records may hold quoted newlines and CRs)
"""
import csv, glob, hashlib, io, os, shutil, sys

SHAKESPEARE_CUT = 524288
GSM8K_LINES = 1000
MMLU_VAL_ROWS = 10


def csv_prefix(data, k):
    """The shortest byte prefix of a CSV file that parses to its first k records."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if k >= len(rows):
        return data
    want = rows[:k]
    for i, c in enumerate(data):
        if c in (0x0A, 0x0D):
            j = i + 1
            if c == 0x0D and j < len(data) and data[j] == 0x0A:
                j += 1
            pre = data[:j]
            if list(csv.reader(io.StringIO(pre.decode("utf-8"), newline=""))) == want:
                return pre
    raise SystemExit("no record boundary found")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
    os.makedirs(os.path.join(out, "mmlu", "dev"), exist_ok=True)
    os.makedirs(os.path.join(out, "mmlu", "val"), exist_ok=True)

    def put(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print("%-45s %9d  %s" % (name, len(data), hashlib.sha256(data).hexdigest()))

    def get(name):
        with open(os.path.join(src, name), "rb") as f:
            return f.read()

    t = get("tinyshakespeare.txt")
    put("tinyshakespeare.txt", t[: t.rfind(b"\n\n", 0, SHAKESPEARE_CUT) + 1])
    g = get("gsm8k_train.jsonl")
    put("gsm8k_train.jsonl", b"".join(g.splitlines(keepends=True)[:GSM8K_LINES]))
    for name in ("alpaca_first200.json", "alpaca_small_2k.json"):
        put(name, get(name))
    for p in sorted(glob.glob(os.path.join(src, "mmlu", "dev", "*.csv"))):
        put("mmlu/dev/" + os.path.basename(p), get(os.path.relpath(p, src)))
    for p in sorted(glob.glob(os.path.join(src, "mmlu", "val", "*.csv"))):
        put("mmlu/val/" + os.path.basename(p), csv_prefix(get(os.path.relpath(p, src)), MMLU_VAL_ROWS))


if __name__ == "__main__":
    main()
