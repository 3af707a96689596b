/* lmadapt pretrain: a model from scratch on text (tokenize -> shard -> train). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/threads.h"
#include "data/tokenize.h"
#include "model/presets.h"
#include "train/loader_source.h"
#include "train_common.h"
#include "train_flags.h"

static void help(void) {
    printf("Usage: lmadapt pretrain --data PATH... --out RUN_DIR [--tokenizer DIR] [--preset NAME | --config FILE] [options]\n\n"
           "Pretrains a Llama-architecture model from scratch on text: tokenizes the data into a\n"
           "token shard (RUN_DIR/data/train.bin), initialises the model (N(0, 0.02), norms 1),\n"
           "trains with AdamW + warmup/cosine and writes an HF model dir (RUN_DIR/final) that\n"
           "transformers loads, with the tokenizer files beside it.\n\n"
           "Data and model:\n"
           "  --data PATH          text file, directory (recursive) or JSONL with a \"text\" field;\n"
           "                       repeat or list several after one --data\n"
           "  --format F           auto | plain | jsonl (default auto: by extension .jsonl)\n"
           "  --docs D             paragraphs | files: plain text split into documents at blank lines\n"
           "                       (default) or one document per file\n"
           "  --tokenizer DIR      tokenizer.json (+ tokenizer_config.json) to use\n"
           "  --vocab-size N       train a byte-level BPE tokenizer of N tokens on the data when no\n"
           "                       --tokenizer is given (default 4096)\n"
           "  --preset NAME        %s (default 15m)\n"
           "  --config FILE        an HF config.json instead of a preset (its vocab_size must match)\n\n",
           lma_config_preset_names());
    cli_train_help(stdout);
    printf("\nExample:\n  lmadapt pretrain --data tests/data/tinyshakespeare.txt --tokenizer tok/ --preset 15m \\\n"
           "      --out runs/shakespeare --steps 300 --batch 8 --seq 256 --lr 1e-3\n");
}

int cmd_pretrain(int argc, char **argv) {
    enum { O_DATA = 1, O_FORMAT, O_DOCS, O_TOK, O_VOCAB, O_PRESET, O_CONFIG, O_HELP };
    static const struct option own[] = {
        {"data", required_argument, 0, O_DATA},     {"format", required_argument, 0, O_FORMAT},
        {"docs", required_argument, 0, O_DOCS},     {"tokenizer", required_argument, 0, O_TOK},
        {"vocab-size", required_argument, 0, O_VOCAB}, {"preset", required_argument, 0, O_PRESET},
        {"config", required_argument, 0, O_CONFIG}, {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    struct option opts[64];
    cli_train_long_options(own, opts, 64);
    cli_train_opts to;
    cli_train_opts_init(&to);
    cli_data_opts data;
    cli_data_opts_init(&data);
    const char *tok_dir = NULL, *preset = "15m", *config = NULL;
    int vocab = 4096, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h' || c == O_HELP) { help(); return 0; }
        int r = cli_train_opt("pretrain", &to, c, optarg);
        if (r < 0) return 2;
        if (r > 0) continue;
        switch (c) {
        case O_DATA: if (cli_data_add(&data, optarg) != 0) return 2; break;
        case O_FORMAT: if (cli_data_format(&data, "pretrain", optarg) != 0) return 2; break;
        case O_DOCS: if (cli_data_docs(&data, "pretrain", optarg) != 0) return 2; break;
        case O_TOK: tok_dir = optarg; break;
        case O_VOCAB: vocab = atoi(optarg); break;
        case O_PRESET: preset = optarg; break;
        case O_CONFIG: config = optarg; break;
        default: return cli_usage_error("pretrain", "unknown option");
        }
    }
    while (optind < argc) if (cli_data_add(&data, argv[optind++]) != 0) return 2; /* --data a b c */
    if (data.n == 0 && !to.tp.resume) return cli_usage_error("pretrain", "--data PATH is required");
    if (vocab < 260 || vocab > 1 << 20) return cli_usage_error("pretrain", "--vocab-size must be in [260, 1048576]");
    lma_threads_set(to.threads);
    cli_run_spec spec = {.tok_dir = tok_dir, .vocab_size = vocab, .preset = preset, .config = config};
    return cli_run_text_training("pretrain", &to, &data, &spec);
}
