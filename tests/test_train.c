/* train/trainer: an interrupted run resumed from its checkpoint gives bitwise
 * identical losses; a corrupt newest checkpoint is detected and the previous
 * one used; the NaN guard skips and then aborts (metrics.jsonl stays strict JSON: null
 * for non-finite values); loss goes down; a backend op that
 * fails (a test backend failing its Nth matmul, as a CUDA out-of-memory would) fails the
 * run with the backend's message instead of being taken for a non-finite step. */
#include <dirent.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "core/io.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/shard.h"
#include "train/loader_source.h"
#include "test.h"

static lma_config tiny_config(void) {
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA;
    c.vocab_size = 64; c.hidden_size = 32; c.intermediate_size = 48; c.n_layers = 2;
    c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 8; c.max_position_embeddings = 128;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = -1;
    return c;
}

static char tmpdir[64];

/* ---- a backend that fails: the cpu table whose Nth matmul_fwd records a failure, reported
 * by sync as the cuda backend reports its own (backend.h) ---- */
static lma_backend fault_be;
static long fault_calls, fault_at;
static lma_status fault_status;
static int fault_nan; /* 1: from call fault_at on, the op works but its output holds a NaN (a numeric blow-up) */
static void fault_matmul_fwd(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC) {
    ++fault_calls;
    if (fault_nan && fault_calls >= fault_at) {
        lma_backend_cpu()->matmul_fwd(out, inp, w, bias, N, C, OC);
        ((float *)out)[0] = NAN;
    } else if (fault_calls == fault_at && fault_status == LMA_OK) {
        fault_status = LMA_ERR_NOMEM; /* the op failed: its output zeros (defined, for valgrind), not the product */
        memset(out, 0, (size_t)N * OC * sizeof(float));
    } else lma_backend_cpu()->matmul_fwd(out, inp, w, bias, N, C, OC);
}
static lma_status fault_sync(void) {
    lma_status s = fault_status;
    fault_status = LMA_OK;
    return s ? lma_error(s, "test backend: out of memory in matmul_fwd call %ld", fault_at) : LMA_OK;
}
static const lma_backend *fault_backend(long at) {
    fault_be = *lma_backend_cpu();
    fault_be.name = "fault";
    fault_be.matmul_fwd = fault_matmul_fwd;
    fault_be.sync = fault_sync;
    fault_calls = 0;
    fault_nan = 0;
    fault_at = at;
    fault_status = LMA_OK;
    return &fault_be;
}
static const lma_backend *g_be; /* run()'s backend; NULL = cpu */

/* A shard of 60 documents following a learnable pattern (each next token = prev + 1 mod 60). */
static void make_shard(const char *path) {
    lma_shard_writer *w = NULL;
    CHECK_OK(lma_shard_writer_open(path, 2, 63, &w));
    lma_rng r; lma_rng_seed(&r, 9);
    int32_t doc[40];
    for (int d = 0; d < 60; d++) {
        int n = 5 + (int)lma_rng_below(&r, 30), x = (int)lma_rng_below(&r, 60);
        for (int i = 0; i < n; i++) doc[i] = (x + i) % 60;
        CHECK_OK(lma_shard_writer_add(w, doc, (size_t)n));
    }
    CHECK_OK(lma_shard_writer_commit(w));
}

typedef struct { float loss[64]; int n; } losses;

static void read_losses(const char *dir, losses *out) {
    char path[512], *data = NULL;
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    out->n = 0;
    if (lma_read_file(path, &data, NULL) != LMA_OK) { lma_clear_error(); return; }
    for (char *p = data; (p = strstr(p, "\"loss\": ")) && out->n < 64; p++) out->loss[out->n++] = strtof(p + 8, NULL);
    free(data);
}

static lma_status run(const char *shard, const char *out, int steps, int resume, int save_every, lma_trainer_result *res) {
    lma_config c = tiny_config();
    lma_model *m = NULL;
    lma_shardset *ss = NULL;
    lma_loader *L = NULL;
    LMA_TRY(lma_model_create(&c, g_be ? g_be : lma_backend_cpu(), &m));
    CHECK_OK(lma_model_init_random(m, 1, 0.1f));
    const char *paths[1] = {shard};
    lma_status s = lma_shardset_open(paths, 1, &ss);
    lma_loader_params lp = lma_loader_default_params();
    lp.B = 2; lp.T = 16; lp.seed = 5; lp.val_fraction = 0.1;
    if (s == LMA_OK) s = lma_loader_create(ss, &lp, &L);
    if (s == LMA_OK) {
        lma_batch_source src = lma_loader_batch_source(L);
        lma_trainer_params p = lma_trainer_default_params();
        p.out_dir = out; p.steps = steps; p.B = 2; p.T = 16; p.accum = 2;
        p.sched.lr = 1e-2; p.sched.min_lr = 1e-3; p.sched.warmup_steps = 3; p.sched.total_steps = 16;
        p.save_every = save_every; p.eval_every = 4; p.keep_last = 2; p.resume = resume; p.quiet = 1;
        p.spike_z = 3; p.spike_window = 4;
        s = lma_train_run(m, &src, &p, res);
    }
    lma_loader_free(L);
    lma_shardset_close(ss);
    lma_model_free(m);
    return s;
}

int main(void) {
    lma_threads_set(2);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lma_train_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");
    char shard[256], a[256], b[256], path[512];
    snprintf(shard, sizeof shard, "%s/data.bin", tmpdir);
    snprintf(a, sizeof a, "%s/a", tmpdir);
    snprintf(b, sizeof b, "%s/b", tmpdir);
    make_shard(shard);
    lma_trainer_result ra, rb;
    losses la, lb;

    /* uninterrupted */
    CHECK_OK(run(shard, a, 16, 0, 4, &ra));
    read_losses(a, &la);
    CHECK(la.n == 16, "16 metrics lines (%d)", la.n);
    CHECK(la.loss[15] < 0.6f * la.loss[0], "loss goes down: %g -> %g", la.loss[0], la.loss[15]);
    CHECK(!isnan(ra.last_val_loss) && ra.last_val_loss < la.loss[0], "validation loss %g", ra.last_val_loss);

    /* interrupted after step 10 (checkpoints at 4, 8, 10), resumed to 16 */
    CHECK_OK(run(shard, b, 10, 0, 4, &rb));
    CHECK_OK(run(shard, b, 16, 1, 4, &rb));
    read_losses(b, &lb);
    int same = lb.n == la.n;
    for (int i = 0; same && i < la.n; i++) same = memcmp(&la.loss[i], &lb.loss[i], sizeof(float)) == 0;
    CHECK(same, "resumed losses are bitwise identical (%d vs %d lines)", la.n, lb.n);

    /* corrupt the newest checkpoint of a run stopped at 10, then resume: falls back to ckpt 8 */
    snprintf(b, sizeof b, "%s/c", tmpdir);
    CHECK_OK(run(shard, b, 10, 0, 4, &rb));
    snprintf(path, sizeof path, "%s/ckpt-000010/model.safetensors", b);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL, "open checkpoint to corrupt it");
    if (f) { fseek(f, -5, SEEK_END); fputc(0x7f, f); fclose(f); }
    CHECK_OK(run(shard, b, 16, 1, 4, &rb));
    read_losses(b, &lb);
    same = lb.n == la.n;
    for (int i = 0; same && i < la.n; i++) same = memcmp(&la.loss[i], &lb.loss[i], sizeof(float)) == 0;
    CHECK(same, "resume after a corrupt checkpoint is still bitwise identical");
    snprintf(path, sizeof path, "%s/ckpt-000004", b);
    CHECK(!lma_is_dir(path), "only the last 2 checkpoints are kept");
    snprintf(path, sizeof path, "%s/final/model.safetensors", b);
    CHECK(lma_file_exists(path), "final model written");

    /* a backend op fails just after the matmuls a 2-step run makes (counted, not guessed):
     * during step 3 of a 4-step run */
    snprintf(b, sizeof b, "%s/fault", tmpdir);
    g_be = fault_backend(1L << 40);
    lma_trainer_result rf = {0};
    CHECK_OK(run(shard, b, 2, 0, 100, &rf));
    long per_run = fault_calls; /* matmuls of 2 steps (+ validation) */
    g_be = fault_backend(per_run + 3);
    lma_clear_error();
    lma_status fs = run(shard, b, 4, 0, 100, &rf);
    CHECK(fs == LMA_ERR_NOMEM && strstr(lma_last_error(), "test backend: out of memory in matmul_fwd"),
          "a failing op fails the run with its message: %s / %s", lma_status_name(fs), lma_last_error());
    CHECK(rf.skipped == 0, "the failure was taken for %d skipped steps", rf.skipped);
    lma_clear_error();
    /* the forward alone reports it too, and the next forward is fine again */
    lma_config c = tiny_config();
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, fault_backend(2), &m));
    if (m) {
        int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tg[8] = {2, 3, 4, 5, 6, 7, 8, 9};
        float loss = 0;
        CHECK_OK(lma_model_init_random(m, 1, 0.1f));
        fs = lma_model_forward(m, ids, tg, NULL, 1, 8, 0, 1.0f, &loss);
        CHECK(fs == LMA_ERR_NOMEM && strstr(lma_last_error(), "matmul_fwd call 2"), "forward: %s", lma_last_error());
        lma_clear_error();
        CHECK_OK(lma_model_forward(m, ids, tg, NULL, 1, 8, 0, 1.0f, &loss));
        CHECK(isfinite(loss), "forward after the failure: loss %g", loss);
        lma_model_free(m);
    }

    /* the NaN guard: non-finite losses from step 3 or 4 on are skipped, then the run stops after
     * nan_abort_after (5) in a row with LMA_ERR_NUMERIC; every metrics line is strict JSON
     * (non-finite values are null, named in "non_finite") */
    snprintf(b, sizeof b, "%s/nan", tmpdir);
    g_be = fault_backend(per_run + 1);
    fault_nan = 1;
    lma_clear_error();
    fs = run(shard, b, 12, 0, 100, &rf);
    CHECK(fs == LMA_ERR_NUMERIC && strstr(lma_last_error(), "consecutive steps"), "NaN guard: %s / %s",
          lma_status_name(fs), lma_last_error());
    CHECK(rf.skipped == 5, "NaN guard: %d steps skipped, want 5", rf.skipped);
    lma_clear_error();
    snprintf(path, sizeof path, "%s/metrics.jsonl", b);
    char *mj = NULL;
    CHECK_OK(lma_read_file(path, &mj, NULL));
    int lines = 0, nulls = 0, bad_json = 0;
    for (char *line = mj; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        if (!o) bad_json++;
        else {
            const cJSON *lo = cJSON_GetObjectItem(o, "loss"), *nf = cJSON_GetObjectItem(o, "non_finite");
            if (cJSON_IsNull(lo) && cJSON_IsArray(nf) && cJSON_IsString(nf->child) && !strcmp(nf->child->valuestring, "loss"))
                nulls++;
            cJSON_Delete(o);
        }
        lines++;
        line = nl ? nl + 1 : NULL;
    }
    free(mj);
    CHECK(lines >= 7 && bad_json == 0 && nulls == 5, "metrics.jsonl: %d lines, %d not JSON, %d with \"loss\": null",
          lines, bad_json, nulls);
    g_be = NULL;

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
