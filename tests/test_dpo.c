/* DPO (train/dpo.h, data/prefs.h, lmadapt dpo):
 *  - preference records in every format tokenize as TRL 1.16 tokenizes them (rows and
 *    completion starts equal tests/ref/dpo/expected.json);
 *  - the reference log-probs (a different model), the loss and every gradient equal the
 *    float64 PyTorch transcription of TRL's formulas (sigmoid, sigmoid with label
 *    smoothing, IPO, hinge) on the ref backend (tight) and the CPU backend (float tolerance);
 *  - lmadapt dpo --lr 0 logs the reference loss at step 1;
 *  - on a planted preference set, LoRA, QLoRA and full DPO reach reward accuracy 1.0 with
 *    a falling loss within 30 steps;
 *  - a run killed with SIGKILL at random moments and resumed is bitwise identical to an
 *    uninterrupted one (losses, rewards, the cached reference log-probs, the final model). */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <cjson/cJSON.h>
#include "core/io.h"
#include "core/rng.h"
#include "data/curate/curate.h"
#include "data/prefs.h"
#include "model/presets.h"
#include "model/safetensors.h"
#include "train/dpo.h"
#include "test.h"

static char tmp[64];

static double mval_(const cJSON *j, const char *k) {
    const cJSON *x = j ? cJSON_GetObjectItem(j, k) : NULL;
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}
static cJSON *expected;

static const char *fixture(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/tests/ref/%s", LMA_SRC_DIR, rel);
    return buf[k];
}

static double jnum(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i)->valuedouble; }

static void test_tokenize(const lma_pref_set *s) {
    const cJSON *rows = cJSON_GetObjectItem(expected, "rows"), *starts = cJSON_GetObjectItem(expected, "starts");
    int n = cJSON_GetArraySize(rows);
    CHECK((int)lma_pref_count(s) * 2 == n, "%zu pairs, fixture %d rows", lma_pref_count(s), n);
    for (int r = 0; r < n && (size_t)r / 2 < lma_pref_count(s); r++) {
        const int32_t *ids;
        size_t len, k;
        lma_pref_row(s, (size_t)r / 2, r % 2, &ids, &len, &k);
        const cJSON *want = cJSON_GetArrayItem(rows, r);
        int same = (int)len == cJSON_GetArraySize(want);
        for (size_t t = 0; same && t < len; t++) same = ids[t] == (int32_t)jnum(want, (int)t);
        CHECK(same, "row %d: tokens equal TRL's (%zu vs %d)", r, len, cJSON_GetArraySize(want));
        CHECK(k == (size_t)jnum(starts, r), "row %d: completion starts at %zu (TRL %g)", r, k, jnum(starts, r));
    }
}

/* batches: row 2i chosen and 2i+1 rejected of the same pair, targets on completion tokens
 * only, every pair once an epoch, longest pairs first (one window holds the 5 pairs) */
static void test_batches(const lma_pref_set *s) {
    int B = 2, T = 64, n = (int)lma_pref_count(s);
    lma_pref_batcher *b = NULL;
    CHECK_OK(lma_pref_batcher_create(s, B, T, 7, 3, 1, 0, &b));
    if (!b) return;
    int32_t ids[2 * 2 * 64], tg[2 * 2 * 64], seg[2 * 2 * 64];
    int64_t pair[2];
    int seen[16] = {0}, ok = 1, prev = 1 << 30, sorted = 1;
    for (int k = 0; k < 3; k++) { /* 3 batches = 6 slots: the epoch's 5 pairs, then the next epoch's first */
        int np = 0, w = 0;
        CHECK_OK(lma_pref_batcher_next(b, ids, tg, seg, pair, &np, &w));
        for (int i = 0; i < B; i++) {
            if (k * B + i >= n) continue;
            seen[pair[i]]++;
            for (int which = 0; which < 2; which++) {
                const int32_t *row, *t = tg + (size_t)(2 * i + which) * T, *x = ids + (size_t)(2 * i + which) * T;
                size_t len, st;
                lma_pref_row(s, (size_t)pair[i], which, &row, &len, &st);
                for (int c = 0; c < T; c++) {
                    int32_t want_t = (size_t)c + 1 < len && (size_t)c + 1 >= st ? row[c + 1] : -100;
                    if (x[c] != ((size_t)c < len ? row[c] : 7) || t[c] != want_t) ok = 0;
                }
            }
            const int32_t *r0, *r1;
            size_t l0, l1, s0, s1;
            lma_pref_row(s, (size_t)pair[i], 0, &r0, &l0, &s0);
            lma_pref_row(s, (size_t)pair[i], 1, &r1, &l1, &s1);
            int len = (int)(l0 > l1 ? l0 : l1);
            if (len > prev) sorted = 0;
            prev = len;
        }
    }
    int once = 1;
    for (int i = 0; i < n; i++) once &= seen[i] == 1;
    CHECK(ok, "rows: chosen then rejected of each pair, padded with the pad id, targets on the completion only");
    CHECK(once, "every pair once in the epoch");
    CHECK(sorted, "pairs come longest first within the window");
    lma_pref_batcher_free(b);
}

/* loss and gradients of each fixture case on backend be; tol_* relative */
static void test_math(const lma_backend *be, const char *bname, const lma_pref_set *s, double tol_lp, double tol_loss,
                      double tol_grad, int grad_ckpt) {
    int B = (int)lma_pref_count(s), T = 64;
    size_t n = lma_pref_count(s);
    lma_model *ref = NULL, *m = NULL;
    CHECK_OK(lma_model_load_ex(fixture("dpo/models/ref"), be, 0, &ref));
    CHECK_OK(lma_model_load_ex(fixture("dpo/models/policy"), be, 0, &m));
    if (!ref || !m) { lma_model_free(ref); lma_model_free(m); return; }
    double *rl = calloc(2 * n, sizeof *rl);
    CHECK_OK(lma_dpo_reference(ref, s, 2, T, 0, rl)); /* batches of 2 pairs: order-independent results */
    const cJSON *want_ref = cJSON_GetObjectItem(expected, "ref_logps");
    double worst = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        double w = jnum(want_ref, (int)i), e = fabs(rl[i] - w) / fabs(w);
        if (e > worst) worst = e;
    }
    CHECK(worst < tol_lp, "%s: reference log-probs of the other model match (worst rel err %.2e)", bname, worst);
    CHECK_OK(lma_model_enable_training(m));
    m->grad_ckpt = grad_ckpt; /* activation checkpointing: the same gradients */
    lma_st_file *gf = NULL;
    CHECK_OK(lma_st_open(fixture("dpo/grads.safetensors"), &gf));
    const cJSON *cases = cJSON_GetObjectItem(expected, "losses");
    for (const cJSON *c = cases->child; c && gf; c = c->next) {
        const char *kind = cJSON_GetObjectItem(c, "loss_type")->valuestring;
        lma_dpo_params p = {.beta = cJSON_GetObjectItem(c, "beta")->valuedouble,
                            .label_smoothing = cJSON_GetObjectItem(c, "label_smoothing")->valuedouble,
                            .loss = !strcmp(kind, "ipo") ? LMA_DPO_IPO : !strcmp(kind, "hinge") ? LMA_DPO_HINGE
                                                                                                 : LMA_DPO_SIGMOID};
        lma_pref_batcher *bt = NULL;
        lma_dpo *d = NULL;
        CHECK_OK(lma_pref_batcher_create(s, B, T, 0, 1, 0, 0, &bt));
        CHECK_OK(lma_dpo_create(&p, B, T, bt, rl, NULL, NULL, &d));
        if (!d) { lma_pref_batcher_free(bt); continue; }
        lma_batch_source src = lma_dpo_batch_source(d);
        size_t N = (size_t)2 * B * T;
        int32_t *buf = malloc(3 * N * sizeof(int32_t));
        float loss = 0;
        double w = 0;
        lma_model_zero_grad(m);
        CHECK_OK(src.next(src.ctx, buf, buf + N, buf + 2 * N));
        CHECK_OK(src.objective(src.ctx, m, buf, buf + N, buf + 2 * N, 2 * B, T, 1, 1.0f, &loss, &w));
        CHECK_OK(lma_model_backward(m));
        double want = cJSON_GetObjectItem(c, "loss")->valuedouble;
        CHECK(fabs(loss - want) / want < tol_loss, "%s %s: loss %.9g, reference %.9g", bname, c->string, loss, want);
        CHECK(w == B, "%s: weight = pairs (%g)", bname, w);
        /* every gradient the fixture holds for this case */
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s/", c->string);
        int checked = 0;
        double gworst = 0;
        const char *gname = "";
        for (int i = 0; i < lma_st_count(gf); i++) {
            const lma_st_tensor *t = lma_st_get(gf, i);
            if (strncmp(t->name, prefix, strlen(prefix))) continue;
            const lma_param_info *pi = lma_params_find(&m->table, t->name + strlen(prefix));
            CHECK(pi && pi->numel == t->numel, "%s: parameter %s", bname, t->name);
            if (!pi) continue;
            float *g = malloc(t->numel * sizeof(float)), *gw = malloc(t->numel * sizeof(float));
            CHECK_OK(lma_st_read_f32(t, gw, t->numel));
            be->download(g, m->grads + pi->offset, t->numel * sizeof(float));
            double e = test_rel_l2f(g, gw, t->numel);
            if (e > gworst) { gworst = e; gname = t->name; }
            checked++;
            free(g); free(gw);
        }
        CHECK(checked >= 10 && gworst < tol_grad, "%s %s: %d gradients match (worst rel L2 %.2e in %s)", bname,
              c->string, checked, gworst, gname);
        printf("%s %-10s loss %.9g (ref %.9g), grads worst rel %.2e\n", bname, c->string, loss, want, gworst);
        free(buf);
        lma_dpo_free(d);
        lma_pref_batcher_free(bt);
    }
    lma_st_close(gf);
    free(rl);
    lma_model_free(ref);
    lma_model_free(m);
}

/* data validate names the preference layouts and flags replies that are not assistant
 * turns and prompts of the other kind */
static void test_validate(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/validate.jsonl", tmp);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s %s", fixture("dpo/pairs.jsonl"), path);
    CHECK(system(cmd) == 0, "copy pairs");
    FILE *f = test_fopen(path, "a");
    fputs("{\"prompt\": \"Hi\", \"chosen\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", "
          "\"content\": \"Hello\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": "
          "\"assistant\", \"content\": \"Go away\"}]}\n", f);
    fputs("{\"prompt\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"chosen\": [{\"role\": \"user\", \"content\": "
          "\"Hello\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"Go away\"}]}\n", f);
    fclose(f);
    cJSON *sum = NULL;
    CHECK_OK(lma_data_validate(path, NULL, &sum));
    const cJSON *pf = sum ? cJSON_GetObjectItem(sum, "preference_formats") : NULL, *c = sum ? cJSON_GetObjectItem(sum, "counts") : NULL;
    CHECK(mval_(pf, "trl_conversational") == 3 && mval_(pf, "trl_conversational (implicit prompt)") == 2 &&
          mval_(pf, "trl_plain_text") == 1 && mval_(pf, "openai") == 1, "preference formats counted");
    CHECK(mval_(c, "preference_reply_role") == 1 && mval_(c, "preference_prompt_kind") == 1,
          "a user turn as reply is an error, a string prompt with list replies a warning");
    cJSON_Delete(sum);
}

/* ---- CLI ---------------------------------------------------------------------- */

static int run_cli(char *const args[], int kill_after_ms) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execv(LMA_CLI, args);
        _exit(127);
    }
    if (kill_after_ms > 0) {
        struct timespec ts = {kill_after_ms / 1000, (long)(kill_after_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* metrics.jsonl lines parsed (caller frees with cJSON_Delete each) */
static int read_metrics(const char *run, cJSON **out, int cap) {
    char path[512], *d = NULL;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    if (lma_read_file(path, &d, NULL) != LMA_OK) { lma_clear_error(); return 0; }
    int n = 0;
    for (char *p = d, *e; *p && (e = strchr(p, '\n')) && n < cap; p = e + 1) {
        *e = 0;
        out[n++] = cJSON_Parse(p);
    }
    free(d);
    return n;
}

static double mval(const cJSON *j, const char *k) {
    const cJSON *x = j ? cJSON_GetObjectItem(j, k) : NULL;
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void test_lr0(void) {
    const char *names[] = {"sigmoid", "ipo", "hinge"};
    for (int i = 0; i < 3; i++) {
        const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(expected, "losses"), names[i]);
        char run[256], beta[32];
        snprintf(run, sizeof run, "%s/lr0_%s", tmp, names[i]);
        snprintf(beta, sizeof beta, "%.17g", cJSON_GetObjectItem(c, "beta")->valuedouble);
        char *args[] = {(char *)LMA_CLI, "dpo", "--model", (char *)fixture("dpo/models/policy"), "--ref-model",
                        (char *)fixture("dpo/models/ref"), "--data", (char *)fixture("dpo/pairs.jsonl"), "--out", run,
                        "--steps", "1", "--batch", "5", "--seq", "64", "--lr", "0", "--threads", "2", "--device", "cpu",
                        "--loss", (char *)names[i], "--beta", beta, "--val", (char *)fixture("dpo/pairs.jsonl"), NULL};
        CHECK(run_cli(args, 0) == 0, "dpo --lr 0 --loss %s runs", names[i]);
        cJSON *ml[4] = {0};
        int n = read_metrics(run, ml, 4);
        double got = n ? mval(ml[0], "loss") : NAN, want = cJSON_GetObjectItem(c, "loss")->valuedouble;
        CHECK(n == 1 && fabs(got - want) / want < 1e-5, "--lr 0 %s: step-1 loss %.9g equals the reference %.9g", names[i],
              got, want);
        double vl = n ? mval(ml[0], "val_loss") : NAN; /* the same pairs as validation, the model unchanged */
        CHECK(fabs(vl - want) / want < 1e-5, "--lr 0 %s: validation loss %.9g equals the reference %.9g", names[i], vl,
              want);
        for (int k = 0; k < n; k++) cJSON_Delete(ml[k]);
    }
}

/* A base on the bl tokenizer and a planted preference set: the chosen reply is always
 * " Yes." and the rejected one " No, never." (prompts vary). */
static void make_planted(const char *base, const char *data) {
    lma_config c;
    CHECK_OK(lma_config_preset("tiny", 1200, 128, &c));
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (m) {
        CHECK_OK(lma_model_init_random(m, 5, 0.02f));
        CHECK_OK(lma_model_save(m, base, 0, 0));
        lma_model_free(m);
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp %s %s %s/", fixture("tok/bl/tokenizer.json"), fixture("tok/bl/tokenizer_config.json"),
             base);
    CHECK(system(cmd) == 0, "copy tokenizer");
    FILE *f = test_fopen(data, "w");
    const char *topics[] = {"cats", "the sea", "bread", "trains", "music", "snow", "maps", "clocks"};
    for (int i = 0; i < 8; i++)
        fprintf(f, "{\"prompt\": [{\"role\": \"user\", \"content\": \"Do you like %s?\"}], \"chosen\": [{\"role\": "
                   "\"assistant\", \"content\": \"Yes.\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": "
                   "\"No, never.\"}]}\n", topics[i]);
    fclose(f);
}

static void test_planted(const char *base, const char *data, const char *method, const char *lr) {
    char run[256];
    snprintf(run, sizeof run, "%s/planted_%s", tmp, method);
    char *args[] = {(char *)LMA_CLI, "dpo", "--model", (char *)base, "--data", (char *)data, "--out", run, "--method",
                    (char *)method, "--steps", "30", "--batch", "4", "--seq", "64", "--lr", (char *)lr, "--warmup", "0",
                    "--threads", "2", "--device", "cpu", "--lora-r", "8", "--lora-alpha", "16", "--save-every", "0",
                    "--beta", "0.1", NULL};
    CHECK(run_cli(args, 0) == 0, "%s: planted DPO runs", method);
    cJSON *ml[40] = {0};
    int n = read_metrics(run, ml, 40);
    CHECK(n == 30, "%s: 30 steps logged (%d)", method, n);
    if (n == 30) {
        double first = mval(ml[0], "loss"), last = mval(ml[29], "loss");
        int reached = 0;
        for (int i = 0; i < n; i++) reached |= mval(ml[i], "reward_accuracy") == 1.0;
        CHECK(mval(ml[29], "reward_accuracy") == 1.0 && reached, "%s: reward accuracy reaches 1.0 (last %g)", method,
              mval(ml[29], "reward_accuracy"));
        CHECK(last < 0.5 * first, "%s: loss falls (%.4f -> %.4f)", method, first, last);
        CHECK(mval(ml[29], "reward_margin") > 0 && mval(ml[29], "logps_chosen") > mval(ml[0], "logps_chosen"),
              "%s: margin %.3f > 0 and the chosen reply grows likelier (%.3f -> %.3f)", method,
              mval(ml[29], "reward_margin"), mval(ml[0], "logps_chosen"), mval(ml[29], "logps_chosen"));
        printf("planted %-5s: loss %.4f -> %.4f, accuracy %g, margin %.3f\n", method, first, last,
               mval(ml[29], "reward_accuracy"), mval(ml[29], "reward_margin"));
    }
    for (int k = 0; k < n; k++) cJSON_Delete(ml[k]);
}

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int ok = lma_read_file(a, &x, &nx) == LMA_OK && lma_read_file(b, &y, &ny) == LMA_OK && nx == ny && !memcmp(x, y, nx);
    lma_clear_error();
    free(x); free(y);
    return ok;
}

/* --resume takes the reference log-probs from the run's cache: a cache whose chosen
 * log-probs are raised by 10 lowers every later chosen reward by beta * 10 = 1. */
static void test_cache_reused(const char *base, const char *data, const char *done_run) {
    char c[256], cmd[2048], path[512];
    snprintf(c, sizeof c, "%s/kill_cache", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && rm -rf %s/final %s/ckpt-000016 && printf 'ckpt-000014\\n' > %s/latest",
             c, done_run, c, c, c, c);
    CHECK(system(cmd) == 0, "roll a copy back to step 14");
    snprintf(path, sizeof path, "%s/reference_logps.json", c);
    char *text = NULL;
    CHECK_OK(lma_read_file(path, &text, NULL));
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *tr = j ? cJSON_GetObjectItem(j, "train") : NULL;
    int i = 0;
    for (cJSON *x = tr ? tr->child : NULL; x; x = x->next, i++)
        if (i % 2 == 0) cJSON_SetNumberValue(x, x->valuedouble + 10);
    char *out = j ? cJSON_PrintUnformatted(j) : NULL;
    CHECK(out && lma_write_file_atomic(path, out, strlen(out)) == LMA_OK, "rewrite the cache");
    free(out);
    cJSON_Delete(j);
    char *args[] = {(char *)LMA_CLI, "dpo", "--model", (char *)base, "--data", (char *)data, "--resume", c,
                    "--steps", "16", "--batch", "2", "--seq", "64", "--save-every", "2", "--keep", "2", "--threads",
                    "2", "--device", "cpu", "--lr", "1e-3", "--warmup", "2", NULL};
    CHECK(run_cli(args, 0) == 0, "resume with an edited cache");
    cJSON *ma[20] = {0}, *mc[20] = {0};
    int na = read_metrics(done_run, ma, 20), nc = read_metrics(c, mc, 20);
    CHECK(na == 16 && nc == 16, "both runs logged 16 steps (%d, %d)", na, nc);
    if (na == 16 && nc == 16) {
        double d15 = mval(mc[14], "reward_chosen") - mval(ma[14], "reward_chosen");
        double d14 = mval(mc[13], "reward_chosen") - mval(ma[13], "reward_chosen");
        CHECK(fabs(d15 + 1.0) < 1e-6 && d14 == 0, "the resumed run used the cached reference (reward shift %.9g at "
              "step 15, %g at step 14)", d15, d14);
    }
    for (int k = 0; k < na; k++) cJSON_Delete(ma[k]);
    for (int k = 0; k < nc; k++) cJSON_Delete(mc[k]);
}

static void test_kill_resume(const char *base, const char *data) {
    char a[256], b[256], pa[512], pb[512];
    snprintf(a, sizeof a, "%s/kill_full", tmp);
    snprintf(b, sizeof b, "%s/kill_killed", tmp);
#define ARGS(out, flag) {(char *)LMA_CLI, "dpo", "--model", (char *)base, "--data", (char *)data, flag, out, \
        "--steps", "16", "--batch", "2", "--seq", "64", "--save-every", "2", "--keep", "2", "--threads", "2", \
        "--device", "cpu", "--lr", "1e-3", "--warmup", "2", NULL}
    char *full[] = ARGS(a, "--out");
    CHECK(run_cli(full, 0) == 0, "uninterrupted DPO run");
    lma_rng r;
    lma_rng_seed(&r, (uint64_t)time(NULL));
    char *first[] = ARGS(b, "--out");
    char *resume[] = ARGS(b, "--resume");
    int rc = run_cli(first, 100 + (int)lma_rng_below(&r, 400)), kills = rc == -SIGKILL;
    for (int i = 0; i < 40 && rc != 0; i++) {
        rc = run_cli(resume, i < 5 ? 150 + (int)lma_rng_below(&r, 600) : 0);
        kills += rc == -SIGKILL;
    }
#undef ARGS
    CHECK(rc == 0 && kills >= 1, "the killed run finishes after %d kills (last status %d)", kills, rc);
    printf("dpo kill/resume: %d kills\n", kills);
    const char *keys[] = {"loss", "grad_norm", "reward_chosen", "reward_rejected", "reward_accuracy", "logps_chosen",
                          "logps_rejected"};
    cJSON *ma[20] = {0}, *mb[20] = {0};
    int na = read_metrics(a, ma, 20), nb = read_metrics(b, mb, 20), same = na == 16 && na == nb;
    for (int i = 0; same && i < na; i++)
        for (int k = 0; k < 7; k++) {
            double x = mval(ma[i], keys[k]), y = mval(mb[i], keys[k]);
            if (memcmp(&x, &y, sizeof x)) { same = 0; fprintf(stderr, "step %d %s: %.17g vs %.17g\n", i + 1, keys[k], x, y); }
        }
    CHECK(same, "metrics after kills and resumes are bitwise identical (%d vs %d lines)", na, nb);
    for (int i = 0; i < na; i++) cJSON_Delete(ma[i]);
    for (int i = 0; i < nb; i++) cJSON_Delete(mb[i]);
    snprintf(pa, sizeof pa, "%s/reference_logps.json", a);
    snprintf(pb, sizeof pb, "%s/reference_logps.json", b);
    CHECK(same_file(pa, pb), "the cached reference log-probs are byte-identical");
    snprintf(pa, sizeof pa, "%s/final/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/final/model.safetensors", b);
    CHECK(same_file(pa, pb), "the final models are byte-identical");
    test_cache_reused(base, data, a);
}

int main(int argc, char **argv) {
    char *text = NULL;
    CHECK_OK(lma_read_file(fixture("dpo/expected.json"), &text, NULL));
    expected = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!expected) { CHECK(0, "fixture expected.json"); TEST_END(); }
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(fixture("dpo/models/policy"), &tok));
    lma_pref_set *s = NULL;
    lma_pref_stats st;
    lma_pref_params pp = {.template_spec = NULL, .max_len = 64};
    CHECK_OK(lma_pref_load(fixture("dpo/pairs.jsonl"), tok, &pp, &s, &st));
    if (s) {
        CHECK(st.conversational == 4 && st.plain == 1, "formats: %zu conversational, %zu plain", st.conversational, st.plain);
        test_tokenize(s);
        test_batches(s);
        test_math(lma_backend_ref(), "ref", s, 1e-6, 1e-6, 5e-6, 0);
        test_math(lma_backend_cpu(), "cpu", s, 1e-5, 1e-5, 1e-4, 0);
        test_math(lma_backend_cpu(), "cpu+ckpt", s, 1e-5, 1e-5, 1e-4, 1);
    }
    lma_pref_free(s);
    lma_tok_free(tok);
    if (argc > 1 && !strcmp(argv[1], "--math")) { cJSON_Delete(expected); TEST_END(); }

    snprintf(tmp, sizeof tmp, "/tmp/lma_dpo_XXXXXX");
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    test_validate();
    test_lr0();
    char base[256], data[256];
    snprintf(base, sizeof base, "%s/base", tmp);
    snprintf(data, sizeof data, "%s/planted.jsonl", tmp);
    make_planted(base, data);
    test_planted(base, data, "lora", "2e-3");
    test_planted(base, data, "qlora", "2e-3");
    test_planted(base, data, "full", "1e-4");
    test_kill_resume(base, data);
    cJSON_Delete(expected);
    if (test_failed_ == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    }
    TEST_END();
}
