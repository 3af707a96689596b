/* Progress bar on stderr. On a terminal it redraws one line ("label [#####   ] 42%
 * 1.2k/3k  12.3 it/s  ETA 1m02s"); when stderr is not a terminal it prints a plain
 * line at most every `plain_every_s` seconds (default 10) and at the end. */
#ifndef LMA_CORE_PROGRESS_H
#define LMA_CORE_PROGRESS_H
#include <stdint.h>

typedef struct {
    const char *label;
    int64_t total, done;
    double t0, last_draw;
    int tty, quiet;
    double plain_every_s;
    char extra[128];
} lma_progress;

void lma_progress_start(lma_progress *p, const char *label, int64_t total);
void lma_progress_set_extra(lma_progress *p, const char *text); /* e.g. "loss 2.31" */
void lma_progress_update(lma_progress *p, int64_t done);
void lma_progress_finish(lma_progress *p);
double lma_now(void); /* monotonic seconds */
#endif
