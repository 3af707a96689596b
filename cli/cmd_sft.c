/* lmadapt sft: supervised fine-tuning on chat data (full, LoRA or QLoRA). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/threads.h"
#include "data/sft.h"
#include "tok/chat_template.h"
#include "train/loader_source.h"
#include "train_common.h"


/* final/ gets the base's tokenizer and the template the run was trained with */
typedef struct { const char *model, *tmpl; } final_ctx;
static lma_status final_files(void *ctx, const char *dir) {
    const final_ctx *c = ctx;
    LMA_TRY(cli_copy_tokenizer(c->model, dir));
    return lma_chat_template_store(dir, c->tmpl);
}

int cmd_sft(int argc, char **argv) {
    cli_train_opts to;
    cli_train_opts_init(&to);
    to.tp.sched.lr = 2e-5; to.tp.B = 4; to.tp.T = 512;
    to.tp.eval_batches = 0;
    const char *model = NULL, *data = NULL, *val = NULL, *tmpl = NULL;
    int all = 0, pack = 1;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "HF model folder, .gguf file or short name, with a chat template"),
        CLI_STR("data", 0, &data, "FILE", "training examples (JSONL, or a JSON array)", .flags = CLI_REQUIRED | CLI_IN),
        CLI_STR("val", 0, &val, "FILE", "validation examples (loss reported every --eval-every steps)", .flags = CLI_IN),
        CLI_OPT_TEMPLATE(&tmpl),
        CLI_BOOL("all-tokens", 0, &all, "loss on every token, not only the assistant turns"),
        CLI_FLAG_SET("no-pack", 0, &pack, 0, "one example per row, padded (default: packed with segment ids,\n"
                     "so examples never attend to each other)"),
        CLI_END};
    cli_opt train[CLI_TRAIN_NOPTS], peft[CLI_PEFT_NOPTS];
    cli_train_table(&to, train);
    cli_peft_table(&to, peft);
    cli_group groups[] = {{NULL, own}, {CLI_TRAIN_TITLE, train}, {CLI_PEFT_TITLE, peft}, {0}};
    cli_spec spec = {
        .cmd = "sft",
        .usage = "lmadapt sft --model M --data train.jsonl [--val val.jsonl] --out RUN_DIR [options]",
        .about = "Supervised fine-tuning: every JSONL record (OpenAI {\"messages\"}, Alpaca\n"
                 "{\"instruction\",\"input\",\"output\"}, ShareGPT {\"conversations\"}, {\"prompt\",\"completion\"})\n"
                 "is rendered with the model's chat template and tokenized; the loss is on the assistant\n"
                 "tokens (content + end of turn) only, and an assistant message with \"weight\": 0 adds no\n"
                 "loss. A malformed line stops the run before training, naming the file and line.\n"
                 "Examples longer than --seq tokens are truncated and counted in the log. With --method\n"
                 "lora|qlora the run writes a PEFT adapter dir to RUN_DIR/final.\n",
        .groups = groups,
        .epilog = CLI_TRAIN_EPILOG
                  "\nExample:\n  lmadapt sft --model base/ --data chat.jsonl --val chat_val.jsonl --out runs/sft \\\n"
                  "      --epochs 3 --batch 4 --seq 512 --lr 2e-5\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (cli_train_check(&a, &to)) return 2;
    if (cli_resolve_model("sft", &model)) return 1;
    if ((rc = cli_train_prepare(&a, "sft", &to)) != 0) return rc;
    lma_threads_set(to.threads);
    const char *run = to.tp.out_dir;

    lma_tokenizer *tok = NULL;
    lma_sft_set *ts = NULL, *vs = NULL;
    lma_sft_pair ss = {0};
    lma_model *m = NULL;
    rc = 1;
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
    lma_batch_source src = lma_sft_batch_source(&ss);
    lma_trainer_result res;
    final_ctx fc = {model, tmpl};
    to.tp.final_files = final_files;
    to.tp.final_files_ctx = &fc;
    if (lma_train_run(m, &src, &to.tp, &res) != LMA_OK) goto done;
    cli_train_mem_report(&to, m);
    snprintf(path, sizeof path, "%s/final", run);
    char vtext[48];
    cli_val_loss_text(res.last_val_loss, vtext, sizeof vtext);
    printf("sft: %d steps, final loss %.4f, %s, %.0f tokens/s\nsft: %s written to %s\n", res.steps_done,
           res.last_loss, vtext, res.tokens_per_s, m->lora ? "adapter (PEFT format)" : "model", path);
    cli_train_report("sft", run);
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
