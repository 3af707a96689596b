/* Learning-rate schedules: linear warmup from 0, then cosine or linear decay to
 * min_lr at total_steps (HF get_cosine_schedule_with_warmup /
 * get_linear_schedule_with_warmup with a floor), or constant. Steps count from 0:
 * lr_at(0) is the rate of the first update. */
#ifndef LMA_TRAIN_SCHEDULE_H
#define LMA_TRAIN_SCHEDULE_H
typedef enum { LMA_SCHED_CONSTANT = 0, LMA_SCHED_COSINE, LMA_SCHED_LINEAR } lma_sched_kind;

typedef struct {
    lma_sched_kind kind;
    double lr, min_lr;
    int warmup_steps, total_steps;
} lma_schedule;

double lma_schedule_lr(const lma_schedule *s, int step);
/* "constant", "cosine", "linear"; -1 if unknown */
int lma_schedule_parse_kind(const char *name);
#endif
