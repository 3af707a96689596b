/* lmadapt data <validate|stats|dedup|filter|decontam|split|generate|accept|judge|debug>:
 * dataset curation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "backend/backend.h"
#include "core/io.h"
#include "core/threads.h"
#include "data/curate/curate.h"
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
    "  judge      a model scores each example 1-5 against a rubric; keep >= threshold\n"
    "  debug      flag examples that would teach unwanted behaviour\n\n"
    "Every command takes --report FILE (JSON report) and prints a summary.\n"
    "Run 'lmadapt data <command> --help' for its options.\n";

static const char *usage_validate =
    "Usage: lmadapt data validate INPUT [--report FILE] [options]\n\n"
    "Checks (OpenAI fine-tuning checks and more), each reported with its line:\n"
    "  invalid_json, data_type, invalid_utf8, missing_messages_list, field_type, missing_field,\n"
    "  message_missing_key, message_unrecognized_key, unrecognized_role, missing_content,\n"
    "  empty_turn, example_missing_assistant_message, missing_user_message, role_order,\n"
    "  last_turn_not_assistant, invalid_weight, chosen_equals_rejected,\n"
    "  stray_special_token, template_in_content, system_prompt_drift, answer_format_drift,\n"
    "  too_long (with --tokenizer).\n\n"
    "Options:\n"
    "  --report FILE          write all findings and counts as JSON\n"
    "  --system TEXT          the system prompt the inference side sends (flags others)\n"
    "  --no-system            the inference side sends no system prompt (flags any)\n"
    "  --task-field NAME      compare answer formats within each value of this field\n"
    "  --single-task          compare answer formats across the whole file (one task)\n"
    "  --format-minority X    an answer format below this share of its task is drift (0.1)\n"
    "  --show N               findings printed in the summary (20)\n"
    "  --tokenizer DIR        flag examples longer than --max-tokens (too_long), counted as\n"
    "                         the chat template renders them (tokenizer.json + tokenizer_config.json)\n"
    "  --max-tokens N         (16385, the OpenAI notebook's limit; use your training length)\n"
    "  --chat-template NAME   llama2|llama3|chatml|zephyr|mistral instead of the tokenizer's own\n"
    "Exit status: 0 no errors (warnings allowed), 1 errors found or failure, 2 bad usage.\n";

static const char *usage_stats =
    "Usage: lmadapt data stats INPUT [--report FILE] [--no-dup] [--top-verbs N]\n\n"
    "Counts per format and role, character and word histograms per role, distinct-1/2\n"
    "of prompts and responses (HyperLogLog estimates, ~1% error), exact and near-duplicate\n"
    "rates (as 'data dedup'), script mix, the most frequent instruction verbs with their\n"
    "objects, and the mix of response formats (json, yaml, markdown, code, plain).\n"
    "  --no-dup         skip the duplicate rates (their memory grows with the data)\n"
    "  --top-verbs N    verbs listed (20)\n";

static const char *usage_dedup =
    "Usage: lmadapt data dedup INPUT -o OUT [--removed FILE] [--report FILE] [options]\n\n"
    "Removes exact duplicates (hash of the normalized text: lower case, no punctuation,\n"
    "single spaces) and near duplicates (MinHash over word shingles, LSH bands x rows,\n"
    "candidates verified by exact shingle-set Jaccard). Keeps the first of each cluster;\n"
    "--removed gets each removed example with the line of its kept twin.\n"
    "  -o, --output FILE   kept examples (JSONL)\n"
    "  --removed FILE      removed examples: {line, twin_line, reason, jaccard, example}\n"
    "  --bands N           LSH bands (14)\n"
    "  --rows N            rows per band (8); bands x rows MinHash values\n"
    "  --shingle N         words per shingle (5)\n"
    "  --threshold X       Jaccard threshold for near duplicates (0.8)\n"
    "  --exact-only        skip near duplicates\n"
    "  --field all|prompt|response   text compared (all)\n"
    "Memory grows with the kept examples (hashes, LSH entries, shingle sets).\n";

static const char *usage_filter =
    "Usage: lmadapt data filter INPUT -o OUT [--removed FILE] [--report FILE] [options]\n\n"
    "Removes examples failing a quality rule; the report gives each one's rule, value\n"
    "and threshold. Rules and thresholds (defaults in parentheses):\n"
    "  --min-words N (3)  --max-words N (100000)\n"
    "  --min-mean-word-len X (2)  --max-mean-word-len X (10)\n"
    "  --max-symbol-ratio X (0.1)       '#' and ellipses per word\n"
    "  --max-bullet-lines X (0.9)  --max-ellipsis-lines X (0.3)\n"
    "  --min-alpha-words X (0.8)        share of words with a letter\n"
    "  --min-stop-words N (2)           of: the be to of and that have with\n"
    "  --max-dup-line-frac X (0.3)  --max-dup-para-frac X (0.3)\n"
    "  --max-dup-line-chars X (0.2) --max-dup-para-chars X (0.2)\n"
    "  --ngram-min-words N (50)         n-gram rules below apply only to texts this long\n"
    "  --max-top-2gram X (0.2) --max-top-3gram X (0.18) --max-top-4gram X (0.16)\n"
    "  --max-dup-ngram X                one value for the 5..10-gram rules (0.15..0.10)\n"
    "  --boilerplate FILE               phrases (one per line, any case) replacing the\n"
    "                                   built-in C4-style list (lorem ipsum, cookie policy, ...)\n"
    "  --field all|prompt|response      text the rules see (all)\n"
    "  -o, --output FILE  --removed FILE  --report FILE\n";

static const char *usage_decontam =
    "Usage: lmadapt data decontam INPUT --eval PATH [--eval PATH ...] -o OUT [options]\n\n"
    "Removes training examples that share an n-gram with an evaluation set, normalized\n"
    "as lm-evaluation-harness does (lower case, ASCII punctuation deleted, whitespace split).\n"
    "  --eval PATH        .jsonl (all string values of a line), .csv (a row), other text\n"
    "                     (a line); a directory adds its .csv/.jsonl/.json/.txt files\n"
    "  --ngram N          words per n-gram (13); shorter evaluation documents cannot match\n"
    "  --min-overlaps N   shared n-grams needed to remove an example (1)\n"
    "  --field all|prompt|response   text checked (all)\n"
    "  -o, --output FILE  --removed FILE  --report FILE\n";

static const char *usage_split =
    "Usage: lmadapt data split INPUT --train FILE [--valid FILE] [--test FILE] [options]\n\n"
    "Deterministic split: the same seed and input give the same split. Counts per\n"
    "stratum are exact (round(n x ratio) for validation and test).\n"
    "  --ratios A,B,C     train, validation, test shares (0.8,0.1,0.1)\n"
    "  --seed N           (42)\n"
    "  --stratify FIELD   split each value of this top-level field separately\n"
    "  --report FILE\n";

static int need(int i, int argc, char **argv, const char *cmd) {
    if (i + 1 >= argc) { cli_usage_error(cmd, "option %s needs a value", argv[i]); return 0; }
    return 1;
}

static int parse_part(const char *s, lma_ex_part *out) {
    if (!strcmp(s, "all")) *out = LMA_EX_ALL;
    else if (!strcmp(s, "prompt")) *out = LMA_EX_PROMPT;
    else if (!strcmp(s, "response")) *out = LMA_EX_RESPONSE;
    else return 0;
    return 1;
}

static int num(const char *s, double *out) {
    char *e; *out = strtod(s, &e);
    return e != s && !*e;
}

static void print_counts(const cJSON *o, const char *label) {
    if (!o || !o->child) return;
    printf("%s:", label);
    for (const cJSON *c = o->child; c; c = c->next) printf(" %s %.0f", c->string, c->valuedouble);
    printf("\n");
}

static double getn(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : 0;
}

static int do_validate(int argc, char **argv) {
    const char *cmd = "data validate";
    lma_validate_params p; lma_validate_default_params(&p);
    const char *in = NULL, *tok_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--report")) { if (!need(i, argc, argv, cmd)) return 2; p.report_path = argv[++i]; }
        else if (!strcmp(a, "--system")) { if (!need(i, argc, argv, cmd)) return 2; p.inference_system = argv[++i]; }
        else if (!strcmp(a, "--no-system")) p.inference_system = "";
        else if (!strcmp(a, "--single-task")) p.format_check = 1;
        else if (!strcmp(a, "--task-field")) { if (!need(i, argc, argv, cmd)) return 2; p.task_field = argv[++i]; }
        else if (!strcmp(a, "--format-minority")) { if (!need(i, argc, argv, cmd) || !num(argv[++i], &p.format_minority)) return cli_usage_error(cmd, "--format-minority needs a number"); }
        else if (!strcmp(a, "--show")) { if (!need(i, argc, argv, cmd)) return 2; p.max_summary_findings = atoi(argv[++i]); }
        else if (!strcmp(a, "--tokenizer")) { if (!need(i, argc, argv, cmd)) return 2; tok_dir = argv[++i]; }
        else if (!strcmp(a, "--max-tokens")) { if (!need(i, argc, argv, cmd)) return 2; p.max_tokens = atoi(argv[++i]); }
        else if (!strcmp(a, "--chat-template")) { if (!need(i, argc, argv, cmd)) return 2; p.chat_template = argv[++i]; }
        else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option %s", a);
        else if (!in) in = a;
        else return cli_usage_error(cmd, "one input file only (got %s and %s)", in, a);
    }
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    if (p.max_tokens < 1) return cli_usage_error(cmd, "--max-tokens must be positive");
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
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "counts"), "findings");
    if (p.report_path) printf("report: %s\n", p.report_path);
    cJSON_Delete(s);
    return errs > 0 ? 1 : 0;
}

static int do_stats(int argc, char **argv) {
    const char *cmd = "data stats";
    lma_stats_params p; lma_stats_default_params(&p);
    const char *in = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--report")) { if (!need(i, argc, argv, cmd)) return 2; p.report_path = argv[++i]; }
        else if (!strcmp(a, "--no-dup")) p.dup = 0;
        else if (!strcmp(a, "--top-verbs")) { if (!need(i, argc, argv, cmd)) return 2; p.top_verbs = atoi(argv[++i]); }
        else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option %s", a);
        else if (!in) in = a;
        else return cli_usage_error(cmd, "one input file only");
    }
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    cJSON *s;
    if (lma_data_stats(in, &p, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f examples (%.0f unreadable)\n", in, getn(s, "examples"), getn(s, "unreadable"));
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

/* Options shared by dedup, filter and decontam. Returns 1 consumed, 0 not ours, -1 error. */
static int io_opt(int *i, int argc, char **argv, const char *cmd, const char **out, const char **removed,
                  const char **report, lma_ex_part *part) {
    const char *a = argv[*i];
    const char **dst = NULL;
    if (!strcmp(a, "-o") || !strcmp(a, "--output")) dst = out;
    else if (!strcmp(a, "--removed")) dst = removed;
    else if (!strcmp(a, "--report")) dst = report;
    else if (!strcmp(a, "--field")) {
        if (!need(*i, argc, argv, cmd)) return -1;
        if (!parse_part(argv[++*i], part)) { cli_usage_error(cmd, "--field must be all, prompt or response"); return -1; }
        return 1;
    } else return 0;
    if (!need(*i, argc, argv, cmd)) return -1;
    *dst = argv[++*i];
    return 1;
}

static int do_dedup(int argc, char **argv) {
    const char *cmd = "data dedup";
    lma_dedup_file_params p; memset(&p, 0, sizeof p);
    lma_dedup_default_params(&p.dedup);
    p.part = LMA_EX_ALL;
    const char *in = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int k = io_opt(&i, argc, argv, cmd, &p.out_path, &p.removed_path, &p.report_path, &p.part);
        if (k < 0) return 2;
        if (k) continue;
        double x;
        if (!strcmp(a, "--exact-only")) { p.dedup.near = 0; continue; }
        if (!strcmp(a, "--bands") || !strcmp(a, "--rows") || !strcmp(a, "--shingle") || !strcmp(a, "--threshold")) {
            if (!need(i, argc, argv, cmd)) return 2;
            if (!num(argv[++i], &x)) return cli_usage_error(cmd, "%s needs a number", a);
            if (!strcmp(a, "--bands")) p.dedup.bands = (int)x;
            else if (!strcmp(a, "--rows")) p.dedup.rows = (int)x;
            else if (!strcmp(a, "--shingle")) p.dedup.shingle = (int)x;
            else p.dedup.threshold = x;
            continue;
        }
        if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option %s", a);
        if (in) return cli_usage_error(cmd, "one input file only");
        in = a;
    }
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    if (!p.out_path) return cli_usage_error(cmd, "-o OUT is needed");
    cJSON *s;
    if (lma_data_dedup(in, &p, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f examples, kept %.0f, removed %.0f exact + %.0f near duplicates, %.0f unreadable\n", in,
           getn(s, "examples"), getn(s, "kept"), getn(s, "exact_duplicates"), getn(s, "near_duplicates"), getn(s, "unreadable"));
    printf("state kept in memory: %.1f MB\n", getn(s, "state_bytes") / 1e6);
    printf("output: %s\n", p.out_path);
    cJSON_Delete(s);
    return 0;
}

static char **read_lines(const char *path, int *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char **v = NULL; int n = 0, cap = 0;
    char *line = NULL; size_t lcap = 0; ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        for (ssize_t k = 0; k < len; k++) if (line[k] >= 'A' && line[k] <= 'Z') line[k] += 32;
        if (n + 2 > cap) { cap = cap ? cap * 2 : 16; char **q = realloc(v, (size_t)cap * sizeof *q); if (!q) break; v = q; }
        v[n++] = strdup(line);
    }
    free(line); fclose(f);
    if (v) v[n] = NULL;
    else { v = calloc(1, sizeof *v); }
    *n_out = n;
    return v;
}

static int do_filter(int argc, char **argv) {
    const char *cmd = "data filter";
    lma_filter_file_params p; memset(&p, 0, sizeof p);
    lma_filter_default_params(&p.filter);
    const char *in = NULL;
    char **bp = NULL; int nbp = 0;
    struct { const char *name; double *d; int *i; } opts[] = {
        {"--min-words", NULL, &p.filter.min_words}, {"--max-words", NULL, &p.filter.max_words},
        {"--min-mean-word-len", &p.filter.min_mean_word_len, NULL}, {"--max-mean-word-len", &p.filter.max_mean_word_len, NULL},
        {"--max-symbol-ratio", &p.filter.max_symbol_ratio, NULL}, {"--max-bullet-lines", &p.filter.max_bullet_lines, NULL},
        {"--max-ellipsis-lines", &p.filter.max_ellipsis_lines, NULL}, {"--min-alpha-words", &p.filter.min_alpha_words, NULL},
        {"--min-stop-words", NULL, &p.filter.min_stop_words}, {"--ngram-min-words", NULL, &p.filter.ngram_min_words}, {"--max-dup-line-frac", &p.filter.max_dup_line_frac, NULL},
        {"--max-dup-para-frac", &p.filter.max_dup_para_frac, NULL}, {"--max-dup-line-chars", &p.filter.max_dup_line_chars, NULL},
        {"--max-dup-para-chars", &p.filter.max_dup_para_chars, NULL}, {"--max-top-2gram", &p.filter.max_top_ngram[0], NULL},
        {"--max-top-3gram", &p.filter.max_top_ngram[1], NULL}, {"--max-top-4gram", &p.filter.max_top_ngram[2], NULL},
    };
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        int k = io_opt(&i, argc, argv, cmd, &p.out_path, &p.removed_path, &p.report_path, &p.filter.part);
        if (k < 0) { rc = 2; break; }
        if (k) continue;
        int done = 0;
        double x;
        for (size_t o = 0; o < sizeof opts / sizeof opts[0] && !done; o++) {
            if (strcmp(a, opts[o].name)) continue;
            done = 1;
            if (!need(i, argc, argv, cmd)) { rc = 2; break; }
            if (!num(argv[++i], &x)) { rc = cli_usage_error(cmd, "%s needs a number", a); break; }
            if (opts[o].d) *opts[o].d = x; else *opts[o].i = (int)x;
        }
        if (done) continue;
        if (!strcmp(a, "--max-dup-ngram")) {
            if (!need(i, argc, argv, cmd)) { rc = 2; break; }
            if (!num(argv[++i], &x)) { rc = cli_usage_error(cmd, "%s needs a number", a); break; }
            for (int j = 0; j < 6; j++) p.filter.max_dup_ngram[j] = x;
        } else if (!strcmp(a, "--boilerplate")) {
            if (!need(i, argc, argv, cmd)) { rc = 2; break; }
            if (bp) { rc = cli_usage_error(cmd, "--boilerplate given twice"); break; }
            bp = read_lines(argv[++i], &nbp);
            if (!bp) { fprintf(stderr, "lmadapt %s: %s: cannot read\n", cmd, argv[i]); rc = 1; break; }
            p.filter.boilerplate = (const char *const *)bp;
        } else if (a[0] == '-' && a[1]) rc = cli_usage_error(cmd, "unknown option %s", a);
        else if (in) rc = cli_usage_error(cmd, "one input file only");
        else in = a;
    }
    if (!rc && !in) rc = cli_usage_error(cmd, "an input file is needed");
    if (!rc && !p.out_path) rc = cli_usage_error(cmd, "-o OUT is needed");
    cJSON *s = NULL;
    if (!rc && lma_data_filter(in, &p, &s)) rc = cli_fail(cmd, NULL);
    if (!rc) {
        printf("%s: %.0f examples, kept %.0f, removed %.0f, %.0f unreadable\n", in, getn(s, "examples"), getn(s, "kept"),
               getn(s, "removed"), getn(s, "unreadable"));
        print_counts(cJSON_GetObjectItemCaseSensitive(s, "reasons"), "removed by rule");
        printf("output: %s\n", p.out_path);
    }
    cJSON_Delete(s);
    for (int j = 0; bp && j < nbp; j++) free(bp[j]);
    free(bp);
    return rc;
}

static int do_decontam(int argc, char **argv) {
    const char *cmd = "data decontam";
    lma_decontam_file_params p; memset(&p, 0, sizeof p);
    p.ngram = 13; p.min_overlaps = 1; p.part = LMA_EX_ALL;
    const char **evals = calloc((size_t)argc, sizeof *evals);
    if (!evals) return cli_fail(cmd, "out of memory");
    const char *in = NULL;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        int k = io_opt(&i, argc, argv, cmd, &p.out_path, &p.removed_path, &p.report_path, &p.part);
        if (k < 0) { rc = 2; break; }
        if (k) continue;
        double x;
        if (!strcmp(a, "--eval")) {
            if (!need(i, argc, argv, cmd)) { rc = 2; break; }
            evals[p.n_evals++] = argv[++i];
        } else if (!strcmp(a, "--ngram") || !strcmp(a, "--min-overlaps")) {
            if (!need(i, argc, argv, cmd)) { rc = 2; break; }
            if (!num(argv[++i], &x)) { rc = cli_usage_error(cmd, "%s needs a number", a); break; }
            if (!strcmp(a, "--ngram")) p.ngram = (int)x; else p.min_overlaps = (int)x;
        } else if (a[0] == '-' && a[1]) rc = cli_usage_error(cmd, "unknown option %s", a);
        else if (in) rc = cli_usage_error(cmd, "one input file only");
        else in = a;
    }
    p.evals = evals;
    if (!rc && !in) rc = cli_usage_error(cmd, "an input file is needed");
    if (!rc && !p.out_path) rc = cli_usage_error(cmd, "-o OUT is needed");
    if (!rc && !p.n_evals) rc = cli_usage_error(cmd, "--eval PATH is needed");
    cJSON *s = NULL;
    if (!rc && lma_data_decontam(in, &p, &s)) rc = cli_fail(cmd, NULL);
    if (!rc) {
        printf("%s: %.0f examples, kept %.0f, removed %.0f (share a %.0f-gram with %.0f evaluation documents), %.0f unreadable\n",
               in, getn(s, "examples"), getn(s, "kept"), getn(s, "removed"), getn(s, "ngram"), getn(s, "eval_documents"),
               getn(s, "unreadable"));
        printf("output: %s\n", p.out_path);
    }
    cJSON_Delete(s);
    free(evals);
    return rc;
}

static int do_split(int argc, char **argv) {
    const char *cmd = "data split";
    lma_split_params p; lma_split_default_params(&p);
    const char *in = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--train") || !strcmp(a, "--valid") || !strcmp(a, "--test") || !strcmp(a, "--report") ||
            !strcmp(a, "--stratify") || !strcmp(a, "--seed") || !strcmp(a, "--ratios")) {
            if (!need(i, argc, argv, cmd)) return 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--train")) p.out_path[0] = v;
            else if (!strcmp(a, "--valid")) p.out_path[1] = v;
            else if (!strcmp(a, "--test")) p.out_path[2] = v;
            else if (!strcmp(a, "--report")) p.report_path = v;
            else if (!strcmp(a, "--stratify")) p.stratify = v;
            else if (!strcmp(a, "--seed")) {
                char *e; p.seed = strtoull(v, &e, 10);
                if (e == v || *e) return cli_usage_error(cmd, "--seed needs an integer");
            } else if (sscanf(v, "%lf,%lf,%lf", &p.ratio[0], &p.ratio[1], &p.ratio[2]) != 3)
                return cli_usage_error(cmd, "--ratios needs three numbers, e.g. 0.8,0.1,0.1");
        } else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option %s", a);
        else if (in) return cli_usage_error(cmd, "one input file only");
        else in = a;
    }
    if (!in) return cli_usage_error(cmd, "an input file is needed");
    if (!p.out_path[0] && !p.out_path[1] && !p.out_path[2]) return cli_usage_error(cmd, "give at least one of --train, --valid, --test");
    cJSON *s;
    if (lma_data_split(in, &p, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f examples -> train %.0f, validation %.0f, test %.0f (seed %.0f), %.0f unreadable\n", in,
           getn(s, "examples"), getn(s, "train"), getn(s, "validation"), getn(s, "test"), getn(s, "seed"), getn(s, "unreadable"));
    cJSON_Delete(s);
    return 0;
}

/* ---- model-backed commands: generate, accept, judge, debug ------------------ */

#define SAMPLING_HELP \
    "Sampling (as 'lmadapt generate'):\n" \
    "  --max-tokens N  --temperature X (0 = greedy)  --top-k K  --top-p P  --min-p P\n" \
    "  --repetition-penalty R  --seed N  --stop S (repeatable)  --threads N\n" \
    "  --chat-template NAME   llama2|llama3|chatml|zephyr|mistral instead of the tokenizer's own\n" \
    "  --adapter DIR          apply a PEFT LoRA adapter dir to the model\n" \
    "  --device D             cpu | cuda | cuda-fp32 (default: cuda if a GPU)\n"

static const char *usage_generate =
    "Usage: lmadapt data generate --model M --prompts FILE --out REVIEW.jsonl [options]\n\n"
    "The model drafts a response for each prompt; people review the drafts. Prompt records:\n"
    "{\"prompt\"}, {\"instruction\",\"input\"?}, {\"question\"}, {\"messages\"} (ending with a user turn;\n"
    "trailing assistant turns are dropped) or any training format; an \"id\" field names the prompt\n"
    "(else a hash of its text). Each prompt is rendered with the model's chat template and a\n"
    "generation prompt. The review file gets one line per prompt:\n"
    "  {\"id\", \"prompt\" | \"messages\", \"draft\", \"status\": \"pending\", \"reviewer_note\": \"\"}\n"
    "Reviewers set status to accepted, edited (with their text in \"response\") or rejected; then\n"
    "'lmadapt data accept' makes the training file. Rerunning skips ids already in the review file\n"
    "and keeps its lines as they are (resume after a crash, or add prompts later).\n\n"
    "Options:\n"
    "  --model M              HF model folder, .gguf file or short name (with a tokenizer)\n"
    "  --prompts FILE         prompt file (JSONL or JSON array)\n"
    "  --out FILE             review file (created or resumed; written atomically)\n"
    "  --system TEXT          system turn added to prompts that have none\n"
    "  --checkpoint-s X       commit the review file at most every X seconds (60)\n"
    "  --limit N              draft at most N new prompts this run\n"
    SAMPLING_HELP
    "  (defaults: --max-tokens 256, greedy, seed 0; every prompt uses the same seed, so a draft is\n"
    "  reproduced by 'lmadapt generate' with the rendered prompt and that seed)\n";

static const char *usage_accept =
    "Usage: lmadapt data accept --review REVIEW.jsonl --out train.jsonl [--format messages|alpaca]\n\n"
    "Turns a reviewed file into training data: accepted lines (the draft, or \"response\" when the\n"
    "reviewer filled it) and edited lines (\"response\" required: the reviewer's text wins) are\n"
    "written; pending and rejected lines are not. Prints the count per status. An unknown status\n"
    "or a missing field stops with file:line.\n"
    "  --format messages      {\"messages\": [...prompt turns, assistant]} (default)\n"
    "  --format alpaca        {\"instruction\", \"input\": \"\", \"output\"} (single user-turn prompts only)\n";

static const char *usage_judge =
    "Usage: lmadapt data judge --model M --data FILE --out kept.jsonl [options]\n\n"
    "A model scores each example 1-5 against a rubric prompt (AlpaGasus style) and the examples\n"
    "scoring at least --threshold are kept. The score is the first integer after a cue such as\n"
    "\"Score:\" in the model's text, else the first standalone integer 1-5; texts without one are\n"
    "'unparsed' and not kept (--keep-unparsed keeps them). Scores are cached by a hash of (model\n"
    "identity, rubric, example text, sampling settings): a rerun makes no model call.\n\n"
    "Options:\n"
    "  --rubric FILE          rubric prompt with {instruction} and {response} placeholders\n"
    "                         (default: built in; --print-rubric shows it)\n"
    "  --threshold X          keep score >= X (4)\n"
    "  --keep-unparsed        keep examples whose score could not be read\n"
    "  --scores FILE          one line per example: {line, index, score, cached, judgement}\n"
    "  --cache PATH           JSONL cache file, or a directory (PATH/judge_cache.jsonl)\n"
    "  --model-id S           model identity for the cache (default: hash of config.json,\n"
    "                         tokenizer files and the weight files' names, sizes and mtimes)\n"
    "  --removed FILE  --report FILE\n"
    SAMPLING_HELP
    "  (defaults: --max-tokens 48, greedy)\n";

static const char *usage_debug =
    "Usage: lmadapt data debug --data FILE [--rules FILE]... [--judge MODEL] [options]\n\n"
    "Flags examples that would teach unwanted behaviour, with file:line, rule and excerpt:\n"
    "  action   the assistant promises or claims actions it cannot take (\"I'll schedule ...\")\n"
    "  praise   it praises a trait of the user that no earlier user turn mentions\n"
    "  refusal  a refusal phrase in a reply that also answers (--refusal-words outside it)\n"
    "  format   with --task-field NAME or --single-task: a reply format (json, yaml, markdown,\n"
    "           code, plain) below --format-minority (10%) of its task's replies\n"
    "Rules are editable pattern files, one rule a line: KIND NAME REGEX (PCRE2, case-insensitive;\n"
    "KIND action|praise|refusal|flag; praise uses the group named trait). --print-rules shows\n"
    "the built-in rules.\n\n"
    "Options:\n"
    "  --rules FILE           use these rules instead of the built-in ones (repeatable)\n"
    "  --extra-rules FILE     add rules to the built-in ones (repeatable)\n"
    "  --judge MODEL          ask this model (HF dir) yes/no for each flagged example\n"
    "  --refusal-words N      words outside the refusal sentence that make it an answer (25)\n"
    "  --task-field NAME  --single-task  --format-minority X\n"
    "  -o, --output FILE      examples without flags   --removed FILE   flagged examples\n"
    "  --report FILE  --show N (flags printed, 50)\n"
    "Exit status: 0 nothing flagged, 1 flags found or failure, 2 bad usage.\n";

/* Sampling options shared by generate and judge. 1 consumed, 0 not ours, -1 error. */
static const char *g_adapter; /* --adapter DIR of the model commands (generate, judge, debug --judge) */
static const char *g_device;  /* --device cpu|cuda of the same commands */

static int sampling_opt(int *i, int argc, char **argv, const char *cmd, lma_gen_params *g, const char **stops,
                        int *n_stops, const char **tmpl, int *threads) {
    static const char *names[] = {"--max-tokens", "--temperature", "--top-k", "--top-p", "--min-p",
                                  "--repetition-penalty", "--seed", "--stop", "--chat-template", "--threads",
                                  "--adapter", "--device"};
    int which = -1;
    for (int k = 0; k < 12; k++) if (!strcmp(argv[*i], names[k])) which = k;
    if (which < 0) return 0;
    if (!need(*i, argc, argv, cmd)) return -1;
    const char *v = argv[++*i];
    if (which == 7) {
        if (*n_stops >= 16) { cli_usage_error(cmd, "at most 16 --stop strings"); return -1; }
        stops[(*n_stops)++] = v;
        return 1;
    }
    if (which == 8) { *tmpl = v; return 1; }
    if (which == 10) { g_adapter = v; return 1; }
    if (which == 11) { g_device = v; return 1; }
    double x;
    if (!num(v, &x)) { cli_usage_error(cmd, "%s needs a number", names[which]); return -1; }
    switch (which) {
    case 0: g->max_tokens = (int)x; break;
    case 1: g->sample.temperature = (float)x; break;
    case 2: g->sample.top_k = (int)x; break;
    case 3: g->sample.top_p = (float)x; break;
    case 4: g->sample.min_p = (float)x; break;
    case 5: g->sample.repetition_penalty = (float)x; break;
    case 6: g->seed = (uint64_t)x; break;
    default: *threads = (int)x; break;
    }
    return 1;
}

static int sampling_ok(const lma_gen_params *g) {
    return g->max_tokens > 0 && g->sample.temperature >= 0 && g->sample.top_k >= 0 && g->sample.top_p > 0 &&
           g->sample.top_p <= 1 && g->sample.min_p >= 0 && g->sample.min_p < 1 && g->sample.repetition_penalty > 0;
}

static int do_generate(int argc, char **argv) {
    const char *cmd = "data generate";
    lma_generate_params p; lma_generate_default_params(&p);
    p.progress = 1;
    const char *model = NULL, *prompts = NULL, *outp = NULL, *stops[16], *tmpl = NULL;
    int n_stops = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int k = sampling_opt(&i, argc, argv, cmd, &p.gen, stops, &n_stops, &tmpl, &threads);
        if (k < 0) return 2;
        if (k) continue;
        if (!strcmp(a, "--model") || !strcmp(a, "--prompts") || !strcmp(a, "--out") || !strcmp(a, "-o") ||
            !strcmp(a, "--system") || !strcmp(a, "--checkpoint-s") || !strcmp(a, "--limit")) {
            if (!need(i, argc, argv, cmd)) return 2;
            const char *v = argv[++i];
            double x;
            if (!strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--prompts")) prompts = v;
            else if (!strcmp(a, "--system")) p.system = v;
            else if (!strcmp(a, "--out") || !strcmp(a, "-o")) outp = v;
            else if (!num(v, &x) || x < 0) return cli_usage_error(cmd, "%s needs a non-negative number", a);
            else if (!strcmp(a, "--limit")) p.limit = (int64_t)x;
            else p.checkpoint_s = x;
        } else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option %s", a);
        else if (!prompts) prompts = a;
        else return cli_usage_error(cmd, "one prompt file only");
    }
    if (!model) return cli_usage_error(cmd, "--model is needed");
    if (cli_resolve_model(cmd, &model)) return 1;
    if (!prompts) return cli_usage_error(cmd, "--prompts FILE is needed");
    if (!outp) return cli_usage_error(cmd, "--out REVIEW.jsonl is needed");
    if (!sampling_ok(&p.gen)) return cli_usage_error(cmd, "a sampling option is out of range (see --help)");
    p.gen.stop_strings = stops; p.gen.n_stop_strings = n_stops;
    lma_threads_set(threads);
    lma_curate_llm l;
    const lma_backend *be = cli_backend(cmd, g_device);
    if (!be) return 1;
    if (lma_curate_llm_load(model, g_adapter, be, &l)) return cli_fail(cmd, NULL);
    l.chat_template = tmpl;
    cJSON *s;
    lma_status st = lma_data_generate(&l, prompts, outp, &p, &s);
    lma_curate_llm_free(&l);
    if (st) return cli_fail(cmd, NULL);
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(s, "problems");
    for (const cJSON *it = pr ? pr->child : NULL; it; it = it->next)
        fprintf(stderr, "%s:%.0f: skipped: %s\n", prompts, getn(it, "line"),
                cJSON_GetObjectItemCaseSensitive(it, "error")->valuestring);
    printf("%s: %.0f prompts, %.0f drafted, %.0f already in the review file, %.0f duplicate ids, %.0f unreadable\n",
           prompts, getn(s, "prompts"), getn(s, "drafted"), getn(s, "skipped"), getn(s, "duplicates"), getn(s, "unreadable"));
    printf("review file: %s (%.0f lines); next: set each line's status, then 'lmadapt data accept'\n", outp,
           getn(s, "review_lines"));
    cJSON_Delete(s);
    return 0;
}

static int do_accept(int argc, char **argv) {
    const char *cmd = "data accept";
    const char *review = NULL, *outp = NULL;
    lma_accept_format fmt = LMA_ACCEPT_MESSAGES;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--review") || !strcmp(a, "--out") || !strcmp(a, "-o") || !strcmp(a, "--format")) {
            if (!need(i, argc, argv, cmd)) return 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--review")) review = v;
            else if (!strcmp(a, "--format")) {
                if (!strcmp(v, "messages")) fmt = LMA_ACCEPT_MESSAGES;
                else if (!strcmp(v, "alpaca")) fmt = LMA_ACCEPT_ALPACA;
                else return cli_usage_error(cmd, "--format must be messages or alpaca");
            } else outp = v;
        } else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option %s", a);
        else if (!review) review = a;
        else return cli_usage_error(cmd, "one review file only");
    }
    if (!review) return cli_usage_error(cmd, "--review FILE is needed");
    if (!outp) return cli_usage_error(cmd, "--out FILE is needed");
    cJSON *s;
    if (lma_data_accept(review, outp, fmt, &s)) return cli_fail(cmd, NULL);
    printf("%s: %.0f lines: %.0f accepted, %.0f edited, %.0f rejected, %.0f pending\n", review, getn(s, "lines"),
           getn(s, "accepted"), getn(s, "edited"), getn(s, "rejected"), getn(s, "pending"));
    printf("output: %s (%.0f examples)\n", outp, getn(s, "written"));
    cJSON_Delete(s);
    return 0;
}

static int do_judge(int argc, char **argv) {
    const char *cmd = "data judge";
    lma_judge_params p; lma_judge_default_params(&p);
    p.progress = 1;
    const char *model = NULL, *in = NULL, *rubric_path = NULL, *stops[16], *tmpl = NULL;
    int n_stops = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int k = sampling_opt(&i, argc, argv, cmd, &p.gen, stops, &n_stops, &tmpl, &threads);
        if (k < 0) return 2;
        if (k) continue;
        if (!strcmp(a, "--print-rubric")) { fputs(lma_judge_default_rubric(), stdout); return 0; }
        if (!strcmp(a, "--keep-unparsed")) { p.keep_unparsed = 1; continue; }
        static const char *vals[] = {"--model", "--data", "--rubric", "--threshold", "--out", "-o", "--scores",
                                     "--cache", "--model-id", "--removed", "--report"};
        int which = -1;
        for (int v = 0; v < 11; v++) if (!strcmp(a, vals[v])) which = v;
        if (which < 0) {
            if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option %s", a);
            if (in) return cli_usage_error(cmd, "one input file only");
            in = a;
            continue;
        }
        if (!need(i, argc, argv, cmd)) return 2;
        const char *v = argv[++i];
        switch (which) {
        case 0: model = v; break;
        case 1: in = v; break;
        case 2: rubric_path = v; break;
        case 3: if (!num(v, &p.threshold)) return cli_usage_error(cmd, "--threshold needs a number"); break;
        case 4: case 5: p.out_path = v; break;
        case 6: p.scores_path = v; break;
        case 7: p.cache_path = v; break;
        case 8: p.model_id = v; break;
        case 9: p.removed_path = v; break;
        default: p.report_path = v; break;
        }
    }
    if (!model) return cli_usage_error(cmd, "--model is needed");
    if (cli_resolve_model(cmd, &model)) return 1;
    if (!in) return cli_usage_error(cmd, "--data FILE is needed");
    if (!p.out_path) return cli_usage_error(cmd, "--out FILE is needed");
    if (!sampling_ok(&p.gen)) return cli_usage_error(cmd, "a sampling option is out of range (see --help)");
    p.gen.stop_strings = stops; p.gen.n_stop_strings = n_stops;
    lma_threads_set(threads);
    char *rubric = NULL;
    size_t rlen;
    if (rubric_path && lma_read_file(rubric_path, &rubric, &rlen)) return cli_fail(cmd, NULL);
    p.rubric = rubric;
    lma_curate_llm l;
    const lma_backend *be = cli_backend(cmd, g_device);
    if (!be) { free(rubric); return 1; }
    if (lma_curate_llm_load(model, g_adapter, be, &l)) { free(rubric); return cli_fail(cmd, NULL); }
    l.chat_template = tmpl;
    cJSON *s;
    lma_status st = lma_data_judge(&l, in, &p, &s);
    lma_curate_llm_free(&l);
    free(rubric);
    if (st) return cli_fail(cmd, NULL);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(s, "histogram");
    printf("%s: %.0f examples scored (%.0f from the cache, %.0f model calls), %.0f unparsed, %.0f unreadable\n", in,
           getn(s, "scored"), getn(s, "cache_hits"), getn(s, "model_calls"), getn(s, "unparsed"), getn(s, "unreadable"));
    printf("scores: 1:%.0f 2:%.0f 3:%.0f 4:%.0f 5:%.0f (mean %.2f)\n", getn(h, "1"), getn(h, "2"), getn(h, "3"),
           getn(h, "4"), getn(h, "5"), getn(s, "mean_score"));
    printf("kept %.0f (score >= %g%s), removed %.0f; output: %s\n", getn(s, "kept"), p.threshold,
           p.keep_unparsed ? " or unparsed" : "", getn(s, "removed"), p.out_path);
    cJSON_Delete(s);
    return 0;
}

static int do_debug(int argc, char **argv) {
    const char *cmd = "data debug";
    lma_debug_params p; lma_debug_default_params(&p);
    const char *in = NULL, *judge_dir = NULL;
    int n_files = 0, use_builtin = 1, rc = 0;
    char **texts = calloc((size_t)argc + 1, sizeof *texts);
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    if (!texts || !names) { free(texts); free(names); return cli_fail(cmd, "out of memory"); }
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--print-rules")) { fputs(lma_debug_default_rules(), stdout); goto done; }
        if (!strcmp(a, "--single-task")) { p.single_task = 1; continue; }
        static const char *vals[] = {"--data", "--rules", "--extra-rules", "--judge", "--refusal-words", "--task-field",
                                     "--format-minority", "-o", "--output", "--removed", "--report", "--show"};
        int which = -1;
        for (int v = 0; v < 12; v++) if (!strcmp(a, vals[v])) which = v;
        if (which < 0) {
            if (a[0] == '-' && a[1]) { rc = cli_usage_error(cmd, "unknown option %s", a); break; }
            if (in) { rc = cli_usage_error(cmd, "one input file only"); break; }
            in = a;
            continue;
        }
        if (!need(i, argc, argv, cmd)) { rc = 2; break; }
        const char *v = argv[++i];
        double x;
        switch (which) {
        case 0: in = v; break;
        case 1: case 2: {
            size_t len;
            if (which == 1) use_builtin = 0;
            if (lma_read_file(v, &texts[n_files], &len)) { rc = cli_fail(cmd, NULL); break; }
            names[n_files++] = v;
            break;
        }
        case 3: judge_dir = v; break;
        case 6: if (!num(v, &p.format_minority)) rc = cli_usage_error(cmd, "%s needs a number", a); break;
        case 4: case 11:
            if (!num(v, &x) || x < 0) { rc = cli_usage_error(cmd, "%s needs a non-negative number", a); break; }
            if (which == 4) p.refusal_answer_words = (int)x; else p.max_summary_flags = (int)x;
            break;
        case 5: p.task_field = v; break;
        case 7: case 8: p.out_path = v; break;
        case 9: p.removed_path = v; break;
        default: p.report_path = v; break;
        }
    }
    if (!rc && !in) rc = cli_usage_error(cmd, "--data FILE is needed");
    if (rc) goto done;
    if (n_files && use_builtin) { /* --extra-rules only: the built-ins first */
        memmove(texts + 1, texts, (size_t)n_files * sizeof *texts);
        memmove(names + 1, names, (size_t)n_files * sizeof *names);
        texts[0] = strdup(lma_debug_default_rules());
        names[0] = "built-in rules";
        n_files++;
    }
    if (n_files) { p.rules_text = (const char *const *)texts; p.rules_name = names; p.n_rules = n_files; }
    lma_curate_llm l;
    if (judge_dir) {
        const lma_backend *be = cli_backend(cmd, g_device);
        if (!be) { rc = 1; goto done; }
        if (lma_curate_llm_load(judge_dir, g_adapter, be, &l)) { rc = cli_fail(cmd, NULL); goto done; }
        p.judge = &l;
    }
    cJSON *s;
    lma_status st = lma_data_debug(in, &p, &s);
    if (judge_dir) lma_curate_llm_free(&l);
    if (st) { rc = cli_fail(cmd, NULL); goto done; }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(s, "shown");
    for (const cJSON *it = sh ? sh->child : NULL; it; it = it->next) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(it, "judge");
        printf("%s:%.0f: %s [%s]: \"%s\"%s%s\n", in, getn(it, "line"), cJSON_GetObjectItemCaseSensitive(it, "rule")->valuestring,
               cJSON_GetObjectItemCaseSensitive(it, "kind")->valuestring,
               cJSON_GetObjectItemCaseSensitive(it, "excerpt")->valuestring, j ? " judge: " : "", j ? j->valuestring : "");
    }
    printf("%s: %.0f examples, %.0f flagged (%.0f flags), %.0f unreadable\n", in, getn(s, "examples"),
           getn(s, "flagged_examples"), getn(s, "flags"), getn(s, "unreadable"));
    print_counts(cJSON_GetObjectItemCaseSensitive(s, "per_rule"), "flags by rule");
    if (p.judge) print_counts(cJSON_GetObjectItemCaseSensitive(s, "judge"), "judge");
    if (p.report_path) printf("report: %s\n", p.report_path);
    rc = getn(s, "flagged_examples") > 0 ? 1 : 0;
    cJSON_Delete(s);
done:
    for (int k = 0; k < n_files; k++) free(texts[k]);
    free(texts); free(names);
    return rc;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct { const char *name; const char *usage; int (*run)(int, char **); } subs[] = {
        {"validate", NULL, do_validate}, {"stats", NULL, do_stats}, {"dedup", NULL, do_dedup},
        {"filter", NULL, do_filter}, {"decontam", NULL, do_decontam}, {"split", NULL, do_split},
        {"generate", NULL, do_generate}, {"accept", NULL, do_accept}, {"judge", NULL, do_judge}, {"debug", NULL, do_debug}};
    const char *usages[] = {usage_validate, usage_stats, usage_dedup, usage_filter, usage_decontam, usage_split,
                            usage_generate, usage_accept, usage_judge, usage_debug};
    for (int i = 0; i < 10; i++) {
        if (strcmp(argv[1], subs[i].name)) continue;
        if (cli_wants_help(argc - 1, argv + 1)) { fputs(usages[i], stdout); return 0; }
        return subs[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "lmadapt data: unknown command '%s'\n%s", argv[1], usage_main);
    return 2;
}
