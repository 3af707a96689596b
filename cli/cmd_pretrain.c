/* lmadapt pretrain: a model from scratch on text (tokenize -> shard -> train). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/threads.h"
#include "model/presets.h"
#include "opts.h"
#include "train_common.h"
#include "train_flags.h"

int cmd_pretrain(int argc, char **argv) {
    cli_train_opts to;
    cli_train_opts_init(&to);
    cli_data_opts data;
    cli_data_opts_init(&data);
    const char *tok_dir = NULL, *preset = "15m", *config = NULL;
    int vocab = 4096, format = LMA_TEXT_AUTO, docs = 1;
    char preset_help[512];
    snprintf(preset_help, sizeof preset_help, "model size: %s", lma_config_preset_names());
    cli_opt own[] = {
        CLI_MULTI("data", 0, &data.list, "PATH", "text file, directory (recursive) or JSONL with a \"text\" field;\n"
                  "several may follow one --data", .flags = CLI_GREEDY | CLI_IN),
        CLI_CHOOSE("format", 0, &format, cli_format_names, cli_format_values, NULL, "auto: by extension (.jsonl)"),
        CLI_CHOOSE("docs", 0, &docs, cli_docs_names, cli_docs_values, NULL,
                   "plain text split into documents at blank lines, or one document per file"),
        CLI_STR("tokenizer", 0, &tok_dir, "DIR", "tokenizer.json (+ tokenizer_config.json) to use",
                .def_text = "train one on the data", .flags = CLI_IN),
        CLI_INT("vocab-size", 0, &vocab, 260, 1 << 20, "N", "vocabulary of the tokenizer trained when no --tokenizer is given"),
        CLI_STR("preset", 0, &preset, "NAME", preset_help),
        CLI_STR("config", 0, &config, "FILE", "an HF config.json instead of a preset (its vocab_size must match)",
                .flags = CLI_IN),
        CLI_END};
    cli_opt train[CLI_TRAIN_NOPTS];
    cli_train_table(&to, train);
    cli_group groups[] = {{"Data and model:", own}, {CLI_TRAIN_TITLE, train}, {0}};
    cli_spec spec = {
        .cmd = "pretrain",
        .usage = "lmadapt pretrain --data PATH... --out RUN_DIR [--tokenizer DIR] [--preset NAME | --config FILE] [options]",
        .about = "Pretrains a Llama-architecture model from scratch on text: tokenizes the data into a\n"
                 "token shard (RUN_DIR/data/train.bin), initialises the model (N(0, 0.02), norms 1),\n"
                 "trains with AdamW + warmup/cosine and writes an HF model dir (RUN_DIR/final) that\n"
                 "transformers loads, with the tokenizer files beside it.\n",
        .groups = groups,
        .epilog = CLI_TRAIN_EPILOG
                  "\nExample:\n  lmadapt pretrain --data tests/data/tinyshakespeare.txt --tokenizer tok/ --preset 15m \\\n"
                  "      --out runs/shakespeare --steps 300 --batch 8 --seq 256 --lr 1e-3\n",
        .pos_name = "data path", .pos_list = &data.list};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (cli_train_check(&a, &to)) return 2;
    if ((rc = cli_train_prepare(&a, "pretrain", &to)) != 0) return rc;
    cli_data_apply(&data, format, docs);
    if (data.list.n == 0 && !to.tp.resume) return cli_usage_error("pretrain", "--data PATH is required");
    lma_threads_set(to.threads);
    cli_run_spec run = {.tok_dir = tok_dir, .vocab_size = vocab, .preset = preset, .config = config};
    return cli_run_text_training("pretrain", &to, &data, &run);
}
