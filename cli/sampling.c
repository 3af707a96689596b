#include "sampling.h"
#include <string.h>
#include <stdlib.h>
#include "core/io.h"
#include "core/json.h"
#include "infer/json_constraint.h"

void cli_sampling_init(cli_sampling *s, int max_tokens, float temperature) {
    memset(s, 0, sizeof *s);
    s->gp.sample = lma_sample_default_params();
    s->gp.max_tokens = max_tokens;
    s->gp.sample.temperature = temperature;
    s->stops = (cli_list){s->stop_v, 0, CLI_MAX_STOPS};
}

static const char *const format_names[] = {"text", "json", "yaml", NULL};

void cli_sampling_table(cli_sampling *s, int what, cli_opt t[CLI_SAMPLING_NOPTS]) {
    lma_sample_params *p = &s->gp.sample;
    int k = 0;
    if (!(what & CLI_SAMPLING_NO_SAMPLER)) {
    t[k++] = (cli_opt)CLI_INT("max-tokens", 0, &s->gp.max_tokens, 1, CLI_MAX_TOKENS_MAX, "N", "tokens to generate at most");
    t[k++] = (cli_opt)CLI_FLT("temperature", 0, &p->temperature, 0, 100, "X", "0 = greedy");
    t[k++] = (cli_opt)CLI_INT("top-k", 0, &p->top_k, 0, 2147483647, "K", "keep the K most likely tokens (0 = off)");
    t[k++] = (cli_opt)CLI_FLT("top-p", 0, &p->top_p, 0, 1, "P", "nucleus sampling, in (0, 1] (1 = off)", .flags = CLI_MIN_OPEN);
    t[k++] = (cli_opt)CLI_FLT("min-p", 0, &p->min_p, 0, 1, "P", "drop tokens below P x the top probability (0 = off)",
                              .flags = CLI_MAX_OPEN);
    t[k++] = (cli_opt)CLI_FLT("repetition-penalty", 0, &p->repetition_penalty, 0, 100, "R",
                              "penalize tokens already present (1 = off)", .flags = CLI_MIN_OPEN);
    t[k++] = (cli_opt)CLI_U64("seed", 0, &s->gp.seed, "N", "sampling seed");
    }
    if (what & CLI_SAMPLING_STOP) t[k++] = (cli_opt)CLI_MULTI("stop", 0, &s->stops, "S", "stop string");
    if (what & CLI_SAMPLING_FORMAT) {
        t[k++] = (cli_opt)CLI_CHOOSE("format", 0, &s->format, format_names, NULL, NULL,
                                     "json: the output is a complete JSON object, even at --max-tokens\n"
                                     "(tokens that cannot continue it are masked; docs/generate.md);\n"
                                     "yaml: a YAML block mapping of plain scalars and lists (the subset\n"
                                     "in docs/generate.md)");
        t[k++] = (cli_opt)CLI_STR("json-schema", 0, &s->schema_path, "F", "the output is valid against this JSON schema\n"
                                  "(type, properties, required, items, enum; docs/generate.md)", .flags = CLI_IN);
        t[k++] = (cli_opt)CLI_STR("grammar", 0, &s->grammar_path, "F", "the output is a complete sentence of this GBNF grammar\n"
                                  "(llama.cpp's format, start rule root; docs/generate.md)", .flags = CLI_IN);
    }
    t[k] = (cli_opt)CLI_END;
}

void cli_sampling_finish(cli_sampling *s) {
    s->gp.stop_strings = s->stops.v;
    s->gp.n_stop_strings = s->stops.n;
}

lma_status cli_sampling_constraint(cli_sampling *s, const lma_tokenizer *tok) {
    if (!s->format && !s->schema_path && !s->grammar_path) return LMA_OK;
    if (s->grammar_path) {
        if (s->format || s->schema_path) return lma_error(LMA_ERR_ARG, "--grammar does not go with --format or --json-schema");
        char *text = NULL;
        size_t len = 0;
        LMA_TRY(lma_read_file(s->grammar_path, &text, &len));
        lma_status st = lma_grammar_constraint_new(tok, text, len, s->grammar_path, &s->gp.constraint);
        free(text);
        return st;
    }
    if (s->format == 2) {
        if (s->schema_path) return lma_error(LMA_ERR_ARG, "--json-schema constrains JSON: it does not go with --format yaml");
        return lma_yaml_constraint_new(tok, &s->gp.constraint);
    }
    cJSON *schema = NULL;
    if (s->schema_path) LMA_TRY(lma_json_load(s->schema_path, &schema));
    lma_status st = lma_json_constraint_new(tok, schema, &s->gp.constraint);
    if (st != LMA_OK && s->schema_path)
        st = lma_error_replace(st, "%s: %s", s->schema_path, lma_last_error());
    cJSON_Delete(schema);
    return st;
}

void cli_sampling_free(cli_sampling *s) {
    lma_json_constraint_free(s->gp.constraint);
    s->gp.constraint = NULL;
}
