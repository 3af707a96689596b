/* lmadapt eval: perplexity, MMLU-form multiple choice and generation tasks on one
 * model, or two models side by side (--compare: the forgetting report). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "core/io.h"
#include "core/json.h"
#include "core/threads.h"
#include "eval/eval.h"
#include "eval/gencheck.h"
#include "eval/judge.h"
#include "infer/generate.h"
#include "infer/grammar.h"
#include "infer/json_constraint.h"
#include "model/adapter.h"
#include "opts.h"
#include "sampling.h"

#define MAX_TASKS 64

static const lma_backend *g_backend; /* --device */
static int g_dequantize;             /* --dequantize */
static cli_sampling g_fmt;           /* --format, --json-schema (gen tasks) */
static lma_rubric g_rubric;          /* --rubric */
static lma_grammar *g_check_grammar; /* --check-grammar (a validator), freed at the end of cmd_eval */

static int load_model(const char *dir, const char *adapter, lma_model **m, lma_tokenizer **tok) {
    *m = NULL; *tok = NULL;
    if (lma_tok_load(dir, tok) != LMA_OK) return 0;
    if (lma_model_load_ex(dir, g_backend ? g_backend : lma_backend_cpu(), CLI_INFER_FLAGS(g_dequantize), m) != LMA_OK) return 0;
    if (adapter && lma_adapter_load(*m, adapter) != LMA_OK) return 0;
    return 1;
}

static int run_suite(const char *dir, const char *adapter, const lma_eval_task *tasks, int n, lma_eval_params p,
                     lma_eval_result *res, int verbose) {
    lma_model *m = NULL;
    lma_tokenizer *tok = NULL;
    int ok = load_model(dir, adapter, &m, &tok);
    int32_t eos[16];
    if (ok) {
        p.n_stop_ids = lma_generation_eos(dir, &m->cfg, eos, 16);
        if (!p.n_stop_ids && lma_tok_eos_id(tok) >= 0) eos[p.n_stop_ids++] = lma_tok_eos_id(tok);
        p.stop_ids = eos;
        ok = cli_sampling_constraint(&g_fmt, tok) == LMA_OK; /* per model: it depends on the tokenizer */
        p.gen_constraint = g_fmt.gp.constraint;
    }
    for (int i = 0; ok && i < n; i++) {
        if (verbose) fprintf(stderr, "[lmadapt eval] %s%s%s: %s\n", dir, adapter ? " + " : "", adapter ? adapter : "",
                             tasks[i].name);
        ok = lma_eval_run(m, tok, &tasks[i], &p, &res[i]) == LMA_OK;
    }
    cli_sampling_free(&g_fmt);
    lma_model_free(m);
    lma_tok_free(tok);
    return ok;
}

static void print_judge(const lma_judge_stats *s) {
    for (int c = 0; s->rubric && c < s->rubric->n; c++) {
        lma_judge_summary sm;
        lma_judge_summarize(s, c, &sm);
        printf("    judge %-26s mean %6.3f (%d..%d)", s->rubric->crit[c].name, sm.mean, s->rubric->crit[c].min,
               s->rubric->crit[c].max);
        if (sm.n_labelled) printf("   vs labels: acc %.4f  kappa %s%.4f  n %ld", sm.accuracy, isfinite(sm.kappa) ? "" : "(undefined) ",
                                  isfinite(sm.kappa) ? sm.kappa : 0.0, sm.n_labelled);
        printf("\n");
    }
}

static void print_result(const lma_eval_result *r) {
    if (r->task.kind == LMA_EVAL_PPL) {
        printf("%-28s %-8s ppl %10.4f   tokens %ld   bits/byte %.4f   (%.1fs)\n", r->task.name,
               lma_eval_tag_name(r->task.tag), r->score, r->tokens,
               r->bytes ? r->nll / 0.6931471805599453 / (double)r->bytes : 0.0, r->seconds);
        return;
    }
    if (r->task.kind == LMA_EVAL_PASSKEY) {
        printf("%-28s %-8s acc %10.4f   %ld/%ld   (%.1fs)\n", r->task.name, lma_eval_tag_name(r->task.tag), r->score,
               r->correct, r->n, r->seconds);
        int nd = 0; /* cells are length-major: the depths repeat */
        while ((size_t)nd < r->n_cells && r->cells[nd].context == r->cells[0].context) nd++;
        printf("    %-10s", "depth \\ ctx");
        for (size_t i = 0; i < r->n_cells; i += (size_t)nd) printf(" %8d", r->cells[i].context);
        printf("\n");
        for (int d = 0; d < nd; d++) {
            printf("    %-10.2f", r->cells[d].depth);
            for (size_t i = (size_t)d; i < r->n_cells; i += (size_t)nd)
                printf(" %8.2f", r->cells[i].n ? (double)r->cells[i].correct / (double)r->cells[i].n : 0.0);
            printf("\n");
        }
        return;
    }
    if (r->task.kind == LMA_EVAL_JUDGE) {
        printf("%-28s %-8s %-5s %8.4f   items %ld   (%.1fs)\n", r->task.name, lma_eval_tag_name(r->task.tag), r->metric,
               r->score, r->n, r->seconds);
        print_judge(&r->judge);
        return;
    }
    printf("%-28s %-8s acc %10.4f   %ld/%ld", r->task.name, lma_eval_tag_name(r->task.tag), r->score, r->correct, r->n);
    if (r->task.kind == LMA_EVAL_MMLU) printf("   macro %.4f   subjects %zu", r->macro, r->n_groups);
    else if (r->format_n) {
        printf("   parsable %ld/%ld  keys %ld", r->valid, r->format_n, r->keys_ok);
        if (r->schema_n) printf("  schema-valid %ld/%ld", r->schema_valid, r->schema_n);
    }
    if (r->grammar_n) printf("   grammar-valid %ld/%ld", r->grammar_valid, r->grammar_n);
    printf("   (%.1fs)\n", r->seconds);
    if (r->task.kind == LMA_EVAL_MMLU || r->n_groups > 1)
        for (size_t g = 0; g < r->n_groups; g++)
            printf("    %-40s %7.4f  %ld/%ld\n", r->groups[g].name,
                   r->groups[g].n ? (double)r->groups[g].correct / (double)r->groups[g].n : 0.0, r->groups[g].correct,
                   r->groups[g].n);
    if (r->judge.rubric) print_judge(&r->judge);
}

static void print_compare(const lma_eval_result *a, const lma_eval_result *b, int n, const char *na, const char *nb) {
    printf("\n%-28s %-8s %-6s %12s %12s %12s\n", "task", "tag", "metric", "A", "B", "B - A");
    for (int i = 0; i < n; i++) {
        lma_eval_delta d = lma_eval_compare_one(&a[i], &b[i]);
        printf("%-28s %-8s %-6s %12.4f %12.4f %+12.4f %s\n", a[i].task.name,
               a[i].task.tag ? lma_eval_tag_name(a[i].task.tag) : "-", a[i].metric, a[i].score, b[i].score, d.delta,
               d.delta == 0 ? "" : d.better ? "(better)" : "(worse)");
    }
    lma_eval_tag_summary s[3];
    lma_eval_compare(a, b, (size_t)n, s);
    printf("A = %s\nB = %s\n", na, nb);
    static const char *const label[3] = {"untagged tasks", "general (forgetting)", "domain (gain)"};
    for (int t = 1; t < 3; t++) {
        if (!s[t].n_acc && !s[t].n_ppl) continue;
        printf("%-22s", label[t]);
        if (s[t].n_acc) printf("  mean accuracy change %+.4f over %d task%s", s[t].mean_dacc, s[t].n_acc, s[t].n_acc > 1 ? "s" : "");
        if (s[t].n_ppl) printf("  mean perplexity change %+.2f%% over %d task%s", 100 * s[t].mean_rel_ppl, s[t].n_ppl,
                               s[t].n_ppl > 1 ? "s" : "");
        printf("\n");
    }
    if (!s[1].n_acc && !s[1].n_ppl && !s[2].n_acc && !s[2].n_ppl)
        printf("(tag tasks general:KIND:PATH or domain:KIND:PATH for the forgetting / gain summary)\n");
    else if (!s[1].n_ppl)
        printf("(no perplexity on general text: --general-text FILE adds it beside the benchmarks)\n");
}

static const char *const scoring_names[] = {"kv", "full", NULL};
static const int scoring_values[] = {LMA_EVAL_SCORE_KV, LMA_EVAL_SCORE_FULL};
static const char *const check_names[] = {"auto", "exact", "number", "json", "yaml", NULL};
static const int check_values[] = {-1, LMA_CHECK_EXACT, LMA_CHECK_NUMBER, LMA_CHECK_JSON, LMA_CHECK_YAML};

static const char *const mmlu_form_names[] = {"letter", "cloze", NULL};

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *cmp = NULL, *cadapter = NULL, *out = NULL, *device = NULL;
    const char *general = NULL;
    char general_spec[4200];
    const char *task_v[MAX_TASKS];
    cli_list task_l = CLI_LIST_OF(task_v);
    static lma_eval_task tasks[MAX_TASKS];
    const char *check_schema = NULL, *check_grammar = NULL;
    const char *judge = NULL, *rubric = NULL, *sft_out = NULL, *ctx_list = NULL, *depth_list = NULL;
    static int ctx_v[32];
    static double depth_v[32];
    int json = 0, threads = 0, mode, limit = 0;
    lma_eval_params p = lma_eval_default_params();
    mode = (int)p.mode;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "HF model folder, .gguf file or short name (docs/models.md)"),
        CLI_OPT_ADAPTER(&adapter),
        CLI_MULTI("task", 0, &task_l, "SPEC", "a task [TAG:]KIND:PATH (up to " CLI_STRINGIFY(MAX_TASKS) ")"),
        CLI_STR("compare", 0, &cmp, "M2", "also evaluate M2 on the same suite and print the deltas", .flags = CLI_IN),
        CLI_STR("general-text", 0, &general, "FILE", "held-out general text: its perplexity joins the suite as\n"
                "general:ppl:FILE (with --compare: the forgetting beside the benchmarks)", .flags = CLI_IN),
        CLI_STR("compare-adapter", 0, &cadapter, "DIR", "also evaluate --model (or M2) with this adapter; e.g. the\n"
                "base model against base + adapter", .flags = CLI_IN),
        CLI_INT("shots", 0, &p.shots, 0, 64, "K", "MMLU shots from the dev split"),
        CLI_STR("split", 0, &p.mmlu_split, "NAME", "MMLU split to evaluate", .def_text = "test, else val, else dev"),
        CLI_INT("limit", 0, &limit, 0, 2147483647, "N", "at most N items per MMLU subject / gen file, N tokens per\n"
                "ppl file (0 = all)"),
        CLI_CHOOSE("mmlu-form", 0, &p.mmlu_form, mmlu_form_names, NULL, NULL,
                   "MMLU: letter (\" A\"..\" D\" after the listed choices) or cloze (each answer's\n"
                   "text after the question, log-likelihood per character: lm-eval's continuation form)"),
        CLI_CHOOSE("scoring", 0, &mode, scoring_names, scoring_values, NULL,
                   "MMLU scoring: one prefill shared by the 4 choices with the KV\n"
                   "cache (kv), or one full forward per choice"),
        CLI_INT("ppl-window", 0, &p.ppl_window, 2, 1 << 24, "W", "perplexity window in tokens", .def_text = "the model context"),
        CLI_INT("ppl-stride", 0, &p.ppl_stride, 1, 1 << 24, "S", "window advance (every token is scored once)",
                .def_text = "W/2"),
        CLI_INT("max-tokens", 0, &p.gen_max_tokens, 1, CLI_MAX_TOKENS_MAX, "N", "gen: tokens to generate at most (greedy)"),
        CLI_CHOOSE("check", 0, &p.gen_check, check_names, check_values, NULL,
                   "gen: force one check for every record (auto: the record's own)"),
        CLI_BOOL("chat", 0, &p.chat, "gen: send each prompt as a user turn of the chat template"),
        CLI_STR("check-schema", 0, &check_schema, "F", "gen: also validate json outputs against this JSON schema\n"
                "(without constraining the decoding; a record's \"schema\" wins)", .def_text = "--json-schema's",
                .flags = CLI_IN),
        CLI_STR("check-grammar", 0, &check_grammar, "F", "gen: also count the outputs that are complete sentences of\n"
                "this GBNF grammar (without constraining the decoding)", .def_text = "--grammar's", .flags = CLI_IN),
        CLI_STR("judge", 0, &judge, "MODEL", "gen: a judge model also scores each output on the --rubric\n"
                "criteria, its reply constrained to the score schema (docs/eval.md, \"LLM judge\")", .flags = CLI_IN),
        CLI_STR("rubric", 0, &rubric, "FILE", "the judge's rubric: JSON criteria with integer scales (for\n"
                "--judge and judge:PATH tasks)", .flags = CLI_IN),
        CLI_STR("judge-sft-out", 0, &sft_out, "FILE", "write the judge task's labelled items as SFT examples (the\n"
                "judge prompt, the labels as its JSON reply): a judge's training set (docs/recipes/judge.md)",
                .flags = CLI_OUT),
        CLI_STR("context", 0, &ctx_list, "N[,N...]", "passkey: context lengths in tokens (prompt + 8 answer tokens)"),
        CLI_STR("depths", 0, &depth_list, "D[,D...]", "passkey: depths of the key in the filler, 0 (start) to 1 (end)",
                .def_text = "0,0.25,0.5,0.75,1"),
        CLI_INT("passkey-trials", 0, &p.passkey_trials, 1, 100000, "N", "passkey: keys per length x depth cell"),
        CLI_OPT_MAX_ACTIVE(&p.max_active),
        CLI_OPT_JSON(&json, "print the results as JSON"),
        CLI_STR("out", 'o', &out, "FILE", "also write the JSON to FILE (atomically)", .flags = CLI_OUT),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_OPT_DEQUANTIZE(&g_dequantize),
        CLI_END};
    cli_sampling_init(&g_fmt, 0, 0);
    cli_opt fmt[CLI_SAMPLING_NOPTS];
    cli_sampling_table(&g_fmt, CLI_SAMPLING_FORMAT | CLI_SAMPLING_NO_SAMPLER, fmt);
    cli_group groups[] = {{NULL, own}, {"Output format of gen tasks (compare format validity with and without):", fmt}, {0}};
    cli_spec spec = {
        .cmd = "eval",
        .usage = "lmadapt eval --model M --task [TAG:]KIND:PATH [--task ...] [options]",
        .about = "Evaluates a model on a suite of tasks and prints a table (or JSON).\n"
                 "KIND:\n"
                 "  ppl:PATH    token-level perplexity of a text file (or every file of a folder), in\n"
                 "              sliding windows of the model context (see --ppl-window)\n"
                 "  mmlu:PATH   multiple choice in MMLU form: PATH holds dev/ and val/ or test/ folders of\n"
                 "              {subject}_{split}.csv (question,A,B,C,D,answer), or is one split folder;\n"
                 "              lm-evaluation-harness prompt, k shots from dev, log-likelihood of \" A\"..\" D\";\n"
                 "              per-subject, macro and micro accuracy; --mmlu-form cloze scores each answer's\n"
                 "              text instead (\"Question: ...\\nAnswer:\" + \" {choice}\", per character)\n"
                 "  gen:PATH    generation tasks from JSONL: {\"prompt\" or \"question\", \"answer\", \"check\"?,\n"
                 "              \"required_keys\"?, \"stop\"?}; checks exact, number (GSM8K \"#### N\"), json, yaml;\n"
                 "              with --judge also \"sources\"? and \"label\"? ({criterion: score})\n"
                 "  judge:PATH  the MODEL is a judge: JSONL {\"question\", \"response\", \"sources\"?, \"label\"?}\n"
                 "              scored on the --rubric; agreement with the labels (accuracy, Cohen's kappa)\n"
                 "  passkey     (no PATH) a 5-digit key hidden at --depths of filler text, --context tokens\n"
                 "              long; accuracy per length x depth (docs/eval.md, \"Passkey\")\n"
                 "TAG (optional): general or domain, for the --compare report (forgetting vs gain).\n",
        .groups = groups,
        .epilog = "Examples:\n"
                  "  lmadapt eval --model runs/sft/final --task mmlu:data/mmlu --shots 5\n"
                  "  lmadapt eval --model base --compare runs/sft/final \\\n"
                  "      --task general:mmlu:data/mmlu --task domain:gen:data/med_qa.jsonl --task general:ppl:wiki.txt\n"};
    cli_args a;
    int prc = cli_parse(&spec, argc, argv, &a);
    if (prc != CLI_CONTINUE) return prc;
    p.mode = (lma_eval_score_mode)mode;
    p.limit = (size_t)limit;
    if (general) {
        snprintf(general_spec, sizeof general_spec, "general:ppl:%s", general);
        if (task_l.n >= task_l.cap) return cli_usage_error("eval", "too many tasks with --general-text");
        task_v[task_l.n++] = general_spec;
    }
    if (!task_l.n) return cli_usage_error("eval", "give at least one --task KIND:PATH (ppl, mmlu, gen or judge)");
    int n_tasks = 0;
    for (int t = 0; t < task_l.n; t++) {
        if (lma_eval_task_parse(task_v[t], &tasks[n_tasks]) != LMA_OK)
            return cli_usage_error("eval", "--task %s: %s", task_v[t], lma_last_error());
        for (int i = 0; i < n_tasks; i++)
            if (!strcmp(tasks[i].name, tasks[n_tasks].name)) {
                int k = (int)strlen(tasks[n_tasks].name);
                snprintf(tasks[n_tasks].name + k, sizeof tasks[n_tasks].name - (size_t)k, "#%d", n_tasks + 1);
                break;
            }
        n_tasks++;
    }
    int n_pk = 0;
    for (int i = 0; i < n_tasks; i++) n_pk += tasks[i].kind == LMA_EVAL_PASSKEY;
    if (n_pk && !ctx_list) return cli_usage_error("eval", "--task passkey needs --context N[,N...]");
    if (!n_pk && (ctx_list || depth_list)) return cli_usage_error("eval", "--context and --depths are for --task passkey");
    for (const char *c = ctx_list; c && *c;) {
        char *e;
        long v = strtol(c, &e, 10);
        if (e == c || v < 16 || v > 10000000 || (*e && *e != ',') || p.n_passkey_ctx == 32)
            return cli_usage_error("eval", "--context %s: expected up to 32 lengths of 16 or more tokens, comma-separated", ctx_list);
        ctx_v[p.n_passkey_ctx++] = (int)v;
        c = *e ? e + 1 : e;
    }
    for (const char *c = depth_list; c && *c;) {
        char *e;
        double v = strtod(c, &e);
        if (e == c || !(v >= 0 && v <= 1) || (*e && *e != ',') || p.n_passkey_depths == 32)
            return cli_usage_error("eval", "--depths %s: expected up to 32 numbers in [0, 1], comma-separated", depth_list);
        depth_v[p.n_passkey_depths++] = v;
        c = *e ? e + 1 : e;
    }
    p.passkey_ctx = ctx_v;
    p.passkey_depths = depth_v;
    int n_gen = 0, n_judge = 0;
    for (int i = 0; i < n_tasks; i++) { n_gen += tasks[i].kind == LMA_EVAL_GEN; n_judge += tasks[i].kind == LMA_EVAL_JUDGE; }
    if (judge && !n_gen) return cli_usage_error("eval", "--judge scores gen tasks: give a --task gen:PATH");
    if ((judge || n_judge) && !rubric) return cli_usage_error("eval", "%s needs --rubric F.json", judge ? "--judge" : "a judge task");
    if (rubric && !judge && !n_judge) return cli_usage_error("eval", "--rubric is for --judge or judge:PATH tasks");
    if (sft_out && n_judge != 1) return cli_usage_error("eval", "--judge-sft-out needs exactly one judge:PATH task");
    if (cli_resolve_model("eval", &model) || (cmp && cli_resolve_model("eval", &cmp)) ||
        (judge && cli_resolve_model("eval", &judge)))
        return 1;
    lma_threads_set(threads);
    if (!(g_backend = cli_backend("eval", device))) return 1;
    p.progress = 1;
    if (out) { /* an unwritable --out fails now, not after the whole evaluation */
        lma_atomic_file probe;
        if (lma_atomic_open(&probe, out) != LMA_OK) return cli_fail("eval", NULL);
        lma_atomic_abort(&probe);
    }
    cJSON *schema_doc = NULL;
    const char *sp = check_schema ? check_schema : g_fmt.schema_path;
    if (sp) {
        int dummy;
        if (lma_json_load(sp, &schema_doc) != LMA_OK || lma_json_schema_check(schema_doc, "", 0, &dummy) != LMA_OK) {
            lma_error_replace(LMA_ERR_FORMAT, "%s: %s", sp, lma_last_error());
            cJSON_Delete(schema_doc);
            return cli_fail("eval", NULL);
        }
        p.gen_schema = schema_doc;
    }
    const char *gpath = check_grammar ? check_grammar : g_fmt.grammar_path;
    if (gpath) {
        char *gtext = NULL;
        size_t glen = 0;
        lma_status gs = lma_read_file(gpath, &gtext, &glen);
        if (gs == LMA_OK) gs = lma_grammar_compile(gtext, glen, gpath, NULL, &g_check_grammar);
        free(gtext);
        if (gs != LMA_OK) { cJSON_Delete(schema_doc); return cli_fail("eval", NULL); }
        p.gen_grammar = g_check_grammar;
    }
    lma_model *jm = NULL;
    lma_tokenizer *jt = NULL;
    lma_eval_judge *jd = NULL;
    if (rubric && lma_rubric_load(rubric, &g_rubric) != LMA_OK) { cJSON_Delete(schema_doc); return cli_fail("eval", NULL); }
    p.rubric = rubric ? &g_rubric : NULL;
    for (int i = 0; sft_out && i < n_tasks; i++) {
        long w, sk;
        if (tasks[i].kind != LMA_EVAL_JUDGE) continue;
        if (lma_judge_sft_write(&g_rubric, tasks[i].path, sft_out, &w, &sk) != LMA_OK) {
            lma_rubric_free(&g_rubric);
            cJSON_Delete(schema_doc);
            return cli_fail("eval", NULL);
        }
        fprintf(stderr, "[lmadapt eval] %s: %ld SFT examples (%ld records without a full label skipped)\n", sft_out, w, sk);
    }
    if (judge) { /* loaded once, for every suite */
        int32_t jeos[16];
        int ok = load_model(judge, NULL, &jm, &jt);
        if (ok) ok = lma_eval_judge_new(jm, jt, &g_rubric, jeos, lma_generation_eos(judge, &jm->cfg, jeos, 16), &jd) == LMA_OK;
        if (!ok) {
            cli_fail("eval", NULL);
            lma_model_free(jm); lma_tok_free(jt); lma_rubric_free(&g_rubric); cJSON_Delete(schema_doc);
            return 1;
        }
        p.judge = jd;
    }
    static lma_eval_result ra[MAX_TASKS], rb[MAX_TASKS];
    int two = cmp || cadapter, rc = 1;
    const char *dir_b = cmp ? cmp : model;
    char name_a[8400], name_b[8400];
    snprintf(name_a, sizeof name_a, "%s%s%s", model, adapter ? " + adapter " : "", adapter ? adapter : "");
    snprintf(name_b, sizeof name_b, "%s%s%s", dir_b, cadapter ? " + adapter " : "", cadapter ? cadapter : "");
    if (!run_suite(model, adapter, tasks, n_tasks, p, ra, two)) goto done;
    if (two && !run_suite(dir_b, cadapter, tasks, n_tasks, p, rb, 1)) goto done;
    cJSON *root = cJSON_CreateObject(), *arr;
    if (!root) { lma_error(LMA_ERR_NOMEM, "out of memory"); goto done; }
    cJSON_AddStringToObject(root, "model", name_a);
    arr = cJSON_AddArrayToObject(root, "results");
    for (int i = 0; arr && i < n_tasks; i++) cJSON_AddItemToArray(arr, lma_eval_result_json(&ra[i]));
    if (two) {
        cJSON_AddStringToObject(root, "compare_model", name_b);
        arr = cJSON_AddArrayToObject(root, "compare_results");
        for (int i = 0; arr && i < n_tasks; i++) cJSON_AddItemToArray(arr, lma_eval_result_json(&rb[i]));
        cJSON_AddItemToObject(root, "compare", lma_eval_compare_json(ra, rb, (size_t)n_tasks));
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) { lma_error(LMA_ERR_NOMEM, "out of memory"); goto done; }
    if (out && lma_write_file_atomic(out, text, strlen(text)) != LMA_OK) { free(text); goto done; } /* printed at done */
    if (json) {
        printf("%s\n", text);
    } else {
        printf("A = %s\n", name_a);
        for (int i = 0; i < n_tasks; i++) print_result(&ra[i]);
        if (two) {
            printf("\nB = %s\n", name_b);
            for (int i = 0; i < n_tasks; i++) print_result(&rb[i]);
            print_compare(ra, rb, n_tasks, name_a, name_b);
        }
    }
    free(text);
    rc = 0;
done:
    if (rc) cli_fail("eval", NULL);
    for (int i = 0; i < n_tasks; i++) { lma_eval_result_free(&ra[i]); lma_eval_result_free(&rb[i]); }
    lma_eval_judge_free(jd);
    lma_model_free(jm);
    lma_tok_free(jt);
    lma_rubric_free(&g_rubric);
    cJSON_Delete(schema_doc);
    lma_grammar_free(g_check_grammar);
    g_check_grammar = NULL;
    return rc;
}
