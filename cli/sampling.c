#include "sampling.h"
#include <string.h>

void cli_sampling_init(cli_sampling *s, int max_tokens, float temperature) {
    memset(s, 0, sizeof *s);
    s->gp.sample = lma_sample_default_params();
    s->gp.max_tokens = max_tokens;
    s->gp.sample.temperature = temperature;
    s->stops = (cli_list){s->stop_v, 0, CLI_MAX_STOPS};
}

void cli_sampling_table(cli_sampling *s, int with_stop, cli_opt t[CLI_SAMPLING_NOPTS]) {
    lma_sample_params *p = &s->gp.sample;
    int k = 0;
    t[k++] = (cli_opt)CLI_INT("max-tokens", 0, &s->gp.max_tokens, 1, CLI_MAX_TOKENS_MAX, "N", "tokens to generate at most");
    t[k++] = (cli_opt)CLI_FLT("temperature", 0, &p->temperature, 0, 100, "X", "0 = greedy");
    t[k++] = (cli_opt)CLI_INT("top-k", 0, &p->top_k, 0, 2147483647, "K", "keep the K most likely tokens (0 = off)");
    t[k++] = (cli_opt)CLI_FLT("top-p", 0, &p->top_p, 0, 1, "P", "nucleus sampling, in (0, 1] (1 = off)", .flags = CLI_MIN_OPEN);
    t[k++] = (cli_opt)CLI_FLT("min-p", 0, &p->min_p, 0, 1, "P", "drop tokens below P x the top probability (0 = off)",
                              .flags = CLI_MAX_OPEN);
    t[k++] = (cli_opt)CLI_FLT("repetition-penalty", 0, &p->repetition_penalty, 0, 100, "R",
                              "penalize tokens already present (1 = off)", .flags = CLI_MIN_OPEN);
    t[k++] = (cli_opt)CLI_U64("seed", 0, &s->gp.seed, "N", "sampling seed");
    if (with_stop) t[k++] = (cli_opt)CLI_MULTI("stop", 0, &s->stops, "S", "stop string");
    t[k] = (cli_opt)CLI_END;
}

void cli_sampling_finish(cli_sampling *s) {
    s->gp.stop_strings = s->stops.v;
    s->gp.n_stop_strings = s->stops.n;
}
