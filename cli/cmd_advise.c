/* lmadapt advise: which adaptation method, why, at what cost (src/advise/advise.h,
 * docs/advise.md). Flags, or questions when run on a terminal without any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "advise/advise.h"
#include "cli.h"
#include "core/threads.h"
#include "ladder.h"
#include "model/weight_source.h"
#include "opts.h"

static const char *const task_choices[] = {"qa", "format", "tone", "skill", "domain", "language", "judge", NULL};
static const char *const knowledge_choices[] = {"static", "dynamic", NULL};

/* one answer from the terminal: the line without its newline, "" at EOF */
static void ask(const char *q, const char *def, char *out, size_t cap) {
    printf("%s [%s]: ", q, def);
    fflush(stdout);
    if (!fgets(out, (int)cap, stdin)) out[0] = 0;
    out[strcspn(out, "\r\n")] = 0;
    if (!out[0]) snprintf(out, cap, "%s", def);
}

static int choice_of(const char *const *names, const char *s) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static void interview(lma_advise_in *in, const char **model_out, char *model_buf, size_t cap) {
    char b[256];
    printf("lmadapt advise: a few questions (Enter takes the default; flags skip them: lmadapt advise --help)\n");
    for (;;) {
        ask("task: qa | format | tone | skill | domain | language | judge", "format", b, sizeof b);
        int t = choice_of(task_choices, b);
        if (t >= 0) { in->task = (lma_task)t; break; }
    }
    ask("does the knowledge it needs change over time? static | dynamic", "static", b, sizeof b);
    in->knowledge = !strcmp(b, "dynamic");
    ask("labelled examples (input -> output)", "0", b, sizeof b);
    in->labelled = atof(b);
    ask("unlabelled tokens of domain or language text", "0", b, sizeof b);
    in->unlabelled_tokens = atof(b);
    ask("model (folder, .gguf, short name) or parameter count like 7e9", "7e9", b, sizeof b);
    char *end;
    double p = strtod(b, &end);
    if (*end == 0 && p > 0) in->params = p;
    else { snprintf(model_buf, cap, "%s", b); *model_out = model_buf; }
    ask("GPUs", "1", b, sizeof b);
    in->gpus = atoi(b);
    ask("memory per GPU in GiB (0 = no GPU)", "80", b, sizeof b);
    in->gpu_mem_gb = atof(b);
    ask("GPU hours you can spend (0 = no limit given)", "0", b, sizeof b);
    in->gpu_hours = atof(b);
}

int cmd_advise(int argc, char **argv) {
    lma_advise_in in = lma_advise_default_in();
    const char *model = NULL;
    int task = (int)in.task, json = 0, gpus = in.gpus, measure_on = 0, threads = 0;
    double labelled = 0, examples = 0, unl = 0, params = 0;
    const char *task_s = NULL;
    cli_ladder L;
    cli_ladder_defaults(&L);
    L.out = "advise-run";
    cli_opt own[] = {
        CLI_STR("task", 0, &task_s, "T", "what the model must learn: qa (answers from documents), format, tone,\n"
                "skill, domain, language, judge; with --measure: the eval set, JSONL {\"input\", \"output\"}",
                .def_text = "format"),
        CLI_CHOOSE("knowledge", 0, &in.knowledge, knowledge_choices, NULL, NULL, "does the knowledge change over time"),
        CLI_REALV("labelled", 0, &labelled, 0, 1e15, "N", "labelled examples (input -> output)"),
        CLI_REALV("examples", 0, &examples, 0, 1e15, "N", "examples at hand for prompts"),
        CLI_REALV("unlabelled-tokens", 0, &unl, 0, 1e16, "N", "raw domain or language text, in tokens"),
        CLI_REALV("params", 0, &params, 0, 1e14, "N", "model parameters (a Llama-shaped model of that size)",
                  .def_text = "7e9 unless --model"),
        CLI_STR("model", 0, &model, "M", "the model: HF folder (config.json is enough), .gguf or short name"),
        CLI_INT("gpus", 0, &gpus, 0, 1 << 20, "N", "GPUs"),
        CLI_REALV("gpu-mem", 0, &in.gpu_mem_gb, 0, 1e6, "GB", "memory per GPU in GiB (0 = no GPU)"),
        CLI_REALV("gpu-hours", 0, &in.gpu_hours, 0, 1e12, "H", "GPU hours you can spend (0 = not given)"),
        CLI_REALV("latency-ms", 0, &in.latency_ms, 0, 1e9, "MS", "latency budget per query (0 = not given)"),
        CLI_REALV("cost-per-1k-tokens", 0, &in.cost_per_1k, 0, 1e9, "X", "price of 1000 prompt tokens (0 = not given)"),
        CLI_INT("seq", 0, &in.seq, 16, 1 << 20, "T", "training sequence length for the memory plan"),
        CLI_INT("example-tokens", 0, &in.tokens_per_example, 1, 1 << 20, "N", "mean tokens of an example"),
        CLI_INT("epochs", 0, &in.epochs, 1, 1000, "N", "passes over the labelled data"),
        CLI_REALV("mfu", 0, &in.mfu, 0, 1, "X", "model FLOPs utilisation for the GPU hours", .flags = CLI_MIN_OPEN),
        CLI_REALV("gpu-tflops", 0, &in.gpu_tflops, 0, 1e9, "X", "dense bf16 TFLOP/s of one GPU (H100: 989)",
                  .flags = CLI_MIN_OPEN),
        CLI_OPT_JSON(&json, "print {\"method\", \"alternatives\", \"reasons\", \"peak_gib\", \"gpu_hours\", \"next\", ...}\n"
                     "(with --measure: summary.json)"),
        CLI_END};
    cli_opt meas[] = {
        CLI_BOOL("measure", 0, &measure_on, "run the ladder on --task T.jsonl with --model M instead of the flow"),
        CLI_STR("pool", 0, &L.pool, "P", "examples for the ICL shots (knn), JSONL {\"input\", \"output\"}",
                .def_text = "--train", .flags = CLI_IN),
        CLI_STR("docs", 0, &L.docs, "DIR", "documents for the RAG rung (a file or folder: .txt .md .html .jsonl)",
                .flags = CLI_IN),
        CLI_STR("train", 0, &L.train, "F", "training set of the LoRA rung, JSONL {\"input\", \"output\"}", .flags = CLI_IN),
        CLI_STR("general-text", 0, &L.general, "FILE", "held-out general text: perplexity before/after LoRA", .flags = CLI_IN),
        CLI_STR("mmlu", 0, &L.mmlu, "DIR", "MMLU folder (val/ dev/ CSVs): cloze accuracy before/after LoRA",
                .flags = CLI_IN),
        CLI_STR("embed", 0, &L.embed, "M", "embedding model of the RAG rung and the knn shots"),
        CLI_STR("out", 'o', &L.out, "DIR", "run folder: rungs/, lora/, docs.sqlite, summary.json", .flags = CLI_OUT),
        CLI_INT("shots", 0, &L.shots, 0, 64, "K", "ICL shots"),
        CLI_INT("k", 'k', &L.k, 1, 32, "N", "RAG sources"),
        CLI_INT("max-tokens", 0, &L.max_tokens, 1, 4096, "N", "tokens per answer"),
        CLI_INT("limit", 0, &L.limit, 0, 1000000, "N", "the first N questions of --task (0 = all)"),
        CLI_INT("lora-steps", 0, &L.lora_steps, 1, 1000000, "N", "optimizer steps of the LoRA run"),
        CLI_INT("mmlu-limit", 0, &L.mmlu_limit, 1, 1000000, "N", "MMLU items per subject"),
        CLI_REALV("budget-minutes", 0, &L.budget_minutes, 0, 1e6, "N", "start no rung after N minutes (0 = no limit)"),
        CLI_BOOL("fresh", 0, &L.fresh, "measure every rung again (default: reuse those in --out)"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&L.device),
        CLI_OPT_DEQUANTIZE(&L.dequantize),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {"Measured ladder (--measure):", meas}, {0}};
    cli_spec spec = {
        .cmd = "advise",
        .usage = "lmadapt advise [--task T] [--knowledge static|dynamic] [--labelled N] [--unlabelled-tokens N]\n"
                 "                [--params N | --model M] [--gpus N] [--gpu-mem GB] [--gpu-hours H] [--json] ...",
        .about = "Recommends an adaptation method (icl, rag, lora, qlora, full, cpt, pretrain, or a hybrid\n"
                 "such as rag+lora) from the task, the data and the compute, following the seed's decision\n"
                 "flow: the reasons, the training cost (6 N D FLOPs at the stated MFU -> GPU hours), the peak\n"
                 "memory (lmadapt mem), the prompt-token overhead of ICL and RAG, and the next command.\n"
                 "On a terminal without flags it asks. docs/advise.md gives the reasoning of each branch.\n",
        .groups = groups,
        .epilog = "Examples:\n  lmadapt advise --task qa --knowledge dynamic\n"
                  "  lmadapt advise --task format --labelled 2000 --params 7e9 --gpu-mem 24\n"
                  "  lmadapt advise --task language --unlabelled-tokens 2e10 --gpu-hours 20000 --json\n"
                  "  lmadapt advise --measure --model smollm2-135m-instruct --task eval.jsonl --train train.jsonl \\\n"
                  "      --docs docs/ --general-text general.txt --mmlu tests/data/mmlu\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (measure_on) {
        if (!model || !task_s) return cli_usage_error("advise", "--measure needs --model M and --task T.jsonl");
        L.model_name = model;
        if (cli_resolve_model("advise", &model)) return 1;
        lma_threads_set(threads);
        L.model = model, L.task = task_s, L.task_name = task_s, L.json = json;
        return cli_ladder_run(&L);
    }
    if (task_s && (task = choice_of(task_choices, task_s)) < 0)
        return cli_usage_error("advise", "--task %s: expected qa | format | tone | skill | domain | language | judge "
                               "(or a JSONL eval set with --measure)", task_s);
    char mbuf[4096];
    in.task = (lma_task)task;
    in.labelled = labelled;
    in.examples = examples;
    in.unlabelled_tokens = unl;
    in.params = params;
    in.gpus = gpus;
    if (argc == 1 && isatty(0) && isatty(1)) {
        interview(&in, &model, mbuf, sizeof mbuf);
        printf("\n");
    }
    if (model && params > 0) return cli_usage_error("advise", "give --params or --model, not both");
    lma_config c;
    if (model) {
        if (cli_resolve_model("advise", &model)) return 1;
        if (lma_model_config_load(model, &c) != LMA_OK) return cli_fail("advise", NULL);
        in.cfg = &c;
        in.model = model;
    }
    lma_advice r;
    if (lma_advise(&in, &r) != LMA_OK) return cli_fail("advise", NULL);
    if (json) {
        /* every string is the advisor's own text or a model path: escape quotes and backslashes */
        printf("{\"method\": \"%s\", \"alternatives\": [", r.method);
        for (int i = 0; i < r.n_alt; i++) printf("%s\"%s\"", i ? ", " : "", r.alternatives[i]);
        printf("], \"reasons\": [");
        for (int i = 0; i < r.n_reasons; i++) {
            printf("%s\"", i ? ", " : "");
            for (const char *s = r.reasons[i]; *s; s++) printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
            printf("\"");
        }
        printf("], \"peak_gib\": ");
        if (r.peak_gib >= 0) printf("%.2f", r.peak_gib);
        else printf("null");
        printf(", \"grad_ckpt\": %s, \"gpu_hours\": %.3g, \"train_tokens\": %.3g, \"prompt_tokens_per_query\": %.0f, "
               "\"cost_per_query\": %.6g, \"params\": %.0f, \"mfu\": %.2f, \"next\": \"",
               r.grad_ckpt ? "true" : "false", r.gpu_hours, r.train_tokens, r.prompt_tokens, r.cost_per_query,
               r.n_params, in.mfu);
        for (const char *s = r.next; *s; s++) printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
        printf("\"}\n");
        return 0;
    }
    printf("method: %s\n", r.method);
    if (r.n_alt) {
        printf("alternatives:");
        for (int i = 0; i < r.n_alt; i++) printf(" %s", r.alternatives[i]);
        printf("\n");
    }
    printf("why:\n");
    for (int i = 0; i < r.n_reasons; i++) printf("  - %s\n", r.reasons[i]);
    printf("model: %.2fB parameters\n", r.n_params / 1e9);
    if (r.peak_gib >= 0)
        printf("peak memory: %.1f GiB per GPU%s (lmadapt mem, with the CUDA context)\n", r.peak_gib,
               r.grad_ckpt ? " with --grad-ckpt" : "");
    if (r.gpu_hours > 0)
        printf("training cost: 6 N D = %.3g FLOPs over %.3g tokens = %.3g GPU hours at MFU %.2f of %.0f TFLOP/s\n",
               6 * r.n_params * r.train_tokens, r.train_tokens, r.gpu_hours, in.mfu, in.gpu_tflops);
    if (r.prompt_tokens > 0) {
        printf("prompt overhead: ~%.0f tokens per query", r.prompt_tokens);
        if (r.cost_per_query > 0) printf(" = %.4g per query, %.4g per 1000 queries", r.cost_per_query, 1000 * r.cost_per_query);
        printf("\n");
    }
    printf("next: %s\n", r.next);
    return 0;
}
