/* lmadapt data <validate|stats|dedup|filter|decontam|split|generate|accept|judge|debug>:
 * dataset curation. This file: the dispatcher and the text-curation commands
 * (validate, stats, dedup, filter, decontam, split, accept); the model-backed ones
 * (generate, judge, debug) are in cmd_data_model.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/buf.h"
#include "core/io.h"
#include "data/curate/curate.h"
#include "data_cmds.h"
#include "opts.h"
#include "eval/curate_model.h"
#include "tok/tokenizer.h"

static const char *usage_main =
    "Usage: lmadapt data <command> INPUT [options]\n\n"
    "Dataset curation for JSONL (or JSON-array) training files in any of the formats\n"
    "OpenAI messages, Alpaca, ShareGPT, prompt/completion, preference (DPO), question/answer, text.\n"
    "Inputs are never modified; outputs are written atomically.\n\n"
    "Commands:\n"
    "  validate   format checks with file:line for each finding\n"
    "  stats      counts, lengths, diversity, duplicates, scripts, verbs, formats\n"
    "  dedup      remove exact and near duplicates (MinHash LSH), keep the first\n"
    "  filter     remove low-quality examples (Gopher rules, repetition, boilerplate)\n"
    "  decontam   remove examples sharing 13-grams with evaluation sets\n"
    "  split      deterministic train/validation/test split\n"
    "  generate   a model drafts responses to prompts into a review file\n"
    "  accept     reviewed file -> training data (accepted and edited lines)\n"
    "  judge      a model scores each example 1-5 against a judge prompt; keep >= threshold\n"
    "  debug      flag examples that would teach unwanted behaviour\n\n"
    "Every command takes --report FILE (JSON report) and prints a summary.\n"
    "Run 'lmadapt data <command> --help' for its options.\n";

void cli_data_print_counts(const cJSON *o, const char *label) {
    if (!o || !o->child) return;
    printf("%s:", label);
    for (const cJSON *c = o->child; c; c = c->next) printf(" %s %.0f", c->string, c->valuedouble);
    printf("\n");
}

void cli_data_warn_unreadable(const char *cmd, const cJSON *summary) {
    double n = cli_data_getn(summary, "unreadable");
    if (n <= 0) return;
    char lines[128] = "";
    size_t k = 0;
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(summary, "unreadable_lines");
    for (const cJSON *e = cJSON_IsArray(l) ? l->child : NULL; e && k + 24 < sizeof lines; e = e->next)
        k += (size_t)snprintf(lines + k, sizeof lines - k, "%s%.0f", k ? ", " : "", e->valuedouble);
    fprintf(stderr, "lmadapt %s: %.0f unreadable record%s skipped (line%s %s%s); 'lmadapt data validate' explains each\n",
            cmd, n, n == 1 ? "" : "s", n == 1 ? "" : "s", lines, n > 5 ? ", ..." : "");
}

double cli_data_getn(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : 0;
}
#define print_counts cli_data_print_counts
#define getn cli_data_getn

#define REPORT_OPT(d) \
    CLI_STR("report", 0, d, "FILE", "write the JSON report (summary and every item) to FILE", .flags = CLI_OUT)

static int do_validate(int argc, char **argv) {
    lma_validate_params p; lma_validate_default_params(&p);
    const char *in = NULL, *tok_dir = NULL;
    int no_system = 0;
    cli_opt own[] = {
        REPORT_OPT(&p.report_path),
        CLI_STR("system", 0, &p.inference_system, "TEXT", "the system prompt the inference side sends (flags others)"),
        CLI_BOOL("no-system", 0, &no_system, "the inference side sends no system prompt (flags any)"),
        CLI_STR("task-field", 0, &p.task_field, "NAME", "compare answer formats within each value of this field"),
        CLI_BOOL("single-task", 0, &p.format_check, "compare answer formats across the whole file (one task)"),
        CLI_REALV("format-minority", 0, &p.format_minority, 0, 1, "X", "an answer format below this share of its task is drift"),
        CLI_INT("show", 0, &p.max_summary_findings, 0, INT_MAX, "N", "findings printed in the summary"),
        CLI_STR("tokenizer", 0, &tok_dir, "DIR", "flag examples longer than --max-tokens (too_long), counted as the\n"
                "chat template renders them (tokenizer.json + tokenizer_config.json)"),
        CLI_INT("max-tokens", 0, &p.max_tokens, 1, INT_MAX, "N", "too_long limit (the OpenAI notebook's; use your training length)"),
        CLI_OPT_TEMPLATE(&p.chat_template),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "data validate",
        .usage = "lmadapt data validate INPUT [--report FILE] [options]",
        .about = "Checks (OpenAI fine-tuning checks and more), each reported with its line:\n"
                 "  invalid_json, data_type, invalid_utf8, missing_messages_list, field_type, missing_field,\n"
                 "  message_missing_key, message_unrecognized_key, unrecognized_role, missing_content,\n"
                 "  empty_turn, example_missing_assistant_message, missing_user_message, role_order,\n"
                 "  last_turn_not_assistant, invalid_weight, chosen_equals_rejected,\n"
                 "  preference_reply_role, preference_prompt_kind,\n"
                 "  stray_special_token, template_in_content, system_prompt_drift, answer_format_drift,\n"
                 "  too_long (with --tokenizer).\n",
        .groups = groups,
        .epilog = "Exit status: 0 no errors (warnings allowed), 1 errors found or failure, 2 bad usage.\n",
        .pos_name = "input file", .pos_one = &in};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    if (no_system) {
        if (p.inference_system) return cli_usage_error(cmd, "give --system TEXT or --no-system, not both");
        p.inference_system = "";
    }
    lma_tokenizer *tok = NULL;
    if (tok_dir) {
        if (lma_tok_load(tok_dir, &tok)) return cli_fail(cmd, NULL);
        p.tokenizer = tok;
    }
    cJSON *s;
    lma_status vs = lma_data_validate(in, &p, &s);
    lma_tok_free(tok);
    if (vs) return cli_fail(cmd, NULL);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "findings");
    for (const cJSON *it = f ? f->child : NULL; it; it = it->next)
        printf("%s:%.0f: %s: %s [%s]\n", in, getn(it, "line"), cJSON_GetObjectItemCaseSensitive(it, "severity")->valuestring,
               cJSON_GetObjectItemCaseSensitive(it, "message")->valuestring, cJSON_GetObjectItemCaseSensitive(it, "code")->valuestring);
    double errs = getn(s, "errors"), warns = getn(s, "warnings");
    printf("%s: %.0f examples, %.0f with errors; %.0f errors, %.0f warnings\n", in, getn(s, "examples"),
           getn(s, "examples_with_errors"), errs, warns);
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "formats"), "formats");
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "preference_formats"), "preference formats");
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "counts"), "findings");
    if (p.report_path) printf("report: %s\n", p.report_path);
    cJSON_Delete(s);
    return errs > 0 ? 1 : 0;
}

static int do_stats(int argc, char **argv) {
    lma_stats_params p; lma_stats_default_params(&p);
    const char *in = NULL;
    cli_opt own[] = {
        REPORT_OPT(&p.report_path),
        CLI_FLAG_SET("no-dup", 0, &p.dup, 0, "skip the duplicate rates (their memory grows with the data)"),
        CLI_INT("top-verbs", 0, &p.top_verbs, 0, 100000, "N", "verbs listed"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "data stats",
        .usage = "lmadapt data stats INPUT [--report FILE] [--no-dup] [--top-verbs N]",
        .about = "Counts per format and role, character and word histograms per role, distinct-1/2\n"
                 "of prompts and responses (HyperLogLog estimates, ~1% error), exact and near-duplicate\n"
                 "rates (as 'data dedup'), script mix, the most frequent instruction verbs with their\n"
                 "objects, and the mix of response formats (json, yaml, markdown, code, plain).\n",
        .groups = groups, .pos_name = "input file", .pos_one = &in};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    cJSON *s;
    if (lma_data_stats(in, &p, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f examples (%.0f unreadable)\n", in, getn(s, "examples"), getn(s, "unreadable"));
    cli_data_warn_unreadable(cmd, s);
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "formats"), "formats");
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(s, "roles");
    for (const cJSON *r = roles ? roles->child : NULL; r; r = r->next)
        printf("  %-10s %8.0f messages, mean %.1f words, %.1f chars\n", r->string, getn(r, "messages"), getn(r, "mean_words"), getn(r, "mean_chars"));
    const cJSON *dv = cJSON_GetObjectItemCaseSensitive(s, "distinct");
    for (const cJSON *d = dv ? dv->child : NULL; d; d = d->next)
        printf("distinct-1/2 %-9s %.3f / %.3f\n", d->string, getn(d, "distinct_1"), getn(d, "distinct_2"));
    const cJSON *du = cJSON_GetObjectItemCaseSensitive(s, "duplicates");
    if (du) printf("duplicates: exact %.2f%%, near %.2f%%\n", 100 * getn(du, "exact_rate"), 100 * getn(du, "near_rate"));
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "scripts"), "scripts");
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "response_formats"), "response formats");
    const cJSON *vb = cJSON_GetObjectItemCaseSensitive(s, "verbs");
    if (vb && vb->child) {
        printf("top instruction verbs (objects):\n");
        for (const cJSON *v = vb->child; v; v = v->next) {
            printf("  %-12s %6.0f ", cJSON_GetObjectItemCaseSensitive(v, "verb")->valuestring, getn(v, "count"));
            const cJSON *ob = cJSON_GetObjectItemCaseSensitive(v, "objects");
            for (const cJSON *o = ob ? ob->child : NULL; o; o = o->next)
                printf(" %s(%.0f)", cJSON_GetObjectItemCaseSensitive(o, "object")->valuestring, getn(o, "count"));
            printf("\n");
        }
    }
    if (p.report_path) printf("report: %s\n", p.report_path);
    cJSON_Delete(s);
    return 0;
}

/* The output options of dedup, filter and decontam. */
static const char *const part_names[] = {"all", "prompt", "response", NULL};
static const int part_values[] = {LMA_EX_ALL, LMA_EX_PROMPT, LMA_EX_RESPONSE};
#define IO_NOPTS 5
static void io_table(cli_opt t[IO_NOPTS], const char **out, const char **removed, const char **report, int *part,
                     const char *field_help) {
    t[0] = (cli_opt)CLI_STR("out", 'o', out, "FILE", "kept examples (JSONL)", .alias = "output", .flags = CLI_REQUIRED | CLI_OUT);
    t[1] = (cli_opt)CLI_STR("removed", 0, removed, "FILE", "removed examples, each with its reason", .flags = CLI_OUT);
    t[2] = (cli_opt)REPORT_OPT(report);
    t[3] = (cli_opt)CLI_CHOOSE("field", 0, part, part_names, part_values, NULL, field_help);
    t[4] = (cli_opt)CLI_END;
}

static int do_dedup(int argc, char **argv) {
    lma_dedup_file_params p; memset(&p, 0, sizeof p);
    lma_dedup_default_params(&p.dedup);
    int part = LMA_EX_ALL;
    const char *in = NULL;
    cli_opt own[] = {
        CLI_INT("bands", 0, &p.dedup.bands, 1, 1024, "N", "LSH bands"),
        CLI_INT("rows", 0, &p.dedup.rows, 1, 1024, "N", "rows per band; bands x rows MinHash values"),
        CLI_INT("shingle", 0, &p.dedup.shingle, 1, 1000, "N", "words per shingle"),
        CLI_REALV("threshold", 0, &p.dedup.threshold, 0, 1, "X", "Jaccard threshold for near duplicates"),
        CLI_FLAG_SET("exact-only", 0, &p.dedup.near, 0, "skip near duplicates"),
        CLI_END};
    cli_opt io[IO_NOPTS];
    io_table(io, &p.out_path, &p.removed_path, &p.report_path, &part, "text compared");
    cli_group groups[] = {{NULL, io}, {"Duplicates:", own}, {0}};
    cli_spec spec = {
        .cmd = "data dedup",
        .usage = "lmadapt data dedup INPUT -o OUT [--removed FILE] [--report FILE] [options]",
        .about = "Removes exact duplicates (hash of the normalized text: lower case, no punctuation,\n"
                 "single spaces) and near duplicates (MinHash over word shingles, LSH bands x rows,\n"
                 "candidates verified by exact shingle-set Jaccard). Keeps the first of each cluster;\n"
                 "--removed gets each removed example with the line of its kept twin:\n"
                 "{line, twin_line, reason, jaccard, example}.\n",
        .groups = groups,
        .epilog = "Memory grows with the kept examples (hashes, LSH entries, shingle sets).\n",
        .pos_name = "input file", .pos_one = &in};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    p.part = (lma_ex_part)part;
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    cJSON *s;
    if (lma_data_dedup(in, &p, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f examples, kept %.0f, removed %.0f exact + %.0f near duplicates, %.0f unreadable\n", in,
           getn(s, "examples"), getn(s, "kept"), getn(s, "exact_duplicates"), getn(s, "near_duplicates"), getn(s, "unreadable"));
    cli_data_warn_unreadable(cmd, s);
    printf("state kept in memory: %.1f MB\n", getn(s, "state_bytes") / 1e6);
    printf("output: %s\n", p.out_path);
    cJSON_Delete(s);
    return 0;
}

/* The lowercased non-empty lines of path, NULL-terminated; NULL (message set) on error. */
static char **read_lines(const char *path, int *n_out) {
    FILE *f = NULL;
    if (lma_fopen_input(path, &f) != LMA_OK) return NULL;
    char **v = NULL; size_t n = 0, cap = 0;
    char *line = NULL; size_t lcap = 0; ssize_t len;
    int bad = 0;
    while (!bad && (len = getline(&line, &lcap, f)) >= 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        for (ssize_t k = 0; k < len; k++) if (line[k] >= 'A' && line[k] <= 'Z') line[k] += 32;
        bad = lma_grow(&v, &cap, n + 2, sizeof *v, 16, path) != LMA_OK || !(v[n++] = strdup(line));
    }
    free(line); fclose(f);
    if (!bad && !v) bad = !(v = calloc(1, sizeof *v));
    if (bad) {
        for (size_t i = 0; v && i < n; i++) free(v[i]);
        free(v);
        lma_error(LMA_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    v[n] = NULL;
    *n_out = (int)n;
    return v;
}

static int do_filter(int argc, char **argv) {
    lma_filter_file_params p; memset(&p, 0, sizeof p);
    lma_filter_default_params(&p.filter);
    lma_filter_params *f = &p.filter;
    const char *in = NULL, *bp_path = NULL;
    int part = (int)f->part;
    double dup_ngram = -1;
    cli_opt rules[] = {
        CLI_INT("min-words", 0, &f->min_words, 0, INT_MAX, "N", "fewer words: removed"),
        CLI_INT("max-words", 0, &f->max_words, 0, INT_MAX, "N", "more words: removed"),
        CLI_REALV("min-mean-word-len", 0, &f->min_mean_word_len, 0, 1e6, "X", "mean word length below: removed"),
        CLI_REALV("max-mean-word-len", 0, &f->max_mean_word_len, 0, 1e6, "X", "mean word length above: removed"),
        CLI_REALV("max-symbol-ratio", 0, &f->max_symbol_ratio, 0, 1e6, "X", "'#' and ellipses per word"),
        CLI_REALV("max-bullet-lines", 0, &f->max_bullet_lines, 0, 1, "X", "share of lines starting with a bullet"),
        CLI_REALV("max-ellipsis-lines", 0, &f->max_ellipsis_lines, 0, 1, "X", "share of lines ending in an ellipsis"),
        CLI_REALV("min-alpha-words", 0, &f->min_alpha_words, 0, 1, "X", "share of words with a letter"),
        CLI_INT("min-stop-words", 0, &f->min_stop_words, 0, INT_MAX, "N", "of: the be to of and that have with"),
        CLI_REALV("max-dup-line-frac", 0, &f->max_dup_line_frac, 0, 1, "X", "duplicated lines, by count"),
        CLI_REALV("max-dup-para-frac", 0, &f->max_dup_para_frac, 0, 1, "X", "duplicated paragraphs, by count"),
        CLI_REALV("max-dup-line-chars", 0, &f->max_dup_line_chars, 0, 1, "X", "duplicated lines, by characters"),
        CLI_REALV("max-dup-para-chars", 0, &f->max_dup_para_chars, 0, 1, "X", "duplicated paragraphs, by characters"),
        CLI_INT("ngram-min-words", 0, &f->ngram_min_words, 0, INT_MAX, "N", "the n-gram rules below apply only to texts this long"),
        CLI_REALV("max-top-2gram", 0, &f->max_top_ngram[0], 0, 1, "X", "character share of the top 2-gram"),
        CLI_REALV("max-top-3gram", 0, &f->max_top_ngram[1], 0, 1, "X", "character share of the top 3-gram"),
        CLI_REALV("max-top-4gram", 0, &f->max_top_ngram[2], 0, 1, "X", "character share of the top 4-gram"),
        CLI_REALV("max-dup-ngram", 0, &dup_ngram, 0, 1, "X", "one value for the duplicated 5..10-gram rules",
                  .def_text = "0.15 for 5-grams .. 0.10 for 10-grams"),
        CLI_STR("boilerplate", 0, &bp_path, "FILE", "phrases (one per line, any case) replacing the built-in\n"
                "C4-style list (lorem ipsum, cookie policy, ...)"),
        CLI_END};
    cli_opt io[IO_NOPTS];
    io_table(io, &p.out_path, &p.removed_path, &p.report_path, &part, "text the rules see");
    cli_group groups[] = {{NULL, io}, {"Rules (an example failing one is removed):", rules}, {0}};
    cli_spec spec = {
        .cmd = "data filter",
        .usage = "lmadapt data filter INPUT -o OUT [--removed FILE] [--report FILE] [options]",
        .about = "Removes examples failing a quality rule (Gopher quality and repetition rules, C4-style\n"
                 "boilerplate); the report gives each one's rule, value and threshold.\n",
        .groups = groups, .pos_name = "input file", .pos_one = &in};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    f->part = (lma_ex_part)part;
    if (cli_given(&a, "max-dup-ngram"))
        for (int j = 0; j < 6; j++) f->max_dup_ngram[j] = dup_ngram;
    if (cli_require(&a, f->min_words <= f->max_words, "min-words", "<=", "max-words")) return 2;
    if (cli_require(&a, f->min_mean_word_len <= f->max_mean_word_len, "min-mean-word-len", "<=", "max-mean-word-len"))
        return 2;
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    char **bp = NULL; int nbp = 0;
    if (bp_path) {
        bp = read_lines(bp_path, &nbp);
        if (!bp) return cli_fail(cmd, NULL);
        f->boilerplate = (const char *const *)bp;
    }
    rc = 0;
    cJSON *s = NULL;
    if (!rc && lma_data_filter(in, &p, &s)) rc = cli_fail(cmd, NULL);
    if (!rc) {
        printf("%s: %.0f examples, kept %.0f, removed %.0f, %.0f unreadable\n", in, getn(s, "examples"), getn(s, "kept"),
               getn(s, "removed"), getn(s, "unreadable"));
        cli_data_warn_unreadable(cmd, s);
        print_counts(cJSON_GetObjectItemCaseSensitive(s, "reasons"), "removed by rule");
        printf("output: %s\n", p.out_path);
    }
    cJSON_Delete(s);
    for (int j = 0; bp && j < nbp; j++) free(bp[j]);
    free(bp);
    return rc;
}

static int do_decontam(int argc, char **argv) {
    lma_decontam_file_params p; memset(&p, 0, sizeof p);
    p.ngram = 13; p.min_overlaps = 1;
    int part = LMA_EX_ALL;
    const char *in = NULL, *eval_v[256];
    cli_list evals = CLI_LIST_OF(eval_v);
    cli_opt own[] = {
        CLI_MULTI("eval", 0, &evals, "PATH", ".jsonl (all string values of a line), .csv (a row), other text\n"
                  "(a line); a directory adds its .csv/.jsonl/.json/.txt files", .flags = CLI_REQUIRED),
        CLI_INT("ngram", 0, &p.ngram, 1, 1000, "N", "words per n-gram; shorter evaluation documents cannot match"),
        CLI_INT("min-overlaps", 0, &p.min_overlaps, 1, INT_MAX, "N", "shared n-grams needed to remove an example"),
        CLI_END};
    cli_opt io[IO_NOPTS];
    io_table(io, &p.out_path, &p.removed_path, &p.report_path, &part, "text checked");
    cli_group groups[] = {{NULL, io}, {"Evaluation sets:", own}, {0}};
    cli_spec spec = {
        .cmd = "data decontam",
        .usage = "lmadapt data decontam INPUT --eval PATH [--eval PATH ...] -o OUT [options]",
        .about = "Removes training examples that share an n-gram with an evaluation set, normalized\n"
                 "as lm-evaluation-harness does (lower case, ASCII punctuation deleted, whitespace split).\n",
        .groups = groups, .pos_name = "input file", .pos_one = &in};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    p.part = (lma_ex_part)part;
    p.evals = eval_v;
    p.n_evals = evals.n;
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    rc = 0;
    cJSON *s = NULL;
    if (!rc && lma_data_decontam(in, &p, &s)) rc = cli_fail(cmd, NULL);
    if (!rc) {
        printf("%s: %.0f examples, kept %.0f, removed %.0f (share a %.0f-gram with %.0f evaluation documents), %.0f unreadable\n",
               in, getn(s, "examples"), getn(s, "kept"), getn(s, "removed"), getn(s, "ngram"), getn(s, "eval_documents"),
               getn(s, "unreadable"));
        cli_data_warn_unreadable(cmd, s);
        printf("output: %s\n", p.out_path);
    }
    cJSON_Delete(s);
    return rc;
}

/* "A,B,C": three finite non-negative shares with a positive sum. */
static int parse_ratios(const char *s, double r[3]) {
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        char *end;
        r[i] = strtod(p, &end);
        if (end == p || !(r[i] >= 0 && r[i] <= 1e9)) return 0;
        p = end;
        if (i < 2 && *p++ != ',') return 0;
    }
    return !*p && r[0] + r[1] + r[2] > 0;
}

static int do_split(int argc, char **argv) {
    lma_split_params p; lma_split_default_params(&p);
    const char *in = NULL;
    char ratios_def[96];
    snprintf(ratios_def, sizeof ratios_def, "%g,%g,%g", p.ratio[0], p.ratio[1], p.ratio[2]);
    const char *ratios = ratios_def;
    cli_opt own[] = {
        CLI_STR("train", 0, &p.out_path[0], "FILE", "training examples", .flags = CLI_OUT),
        CLI_STR("valid", 0, &p.out_path[1], "FILE", "validation examples", .flags = CLI_OUT),
        CLI_STR("test", 0, &p.out_path[2], "FILE", "test examples", .flags = CLI_OUT),
        CLI_STR("ratios", 0, &ratios, "A,B,C", "train, validation, test shares"),
        CLI_U64("seed", 0, &p.seed, "N", "the same seed and input give the same split"),
        CLI_STR("stratify", 0, &p.stratify, "FIELD", "split each value of this top-level field separately"),
        REPORT_OPT(&p.report_path),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "data split",
        .usage = "lmadapt data split INPUT --train FILE [--valid FILE] [--test FILE] [options]",
        .about = "Deterministic split: the same seed and input give the same split. Counts per\n"
                 "stratum are exact (round(n x ratio) for validation and test).\n",
        .groups = groups, .pos_name = "input file", .pos_one = &in};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (!parse_ratios(ratios, p.ratio))
        return cli_usage_error(cmd, "--ratios %s: must be three non-negative numbers, e.g. 0.8,0.1,0.1", ratios);
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    if (!p.out_path[0] && !p.out_path[1] && !p.out_path[2]) return cli_usage_error(cmd, "give at least one of --train, --valid, --test");
    cJSON *s;
    if (lma_data_split(in, &p, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f examples -> train %.0f, validation %.0f, test %.0f (seed %.0f), %.0f unreadable\n", in,
           getn(s, "examples"), getn(s, "train"), getn(s, "validation"), getn(s, "test"), getn(s, "seed"), getn(s, "unreadable"));
    cli_data_warn_unreadable(cmd, s);
    cJSON_Delete(s);
    return 0;
}

static const char *const accept_names[] = {"messages", "alpaca", NULL};
static const int accept_values[] = {LMA_ACCEPT_MESSAGES, LMA_ACCEPT_ALPACA};

static int do_accept(int argc, char **argv) {
    const char *review = NULL, *outp = NULL;
    int fmt_i = LMA_ACCEPT_MESSAGES;
    cli_opt own[] = {
        CLI_STR("review", 0, &review, "FILE", "the reviewed file (also the bare argument)", .flags = CLI_IN),
        CLI_STR("out", 'o', &outp, "FILE", "training data", .flags = CLI_REQUIRED | CLI_OUT),
        CLI_CHOOSE("format", 0, &fmt_i, accept_names, accept_values, NULL,
                   "messages: {\"messages\": [...prompt turns, assistant]}; alpaca:\n"
                   "{\"instruction\", \"input\": \"\", \"output\"} (single user-turn prompts only)"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "data accept",
        .usage = "lmadapt data accept --review REVIEW.jsonl --out train.jsonl [--format messages|alpaca]",
        .about = "Turns a reviewed file into training data: accepted lines (the draft, or \"response\" when the\n"
                 "reviewer filled it) and edited lines (\"response\" required: the reviewer's text wins) are\n"
                 "written; pending and rejected lines are not. Prints the count per status. An unknown status\n"
                 "or a missing field stops with file:line.\n",
        .groups = groups, .pos_name = "review file", .pos_one = &review};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    lma_accept_format fmt = (lma_accept_format)fmt_i;
    if (!review) return cli_usage_error(cmd, "--review FILE is needed");
    cJSON *s;
    if (lma_data_accept(review, outp, fmt, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f lines: %.0f accepted, %.0f edited, %.0f rejected, %.0f pending\n", review, getn(s, "lines"),
           getn(s, "accepted"), getn(s, "edited"), getn(s, "rejected"), getn(s, "pending"));
    printf("output: %s (%.0f examples)\n", outp, getn(s, "written"));
    cJSON_Delete(s);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct { const char *name; int (*run)(int, char **); } subs[] = {
        {"validate", do_validate}, {"stats", do_stats}, {"dedup", do_dedup}, {"filter", do_filter},
        {"decontam", do_decontam}, {"split", do_split}, {"generate", cli_data_generate}, {"accept", do_accept},
        {"judge", cli_data_judge}, {"debug", cli_data_debug}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lmadapt data: unknown command '%s'\n%s", argv[1], usage_main);
    return 2;
}
