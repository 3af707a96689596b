#include "train_flags.h"
#include "advise/mem.h"
#include "core/model_path.h"
#include "model/weight_source.h"
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "core/io.h"
#include "core/json.h"
#include "core/outdir.h"
#include "outputs.h"
#include "dist.h"
#include "report/report.h"

void cli_train_opts_init(cli_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->tp = lma_trainer_default_params();
    o->tp.save_every = 100;
    o->tp.eval_every = 100;
    o->tp.eval_batches = 20;
    o->seed = 1234;
    o->val_fraction = 0.01;
    o->method = CLI_METHOD_FULL;
    o->schedule = (int)o->tp.sched.kind;
    o->lora = lma_lora_default_params();
    o->lora.r = 16;
    o->lora.alpha = 32;
    o->lora.dropout = 0.05f;
    o->lora_targets = "all";
}

static const char *const sched_names[] = {"cosine", "linear", "constant", NULL};
static const int sched_values[] = {LMA_SCHED_COSINE, LMA_SCHED_LINEAR, LMA_SCHED_CONSTANT};
static const char *const method_names[] = {"full", "lora", "qlora", NULL};

void cli_train_table(cli_train_opts *o, cli_opt t[CLI_TRAIN_NOPTS]) {
    lma_trainer_params *p = &o->tp;
    int k = 0;
    o->tp.sched.min_lr = o->tp.sched.lr / 10; /* shown as the default; cli_train_check derives it again */
    t[k++] = (cli_opt)CLI_STR("out", 'o', &p->out_dir, "DIR", "run directory: metrics.jsonl, ckpt-<step>/, latest, final/\n"
                              "(required, or --resume)", .flags = CLI_OUT);
    t[k++] = (cli_opt)CLI_STR("resume", 0, &o->resume_dir, "DIR", "continue the run in DIR from its newest good checkpoint,\n"
                              "with the settings stored in DIR/run.json", .flags = CLI_OUT);
    t[k++] = (cli_opt)CLI_BOOL("overwrite", 0, &o->overwrite, "replace whatever --out holds (a finished run, other files)");
    t[k++] = (cli_opt)CLI_INT("steps", 0, &p->steps, 1, 1000000000, "N", "optimizer steps");
    t[k++] = (cli_opt)CLI_INT("epochs", 0, &o->epochs, 1, 1000000, "N", "passes over the training tokens instead of --steps",
                              .flags = CLI_NO_DEFAULT);
    t[k++] = (cli_opt)CLI_INT("batch", 0, &p->B, 1, 1000000, "B", "sequences per micro-batch");
    t[k++] = (cli_opt)CLI_INT("seq", 0, &p->T, 2, 10000000, "T", "tokens per sequence");
    t[k++] = (cli_opt)CLI_INT("accum", 0, &p->accum, 1, 1000000, "K", "micro-batches per optimizer step");
    t[k++] = (cli_opt)CLI_REALV("lr", 0, &p->sched.lr, 0, 10, "X", "peak learning rate");
    t[k++] = (cli_opt)CLI_REALV("min-lr", 0, &p->sched.min_lr, 0, 10, "X", "final learning rate of the decay, <= --lr",
                                .def_text = "--lr / 10");
    t[k++] = (cli_opt)CLI_INT("warmup", 0, &p->sched.warmup_steps, 0, 1000000000, "N",
                              "linear warmup steps (--steps / 10 when not below --steps)");
    t[k++] = (cli_opt)CLI_CHOOSE("schedule", 0, &o->schedule, sched_names, sched_values, NULL, "learning-rate decay");
    t[k++] = (cli_opt)CLI_FLT("weight-decay", 0, &p->opt.weight_decay, 0, 10, "X", "AdamW decoupled weight decay on matrices");
    t[k++] = (cli_opt)CLI_FLT("clip", 0, &p->opt.clip, 0, 1e9, "X", "max global gradient norm, 0 = off");
    t[k++] = (cli_opt)CLI_U64("seed", 0, &o->seed, "N", "data order and initialisation seed");
    t[k++] = (cli_opt)CLI_REALV("val-fraction", 0, &o->val_fraction, 0, 0.5, "X", "share of documents held out for validation");
    t[k++] = (cli_opt)CLI_INT("save-every", 0, &p->save_every, 0, 1000000000, "N", "checkpoint every N steps (always at the end)");
    t[k++] = (cli_opt)CLI_INT("eval-every", 0, &p->eval_every, 0, 1000000000, "N", "validation every N steps (always at the end)");
    t[k++] = (cli_opt)CLI_INT("eval-batches", 0, &p->eval_batches, 0, 1000000000, "N",
                              "validation batches per evaluation, 0 = all");
    t[k++] = (cli_opt)CLI_INT("keep", 0, &p->keep_last, 1, 1000000, "K", "checkpoints kept");
    t[k++] = (cli_opt)CLI_REALV("spike-z", 0, &p->spike_z, 0, 1e6, "Z",
                                "skip updates whose loss is Z std devs above the recent mean (0 = off)");
    t[k++] = (cli_opt)CLI_INT("nan-abort", 0, &p->nan_abort_after, 1, 1000000, "K", "stop after K consecutive non-finite steps");
    t[k++] = (cli_opt)CLI_OPT_THREADS(&o->threads);
    t[k++] = (cli_opt)CLI_OPT_DEVICE(&o->device);
    t[k++] = (cli_opt)CLI_STR("rope-scaling", 0, &o->rope_scaling, "TYPE:F",
                              "extend the context F times: linear | dynamic | yarn | llama3, written\n"
                              "to config.json as transformers reads it (docs/training.md)");
    t[k++] = (cli_opt)CLI_BOOL("grad-ckpt", 0, &o->grad_ckpt, "activation checkpointing: keep each layer's input only and\n"
                               "recompute the layer in the backward (less memory, about 1/3 more compute)");
    t[k++] = (cli_opt)CLI_INT("zero", 0, &o->zero, 0, 2, "N",
                              "data-parallel ZeRO stage under a launcher (lmadapt launch, torchrun\n"
                              "variables, mpirun, srun): 0 all-reduce, 1 optimizer state sharded,\n"
                              "2 gradients and optimizer state sharded (docs/distributed.md)");
    t[k] = (cli_opt)CLI_END;
}

void cli_peft_table(cli_train_opts *o, cli_opt t[CLI_PEFT_NOPTS]) {
    int k = 0;
    t[k++] = (cli_opt)CLI_CHOOSE("method", 0, &o->method, method_names, NULL, NULL,
                                 "lora: frozen fp32 base + LoRA adapters; qlora: the base's\n"
                                 "projections stored as NF4 (block 64, double-quantized constants).\n"
                                 "The run then saves a PEFT adapter dir. On cuda the frozen base\n"
                                 "is kept in bf16 only (no fp32 copy).");
    t[k++] = (cli_opt)CLI_INT("lora-r", 0, &o->lora.r, 1, 65536, "R", "adapter rank");
    t[k++] = (cli_opt)CLI_FLT("lora-alpha", 0, &o->lora.alpha, 0, 1e6, "A", "scale numerator: s = A/R, or A/sqrt(R) with --rslora");
    t[k++] = (cli_opt)CLI_FLT("lora-dropout", 0, &o->lora.dropout, 0, 0.99, "P", "dropout on the adapter input during training");
    t[k++] = (cli_opt)CLI_STR("lora-targets", 0, &o->lora_targets, "T", "all | attn | mlp | a list of q,k,v,o,gate,up,down");
    t[k++] = (cli_opt)CLI_BOOL("rslora", 0, &o->lora.rslora, "rank-stabilized scaling alpha/sqrt(r)");
    t[k] = (cli_opt)CLI_END;
}

int cli_train_check(const cli_args *a, cli_train_opts *o) {
    lma_trainer_params *p = &o->tp;
    const char *cmd = a->spec->cmd;
    if (o->resume_dir) {
        if (p->out_dir && strcmp(p->out_dir, o->resume_dir))
            return cli_usage_error(cmd, "--out %s and --resume %s: give one run directory", p->out_dir, o->resume_dir);
        p->out_dir = o->resume_dir;
        p->resume = 1;
    }
    if (!p->out_dir) return cli_usage_error(cmd, "--out RUN_DIR (or --resume RUN_DIR) is required");
    if (!cli_given(a, "min-lr")) p->sched.min_lr = p->sched.lr / 10;
    if (cli_require(a, p->sched.min_lr <= p->sched.lr, "min-lr", "<=", "lr")) return 2;
    o->steps_given = cli_given(a, "steps");
    if (o->steps_given && cli_given(a, "epochs")) return cli_usage_error(cmd, "give --steps or --epochs, not both");
    p->sched.kind = (lma_sched_kind)o->schedule;
    if (o->lora_targets && lma_lora_parse_targets(o->lora_targets, &o->lora.targets) != LMA_OK)
        return cli_usage_error(cmd, "--lora-targets %s: %s", o->lora_targets, lma_last_error());
    if (cli_dist_setup(cmd, o)) return 1;
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

void cli_train_mem_predict(cli_train_opts *o, const lma_config *c, const lma_backend *be, const char *dir) {
    if (be->act_bytes != 2 && be != lma_backend_cpu() && be != lma_backend_cpu_bf16()) return; /* cuda-fp32, ref */
    lma_mem_request r = lma_mem_default_request();
    r.method = o->method == CLI_METHOD_FULL ? LMA_MEM_FULL : o->method == CLI_METHOD_LORA ? LMA_MEM_LORA : LMA_MEM_QLORA;
    r.cuda = be->act_bytes == 2;
    r.cpu_bf16 = be == lma_backend_cpu_bf16();
    r.B = o->tp.B;
    r.T = o->tp.T;
    r.grad_ckpt = o->grad_ckpt;
    r.lora = o->lora;
    r.source_bytes = dir && !r.cuda ? lma_mem_source_bytes(dir) : 0;
    r.save = 1;
    lma_mem_plan p;
    if (lma_mem_predict(c, &r, &p) != LMA_OK) { lma_clear_error(); return; }
    o->tp.mem_pred_gib = p.peak / 1073741824.0;
    printf("memory: predicted peak %.2f GiB of %s (%s phase; lmadapt mem for the breakdown)\n", o->tp.mem_pred_gib,
           r.cuda ? "device allocations" : "process RSS", p.phase);
    fflush(stdout);
}

void cli_train_mem_report(const cli_train_opts *o, const lma_model *m) {
    if (o->tp.mem_pred_gib <= 0) return;
    double peak = lma_backend_peak_bytes(m->be) / 1073741824.0;
    printf("memory: measured peak %.2f GiB, predicted %.2f GiB (%+.1f%%)\n", peak, o->tp.mem_pred_gib,
           100.0 * (o->tp.mem_pred_gib - peak) / peak);
}

void cli_train_report(const char *cmd, const char *run) {
    if (cli_dist_rank() != 0) return; /* one report, from rank 0 */
    char path[4200];
    lma_status s = lma_path_join(path, sizeof path, run, "report.html");
    if (s == LMA_OK) s = lma_report_write(&run, 1, path);
    if (s != LMA_OK) fprintf(stderr, "lmadapt %s: warning: no report.html: %s\n", cmd, lma_last_error());
    else printf("%s: report in %s\n", cmd, path);
    lma_clear_error();
}

lma_status cli_train_load_model(cli_train_opts *o, const char *dir, lma_model **out) {
    *out = NULL;
    lma_model *m = NULL;
    const lma_backend *be = NULL;
    LMA_TRY(cli_train_backend(o, &be));
    {
        char where[4096];
        lma_config c;
        if (lma_model_path_resolve(dir, where, sizeof where) == LMA_OK && lma_model_config_load(where, &c) == LMA_OK)
            cli_train_mem_predict(o, &c, be, where);
        lma_clear_error(); /* the load below reports a bad model */
    }
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
    lma_status s = cli_train_model_opts(o, m);
    if (s != LMA_OK) { lma_model_free(m); return s; }
    *out = m;
    return LMA_OK;
}

lma_status cli_train_model_opts(const cli_train_opts *o, lma_model *m) {
    m->grad_ckpt = o->grad_ckpt;
    if (o->grad_ckpt) {
        printf("activation checkpointing: each layer is recomputed in the backward\n");
        fflush(stdout);
    }
    if (o->rope_scaling) {
        LMA_TRY(lma_model_set_rope_scaling(m, o->rope_scaling));
        printf("rope scaling %s: context %d positions\n", o->rope_scaling, lma_config_context(&m->cfg));
        fflush(stdout);
    }
    return LMA_OK;
}

/* Flags that only steer how a run is carried out: free to change on resume. */
static const char *const volatile_flags[] = {"out", "resume", "overwrite", "threads", "device", "save-every",
                                             "eval-every", "eval-batches", "keep", "nan-abort", "spike-z", "zero", NULL};
static const char *const growing_flags[] = {"steps", NULL};
static cJSON *g_stored; /* the resumed run's settings: option strings point into it */
static void free_stored(void) { cJSON_Delete(g_stored); }

static lma_status write_run_json(const char *path, const cli_args *a, const char *cmd) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "lmadapt", "run");
    cJSON_AddNumberToObject(j, "version", 2); /* 2: flags stored as their state (1: as their variable's value) */
    cJSON_AddStringToObject(j, "command", cmd);
    cJSON *set = a ? cli_settings_json(a, volatile_flags) : cJSON_CreateObject();
    cJSON_AddItemToObject(j, "settings", set);
    lma_status s = lma_json_save(path, j);
    cJSON_Delete(j);
    return s;
}

static int prepare_one(const cli_args *a, const char *cmd, cli_train_opts *o, int writer);

/* Several ranks: rank 0 checks and writes the run folder first; the others then read the
 * stored settings of a resumed run (and write nothing). */
typedef struct { const cli_args *a; const char *cmd; cli_train_opts *o; } prep_ctx;
static int prep_root(void *c) { prep_ctx *p = c; return prepare_one(p->a, p->cmd, p->o, 1); }
static int prep_rest(void *c) { prep_ctx *p = c; return p->o->tp.resume ? prepare_one(p->a, p->cmd, p->o, 0) : 0; }

int cli_train_prepare(const cli_args *a, const char *cmd, cli_train_opts *o) {
    prep_ctx c = {a, cmd, o};
    return cli_dist_root_first(prep_root, prep_rest, &c);
}

static int prepare_one(const cli_args *a, const char *cmd, cli_train_opts *o, int writer) {
    const char *run = o->tp.out_dir;
    char rj[4200];
    if (lma_path_join(rj, sizeof rj, run, "run.json") != LMA_OK) return cli_fail(cmd, NULL);
    if (!o->tp.resume) {
        char latest[4200], fin[4200];
        int saved_nothing = lma_file_exists(rj) && lma_path_join(latest, sizeof latest, run, "latest") == LMA_OK &&
                            !lma_file_exists(latest) && lma_path_join(fin, sizeof fin, run, "final") == LMA_OK &&
                            !lma_is_dir(fin);
        if (saved_nothing && !o->overwrite)
            fprintf(stderr, "lmadapt %s: note: %s holds a run that saved nothing (no checkpoint, no final/): replacing it\n",
                    cmd, run);
        if (!lma_dir_is_empty(run)) {
            if (!o->overwrite && !saved_nothing) {
                if (lma_file_exists(rj))
                    return cli_usage_error(cmd, "%s already holds a run (run.json): continue it with --resume %s, or "
                                           "replace it with --overwrite", run, run);
                return cli_check_out_dir(cmd, "--out", run, 0);
            }
            if (lma_remove_tree(run) != LMA_OK) return cli_fail(cmd, NULL);
        }
        if (lma_mkdir_p(run) != LMA_OK || write_run_json(rj, a, cmd) != LMA_OK) return cli_fail(cmd, NULL);
        return 0;
    }
    if (!lma_is_dir(run)) return cli_usage_error(cmd, "--resume %s: no such run folder", run);
    if (!lma_file_exists(rj)) {
        char latest[4200];
        if (lma_path_join(latest, sizeof latest, run, "latest") != LMA_OK || !lma_file_exists(latest))
            return cli_usage_error(cmd, "--resume %s: not a run folder (no run.json)", run);
        fprintf(stderr, "lmadapt %s: warning: %s has no run.json (a run of an older lmadapt): its settings are not "
                        "checked\n", cmd, run);
        return 0;
    }
    cJSON *j = NULL;
    if (lma_json_load(rj, &j) != LMA_OK) return cli_fail(cmd, NULL);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "command"), *set = cJSON_GetObjectItemCaseSensitive(j, "settings");
    if (!cJSON_IsString(c) || !cJSON_IsObject(set)) {
        cJSON_Delete(j);
        return cli_fail(cmd, "run.json: \"command\" and \"settings\" are required");
    }
    if (strcmp(c->valuestring, cmd)) {
        int rc = cli_usage_error(cmd, "--resume %s: this run was started by 'lmadapt %s'; resume it with that command", run,
                                 c->valuestring);
        cJSON_Delete(j);
        return rc;
    }
    cJSON_Delete(g_stored);
    if (!g_stored) atexit(free_stored);
    g_stored = j;
    if (a) {
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
        int legacy = !cJSON_IsNumber(ver) || ver->valuedouble < 2;
        int rc = cli_settings_apply((cli_args *)a, set, volatile_flags, growing_flags, rj, legacy);
        if (rc) return rc;
        /* what cli_train_check derived from the values now applied */
        o->tp.sched.kind = (lma_sched_kind)o->schedule;
        if (cli_require(a, o->tp.sched.min_lr <= o->tp.sched.lr, "min-lr", "<=", "lr")) return 2;
        if (o->lora_targets && lma_lora_parse_targets(o->lora_targets, &o->lora.targets) != LMA_OK)
            return cli_usage_error(cmd, "--lora-targets %s: %s", o->lora_targets, lma_last_error());
        if (writer && write_run_json(rj, a, cmd) != LMA_OK) return cli_fail(cmd, NULL); /* --steps may have grown */
    }
    return 0;
}
