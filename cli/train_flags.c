#include "train_flags.h"
#include <stdlib.h>
#include <string.h>
#include "cli.h"

enum {
    O_OUT = 1000, O_STEPS, O_EPOCHS, O_BATCH, O_SEQ, O_ACCUM, O_LR, O_MIN_LR, O_WARMUP, O_SCHEDULE, O_WD,
    O_CLIP, O_SEED, O_SAVE_EVERY, O_EVAL_EVERY, O_EVAL_BATCHES, O_KEEP, O_RESUME, O_VAL_FRACTION, O_SPIKE_Z,
    O_NAN_ABORT, O_THREADS, O_DEVICE, O_METHOD, O_LORA_R, O_LORA_ALPHA, O_LORA_DROPOUT, O_LORA_TARGETS, O_RSLORA,
    O_GRAD_CKPT
};

static const struct option shared[] = {
    {"out", required_argument, 0, O_OUT},           {"steps", required_argument, 0, O_STEPS},
    {"epochs", required_argument, 0, O_EPOCHS},     {"batch", required_argument, 0, O_BATCH},
    {"seq", required_argument, 0, O_SEQ},           {"accum", required_argument, 0, O_ACCUM},
    {"lr", required_argument, 0, O_LR},             {"min-lr", required_argument, 0, O_MIN_LR},
    {"warmup", required_argument, 0, O_WARMUP},     {"schedule", required_argument, 0, O_SCHEDULE},
    {"weight-decay", required_argument, 0, O_WD},   {"clip", required_argument, 0, O_CLIP},
    {"seed", required_argument, 0, O_SEED},         {"save-every", required_argument, 0, O_SAVE_EVERY},
    {"eval-every", required_argument, 0, O_EVAL_EVERY}, {"eval-batches", required_argument, 0, O_EVAL_BATCHES},
    {"keep", required_argument, 0, O_KEEP},         {"resume", required_argument, 0, O_RESUME},
    {"val-fraction", required_argument, 0, O_VAL_FRACTION}, {"spike-z", required_argument, 0, O_SPIKE_Z},
    {"nan-abort", required_argument, 0, O_NAN_ABORT}, {"threads", required_argument, 0, O_THREADS},
    {"device", required_argument, 0, O_DEVICE},
    {"method", required_argument, 0, O_METHOD},     {"lora-r", required_argument, 0, O_LORA_R},
    {"lora-alpha", required_argument, 0, O_LORA_ALPHA}, {"lora-dropout", required_argument, 0, O_LORA_DROPOUT},
    {"lora-targets", required_argument, 0, O_LORA_TARGETS}, {"rslora", no_argument, 0, O_RSLORA},
    {"grad-ckpt", no_argument, 0, O_GRAD_CKPT},
};

void cli_train_opts_init(cli_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->tp = lma_trainer_default_params();
    o->tp.save_every = 100;
    o->tp.eval_every = 100;
    o->tp.eval_batches = 20;
    o->seed = 1234;
    o->val_fraction = 0.01;
    o->method = CLI_METHOD_FULL;
    o->lora = lma_lora_default_params();
    o->lora.r = 16;
    o->lora.alpha = 32;
    o->lora.dropout = 0.05f;
}

void cli_train_long_options(const struct option *own, struct option *out, int cap) {
    int k = 0;
    for (; own[k].name && k < cap - 1; k++) out[k] = own[k];
    for (size_t i = 0; i < sizeof shared / sizeof shared[0] && k < cap - 1; i++) out[k++] = shared[i];
    memset(&out[k], 0, sizeof out[k]);
}

static int num(const char *cmd, const char *name, const char *arg, double lo, double hi, double *v) {
    char *end;
    *v = strtod(arg, &end);
    if (end == arg || *end || *v < lo || *v > hi) {
        cli_usage_error(cmd, "--%s: '%s' is not a number in [%g, %g]", name, arg, lo, hi);
        return 0;
    }
    return 1;
}

int cli_train_opt(const char *cmd, cli_train_opts *o, int code, const char *arg) {
    lma_trainer_params *p = &o->tp;
    double v = 0;
#define NUM(name, lo, hi) do { if (!num(cmd, name, arg, lo, hi, &v)) return -1; } while (0)
    switch (code) {
    case O_OUT: p->out_dir = arg; return 1;
    case O_STEPS: NUM("steps", 1, 1e9); p->steps = (int)v; o->steps_given = 1; return 1;
    case O_EPOCHS: NUM("epochs", 1, 1e6); o->epochs = (int)v; return 1;
    case O_BATCH: NUM("batch", 1, 1e6); p->B = (int)v; return 1;
    case O_SEQ: NUM("seq", 2, 1e7); p->T = (int)v; return 1;
    case O_ACCUM: NUM("accum", 1, 1e6); p->accum = (int)v; return 1;
    case O_LR: NUM("lr", 0, 10); p->sched.lr = v; return 1;
    case O_MIN_LR: NUM("min-lr", 0, 10); p->sched.min_lr = v; return 1;
    case O_WARMUP: NUM("warmup", 0, 1e9); p->sched.warmup_steps = (int)v; return 1;
    case O_SCHEDULE: {
        int k = lma_schedule_parse_kind(arg);
        if (k < 0) { cli_usage_error(cmd, "--schedule must be cosine, linear or constant"); return -1; }
        p->sched.kind = (lma_sched_kind)k;
        return 1;
    }
    case O_WD: NUM("weight-decay", 0, 10); p->opt.weight_decay = (float)v; return 1;
    case O_CLIP: NUM("clip", 0, 1e9); p->opt.clip = (float)v; return 1;
    case O_SEED: NUM("seed", 0, 1.8e19); o->seed = (uint64_t)v; return 1;
    case O_SAVE_EVERY: NUM("save-every", 0, 1e9); p->save_every = (int)v; return 1;
    case O_EVAL_EVERY: NUM("eval-every", 0, 1e9); p->eval_every = (int)v; return 1;
    case O_EVAL_BATCHES: NUM("eval-batches", 0, 1e9); p->eval_batches = (int)v; return 1;
    case O_KEEP: NUM("keep", 1, 1e6); p->keep_last = (int)v; return 1;
    case O_RESUME: p->out_dir = arg; p->resume = 1; return 1;
    case O_VAL_FRACTION: NUM("val-fraction", 0, 0.5); o->val_fraction = v; return 1;
    case O_SPIKE_Z: NUM("spike-z", 0, 1e6); p->spike_z = v; return 1;
    case O_NAN_ABORT: NUM("nan-abort", 1, 1e6); p->nan_abort_after = (int)v; return 1;
    case O_THREADS: NUM("threads", 0, 4096); o->threads = (int)v; return 1;
    case O_DEVICE: o->device = arg; return 1;
    case O_METHOD:
        if (!strcmp(arg, "full")) o->method = CLI_METHOD_FULL;
        else if (!strcmp(arg, "lora")) o->method = CLI_METHOD_LORA;
        else if (!strcmp(arg, "qlora")) o->method = CLI_METHOD_QLORA;
        else { cli_usage_error(cmd, "--method must be full, lora or qlora"); return -1; }
        return 1;
    case O_LORA_R: NUM("lora-r", 1, 65536); o->lora.r = (int)v; return 1;
    case O_LORA_ALPHA: NUM("lora-alpha", 0, 1e6); o->lora.alpha = (float)v; return 1;
    case O_LORA_DROPOUT: NUM("lora-dropout", 0, 0.99); o->lora.dropout = (float)v; return 1;
    case O_LORA_TARGETS:
        if (lma_lora_parse_targets(arg, &o->lora.targets) != LMA_OK) {
            cli_usage_error(cmd, "--lora-targets: %s", lma_last_error());
            return -1;
        }
        return 1;
    case O_RSLORA: o->lora.rslora = 1; return 1;
    case O_GRAD_CKPT: o->grad_ckpt = 1; return 1;
    }
#undef NUM
    return 0;
}

int cli_train_finish(const char *cmd, cli_train_opts *o, uint64_t train_tokens) {
    lma_trainer_params *p = &o->tp;
    if (!p->out_dir) return cli_usage_error(cmd, "--out RUN_DIR (or --resume RUN_DIR) is required");
    if (o->epochs > 0) {
        if (o->steps_given) return cli_usage_error(cmd, "give --steps or --epochs, not both");
        uint64_t per = (uint64_t)p->B * p->T * p->accum;
        uint64_t s = (train_tokens * (uint64_t)o->epochs + per - 1) / per;
        p->steps = s < 1 ? 1 : s > 1000000000ULL ? 1000000000 : (int)s;
    }
    p->sched.total_steps = p->steps;
    if (p->sched.warmup_steps >= p->steps) p->sched.warmup_steps = p->steps / 10;
    return 0;
}

void cli_train_help(FILE *f) {
    fprintf(f,
            "Training options (shared by every training command):\n"
            "  --out DIR            run directory: metrics.jsonl, ckpt-<step>/, latest, final/ (required)\n"
            "  --resume DIR         continue the run in DIR from its newest good checkpoint\n"
            "  --steps N            optimizer steps (default 100)\n"
            "  --epochs N           passes over the training tokens instead of --steps\n"
            "  --batch B            sequences per micro-batch (default 8)\n"
            "  --seq T              tokens per sequence (default 256)\n"
            "  --accum K            micro-batches per optimizer step (default 1)\n"
            "  --lr X               peak learning rate (default 3e-4)\n"
            "  --min-lr X           final learning rate of the decay (default 3e-5)\n"
            "  --warmup N           linear warmup steps (default 10)\n"
            "  --schedule S         cosine | linear | constant (default cosine)\n"
            "  --weight-decay X     AdamW decoupled weight decay on matrices (default 0.1)\n"
            "  --clip X             max global gradient norm, 0 = off (default 1.0)\n"
            "  --seed N             data order and initialisation seed (default 1234)\n"
            "  --val-fraction X     share of documents held out for validation (default 0.01)\n"
            "  --save-every N       checkpoint every N steps (default 100; always at the end)\n"
            "  --eval-every N       validation every N steps (default 100; always at the end)\n"
            "  --eval-batches N     validation batches per evaluation, 0 = all (default 20)\n"
            "  --keep K             checkpoints kept (default 3)\n"
            "  --spike-z Z          skip updates whose loss is Z std devs above the recent mean (0 = off)\n"
            "  --nan-abort K        stop after K consecutive non-finite steps (default 5)\n"
            "  --threads N          CPU threads (default: all cores, or LMA_THREADS)\n"
            "  --device D           cpu | cuda | cuda-fp32 (default: cuda when a GPU is present)\n"
            "  --grad-ckpt          activation checkpointing: keep each layer's input only and recompute\n"
            "                       the layer in the backward (less memory, about 1/3 more compute)\n"
            "Parameter-efficient fine-tuning (sft, cpt):\n"
            "  --method M           full | lora | qlora (default full). lora: frozen fp32 base + LoRA\n"
            "                       adapters; qlora: the base's projections stored as NF4 (block 64,\n"
            "                       double-quantized constants). The run saves a PEFT adapter dir.\n"
            "                       On cuda the frozen base is kept in bf16 only (no fp32 copy).\n"
            "  --lora-r R           adapter rank (default 16)\n"
            "  --lora-alpha A       scale numerator: s = A/R, or A/sqrt(R) with --rslora (default 32)\n"
            "  --lora-dropout P     dropout on the adapter input during training (default 0.05)\n"
            "  --lora-targets T     all | attn | mlp | a list of q,k,v,o,gate,up,down (default all)\n"
            "  --rslora             rank-stabilized scaling alpha/sqrt(r)\n"
            "Ctrl-C saves a checkpoint and exits; --resume continues bitwise-identically on CPU.\n");
}

/* 1234567 -> "1,234,567" (as Python's {:,d}) */
static void commas(size_t v, char *out, size_t cap) {
    char d[32];
    int n = snprintf(d, sizeof d, "%zu", v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[k++] = ',';
        out[k++] = d[i];
    }
    out[k] = 0;
}

lma_status cli_train_backend(const cli_train_opts *o, const lma_backend **be) {
    return lma_backend_select(o->device, be);
}

lma_status cli_train_load_model(const cli_train_opts *o, const char *dir, lma_model **out) {
    *out = NULL;
    lma_model *m = NULL;
    const lma_backend *be = NULL;
    LMA_TRY(cli_train_backend(o, &be));
    /* an adapter's base is only read: on cuda it is kept in bf16 only (no fp32 copy) */
    if (o->method == CLI_METHOD_QLORA) LMA_TRY(lma_model_load_nf4(dir, be, &m));
    else LMA_TRY(lma_model_load_ex(dir, be, o->method == CLI_METHOD_LORA ? LMA_MODEL_FROZEN : 0, &m));
    if (o->method != CLI_METHOD_FULL) {
        lma_status s = lma_lora_attach(m, &o->lora, o->seed ^ 0x10a4ULL);
        if (s != LMA_OK) { lma_model_free(m); return s; }
        size_t tr, all;
        char a[40], b[40];
        lma_lora_counts(m, &tr, &all);
        commas(tr, a, sizeof a);
        commas(all, b, sizeof b);
        printf("trainable params: %s || all params: %s || trainable%%: %.4f\n", a, b, 100.0 * (double)tr / (double)all);
        fflush(stdout);
    }
    cli_train_model_opts(o, m);
    *out = m;
    return LMA_OK;
}

void cli_train_model_opts(const cli_train_opts *o, lma_model *m) {
    m->grad_ckpt = o->grad_ckpt;
    if (o->grad_ckpt) {
        printf("activation checkpointing: each layer is recomputed in the backward\n");
        fflush(stdout);
    }
}
