/* CLI plumbing shared by the cmd_<name>.c files (their options: cli/opts.h). Only cli/ prints and exits.
 * Exit status: 0 ok, 1 failed, 2 bad usage. */
#ifndef LMA_CLI_H
#define LMA_CLI_H
#include "lmadapt.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} lma_cli_command;

/* One entry per subcommand: implemented in cli/cmd_<name>.c. */
int cmd_score(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_cpt(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_launch(int argc, char **argv);
int cmd_dpo(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_rag(int argc, char **argv);
int cmd_embed(int argc, char **argv);

/* The dispatcher (cli/main.c): argv[1] is the command; returns the exit status. */
int cli_main(int argc, char **argv);
/* Set by tests/fuzz/fuzz_argv.c: cli_parse returns 0 where the command would run. */
extern int cli_parse_only;
int cmd_mem(int argc, char **argv);
int cmd_advise(int argc, char **argv);
int cmd_icl(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Prints "lmadapt <cmd>: <message>" (message = lma_last_error() when NULL) and returns 1. */
int cli_fail(const char *cmd, const char *msg);
/* Prints "lmadapt <cmd>: <message>\nTry 'lmadapt <cmd> --help'." and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...);
/* The backend for --device NAME: "cpu", "cpu-bf16", "cuda", "cuda-fp32", or NULL for the default (cuda when a
 * GPU is present, else cpu). Prints an error and returns NULL when unavailable. */
struct lma_backend;
const struct lma_backend *cli_backend(const char *cmd, const char *device);
/* Comma-separated non-negative token ids ("1,2,3"); 1 ok (caller frees *out), 0 bad. */
int cli_parse_ids(const char *s, int32_t **out, size_t *n);
/* Resolves a --model argument in place (core/model_path.h: a path, a folder holding one
 * .gguf, or a short name of the model cache); prints the error and returns 1 when there is
 * no such model. The resolved path lives until exit. */
int cli_resolve_model(const char *cmd, const char **model);
#endif
