/* The trainer flags every training command shares (pretrain, cpt, sft, ...):
 * --out --steps --epochs --batch --seq --accum --lr --min-lr --warmup --schedule
 * --weight-decay --clip --seed --save-every --eval-every --eval-batches --keep
 * --resume --val-fraction --spike-z --nan-abort --threads */
#ifndef LMA_CLI_TRAIN_FLAGS_H
#define LMA_CLI_TRAIN_FLAGS_H
#include <getopt.h>
#include <stdio.h>
#include "train/trainer.h"

typedef struct {
    lma_train_params tp;
    int epochs;          /* > 0: steps = epochs * tokens / (B*T*accum) */
    int steps_given;
    uint64_t seed;
    double val_fraction;
    int threads;
} cli_train_opts;

void cli_train_opts_init(cli_train_opts *o);
/* Copies the command's own options and the shared ones into out (cap entries). */
void cli_train_long_options(const struct option *own, struct option *out, int cap);
/* Handles a shared option code: 1 consumed, 0 not a shared option, -1 bad value (message printed). */
int cli_train_opt(const char *cmd, cli_train_opts *o, int code, const char *arg);
/* Final checks and derived values (steps from epochs, schedule length). 0 ok, 2 usage error. */
int cli_train_finish(const char *cmd, cli_train_opts *o, uint64_t train_tokens);
void cli_train_help(FILE *f);
#endif
