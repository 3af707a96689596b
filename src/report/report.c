/* The run report page (report.h): reads the run folders, then writes the HTML. */
#include "report/report.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/json.h"
#include "report/chart.h"

/* The metrics.jsonl columns charted, in page order. */
enum { C_STEP, C_LOSS, C_VAL, C_LR, C_GN, C_TPS, C_MEM, NCOL };
static const char *const col_key[NCOL] = {"step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", NULL};
static const struct {
    const char *title, *y_label;
} charts[NCOL] = {
    [C_LOSS] = {"Training loss", "loss"},
    [C_VAL] = {"Validation loss", "loss"},
    [C_LR] = {"Learning rate", "lr"},
    [C_GN] = {"Gradient norm", "norm (before clipping)"},
    [C_TPS] = {"Throughput", "tokens/s"},
    [C_MEM] = {"Memory", "GiB (peak so far)"},
};

typedef struct {
    const char *dir;
    char name[256];        /* label: the folder's last component, or the path when two share it */
    double *col[NCOL];     /* (n) each; NaN where absent or null */
    size_t n, cap;
    int mem_device;        /* C_MEM is mem_peak_gib (the backend's) rather than rss_mb */
    cJSON *run_json, *summary;
} run_data;

static void run_free(run_data *r) {
    for (int c = 0; c < NCOL; c++) free(r->col[c]);
    cJSON_Delete(r->run_json);
    cJSON_Delete(r->summary);
}

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static lma_status read_metrics(run_data *r, const char *path) {
    char *text = NULL;
    size_t len = 0;
    LMA_TRY(lma_read_file(path, &text, &len));
    lma_status s = LMA_OK;
    size_t line = 0;
    for (char *p = text; s == LMA_OK && p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        line++;
        if (!nl) break; /* an unfinished last line: the run was stopped while writing it */
        *nl = 0;
        char *q = p;
        p = nl + 1;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (!*q) continue;
        cJSON *o = cJSON_Parse(q);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            s = lma_error(LMA_ERR_FORMAT, "%s:%zu: not a JSON object", path, line);
            break;
        }
        void *arrs[NCOL];
        size_t esz[NCOL];
        for (int c = 0; c < NCOL; c++) { arrs[c] = &r->col[c]; esz[c] = sizeof(double); }
        s = lma_grow_all(&r->cap, r->n + 1, 256, "metrics", NCOL, arrs, esz);
        if (s == LMA_OK) {
            for (int c = 0; c < C_MEM; c++) r->col[c][r->n] = num_or_nan(o, col_key[c]);
            double dev = num_or_nan(o, "mem_peak_gib"), rss = num_or_nan(o, "rss_mb");
            if (isfinite(dev)) r->mem_device = 1;
            r->col[C_MEM][r->n] = r->mem_device ? dev : rss / 1024.0;
            if (!isfinite(r->col[C_STEP][r->n])) r->col[C_STEP][r->n] = (double)(r->n + 1);
            r->n++;
        }
        cJSON_Delete(o);
    }
    free(text);
    return s;
}

static lma_status load_run(run_data *r, const char *dir) {
    memset(r, 0, sizeof *r);
    r->dir = dir;
    char path[4200];
    int found = 0;
    LMA_TRY(lma_path_join(path, sizeof path, dir, "metrics.jsonl"));
    if (lma_file_exists(path)) { found++; LMA_TRY(read_metrics(r, path)); }
    LMA_TRY(lma_path_join(path, sizeof path, dir, "run.json"));
    if (lma_file_exists(path)) { found++; LMA_TRY(lma_json_load(path, &r->run_json)); }
    LMA_TRY(lma_path_join(path, sizeof path, dir, "summary.json"));
    if (lma_file_exists(path)) {
        found++;
        LMA_TRY(lma_json_load(path, &r->summary));
        if (!cJSON_IsObject(r->summary)) return lma_error(LMA_ERR_FORMAT, "%s: not a JSON object", path);
    }
    if (!found)
        return lma_error(LMA_ERR_ARG, "%s: not a run folder (no metrics.jsonl, run.json or summary.json)", dir);
    return LMA_OK;
}

static void base_name(const char *dir, char *out, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(out, cap, "%.*s", (int)(n - b), dir + b);
}

/* ---- pieces of the page ---------------------------------------------------------------- */

static void put_num(lma_buf *b, double v) {
    if (isfinite(v)) lma_buf_printf(b, "%.4g", v);
    else lma_buf_str(b, "&mdash;");
}

/* A JSON value as table text: strings as they are, arrays joined with ", ". */
static void put_value(lma_buf *b, const cJSON *v) {
    if (cJSON_IsString(v)) { lma_html_escape(b, v->valuestring); return; }
    if (cJSON_IsNumber(v)) { lma_buf_printf(b, "%.9g", v->valuedouble); return; }
    if (cJSON_IsArray(v)) {
        int i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            if (i) lma_buf_str(b, ", ");
            put_value(b, e);
        }
        return;
    }
    if (cJSON_IsNull(v)) { lma_buf_str(b, "&mdash;"); return; }
    char *t = cJSON_PrintUnformatted(v);
    lma_html_escape(b, t ? t : "?");
    free(t);
}

static const char css[] =
    "*{box-sizing:border-box}body{margin:0;padding:12px;font:15px/1.45 system-ui,-apple-system,sans-serif;"
    "color:#1b1b1b;background:#fff}main{max-width:1180px;margin:0 auto}h1{font-size:1.35em;margin:.2em 0 .6em}"
    "h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid #ddd}h3{font-size:1em;margin:1em 0 .3em}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));gap:14px}"
    ".charts figure{margin:0;border:1px solid #e5e5e5;border-radius:6px;padding:6px}svg.chart{display:block;height:auto}"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;margin:.3em 0;font-size:.93em}"
    "th,td{border-bottom:1px solid #e5e5e5;padding:4px 8px;text-align:left;vertical-align:top}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.b{text-align:left}"
    "td:first-child{white-space:nowrap}"
    ".bar{display:inline-block;width:90px;height:10px;background:#eee;border-radius:2px;margin-right:6px;"
    "vertical-align:middle}.bar span{display:block;height:100%;background:#0072b2;border-radius:2px}"
    ".bar.fv span{background:#009e73}.neg{color:#b00020}.pos{color:#006b3c}.note{color:#666}"
    ".rec{padding:8px 12px;background:#f3f7fb;border-left:4px solid #0072b2}"
    "@media (max-width:480px){body{padding:6px;font-size:14px}.bar{width:54px}th,td{padding:3px 4px}}";

static void put_bar(lma_buf *b, double v, double scale, const char *cls) {
    if (!isfinite(v)) { lma_buf_str(b, "&mdash;"); return; }
    double w = scale > 0 ? 100.0 * v / scale : 0;
    w = w < 0 ? 0 : w > 100 ? 100 : w;
    lma_buf_printf(b, "<span class=\"bar%s%s\"><span style=\"width:%.1f%%\"></span></span>", cls ? " " : "",
                   cls ? cls : "", w);
    put_num(b, v);
}

/* a number member: absent or null gives NaN; another type is an error naming the field */
static lma_status get_num(const cJSON *o, const char *key, const char *ctx, double *out) {
    *out = NAN;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return LMA_OK;
    if (!cJSON_IsNumber(v)) return lma_error(LMA_ERR_FORMAT, "%s: \"%s\" must be a number or null", ctx, key);
    *out = v->valuedouble;
    return LMA_OK;
}

static lma_status get_str(const cJSON *o, const char *key, const char *ctx, const char **out) {
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return LMA_OK;
    if (!cJSON_IsString(v)) return lma_error(LMA_ERR_FORMAT, "%s: \"%s\" must be a string", ctx, key);
    *out = v->valuestring;
    return LMA_OK;
}

static lma_status put_ladder(lma_buf *b, const run_data *r) {
    const cJSON *sm = r->summary;
    char ctx[4300];
    snprintf(ctx, sizeof ctx, "%s/summary.json", r->dir);
    const char *model, *task, *rec;
    LMA_TRY(get_str(sm, "model", ctx, &model));
    LMA_TRY(get_str(sm, "task", ctx, &task));
    LMA_TRY(get_str(sm, "recommendation", ctx, &rec));
    const cJSON *rungs = cJSON_GetObjectItemCaseSensitive(sm, "rungs");
    if (rungs && !cJSON_IsNull(rungs) && !cJSON_IsArray(rungs))
        return lma_error(LMA_ERR_FORMAT, "%s: \"rungs\" must be an array", ctx);
    lma_buf_str(b, "<h2>Adaptation ladder: ");
    lma_html_escape(b, r->name);
    lma_buf_str(b, "</h2>\n<p>");
    if (model) { lma_buf_str(b, "Model <b>"); lma_html_escape(b, model); lma_buf_str(b, "</b>. "); }
    if (task) { lma_buf_str(b, "Task <b>"); lma_html_escape(b, task); lma_buf_str(b, "</b>."); }
    lma_buf_str(b, "</p>\n");
    double smax = 0;
    int i = 0;
    for (const cJSON *g = rungs ? rungs->child : NULL; g; g = g->next, i++) {
        char rc[4400];
        snprintf(rc, sizeof rc, "%s: rungs[%d]", ctx, i);
        if (!cJSON_IsObject(g)) return lma_error(LMA_ERR_FORMAT, "%s must be an object", rc);
        double v;
        LMA_TRY(get_num(g, "score", rc, &v));
        if (isfinite(v) && v > smax) smax = v;
    }
    double scale = smax <= 1 ? 1 : smax <= 100 ? 100 : smax; /* fractions, percentages, else the best */
    lma_buf_str(b, "<div class=\"scroll\"><table class=\"ladder\">\n<thead><tr><th>method</th><th>score</th>"
                   "<th>format valid</th><th>prompt tokens / query</th><th>train s</th><th>peak GiB</th>"
                   "<th>note</th></tr></thead>\n<tbody>\n");
    i = 0;
    for (const cJSON *g = rungs ? rungs->child : NULL; g; g = g->next, i++) {
        char rc[4400];
        snprintf(rc, sizeof rc, "%s: rungs[%d]", ctx, i);
        const char *method, *skipped;
        double score, fv, ptok, ts, peak;
        LMA_TRY(get_str(g, "method", rc, &method));
        const cJSON *sk = cJSON_GetObjectItemCaseSensitive(g, "skipped");
        if (cJSON_IsBool(sk)) skipped = cJSON_IsTrue(sk) ? "" : NULL; /* "skipped": true, without a reason */
        else LMA_TRY(get_str(g, "skipped", rc, &skipped));
        LMA_TRY(get_num(g, "score", rc, &score));
        LMA_TRY(get_num(g, "format_valid", rc, &fv));
        LMA_TRY(get_num(g, "prompt_tokens_per_query", rc, &ptok));
        LMA_TRY(get_num(g, "train_seconds", rc, &ts));
        LMA_TRY(get_num(g, "peak_gib", rc, &peak));
        lma_buf_str(b, "<tr class=\"rung\"><td>");
        lma_html_escape(b, method ? method : "?");
        lma_buf_str(b, "</td><td class=\"n b\">");
        put_bar(b, score, scale, NULL);
        lma_buf_str(b, "</td><td class=\"n b\">");
        put_bar(b, fv, 1, "fv");
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, ptok);
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, ts);
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, peak);
        lma_buf_str(b, "</td><td class=\"note\">");
        if (skipped) { lma_buf_str(b, *skipped ? "skipped: " : "skipped"); lma_html_escape(b, skipped); }
        lma_buf_str(b, "</td></tr>\n");
    }
    lma_buf_str(b, "</tbody></table></div>\n");

    const cJSON *fg = cJSON_GetObjectItemCaseSensitive(sm, "forgetting");
    if (fg && !cJSON_IsNull(fg)) {
        if (!cJSON_IsObject(fg) && !cJSON_IsArray(fg))
            return lma_error(LMA_ERR_FORMAT, "%s: \"forgetting\" must be an object or an array of objects", ctx);
        lma_buf_str(b, "<h3>Forgetting</h3>\n<div class=\"scroll\"><table class=\"forgetting\">\n<thead><tr>"
                       "<th>benchmark</th><th>base</th><th>adapted</th><th>delta</th></tr></thead>\n<tbody>\n");
        const cJSON *one = cJSON_IsObject(fg) ? fg : fg->child;
        for (i = 0; one; i++, one = cJSON_IsObject(fg) ? NULL : one->next) {
            char fc[4400];
            snprintf(fc, sizeof fc, "%s: forgetting%s", ctx, cJSON_IsArray(fg) ? "[]" : "");
            if (!cJSON_IsObject(one)) return lma_error(LMA_ERR_FORMAT, "%s must hold objects", fc);
            const char *bench;
            double base, adapted, delta;
            LMA_TRY(get_str(one, "benchmark", fc, &bench));
            LMA_TRY(get_num(one, "base", fc, &base));
            LMA_TRY(get_num(one, "adapted", fc, &adapted));
            LMA_TRY(get_num(one, "delta", fc, &delta));
            if (!isfinite(delta) && isfinite(base) && isfinite(adapted)) delta = adapted - base;
            lma_buf_str(b, "<tr class=\"forget\"><td>");
            lma_html_escape(b, bench ? bench : "?");
            lma_buf_str(b, "</td><td class=\"n\">");
            put_num(b, base);
            lma_buf_str(b, "</td><td class=\"n\">");
            put_num(b, adapted);
            lma_buf_printf(b, "</td><td class=\"n%s\">", !isfinite(delta) || delta == 0 ? "" : delta < 0 ? " neg" : " pos");
            if (isfinite(delta) && delta > 0) lma_buf_push(b, '+');
            put_num(b, delta);
            lma_buf_str(b, "</td></tr>\n");
        }
        lma_buf_str(b, "</tbody></table></div>\n");
    }
    if (rec) {
        lma_buf_str(b, "<p class=\"rec\"><b>Recommendation:</b> ");
        lma_html_escape(b, rec);
        lma_buf_str(b, "</p>\n");
    }
    return b->st;
}

static void put_settings(lma_buf *b, const run_data *r) {
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(r->run_json, "command");
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(r->run_json, "settings");
    lma_buf_str(b, "<h3>");
    lma_html_escape(b, r->name);
    if (cJSON_IsString(cmd)) { lma_buf_str(b, ": lmadapt "); lma_html_escape(b, cmd->valuestring); }
    lma_buf_str(b, "</h3>\n<div class=\"scroll\"><table class=\"settings\">\n<tbody>\n");
    for (const cJSON *e = cJSON_IsObject(set) ? set->child : NULL; e; e = e->next) {
        lma_buf_str(b, "<tr><th>");
        lma_html_escape(b, e->string);
        lma_buf_str(b, "</th><td>");
        put_value(b, e);
        lma_buf_str(b, "</td></tr>\n");
    }
    lma_buf_str(b, "</tbody></table></div>\n");
}

static double last_finite(const double *v, size_t n) {
    for (size_t i = n; i-- > 0;)
        if (isfinite(v[i])) return v[i];
    return NAN;
}

static void put_overview(lma_buf *b, const run_data *rs, int n) {
    lma_buf_str(b, "<div class=\"scroll\"><table class=\"runs\">\n<thead><tr><th>run</th><th>command</th>"
                   "<th>steps</th><th>last loss</th><th>last val loss</th><th>last tokens/s</th><th>peak GiB</th>"
                   "</tr></thead>\n<tbody>\n");
    for (int i = 0; i < n; i++) {
        const run_data *r = &rs[i];
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(r->run_json, "command");
        double peak = NAN;
        for (size_t k = 0; k < r->n; k++)
            if (isfinite(r->col[C_MEM][k]) && !(peak >= r->col[C_MEM][k])) peak = r->col[C_MEM][k];
        lma_buf_printf(b, "<tr><td><span class=\"bar\" style=\"width:12px;background:%s\"></span>",
                       lma_chart_color(i));
        lma_html_escape(b, r->name);
        lma_buf_str(b, "</td><td>");
        lma_html_escape(b, cJSON_IsString(cmd) ? cmd->valuestring : "");
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, r->n ? last_finite(r->col[C_STEP], r->n) : NAN);
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, last_finite(r->col[C_LOSS], r->n));
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, last_finite(r->col[C_VAL], r->n));
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, last_finite(r->col[C_TPS], r->n));
        lma_buf_str(b, "</td><td class=\"n\">");
        put_num(b, peak);
        lma_buf_str(b, "</td></tr>\n");
    }
    lma_buf_str(b, "</tbody></table></div>\n");
}

static lma_status put_page(lma_buf *b, run_data *rs, int n) {
    lma_buf_str(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>lmadapt report: ");
    for (int i = 0; i < n; i++) {
        if (i) lma_buf_str(b, ", ");
        lma_html_escape(b, rs[i].name);
    }
    lma_buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n<h1>lmadapt report</h1>\n", css);
    int any_metrics = 0;
    for (int i = 0; i < n; i++) any_metrics |= rs[i].n > 0;
    if (any_metrics) {
        lma_buf_str(b, "<h2>Training</h2>\n");
        put_overview(b, rs, n);
        lma_buf_str(b, "<div class=\"charts\">\n");
        for (int c = C_LOSS; c < NCOL; c++) {
            lma_chart_series ser[64];
            char lab[64][300];
            int k = 0;
            for (int i = 0; i < n && k < 64; i++) {
                if (!rs[i].n) continue;
                snprintf(lab[k], sizeof lab[k], "%s%s", rs[i].name,
                         c != C_MEM ? "" : rs[i].mem_device ? " (device peak)" : " (peak RSS)");
                ser[k] = (lma_chart_series){lab[k], rs[i].col[C_STEP], rs[i].col[c], rs[i].n, i};
                k++;
            }
            lma_chart ch = {charts[c].title, "step", charts[c].y_label, ser, k};
            lma_buf_str(b, "<figure>\n");
            lma_chart_svg(b, &ch, NULL);
            lma_buf_str(b, "</figure>\n");
        }
        lma_buf_str(b, "</div>\n");
    }
    for (int i = 0; i < n; i++)
        if (rs[i].summary) LMA_TRY(put_ladder(b, &rs[i]));
    int any_settings = 0;
    for (int i = 0; i < n; i++) any_settings |= rs[i].run_json != NULL;
    if (any_settings) {
        lma_buf_str(b, "<h2>Settings</h2>\n");
        for (int i = 0; i < n; i++)
            if (rs[i].run_json) put_settings(b, &rs[i]);
    }
    lma_buf_str(b, "<p class=\"note\">Written by lmadapt report from ");
    for (int i = 0; i < n; i++) {
        if (i) lma_buf_str(b, ", ");
        lma_html_escape(b, rs[i].dir);
    }
    lma_buf_str(b, ".</p>\n</main>\n</body>\n</html>\n");
    return b->st;
}

lma_status lma_report_html(const char *const *runs, int n, lma_buf *out) {
    if (n < 1) return lma_error(LMA_ERR_ARG, "report: no run folder given");
    run_data *rs = calloc((size_t)n, sizeof *rs);
    if (!rs) return lma_error(LMA_ERR_NOMEM, "out of memory for %d runs", n);
    lma_status s = LMA_OK;
    int loaded = 0;
    for (; loaded < n && s == LMA_OK; loaded++) s = load_run(&rs[loaded], runs[loaded]);
    for (int i = 0; i < n && s == LMA_OK; i++) {
        base_name(runs[i], rs[i].name, sizeof rs[i].name);
        for (int j = 0; j < n; j++) {
            char other[256];
            base_name(runs[j], other, sizeof other);
            if (j != i && !strcmp(other, rs[i].name)) { snprintf(rs[i].name, sizeof rs[i].name, "%s", runs[i]); break; }
        }
    }
    if (s == LMA_OK) s = put_page(out, rs, n);
    for (int i = 0; i < loaded; i++) run_free(&rs[i]);
    free(rs);
    return s;
}

lma_status lma_report_write(const char *const *runs, int n, const char *path) {
    lma_buf b = {0};
    lma_status s = lma_report_html(runs, n, &b);
    if (s == LMA_OK) s = lma_write_file_atomic(path, b.p, b.len);
    lma_buf_free(&b);
    return s;
}
