/* lmadapt data <validate|stats|dedup|filter|decontam|split>: dataset curation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "data/curate/curate.h"
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
    "  split      deterministic train/validation/test split\n\n"
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

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct { const char *name; const char *usage; int (*run)(int, char **); } subs[] = {
        {"validate", NULL, do_validate}, {"stats", NULL, do_stats}, {"dedup", NULL, do_dedup},
        {"filter", NULL, do_filter}, {"decontam", NULL, do_decontam}, {"split", NULL, do_split}};
    const char *usages[] = {usage_validate, usage_stats, usage_dedup, usage_filter, usage_decontam, usage_split};
    for (int i = 0; i < 6; i++) {
        if (strcmp(argv[1], subs[i].name)) continue;
        if (cli_wants_help(argc - 1, argv + 1)) { fputs(usages[i], stdout); return 0; }
        return subs[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "lmadapt data: unknown command '%s'\n%s", argv[1], usage_main);
    return 2;
}
