/* lmadapt cpt: continued pretraining on domain text (all weights, or a LoRA /
 * QLoRA adapter), mixed with replayed general text against catastrophic forgetting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/threads.h"
#include "opts.h"
#include "train_common.h"

#define CPT_REPLAY_RATIO 0.25 /* when --replay is given without --replay-ratio */

int cmd_cpt(int argc, char **argv) {
    cli_train_opts to;
    cli_train_opts_init(&to);
    to.tp.sched.lr = 5e-5;
    cli_data_opts data, replay;
    cli_data_opts_init(&data);
    cli_data_opts_init(&replay);
    replay.tp.progress_label = "tokenizing replay";
    const char *model = NULL;
    double ratio = CPT_REPLAY_RATIO;
    int format = LMA_TEXT_AUTO, docs = 1;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "model to continue from: HF folder, .gguf file or short name"),
        CLI_MULTI("data", 0, &data.list, "PATH", "domain text: files, directories or JSONL with a \"text\" field;\n"
                  "several may follow one --data", .flags = CLI_GREEDY | CLI_IN),
        CLI_MULTI("replay", 0, &replay.list, "PATH", "general text replayed against forgetting (same forms)",
                  .flags = CLI_GREEDY | CLI_IN),
        CLI_REALV("replay-ratio", 0, &ratio, 0, 1, "R", "share of training tokens taken from --replay, in [0, 1)\n"
                  "(0 without --replay)", .flags = CLI_MAX_OPEN),
        CLI_CHOOSE("format", 0, &format, cli_format_names, cli_format_values, NULL, "auto: by extension (.jsonl)"),
        CLI_CHOOSE("docs", 0, &docs, cli_docs_names, cli_docs_values, NULL,
                   "plain text split into documents at blank lines, or one document per file"),
        CLI_END};
    cli_opt train[CLI_TRAIN_NOPTS], peft[CLI_PEFT_NOPTS];
    cli_train_table(&to, train);
    cli_peft_table(&to, peft);
    cli_group groups[] = {{NULL, own}, {CLI_TRAIN_TITLE, train}, {CLI_PEFT_TITLE, peft}, {0}};
    cli_spec spec = {
        .cmd = "cpt",
        .usage = "lmadapt cpt --model M --data DOMAIN... [--replay GENERAL... --replay-ratio R] --out RUN_DIR [options]",
        .about = "Continued pretraining: trains all weights of an HF model (or, with --method lora|qlora,\n"
                 "a PEFT adapter on the frozen model) on new-domain text. General\n"
                 "text given with --replay is mixed in at share R of the training tokens (within 1%\n"
                 "over a run) to limit catastrophic forgetting. The model's own tokenizer is used.\n",
        .groups = groups,
        .epilog = CLI_TRAIN_EPILOG
                  "\nExample:\n  lmadapt cpt --model base/ --data legal/ --replay wiki.jsonl --replay-ratio 0.2 \\\n"
                  "      --out runs/legal --steps 1000 --lr 5e-5\n",
        .pos_name = "data path", .pos_list = &data.list};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (cli_train_check(&a, &to)) return 2;
    cli_data_apply(&data, format, docs);
    cli_data_apply(&replay, format, docs);
    if (cli_resolve_model("cpt", &model)) return 1;
    if ((rc = cli_train_prepare(&a, "cpt", &to)) != 0) return rc;
    if (data.list.n == 0 && !to.tp.resume) return cli_usage_error("cpt", "--data PATH is required");
    if (cli_given(&a, "replay-ratio") && replay.list.n == 0) return cli_usage_error("cpt", "--replay-ratio needs --replay PATH");
    if (replay.list.n == 0) ratio = 0;
    lma_threads_set(to.threads);
    cli_run_spec run = {.base_model = model, .replay = &replay, .replay_ratio = ratio};
    return cli_run_text_training("cpt", &to, &data, &run);
}
