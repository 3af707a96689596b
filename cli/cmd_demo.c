/* lmadapt demo: the main job. The adaptation ladder (cli/ladder.h) on SmolLM2-135M-Instruct
 * with all-MiniLM-L6-v2, on a task embedded in the binary: questions about lmadapt itself,
 * answered as {"command", "flag"} JSON from its own documentation (data/demo, docs/demo.md).
 * The files it needs (task, documentation, general text, MMLU validation CSVs) are written
 * into the run folder from the binary; the models come from scripts/fetch-models.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/threads.h"
#include "ladder.h"
#include "opts.h"

extern const struct { const char *name; const unsigned char *data; size_t len; } lma_demo_files[];
extern const size_t lma_demo_n_files;

/* writes the embedded files under OUT/data, each only when its content differs (the RAG
 * index re-reads changed files only) */
static int write_files(const char *out) {
    for (size_t i = 0; i < lma_demo_n_files; i++) {
        char path[4200], dir[4200];
        snprintf(path, sizeof path, "%s/data/%s", out, lma_demo_files[i].name);
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = 0;
        char *old = NULL;
        size_t n = 0;
        int same = lma_file_exists(path) && lma_read_file(path, &old, &n) == LMA_OK && n == lma_demo_files[i].len &&
                   !memcmp(old, lma_demo_files[i].data, n);
        lma_clear_error();
        free(old);
        if (same) continue;
        if (lma_mkdir_p(dir) != LMA_OK ||
            lma_write_file_atomic(path, lma_demo_files[i].data, lma_demo_files[i].len) != LMA_OK)
            return cli_fail("demo", NULL);
    }
    return 0;
}

int cmd_demo(int argc, char **argv) {
    cli_ladder L;
    cli_ladder_defaults(&L);
    L.cmd = "demo";
    L.out = "lmadapt-demo";
    L.task_name = "lmadapt flags as JSON ({\"command\", \"flag\"}) from lmadapt's docs";
    const char *model = "smollm2-135m-instruct";
    int threads = 0;
    cli_opt own[] = {
        CLI_STR("out", 'o', &L.out, "DIR", "run folder: data/, rungs/, lora/, docs.sqlite, summary.json"),
        CLI_STR("model", 0, &model, "M", "chat model (HF folder, .gguf or short name)"),
        CLI_STR("embed", 0, &L.embed, "M", "embedding model of the RAG rung and the knn shots"),
        CLI_INT("limit", 0, &L.limit, 0, 1000000, "N", "questions of the eval set (0 = all 24)"),
        CLI_INT("shots", 0, &L.shots, 0, 64, "K", "ICL shots"),
        CLI_INT("lora-steps", 0, &L.lora_steps, 1, 1000000, "N", "optimizer steps of the LoRA run"),
        CLI_INT("mmlu-limit", 0, &L.mmlu_limit, 1, 1000000, "N", "MMLU items per subject (57 subjects)"),
        CLI_BOOL("fresh", 0, &L.fresh, "measure every rung again (default: reuse those already in --out)"),
        CLI_OPT_JSON(&L.json, "print summary.json instead of the table"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&L.device),
        CLI_OPT_DEQUANTIZE(&L.dequantize),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "demo",
        .usage = "lmadapt demo [--out DIR] [--device D] [--fresh] [options]",
        .about = "The adaptation ladder on a real model, in minutes on a laptop CPU: SmolLM2-135M-Instruct answers\n"
                 "questions about lmadapt's own flags as JSON ({\"command\", \"flag\"}), zero-shot, with 4 in-context\n"
                 "examples, with retrieval over lmadapt's documentation, after a short LoRA run on 42 training\n"
                 "questions, and with both; each rung scored on 24 held-out questions (exact fields and format\n"
                 "validity), and what the LoRA model forgot (perplexity on general text, MMLU in cloze form).\n"
                 "Prints the table and a recommendation, writes DIR/summary.json. Needs the models of\n"
                 "scripts/fetch-models.sh; everything else is inside the binary. docs/demo.md explains it.\n",
        .groups = groups,
        .epilog = "Then: lmadapt generate --model smollm2-135m-instruct --adapter DIR/lora/final --prompt ...\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    L.model_name = model;
    if (cli_resolve_model("demo", &model)) return 1;
    lma_threads_set(threads);
    if ((rc = write_files(L.out)) != 0) return rc;
    static char task[4300], train[4300], docs[4300], general[4300], mmlu[4300];
    snprintf(task, sizeof task, "%s/data/eval.jsonl", L.out);
    snprintf(train, sizeof train, "%s/data/train.jsonl", L.out);
    snprintf(docs, sizeof docs, "%s/data/docs", L.out);
    snprintf(general, sizeof general, "%s/data/general.txt", L.out);
    snprintf(mmlu, sizeof mmlu, "%s/data/mmlu", L.out);
    L.model = model, L.task = task, L.train = train, L.docs = docs, L.general = general, L.mmlu = mmlu;
    return cli_ladder_run(&L);
}
