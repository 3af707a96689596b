/* lmadapt: the command-line entry point. A table of subcommands; each lives in
 * cli/cmd_<name>.c and declares its options as a table for cli/opts.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "dist.h"
#include "core/model_path.h"
#include "core/outdir.h"
#include "backend/backend.h"

static const lma_cli_command commands[] = {
    {"demo", "the main job: pretrain a tiny model on lmadapt's docs, then sample (CPU, no download)", cmd_demo},
    {"pretrain", "pretrain a model from scratch on text (CPU)", cmd_pretrain},
    {"cpt", "continued pretraining on domain text with replay against forgetting", cmd_cpt},
    {"tokenizer", "encode, decode, train tokenizers; render chat templates (HF-exact)", cmd_tokenizer},
    {"sft", "supervised fine-tuning on chat data (loss on assistant turns)", cmd_sft},
    {"dpo", "preference fine-tuning (DPO, IPO, hinge) on chosen/rejected pairs", cmd_dpo},
    {"merge", "merge a LoRA adapter into its base model (writes a full HF model)", cmd_merge},
    {"export", "write a model or LoRA adapter as GGUF for llama.cpp / Ollama (+ a Modelfile)", cmd_export},
    {"generate", "continue a prompt (KV cache; greedy, temperature, top-k/p, min-p)", cmd_generate},
    {"chat", "interactive chat with the model's template (/reset, /system, /exit)", cmd_chat},
    {"score", "log-probability of each token, total NLL and perplexity", cmd_score},
    {"embed", "sentence embeddings (sentence-transformers models: all-MiniLM-L6-v2, BERT family)", cmd_embed},
    {"eval", "evaluate: perplexity, MMLU-form multiple choice, generation tasks; --compare for forgetting", cmd_eval},
    {"serve", "OpenAI-compatible HTTP server (chat/completions, streaming, continuous batching)", cmd_serve},
    {"rag", "retrieval-augmented generation: index documents (SQLite), search, ask with citations, eval", cmd_rag},
    {"icl", "in-context learning: build k-shot prompts from a pool (random, fixed, bm25, mmr), eval exact match", cmd_icl},
    {"advise", "which adaptation method (icl, rag, lora, qlora, full, cpt, pretrain), why, at what cost", cmd_advise},
    {"mem", "peak memory of a training or inference run, from lmadapt's allocation plan (before loading)", cmd_mem},
    {"data", "dataset curation: validate, stats, dedup, filter, decontam, split", cmd_data},
    {"report", "one self-contained HTML page of runs: curves, ladder, forgetting, settings", cmd_report},
    {"launch", "data-parallel training on N processes: lmadapt launch -n N -- lmadapt sft ... (MPI, NCCL)", cmd_launch},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

int cli_fail(const char *cmd, const char *msg) {
    const char *m = msg ? msg : lma_last_error();
    fprintf(stderr, "lmadapt %s: %s\n", cmd, (m && *m) ? m : "failed");
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lmadapt %s: ", cmd);
    va_start(ap, fmt); vfprintf(stderr, fmt, ap); va_end(ap);
    fprintf(stderr, "\nTry 'lmadapt %s --help'.\n", cmd);
    return 2;
}

const struct lma_backend *cli_backend(const char *cmd, const char *device) {
    const lma_backend *be = NULL;
    if (lma_backend_select(device, &be) != LMA_OK) cli_fail(cmd, NULL);
    return be;
}

int cli_resolve_model(const char *cmd, const char **model) {
    static char paths[4][4096]; /* --model and --compare of one command */
    static int next;
    char *p = paths[next++ % 4];
    if (lma_model_path_resolve(*model, p, sizeof paths[0]) != LMA_OK) return cli_fail(cmd, NULL);
    *model = p;
    return 0;
}

int cli_parse_ids(const char *s, int32_t **out, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    const char *p = s;
    while (v && *p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 2147483647L) break;
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) break;
        if (!*p) { *out = v; *n = k; return 1; }
    }
    free(v);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "lmadapt %s — adapt large language models (Llama, Mistral, Qwen) in C\n\n"
               "Usage: lmadapt <command> [options]\n       lmadapt <command> --help\n\nCommands:\n",
            lma_version());
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOptions:\n  -h, --help     this help\n  -V, --version  print the version\n"
               "\nEnvironment: LMA_THREADS (CPU threads), LMA_LOG (error|warn|info|debug), LMA_QUIET (no progress)\n");
}

/* OpenMP threads that spin while waiting cost whole scheduler slices when the
 * cores are shared (measured: a small training run 9x slower on a loaded
 * 2-core machine). libgomp reads OMP_WAIT_POLICY once, at load, so when the
 * user has not chosen one we set "passive" and re-execute ourselves once. */
#ifndef LMA_CLI_NO_MAIN
static void prefer_passive_waits(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then go on as we are */
}
#endif

int cli_main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *c = argv[1];
    if (!strcmp(c, "-h") || !strcmp(c, "--help") || !strcmp(c, "help")) { usage(stdout); return 0; }
    if (!strcmp(c, "-V") || !strcmp(c, "--version")) { printf("lmadapt %s\n", lma_version()); return 0; }
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(c, commands[i].name)) {
            int rc = commands[i].run(argc - 1, argv + 1);
            cli_dist_end(rc); /* distributed training: MPI_Finalize, or abort the job on a failure */
            return rc;
        }
    fprintf(stderr, "lmadapt: unknown command '%s'\nTry 'lmadapt --help'.\n", c);
    return 2;
}

#ifndef LMA_CLI_NO_MAIN /* tests/fuzz/fuzz_argv.c drives cli_main itself */
int main(int argc, char **argv) {
    prefer_passive_waits(argv);
    lma_cleanup_install(); /* SIGINT/SIGTERM remove the temporaries of unfinished outputs */
    return cli_main(argc, argv);
}
#endif
