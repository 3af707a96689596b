/* lmadapt eval: perplexity, MMLU-form multiple choice and generation tasks on one
 * model, or two models side by side (--compare: the forgetting report). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "core/io.h"
#include "core/threads.h"
#include "eval/eval.h"
#include "eval/gencheck.h"
#include "infer/generate.h"
#include "model/adapter.h"

#define MAX_TASKS 64

static void help(void) {
    printf("Usage: lmadapt eval --model M --task [TAG:]KIND:PATH [--task ...] [options]\n\n"
           "Evaluates a Hugging Face model dir on a suite of tasks and prints a table (or JSON).\n"
           "KIND:\n"
           "  ppl:PATH    token-level perplexity of a text file (or every file of a folder), in\n"
           "              sliding windows of the model context (see --ppl-window)\n"
           "  mmlu:PATH   multiple choice in MMLU form: PATH holds dev/ and val/ or test/ folders of\n"
           "              {subject}_{split}.csv (question,A,B,C,D,answer), or is one split folder;\n"
           "              lm-evaluation-harness prompt, k shots from dev, log-likelihood of \" A\"..\" D\";\n"
           "              per-subject, macro and micro accuracy\n"
           "  gen:PATH    generation tasks from JSONL: {\"prompt\" or \"question\", \"answer\", \"check\"?,\n"
           "              \"required_keys\"?, \"stop\"?}; checks exact, number (GSM8K \"#### N\"), json, yaml\n"
           "TAG (optional): general or domain, for the --compare report (forgetting vs gain).\n\n"
           "Options:\n"
           "  --model M             HF model folder, .gguf file or short name (docs/models.md)\n"
           "  --adapter DIR         apply a PEFT LoRA adapter to --model\n"
           "  --task SPEC           a task (repeatable, up to %d)\n"
           "  --compare DIR2        also evaluate DIR2 on the same suite and print the deltas\n"
           "  --compare-adapter DIR also evaluate --model (or DIR2) with this adapter; e.g. the base\n"
           "                        model against base + adapter\n"
           "  --shots K             MMLU shots from the dev split (default 5)\n"
           "  --split NAME          MMLU split to evaluate (default: test, else val, else dev)\n"
           "  --limit N             at most N items per MMLU subject / gen file, N tokens per ppl file\n"
           "  --scoring kv|full     MMLU scoring: one prefill shared by the 4 choices with the KV cache\n"
           "                        (default), or one full forward per choice\n"
           "  --ppl-window W        perplexity window in tokens (default: the model context)\n"
           "  --ppl-stride S        window advance (default W/2; every token is scored once)\n"
           "  --max-tokens N        gen: tokens to generate at most (default 256)\n"
           "  --check NAME          gen: force one check (exact, number, json, yaml) for every record\n"
           "  --chat                gen: send each prompt as a user turn of the chat template\n"
           "  --json                print the results as JSON\n"
           "  --out FILE            also write the JSON to FILE (atomically)\n"
           "  --threads N           CPU threads\n"
           "  --device D            cpu | cuda | cuda-fp32 (default: cuda if a GPU)\n"
           "  -h, --help            this help\n\n"
           "Examples:\n"
           "  lmadapt eval --model runs/sft/final --task mmlu:data/mmlu --shots 5\n"
           "  lmadapt eval --model base --compare runs/sft/final \\\n"
           "      --task general:mmlu:data/mmlu --task domain:gen:data/med_qa.jsonl --task general:ppl:wiki.txt\n",
           MAX_TASKS);
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static const lma_backend *g_backend; /* --device */

static int load_model(const char *dir, const char *adapter, lma_model **m, lma_tokenizer **tok) {
    *m = NULL; *tok = NULL;
    if (lma_tok_load(dir, tok) != LMA_OK) return 0;
    if (lma_model_load_ex(dir, g_backend ? g_backend : lma_backend_cpu(), LMA_MODEL_FROZEN, m) != LMA_OK) return 0;
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
    }
    for (int i = 0; ok && i < n; i++) {
        if (verbose) fprintf(stderr, "[lmadapt eval] %s%s%s: %s\n", dir, adapter ? " + " : "", adapter ? adapter : "",
                             tasks[i].name);
        ok = lma_eval_run(m, tok, &tasks[i], &p, &res[i]) == LMA_OK;
    }
    lma_model_free(m);
    lma_tok_free(tok);
    return ok;
}

static void print_result(const lma_eval_result *r) {
    if (r->task.kind == LMA_EVAL_PPL) {
        printf("%-28s %-8s ppl %10.4f   tokens %ld   bits/byte %.4f   (%.1fs)\n", r->task.name,
               lma_eval_tag_name(r->task.tag), r->score, r->tokens,
               r->bytes ? r->nll / 0.6931471805599453 / (double)r->bytes : 0.0, r->seconds);
        return;
    }
    printf("%-28s %-8s acc %10.4f   %ld/%ld", r->task.name, lma_eval_tag_name(r->task.tag), r->score, r->correct, r->n);
    if (r->task.kind == LMA_EVAL_MMLU) printf("   macro %.4f   subjects %zu", r->macro, r->n_groups);
    else if (r->valid) printf("   parsable %ld", r->valid);
    printf("   (%.1fs)\n", r->seconds);
    if (r->task.kind == LMA_EVAL_MMLU || r->n_groups > 1)
        for (size_t g = 0; g < r->n_groups; g++)
            printf("    %-40s %7.4f  %ld/%ld\n", r->groups[g].name,
                   r->groups[g].n ? (double)r->groups[g].correct / (double)r->groups[g].n : 0.0, r->groups[g].correct,
                   r->groups[g].n);
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
}

int cmd_eval(int argc, char **argv) {
    enum { O_MODEL = 1, O_ADAPTER, O_TASK, O_COMPARE, O_CADAPTER, O_SHOTS, O_SPLIT, O_LIMIT, O_SCORING, O_PWIN,
           O_PSTRIDE, O_MAXTOK, O_CHECK, O_CHAT, O_JSON, O_OUT, O_THREADS, O_DEVICE, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL}, {"adapter", required_argument, 0, O_ADAPTER},
        {"task", required_argument, 0, O_TASK}, {"compare", required_argument, 0, O_COMPARE},
        {"compare-adapter", required_argument, 0, O_CADAPTER}, {"shots", required_argument, 0, O_SHOTS},
        {"split", required_argument, 0, O_SPLIT}, {"limit", required_argument, 0, O_LIMIT},
        {"scoring", required_argument, 0, O_SCORING}, {"ppl-window", required_argument, 0, O_PWIN},
        {"ppl-stride", required_argument, 0, O_PSTRIDE}, {"max-tokens", required_argument, 0, O_MAXTOK},
        {"check", required_argument, 0, O_CHECK}, {"chat", no_argument, 0, O_CHAT},
        {"json", no_argument, 0, O_JSON}, {"out", required_argument, 0, O_OUT},
        {"threads", required_argument, 0, O_THREADS}, {"device", required_argument, 0, O_DEVICE},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    const char *device = NULL;
    const char *model = NULL, *adapter = NULL, *cmp = NULL, *cadapter = NULL, *out = NULL;
    static lma_eval_task tasks[MAX_TASKS];
    int n_tasks = 0, json = 0, c;
    long v, threads = 0;
    lma_eval_params p = lma_eval_default_params();
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_ADAPTER: adapter = optarg; break;
        case O_COMPARE: cmp = optarg; break;
        case O_CADAPTER: cadapter = optarg; break;
        case O_TASK:
            if (n_tasks == MAX_TASKS) return cli_usage_error("eval", "at most %d --task", MAX_TASKS);
            if (lma_eval_task_parse(optarg, &tasks[n_tasks]) != LMA_OK) return cli_usage_error("eval", "%s", lma_last_error());
            for (int i = 0; i < n_tasks; i++)
                if (!strcmp(tasks[i].name, tasks[n_tasks].name)) {
                    int k = (int)strlen(tasks[n_tasks].name);
                    snprintf(tasks[n_tasks].name + k, sizeof tasks[n_tasks].name - (size_t)k, "#%d", n_tasks + 1);
                    break;
                }
            n_tasks++;
            break;
        case O_SHOTS: if (!parse_int(optarg, 0, 64, &v)) return cli_usage_error("eval", "--shots must be 0..64"); p.shots = (int)v; break;
        case O_SPLIT: p.mmlu_split = optarg; break;
        case O_LIMIT: if (!parse_int(optarg, 1, 1L << 40, &v)) return cli_usage_error("eval", "--limit must be a positive integer"); p.limit = (size_t)v; break;
        case O_SCORING:
            if (!strcmp(optarg, "kv")) p.mode = LMA_EVAL_SCORE_KV;
            else if (!strcmp(optarg, "full")) p.mode = LMA_EVAL_SCORE_FULL;
            else return cli_usage_error("eval", "--scoring must be kv or full");
            break;
        case O_PWIN: if (!parse_int(optarg, 2, 1 << 24, &v)) return cli_usage_error("eval", "--ppl-window must be >= 2"); p.ppl_window = (int)v; break;
        case O_PSTRIDE: if (!parse_int(optarg, 1, 1 << 24, &v)) return cli_usage_error("eval", "--ppl-stride must be >= 1"); p.ppl_stride = (int)v; break;
        case O_MAXTOK: if (!parse_int(optarg, 1, 1 << 20, &v)) return cli_usage_error("eval", "--max-tokens must be >= 1"); p.gen_max_tokens = (int)v; break;
        case O_CHECK:
            if ((p.gen_check = lma_gen_check_from_name(optarg)) < 0)
                return cli_usage_error("eval", "--check must be exact, number, json or yaml");
            break;
        case O_CHAT: p.chat = 1; break;
        case O_JSON: json = 1; break;
        case O_OUT: out = optarg; break;
        case O_DEVICE: device = optarg; break;
        case O_THREADS: if (!parse_int(optarg, 0, 4096, &threads)) return cli_usage_error("eval", "--threads must be >= 0"); break;
        case 'h': case O_HELP: help(); return 0;
        default: return cli_usage_error("eval", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("eval", "--model is required");
    if (cli_resolve_model("eval", &model) || (cmp && cli_resolve_model("eval", &cmp))) return 1;
    if (!n_tasks) return cli_usage_error("eval", "give at least one --task KIND:PATH (ppl, mmlu or gen)");
    lma_threads_set((int)threads);
    if (!(g_backend = cli_backend("eval", device))) return 1;
    p.progress = 1;
    static lma_eval_result ra[MAX_TASKS], rb[MAX_TASKS];
    int two = cmp || cadapter, rc = 1;
    const char *dir_b = cmp ? cmp : model;
    char name_a[8400], name_b[8400];
    snprintf(name_a, sizeof name_a, "%s%s%s", model, adapter ? " + adapter " : "", adapter ? adapter : "");
    snprintf(name_b, sizeof name_b, "%s%s%s", dir_b, cadapter ? " + adapter " : "", cadapter ? cadapter : "");
    if (!run_suite(model, adapter, tasks, n_tasks, p, ra, two)) goto done;
    if (two && !run_suite(dir_b, cadapter, tasks, n_tasks, p, rb, 1)) goto done;
    cJSON *root = cJSON_CreateObject(), *arr;
    if (!root) { cli_fail("eval", "out of memory"); goto done; }
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
    if (!text) { cli_fail("eval", "out of memory"); goto done; }
    if (out && lma_write_file_atomic(out, text, strlen(text)) != LMA_OK) { free(text); cli_fail("eval", NULL); goto done; }
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
    return rc;
}
