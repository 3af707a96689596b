#include "train/schedule.h"
#include <math.h>
#include <string.h>

double lma_schedule_lr(const lma_schedule *s, int step) {
    if (s->warmup_steps > 0 && step < s->warmup_steps) return s->lr * (double)step / (double)s->warmup_steps;
    if (s->kind == LMA_SCHED_CONSTANT || s->total_steps <= s->warmup_steps) return s->lr;
    double p = (double)(step - s->warmup_steps) / (double)(s->total_steps - s->warmup_steps);
    if (p > 1) p = 1;
    double f = s->kind == LMA_SCHED_COSINE ? 0.5 * (1.0 + cos(M_PI * p)) : 1.0 - p;
    return s->min_lr + (s->lr - s->min_lr) * f;
}

int lma_schedule_parse_kind(const char *name) {
    if (!strcmp(name, "constant")) return LMA_SCHED_CONSTANT;
    if (!strcmp(name, "cosine")) return LMA_SCHED_COSINE;
    if (!strcmp(name, "linear")) return LMA_SCHED_LINEAR;
    return -1;
}
