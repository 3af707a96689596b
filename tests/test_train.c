/* train/trainer: an interrupted run resumed from its checkpoint gives bitwise
 * identical losses; a corrupt newest checkpoint is detected and the previous
 * one used; the NaN guard skips and then aborts; loss goes down. */
#include <dirent.h>
#include <unistd.h>
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
    LMA_TRY(lma_model_create(&c, lma_backend_cpu(), &m));
    lma_model_init_random(m, 1, 0.1f);
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
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
