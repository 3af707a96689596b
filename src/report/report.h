/* The run report (lmadapt report, docs/report.md): one self-contained HTML page, inline CSS
 * and inline SVG, no JavaScript, no network, readable from 375 px (phone) to desktop widths.
 *
 * Reads from each run folder (each optional, at least one must be there):
 *   metrics.jsonl  the trainer's log (train/trainer.h): one chart each for loss, validation
 *                  loss, learning rate, gradient norm, tokens/s and memory (mem_peak_gib,
 *                  the backend's peak, when logged; else rss_mb, the process's peak RSS),
 *                  all runs overlaid, one colour per run. null values are skipped; a last
 *                  line without its newline (a run killed while writing) is ignored; any
 *                  other line that is not a JSON object is an error naming file:line.
 *   run.json       the command and its settings (cli/train_flags.c): a settings table.
 *   summary.json   the adaptation ladder (lmadapt demo): {"model", "task", "rungs": [{"method",
 *                  "score", "format_valid", "prompt_tokens_per_query", "train_seconds",
 *                  "peak_gib", "skipped"}], "forgetting": {"benchmark", "base", "adapted",
 *                  "delta"} or an array of them, "recommendation"}; any number may be null
 *                  (not measured). The ladder table has bars for score and format validity.
 * Every text taken from a file is HTML-escaped. */
#ifndef LMA_REPORT_REPORT_H
#define LMA_REPORT_REPORT_H
#include "core/buf.h"

/* Appends the page for runs[0..n) to out (n >= 1). */
lma_status lma_report_html(const char *const *runs, int n, lma_buf *out);
/* The page, written atomically to path. */
lma_status lma_report_write(const char *const *runs, int n, const char *path);
#endif
