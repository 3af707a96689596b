/* lmadapt sft: supervised fine-tuning on chat data (full, LoRA or QLoRA). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/threads.h"
#include "data/sft.h"
#include "train_common.h"

static void help(void) {
    printf("Usage: lmadapt sft --model M --data train.jsonl [--val val.jsonl] --out RUN_DIR [options]\n\n"
           "Supervised fine-tuning: every JSONL record (OpenAI {\"messages\"}, Alpaca\n"
           "{\"instruction\",\"input\",\"output\"}, ShareGPT {\"conversations\"}, {\"prompt\",\"completion\"})\n"
           "is rendered with the model's chat template and tokenized; the loss is on the assistant\n"
           "tokens (content + end of turn) only, and an assistant message with \"weight\": 0 adds no\n"
           "loss. A malformed line stops the run before training, naming the file and line.\n\n"
           "Options:\n"
           "  --model M          HF model folder, .gguf file or short name, with a chat template\n"
           "  --data FILE        training examples (JSONL, or a JSON array)\n"
           "  --val FILE         validation examples (loss reported every --eval-every steps)\n"
           "  --method M         full (default), lora or qlora (see below; the run then writes a PEFT\n"
           "                     adapter dir to RUN_DIR/final)\n"
           "  --template NAME    chat format: llama2, llama3, chatml, zephyr, mistral (default: the\n"
           "                     tokenizer's chat_template)\n"
           "  --all-tokens       loss on every token, not only the assistant turns\n"
           "  --no-pack          one example per row, padded (default: packed with segment ids, so\n"
           "                     examples never attend to each other)\n"
           "Examples longer than --seq tokens are truncated and counted in the log.\n\n");
    cli_train_help(stdout);
    printf("\nExample:\n  lmadapt sft --model base/ --data chat.jsonl --val chat_val.jsonl --out runs/sft \\\n"
           "      --epochs 3 --batch 4 --seq 512 --lr 2e-5\n");
}

typedef struct { lma_sft_batcher *train, *val; } sft_src;

static lma_status s_next(void *ctx, int32_t *ids, int32_t *tg, int32_t *seg) {
    int rows;
    return lma_sft_batcher_next(((sft_src *)ctx)->train, ids, tg, seg, &rows);
}
static lma_status s_val_next(void *ctx, int32_t *ids, int32_t *tg, int32_t *seg, int *rows) {
    return lma_sft_batcher_next(((sft_src *)ctx)->val, ids, tg, seg, rows);
}
static void s_val_reset(void *ctx) { lma_sft_batcher_rewind(((sft_src *)ctx)->val); }
static lma_status s_save(void *ctx, cJSON **out) { return lma_sft_batcher_save(((sft_src *)ctx)->train, out); }
static lma_status s_restore(void *ctx, const cJSON *j) { return lma_sft_batcher_restore(((sft_src *)ctx)->train, j); }

int cmd_sft(int argc, char **argv) {
    enum { O_MODEL = 1, O_DATA, O_VAL, O_TEMPLATE, O_ALL, O_NOPACK, O_HELP };
    static const struct option own[] = {
        {"model", required_argument, 0, O_MODEL},  {"data", required_argument, 0, O_DATA},
        {"val", required_argument, 0, O_VAL},
        {"template", required_argument, 0, O_TEMPLATE}, {"all-tokens", no_argument, 0, O_ALL},
        {"no-pack", no_argument, 0, O_NOPACK},     {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    struct option opts[64];
    cli_train_long_options(own, opts, 64);
    cli_train_opts to;
    cli_train_opts_init(&to);
    to.tp.sched.lr = 2e-5; to.tp.sched.min_lr = 2e-6; to.tp.B = 4; to.tp.T = 512;
    to.tp.eval_batches = 0;
    const char *model = NULL, *data = NULL, *val = NULL, *tmpl = NULL;
    int all = 0, pack = 1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h' || c == O_HELP) { help(); return 0; }
        int r = cli_train_opt("sft", &to, c, optarg);
        if (r < 0) return 2;
        if (r > 0) continue;
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_DATA: data = optarg; break;
        case O_VAL: val = optarg; break;
        case O_TEMPLATE: tmpl = optarg; break;
        case O_ALL: all = 1; break;
        case O_NOPACK: pack = 0; break;
        default: return cli_usage_error("sft", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("sft", "unexpected argument '%s'", argv[optind]);
    if (!model || !data) return cli_usage_error("sft", "--model DIR and --data FILE are required");
    if (cli_resolve_model("sft", &model)) return 1;
    lma_threads_set(to.threads);
    const char *run = to.tp.out_dir;
    if (!run) return cli_usage_error("sft", "--out RUN_DIR (or --resume RUN_DIR) is required");

    lma_tokenizer *tok = NULL;
    lma_sft_set *ts = NULL, *vs = NULL;
    sft_src ss = {0};
    lma_model *m = NULL;
    int rc = 1;
    char path[4400];
    lma_sft_params sp = {.template_spec = tmpl, .all_tokens = all, .max_len = to.tp.T};
    lma_sft_stats st;
    if (lma_mkdir_p(run) != LMA_OK || lma_tok_load(model, &tok) != LMA_OK) goto done;
    if (lma_sft_load(data, tok, &sp, &ts, &st) != LMA_OK) goto done;
    lma_info("sft: %s: %zu examples, %zu tokens, %zu with loss (%.1f%%), %zu truncated to %d tokens, %zu without "
             "assistant tokens skipped", data, st.examples, st.tokens, st.labelled,
             st.tokens ? 100.0 * (double)st.labelled / (double)st.tokens : 0.0, st.truncated, to.tp.T, st.skipped_no_label);
    size_t train_tokens = st.tokens;
    if (val) {
        if (lma_sft_load(val, tok, &sp, &vs, &st) != LMA_OK) goto done;
        lma_info("sft: %s: %zu validation examples", val, st.examples);
    }
    int32_t pad = lma_tok_eos_id(tok) >= 0 ? lma_tok_eos_id(tok) : 0;
    if (lma_sft_batcher_create(ts, to.tp.B, to.tp.T, pack, pad, to.seed, 1, 0, &ss.train) != LMA_OK) goto done;
    if (vs && lma_sft_batcher_create(vs, to.tp.B, to.tp.T, pack, pad, to.seed, 0, 1, &ss.val) != LMA_OK) goto done;
    if ((rc = cli_train_finish("sft", &to, train_tokens)) != 0) goto done;
    rc = 1;
    if (cli_train_load_model(&to, model, &m) != LMA_OK) goto done;
    if (lma_tok_vocab_size(tok) > m->cfg.vocab_size) {
        lma_error(LMA_ERR_SHAPE, "tokenizer has %d tokens, the model only %d", lma_tok_vocab_size(tok), m->cfg.vocab_size);
        goto done;
    }
    lma_batch_source src = {&ss, s_next, vs ? s_val_next : NULL, s_val_reset, s_save, s_restore};
    lma_trainer_result res;
    if (lma_train_run(m, &src, &to.tp, &res) != LMA_OK) goto done;
    snprintf(path, sizeof path, "%s/final", run);
    if (cli_copy_tokenizer(model, path) != LMA_OK) goto done;
    printf("sft: %d steps, final loss %.4f, validation loss %.4f, %.0f tokens/s\nsft: %s written to %s\n",
           res.steps_done, res.last_loss, res.last_val_loss, res.tokens_per_s,
           m->lora ? "adapter (PEFT format)" : "model", path);
    rc = 0;
done:
    if (rc == 1) cli_fail("sft", NULL);
    lma_sft_batcher_free(ss.train);
    lma_sft_batcher_free(ss.val);
    lma_sft_free(ts);
    lma_sft_free(vs);
    lma_model_free(m);
    lma_tok_free(tok);
    return rc;
}
