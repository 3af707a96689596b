#include "train_common.h"
#include "dist.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "core/io.h"
#include "core/log.h"
#include "data/tokenize.h"
#include "tok/tokenizer.h"
#include "model/presets.h"
#include "tok/bpe_train.h"
#include "train/loader_source.h"

void cli_data_opts_init(cli_data_opts *d) {
    memset(d, 0, sizeof *d);
    d->list = (cli_list){d->paths, 0, CLI_MAX_PATHS};
    d->tp = lma_text_source_default_params();
    d->tp.split_blank_lines = 1;
    d->tp.progress = 1;
    d->tp.progress_label = "tokenizing";
}

const char *const cli_format_names[] = {"auto", "plain", "jsonl", NULL};
const int cli_format_values[] = {LMA_TEXT_AUTO, LMA_TEXT_PLAIN, LMA_TEXT_JSONL};
const char *const cli_docs_names[] = {"paragraphs", "files", NULL};
const int cli_docs_values[] = {1, 0};

void cli_data_apply(cli_data_opts *d, int format, int docs) {
    d->tp.format = (lma_text_format)format;
    d->tp.split_blank_lines = docs;
}

/* Writes the tokenizer of src (an HF model folder or a GGUF file) into dst:
 * generation_config.json copied from a folder, then lma_tok_save_files, which writes
 * tokenizer.json last (its presence marks a complete copy; resume checks it). */
void cli_val_loss_text(float v, char *out, size_t cap) {
    if (isnan(v)) snprintf(out, cap, "no validation set");
    else snprintf(out, cap, "validation loss %.4f", v);
}

lma_status cli_copy_tokenizer(const char *src, const char *dst) {
    char a[4200], b[4200];
    LMA_TRY(lma_mkdir_p(dst));
    if (lma_is_dir(src)) {
        snprintf(a, sizeof a, "%s/generation_config.json", src);
        snprintf(b, sizeof b, "%s/generation_config.json", dst);
        if (lma_file_exists(a)) LMA_TRY(lma_copy_file(a, b));
        snprintf(a, sizeof a, "%s/tokenizer.json", src);
        if (!lma_file_exists(a)) return LMA_OK; /* a model folder without a tokenizer: nothing to copy */
    }
    return lma_tok_save_files(src, dst);
}

lma_status cli_final_tokenizer(void *ctx, const char *dir) { return cli_copy_tokenizer(ctx, dir); }

static lma_status make_shard(const cli_data_opts *d, const lma_tokenizer *tok, const char *path, int resume,
                             const char *what) {
    if (resume && lma_file_exists(path)) { lma_info("reusing %s", path); return LMA_OK; }
    lma_text_shard_stats st;
    lma_text_source_params tp = d->tp;
    tp.progress = !getenv("LMA_QUIET");
    LMA_TRY(lma_tokenize_to_shard(d->paths, (size_t)d->list.n, &tp, tok, 1, path, &st));
    lma_info("%s: %llu documents, %llu tokens (%.2f bytes/token) -> %s", what, (unsigned long long)st.docs,
             (unsigned long long)st.tokens, st.tokens ? (double)st.bytes / (double)st.tokens : 0.0, path);
    return LMA_OK;
}

/* Trains a byte-level BPE tokenizer on the documents of d (written once to a
 * temporary corpus file so that JSONL and directories work too). */
static lma_status train_tokenizer(const cli_data_opts *d, int vocab, const char *run, const char *tokdir) {
    char corpus[4200];
    snprintf(corpus, sizeof corpus, "%s/data/tokenizer_corpus.txt", run);
    lma_text_source_params tp = d->tp;
    tp.progress = 0;
    lma_text_source *src = NULL;
    lma_atomic_file af;
    LMA_TRY(lma_text_source_open(d->paths, (size_t)d->list.n, &tp, &src));
    lma_status s = lma_atomic_open(&af, corpus);
    while (s == LMA_OK) {
        lma_text_doc doc;
        int done = 0;
        s = lma_text_source_next(src, &doc, &done);
        if (s != LMA_OK || done) break;
        s = lma_atomic_write(&af, doc.text, doc.len);
        if (s == LMA_OK) s = lma_atomic_write(&af, "\n\n", 2);
    }
    lma_text_source_close(src);
    if (s == LMA_OK) s = lma_atomic_commit(&af);
    else lma_atomic_abort(&af);
    if (s != LMA_OK) return s;
    lma_bpe_train_params bp;
    lma_bpe_train_default_params(&bp);
    const char *special[1] = {"<|endoftext|>"};
    bp.vocab_size = vocab;
    bp.special = special;
    bp.n_special = 1;
    bp.quiet = getenv("LMA_QUIET") != NULL;
    const char *files[1] = {corpus};
    lma_info("training a byte-level BPE tokenizer of %d tokens on the data -> %s", vocab, tokdir);
    s = lma_bpe_train_files(files, 1, &bp, tokdir);
    unlink(corpus);
    return s;
}

int cli_run_text_training(const char *cmd, cli_train_opts *to, const cli_data_opts *data, const cli_run_spec *spec) {
    const char *run = to->tp.out_dir;
    if (!run) return cli_usage_error(cmd, "--out RUN_DIR (or --resume RUN_DIR) is required");
    char tokdir[4200], train_bin[4200], replay_bin[4200], cfg_path[4200], path[4400];
    snprintf(tokdir, sizeof tokdir, "%s/tokenizer", run);
    snprintf(train_bin, sizeof train_bin, "%s/data/train.bin", run);
    snprintf(replay_bin, sizeof replay_bin, "%s/data/replay.bin", run);
    snprintf(cfg_path, sizeof cfg_path, "%s/model_config.json", run);
    if (lma_mkdir_p(run) != LMA_OK || lma_path_join(path, sizeof path, run, "data") != LMA_OK ||
        lma_mkdir_p(path) != LMA_OK)
        return cli_fail(cmd, NULL);

    /* several ranks: rank 0 makes the tokenizer and the token shards, the others wait and
     * read them (cli_dist_agree below: the same call on every rank) */
    int follower = cli_dist_rank() > 0;
    if (follower && cli_dist_agree(0)) return 1;
    /* tokenizer: the run's own copy on resume, else the base model's, else --tokenizer */
    const char *tsrc = spec->base_model ? spec->base_model : spec->tok_dir;
    snprintf(path, sizeof path, "%s/tokenizer.json", tokdir);
    if (!((to->tp.resume || follower) && lma_file_exists(path))) {
        if (!tsrc) {
            if (data->list.n == 0) return cli_usage_error(cmd, "--data PATH is required");
            if (lma_mkdir_p(tokdir) != LMA_OK || train_tokenizer(data, spec->vocab_size, run, tokdir) != LMA_OK)
                return cli_fail(cmd, NULL);
        } else if (cli_copy_tokenizer(tsrc, tokdir) != LMA_OK) {
            return cli_fail(cmd, NULL);
        }
    }
    lma_tokenizer *tok = NULL;
    lma_model *m = NULL;
    lma_shardset *ss = NULL, *rs = NULL;
    lma_loader *L = NULL;
    int rc = 1;
    if (lma_tok_load(tokdir, &tok) != LMA_OK) goto done;
    if (data->list.n == 0 && !lma_file_exists(train_bin)) { rc = cli_usage_error(cmd, "--data PATH is required"); goto done; }
    if (make_shard(data, tok, train_bin, to->tp.resume || follower || data->list.n == 0, "training data") != LMA_OK)
        goto done;
    if (spec->replay && spec->replay->list.n > 0 &&
        make_shard(spec->replay, tok, replay_bin, to->tp.resume || follower, "replay data") != LMA_OK)
        goto done;
    if (!follower && cli_dist_comm() && cli_dist_agree(0)) goto done; /* the followers may read them now */

    /* model */
    const lma_backend *be = NULL;
    if (cli_train_backend(to, &be) != LMA_OK) goto done;
    if (spec->base_model) {
        if (cli_train_load_model(to, spec->base_model, &m) != LMA_OK) goto done;
    } else {
        if (to->method != CLI_METHOD_FULL) {
            rc = cli_usage_error(cmd, "--method lora/qlora needs a base model (use cpt or sft --model DIR)");
            goto done;
        }
        lma_config c;
        lma_status s;
        if (to->tp.resume && lma_file_exists(cfg_path)) s = lma_config_load(cfg_path, &c);
        else if (spec->config) s = lma_config_load(spec->config, &c);
        else s = lma_config_preset(spec->preset, lma_tok_vocab_size(tok), to->tp.T, &c);
        if (s != LMA_OK) goto done;
        if (c.vocab_size < lma_tok_vocab_size(tok)) {
            lma_error(LMA_ERR_SHAPE, "the config's vocab_size %d is smaller than the tokenizer's %d", c.vocab_size,
                      lma_tok_vocab_size(tok));
            goto done;
        }
        c.bos_token_id = lma_tok_bos_id(tok);
        c.n_eos = 0;
        if (lma_tok_eos_id(tok) >= 0) c.eos_token_ids[c.n_eos++] = lma_tok_eos_id(tok);
        if (!to->tp.resume) cli_train_mem_predict(to, &c, be, NULL);
        if (lma_model_create(&c, be, &m) != LMA_OK) goto done;
        if (lma_model_init_random(m, to->seed, 0.02f) != LMA_OK) goto done;
        if (cli_train_model_opts(to, m) != LMA_OK) goto done;
    }
    if (lma_config_save(cfg_path, &m->cfg) != LMA_OK) goto done;
    if (lma_tok_vocab_size(tok) > m->cfg.vocab_size) {
        lma_error(LMA_ERR_SHAPE, "tokenizer has %d tokens, the model only %d", lma_tok_vocab_size(tok), m->cfg.vocab_size);
        goto done;
    }

    /* data loader */
    const char *tp[1] = {train_bin}, *rp[1] = {replay_bin};
    if (lma_shardset_open(tp, 1, &ss) != LMA_OK) goto done;
    lma_loader_params lp = lma_loader_default_params();
    lp.B = to->tp.B; lp.T = to->tp.T; lp.seed = to->seed; lp.val_fraction = to->val_fraction;
    if (spec->replay && spec->replay->list.n > 0) {
        if (lma_shardset_open(rp, 1, &rs) != LMA_OK) goto done;
        lp.replay = rs;
        lp.replay_ratio = spec->replay_ratio;
    }
    if (lma_loader_create(ss, &lp, &L) != LMA_OK) goto done;
    uint64_t per_epoch = lma_loader_train_tokens(L);
    if (rs && spec->replay_ratio < 1) per_epoch = (uint64_t)((double)per_epoch / (1.0 - spec->replay_ratio));
    if ((rc = cli_train_finish(cmd, to, per_epoch)) != 0) goto done;
    rc = 1;
    lma_info("%s: %s, %.2fM parameters, %d steps of %d x %d x %d tokens, %llu training documents, %llu held out",
             cmd, lma_arch_name(m->cfg.arch), (double)lma_model_num_params(m) / 1e6, to->tp.steps, to->tp.B, to->tp.T,
             to->tp.accum, (unsigned long long)lma_loader_train_docs(L), (unsigned long long)lma_loader_val_docs(L));

    lma_batch_source src = lma_loader_batch_source(L);
    lma_trainer_result res;
    to->tp.final_files = cli_final_tokenizer;
    to->tp.final_files_ctx = tokdir;
    lma_status s = lma_train_run(m, &src, &to->tp, &res);
    if (s != LMA_OK) goto done;
    cli_train_mem_report(to, m);
    snprintf(path, sizeof path, "%s/final", run);
    char val[48];
    cli_val_loss_text(res.last_val_loss, val, sizeof val);
    printf("%s: %d steps, final loss %.4f, %s, %.0f tokens/s\n", cmd, res.steps_done, res.last_loss, val,
           res.tokens_per_s);
    if (rs) {
        lma_loader_cursor cur;
        lma_loader_get_cursor(L, &cur);
        double tot = (double)(cur.data_tokens + cur.replay_tokens);
        printf("%s: replay share of training tokens %.4f (asked %.4f)\n", cmd, tot > 0 ? cur.replay_tokens / tot : 0.0,
               spec->replay_ratio);
    }
    printf("%s: %s written to %s (metrics in %s/metrics.jsonl)\n", cmd,
           m->lora ? "adapter (PEFT format)" : "model (HF format)", path, run);
    cli_train_report(cmd, run);
    rc = 0;
done:
    if (rc == 1) cli_fail(cmd, NULL);
    lma_loader_free(L);
    lma_shardset_close(ss);
    lma_shardset_close(rs);
    lma_model_free(m);
    lma_tok_free(tok);
    return rc;
}
