/* lmadapt data generate|judge|debug: the model-backed curation commands (the
 * text-curation ones and the dispatcher are in cmd_data.c). Each takes the same
 * model options (--model --adapter --device --threads --template) and generate and
 * judge the sampling options of cli/sampling.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "backend/backend.h"
#include "core/io.h"
#include "core/threads.h"
#include "data/curate/curate.h"
#include "data_cmds.h"
#include "opts.h"
#include "eval/curate_model.h"
#include "sampling.h"

#define print_counts cli_data_print_counts
#define getn cli_data_getn

/* The model options of the three commands. */
typedef struct {
    const char *model, *adapter, *device, *tmpl;
    int threads, max_active;
} model_opts;
#define MODEL_NOPTS 7
static void model_table(model_opts *m, cli_opt t[MODEL_NOPTS], const char *model_help, int required, const char *alias) {
    t[0] = (cli_opt)CLI_STR("model", 0, &m->model, "M", model_help, .flags = required ? CLI_REQUIRED : 0, .alias = alias);
    t[1] = (cli_opt)CLI_OPT_ADAPTER(&m->adapter);
    t[2] = (cli_opt)CLI_OPT_TEMPLATE(&m->tmpl);
    t[3] = (cli_opt)CLI_OPT_DEVICE(&m->device);
    t[4] = (cli_opt)CLI_OPT_THREADS(&m->threads);
    t[5] = (cli_opt)CLI_OPT_MAX_ACTIVE(&m->max_active);
    t[6] = (cli_opt)CLI_END;
}

/* Loads the model of m (resolved) with its adapter on its device; 0 ok, else 1 (printed). */
static int load_llm(const char *cmd, model_opts *m, lma_curate_llm *l) {
    lma_threads_set(m->threads);
    const lma_backend *be = cli_backend(cmd, m->device);
    if (!be) return 1;
    if (lma_curate_llm_load(m->model, m->adapter, be, l)) return cli_fail(cmd, NULL);
    l->chat_template = m->tmpl;
    if (m->max_active) l->max_active = m->max_active;
    return 0;
}

int cli_data_generate(int argc, char **argv) {
    lma_data_generate_params p; lma_data_generate_default_params(&p);
    p.progress = 1;
    const char *prompts = NULL, *outp = NULL;
    model_opts mo = {0};
    cli_sampling smp;
    cli_sampling_init(&smp, p.gen.max_tokens, p.gen.sample.temperature);
    smp.gp = p.gen;
    cli_opt own[] = {
        CLI_STR("prompts", 0, &prompts, "FILE", "prompt file (JSONL or JSON array; also the bare argument)",
                .flags = CLI_IN),
        CLI_STR("out", 'o', &outp, "FILE", "review file (created or resumed; written atomically)",
                .flags = CLI_REQUIRED | CLI_OUT),
        CLI_STR("system", 0, &p.system, "TEXT", "system turn added to prompts that have none"),
        CLI_REALV("checkpoint-s", 0, &p.checkpoint_s, 0, 1e9, "X", "commit the review file at most every X seconds"),
        CLI_I64("limit", 0, &p.limit, 0, INT64_MAX, "N", "draft at most N new prompts this run (0 = all)"),
        CLI_END};
    cli_opt model[MODEL_NOPTS], samp[CLI_SAMPLING_NOPTS];
    model_table(&mo, model, "HF model folder, .gguf file or short name (with a tokenizer)", 1, NULL);
    cli_sampling_table(&smp, CLI_SAMPLING_STOP, samp);
    cli_group groups[] = {{NULL, own}, {"Model:", model}, {"Sampling (as 'lmadapt generate'):", samp}, {0}};
    cli_spec spec = {
        .cmd = "data generate",
        .usage = "lmadapt data generate --model M --prompts FILE --out REVIEW.jsonl [options]",
        .about = "The model drafts a response for each prompt; people review the drafts. Prompt records:\n"
                 "{\"prompt\"}, {\"instruction\",\"input\"?}, {\"question\"}, {\"messages\"} (ending with a user turn;\n"
                 "trailing assistant turns are dropped) or any training format; an \"id\" field names the prompt\n"
                 "(else a hash of its text). Each prompt is rendered with the model's chat template and a\n"
                 "generation prompt. The review file gets one line per prompt:\n"
                 "  {\"id\", \"prompt\" | \"messages\", \"draft\", \"status\": \"pending\", \"reviewer_note\": \"\"}\n"
                 "Reviewers set status to accepted, edited (with their text in \"response\") or rejected; then\n"
                 "'lmadapt data accept' makes the training file. Rerunning skips ids already in the review file\n"
                 "and keeps its lines as they are (resume after a crash, or add prompts later).\n",
        .groups = groups,
        .epilog = "Every prompt uses the same seed, so a draft is reproduced by 'lmadapt generate' with the\n"
                  "rendered prompt and that seed.\n",
        .pos_name = "prompt file", .pos_one = &prompts};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (cli_resolve_model(cmd, &mo.model)) return 1;
    if (!prompts) return cli_usage_error(cmd, "--prompts FILE is needed");
    cli_sampling_finish(&smp);
    p.gen = smp.gp;
    lma_curate_llm l;
    if (load_llm(cmd, &mo, &l)) return 1;
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
    cli_data_warn_unreadable(cmd, s);
    printf("review file: %s (%.0f lines); next: set each line's status, then 'lmadapt data accept'\n", outp,
           getn(s, "review_lines"));
    cJSON_Delete(s);
    return 0;
}

int cli_data_judge(int argc, char **argv) {
    lma_judge_params p; lma_judge_default_params(&p);
    p.progress = 1;
    const char *in = NULL, *prompt_path = NULL;
    int print_prompt = 0, unconstrained = 0;
    model_opts mo = {0};
    cli_sampling smp;
    cli_sampling_init(&smp, p.gen.max_tokens, p.gen.sample.temperature);
    smp.gp = p.gen;
    cli_opt own[] = {
        CLI_STR("data", 0, &in, "FILE", "examples to score (also the bare argument)", .flags = CLI_IN),
        CLI_STR("out", 'o', &p.out_path, "FILE", "kept examples", .flags = CLI_REQUIRED | CLI_OUT),
        CLI_STR("judge-prompt", 0, &prompt_path, "FILE", "the judge's prompt: a text with {instruction} and {response}\n"
                "placeholders (eval's --rubric is another thing: JSON criteria)",
                .def_text = "built in; --print-judge-prompt shows it"),
        CLI_BOOL("print-judge-prompt", 0, &print_prompt, "print the built-in judge prompt and exit"),
        CLI_REALV("threshold", 0, &p.threshold, 0, 5, "X", "keep score >= X"),
        CLI_BOOL("unconstrained", 0, &unconstrained, "let the judge write freely (default: its reply is held to\n"
                 "\"Score: N\" with N in 1..5, then any explanation, by the --grammar\nmachinery, so every reply parses)"),
        CLI_BOOL("keep-unparsed", 0, &p.keep_unparsed, "keep examples whose score could not be read"),
        CLI_STR("scores", 0, &p.scores_path, "FILE", "one line per example: {line, index, score, cached, judgement}",
                .flags = CLI_OUT),
        CLI_STR("cache", 0, &p.cache_path, "PATH", "JSONL cache file, or a directory (PATH/judge_cache.jsonl)"),
        CLI_STR("model-id", 0, &p.model_id, "S", "model identity for the cache",
                .def_text = "hash of config.json, tokenizer files and the weight files'\nnames, sizes and mtimes"),
        CLI_STR("removed", 0, &p.removed_path, "FILE", "examples not kept", .flags = CLI_OUT),
        CLI_STR("report", 0, &p.report_path, "FILE", "write the JSON report to FILE", .flags = CLI_OUT),
        CLI_END};
    cli_opt model[MODEL_NOPTS], samp[CLI_SAMPLING_NOPTS];
    model_table(&mo, model, "the judge: HF model folder, .gguf file or short name", 0, NULL);
    cli_sampling_table(&smp, CLI_SAMPLING_STOP, samp);
    cli_group groups[] = {{NULL, own}, {"Model:", model}, {"Sampling (as 'lmadapt generate'):", samp}, {0}};
    cli_spec spec = {
        .cmd = "data judge",
        .usage = "lmadapt data judge --model M --data FILE --out kept.jsonl [options]",
        .about = "A model scores each example 1-5 against a judge prompt (AlpaGasus style) and the examples\n"
                 "scoring at least --threshold are kept. The score is the first integer after a cue such as\n"
                 "\"Score:\" in the model's text (the reply is constrained to begin \"Score: N\" unless\n"
                 "--unconstrained), else the first standalone integer 1-5; texts without one are\n"
                 "'unparsed' and not kept (--keep-unparsed keeps them). Scores are cached by a hash of (model\n"
                 "identity, judge prompt, example text, sampling settings): a rerun makes no model call.\n",
        .groups = groups, .pos_name = "input file", .pos_one = &in};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (print_prompt) { fputs(lma_judge_default_rubric(), stdout); return 0; }
    if (!mo.model) return cli_usage_error(cmd, "--model M is required");
    if (cli_resolve_model(cmd, &mo.model)) return 1;
    if (!in) return cli_usage_error(cmd, "--data FILE is needed");
    cli_sampling_finish(&smp);
    p.gen = smp.gp;
    if (unconstrained) p.gen.grammar = NULL;
    char *rubric = NULL;
    size_t rlen;
    if (prompt_path && lma_read_file(prompt_path, &rubric, &rlen)) return cli_fail(cmd, NULL);
    p.rubric = rubric;
    lma_curate_llm l;
    if (load_llm(cmd, &mo, &l)) { free(rubric); return 1; }
    cJSON *s;
    lma_status st = lma_data_judge(&l, in, &p, &s);
    lma_curate_llm_free(&l);
    free(rubric);
    if (st) return cli_fail(cmd, NULL);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(s, "histogram");
    printf("%s: %.0f examples scored (%.0f from the cache, %.0f model calls), %.0f unparsed, %.0f unreadable\n", in,
           getn(s, "scored"), getn(s, "cache_hits"), getn(s, "model_calls"), getn(s, "unparsed"), getn(s, "unreadable"));
    cli_data_warn_unreadable(cmd, s);
    if (getn(s, "scored") > getn(s, "unparsed"))
        printf("scores: 1:%.0f 2:%.0f 3:%.0f 4:%.0f 5:%.0f (mean %.2f)\n", getn(h, "1"), getn(h, "2"), getn(h, "3"),
               getn(h, "4"), getn(h, "5"), getn(s, "mean_score"));
    else
        printf("scores: none could be read from the judge's replies (see --scores for what it wrote)\n");
    printf("kept %.0f (score >= %g%s), removed %.0f; output: %s\n", getn(s, "kept"), p.threshold,
           p.keep_unparsed ? " or unparsed" : "", getn(s, "removed"), p.out_path);
    cJSON_Delete(s);
    return 0;
}

int cli_data_debug(int argc, char **argv) {
    lma_debug_params p; lma_debug_default_params(&p);
    const char *in = NULL, *rules_v[64], *extra_v[64];
    cli_list rules_l = CLI_LIST_OF(rules_v), extra_l = CLI_LIST_OF(extra_v);
    int print_rules = 0, rc = 0, n_files = 0;
    model_opts mo = {0};
    cli_opt own[] = {
        CLI_STR("data", 0, &in, "FILE", "examples to check (also the bare argument)", .flags = CLI_IN),
        CLI_MULTI("rules", 0, &rules_l, "FILE", "use these rules instead of the built-in ones"),
        CLI_MULTI("extra-rules", 0, &extra_l, "FILE", "add rules to the built-in ones"),
        CLI_BOOL("print-rules", 0, &print_rules, "print the built-in rules and exit"),
        CLI_INT("refusal-words", 0, &p.refusal_answer_words, 0, INT_MAX, "N",
                "words outside the refusal sentence that make it an answer"),
        CLI_STR("task-field", 0, &p.task_field, "NAME", "compare reply formats within each value of this field"),
        CLI_BOOL("single-task", 0, &p.single_task, "compare reply formats across the whole file (one task)"),
        CLI_REALV("format-minority", 0, &p.format_minority, 0, 1, "X", "a reply format below this share of its task is flagged"),
        CLI_STR("out", 'o', &p.out_path, "FILE", "examples without flags", .alias = "output", .flags = CLI_OUT),
        CLI_STR("removed", 0, &p.removed_path, "FILE", "flagged examples", .flags = CLI_OUT),
        CLI_STR("report", 0, &p.report_path, "FILE", "write the JSON report (every flag) to FILE", .flags = CLI_OUT),
        CLI_INT("show", 0, &p.max_summary_flags, 0, INT_MAX, "N", "flags printed"),
        CLI_END};
    cli_opt model[MODEL_NOPTS];
    model_table(&mo, model, "ask this model yes/no for each flagged example (the judge)", 0, "judge");
    cli_group groups[] = {{NULL, own}, {"Judge model (optional):", model}, {0}};
    cli_spec spec = {
        .cmd = "data debug",
        .usage = "lmadapt data debug --data FILE [--rules FILE]... [--model M [--adapter DIR]] [options]",
        .about = "Flags examples that would teach unwanted behaviour, with file:line, rule and excerpt:\n"
                 "  action   the assistant promises or claims actions it cannot take (\"I'll schedule ...\")\n"
                 "  praise   it praises a trait of the user that no earlier user turn mentions\n"
                 "  refusal  a refusal phrase in a reply that also answers (--refusal-words outside it)\n"
                 "  format   with --task-field NAME or --single-task: a reply format (json, yaml, markdown,\n"
                 "           code, plain) below --format-minority of its task's replies\n"
                 "Rules are editable pattern files, one rule a line: KIND NAME REGEX (PCRE2, case-insensitive;\n"
                 "KIND action|praise|refusal|flag; praise uses the group named trait). --print-rules shows\n"
                 "the built-in rules.\n",
        .groups = groups,
        .epilog = "Exit status: 0 nothing flagged, 1 flags found or failure, 2 bad usage.\n",
        .pos_name = "input file", .pos_one = &in};
    cli_args a;
    rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    rc = 0;
    const char *cmd = spec.cmd;
    if (print_rules) { fputs(lma_debug_default_rules(), stdout); return 0; }
    if (!in) return cli_usage_error(cmd, "--data FILE is needed");
    if (mo.model && cli_resolve_model(cmd, &mo.model)) return 1;
    /* rule texts: the built-ins unless --rules, then --rules, then --extra-rules */
    int cap = 1 + rules_l.n + extra_l.n, use_builtin = rules_l.n == 0;
    char **texts = calloc((size_t)cap, sizeof *texts);
    const char **names = calloc((size_t)cap, sizeof *names);
    if (!texts || !names) { free(texts); free(names); return cli_fail(cmd, "out of memory"); }
    if (use_builtin && extra_l.n) {
        texts[n_files] = strdup(lma_debug_default_rules());
        names[n_files++] = "built-in rules";
    }
    for (int i = 0; i < rules_l.n + extra_l.n && !rc; i++) {
        const char *path = i < rules_l.n ? rules_v[i] : extra_v[i - rules_l.n];
        size_t len;
        if (lma_read_file(path, &texts[n_files], &len)) { rc = cli_fail(cmd, NULL); break; }
        names[n_files++] = path;
    }
    if (rc) goto done;
    if (n_files) { p.rules_text = (const char *const *)texts; p.rules_name = names; p.n_rules = n_files; }
    lma_curate_llm l;
    if (mo.model) {
        if (load_llm(cmd, &mo, &l)) { rc = 1; goto done; }
        p.judge = &l;
    }
    cJSON *s;
    lma_status st = lma_data_debug(in, &p, &s);
    if (mo.model) lma_curate_llm_free(&l);
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
    cli_data_warn_unreadable(cmd, s);
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
