/* The sampling options, defined once with one set of limits and used by every
 * command that generates text (generate, chat, eval, data generate, data judge):
 * --max-tokens --temperature --top-k --top-p --min-p --repetition-penalty --seed --stop */
#ifndef LMA_CLI_SAMPLING_H
#define LMA_CLI_SAMPLING_H
#include "infer/generate.h"
#include "opts.h"

#define CLI_MAX_TOKENS_MAX 1000000
#define CLI_MAX_STOPS 32

typedef struct {
    lma_gen_params gp;                /* the settings; the command's defaults are set before parsing */
    const char *stop_v[CLI_MAX_STOPS];
    cli_list stops;                   /* --stop (repeatable) */
} cli_sampling;

/* gp's sampler at lma_sample_default_params() with the command's max_tokens and
 * temperature; seed 0; no stop strings. */
void cli_sampling_init(cli_sampling *s, int max_tokens, float temperature);
/* The option table (ends with CLI_END) pointing into s; with_stop: include --stop. */
#define CLI_SAMPLING_NOPTS 9
void cli_sampling_table(cli_sampling *s, int with_stop, cli_opt t[CLI_SAMPLING_NOPTS]);
/* After parsing: the stop strings into gp. */
void cli_sampling_finish(cli_sampling *s);
#endif
