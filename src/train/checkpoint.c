/* Training checkpoints (checkpoint.h). */
#include "train/checkpoint.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/json.h"
#include "core/log.h"
#include "model/adapter.h"
#include "model/safetensors.h"

/* 64-bit FNV-1a over the bytes: detects a checkpoint whose data changed on disk. */
static uint64_t checksum(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
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
int lma_ckpt_list(const char *out_dir, int *steps, int cap) {
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

/* ---- sharded optimizer state (ZeRO 1/2 on several ranks) ---------------------------- */

static int is_sharded(const lma_dp *dp) { return dp && dp->zero > 0 && dp->world > 1; }

/* Every rank's status, agreed: a failure on any rank fails all (and this is a barrier). */
static lma_status agree(const lma_dp *dp, lma_status s) {
    double bad = s != LMA_OK;
    lma_status cs = lma_comm_allreduce_f64(dp->comm, &bad, 1);
    if (s != LMA_OK) return s;
    if (cs != LMA_OK) return cs;
    return bad > 0 ? lma_error(LMA_ERR_IO, "checkpoint: another rank failed (its message is in its own log)") : LMA_OK;
}

static lma_status save_shard(const lma_dp *dp, const host_state *h, const char *tmp) {
    char path[4400], hx[24];
    size_t n = dp->hi - dp->lo;
    lma_st_entry e[2];
    memset(e, 0, sizeof e);
    const char *names[2] = {"exp_avg", "exp_avg_sq"};
    for (int k = 0; k < 2; k++) {
        e[k].name = names[k];
        e[k].ndim = 1;
        e[k].shape[0] = (int64_t)n;
        e[k].data = (k ? h->v : h->m) + dp->lo;
    }
    snprintf(path, sizeof path, "%s/optimizer-rank%05d.safetensors", tmp, dp->rank);
    LMA_TRY(lma_st_save(path, e, 2, LMA_DT_F32));
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "rank", dp->rank);
    cJSON_AddNumberToObject(j, "world", dp->world);
    cJSON_AddNumberToObject(j, "lo", (double)dp->lo);
    cJSON_AddNumberToObject(j, "hi", (double)dp->hi);
    cJSON_AddNumberToObject(j, "total", (double)dp->total);
    hex64(hx, checksum(h->m + dp->lo, n * sizeof(float))); cJSON_AddStringToObject(j, "exp_avg", hx);
    hex64(hx, checksum(h->v + dp->lo, n * sizeof(float))); cJSON_AddStringToObject(j, "exp_avg_sq", hx);
    snprintf(path, sizeof path, "%s/optimizer-rank%05d.json", tmp, dp->rank);
    lma_status s = lma_json_save(path, j);
    cJSON_Delete(j);
    return s;
}

static lma_status check_sum(const cJSON *cs, const char *key, uint64_t got, const char *dir);

/* The moments of [lo, hi) from the W shards of dir (any W: re-sharding). */
static lma_status load_shards(lma_model *md, const char *dir, int W, size_t lo, size_t hi) {
    lma_trainable tr = lma_model_trainable(md);
    lma_status s = LMA_OK;
    float *stage = NULL;
    for (int k = 0; k < W && s == LMA_OK; k++) {
        char path[4400];
        cJSON *j = NULL;
        snprintf(path, sizeof path, "%s/optimizer-rank%05d.json", dir, k);
        s = lma_json_load(path, &j);
        int64_t a = 0, b = 0, total = 0;
        if (s == LMA_OK) s = lma_json_int(j, "lo", 1, path, &a);
        if (s == LMA_OK) s = lma_json_int(j, "hi", 1, path, &b);
        if (s == LMA_OK) s = lma_json_int(j, "total", 1, path, &total);
        if (s == LMA_OK && (size_t)total != tr.table->total)
            s = lma_error(LMA_ERR_FORMAT, "%s: %lld trainable elements, this model has %zu (another model or adapter)",
                          path, (long long)total, tr.table->total);
        if (s == LMA_OK && (a < 0 || b < a || b > total)) s = lma_error(LMA_ERR_FORMAT, "%s: bad range [lo, hi)", path);
        size_t x = (size_t)a > lo ? (size_t)a : lo, y = (size_t)b < hi ? (size_t)b : hi;
        if (s != LMA_OK || x >= y) { cJSON_Delete(j); continue; }
        size_t n = (size_t)(b - a);
        float *t = realloc(stage, n * sizeof(float) + 1);
        if (!t) { s = lma_error(LMA_ERR_NOMEM, "out of memory"); cJSON_Delete(j); break; }
        stage = t;
        lma_st_file *f = NULL;
        snprintf(path, sizeof path, "%s/optimizer-rank%05d.safetensors", dir, k);
        s = lma_st_open(path, &f);
        for (int q = 0; q < 2 && s == LMA_OK; q++) {
            const char *name = q ? "exp_avg_sq" : "exp_avg";
            const lma_st_tensor *te = lma_st_find(f, name);
            if (!te) { s = lma_error(LMA_ERR_FORMAT, "%s: missing tensor '%s'", path, name); break; }
            s = lma_st_read_f32(te, stage, n);
            if (s == LMA_OK) s = check_sum(j, name, checksum(stage, n * sizeof(float)), path);
            if (s == LMA_OK) md->be->upload((q ? tr.v : tr.m) + x, stage + (x - (size_t)a), (y - x) * sizeof(float));
        }
        lma_st_close(f);
        cJSON_Delete(j);
    }
    free(stage);
    return s;
}

lma_status lma_ckpt_save(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                                  const lma_guard_state *g, lma_dp *dp) {
    char dir[4096], tmp[4200], path[4400];
    snprintf(dir, sizeof dir, "%s/ckpt-%06d", p->out_dir, step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    host_state h = {0};
    cJSON *st = NULL;
    int sharded = is_sharded(dp), root = !dp || dp->rank == 0;
    if (!root && !sharded) return LMA_OK; /* zero 0: rank 0 holds the very same state */
    lma_status s = LMA_OK;
    if (root) {
        s = remove_dir(tmp);
        if (s == LMA_OK) s = lma_mkdir_p(tmp);
        if (s == LMA_OK) s = md->lora ? lma_adapter_save(md, tmp, NULL) : lma_model_save(md, tmp, 0, 0);
    }
    if (sharded) s = agree(dp, s);
    if (s == LMA_OK) s = download_state(md, &h);
    if (sharded) {
        if (s == LMA_OK) s = save_shard(dp, &h, tmp);
        s = agree(dp, s);
        if (!root) goto done_rank;
    } else if (s == LMA_OK) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        s = save_optimizer(md, &h, path);
    }
    if (s != LMA_OK) goto done;
    st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "format", "lmadapt-checkpoint");
    cJSON_AddNumberToObject(st, "version", 1);
    cJSON_AddNumberToObject(st, "step", step);
    cJSON_AddNumberToObject(st, "opt_t", g->opt_t);
    cJSON_AddNumberToObject(st, "nan_streak", g->nan_streak);
    cJSON_AddNumberToObject(st, "hist_pos", g->hist_pos);
    if (sharded) cJSON_AddNumberToObject(st, "zero_world", dp->world); /* optimizer-rank<r> files */
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
    if (!sharded) { /* the shards carry their own */
        hex64(hx, state_sum(md, h.m)); cJSON_AddStringToObject(cs, "exp_avg", hx);
        hex64(hx, state_sum(md, h.v)); cJSON_AddStringToObject(cs, "exp_avg_sq", hx);
    }
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
    int steps[4096], k = lma_ckpt_list(p->out_dir, steps, 4096);
    for (int i = p->keep_last > 0 ? p->keep_last : 1; i < k; i++) {
        char old[4200];
        snprintf(old, sizeof old, "%s/ckpt-%06d", p->out_dir, steps[i]);
        remove_dir(old);
    }
done:
    if (s != LMA_OK) remove_dir(tmp);
    cJSON_Delete(st);
done_rank:
    free_state(&h);
    if (sharded) s = agree(dp, s); /* the others wait for rank 0's rename */
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

lma_status lma_ckpt_load(lma_model *md, lma_batch_source *src, const lma_trainer_params *p, int step,
                                  lma_guard_state *g, lma_dp *dp) {
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
    int shards = 0;
    if (s == LMA_OK && cJSON_GetObjectItemCaseSensitive(st, "zero_world")) {
        s = lma_json_int(st, "zero_world", 1, path, &v);
        shards = (int)v;
        if (s == LMA_OK && (v < 1 || v > 1 << 20)) s = lma_error(LMA_ERR_FORMAT, "%s: bad zero_world", path);
    }
    if (s == LMA_OK && shards) { /* this rank's range (everything for one process or zero 0) */
        size_t lo = 0, hi = lma_model_trainable(md).table->total;
        if (is_sharded(dp)) lo = dp->lo, hi = dp->hi;
        s = load_shards(md, dir, shards, lo, hi);
    } else if (s == LMA_OK) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
        s = load_optimizer(md, path);
    }
    if (s == LMA_OK) s = download_state(md, &h);
    const cJSON *cs = st ? cJSON_GetObjectItemCaseSensitive(st, "checksums") : NULL;
    if (s == LMA_OK && !cs) s = lma_error(LMA_ERR_FORMAT, "%s: no checksums", dir);
    if (s == LMA_OK) s = check_sum(cs, "params", state_sum(md, h.params), dir);
    if (s == LMA_OK && !shards) s = check_sum(cs, "exp_avg", state_sum(md, h.m), dir);
    if (s == LMA_OK && !shards) s = check_sum(cs, "exp_avg_sq", state_sum(md, h.v), dir);
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

