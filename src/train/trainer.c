/* The training loop: resume, the step loop with its guards (non-finite loss or gradient,
 * loss spikes), validation, metrics, signals and the final save (see trainer.h for the
 * contract; checkpoint files are checkpoint.c). */
#include "train/trainer.h"
#include "train/checkpoint.h"
#include "train/dist_step.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include "core/outdir.h"
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

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int is_spike(const lma_guard_state *g, const lma_trainer_params *p, float loss) {
    if (p->spike_z <= 0 || g->hist_n < p->spike_window) return 0;
    double mean = 0, var = 0;
    for (int i = 0; i < g->hist_n; i++) mean += g->hist[i];
    mean /= g->hist_n;
    for (int i = 0; i < g->hist_n; i++) var += (g->hist[i] - mean) * (g->hist[i] - mean);
    double sd = sqrt(var / g->hist_n);
    return sd > 0 && (loss - mean) / sd > p->spike_z;
}

static void hist_push(lma_guard_state *g, const lma_trainer_params *p, float loss) {
    if (p->spike_window <= 0) return;
    g->hist[g->hist_pos] = loss;
    g->hist_pos = (g->hist_pos + 1) % p->spike_window;
    if (g->hist_n < p->spike_window) g->hist_n++;
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

/* The batch's forward: the source's objective, or the mean cross-entropy (weight: targets) */
static lma_status run_objective(lma_model *m, lma_batch_source *src, const int32_t *ids, const int32_t *tg,
                                const int32_t *seg, int B, int T, int want_grad, float scale, float *loss,
                                double *weight) {
    if (src->objective) return src->objective(src->ctx, m, ids, tg, seg, B, T, want_grad, scale, loss, weight);
    lma_status s = lma_model_forward(m, ids, tg, seg, B, T, want_grad, scale, loss);
    *weight = m->n_valid;
    return s;
}

/* Data parallel: this rank's rows of the global batch buf (3 x (B,T)) and the global batch's
 * target count; without dp the whole batch. */
typedef struct { const int32_t *ids, *tg, *seg; int B, count; } dp_slice;
static dp_slice slice_of(const lma_dp *dp, const int32_t *buf, int B, int T) {
    size_t N = (size_t)B * T;
    dp_slice x = {buf, buf + N, buf + 2 * N, B, 0};
    if (!dp) return x;
    for (size_t i = 0; i < N; i++) x.count += buf[N + i] != LMA_IGNORE_INDEX;
    int r0, rows;
    lma_dp_rows(dp, B, &r0, &rows);
    size_t o = (size_t)r0 * T;
    x.ids += o; x.tg += o; x.seg += o;
    x.B = rows;
    return x;
}

/* The sum of the last forward's per-token losses (the forward sums them so, in this order). */
static double local_loss_total(const lma_model *m, int B, int T) {
    const float *l = lma_model_losses(m);
    double t = 0;
    if (l) for (size_t i = 0; i < (size_t)B * T; i++) t += l[i];
    return t;
}

static lma_status evaluate(lma_model *m, lma_batch_source *src, int B, int T, int max_batches, lma_dp *dp,
                           float *val_loss);

lma_status lma_train_evaluate(lma_model *m, lma_batch_source *src, int B, int T, int max_batches, float *val_loss) {
    return evaluate(m, src, B, T, max_batches, NULL, val_loss);
}

/* With dp every rank runs its rows of each batch; the batch's mean over all ranks is summed
 * as one process sums it (the float mean, weighted by the count). */
static lma_status evaluate(lma_model *m, lma_batch_source *src, int B, int T, int max_batches, lma_dp *dp,
                           float *val_loss) {
    if (dp && dp->world < 2) dp = NULL; /* one rank: the plain evaluation */
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
        double w = 0;
        dp_slice x = slice_of(dp, buf, B, T);
        s = run_objective(m, src, x.ids, x.tg, x.seg, x.B, T, 0, 1.0f, &loss, &w);
        if (s == LMA_OK && !isfinite(loss)) s = LMA_ERR_NUMERIC;
        if (dp && (s == LMA_OK || s == LMA_ERR_NUMERIC)) { /* the batch over all ranks */
            double v[2] = {local_loss_total(m, x.B, T), s != LMA_OK};
            lma_status cs = lma_comm_allreduce_f64(dp->comm, v, 2);
            if (cs != LMA_OK) { s = cs; break; }
            s = v[1] > 0 ? LMA_ERR_NUMERIC : LMA_OK;
            if (s == LMA_ERR_NUMERIC) lma_error(LMA_ERR_NUMERIC, "validation loss is not finite");
            w = x.count;
            loss = x.count > 0 ? (float)(v[0] / x.count) : 0.0f;
        }
        if (s == LMA_ERR_NUMERIC) { /* a non-finite validation loss is a value (+inf), the guards judge it */
            lma_clear_error();
            s = LMA_OK;
            sum = INFINITY;
            count = count > 0 ? count : 1;
            break;
        }
        if (s != LMA_OK) break;
        sum += (double)loss * w;
        count += (long long)w;
    }
    if (src->val_reset) src->val_reset(src->ctx);
    free(buf);
    if (s == LMA_OK && count > 0) *val_loss = (float)(sum / (double)count);
    return s;
}

/* ---- the loop ----------------------------------------------------------------- */

/* "key": x, or "key": null for NaN/Inf (bare nan is not JSON: jq and Python refuse it);
 * the names of the null ones are listed in "non_finite" */
static void put_num(FILE *f, const char *key, double x, char *bad, size_t cap) {
    if (isfinite(x)) { fprintf(f, ", \"%s\": %.9g", key, x); return; }
    fprintf(f, ", \"%s\": null", key);
    size_t n = strlen(bad);
    snprintf(bad + n, cap - n, "%s\"%s\"", n ? ", " : "", key);
}

static void write_metrics(FILE *f, const lma_trainer_params *p, const lma_model *m, int step, float loss, double lr,
                          float gn, double tps, int skipped, const char *why, float val, const char *extra) {
    if (!f) return;
    char bad[96] = "";
    fprintf(f, "{\"step\": %d", step);
    put_num(f, "loss", loss, bad, sizeof bad);
    put_num(f, "lr", lr, bad, sizeof bad);
    put_num(f, "grad_norm", gn, bad, sizeof bad);
    fprintf(f, ", \"tokens_per_s\": %.1f, \"rss_mb\": %.1f, \"skipped\": %s", tps, peak_rss_mb(),
            skipped ? "true" : "false");
    if (p->mem_pred_gib > 0) /* advise/mem.h's prediction and the peak so far */
        fprintf(f, ", \"mem_pred_gib\": %.3f, \"mem_peak_gib\": %.3f", p->mem_pred_gib,
                lma_backend_peak_bytes(m->be) / 1073741824.0);
    if (why) fprintf(f, ", \"skip_reason\": \"%s\"", why);
    if (!isnan(val)) put_num(f, "val_loss", val, bad, sizeof bad); /* absent: no validation at this step */
    fputs(extra, f); /* the source's step_metrics */
    if (bad[0]) fprintf(f, ", \"non_finite\": [%s]", bad);
    fprintf(f, "}\n");
    fflush(f);
}

lma_status lma_train_run(lma_model *m, lma_batch_source *src, const lma_trainer_params *p, lma_trainer_result *res) {
    memset(res, 0, sizeof *res);
    res->last_val_loss = NAN;
    if (!p->out_dir) return lma_error(LMA_ERR_ARG, "training needs an output directory");
    if (p->steps < 1 || p->B < 1 || p->T < 1 || p->accum < 1)
        return lma_error(LMA_ERR_ARG, "steps, batch, seq and accumulation must all be >= 1");
    int world = lma_comm_world(p->comm), root = lma_comm_rank(p->comm) == 0;
    if (p->comm && p->B < world)
        return lma_error(LMA_ERR_ARG, "--batch %d is the global micro-batch: at least one row for each of the %d ranks",
                         p->B, world);
    if (p->comm && world > 1 && src->objective)
        return lma_error(LMA_ERR_UNSUPPORTED, "data-parallel training of this objective (DPO) is not supported yet: "
                         "run it on one process");
    LMA_TRY(lma_mkdir_p(p->out_dir));
    LMA_TRY(lma_model_enable_training(m));
    /* dp: the comm's path (gradients, optimizer, checkpoints; also for one rank, so that
     * world size 1 through NCCL can be compared with the plain path); multi: several ranks
     * (the batch sliced, the loss summed over them) */
    lma_dp dpv, *dp = NULL, *multi = NULL;
    if (p->comm) {
        LMA_TRY(lma_dp_init(&dpv, p->comm, p->zero, m, 0));
        dp = &dpv;
        if (world > 1) multi = dp;
    }
    double *mb = lma_calloc((size_t)p->accum + 2, sizeof(double), "micro-batch losses"); /* dp: per micro-batch */
    int *mb_count = lma_calloc((size_t)p->accum + 1, sizeof(int), "micro-batch counts");
    if (!mb || !mb_count) { free(mb); free(mb_count); if (dp) lma_dp_free(dp); return LMA_ERR_NOMEM; }

    lma_guard_state g = {0};
    g.hist = lma_calloc((size_t)(p->spike_window > 0 ? p->spike_window : 1), sizeof(float), "spike window");
    size_t N = (size_t)p->B * p->T;
    int32_t *buf = lma_malloc(3 * N * sizeof(int32_t), "batch");
    if (!g.hist || !buf) { free(g.hist); free(buf); free(mb); free(mb_count); if (dp) lma_dp_free(dp); return LMA_ERR_NOMEM; }
    lma_status s = LMA_OK;
    int start = 0;
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", p->out_dir);

    if (p->resume) {
        int steps[4096], k = lma_ckpt_list(p->out_dir, steps, 4096);
        for (int i = 0; i < k; i++) {
            lma_clear_error();
            lma_status ls = lma_ckpt_load(m, src, p, steps[i], &g, dp);
            if (dp && world > 1) { /* every rank resumes from the same one */
                double bad = ls != LMA_OK;
                if (lma_comm_allreduce_f64(dp->comm, &bad, 1) != LMA_OK) bad = 1;
                if (bad > 0 && ls == LMA_OK) ls = lma_error(LMA_ERR_FORMAT, "another rank cannot read it");
            }
            if (ls == LMA_OK) { start = steps[i]; break; }
            lma_warn("checkpoint ckpt-%06d is unusable (%s); trying the previous one", steps[i], lma_last_error());
            lma_clear_error();
        }
        if (k > 0 && start == 0) {
            free(g.hist); free(buf); free(mb); free(mb_count);
            if (dp) lma_dp_free(dp);
            return lma_error(LMA_ERR_FORMAT, "%s: no usable checkpoint to resume from", p->out_dir);
        }
        if (k == 0) lma_info("%s: no checkpoint yet, starting from step 0", p->out_dir);
        else if (root) lma_info("resuming from %s/ckpt-%06d", p->out_dir, start);
        if (root) s = trim_metrics(mpath, start);
    } else if (root && lma_file_exists(mpath)) {
        s = trim_metrics(mpath, 0); /* a fresh run starts a fresh log */
    }
    FILE *mf = s == LMA_OK && root ? fopen(mpath, "a") : NULL; /* rank 0 alone writes the log */
    if (s == LMA_OK && root && !mf) s = lma_error(LMA_ERR_IO, "%s: cannot open: %s", mpath, strerror(errno));

    g_stop = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    lma_progress bar;
    lma_progress_start(&bar, "train", p->steps);
    bar.quiet = bar.quiet || p->quiet || !root;
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
            double w = 0;
            dp_slice x = slice_of(multi, buf, p->B, p->T);
            if (multi) m->loss_denom = x.count > 0 ? x.count : 1; /* the gradient of the global micro-batch's mean */
            lma_status fs = run_objective(m, src, x.ids, x.tg, x.seg, x.B, p->T, 1, 1.0f / p->accum, &loss, &w);
            if (fs == LMA_ERR_NUMERIC) { finite = 0; lma_clear_error(); }
            else if (fs != LMA_OK) { s = fs; break; }
            s = lma_model_backward(m);
            loss_sum += loss;
            if (multi) { mb[a] = local_loss_total(m, x.B, p->T); mb_count[a] = x.count; }
        }
        if (multi) m->loss_denom = 0;
        if (s == LMA_OK && multi) { /* the step's loss over all ranks, as one process computes it */
            mb[p->accum] = !finite;
            s = lma_comm_allreduce_f64(multi->comm, mb, (size_t)p->accum + 1);
            finite = mb[p->accum] == 0;
            loss_sum = 0;
            for (int a = 0; a < p->accum; a++) loss_sum += mb_count[a] > 0 ? (float)(mb[a] / mb_count[a]) : 0.0f;
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
            lma_status as = dp ? lma_dp_reduce_grads(dp, m) : LMA_OK;
            if (as == LMA_OK) as = dp ? lma_dp_adamw(dp, m, &op, g.opt_t + 1, &gn) : lma_model_adamw_step(m, &op, g.opt_t + 1, &gn);
            if (as == LMA_ERR_NUMERIC) { skipped = 1; why = "non-finite gradient"; lma_clear_error(); }
            else if (as != LMA_OK) { s = as; break; }
            else g.opt_t++;
        }
        lma_model_zero_grad(m);
        if (skipped) {
            res->skipped++;
            lma_warn("step %d: update skipped (%s, loss %g)", step, why, loss);
            g.nan_streak = why[0] == 'n' ? g.nan_streak + 1 : 0;
        } else {
            g.nan_streak = 0;
            hist_push(&g, p, loss);
        }
        double dt = lma_now() - t0, tps = (double)N * p->accum / dt;
        tokens_run += (long long)N * p->accum;
        float val = NAN;
        int last = step == p->steps;
        if ((p->eval_every > 0 && step % p->eval_every == 0) || (last && src->val_next)) {
            s = evaluate(m, src, p->B, p->T, p->eval_batches, dp, &val);
            if (s != LMA_OK) break;
            res->last_val_loss = val;
        }
        char sx_json[512] = "", sx_line[160] = "";
        if (src->step_metrics) src->step_metrics(src->ctx, sx_json, sizeof sx_json, sx_line, sizeof sx_line);
        write_metrics(mf, p, m, step, loss, lr, gn, tps, skipped, why, val, sx_json);
        if (skipped && g.nan_streak >= p->nan_abort_after) { /* after its metrics line: the log shows the step */
            s = lma_error(LMA_ERR_NUMERIC, "%d consecutive steps with non-finite loss or gradient: stopping",
                          g.nan_streak);
            break;
        }
        res->last_loss = loss;
        res->steps_done = step;
        char extra[256];
        snprintf(extra, sizeof extra, "loss %.4f%s lr %.2e%s", loss, sx_line, lr, skipped ? " (skipped)" : "");
        lma_progress_set_extra(&bar, extra);
        lma_progress_update(&bar, step);
        if (p->on_step) {
            lma_train_progress pr = {step, p->steps, loss, val, gn, lr, tps, skipped};
            if (p->on_step(p->on_step_ctx, &pr)) g_stop = 1;
        }
        if (dp && world > 1) { /* a signal to one rank stops them all, at the same step */
            double stop = g_stop;
            s = lma_comm_allreduce_f64(dp->comm, &stop, 1);
            if (s != LMA_OK) break;
            if (stop > 0) g_stop = 1;
        }
        if ((p->save_every > 0 && step % p->save_every == 0) || last || g_stop) {
            if (mf) fsync(fileno(mf));
            s = lma_ckpt_save(m, src, p, step, &g, dp);
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
    if (s == LMA_OK && g.opt_t == 0)
        s = lma_error(LMA_ERR_NUMERIC, "every one of the %d steps was skipped (%d non-finite or spikes): no model "
                      "written; check the data, the learning rate and the model's weights", step, res->skipped);
    if (s == LMA_OK && p->save_final && root) {
        char fin[4200];
        lma_outdir od;
        snprintf(fin, sizeof fin, "%s/final", p->out_dir);
        s = lma_outdir_begin(&od, fin);
        if (s == LMA_OK) s = m->lora ? lma_adapter_save(m, od.tmp, NULL) : lma_model_save(m, od.tmp, 0, 0);
        if (s == LMA_OK && p->final_files) s = p->final_files(p->final_files_ctx, od.tmp);
        if (s == LMA_OK) s = lma_outdir_commit(&od);
        else lma_outdir_abort(&od);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (mf) fclose(mf);
    if (dp) lma_dp_free(dp);
    free(mb);
    free(mb_count);
    free(g.hist);
    free(buf);
    return s;
}
