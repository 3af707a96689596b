/* train/schedule: warmup + cosine/linear against the closed forms of HF's
 * get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup (min_lr 0). */
#include "train/schedule.h"
#include "test.h"

int main(void) {
    lma_schedule s = {LMA_SCHED_COSINE, 1e-3, 0.0, 10, 110};
    CHECK(lma_schedule_lr(&s, 0) == 0.0, "warmup starts at 0");
    CHECK(fabs(lma_schedule_lr(&s, 5) - 5e-4) < 1e-15, "half warmup");
    CHECK(fabs(lma_schedule_lr(&s, 10) - 1e-3) < 1e-15, "peak after warmup");
    /* HF: lr * 0.5 * (1 + cos(pi * progress)), progress = (step - warmup) / (total - warmup) */
    for (int st = 10; st <= 110; st += 7) {
        double p = (st - 10) / 100.0, want = 1e-3 * 0.5 * (1 + cos(M_PI * p));
        CHECK(fabs(lma_schedule_lr(&s, st) - want) < 1e-15, "cosine step %d", st);
    }
    CHECK(fabs(lma_schedule_lr(&s, 110)) < 1e-15, "cosine ends at 0");
    CHECK(fabs(lma_schedule_lr(&s, 500)) < 1e-15, "stays at the floor past the end");
    s.kind = LMA_SCHED_LINEAR;
    CHECK(fabs(lma_schedule_lr(&s, 60) - 5e-4) < 1e-15, "linear midpoint");
    s.min_lr = 1e-4;
    CHECK(fabs(lma_schedule_lr(&s, 110) - 1e-4) < 1e-15, "floor");
    s.kind = LMA_SCHED_CONSTANT;
    CHECK(lma_schedule_lr(&s, 50) == 1e-3, "constant");
    CHECK(lma_schedule_parse_kind("cosine") == LMA_SCHED_COSINE && lma_schedule_parse_kind("x") == -1, "parse");
    TEST_END();
}
