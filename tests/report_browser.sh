#!/usr/bin/env bash
# The report in a real browser (label "browser"; docs/report.md): lmadapt report on two
# fixture run folders, then headless Chromium
#  - --dump-dom: the rendered DOM holds the ladder, forgetting, runs and settings tables
#    and one <path class="curve"> per curve (11: loss 2, validation loss 1, lr 2,
#    gradient norm 2, tokens/s 2, memory 2);
#  - --screenshot at 375x2000 (phone) and 1280x2000 (desktop): PNGs of that width, and
#    not blank: each is several times the size of the screenshot of an empty page at the
#    same size (a white page compresses to almost nothing).
# Exit 77 (skipped) when no Chromium is installed (scripts/install-deps.sh installs it).
# Usage: tests/report_browser.sh LMADAPT
set -uo pipefail
lmadapt=$1
browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$(command -v "$b"); break; fi
done
[ -n "$browser" ] || { echo "report_browser: no chromium: skipped"; exit 77; }

tmp=$(mktemp -d /tmp/lma_report_browser.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    checks=$((checks + 1))
    if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

mkdir -p "$tmp/run-a" "$tmp/run-b"
cat >"$tmp/run-a/metrics.jsonl" <<'EOF'
{"step": 1, "loss": 3.0, "lr": 0.001, "grad_norm": 1.5, "tokens_per_s": 1000.0, "rss_mb": 512.0, "skipped": false}
{"step": 2, "loss": 2.5, "lr": 0.001, "grad_norm": 1.2, "tokens_per_s": 1100.0, "rss_mb": 520.0, "skipped": false, "val_loss": 2.6}
{"step": 3, "loss": null, "lr": 0.001, "grad_norm": null, "tokens_per_s": 900.0, "rss_mb": 520.0, "skipped": true, "non_finite": ["loss", "grad_norm"]}
{"step": 4, "loss": 2.0, "lr": 0.0005, "grad_norm": 0.9, "tokens_per_s": 1050.0, "rss_mb": 530.0, "skipped": false}
{"step": 5, "loss": 1.8, "lr": 0.0001, "grad_norm": 0.8, "tokens_per_s": 1070.0, "rss_mb": 530.0, "skipped": false, "val_loss": 1.9}
EOF
cat >"$tmp/run-b/metrics.jsonl" <<'EOF'
{"step": 1, "loss": 4.0, "lr": 0.002, "grad_norm": 2.0, "tokens_per_s": 2000.0, "rss_mb": 300.0, "skipped": false, "mem_pred_gib": 1.0, "mem_peak_gib": 0.4}
{"step": 2, "loss": 3.5, "lr": 0.002, "grad_norm": 1.8, "tokens_per_s": 2100.0, "rss_mb": 300.0, "skipped": false, "mem_pred_gib": 1.0, "mem_peak_gib": 0.5}
{"step": 3, "loss": 3.1, "lr": 0.002, "grad_norm": 1.7, "tokens_per_s": 2050.0, "rss_mb": 300.0, "skipped": false, "mem_pred_gib": 1.0, "mem_peak_gib": 0.5}
EOF
cat >"$tmp/run-a/run.json" <<'EOF'
{"lmadapt": "run", "version": 1, "command": "sft", "settings": {"model": "smollm2-135m-instruct", "lr": "0.001", "steps": "5", "data": ["a.jsonl", "b.jsonl"]}}
EOF
cat >"$tmp/run-a/summary.json" <<'EOF'
{"model": "smollm2-135m-instruct", "task": "support <tickets>", "rungs": [
 {"method": "zero-shot", "score": 0.21, "format_valid": 0.5, "prompt_tokens_per_query": 40, "train_seconds": null, "peak_gib": null},
 {"method": "icl", "score": 0.45, "format_valid": 1, "prompt_tokens_per_query": 310, "train_seconds": null, "peak_gib": null},
 {"method": "rag", "score": null, "format_valid": null, "prompt_tokens_per_query": null, "train_seconds": null, "peak_gib": null, "skipped": "no documents"},
 {"method": "lora", "score": 0.7, "format_valid": 0.95, "prompt_tokens_per_query": 40, "train_seconds": 12.5, "peak_gib": 1.5},
 {"method": "rag+lora", "score": 0.74, "format_valid": 0.97, "prompt_tokens_per_query": 290, "train_seconds": 12.5, "peak_gib": 1.6}],
 "forgetting": {"benchmark": "mmlu", "base": 0.30, "adapted": 0.28, "delta": -0.02},
 "recommendation": "lora: +0.49 over zero-shot at 40 prompt tokens"}
EOF
check "lmadapt report writes the page" "$lmadapt" report "$tmp/run-a" "$tmp/run-b" --out "$tmp/report.html"
printf '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>\n' >"$tmp/blank.html"

run_browser() { # run_browser ARGS... (a fresh profile each time; no network is needed)
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$tmp/profile" "$@" 2>>"$tmp/browser.log"
}
run_browser --dump-dom "file://$tmp/report.html" >"$tmp/dom.html"
curves=$(grep -o '<path class="curve"' "$tmp/dom.html" | wc -l)
check "the rendered DOM holds 11 curves (found $curves)" [ "$curves" -eq 11 ]
for t in ladder forgetting runs settings; do
    check "the rendered DOM holds the $t table" grep -q "<table class=\"$t\"" "$tmp/dom.html"
done
rungs=$(grep -o '<tr class="rung">' "$tmp/dom.html" | wc -l)
check "the ladder has 5 rows (found $rungs)" [ "$rungs" -eq 5 ]
check "text stays text (escaped)" grep -q 'support &lt;tickets&gt;' "$tmp/dom.html"

not_blank() { [ "$2" -gt 0 ] && [ "$1" -gt $(($2 * 5)) ]; }
png_width() { # the IHDR width of a PNG, or 0
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || { echo 0; return; }
    echo $((16#$(head -c 20 "$1" | tail -c 4 | od -An -tx1 | tr -d ' \n')))
}
for w in 375 1280; do
    rm -f "$tmp/r$w.png" "$tmp/b$w.png"
    run_browser --window-size=$w,2000 --screenshot="$tmp/r$w.png" "file://$tmp/report.html" >/dev/null
    run_browser --window-size=$w,2000 --screenshot="$tmp/b$w.png" "file://$tmp/blank.html" >/dev/null
    rs=$(stat -c %s "$tmp/r$w.png" 2>/dev/null || echo 0)
    bs=$(stat -c %s "$tmp/b$w.png" 2>/dev/null || echo 0)
    check "screenshot at $w px is a PNG $w wide (width $(png_width "$tmp/r$w.png"))" [ "$(png_width "$tmp/r$w.png")" -eq $w ]
    check "screenshot at $w px is not blank ($rs bytes vs $bs for an empty page)" \
        not_blank "$rs" "$bs"
    [ -n "${LMA_REPORT_SHOTS:-}" ] && cp "$tmp/r$w.png" "$LMA_REPORT_SHOTS/report-$w.png"
done
if [ "$fails" -ne 0 ]; then echo "browser log:"; tail -20 "$tmp/browser.log"; fi
echo "report_browser: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
