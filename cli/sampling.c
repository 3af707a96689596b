#include "sampling.h"
#include <stdlib.h>
#include "cli.h"

int cli_sampling_opt(const char *cmd, int code, const char *arg, lma_gen_params *gp) {
    char *end = NULL;
    switch (code) {
    case CLI_O_MAX: gp->max_tokens = (int)strtol(arg, &end, 10); break;
    case CLI_O_TEMP: gp->sample.temperature = strtof(arg, &end); break;
    case CLI_O_TOPK: gp->sample.top_k = (int)strtol(arg, &end, 10); break;
    case CLI_O_TOPP: gp->sample.top_p = strtof(arg, &end); break;
    case CLI_O_MINP: gp->sample.min_p = strtof(arg, &end); break;
    case CLI_O_REP: gp->sample.repetition_penalty = strtof(arg, &end); break;
    case CLI_O_SEED: gp->seed = strtoull(arg, &end, 10); break;
    default: return 0;
    }
    if (*end || end == arg) { cli_usage_error(cmd, "bad number '%s'", arg); return -1; }
    return 1;
}

int cli_sampling_check(const char *cmd, const lma_gen_params *gp) {
    const lma_sample_params *s = &gp->sample;
    if (gp->max_tokens < 0 || s->temperature < 0 || s->top_k < 0 || s->top_p <= 0 || s->top_p > 1 || s->min_p < 0 ||
        s->min_p >= 1 || s->repetition_penalty <= 0)
        return cli_usage_error(cmd, "a sampling option is out of range (see --help)");
    return 0;
}
