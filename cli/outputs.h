/* The output rules every writing command follows (docs/reliability.md):
 *  - an output is never an input: equal to it, inside an input folder, or holding an
 *    input, through symlinks ("merge --out" = "--model", "sft --out" inside the model's
 *    folder, an --overwrite that would delete the input) -- refused before any work;
 *  - two outputs of one command are never the same path ("split --train X --val X",
 *    "filter -o X --removed X") -- refused before any work;
 *  - a folder a command writes whole (a run, a merged model, a tokenizer) must be new or
 *    empty, unless --overwrite, which replaces it whole.
 * Each function prints its error ("lmadapt CMD: ...") and returns 2, or returns 0. */
#ifndef LMA_CLI_OUTPUTS_H
#define LMA_CLI_OUTPUTS_H

typedef struct {
    const char *flag; /* "--model", "input file": named in the message */
    const char *path; /* NULL: absent (skipped) */
} cli_path;

int cli_check_paths(const char *cmd, const cli_path *outs, int n_out, const cli_path *ins, int n_in);
/* dir: absent or empty (ok); else refused unless overwrite. what: "a model", "a run". */
int cli_check_out_dir(const char *cmd, const char *flag, const char *dir, int overwrite);
#endif
