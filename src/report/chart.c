/* Line charts as inline SVG (chart.h). */
#include "report/chart.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const palette[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                      "#e69f00", "#56b4e9", "#000000", "#f0e442"};

const char *lma_chart_color(int i) {
    int n = (int)(sizeof palette / sizeof palette[0]);
    return palette[((i % n) + n) % n];
}

lma_status lma_html_escape(lma_buf *b, const char *s) {
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&': lma_buf_str(b, "&amp;"); break;
        case '<': lma_buf_str(b, "&lt;"); break;
        case '>': lma_buf_str(b, "&gt;"); break;
        case '"': lma_buf_str(b, "&quot;"); break;
        case '\'': lma_buf_str(b, "&#39;"); break;
        default: lma_buf_push(b, *p);
        }
    }
    return b->st;
}

double lma_chart_ticks(double lo, double hi, int want, double *t0, double *t1) {
    if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= d;
        hi += d;
    }
    double raw = (hi - lo) / (want > 1 ? want - 1 : 1);
    double p = pow(10.0, floor(log10(raw))), f = raw / p;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
    *t0 = floor(lo / step + 1e-9) * step;
    *t1 = ceil(hi / step - 1e-9) * step;
    return step;
}

/* A tick label: the value rounded to the step, at most 4 significant digits. */
static void tick_text(double v, double step, char *out, size_t cap) {
    v = round(v / step) * step;
    if (fabs(v) < step * 1e-6) v = 0;
    snprintf(out, cap, "%.4g", v);
}

static int finite_pt(const lma_chart_series *s, size_t i) { return isfinite(s->x[i]) && isfinite(s->y[i]); }

enum { W = 480, ML = 70, MR = 14, PH = 200, MB = 42, LEG = 16 };

lma_status lma_chart_svg(lma_buf *b, const lma_chart *c, int *curves) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int drawn = 0;
    for (int k = 0; k < c->n_series; k++) {
        const lma_chart_series *s = &c->series[k];
        int any = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (!finite_pt(s, i)) continue;
            any = 1;
            x0 = fmin(x0, s->x[i]); x1 = fmax(x1, s->x[i]);
            y0 = fmin(y0, s->y[i]); y1 = fmax(y1, s->y[i]);
        }
        drawn += any;
    }
    if (curves) *curves = drawn;
    int top = 34 + LEG * c->n_series, H = top + PH + MB, PW = W - ML - MR;
    lma_buf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\" "
                   "xmlns=\"http://www.w3.org/2000/svg\" font-family=\"system-ui, sans-serif\" font-size=\"14\">\n",
                   W, H);
    lma_buf_str(b, "<title>");
    lma_html_escape(b, c->title);
    lma_buf_str(b, "</title>\n<text x=\"4\" y=\"18\" font-size=\"15\" font-weight=\"600\">");
    lma_html_escape(b, c->title);
    lma_buf_str(b, "</text>\n");
    for (int k = 0; k < c->n_series; k++) { /* the legend: one row per series */
        const lma_chart_series *s = &c->series[k];
        int has = 0;
        for (size_t i = 0; i < s->n && !has; i++) has = finite_pt(s, i);
        int y = 28 + LEG * k;
        lma_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"18\" height=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
                       ML, y + 1, lma_chart_color(s->color), ML + 24, y + 7);
        lma_html_escape(b, s->label);
        if (!has) lma_buf_str(b, " (no data)");
        lma_buf_str(b, "</text>\n");
    }
    if (!drawn) {
        lma_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">not recorded</text>\n</svg>\n",
                       ML + PW / 2, top + PH / 2);
        return b->st;
    }
    double xs, ys, xt0, xt1, yt0, yt1;
    xs = lma_chart_ticks(x0, x1, 6, &xt0, &xt1);
    ys = lma_chart_ticks(y0, y1, 5, &yt0, &yt1);
    char t[48];
#define PX(v) (ML + ((v) - xt0) / (xt1 - xt0) * PW)
#define PY(v) (top + PH - ((v) - yt0) / (yt1 - yt0) * PH)
    lma_buf_str(b, "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
    for (int i = 0; i < 64; i++) {
        double v = yt0 + i * ys;
        if (v > yt1 + ys * 1e-6) break;
        lma_buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>\n", ML, ML + PW, PY(v), PY(v));
    }
    lma_buf_str(b, "</g>\n<g fill=\"#333\">\n");
    for (int i = 0; i < 64; i++) {
        double v = yt0 + i * ys;
        if (v > yt1 + ys * 1e-6) break;
        tick_text(v, ys, t, sizeof t);
        lma_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ML - 6, PY(v) + 4, t);
    }
    for (int i = 0; i < 64; i++) {
        double v = xt0 + i * xs;
        if (v > xt1 + xs * 1e-6) break;
        tick_text(v, xs, t, sizeof t);
        lma_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
                       "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                       PX(v), PX(v), top + PH, top + PH + 5, PX(v), top + PH + 19, t);
    }
    lma_buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", ML, ML + PW, top + PH, top + PH);
    lma_buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", ML, ML, top, top + PH);
    lma_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", ML + PW / 2, top + PH + 36);
    lma_html_escape(b, c->x_label);
    lma_buf_printf(b, "</text>\n<text transform=\"translate(14 %d) rotate(-90)\" text-anchor=\"middle\">", top + PH / 2);
    lma_html_escape(b, c->y_label);
    lma_buf_str(b, "</text>\n</g>\n");
    for (int k = 0; k < c->n_series; k++) {
        const lma_chart_series *s = &c->series[k];
        size_t pts = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (!finite_pt(s, i)) continue;
            if (!pts) lma_buf_printf(b, "<path class=\"curve\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                                     "stroke-linejoin=\"round\" stroke-linecap=\"round\" d=\"",
                                     lma_chart_color(s->color));
            lma_buf_printf(b, "%s%.1f %.1f", pts ? "L" : "M", PX(s->x[i]), PY(s->y[i]));
            pts++;
        }
        if (pts == 1) lma_buf_str(b, "l0 0"); /* one point: a round dot */
        if (pts) lma_buf_str(b, "\"/>\n");
    }
#undef PX
#undef PY
    lma_buf_str(b, "</svg>\n");
    return b->st;
}
