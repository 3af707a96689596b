/* The trainer flags every training command shares (pretrain, cpt, sft, ...):
 * --out --steps --epochs --batch --seq --accum --lr --min-lr --warmup --schedule
 * --weight-decay --clip --seed --save-every --eval-every --eval-batches --keep
 * --resume --val-fraction --spike-z --nan-abort --threads, and the
 * parameter-efficient ones: --method --lora-r --lora-alpha --lora-dropout
 * --lora-targets --rslora */
#ifndef LMA_CLI_TRAIN_FLAGS_H
#define LMA_CLI_TRAIN_FLAGS_H
#include <stdio.h>
#include "model/lora.h"
#include "opts.h"
#include "train/trainer.h"

typedef enum { CLI_METHOD_FULL, CLI_METHOD_LORA, CLI_METHOD_QLORA } cli_method;

typedef struct {
    lma_trainer_params tp;
    int epochs;          /* > 0: steps = epochs * tokens / (B*T*accum) */
    int steps_given;
    int overwrite;       /* --overwrite: replace a run folder that holds another run */
    int grad_ckpt;       /* --grad-ckpt: activation checkpointing (recompute each layer in the backward) */
    uint64_t seed;
    double val_fraction;
    int threads;
    const char *device;  /* --device: cpu | cuda | NULL (cuda when a GPU is present; cpu for qlora) */
    int method;          /* cli_method */
    int zero;            /* --zero 0|1|2: the ZeRO stage of data-parallel training (docs/distributed.md) */
    int schedule;        /* lma_sched_kind, copied into tp.sched.kind by cli_train_check */
    const char *resume_dir, *lora_targets;
    const char *rope_scaling; /* --rope-scaling TYPE:FACTOR */
    lma_lora_params lora;
} cli_train_opts;

/* The defaults of every training command; a command changes its own (lr, B, T)
 * before building the tables, so that --help shows them. */
void cli_train_opts_init(cli_train_opts *o);
/* The shared option tables pointing into o (each ends with CLI_END). */
#define CLI_TRAIN_NOPTS 29
#define CLI_PEFT_NOPTS 8
void cli_train_table(cli_train_opts *o, cli_opt t[CLI_TRAIN_NOPTS]);
void cli_peft_table(cli_train_opts *o, cli_opt t[CLI_PEFT_NOPTS]);
#define CLI_TRAIN_TITLE "Training options (shared by every training command):"
#define CLI_PEFT_TITLE "Parameter-efficient fine-tuning (sft, cpt, dpo):"
#define CLI_TRAIN_EPILOG "Ctrl-C saves a checkpoint and exits; --resume continues bitwise-identically on CPU.\n"
/* Right after parsing: --resume, --out, --min-lr (default --lr / 10) <= --lr, --steps
 * vs --epochs, --lora-targets; 0 ok, 2 usage error (printed). */
int cli_train_check(const cli_args *a, cli_train_opts *o);
/* The run folder, before any work (docs/reliability.md; cli_parse has already refused an
 * --out that is, holds or sits in an input):
 *   fresh run: the folder must be new or empty (--overwrite replaces it whole); the
 *              settings are stored in RUN/run.json;
 *   --resume:  RUN/run.json must be this command's; options not given take the stored
 *              values, a given one that differs is refused (--steps may only grow), and
 *              run.json is rewritten with the new --steps.
 * a may be NULL (a command without the training table: the folder rules only).
 * 0 ok, 1 failed, 2 usage error (printed). */
int cli_train_prepare(const cli_args *a, const char *cmd, cli_train_opts *o);
/* Derived values once the data is known (steps from epochs, schedule length). 0 ok, 2 usage error. */
int cli_train_finish(const char *cmd, cli_train_opts *o, uint64_t train_tokens);
/* The backend of --device for this run (see the device field). */
lma_status cli_train_backend(const cli_train_opts *o, const lma_backend **be);
/* Loads the base model of a fine-tuning run for o->method: fp32 (full, lora) or
 * NF4 (qlora); attaches a fresh adapter for lora/qlora and prints PEFT's
 * "trainable params" line. Returns an lma_status (message set). */
lma_status cli_train_load_model(cli_train_opts *o, const char *dir, lma_model **out);
/* The memory planner's prediction (advise/mem.h) for a run of config c on be (dir: the weight
 * source, or NULL for a random init): printed, and kept in o->tp.mem_pred_gib for metrics.jsonl.
 * Nothing for backends the planner does not model (cuda-fp32, ref). */
void cli_train_mem_predict(cli_train_opts *o, const lma_config *c, const lma_backend *be, const char *dir);
/* After a finished run: RUN/report.html (report/report.h) from the run folder; a failure is a
 * warning on stderr, never a failed run. */
void cli_train_report(const char *cmd, const char *run);
/* After the run: the measured peak beside the prediction. */
void cli_train_mem_report(const cli_train_opts *o, const lma_model *m);
/* The model-side options (--grad-ckpt, --rope-scaling) onto a created or loaded model; says
 * so on stdout. */
lma_status cli_train_model_opts(const cli_train_opts *o, lma_model *m);
#endif
