/* The sampling options, defined once with one set of limits and used by every
 * command that generates text (generate, chat, eval, data generate, data judge):
 * --max-tokens --temperature --top-k --top-p --min-p --repetition-penalty --seed --stop, and
 * for generate and chat the output format: --format json, --json-schema F (guaranteed
 * complete JSON, infer/json_constraint.h), --grammar F (a GBNF grammar, infer/grammar.h) */
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
    int format;                       /* --format: 0 text, 1 json, 2 yaml */
    const char *schema_path;          /* --json-schema */
    const char *grammar_path;         /* --grammar (GBNF) */
} cli_sampling;

/* gp's sampler at lma_sample_default_params() with the command's max_tokens and
 * temperature; seed 0; no stop strings. */
void cli_sampling_init(cli_sampling *s, int max_tokens, float temperature);
/* The option table (ends with CLI_END) pointing into s; what: CLI_SAMPLING_STOP (--stop),
 * CLI_SAMPLING_FORMAT (--format, --json-schema, --grammar). */
#define CLI_SAMPLING_NOPTS 12
enum { CLI_SAMPLING_STOP = 1, CLI_SAMPLING_FORMAT = 2, CLI_SAMPLING_NO_SAMPLER = 4 /* only --format, --json-schema */ };
void cli_sampling_table(cli_sampling *s, int what, cli_opt t[CLI_SAMPLING_NOPTS]);
/* After parsing: the stop strings into gp. */
void cli_sampling_finish(cli_sampling *s);
/* With --format json|yaml, --json-schema or --grammar: the constraint for tok into gp.constraint (message
 * set on failure: an unreadable or unsupported schema, a grammar's
 * file:line:col error, a tokenizer without byte tokens). */
lma_status cli_sampling_constraint(cli_sampling *s, const lma_tokenizer *tok);
void cli_sampling_free(cli_sampling *s);
#endif
