/* lmadapt cpt: continued pretraining on domain text (all weights, or a LoRA /
 * QLoRA adapter), mixed with replayed general text against catastrophic forgetting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/threads.h"
#include "train_common.h"

static void help(void) {
    printf("Usage: lmadapt cpt --model M --data DOMAIN... [--replay GENERAL... --replay-ratio R] --out RUN_DIR [options]\n\n"
           "Continued pretraining: trains all weights of an HF model (or, with --method lora|qlora,\n"
           "a PEFT adapter on the frozen model) on new-domain text. General\n"
           "text given with --replay is mixed in at share R of the training tokens (within 1%%\n"
           "over a run) to limit catastrophic forgetting. The model's own tokenizer is used.\n\n"
           "Options:\n"
           "  --model M            model to continue from: HF folder, .gguf file or short name\n"
           "  --data PATH...       domain text: files, directories or JSONL with a \"text\" field\n"
           "  --replay PATH...     general text replayed against forgetting (same forms)\n"
           "  --replay-ratio R     share of training tokens taken from --replay, in [0, 1) (default 0.25\n"
           "                       when --replay is given)\n"
           "  --format F           auto | plain | jsonl (default auto)\n"
           "  --docs D             paragraphs | files (default paragraphs)\n\n");
    cli_train_help(stdout);
    printf("\nExample:\n  lmadapt cpt --model base/ --data legal/ --replay wiki.jsonl --replay-ratio 0.2 \\\n"
           "      --out runs/legal --steps 1000 --lr 5e-5\n");
}

int cmd_cpt(int argc, char **argv) {
    enum { O_MODEL = 1, O_DATA, O_REPLAY, O_RATIO, O_FORMAT, O_DOCS, O_HELP };
    static const struct option own[] = {
        {"model", required_argument, 0, O_MODEL},  {"data", required_argument, 0, O_DATA},
        {"replay", required_argument, 0, O_REPLAY}, {"replay-ratio", required_argument, 0, O_RATIO},
        {"format", required_argument, 0, O_FORMAT}, {"docs", required_argument, 0, O_DOCS},
        {"help", no_argument, 0, O_HELP},          {0, 0, 0, 0}};
    struct option opts[64];
    cli_train_long_options(own, opts, 64);
    cli_train_opts to;
    cli_train_opts_init(&to);
    to.tp.sched.lr = 5e-5;
    to.tp.sched.min_lr = 5e-6;
    cli_data_opts data, replay;
    cli_data_opts_init(&data);
    cli_data_opts_init(&replay);
    replay.tp.progress_label = "tokenizing replay";
    const char *model = NULL;
    double ratio = -1;
    int c, last = 0; /* which list bare paths after --data/--replay extend */
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h' || c == O_HELP) { help(); return 0; }
        int r = cli_train_opt("cpt", &to, c, optarg);
        if (r < 0) return 2;
        if (r > 0) continue;
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_DATA: if (cli_data_add(&data, optarg)) return 2; last = 0; break;
        case O_REPLAY: if (cli_data_add(&replay, optarg)) return 2; last = 1; break;
        case O_RATIO: {
            char *end;
            ratio = strtod(optarg, &end);
            if (end == optarg || *end || ratio < 0 || ratio >= 1)
                return cli_usage_error("cpt", "--replay-ratio must be a number in [0, 1)");
            break;
        }
        case O_FORMAT: if (cli_data_format(&data, "cpt", optarg) || cli_data_format(&replay, "cpt", optarg)) return 2; break;
        case O_DOCS: if (cli_data_docs(&data, "cpt", optarg) || cli_data_docs(&replay, "cpt", optarg)) return 2; break;
        default: return cli_usage_error("cpt", "unknown option");
        }
    }
    while (optind < argc) if (cli_data_add(last ? &replay : &data, argv[optind++])) return 2;
    if (!model) return cli_usage_error("cpt", "--model is required");
    if (cli_resolve_model("cpt", &model)) return 1;
    if (data.n == 0 && !to.tp.resume) return cli_usage_error("cpt", "--data PATH is required");
    if (ratio >= 0 && replay.n == 0) return cli_usage_error("cpt", "--replay-ratio needs --replay PATH");
    if (ratio < 0) ratio = replay.n ? 0.25 : 0;
    lma_threads_set(to.threads);
    cli_run_spec spec = {.base_model = model, .replay = &replay, .replay_ratio = ratio};
    return cli_run_text_training("cpt", &to, &data, &spec);
}
