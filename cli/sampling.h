/* The sampling options shared by generate and chat:
 * --max-tokens --temperature --top-k --top-p --min-p --repetition-penalty --seed */
#ifndef LMA_CLI_SAMPLING_H
#define LMA_CLI_SAMPLING_H
#include <getopt.h>
#include "infer/generate.h"

enum { CLI_O_MAX = 900, CLI_O_TEMP, CLI_O_TOPK, CLI_O_TOPP, CLI_O_MINP, CLI_O_REP, CLI_O_SEED };
#define CLI_SAMPLING_OPTIONS                                                                                    \
    {"max-tokens", required_argument, 0, CLI_O_MAX}, {"temperature", required_argument, 0, CLI_O_TEMP},      \
    {"top-k", required_argument, 0, CLI_O_TOPK}, {"top-p", required_argument, 0, CLI_O_TOPP},                 \
    {"min-p", required_argument, 0, CLI_O_MINP}, {"repetition-penalty", required_argument, 0, CLI_O_REP},     \
    {"seed", required_argument, 0, CLI_O_SEED}

/* 1: consumed; 0: not a sampling option; -1: bad number (usage error printed). */
int cli_sampling_opt(const char *cmd, int code, const char *arg, lma_gen_params *gp);
/* 0 when every setting is in range, else prints a usage error and returns 2. */
int cli_sampling_check(const char *cmd, const lma_gen_params *gp);
#endif
