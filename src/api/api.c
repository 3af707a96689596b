/* The public API of include/lmadapt.h where it is more than the internal function of
 * the same name: model load by device name, scoring into a caller's array, generation
 * with default stop tokens and a per-token callback, and one-call training (the same
 * pieces `lmadapt sft` and `lmadapt cpt` put together). The rest of the public
 * functions (tokenizer, chat render, adapter load/save, model save/free, errors) are
 * the internal ones themselves, declared in lmadapt.h with LMA_API. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/backend.h"
#include "core/arena.h"
#include "core/io.h"
#include "core/log.h"
#include "core/threads.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/sft.h"
#include "data/tokenize.h"
#include "infer/generate.h"
#include "infer/score.h"
#include "model/adapter.h"
#include "model/lora.h"
#include "tok/chat_template.h"
#include "train/loader_source.h"
#include "train/trainer.h"

_Static_assert(sizeof(int) == sizeof(int32_t), "token ids: int must be 32 bits");

void lma_free(void *p) { free(p); }

int lma_set_threads(int n) { return lma_threads_set(n); }

/* ---- models ------------------------------------------------------------------- */

lma_status lma_model_load(const char *path_or_name, const char *device, lma_model **out) {
    if (!out) return lma_error(LMA_ERR_ARG, "lma_model_load: out is NULL");
    *out = NULL;
    if (!path_or_name || !*path_or_name) return lma_error(LMA_ERR_ARG, "lma_model_load: no model path or name");
    const lma_backend *be = NULL;
    LMA_TRY(lma_backend_select(device, &be));
    return lma_model_load_ex(path_or_name, be, 0, out);
}

int lma_model_n_vocab(const lma_model *m) { return m ? m->cfg.vocab_size : 0; }
int lma_model_n_ctx(const lma_model *m) { return m ? m->cfg.max_position_embeddings : 0; }
size_t lma_model_n_params(const lma_model *m) { return m ? lma_model_num_params(m) : 0; }
const char *lma_model_device(const lma_model *m) { return m ? m->be->name : ""; }

lma_status lma_score_ids(lma_model *m, const int *ids, int n, float *logprobs) {
    if (!m || !ids || !logprobs) return lma_error(LMA_ERR_ARG, "lma_score_ids: NULL model, ids or logprobs");
    if (n < 2) return lma_error(LMA_ERR_ARG, "lma_score_ids: scoring needs at least 2 tokens (got %d)", n);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return lma_error(LMA_ERR_ARG, "lma_score_ids: ids[%d] = %d is outside the vocabulary [0, %d)", i, ids[i],
                             m->cfg.vocab_size);
    lma_score_result r;
    LMA_TRY(lma_score(m, (const int32_t *)ids, (size_t)n, &r));
    memcpy(logprobs, r.logprobs, r.n * sizeof(float));
    free(r.logprobs);
    return LMA_OK;
}

double lma_perplexity(const float *logprobs, int n) {
    if (!logprobs || n < 1) return NAN;
    double nll = 0;
    for (int i = 0; i < n; i++) nll -= logprobs[i];
    return exp(nll / n);
}

lma_status lma_adapter_merge(lma_model *m) {
    if (!m) return lma_error(LMA_ERR_ARG, "lma_adapter_merge: NULL model");
    if (!m->lora) return lma_error(LMA_ERR_ARG, "lma_adapter_merge: the model has no adapter attached");
    return lma_lora_merge(m);
}

/* ---- generation ----------------------------------------------------------------- */

lma_generate_params lma_generate_default_params(void) {
    lma_generate_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 256;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    return p;
}

/* The model's eos ids, the tokenizer's eos and the end-of-turn tokens of the templates
 * (what `lmadapt chat` stops at). */
static int default_stops(const lma_model *m, const lma_tokenizer *tok, int32_t *stops, int cap) {
    int n = 0;
    if (m->path) n = lma_generation_eos(m->path, &m->cfg, stops, cap - 5);
    else
        for (int i = 0; i < m->cfg.n_eos && n < cap - 5; i++) stops[n++] = m->cfg.eos_token_ids[i];
    if (!tok) return n;
    if (lma_tok_eos_id(tok) >= 0) stops[n++] = lma_tok_eos_id(tok);
    static const char *eot[] = {"<|eot_id|>", "<|im_end|>", "</s>", "<|end_of_text|>"};
    for (size_t i = 0; i < sizeof eot / sizeof eot[0]; i++) {
        int32_t id = lma_tok_token_to_id(tok, eot[i]);
        if (id >= 0) stops[n++] = id;
    }
    return n;
}

/* A prompt's ids within the vocabulary (who names the caller in messages). */
static lma_status check_prompt(const char *who, const lma_model *m, const int32_t *prompt, size_t n_prompt) {
    if (!prompt) return lma_error(LMA_ERR_ARG, "%s: NULL prompt", who);
    if (n_prompt < 1) return lma_error(LMA_ERR_ARG, "%s: the prompt is empty", who);
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= m->cfg.vocab_size)
            return lma_error(LMA_ERR_ARG, "%s: prompt[%zu] = %d is outside the vocabulary [0, %d)", who, i, prompt[i],
                             m->cfg.vocab_size);
    return LMA_OK;
}

/* Checks p and fills gp (the default stop ids into stops: read once per call). */
static lma_status gen_params(const char *who, lma_model *m, const lma_tokenizer *tok, const lma_generate_params *p,
                             int32_t *stops, lma_gen_params *gp) {
    if (!m || !p) return lma_error(LMA_ERR_ARG, "%s: NULL model or params", who);
    if (p->max_tokens < 0 || p->temperature < 0 || p->top_k < 0 || p->top_p <= 0 || p->top_p > 1 || p->min_p < 0 ||
        p->min_p >= 1 || p->repetition_penalty <= 0 || p->n_stop_ids < 0 || p->n_stop_strings < 0 ||
        (p->n_stop_strings > 0 && !p->stop_strings))
        return lma_error(LMA_ERR_ARG, "%s: a sampling parameter is out of range", who);
    memset(gp, 0, sizeof *gp);
    gp->max_tokens = p->max_tokens;
    gp->sample.temperature = p->temperature;
    gp->sample.top_k = p->top_k;
    gp->sample.top_p = p->top_p;
    gp->sample.min_p = p->min_p;
    gp->sample.repetition_penalty = p->repetition_penalty;
    gp->seed = p->seed;
    if (p->stop_ids) { gp->stop_ids = p->stop_ids; gp->n_stop_ids = p->n_stop_ids; }
    else { gp->stop_ids = stops; gp->n_stop_ids = default_stops(m, tok, stops, 32); }
    gp->stop_strings = p->stop_strings;
    gp->n_stop_strings = tok ? p->n_stop_strings : 0;
    gp->on_token = p->on_token;
    gp->ctx = p->user_data;
    return LMA_OK;
}

lma_status lma_generate_text(lma_model *m, const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                             const lma_generate_params *p, char **text, size_t *len, int32_t **ids, size_t *n_ids) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    int32_t stops[32];
    lma_gen_params gp;
    LMA_TRY(gen_params("lma_generate_text", m, tok, p, stops, &gp));
    LMA_TRY(check_prompt("lma_generate_text", m, prompt, n_prompt));
    lma_gen_result r;
    LMA_TRY(lma_generate(m, tok, prompt, n_prompt, &gp, &r));
    if (text) *text = r.text; else free(r.text);
    if (len) *len = r.len;
    if (ids) *ids = r.ids; else free(r.ids);
    if (n_ids) *n_ids = r.n_ids;
    return LMA_OK;
}

lma_status lma_generate_batch_text(lma_model *m, const lma_tokenizer *tok, const int32_t *const *prompts,
                                   const size_t *n_prompts, size_t n, int max_active, const lma_generate_params *p,
                                   char **texts, size_t *lens, int32_t **ids, size_t *n_ids) {
    for (size_t i = 0; i < n; i++) {
        if (texts) texts[i] = NULL;
        if (lens) lens[i] = 0;
        if (ids) ids[i] = NULL;
        if (n_ids) n_ids[i] = 0;
    }
    if (n && (!prompts || !n_prompts)) return lma_error(LMA_ERR_ARG, "lma_generate_batch_text: NULL prompts");
    if (max_active < 1) return lma_error(LMA_ERR_ARG, "lma_generate_batch_text: max_active must be >= 1");
    int32_t stops[32];
    lma_gen_params gp;
    lma_gen_request *rq = lma_calloc(n ? n : 1, sizeof *rq, "generation requests");
    lma_gen_result *r = lma_calloc(n ? n : 1, sizeof *r, "generation requests");
    lma_status st = rq && r ? gen_params("lma_generate_batch_text", m, tok, p, stops, &gp) : LMA_ERR_NOMEM;
    gp.on_token = NULL; /* one callback could not tell the sequences apart */
    for (size_t i = 0; st == LMA_OK && i < n; i++) {
        st = check_prompt("lma_generate_batch_text", m, prompts[i], n_prompts[i]);
        rq[i] = (lma_gen_request){prompts[i], n_prompts[i], &gp};
    }
    if (st == LMA_OK) st = lma_generate_batch(m, tok, rq, n, max_active, r);
    for (size_t i = 0; st == LMA_OK && i < n; i++) {
        if (texts) texts[i] = r[i].text; else free(r[i].text);
        if (lens) lens[i] = r[i].len;
        if (ids) ids[i] = r[i].ids; else free(r[i].ids);
        if (n_ids) n_ids[i] = r[i].n_ids;
    }
    free(rq); free(r);
    return st;
}

/* ---- training ------------------------------------------------------------------- */

lma_train_params lma_train_default_params(void) {
    lma_trainer_params t = lma_trainer_default_params();
    lma_train_params p;
    memset(&p, 0, sizeof p);
    p.kind = LMA_TRAIN_TEXT;
    p.steps = t.steps;
    p.batch = t.B;
    p.seq = t.T;
    p.accum = t.accum;
    p.lr = (float)t.sched.lr;
    p.min_lr = (float)t.sched.min_lr;
    p.warmup_steps = t.sched.warmup_steps;
    p.weight_decay = t.opt.weight_decay;
    p.clip = t.opt.clip;
    p.seed = 1234;
    p.lora_alpha = 16;
    p.lora_targets = "all";
    p.quiet = 1;
    return p;
}


/* The model's tokenizer files (and generation_config.json) beside the trained weights,
 * as the CLI writes them; nothing when the model's source has no tokenizer. */
static lma_status copy_tokenizer(const char *src, const char *dst) {
    char a[4600], b[4600];
    if (!src) return LMA_OK;
    if (lma_is_dir(src)) {
        snprintf(a, sizeof a, "%s/generation_config.json", src);
        snprintf(b, sizeof b, "%s/generation_config.json", dst);
        if (lma_file_exists(a)) LMA_TRY(lma_copy_file(a, b));
        snprintf(a, sizeof a, "%s/tokenizer.json", src);
        if (!lma_file_exists(a)) return LMA_OK;
    }
    return lma_tok_save_files(src, dst);
}

lma_status lma_train(lma_model *m, const lma_tokenizer *tok, const lma_train_params *p, float *final_loss) {
    if (final_loss) *final_loss = 0;
    if (!m || !tok || !p) return lma_error(LMA_ERR_ARG, "lma_train: NULL model, tokenizer or params");
    if (!p->data || !p->out_dir) return lma_error(LMA_ERR_ARG, "lma_train: data and out_dir are required");
    if (p->kind != LMA_TRAIN_TEXT && p->kind != LMA_TRAIN_CHAT)
        return lma_error(LMA_ERR_ARG, "lma_train: kind must be LMA_TRAIN_TEXT or LMA_TRAIN_CHAT");
    if (p->steps < 1 || p->batch < 1 || p->seq < 2 || p->accum < 1 || !(p->lr > 0) || p->min_lr < 0 ||
        p->warmup_steps < 0 || p->weight_decay < 0 || p->clip < 0 || p->lora_r < 0 ||
        p->val_fraction < 0 || p->val_fraction >= 1 || p->lora_dropout < 0 || p->lora_dropout >= 1)
        return lma_error(LMA_ERR_ARG, "lma_train: a parameter is out of range");
    if (p->seq > m->cfg.max_position_embeddings)
        return lma_error(LMA_ERR_ARG, "lma_train: seq %d exceeds the model's %d positions", p->seq,
                         m->cfg.max_position_embeddings);
    if (lma_tok_vocab_size(tok) > m->cfg.vocab_size)
        return lma_error(LMA_ERR_SHAPE, "lma_train: the tokenizer has %d tokens, the model only %d",
                         lma_tok_vocab_size(tok), m->cfg.vocab_size);
    if (p->lora_r > 0 && m->lora)
        return lma_error(LMA_ERR_ARG, "lma_train: lora_r > 0 but the model already has an adapter (lora_r 0 trains it)");

    lma_trainer_params tp = lma_trainer_default_params();
    tp.out_dir = p->out_dir;
    tp.steps = p->steps;
    tp.B = p->batch;
    tp.T = p->seq;
    tp.accum = p->accum;
    tp.sched.lr = p->lr;
    tp.sched.min_lr = p->min_lr;
    tp.sched.total_steps = p->steps;
    tp.sched.warmup_steps = p->warmup_steps >= p->steps ? p->steps / 10 : p->warmup_steps;
    tp.opt.weight_decay = p->weight_decay;
    tp.opt.clip = p->clip;
    tp.save_every = p->save_every;
    tp.eval_every = p->eval_every;
    tp.resume = p->resume;
    tp.quiet = p->quiet;
    tp.on_step = p->on_step;
    tp.on_step_ctx = p->user_data;
    if (p->kind == LMA_TRAIN_CHAT) tp.eval_batches = 0;

    lma_status s = lma_mkdir_p(p->out_dir);
    char path[4400];
    int attached = 0;
    lma_sft_pair ss = {0};
    lma_sft_set *ts = NULL, *vs = NULL;
    lma_shardset *shards = NULL;
    lma_loader *L = NULL;
    lma_batch_source src;
    if (s != LMA_OK) return s;

    /* data */
    if (p->kind == LMA_TRAIN_CHAT) {
        lma_sft_params sp = {.template_spec = p->chat_template, .all_tokens = p->all_tokens, .max_len = p->seq};
        lma_sft_stats st;
        s = lma_sft_load(p->data, tok, &sp, &ts, &st);
        if (s == LMA_OK && p->val_data) s = lma_sft_load(p->val_data, tok, &sp, &vs, &st);
        int32_t pad = lma_tok_eos_id(tok) >= 0 ? lma_tok_eos_id(tok) : 0;
        if (s == LMA_OK) s = lma_sft_batcher_create(ts, p->batch, p->seq, 1, pad, p->seed, 1, 0, &ss.train);
        if (s == LMA_OK && vs) s = lma_sft_batcher_create(vs, p->batch, p->seq, 1, pad, p->seed, 0, 1, &ss.val);
        src = lma_sft_batch_source(&ss);
    } else {
        char bin[4400];
        snprintf(path, sizeof path, "%s/data", p->out_dir);
        snprintf(bin, sizeof bin, "%s/data/train.bin", p->out_dir);
        s = lma_mkdir_p(path);
        if (s == LMA_OK && !(p->resume && lma_file_exists(bin))) {
            lma_text_source_params xp = lma_text_source_default_params();
            xp.split_blank_lines = 1;
            xp.progress = !p->quiet;
            xp.progress_label = "tokenizing";
            const char *paths[1] = {p->data};
            s = lma_tokenize_to_shard(paths, 1, &xp, tok, 1, bin, NULL);
        }
        const char *bins[1] = {bin};
        if (s == LMA_OK) s = lma_shardset_open(bins, 1, &shards);
        if (s == LMA_OK) {
            lma_loader_params lp = lma_loader_default_params();
            lp.B = p->batch;
            lp.T = p->seq;
            lp.seed = p->seed;
            lp.val_fraction = p->val_fraction;
            s = lma_loader_create(shards, &lp, &L);
        }
        if (s == LMA_OK) src = lma_loader_batch_source(L);
    }

    /* LoRA */
    if (s == LMA_OK && p->lora_r > 0) {
        lma_lora_params lp = lma_lora_default_params();
        lp.r = p->lora_r;
        lp.alpha = p->lora_alpha;
        lp.dropout = p->lora_dropout;
        s = lma_lora_parse_targets(p->lora_targets ? p->lora_targets : "all", &lp.targets);
        if (s == LMA_OK) s = lma_lora_attach(m, &lp, p->seed ^ 0x10a4ULL);
        attached = s == LMA_OK;
    }

    lma_trainer_result res;
    memset(&res, 0, sizeof res);
    if (s == LMA_OK) s = lma_train_run(m, &src, &tp, &res);
    if (s == LMA_OK) {
        snprintf(path, sizeof path, "%s/final", p->out_dir);
        s = copy_tokenizer(m->path, path);
    }
    if (s == LMA_OK && final_loss) *final_loss = res.last_loss;
    if (s != LMA_OK && attached && res.steps_done == 0) lma_lora_detach(m); /* nothing trained: as it was */
    lma_sft_batcher_free(ss.train);
    lma_sft_batcher_free(ss.val);
    lma_sft_free(ts);
    lma_sft_free(vs);
    lma_loader_free(L);
    lma_shardset_close(shards);
    return s;
}
