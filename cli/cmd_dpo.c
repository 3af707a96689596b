/* lmadapt dpo: preference fine-tuning (DPO, IPO, hinge) on the shared trainer (full, LoRA or QLoRA). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/threads.h"
#include "data/prefs.h"
#include "train/dpo.h"
#include "train_common.h"

static const char *const loss_names[] = {"sigmoid", "ipo", "hinge", NULL};
static const int loss_values[] = {LMA_DPO_SIGMOID, LMA_DPO_IPO, LMA_DPO_HINGE};

/* The reference log-probs of the run: RUN/reference_logps.json on --resume when it matches
 * the data, else computed once (the --ref-model loaded for it and freed; without one the
 * policy itself, its adapter switched off) and saved there. */
static lma_status reference(const cli_train_opts *to, const char *path, const char *ref_model, lma_model *m,
                            const lma_pref_set *ts, const lma_pref_set *vs, double *rt, double *rv) {
    int found = 0;
    if (to->tp.resume) LMA_TRY(lma_dpo_cache_load(path, ts, vs, rt, rv, &found));
    if (found) { lma_info("dpo: reference log-probs reused from %s", path); return LMA_OK; }
    lma_model *r = m;
    if (ref_model) {
        const lma_backend *be = NULL;
        LMA_TRY(cli_train_backend(to, &be));
        LMA_TRY(lma_model_load_ex(ref_model, be, LMA_MODEL_FROZEN, &r));
    }
    int base_only = !ref_model && m->lora != NULL, B = to->tp.B, T = to->tp.T;
    double t0 = lma_now();
    lma_status s = lma_dpo_reference(r, ts, B, T, base_only, rt);
    if (s == LMA_OK && vs) s = lma_dpo_reference(r, vs, B, T, base_only, rv);
    if (r != m) lma_model_free(r);
    LMA_TRY(s);
    LMA_TRY(lma_dpo_cache_save(path, ts, vs, rt, rv, ref_model ? ref_model : base_only ? "base (adapter off)" : "initial policy"));
    lma_info("dpo: reference log-probs of %zu pairs computed in %.1f s (%s) -> %s",
             lma_pref_count(ts) + (vs ? lma_pref_count(vs) : 0), lma_now() - t0,
             ref_model ? ref_model : base_only ? "the base, adapter off" : "the initial policy", path);
    return LMA_OK;
}

int cmd_dpo(int argc, char **argv) {
    cli_train_opts to;
    cli_train_opts_init(&to);
    to.tp.sched.lr = 1e-6; to.tp.B = 4; to.tp.T = 1024;
    to.tp.eval_batches = 0;
    to.lora.dropout = 0; /* TRL's DPOConfig disables dropout (disable_dropout=True), LoRA's included */
    const char *model = NULL, *data = NULL, *val = NULL, *tmpl = NULL, *ref_model = NULL;
    lma_dpo_params dp = {.beta = 0.1, .label_smoothing = 0, .loss = LMA_DPO_SIGMOID};
    int loss = LMA_DPO_SIGMOID;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "policy to train (and reference, unless --ref-model): HF folder,\n"
                      ".gguf or short name"),
        CLI_STR("data", 0, &data, "FILE", "preference pairs (JSONL, or a JSON array)", .flags = CLI_REQUIRED | CLI_IN),
        CLI_STR("val", 0, &val, "FILE", "validation pairs (DPO loss every --eval-every steps)", .flags = CLI_IN),
        CLI_STR("ref-model", 0, &ref_model, "R", "reference model (default: --model; with lora/qlora the base with\n"
                "the adapter switched off)", .flags = CLI_IN),
        CLI_REALV("beta", 0, &dp.beta, 1e-9, 1e9, "B", "strength of the pull towards the reference"),
        CLI_CHOOSE("loss", 0, &loss, loss_names, loss_values, NULL, "sigmoid (DPO), ipo or hinge"),
        CLI_REALV("label-smoothing", 0, &dp.label_smoothing, 0, 0.4999, "E",
                  "sigmoid only: assumed share of flipped labels (conservative DPO)"),
        CLI_OPT_TEMPLATE(&tmpl),
        CLI_END};
    cli_opt train[CLI_TRAIN_NOPTS], peft[CLI_PEFT_NOPTS];
    cli_train_table(&to, train);
    cli_peft_table(&to, peft);
    train[4].help = "preference pairs per micro-batch (2 rows each: chosen, rejected)";
    train[5].help = "tokens per row (prompt + completion; longer rows keep their start)";
    cli_group groups[] = {{NULL, own}, {CLI_TRAIN_TITLE, train}, {CLI_PEFT_TITLE, peft}, {0}};
    cli_spec spec = {
        .cmd = "dpo",
        .usage = "lmadapt dpo --model M --data prefs.jsonl --out RUN_DIR [--method full|lora|qlora] [--ref-model R]\n"
                 "            [--beta 0.1] [--loss sigmoid|ipo|hinge] [--label-smoothing E] [options]",
        .about = "Preference fine-tuning (direct preference optimization, as TRL's DPOTrainer): every record\n"
                 "is a prompt with a chosen and a rejected reply (TRL conversational or plain text\n"
                 "{\"prompt\",\"chosen\",\"rejected\"}, OpenAI {\"input\":{\"messages\"},\"preferred_output\",\n"
                 "\"non_preferred_output\"}). log pi(y|x) is the sum of the completion tokens' log-probs; the\n"
                 "loss pulls the chosen reply's log-ratio to the reference above the rejected one's. The\n"
                 "reference log-probs are computed once before training and kept in RUN_DIR/reference_logps.json\n"
                 "(--resume reuses them). metrics.jsonl adds reward_chosen, reward_rejected, reward_margin,\n"
                 "reward_accuracy, logps_chosen and logps_rejected to every step.\n",
        .groups = groups,
        .epilog = CLI_TRAIN_EPILOG
                  "\nExample:\n  lmadapt dpo --model smollm2-135m-instruct --data prefs.jsonl --out runs/dpo --method lora \\\n"
                  "      --epochs 3 --batch 4 --seq 512 --lr 5e-5 --beta 0.1\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (cli_train_check(&a, &to)) return 2;
    dp.loss = (lma_dpo_loss)loss;
    if (dp.label_smoothing > 0 && dp.loss != LMA_DPO_SIGMOID)
        return cli_usage_error("dpo", "--label-smoothing applies to --loss sigmoid only");
    if (cli_resolve_model("dpo", &model)) return 1;
    if (ref_model && cli_resolve_model("dpo", &ref_model)) return 1;
    if ((rc = cli_train_prepare(&a, "dpo", &to)) != 0) return rc; /* run.json: --beta, --loss, --ref-model too */
    dp.loss = (lma_dpo_loss)loss;
    lma_threads_set(to.threads);
    const char *run = to.tp.out_dir;

    lma_tokenizer *tok = NULL;
    lma_pref_set *ts = NULL, *vs = NULL;
    lma_pref_batcher *tb = NULL, *vb = NULL;
    lma_dpo *dpo = NULL;
    lma_model *m = NULL;
    double *rt = NULL, *rv = NULL;
    rc = 1;
    char path[4400];
    lma_pref_params pp = {.template_spec = tmpl, .max_len = to.tp.T};
    lma_pref_stats st;
    if (lma_mkdir_p(run) != LMA_OK || lma_tok_load(model, &tok) != LMA_OK) goto done;
    if (lma_pref_load(data, tok, &pp, &ts, &st) != LMA_OK) goto done;
    lma_info("dpo: %s: %zu pairs (%zu conversational, %zu plain text), %zu tokens, %zu truncated to %d tokens, %zu "
             "without a completion token skipped", data, st.pairs, st.conversational, st.plain, st.tokens, st.truncated,
             to.tp.T, st.skipped);
    size_t n_train = st.pairs;
    if (val) {
        if (lma_pref_load(val, tok, &pp, &vs, &st) != LMA_OK) goto done;
        lma_info("dpo: %s: %zu validation pairs", val, st.pairs);
    }
    int32_t pad = lma_tok_eos_id(tok) >= 0 ? lma_tok_eos_id(tok) : 0;
    if (lma_pref_batcher_create(ts, to.tp.B, to.tp.T, pad, to.seed, 1, 0, &tb) != LMA_OK) goto done;
    if (vs && lma_pref_batcher_create(vs, to.tp.B, to.tp.T, pad, to.seed, 0, 1, &vb) != LMA_OK) goto done;
    if ((rc = cli_train_finish("dpo", &to, (uint64_t)n_train * (uint64_t)to.tp.T)) != 0) goto done;
    rc = 1;
    if (cli_train_load_model(&to, model, &m) != LMA_OK) goto done;
    if (lma_tok_vocab_size(tok) > m->cfg.vocab_size) {
        lma_error(LMA_ERR_SHAPE, "tokenizer has %d tokens, the model only %d", lma_tok_vocab_size(tok), m->cfg.vocab_size);
        goto done;
    }
    rt = calloc(2 * n_train, sizeof *rt);
    rv = calloc(vs ? 2 * lma_pref_count(vs) : 1, sizeof *rv);
    if (!rt || !rv) { lma_error(LMA_ERR_NOMEM, "out of memory for reference log-probs"); goto done; }
    snprintf(path, sizeof path, "%s/reference_logps.json", run);
    if (reference(&to, path, ref_model, m, ts, vs, rt, rv) != LMA_OK) goto done;
    if (lma_dpo_create(&dp, to.tp.B, to.tp.T, tb, rt, vb, vs ? rv : NULL, &dpo) != LMA_OK) goto done;
    lma_batch_source src = lma_dpo_batch_source(dpo);
    lma_trainer_params tp = to.tp;
    tp.B = 2 * to.tp.B; /* the trainer's rows: chosen and rejected of each pair */
    lma_trainer_result res;
    tp.final_files = cli_final_tokenizer;
    tp.final_files_ctx = (void *)model;
    if (lma_train_run(m, &src, &tp, &res) != LMA_OK) goto done;
    snprintf(path, sizeof path, "%s/final", run);
    char vtext[48];
    cli_val_loss_text(res.last_val_loss, vtext, sizeof vtext);
    printf("dpo: %d steps, final loss %.4f, %s, %.0f tokens/s\ndpo: %s written to %s (metrics in %s/metrics.jsonl)\n",
           res.steps_done, res.last_loss, vtext, res.tokens_per_s, m->lora ? "adapter (PEFT format)" : "model", path,
           run);
    cli_train_report("dpo", run);
    rc = 0;
done:
    if (rc == 1) cli_fail("dpo", NULL);
    lma_dpo_free(dpo);
    lma_pref_batcher_free(tb);
    lma_pref_batcher_free(vb);
    lma_pref_free(ts);
    lma_pref_free(vs);
    free(rt); free(rv);
    lma_model_free(m);
    lma_tok_free(tok);
    return rc;
}
