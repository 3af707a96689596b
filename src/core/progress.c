#include "core/progress.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double lma_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(char *b, size_t n, double s) {
    if (s < 0 || s > 1e7) { snprintf(b, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(b, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(b, n, "%lds", t);
}

void lma_progress_start(lma_progress *p, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    p->label = label; p->total = total;
    p->t0 = p->last_draw = lma_now();
    p->tty = isatty(2);
    p->quiet = getenv("LMA_QUIET") != NULL;
    p->plain_every_s = 10.0;
}

void lma_progress_set_extra(lma_progress *p, const char *text) {
    snprintf(p->extra, sizeof p->extra, "%s", text ? text : "");
}

static void draw(lma_progress *p, int final) {
    double now = lma_now(), el = now - p->t0, rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    fmt_time(eta, sizeof eta, rate > 0 && p->total > 0 ? (double)(p->total - p->done) / rate : -1);
    fmt_time(elapsed, sizeof elapsed, el);
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0;
    if (frac > 1) frac = 1;
    if (p->total <= 0) { /* an unknown total: a count and a rate, no share */
        fprintf(stderr, p->tty ? "\r%s: %lld done, %.1f/s, elapsed %s %s\033[K" : "%s: %lld done, %.1f/s, elapsed %s %s\n",
                p->label, (long long)p->done, rate, elapsed, p->extra);
        if (p->tty && final) fputc('\n', stderr);
    } else if (p->tty) {
        char bar[31]; int w = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : ' ';
        bar[30] = 0;
        fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld %.1f/s %s %s %s\033[K", p->label, bar, (int)(frac * 100),
                (long long)p->done, (long long)p->total, rate, final ? "in" : "ETA", final ? elapsed : eta, p->extra);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %lld/%lld (%d%%) %.1f/s elapsed %s%s%s %s\n", p->label, (long long)p->done,
                (long long)p->total, (int)(frac * 100), rate, elapsed, final ? "" : " ETA ", final ? "" : eta, p->extra);
    }
    fflush(stderr);
    p->last_draw = now;
}

void lma_progress_update(lma_progress *p, int64_t done) {
    p->done = done;
    if (p->quiet) return;
    double now = lma_now();
    if (now - p->last_draw >= (p->tty ? 0.1 : p->plain_every_s)) draw(p, 0);
}

void lma_progress_finish(lma_progress *p) {
    if (!p->quiet) draw(p, 1);
}
