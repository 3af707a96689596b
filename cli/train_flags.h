/* The trainer flags every training command shares (pretrain, cpt, sft, ...):
 * --out --steps --epochs --batch --seq --accum --lr --min-lr --warmup --schedule
 * --weight-decay --clip --seed --save-every --eval-every --eval-batches --keep
 * --resume --val-fraction --spike-z --nan-abort --threads, and the
 * parameter-efficient ones: --method --lora-r --lora-alpha --lora-dropout
 * --lora-targets --rslora */
#ifndef LMA_CLI_TRAIN_FLAGS_H
#define LMA_CLI_TRAIN_FLAGS_H
#include <getopt.h>
#include <stdio.h>
#include "model/lora.h"
#include "train/trainer.h"

typedef enum { CLI_METHOD_FULL, CLI_METHOD_LORA, CLI_METHOD_QLORA } cli_method;

typedef struct {
    lma_trainer_params tp;
    int epochs;          /* > 0: steps = epochs * tokens / (B*T*accum) */
    int steps_given;
    int grad_ckpt;       /* --grad-ckpt: activation checkpointing (recompute each layer in the backward) */
    uint64_t seed;
    double val_fraction;
    int threads;
    const char *device;  /* --device: cpu | cuda | NULL (cuda when a GPU is present; cpu for qlora) */
    cli_method method;
    lma_lora_params lora;
} cli_train_opts;

void cli_train_opts_init(cli_train_opts *o);
/* Copies the command's own options and the shared ones into out (cap entries). */
void cli_train_long_options(const struct option *own, struct option *out, int cap);
/* Handles a shared option code: 1 consumed, 0 not a shared option, -1 bad value (message printed). */
int cli_train_opt(const char *cmd, cli_train_opts *o, int code, const char *arg);
/* Final checks and derived values (steps from epochs, schedule length). 0 ok, 2 usage error. */
int cli_train_finish(const char *cmd, cli_train_opts *o, uint64_t train_tokens);
void cli_train_help(FILE *f);
/* The backend of --device for this run (see the device field). */
lma_status cli_train_backend(const cli_train_opts *o, const lma_backend **be);
/* Loads the base model of a fine-tuning run for o->method: fp32 (full, lora) or
 * NF4 (qlora); attaches a fresh adapter for lora/qlora and prints PEFT's
 * "trainable params" line. Returns an lma_status (message set). */
lma_status cli_train_load_model(const cli_train_opts *o, const char *dir, lma_model **out);
/* The model-side options (--grad-ckpt) onto a created or loaded model; says so on stdout. */
void cli_train_model_opts(const cli_train_opts *o, lma_model *m);
#endif
