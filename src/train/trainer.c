/* The training loop, checkpoints and resume (see trainer.h for the contract). */
#include "train/trainer.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "model/adapter.h"
#include "model/safetensors.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

lma_trainer_params lma_trainer_default_params(void) {
    lma_trainer_params p;
    memset(&p, 0, sizeof p);
    p.steps = 100; p.B = 8; p.T = 256; p.accum = 1;
    p.sched.kind = LMA_SCHED_COSINE; p.sched.lr = 3e-4; p.sched.min_lr = 3e-5;
    p.sched.warmup_steps = 10; p.sched.total_steps = 100;
    p.opt = lma_adamw_default_params();
    p.opt.weight_decay = 0.1f;
    p.keep_last = 3;
    p.nan_abort_after = 5;
    p.spike_z = 0; p.spike_window = 50;
    p.save_final = 1;
    return p;
}

/* 64-bit FNV-1a over the bytes: detects a checkpoint whose data changed on disk. */
static uint64_t checksum(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* ---- guard state ------------------------------------------------------- */

typedef struct {
    int opt_t;        /* AdamW updates applied */
    int nan_streak;
    int hist_n;       /* losses in the spike window (ring) */
    int hist_pos;
    float *hist;      /* (spike_window) */
} guard_state;

static int is_spike(const guard_state *g, const lma_trainer_params *p, float loss) {
    if (p->spike_z <= 0 || g->hist_n < p->spike_window) return 0;
    double mean = 0, var = 0;
    for (int i = 0; i < g->hist_n; i++) mean += g->hist[i];
    mean /= g->hist_n;
    for (int i = 0; i < g->hist_n; i++) var += (g->hist[i] - mean) * (g->hist[i] - mean);
    double sd = sqrt(var / g->hist_n);
    return sd > 0 && (loss - mean) / sd > p->spike_z;
}

static void hist_push(guard_state *g, const lma_trainer_params *p, float loss) {
    if (p->spike_window <= 0) return;
    g->hist[g->hist_pos] = loss;
    g->hist_pos = (g->hist_pos + 1) % p->spike_window;
    if (g->hist_n < p->spike_window) g->hist_n++;
}

/* ---- checkpoint files ---------------------------------------------------- */

static lma_status remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? LMA_OK : lma_error(LMA_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    if (rmdir(dir) != 0) return lma_error(LMA_ERR_IO, "%s: cannot remove: %s", dir, strerror(errno));
    return LMA_OK;
}

static int cmp_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

/* Steps of the complete checkpoints in out_dir, newest first. */
static int list_checkpoints(const char *out_dir, int *steps, int cap) {
    DIR *d = opendir(out_dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        int step; char tail;
        if (sscanf(e->d_name, "ckpt-%d%c", &step, &tail) == 1) steps[n++] = step;
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof *steps, cmp_desc);
    return n;
}

static void hex64(char *buf, uint64_t x) { snprintf(buf, 19, "0x%016llx", (unsigned long long)x); }

typedef struct {
    float *params, *m, *v; /* host copies (total floats each) */
} host_state;

static lma_status download_state(lma_model *md, host_state *h) {
    lma_trainable tr = lma_model_trainable(md);
    size_t bytes = tr.table->total * sizeof(float) + 1;
    h->params = lma_malloc(bytes, "checkpoint staging");
    h->m = lma_malloc(bytes, "checkpoint staging");
    h->v = lma_malloc(bytes, "checkpoint staging");
    if (!h->params || !h->m || !h->v) return LMA_ERR_NOMEM;
    bytes -= 1;
    md->be->download(h->params, tr.params, bytes);
    md->be->download(h->m, tr.m, bytes);
    md->be->download(h->v, tr.v, bytes);
    return LMA_OK;
}

static void free_state(host_state *h) { free(h->params); free(h->m); free(h->v); memset(h, 0, sizeof *h); }

/* Tensor data only (padding between tensors excluded), in table order. */
static uint64_t state_sum(const lma_model *md, const float *base) {
    uint64_t h = 0;
    const lma_param_table *t = lma_model_trainable(md).table;
    for (int i = 0; i < t->count; i++) {
        const lma_param_info *p = &t->info[i];
        h = h * 31 + checksum(base + p->offset, p->numel * sizeof(float));
    }
    return h;
}

static lma_status save_optimizer(const lma_model *md, const host_state *h, const char *path) {
    const lma_param_table *t = lma_model_trainable(md).table;
    int n = t->count;
    lma_st_entry *e = lma_calloc((size_t)2 * n, sizeof *e, "optimizer entries");
    char (*names)[112] = lma_calloc((size_t)2 * n, sizeof *names, "optimizer names");
    lma_status s = LMA_ERR_NOMEM;
    if (e && names) {
        for (int i = 0; i < n; i++) {
            const lma_param_info *p = &t->info[i];
            for (int k = 0; k < 2; k++) {
                lma_st_entry *x = &e[2 * i + k];
                snprintf(names[2 * i + k], sizeof names[0], "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
                x->name = names[2 * i + k];
                x->ndim = p->ndim;
                x->shape[0] = p->shape[0];
                x->shape[1] = p->shape[1];
                x->data = (k ? h->v : h->m) + p->offset;
            }
        }
        s = lma_st_save(path, e, 2 * n, LMA_DT_F32);
    }
    free(e);
    free(names);
    return s;
}

static lma_status save_checkpoint(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                                  const guard_state *g) {
    char dir[4096], tmp[4200], path[4400];
    snprintf(dir, sizeof dir, "%s/ckpt-%06d", p->out_dir, step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    host_state h = {0};
    cJSON *st = NULL;
    lma_status s = remove_dir(tmp);
    if (s == LMA_OK) s = lma_mkdir_p(tmp);
    if (s == LMA_OK) s = md->lora ? lma_adapter_save(md, tmp, NULL) : lma_model_save(md, tmp, 0, 0);
    if (s == LMA_OK) s = download_state(md, &h);
    if (s == LMA_OK) { snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp); s = save_optimizer(md, &h, path); }
    if (s != LMA_OK) goto done;
    st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "format", "lmadapt-checkpoint");
    cJSON_AddNumberToObject(st, "version", 1);
    cJSON_AddNumberToObject(st, "step", step);
    cJSON_AddNumberToObject(st, "opt_t", g->opt_t);
    cJSON_AddNumberToObject(st, "nan_streak", g->nan_streak);
    cJSON_AddNumberToObject(st, "hist_pos", g->hist_pos);
    if (md->lora) { /* the LoRA dropout stream position (exact as a string) */
        char c[32];
        snprintf(c, sizeof c, "%llu", (unsigned long long)md->lora->calls);
        cJSON_AddStringToObject(st, "lora_dropout_calls", c);
    }
    cJSON *hist = cJSON_AddArrayToObject(st, "spike_window_losses");
    for (int i = 0; i < g->hist_n; i++) {
        char b[32];
        snprintf(b, sizeof b, "%.9g", g->hist[i]); /* exact float round trip */
        cJSON_AddItemToArray(hist, cJSON_CreateString(b));
    }
    char hx[24];
    cJSON *cs = cJSON_AddObjectToObject(st, "checksums");
    hex64(hx, state_sum(md, h.params)); cJSON_AddStringToObject(cs, "params", hx);
    hex64(hx, state_sum(md, h.m)); cJSON_AddStringToObject(cs, "exp_avg", hx);
    hex64(hx, state_sum(md, h.v)); cJSON_AddStringToObject(cs, "exp_avg_sq", hx);
    if (src->save) {
        cJSON *data = NULL;
        s = src->save(src->ctx, &data);
        if (s != LMA_OK) goto done;
        cJSON_AddItemToObject(st, "data", data);
    }
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    s = lma_json_save(path, st);
    if (s != LMA_OK) goto done;
    if (lma_is_dir(dir)) remove_dir(dir);
    if (rename(tmp, dir) != 0) { s = lma_error(LMA_ERR_IO, "%s: cannot rename: %s", tmp, strerror(errno)); goto done; }
    char latest[4200], line[64];
    snprintf(latest, sizeof latest, "%s/latest", p->out_dir);
    int n = snprintf(line, sizeof line, "ckpt-%06d\n", step);
    s = lma_write_file_atomic(latest, line, (size_t)n);
    if (s != LMA_OK) goto done;
    /* keep the newest keep_last */
    int steps[4096], k = list_checkpoints(p->out_dir, steps, 4096);
    for (int i = p->keep_last > 0 ? p->keep_last : 1; i < k; i++) {
        char old[4200];
        snprintf(old, sizeof old, "%s/ckpt-%06d", p->out_dir, steps[i]);
        remove_dir(old);
    }
done:
    if (s != LMA_OK) remove_dir(tmp);
    cJSON_Delete(st);
    free_state(&h);
    return s;
}

static lma_status load_optimizer(lma_model *md, const char *path) {
    lma_st_file *f = NULL;
    LMA_TRY(lma_st_open(path, &f));
    lma_status s = LMA_OK;
    float *stage = NULL;
    lma_trainable tr = lma_model_trainable(md);
    for (int i = 0; i < tr.table->count && s == LMA_OK; i++) {
        const lma_param_info *p = &tr.table->info[i];
        for (int k = 0; k < 2 && s == LMA_OK; k++) {
            char name[128];
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
            const lma_st_tensor *t = lma_st_find(f, name);
            if (!t) { s = lma_error(LMA_ERR_FORMAT, "%s: missing tensor '%s'", path, name); break; }
            float *tmp = realloc(stage, p->numel * sizeof(float));
            if (!tmp) { s = lma_error(LMA_ERR_NOMEM, "out of memory"); break; }
            stage = tmp;
            s = lma_st_read_f32(t, stage, p->numel);
            if (s == LMA_OK) md->be->upload((k ? tr.v : tr.m) + p->offset, stage, p->numel * sizeof(float));
        }
    }
    free(stage);
    lma_st_close(f);
    return s;
}

static lma_status check_sum(const cJSON *cs, const char *key, uint64_t got, const char *dir) {
    const char *want = NULL;
    LMA_TRY(lma_json_str(cs, key, 1, dir, &want));
    char hx[24];
    hex64(hx, got);
    if (strcmp(hx, want)) return lma_error(LMA_ERR_FORMAT, "%s: %s checksum mismatch (corrupt checkpoint)", dir, key);
    return LMA_OK;
}

static lma_status load_checkpoint(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                                  guard_state *g) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/ckpt-%06d", p->out_dir, step);
    cJSON *st = NULL;
    host_state h = {0};
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    lma_status s = lma_json_load(path, &st);
    int64_t v = 0;
    if (s == LMA_OK) s = lma_json_int(st, "step", 1, path, &v);
    if (s == LMA_OK && v != step) s = lma_error(LMA_ERR_FORMAT, "%s: step %lld does not match the directory", path, (long long)v);
    if (s == LMA_OK) s = md->lora ? lma_adapter_load_weights(md, dir) : lma_model_load_weights(md, dir);
    if (s == LMA_OK) { snprintf(path, sizeof path, "%s/optimizer.safetensors", dir); s = load_optimizer(md, path); }
    if (s == LMA_OK) s = download_state(md, &h);
    const cJSON *cs = st ? cJSON_GetObjectItemCaseSensitive(st, "checksums") : NULL;
    if (s == LMA_OK && !cs) s = lma_error(LMA_ERR_FORMAT, "%s: no checksums", dir);
    if (s == LMA_OK) s = check_sum(cs, "params", state_sum(md, h.params), dir);
    if (s == LMA_OK) s = check_sum(cs, "exp_avg", state_sum(md, h.m), dir);
    if (s == LMA_OK) s = check_sum(cs, "exp_avg_sq", state_sum(md, h.v), dir);
    if (s == LMA_OK) { s = lma_json_int(st, "opt_t", 1, dir, &v); g->opt_t = (int)v; }
    if (s == LMA_OK) { s = lma_json_int(st, "nan_streak", 1, dir, &v); g->nan_streak = (int)v; }
    if (s == LMA_OK) { s = lma_json_int(st, "hist_pos", 1, dir, &v); g->hist_pos = (int)v; }
    if (s == LMA_OK && md->lora) {
        const char *c = NULL;
        s = lma_json_str(st, "lora_dropout_calls", 1, dir, &c);
        if (s == LMA_OK) md->lora->calls = strtoull(c, NULL, 10);
    }
    if (s == LMA_OK) {
        const cJSON *hist = cJSON_GetObjectItemCaseSensitive(st, "spike_window_losses"), *it;
        g->hist_n = 0;
        cJSON_ArrayForEach(it, hist) {
            if (!cJSON_IsString(it) || g->hist_n >= p->spike_window) { s = lma_error(LMA_ERR_FORMAT, "%s: bad spike window", dir); break; }
            g->hist[g->hist_n++] = strtof(it->valuestring, NULL);
        }
        if (g->hist_pos < 0 || (p->spike_window > 0 && g->hist_pos >= p->spike_window)) g->hist_pos = 0;
    }
    if (s == LMA_OK && src->restore) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(st, "data");
        if (!data) s = lma_error(LMA_ERR_FORMAT, "%s: no data cursor", dir);
        else s = src->restore(src->ctx, data);
    }
    free_state(&h);
    cJSON_Delete(st);
    return s;
}

/* Keeps the metrics lines with step <= last_step (atomic rewrite). */
static lma_status trim_metrics(const char *path, int last_step) {
    if (!lma_file_exists(path)) return LMA_OK;
    char *data = NULL;
    size_t len = 0;
    LMA_TRY(lma_read_file(path, &data, &len));
    size_t keep = 0;
    for (size_t i = 0; i < len;) {
        char *nl = memchr(data + i, '\n', len - i);
        if (!nl) break; /* a torn last line is dropped */
        int step = -1;
        const char *q = strstr(data + i, "\"step\":");
        if (q && q < nl) step = atoi(q + 7);
        size_t n = (size_t)(nl - (data + i)) + 1;
        if (step >= 0 && step <= last_step) { memmove(data + keep, data + i, n); keep += n; }
        i += n;
    }
    lma_status s = lma_write_file_atomic(path, data, keep);
    free(data);
    return s;
}

/* ---- evaluation ------------------------------------------------------------ */

lma_status lma_train_evaluate(lma_model *m, lma_batch_source *src, int B, int T, int max_batches, float *val_loss) {
    *val_loss = NAN;
    if (!src->val_next) return LMA_OK;
    size_t N = (size_t)B * T;
    int32_t *buf = lma_malloc(3 * N * sizeof(int32_t), "validation batch");
    if (!buf) return LMA_ERR_NOMEM;
    if (src->val_reset) src->val_reset(src->ctx);
    double sum = 0;
    long long count = 0;
    lma_status s = LMA_OK;
    for (int b = 0; max_batches <= 0 || b < max_batches; b++) {
        int rows = 0;
        s = src->val_next(src->ctx, buf, buf + N, buf + 2 * N, &rows);
        if (s != LMA_OK || rows == 0) break;
        float loss = 0;
        s = lma_model_forward(m, buf, buf + N, buf + 2 * N, B, T, 0, 1.0f, &loss);
        if (s != LMA_OK) break;
        sum += (double)loss * m->n_valid;
        count += m->n_valid;
    }
    if (src->val_reset) src->val_reset(src->ctx);
    free(buf);
    if (s == LMA_OK && count > 0) *val_loss = (float)(sum / (double)count);
    return s;
}

/* ---- the loop ----------------------------------------------------------------- */

static void write_metrics(FILE *f, int step, float loss, double lr, float gn, double tps, int skipped, const char *why,
                          float val) {
    if (!f) return;
    fprintf(f, "{\"step\": %d, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens_per_s\": %.1f, "
               "\"rss_mb\": %.1f, \"skipped\": %s",
            step, loss, lr, gn, tps, peak_rss_mb(), skipped ? "true" : "false");
    if (why) fprintf(f, ", \"skip_reason\": \"%s\"", why);
    if (!isnan(val)) fprintf(f, ", \"val_loss\": %.9g", val);
    fprintf(f, "}\n");
    fflush(f);
}

lma_status lma_train_run(lma_model *m, lma_batch_source *src, const lma_trainer_params *p, lma_trainer_result *res) {
    memset(res, 0, sizeof *res);
    res->last_val_loss = NAN;
    if (!p->out_dir) return lma_error(LMA_ERR_ARG, "training needs an output directory");
    if (p->steps < 1 || p->B < 1 || p->T < 1 || p->accum < 1)
        return lma_error(LMA_ERR_ARG, "steps, batch, seq and accumulation must all be >= 1");
    LMA_TRY(lma_mkdir_p(p->out_dir));
    LMA_TRY(lma_model_enable_training(m));

    guard_state g = {0};
    g.hist = lma_calloc((size_t)(p->spike_window > 0 ? p->spike_window : 1), sizeof(float), "spike window");
    size_t N = (size_t)p->B * p->T;
    int32_t *buf = lma_malloc(3 * N * sizeof(int32_t), "batch");
    if (!g.hist || !buf) { free(g.hist); free(buf); return LMA_ERR_NOMEM; }
    lma_status s = LMA_OK;
    int start = 0;
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", p->out_dir);

    if (p->resume) {
        int steps[4096], k = list_checkpoints(p->out_dir, steps, 4096);
        for (int i = 0; i < k; i++) {
            lma_clear_error();
            if (load_checkpoint(m, src, p, steps[i], &g) == LMA_OK) { start = steps[i]; break; }
            lma_warn("checkpoint ckpt-%06d is unusable (%s); trying the previous one", steps[i], lma_last_error());
            lma_clear_error();
        }
        if (k > 0 && start == 0) {
            free(g.hist); free(buf);
            return lma_error(LMA_ERR_FORMAT, "%s: no usable checkpoint to resume from", p->out_dir);
        }
        if (k == 0) lma_info("%s: no checkpoint yet, starting from step 0", p->out_dir);
        else lma_info("resuming from %s/ckpt-%06d", p->out_dir, start);
        s = trim_metrics(mpath, start);
    } else if (lma_file_exists(mpath)) {
        s = trim_metrics(mpath, 0); /* a fresh run starts a fresh log */
    }
    FILE *mf = s == LMA_OK ? fopen(mpath, "a") : NULL;
    if (s == LMA_OK && !mf) s = lma_error(LMA_ERR_IO, "%s: cannot open: %s", mpath, strerror(errno));

    g_stop = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    lma_progress bar;
    lma_progress_start(&bar, "train", p->steps);
    bar.quiet = bar.quiet || p->quiet;
    lma_progress_update(&bar, start);
    double t_run = lma_now();
    long long tokens_run = 0;
    int step = start;
    while (s == LMA_OK && step < p->steps) {
        step++;
        double t0 = lma_now(), lr = lma_schedule_lr(&p->sched, step - 1);
        double loss_sum = 0;
        int finite = 1;
        for (int a = 0; a < p->accum && s == LMA_OK; a++) {
            s = src->next(src->ctx, buf, buf + N, buf + 2 * N);
            if (s != LMA_OK) break;
            float loss = 0;
            lma_status fs = lma_model_forward(m, buf, buf + N, buf + 2 * N, p->B, p->T, 1, 1.0f / p->accum, &loss);
            if (fs == LMA_ERR_NUMERIC) { finite = 0; lma_clear_error(); }
            else if (fs != LMA_OK) { s = fs; break; }
            s = lma_model_backward(m);
            loss_sum += loss;
        }
        if (s != LMA_OK) break;
        float loss = (float)(loss_sum / p->accum), gn = NAN;
        const char *why = NULL;
        int skipped = 0;
        if (!finite || !isfinite(loss)) { skipped = 1; why = "non-finite loss"; }
        else if (is_spike(&g, p, loss)) { skipped = 1; why = "loss spike"; }
        if (!skipped) {
            lma_adamw_params op = p->opt;
            op.lr = (float)lr;
            lma_status as = lma_model_adamw_step(m, &op, g.opt_t + 1, &gn);
            if (as == LMA_ERR_NUMERIC) { skipped = 1; why = "non-finite gradient"; lma_clear_error(); }
            else if (as != LMA_OK) { s = as; break; }
            else g.opt_t++;
        }
        lma_model_zero_grad(m);
        if (skipped) {
            res->skipped++;
            lma_warn("step %d: update skipped (%s, loss %g)", step, why, loss);
            g.nan_streak = why[0] == 'n' ? g.nan_streak + 1 : 0;
            if (g.nan_streak >= p->nan_abort_after) {
                s = lma_error(LMA_ERR_NUMERIC, "%d consecutive steps with non-finite loss or gradient: stopping",
                              g.nan_streak);
                break;
            }
        } else {
            g.nan_streak = 0;
            hist_push(&g, p, loss);
        }
        double dt = lma_now() - t0, tps = (double)N * p->accum / dt;
        tokens_run += (long long)N * p->accum;
        float val = NAN;
        int last = step == p->steps;
        if ((p->eval_every > 0 && step % p->eval_every == 0) || (last && src->val_next)) {
            s = lma_train_evaluate(m, src, p->B, p->T, p->eval_batches, &val);
            if (s != LMA_OK) break;
            res->last_val_loss = val;
        }
        write_metrics(mf, step, loss, lr, gn, tps, skipped, why, val);
        res->last_loss = loss;
        res->steps_done = step;
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.4f lr %.2e%s", loss, lr, skipped ? " (skipped)" : "");
        lma_progress_set_extra(&bar, extra);
        lma_progress_update(&bar, step);
        if (p->on_step) {
            lma_train_progress pr = {step, p->steps, loss, val, gn, lr, tps, skipped};
            if (p->on_step(p->on_step_ctx, &pr)) g_stop = 1;
        }
        if ((p->save_every > 0 && step % p->save_every == 0) || last || g_stop) {
            if (mf) fsync(fileno(mf));
            s = save_checkpoint(m, src, p, step, &g);
            if (s != LMA_OK) break;
        }
        if (g_stop) {
            s = lma_error(LMA_ERR_INTERRUPTED, "interrupted at step %d: checkpoint saved in %s/ckpt-%06d", step,
                          p->out_dir, step);
            break;
        }
    }
    lma_progress_finish(&bar);
    double el = lma_now() - t_run;
    res->tokens_per_s = el > 0 ? (double)tokens_run / el : 0;
    if (s == LMA_OK && p->save_final) {
        char fin[4200];
        snprintf(fin, sizeof fin, "%s/final", p->out_dir);
        s = m->lora ? lma_adapter_save(m, fin, NULL) : lma_model_save(m, fin, 0, 0);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (mf) fclose(mf);
    free(g.hist);
    free(buf);
    return s;
}
