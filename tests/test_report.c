/* The run report (report/report.h, report/chart.h, lmadapt report):
 *  - ticks and pixel positions of a chart computed by hand; NaN points are skipped;
 *  - on a fixture of two run folders (metrics.jsonl with a null loss and grad norm, a
 *    run without validation, an unfinished last line; run.json; summary.json with a
 *    skipped rung and null scores): one <path class="curve"> per curve with its number of
 *    points, the ladder and forgetting rows, bar widths, every file text escaped;
 *  - bad input names file:line or the field;
 *  - the CLI: pretrain and sft leave RUN/report.html; lmadapt report overlays runs and
 *    refuses an --out that is one of the files it reads. */
#include <sys/wait.h>
#include "core/buf.h"
#include "core/io.h"
#include "report/chart.h"
#include "report/report.h"
#include "test.h"

static char tmp[64];

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void put(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = test_fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_ticks(void) {
    double t0, t1, st = lma_chart_ticks(0, 0.93, 5, &t0, &t1);
    CHECK(st == 0.5 && t0 == 0 && t1 == 1, "[0, 0.93]: step %g axis [%g, %g]", st, t0, t1);
    st = lma_chart_ticks(1.2, 3.7, 5, &t0, &t1);
    CHECK(st == 1 && t0 == 1 && t1 == 4, "[1.2, 3.7]: step %g axis [%g, %g]", st, t0, t1);
    st = lma_chart_ticks(5, 5, 5, &t0, &t1);
    CHECK(fabs(st - 0.5) < 1e-12 && fabs(t0 - 4.5) < 1e-12 && fabs(t1 - 5.5) < 1e-12,
          "[5, 5] widened: step %g axis [%g, %g]", st, t0, t1);
    st = lma_chart_ticks(2e-5, 3e-4, 5, &t0, &t1);
    CHECK(fabs(st - 1e-4) < 1e-18 && t0 == 0 && fabs(t1 - 3e-4) < 1e-15, "[2e-5, 3e-4]: step %g axis [%g, %g]", st,
          t0, t1);
}

/* One series on [0, 2] x [0, 1]: both axes come out exactly [0, 2] and [0, 1]. The plot area
 * (chart.c): x from 70 to 466 (480 - 14), y from 250 (top 34 + 16 for one legend row, + 200)
 * up to 50. */
static void test_chart_geometry(void) {
    double x[3] = {0, 1, 2}, y[3] = {0, 0.5, 1}, yn[3] = {0, NAN, 1};
    lma_chart_series s = {"a<b", x, y, 3, 0};
    lma_chart c = {"T&", "step", "v", &s, 1};
    lma_buf b = {0};
    int curves = -1;
    CHECK_OK(lma_chart_svg(&b, &c, &curves));
    CHECK(curves == 1 && b.p && strstr(b.p, "d=\"M70.0 250.0L268.0 150.0L466.0 50.0\""),
          "the three points at their hand-computed pixels: %s", b.p ? b.p : "");
    CHECK(b.p && strstr(b.p, "a&lt;b") && strstr(b.p, "T&amp;") && !strstr(b.p, "a<b"), "legend and title escaped");
    CHECK(b.p && strstr(b.p, "viewBox=\"0 0 480 292\"") && strstr(b.p, "width=\"100%\""), "scales with the page");
    lma_buf_free(&b);
    s.y = yn;
    b = (lma_buf){0};
    CHECK_OK(lma_chart_svg(&b, &c, &curves));
    CHECK(b.p && strstr(b.p, "d=\"M70.0 250.0L466.0 50.0\""), "the NaN point is skipped, its neighbours joined");
    lma_buf_free(&b);
    double all_nan[2] = {NAN, NAN};
    s.y = all_nan;
    s.n = 2;
    b = (lma_buf){0};
    CHECK_OK(lma_chart_svg(&b, &c, &curves));
    CHECK(curves == 0 && b.p && !strstr(b.p, "<path") && strstr(b.p, "not recorded") && strstr(b.p, "(no data)"),
          "a series without a finite point draws no path");
    lma_buf_free(&b);
}

static const char metrics_a[] =
    "{\"step\": 1, \"loss\": 3.0, \"lr\": 0.001, \"grad_norm\": 1.5, \"tokens_per_s\": 1000.0, \"rss_mb\": 512.0, \"skipped\": false}\n"
    "{\"step\": 2, \"loss\": 2.5, \"lr\": 0.001, \"grad_norm\": 1.2, \"tokens_per_s\": 1100.0, \"rss_mb\": 520.0, \"skipped\": false, \"val_loss\": 2.6}\n"
    "{\"step\": 3, \"loss\": null, \"lr\": 0.001, \"grad_norm\": null, \"tokens_per_s\": 900.0, \"rss_mb\": 520.0, \"skipped\": true, \"skip_reason\": \"non-finite loss\", \"non_finite\": [\"loss\", \"grad_norm\"]}\n"
    "\n"
    "{\"step\": 4, \"loss\": 2.0, \"lr\": 0.0005, \"grad_norm\": 0.9, \"tokens_per_s\": 1050.0, \"rss_mb\": 530.0, \"skipped\": false}\n"
    "{\"step\": 5, \"loss\": 1.8, \"lr\": 0.0001, \"grad_norm\": 0.8, \"tokens_per_s\": 1070.0, \"rss_mb\": 530.0, \"skipped\": false, \"val_loss\": 1.9}\n"
    "{\"step\": 6, \"loss\": 1."; /* killed while writing: ignored */
static const char metrics_b[] =
    "{\"step\": 1, \"loss\": 4.0, \"lr\": 0.002, \"grad_norm\": 2.0, \"tokens_per_s\": 2000.0, \"rss_mb\": 300.0, \"skipped\": false, \"mem_pred_gib\": 1.000, \"mem_peak_gib\": 0.400}\n"
    "{\"step\": 2, \"loss\": 3.5, \"lr\": 0.002, \"grad_norm\": 1.8, \"tokens_per_s\": 2100.0, \"rss_mb\": 300.0, \"skipped\": false, \"mem_pred_gib\": 1.000, \"mem_peak_gib\": 0.500}\n"
    "{\"step\": 3, \"loss\": 3.1, \"lr\": 0.002, \"grad_norm\": 1.7, \"tokens_per_s\": 2050.0, \"rss_mb\": 300.0, \"skipped\": false, \"mem_pred_gib\": 1.000, \"mem_peak_gib\": 0.500}\n";
static const char run_a[] =
    "{\"lmadapt\": \"run\", \"version\": 1, \"command\": \"sft\", \"settings\": {\"lr\": \"0.001\", "
    "\"data\": [\"a.jsonl\", \"b<x>.jsonl\"], \"steps\": \"5\"}}\n";
static const char summary_a[] =
    "{\"model\": \"tiny <model>\", \"task\": \"t&q\", \"rungs\": ["
    "{\"method\": \"zero-shot\", \"score\": 0.2, \"format_valid\": 0.5, \"prompt_tokens_per_query\": 40, \"train_seconds\": null, \"peak_gib\": null},"
    "{\"method\": \"icl\", \"score\": 0.45, \"format_valid\": 1, \"prompt_tokens_per_query\": 300, \"train_seconds\": null, \"peak_gib\": null},"
    "{\"method\": \"rag\", \"score\": null, \"format_valid\": null, \"prompt_tokens_per_query\": null, \"train_seconds\": null, \"peak_gib\": null, \"skipped\": \"no <index>\"},"
    "{\"method\": \"lora\", \"score\": 0.7, \"format_valid\": 0.95, \"prompt_tokens_per_query\": 40, \"train_seconds\": 12, \"peak_gib\": 1.5},"
    "{\"method\": \"rag+lora\", \"skipped\": true}],"
    "\"forgetting\": [{\"benchmark\": \"mmlu\", \"base\": 0.30, \"adapted\": 0.28, \"delta\": -0.02},"
    "{\"benchmark\": \"ppl<wiki>\", \"base\": 10, \"adapted\": 11}],"
    "\"recommendation\": \"use <lora> & stop\"}\n";

/* the number of points (M and L commands) of each curve, in page order */
static int curve_points(const char *html, int *pts, int cap) {
    int n = 0, clean = 1;
    for (const char *p = html; (p = strstr(p, "<path class=\"curve\"")) && n < cap; p++) {
        const char *d = strstr(p, " d=\"");
        if (!d) break;
        d += 4;
        int k = 0;
        for (; *d && *d != '"'; d++) {
            if (*d == 'M' || *d == 'L') k++;
            else if (!strchr("0123456789.- l", *d)) clean = 0;
        }
        pts[n++] = k;
    }
    return clean ? n : -1;
}

static void test_page(void) {
    char a[128], bdir[128];
    snprintf(a, sizeof a, "%s/alpha", tmp);
    snprintf(bdir, sizeof bdir, "%s/beta<&>", tmp);
    CHECK_OK(lma_mkdir_p(a));
    CHECK_OK(lma_mkdir_p(bdir));
    put(a, "metrics.jsonl", metrics_a);
    put(a, "run.json", run_a);
    put(a, "summary.json", summary_a);
    put(bdir, "metrics.jsonl", metrics_b);
    const char *runs[2] = {a, bdir};
    char out[256];
    snprintf(out, sizeof out, "%s/report.html", tmp);
    CHECK_OK(lma_report_write(runs, 2, out));
    char *h = NULL;
    CHECK_OK(lma_read_file(out, &h, NULL));
    if (!h) return;
    /* loss 2, val loss 1 (beta has none), lr 2, grad norm 2, tokens/s 2, memory 2 */
    int pts[32], want[] = {4, 3, 2, 5, 3, 4, 3, 5, 3, 5, 3};
    int n = curve_points(h, pts, 32), same = n == 11;
    for (int i = 0; same && i < n; i++) same = pts[i] == want[i];
    CHECK(same, "11 curves with 4 3 | 2 | 5 3 | 4 3 | 5 3 | 5 3 points (%d curves, first %d)", n, n > 0 ? pts[0] : -1);
    CHECK(count(h, "<path") == 11, "no <path> but the curves (%d)", count(h, "<path"));
    CHECK(count(h, "<svg") == 6, "six charts (%d)", count(h, "<svg"));
    CHECK(strstr(h, "beta&lt;&amp;&gt; (device peak)") && strstr(h, "alpha (peak RSS)"),
          "memory: the device peak where logged, else the RSS");
    CHECK(!strstr(h, "nan") && !strstr(h, "NaN") && !strstr(h, "inf"), "no NaN or Inf printed");
    CHECK(count(h, "<tr class=\"rung\">") == 5, "five ladder rows (%d)", count(h, "<tr class=\"rung\">"));
    CHECK(count(h, "<tr class=\"forget\">") == 2, "two forgetting rows");
    CHECK(strstr(h, "style=\"width:70.0%\"") && strstr(h, "style=\"width:100.0%\"") && strstr(h, "style=\"width:95.0%\""),
          "bars: score 0.7 at 70%%, format valid 1 and 0.95 at 100%% and 95%%");
    CHECK(strstr(h, "+1</td>"), "a missing delta is adapted - base, signed");
    CHECK(strstr(h, "<td class=\"note\">skipped</td>") && strstr(h, "<td class=\"note\">skipped: no &lt;index&gt;</td>"),
          "skipped rungs: true, or the reason");
    CHECK(strstr(h, "tiny &lt;model&gt;") && strstr(h, "t&amp;q") && strstr(h, "b&lt;x&gt;.jsonl") &&
          strstr(h, "no &lt;index&gt;") && strstr(h, "ppl&lt;wiki&gt;") && strstr(h, "use &lt;lora&gt; &amp; stop") &&
          strstr(h, "beta&lt;&amp;&gt;"), "every text from the files is escaped");
    CHECK(!strstr(h, "<model>") && !strstr(h, "<x>") && !strstr(h, "<index>") && !strstr(h, "<lora>") &&
          !strstr(h, "<script"), "nothing from the files as markup");
    CHECK(strstr(h, "<th>lr</th><td>0.001</td>") && strstr(h, "alpha: lmadapt sft"), "the settings table");
    CHECK(strstr(h, "name=\"viewport\""), "a viewport for phones");
    free(h);

    /* bad input */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/bad", tmp);
    CHECK_OK(lma_mkdir_p(bad));
    const char *one[1] = {bad};
    lma_buf b = {0};
    CHECK(lma_report_html(one, 1, &b) != LMA_OK && strstr(lma_last_error(), "not a run folder"), "an empty folder: %s",
          lma_last_error());
    lma_clear_error();
    put(bad, "metrics.jsonl", "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": \n");
    CHECK(lma_report_html(one, 1, &b) != LMA_OK && strstr(lma_last_error(), "metrics.jsonl:2"), "a broken line: %s",
          lma_last_error());
    lma_clear_error();
    put(bad, "metrics.jsonl", "{\"step\": 1, \"loss\": 2}\n");
    put(bad, "summary.json", "{\"rungs\": [{\"method\": \"icl\"}, {\"method\": \"lora\", \"score\": \"high\"}]}");
    CHECK(lma_report_html(one, 1, &b) != LMA_OK && strstr(lma_last_error(), "rungs[1]") &&
          strstr(lma_last_error(), "\"score\""), "a score that is not a number: %s", lma_last_error());
    lma_clear_error();
    lma_buf_free(&b);
}

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int file_has(const char *path, const char *needle) {
    char *d = NULL;
    if (lma_read_file(path, &d, NULL) != LMA_OK) { lma_clear_error(); return 0; }
    int r = strstr(d, needle) != NULL;
    free(d);
    return r;
}

static void test_cli(void) {
    char text[256], cmd[2048], path[512];
    snprintf(text, sizeof text, "%s/text.txt", tmp);
    snprintf(cmd, sizeof cmd, "head -c 30000 %s/tests/data/tinyshakespeare.txt > %s", LMA_SRC_DIR, text);
    CHECK(sh(cmd) == 0, "test text");
    snprintf(cmd, sizeof cmd, "%s pretrain --data %s --tokenizer %s/tests/ref/tok/bl --preset tiny --out %s/pre "
             "--steps 3 --batch 2 --seq 64 --eval-every 2 --threads 2 >/dev/null 2>&1", LMA_CLI, text, LMA_SRC_DIR, tmp);
    CHECK(sh(cmd) == 0, "pretrain runs");
    snprintf(path, sizeof path, "%s/pre/report.html", tmp);
    CHECK(file_has(path, "<path class=\"curve\""), "pretrain leaves report.html with curves");
    snprintf(cmd, sizeof cmd, "%s sft --model %s/pre/final --data %s/tests/ref/sft/bl.jsonl --out %s/sft --steps 2 "
             "--batch 2 --seq 64 --threads 2 --template llama3 >/dev/null 2>&1", LMA_CLI, tmp, LMA_SRC_DIR, tmp);
    CHECK(sh(cmd) == 0, "sft runs");
    snprintf(path, sizeof path, "%s/sft/report.html", tmp);
    CHECK(file_has(path, "<path class=\"curve\"") && file_has(path, "lmadapt sft"),
          "sft leaves report.html with its curves and settings");
    snprintf(cmd, sizeof cmd, "%s report %s/pre %s/sft --out %s/both.html >/dev/null", LMA_CLI, tmp, tmp, tmp);
    CHECK(sh(cmd) == 0, "report of two runs");
    snprintf(path, sizeof path, "%s/both.html", tmp);
    CHECK(file_has(path, ">pre</text>") && file_has(path, ">sft</text>"), "both runs in the legends");
    snprintf(cmd, sizeof cmd, "%s report %s/pre --out %s/pre/metrics.jsonl 2>/dev/null", LMA_CLI, tmp, tmp);
    CHECK(sh(cmd) == 2, "--out equal to a file read is refused");
    snprintf(cmd, sizeof cmd, "%s report %s/pre --out %s/pre 2>/dev/null", LMA_CLI, tmp, tmp);
    CHECK(sh(cmd) == 2, "--out holding a file read is refused");
    snprintf(path, sizeof path, "%s/pre/metrics.jsonl", tmp);
    CHECK(file_has(path, "\"step\": 3"), "the input is intact");
    snprintf(cmd, sizeof cmd, "%s report %s/sft >/dev/null && %s report %s/nosuch 2>/dev/null", LMA_CLI, tmp, LMA_CLI, tmp);
    CHECK(sh(cmd) == 1, "the default --out works; a missing folder fails");
}

int main(int argc, char **argv) {
    snprintf(tmp, sizeof tmp, "/tmp/lma_report_XXXXXX");
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    test_ticks();
    test_chart_geometry();
    test_page();
    if (!(argc > 1 && !strcmp(argv[1], "--no-cli"))) test_cli();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
