/* Line charts as inline SVG (report.html): linear axes with "nice" ticks (1, 2, 5 x 10^k),
 * light grid lines, a legend, and one <path class="curve"> per series that has at least one
 * finite point. Points whose x or y is NaN/Inf are skipped: the path joins the finite
 * neighbours (a gap in the log is not a gap in the curve), so a path's "d" holds only
 * numbers and M/L commands. Axes, ticks and grid are <line>/<text>, the legend <rect>/<text>:
 * the only <path> elements of a chart are its curves.
 * The SVG has a viewBox and width="100%": it scales with the page (phone or desktop).
 * The caller owns the series arrays; the chart only reads them. No allocation but the
 * output buffer's. */
#ifndef LMA_REPORT_CHART_H
#define LMA_REPORT_CHART_H
#include <stddef.h>
#include "core/buf.h"

typedef struct {
    const char *label;     /* legend text (escaped here) */
    const double *x, *y;   /* (n) each; NaN/Inf points skipped */
    size_t n;
    int color;             /* index into the palette (lma_chart_color) */
} lma_chart_series;

typedef struct {
    const char *title;     /* escaped here */
    const char *x_label, *y_label;
    const lma_chart_series *series;
    int n_series;
} lma_chart;

/* "#rrggbb" of palette entry i (wraps around; 8 colours told apart by most colour-blind readers). */
const char *lma_chart_color(int i);

/* Ticks for [lo, hi] (finite, lo <= hi; lo == hi is widened by 10%, or by 1 around 0):
 * step = 1, 2, 5 or 10 x 10^k, the smallest of these >= (hi - lo) / (want - 1); the axis runs
 * from *t0 = the largest multiple of step <= lo to *t1 = the smallest multiple >= hi.
 * Returns the step. [0, 0.93] with want 5: step 0.5, axis [0, 1]. */
double lma_chart_ticks(double lo, double hi, int want, double *t0, double *t1);

/* Appends "<svg ...>...</svg>" to b; *curves (may be NULL): the series drawn (those with a
 * finite point). A chart with none says "not recorded". Returns b's status. */
lma_status lma_chart_svg(lma_buf *b, const lma_chart *c, int *curves);

/* Appends s with & < > " ' escaped (HTML text and attribute values). */
lma_status lma_html_escape(lma_buf *b, const char *s);
#endif
